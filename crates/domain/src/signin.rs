//! The sign-in guard's rules: how failed sign-ins lock an account and slow an address.
//!
//! Modelled on what identity servers do (Keycloak's brute-force detection, Okta's and
//! ASP.NET Identity's lockouts), so that guessing is slow and one noisy client cannot keep
//! everyone else out:
//!
//! - **Per account**: after [`ACCOUNT_LIMIT`] failures, each within [`WINDOW`] of the last
//!   attempt, the account is locked
//!   for [`BASE_LOCK`]; when the lock ends one attempt at a time may try, and each further
//!   failure doubles the lock, up to [`MAX_LOCK`]. A success clears the account. While
//!   locked, even the right password waits (that is what stops a guesser).
//! - **Per client address**: after [`ADDRESS_LIMIT`] failures counted the same way, attempts
//!   from the address are no longer refused but *paced*: each waits for its own turn, the
//!   turns [`address_pace`] apart, so guesses from one address come one at a time however
//!   many are sent at once. Only when the queue is longer than [`MAX_WAIT`] is an attempt
//!   refused (`429` with the time to wait). Someone else behind the same address (a shared
//!   proxy) is slowed, not locked out, and their account is not touched.
//!
//! Attempts count when they are admitted, not when they are judged, so a burst of parallel
//! guesses cannot slip in before the first failures are recorded; an attempt that could not
//! be judged (the database was down) is given back. The state is a [`Counter`] per key,
//! kept by the store, so it survives restarts and is shared by every instance on one
//! database. Everything here is pure: the store loads the counters, calls these functions
//! and writes what they return, in one transaction.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Failures are forgotten after this long without an attempt.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures per account before it is locked.
pub const ACCOUNT_LIMIT: u32 = 5;
/// Failures per client address before its attempts are paced.
pub const ADDRESS_LIMIT: u32 = 20;
/// The first lock of an account; each further failure doubles it.
pub const BASE_LOCK: Duration = Duration::from_secs(30);
/// The longest lock of an account.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// How long an attempt of a locked-out account, admitted when its lock ended, keeps others
/// waiting while it is judged.
const PROBE_HOLD: Duration = Duration::from_secs(5);
/// The longest an attempt waits for its turn from a paced address; beyond that it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// Attempts still being judged after this long never will be (their process died): they
/// count as failures when the next attempt comes.
const JUDGING_GRACE: Duration = Duration::from_secs(30);

/// The time between two attempts from an address with `over` failures past its limit: one
/// second, growing by a second for every five more failures, up to five seconds.
pub fn address_pace(over: u32) -> Duration {
    Duration::from_secs(u64::from(1 + over / 5).min(5))
}

/// What a sign-in attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GuardKey {
    /// An account, by its user name in lower case.
    Account(String),
    /// A client address.
    Address(String),
}

impl GuardKey {
    /// The account key of an attempt, when the name could be an account's (other names are
    /// not remembered: they would only fill the table).
    pub fn account(username: &str) -> Option<GuardKey> {
        crate::text::Username::is_valid(username)
            .then(|| GuardKey::Account(username.to_lowercase()))
    }

    /// The address key of an attempt. An IPv6 client is counted by its /64 network: one host
    /// commonly holds a whole /64, and would otherwise get a fresh count per address.
    pub fn address(address: std::net::IpAddr) -> GuardKey {
        match address {
            std::net::IpAddr::V4(a) => GuardKey::Address(a.to_string()),
            std::net::IpAddr::V6(a) => {
                let network = u128::from(a) & !((1u128 << 64) - 1);
                let network = std::net::Ipv6Addr::from(network);
                GuardKey::Address(format!("{network}/64"))
            }
        }
    }

    /// The stored form: `user:NAME` or `addr:ADDRESS`.
    pub fn stored(&self) -> String {
        match self {
            GuardKey::Account(name) => format!("user:{name}"),
            GuardKey::Address(a) => format!("addr:{a}"),
        }
    }
}

/// What is remembered of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Attempts admitted in the window that did not succeed: failures, and attempts still
    /// being judged.
    pub attempts: u32,
    /// When the last attempt was admitted: the count is forgotten after a [`WINDOW`] without
    /// any.
    pub last_attempt: DateTime<Utc>,
    /// Accounts: locked until then.
    pub locked_until: Option<DateTime<Utc>>,
    /// Addresses: the next free turn.
    pub next_turn: Option<DateTime<Utc>>,
}

impl Counter {
    fn fresh(now: DateTime<Utc>) -> Counter {
        Counter {
            attempts: 0,
            last_attempt: now,
            locked_until: None,
            next_turn: None,
        }
    }

    /// The counter as it stands at `now`: a window that has passed quietly is forgotten.
    fn current(self, now: DateTime<Utc>) -> Counter {
        // Quiet since the last attempt, or since the end of the lock or the last turn.
        let last = [self.locked_until, self.next_turn]
            .into_iter()
            .flatten()
            .fold(self.last_attempt, DateTime::max);
        let quiet = now - last >= delta(WINDOW);
        if quiet { Counter::fresh(now) } else { self }
    }

    /// Whether the counter holds nothing worth keeping at `now` (it may be deleted).
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        self.current(now).attempts == 0
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn seconds(d: TimeDelta) -> Duration {
    d.to_std().unwrap_or(Duration::ZERO)
}

/// The answer to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead, after waiting this long for the address's turn (zero when not paced).
    Go {
        /// The wait before the credentials are checked.
        wait: Duration,
    },
    /// Refused: try again after this long.
    Refused {
        /// The time to wait.
        retry_after: Duration,
    },
}

/// Admits an attempt on one key: the answer, and the counter to store when every key of the
/// attempt admits it.
pub fn admit(key: &GuardKey, counter: Option<Counter>, now: DateTime<Utc>) -> (Admission, Counter) {
    let c = counter.map_or(Counter::fresh(now), |c| c.current(now));
    match key {
        GuardKey::Account(_) => admit_account(c, now),
        GuardKey::Address(_) => admit_address(c, now),
    }
}

fn admit_account(mut c: Counter, now: DateTime<Utc>) -> (Admission, Counter) {
    if let Some(until) = c.locked_until.filter(|u| *u > now) {
        let retry_after = seconds(until - now);
        return (Admission::Refused { retry_after }, c);
    }
    if c.attempts >= ACCOUNT_LIMIT {
        if c.locked_until.is_none() && now - c.last_attempt < delta(JUDGING_GRACE) {
            // The limit is reached by attempts still being judged: wait for their verdicts.
            let retry_after = Duration::from_secs(1);
            return (Admission::Refused { retry_after }, c);
        }
        // The lock has ended (or the attempts that reached the limit were never judged): one
        // attempt may try; others wait while it is judged.
        c.locked_until = Some(now + delta(PROBE_HOLD));
    }
    c.attempts += 1;
    c.last_attempt = now;
    (
        Admission::Go {
            wait: Duration::ZERO,
        },
        c,
    )
}

fn admit_address(mut c: Counter, now: DateTime<Utc>) -> (Admission, Counter) {
    if c.attempts < ADDRESS_LIMIT {
        c.attempts += 1;
        c.last_attempt = now;
        return (
            Admission::Go {
                wait: Duration::ZERO,
            },
            c,
        );
    }
    let turn = c.next_turn.filter(|t| *t > now).unwrap_or(now);
    let wait = seconds(turn - now);
    if wait > MAX_WAIT {
        return (Admission::Refused { retry_after: wait }, c);
    }
    c.next_turn = Some(turn + delta(address_pace(c.attempts - ADDRESS_LIMIT)));
    c.attempts += 1;
    c.last_attempt = now;
    (Admission::Go { wait }, c)
}

/// How an admitted attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials were right.
    Succeeded,
    /// The credentials were wrong.
    Failed,
    /// They could not be judged (the database did not answer): the attempt is given back.
    Unjudged,
}

/// A lock that an attempt's failure started, for the log and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockStarted {
    /// Failures in the window so far.
    pub failures: u32,
    /// Until when.
    pub until: DateTime<Utc>,
}

/// Records how an attempt ended on one key: the counter to store (`None`: delete it) and,
/// when this failure locked an account, the lock.
pub fn finish(
    key: &GuardKey,
    counter: Option<Counter>,
    verdict: Verdict,
    now: DateTime<Utc>,
) -> (Option<Counter>, Option<LockStarted>) {
    // The attempt was counted when admitted; a counter already gone (pruned, or cleared by a
    // success) has nothing to give back.
    let Some(mut c) = counter else {
        return (None, None);
    };
    match (key, verdict) {
        // A success clears the account, not the address: signing in to an account of one's
        // own must not wipe out the failures an address has piled up on others.
        (GuardKey::Account(_), Verdict::Succeeded) => (None, None),
        (GuardKey::Account(_), Verdict::Failed) => {
            if c.attempts < ACCOUNT_LIMIT {
                return (Some(c), None);
            }
            // A lock is already running when parallel attempts reached the limit together: the
            // later failures keep it, and it is reported once.
            let running = c.locked_until.is_some_and(|u| u > now + delta(PROBE_HOLD));
            let doublings = (c.attempts - ACCOUNT_LIMIT).min(10);
            let lock = (BASE_LOCK * 2u32.pow(doublings)).min(MAX_LOCK);
            let until = c
                .locked_until
                .into_iter()
                .fold(now + delta(lock), DateTime::max);
            c.locked_until = Some(until);
            let started = (!running).then_some(LockStarted {
                failures: c.attempts,
                until,
            });
            (Some(c), started)
        }
        (GuardKey::Account(_), Verdict::Unjudged) => {
            c.attempts = c.attempts.saturating_sub(1);
            // A probe that could not be judged frees its hold at once.
            if c.locked_until
                .is_some_and(|u| u > now && u - now <= delta(PROBE_HOLD))
            {
                c.locked_until = Some(now);
            }
            (Some(c), None)
        }
        (GuardKey::Address(_), Verdict::Failed) => (Some(c), None),
        (GuardKey::Address(_), Verdict::Succeeded | Verdict::Unjudged) => {
            c.attempts = c.attempts.saturating_sub(1);
            (Some(c), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn secs(n: i64) -> TimeDelta {
        TimeDelta::seconds(n)
    }

    /// One whole attempt on one key: admitted (or not), then judged.
    fn attempt(
        key: &GuardKey,
        c: Option<Counter>,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> (Admission, Option<Counter>, Option<LockStarted>) {
        let (a, admitted) = admit(key, c, now);
        match a {
            Admission::Go { .. } => {
                let (c, lock) = finish(key, Some(admitted), verdict, now);
                (a, c, lock)
            }
            Admission::Refused { .. } => (a, c, None),
        }
    }

    fn account() -> GuardKey {
        GuardKey::Account("alice".into())
    }

    fn address() -> GuardKey {
        GuardKey::Address("203.0.113.7".into())
    }

    #[test]
    fn an_account_locks_at_the_fifth_failure_and_says_so_once() {
        let mut c = None;
        for n in 1..=ACCOUNT_LIMIT {
            let (a, next, lock) = attempt(&account(), c, Verdict::Failed, t0());
            assert!(matches!(a, Admission::Go { .. }));
            assert_eq!(lock.is_some(), n == ACCOUNT_LIMIT, "failure {n}");
            c = next;
        }
        let (a, _) = admit(&account(), c, t0() + secs(1));
        assert_eq!(
            a,
            Admission::Refused {
                retry_after: BASE_LOCK - Duration::from_secs(1)
            },
            "even the right password waits for the lock"
        );
    }

    #[test]
    fn after_a_lock_one_attempt_may_try_and_each_failure_doubles_the_lock() {
        let mut c = None;
        for _ in 0..ACCOUNT_LIMIT {
            c = attempt(&account(), c, Verdict::Failed, t0()).1;
        }
        let after = t0() + delta(BASE_LOCK) + secs(1);
        let (a, held) = admit(&account(), c, after);
        assert_eq!(
            a,
            Admission::Go {
                wait: Duration::ZERO
            }
        );
        let (second, _) = admit(&account(), Some(held), after);
        assert!(
            matches!(second, Admission::Refused { .. }),
            "a second attempt waits while the first is judged"
        );
        let (c, lock) = finish(&account(), Some(held), Verdict::Failed, after);
        assert_eq!(lock.map(|l| l.until), Some(after + delta(BASE_LOCK * 2)));
        // Doubling stops at the cap.
        let mut c = c;
        let mut now = after;
        let mut last = None;
        for _ in 0..12 {
            now = c.and_then(|c| c.locked_until).unwrap_or(now) + secs(1);
            let (_, next, lock) = attempt(&account(), c, Verdict::Failed, now);
            c = next;
            last = lock;
        }
        assert_eq!(last.map(|l| l.until - now), Some(delta(MAX_LOCK)));
    }

    #[test]
    fn a_success_clears_the_account_but_not_the_address() {
        let (_, c, _) = attempt(&account(), None, Verdict::Failed, t0());
        assert_eq!(finish(&account(), c, Verdict::Succeeded, t0()).0, None);
        let (_, addr) = admit(&address(), None, t0());
        let (addr, _) = finish(&address(), Some(addr), Verdict::Failed, t0());
        let (_, again) = admit(&address(), addr, t0());
        let (kept, _) = finish(&address(), Some(again), Verdict::Succeeded, t0());
        assert_eq!(
            kept.map(|c| c.attempts),
            Some(1),
            "the earlier failure stays"
        );
    }

    #[test]
    fn parallel_attempts_count_when_admitted_and_unjudged_ones_are_given_back() {
        let mut c = None;
        let mut held = Vec::new();
        for _ in 0..ACCOUNT_LIMIT {
            let (a, next) = admit(&account(), c, t0());
            assert!(matches!(a, Admission::Go { .. }));
            held.push(next);
            c = Some(next);
        }
        let (sixth, _) = admit(&account(), c, t0());
        assert_eq!(
            sixth,
            Admission::Refused {
                retry_after: Duration::from_secs(1)
            },
            "a sixth guess waits while five are judged"
        );
        let (c, _) = finish(&account(), c, Verdict::Unjudged, t0());
        let (a, _) = admit(&account(), c, t0());
        assert!(
            matches!(a, Admission::Go { .. }),
            "an attempt that was never judged does not count"
        );
    }

    #[test]
    fn a_quiet_window_forgets_failures() {
        let mut c = None;
        for _ in 0..ACCOUNT_LIMIT - 1 {
            c = attempt(&account(), c, Verdict::Failed, t0()).1;
        }
        let later = t0() + delta(WINDOW) + secs(1);
        assert!(c.is_some_and(|c| c.is_stale(later)));
        let (a, next) = admit(&account(), c, later);
        assert!(matches!(a, Admission::Go { .. }));
        assert_eq!(next.attempts, 1);
    }

    #[test]
    fn an_address_past_its_limit_is_paced_not_refused() {
        let mut c = None;
        for _ in 0..ADDRESS_LIMIT {
            let (a, next, _) = attempt(&address(), c, Verdict::Failed, t0());
            assert_eq!(
                a,
                Admission::Go {
                    wait: Duration::ZERO
                }
            );
            c = next;
        }
        // Five attempts sent at once: each gets its own turn, a pace apart.
        let mut waits = Vec::new();
        for _ in 0..5 {
            let (a, next) = admit(&address(), c, t0());
            let Admission::Go { wait } = a else {
                panic!("paced, not refused: {a:?}")
            };
            waits.push(wait.as_secs());
            c = Some(next);
        }
        assert_eq!(waits, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn an_address_is_refused_only_when_its_queue_is_longer_than_the_longest_wait() {
        let mut c = None;
        for _ in 0..ADDRESS_LIMIT {
            c = attempt(&address(), c, Verdict::Failed, t0()).1;
        }
        let mut refused = None;
        for n in 0..40 {
            let (a, next) = admit(&address(), c, t0());
            match a {
                Admission::Go { wait } => assert!(wait <= MAX_WAIT),
                Admission::Refused { retry_after } => {
                    assert!(retry_after > MAX_WAIT);
                    refused = Some(n);
                    break;
                }
            }
            c = Some(next);
        }
        assert!(refused.is_some_and(|n| n > 5), "refused after {refused:?}");
    }

    #[test]
    fn the_pace_grows_with_the_failures_up_to_five_seconds() {
        assert_eq!(address_pace(0), Duration::from_secs(1));
        assert_eq!(address_pace(5), Duration::from_secs(2));
        assert_eq!(address_pace(1000), Duration::from_secs(5));
    }

    #[test]
    fn names_that_cannot_be_accounts_are_not_remembered() {
        assert_eq!(GuardKey::account(&"x".repeat(1000)), None);
        assert_eq!(
            GuardKey::account("Ok-Name"),
            Some(GuardKey::Account("ok-name".into()))
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_network() {
        let a = GuardKey::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = GuardKey::address("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, GuardKey::Address("2001:db8:1:2::/64".into()));
        assert_ne!(a, GuardKey::address("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(
            GuardKey::address("10.0.0.4".parse().unwrap()),
            GuardKey::Address("10.0.0.4".into())
        );
    }

    #[test]
    fn parallel_failures_that_reach_the_limit_together_report_one_lock() {
        let mut c = None;
        for _ in 0..ACCOUNT_LIMIT {
            c = Some(admit(&account(), c, t0()).1);
        }
        let mut reports = 0;
        for _ in 0..ACCOUNT_LIMIT {
            let (next, lock) = finish(&account(), c, Verdict::Failed, t0());
            reports += usize::from(lock.is_some());
            c = next;
        }
        assert_eq!(reports, 1);
    }

    #[test]
    fn attempts_never_judged_do_not_hold_the_account_forever() {
        // Five attempts admitted, and the process that judged them died.
        let mut c = None;
        for _ in 0..ACCOUNT_LIMIT {
            c = Some(admit(&account(), c, t0()).1);
        }
        assert!(matches!(
            admit(&account(), c, t0() + secs(1)).0,
            Admission::Refused { .. }
        ));
        let later = t0() + delta(JUDGING_GRACE) + secs(1);
        let (a, held) = admit(&account(), c, later);
        assert!(matches!(a, Admission::Go { .. }), "one attempt may try");
        assert!(matches!(
            admit(&account(), Some(held), later).0,
            Admission::Refused { .. }
        ));
    }
}
