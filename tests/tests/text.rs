//! The one text rule, seen from outside: the same mistake in any label, name, note, reason
//! or URL gets the same answer, and every text is trimmed the same way. On SQLite and
//! PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use reqwest::Method;
use serde_json::{Value, json};
use shipshape_tests::{Answer, TestApp, items, on_both_backends};

/// A right-to-left override: it makes text display in another order than it reads.
const BIDI: &str = "4.2\u{202e}0";
const ONE_LINE: &str = "must be one line without control or bidirectional-override characters";
const PROSE: &str = "must not contain control or bidirectional-override characters (line breaks and tabs are allowed)";

#[track_caller]
fn refused(answer: Answer, field: &str, message: &str) {
    let a = answer.expect_problem(422, "invalid_input");
    assert_eq!(
        a.json["detail"],
        format!("{field}: {message}"),
        "{}",
        a.text
    );
}

/// Every field that takes text, each sent `value`, as (field, answer).
async fn send_everywhere(app: &TestApp, run: &Value, value: &str) -> Vec<(&'static str, Answer)> {
    let id = run["id"].as_str().unwrap();
    let all = items(run);
    let item = all.iter().find(|i| i["kind"] != "approval").unwrap();
    let item_path = format!("/api/v1/runs/{id}/items/{}", item["id"].as_str().unwrap());
    let approval = all.iter().find(|i| i["kind"] == "approval").unwrap();
    let point = run["decision_points"][0]["key"].as_str().unwrap();
    let criterion = run["decision_points"][0]["criteria"][0].clone();
    let mut out = Vec::new();
    let create = |field: &str| {
        let mut body = json!({
            "template_id": shipshape_tests::EDULIBRA,
            "product": "EduLibra",
            "release_version": "4.2.0",
            "environment": "staging",
        });
        body[field] = json!(value);
        body
    };
    for field in ["product", "release_version", "environment"] {
        out.push((
            field,
            app.post(&app.admin, "/api/v1/runs", create(field)).await,
        ));
    }
    out.push((
        "release_version",
        app.patch(
            &app.admin,
            &format!("/api/v1/runs/{id}"),
            json!({"release_version": value}),
            None,
        )
        .await,
    ));
    out.push((
        "run_role",
        app.post(
            &app.admin,
            &format!("/api/v1/runs/{id}/members"),
            json!({"username": "admin", "run_role": value}),
        )
        .await,
    ));
    out.push((
        "name",
        app.post(
            &app.admin,
            "/api/v1/tokens",
            json!({"name": value, "scopes": ["runs:read"], "expires_in_days": 1}),
        )
        .await,
    ));
    out.push((
        "assignee",
        app.patch(&app.admin, &item_path, json!({"assignee": value}), None)
            .await,
    ));
    out.push((
        "note",
        app.patch(&app.admin, &item_path, json!({"note": value}), None)
            .await,
    ));
    out.push((
        "reason",
        app.patch(
            &app.admin,
            &item_path,
            json!({"status": "skipped", "reason": value}),
            None,
        )
        .await,
    ));
    out.push((
        "reason",
        app.post(
            &app.admin,
            &format!("/api/v1/runs/{id}/transitions"),
            json!({"action": "start", "force": true, "reason": value}),
        )
        .await,
    ));
    out.push((
        "comment",
        app.post(
            &app.signers.0,
            &format!(
                "/api/v1/runs/{id}/items/{}/signoffs",
                approval["id"].as_str().unwrap()
            ),
            json!({"verdict": "reject", "comment": value}),
        )
        .await,
    ));
    let decision = |rationale: &str, observed: &str| {
        json!({
            "point_key": point,
            "outcome": "go",
            "rationale": rationale,
            "criteria": [{"criterion": criterion, "result": "met", "observed": observed}],
            // The other criteria stay unknown: the go says it goes on anyway.
            "unmet_confirmed": true,
        })
    };
    let decisions = format!("/api/v1/runs/{id}/decisions");
    out.push((
        "rationale",
        app.post(&app.admin, &decisions, decision(value, "fine"))
            .await,
    ));
    out.push((
        "observed",
        app.post(&app.admin, &decisions, decision("ready", value))
            .await,
    ));
    out
}

const LABELS: [&str; 7] = [
    "product",
    "release_version",
    "environment",
    "run_role",
    "name",
    "assignee",
    "release_version",
];

on_both_backends! {
    async fn an_invisible_override_gets_the_same_answer_in_every_field(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let answers = send_everywhere(&app, &run, BIDI).await;
        assert_eq!(answers.len(), 13, "every text field is tried");
        for (field, answer) in answers {
            let rule = if LABELS.contains(&field) { ONE_LINE } else { PROSE };
            refused(answer, field, rule);
        }
        // The list filters follow the same rule.
        let q = app
            .get(&app.admin, &format!("/api/v1/runs?environment={}", urlencode(BIDI)))
            .await;
        refused(q, "environment", ONE_LINE);
    }

    async fn a_line_break_is_prose_not_a_label(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        for (field, answer) in send_everywhere(&app, &run, "two\nlines").await {
            if LABELS.contains(&field) {
                refused(answer, field, ONE_LINE);
            } else {
                assert!(
                    answer.status.as_u16() != 422
                        || !answer.json["detail"].as_str().unwrap_or_default().starts_with(field),
                    "{field} takes line breaks: {}",
                    answer.text
                );
            }
        }
    }

    async fn too_long_and_blank_are_refused_alike(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let long = "x".repeat(201);
        for (field, answer) in send_everywhere(&app, &run, &long).await {
            if LABELS.contains(&field) {
                refused(answer, field, "must be at most 200 characters");
            }
        }
        let item = items(&run).into_iter().find(|i| i["kind"] != "approval").unwrap();
        let item_path = format!("/api/v1/runs/{id}/items/{}", item["id"].as_str().unwrap());
        let note = app.patch(&app.admin, &item_path, json!({"note": "n".repeat(10_001)}), None).await;
        refused(note, "note", "must be at most 10000 characters");

        let fresh = app.create_run(&app.admin, "EduLibra", "staging").await;
        for (field, answer) in send_everywhere(&app, &fresh, " \t ").await {
            match field {
                // White space alone clears a clearable field, and is no rationale.
                "assignee" | "note" | "observed" => {}
                "rationale" => refused(answer, field, "must not be empty"),
                // A skip, a forced transition and a rejection need their text.
                "reason" | "comment" => assert_eq!(answer.status.as_u16(), 422, "{}", answer.text),
                _ => refused(answer, field, "must not be empty"),
            }
        }
    }

    async fn every_text_is_trimmed_the_same_way(app) {
        let created = app
            .post(
                &app.admin,
                "/api/v1/runs",
                json!({
                    "template_id": shipshape_tests::EDULIBRA,
                    "product": "  EduLibra ",
                    "release_version": "\t4.2.0",
                    "environment": "production  ",
                }),
            )
            .await
            .expect(201)
            .json;
        assert_eq!(
            (&created["product"], &created["release_version"], &created["environment"]),
            (&json!("EduLibra"), &json!("4.2.0"), &json!("production"))
        );
        let id = created["id"].as_str().unwrap();
        let patched = app
            .patch(&app.admin, &format!("/api/v1/runs/{id}"), json!({"release_version": " 4.3.0 "}), None)
            .await
            .expect(200)
            .json;
        assert_eq!(patched["release_version"], "4.3.0");

        let user = app
            .post(
                &app.admin,
                "/api/v1/users",
                json!({"username": " carol ", "password": shipshape_tests::USER_PASSWORD, "role": "engineer"}),
            )
            .await
            .expect(201)
            .json;
        assert_eq!(user["username"], "carol");
        let member = app
            .post(
                &app.admin,
                &format!("/api/v1/runs/{id}/members"),
                json!({"username": " carol", "run_role": " on call "}),
            )
            .await
            .expect(201)
            .json;
        assert_eq!((&member["username"], &member["run_role"]), (&json!("carol"), &json!("on call")));

        let item = items(&created).into_iter().find(|i| i["kind"] != "approval").unwrap();
        let item_path = format!("/api/v1/runs/{id}/items/{}", item["id"].as_str().unwrap());
        let updated = app
            .patch(
                &app.admin,
                &item_path,
                json!({"note": "  checked twice\n", "evidence_url": " https://ci.example/1 "}),
                None,
            )
            .await
            .expect(200)
            .json;
        assert_eq!(updated["note"], "checked twice");
        assert_eq!(updated["evidence_url"], "https://ci.example/1");
        let cleared = app
            .send(Method::PATCH, &item_path, Some(&app.admin), Some(&json!({"note": "   "})), &[])
            .await
            .expect(200)
            .json;
        assert_eq!(cleared["note"], Value::Null, "white space alone clears a note");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
