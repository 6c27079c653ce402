//! Every migration applies, reverts to exactly the schema before it, and re-applies to
//! exactly the schema after it — on SQLite and on PostgreSQL.

#![expect(
    clippy::expect_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel_migrations::MigrationHarness;
use shipshape_store::admin::{create_postgres_database, drop_postgres_database, schema_dump};
use shipshape_store::db::{
    AnyConnection, DbUrl, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, establish,
};

fn postgres_server_url() -> String {
    std::env::var("SHIPSHAPE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn step(conn: &mut AnyConnection, index: usize, apply: bool) {
    match conn {
        AnyConnection::Sqlite(c) => {
            let all: Vec<Box<dyn Migration<Sqlite>>> =
                SQLITE_MIGRATIONS.migrations().expect("migrations");
            let m = &all[index];
            c.applied_migrations()
                .expect("the migrations table is set up");
            if apply {
                c.run_migration(m).expect("apply");
            } else {
                c.revert_migration(m).expect("revert");
            }
        }
        AnyConnection::Postgresql(c) => {
            let all: Vec<Box<dyn Migration<Pg>>> =
                POSTGRES_MIGRATIONS.migrations().expect("migrations");
            let m = &all[index];
            c.applied_migrations()
                .expect("the migrations table is set up");
            if apply {
                c.run_migration(m).expect("apply");
            } else {
                c.revert_migration(m).expect("revert");
            }
        }
    }
}

fn round_trip_every_migration(conn: &mut AnyConnection, count: usize) {
    assert!(count > 0, "there are migrations");
    for index in 0..count {
        let before = schema_dump(conn).expect("dump");
        step(conn, index, true);
        let after = schema_dump(conn).expect("dump");
        assert_ne!(before, after, "migration {index} changes the schema");
        step(conn, index, false);
        assert_eq!(
            schema_dump(conn).expect("dump"),
            before,
            "migration {index} reverts cleanly"
        );
        step(conn, index, true);
        assert_eq!(
            schema_dump(conn).expect("dump"),
            after,
            "migration {index} re-applies identically"
        );
    }
}

fn names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("migrations folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_backends_have_the_same_migration_names() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    assert_eq!(
        names(&format!("{root}/sqlite")),
        names(&format!("{root}/postgres"))
    );
}

/// Removes what a test created, even when the test fails.
enum Cleanup {
    Folder(std::path::PathBuf),
    Database(String),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Folder(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database(name) => {
                let _ = drop_postgres_database(&postgres_server_url(), name);
            }
        }
    }
}

#[test]
fn every_sqlite_migration_reverts_and_reapplies_cleanly() {
    let dir = std::env::temp_dir().join(format!("shipshape-migrations-{}", uuid::Uuid::new_v4()));
    let _cleanup = Cleanup::Folder(dir.clone());
    let url = DbUrl::Sqlite(dir.join("m.db").display().to_string());
    let mut conn = establish(&url).expect("connect");
    let count = SQLITE_MIGRATIONS
        .migrations()
        .map(|m: Vec<Box<dyn Migration<Sqlite>>>| m.len());
    round_trip_every_migration(&mut conn, count.expect("migrations"));
}

#[test]
fn every_postgres_migration_reverts_and_reapplies_cleanly() {
    let name = format!("shipshape_migrations_{}", uuid::Uuid::new_v4().simple());
    let url =
        create_postgres_database(&postgres_server_url(), &name).expect("PostgreSQL is reachable");
    let _cleanup = Cleanup::Database(name);
    let mut conn = establish(&DbUrl::Postgres(url)).expect("connect");
    let count = POSTGRES_MIGRATIONS
        .migrations()
        .map(|m: Vec<Box<dyn Migration<Pg>>>| m.len());
    round_trip_every_migration(&mut conn, count.expect("migrations"));
    // The connection closes before the cleanup drops the database.
    drop(conn);
}
