//! `shipshape audit verify`, the real binary, on SQLite and PostgreSQL: it prints a verdict per
//! log, exits 0 while every chain holds, and exits non-zero naming the first bad `seq` once
//! an event is changed behind the server's back.

#![expect(
    clippy::expect_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::process::Command;

use diesel::connection::SimpleConnection;
use shipshape_api::config::Config;
use shipshape_domain::Role;
use shipshape_domain::text::Label;
use shipshape_domain::wire::UpdateRunRequest;
use shipshape_store::{Actor, DbUrl, EDULIBRA_TEMPLATE_ID, NewRun};

fn postgres_server_url() -> String {
    std::env::var("SHIPSHAPE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Prepares a database as the server does, and writes a run with a few events.
fn database_with_a_run(url: &str) -> String {
    let state = shipshape_api::server::prepare(&Config::for_database(url)).expect("prepares");
    let store = &state.store;
    let admin = store.user_by_name("admin").expect("reads").expect("admin");
    let actor = Actor {
        id: admin.id,
        username: "admin".into(),
        role: Role::Admin,
    };
    let run = store
        .create_run(
            NewRun {
                template_id: EDULIBRA_TEMPLATE_ID.into(),
                template_version: None,
                product: Label::parse("product", "EduLibra").expect("a label"),
                release_version: Label::parse("release_version", "4.2.0").expect("a label"),
                environment: Label::parse("environment", "production").expect("a label"),
                window_start: None,
                window_end: None,
                expected_downtime_minutes: None,
                commit_sha: None,
                committed_at: None,
            },
            &actor,
        )
        .expect("creates a run");
    for minutes in [10, 20, 30] {
        let patch = UpdateRunRequest {
            expected_downtime_minutes: Some(Some(minutes)),
            ..UpdateRunRequest::default()
        }
        .validated()
        .expect("a valid patch");
        store
            .update_run(&run.summary.id, None, &patch, &actor)
            .expect("updates the run");
    }
    run.summary.id
}

fn verify(url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shipshape"))
        .args(["audit", "verify"])
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn check(url: &str) {
    let run = database_with_a_run(url);
    let (ok, printed) = verify(url, &[]);
    assert!(ok, "{printed}");
    assert!(
        printed.contains(&format!("run {run}: verified, 4 entries, head ")),
        "{printed}"
    );
    assert!(printed.contains("audit log: verified"), "{printed}");

    let mut conn =
        shipshape_store::db::establish(&DbUrl::parse(url).expect("url")).expect("connects");
    conn.batch_execute(&format!(
        "UPDATE run_events SET payload = REPLACE(payload, '\"to\":20', '\"to\":25') \
         WHERE run_id = '{run}' AND seq = 3"
    ))
    .expect("tampers");
    let (ok, printed) = verify(url, &["--run", &run]);
    assert!(!ok, "a broken chain exits non-zero: {printed}");
    assert!(
        printed.contains(&format!("run {run}: BROKEN at seq 3")),
        "{printed}"
    );
    let (ok, _) = verify(url, &[]);
    assert!(!ok, "the whole check fails too");
}

#[test]
fn audit_verify_names_the_first_bad_event_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("audit-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    check(&format!("sqlite://{}", dir.join("shipshape.db").display()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn audit_verify_names_the_first_bad_event_on_postgres() {
    let name = format!("shipshape_cli_{}", uuid::Uuid::new_v4().simple());
    let server = postgres_server_url();
    let url = shipshape_store::admin::create_postgres_database(&server, &name)
        .expect("PostgreSQL must be reachable for the tests");
    check(&url);
    let _ = shipshape_store::admin::drop_postgres_database(&server, &name);
}
