-- Insights: the times and facts the delivery and checklist analytics read, kept on the rows
-- by the same transaction that writes each event (projections of the event log, so the
-- analytics are plain indexed SQL rather than a pass over every event's JSON).

-- The commit or build a run deploys, set by tools.
ALTER TABLE runs ADD COLUMN commit_sha TEXT;
ALTER TABLE runs ADD COLUMN committed_at TIMESTAMP;
-- When the run left `planned`, reached its outcome (completed, rolled back, aborted), and
-- when a rollback was first decided.
ALTER TABLE runs ADD COLUMN started_at TIMESTAMP;
ALTER TABLE runs ADD COLUMN finished_at TIMESTAMP;
ALTER TABLE runs ADD COLUMN rollback_decided_at TIMESTAMP;

-- When an item was first put in progress, and when it last reached done, skipped or failed.
ALTER TABLE run_items ADD COLUMN started_at TIMESTAMP;
ALTER TABLE run_items ADD COLUMN finished_at TIMESTAMP;

-- When an item first stood in the way of a transition of its run: `refused` (a transition
-- was refused with it among the blockers) or `overridden` (an override went past it).
CREATE TABLE item_blocks (
    item_id TEXT NOT NULL REFERENCES run_items (id),
    kind TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id),
    at TIMESTAMP NOT NULL,
    PRIMARY KEY (item_id, kind)
);
CREATE INDEX item_blocks_by_run ON item_blocks (run_id);

-- When the stage the decision was taken in began (its decision point opened).
ALTER TABLE decisions ADD COLUMN stage_entered_at TIMESTAMP;

-- What the log already tells, for runs written before.
UPDATE runs SET finished_at = COALESCE(stage_entered_at, updated_at)
 WHERE status IN ('completed', 'rolled_back', 'aborted');
UPDATE runs SET started_at = (
    SELECT MIN(e.at) FROM run_events e
     WHERE e.run_id = runs.id AND e.event_type IN ('run_transitioned', 'run_overridden')
       AND e.payload::jsonb ->> 'action' = 'start')
 WHERE status <> 'planned';
UPDATE runs SET rollback_decided_at = (
    SELECT MIN(d.decided_at) FROM decisions d
     WHERE d.run_id = runs.id AND d.outcome = 'rollback');
UPDATE decisions SET stage_entered_at = (
    SELECT MAX(e.at) FROM run_events e
     WHERE e.run_id = decisions.run_id AND e.seq < decisions.seq
       AND e.event_type IN ('run_created', 'run_transitioned', 'run_overridden'));
-- An item finished when it last became done, skipped or failed (by a change or a sign-off);
-- one whose log does not say so, at its last change.
UPDATE run_items SET finished_at = updated_at
 WHERE status IN ('done', 'skipped', 'failed');
UPDATE run_items SET finished_at = s.at
  FROM (SELECT payload::jsonb ->> 'item_id' AS item_id, MAX(at) AS at
          FROM run_events
         WHERE (event_type = 'item_updated'
                AND payload::jsonb #>> '{changes,status,to}' IN ('done', 'skipped', 'failed'))
            OR (event_type = 'signoff_recorded'
                AND payload::jsonb #>> '{status,to}' IN ('done', 'skipped', 'failed'))
         GROUP BY 1) AS s
 WHERE run_items.id = s.item_id AND run_items.status IN ('done', 'skipped', 'failed');
UPDATE run_items SET started_at = s.at
  FROM (SELECT payload::jsonb ->> 'item_id' AS item_id, MIN(at) AS at
          FROM run_events
         WHERE event_type = 'item_updated'
           AND payload::jsonb #>> '{changes,status,to}' = 'in_progress'
         GROUP BY 1) AS s
 WHERE run_items.id = s.item_id;
INSERT INTO item_blocks (item_id, kind, run_id, at)
SELECT s.item_id, 'overridden', i.run_id, s.at
  FROM (SELECT b ->> 'item_id' AS item_id, MIN(e.at) AS at
          FROM run_events e,
               jsonb_array_elements(e.payload::jsonb -> 'overridden_blockers') AS b
         WHERE e.event_type = 'run_overridden'
         GROUP BY 1) AS s
  JOIN run_items i ON i.id = s.item_id;

-- The period filter, the next completed run after a rollback, and the per-item aggregates
-- (covering: the wide item rows are not read).
CREATE INDEX runs_by_finish ON runs (finished_at);
CREATE INDEX runs_by_outcome ON runs (product, environment, status, finished_at);
CREATE INDEX runs_by_template ON runs (template_id, finished_at);
CREATE INDEX run_items_insights ON run_items (run_id, position, status, required, kind,
    started_at, finished_at);

-- The checklist analytics summed per week (Monday, UTC) of the runs' outcome, per template
-- version, item position (or decision point and outcome), product and environment: a long
-- period reads these, and only its partial first and last weeks read the items themselves.
-- Each run's items and decisions are added when it finishes, and taken out and added again
-- when one of them changes after that, in the same transaction.
CREATE TABLE item_rollups (
    template_id TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    product TEXT NOT NULL,
    environment TEXT NOT NULL,
    week TEXT NOT NULL,
    runs BIGINT NOT NULL,
    skipped BIGINT NOT NULL,
    waived BIGINT NOT NULL,
    skipped_failed BIGINT NOT NULL,
    timed BIGINT NOT NULL,
    worked_secs DOUBLE PRECISION NOT NULL,
    approvals BIGINT NOT NULL,
    approval_secs DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (template_id, template_version, position, product, environment, week)
);
CREATE TABLE decision_rollups (
    template_id TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    point_key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    product TEXT NOT NULL,
    environment TEXT NOT NULL,
    week TEXT NOT NULL,
    decisions BIGINT NOT NULL,
    timed BIGINT NOT NULL,
    decide_secs DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (template_id, template_version, point_key, outcome, product, environment, week)
);
INSERT INTO item_rollups
SELECT r.template_id, r.template_version, i.position, r.product, r.environment, to_char(date_trunc('week', r.finished_at), 'YYYY-MM-DD'),
       COUNT(*),
       SUM(CASE WHEN i.status = 'skipped' THEN 1 ELSE 0 END),
       SUM(CASE WHEN i.status = 'skipped' AND i.required THEN 1 ELSE 0 END),
       SUM(CASE WHEN i.status = 'skipped'
                 AND (r.rollback_decided_at IS NOT NULL OR r.status = 'rolled_back')
                THEN 1 ELSE 0 END),
       SUM(CASE WHEN i.started_at IS NOT NULL AND i.finished_at >= i.started_at
                THEN 1 ELSE 0 END),
       SUM(CASE WHEN i.started_at IS NOT NULL AND i.finished_at >= i.started_at
                THEN CAST(EXTRACT(EPOCH FROM (i.finished_at - i.started_at)) AS DOUBLE PRECISION) ELSE 0.0 END),
       SUM(CASE WHEN i.kind = 'approval' AND i.status = 'done' AND r.started_at IS NOT NULL
                 AND i.finished_at >= r.started_at THEN 1 ELSE 0 END),
       SUM(CASE WHEN i.kind = 'approval' AND i.status = 'done' AND r.started_at IS NOT NULL
                 AND i.finished_at >= r.started_at
                THEN CAST(EXTRACT(EPOCH FROM (i.finished_at - r.started_at)) AS DOUBLE PRECISION) ELSE 0.0 END)
  FROM runs r JOIN run_items i ON i.run_id = r.id
 WHERE r.finished_at IS NOT NULL AND r.status IN ('completed', 'rolled_back', 'aborted')
 GROUP BY r.template_id, r.template_version, i.position, r.product, r.environment, to_char(date_trunc('week', r.finished_at), 'YYYY-MM-DD');
INSERT INTO decision_rollups
SELECT r.template_id, r.template_version, d.point_key, d.outcome, r.product, r.environment,
       to_char(date_trunc('week', r.finished_at), 'YYYY-MM-DD'),
       COUNT(*),
       SUM(CASE WHEN d.stage_entered_at IS NOT NULL AND d.decided_at >= d.stage_entered_at
                THEN 1 ELSE 0 END),
       SUM(CASE WHEN d.stage_entered_at IS NOT NULL AND d.decided_at >= d.stage_entered_at
                THEN CAST(EXTRACT(EPOCH FROM (d.decided_at - d.stage_entered_at)) AS DOUBLE PRECISION) ELSE 0.0 END)
  FROM runs r JOIN decisions d ON d.run_id = r.id
 WHERE r.finished_at IS NOT NULL AND r.status IN ('completed', 'rolled_back', 'aborted')
 GROUP BY r.template_id, r.template_version, d.point_key, d.outcome, r.product,
          r.environment, to_char(date_trunc('week', r.finished_at), 'YYYY-MM-DD');
