-- Environments become records: a description, their promotion order, dashboards and
-- escalation contacts, archiving, and a version for If-Match; their locks and freeze windows.

ALTER TABLE environments ADD COLUMN description TEXT;
ALTER TABLE environments ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
ALTER TABLE environments ADD COLUMN promotes_from TEXT;
ALTER TABLE environments ADD COLUMN requires_promotion BOOLEAN NOT NULL DEFAULT FALSE;
-- JSON arrays of {label, url} and of {name, role, reach, level, hours}.
ALTER TABLE environments ADD COLUMN dashboards TEXT NOT NULL DEFAULT '[]';
ALTER TABLE environments ADD COLUMN contacts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE environments ADD COLUMN archived_at TIMESTAMP;
ALTER TABLE environments ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Every environment a run names becomes a record.
INSERT INTO environments (name, updated_by, updated_at)
SELECT environment, 'system', MIN(created_at)
  FROM runs
 WHERE environment NOT IN (SELECT name FROM environments)
 GROUP BY environment;

-- Locks, open and past. At most one is open (not unlocked) per environment; one whose
-- `until` passed is closed when the next is taken.
CREATE TABLE environment_locks (
    id TEXT PRIMARY KEY,
    environment TEXT NOT NULL REFERENCES environments (name) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    locked_by TEXT NOT NULL,
    locked_at TIMESTAMP NOT NULL,
    until TIMESTAMP,
    -- The run whose rollback locked it.
    run_id TEXT REFERENCES runs (id) ON DELETE SET NULL,
    unlocked_by TEXT,
    unlocked_at TIMESTAMP,
    unlock_note TEXT
);
CREATE UNIQUE INDEX environment_locks_open ON environment_locks (environment)
    WHERE unlocked_at IS NULL;
CREATE INDEX environment_locks_by_time ON environment_locks (environment, locked_at);

-- Freeze windows: `once` (RFC 3339 start and end), `weekly` (`fri 18:00`) or `yearly`
-- (`12-20`), in a time zone, until a day.
CREATE TABLE freeze_windows (
    id TEXT PRIMARY KEY,
    environment TEXT NOT NULL REFERENCES environments (name) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    recurrence TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    until TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX freeze_windows_by_environment ON freeze_windows (environment);
