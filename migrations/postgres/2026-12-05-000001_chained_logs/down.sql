ALTER TABLE audit_log DROP COLUMN hash;
ALTER TABLE audit_log DROP COLUMN prev_hash;
ALTER TABLE audit_log DROP COLUMN actor;
ALTER TABLE run_events DROP COLUMN hash;
ALTER TABLE run_events DROP COLUMN prev_hash;
