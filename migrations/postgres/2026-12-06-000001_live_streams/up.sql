-- Every event gets a position in one order across all runs: the cursor of the all-runs event
-- stream (`GET /api/v1/events/stream`). Positions are handed out from the one row of
-- `event_log_head` inside the writing transaction, which holds that row until it commits:
-- so positions commit in their order, and a reader that has seen position n has seen every
-- position before it. Events written before are numbered in the order they happened.
ALTER TABLE run_events ADD COLUMN position BIGINT;
UPDATE run_events SET position = numbered.n
FROM (SELECT run_id, seq, row_number() OVER (ORDER BY at, run_id, seq) AS n FROM run_events) AS numbered
WHERE run_events.run_id = numbered.run_id AND run_events.seq = numbered.seq;
CREATE UNIQUE INDEX run_events_position ON run_events (position);
CREATE TABLE event_log_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);
INSERT INTO event_log_head (id, position) SELECT 1, COALESCE(MAX(position), 0) FROM run_events;

-- The instances serving this database (each says it is alive every few seconds), the event
-- streams each holds open (the per-user cap counts them across instances), and the leases
-- that let background work run on one instance at a time.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    seen_at TIMESTAMP NOT NULL
);
CREATE TABLE stream_leases (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    opened_at TIMESTAMP NOT NULL
);
CREATE INDEX stream_leases_user ON stream_leases (user_id);
CREATE INDEX stream_leases_instance ON stream_leases (instance_id);
CREATE TABLE work_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
