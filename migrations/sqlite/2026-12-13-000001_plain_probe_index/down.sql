DROP INDEX run_items_probe_due;
CREATE INDEX run_items_probe_due ON run_items (probe_next_at) WHERE probe IS NOT NULL;
