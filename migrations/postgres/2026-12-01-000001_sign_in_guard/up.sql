-- The sign-in guard: failed sign-ins per account (`user:NAME`) and per client address
-- (`addr:ADDRESS`), kept in the database so that a restart forgets nothing and every
-- instance on the database shares them. The rules are the domain crate's `signin` module.
CREATE TABLE sign_in_guard (
    key TEXT PRIMARY KEY NOT NULL,
    attempts INTEGER NOT NULL,
    last_attempt TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    next_turn TIMESTAMP
);

CREATE INDEX sign_in_guard_by_last_attempt ON sign_in_guard (last_attempt);

-- The global audit log of security and administration events, in order (`seq`), each with
-- who, when, from which address, what, and its details as JSON.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY NOT NULL,
    at TIMESTAMP NOT NULL,
    actor_id TEXT,
    address TEXT,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL
);
