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
    /// Attempts admitted and not finished: they count against the limit, so a burst of
    /// concurrent guesses cannot all slip in before the first failures are recorded.
    in_flight: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            failures: 0,
            in_flight: 0,
            first: now,
            locked_until: None,
        }
    }
}

/// Counts failed logins.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// address in `X-Forwarded-For` that is not a trusted proxy.
pub fn client_address(
    peer: Option<std::net::IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    forwarded_for
        .into_iter()
        .flat_map(|h| h.rsplit(','))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .find(|a| !trusted.contains(a))
        .or(Some(peer))
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
    /// Admits one attempt, or says how long to wait. An admitted attempt must be finished
    /// with [`LoginThrottle::failure`] or [`LoginThrottle::success`].
    pub fn admit(&self, keys: &[(String, u32)]) -> Result<(), Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > MAX_ENTRIES {
            entries.retain(|_, e| {
                e.in_flight > 0 || now - e.first < WINDOW || e.locked_until.is_some_and(|u| u > now)
            });
        }
        let mut wait = None;
        for (key, limit) in keys {
            if let Some(e) = entries.get(key) {
                if let Some(until) = e.locked_until.filter(|u| *u > now) {
                    wait = wait.max(Some(until - now));
                } else if e.failures + e.in_flight >= *limit {
                    // Others' attempts on this key are still being checked.
                    wait = wait.max(Some(Duration::from_secs(1)));
                }
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for (key, _) in keys {
            let e = entries
                .entry(key.clone())
                .or_insert_with(|| Entry::new(now));
            if now - e.first >= WINDOW
                && e.locked_until.is_none_or(|u| u <= now)
                && e.in_flight == 0
            {
                *e = Entry::new(now);
            }
            e.in_flight += 1;
        }
        Ok(())
    }

    /// Finishes an admitted attempt that failed.
    pub fn failure(&self, keys: &[(String, u32)]) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (key, limit) in keys {
            let e = entries
                .entry(key.clone())
                .or_insert_with(|| Entry::new(now));
            e.in_flight = e.in_flight.saturating_sub(1);
            e.failures += 1;
            if e.failures >= *limit {
                let doublings = (e.failures - limit).min(10);
                let lock = (BASE_LOCK * 2u32.pow(doublings)).min(MAX_LOCK);
                e.locked_until = Some(now + lock);
            }
        }
    }

    /// Finishes an admitted attempt that succeeded: the account's failures are forgotten.
    pub fn success(&self, keys: &[(String, u32)]) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (n, (key, _)) in keys.iter().enumerate() {
            if n == 0 {
                entries.remove(key);
            } else if let Some(e) = entries.get_mut(key) {
                e.in_flight = e.in_flight.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt_fails(t: &LoginThrottle, k: &[(String, u32)]) -> Result<(), Duration> {
        t.admit(k)?;
        t.failure(k);
        Ok(())
    }

    #[test]
    fn an_account_locks_after_five_failures_and_a_success_clears_it() {
        let t = LoginThrottle::default();
        let k = keys("Alice", Some("10.0.0.1"));
        for _ in 0..5 {
            assert!(attempt_fails(&t, &k).is_ok());
        }
        let wait = t.admit(&k).expect_err("locked");
        assert!(wait <= BASE_LOCK && wait > BASE_LOCK / 2);
        // A success clears the account (it was admitted before the lock in real life).
        t.success(&keys("alice", None));
        assert!(t.admit(&keys("alice", None)).is_ok());
    }

    #[test]
    fn concurrent_attempts_count_against_the_limit_before_they_finish() {
        let t = LoginThrottle::default();
        let k = keys("bob", None);
        for _ in 0..5 {
            assert!(t.admit(&k).is_ok());
        }
        assert!(
            t.admit(&k).is_err(),
            "a sixth guess waits while five are checked"
        );
        for _ in 0..5 {
            t.failure(&k);
        }
        assert!(t.admit(&k).expect_err("locked") > Duration::from_secs(1));
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: std::net::IpAddr = [10, 0, 0, 9].into();
        let client: std::net::IpAddr = [203, 0, 113, 7].into();
        let header = Some("198.51.100.1, 203.0.113.7");
        assert_eq!(
            client_address(Some(client), header, &[proxy]),
            Some(client),
            "an untrusted peer is the client"
        );
        assert_eq!(
            client_address(Some(proxy), header, &[proxy]),
            Some(client),
            "the nearest hop the proxy saw"
        );
        assert_eq!(client_address(Some(proxy), None, &[proxy]), Some(proxy));
    }

    #[test]
    fn an_address_locks_after_twenty_failures_across_accounts() {
        let t = LoginThrottle::default();
        for i in 0..20 {
            assert!(attempt_fails(&t, &keys(&format!("user{i}"), Some("10.0.0.2"))).is_ok());
        }
        assert!(t.admit(&keys("someone-else", Some("10.0.0.2"))).is_err());
        assert!(t.admit(&keys("someone-else", Some("10.0.0.3"))).is_ok());
    }
}
