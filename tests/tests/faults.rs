//! Database faults: a PostgreSQL restart and a SQLite file that cannot be written are
//! answered `503 database_unavailable` with `Retry-After` while they last — never a 500 — and
//! the server serves again on its own once the database is back.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shipshape_tests::postgres::PrivatePostgres;
use shipshape_tests::{Answer, Backend, Read, TestApp, TestDb, items};

/// Asserts the answer a request gets while the database cannot serve.
#[track_caller]
fn assert_unavailable(a: Answer) {
    let a = a.expect_problem(503, "database_unavailable");
    let wait: u64 = a
        .retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("503 carries Retry-After in seconds: {:?}", a.retry_after));
    assert!(wait >= 1, "Retry-After is at least a second");
}

/// Reads the run and changes one of its items: both must work.
async fn read_and_write(
    app: &TestApp,
    run_id: &str,
    item_id: &str,
    note: &str,
) -> (Answer, Answer) {
    let read = app.get(&app.admin, &format!("/api/v1/runs/{run_id}")).await;
    let write = app
        .patch(
            &app.admin,
            &format!("/api/v1/runs/{run_id}/items/{item_id}"),
            json!({ "note": note }),
            None,
        )
        .await;
    (read, write)
}

/// The item's note as the server has it now.
async fn note_of(app: &TestApp, run_id: &str, item_id: &str) -> Value {
    let run = app.run(&app.admin, run_id).await;
    items(&run)
        .into_iter()
        .find(|i| i["id"] == item_id)
        .map(|i| i["note"].clone())
        .unwrap_or_default()
}

async fn first_item(app: &TestApp) -> (String, String) {
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let item: Value = items(&run).remove(0);
    (run_id, item["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_is_answered_503_while_down_and_served_again_within_seconds() {
    // Arrange: a PostgreSQL of this test's own, a server on it, every pooled connection used.
    let pg = PrivatePostgres::start();
    let (db, url) = TestDb::create_on(Backend::Postgres, &pg.url());
    let app = TestApp::spawn_on(db, &url, |c| c.db_pool_size = 4).await;
    let (run_id, item_id) = first_item(&app).await;
    let path = format!("/api/v1/runs/{run_id}");
    let warm = tokio::join!(
        app.get(&app.admin, &path),
        app.get(&app.admin, &path),
        app.get(&app.admin, &path),
        app.get(&app.admin, &path),
    );
    for a in [warm.0, warm.1, warm.2, warm.3] {
        a.expect(200);
    }

    // Act: the database goes down (every connection the server holds is cut).
    pg.stop();

    // Assert: while it is down, reads and writes are 503 with Retry-After; readiness says
    // so, liveness does not.
    let (read, write) = read_and_write(&app, &run_id, &item_id, "while down").await;
    assert_unavailable(read);
    assert_unavailable(write);
    assert_unavailable(
        app.send(reqwest::Method::GET, "/readyz", None, None, &[])
            .await,
    );
    app.send(reqwest::Method::GET, "/healthz", None, None, &[])
        .await
        .expect(200);

    // The database comes back: the server serves again within seconds, with no restart of
    // its own, and every answer in between is a 503, never a 500.
    pg.start_server();
    let back = Instant::now();
    loop {
        let a = app.get(&app.admin, &format!("/api/v1/runs/{run_id}")).await;
        if a.status == 200 {
            break;
        }
        assert_unavailable(a);
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "the server serves again within seconds of the database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Not one lucky connection: every one the pool hands out now works, several at once.
    for i in 0..3 {
        let answers = tokio::join!(
            app.get(&app.admin, &path),
            app.get(&app.admin, &path),
            app.get(&app.admin, &path),
            app.get(&app.admin, &path),
        );
        for a in [answers.0, answers.1, answers.2, answers.3] {
            a.expect(200);
        }
        let (_, write) = read_and_write(&app, &run_id, &item_id, &format!("after {i}")).await;
        write.expect(200);
    }
    assert_eq!(
        note_of(&app, &run_id, &item_id).await,
        "after 2",
        "the writes after the restart landed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_while_idle_costs_no_request() {
    let pg = PrivatePostgres::start();
    let (db, url) = TestDb::create_on(Backend::Postgres, &pg.url());
    let app = TestApp::spawn_on(db, &url, |c| c.db_pool_size = 4).await;
    let (run_id, item_id) = first_item(&app).await;

    // The database restarts while nobody uses the server: the pooled connections are dead.
    pg.stop();
    pg.start_server();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The next requests are served, the write first: connections that sat idle are checked
    // before they are handed out.
    let write = app
        .patch(
            &app.admin,
            &format!("/api/v1/runs/{run_id}/items/{item_id}"),
            json!({ "note": "after an idle restart" }),
            None,
        )
        .await;
    write.expect(200);
    app.get(&app.admin, &format!("/api/v1/runs/{run_id}"))
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_pauses_open_streams_and_they_resume_without_gaps() {
    let pg = PrivatePostgres::start();
    let (db, url) = TestDb::create_on(Backend::Postgres, &pg.url());
    let app = TestApp::spawn_on(db, &url, |c| c.db_pool_size = 4).await;
    let (run_id, item_id) = first_item(&app).await;
    let mut all = app.stream(&app.admin, "/api/v1/events/stream", None).await;
    let mut one = app
        .stream(
            &app.admin,
            &format!("/api/v1/runs/{run_id}/events/stream"),
            None,
        )
        .await;
    let history = one.drain(Duration::from_millis(400)).await;
    let last_seq = history.last().unwrap().id;
    let (_, write) = read_and_write(&app, &run_id, &item_id, "before the restart").await;
    write.expect(200);
    let before = all.next(Duration::from_secs(5)).await;
    assert_eq!(one.next(Duration::from_secs(5)).await.id, last_seq + 1);

    // The database restarts. The streams pause; they do not end.
    pg.stop();
    for stream in [&mut all, &mut one] {
        match stream.read(Duration::from_millis(500)).await {
            Read::Quiet => {}
            other => panic!("a stream pauses while the database is down; got {other:?}"),
        }
    }
    pg.start_server();
    let back = Instant::now();
    loop {
        let (_, write) = read_and_write(&app, &run_id, &item_id, "after the restart").await;
        if write.status == 200 {
            break;
        }
        assert_unavailable(write);
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "writes work again within seconds"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The change after the restart reaches both streams, right after the one before it: the
    // listening connection came back, and nothing was lost or sent twice.
    let after = all.next(Duration::from_secs(10)).await;
    assert_eq!(after.id, before.id + 1, "the next position, no gap");
    assert_eq!(
        after.data["payload"]["changes"]["note"]["to"],
        "after the restart"
    );
    assert_eq!(one.next(Duration::from_secs(10)).await.id, last_seq + 2);
    for stream in [&mut all, &mut one] {
        assert!(
            stream.drain(Duration::from_millis(400)).await.is_empty(),
            "nothing twice"
        );
    }
    // And another instance's change would be heard: the listener is back. A second instance
    // writes; the first one's stream gets it.
    let other = app.spawn_beside().await;
    other
        .patch(
            &other.admin,
            &format!("/api/v1/runs/{run_id}/items/{item_id}"),
            json!({ "note": "through another instance" }),
            None,
        )
        .await
        .expect(200);
    let heard = all.next(Duration::from_secs(5)).await;
    assert_eq!(heard.id, after.id + 1);
    drop(other);
}

/// Makes the SQLite database's write-ahead log unwritable (the immutable attribute, which
/// holds even for root), as a failing or read-only-remounted disk would; undone on drop.
struct Unwritable(std::path::PathBuf);

impl Unwritable {
    fn set(path: std::path::PathBuf) -> Unwritable {
        chattr("+i", &path);
        Unwritable(path)
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        chattr("-i", &self.0);
    }
}

fn chattr(flag: &str, path: &std::path::Path) {
    let out = std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chattr {flag} {} (needs root on an ext4-like file system): {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_that_cannot_be_written_is_answered_503_and_writes_resume_after() {
    let (db, url) = TestDb::create(Backend::Sqlite);
    let wal = std::path::PathBuf::from(format!("{}-wal", url.trim_start_matches("sqlite://")));
    let app = TestApp::spawn_on(db, &url, |_| {}).await;
    let (run_id, item_id) = first_item(&app).await;

    {
        let _guard = Unwritable::set(wal);
        let (read, write) = read_and_write(&app, &run_id, &item_id, "on a broken disk").await;
        read.expect(200);
        assert_unavailable(write);
    }

    let (read, write) = read_and_write(&app, &run_id, &item_id, "disk mended").await;
    read.expect(200);
    write.expect(200);
    assert_eq!(note_of(&app, &run_id, &item_id).await, "disk mended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_locked_by_another_process_is_answered_503() {
    let (db, url) = TestDb::create(Backend::Sqlite);
    let path = url.trim_start_matches("sqlite://").to_owned();
    let app = TestApp::spawn_on(db, &url, |_| {}).await;
    let (run_id, item_id) = first_item(&app).await;

    // Another process (a backup tool, a person in the sqlite shell) holds the write lock
    // longer than the server waits for it.
    let mut other = shipshape_store::db::establish(&shipshape_store::DbUrl::Sqlite(path)).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut other, "BEGIN EXCLUSIVE").unwrap();
    let (_, write) = read_and_write(&app, &run_id, &item_id, "while locked").await;
    assert_unavailable(write);
    diesel::connection::SimpleConnection::batch_execute(&mut other, "COMMIT").unwrap();

    let (_, write) = read_and_write(&app, &run_id, &item_id, "after the lock").await;
    write.expect(200);
}
