-- The index of probe items by when their next check is due, without its partial condition.
-- On SQLite a partial index `WHERE probe IS NOT NULL` made every prepared statement on
-- run_items with a bound `col = ?` term depend on its bound values (the planner checks
-- whether the term implies the index's condition), so each new value re-prepared the
-- statement. Items without a probe have no due time, so the plain index holds the same rows
-- that matter.
DROP INDEX run_items_probe_due;
CREATE INDEX run_items_probe_due ON run_items (probe_next_at);
