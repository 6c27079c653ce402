//! Stakeholder announcements, end to end: a draft generated from the run, edited and sent to
//! a chat channel (chosen), a webhook subscriber (by event type) and mail recipients (an SMTP
//! sink), recorded in the run's log, completing the schedule item with the announcement as
//! its evidence; a rollback announced with its reason once the run rolls back, and not
//! before. On SQLite and PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::time::Duration;

use serde_json::{Value, json};
use shipshape_api::config::Secret;
use shipshape_tests::receiver::Receiver;
use shipshape_tests::smtp::SmtpSink;
use shipshape_tests::{Backend, TestApp, item_by_title};
use standardwebhooks::Webhook;

const ARRIVES: Duration = Duration::from_secs(10);

async fn subscribe(app: &TestApp, body: Value) -> (String, String) {
    let created = app
        .post(&app.admin, "/api/v1/webhooks", body)
        .await
        .expect(201)
        .json;
    (
        created["subscription"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn an_announcement_is_drafted_edited_sent_and_completes_its_item(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        c.outbound_allow = Some("127.0.0.1/32".into());
        c.smtp_url = Some(Secret::new(&sink.url));
        c.mail_from = "Shipshape <ship@example.com>".into();
        c.public_url = Some("https://shipshape.example.com".into());
    })
    .await;
    let chat = Receiver::start().await;
    let tool = Receiver::start().await;
    let (chat_id, chat_secret) = subscribe(
        &app,
        json!({"url": format!("{}/chat", chat.url), "format": "slack", "event_types": ["run_created"]}),
    )
    .await;
    let (_, tool_secret) = subscribe(
        &app,
        json!({"url": format!("{}/tool", tool.url), "event_types": ["announcement_sent"]}),
    )
    .await;
    let (idle_id, _) = subscribe(
        &app,
        json!({"url": format!("{}/idle", tool.url), "event_types": ["run_created"], "active": false}),
    )
    .await;

    app.user("erin", "engineer").await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap();
    app.add_member(run_id, "erin").await;
    // The chat channel hears of the new run; the rest of this test is the announcement.
    assert_eq!(chat.wait_for(1, ARRIVES).await.len(), 1);
    app.transition(&app.admin, run_id, "start")
        .await
        .expect(200);

    // The draft: the window in UTC and in the reader's zone, downtime, contacts, a link.
    let draft = app
        .get(
            &app.admin,
            &format!("/api/v1/runs/{run_id}/announcements/draft?kind=schedule&offset_minutes=60"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(draft["kind"], "schedule");
    assert_eq!(
        draft["subject"],
        "Planned deployment: EduLibra 4.2.0 to production on 2026-12-01 22:00 UTC"
    );
    let body = draft["body"].as_str().unwrap();
    for line in [
        "EduLibra 4.2.0 will be deployed to production.",
        "When: 2026-12-01 22:00 UTC to 2026-12-01 23:30 UTC",
        "Your time: 2026-12-01 23:00 (UTC+01:00) to 2026-12-02 00:30 (UTC+01:00)",
        "Expected downtime: about 15 minutes.",
        "- erin (engineer on duty)",
        &format!("Follow the deployment: https://shipshape.example.com/runs/{run_id}"),
    ] {
        assert!(body.lines().any(|l| l == line), "{line:?} in {body}");
    }
    app.get(
        &app.admin,
        &format!("/api/v1/runs/{run_id}/announcements/draft?kind=schedule&offset_minutes=900"),
    )
    .await
    .expect_problem(422, "invalid_input");

    // Refusals, before anything is sent.
    let schedule_item = item_by_title(&run, "Deployment schedule is communicated");
    let item_id = schedule_item["id"].as_str().unwrap();
    let send = |extra: Value| {
        let mut b = json!({
            "kind": "schedule",
            "subject": draft["subject"],
            "body": format!("{body}\nThe library stays read-only during the window."),
            "subscription_ids": [chat_id],
            "recipients": ["users@example.com", "ops@example.com"],
            "item_id": item_id,
        });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let path = format!("/api/v1/runs/{run_id}/announcements");
    for (extra, says) in [
        (
            json!({"kind": "success"}),
            "kind: a success announcement is sent once the deployment is verifying or completed; this run is preparing",
        ),
        (json!({"subscription_ids": [idle_id]}), "subscription_ids: "),
        (
            json!({"subscription_ids": ["no-such"]}),
            "subscription_ids: `no-such` is not an active webhook subscription",
        ),
        (
            json!({"recipients": ["not an address"]}),
            "recipients: must be an e-mail address",
        ),
        (
            json!({"recipients": [], "subscription_ids": []}),
            "recipients: choose at least one",
        ),
        (json!({"subject": "  "}), "subject: must not be empty"),
    ] {
        let refused = app
            .post(&app.admin, &path, send(extra))
            .await
            .expect_problem(422, "invalid_input");
        let detail = refused.json["detail"].as_str().unwrap();
        assert!(detail.starts_with(says), "{detail}");
    }
    // (The schedule's checks of the probe items may log their results meanwhile.)
    let people = |log: &[Value]| -> Vec<Value> {
        log.iter()
            .filter(|e| e["type"] != "probe_checked")
            .cloned()
            .collect()
    };
    assert_eq!(
        people(&app.events(run_id).await).last().unwrap()["type"],
        "run_transitioned",
        "nothing was recorded"
    );

    // Sent: recorded, delivered, mailed, and the schedule item is done with it as evidence.
    let receipt = app
        .post(&app.admin, &path, send(json!({})))
        .await
        .expect(201)
        .json;
    let seq = receipt["seq"].as_i64().unwrap();
    assert_eq!(receipt["item"]["status"], "done");
    assert_eq!(
        receipt["item"]["note"],
        format!(
            "Announced (event {seq}): {}",
            draft["subject"].as_str().unwrap()
        )
    );
    let log = app.events(run_id).await;
    let sent = log.iter().find(|e| e["seq"] == seq).unwrap();
    assert_eq!(sent["type"], "announcement_sent");
    assert_eq!(sent["payload"]["announcement"], "schedule");
    assert_eq!(
        sent["payload"]["recipients"],
        json!(["users@example.com", "ops@example.com"])
    );
    assert_eq!(sent["payload"]["item_id"], item_id);
    assert_eq!(
        people(&log).last().unwrap()["type"],
        "item_updated",
        "the item change follows it"
    );

    let got = chat.wait_for(2, ARRIVES).await;
    let message = &got[1];
    assert!(
        Webhook::new(&chat_secret)
            .unwrap()
            .verify(&message.body, &message.header_map())
            .is_ok()
    );
    let m = message.json();
    assert_eq!(m["text"], draft["subject"]);
    assert!(
        m["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .ends_with("The library stays read-only during the window.")
    );

    let got = tool.wait_for(1, ARRIVES).await;
    assert!(
        Webhook::new(&tool_secret)
            .unwrap()
            .verify(&got[0].body, &got[0].header_map())
            .is_ok()
    );
    let envelope = got[0].json();
    assert_eq!(envelope["type"], "announcement_sent");
    assert_eq!(envelope["data"]["payload"]["subject"], draft["subject"]);

    let mails = sink.wait_for(2, ARRIVES).await;
    assert_eq!(mails.len(), 2);
    let mut to: Vec<String> = mails.iter().map(|m| m.to[0].clone()).collect();
    to.sort();
    assert_eq!(to, ["ops@example.com", "users@example.com"]);
    for mail in &mails {
        assert_eq!(mail.header("subject"), draft["subject"].as_str());
        assert!(
            mail.body
                .contains("The library stays read-only during the window.")
        );
        assert!(
            mail.body
                .contains("Your time: 2026-12-01 23:00 (UTC+01:00)")
        );
    }
}

async fn a_rollback_is_announced_with_its_reason_once_the_run_rolls_back(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, |c| c.outbound_allow = Some("127.0.0.1/32".into())).await;
    let chat = Receiver::start().await;
    let (chat_id, _) = subscribe(
        &app,
        json!({"url": format!("{}/chat", chat.url), "format": "slack", "event_types": ["run_overridden"]}),
    )
    .await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap().to_owned();
    app.transition(&app.admin, &id, "start").await.expect(200);
    app.finish_gate(&app.admin, &id, "deploy").await;
    app.decide(&app.admin, &id, "go_no_go", "go")
        .await
        .expect(201);
    app.transition(&app.admin, &id, "advance").await.expect(200);
    let path = format!("/api/v1/runs/{id}/announcements");
    let body = |kind: &str| json!({"kind": kind, "subject": "s", "body": "b", "subscription_ids": [chat_id]});
    let early = app
        .post(&app.admin, &path, body("rollback"))
        .await
        .expect_problem(422, "invalid_input");
    assert_eq!(
        early.json["detail"],
        "kind: a rollback announcement is sent once the run is rolling back or rolled back; this run is deploying"
    );

    let decision = app
        .decide(&app.admin, &id, "deployment_checkpoint", "rollback")
        .await
        .expect(201)
        .json;
    let rationale = decision["rationale"].as_str().unwrap();
    let draft = app
        .get(
            &app.admin,
            &format!("/api/v1/runs/{id}/announcements/draft?kind=rollback"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(
        draft["subject"],
        "Rolled back: EduLibra 4.2.0 in production"
    );
    let text = draft["body"].as_str().unwrap();
    assert!(text.contains(&format!("Why: {rationale}\n")), "{text}");
    assert!(!text.contains("Your time"), "no zone given, none shown");
    app.post(&app.admin, &path, body("success"))
        .await
        .expect_problem(422, "invalid_input");
    let receipt = app
        .post(
            &app.admin,
            &path,
            json!({"kind": "rollback", "subject": draft["subject"], "body": draft["body"], "subscription_ids": [chat_id]}),
        )
        .await
        .expect(201)
        .json;
    assert_eq!(receipt["item"], Value::Null);
    let got = chat.wait_for(1, ARRIVES).await;
    assert_eq!(
        got.len(),
        1,
        "the channel hears the announcement, not the events it did not choose"
    );
    assert_eq!(
        got[0].json()["text"],
        "Rolled back: EduLibra 4.2.0 in production"
    );
    let sent = app.events(&id).await.last().unwrap().clone();
    assert_eq!(sent["type"], "announcement_sent");
    assert_eq!(sent["payload"]["announcement"], "rollback");
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rollback_is_announced_with_its_reason_once_the_run_rolls_back() {
        super::a_rollback_is_announced_with_its_reason_once_the_run_rolls_back(
            shipshape_tests::Backend::Sqlite,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_announcement_is_drafted_edited_sent_and_completes_its_item() {
        super::an_announcement_is_drafted_edited_sent_and_completes_its_item(
            shipshape_tests::Backend::Sqlite,
        )
        .await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rollback_is_announced_with_its_reason_once_the_run_rolls_back() {
        super::a_rollback_is_announced_with_its_reason_once_the_run_rolls_back(
            shipshape_tests::Backend::Postgres,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_announcement_is_drafted_edited_sent_and_completes_its_item() {
        super::an_announcement_is_drafted_edited_sent_and_completes_its_item(
            shipshape_tests::Backend::Postgres,
        )
        .await;
    }
}
