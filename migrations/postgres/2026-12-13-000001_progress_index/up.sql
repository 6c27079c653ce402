-- The run list's progress counts (per run: items by status and applicability) read from the
-- index alone, in group order, instead of looking up every item's row.
CREATE INDEX run_items_progress ON run_items (run_id, status, applies);
