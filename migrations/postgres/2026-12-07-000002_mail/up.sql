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
