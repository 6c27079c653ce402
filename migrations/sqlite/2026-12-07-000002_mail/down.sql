DROP TABLE mail_outbox;
DROP TABLE mail_seen;
ALTER TABLE users DROP COLUMN email_notifications;
ALTER TABLE users DROP COLUMN email;
