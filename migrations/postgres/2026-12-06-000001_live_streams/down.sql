DROP TABLE work_leases;
DROP TABLE stream_leases;
DROP TABLE instances;
DROP TABLE event_log_head;
DROP INDEX run_events_position;
ALTER TABLE run_events DROP COLUMN position;
