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

/// The keys one attempt counts against: the account (first) and the client address. A name
/// that cannot be an account's is not remembered (it would only fill memory).
pub fn keys(username: &str, address: Option<&str>) -> Vec<(String, u32)> {
    let mut keys = Vec::with_capacity(2);
    if shipshape_domain::role::check_username(username).is_ok() {
        keys.push((format!("user:{}", username.to_lowercase()), ACCOUNT_LIMIT));
    }
    if let Some(a) = address {
        keys.push((format!("addr:{a}"), ADDRESS_LIMIT));
    }
    keys
}

impl LoginThrottle {
    /// Admits one attempt, or says how long to wait. The attempt is finished through the
    /// returned [`Admission`]: `failed()` counts it, `succeeded()` clears the account, and
    /// dropping it (the attempt could not be judged, e.g. the database was down) only
    /// releases it.
    pub fn admit(&self, keys: Vec<(String, u32)>) -> Result<Admission<'_>, Duration> {
        self.admit_at(keys, Instant::now())
    }

    fn admit_at(&self, keys: Vec<(String, u32)>, now: Instant) -> Result<Admission<'_>, Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > MAX_ENTRIES {
            entries.retain(|_, e| {
                e.in_flight > 0 || now - e.first < WINDOW || e.locked_until.is_some_and(|u| u > now)
            });
        }
        let mut wait = None;
        for (key, limit) in &keys {
            let Some(e) = entries.get_mut(key) else {
                continue;
            };
            let unlocked = e.locked_until.is_none_or(|u| u <= now);
            // A quiet window forgets earlier failures.
            if unlocked && e.in_flight == 0 && now - e.first >= WINDOW {
                *e = Entry::new(now);
                continue;
            }
            if let Some(until) = e.locked_until.filter(|u| *u > now) {
                wait = wait.max(Some(until - now));
            } else if e.failures >= *limit {
                // The lock has passed: one attempt at a time, and a failure locks again,
                // for longer.
                if e.in_flight > 0 {
                    wait = wait.max(Some(Duration::from_secs(1)));
                }
            } else if e.failures + e.in_flight >= *limit {
                // Others' attempts on this key are still being checked.
                wait = wait.max(Some(Duration::from_secs(1)));
            }
        }
        if let Some(w) = wait {
            return Err(w);
        }
        for (key, _) in &keys {
            entries
                .entry(key.clone())
                .or_insert_with(|| Entry::new(now))
                .in_flight += 1;
        }
        Ok(Admission {
            throttle: self,
            keys,
            done: false,
        })
    }

    fn finish(&self, keys: &[(String, u32)], outcome: Option<bool>, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (key, limit) in keys {
            let Some(e) = entries.get_mut(key) else {
                continue;
            };
            e.in_flight = e.in_flight.saturating_sub(1);
            match outcome {
                Some(false) => {
                    e.failures += 1;
                    if e.failures >= *limit {
                        let doublings = (e.failures - limit).min(10);
                        e.locked_until =
                            Some(now + (BASE_LOCK * 2u32.pow(doublings)).min(MAX_LOCK));
                    }
                }
                // Success clears the account, not the address: an attacker cannot wipe an
                // address's count by signing in to an account of their own.
                Some(true) if key.starts_with("user:") && e.in_flight == 0 => {
                    entries.remove(key);
                }
                Some(true) | None => {}
            }
        }
    }
}

/// One admitted login attempt.
#[derive(Debug)]
pub struct Admission<'a> {
    throttle: &'a LoginThrottle,
    keys: Vec<(String, u32)>,
    done: bool,
}

impl Admission<'_> {
    /// The credentials were wrong.
    pub fn failed(mut self) {
        self.done = true;
        self.throttle
            .finish(&self.keys, Some(false), Instant::now());
    }

    /// The credentials were right.
    pub fn succeeded(mut self) {
        self.done = true;
        self.throttle.finish(&self.keys, Some(true), Instant::now());
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.throttle.finish(&self.keys, None, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail_at(t: &LoginThrottle, k: &[(String, u32)], now: Instant) -> Result<(), Duration> {
        let a = t.admit_at(k.to_vec(), now)?;
        std::mem::forget(a);
        t.finish(k, Some(false), now);
        Ok(())
    }

    #[test]
    fn an_account_locks_after_five_failures_then_lets_one_attempt_through_when_the_lock_ends() {
        let t = LoginThrottle::default();
        let k = keys("Alice", Some("10.0.0.1"));
        let start = Instant::now();
        for _ in 0..5 {
            assert!(fail_at(&t, &k, start).is_ok());
        }
        let wait = t.admit_at(k.clone(), start).expect_err("locked");
        assert!(wait <= BASE_LOCK && wait > BASE_LOCK / 2);
        // After the lock: one attempt; failing it locks again, for twice as long.
        let later = start + BASE_LOCK + Duration::from_secs(1);
        assert!(fail_at(&t, &k, later).is_ok());
        let wait = t.admit_at(k.clone(), later).expect_err("locked again");
        assert!(wait > BASE_LOCK, "the lock doubles: {wait:?}");
        // A success after that lock clears the account.
        let much_later = later + 2 * BASE_LOCK + Duration::from_secs(1);
        let a = t.admit_at(k.clone(), much_later).expect("admitted");
        a.succeeded();
        assert!(t.admit_at(keys("alice", None), much_later).is_ok());
    }

    #[test]
    fn a_quiet_window_forgets_failures() {
        let t = LoginThrottle::default();
        let k = keys("carol", None);
        let start = Instant::now();
        for _ in 0..4 {
            assert!(fail_at(&t, &k, start).is_ok());
        }
        let later = start + WINDOW + Duration::from_secs(1);
        for _ in 0..4 {
            assert!(
                fail_at(&t, &k, later).is_ok(),
                "four more are fine after the window"
            );
        }
    }

    #[test]
    fn concurrent_attempts_count_against_the_limit_and_unjudged_ones_are_released() {
        let t = LoginThrottle::default();
        let k = keys("bob", None);
        let held: Vec<_> = (0..5)
            .map(|_| t.admit(k.clone()).expect("admitted"))
            .collect();
        assert!(
            t.admit(k.clone()).is_err(),
            "a sixth guess waits while five are checked"
        );
        drop(held);
        assert!(
            t.admit(k.clone()).is_ok(),
            "attempts that were never judged do not count"
        );
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
        let now = Instant::now();
        for i in 0..20 {
            assert!(fail_at(&t, &keys(&format!("user{i}"), Some("10.0.0.2")), now).is_ok());
        }
        assert!(t.admit(keys("someone-else", Some("10.0.0.2"))).is_err());
        assert!(t.admit(keys("someone-else", Some("10.0.0.3"))).is_ok());
    }

    #[test]
    fn names_that_cannot_be_accounts_are_not_remembered() {
        assert_eq!(keys(&"x".repeat(1000), None).len(), 0);
        assert_eq!(keys("ok-name", Some("10.0.0.4")).len(), 2);
    }
}
