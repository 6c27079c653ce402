//! Safe retries with `Idempotency-Key`, over real HTTP on SQLite and PostgreSQL: a tool that
//! sends a POST again after a network blip gets the first answer and no second run, event,
//! token or member; a key reused for another request is refused; two requests with one key
//! at once act once; a refused request may be retried once its cause is fixed; another
//! instance replays the same answer; a key is kept for a day.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use shipshape_tests::{Backend, EDULIBRA, TestApp};

struct Sent {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

async fn post_with_key(app: &TestApp, token: &str, path: &str, body: &Value, key: &str) -> Sent {
    let res = reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let body = res.json().await.unwrap_or(Value::Null);
    Sent {
        status,
        replayed,
        body,
    }
}

fn new_run(product: &str) -> Value {
    json!({
        "template_id": EDULIBRA,
        "product": product,
        "release_version": "4.2.0",
        "environment": "staging",
    })
}

async fn runs_of(app: &TestApp, product: &str) -> Vec<Value> {
    let page = app
        .get(&app.admin, "/api/v1/runs?limit=100")
        .await
        .expect(200)
        .json;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["product"] == product)
        .cloned()
        .collect()
}

async fn a_retried_create_answers_the_first_answer_and_makes_one_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = new_run("Retry Catalogue");
    let first = post_with_key(&app, &app.admin, "/api/v1/runs", &body, "create-run-1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!first.replayed);
    let again = post_with_key(&app, &app.admin, "/api/v1/runs", &body, "create-run-1").await;
    assert_eq!(again.status, 201);
    assert!(again.replayed, "a replay says so");
    assert_eq!(
        again.body, first.body,
        "the same answer, byte for byte in meaning"
    );
    assert_eq!(runs_of(&app, "Retry Catalogue").await.len(), 1);

    // The same key for another request is a mistake the client must hear of.
    let other = post_with_key(
        &app,
        &app.admin,
        "/api/v1/runs",
        &new_run("Another Product"),
        "create-run-1",
    )
    .await;
    assert_eq!(other.status, 422);
    assert_eq!(other.body["code"], "idempotency_key_reused");
    assert!(runs_of(&app, "Another Product").await.is_empty());

    // Keys are per user: another user's same key is a request of its own.
    let manager = app.user("retrying-manager", "release_manager").await;
    let theirs = post_with_key(&app, &manager, "/api/v1/runs", &body, "create-run-1").await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert!(!theirs.replayed);
    assert_ne!(theirs.body["id"], first.body["id"]);
    assert_eq!(runs_of(&app, "Retry Catalogue").await.len(), 2);

    // A malformed key is refused before anything happens.
    let bad = post_with_key(
        &app,
        &app.admin,
        "/api/v1/runs",
        &new_run("Bad Key"),
        "two words",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["code"], "bad_header");
    assert!(runs_of(&app, "Bad Key").await.is_empty());
    app.stop().await;
}

async fn transitions_tokens_and_members_act_once_under_retries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap();
    let path = format!("/api/v1/runs/{id}/transitions");
    let start = json!({"action": "start", "reason": "window open"});
    let first = post_with_key(&app, &app.admin, &path, &start, "start-1").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = post_with_key(&app, &app.admin, &path, &start, "start-1").await;
    assert_eq!((again.status, again.replayed), (StatusCode::OK, true));
    assert_eq!(again.body, first.body);
    let transitions = app
        .events(id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "run_transitioned")
        .count();
    assert_eq!(transitions, 1, "one transition event");

    // A refusal that a fix can change is not kept: once the gate is done, the same request
    // with the same key is served afresh.
    let advance = json!({"action": "advance", "reason": "ready"});
    let refused = post_with_key(&app, &app.admin, &path, &advance, "advance-1").await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["code"], "gate_blocked");
    app.finish_gate(&app.admin, id, "deploy").await;
    app.decide(&app.admin, id, "go_no_go", "go")
        .await
        .expect(201);
    let served = post_with_key(&app, &app.admin, &path, &advance, "advance-1").await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert!(!served.replayed);
    assert_eq!(served.body["status"], "deploying");

    // An API token: the retry gets the same secret, and there is one token.
    let token = json!({"name": "deploy bot", "scopes": ["runs:read"], "expires_in_days": 7});
    let made = post_with_key(&app, &app.admin, "/api/v1/tokens", &token, "token-1").await;
    assert_eq!(made.status, 201, "{}", made.body);
    let remade = post_with_key(&app, &app.admin, "/api/v1/tokens", &token, "token-1").await;
    assert!(remade.replayed);
    assert!(made.body["secret"].as_str().unwrap().starts_with("ss_"));
    assert_eq!(remade.body["secret"], made.body["secret"]);
    assert_eq!(remade.body["token"]["id"], made.body["token"]["id"]);
    let tokens = app.get(&app.admin, "/api/v1/tokens").await.expect(200).json;
    let named = tokens
        .as_array()
        .or_else(|| tokens["tokens"].as_array())
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "deploy bot")
        .count();
    assert_eq!(named, 1);

    // A team member.
    app.user("retried-member", "engineer").await;
    let member = json!({"username": "retried-member", "run_role": "on call"});
    let members_path = format!("/api/v1/runs/{id}/members");
    let added = post_with_key(&app, &app.admin, &members_path, &member, "member-1").await;
    assert_eq!(added.status, 201, "{}", added.body);
    let readded = post_with_key(&app, &app.admin, &members_path, &member, "member-1").await;
    assert_eq!(
        (readded.status, readded.replayed),
        (StatusCode::CREATED, true)
    );
    app.stop().await;
}

async fn two_requests_with_one_key_at_once_act_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for round in 0..5 {
        let product = format!("Concurrent {round}");
        let body = new_run(&product);
        let key = format!("together-{round}");
        let (a, b) = tokio::join!(
            post_with_key(&app, &app.admin, "/api/v1/runs", &body, &key),
            post_with_key(&app, &app.admin, "/api/v1/runs", &body, &key),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort_unstable();
        assert!(
            statuses == [201, 201] || statuses == [201, 409],
            "one is served, the other replayed or told to wait: {statuses:?} {} {}",
            a.body,
            b.body
        );
        if statuses == [201, 201] {
            assert_eq!(a.body["id"], b.body["id"]);
            assert!(a.replayed != b.replayed);
        } else {
            let waiting = if a.status == 409 { &a } else { &b };
            assert_eq!(waiting.body["code"], "idempotency_key_in_use");
        }
        assert_eq!(runs_of(&app, &product).await.len(), 1, "round {round}");
        // After the first is answered, the retry replays it.
        let later = post_with_key(&app, &app.admin, "/api/v1/runs", &body, &key).await;
        assert_eq!((later.status, later.replayed), (StatusCode::CREATED, true));
    }
    app.stop().await;
}

async fn a_key_is_kept_for_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = new_run("Day Old");
    let first = post_with_key(&app, &app.admin, "/api/v1/runs", &body, "day-1").await;
    assert_eq!(first.status, 201);
    // Abort it so that a new run of the product may be created.
    let id = first.body["id"].as_str().unwrap();
    app.transition(&app.admin, id, "abort").await.expect(200);
    let age = |hours: i64| match backend {
        Backend::Sqlite => format!(
            "UPDATE idempotency_keys SET created_at = strftime('%Y-%m-%d %H:%M:%f', created_at, '-{hours} hours')"
        ),
        Backend::Postgres => format!(
            "UPDATE idempotency_keys SET created_at = created_at - INTERVAL '{hours} hours'"
        ),
    };
    app.sql(&age(23));
    let within = post_with_key(&app, &app.admin, "/api/v1/runs", &body, "day-1").await;
    assert!(within.replayed, "still kept after 23 hours");
    app.sql(&age(2));
    let after = post_with_key(&app, &app.admin, "/api/v1/runs", &body, "day-1").await;
    assert_eq!(after.status, 201, "{}", after.body);
    assert!(!after.replayed, "after a day the key is new");
    assert_ne!(after.body["id"], first.body["id"]);
    app.stop().await;
}

/// A claim whose server stopped before answering is taken over after a minute, by one
/// request only; the old serving can then neither keep nor give back the key.
async fn an_abandoned_claim_is_taken_over_once(backend: Backend) {
    use shipshape_store::{ClaimTimes, KeyClaim, Store};
    let (_db, url) = shipshape_tests::TestDb::create(backend);
    let store = Store::connect(&url, 2).unwrap();
    store.migrate().unwrap();
    let at = |secs: i64| ClaimTimes {
        now: shipshape_store::now_micros() + chrono::Duration::seconds(secs),
        keep: chrono::Duration::hours(24),
        stale: chrono::Duration::seconds(60),
    };
    let KeyClaim::Begun(first) = store.claim_idempotency_key("u", "k", "f", at(0)).unwrap() else {
        panic!("a new key is begun");
    };
    assert_eq!(
        store.claim_idempotency_key("u", "k", "f", at(30)).unwrap(),
        KeyClaim::InProgress
    );
    // Two retries after the minute: one takes it over.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| store.claim_idempotency_key("u", "k", "f", at(90)).unwrap());
        let b = s.spawn(|| store.claim_idempotency_key("u", "k", "f", at(90)).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    let taken: Vec<&KeyClaim> = [&a, &b]
        .into_iter()
        .filter(|c| matches!(c, KeyClaim::Begun(_)))
        .collect();
    assert_eq!(taken.len(), 1, "{a:?} {b:?}");
    let KeyClaim::Begun(second) = taken[0].clone() else {
        unreachable!()
    };
    assert_ne!(first, second);
    // The first serving finishes late: it cannot keep its answer or give the key back.
    assert!(
        !store
            .complete_idempotency_key("u", "k", &first, 201, b"late")
            .unwrap()
    );
    store.release_idempotency_key("u", "k", &first).unwrap();
    assert!(
        store
            .complete_idempotency_key("u", "k", &second, 201, b"kept")
            .unwrap()
    );
    assert_eq!(
        store.claim_idempotency_key("u", "k", "f", at(100)).unwrap(),
        KeyClaim::Done {
            status: 201,
            response: b"kept".to_vec()
        }
    );
}

shipshape_tests::each_backend!(
    an_abandoned_claim_is_taken_over_once,
    a_retried_create_answers_the_first_answer_and_makes_one_run,
    transitions_tokens_and_members_act_once_under_retries,
    two_requests_with_one_key_at_once_act_once,
    a_key_is_kept_for_a_day,
);

/// Several instances share the keys (PostgreSQL: SQLite is one process's database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_replays_the_answer() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = a.spawn_beside().await;
    let body = new_run("Two Instances");
    let first = post_with_key(&a, &a.admin, "/api/v1/runs", &body, "across-1").await;
    assert_eq!(first.status, 201);
    let on_b = post_with_key(&b, &a.admin, "/api/v1/runs", &body, "across-1").await;
    assert_eq!((on_b.status, on_b.replayed), (StatusCode::CREATED, true));
    assert_eq!(on_b.body, first.body);
    assert_eq!(runs_of(&a, "Two Instances").await.len(), 1);
    drop(b);
}
