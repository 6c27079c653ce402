-- Safe retries: the answer to a POST sent with an `Idempotency-Key`, kept for a day so that
-- the same request sent again is answered the same without being carried out twice. The
-- key itself is not stored (only its SHA-256), and the answer is stored encrypted with a key
-- derived from the client's key, so the table alone does not reveal what was answered (an
-- API token's secret, say).
CREATE TABLE idempotency_keys (
    -- The user who sent the request: keys are per user.
    scope TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    -- SHA-256 of the method, path, query, content type and body.
    fingerprint TEXT NOT NULL,
    -- Which serving of the request holds the key (a new one when an abandoned claim is
    -- taken over): only it may keep or give back the answer.
    claim TEXT NOT NULL,
    -- NULL while the first request is being served.
    status INTEGER,
    response BYTEA,
    -- When the first request arrived (or was taken over after its server stopped).
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, key_hash)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
