//! E-mail for people, against an SMTP sink the test starts: what waits on someone (their
//! `/me/pending`) is mailed to them, a burst of changes in one mail, nothing twice, and not
//! at all once they turn it off. On SQLite and PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use shipshape_api::config::Secret;
use shipshape_tests::smtp::{Mail, SmtpSink};
use shipshape_tests::{Backend, TestApp, items};

/// Long enough for a mail on a loaded test machine (the batch window is one second).
const ARRIVES: Duration = Duration::from_secs(10);
/// Long enough for a mail that should not come: a batch window and a round, twice over.
const NOTHING_MORE: Duration = Duration::from_millis(2500);

fn to<'a>(mails: &'a [Mail], address: &str) -> Vec<&'a Mail> {
    mails.iter().filter(|m| m.to == [address]).collect()
}

async fn wait_for_mail_to(sink: &SmtpSink, address: &str, n: usize) -> Vec<Mail> {
    let deadline = tokio::time::Instant::now() + ARRIVES;
    loop {
        let mails = sink.mails();
        let mine: Vec<Mail> = to(&mails, address).into_iter().cloned().collect();
        if mine.len() >= n || tokio::time::Instant::now() >= deadline {
            return mine;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assign(app: &TestApp, run: &Value, i: usize, username: &str) -> Value {
    let id = run["id"].as_str().unwrap();
    let item = items(run)[i].clone();
    app.patch(
        &app.admin,
        &format!("/api/v1/runs/{id}/items/{}", item["id"].as_str().unwrap()),
        json!({"assignee": username}),
        None,
    )
    .await
    .expect(200);
    item
}

async fn people_are_mailed_what_waits_on_them(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        c.smtp_url = Some(Secret::new(&sink.url));
        c.mail_from = "Shipshape <ship@example.com>".into();
        c.mail_batch_secs = 1;
        c.public_url = Some("https://shipshape.example.com".into());
    })
    .await;
    let erin = app.user("erin", "engineer").await;
    let otto = app.user("otto", "engineer").await;
    let rita = app.user("rita", "release_manager").await;

    // Each sets an address; Otto turns mail off.
    let settings = app
        .get(&erin, "/api/v1/me/notifications")
        .await
        .expect(200)
        .json;
    assert_eq!(
        settings,
        json!({"email": null, "email_notifications": true})
    );
    let bad = app
        .patch(
            &erin,
            "/api/v1/me/notifications",
            json!({"email": "erin at example"}),
            None,
        )
        .await
        .expect_problem(422, "invalid_input");
    assert!(
        bad.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("email: must be an e-mail address")
    );
    for (token, address) in [
        (&erin, "erin@example.com"),
        (&otto, "otto@example.com"),
        (&rita, "rita@example.com"),
    ] {
        let s = app
            .patch(
                token,
                "/api/v1/me/notifications",
                json!({"email": address}),
                None,
            )
            .await
            .expect(200)
            .json;
        assert_eq!(s["email"], address);
    }
    app.patch(
        &otto,
        "/api/v1/me/notifications",
        json!({"email_notifications": false}),
        None,
    )
    .await
    .expect(200);

    // A burst: two items assigned to Erin, one to Otto.
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap();
    app.add_member(run_id, "erin").await;
    app.add_member(run_id, "otto").await;
    let first = assign(&app, &run, 0, "erin").await;
    let second = assign(&app, &run, 1, "erin").await;
    assign(&app, &run, 2, "otto").await;

    let erins = wait_for_mail_to(&sink, "erin@example.com", 1).await;
    assert_eq!(erins.len(), 1, "one mail for the burst");
    let mail = &erins[0];
    assert_eq!(mail.from, "ship@example.com");
    assert_eq!(
        mail.header("subject"),
        Some("Shipshape: 2 things wait on you")
    );
    let label = "EduLibra 4.2.0 → production";
    for item in [&first, &second] {
        let line = format!(
            "- {label}: {} {} is assigned to you\n  https://shipshape.example.com/runs/{run_id}\n",
            item["reference"].as_str().unwrap(),
            item["title"].as_str().unwrap()
        );
        assert!(mail.body.contains(&line), "{line} in {}", mail.body);
    }
    assert!(mail.body.starts_with("Hello erin,"));
    assert!(
        mail.body.contains("email_notifications"),
        "the mail says how to stop them"
    );

    // A decision that Rita may take: the run starts preparing, where Go/No-Go is decided.
    app.transition(&app.admin, run_id, "start")
        .await
        .expect(200);
    let deadline = tokio::time::Instant::now() + ARRIVES;
    let decision_line = format!("- {label}: Go/No-Go waits for your decision\n");
    loop {
        let ritas = wait_for_mail_to(&sink, "rita@example.com", 1).await;
        if ritas.iter().any(|m| m.body.contains(&decision_line)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Rita is told of the decision: {ritas:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every line Rita was mailed is on her pending list.
    let pending = app.get(&rita, "/api/v1/me/pending").await.expect(200).json;
    let ritas = to(&sink.mails(), "rita@example.com")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let titles: Vec<String> = pending["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} waits for your sign-off",
                p["item"]["title"].as_str().unwrap()
            )
        })
        .chain(["Go/No-Go waits for your decision".to_owned()])
        .collect();
    for mail in &ritas {
        for line in mail.body.lines().filter(|l| l.starts_with("- ")) {
            assert!(
                titles.iter().any(|t| line.ends_with(t.as_str())),
                "{line} is pending for Rita"
            );
        }
    }

    // Nothing twice: a change that adds nothing to Erin's list mails her nothing; Otto, who
    // turned mail off, gets none.
    let id = run_id.to_owned();
    app.patch(
        &app.admin,
        &format!("/api/v1/runs/{id}/items/{}", first["id"].as_str().unwrap()),
        json!({"note": "still yours"}),
        None,
    )
    .await
    .expect(200);
    tokio::time::sleep(NOTHING_MORE).await;
    let mails = sink.mails();
    assert_eq!(to(&mails, "erin@example.com").len(), 1);
    assert!(
        to(&mails, "otto@example.com").is_empty(),
        "Otto turned mail off"
    );

    // Erin turns it off too: a new assignment is not mailed.
    let off = app
        .patch(
            &erin,
            "/api/v1/me/notifications",
            json!({"email_notifications": false}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(off["email_notifications"], false);
    assign(&app, &run, 3, "erin").await;
    tokio::time::sleep(NOTHING_MORE).await;
    assert_eq!(to(&sink.mails(), "erin@example.com").len(), 1);
    // An empty address removes it.
    let cleared = app
        .patch(
            &erin,
            "/api/v1/me/notifications",
            json!({"email": ""}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(cleared["email"], Value::Null);
    // API tokens cannot change where someone's mail goes.
    let token = app
        .post(
            &erin,
            "/api/v1/tokens",
            json!({"name": "bot", "scopes": ["runs:read"], "expires_in_days": 1}),
        )
        .await
        .expect(201)
        .json["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(
        Method::PATCH,
        "/api/v1/me/notifications",
        Some(&token),
        Some(&json!({"email": "evil@example.com"})),
        &[],
    )
    .await
    .expect_problem(403, "forbidden");
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn people_are_mailed_what_waits_on_them() {
        super::people_are_mailed_what_waits_on_them(shipshape_tests::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn people_are_mailed_what_waits_on_them() {
        super::people_are_mailed_what_waits_on_them(shipshape_tests::Backend::Postgres).await;
    }
}
