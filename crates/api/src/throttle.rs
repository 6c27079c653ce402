//! Login throttling, per account and per client address: after a few failures within a
//! window, further attempts are refused for a while (doubling with each further failure, up
//! to a cap) and answered 429 with `Retry-After`. State is kept in memory, per process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures counted within this window.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures per account before it is locked.
const ACCOUNT_LIMIT: u32 = 5;
/// Failures per client address before it is locked.
const ADDRESS_LIMIT: u32 = 20;
/// The first lock's length; each further failure doubles it.
const BASE_LOCK: Duration = Duration::from_secs(30);
/// The longest lock.
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Entries kept before old ones are pruned.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// Counts failed logins.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

/// The keys one attempt counts against.
pub fn keys(username: &str, address: Option<&str>) -> Vec<(String, u32)> {
    let mut keys = vec![(format!("user:{}", username.to_lowercase()), ACCOUNT_LIMIT)];
    if let Some(a) = address {
        keys.push((format!("addr:{a}"), ADDRESS_LIMIT));
    }
    keys
}

impl LoginThrottle {
    /// How long the caller must wait before trying again, if any key is locked.
    pub fn retry_after(&self, keys: &[(String, u32)]) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|(k, _)| entries.get(k))
            .filter_map(|e| e.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Records a failed attempt.
    pub fn failure(&self, keys: &[(String, u32)]) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > MAX_ENTRIES {
            entries
                .retain(|_, e| now - e.first < WINDOW || e.locked_until.is_some_and(|u| u > now));
        }
        for (key, limit) in keys {
            let e = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                first: now,
                locked_until: None,
            });
            if now - e.first >= WINDOW && e.locked_until.is_none_or(|u| u <= now) {
                *e = Entry {
                    failures: 0,
                    first: now,
                    locked_until: None,
                };
            }
            e.failures += 1;
            if e.failures >= *limit {
                let doublings = (e.failures - limit).min(10);
                let lock = (BASE_LOCK * 2u32.pow(doublings)).min(MAX_LOCK);
                e.locked_until = Some(now + lock);
            }
        }
    }

    /// Forgets an account's failures after a successful login.
    pub fn success(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&format!("user:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_locks_after_five_failures_and_a_success_clears_it() {
        let t = LoginThrottle::default();
        let k = keys("Alice", Some("10.0.0.1"));
        for _ in 0..4 {
            t.failure(&k);
            assert!(t.retry_after(&k).is_none());
        }
        t.failure(&k);
        let wait = t.retry_after(&k).expect("locked");
        assert!(wait <= BASE_LOCK && wait > BASE_LOCK / 2);
        t.failure(&k);
        assert!(
            t.retry_after(&k).expect("locked") > BASE_LOCK,
            "the lock doubles"
        );
        t.success("alice");
        assert!(t.retry_after(&keys("alice", None)).is_none());
    }

    #[test]
    fn an_address_locks_after_twenty_failures_across_accounts() {
        let t = LoginThrottle::default();
        for i in 0..20 {
            t.failure(&keys(&format!("user{i}"), Some("10.0.0.2")));
        }
        assert!(
            t.retry_after(&keys("someone-else", Some("10.0.0.2")))
                .is_some()
        );
        assert!(
            t.retry_after(&keys("someone-else", Some("10.0.0.3")))
                .is_none()
        );
    }
}
