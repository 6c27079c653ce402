-- Bumped on logout and password change: access tokens carry the generation they were
-- issued under and stop working when it moves on.
ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

CREATE TABLE run_members (
    run_id TEXT NOT NULL REFERENCES runs (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    run_role TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, user_id)
);

CREATE INDEX run_members_by_user ON run_members (user_id);

CREATE TABLE signoffs (
    id TEXT PRIMARY KEY NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id),
    item_id TEXT NOT NULL REFERENCES run_items (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    verdict TEXT NOT NULL,
    comment TEXT,
    signed_at TIMESTAMP NOT NULL,
    invalidated_at TIMESTAMP
);

CREATE INDEX signoffs_by_run ON signoffs (run_id, item_id);
-- One valid sign-off per person and item.
CREATE UNIQUE INDEX signoffs_one_per_signer ON signoffs (item_id, user_id) WHERE invalidated_at IS NULL;

-- Approval policy copied from the template (comma-separated roles), and everyone who changed
-- the work on the item (comma-separated user names; they may not sign it off).
ALTER TABLE run_items ADD COLUMN approvers TEXT;
ALTER TABLE run_items ADD COLUMN worked_by TEXT;

-- Set when a release manager forced a transition past an unmet gate.
ALTER TABLE runs ADD COLUMN overridden BOOLEAN NOT NULL DEFAULT 0;
