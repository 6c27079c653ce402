DROP TABLE audit_log;
DROP INDEX sign_in_guard_by_last_attempt;
DROP TABLE sign_in_guard;
