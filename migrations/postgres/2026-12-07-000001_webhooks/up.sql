-- Webhook subscriptions and their outbox. A delivery row is written in the transaction of
-- the event it carries, so a crash or restart loses none; a worker on any instance claims
-- due rows (claimed_by, claimed_until), sends them, and records each attempt.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    description TEXT,
    format TEXT NOT NULL,
    -- A JSON array of event type names.
    event_types TEXT NOT NULL,
    product TEXT,
    environment TEXT,
    active BOOLEAN NOT NULL,
    disabled_reason TEXT,
    failing_since TIMESTAMP,
    -- The signing secret (`whsec_…`); the one before the last rotation signs too until
    -- previous_secret_expires_at.
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expires_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE TABLE webhook_deliveries (
    -- The `webhook-id` header: the same on every attempt.
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    run_id TEXT,
    event_seq BIGINT,
    -- The Standard Webhooks envelope, frozen when the event was written.
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP,
    claimed_by TEXT,
    claimed_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at);
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at TIMESTAMP NOT NULL,
    status_code INTEGER,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
