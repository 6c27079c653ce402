//! What survives a restart: a generated token signing key is kept in the database, so access
//! tokens stay valid; the admin is created once; the built-in template is not duplicated.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use serde_json::{Value, json};
use shipshape_api::config::{Config, Secret};
use shipshape_tests::{Backend, TestDb};

async fn serve(url: &str, admin_password: &str) -> (String, actix_web::dev::ServerHandle) {
    let mut config = Config::for_database(url);
    config.admin_password = Some(Secret::new(admin_password));
    let (server, addr) = shipshape_api::server::start(config).await.unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://{addr}"), handle)
}

async fn restart_keeps_tokens_and_seeds_once(backend: Backend) {
    let (_db, url) = TestDb::create(backend);
    let client = reqwest::Client::new();
    let (first, handle) = serve(&url, "first-admin-password").await;
    let login: Value = client
        .post(format!("{first}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "first-admin-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    handle.stop(true).await;

    // A second start with another admin password changes nothing that exists.
    let (second, handle) = serve(&url, "another-admin-password").await;
    let me = client
        .get(format!("{second}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status().as_u16(),
        200,
        "the token signed before the restart is still valid"
    );
    let templates: Value = client
        .get(format!("{second}/api/v1/templates"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        templates.as_array().unwrap().len(),
        1,
        "the built-in template exists once"
    );
    assert_eq!(
        templates[0]["version"], 1,
        "an unchanged built-in template gets no new version"
    );
    let relogin = client
        .post(format!("{second}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "first-admin-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        relogin.status().as_u16(),
        200,
        "the first admin password still holds"
    );
    handle.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_restart_keeps_tokens_and_seeds_once() {
    restart_keeps_tokens_and_seeds_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_keeps_tokens_and_seeds_once() {
    restart_keeps_tokens_and_seeds_once(Backend::Postgres).await;
}

/// Signs in as `admin` with `password`; returns the status.
async fn admin_login(client: &reqwest::Client, base: &str, password: &str) -> u16 {
    client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn a_sign_in_lock_survives_a_restart_and_is_audited(backend: Backend) {
    let (_db, url) = TestDb::create(backend);
    let client = reqwest::Client::new();
    let (first, handle) = serve(&url, "first-admin-password").await;
    for _ in 0..5 {
        assert_eq!(admin_login(&client, &first, "wrong-password").await, 401);
    }
    assert_eq!(
        admin_login(&client, &first, "first-admin-password").await,
        429
    );
    handle.stop(true).await;

    // A restart forgets nothing: the account is still locked, the right password waits.
    let (second, handle) = serve(&url, "first-admin-password").await;
    assert_eq!(
        admin_login(&client, &second, "first-admin-password").await,
        429
    );
    handle.stop(true).await;

    // The lock's start is in the audit log: which account, from where, how many failures.
    let store = shipshape_store::Store::connect(&url, 1).unwrap();
    let audit = store.audit_log(0, 100).unwrap().items;
    let locks: Vec<_> = audit
        .iter()
        .filter(|e| e.action == shipshape_domain::wire::AuditAction::SignInLocked)
        .collect();
    assert_eq!(locks.len(), 1, "one lock started: {audit:?}");
    assert_eq!(locks[0].subject, "admin");
    assert_eq!(locks[0].address.as_deref(), Some("127.0.0.1"));
    let details = &locks[0].details;
    assert_eq!(details["failures"], 5);
    assert!(details["locked_until"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sign_in_lock_survives_a_restart_and_is_audited() {
    a_sign_in_lock_survives_a_restart_and_is_audited(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sign_in_lock_survives_a_restart_and_is_audited() {
    a_sign_in_lock_survives_a_restart_and_is_audited(Backend::Postgres).await;
}

async fn two_instances_on_one_database_share_the_sign_in_guard(backend: Backend) {
    let (_db, url) = TestDb::create(backend);
    let client = reqwest::Client::new();
    let (first, first_handle) = serve(&url, "the-admin-password").await;
    let (second, second_handle) = serve(&url, "the-admin-password").await;
    // Failures spread over both instances add up: N instances do not allow N× the guesses.
    for base in [&first, &second, &first, &second, &first] {
        assert_eq!(admin_login(&client, base, "wrong-password").await, 401);
    }
    for base in [&first, &second] {
        assert_eq!(
            admin_login(&client, base, "the-admin-password").await,
            429,
            "locked on every instance"
        );
    }
    first_handle.stop(true).await;
    second_handle.stop(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_instances_share_the_sign_in_guard() {
    two_instances_on_one_database_share_the_sign_in_guard(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_instances_share_the_sign_in_guard() {
    two_instances_on_one_database_share_the_sign_in_guard(Backend::Postgres).await;
}
