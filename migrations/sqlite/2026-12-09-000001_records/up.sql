-- Records after the deploy: each run's issues log, its retrospective with action items, and
-- proposals that carry a run's lessons into its template's next version.

-- The run record an item is kept through (`issues`, `retrospective`), if any.
ALTER TABLE run_items ADD COLUMN record TEXT;

CREATE TABLE run_issues (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    -- A JSON array of the run's item ids.
    item_ids TEXT NOT NULL,
    notes TEXT,
    accepted_reason TEXT,
    accepted_by TEXT,
    accepted_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    resolved_at TIMESTAMP,
    version BIGINT NOT NULL,
    UNIQUE (run_id, number)
);

CREATE TABLE retrospectives (
    run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    held_at TIMESTAMP,
    went_well TEXT,
    went_badly TEXT,
    root_cause TEXT,
    lessons TEXT,
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    published_at TIMESTAMP,
    version BIGINT NOT NULL
);

CREATE TABLE action_items (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    assignee TEXT NOT NULL,
    -- YYYY-MM-DD (UTC).
    due_on TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX action_items_by_run ON action_items (run_id, created_at);
CREATE INDEX action_items_by_assignee ON action_items (assignee, status);

CREATE TABLE template_proposals (
    id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL REFERENCES templates (id),
    base_version INTEGER NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    summary TEXT NOT NULL,
    -- The proposed template, normalised Markdown, and its diff (JSON) against the base.
    markdown TEXT NOT NULL,
    diff TEXT NOT NULL,
    status TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposed_at TIMESTAMP NOT NULL,
    reviewed_by TEXT,
    reviewed_at TIMESTAMP,
    review_reason TEXT,
    accepted_version INTEGER
);
CREATE INDEX template_proposals_by_status ON template_proposals (status, proposed_at);
CREATE INDEX template_proposals_by_run ON template_proposals (run_id);

-- The run and proposal a template version came from, when it came from a proposal.
ALTER TABLE template_versions ADD COLUMN source_run_id TEXT;
ALTER TABLE template_versions ADD COLUMN source_proposal_id TEXT;
