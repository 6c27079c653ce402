//! Shipshape's persistence: one diesel codebase for SQLite (the embedded default) and
//! PostgreSQL, chosen by the `DATABASE_URL` scheme.
//!
//! The store runs each change in one transaction with its event, asking the domain crate
//! whether the change is allowed on the state it has just read. It depends on the domain
//! crate only; the API crate depends on it. Its calls are blocking: call them off the async
//! executor (`web::block`).

pub mod admin;
mod audit;
mod chain;
pub mod db;
mod environments;
mod idempotency;
mod insights;
mod live;
mod mail;
mod proposals;
mod runs;
mod schema;
mod seed;
mod signin;
mod templates;
mod tokens;
mod transfer;
mod turns;
mod users;
mod webhooks;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use diesel::Connection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

pub use audit::Auditor;
pub use db::{AnyConnection, DbUrl};
pub use idempotency::{ClaimTimes, KeyClaim};
pub use insights::InsightFilter;
pub use live::{
    ACCESS_CHANNEL, EVENTS_CHANNEL, Heard, InstanceRecord, OUTBOX_CHANNEL, Positioned,
    SETTINGS_CHANNEL, Signal,
};
pub use mail::QueuedMail;
pub use proposals::ProposalFilter;
pub use runs::{
    Actor, Announced, DeadlineWork, ListRunsFilter, NewRun, ProbeOutcome, ProbeTarget, RunView,
    SYSTEM_ACTOR,
};
pub use seed::{SEED_ENVIRONMENTS, SeedPlan};
pub use templates::EDULIBRA_TEMPLATE_ID;
pub use tokens::{NewToken, TokenRecord, use_is_due};
pub use transfer::{Moved, check_header, latest_migration, private_file};
pub use users::{NewUser, UserRecord};
pub use webhooks::{AttemptOutcome, Outgoing, envelope};

use shipshape_domain::decision::DecisionError;
use shipshape_domain::item::ItemError;
use shipshape_domain::run::TransitionError;
use shipshape_domain::template::TemplateError;

/// What can go wrong in the store. Domain refusals are carried through unchanged so the API
/// can map each to its answer; database details never reach a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A backup, export or import that cannot be made (the reason is for the operator).
    #[error("{0}")]
    Transfer(String),
    /// A unique value is taken.
    #[error("{0} is already taken")]
    Duplicate(&'static str),
    /// `If-Match` named a version that is no longer current.
    #[error("the {what} has changed (current version {current})")]
    PreconditionFailed {
        /// `run` or `item`.
        what: &'static str,
        /// The current version, the one to send next time.
        current: i64,
    },
    /// An input that only the store can judge (a cursor, a template version).
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The state of a record refuses the change (an environment runs name, a lock already
    /// taken): `code` names the case for clients.
    #[error("{message}")]
    Conflict {
        /// A stable code, e.g. `environment_in_use`.
        code: &'static str,
        /// What is in the way.
        message: String,
    },
    /// The rules refuse a transition.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The rules refuse an item change.
    #[error(transparent)]
    Item(#[from] ItemError),
    /// The rules refuse a decision.
    #[error(transparent)]
    Decision(#[from] DecisionError),
    /// The run's own fields no longer change.
    #[error(transparent)]
    RunLocked(#[from] shipshape_domain::run::RunLocked),
    /// A run field is not valid.
    #[error(transparent)]
    Field(#[from] shipshape_domain::run::FieldError),
    /// The rules refuse a change to a run's records (issues, retrospective, action items).
    #[error(transparent)]
    Record(#[from] shipshape_domain::records::RecordError),
    /// The rules refuse a template proposal or its review.
    #[error(transparent)]
    Proposal(#[from] shipshape_domain::proposal::ProposalError),
    /// The rules refuse a sign-off.
    #[error(transparent)]
    Signoff(#[from] shipshape_domain::approval::SignoffError),
    /// The rules refuse a forced transition.
    #[error(transparent)]
    Force(#[from] shipshape_domain::run::ForceError),
    /// A template is not valid.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The configuration is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The database cannot be reached.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Stored data does not parse (a bug or a hand-edited database).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database cannot serve now: its connection was lost, it is restarting, or its file
    /// cannot be written. Worth retrying shortly. A change whose connection was lost while it
    /// committed may or may not have landed: read before writing again.
    #[error("the database is unavailable")]
    Unavailable {
        /// The connection itself is gone (it must not be used again).
        lost: bool,
        /// What the database said.
        #[source]
        source: DieselError,
    },
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] DieselError),
}

impl From<shipshape_domain::text::TextError> for StoreError {
    fn from(e: shipshape_domain::text::TextError) -> Self {
        StoreError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound("record"),
            other => match db::unavailability(&other) {
                Some(lost) => StoreError::Unavailable {
                    lost,
                    source: other,
                },
                None => StoreError::Database(other),
            },
        }
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Connect(e.to_string())
    }
}

pub(crate) fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The store: a reader pool and a writer pool (the same pool on PostgreSQL).
#[derive(Clone)]
pub struct Store {
    url: DbUrl,
    read: db::DbPool,
    write: db::DbPool,
    faults: db::Faults,
    templates: std::sync::Arc<templates::TemplateCache>,
    signals: live::SignalHook,
    checkouts: std::sync::Arc<std::sync::OnceLock<CheckoutHook>>,
    /// SQLite's writers take turns at its one writer connection in order of arrival.
    writers: Option<std::sync::Arc<turns::Turns>>,
}

/// Told of every connection checkout: the pool (`read` or `write`), how long the wait was,
/// and whether a connection was had.
type CheckoutHook = Box<dyn Fn(&'static str, std::time::Duration, bool) + Send + Sync>;

/// The state of one connection pool, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// `read` or `write` (on PostgreSQL one pool serves both: `shared`).
    pub pool: &'static str,
    /// Connections open.
    pub connections: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

impl Store {
    /// Connects to the database a URL names (creating a SQLite file's folder if needed).
    pub fn connect(url: &str, max_connections: u32) -> StoreResult<Store> {
        let url = DbUrl::parse(url)?;
        let faults = db::Faults::default();
        let (read, write) = db::pools(&url, max_connections.max(1), &faults)?;
        Ok(Store {
            read,
            write,
            faults,
            writers: matches!(url, DbUrl::Sqlite(_)).then(Default::default),
            url,
            templates: Default::default(),
            signals: Default::default(),
            checkouts: Default::default(),
        })
    }

    /// Has `hook` told of every connection checkout from now on (metrics); the first hook
    /// set stays.
    pub fn on_checkout(
        &self,
        hook: impl Fn(&'static str, std::time::Duration, bool) + Send + Sync + 'static,
    ) {
        let _ = self.checkouts.set(Box::new(hook));
    }

    /// The state of the connection pools.
    pub fn pool_states(&self) -> Vec<PoolState> {
        let state = |pool, p: &db::DbPool| {
            let s = p.state();
            PoolState {
                pool,
                connections: s.connections,
                idle: s.idle_connections,
                max: p.max_size(),
            }
        };
        match self.url {
            DbUrl::Sqlite(_) => vec![state("read", &self.read), state("write", &self.write)],
            DbUrl::Postgres(_) => vec![state("shared", &self.read)],
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.url.backend()
    }

    /// Where the database is, without credentials: a SQLite file's path, or a PostgreSQL
    /// server's host, port and database (for the start-up log).
    pub fn location(&self) -> String {
        match &self.url {
            DbUrl::Sqlite(path) => path.clone(),
            DbUrl::Postgres(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let rest = rest.split(['?', '#']).next().unwrap_or("");
                rest.rsplit_once('@').map_or(rest, |(_, at)| at).to_owned()
            }
        }
    }

    /// Applies every pending migration.
    pub fn migrate(&self) -> StoreResult<()> {
        self.with(&self.write, db::run_migrations)?;
        // Entries written before the logs were chained are chained once, in order.
        self.chain_unchained_events()?;
        self.chain_unchained_audit()
    }

    /// Checks that the database answers.
    pub fn ping(&self) -> StoreResult<()> {
        use diesel::RunQueryDsl;
        self.with(&self.read, |conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
    }

    /// Runs `f` on a connection of `pool`. A connection that turns out to be gone is dropped
    /// and every other one is checked before its next use, so a database restart costs the
    /// requests made while it is down, not the ones after.
    fn with<T>(
        &self,
        pool: &db::DbPool,
        f: impl FnOnce(&mut AnyConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let started = std::time::Instant::now();
        let writing = std::ptr::eq(pool, &self.write);
        // The turn is held until the connection is back in the pool (dropped after it).
        let turn = match &self.writers {
            Some(turns) if writing => Some(turns.take(db::CHECKOUT_TIMEOUT)),
            _ => None,
        };
        let conn = match &turn {
            Some(None) => Err(StoreError::Connect(
                "timed out waiting for the writer connection".into(),
            )),
            _ => pool.get().map_err(StoreError::from),
        };
        if let Some(hook) = self.checkouts.get() {
            let name = if writing { "write" } else { "read" };
            hook(name, started.elapsed(), conn.is_ok());
        }
        let mut conn = conn?;
        let result = f(&mut conn);
        if let Err(StoreError::Unavailable { lost: true, .. }) = &result {
            conn.mark_lost();
            self.faults.seen();
        }
        result
    }

    /// Runs a read of several statements in one consistent snapshot (on PostgreSQL a
    /// read-only REPEATABLE READ transaction; on SQLite a read transaction).
    /// A read that finds its connection gone is tried once more on another (it changed
    /// nothing).
    pub(crate) fn read<T>(
        &self,
        f: impl Fn(&mut AnyConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.retrying(|| self.snapshot(&f))
    }

    /// Runs a read in one consistent snapshot, once (not tried again: for a read whose
    /// effects outside the database, such as a file written, cannot be taken back).
    pub(crate) fn snapshot<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        use diesel::connection::SimpleConnection;
        self.with(&self.read, |conn| {
            conn.transaction(|conn| {
                if let AnyConnection::Postgresql(_) = conn {
                    conn.batch_execute(
                        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                    )?;
                }
                f(conn)
            })
        })
    }

    /// Runs a read again, once, when its connection was found gone.
    fn retrying<T>(&self, attempt: impl Fn() -> StoreResult<T>) -> StoreResult<T> {
        match attempt() {
            Err(StoreError::Unavailable { lost: true, .. }) => attempt(),
            other => other,
        }
    }

    /// Runs a single-statement read (no transaction needed), retried like [`Store::read`].
    pub(crate) fn query<T>(
        &self,
        f: impl Fn(&mut AnyConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.retrying(|| self.with(&self.read, &f))
    }

    /// Runs a change in one transaction: all of it lands, or none.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        live::take_pending();
        let result = self.with(&self.write, |conn| conn.transaction(f));
        let signals = live::take_pending();
        if result.is_ok() {
            self.fire(&signals);
        }
        result
    }

    /// [`Store::write`] for a change that may find it alters nothing after it has written
    /// (e.g. taken the run's next event number): `f` answers its value and whether to keep
    /// what it wrote; when not, the transaction is rolled back and the value answered.
    pub(crate) fn write_or_undo<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> StoreResult<(T, bool)>,
    ) -> StoreResult<T> {
        /// Why a transaction did not commit.
        enum Undone<T> {
            Failed(StoreError),
            Unchanged(T),
        }
        impl<T> From<diesel::result::Error> for Undone<T> {
            fn from(e: diesel::result::Error) -> Self {
                Self::Failed(e.into())
            }
        }
        live::take_pending();
        let mut committed = false;
        let result = self.with(&self.write, |conn| {
            match conn.transaction(|c| match f(c) {
                Ok((value, true)) => Ok(value),
                Ok((value, false)) => Err(Undone::Unchanged(value)),
                Err(e) => Err(Undone::Failed(e)),
            }) {
                Ok(value) => {
                    committed = true;
                    Ok(value)
                }
                Err(Undone::Unchanged(value)) => Ok(value),
                Err(Undone::Failed(e)) => Err(e),
            }
        });
        let signals = live::take_pending();
        if committed {
            self.fire(&signals);
        }
        result
    }

    /// A setting, creating it with `make()` the first time (e.g. the token signing key).
    /// Several instances starting at once agree on one value.
    pub fn setting_or_init(&self, key: &str, make: impl FnOnce() -> String) -> StoreResult<String> {
        use diesel::prelude::*;
        use schema::settings::dsl as s;
        let value = make();
        self.write(|conn| {
            diesel::sql_query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind::<diesel::sql_types::Text, _>(key)
            .bind::<diesel::sql_types::Text, _>(&value)
            .execute(conn)?;
            Ok(s::settings
                .filter(s::key.eq(key))
                .select(s::value)
                .first::<String>(conn)?)
        })
    }
}

/// Runs `$body` with `$c` bound to the connection of its own backend. diesel's multi-backend
/// connection writes out the SQL of every query to find its kept preparation; each backend's
/// own connection finds it by the query's type. For the statements of the hot paths.
macro_rules! native {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::AnyConnection::Sqlite($c) => $body,
            $crate::AnyConnection::Postgresql($c) => $body,
        }
    };
}
pub(crate) use native;

/// A statement whose SQL is the same at every execution, so its preparation may be kept.
///
/// diesel keeps no `UPDATE`'s preparation (a changeset may leave out `None` fields, so the
/// SQL can vary); an `UPDATE` whose `SET` is a fixed list of `column.eq(value)` never varies,
/// and on the hot paths preparing it afresh each time costs more than running it. Run it with
/// `RETURNING` (`get_result`, `load`): `execute` hands diesel the statement by reference,
/// and diesel then asks the `UPDATE` inside, which says no.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed<Q>(pub(crate) Q);

impl<Q: diesel::query_builder::QueryId> diesel::query_builder::QueryId for Fixed<Q> {
    type QueryId = Q::QueryId;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Fixed<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Fixed<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> diesel::RunQueryDsl<Conn> for Fixed<Q> {}

/// Serialises changes that must see each other although they touch different rows (e.g.
/// "never leave no active admin"), by locking one row of `settings` named after them.
pub(crate) fn lock_named(conn: &mut AnyConnection, name: &str) -> StoreResult<()> {
    use diesel::RunQueryDsl;
    let key = format!("lock:{name}");
    diesel::sql_query(
        "INSERT INTO settings (key, value) VALUES ($1, '') ON CONFLICT (key) DO NOTHING",
    )
    .bind::<diesel::sql_types::Text, _>(&key)
    .execute(conn)?;
    diesel::sql_query("UPDATE settings SET value = value WHERE key = $1")
        .bind::<diesel::sql_types::Text, _>(&key)
        .execute(conn)?;
    Ok(())
}

/// The current time, at the microsecond precision both backends keep.
pub(crate) fn now() -> NaiveDateTime {
    micros(Utc::now())
}

/// The current time as the store keeps times (UTC, to the microsecond).
pub fn now_micros() -> NaiveDateTime {
    now()
}

/// A time at the microsecond precision both backends keep.
pub(crate) fn micros(t: DateTime<Utc>) -> NaiveDateTime {
    let t = t.naive_utc();
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
