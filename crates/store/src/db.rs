//! Connections: the one place where SQLite and PostgreSQL differ.
//!
//! The backend is chosen explicitly from the `DATABASE_URL` scheme (`sqlite://PATH` or
//! `postgres://…`), never by trial. SQLite gets its pragmas on every pooled connection and a
//! single writer connection: SQLite has one writer anyway, and queueing for one connection
//! beats many connections spinning on `busy_timeout`. PostgreSQL uses one pool for both.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, Pool, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;

/// Embedded migrations for SQLite.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// Embedded migrations for PostgreSQL (same names as SQLite's).
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// A connection to either backend. PostgreSQL comes first: diesel tries variants in order for
/// some operations, and SQLite would accept any string as a path.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL.
    Postgresql(PgConnection),
    /// SQLite.
    Sqlite(SqliteConnection),
}

impl std::fmt::Debug for AnyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyConnection::Postgresql(_) => f.write_str("AnyConnection::Postgresql"),
            AnyConnection::Sqlite(_) => f.write_str("AnyConnection::Sqlite"),
        }
    }
}

/// Which backend, and where.
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    /// A SQLite database file.
    Sqlite(String),
    /// A PostgreSQL connection string (may hold a password: never printed).
    Postgres(String),
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbUrl::Sqlite(path) => write!(f, "sqlite://{path}"),
            DbUrl::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}

impl DbUrl {
    /// Parses `sqlite://PATH`, `sqlite:PATH`, `postgres://…` or `postgresql://…`.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            && !path.is_empty()
        {
            return Ok(DbUrl::Sqlite(path.to_owned()));
        }
        Err(StoreError::Config(
            "DATABASE_URL must start with sqlite:// or postgres://".into(),
        ))
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            DbUrl::Sqlite(_) => "sqlite",
            DbUrl::Postgres(_) => "postgres",
        }
    }
}

/// libpq settings every PostgreSQL connection gets unless the URL sets them: give up a
/// connection attempt after 5 s, and notice a peer that vanished (a network partition, not a
/// restart, which closes the connection) within about a minute instead of the kernel's two
/// hours, so requests fail over to `503` instead of hanging.
const POSTGRES_DEFAULTS: [(&str, &str); 5] = [
    ("connect_timeout", "5"),
    ("keepalives", "1"),
    ("keepalives_idle", "30"),
    ("keepalives_interval", "10"),
    ("keepalives_count", "3"),
];

/// The URL with [`POSTGRES_DEFAULTS`] added where it does not set them; and for a server on
/// this machine (a loopback address) that no one asked TLS of (no `sslmode` in the URL, nor
/// `PGSSLMODE`, `PGREQUIRESSL` or a service file in the environment), `sslmode=allow`: plain
/// first, TLS only if the server demands it. libpq's own default, `prefer`, encrypts traffic
/// that never leaves the machine: about 5 MiB of the server's memory and CPU on every
/// statement, for nothing.
pub fn with_connection_defaults(url: &str) -> String {
    let tls_asked = ["PGSSLMODE", "PGREQUIRESSL", "PGSERVICE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    with_defaults(url, tls_asked)
}

/// [`with_connection_defaults`], told whether the environment chooses the TLS mode.
fn with_defaults(url: &str, tls_asked: bool) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let set: Vec<&str> = query
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .collect();
    let plain_first = !tls_asked
        && !set
            .iter()
            .any(|k| matches!(*k, "sslmode" | "requiressl" | "service"))
        && loopback_only(url);
    let mut out = url.to_owned();
    let defaults = POSTGRES_DEFAULTS
        .iter()
        .chain(plain_first.then_some(&("sslmode", "allow")));
    for (key, value) in defaults {
        if set.contains(key) {
            continue;
        }
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Whether a `postgres://` URL names only a loopback host (`localhost`, 127.0.0.0/8, `::1`),
/// and no `host` or `hostaddr` parameter that could send it elsewhere.
fn loopback_only(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query
        .split('&')
        .any(|kv| matches!(kv.split('=').next(), Some("host" | "hostaddr")))
    {
        return false;
    }
    let authority = location.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Opens one connection of the backend the URL names, set up for use.
pub fn establish(url: &DbUrl) -> Result<AnyConnection, StoreError> {
    match url {
        DbUrl::Postgres(u) => Ok(AnyConnection::Postgresql(
            PgConnection::establish(&with_connection_defaults(u))
                .map_err(|e| StoreError::Connect(e.to_string()))?,
        )),
        DbUrl::Sqlite(path) => {
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Connect(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut c = SqliteConnection::establish(path)
                .map_err(|e| StoreError::Connect(e.to_string()))?;
            // synchronous = FULL: an acknowledged commit survives a power loss too (NORMAL
            // in WAL mode may lose the last commits), at the cost of an fsync per commit.
            c.batch_execute(
                "PRAGMA busy_timeout = 5000;
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA foreign_keys = ON;",
            )?;
            Ok(AnyConnection::Sqlite(c))
        }
    }
}

/// A pooled connection with what the pool needs to know of its health.
///
/// A database restart leaves every pooled PostgreSQL connection dead, and nothing in a dead
/// connection says so until it is used. So, the way mature pools do it (HikariCP's "alive
/// bypass window"): a connection that has not been used for a moment is pinged when it is
/// checked out, and every connection is pinged once after any of them was seen to fail. A
/// connection seen to fail is dropped, never handed out again.
#[derive(Debug)]
pub struct PooledConn {
    conn: AnyConnection,
    /// When it was last checked out.
    last_used: Instant,
    /// The pool's fault count when it was last known to be alive.
    known_good_at: u64,
    /// It failed in a way that means it is gone (its server closed it).
    lost: bool,
}

impl PooledConn {
    /// Marks the connection as gone: the pool drops it instead of taking it back.
    pub(crate) fn mark_lost(&mut self) {
        self.lost = true;
    }
}

impl std::ops::Deref for PooledConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PooledConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

/// A connection unused for longer than this is pinged before it is handed out.
const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// An r2d2 manager that opens connections with [`establish`] and checks them as
/// [`PooledConn`] says.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DbUrl,
    faults: Faults,
}

/// How many connections have been seen to fail, shared by the pools of one store: each new
/// fault has every connection pinged at its next checkout.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<AtomicU64>);

impl Faults {
    /// Records that a connection was seen to fail.
    pub(crate) fn seen(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl ManageConnection for Manager {
    type Connection = PooledConn;
    type Error = StoreError;

    fn connect(&self) -> Result<PooledConn, StoreError> {
        Ok(PooledConn {
            conn: establish(&self.url)?,
            last_used: Instant::now(),
            known_good_at: self.faults.count(),
            lost: false,
        })
    }

    /// Called at every checkout: cheap unless the connection sat idle or a fault was seen.
    fn is_valid(&self, conn: &mut PooledConn) -> Result<(), StoreError> {
        let faults = self.faults.count();
        let now = Instant::now();
        if conn.known_good_at != faults || now - conn.last_used > ALIVE_BYPASS {
            if let Err(e) = diesel::sql_query("SELECT 1").execute(&mut conn.conn) {
                // Where one connection died, the others likely did too.
                conn.lost = true;
                self.faults.seen();
                return Err(e.into());
            }
            conn.known_good_at = faults;
        }
        conn.last_used = now;
        Ok(())
    }

    fn has_broken(&self, conn: &mut PooledConn) -> bool {
        conn.lost || std::thread::panicking() || conn.conn.is_broken()
    }
}

/// A pool of connections.
pub type DbPool = Pool<Manager>;

/// How long a request waits for a connection before it is told the database is unavailable.
pub(crate) const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

/// Builds the reader and writer pools for a URL; they share one fault count.
pub fn pools(url: &DbUrl, max_size: u32, faults: &Faults) -> Result<(DbPool, DbPool), StoreError> {
    let manager = Manager {
        url: url.clone(),
        faults: faults.clone(),
    };
    let build = |size: u32| {
        r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .test_on_check_out(true)
            .build(manager.clone())
            .map_err(|e| StoreError::Connect(e.to_string()))
    };
    match url {
        DbUrl::Sqlite(_) => Ok((build(max_size)?, build(1)?)),
        DbUrl::Postgres(_) => {
            let pool = build(max_size)?;
            Ok((pool.clone(), pool))
        }
    }
}

/// Whether a database error means the database cannot serve now (its connection is gone, it
/// is restarting, its file cannot be written or is locked by another process), as opposed to
/// a fault in the request or a bug. `Some(true)` when the connection itself is gone.
pub(crate) fn unavailability(e: &diesel::result::Error) -> Option<bool> {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => Some(true),
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            // SQLite reports these as plain messages (SQLITE_BUSY, SQLITE_READONLY,
            // SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN); PostgreSQL as SQLSTATE class 57P
            // (operator intervention: shutdown, cannot connect now) and 08 (connection).
            let m = info.message();
            let sqlite = [
                // Not "database table is locked" (SQLITE_LOCKED): that is a conflict within one
                // connection, a bug to see, not an outage.
                "database is locked",
                "attempt to write a readonly database",
                "disk I/O error",
                "database or disk is full",
                "unable to open database file",
            ];
            let postgres = [
                "terminating connection",
                "the database system is",
                "server closed the connection",
                "no connection to the server",
                "could not receive data",
                "could not send data",
            ];
            if sqlite.iter().any(|s| m.starts_with(s)) {
                Some(false)
            } else if postgres.iter().any(|s| m.contains(s)) {
                Some(true)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Applies every pending migration.
pub fn run_migrations(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let result = match conn {
        AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_get_timeouts_and_keepalives_unless_they_set_their_own() {
        assert_eq!(
            with_connection_defaults("postgres://u@h/db"),
            "postgres://u@h/db?connect_timeout=5&keepalives=1&keepalives_idle=30\
             &keepalives_interval=10&keepalives_count=3"
        );
        assert_eq!(
            with_connection_defaults("postgres://u@h/db?sslmode=require&connect_timeout=20"),
            "postgres://u@h/db?sslmode=require&connect_timeout=20&keepalives=1\
             &keepalives_idle=30&keepalives_interval=10&keepalives_count=3"
        );
    }

    #[test]
    fn a_server_on_this_machine_is_asked_for_plain_connections_first_unless_tls_is_chosen() {
        let timeouts = "connect_timeout=5&keepalives=1&keepalives_idle=30\
                        &keepalives_interval=10&keepalives_count=3";
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u:p@localhost/db",
            "postgresql://u@[::1]:5433/db",
            "postgres://u@127.8.9.10/db?application_name=x",
        ] {
            let sep = if url.contains('?') { '&' } else { '?' };
            assert_eq!(
                with_defaults(url, false),
                format!("{url}{sep}{timeouts}&sslmode=allow"),
                "{url}"
            );
        }
        // Another host, a host parameter, a socket, or TLS chosen in the URL or the
        // environment: libpq's own choice stands.
        for (url, env) in [
            ("postgres://u@db.internal/db", false),
            ("postgres://u@10.0.0.5/db", false),
            ("postgres://u@127.0.0.1.example/db", false),
            ("postgres://u@127.0.0.1/db?host=db.internal", false),
            ("postgres://u@/db?hostaddr=10.0.0.5", false),
            ("postgres://u@/db", false),
            ("postgres://u@localhost/db?sslmode=require", false),
            ("postgres://u@localhost/db?service=main", false),
            ("postgres://u@localhost/db", true),
        ] {
            assert!(!with_defaults(url, env).contains("sslmode=allow"), "{url}");
        }
    }
}
