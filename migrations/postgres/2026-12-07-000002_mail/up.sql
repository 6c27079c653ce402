-- E-mail for people: an address and an opt-out per user, and what each has been told of
-- (the keys of their pending list already mailed), so a mail says only what is new.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_notifications BOOLEAN NOT NULL DEFAULT TRUE;
CREATE TABLE mail_seen (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    seen_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Mail to addresses that are not users (announcements to stakeholders), queued in the
-- transaction that sends it and sent by the mail worker, retried with backoff.
CREATE TABLE mail_outbox (
    id TEXT PRIMARY KEY,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP,
    sent_at TIMESTAMP,
    last_error TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
