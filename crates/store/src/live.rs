//! What the live parts of the product keep in the database, so that several instances on
//! one PostgreSQL act as one: the all-runs position of every event (the cursor of the
//! all-runs stream), the signals a committed change publishes (in process, and through
//! `NOTIFY` to every instance), the instances themselves, the event streams they hold open
//! (the per-user cap counts them all), and the leases that let background work run on one
//! instance at a time.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use shipshape_domain::wire::Event;

use crate::schema::{event_log_head as h, instances as i, run_events as ev, stream_leases as sl};
use crate::{AnyConnection, Store, StoreResult, lock_named, new_id, now};

/// A committed change that other parts of the product react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Events were appended to the log of a run (its id): what is read of the run changed.
    Events(String),
    /// A user's access changed (signed out everywhere, deactivated, role or password
    /// changed, a token revoked): what they hold open checks it again.
    Access(String),
    /// Outbound deliveries were queued (or became due again): a worker sends them.
    Outbox,
    /// Something outside the runs changed by an administrator's action (an environment, its
    /// locks and freezes, a user, a template, a subscription; whatever the audit log
    /// records): what is derived from it is read again.
    Settings,
}

/// The `NOTIFY` channel of [`Signal::Events`] (the payload is the run's id).
pub const EVENTS_CHANNEL: &str = "shipshape_events";
/// The `NOTIFY` channel of [`Signal::Access`] (the payload is the user's id).
pub const ACCESS_CHANNEL: &str = "shipshape_access";
/// The `NOTIFY` channel of [`Signal::Outbox`].
pub const OUTBOX_CHANNEL: &str = "shipshape_outbox";
/// The `NOTIFY` channel of [`Signal::Settings`].
pub const SETTINGS_CHANNEL: &str = "shipshape_settings";

impl Signal {
    /// The signal a `NOTIFY` on `channel` with `payload` carries.
    pub fn from_notification(channel: &str, payload: &str) -> Option<Signal> {
        match channel {
            EVENTS_CHANNEL => Some(Signal::Events(payload.to_owned())),
            ACCESS_CHANNEL => Some(Signal::Access(payload.to_owned())),
            OUTBOX_CHANNEL => Some(Signal::Outbox),
            SETTINGS_CHANNEL => Some(Signal::Settings),
            _ => None,
        }
    }

    /// The `NOTIFY` channel and payload of the signal.
    pub(crate) fn notification(&self) -> (&'static str, &str) {
        match self {
            Signal::Events(run) => (EVENTS_CHANNEL, run),
            Signal::Access(user) => (ACCESS_CHANNEL, user),
            Signal::Outbox => (OUTBOX_CHANNEL, ""),
            Signal::Settings => (SETTINGS_CHANNEL, ""),
        }
    }
}

/// Who hears the signals of this process's commits.
pub(crate) type SignalHook = Arc<std::sync::RwLock<Option<Arc<dyn Fn(&Signal) + Send + Sync>>>>;

thread_local! {
    /// The signals of the transaction running on this thread, published once it commits.
    static PENDING: RefCell<Vec<Signal>> = const { RefCell::new(Vec::new()) };
}

/// Publishes `signal` when the current transaction commits: to this process (after the
/// commit) and, on PostgreSQL, to every instance by `NOTIFY` (which PostgreSQL delivers at
/// commit, and not at all if the transaction rolls back; equal notifications of one
/// transaction are delivered once).
pub(crate) fn publish(conn: &mut AnyConnection, signal: Signal) -> StoreResult<()> {
    if let AnyConnection::Postgresql(_) = conn {
        let (channel, payload) = signal.notification();
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(channel)
            .bind::<Text, _>(payload)
            .execute(conn)?;
    }
    publish_here(signal);
    Ok(())
}

/// The in-process half of [`publish`], for a statement that sent the `NOTIFY` itself.
pub(crate) fn publish_here(signal: Signal) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if !p.contains(&signal) {
            p.push(signal);
        }
    });
}

/// Forgets the signals of a transaction that is starting (or that rolled back).
pub(crate) fn take_pending() -> Vec<Signal> {
    PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// The next position of the all-runs log: taken from the one counter row, which the
/// transaction then holds until it commits.
pub(crate) fn next_position(conn: &mut AnyConnection) -> StoreResult<i64> {
    Ok(crate::native!(conn, |c| crate::Fixed(
        diesel::update(h::table.find(1))
            .set(h::position.eq(h::position + 1))
            .returning(h::position),
    )
    .get_result(c))?)
}

/// The all-runs log position now (the last one given out).
pub(crate) fn head(conn: &mut AnyConnection) -> StoreResult<i64> {
    Ok(crate::native!(conn, |c| h::table
        .find(1)
        .select(h::position)
        .get_result(c))?)
}

/// Moves the all-runs log position on without an event, for a change to the runs that
/// appends none to the stream (a seeded batch): what was read of the runs before is stale.
pub(crate) fn runs_changed(conn: &mut AnyConnection) -> StoreResult<()> {
    next_position(conn)?;
    publish(conn, Signal::Events(String::new()))
}

/// An event and its position in the all-runs log; `event` is `None` for a stored event that
/// does not decode (`shipshape audit verify` reports it; a stream passes over it).
#[derive(Debug, Clone)]
pub struct Positioned {
    /// The position.
    pub position: i64,
    /// The event.
    pub event: Option<Event>,
}

/// An instance serving the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    /// Its id (new at every start).
    pub id: String,
    /// The version it runs.
    pub version: String,
    /// When it started.
    pub started_at: NaiveDateTime,
    /// When it last said it is alive.
    pub seen_at: NaiveDateTime,
    /// The event streams it holds open.
    pub streams: i64,
}

fn insert_instance(conn: &mut AnyConnection, id: &str, version: &str) -> StoreResult<()> {
    let t = now();
    diesel::insert_into(i::table)
        .values((
            i::id.eq(id),
            i::version.eq(version),
            i::started_at.eq(t),
            i::seen_at.eq(t),
        ))
        .execute(conn)?;
    Ok(())
}

fn ago(d: Duration) -> NaiveDateTime {
    now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Store {
    /// Hears the signals of this process's commits (one listener; a later call replaces it).
    pub fn on_signal(&self, f: impl Fn(&Signal) + Send + Sync + 'static) {
        let mut hook = self.signals.write().unwrap_or_else(|e| e.into_inner());
        *hook = Some(Arc::new(f));
    }

    pub(crate) fn fire(&self, signals: &[Signal]) {
        if signals.is_empty() {
            return;
        }
        let hook = self
            .signals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(hook) = hook {
            for s in signals {
                hook(s);
            }
        }
    }

    /// The all-runs log position: that of the last event (0 when there is none), or past it
    /// when a seeded batch moved it without an event. It moves whenever a run or one of its
    /// items changes, so it also versions what is read of the runs: what is read at one value
    /// is the same at the next read of that value.
    pub fn log_head(&self) -> StoreResult<i64> {
        self.query(head)
    }

    /// Up to `limit` events after position `after`, in order, of every run or of `runs`.
    pub fn events_since(
        &self,
        after: i64,
        runs: Option<&[String]>,
        limit: i64,
    ) -> StoreResult<Vec<Positioned>> {
        use crate::runs::EventRow;
        self.query(|conn| {
            let mut q = ev::table
                .filter(ev::position.gt(after))
                .order(ev::position.asc())
                .limit(limit)
                .select((ev::position.assume_not_null(), EventRow::as_select()))
                .into_boxed();
            if let Some(runs) = runs {
                q = q.filter(ev::run_id.eq_any(runs));
            }
            let rows: Vec<(i64, EventRow)> = q.load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(position, row)| Positioned {
                    position,
                    event: row.to_wire().ok(),
                })
                .collect())
        })
    }

    /// Records this instance as serving the database.
    pub fn register_instance(&self, id: &str, version: &str) -> StoreResult<()> {
        self.write(|conn| insert_instance(conn, id, version))
    }

    /// Says this instance is alive. An instance taken for dead (it paused longer than the
    /// others wait) is recorded again; the streams it held were counted out, and are counted
    /// again as they reconnect.
    pub fn heartbeat(&self, id: &str, version: &str) -> StoreResult<()> {
        let t = now();
        self.write(|conn| {
            let n = diesel::update(i::table.find(id))
                .set(i::seen_at.eq(t))
                .execute(conn)?;
            if n == 0 {
                insert_instance(conn, id, version)?;
            }
            Ok(())
        })
    }

    /// Removes this instance, the streams it held and the leases it holds (at shutdown: the
    /// work passes to another instance at once).
    pub fn retire_instance(&self, id: &str) -> StoreResult<()> {
        use crate::schema::work_leases as wl;
        self.write(|conn| {
            diesel::delete(wl::table.filter(wl::holder.eq(id))).execute(conn)?;
            diesel::delete(sl::table.filter(sl::instance_id.eq(id))).execute(conn)?;
            diesel::delete(i::table.find(id)).execute(conn)?;
            Ok(())
        })
    }

    /// Forgets the instances not seen for `stale` (they stopped without retiring), and their
    /// streams. Returns how many.
    pub fn reap_instances(&self, stale: Duration) -> StoreResult<usize> {
        let before = ago(stale);
        self.write(|conn| {
            let dead = i::table.filter(i::seen_at.lt(before)).select(i::id);
            diesel::delete(sl::table.filter(sl::instance_id.eq_any(dead))).execute(conn)?;
            Ok(diesel::delete(i::table.filter(i::seen_at.lt(before))).execute(conn)?)
        })
    }

    /// The instances serving the database, most recently started first.
    pub fn instances(&self) -> StoreResult<Vec<InstanceRecord>> {
        self.query(|conn| {
            let rows: Vec<(String, String, NaiveDateTime, NaiveDateTime)> = i::table
                .order(i::started_at.desc())
                .select((i::id, i::version, i::started_at, i::seen_at))
                .load(conn)?;
            let mut out = Vec::with_capacity(rows.len());
            for (id, version, started_at, seen_at) in rows {
                let streams: i64 = sl::table
                    .filter(sl::instance_id.eq(&id))
                    .count()
                    .get_result(conn)?;
                out.push(InstanceRecord {
                    id,
                    version,
                    started_at,
                    seen_at,
                    streams,
                });
            }
            Ok(out)
        })
    }

    /// Opens a stream lease for `user_id` on `instance`, unless the user already holds `max`
    /// on instances seen within `alive`. Returns the lease's id.
    pub fn open_stream(
        &self,
        instance: &str,
        user_id: &str,
        max: usize,
        alive: Duration,
    ) -> StoreResult<Option<String>> {
        let since = ago(alive);
        self.write(|conn| {
            lock_named(conn, &format!("streams:{user_id}"))?;
            let open: i64 = sl::table
                .inner_join(i::table)
                .filter(sl::user_id.eq(user_id).and(i::seen_at.ge(since)))
                .count()
                .get_result(conn)?;
            if open >= i64::try_from(max).unwrap_or(i64::MAX) {
                return Ok(None);
            }
            let id = new_id();
            diesel::insert_into(sl::table)
                .values((
                    sl::id.eq(&id),
                    sl::instance_id.eq(instance),
                    sl::user_id.eq(user_id),
                    sl::opened_at.eq(now()),
                ))
                .execute(conn)?;
            Ok(Some(id))
        })
    }

    /// Closes stream leases, in one transaction.
    pub fn close_streams(&self, leases: &[String]) -> StoreResult<()> {
        self.write(|conn| {
            diesel::delete(sl::table.filter(sl::id.eq_any(leases))).execute(conn)?;
            Ok(())
        })
    }

    /// Takes or renews the lease on the work `name` for `holder` for `ttl`; whether `holder`
    /// holds it. One holder at a time: another takes it only once it has expired.
    pub fn hold_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let t = now();
        let until = t + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        self.write(|conn| {
            diesel::sql_query(
                "INSERT INTO work_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
                 WHERE work_leases.holder = excluded.holder OR work_leases.expires_at < $4",
            )
            .bind::<Text, _>(name)
            .bind::<Text, _>(holder)
            .bind::<Timestamp, _>(until)
            .bind::<Timestamp, _>(t)
            .execute(conn)?;
            let current: String = crate::schema::work_leases::table
                .find(name)
                .select(crate::schema::work_leases::holder)
                .get_result(conn)?;
            Ok(current == holder)
        })
    }

    /// Who holds the lease on the work `name` now, if anyone.
    pub fn lease_holder(&self, name: &str) -> StoreResult<Option<String>> {
        use crate::schema::work_leases as wl;
        let t = now();
        self.query(|conn| {
            Ok(wl::table
                .filter(wl::name.eq(name).and(wl::expires_at.ge(t)))
                .select(wl::holder)
                .first(conn)
                .optional()?)
        })
    }
}

/// What the listening connection hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The connection is (again) listening: anything published while it was not was missed,
    /// so listeners catch up from the log.
    Listening,
    /// The connection was lost: until [`Heard::Listening`], other instances' commits go
    /// unheard (what is kept in memory must not be trusted).
    Deaf,
    /// A signal of some instance's commit.
    Signal(Signal),
}

/// How often the listening connection looks for notifications (reading what the socket
/// holds: no query, no round trip).
const LISTEN_POLL: Duration = Duration::from_millis(5);
/// How often the listening connection checks, with a query, that the server is still there
/// (a connection that died without a word would otherwise look merely quiet).
const LISTEN_CHECK: Duration = Duration::from_secs(10);
/// How long to wait before connecting again after the connection is lost.
const LISTEN_RETRY: Duration = Duration::from_millis(500);

impl Store {
    /// Whether this store has a bus of its own between instances (PostgreSQL's `NOTIFY`).
    pub fn shares_signals(&self) -> bool {
        matches!(self.url, crate::DbUrl::Postgres(_))
    }

    /// Listens to every instance's signals on one connection of its own, for as long as
    /// `keep_going()` holds, and reconnects whenever the connection is lost (a database
    /// restart), saying [`Heard::Listening`] each time it listens again. Blocks: run it on a
    /// thread of its own. Does nothing on SQLite (one instance: its commits signal in
    /// process).
    pub fn listen(&self, keep_going: impl Fn() -> bool, on: impl Fn(Heard)) {
        let crate::DbUrl::Postgres(url) = &self.url else {
            return;
        };
        while keep_going() {
            // With the same keepalives as the pools: a peer that vanished is noticed within
            // about a minute (until then, other instances' changes would go unheard).
            let url = crate::db::with_connection_defaults(url);
            let mut conn = match diesel::PgConnection::establish(&url) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other instances' changes; retrying");
                    std::thread::sleep(LISTEN_RETRY);
                    continue;
                }
            };
            let listening = diesel::connection::SimpleConnection::batch_execute(
                &mut conn,
                &format!(
                    "LISTEN {EVENTS_CHANNEL}; LISTEN {ACCESS_CHANNEL}; LISTEN {OUTBOX_CHANNEL}; \
                     LISTEN {SETTINGS_CHANNEL}"
                ),
            );
            if let Err(e) = listening {
                tracing::warn!(error = %e, "cannot listen for other instances' changes; retrying");
                std::thread::sleep(LISTEN_RETRY);
                continue;
            }
            on(Heard::Listening);
            let mut checked = std::time::Instant::now();
            'connected: while keep_going() {
                for n in conn.notifications_iter() {
                    match n {
                        Ok(n) => {
                            if let Some(s) = Signal::from_notification(&n.channel, &n.payload) {
                                on(Heard::Signal(s));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the listening connection; reconnecting");
                            on(Heard::Deaf);
                            break 'connected;
                        }
                    }
                }
                if checked.elapsed() >= LISTEN_CHECK {
                    checked = std::time::Instant::now();
                    if let Err(e) =
                        diesel::connection::SimpleConnection::batch_execute(&mut conn, "SELECT 1")
                    {
                        tracing::warn!(error = %e, "lost the listening connection; reconnecting");
                        on(Heard::Deaf);
                        break 'connected;
                    }
                }
                std::thread::sleep(LISTEN_POLL);
            }
        }
    }
}
