//! Verify, don't tick: probe items the server checks for itself (on demand and on schedule,
//! each result kept as evidence, gating only while it passed and is fresh), targets that
//! misbehave (slow, unreachable, redirecting, huge, not JSON) failing with the reason, the
//! outbound guard refusing loopback without an allow-list, items that require evidence, the
//! criteria probes measure, and decision deadlines applied once — with a reminder before,
//! on two instances, and across a restart. On SQLite and PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use shipshape_api::config::Secret;
use shipshape_tests::receiver::{Receiver, Reply};
use shipshape_tests::smtp::SmtpSink;
use shipshape_tests::{Backend, TestApp, item_by_title};

/// How long the worker may take to notice something (it looks every 200 ms in tests).
const NOTICED: Duration = Duration::from_secs(10);

const HEALTH: &str = "Pre-deployment health checks";
const VERIFICATION: &str = "Post-deployment verification";

/// A time `minutes` ago as both backends read a timestamp literal.
fn minutes_ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// Polls the run until `done` holds for it (or fails after [`NOTICED`]).
async fn wait_for_run(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let until = tokio::time::Instant::now() + NOTICED;
    loop {
        let run = app.run(&app.admin, id).await;
        if done(&run) {
            return run;
        }
        assert!(tokio::time::Instant::now() < until, "{what}: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the run's log until `done` holds for it.
async fn wait_for_log(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let until = tokio::time::Instant::now() + NOTICED;
    loop {
        let log = app.events(id).await;
        if done(&log) {
            return log;
        }
        assert!(tokio::time::Instant::now() < until, "{what}: {log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn of_type<'a>(log: &'a [Value], kind: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| e["type"] == kind).collect()
}

/// A started EduLibra run past its Go/No-Go, deploying.
async fn deploying_run(app: &TestApp, product: &str) -> String {
    let run = app.create_run(&app.admin, product, "production").await;
    let id = run["id"].as_str().unwrap().to_owned();
    app.transition(&app.admin, &id, "start").await.expect(200);
    app.finish_gate(&app.admin, &id, "deploy").await;
    app.decide(&app.admin, &id, "go_no_go", "go")
        .await
        .expect(201);
    app.transition(&app.admin, &id, "advance").await.expect(200);
    id
}

/// The run's decision point with this key.
fn point(run: &Value, key: &str) -> Value {
    run["decision_points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .unwrap()
        .clone()
}

fn item_blocker<'a>(problem: &'a Value, item_id: &str) -> Option<&'a Value> {
    problem["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["item_id"] == item_id)
}

async fn a_probe_item_is_checked_on_schedule_and_on_demand_and_gates_by_its_fresh_result(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap().to_owned();
    let probe = item_by_title(&run, HEALTH);
    let item_id = probe["id"].as_str().unwrap().to_owned();
    assert_eq!(probe["kind"], "probe");
    assert_eq!(probe["probe"]["spec"]["url"], "{base_url}/healthz");
    assert_eq!(probe["probe"]["url"], Value::Null);
    assert!(
        probe["probe"]["problem"]
            .as_str()
            .unwrap()
            .contains("has no base URL"),
        "{probe}"
    );

    // Once the run is preparing, the schedule checks it: without a base URL for the
    // environment it fails, saying so.
    app.transition(&app.admin, &id, "start").await.expect(200);
    let run = wait_for_run(&app, &id, "a scheduled check", |run| {
        !item_by_title(run, HEALTH)["probe"]["latest"].is_null()
    })
    .await;
    let latest = &item_by_title(&run, HEALTH)["probe"]["latest"];
    assert_eq!(latest["trigger"], "schedule");
    assert_eq!(latest["checked_by"], "system");
    assert_eq!(latest["passed"], false);
    assert!(
        latest["summary"]
            .as_str()
            .unwrap()
            .contains("production` has no base URL")
    );

    // On demand, against a target that answers 503: failed, with the reason in the blockers.
    app.serve_probes(&run).await;
    app.probe_target
        .route("/healthz", Reply::status(503, "down"));
    let failed = app.check(&app.admin, &id, &item_id).await.expect(201).json;
    assert_eq!(failed["passed"], false);
    assert_eq!(failed["summary"], "expected 200, got 503");
    assert_eq!(failed["http_status"], 503);
    assert_eq!(failed["excerpt"], "down");
    assert_eq!(failed["trigger"], "on_demand");
    assert_eq!(failed["checked_by"], "admin");
    assert_eq!(
        failed["url"],
        format!("{}/healthz", app.probe_target.url),
        "the URL is written with the environment's base URL"
    );
    let item = app
        .get(&app.admin, &format!("/api/v1/runs/{id}/items/{item_id}"))
        .await
        .expect(200)
        .json;
    assert_eq!(item["status"], "failed");
    // Passing and fresh: done, and the run advances past it. Stale: blocking again.
    app.probe_target
        .route("/healthz", Reply::status(200, r#"{"status":"ok"}"#));
    app.finish_gate(&app.admin, &id, "deploy").await;
    app.decide(&app.admin, &id, "go_no_go", "go")
        .await
        .expect(201);
    let run = app.run(&app.admin, &id).await;
    let passed = &item_by_title(&run, HEALTH)["probe"]["latest"];
    assert_eq!(passed["passed"], true, "{passed}");
    assert!(passed["latency_ms"].is_u64());
    assert_eq!(item_by_title(&run, HEALTH)["status"], "done");
    app.sql(&format!(
        "UPDATE probe_results SET checked_at = '{}' WHERE item_id = '{item_id}' AND passed = TRUE",
        minutes_ago(20)
    ));
    let refused = app.transition(&app.admin, &id, "advance").await;
    let refused = refused.expect_problem(409, "gate_blocked");
    let blocker = item_blocker(&refused.json, &item_id).unwrap();
    assert_eq!(blocker["status"], "done");
    assert_eq!(blocker["reason"], "last check 20 min ago, limit 15 min");
    assert_eq!(
        refused.json["blockers"].as_array().unwrap().len(),
        1,
        "nothing else blocks: {}",
        refused.json
    );
    app.check(&app.admin, &id, &item_id).await.expect(201);
    app.transition(&app.admin, &id, "advance").await.expect(200);

    // Nobody ticks a probe by hand; a release manager may waive it.
    let verification = item_by_title(&app.run(&app.admin, &id).await, VERIFICATION);
    let vid = verification["id"].as_str().unwrap();
    app.set_item(&app.admin, &id, vid, "done")
        .await
        .expect_problem(409, "check_required");
    app.patch(
        &app.admin,
        &format!("/api/v1/runs/{id}/items/{vid}"),
        json!({"status": "skipped", "reason": "verified by the vendor's status page"}),
        None,
    )
    .await
    .expect(200);

    // Every result is kept, newest first, a page at a time.
    let page = app
        .get(
            &app.admin,
            &format!("/api/v1/runs/{id}/items/{item_id}/checks?limit=2"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["passed"], true);
    let cursor = page["next_cursor"].as_str().unwrap();
    let older = app
        .get(
            &app.admin,
            &format!("/api/v1/runs/{id}/items/{item_id}/checks?limit=50&before={cursor}"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(older["next_cursor"], Value::Null, "the last page");
    let all: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(older["items"].as_array().unwrap())
        .collect();
    assert_eq!(
        all.len(),
        4,
        "the scheduled check, the 503, two passes: {all:?}"
    );
    let ids: std::collections::BTreeSet<&str> =
        all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "no result on two pages");
    assert_eq!(all.iter().filter(|r| r["trigger"] == "schedule").count(), 1);
    assert_eq!(all.iter().filter(|r| r["http_status"] == 503).count(), 1);
    assert_eq!(all.iter().filter(|r| r["passed"] == true).count(), 2);
    let log = app.events(&id).await;
    let checks = of_type(&log, "probe_checked");
    assert_eq!(checks.len(), 4, "each result is an event: {checks:?}");
    let last = checks.last().unwrap();
    assert_eq!(last["payload"]["passed"], true);
    assert_eq!(last["payload"]["item_id"], item_id.as_str());
}

/// A template whose probes meet every kind of misbehaving target.
fn misbehaving_template(unreachable_port: u16) -> String {
    format!(
        "# Probe targets

## Checks

### 1. Targets
- [ ] Slow <!-- shipshape gate=deploy kind=probe url={{base_url}}/slow -->
- [ ] Redirecting <!-- shipshape gate=deploy kind=probe url={{base_url}}/redirect -->
- [ ] Huge <!-- shipshape gate=deploy kind=probe url={{base_url}}/huge pointer=/status -->
- [ ] Not JSON <!-- shipshape gate=deploy kind=probe url={{base_url}}/html pointer=/status equals=ok -->
- [ ] Unreachable <!-- shipshape gate=deploy kind=probe url=http://127.0.0.1:{unreachable_port}/health -->
- [ ] Pattern <!-- shipshape gate=deploy kind=probe url={{base_url}}/text matches=\"^OK( |$)\" -->
- [ ] Too slow <!-- shipshape gate=deploy kind=probe url={{base_url}}/lagging latency=100ms -->
"
    )
}

async fn misbehaving_targets_fail_with_the_reason_and_invalid_probes_are_refused_at_import(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| c.webhook_timeout_secs = 1).await;
    // A port nothing listens on: bound, then closed.
    let unreachable = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let created = app
        .client
        .post(app.url("/api/v1/templates"))
        .bearer_auth(&app.admin)
        .header("content-type", "text/markdown")
        .body(misbehaving_template(unreachable))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let template: Value = created.json().await.unwrap();

    // An invalid check is refused at import, naming its line.
    let bad = misbehaving_template(unreachable).replace("matches=\"^OK( |$)\"", "matches=\"(\"");
    let refused = app
        .client
        .post(app.url("/api/v1/templates"))
        .bearer_auth(&app.admin)
        .header("content-type", "text/markdown")
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 422);
    let problem: Value = refused.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("line 11") && detail.contains("regular expression"),
        "{detail}"
    );

    let target = Receiver::start().await;
    let reply = |status: u16, body: String, delay: Duration, location: Option<&str>| Reply {
        status,
        body,
        delay,
        location: location.map(str::to_owned),
    };
    target.route(
        "/slow",
        reply(200, "late".into(), Duration::from_secs(3), None),
    );
    target.route(
        "/redirect",
        reply(
            302,
            String::new(),
            Duration::ZERO,
            Some("https://example.com/"),
        ),
    );
    target.route(
        "/huge",
        reply(200, "x".repeat(2 * 1024 * 1024), Duration::ZERO, None),
    );
    target.route(
        "/html",
        reply(
            200,
            "<html>down for maintenance</html>".into(),
            Duration::ZERO,
            None,
        ),
    );
    target.route("/text", reply(200, "NOT OK".into(), Duration::ZERO, None));
    target.route(
        "/lagging",
        reply(200, "ok".into(), Duration::from_millis(300), None),
    );
    let run = app
        .post(
            &app.admin,
            "/api/v1/runs",
            json!({"template_id": template["id"], "product": "Targets", "release_version": "1", "environment": "lab"}),
        )
        .await
        .expect(201)
        .json;
    let id = run["id"].as_str().unwrap();
    app.send(
        Method::PUT,
        "/api/v1/environments/lab",
        Some(&app.admin),
        Some(&json!({"base_url": target.url})),
        &[],
    )
    .await
    .expect(200);
    let expected = [
        ("Slow", "timed out"),
        (
            "Redirecting",
            "expected 200, got 302 (redirects are not followed)",
        ),
        ("Huge", "larger than 1024 KiB"),
        ("Not JSON", "the answer is not JSON"),
        ("Unreachable", "cannot connect"),
        ("Pattern", "does not match `^OK( |$)`"),
        ("Too slow", "limit 100 ms"),
    ];
    for (title, reason) in expected {
        let item = item_by_title(&run, title);
        let result = app
            .check(&app.admin, id, item["id"].as_str().unwrap())
            .await
            .expect(201)
            .json;
        assert_eq!(result["passed"], false, "{title}: {result}");
        assert!(
            result["summary"].as_str().unwrap().contains(reason),
            "{title}: `{}` says `{reason}`",
            result["summary"]
        );
    }
    // Nothing is stuck: the run reads, lists every item failed, and can still be aborted.
    let run = app.run(&app.admin, id).await;
    for (title, _) in expected {
        assert_eq!(item_by_title(&run, title)["status"], "failed", "{title}");
    }
    app.transition(&app.admin, id, "abort").await.expect(200);
}

async fn loopback_probe_targets_are_refused_without_an_allow_list(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.outbound_allow = None).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap();
    app.serve_probes(&run).await;
    let before = app.probe_target.received().len();
    let item = item_by_title(&run, HEALTH);
    let result = app
        .check(&app.admin, id, item["id"].as_str().unwrap())
        .await
        .expect(201)
        .json;
    assert_eq!(result["passed"], false);
    let summary = result["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("refused: ") && summary.contains("a loopback address"),
        "{summary}"
    );
    assert_eq!(
        app.probe_target.received().len(),
        before,
        "nothing reached the target"
    );
}

async fn an_item_that_requires_evidence_takes_labelled_links(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap();
    let backup = item_by_title(&run, "Backup of the production environment");
    assert_eq!(backup["evidence_required"], true);
    let path = format!("/api/v1/runs/{id}/items/{}", backup["id"].as_str().unwrap());
    let refused = app
        .patch(&app.admin, &path, json!({"status": "done"}), None)
        .await
        .expect_problem(422, "invalid_input");
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("requires evidence")
    );
    let links = json!([
        {"label": "Backup job", "url": "https://ci.example/backup/41"},
        {"label": "Restore test", "url": "https://ci.example/restore/7"},
    ]);
    let done = app
        .patch(
            &app.admin,
            &path,
            json!({"status": "done", "evidence": links}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(done["status"], "done");
    assert_eq!(done["evidence"], links);
    assert_eq!(done["evidence_url"], "https://ci.example/backup/41");
    // The field from before several links sets the first link's URL, keeping the others.
    let moved = app
        .patch(
            &app.admin,
            &path,
            json!({"evidence_url": "https://ci.example/backup/42"}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(
        moved["evidence"][0],
        json!({"label": "Backup job", "url": "https://ci.example/backup/42"})
    );
    assert_eq!(moved["evidence"][1]["label"], "Restore test");
    // The last link of a done item that requires evidence cannot go.
    app.patch(&app.admin, &path, json!({"evidence": []}), None)
        .await
        .expect_problem(422, "invalid_input");
    app.patch(
        &app.admin,
        &path,
        json!({"evidence": [{"label": "", "url": "https://x.example"}]}),
        None,
    )
    .await
    .expect_problem(422, "invalid_input");
    let log = app.events(id).await;
    let change = &of_type(&log, "item_updated").last().unwrap()["payload"]["changes"]["evidence"];
    assert_eq!(change["to"][0]["url"], "https://ci.example/backup/42");
    assert_eq!(change["from"][0]["url"], "https://ci.example/backup/41");
}

async fn criteria_read_the_latest_result_of_the_probe_that_measures_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = deploying_run(&app, "EduLibra").await;
    app.finish_gate(&app.admin, &id, "verify").await;
    app.transition(&app.admin, &id, "advance").await.expect(200);
    let run = app.run(&app.admin, &id).await;
    let measured = point(&run, "post_deployment_verification")["measurements"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(measured.len(), 2);
    assert_eq!(
        measured[0]["criterion"],
        "Critical functionalities and integrations verified"
    );
    assert_eq!(measured[0]["reference"], "3.1.1");
    assert_eq!(measured[1]["criterion"], "p95 latency below 800 ms");
    app.finish_gate(&app.admin, &id, "complete").await;
    let run = app.run(&app.admin, &id).await;
    let measured = point(&run, "post_deployment_verification")["measurements"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(measured[0]["result"], "met");
    assert_eq!(
        measured[0]["observed"], "4.2.0",
        "the version the target serves"
    );
    assert!(measured[0]["checked_at"].is_string());
    assert_eq!(measured[1]["result"], "met");
    // The target serves the previous release: not met, and the observed value says so.
    app.probe_target
        .route("/version", Reply::status(200, r#"{"version":"4.1.0"}"#));
    let verification = item_by_title(&run, VERIFICATION);
    let failed = app
        .check(&app.admin, &id, verification["id"].as_str().unwrap())
        .await
        .expect(201)
        .json;
    assert_eq!(
        failed["summary"],
        "`/version` is \"4.1.0\", expected \"4.2.0\""
    );
    let run = app.run(&app.admin, &id).await;
    let measured = point(&run, "post_deployment_verification")["measurements"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(measured[0]["result"], "not_met");
    assert_eq!(measured[0]["observed"], "4.1.0");
}

async fn a_decision_deadline_reminds_then_records_hold_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        c.smtp_url = Some(Secret::new(&sink.url));
        c.mail_batch_secs = 3600;
    })
    .await;
    let rm = app.user("rita", "release_manager").await;
    app.send(
        Method::PATCH,
        "/api/v1/me/notifications",
        Some(&rm),
        Some(&json!({"email": "rita@example.com"})),
        &[],
    )
    .await
    .expect(200);
    let hook = Receiver::start().await;
    app.post(
        &app.admin,
        "/api/v1/webhooks",
        json!({"url": format!("{}/hook", hook.url), "event_types": ["decision_due", "decision_recorded"]}),
    )
    .await
    .expect(201);
    let id = deploying_run(&app, "EduLibra").await;
    let run = app.run(&app.admin, &id).await;
    let checkpoint = point(&run, "deployment_checkpoint");
    assert_eq!(checkpoint["deadline_secs"], 1800);
    assert_eq!(checkpoint["default_outcome"], "hold");
    let deadline =
        chrono::DateTime::parse_from_rfc3339(checkpoint["deadline"].as_str().unwrap()).unwrap();
    let left = deadline.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        (29..=30).contains(&left.num_minutes()),
        "counts down from 30 min: {left}"
    );

    // 26 minutes in: within the reminder's five minutes.
    app.sql(&format!(
        "UPDATE runs SET stage_entered_at = '{}' WHERE id = '{id}'",
        minutes_ago(26)
    ));
    let log = wait_for_log(&app, &id, "the reminder", |log| {
        !of_type(log, "decision_due").is_empty()
    })
    .await;
    let due = of_type(&log, "decision_due")[0];
    assert_eq!(due["actor"], "system");
    assert_eq!(due["payload"]["point_key"], "deployment_checkpoint");
    assert_eq!(due["payload"]["default_outcome"], "hold");
    // The reminder; the pending-list mail ("… waits for your decision") may come first.
    let is_reminder = |m: &shipshape_tests::smtp::Mail| {
        m.header("subject")
            .is_some_and(|s| s.contains("Deployment checkpoint is due"))
    };
    let mails = sink.wait_for_mail(is_reminder, NOTICED).await;
    let reminder = mails
        .iter()
        .find(|m| is_reminder(m))
        .unwrap_or_else(|| panic!("a reminder mail: {mails:?}"));
    assert_eq!(reminder.to, vec!["rita@example.com".to_owned()]);

    // Past the deadline: the server records the default, once.
    app.sql(&format!(
        "UPDATE runs SET stage_entered_at = '{}' WHERE id = '{id}'",
        minutes_ago(31)
    ));
    let log = wait_for_log(&app, &id, "the default decision", |log| {
        of_type(log, "decision_recorded")
            .iter()
            .any(|e| e["payload"]["deadline_passed"] == true)
    })
    .await;
    let decided = of_type(&log, "decision_recorded")
        .into_iter()
        .find(|e| e["payload"]["deadline_passed"] == true)
        .unwrap()
        .clone();
    assert_eq!(decided["actor"], "system");
    assert_eq!(decided["payload"]["outcome"], "hold");
    assert!(
        decided["payload"]["rationale"]
            .as_str()
            .unwrap()
            .contains("The deadline passed")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = app.events(&id).await;
    assert_eq!(of_type(&log, "decision_due").len(), 1, "one reminder");
    assert_eq!(
        of_type(&log, "decision_recorded")
            .iter()
            .filter(|e| e["payload"]["deadline_passed"] == true)
            .count(),
        1,
        "one default decision"
    );
    let run = app.run(&app.admin, &id).await;
    let checkpoint = point(&run, "deployment_checkpoint");
    assert_eq!(checkpoint["latest_outcome"], "hold");
    assert_eq!(
        checkpoint["deadline"],
        Value::Null,
        "decided: no deadline runs"
    );
    let refused = app.transition(&app.admin, &id, "advance").await;
    refused.expect_problem(409, "gate_blocked");
    // The release managers are told: by webhook (both events) and by mail.
    let got = hook.wait_for(2, NOTICED).await;
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.contains(&"decision_due".to_owned()), "{types:?}");
    assert!(types.contains(&"decision_recorded".to_owned()), "{types:?}");
    let recorded = |m: &shipshape_tests::smtp::Mail| {
        m.header("subject")
            .is_some_and(|s| s.contains("Hold recorded at Deployment checkpoint"))
    };
    let mails = sink.wait_for_mail(recorded, NOTICED).await;
    assert!(mails.iter().any(recorded), "{mails:?}");
}

async fn background_work_runs_once_across_instances_and_after_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let second = app.spawn_beside().await;
    // A scheduled check, with two workers looking every 200 ms: made once.
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap().to_owned();
    app.serve_probes(&run).await;
    let before = app
        .probe_target
        .received()
        .iter()
        .filter(|r| r.path == "/healthz")
        .count();
    app.transition(&app.admin, &id, "start").await.expect(200);
    wait_for_log(&app, &id, "the scheduled check", |log| {
        !of_type(log, "probe_checked").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = app.events(&id).await;
    assert_eq!(
        of_type(&log, "probe_checked").len(),
        1,
        "checked once: {log:?}"
    );
    assert_eq!(of_type(&log, "probe_checked")[0]["payload"]["passed"], true);
    let after = app
        .probe_target
        .received()
        .iter()
        .filter(|r| r.path == "/healthz")
        .count();
    assert_eq!(after - before, 1, "one request reached the target");

    // A deadline that passed, with both instances looking: applied once.
    let first = deploying_run(&app, "EduLibra A").await;
    app.sql(&format!(
        "UPDATE runs SET stage_entered_at = '{}' WHERE id = '{first}'",
        minutes_ago(45)
    ));
    let system_decisions = |log: &[Value]| {
        of_type(log, "decision_recorded")
            .iter()
            .filter(|e| e["actor"] == "system")
            .count()
    };
    wait_for_log(&app, &first, "the default decision", |log| {
        system_decisions(log) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        system_decisions(&app.events(&first).await),
        1,
        "applied once"
    );

    // Both instances stop; a deadline passes while none runs; the next one applies it.
    let later = deploying_run(&app, "EduLibra B").await;
    second.stop().await;
    app.stop().await;
    // The stopped instances' workers wind down.
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.sql(&format!(
        "UPDATE runs SET stage_entered_at = '{}' WHERE id = '{later}'",
        minutes_ago(45)
    ));
    drop(second);
    let restarted = app.spawn_beside().await;
    wait_for_log(
        &restarted,
        &later,
        "the default decision after a restart",
        |log| system_decisions(log) > 0,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(system_decisions(&restarted.events(&later).await), 1);
    assert_eq!(
        system_decisions(&restarted.events(&first).await),
        1,
        "not applied again"
    );
}

/// Two checks of one item at once: the one that read its target later counts, whichever
/// ends last. A scheduled check that read the environment before its base URL was set and
/// ends after a passing check run on demand joins the history; the item stays done.
async fn a_check_that_read_its_target_earlier_never_outranks_a_later_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let health = item_by_title(&run, "Pre-deployment health checks")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.transition(&app.admin, &run_id, "start")
        .await
        .expect(200);
    let store = shipshape_store::Store::connect(&app.db_url, 1).unwrap();
    let stale = store.probe_target(&run_id, &health, None).unwrap();
    assert!(stale.url.is_err(), "no base URL yet");
    app.serve_probes(&run).await;
    let passed = app
        .check(&app.admin, &run_id, &health)
        .await
        .expect(201)
        .json;
    assert_eq!(passed["passed"], true, "{passed}");
    // The stale check runs (and fails at once, saying why) only now.
    let guard = shipshape_api::outbound::Guard::new(
        shipshape_domain::outbound::AllowList::default(),
        Duration::from_secs(2),
    )
    .unwrap();
    let outcome = shipshape_api::probe::check(&guard, &stale).await;
    assert!(!outcome.passed);
    assert_eq!(
        outcome.checked_at, stale.read_at,
        "its time is when it read its target"
    );
    store
        .record_probe(
            &run_id,
            &health,
            outcome,
            shipshape_domain::event::ProbeTrigger::Schedule,
            "system",
        )
        .unwrap();
    let now = app.run(&app.admin, &run_id).await;
    let item = item_by_title(&now, "Pre-deployment health checks");
    assert_eq!(item["status"], "done", "{item}");
    let history = app
        .get(
            &app.admin,
            &format!("/api/v1/runs/{run_id}/items/{health}/checks"),
        )
        .await
        .expect(200)
        .json;
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("no base URL")),
        "the stale failure is in the history: {history}"
    );
}

shipshape_tests::each_backend!(
    a_check_that_read_its_target_earlier_never_outranks_a_later_one,
    a_probe_item_is_checked_on_schedule_and_on_demand_and_gates_by_its_fresh_result,
    misbehaving_targets_fail_with_the_reason_and_invalid_probes_are_refused_at_import,
    loopback_probe_targets_are_refused_without_an_allow_list,
    an_item_that_requires_evidence_takes_labelled_links,
    criteria_read_the_latest_result_of_the_probe_that_measures_them,
    a_decision_deadline_reminds_then_records_hold_once,
    background_work_runs_once_across_instances_and_after_a_restart,
);
