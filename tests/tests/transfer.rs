//! Backups that are proven to restore, and whole databases moved through a file: a SQLite
//! backup made under write load holds every write acknowledged before it began, and its
//! logs verify; an export from SQLite imported into PostgreSQL holds the same rows, serves
//! the same users and tokens, and verifies; and bad input (an unwritable path, a file from a
//! newer version, a truncated file, a tampered log) is refused with a clear error and a
//! non-zero exit, the target left as it was.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use shipshape_store::Store;
use shipshape_tests::{
    ADMIN_PASSWORD, Backend, EDULIBRA, Served, TestApp, TestDb, shipshape_binary,
};

struct Ran {
    ok: bool,
    out: String,
    err: String,
}

fn shipshape(args: &[&str], database_url: &str) -> Ran {
    let out = Command::new(shipshape_binary())
        .args(args)
        .args(["--database-url", database_url])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    Ran {
        ok: out.status.success(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shipshape-transfer-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The rows of an export, per table, without its header and trailer.
fn rows(path: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut tables: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(t) = v["table"].as_str() {
            tables
                .entry(t.to_owned())
                .or_default()
                .push(v["row"].clone());
        }
    }
    for rows in tables.values_mut() {
        rows.sort_by_key(|r| r.to_string());
    }
    tables
}

/// Runs at two stages, with decisions, sign-offs, probe checks, a note in many scripts, an
/// API token, users and a webhook subscription: something of every kind to move.
async fn some_of_everything(app: &TestApp) -> (Vec<String>, String) {
    let done = app.create_run(&app.admin, "EduLibra", "production").await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    app.transition(&app.admin, &done_id, "start")
        .await
        .expect(200);
    app.complete(&app.admin, &done_id).await;
    let live = app.create_run(&app.admin, "Catalogue", "staging").await;
    let live_id = live["id"].as_str().unwrap().to_owned();
    app.note(&live, 0, "ünïcödé, \"quotes\", and a\nnewline")
        .await;
    let token = app
        .post(
            &app.admin,
            "/api/v1/tokens",
            json!({"name": "ci", "scopes": ["runs:read"], "expires_in_days": 30}),
        )
        .await
        .expect(201)
        .json["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &app.admin,
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "event_types": ["run_created"]}),
    )
    .await
    .expect(201);
    (vec![done_id, live_id], token)
}

async fn an_export_from_sqlite_imports_into_postgresql_and_serves_the_same() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (runs, token) = some_of_everything(&app).await;
    let dir = scratch();
    let file = dir.join("shipshape.export");
    let exported = shipshape(&["export", file.to_str().unwrap()], &app.db_url);
    assert!(exported.ok, "{}\n{}", exported.out, exported.err);
    assert!(exported.out.contains("Exported"), "{}", exported.out);
    assert_private(&file);

    let (target_db, target_url) = TestDb::create(Backend::Postgres);
    let imported = shipshape(&["import", file.to_str().unwrap()], &target_url);
    assert!(imported.ok, "{}\n{}", imported.out, imported.err);

    // The same rows, table by table, in the export's one form.
    let again = dir.join("again.export");
    let reexported = shipshape(&["export", again.to_str().unwrap()], &target_url);
    assert!(reexported.ok, "{}", reexported.err);
    let (before, after) = (rows(&file), rows(&again));
    assert!(before.contains_key("run_events") && before.contains_key("api_tokens"));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (table, rows) in &before {
        assert_eq!(rows, &after[table], "table {table}");
    }

    // Whole runs read the same from both stores, and their logs verify.
    let source = Store::connect(&app.db_url, 1).unwrap();
    let target = Store::connect(&target_url, 1).unwrap();
    for id in &runs {
        let a = serde_json::to_value(source.run(id).unwrap()).unwrap();
        let b = serde_json::to_value(target.run(id).unwrap()).unwrap();
        assert_eq!(a, b, "run {id}");
        assert!(target.verify_run(id).unwrap().verified);
    }
    assert!(target.verify_audit_log().unwrap().verified);
    app.stop().await;

    // The moved database serves: the admin's password and the tool's token work.
    let served = Served::start((target_db, target_url.clone()), &["serve"]);
    served.read_until(|l| l.contains("listening"));
    let base = format!("http://127.0.0.1:{}", served.port);
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let listed: Value = client
        .get(format!("{base}/api/v1/runs"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        runs.len(),
        "{listed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgresql() {
    an_export_from_sqlite_imports_into_postgresql_and_serves_the_same().await;
}

/// And back, and within one backend.
async fn an_export_round_trips(from: Backend, to: Backend) {
    let app = TestApp::spawn(from).await;
    let (runs, _) = some_of_everything(&app).await;
    let dir = scratch();
    let file = dir.join("x.export");
    assert!(shipshape(&["export", file.to_str().unwrap()], &app.db_url).ok);
    let (_db, url) = TestDb::create(to);
    let imported = shipshape(&["import", file.to_str().unwrap()], &url);
    assert!(imported.ok, "{}", imported.err);
    let target = Store::connect(&url, 1).unwrap();
    for id in &runs {
        assert_eq!(target.run(id).unwrap().summary.id.to_string(), *id);
    }
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_to_sqlite() {
    an_export_round_trips(Backend::Postgres, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_to_postgresql() {
    an_export_round_trips(Backend::Postgres, Backend::Postgres).await;
}

/// Tables a migration fills, which a fresh database has rows in before anything is imported.
fn target_is_untouched(url: &str) {
    let store = Store::connect(url, 1).unwrap();
    assert!(store.run_ids().unwrap().is_empty(), "no run was imported");
    assert_eq!(store.count_users().unwrap(), 0, "no user was imported");
}

async fn bad_files_are_refused_and_the_target_is_left_as_it_was(backend: Backend) {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let _ = some_of_everything(&app).await;
    let dir = scratch();
    let file = dir.join("good.export");
    assert!(shipshape(&["export", file.to_str().unwrap()], &app.db_url).ok);
    let again = shipshape(&["export", file.to_str().unwrap()], &app.db_url);
    assert!(!again.ok && again.err.contains("exists"), "{}", again.err);
    app.stop().await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let (_db, url) = TestDb::create(backend);
    let write = |name: &str, lines: &[String]| {
        let p = dir.join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    };
    let owned: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();

    // From a newer version.
    let mut newer = owned.clone();
    let mut header: Value = serde_json::from_str(&newer[0]).unwrap();
    header["schema"] = json!("99991231000001");
    newer[0] = header.to_string();
    let ran = shipshape(&["import", write("newer", &newer).to_str().unwrap()], &url);
    assert!(!ran.ok);
    assert!(ran.err.contains("newer version"), "{}", ran.err);

    // Truncated: no trailer.
    let truncated = owned[..owned.len() - 5].to_vec();
    let ran = shipshape(
        &["import", write("truncated", &truncated).to_str().unwrap()],
        &url,
    );
    assert!(!ran.ok);
    assert!(ran.err.contains("ends early"), "{}", ran.err);
    target_is_untouched(&url);

    // A line changed, digest and all: the event's hash no longer matches its content.
    let mut tampered = owned.clone();
    let at = tampered
        .iter()
        .position(|l| l.contains("\"table\":\"run_events\"") && l.contains("run_transitioned"))
        .unwrap();
    tampered[at] = tampered[at].replacen("\"actor\":\"admin\"", "\"actor\":\"mallory\"", 1);
    assert_ne!(tampered[at], owned[at]);
    let ran = shipshape(
        &["import", write("digest", &tampered).to_str().unwrap()],
        &url,
    );
    assert!(!ran.ok);
    assert!(ran.err.contains("digest"), "{}", ran.err);
    // …and with the digest made to match, the chain still gives it away.
    let body: String = tampered[..tampered.len() - 1]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    use sha2::Digest;
    let digest = hex_encode(&sha2::Sha256::digest(body.as_bytes()));
    let mut end: Value = serde_json::from_str(tampered.last().unwrap()).unwrap();
    end["end"]["sha256"] = json!(digest);
    let last = tampered.len() - 1;
    tampered[last] = end.to_string();
    let ran = shipshape(
        &["import", write("chain", &tampered).to_str().unwrap()],
        &url,
    );
    assert!(!ran.ok);
    assert!(ran.err.contains("does not verify"), "{}", ran.err);
    target_is_untouched(&url);

    // Not an export at all.
    let ran = shipshape(
        &["import", write("junk", &["hello".into()]).to_str().unwrap()],
        &url,
    );
    assert!(
        !ran.ok && ran.err.contains("not a Shipshape export"),
        "{}",
        ran.err
    );

    // The good file goes in; a second import is refused, the first kept.
    let ran = shipshape(&["import", file.to_str().unwrap()], &url);
    assert!(ran.ok, "{}", ran.err);
    let ran = shipshape(&["import", file.to_str().unwrap()], &url);
    assert!(!ran.ok && ran.err.contains("not empty"), "{}", ran.err);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Backups and exports hold password hashes and secrets: only their owner may read them.
fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

shipshape_tests::each_backend!(bad_files_are_refused_and_the_target_is_left_as_it_was);

/// A backup made while the server takes writes holds every write acknowledged before the
/// backup began, restores (the file is a database the server opens), and its logs verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_under_write_load_restores_every_acknowledged_write() {
    let app = Arc::new(TestApp::spawn(Backend::Sqlite).await);
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(
        Vec::<(std::time::Instant, String)>::new(),
    ));
    let writer = {
        let (app, stop, acknowledged) = (app.clone(), stop.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 400 {
                let run = app
                    .post(
                        &app.admin,
                        "/api/v1/runs",
                        json!({"template_id": EDULIBRA, "product": format!("Load {i}"),
                               "release_version": "1.0.0", "environment": "qa"}),
                    )
                    .await
                    .expect(201)
                    .json;
                let id = run["id"].as_str().unwrap().to_owned();
                app.note(&run, 0, &format!("write {i}")).await;
                acknowledged
                    .lock()
                    .unwrap()
                    .push((std::time::Instant::now(), id));
                i += 1;
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let dir = scratch();
    let copy = dir.join("shipshape.db");
    let began = std::time::Instant::now();
    let url = app.db_url.clone();
    let copy_arg = copy.to_str().unwrap().to_owned();
    let ran = tokio::task::spawn_blocking(move || shipshape(&["backup", &copy_arg], &url))
        .await
        .unwrap();
    assert!(ran.ok, "{}\n{}", ran.out, ran.err);
    assert_private(&copy);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let before: Vec<String> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _)| *at < began)
        .map(|(_, id)| id.clone())
        .collect();
    let total = acknowledged.lock().unwrap().len();
    assert!(before.len() >= 3, "writes were under way: {}", before.len());
    assert!(total > before.len(), "and went on during the backup");

    let restored_url = format!("sqlite://{}", copy.display());
    let restored = Store::connect(&restored_url, 1).unwrap();
    for id in &before {
        let run = serde_json::to_value(restored.run(id).unwrap()).unwrap();
        let noted = run["parts"][0]["sections"][0]["items"][0]["note"]
            .as_str()
            .unwrap_or("");
        assert!(
            noted.starts_with("write "),
            "the note written with {id}: {noted:?}"
        );
    }
    let verified = shipshape(&["audit", "verify"], &restored_url);
    assert!(verified.ok, "{}\n{}", verified.out, verified.err);
    assert!(!verified.out.contains("BROKEN"));
    // The restored file serves.
    let served = Served::start((TestDb::Shared, restored_url), &["serve"]);
    served.read_until(|l| l.contains("listening"));
    let login = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/api/v1/auth/login",
            served.port
        ))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    drop(served);

    // An existing file, or a folder that is not there, is refused with the reason.
    let again = shipshape(&["backup", copy.to_str().unwrap()], &app.db_url);
    assert!(!again.ok && again.err.contains("exists"), "{}", again.err);
    let nowhere = dir.join("no/such/folder/x.db");
    let ran = shipshape(&["backup", nowhere.to_str().unwrap()], &app.db_url);
    assert!(
        !ran.ok && ran.err.contains("cannot write the backup"),
        "{}",
        ran.err
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// PostgreSQL is backed up with its own tools: the command says so and fails.
#[test]
fn a_postgresql_backup_points_to_pg_dump() {
    let (_db, url) = TestDb::create(Backend::Postgres);
    let dir = scratch();
    let ran = shipshape(&["backup", dir.join("x").to_str().unwrap()], &url);
    assert!(!ran.ok);
    assert!(ran.err.contains("pg_dump"), "{}", ran.err);
    assert!(!dir.join("x").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
