//! In-memory copies of what the database holds (who a credential belongs to, a run as the
//! API serves it), kept exactly as fresh as the bus can make them.
//!
//! Every commit that changes what a copy was made from signals it (in process at once, after
//! the commit and before the writer answers; from other instances through PostgreSQL's
//! `NOTIFY`). A signal does not delete copies: it moves a counter on and records, for the key
//! it names, the counter's new value. A copy is made with the counter's value read *before*
//! the database was read (its ticket) and is good only while nothing it depends on changed
//! after that ticket. So a read that raced a change never becomes a copy, and a copy never
//! outlives a change it heard of. While the bus cannot hear other instances (the listening
//! connection is lost, or not yet up), no copy is used or made.
//!
//! Pages of the run list are kept differently ([`Versioned`]): each with the all-runs log
//! position it was read at, used only when the database still says that position. That costs
//! one small read, but holds whatever wrote the database (another instance, a seeding command).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex};

use chrono::{DateTime, Utc};

/// What a copy depends on beyond its own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depends {
    /// Only on its own key (and on changes to everything).
    Own,
    /// Also on every change of any key (e.g. a planned run's view: other runs and the
    /// environment decide what may start).
    Any,
}

struct Entry<V> {
    /// The key whose changes end this copy.
    owner: String,
    ticket: u64,
    depends: Depends,
    /// The copy ends then (something it shows depends on the time), if at all.
    until: Option<DateTime<Utc>>,
    value: V,
    /// When it was last used (for eviction): the counter of uses.
    used: u64,
}

struct Inner<K, V> {
    enabled: bool,
    counter: u64,
    /// Copies with tickets below this are void (everything changed, or the change record
    /// below was forgotten).
    floor: u64,
    /// The counter at the last change of each key (bounded: forgetting raises `floor`).
    changed: HashMap<String, u64>,
    /// The counter at the last change of any key.
    any: u64,
    entries: HashMap<K, Entry<V>>,
    uses: u64,
}

/// A bounded map of copies, each valid until something it depends on changes.
pub struct Cache<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
}

impl<K, V> std::fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Change records kept per key before they are folded into the floor.
const CHANGES_KEPT: usize = 4096;

impl<K: Hash + Eq + Clone, V: Clone> Cache<K, V> {
    /// An empty cache holding up to `capacity` copies, disabled until [`Cache::enable`].
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                enabled: false,
                counter: 0,
                floor: 0,
                changed: HashMap::new(),
                any: 0,
                entries: HashMap::new(),
                uses: 0,
            }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts (or stops) using copies. Either way, every copy made so far is void.
    pub fn enable(&self, on: bool) {
        let mut inner = self.lock();
        inner.enabled = on;
        void_all(&mut inner);
    }

    /// The ticket to make a copy with: take it before reading the database.
    pub fn ticket(&self) -> Option<u64> {
        let inner = self.lock();
        inner.enabled.then_some(inner.counter)
    }

    /// A valid copy under `key`, at `now`.
    pub fn get(&self, key: &K, now: DateTime<Utc>) -> Option<V> {
        let mut inner = self.lock();
        if !inner.enabled {
            return None;
        }
        inner.uses += 1;
        let uses = inner.uses;
        let inner = &mut *inner;
        let entry = inner.entries.get_mut(key)?;
        let good = valid(
            inner.floor,
            inner.any,
            &inner.changed,
            &entry.owner,
            entry.ticket,
            entry.depends,
        ) && entry.until.is_none_or(|until| now < until);
        if good {
            entry.used = uses;
            Some(entry.value.clone())
        } else {
            inner.entries.remove(key);
            None
        }
    }

    /// Keeps a copy read after `ticket` was taken, unless something it depends on changed
    /// since (then it is dropped: the next reader reads again).
    pub fn put(
        &self,
        key: K,
        owner: &str,
        ticket: u64,
        depends: Depends,
        until: Option<DateTime<Utc>>,
        value: V,
    ) {
        let mut inner = self.lock();
        if !inner.enabled
            || !valid(
                inner.floor,
                inner.any,
                &inner.changed,
                owner,
                ticket,
                depends,
            )
        {
            return;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            // Evict the copy used least recently.
            if let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            {
                inner.entries.remove(&oldest);
            }
        }
        inner.uses += 1;
        let used = inner.uses;
        inner.entries.insert(
            key,
            Entry {
                owner: owner.to_owned(),
                ticket,
                depends,
                until,
                value,
                used,
            },
        );
    }

    /// What was read of `owner` changed: its copies (and those depending on any change) are
    /// void.
    pub fn changed(&self, owner: &str) {
        let mut inner = self.lock();
        inner.counter += 1;
        let counter = inner.counter;
        inner.any = counter;
        if inner.changed.len() >= CHANGES_KEPT && !inner.changed.contains_key(owner) {
            void_all(&mut inner);
            return;
        }
        inner.changed.insert(owner.to_owned(), counter);
    }

    /// Anything may have changed: every copy is void.
    pub fn changed_all(&self) {
        void_all(&mut self.lock());
    }

    /// Copies held now (valid or not yet found void).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no copy is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn void_all<K, V>(inner: &mut Inner<K, V>) {
    inner.counter += 1;
    inner.floor = inner.counter;
    inner.any = inner.counter;
    inner.changed.clear();
    inner.entries.clear();
}

fn valid(
    floor: u64,
    any: u64,
    changed: &HashMap<String, u64>,
    owner: &str,
    ticket: u64,
    depends: Depends,
) -> bool {
    ticket >= floor
        && changed.get(owner).is_none_or(|at| ticket >= *at)
        && (depends == Depends::Own || ticket >= any)
}

/// A bounded map of copies, each made at a version of what it was read from (e.g. the
/// all-runs log position): a copy is good only for a reader that has just read the same
/// version from the database. Unlike [`Cache`] it needs no signal, so it holds across
/// instances and processes; it saves the work of a read, not its round trip.
pub struct Versioned<K, V> {
    inner: Mutex<HashMap<K, (i64, V, u64)>>,
    uses: std::sync::atomic::AtomicU64,
    capacity: usize,
    /// The copies being made now, each by one caller; others wanting it wait for that one.
    making: Mutex<HashMap<K, Arc<Making>>>,
}

/// A copy being made: done once its maker has finished (kept a copy or failed).
#[derive(Default)]
struct Making {
    done: Mutex<bool>,
    finished: Condvar,
}

/// How long a caller waits for another's copy before making its own.
const WAIT_FOR_MAKER: std::time::Duration = std::time::Duration::from_secs(5);

impl<K, V> std::fmt::Debug for Versioned<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Versioned")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Versioned<K, V> {
    /// An empty map holding up to `capacity` copies.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(HashMap::new()),
            uses: std::sync::atomic::AtomicU64::new(0),
            capacity: capacity.max(1),
            making: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (i64, V, u64)>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tick(&self) -> u64 {
        self.uses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(1)
    }

    /// The copy under `key` if it was made at `version`.
    pub fn get(&self, key: &K, version: i64) -> Option<V> {
        let used = self.tick();
        let mut inner = self.lock();
        let entry = inner.get_mut(key)?;
        if entry.0 != version {
            return None;
        }
        entry.2 = used;
        Some(entry.1.clone())
    }

    /// The copy under `key` made at `version`; else the one `make` makes (with the version
    /// it read at), kept. Callers missing the same key at once wait for one of them
    /// to make it, rather than each doing the same work at the same time (a page kept by
    /// many readers, after a change, is read once). Blocks: call it off the executor.
    pub fn get_or_make<E>(
        &self,
        key: &K,
        version: i64,
        make: impl FnOnce() -> Result<(i64, V), E>,
    ) -> Result<V, E> {
        if let Some(v) = self.get(key, version) {
            return Ok(v);
        }
        let other = {
            let mut making = self.making.lock().unwrap_or_else(|e| e.into_inner());
            match making.get(key) {
                Some(m) => Some(m.clone()),
                None => {
                    making.insert(key.clone(), Arc::default());
                    None
                }
            }
        };
        // Whatever happens to `make`, the callers waiting for this one are let go.
        let _finish = match other {
            Some(other) => {
                let done = other.done.lock().unwrap_or_else(|e| e.into_inner());
                // Let go at once: the others woken with this one re-check the copy in parallel.
                drop(
                    other
                        .finished
                        .wait_timeout_while(done, WAIT_FOR_MAKER, |done| !*done)
                        .unwrap_or_else(|e| e.into_inner()),
                );
                None
            }
            None => Some(Finish { map: self, key }),
        };
        // Made meanwhile by the other, or by one that finished just before this began. If
        // not (the other failed, or read at another version), it is made here.
        if let Some(v) = self.get(key, version) {
            return Ok(v);
        }
        let (made_at, v) = make()?;
        self.put(key.clone(), made_at, v.clone());
        Ok(v)
    }

    /// Keeps `value`, read at `version`, unless a copy of a later version is kept already.
    pub fn put(&self, key: K, version: i64, value: V) {
        let used = self.tick();
        let mut inner = self.lock();
        if inner.get(&key).is_some_and(|e| e.0 > version) {
            return;
        }
        if inner.len() >= self.capacity
            && !inner.contains_key(&key)
            && let Some(oldest) = inner
                .iter()
                .min_by_key(|(_, e)| e.2)
                .map(|(k, _)| k.clone())
        {
            inner.remove(&oldest);
        }
        inner.insert(key, (version, value, used));
    }
}

/// Ends a making: removes it and wakes those waiting for it (on return, error or panic).
struct Finish<'a, K: Hash + Eq, V> {
    map: &'a Versioned<K, V>,
    key: &'a K,
}

impl<K: Hash + Eq, V> Drop for Finish<'_, K, V> {
    fn drop(&mut self) {
        let making = self
            .map
            .making
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.key);
        if let Some(m) = making {
            *m.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
            m.finished.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Cache<String, u32> {
        let c = Cache::new(2);
        c.enable(true);
        c
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn a_copy_is_served_until_its_owner_changes() {
        let c = cache();
        let t = c.ticket().unwrap();
        c.put("a".into(), "run-a", t, Depends::Own, None, 1);
        assert_eq!(c.get(&"a".into(), now()), Some(1));
        c.changed("run-b");
        assert_eq!(c.get(&"a".into(), now()), Some(1), "another run's change");
        c.changed("run-a");
        assert_eq!(c.get(&"a".into(), now()), None);
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let c = cache();
        let t = c.ticket().unwrap();
        // The database is read here, and meanwhile the run changes.
        c.changed("run-a");
        c.put("a".into(), "run-a", t, Depends::Own, None, 1);
        assert_eq!(c.get(&"a".into(), now()), None);
        // A read begun after the change is kept.
        let t = c.ticket().unwrap();
        c.put("a".into(), "run-a", t, Depends::Own, None, 2);
        assert_eq!(c.get(&"a".into(), now()), Some(2));
    }

    #[test]
    fn a_copy_depending_on_any_change_ends_with_any_change() {
        let c = cache();
        let t = c.ticket().unwrap();
        c.put("a".into(), "run-a", t, Depends::Any, None, 1);
        c.changed("run-b");
        assert_eq!(c.get(&"a".into(), now()), None);
    }

    #[test]
    fn everything_changing_or_turning_off_voids_every_copy() {
        let c = cache();
        let t = c.ticket().unwrap();
        c.put("a".into(), "run-a", t, Depends::Own, None, 1);
        c.changed_all();
        assert_eq!(c.get(&"a".into(), now()), None);
        c.put("a".into(), "run-a", t, Depends::Own, None, 1);
        assert_eq!(c.get(&"a".into(), now()), None, "an old ticket is void");
        let t = c.ticket().unwrap();
        c.put("a".into(), "run-a", t, Depends::Own, None, 1);
        c.enable(false);
        assert_eq!(c.ticket(), None);
        assert_eq!(c.get(&"a".into(), now()), None);
        c.enable(true);
        assert_eq!(
            c.get(&"a".into(), now()),
            None,
            "turning on again starts empty"
        );
    }

    #[test]
    fn a_copy_ends_at_its_time() {
        let c = cache();
        let t = c.ticket().unwrap();
        let at = now();
        c.put(
            "a".into(),
            "run-a",
            t,
            Depends::Own,
            Some(at + chrono::Duration::seconds(1)),
            1,
        );
        assert_eq!(c.get(&"a".into(), at), Some(1));
        assert_eq!(c.get(&"a".into(), at + chrono::Duration::seconds(1)), None);
    }

    #[test]
    fn the_least_recently_used_copy_makes_room() {
        let c = cache();
        let t = c.ticket().unwrap();
        c.put("a".into(), "run-a", t, Depends::Own, None, 1);
        c.put("b".into(), "run-b", t, Depends::Own, None, 2);
        assert_eq!(c.get(&"a".into(), now()), Some(1));
        c.put("c".into(), "run-c", t, Depends::Own, None, 3);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&"b".into(), now()), None);
        assert_eq!(c.get(&"a".into(), now()), Some(1));
        assert_eq!(c.get(&"c".into(), now()), Some(3));
    }

    #[test]
    fn forgetting_change_records_voids_older_copies_instead_of_reviving_them() {
        let c: Cache<String, u32> = Cache::new(8);
        c.enable(true);
        let t = c.ticket().unwrap();
        c.put("a".into(), "run-a", t, Depends::Own, None, 1);
        c.changed("run-a");
        for i in 0..CHANGES_KEPT + 1 {
            c.changed(&format!("other-{i}"));
        }
        c.put("a".into(), "run-a", t, Depends::Own, None, 1);
        assert_eq!(c.get(&"a".into(), now()), None);
    }

    #[test]
    fn a_versioned_copy_serves_only_its_own_version() {
        let v: Versioned<String, u32> = Versioned::new(8);
        v.put("page".into(), 7, 1);
        assert_eq!(v.get(&"page".into(), 7), Some(1));
        assert_eq!(v.get(&"page".into(), 8), None);
        assert_eq!(v.get(&"other".into(), 7), None);
    }

    #[test]
    fn a_versioned_copy_is_not_replaced_by_an_older_read() {
        let v: Versioned<String, u32> = Versioned::new(8);
        v.put("page".into(), 9, 2);
        v.put("page".into(), 8, 1);
        assert_eq!(v.get(&"page".into(), 9), Some(2));
        v.put("page".into(), 10, 3);
        assert_eq!(v.get(&"page".into(), 10), Some(3));
        assert_eq!(v.get(&"page".into(), 9), None);
    }

    #[test]
    fn callers_missing_the_same_copy_at_once_wait_for_one_maker() {
        let v: Arc<Versioned<String, u32>> = Arc::new(Versioned::new(8));
        let made = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let started = Arc::new(std::sync::Barrier::new(8));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (v, made, started) = (v.clone(), made.clone(), started.clone());
                std::thread::spawn(move || {
                    started.wait();
                    v.get_or_make(&"page".to_owned(), 3, || {
                        made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        Ok::<_, ()>((3, 42))
                    })
                })
            })
            .collect();
        for c in callers {
            assert_eq!(c.join().unwrap(), Ok(42));
        }
        assert_eq!(
            made.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "made once"
        );
        assert_eq!(v.get(&"page".into(), 3), Some(42));
    }

    #[test]
    fn a_maker_that_fails_lets_the_waiting_callers_make_their_own() {
        let v: Arc<Versioned<String, u32>> = Arc::new(Versioned::new(8));
        let first = {
            let v = v.clone();
            std::thread::spawn(move || {
                v.get_or_make(&"page".to_owned(), 3, || {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    Err("the database is away")
                })
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let second = v.get_or_make(&"page".to_owned(), 3, || Ok::<_, &str>((3, 7)));
        assert_eq!(first.join().unwrap(), Err("the database is away"));
        assert_eq!(second, Ok(7));
        assert_eq!(v.get(&"page".into(), 3), Some(7));
        // Nothing is left being made: the next miss makes at once.
        assert_eq!(
            v.get_or_make(&"page".to_owned(), 4, || Ok::<_, ()>((4, 8))),
            Ok(8)
        );
    }

    #[test]
    fn the_least_recently_used_versioned_copy_makes_room() {
        let v: Versioned<String, u32> = Versioned::new(2);
        v.put("a".into(), 1, 1);
        v.put("b".into(), 1, 2);
        assert_eq!(v.get(&"a".into(), 1), Some(1));
        v.put("c".into(), 1, 3);
        assert_eq!(v.get(&"b".into(), 1), None);
        assert_eq!(v.get(&"a".into(), 1), Some(1));
        assert_eq!(v.get(&"c".into(), 1), Some(3));
    }
}
