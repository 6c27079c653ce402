//! Environments over real HTTP, on SQLite and PostgreSQL: records kept by admins (made from
//! the runs that name them, archived rather than deleted), locks that stop a start or a
//! deployment (and the lock a rollback takes) heard by webhooks, freeze windows with their
//! blockers, warnings and break-glass, the promotion order, the run report's contacts, and
//! the release calendar as JSON and as an iCalendar feed read by a library this project did
//! not write.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::time::Duration;

use chrono::{Datelike, SecondsFormat, Utc};
use icalendar::{CalendarDateTime, Component, DatePerhapsTime};
use reqwest::Method;
use serde_json::{Value, json};
use shipshape_tests::receiver::Receiver;
use shipshape_tests::{Backend, TestApp};
use standardwebhooks::Webhook;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn put(
    app: &TestApp,
    name: &str,
    body: Value,
    if_match: Option<&str>,
) -> shipshape_tests::Answer {
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
    app.send(
        Method::PUT,
        &format!("/api/v1/environments/{name}"),
        Some(&app.admin),
        Some(&body),
        &headers,
    )
    .await
}

/// The blockers of `action` on the run, as the run shows them before anyone clicks.
async fn blockers(app: &TestApp, run: &str, action: &str) -> Vec<Value> {
    let run = app.run(&app.admin, run).await;
    run["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == action)
        .map(|t| t["blockers"].as_array().unwrap().clone())
        .unwrap_or_default()
}

async fn environments_are_records_kept_by_admins_and_archived_rather_than_deleted(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    // A run's environment becomes a record the first time a run names it.
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let env = app
        .get(&app.admin, "/api/v1/environments/production")
        .await
        .expect(200);
    assert_eq!(env.json["name"], "production");
    assert_eq!(env.json["archived"], false);
    assert!(env.json["lock"].is_null());
    let version = env.etag.clone().unwrap();

    put(
        &app,
        "staging",
        json!({"position": 1, "description": "Pre-production"}),
        None,
    )
    .await
    .expect(200);
    let record = json!({
        "description": "Where students are",
        "position": 2,
        "promotes_from": "staging",
        "base_url": "https://edulibra.example",
        "dashboards": [{"label": "Grafana", "url": "https://grafana.example/d/edulibra"}],
        "contacts": [
            {"name": "Sam Ortiz", "role": "Platform lead", "reach": "+49 30 555 0101", "level": 2},
            {"name": "Dana Whitfield", "role": "Database on-call", "reach": "dana@edulibra.example", "level": 1, "hours": "24/7"},
        ],
    });
    let stored = put(&app, "production", record.clone(), Some(&version))
        .await
        .expect(200);
    assert_eq!(
        stored.json["contacts"][0]["name"], "Dana Whitfield",
        "level 1 first"
    );
    assert_eq!(stored.json["dashboards"][0]["label"], "Grafana");
    // A field left out keeps its value (a tool that sets only the base URL keeps the rest).
    let kept = put(
        &app,
        "production",
        json!({"base_url": "https://edulibra.example/v2"}),
        None,
    )
    .await
    .expect(200);
    assert_eq!(kept.json["contacts"].as_array().unwrap().len(), 2);
    assert_eq!(kept.json["promotes_from"], "staging");
    assert_eq!(kept.json["base_url"], "https://edulibra.example/v2");
    assert_ne!(kept.etag, stored.etag);
    // A second admin writing over the first from the old version is refused.
    put(
        &app,
        "production",
        record.clone(),
        Some(&stored.etag.clone().unwrap()),
    )
    .await
    .expect_problem(412, "precondition_failed");
    // Listed in promotion order.
    let list = app
        .get(&app.admin, "/api/v1/environments")
        .await
        .expect(200);
    let names: Vec<&str> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["staging", "production"]);

    // Bad input names its field.
    for (body, field) in [
        (
            json!({"contacts": [{"name": "X", "role": "Y", "reach": "Z", "level": 0}]}),
            "contacts",
        ),
        (
            json!({"dashboards": [{"label": "Logs", "url": "logs.example"}]}),
            "dashboards",
        ),
        (json!({"promotes_from": "qa"}), "promotes_from"),
        (
            json!({"promotes_from": null, "requires_promotion": true}),
            "requires_promotion",
        ),
    ] {
        let a = put(&app, "production", body, None)
            .await
            .expect_problem(422, "invalid_input");
        assert!(
            a.json["detail"].as_str().unwrap().starts_with(field),
            "{field}: {}",
            a.text
        );
    }
    // staging promoted from production would make a cycle.
    put(
        &app,
        "staging",
        json!({"promotes_from": "production"}),
        None,
    )
    .await
    .expect_problem(422, "invalid_input");

    // An environment runs name is not deleted: it is archived, and refuses new runs.
    app.send(
        Method::DELETE,
        "/api/v1/environments/production",
        Some(&app.admin),
        None,
        &[],
    )
    .await
    .expect_problem(409, "environment_in_use");
    let mut archived = record.clone();
    archived["archived"] = json!(true);
    put(&app, "production", archived, None).await.expect(200);
    let refused = app
        .post(
            &app.admin,
            "/api/v1/runs",
            json!({"template_id": shipshape_tests::EDULIBRA, "product": "EduLibra", "release_version": "4.3.0", "environment": "production"}),
        )
        .await
        .expect_problem(422, "invalid_input");
    assert!(refused.text.contains("archived"), "{}", refused.text);
    app.run(&app.admin, &id(&run)).await;
    // One nothing names is deleted, and the audit log says who changed what.
    put(&app, "sandbox", json!({}), None).await.expect(200);
    app.send(
        Method::DELETE,
        "/api/v1/environments/sandbox",
        Some(&app.admin),
        None,
        &[],
    )
    .await
    .expect(204);
    app.get(&app.admin, "/api/v1/environments/sandbox")
        .await
        .expect_problem(404, "not_found");
    let audit = app
        .get(&app.admin, "/api/v1/audit-log?limit=100")
        .await
        .expect(200);
    let actions: Vec<&str> = audit.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"environment_updated") && actions.contains(&"environment_deleted"));
    let change = audit.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "environment_updated" && e["details"]["archived"]["to"] == true)
        .unwrap();
    assert_eq!(change["details"]["archived"]["from"], false);
}

async fn a_lock_stops_the_start_and_the_deployment_until_unlocked_and_webhooks_hear_it(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| {
        c.outbound_allow = Some("127.0.0.1/32".into());
    })
    .await;
    let hook = Receiver::start().await;
    let created = app
        .post(
            &app.admin,
            "/api/v1/webhooks",
            json!({
                "url": format!("{}/env", hook.url),
                "event_types": ["environment_locked", "environment_unlocked"],
                "environment": "production",
                "product": "Other",
            }),
        )
        .await
        .expect(201)
        .json;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let rm = app.user("rita", "release_manager").await;
    let engineer = app.user("eli", "engineer").await;
    let run = id(&app.create_run(&rm, "EduLibra", "production").await);
    let other = id(&app.create_run(&rm, "Catalogue", "production").await);

    let lock = app
        .post(
            &rm,
            "/api/v1/environments/production/locks",
            json!({"reason": "Database migration half-done"}),
        )
        .await
        .expect(201)
        .json;
    assert_eq!(lock["locked_by"], "rita");
    app.post(
        &rm,
        "/api/v1/environments/production/locks",
        json!({"reason": "again"}),
    )
    .await
    .expect_problem(409, "environment_locked");
    app.post(
        &engineer,
        "/api/v1/environments/production/locks",
        json!({"reason": "mine"}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.post(
        &rm,
        "/api/v1/environments/production/locks",
        json!({"reason": "x", "until": "2020-01-01T00:00:00Z"}),
    )
    .await
    .expect_problem(422, "invalid_input");
    for until in ["2999-01-01T00:00:00Z", "+10000-01-01T00:00:00Z"] {
        app.post(
            &rm,
            "/api/v1/environments/staging/locks",
            json!({"reason": "x", "until": until}),
        )
        .await
        .expect(422);
    }

    // The run shows the lock before anyone clicks, and refuses the start naming it.
    let shown = blockers(&app, &run, "start").await;
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0]["kind"], "lock");
    assert_eq!(shown[0]["reason"], "Database migration half-done");
    let warned = app.run(&rm, &run).await["warnings"].clone();
    assert_eq!(warned[0]["kind"], "lock", "{warned}");
    let refused = app.transition(&rm, &run, "start").await.expect(409);
    assert_eq!(refused.json["blockers"][0]["kind"], "lock");

    // Webhooks hear the lock (the product filter does not apply to environment events).
    let got = hook.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert!(
        Webhook::new(&secret)
            .unwrap()
            .verify(&got[0].body, &got[0].header_map())
            .is_ok()
    );
    let body = got[0].json();
    assert_eq!(body["type"], "environment_locked");
    assert_eq!(body["data"]["environment"], "production");
    assert_eq!(
        body["data"]["lock"]["reason"],
        "Database migration half-done"
    );

    // Unlocking needs a note; then the run starts.
    let lock_path = format!("/api/v1/environments/production/locks/{}", id(&lock));
    app.patch(&rm, &lock_path, json!({"note": "  "}), None)
        .await
        .expect_problem(422, "invalid_input");
    let lifted = app
        .patch(
            &rm,
            &lock_path,
            json!({"note": "Migration finished and checked"}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(lifted["unlocked_by"], "rita");
    app.patch(&rm, &lock_path, json!({"note": "twice"}), None)
        .await
        .expect_problem(409, "environment_not_locked");
    app.transition(&rm, &run, "start").await.expect(200);
    let got = hook.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].json()["type"], "environment_unlocked");
    assert_eq!(
        got[1].json()["data"]["lock"]["unlock_note"],
        "Migration finished and checked"
    );

    // A lock taken while a run prepares stops its move into deploying; one with an end
    // lifts by itself.
    let until = rfc3339(Utc::now() + chrono::Duration::seconds(2));
    app.post(
        &rm,
        "/api/v1/environments/production/locks",
        json!({"reason": "Brief network work", "until": until}),
    )
    .await
    .expect(201);
    app.finish_gate(&rm, &run, "deploy").await;
    app.decide(&rm, &run, "go_no_go", "go").await.expect(201);
    let refused = app.transition(&rm, &run, "advance").await.expect(409);
    assert_eq!(refused.json["blockers"][0]["kind"], "lock");
    assert!(refused.json["blockers"][0]["until"].is_string());
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    app.transition(&rm, &run, "advance").await.expect(200);
    let locks = app
        .get(&rm, "/api/v1/environments/production/locks")
        .await
        .expect(200)
        .json;
    assert_eq!(locks["items"].as_array().unwrap().len(), 2);
    // The other run was never touched by any of it.
    assert_eq!(app.run(&rm, &other).await["status"], "planned");
}

async fn a_rollback_locks_its_environment_until_someone_has_looked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rm = app.admin.clone();
    let run = id(&app.create_run(&rm, "EduLibra", "production").await);
    app.transition(&rm, &run, "start").await.expect(200);
    app.finish_gate(&rm, &run, "deploy").await;
    app.decide(&rm, &run, "go_no_go", "go").await.expect(201);
    app.transition(&rm, &run, "advance").await.expect(200);
    // A lock that would lift by itself in an hour gives way to the rollback's.
    let timed = app
        .post(
            &rm,
            "/api/v1/environments/production/locks",
            json!({"reason": "Network work", "until": rfc3339(Utc::now() + chrono::Duration::hours(1))}),
        )
        .await
        .expect(201)
        .json;
    app.decide(&rm, &run, "deployment_checkpoint", "rollback")
        .await
        .expect(201);
    let history = app
        .get(&rm, "/api/v1/environments/production/locks")
        .await
        .expect(200)
        .json;
    let replaced = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == timed["id"])
        .unwrap();
    assert_eq!(replaced["unlocked_by"], "system");
    let env = app
        .get(&rm, "/api/v1/environments/production")
        .await
        .expect(200)
        .json;
    assert_eq!(env["lock"]["locked_by"], "system");
    assert_eq!(env["lock"]["run_id"], run.as_str());
    assert!(env["lock"]["until"].is_null());
    // Nobody deploys there, whatever the product, until someone unlocks it with a note.
    let next = id(&app.create_run(&rm, "Catalogue", "production").await);
    let refused = app.transition(&rm, &next, "start").await.expect(409);
    assert_eq!(refused.json["blockers"][0]["kind"], "lock");
    assert_eq!(refused.json["blockers"][0]["locked_by"], "system");
    // Staging is not locked by it.
    let elsewhere = id(&app.create_run(&rm, "Catalogue", "staging").await);
    app.transition(&rm, &elsewhere, "start").await.expect(200);
    app.patch(
        &rm,
        &format!(
            "/api/v1/environments/production/locks/{}",
            env["lock"]["id"].as_str().unwrap()
        ),
        json!({"note": "Root cause found: a missing index; fixed in 4.2.1"}),
        None,
    )
    .await
    .expect(200);
    app.transition(&rm, &next, "start").await.expect(200);
}

async fn freezes_refuse_a_start_naming_their_end_warn_the_schedule_and_yield_to_break_glass(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let rm = app.admin.clone();
    let run = id(&app.create_run(&rm, "EduLibra", "production").await);
    let path = "/api/v1/environments/production/freezes";
    let now = Utc::now();
    let ends = now + chrono::Duration::hours(2);
    let freeze = app
        .post(
            &rm,
            path,
            json!({
                "reason": "Exam period",
                "recurrence": "once",
                "start": rfc3339(now - chrono::Duration::hours(1)),
                "end": rfc3339(ends),
            }),
        )
        .await
        .expect(201)
        .json;
    assert_eq!(
        freeze["next"]["ends_at"].as_str().unwrap()[..19],
        rfc3339(ends)[..19]
    );

    // Bad windows are refused, each naming its field.
    let weekday = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [usize::try_from(now.weekday().num_days_from_monday()).unwrap()];
    for (body, field) in [
        (
            json!({"reason": "x", "recurrence": "once", "start": "2030-01-02T00:00:00Z", "end": "2030-01-01T00:00:00Z"}),
            "end",
        ),
        (
            json!({"reason": "x", "recurrence": "weekly", "start": "sat 00:00", "end": "sun 00:00", "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (
            json!({"reason": "x", "recurrence": "yearly", "start": "02-30", "end": "03-02"}),
            "start",
        ),
        (
            json!({"reason": "x", "recurrence": "yearly", "start": "07-01", "end": "07-02", "until": "2026-01-01"}),
            "until",
        ),
        // Every week over today overlaps the freeze in force.
        (
            json!({"reason": "x", "recurrence": "weekly", "start": format!("{weekday} 00:00"), "end": format!("{weekday} 23:59")}),
            "start",
        ),
    ] {
        let a = app
            .post(&rm, path, body)
            .await
            .expect_problem(422, "invalid_input");
        assert!(
            a.json["detail"].as_str().unwrap().starts_with(field),
            "{field}: {}",
            a.text
        );
    }

    // A one-off window years ahead is kept.
    app.post(
        &rm,
        path,
        json!({"reason": "Data-centre move", "recurrence": "once", "start": format!("{}-03-01T00:00:00Z", now.year() + 4), "end": format!("{}-03-02T00:00:00Z", now.year() + 4)}),
    )
    .await
    .expect(201);

    // The start is refused, naming the freeze and when it ends.
    let refused = app.transition(&rm, &run, "start").await.expect(409);
    let blocker = &refused.json["blockers"][0];
    assert_eq!(blocker["kind"], "freeze");
    assert_eq!(blocker["freeze_id"], freeze["id"]);
    assert_eq!(blocker["reason"], "Exam period");
    assert_eq!(blocker["ends_at"], freeze["next"]["ends_at"]);
    // Break-glass forces it, recorded as an override naming the freeze.
    app.post(
        &rm,
        &format!("/api/v1/runs/{run}/transitions"),
        json!({"action": "start", "force": true, "reason": "Security fix cannot wait for the exams"}),
    )
    .await
    .expect(200);
    let events = app.events(&run).await;
    let forced = events
        .iter()
        .find(|e| e["type"] == "run_overridden")
        .unwrap();
    assert_eq!(
        forced["payload"]["overridden_blockers"][0]["kind"],
        "freeze"
    );

    // A run scheduled into a future freeze is warned about when created and rescheduled.
    app.post(
        &rm,
        path,
        json!({"reason": "Year-end closing", "recurrence": "yearly", "start": "12-28", "end": "12-31", "time_zone": "Europe/Berlin"}),
    )
    .await
    .expect(201);
    let year = now.year() + 1;
    let planned = app
        .post(
            &rm,
            "/api/v1/runs",
            json!({
                "template_id": shipshape_tests::EDULIBRA,
                "product": "Catalogue",
                "release_version": "2.0.0",
                "environment": "production",
                "window_start": format!("{year}-12-29T20:00:00Z"),
                "window_end": format!("{year}-12-29T22:00:00Z"),
            }),
        )
        .await
        .expect(201);
    let warnings = planned.json["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["kind"], "freeze");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("Year-end closing")
    );
    // Berlin's day begins an hour before UTC's in winter.
    assert_eq!(warnings[0]["starts_at"], format!("{year}-12-27T23:00:00Z"));
    let moved = app
        .patch(
            &rm,
            &format!("/api/v1/runs/{}", id(&planned.json)),
            json!({"window_start": format!("{year}-11-10T20:00:00Z"), "window_end": format!("{year}-11-10T22:00:00Z")}),
            planned.etag.as_deref(),
        )
        .await
        .expect(200);
    assert_eq!(moved.json["warnings"], json!([]));

    // Listed soonest first; a deleted freeze no longer blocks.
    let list = app.get(&rm, path).await.expect(200).json;
    assert_eq!(list["items"][0]["id"], freeze["id"]);
    app.send(
        Method::DELETE,
        &format!("{path}/{}", id(&freeze)),
        Some(&rm),
        None,
        &[],
    )
    .await
    .expect(204);
    let again = id(&app.create_run(&rm, "Search", "production").await);
    app.transition(&rm, &again, "start").await.expect(200);
}

async fn a_release_reaches_production_only_after_it_completed_in_staging(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rm = app.admin.clone();
    put(&app, "staging", json!({"position": 1}), None)
        .await
        .expect(200);
    put(
        &app,
        "production",
        json!({"position": 2, "promotes_from": "staging", "requires_promotion": true}),
        None,
    )
    .await
    .expect(200);
    let prod = id(&app.create_run(&rm, "EduLibra", "production").await);
    let shown = blockers(&app, &prod, "start").await;
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["kind"], "promotion");
    assert_eq!(shown[0]["environment"], "staging");
    assert_eq!(shown[0]["release_version"], "4.2.0");
    app.transition(&rm, &prod, "start").await.expect(409);

    let staging = id(&app.create_run(&rm, "EduLibra", "staging").await);
    app.transition(&rm, &staging, "start").await.expect(200);
    app.complete(&rm, &staging).await;
    assert_eq!(blockers(&app, &prod, "start").await, Vec::<Value>::new());
    app.transition(&rm, &prod, "start").await.expect(200);
}

async fn the_run_shows_and_reports_its_environments_contacts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rm = app.admin.clone();
    put(
        &app,
        "production",
        json!({
            "dashboards": [{"label": "Grafana", "url": "https://grafana.example/d/edulibra"}],
            "contacts": [{"name": "Dana Whitfield", "role": "Database on-call", "reach": "+49 30 555 0101", "level": 1, "hours": "24/7"}],
        }),
        None,
    )
    .await
    .expect(200);
    let run = app.create_run(&rm, "EduLibra", "production").await;
    let item = shipshape_tests::item_by_title(&run, "Issue escalation paths");
    assert_eq!(item["record"], "contacts");
    let report = app
        .send(
            Method::GET,
            &format!("/api/v1/runs/{}/report", id(&run)),
            Some(&rm),
            None,
            &[("accept", "text/markdown")],
        )
        .await
        .expect(200);
    assert!(
        report
            .text
            .contains("1. Dana Whitfield — Database on-call: +49 30 555 0101 (24/7)"),
        "{}",
        report.text
    );
    assert!(
        report
            .text
            .contains("[Grafana](https://grafana.example/d/edulibra)")
    );
    let json = app
        .get(&rm, &format!("/api/v1/runs/{}/report", id(&run)))
        .await
        .expect(200)
        .json;
    assert_eq!(json["escalation"][0]["name"], "Dana Whitfield");
}

async fn the_calendar_lists_runs_freezes_and_locks_and_calendar_applications_read_its_feed(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let rm = app.admin.clone();
    let now = Utc::now();
    let start = now + chrono::Duration::days(3);
    let run = app
        .post(
            &rm,
            "/api/v1/runs",
            json!({
                "template_id": shipshape_tests::EDULIBRA,
                "product": "EduLibra",
                "release_version": "4.2.0",
                "environment": "production",
                "window_start": rfc3339(start),
                "window_end": rfc3339(start + chrono::Duration::minutes(90)),
            }),
        )
        .await
        .expect(201)
        .json;
    app.post(
        &rm,
        "/api/v1/environments/production/freezes",
        json!({"reason": "Weekend; no deploys", "recurrence": "weekly", "start": "sat 00:00", "end": "mon 00:00", "time_zone": "UTC"}),
    )
    .await
    .expect(201);
    app.post(
        &rm,
        "/api/v1/environments/staging/locks",
        json!({"reason": "x"}),
    )
    .await
    .expect_problem(404, "not_found");
    app.create_run(&rm, "Catalogue", "staging").await;
    app.post(
        &rm,
        "/api/v1/environments/staging/locks",
        json!({"reason": "Load test running"}),
    )
    .await
    .expect(201);

    let from = rfc3339(now - chrono::Duration::days(1));
    let to = rfc3339(now + chrono::Duration::days(14));
    let cal = app
        .get(&rm, &format!("/api/v1/calendar?from={from}&to={to}"))
        .await
        .expect(200)
        .json;
    let entries = cal["entries"].as_array().unwrap();
    let of = |kind: &str| entries.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(of("run"), 1, "{entries:?}");
    assert!(of("freeze") >= 2, "every weekend in two weeks: {entries:?}");
    assert_eq!(of("lock"), 1);
    let only = app
        .get(
            &rm,
            &format!("/api/v1/calendar?from={from}&to={to}&environment=staging"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(only["entries"].as_array().unwrap().len(), 1);
    for query in [
        "from=%2B262142-12-31T00:00:00Z".to_owned(),
        format!("from={from}&to=9999-12-31T23:59:59Z"),
        format!("from={to}&to={from}"),
        format!(
            "from={from}&to={}",
            rfc3339(now + chrono::Duration::days(800))
        ),
    ] {
        app.get(&rm, &format!("/api/v1/calendar?{query}"))
            .await
            .expect_problem(422, "invalid_input");
    }

    // The feed, with an API token in the URL as a calendar application sends it.
    let token = app
        .post(
            &rm,
            "/api/v1/tokens",
            json!({"name": "Calendar", "scopes": ["runs:read"], "expires_in_days": 30}),
        )
        .await
        .expect(201)
        .json["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let feed = app
        .send(
            Method::GET,
            &format!("/api/v1/calendar.ics?token={token}"),
            None,
            None,
            &[],
        )
        .await
        .expect(200);
    assert!(
        feed.content_type.starts_with("text/calendar"),
        "{}",
        feed.content_type
    );
    let calendar: icalendar::Calendar = feed.text.parse().unwrap();
    let events: Vec<&icalendar::Event> = calendar
        .components
        .iter()
        .filter_map(|c| match c {
            icalendar::CalendarComponent::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    let release = events
        .iter()
        .find(|e| {
            e.get_summary()
                .is_some_and(|s| s.starts_with("EduLibra 4.2.0 → production"))
        })
        .unwrap();
    let Some(DatePerhapsTime::DateTime(CalendarDateTime::Utc(starts))) = release.get_start() else {
        panic!("a run starts at a time in UTC");
    };
    assert_eq!(
        starts.timestamp(),
        chrono::DateTime::parse_from_rfc3339(run["window_start"].as_str().unwrap())
            .unwrap()
            .timestamp()
    );
    assert!(
        events
            .iter()
            .filter(|e| e.get_summary().is_some_and(|s| s.contains("Weekend")))
            .count()
            >= 50
    );
    assert!(events.iter().any(|e| {
        e.get_summary()
            .is_some_and(|s| s.contains("Load test running"))
    }));
    let uids: std::collections::BTreeSet<_> = events.iter().map(|e| e.get_uid().unwrap()).collect();
    assert_eq!(uids.len(), events.len(), "every event has its own UID");

    // Without a token, with a session in the URL, or with a token for something else: refused.
    app.send(Method::GET, "/api/v1/calendar.ics", None, None, &[])
        .await
        .expect_problem(401, "unauthorized");
    app.send(
        Method::GET,
        &format!("/api/v1/calendar.ics?token={rm}"),
        None,
        None,
        &[],
    )
    .await
    .expect_problem(401, "unauthorized");
    let hooks_only = app
        .post(
            &rm,
            "/api/v1/tokens",
            json!({"name": "Hooks", "scopes": ["webhooks:write"], "expires_in_days": 30}),
        )
        .await
        .expect(201)
        .json["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(
        Method::GET,
        &format!("/api/v1/calendar.ics?token={hooks_only}"),
        None,
        None,
        &[],
    )
    .await
    .expect_problem(403, "forbidden");
}

shipshape_tests::each_backend!(
    environments_are_records_kept_by_admins_and_archived_rather_than_deleted,
    a_lock_stops_the_start_and_the_deployment_until_unlocked_and_webhooks_hear_it,
    a_rollback_locks_its_environment_until_someone_has_looked,
    freezes_refuse_a_start_naming_their_end_warn_the_schedule_and_yield_to_break_glass,
    a_release_reaches_production_only_after_it_completed_in_staging,
    the_run_shows_and_reports_its_environments_contacts,
    the_calendar_lists_runs_freezes_and_locks_and_calendar_applications_read_its_feed,
);
