DROP TABLE environments;
ALTER TABLE runs DROP COLUMN stage_entered_at;
DROP INDEX run_items_probe_due;
DROP TABLE probe_results;
ALTER TABLE run_items DROP COLUMN probe_next_at;
ALTER TABLE run_items DROP COLUMN probe_result_id;
ALTER TABLE run_items DROP COLUMN evidence;
ALTER TABLE run_items DROP COLUMN evidence_required;
ALTER TABLE run_items DROP COLUMN probe;
