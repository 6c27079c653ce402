//! Webhook subscriptions and their deliveries, end to end: real deliveries to receivers on
//! 127.0.0.1 (allow-listed), verified with the Standard Webhooks reference library; retries,
//! redirects, timeouts and garbage; the delivery log, redelivery and test events; secret
//! rotation; deactivation of a subscription that keeps failing; the outbound guard refusing
//! loopback targets without an allow-list, at creation and at connection time; chat
//! messages; and, on PostgreSQL, one send per attempt with two instances. On SQLite and
//! PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use shipshape_tests::receiver::{Received, Receiver, Reply};
use shipshape_tests::{Backend, TestApp};
use standardwebhooks::Webhook;

/// Long enough for a delivery on a loaded test machine.
const ARRIVES: Duration = Duration::from_secs(10);

/// A server that may deliver to 127.0.0.1, retries after 300 ms (three times), and gives
/// up on a request after a second.
async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, configure).await
}

fn configure(c: &mut shipshape_api::config::Config) {
    c.outbound_allow = Some("127.0.0.1/32".into());
    c.webhook_retry_schedule = vec![Duration::from_millis(300); 3];
    c.webhook_timeout_secs = 1;
    c.public_url = Some("https://shipshape.example.com/".into());
}

async fn subscribe(app: &TestApp, body: Value) -> (Value, String) {
    let created = app
        .post(&app.admin, "/api/v1/webhooks", body)
        .await
        .expect(201)
        .json;
    let secret = created["secret"].as_str().unwrap().to_owned();
    (created["subscription"].clone(), secret)
}

fn verify(secret: &str, r: &Received) -> bool {
    Webhook::new(secret)
        .unwrap()
        .verify(&r.body, &r.header_map())
        .is_ok()
}

async fn deliveries(app: &TestApp, sub: &Value) -> Vec<Value> {
    let id = sub["id"].as_str().unwrap();
    app.get(&app.admin, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await
        .expect(200)
        .json["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn delivery(app: &TestApp, sub: &Value, delivery_id: &str) -> Value {
    let id = sub["id"].as_str().unwrap();
    app.get(
        &app.admin,
        &format!("/api/v1/webhooks/{id}/deliveries/{delivery_id}"),
    )
    .await
    .expect(200)
    .json
}

/// Waits until the delivery is no longer pending (or `ARRIVES` passes); returns it.
async fn settled(app: &TestApp, sub: &Value, delivery_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + ARRIVES;
    loop {
        let d = delivery(app, sub, delivery_id).await;
        if d["status"] != "pending" || tokio::time::Instant::now() >= deadline {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deliveries_are_signed_and_a_standard_webhooks_library_verifies_them(backend: Backend) {
    let app = app(backend).await;
    let hook = Receiver::start().await;
    let (sub, secret) = subscribe(
        &app,
        json!({
            "url": format!("{}/hooks/shipshape", hook.url),
            "description": "Deploy pipeline",
            "event_types": ["run_created", "item_updated", "decision_recorded"],
        }),
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(sub["active"], true);
    assert_eq!(sub["format"], "standard");
    // The secret is shown once: never in a listing.
    let listed = app.get(&app.admin, "/api/v1/webhooks").await.expect(200);
    assert_eq!(listed.json.as_array().unwrap().len(), 1);
    assert!(!listed.text.contains(&secret) && !listed.text.contains("whsec_"));
    // A subscription whose filter the run does not match gets nothing.
    let (other, _) = subscribe(
        &app,
        json!({"url": format!("{}/other", hook.url), "event_types": ["run_created"], "product": "Other"}),
    )
    .await;

    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap();
    let got = hook.wait_for(1, ARRIVES).await;
    assert_eq!(got.len(), 1, "one delivery of run_created");
    let first = &got[0];
    assert_eq!(first.path, "/hooks/shipshape");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert!(
        verify(&secret, first),
        "the reference library verifies the delivery"
    );
    let body = first.json();
    assert_eq!(body["type"], "run_created");
    assert_eq!(body["data"]["type"], "run_created");
    assert_eq!(body["data"]["run_id"], run_id);
    assert_eq!(body["data"]["seq"], 1);
    assert_eq!(body["data"]["payload"]["product"], "EduLibra");
    assert_eq!(body["timestamp"], body["data"]["at"]);
    // The data is the event as the log serves it, hashes and all.
    let logged = app.events(run_id).await;
    assert_eq!(body["data"], logged[0]);
    // A tampered body, or the wrong secret, is refused by the same library.
    let mut tampered = first.clone();
    tampered.body = String::from_utf8(first.body.clone())
        .unwrap()
        .replace("EduLibra", "EvilLibra")
        .into_bytes();
    assert!(!verify(&secret, &tampered), "a tampered body is refused");
    let (_, stranger) = subscribe(
        &app,
        json!({"url": format!("{}/x", hook.url), "event_types": ["run_overridden"]}),
    )
    .await;
    assert!(!verify(&stranger, first), "another secret is refused");

    // The delivery log: delivered at the first attempt, with the answer's status and body.
    let log = deliveries(&app, &sub).await;
    assert_eq!(log.len(), 1);
    let id = log[0]["id"].as_str().unwrap();
    assert_eq!(first.header("webhook-id"), Some(id));
    assert!(id.starts_with("msg_"));
    let one = settled(&app, &sub, id).await;
    assert_eq!(one["status"], "delivered");
    assert_eq!(one["attempts"], 1);
    assert_eq!(one["event_type"], "run_created");
    assert_eq!(one["run_id"], run_id);
    assert_eq!(one["body"], body);
    let attempt = &one["attempt_log"][0];
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["error"], Value::Null);
    assert_eq!(attempt["response_excerpt"], "ok");
    assert!(attempt["latency_ms"].as_i64().unwrap() >= 0);
    assert!(
        deliveries(&app, &other).await.is_empty(),
        "the product filter holds"
    );

    // Rotation: a new secret, shown once; both sign while the old one's grace lasts.
    let sub_id = sub["id"].as_str().unwrap();
    let rotated = app
        .post(
            &app.admin,
            &format!("/api/v1/webhooks/{sub_id}/rotate-secret"),
            json!({}),
        )
        .await
        .expect(200)
        .json;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(rotated["subscription"]["previous_secret_expires_at"].is_string());
    app.note(&run, 0, "rotated").await;
    let got = hook.wait_for(2, ARRIVES).await;
    let second = &got[1];
    assert_eq!(second.json()["type"], "item_updated");
    assert_eq!(
        second
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2,
        "two signatures during the grace period"
    );
    assert!(verify(new_secret, second), "the new secret verifies");
    assert!(verify(&secret, second), "the old secret still verifies");
    assert!(!verify(&stranger, second));

    // Admin actions on subscriptions are in the audit log.
    let audit = app
        .get(&app.admin, "/api/v1/audit-log")
        .await
        .expect(200)
        .json;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"webhook_created") && actions.contains(&"webhook_secret_rotated"));
    assert!(
        !audit.to_string().contains("whsec_"),
        "no secret in the audit log"
    );
}

async fn failures_are_retried_under_the_same_id_then_given_up_and_redelivered(backend: Backend) {
    let app = app(backend).await;
    let hook = Receiver::start().await;
    hook.script([
        Reply::status(503, "down for maintenance"),
        Reply {
            location: Some(format!("{}/elsewhere", hook.url)),
            ..Reply::status(302, "")
        },
        Reply::status(200, "\u{0}\u{1}garbage\u{7f}"),
    ]);
    let (sub, secret) = subscribe(
        &app,
        json!({"url": format!("{}/hook", hook.url), "event_types": ["run_created"]}),
    )
    .await;
    app.create_run(&app.admin, "EduLibra", "staging").await;
    let got = hook.wait_for(3, ARRIVES).await;
    assert_eq!(got.len(), 3, "two failures, then success");
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "one webhook-id across retries: {ids:?}"
    );
    assert!(
        got.iter().all(|r| r.path == "/hook"),
        "the redirect is not followed"
    );
    assert!(got.iter().all(|r| verify(&secret, r)));
    assert_eq!(got[0].body, got[2].body, "the same body on every attempt");
    let d = settled(&app, &sub, ids[0]).await;
    assert_eq!(d["status"], "delivered");
    let log = d["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0]["status_code"], 503);
    assert_eq!(log[0]["error"], "HTTP 503");
    assert_eq!(log[0]["response_excerpt"], "down for maintenance");
    assert_eq!(log[1]["status_code"], 302);
    assert_eq!(log[1]["error"], "HTTP 302: redirects are not followed");
    assert_eq!(log[2]["status_code"], 200);
    // Control characters in an answer are kept out of the log (PostgreSQL text cannot hold
    // a NUL).
    assert_eq!(
        log[2]["response_excerpt"],
        "\u{fffd}\u{fffd}garbage\u{fffd}"
    );
    let sub_now = app
        .get(
            &app.admin,
            &format!("/api/v1/webhooks/{}", sub["id"].as_str().unwrap()),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(
        sub_now["failing_since"],
        Value::Null,
        "a success ends the failing streak"
    );

    // Every attempt fails: after the schedule's three retries the delivery has failed.
    hook.script((0..4).map(|_| Reply::status(500, "boom")));
    app.create_run(&app.admin, "EduLibra", "staging").await;
    let got = hook.wait_for(7, ARRIVES).await;
    assert_eq!(got.len(), 7);
    let failing_id = got[3].header("webhook-id").unwrap().to_owned();
    let d = settled(&app, &sub, &failing_id).await;
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"], 4);
    assert_eq!(d["next_attempt_at"], Value::Null);
    let sub_id = sub["id"].as_str().unwrap();
    let sub_now = app
        .get(&app.admin, &format!("/api/v1/webhooks/{sub_id}"))
        .await
        .expect(200)
        .json;
    assert!(sub_now["failing_since"].is_string());
    assert_eq!(
        sub_now["active"], true,
        "a day of failures does not deactivate it"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.received().len(), 7, "no attempt after the last");

    // Redelivery: the same id and body, now answered.
    let again = app
        .post(
            &app.admin,
            &format!("/api/v1/webhooks/{sub_id}/deliveries/{failing_id}/redeliver"),
            json!({}),
        )
        .await
        .expect(202)
        .json;
    assert_eq!(again["status"], "pending");
    let got = hook.wait_for(8, ARRIVES).await;
    assert_eq!(got[7].header("webhook-id"), Some(failing_id.as_str()));
    assert_eq!(got[7].body, got[3].body);
    let d = settled(&app, &sub, &failing_id).await;
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 5);
    // Newest first in the log; an unknown delivery is 404, a bad cursor 422.
    let log = deliveries(&app, &sub).await;
    assert_eq!(log[0]["id"], failing_id.as_str());
    assert_eq!(
        log[0]["attempt_log"].as_array().unwrap().len(),
        1,
        "a listing shows the last attempt"
    );
    app.get(
        &app.admin,
        &format!("/api/v1/webhooks/{sub_id}/deliveries/msg_nope"),
    )
    .await
    .expect_problem(404, "not_found");
    app.get(
        &app.admin,
        &format!("/api/v1/webhooks/{sub_id}/deliveries?before=msg_nope"),
    )
    .await
    .expect_problem(422, "invalid_input");
    let page = app
        .get(
            &app.admin,
            &format!("/api/v1/webhooks/{sub_id}/deliveries?limit=1"),
        )
        .await
        .expect(200)
        .json;
    let next = page["next_before"].as_str().unwrap();
    let older = app
        .get(
            &app.admin,
            &format!("/api/v1/webhooks/{sub_id}/deliveries?limit=1&before={next}"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(older["items"][0]["id"], ids[0]);
}

async fn a_slow_receiver_holds_up_only_its_own_delivery(backend: Backend) {
    let app = app(backend).await;
    let slow = Receiver::start().await;
    slow.script([Reply {
        delay: Duration::from_secs(3),
        ..Reply::status(200, "late")
    }]);
    let fast = Receiver::start().await;
    let (slow_sub, _) = subscribe(
        &app,
        json!({"url": format!("{}/slow", slow.url), "event_types": ["run_created"]}),
    )
    .await;
    let (fast_sub, _) = subscribe(
        &app,
        json!({"url": format!("{}/fast", fast.url), "event_types": ["run_created"]}),
    )
    .await;
    app.create_run(&app.admin, "EduLibra", "staging").await;
    assert_eq!(fast.wait_for(1, ARRIVES).await.len(), 1);
    let slow_id = deliveries(&app, &slow_sub).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fast_id = deliveries(&app, &fast_sub).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        settled(&app, &fast_sub, &fast_id).await["status"],
        "delivered"
    );
    // The API answers while the slow receiver holds its request.
    app.get(&app.admin, "/api/v1/runs").await.expect(200);
    let d = delivery(&app, &slow_sub, &slow_id).await;
    assert_eq!(
        d["attempts"], 0,
        "the slow receiver's attempt is still open"
    );
    // It times out after a second and is retried.
    let deadline = tokio::time::Instant::now() + ARRIVES;
    let d = loop {
        let d = delivery(&app, &slow_sub, &slow_id).await;
        if d["attempts"].as_i64().unwrap() >= 1 || tokio::time::Instant::now() >= deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(d["attempt_log"][0]["error"], "timed out");
    assert_eq!(d["attempt_log"][0]["status_code"], Value::Null);
    assert_eq!(
        settled(&app, &slow_sub, &slow_id).await["status"],
        "delivered"
    );
}

async fn a_subscription_that_keeps_failing_is_deactivated_and_says_why(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        configure(c);
        // "Failing for days", compressed: the first failure is long enough.
        c.webhook_disable_after = Duration::ZERO;
    })
    .await;
    let hook = Receiver::start().await;
    hook.script([Reply::status(500, "broken")]);
    let (sub, _) = subscribe(
        &app,
        json!({"url": format!("{}/hook", hook.url), "event_types": ["run_created", "item_updated"]}),
    )
    .await;
    let sub_id = sub["id"].as_str().unwrap();
    let run = app.create_run(&app.admin, "EduLibra", "staging").await;
    hook.wait_for(1, ARRIVES).await;
    let deadline = tokio::time::Instant::now() + ARRIVES;
    let now = loop {
        let s = app
            .get(&app.admin, &format!("/api/v1/webhooks/{sub_id}"))
            .await
            .expect(200)
            .json;
        if s["active"] == false || tokio::time::Instant::now() >= deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(now["active"], false);
    let reason = now["disabled_reason"].as_str().unwrap();
    assert!(
        reason.contains("every delivery attempt has failed since") && reason.contains("HTTP 500"),
        "{reason}"
    );
    let audit = app
        .get(&app.admin, "/api/v1/audit-log")
        .await
        .expect(200)
        .json;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "webhook_disabled" && e["subject"] == sub_id)
    );
    // Inactive: new events are not queued for it, and its waiting retry waits.
    app.note(&run, 0, "while inactive").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(deliveries(&app, &sub).await.len(), 1);
    assert_eq!(hook.received().len(), 1);
    // Redelivery needs it active.
    let id = deliveries(&app, &sub).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &app.admin,
        &format!("/api/v1/webhooks/{sub_id}/deliveries/{id}/redeliver"),
        json!({}),
    )
    .await
    .expect_problem(422, "invalid_input");
    // A test event is sent even so (to check a mended receiver before switching it back on).
    let test = app
        .post(
            &app.admin,
            &format!("/api/v1/webhooks/{sub_id}/test"),
            json!({}),
        )
        .await
        .expect(202)
        .json;
    assert_eq!(test["event_type"], "webhook_test");
    let got = hook.wait_for(2, ARRIVES).await;
    assert_eq!(got[1].json()["type"], "webhook_test");
    assert_eq!(got[1].json()["data"]["subscription_id"], sub_id);
    // Activated again: the reason is cleared and the waiting delivery goes out.
    let back = app
        .patch(
            &app.admin,
            &format!("/api/v1/webhooks/{sub_id}"),
            json!({"active": true}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(back["active"], true);
    assert_eq!(back["disabled_reason"], Value::Null);
    assert_eq!(settled(&app, &sub, &id).await["status"], "delivered");
    assert_eq!(
        hook.received().last().unwrap().header("webhook-id"),
        Some(id.as_str())
    );
}

async fn loopback_targets_are_refused_without_an_allow_list(backend: Backend) {
    // No allow-list: the defaults of a real installation.
    let app = TestApp::spawn_with(backend, |c| c.outbound_allow = None).await;
    let hook = Receiver::start().await;
    let port = hook.url.rsplit(':').next().unwrap().to_owned();
    for (url, class) in [
        (
            format!("http://127.0.0.1:{port}/hook"),
            "a loopback address",
        ),
        (
            format!("http://localhost:{port}/hook"),
            "a loopback address",
        ),
        (format!("http://[::1]:{port}/hook"), "a loopback address"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/hook"),
            "a loopback address",
        ),
        ("http://0.0.0.0/".to_owned(), "an unspecified address"),
    ] {
        let refused = app
            .post(
                &app.admin,
                "/api/v1/webhooks",
                json!({"url": url, "event_types": ["run_created"]}),
            )
            .await
            .expect_problem(422, "invalid_input");
        let detail = refused.json["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("url: ") && detail.contains(class),
            "{url}: {detail}"
        );
        assert!(detail.contains("SHIPSHAPE_OUTBOUND_ALLOW"), "{detail}");
    }
    for (body, expect) in [
        (
            json!({"url": "ftp://example.com/x", "event_types": ["run_created"]}),
            "url: must be an absolute http(s) URL",
        ),
        (
            json!({"url": "https://user:pw@example.com/x", "event_types": ["run_created"]}),
            "url: must not carry a user name or password",
        ),
        (
            json!({"url": "https://example.com/x", "event_types": ["deploy_finished"]}),
            "event_types: unknown event type `deploy_finished`",
        ),
        (
            json!({"url": "https://example.com/x", "event_types": []}),
            "event_types: give at least one event type",
        ),
        (
            json!({"url": "https://example.com/x", "event_types": ["run_created"], "product": "a\nb"}),
            "product: must be one line",
        ),
    ] {
        let answer = app
            .post(&app.admin, "/api/v1/webhooks", body)
            .await
            .expect_problem(422, "invalid_input");
        let detail = answer.json["detail"].as_str().unwrap();
        assert!(detail.starts_with(expect), "{detail}");
    }
    let format = app
        .post(&app.admin, "/api/v1/webhooks", json!({"url": "https://example.com/x", "event_types": ["run_created"], "format": "teams"}))
        .await
        .expect_problem(422, "invalid_input");
    assert!(
        format.json["detail"]
            .as_str()
            .unwrap()
            .contains("unknown variant `teams`")
    );

    // At connection time: a stored target whose name now leads to loopback (as a name
    // rebound after the check would) is refused when the worker connects, and so is an
    // address literal. Written behind the server's back: the API refuses both.
    for (id, url) in [
        (
            "11111111-1111-1111-1111-111111111111",
            format!("http://localhost:{port}/rebound"),
        ),
        (
            "22222222-2222-2222-2222-222222222222",
            format!("http://127.0.0.1:{port}/literal"),
        ),
    ] {
        app.sql(&format!(
            "INSERT INTO webhook_subscriptions (id, url, format, event_types, active, secret, created_by, created_at, updated_at) \
             VALUES ('{id}', '{url}', 'standard', '[\"run_created\"]', TRUE, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'admin', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ));
    }
    let sub = json!({"id": "11111111-1111-1111-1111-111111111111"});
    let literal = json!({"id": "22222222-2222-2222-2222-222222222222"});
    app.create_run(&app.admin, "EduLibra", "staging").await;
    for (sub, host) in [(&sub, "localhost"), (&literal, "127.0.0.1")] {
        let id = deliveries(&app, sub).await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = tokio::time::Instant::now() + ARRIVES;
        let d = loop {
            let d = delivery(&app, sub, &id).await;
            if d["attempts"].as_i64().unwrap() >= 1 || tokio::time::Instant::now() >= deadline {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let error = d["attempt_log"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("refused: {host} ")) && error.contains("a loopback address"),
            "{error}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        hook.received().is_empty(),
        "nothing reached the loopback receiver"
    );
}

async fn a_chat_subscription_gets_a_message_that_reads_well_in_a_channel(backend: Backend) {
    let app = app(backend).await;
    let chat = Receiver::start().await;
    let (_, secret) = subscribe(
        &app,
        json!({"url": format!("{}/services/T000/B000/XXXX", chat.url), "format": "slack", "event_types": ["decision_recorded", "run_created"]}),
    )
    .await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap();
    let got = chat.wait_for(1, ARRIVES).await;
    let message = got[0].json();
    assert!(verify(&secret, &got[0]), "chat deliveries are signed too");
    assert_eq!(
        message["text"],
        "admin created the run (EduLibra 4.2.0 → production) — EduLibra 4.2.0 → production"
    );
    assert_eq!(message["blocks"][0]["type"], "section");
    assert_eq!(message["blocks"][0]["text"]["type"], "mrkdwn");
    assert_eq!(
        message["blocks"][0]["text"]["text"],
        "admin created the run (EduLibra 4.2.0 → production)"
    );
    let context = message["blocks"][1]["elements"][0]["text"]
        .as_str()
        .unwrap();
    assert!(
        context.contains("*EduLibra* 4.2.0 → production"),
        "{context}"
    );
    assert!(
        context.contains(&format!(
            "<https://shipshape.example.com/runs/{run_id}|Open the run>"
        )),
        "{context}"
    );
    app.transition(&app.admin, run_id, "start")
        .await
        .expect(200);
    app.decide(&app.admin, run_id, "go_no_go", "hold")
        .await
        .expect(201);
    // The transition is not subscribed to: the next message is the decision.
    let got = chat.wait_for(2, ARRIVES).await;
    let text = got[1].json()["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.starts_with("admin decided Hold at “Go/No-Go”: "),
        "{text}"
    );
}

async fn the_document_declares_every_delivery_a_subscriber_can_receive(backend: Backend) {
    let app = app(backend).await;
    let doc = app
        .send(Method::GET, "/api-docs/openapi.json", None, None, &[])
        .await
        .expect(200)
        .json;
    let hooks = doc["webhooks"].as_object().unwrap();
    let kinds: Vec<String> = ["EventType", "EnvironmentEventType"]
        .iter()
        .flat_map(|e| doc["components"]["schemas"][e]["enum"].as_array().unwrap())
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.len() >= 9);
    assert!(kinds.iter().any(|k| k == "environment_locked"));
    for kind in kinds.iter().map(String::as_str).chain(["webhook_test"]) {
        let op = &hooks[kind]["post"];
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(
            schema["properties"]["type"]["enum"],
            json!([kind]),
            "{kind}"
        );
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            params,
            ["webhook-id", "webhook-timestamp", "webhook-signature"]
        );
        if let Some(target) = schema["properties"]["data"]["$ref"].as_str() {
            let name = target.rsplit('/').next().unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{target} resolves"
            );
        }
    }
    assert_eq!(hooks.len(), kinds.len() + 1);
}

shipshape_tests::each_backend!(
    deliveries_are_signed_and_a_standard_webhooks_library_verifies_them,
    failures_are_retried_under_the_same_id_then_given_up_and_redelivered,
    a_slow_receiver_holds_up_only_its_own_delivery,
    a_subscription_that_keeps_failing_is_deactivated_and_says_why,
    loopback_targets_are_refused_without_an_allow_list,
    a_chat_subscription_gets_a_message_that_reads_well_in_a_channel,
    the_document_declares_every_delivery_a_subscriber_can_receive,
    a_delivery_queued_before_a_restart_is_sent_after_it,
);

async fn a_delivery_queued_before_a_restart_is_sent_after_it(backend: Backend) {
    let first = TestApp::spawn_with(backend, |c| {
        configure(c);
        c.webhook_retry_schedule = vec![Duration::from_secs(2)];
    })
    .await;
    let hook = Receiver::start().await;
    hook.script([Reply::status(503, "restarting")]);
    let (sub, secret) = subscribe(
        &first,
        json!({"url": format!("{}/hook", hook.url), "event_types": ["run_created"]}),
    )
    .await;
    first.create_run(&first.admin, "EduLibra", "staging").await;
    assert_eq!(hook.wait_for(1, ARRIVES).await.len(), 1);
    // The server stops (a deployment) while the retry waits, and another starts.
    first.stop().await;
    let second = first.spawn_beside_with(configure).await;
    let got = hook.wait_for(2, ARRIVES).await;
    assert_eq!(got.len(), 2, "the retry is made by the new server");
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert!(verify(&secret, &got[1]));
    let id = got[1].header("webhook-id").unwrap();
    assert_eq!(settled(&second, &sub, id).await["status"], "delivered");
    drop(second);
}

/// Two instances on one PostgreSQL: each attempt is made once, not once per instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_instances_each_delivery_is_sent_once() {
    let a = app(Backend::Postgres).await;
    let b = a.spawn_beside_with(configure).await;
    let hook = Receiver::start().await;
    let (_, secret) = subscribe(
        &a,
        json!({"url": format!("{}/hook", hook.url), "event_types": ["item_updated"]}),
    )
    .await;
    let run = a.create_run(&a.admin, "EduLibra", "production").await;
    for i in 0..20 {
        let through = if i % 2 == 0 { &a } else { &b };
        through.note(&run, i % 5, &format!("change {i}")).await;
    }
    let got = hook.wait_for(20, ARRIVES).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got_all = hook.received();
    assert_eq!(got.len(), 20);
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for r in &got_all {
        assert!(verify(&secret, r));
        *per_id
            .entry(r.header("webhook-id").unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), 20, "one delivery per event");
    assert!(
        per_id.values().all(|n| *n == 1),
        "each sent once: {per_id:?}"
    );
    drop(b);
}
