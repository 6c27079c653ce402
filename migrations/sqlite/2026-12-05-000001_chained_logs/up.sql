-- Hash chains over each run's event log and over the audit log: every entry stores the
-- previous entry's hash and its own (SHA-256 over the previous hash and the entry's
-- canonical encoding; see the README). Entries written before this migration are chained
-- once at start-up, in order (`shipshape migrate` and `serve` both do it).
ALTER TABLE run_events ADD COLUMN prev_hash TEXT;
ALTER TABLE run_events ADD COLUMN hash TEXT;
-- The audit log names who acted (their user name at the time), beside their id.
ALTER TABLE audit_log ADD COLUMN actor TEXT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
