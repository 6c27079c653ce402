//! Connections: the one place where SQLite and PostgreSQL differ.
//!
//! The backend is chosen explicitly from the `DATABASE_URL` scheme (`sqlite://PATH` or
//! `postgres://…`), never by trial. SQLite gets its pragmas on every pooled connection and a
//! single writer connection: SQLite has one writer anyway, and queueing for one connection
//! beats many connections spinning on `busy_timeout`. PostgreSQL uses one pool for both.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, Pool};
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

/// Opens one connection of the backend the URL names, set up for use.
pub fn establish(url: &DbUrl) -> Result<AnyConnection, StoreError> {
    match url {
        DbUrl::Postgres(u) => Ok(AnyConnection::Postgresql(
            PgConnection::establish(u).map_err(|e| StoreError::Connect(e.to_string()))?,
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

/// An r2d2 manager that opens connections with [`establish`].
#[derive(Debug, Clone)]
pub struct Manager {
    url: DbUrl,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<AnyConnection, StoreError> {
        establish(&self.url)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        diesel::sql_query("SELECT 1").execute(conn)?;
        Ok(())
    }

    fn has_broken(&self, _conn: &mut AnyConnection) -> bool {
        false
    }
}

/// A pool of connections.
pub type DbPool = Pool<Manager>;

/// Builds the reader and writer pools for a URL.
pub fn pools(url: &DbUrl, max_size: u32) -> Result<(DbPool, DbPool), StoreError> {
    let build = |size: u32| {
        r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .test_on_check_out(false)
            .build(Manager { url: url.clone() })
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

/// Applies every pending migration.
pub fn run_migrations(conn: &mut AnyConnection) -> Result<(), StoreError> {
    let result = match conn {
        AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| StoreError::Migration(e.to_string()))
}
