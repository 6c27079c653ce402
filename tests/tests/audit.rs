//! Tamper evidence: each run's event log and the audit log are hash chains; a change, a
//! deletion, a swap or a malformed event made behind the server's back is found at exactly
//! its `seq`; the README's own verifier recomputes the chain of real exported logs; admin
//! actions land in the audit log; and a database from before the chain is chained on
//! upgrade with the hashes a live write gives.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use serde_json::{Value, json};
use shipshape_tests::{TestApp, item_by_title, on_both_backends};

/// A run with a varied log: created, rescheduled, staffed, worked, started. Returns its id
/// and its events.
async fn run_with_a_log(app: &TestApp) -> (String, Vec<Value>) {
    // Each run its own environment: a live run would keep the next from starting.
    let environment = format!("audit-{}", uuid::Uuid::new_v4().simple());
    let run = app.create_run(&app.admin, "EduLibra", &environment).await;
    let id = run["id"].as_str().unwrap().to_owned();
    app.patch(
        &app.admin,
        &format!("/api/v1/runs/{id}"),
        json!({"expected_downtime_minutes": 20, "release_version": "4.2.1 “ü”"}),
        None,
    )
    .await
    .expect(200);
    app.add_member(&id, "signing-approver").await;
    let freeze = item_by_title(&run, "Final testing")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(
        &app.admin,
        &format!("/api/v1/runs/{id}/items/{freeze}"),
        json!({"status": "done", "note": "frozen at \"a1b2\"\n\ttagged"}),
        None,
    )
    .await
    .expect(200);
    app.transition(&app.admin, &id, "start").await.expect(200);
    let events = app.events(&id).await;
    (id, events)
}

async fn audit(app: &TestApp, run_id: &str) -> Value {
    app.get(&app.admin, &format!("/api/v1/runs/{run_id}/audit"))
        .await
        .expect(200)
        .json
}

fn assert_broken_at(verdict: &Value, seq: i64) {
    assert_eq!(verdict["verified"], false, "{verdict}");
    assert_eq!(verdict["first_bad_seq"], seq, "{verdict}");
    assert!(verdict["problem"].as_str().is_some_and(|p| !p.is_empty()));
}

/// The README's verifier, extracted from the README itself, run on a log written to a file.
fn readme_verifier(entries: &[Value]) -> (bool, String) {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("<!-- chain-verifier -->\n```python\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the README shows the verifier");
    let dir = std::env::temp_dir().join(format!("chain-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("verify.py"), block).unwrap();
    std::fs::write(dir.join("log.json"), serde_json::to_vec(entries).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .arg(dir.join("verify.py"))
        .arg(dir.join("log.json"))
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_dir_all(&dir);
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success(), printed)
}

on_both_backends! {
    async fn a_runs_log_is_a_hash_chain_that_verifies_to_its_head(app) {
        let (id, events) = run_with_a_log(&app).await;
        assert!(events.len() >= 5);
        assert_eq!(events[0]["prev_hash"], "0".repeat(64));
        for pair in events.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "each event links to the one before");
        }
        let verdict = audit(&app, &id).await;
        assert_eq!(verdict["verified"], true, "{verdict}");
        // The run has started: a scheduled check may add events meanwhile (the system's).
        // The audit covers the log as it was then: everything read before, its head the
        // last event it counted.
        let after = app.events(&id).await;
        let count = verdict["count"].as_u64().unwrap() as usize;
        assert!((events.len()..=after.len()).contains(&count), "{verdict}");
        assert_eq!(verdict["head_hash"], after[count - 1]["hash"]);
        assert_eq!(verdict["first_bad_seq"], Value::Null);
    }

    async fn the_readme_verifier_recomputes_real_logs_and_finds_a_change(app) {
        // A completed run and a rolled-back one, exported through the API.
        let (id, _) = run_with_a_log(&app).await;
        for gate in ["deploy"] {
            app.finish_gate(&app.admin, &id, gate).await;
        }
        app.decide(&app.admin, &id, "go_no_go", "go").await.expect(201);
        app.transition(&app.admin, &id, "advance").await.expect(200);
        app.decide(&app.admin, &id, "deployment_checkpoint", "rollback").await.expect(201);
        app.transition(&app.admin, &id, "finish_rollback").await.expect(200);
        let log = app.events(&id).await;
        let (ok, printed) = readme_verifier(&log);
        assert!(ok, "the README's verifier accepts the real log: {printed}");
        let head = audit(&app, &id).await["head_hash"].as_str().unwrap().to_owned();
        assert!(printed.ends_with(&head), "it finds the server's head hash: {printed}");

        let mut changed = log.clone();
        changed[6]["payload"]["title"] = json!("something else");
        let (ok, printed) = readme_verifier(&changed);
        assert!(!ok);
        assert_eq!(printed, format!("broken at seq {}", log[6]["seq"]));
        let mut gap = log.clone();
        gap.remove(3);
        assert_eq!(readme_verifier(&gap).1, "broken at seq 4: missing");
    }

    async fn a_payload_changed_in_the_database_is_found_at_its_seq(app) {
        let (id, _) = run_with_a_log(&app).await;
        app.sql(&format!(
            "UPDATE run_events SET payload = REPLACE(payload, '\"to\":20}}', '\"to\":5}}') \
             WHERE run_id = '{id}' AND seq = 2"
        ));
        let after = app.events(&id).await;
        assert_eq!(after[1]["payload"]["changes"]["expected_downtime_minutes"]["to"], 5, "the change landed");
        assert_broken_at(&audit(&app, &id).await, 2);
    }

    async fn a_deleted_event_is_found_at_its_seq_even_the_last(app) {
        let (id, events) = run_with_a_log(&app).await;
        app.sql(&format!("DELETE FROM run_events WHERE run_id = '{id}' AND seq = 3"));
        assert_broken_at(&audit(&app, &id).await, 3);

        let (other, events_of_other) = run_with_a_log(&app).await;
        let last = events_of_other.len();
        app.sql(&format!("DELETE FROM run_events WHERE run_id = '{other}' AND seq = {last}"));
        assert_broken_at(&audit(&app, &other).await, last as i64);
        assert!(events.len() > 3);
    }

    async fn swapped_events_are_found_at_the_first_of_them(app) {
        let (id, _) = run_with_a_log(&app).await;
        app.sql(&format!(
            "UPDATE run_events SET seq = -1 WHERE run_id = '{id}' AND seq = 2;
             UPDATE run_events SET seq = 2 WHERE run_id = '{id}' AND seq = 4;
             UPDATE run_events SET seq = 4 WHERE run_id = '{id}' AND seq = -1;"
        ));
        assert_broken_at(&audit(&app, &id).await, 2);
    }

    async fn a_malformed_or_unknown_event_is_reported_not_a_500(app) {
        let (id, _) = run_with_a_log(&app).await;
        app.sql(&format!("UPDATE run_events SET event_type = 'run_exploded' WHERE run_id = '{id}' AND seq = 3"));
        let verdict = audit(&app, &id).await;
        assert_broken_at(&verdict, 3);
        assert!(verdict["problem"].as_str().unwrap().contains("run_exploded"), "{verdict}");

        let (other, _) = run_with_a_log(&app).await;
        app.sql(&format!("UPDATE run_events SET payload = 'not json' WHERE run_id = '{other}' AND seq = 2"));
        assert_broken_at(&audit(&app, &other).await, 2);
        let (third, _) = run_with_a_log(&app).await;
        app.sql(&format!(
            "UPDATE run_events SET payload = REPLACE(payload, '{{', '{{\"smuggled\":1,') WHERE run_id = '{third}' AND seq = 1"
        ));
        assert_broken_at(&audit(&app, &third).await, 1);
    }

    async fn admin_actions_land_in_the_chained_audit_log(app) {
        let user = app
            .post(&app.admin, "/api/v1/users", json!({"username": "dora", "password": "a-long-password-1", "role": "viewer"}))
            .await
            .expect(201)
            .json;
        let user_id = user["id"].as_str().unwrap();
        let path = format!("/api/v1/users/{user_id}");
        app.patch(&app.admin, &path, json!({"role": "engineer"}), None).await.expect(200);
        app.patch(&app.admin, &path, json!({"active": false}), None).await.expect(200);
        app.patch(&app.admin, &path, json!({"active": true}), None).await.expect(200);
        let created = app
            .post(&app.admin, "/api/v1/tokens", json!({"name": "ci", "scopes": ["runs:read"], "expires_in_days": 7}))
            .await
            .expect(201)
            .json;
        let secret = created["secret"].as_str().unwrap().to_owned();
        let token_id = created["token"]["id"].as_str().unwrap().to_owned();
        app.send(reqwest::Method::DELETE, &format!("/api/v1/tokens/{token_id}"), Some(&app.admin), None, &[])
            .await
            .expect(200);
        let draft = json!({"name": "Hotfix", "parts": [{"title": "P", "sections": [{"title": "S", "items": [{"title": "I", "gate": "deploy"}]}]}]});
        let template = app.post(&app.admin, "/api/v1/templates", draft.clone()).await.expect(201).json;
        let template_id = template["id"].as_str().unwrap();
        app.post(&app.admin, &format!("/api/v1/templates/{template_id}/versions"), draft)
            .await
            .expect(201);
        let dora = app.login("dora", "a-long-password-1").await;
        app.post(&dora, "/api/v1/me/password", json!({"current_password": "a-long-password-1", "new_password": "another-long-password"}))
            .await
            .expect(204);
        let dora = app.login("dora", "another-long-password").await;

        let answer = app.get(&app.admin, "/api/v1/audit-log?limit=1000").await.expect(200);
        assert!(!answer.text.contains(&secret), "a token's secret is never in the audit log");
        let entries = answer.json["items"].as_array().unwrap().clone();
        let of = |action: &str| -> Vec<&Value> { entries.iter().filter(|e| e["action"] == action).collect() };
        let role = of("user_role_changed");
        assert_eq!(role.len(), 1);
        assert_eq!(role[0]["subject"], "dora");
        assert_eq!(role[0]["actor"], "admin");
        assert_eq!(role[0]["address"], "127.0.0.1");
        assert_eq!(role[0]["details"]["role"], json!({"from": "viewer", "to": "engineer"}));
        assert!(of("user_created").iter().any(|e| e["subject"] == "dora" && e["details"]["role"] == "viewer"));
        assert_eq!(of("user_deactivated").len(), 1);
        assert_eq!(of("user_reactivated").len(), 1);
        assert_eq!(of("token_created")[0]["details"]["name"], "ci");
        assert_eq!(of("token_revoked")[0]["subject"], token_id);
        assert_eq!(of("template_imported")[0]["subject"], template_id);
        assert_eq!(of("template_version_created")[0]["details"]["version"], json!({"from": 1, "to": 2}));
        let password = of("password_changed");
        assert_eq!((password[0]["subject"].as_str(), password[0]["actor"].as_str()), (Some("dora"), Some("dora")));

        // The audit log is one chain, and the README's verifier agrees with it.
        let (ok, printed) = readme_verifier(&entries);
        assert!(ok, "{printed}");
        let store = shipshape_store::Store::connect(&app.db_url, 1).unwrap();
        let verdict = store.verify_audit_log().unwrap();
        assert!(verdict.verified, "{verdict:?}");
        assert_eq!(verdict.head_hash.as_deref(), entries.last().unwrap()["hash"].as_str());
        // ...and a change to an entry breaks it there.
        let seq = role[0]["seq"].as_i64().unwrap();
        app.sql(&format!("UPDATE audit_log SET details = REPLACE(details, 'engineer', 'admin') WHERE seq = {seq}"));
        let verdict = store.verify_audit_log().unwrap();
        assert_eq!(verdict.first_bad_seq, Some(seq), "{verdict:?}");

        // Paging follows `after`, like events; only admins read it.
        let page = app.get(&app.admin, "/api/v1/audit-log?limit=2").await.expect(200).json;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        assert_eq!(page["next_after"], page["items"][1]["seq"]);
        app.get(&dora, "/api/v1/audit-log").await.expect_problem(403, "forbidden");
    }

    async fn an_upgraded_database_chains_its_earlier_events_as_a_live_write_would(app) {
        let (id, live) = run_with_a_log(&app).await;
        // Back to the schema before the chain: the columns (and their hashes) are gone, as in
        // a database written by the earlier version.
        let backend = if app.db_url.starts_with("sqlite") { "sqlite" } else { "postgres" };
        let down = std::fs::read_to_string(format!(
            "{}/../migrations/{backend}/2026-12-05-000001_chained_logs/down.sql",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        app.sql(&down);
        app.sql("DELETE FROM __diesel_schema_migrations WHERE version = '20261205000001'");

        // The upgrade: migrations, then the one-time chaining (twice: it is idempotent).
        let store = shipshape_store::Store::connect(&app.db_url, 1).unwrap();
        store.migrate().unwrap();
        store.migrate().unwrap();
        let verdict = store.verify_run(&id).unwrap();
        assert!(verdict.verified, "{verdict:?}");
        // The run is preparing: the server may have checked a probe item since, appending
        // to the log. The events written before are the ones to compare.
        let upgraded = store.events(&id, 0, 1000).unwrap().items;
        let hashes = |events: Vec<Value>| events.iter().map(|e| e["hash"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
        assert!(upgraded.len() >= live.len());
        assert_eq!(
            hashes(upgraded.iter().take(live.len()).map(|e| serde_json::to_value(e).unwrap()).collect()),
            hashes(live),
            "chaining on upgrade gives the hashes the live writes gave"
        );
    }
}
