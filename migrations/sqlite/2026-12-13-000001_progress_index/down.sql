DROP INDEX run_items_progress;
