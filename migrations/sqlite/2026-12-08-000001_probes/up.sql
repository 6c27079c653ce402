-- Probe items, several labelled evidence links per item, decision deadlines, and the
-- environments' base URLs that probes are written with.

-- The item's check (a JSON ProbeSpec) when it is a probe, whether it is done only with
-- evidence, its evidence links (a JSON array of {label, url}; evidence_url keeps the first
-- link's URL), its latest result and when the server checks it next.
ALTER TABLE run_items ADD COLUMN probe TEXT;
ALTER TABLE run_items ADD COLUMN evidence_required BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE run_items ADD COLUMN evidence TEXT NOT NULL DEFAULT '[]';
ALTER TABLE run_items ADD COLUMN probe_result_id TEXT;
ALTER TABLE run_items ADD COLUMN probe_next_at TIMESTAMP;
UPDATE run_items
   SET evidence = json_array(json_object('label', 'Evidence', 'url', evidence_url))
 WHERE evidence_url IS NOT NULL;

-- Every result of a probe item's check, kept as its evidence.
CREATE TABLE probe_results (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    item_id TEXT NOT NULL REFERENCES run_items (id) ON DELETE CASCADE,
    checked_at TIMESTAMP NOT NULL,
    passed BOOLEAN NOT NULL,
    summary TEXT NOT NULL,
    observed TEXT,
    url TEXT NOT NULL,
    http_status INTEGER,
    latency_ms BIGINT,
    excerpt TEXT,
    trigger_kind TEXT NOT NULL,
    checked_by TEXT NOT NULL
);
CREATE INDEX probe_results_by_item ON probe_results (item_id, checked_at DESC, id DESC);
CREATE INDEX run_items_probe_due ON run_items (probe_next_at) WHERE probe IS NOT NULL;

-- When the run entered its current status: decision deadlines count from it.
ALTER TABLE runs ADD COLUMN stage_entered_at TIMESTAMP;
UPDATE runs SET stage_entered_at = updated_at;

CREATE TABLE environments (
    name TEXT PRIMARY KEY,
    base_url TEXT,
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
