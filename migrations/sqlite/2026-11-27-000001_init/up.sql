CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE templates (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    builtin BOOLEAN NOT NULL,
    latest_version INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE template_versions (
    template_id TEXT NOT NULL REFERENCES templates (id),
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    item_count INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE runs (
    id TEXT PRIMARY KEY NOT NULL,
    template_id TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    template_name TEXT NOT NULL,
    product TEXT NOT NULL,
    release_version TEXT NOT NULL,
    environment TEXT NOT NULL,
    status TEXT NOT NULL,
    window_start TIMESTAMP,
    window_end TIMESTAMP,
    expected_downtime_minutes INTEGER,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    last_seq BIGINT NOT NULL,
    FOREIGN KEY (template_id, template_version) REFERENCES template_versions (template_id, version)
);

CREATE INDEX runs_by_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_by_status ON runs (status, created_at DESC, id DESC);
CREATE INDEX runs_by_environment ON runs (environment, created_at DESC, id DESC);
-- One live run per product and environment.
CREATE UNIQUE INDEX runs_one_live ON runs (product, environment)
    WHERE status IN ('preparing', 'deploying', 'verifying', 'rolling_back');

CREATE TABLE run_items (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id),
    position INTEGER NOT NULL,
    part_index INTEGER NOT NULL,
    section_index INTEGER NOT NULL,
    reference TEXT NOT NULL,
    title TEXT NOT NULL,
    guidance TEXT,
    gate TEXT NOT NULL,
    applies TEXT NOT NULL,
    required BOOLEAN NOT NULL,
    kind TEXT NOT NULL,
    role TEXT,
    status TEXT NOT NULL,
    assignee TEXT,
    note TEXT,
    evidence_url TEXT,
    skip_reason TEXT,
    version BIGINT NOT NULL,
    updated_by TEXT,
    updated_at TIMESTAMP,
    UNIQUE (run_id, position)
);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id),
    point_key TEXT NOT NULL,
    outcome TEXT NOT NULL,
    rationale TEXT NOT NULL,
    criteria TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    seq BIGINT NOT NULL
);

CREATE INDEX decisions_by_run ON decisions (run_id, seq);

CREATE TABLE run_events (
    run_id TEXT NOT NULL REFERENCES runs (id),
    seq BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
