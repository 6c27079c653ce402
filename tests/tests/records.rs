//! After the deploy, over real HTTP on SQLite and PostgreSQL: the issues log and the issues
//! that stop a run completing, the retrospective that completes the checklist's
//! retrospective items, action items in their assignee's pending list and mail, proposals
//! that become the template's next version, and the run report as JSON and Markdown.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use shipshape_api::config::Secret;
use shipshape_tests::smtp::SmtpSink;
use shipshape_tests::{Backend, EDULIBRA, TestApp, item_by_title, items};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A started EduLibra run whose team has `members`.
async fn started(app: &TestApp, rm: &str, members: &[&str]) -> String {
    let run = id(&app.create_run(rm, "EduLibra", "production").await);
    for m in members {
        app.add_member(&run, m).await;
    }
    app.transition(rm, &run, "start").await.expect(200);
    run
}

/// Takes a started run to verifying with every complete-gate item done and a "go" at the
/// verification point: only issues can stop it completing.
async fn ready_to_complete(app: &TestApp, rm: &str, run: &str) {
    app.finish_gate(rm, run, "deploy").await;
    app.decide(rm, run, "go_no_go", "go").await.expect(201);
    app.transition(rm, run, "advance").await.expect(200);
    app.finish_gate(rm, run, "verify").await;
    app.transition(rm, run, "advance").await.expect(200);
    app.finish_gate(rm, run, "complete").await;
    app.decide(rm, run, "post_deployment_verification", "go")
        .await
        .expect(201);
}

async fn completed(app: &TestApp, rm: &str, members: &[&str]) -> String {
    let run = started(app, rm, members).await;
    ready_to_complete(app, rm, &run).await;
    app.transition(rm, &run, "complete").await.expect(200);
    run
}

async fn rolled_back(app: &TestApp, rm: &str) -> String {
    let run = started(app, rm, &[]).await;
    app.finish_gate(rm, &run, "deploy").await;
    app.decide(rm, &run, "go_no_go", "go").await.expect(201);
    app.transition(rm, &run, "advance").await.expect(200);
    app.decide(rm, &run, "deployment_checkpoint", "rollback")
        .await
        .expect(201);
    app.transition(rm, &run, "finish_rollback")
        .await
        .expect(200);
    run
}

async fn put(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
    if_match: Option<&str>,
) -> shipshape_tests::Answer {
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("If-Match", v)).into_iter().collect();
    app.send(Method::PUT, path, Some(token), Some(&body), &headers)
        .await
}

fn blockers_of(problem: &Value, kind: &str) -> Vec<Value> {
    problem["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["kind"] == kind)
        .cloned()
        .collect()
}

async fn an_open_sev1_or_sev2_issue_blocks_completion_until_resolved_or_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rm = app.user("rita", "release_manager").await;
    let eng = app.user("eli", "engineer").await;
    let outsider = app.user("oscar", "engineer").await;
    let run = started(&app, &rm, &["eli"]).await;
    ready_to_complete(&app, &rm, &run).await;
    let snapshot = app.run(&rm, &run).await;
    let issues_item = item_by_title(&snapshot, "Any issues or anomalies");
    assert_eq!(
        issues_item["record"], "issues",
        "the checklist's issues item links to the log"
    );
    let issues = format!("/api/v1/runs/{run}/issues");

    // A minor issue is logged and does not stop the run.
    let minor = app
        .post(
            &eng,
            &issues,
            json!({"title": "Typo on the banner", "severity": "sev4"}),
        )
        .await
        .expect(201);
    assert_eq!(minor.json["number"], 1);
    assert_eq!(minor.json["blocks_completion"], false);

    // Bad input is refused, clearly.
    app.post(
        &outsider,
        &issues,
        json!({"title": "Not my run", "severity": "sev3"}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.post(
        &eng,
        &issues,
        json!({"title": "x", "severity": "sev2", "owner": "mallory"}),
    )
    .await
    .expect_problem(422, "invalid_input");
    app.post(&eng, &issues, json!({"title": "x", "severity": "sev2", "item_ids": ["00000000-0000-0000-0000-000000000000"]}))
        .await
        .expect_problem(422, "invalid_input");
    app.post(&eng, &issues, json!({"title": "x", "severity": "sev9"}))
        .await
        .expect(422);

    // A major one stops it, named in the gate's blockers and in the run's transitions.
    let major = app
        .post(
            &eng,
            &issues,
            json!({"title": "Search returns stale results", "severity": "sev2", "owner": "eli",
                   "item_ids": [issues_item["id"]], "notes": "Cache not invalidated after reindex."}),
        )
        .await
        .expect(201);
    assert_eq!(major.etag.as_deref(), Some("\"1\""));
    assert_eq!(major.json["number"], 2);
    assert_eq!(major.json["blocks_completion"], true);
    let major_id = id(&major.json);
    let refused = app
        .transition(&rm, &run, "complete")
        .await
        .expect_problem(409, "gate_blocked");
    let issue_blockers = blockers_of(&refused.json, "issue");
    assert_eq!(issue_blockers.len(), 1);
    assert_eq!(issue_blockers[0]["number"], 2);
    assert_eq!(issue_blockers[0]["severity"], "sev2");
    assert_eq!(
        refused.json["blockers"].as_array().unwrap().len(),
        1,
        "only the issue blocks"
    );
    let shown = app.run(&rm, &run).await;
    let complete = shown["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "complete")
        .unwrap()
        .clone();
    assert_eq!(complete["allowed"], false);
    assert_eq!(complete["blockers"][0]["kind"], "issue");

    // Accepting it is a release manager's call, with a reason, on the version seen.
    let path = format!("{issues}/{major_id}");
    app.patch(
        &eng,
        &path,
        json!({"accepted_reason": "fix ships in 4.2.1"}),
        None,
    )
    .await
    .expect_problem(403, "forbidden");
    app.patch(
        &rm,
        &path,
        json!({"accepted_reason": "fix ships in 4.2.1"}),
        Some("\"7\""),
    )
    .await
    .expect_problem(412, "precondition_failed");
    let accepted = app
        .patch(
            &rm,
            &path,
            json!({"accepted_reason": "fix ships in 4.2.1"}),
            Some("\"1\""),
        )
        .await
        .expect(200);
    assert_eq!(accepted.json["acceptance"]["by"], "rita");
    assert_eq!(accepted.json["blocks_completion"], false);
    assert_eq!(accepted.json["version"], 2);

    // A critical one stops it again until it is resolved.
    let critical = app
        .post(
            &eng,
            &issues,
            json!({"title": "Checkout fails for 2% of users", "severity": "sev1"}),
        )
        .await
        .expect(201);
    let refused = app
        .transition(&rm, &run, "complete")
        .await
        .expect_problem(409, "gate_blocked");
    assert_eq!(blockers_of(&refused.json, "issue")[0]["number"], 3);
    let resolved = app
        .patch(
            &eng,
            &format!("{issues}/{}", id(&critical.json)),
            json!({"status": "resolved"}),
            None,
        )
        .await
        .expect(200);
    assert!(resolved.json["resolved_at"].is_string());
    let done = app.transition(&rm, &run, "complete").await.expect(200);
    assert_eq!(done.json["status"], "completed");

    let list = app.get(&rm, &issues).await.expect(200).json;
    let numbers: Vec<i64> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    let log = app.events(&run).await;
    assert_eq!(
        log.iter().filter(|e| e["type"] == "issue_logged").count(),
        3
    );
    let updates: Vec<&Value> = log
        .iter()
        .filter(|e| e["type"] == "issue_updated")
        .collect();
    assert_eq!(updates.len(), 2);
    assert_eq!(
        updates[0]["payload"]["changes"]["accepted_reason"]["to"],
        "fix ships in 4.2.1"
    );
    assert_eq!(
        updates[1]["payload"]["changes"]["status"],
        json!({"from": "open", "to": "resolved"})
    );
}

async fn a_published_retrospective_completes_its_items_and_action_items_reach_their_assignee(
    backend: Backend,
) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(backend, |c| {
        c.smtp_url = Some(Secret::new(&sink.url));
        c.mail_from = "Shipshape <ship@example.com>".into();
        c.mail_batch_secs = 1;
    })
    .await;
    let rm = app.user("rita", "release_manager").await;
    let bob = app.user("bob", "engineer").await;
    app.patch(
        &bob,
        "/api/v1/me/notifications",
        json!({"email": "bob@example.com"}),
        None,
    )
    .await
    .expect(200);
    let gone = app.user("gone", "engineer").await;
    let gone_id = app.get(&gone, "/api/v1/me").await.expect(200).json["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(
        &app.admin,
        &format!("/api/v1/users/{gone_id}"),
        json!({"active": false}),
        None,
    )
    .await
    .expect(200);

    // Nothing of the kind while the run is under way.
    let live = started(&app, &rm, &[]).await;
    let retro_of = |run: &str| format!("/api/v1/runs/{run}/retrospective");
    put(
        &app,
        &rm,
        &retro_of(&live),
        json!({"lessons": "too early"}),
        None,
    )
    .await
    .expect_problem(409, "record_locked");
    let soon = (chrono::Utc::now().date_naive() + chrono::Days::new(7)).to_string();
    app.post(
        &rm,
        &format!("/api/v1/runs/{live}/action-items"),
        json!({"title": "x", "assignee": "bob", "due_on": soon}),
    )
    .await
    .expect_problem(409, "record_locked");
    app.transition(&rm, &live, "abort").await.expect(200);

    let run = completed(&app, &rm, &["bob"]).await;
    let retro = app.get(&rm, &retro_of(&run)).await.expect(200);
    assert_eq!(retro.json["version"], 0);
    assert_eq!(retro.json["status"], "draft");

    // Publishing needs the lessons; a draft is written on the version seen.
    put(
        &app,
        &bob,
        &retro_of(&run),
        json!({"went_well": "Calm", "status": "published"}),
        None,
    )
    .await
    .expect_problem(422, "invalid_input");
    let draft = put(
        &app,
        &bob,
        &retro_of(&run),
        json!({"went_well": "Calm rollout", "went_badly": "Slow approvals"}),
        Some("\"0\""),
    )
    .await
    .expect(201);
    assert_eq!(draft.etag.as_deref(), Some("\"1\""));
    put(
        &app,
        &bob,
        &retro_of(&run),
        json!({"went_well": "lost update"}),
        Some("\"0\""),
    )
    .await
    .expect_problem(412, "precondition_failed");

    // Its checklist items are not ticked by hand.
    let snapshot = app.run(&rm, &run).await;
    let retro_items: Vec<Value> = items(&snapshot)
        .into_iter()
        .filter(|i| i["record"] == "retrospective")
        .collect();
    assert_eq!(
        retro_items.len(),
        4,
        "three retrospective items and the post-contingency review"
    );
    app.set_item(&bob, &run, retro_items[0]["id"].as_str().unwrap(), "done")
        .await
        .expect_problem(409, "retrospective_required");

    // Action items go to active users, due today or later.
    let actions = format!("/api/v1/runs/{run}/action-items");
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    for (body, why) in [
        (
            json!({"title": "Automate smoke tests", "assignee": "ghost", "due_on": soon}),
            "unknown user",
        ),
        (
            json!({"title": "Automate smoke tests", "assignee": "gone", "due_on": soon}),
            "inactive user",
        ),
        (
            json!({"title": "Automate smoke tests", "assignee": "bob", "due_on": yesterday}),
            "past date",
        ),
    ] {
        let refused = app.post(&rm, &actions, body).await;
        assert_eq!(refused.status, 422, "{why}: {}", refused.json);
    }
    let action = app
        .post(
            &rm,
            &actions,
            json!({"title": "Automate smoke tests", "assignee": "bob", "due_on": soon}),
        )
        .await
        .expect(201)
        .json;
    let late = app
        .post(
            &rm,
            &actions,
            json!({"title": "Write the cache runbook", "assignee": "bob", "due_on": soon}),
        )
        .await
        .expect(201)
        .json;
    let pending = app.get(&bob, "/api/v1/me/pending").await.expect(200).json;
    let mine: Vec<&str> = pending["action_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(mine, ["Automate smoke tests", "Write the cache runbook"]);
    assert_eq!(pending["action_items"][0]["action"]["overdue"], false);
    let told = wait_for(&sink, "bob@example.com", "Automate smoke tests").await;
    assert!(told, "the assignee is mailed of the action item");

    // Publishing completes the items, with the report as their evidence.
    let published = put(
        &app,
        &bob,
        &retro_of(&run),
        json!({
            "went_well": "Calm rollout", "went_badly": "Slow approvals",
            "lessons": "Pre-approve the plan a day ahead.", "status": "published"
        }),
        Some("\"1\""),
    )
    .await
    .expect(200);
    assert_eq!(published.json["status"], "published");
    assert!(published.json["published_at"].is_string());
    let snapshot = app.run(&rm, &run).await;
    for item in items(&snapshot)
        .into_iter()
        .filter(|i| i["record"] == "retrospective" && i["applicable"] == true)
    {
        assert_eq!(item["status"], "done", "{}", item["title"]);
        assert_eq!(item["evidence"][0]["label"], "Retrospective");
        assert!(
            item["evidence"][0]["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/runs/{run}/report"))
        );
    }
    let review = item_by_title(&snapshot, "Post-contingency review");
    assert_eq!(
        review["status"], "pending",
        "not applicable to a run that never rolled back"
    );
    let log = app.events(&run).await;
    let saved = log
        .iter()
        .rev()
        .find(|e| e["type"] == "retrospective_saved")
        .unwrap();
    assert_eq!(saved["payload"]["published"], true);
    assert_eq!(
        saved["payload"]["completed_item_ids"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    put(
        &app,
        &bob,
        &retro_of(&run),
        json!({"lessons": "x", "status": "draft"}),
        None,
    )
    .await
    .expect_problem(422, "invalid_input");

    app.finish_gate(&rm, &run, "close").await;
    app.transition(&rm, &run, "close").await.expect(200);

    // The run is closed; its retrospective is history, its follow-ups go on.
    put(
        &app,
        &bob,
        &retro_of(&run),
        json!({"lessons": "later"}),
        None,
    )
    .await
    .expect_problem(409, "record_locked");
    app.sql(&format!(
        "UPDATE action_items SET due_on = '2000-01-01' WHERE id = '{}'",
        id(&late)
    ));
    let pending = app.get(&bob, "/api/v1/me/pending").await.expect(200).json;
    let overdue = pending["action_items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["id"] == late["id"])
        .unwrap();
    assert_eq!(overdue["action"]["overdue"], true);
    let done = app
        .patch(
            &bob,
            &format!("{actions}/{}", id(&action)),
            json!({"status": "done"}),
            Some("\"1\""),
        )
        .await
        .expect(200);
    assert_eq!(done.json["status"], "done");
    assert!(
        wait_for(&sink, "bob@example.com", "is overdue").await,
        "an overdue action is told once more"
    );
    let pending = app.get(&bob, "/api/v1/me/pending").await.expect(200).json;
    assert_eq!(
        pending["action_items"].as_array().unwrap().len(),
        1,
        "a done action waits on nobody"
    );
}

async fn wait_for(sink: &SmtpSink, to: &str, text: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if sink
            .mails()
            .iter()
            .any(|m| m.to == [to] && m.body.contains(text))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn a_rolled_back_runs_retrospective_names_the_root_cause_and_completes_the_review(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let rm = app.user("rita", "release_manager").await;
    let run = rolled_back(&app, &rm).await;
    let path = format!("/api/v1/runs/{run}/retrospective");
    let refused = put(
        &app,
        &rm,
        &path,
        json!({"lessons": "Rehearse", "status": "published"}),
        None,
    )
    .await
    .expect_problem(422, "invalid_input");
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains("root_cause")
    );
    put(&app, &rm, &path, json!({"lessons": "Rehearse", "root_cause": "An index rebuild locked the table.", "status": "published"}), None)
        .await
        .expect(201);
    let snapshot = app.run(&rm, &run).await;
    assert_eq!(
        item_by_title(&snapshot, "Post-contingency review")["status"],
        "done"
    );
    assert_eq!(
        item_by_title(&snapshot, "Contingency plans are updated")["status"],
        "pending",
        "updating the plans is its own work"
    );

    // The report tells the rollback.
    let report = app
        .get(&rm, &format!("/api/v1/runs/{run}/report"))
        .await
        .expect(200)
        .json;
    let stages: Vec<&str> = report["schedule"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "planned",
            "preparing",
            "deploying",
            "rolling_back",
            "rolled_back"
        ]
    );
    assert_eq!(report["run"]["status"], "rolled_back");
    assert!(
        report["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["outcome"] == "rollback")
    );
    assert_eq!(
        report["retrospective"]["root_cause"],
        "An index rebuild locked the table."
    );
    let md = app
        .send(
            Method::GET,
            &format!("/api/v1/runs/{run}/report"),
            Some(&rm),
            None,
            &[("Accept", "text/markdown")],
        )
        .await
        .expect(200);
    assert!(md.content_type.starts_with("text/markdown"));
    assert!(md.text.contains("- Outcome: **rolled_back**"));
    assert!(md.text.contains("### deployment_checkpoint: rollback"));
    assert!(
        md.text
            .contains("### Root cause\n\n> An index rebuild locked the table.")
    );
    assert!(md.text.contains("| rolling_back |"));
}

async fn the_report_of_a_completed_run_reads_as_release_notes_and_audit_record(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rm = app.user("rita", "release_manager").await;
    app.user("eli", "engineer").await;
    let run = started(&app, &rm, &["eli"]).await;
    ready_to_complete(&app, &rm, &run).await;
    app.post(
        &rm,
        &format!("/api/v1/runs/{run}/issues"),
        json!({"title": "Slow first page load", "severity": "sev3"}),
    )
    .await
    .expect(201);
    app.transition(&rm, &run, "complete").await.expect(200);
    // A waiver, with its reason.
    let snapshot = app.run(&rm, &run).await;
    let waived = item_by_title(&snapshot, "Updated documentation and release notes");
    app.patch(
        &rm,
        &format!("/api/v1/runs/{run}/items/{}", id(&waived)),
        json!({"status": "skipped", "reason": "covered by the staging rehearsal"}),
        None,
    )
    .await
    .expect(200);
    app.publish_retrospective(&rm, &run).await;

    let report = app
        .get(&rm, &format!("/api/v1/runs/{run}/report"))
        .await
        .expect(200)
        .json;
    assert_eq!(report["run"]["status"], "completed");
    assert_eq!(report["run"]["product"], "EduLibra");
    let stages: Vec<&str> = report["schedule"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "planned",
            "preparing",
            "deploying",
            "verifying",
            "completed"
        ]
    );
    assert_eq!(report["schedule"]["window_start"], "2026-12-01T22:00:00Z");
    assert_eq!(report["schedule"]["expected_downtime_minutes"], 15);
    assert!(report["schedule"]["deployment_started_at"].is_string());
    assert_eq!(
        report["schedule"]["within_window"], false,
        "it ran outside its planned window"
    );
    let points: Vec<&str> = report["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["point_key"].as_str().unwrap())
        .collect();
    assert_eq!(points, ["go_no_go", "post_deployment_verification"]);
    assert!(
        !report["decisions"][0]["criteria"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1);
    assert_eq!(report["skipped"][0]["waiver"], true);
    assert_eq!(
        report["skipped"][0]["reason"],
        "covered by the staging rehearsal"
    );
    assert_eq!(report["signoffs"].as_array().unwrap().len(), 3);
    assert_eq!(report["issues"][0]["title"], "Slow first page load");
    assert_eq!(report["retrospective"]["status"], "published");
    let evidence = report["evidence"].as_array().unwrap();
    assert!(
        evidence
            .iter()
            .filter(|e| e["label"].as_str().unwrap().starts_with("Check passed"))
            .count()
            >= 3,
        "probe results are evidence"
    );
    assert!(evidence.iter().any(|e| e["label"] == "Retrospective"));
    let contacts: Vec<&str> = report["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(contacts, ["eli"]);
    // The audit chain's head is the log's last event.
    let log = app.events(&run).await;
    assert_eq!(report["chain"]["events"], json!(log.len()));
    assert_eq!(report["chain"]["head_hash"], log.last().unwrap()["hash"]);
    assert_eq!(report["chain"]["verified"], true);

    let md = app
        .send(
            Method::GET,
            &format!("/api/v1/runs/{run}/report"),
            Some(&rm),
            None,
            &[("Accept", "text/markdown")],
        )
        .await
        .expect(200);
    let head = log.last().unwrap()["hash"].as_str().unwrap();
    for expected in [
        "# Run report: EduLibra 4.2.0 to production",
        "- Outcome: **completed**",
        "### go_no_go: go",
        "waived by rita — covered by the staging rehearsal",
        "[sev3, open] Slow first page load",
        "### Lessons learned",
        "- eli — engineer on duty (engineer)",
        &format!("- Head hash: `{head}`"),
        "- Chain verified: yes",
    ] {
        assert!(
            md.text.contains(expected),
            "the Markdown report says `{expected}`:\n{}",
            md.text
        );
    }
}

async fn a_lesson_becomes_the_templates_next_version_through_a_proposal(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rm = app.user("rita", "release_manager").await;
    let eng = app.user("eli", "engineer").await;
    let run = completed(&app, &rm, &["eli"]).await;
    let template = app
        .send(
            Method::GET,
            &format!("/api/v1/templates/{EDULIBRA}"),
            Some(&rm),
            None,
            &[("Accept", "text/markdown")],
        )
        .await
        .expect(200);
    let base: i64 = template
        .etag
        .as_deref()
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap();
    let reworded = template.text.replace(
        "- [ ] Final testing",
        "- [ ] Final testing, including a restore drill,",
    );
    assert_ne!(reworded, template.text);
    let added = template.text.replace(
        "### 2. Monitoring and Support\n",
        "### 2. Monitoring and Support\n- [ ] Cache warm-up is verified after reindexing. <!-- shipshape gate=complete -->\n",
    );
    assert_ne!(added, template.text);
    let proposals = format!("/api/v1/runs/{run}/template-proposals");

    app.post(
        &eng,
        &proposals,
        json!({"base_version": base, "summary": "x", "markdown": reworded}),
    )
    .await
    .expect_problem(403, "forbidden");
    app.post(
        &rm,
        &proposals,
        json!({"base_version": base, "summary": "Nothing", "markdown": template.text}),
    )
    .await
    .expect_problem(422, "invalid_input");
    app.post(
        &rm,
        &proposals,
        json!({"base_version": base, "summary": "Broken", "markdown": "not a template"}),
    )
    .await
    .expect(422);
    let first = app
        .post(&rm, &proposals, json!({"base_version": base, "summary": "Add a cache warm-up check", "markdown": added}))
        .await
        .expect(201)
        .json;
    assert_eq!(first["status"], "open");
    let diff = first["diff"].as_array().unwrap();
    let changed: Vec<(&str, &str)> = diff
        .iter()
        .filter(|l| l["op"] != "same")
        .map(|l| (l["op"].as_str().unwrap(), l["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changed,
        [(
            "add",
            "- [ ] Cache warm-up is verified after reindexing. <!-- shipshape gate=complete -->"
        )]
    );
    let second = app
        .post(&rm, &proposals, json!({"base_version": base, "summary": "Restore drill in final testing", "markdown": reworded}))
        .await
        .expect(201)
        .json;
    assert_eq!(
        second["diff"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["op"] != "same")
            .count(),
        2,
        "a reworded line is removed and added"
    );

    // Reviewing is an administrator's; declining says why.
    let review = |p: &Value| format!("/api/v1/template-proposals/{}", id(p));
    app.patch(&rm, &review(&first), json!({"status": "accepted"}), None)
        .await
        .expect_problem(403, "forbidden");
    let open = app
        .get(&rm, "/api/v1/template-proposals?status=open")
        .await
        .expect(200)
        .json;
    assert_eq!(open["items"].as_array().unwrap().len(), 2);
    let accepted = app
        .patch(
            &app.admin,
            &review(&first),
            json!({"status": "accepted"}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["accepted_version"], base + 1);

    // The template moved on: the other proposal, written on the old version, cannot be
    // accepted; nor can a new one on it be made.
    let stale = app
        .patch(
            &app.admin,
            &review(&second),
            json!({"status": "accepted"}),
            None,
        )
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(
        stale.etag.as_deref(),
        Some(format!("\"{}\"", base + 1).as_str())
    );
    let stale = app
        .post(
            &rm,
            &proposals,
            json!({"base_version": base, "summary": "Again", "markdown": reworded}),
        )
        .await
        .expect_problem(412, "precondition_failed");
    assert_eq!(
        stale.etag.as_deref(),
        Some(format!("\"{}\"", base + 1).as_str())
    );
    app.patch(
        &app.admin,
        &review(&second),
        json!({"status": "declined"}),
        None,
    )
    .await
    .expect_problem(422, "invalid_input");
    let declined = app
        .patch(
            &app.admin,
            &review(&second),
            json!({"status": "declined", "reason": "Rebase it on the new version"}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(declined["review_reason"], "Rebase it on the new version");
    app.patch(
        &app.admin,
        &review(&second),
        json!({"status": "accepted"}),
        None,
    )
    .await
    .expect_problem(409, "proposal_reviewed");

    // The new version carries the lesson and says where it came from; runs already made keep
    // theirs.
    let latest = app
        .get(&rm, &format!("/api/v1/templates/{EDULIBRA}"))
        .await
        .expect(200)
        .json;
    assert_eq!(latest["version"], base + 1);
    assert_eq!(latest["source"]["run_id"], json!(run));
    assert_eq!(latest["source"]["proposal_id"], first["id"]);
    let titles = latest["content"].to_string();
    assert!(titles.contains("Cache warm-up is verified after reindexing."));
    assert_eq!(app.run(&rm, &run).await["template_version"], base);
    let next = app.create_run(&rm, "EduLibra", "staging").await;
    assert_eq!(next["template_version"], base + 1);

    let log = app.events(&run).await;
    assert_eq!(
        log.iter()
            .filter(|e| e["type"] == "template_proposed")
            .count(),
        2
    );
    let reviews: Vec<&str> = log
        .iter()
        .filter(|e| e["type"] == "proposal_reviewed")
        .map(|e| e["payload"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(reviews, ["accepted", "declined"]);
    let audit = app
        .get(&app.admin, "/api/v1/audit-log?limit=1000")
        .await
        .expect(200)
        .json;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"template_version_created"));
    assert!(actions.contains(&"template_proposal_declined"));
}

shipshape_tests::each_backend!(
    an_open_sev1_or_sev2_issue_blocks_completion_until_resolved_or_accepted,
    a_published_retrospective_completes_its_items_and_action_items_reach_their_assignee,
    a_rolled_back_runs_retrospective_names_the_root_cause_and_completes_the_review,
    the_report_of_a_completed_run_reads_as_release_notes_and_audit_record,
    a_lesson_becomes_the_templates_next_version_through_a_proposal,
);
