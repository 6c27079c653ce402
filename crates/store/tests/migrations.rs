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

#[derive(diesel::QueryableByName)]
struct EnvironmentName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    base_url: Option<String>,
}

/// Upgrading a database whose runs name environments makes a record of each, once, and
/// keeps the settings an environment had.
fn upgrading_makes_a_record_of_every_environment_runs_name(conn: &mut AnyConnection, count: usize) {
    use diesel::RunQueryDsl;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/sqlite");
    let at = names(root)
        .iter()
        .position(|n| n.ends_with("_environments"))
        .expect("the environments migration");
    assert!(at < count);
    for index in 0..at {
        step(conn, index, true);
    }
    for statement in [
        "INSERT INTO templates (id, name, builtin, latest_version, created_at) \
         VALUES ('t', 'T', FALSE, 1, '2026-12-01 10:00:00')",
        "INSERT INTO template_versions (template_id, version, name, content, item_count, created_by, created_at) \
         VALUES ('t', 1, 'T', '{}', 0, 'admin', '2026-12-01 10:00:00')",
        "INSERT INTO environments (name, base_url, updated_by, updated_at) \
         VALUES ('production', 'https://edulibra.example', 'admin', '2026-12-01 10:00:00')",
    ] {
        diesel::sql_query(statement).execute(conn).expect("seed");
    }
    for (id, environment) in [("r1", "production"), ("r2", "staging"), ("r3", "staging")] {
        diesel::sql_query(format!(
            "INSERT INTO runs (id, template_id, template_version, template_name, product, release_version, \
             environment, status, created_by, created_at, updated_at, last_seq) \
             VALUES ('{id}', 't', 1, 'T', 'EduLibra', '4.2.0', '{environment}', 'completed', 'admin', \
             '2026-12-01 10:00:00', '2026-12-01 10:00:00', 0)"
        ))
        .execute(conn)
        .expect("a run");
    }
    step(conn, at, true);
    let records: Vec<EnvironmentName> =
        diesel::sql_query("SELECT name, base_url FROM environments ORDER BY name")
            .load(conn)
            .expect("environments");
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["production", "staging"]);
    assert_eq!(
        records[0].base_url.as_deref(),
        Some("https://edulibra.example")
    );
    assert_eq!(records[1].base_url, None);
}

#[test]
fn upgrading_sqlite_makes_environments_of_existing_runs() {
    let dir = std::env::temp_dir().join(format!("shipshape-upgrade-{}", uuid::Uuid::new_v4()));
    let _cleanup = Cleanup::Folder(dir.clone());
    let url = DbUrl::Sqlite(dir.join("m.db").display().to_string());
    let mut conn = establish(&url).expect("connect");
    let count = SQLITE_MIGRATIONS
        .migrations()
        .map(|m: Vec<Box<dyn Migration<Sqlite>>>| m.len());
    upgrading_makes_a_record_of_every_environment_runs_name(&mut conn, count.expect("migrations"));
}

#[test]
fn upgrading_postgres_makes_environments_of_existing_runs() {
    let name = format!("shipshape_upgrade_{}", uuid::Uuid::new_v4().simple());
    let url =
        create_postgres_database(&postgres_server_url(), &name).expect("PostgreSQL is reachable");
    let _cleanup = Cleanup::Database(name);
    let mut conn = establish(&DbUrl::Postgres(url)).expect("connect");
    let count = POSTGRES_MIGRATIONS
        .migrations()
        .map(|m: Vec<Box<dyn Migration<Pg>>>| m.len());
    upgrading_makes_a_record_of_every_environment_runs_name(&mut conn, count.expect("migrations"));
    drop(conn);
}

#[derive(diesel::QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

/// One text per row of `sql` (a query selecting `… AS v`).
fn texts(conn: &mut AnyConnection, sql: &str) -> Vec<String> {
    use diesel::RunQueryDsl;
    diesel::sql_query(sql)
        .load::<Row>(conn)
        .expect(sql)
        .into_iter()
        .map(|r| r.v)
        .collect()
}

/// Upgrading a database with a finished run keeps Insights' times from its log: the run's
/// start, outcome and rollback decision, the decision's stage start, an item's time in
/// progress (to when it became done, not its last change), the override that went past an
/// item; and sums the run into the weekly rollups.
fn upgrading_reads_the_insight_times_from_the_log(conn: &mut AnyConnection, count: usize) {
    use diesel::RunQueryDsl;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/sqlite");
    let at = names(root)
        .iter()
        .position(|n| n.ends_with("_insights"))
        .expect("the insights migration");
    assert!(at < count);
    for index in 0..at {
        step(conn, index, true);
    }
    for statement in [
        "INSERT INTO templates (id, name, builtin, latest_version, created_at) \
         VALUES ('t', 'T', FALSE, 1, '2026-12-01 10:00:00')",
        "INSERT INTO template_versions (template_id, version, name, content, item_count, created_by, created_at) \
         VALUES ('t', 1, 'T', '{}', 2, 'admin', '2026-12-01 10:00:00')",
        "INSERT INTO runs (id, template_id, template_version, template_name, product, release_version, \
         environment, status, created_by, created_at, updated_at, last_seq, stage_entered_at) \
         VALUES ('r1', 't', 1, 'T', 'EduLibra', '4.2.0', 'production', 'rolled_back', 'admin', \
         '2026-12-01 10:00:00', '2026-12-01 12:00:00', 6, '2026-12-01 12:00:00')",
        "INSERT INTO run_items (id, run_id, position, part_index, section_index, reference, title, \
         gate, applies, required, kind, status, version, updated_at) VALUES \
         ('i1', 'r1', 0, 0, 0, '1.1.1', 'Back up', 'deploy', 'always', TRUE, 'manual', 'done', 3, \
         '2026-12-01 10:50:00'), \
         ('i2', 'r1', 1, 0, 0, '1.1.2', 'Notes', 'deploy', 'always', TRUE, 'manual', 'skipped', 2, \
         '2026-12-01 10:45:00')",
        "INSERT INTO run_events (run_id, seq, event_type, actor, at, payload) VALUES \
         ('r1', 1, 'run_created', 'admin', '2026-12-01 10:00:00', '{}'), \
         ('r1', 2, 'run_transitioned', 'admin', '2026-12-01 10:30:00', \
          '{\"action\":\"start\",\"from\":\"planned\",\"to\":\"preparing\"}'), \
         ('r1', 3, 'item_updated', 'admin', '2026-12-01 10:40:00', \
          '{\"item_id\":\"i1\",\"changes\":{\"status\":{\"from\":\"pending\",\"to\":\"in_progress\"}}}'), \
         ('r1', 4, 'item_updated', 'admin', '2026-12-01 10:48:00', \
          '{\"item_id\":\"i1\",\"changes\":{\"status\":{\"from\":\"in_progress\",\"to\":\"done\"}}}'), \
         ('r1', 5, 'run_overridden', 'admin', '2026-12-01 11:00:00', \
          '{\"action\":\"advance\",\"overridden_blockers\":[{\"kind\":\"item\",\"item_id\":\"i2\"}]}'), \
         ('r1', 6, 'decision_recorded', 'admin', '2026-12-01 11:30:00', '{}')",
        "INSERT INTO decisions (id, run_id, point_key, outcome, rationale, criteria, decided_by, decided_at, seq) \
         VALUES ('d1', 'r1', 'checkpoint', 'rollback', 'Errors', '[]', 'admin', '2026-12-01 11:30:00', 6)",
    ] {
        diesel::sql_query(statement).execute(conn).expect("seed");
    }
    step(conn, at, true);
    let time = |column: &str| format!("SUBSTR(CAST({column} AS TEXT), 1, 19)");
    assert_eq!(
        texts(
            conn,
            &format!(
                "SELECT {} || ' ' || {} || ' ' || {} AS v FROM runs",
                time("started_at"),
                time("finished_at"),
                time("rollback_decided_at")
            )
        ),
        ["2026-12-01 10:30:00 2026-12-01 12:00:00 2026-12-01 11:30:00"]
    );
    assert_eq!(
        texts(
            conn,
            &format!("SELECT {} AS v FROM decisions", time("stage_entered_at"))
        ),
        ["2026-12-01 11:00:00"]
    );
    assert_eq!(
        texts(
            conn,
            &format!(
                "SELECT id || ' ' || COALESCE({}, '-') || ' ' || {} AS v FROM run_items ORDER BY id",
                time("started_at"),
                time("finished_at")
            )
        ),
        [
            "i1 2026-12-01 10:40:00 2026-12-01 10:48:00",
            "i2 - 2026-12-01 10:45:00"
        ]
    );
    assert_eq!(
        texts(conn, "SELECT item_id || ' ' || kind AS v FROM item_blocks"),
        ["i2 overridden"]
    );
    assert_eq!(
        texts(
            conn,
            "SELECT week || ' ' || CAST(position AS TEXT) || ' ' || CAST(runs AS TEXT) || ' ' || \
             CAST(skipped AS TEXT) || ' ' || CAST(waived AS TEXT) || ' ' || \
             CAST(skipped_failed AS TEXT) || ' ' || CAST(timed AS TEXT) || ' ' || \
             CAST(CAST(ROUND(worked_secs) AS INTEGER) AS TEXT) AS v FROM item_rollups ORDER BY position"
        ),
        ["2026-11-30 0 1 0 0 0 1 480", "2026-11-30 1 1 1 1 1 0 0"]
    );
    assert_eq!(
        texts(
            conn,
            "SELECT point_key || ' ' || outcome || ' ' || CAST(decisions AS TEXT) || ' ' || \
             CAST(CAST(ROUND(decide_secs) AS INTEGER) AS TEXT) AS v FROM decision_rollups"
        ),
        ["checkpoint rollback 1 1800"]
    );
}

#[test]
fn upgrading_sqlite_reads_the_insight_times_from_the_log() {
    let dir = std::env::temp_dir().join(format!("shipshape-upgrade-{}", uuid::Uuid::new_v4()));
    let _cleanup = Cleanup::Folder(dir.clone());
    let url = DbUrl::Sqlite(dir.join("m.db").display().to_string());
    let mut conn = establish(&url).expect("connect");
    let count = SQLITE_MIGRATIONS
        .migrations()
        .map(|m: Vec<Box<dyn Migration<Sqlite>>>| m.len());
    upgrading_reads_the_insight_times_from_the_log(&mut conn, count.expect("migrations"));
}

#[test]
fn upgrading_postgres_reads_the_insight_times_from_the_log() {
    let name = format!("shipshape_upgrade_{}", uuid::Uuid::new_v4().simple());
    let url =
        create_postgres_database(&postgres_server_url(), &name).expect("PostgreSQL is reachable");
    let _cleanup = Cleanup::Database(name);
    let mut conn = establish(&DbUrl::Postgres(url)).expect("connect");
    let count = POSTGRES_MIGRATIONS
        .migrations()
        .map(|m: Vec<Box<dyn Migration<Pg>>>| m.len());
    upgrading_reads_the_insight_times_from_the_log(&mut conn, count.expect("migrations"));
    drop(conn);
}
