//! The API over real HTTP, every test on SQLite and on PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use reqwest::Method;
use serde_json::{Value, json};
use shipshape_tests::{EDULIBRA, items, on_both_backends};

fn blockers_of(answer: &Value) -> Vec<Value> {
    answer["blockers"].as_array().cloned().unwrap_or_default()
}

fn item_blocker_refs(answer: &Value) -> Vec<String> {
    let mut refs: Vec<String> = blockers_of(answer)
        .iter()
        .filter(|b| b["kind"] == "item")
        .map(|b| b["reference"].as_str().unwrap().to_owned())
        .collect();
    refs.sort();
    refs
}

fn decision_blocker_keys(answer: &Value) -> Vec<String> {
    blockers_of(answer)
        .iter()
        .filter(|b| b["kind"] == "decision")
        .map(|b| b["point_key"].as_str().unwrap().to_owned())
        .collect()
}

fn refs_with_gate(run: &Value, gate: &str, applicable_only: bool) -> Vec<String> {
    let mut refs: Vec<String> = items(run)
        .iter()
        .filter(|i| i["gate"] == gate && (!applicable_only || i["applicable"] == true))
        .map(|i| i["reference"].as_str().unwrap().to_owned())
        .collect();
    refs.sort();
    refs
}

fn item_id_by_title(run: &Value, starts_with: &str) -> String {
    items(run)
        .iter()
        .find(|i| i["title"].as_str().unwrap().starts_with(starts_with))
        .unwrap_or_else(|| panic!("an item starting with {starts_with:?}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Reads a streamed response until `needle` has arrived (at most 5 s).
async fn read_until(stream: &mut reqwest::Response, seen: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("`{needle}` arrives in time; got {seen}"));
        let Some(bytes) = chunk.unwrap() else {
            panic!("the stream ended before `{needle}`; got {seen}");
        };
        seen.push_str(&String::from_utf8_lossy(&bytes));
    }
}

on_both_backends! {
    async fn a_new_release_version_invalidates_the_sign_offs_given_for_the_earlier_one(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        app.transition(&app.admin, id, "start").await.expect(200);
        let approver = app.user("ada", "approver").await;
        // One approval completes the migration scripts' item; the plan needs two, has one.
        let migration = shipshape_tests::item_by_title(&run, "Data migration scripts");
        let plan = shipshape_tests::item_by_title(&run, "Detailed deployment plan");
        for i in [&migration, &plan] {
            app.sign(&approver, id, i["id"].as_str().unwrap(), "approve").await.expect(201);
        }
        let find = |run: &Value, i: &Value| {
            items(run).into_iter().find(|x| x["id"] == i["id"]).unwrap()
        };
        let path = format!("/api/v1/runs/{id}");
        let before = app.run(&app.admin, id).await;
        assert_eq!(find(&before, &migration)["status"], "done");

        // The schedule alone leaves the sign-offs as they are.
        let scheduled = app
            .patch(&app.admin, &path, json!({"expected_downtime_minutes": 10}), None)
            .await
            .expect(200)
            .json;
        assert_eq!(find(&scheduled, &migration)["status"], "done");
        assert_eq!(find(&scheduled, &plan)["approval"]["signoffs"].as_array().unwrap().len(), 1);

        // A new version: both sign-offs invalidated, the approved item back at work.
        let seen = app.events(id).await.len();
        let moved = app
            .patch(&app.admin, &path, json!({"release_version": "2.0.1"}), None)
            .await
            .expect(200)
            .json;
        assert_eq!(moved["release_version"], "2.0.1");
        let m = find(&moved, &migration);
        assert_eq!(m["status"], "in_progress");
        assert_eq!(m["approval"]["state"], "pending");
        assert_eq!(m["approval"]["signoffs"], json!([]));
        assert_eq!(find(&moved, &plan)["status"], "pending");
        assert_eq!(find(&moved, &plan)["approval"]["signoffs"], json!([]));
        let log = app.events(id).await;
        // What the change wrote (a scheduled probe check may land in between: the system's).
        let new: Vec<&Value> = log[seen..].iter().filter(|e| e["actor"] != "system").collect();
        assert_eq!(new[0]["type"], "run_updated");
        assert_eq!(new[0]["payload"]["invalidated_signoffs"], 2);
        assert_eq!(new[1]["type"], "item_updated");
        assert_eq!(new[1]["payload"]["item_id"], migration["id"]);
        assert_eq!(new[1]["payload"]["changes"]["status"], json!({"from": "done", "to": "in_progress"}));
        assert_eq!(
            new.len(),
            2,
            "one change for the item that was approved, none for the other: {:?}",
            new.iter().map(|e| (&e["type"], &e["actor"], &e["payload"])).collect::<Vec<_>>()
        );
        // Signing again is for the new version, and counts; sending the item back was not work
        // on it, so the one who changed the version may still sign off.
        app.sign(&approver, id, migration["id"].as_str().unwrap(), "approve").await.expect(201);
        assert_eq!(find(&app.run(&app.admin, id).await, &migration)["status"], "done");
        let rm = app.user("rita", "release_manager").await;
        let plan_id = plan["id"].as_str().unwrap();
        app.sign(&approver, id, plan_id, "approve").await.expect(201);
        app.sign(&rm, id, plan_id, "approve").await.expect(201);
        assert_eq!(find(&app.run(&app.admin, id).await, &plan)["status"], "done");
        let moved_again = app
            .patch(&rm, &path, json!({"release_version": "2.0.2"}), None)
            .await
            .expect(200)
            .json;
        assert_eq!(find(&moved_again, &plan)["status"], "in_progress");
        app.sign(&rm, id, plan_id, "approve").await.expect(201);
    }

    async fn the_run_history_is_searched_and_filtered_by_creation_time(app) {
        let a = app.create_run(&app.admin, "EduLibra", "production").await;
        let b = app.create_run(&app.admin, "Payroll_v2", "staging").await;
        let c = app.create_run(&app.admin, "Edu100%", "staging").await;
        let ids = |page: &Value| -> Vec<String> {
            page["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
        };
        let id = |run: &Value| run["id"].as_str().unwrap().to_owned();
        let server = &app;
        let list = |query: &'static str| async move {
            server.get(&server.admin, &format!("/api/v1/runs?{query}")).await.expect(200).json
        };
        // In any case, in product, version or environment; newest first.
        assert_eq!(ids(&list("q=EDU").await), vec![id(&c), id(&a)]);
        assert_eq!(ids(&list("q=stag").await), vec![id(&c), id(&b)]);
        assert_eq!(ids(&list("q=%25").await), vec![id(&c)], "a % is a percent sign, not a wildcard");
        assert_eq!(ids(&list("q=l_v").await), vec![id(&b)], "an _ is an underscore");
        assert_eq!(ids(&list("q=edu&environment=production").await), vec![id(&a)]);
        assert_eq!(ids(&list("q=nothing-like-it").await), Vec::<String>::new());
        // By creation time: from (inclusive) and before (exclusive).
        let created = a["created_at"].as_str().unwrap().to_owned();
        let all = ids(&app.get(&app.admin, &format!("/api/v1/runs?created_from={}", created.replace('+', "%2B"))).await.expect(200).json);
        assert!(all.contains(&id(&a)) && all.contains(&id(&c)), "{all:?}");
        let none = ids(&app.get(&app.admin, &format!("/api/v1/runs?created_before={}", created.replace('+', "%2B"))).await.expect(200).json);
        assert!(!none.contains(&id(&a)), "{none:?}");
        assert_eq!(ids(&list("created_from=2000-01-01T00:00:00Z&created_before=2000-01-02T00:00:00Z").await), Vec::<String>::new());
        // Paged like the rest of the list.
        let first = list("q=a&limit=1").await;
        assert_eq!(ids(&first), vec![id(&c)]);
        let cursor = first["next_cursor"].as_str().unwrap();
        let second = app.get(&app.admin, &format!("/api/v1/runs?q=a&limit=1&cursor={cursor}")).await.expect(200).json;
        assert_eq!(ids(&second), vec![id(&b)]);
        app.get(&app.admin, &format!("/api/v1/runs?q={}", "x".repeat(201))).await.expect(422);
        app.get(&app.admin, "/api/v1/runs?created_from=yesterday").await.expect(400);
    }

    async fn release_managers_find_people_to_put_on_a_team(app) {
        app.user("ada", "approver").await;
        app.user("adam", "engineer").await;
        let bob = app.user("bob", "engineer").await;
        let rm = app.user("rita", "release_manager").await;
        let found = app.get(&rm, "/api/v1/people?q=ADA").await.expect(200).json;
        assert_eq!(
            found,
            json!([{"username": "ada", "role": "approver"}, {"username": "adam", "role": "engineer"}])
        );
        let first = app.get(&rm, "/api/v1/people?limit=1").await.expect(200).json;
        assert_eq!(first.as_array().unwrap().len(), 1);
        // Deactivated users are not offered.
        let users = app.get(&app.admin, "/api/v1/users").await.expect(200).json;
        let adam = users.as_array().unwrap().iter().find(|u| u["username"] == "adam").unwrap();
        app.patch(&app.admin, &format!("/api/v1/users/{}", adam["id"].as_str().unwrap()), json!({"active": false}), None)
            .await
            .expect(200);
        let found = app.get(&rm, "/api/v1/people?q=ada").await.expect(200).json;
        assert_eq!(found, json!([{"username": "ada", "role": "approver"}]));
        app.get(&bob, "/api/v1/people").await.expect_problem(403, "forbidden");
        app.get(&rm, "/api/v1/people?limit=0").await.expect(422);
    }

    async fn a_fresh_database_has_the_edulibra_template_with_all_33_items(app) {
        let list = app.get(&app.admin, "/api/v1/templates").await.expect(200).json;
        let edulibra = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == EDULIBRA)
            .expect("the built-in template is listed");
        assert_eq!(edulibra["name"], "EduLibra production deployment");
        assert_eq!(edulibra["item_count"], 33);
        assert_eq!(edulibra["builtin"], true);

        let detail = app.get(&app.admin, &format!("/api/v1/templates/{EDULIBRA}")).await.expect(200).json;
        let parts = detail["content"]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 4);
        let sections: usize = parts.iter().map(|p| p["sections"].as_array().unwrap().len()).sum();
        assert_eq!(sections, 13);
        assert_eq!(detail["content"]["decision_points"].as_array().unwrap().len(), 3);
    }

    async fn a_template_exports_as_markdown_and_imports_back_unchanged(app) {
        let md = app
            .send(Method::GET, &format!("/api/v1/templates/{EDULIBRA}"), Some(&app.admin), None, &[("accept", "text/markdown")])
            .await
            .expect(200);
        assert!(md.content_type.starts_with("text/markdown"), "{}", md.content_type);
        assert!(md.text.contains("- [ ] Final testing and validation of the release candidate are complete."));

        let res = app
            .client
            .post(app.url("/api/v1/templates"))
            .bearer_auth(&app.admin)
            .header("content-type", "text/markdown")
            .body(md.text.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        let created: Value = res.json().await.unwrap();
        let original = app.get(&app.admin, &format!("/api/v1/templates/{EDULIBRA}")).await.expect(200).json;
        assert_eq!(created["content"], original["content"], "import(export(t)) == t");
        assert_eq!(created["builtin"], false);
        assert_ne!(created["id"], original["id"]);
    }

    async fn a_template_is_created_from_json_and_invalid_ones_are_refused_with_422(app) {
        let draft = json!({
            "name": "Hotfix",
            "parts": [{"title": "Checks", "sections": [{"title": "1. Before", "items": [
                {"title": "Backup taken", "gate": "deploy"},
                {"title": "Smoke test passed", "gate": "complete", "required": false}
            ]}]}],
            "decision_points": [{"key": "go", "title": "Go", "stage": "preparing", "criteria": ["Backup verified"]}]
        });
        let created = app.post(&app.admin, "/api/v1/templates", draft).await.expect(201).json;
        assert_eq!(created["version"], 1);
        assert_eq!(created["content"]["parts"][0]["sections"][0]["items"][1]["required"], false);

        let empty_section = json!({"name": "Bad", "parts": [{"title": "P", "sections": [{"title": "S", "items": []}]}]});
        app.post(&app.admin, "/api/v1/templates", empty_section).await.expect_problem(422, "invalid_input");
        let bad_md = app
            .client
            .post(app.url("/api/v1/templates"))
            .bearer_auth(&app.admin)
            .header("content-type", "text/markdown")
            .body("# T\n\n## P\n\n### S\n- [ ] x <!-- shipshape gate=never -->\n")
            .send()
            .await
            .unwrap();
        assert_eq!(bad_md.status().as_u16(), 422);
    }

    async fn editing_a_template_adds_a_version_and_runs_keep_the_one_they_pinned(app) {
        let draft = json!({"name": "Hotfix", "parts": [{"title": "Checks", "sections": [{"title": "1. Before", "items": [
            {"title": "Backup taken", "gate": "deploy"}
        ]}]}]});
        let created = app.post(&app.admin, "/api/v1/templates", draft).await.expect(201).json;
        let id = created["id"].as_str().unwrap().to_owned();
        let run_body = json!({"template_id": id, "product": "Hotfix", "release_version": "1", "environment": "prod"});
        let old_run = app.post(&app.admin, "/api/v1/runs", run_body.clone()).await.expect(201).json;
        assert_eq!(old_run["template_version"], 1);

        let path = format!("/api/v1/templates/{id}");
        let fetched = app.send(Method::GET, &path, Some(&app.admin), None, &[("accept", "text/markdown")]).await.expect(200);
        assert_eq!(fetched.etag.as_deref(), Some("\"1\""));
        let edited = fetched.text.replace(
            "- [ ] Backup taken <!-- shipshape gate=deploy -->",
            "- [ ] Backup taken <!-- shipshape gate=deploy -->\n- [ ] Smoke test passed <!-- shipshape gate=complete -->",
        );
        let post_version = |if_match: &'static str| {
            app.client
                .post(app.url(&format!("{path}/versions")))
                .bearer_auth(&app.admin)
                .header("content-type", "text/markdown")
                .header("if-match", if_match)
                .body(edited.clone())
                .send()
        };
        let v2 = post_version("\"1\"").await.unwrap();
        assert_eq!(v2.status().as_u16(), 201);
        let v2: Value = v2.json().await.unwrap();
        assert_eq!(v2["version"], 2);
        assert_eq!(v2["content"]["parts"][0]["sections"][0]["items"].as_array().unwrap().len(), 2);
        let stale = post_version("\"1\"").await.unwrap();
        assert_eq!(stale.status().as_u16(), 412, "a second edit from the same version is refused");

        let v1 = app.get(&app.admin, &format!("{path}?version=1")).await.expect(200).json;
        assert_eq!(v1["content"]["parts"][0]["sections"][0]["items"].as_array().unwrap().len(), 1);
        let listed = app.get(&app.admin, "/api/v1/templates").await.expect(200).json;
        let listed = listed.as_array().unwrap().iter().find(|t| t["id"] == id.as_str()).unwrap().clone();
        assert_eq!((listed["version"].clone(), listed["item_count"].clone()), (json!(2), json!(2)));

        // The run made before the edit keeps its version; a new run takes the latest.
        let old_id = old_run["id"].as_str().unwrap();
        let old_again = app.run(&app.admin, old_id).await;
        assert_eq!(old_again["template_version"], 1);
        assert_eq!(items(&old_again).len(), 1);
        let fresh = app.post(&app.admin, "/api/v1/runs", run_body).await.expect(201).json;
        assert_eq!(fresh["template_version"], 2);
        assert_eq!(items(&fresh).len(), 2);

        // The built-in template is Shipshape's own.
        app.post(&app.admin, &format!("/api/v1/templates/{EDULIBRA}/versions"), json!({"name": "Mine", "parts": [{"title": "P", "sections": [{"title": "S", "items": [{"title": "I", "gate": "deploy"}]}]}]}))
            .await
            .expect_problem(422, "invalid_input");
    }

    async fn an_edulibra_run_goes_from_planned_to_completed_and_closed(app) {
        let rm = app.user("rita", "release_manager").await;
        let run = app.create_run(&rm, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap().to_owned();
        assert_eq!(run["status"], "planned");
        assert_eq!(run["progress"]["applicable"], 31, "two rollback-only items do not apply");
        assert_eq!(run["progress"]["not_applicable"], 2);

        app.transition(&rm, &id, "start").await.expect(200);

        // Every deploy-gated item and the Go/No-Go decision block the deployment.
        let refused = app.transition(&rm, &id, "advance").await.expect_problem(409, "gate_blocked");
        let run = app.run(&rm, &id).await;
        assert_eq!(item_blocker_refs(&refused.json), refs_with_gate(&run, "deploy", true));
        assert_eq!(item_blocker_refs(&refused.json).len(), 18);
        assert_eq!(decision_blocker_keys(&refused.json), vec!["go_no_go"]);

        app.finish_gate(&rm, &id, "deploy").await;
        let refused = app.transition(&rm, &id, "advance").await.expect_problem(409, "gate_blocked");
        assert!(item_blocker_refs(&refused.json).is_empty());
        assert_eq!(decision_blocker_keys(&refused.json), vec!["go_no_go"]);

        app.decide(&rm, &id, "go_no_go", "go").await.expect(201);
        let run = app.transition(&rm, &id, "advance").await.expect(200).json;
        assert_eq!(run["status"], "deploying");

        let refused = app.transition(&rm, &id, "advance").await.expect_problem(409, "gate_blocked");
        assert_eq!(item_blocker_refs(&refused.json), refs_with_gate(&run, "verify", true));
        assert_eq!(item_blocker_refs(&refused.json).len(), 3);
        app.finish_gate(&rm, &id, "verify").await;
        let run = app.transition(&rm, &id, "advance").await.expect(200).json;
        assert_eq!(run["status"], "verifying");

        let refused = app.transition(&rm, &id, "complete").await.expect_problem(409, "gate_blocked");
        assert_eq!(item_blocker_refs(&refused.json).len(), 5);
        assert_eq!(decision_blocker_keys(&refused.json), vec!["post_deployment_verification"]);
        app.finish_gate(&rm, &id, "complete").await;
        app.decide(&rm, &id, "post_deployment_verification", "go").await.expect(201);
        let run = app.transition(&rm, &id, "complete").await.expect(200).json;
        assert_eq!(run["status"], "completed");

        // Closing waits for the retrospective and user communication, not for the
        // post-contingency review of a run that never rolled back.
        let refused = app.transition(&rm, &id, "close").await.expect_problem(409, "gate_blocked");
        assert_eq!(item_blocker_refs(&refused.json), refs_with_gate(&run, "close", true));
        assert_eq!(item_blocker_refs(&refused.json).len(), 5);
        app.finish_gate(&rm, &id, "close").await;
        let run = app.transition(&rm, &id, "close").await.expect(200).json;
        assert_eq!(run["status"], "completed");
        assert!(run["closed_at"].is_string());
        assert!(run["transitions"].as_array().unwrap().is_empty());

        // The log holds every change, in order, numbered without gaps.
        let log = app.events(&id).await;
        let seqs: Vec<i64> = log.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=log.len() as i64).collect::<Vec<_>>());
        assert_eq!(log[0]["type"], "run_created");
        let transitions: Vec<&str> = log
            .iter()
            .filter(|e| e["type"] == "run_transitioned")
            .map(|e| e["payload"]["action"].as_str().unwrap())
            .collect();
        assert_eq!(transitions, ["start", "advance", "advance", "complete", "close"]);
        // 26 manual items by hand; the 3 probe items by their checks (the schedule may have
        // checked them too, before the environment had its base URL).
        assert_eq!(log.iter().filter(|e| e["type"] == "item_updated").count(), 26);
        assert!(log.iter().filter(|e| e["type"] == "probe_checked").count() >= 3);
        assert_eq!(log.iter().filter(|e| e["type"] == "signoff_recorded").count(), 3, "1 + 2 sign-offs for the two approval items");
        assert_eq!(log.iter().filter(|e| e["type"] == "decision_recorded").count(), 2);
        assert_eq!(run["version"], json!(log.len()));
    }

    async fn a_rollback_decision_moves_the_run_to_rolling_back_then_rolled_back_and_closed(app) {
        let rm = app.user("rita", "release_manager").await;
        let id = app.create_run(&rm, "EduLibra", "production").await["id"].as_str().unwrap().to_owned();
        app.transition(&rm, &id, "start").await.expect(200);
        app.finish_gate(&rm, &id, "deploy").await;
        app.decide(&rm, &id, "go_no_go", "go").await.expect(201);
        app.transition(&rm, &id, "advance").await.expect(200);

        // Rollback is not an outcome before deploying, abort not one after.
        app.decide(&rm, &id, "deployment_checkpoint", "abort").await.expect_problem(409, "wrong_stage");
        let decision = app.decide(&rm, &id, "deployment_checkpoint", "rollback").await.expect(201).json;
        assert_eq!(decision["outcome"], "rollback");
        assert_eq!(decision["criteria"].as_array().unwrap().len(), 3);

        let run = app.run(&rm, &id).await;
        assert_eq!(run["status"], "rolling_back");
        assert_eq!(run["progress"]["not_applicable"], 2, "the post-contingency review now applies, the 2 success-only items no longer do");
        let log = app.events(&id).await;
        let last = log.last().unwrap();
        assert_eq!(last["type"], "decision_recorded");
        assert_eq!(last["payload"]["run_status"], json!({"from": "deploying", "to": "rolling_back"}));

        app.transition(&rm, &id, "advance").await.expect_problem(409, "invalid_transition");
        let run = app.transition(&rm, &id, "finish_rollback").await.expect(200).json;
        assert_eq!(run["status"], "rolled_back");

        let refused = app.transition(&rm, &id, "close").await.expect_problem(409, "gate_blocked");
        assert_eq!(
            item_blocker_refs(&refused.json).len(),
            5,
            "3 close items (retrospective) and the 2 post-contingency items; not the 2 that state a success"
        );
        assert_eq!(item_blocker_refs(&refused.json), refs_with_gate(&run, "close", true));
        let success_only: Vec<Value> = items(&run).into_iter().filter(|i| i["applies"] == "after_success").collect();
        assert_eq!(success_only.len(), 2);
        assert!(success_only[0]["title"].as_str().unwrap().starts_with("Successful deployment"), "{}", success_only[0]);
        assert!(success_only.iter().all(|i| i["applicable"] == false && i["status"] == "pending"));
        assert_eq!(run["progress"]["not_applicable"], 2, "the 2 success-only items");

        // A finished run stays editable only for close-gated items.
        let deploy_item = items(&run).into_iter().find(|i| i["gate"] == "verify").unwrap();
        app.set_item(&rm, &id, deploy_item["id"].as_str().unwrap(), "done").await.expect_problem(409, "item_locked");

        // Its schedule is history now.
        app.patch(&rm, &format!("/api/v1/runs/{id}"), json!({"expected_downtime_minutes": 1}), None)
            .await
            .expect_problem(409, "run_locked");

        app.finish_gate(&rm, &id, "close").await;
        let run = app.transition(&rm, &id, "close").await.expect(200).json;
        assert_eq!(run["status"], "rolled_back");
        assert!(run["closed_at"].is_string());
        app.transition(&rm, &id, "start").await.expect_problem(409, "run_closed");
        let close_item = items(&run).into_iter().find(|i| i["gate"] == "close").unwrap();
        app.set_item(&rm, &id, close_item["id"].as_str().unwrap(), "pending").await.expect_problem(409, "item_locked");
    }

    async fn the_go_no_go_starts_from_what_the_checklist_says_and_a_go_with_unmet_criteria_is_confirmed(app) {
        let rm = app.user("rita", "release_manager").await;
        let id = app.create_run(&rm, "EduLibra", "production").await["id"].as_str().unwrap().to_owned();
        app.transition(&rm, &id, "start").await.expect(200);
        let measured = |run: &Value| -> Vec<(String, String, String, String)> {
            run["decision_points"].as_array().unwrap().iter().find(|p| p["key"] == "go_no_go").unwrap()["measurements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    assert!(m["item_id"].is_null() && m["reference"].is_null() && m["checked_at"].is_null(), "{m}");
                    let text = |k: &str| m[k].as_str().unwrap().to_owned();
                    (text("criterion"), text("measured_by"), text("result"), text("observed"))
                })
                .collect()
        };
        let run = app.run(&rm, &id).await;
        let deploy_gated = items(&run).iter().filter(|i| i["gate"] == "deploy").count();
        let open = measured(&run);
        assert_eq!(open.len(), 3, "{open:?}");
        assert_eq!(
            (open[0].0.as_str(), open[0].1.as_str(), open[0].2.as_str()),
            ("All deploy-gated checklist items are done or waived", "the deploy-gated items", "not_met")
        );
        assert!(open[0].3.starts_with(&format!("0 of {deploy_gated} done or waived; open: 1.1.1 pending, ")), "{}", open[0].3);
        assert!(open[0].3.ends_with(&format!(" and {} more", deploy_gated - 5)), "{}", open[0].3);
        assert_eq!(
            (open[1].1.as_str(), open[1].2.as_str(), open[1].3.as_str()),
            ("items 1.1.4, 1.3.2", "not_met", "0 of 2 done or waived; open: 1.1.4 pending, 1.3.2 pending")
        );
        assert_eq!(open[2].1, "item 4.1.1");

        // Waiving counts: one backup skipped with a reason, the other done.
        let backup = |r: &str| items(&run).into_iter().find(|i| i["reference"] == r).unwrap();
        let path = |r: &str| format!("/api/v1/runs/{id}/items/{}", backup(r)["id"].as_str().unwrap());
        app.patch(&rm, &path("1.3.2"), json!({"status": "skipped", "reason": "taken with 1.1.4"}), None).await.expect(200);
        app.patch(&rm, &path("1.1.4"), json!({"status": "done", "evidence_url": "https://backups.example/42"}), None).await.expect(200);
        let run = app.run(&rm, &id).await;
        assert_eq!(measured(&run)[1].2, "met");
        assert_eq!(measured(&run)[1].3, "2 of 2 done or waived");
        app.finish_gate(&rm, &id, "deploy").await;
        let done = measured(&app.run(&rm, &id).await);
        assert_eq!((done[0].2.as_str(), done[2].2.as_str()), ("met", "met"), "{done:?}");
        assert_eq!(done[0].3, format!("{deploy_gated} of {deploy_gated} done or waived"));

        // A go with a criterion not met or unknown is refused until confirmed, and the record says so.
        let decisions = format!("/api/v1/runs/{id}/decisions");
        let go = |confirmed: Option<bool>| {
            let mut body = json!({
                "point_key": "go_no_go",
                "outcome": "go",
                "rationale": "sev-1 is on another product",
                "criteria": [{"criterion": "All deploy-gated checklist items are done or waived", "result": "met"},
                             {"criterion": "No sev-1 incident open", "result": "not_met", "observed": "INC-7"}],
            });
            if let Some(c) = confirmed {
                body["unmet_confirmed"] = json!(c);
            }
            body
        };
        for unconfirmed in [None, Some(false)] {
            let refused = app.post(&rm, &decisions, go(unconfirmed)).await.expect_problem(422, "invalid_input");
            let detail = refused.json["detail"].as_str().unwrap();
            assert!(detail.contains("unmet_confirmed") && detail.contains("No sev-1 incident open"), "{detail}");
            assert!(detail.contains("Rollback procedure rehearsed"), "unknown counts as unmet: {detail}");
        }
        assert!(app.get(&rm, &decisions).await.expect(200).json.as_array().unwrap().is_empty(), "nothing recorded");
        let decision = app.post(&rm, &decisions, go(Some(true))).await.expect(201).json;
        assert_eq!(decision["unmet_confirmed"], true);
        let last = app.events(&id).await.last().unwrap().clone();
        assert_eq!((last["type"].as_str(), &last["payload"]["unmet_confirmed"]), (Some("decision_recorded"), &json!(true)));
        // All met: nothing to confirm, nothing recorded as confirmed.
        let all_met = app.decide(&rm, &id, "go_no_go", "go").await.expect(201).json;
        assert_eq!(all_met["unmet_confirmed"], false);
        assert!(app.events(&id).await.last().unwrap()["payload"].get("unmet_confirmed").is_none());
        let listed = app.get(&rm, &decisions).await.expect(200).json;
        assert_eq!(listed[0]["unmet_confirmed"], true, "kept with the decision");
    }

    async fn a_hold_at_go_no_go_supersedes_an_earlier_go_and_blocks_the_deployment(app) {
        let rm = app.user("rita", "release_manager").await;
        let id = app.create_run(&rm, "EduLibra", "production").await["id"].as_str().unwrap().to_owned();
        app.transition(&rm, &id, "start").await.expect(200);
        app.finish_gate(&rm, &id, "deploy").await;
        let first = app.decide(&rm, &id, "go_no_go", "go").await.expect(201).json;
        app.decide(&rm, &id, "go_no_go", "hold").await.expect(201);

        let refused = app.transition(&rm, &id, "advance").await.expect_problem(409, "gate_blocked");
        assert_eq!(decision_blocker_keys(&refused.json), vec!["go_no_go"]);

        let decisions = app.get(&rm, &format!("/api/v1/runs/{id}/decisions")).await.expect(200).json;
        let decisions = decisions.as_array().unwrap();
        assert_eq!(decisions.len(), 2);
        assert_eq!(decisions[0]["id"], first["id"]);
        assert_eq!(decisions[0]["outcome"], "go", "an earlier decision is never edited");
        assert_eq!(decisions[0]["superseded"], true);
        assert_eq!(decisions[1]["superseded"], false);
    }

    async fn an_abort_decision_at_go_no_go_aborts_the_run(app) {
        let rm = app.user("rita", "release_manager").await;
        let id = app.create_run(&rm, "EduLibra", "production").await["id"].as_str().unwrap().to_owned();
        app.decide(&rm, &id, "go_no_go", "go").await.expect_problem(409, "wrong_stage");
        app.transition(&rm, &id, "start").await.expect(200);
        app.decide(&rm, &id, "go_no_go", "abort").await.expect(201);
        assert_eq!(app.run(&rm, &id).await["status"], "aborted");
    }

    async fn a_second_live_run_of_the_same_product_and_environment_is_refused(app) {
        let rm = app.user("rita", "release_manager").await;
        let first = app.create_run(&rm, "EduLibra", "production").await["id"].as_str().unwrap().to_owned();
        let second = app.create_run(&rm, "EduLibra", "production").await["id"].as_str().unwrap().to_owned();
        let staging = app.create_run(&rm, "EduLibra", "staging").await["id"].as_str().unwrap().to_owned();
        app.transition(&rm, &first, "start").await.expect(200);
        // The run says so before anyone clicks.
        let view = app.run(&rm, &second).await;
        let start = view["transitions"].as_array().unwrap().iter().find(|t| t["action"] == "start").unwrap().clone();
        assert_eq!(start["allowed"], false);
        assert!(start["reason"].as_str().unwrap().contains("live"), "{start}");
        app.transition(&rm, &second, "start").await.expect_problem(409, "live_run_exists");
        app.transition(&rm, &staging, "start").await.expect(200);
        app.transition(&rm, &first, "abort").await.expect(200);
        app.transition(&rm, &second, "start").await.expect(200);
    }

    async fn a_stale_if_match_on_an_item_answers_412_and_changes_nothing(app) {
        let eng = app.user("erin", "engineer").await;
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        app.add_member(id, "erin").await;
        let item = &items(&run)[0];
        let path = format!("/api/v1/runs/{id}/items/{}", item["id"].as_str().unwrap());

        let fetched = app.get(&eng, &path).await.expect(200);
        let etag = fetched.etag.clone().expect("items carry an ETag");
        assert_eq!(etag, "\"1\"");

        let updated = app.patch(&eng, &path, json!({"status": "in_progress", "note": "on it"}), Some(&etag)).await.expect(200);
        assert_eq!(updated.etag.as_deref(), Some("\"2\""));
        assert_eq!(updated.json["updated_by"], "erin");

        let stale = app.patch(&eng, &path, json!({"note": "overwrite"}), Some(&etag)).await.expect_problem(412, "precondition_failed");
        assert_eq!(stale.etag.as_deref(), Some("\"2\""), "the 412 names the current version");
        let now = app.get(&eng, &path).await.expect(200);
        assert_eq!(now.json["note"], "on it");
        assert_eq!(now.json["status"], "in_progress");
        assert_eq!(now.json["version"], 2);
    }

    async fn a_stale_if_match_on_a_run_answers_412(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let path = format!("/api/v1/runs/{id}");
        let etag = app.get(&app.admin, &path).await.expect(200).etag.unwrap();
        let updated = app.patch(&app.admin, &path, json!({"expected_downtime_minutes": 30}), Some(&etag)).await.expect(200);
        assert_eq!(updated.json["expected_downtime_minutes"], 30);
        assert_ne!(updated.etag.as_deref(), Some(etag.as_str()));
        app.patch(&app.admin, &path, json!({"expected_downtime_minutes": 45}), Some(&etag)).await.expect_problem(412, "precondition_failed");
        app.patch(&app.admin, &path, json!({"window_start": "2026-12-02T00:00:00Z"}), None).await.expect_problem(422, "invalid_input");
        assert_eq!(app.run(&app.admin, id).await["expected_downtime_minutes"], 30);
    }

    async fn roles_are_enforced_on_runs_items_and_decisions(app) {
        let viewer = app.user("vic", "viewer").await;
        let eng = app.user("erin", "engineer").await;
        let outsider = app.user("oscar", "engineer").await;
        let rm = app.user("rita", "release_manager").await;

        let body = json!({"template_id": EDULIBRA, "product": "EduLibra", "release_version": "1", "environment": "production"});
        app.post(&viewer, "/api/v1/runs", body.clone()).await.expect_problem(403, "forbidden");
        app.post(&eng, "/api/v1/runs", body.clone()).await.expect_problem(403, "forbidden");
        let run = app.post(&rm, "/api/v1/runs", body).await.expect(201).json;
        let id = run["id"].as_str().unwrap();
        app.add_member(id, "erin").await;
        app.add_member(id, "vic").await;

        // Everyone signed in reads; only steering roles move and decide.
        app.get(&viewer, &format!("/api/v1/runs/{id}")).await.expect(200);
        app.get(&outsider, &format!("/api/v1/runs/{id}")).await.expect(200);
        app.transition(&eng, id, "start").await.expect_problem(403, "forbidden");
        app.transition(&rm, id, "start").await.expect(200);
        app.decide(&eng, id, "go_no_go", "go").await.expect_problem(403, "forbidden");

        // Only the run's team (and release managers) work its items; viewers never do.
        let item = |prefix: &str| item_id_by_title(&run, prefix);
        let plain = item("Final testing");
        app.set_item(&viewer, id, &plain, "done").await.expect_problem(403, "forbidden");
        app.set_item(&outsider, id, &plain, "done").await.expect_problem(403, "forbidden");
        app.set_item(&eng, id, &plain, "done").await.expect(200);

        // Skipping a required item is a waiver only a release manager may grant.
        let skip = json!({"status": "skipped", "reason": "not needed this time"});
        let path = format!("/api/v1/runs/{id}/items/{}", item("Release notes"));
        app.patch(&eng, &path, skip.clone(), None).await.expect_problem(403, "forbidden");
        app.patch(&eng, &path, json!({"status": "skipped"}), None).await.expect_problem(422, "invalid_input");
        let waived = app.patch(&rm, &path, skip, None).await.expect(200).json;
        assert_eq!(waived["skip_reason"], "not needed this time");
        let log = app.events(id).await;
        assert_eq!(log.last().unwrap()["payload"]["waiver"], true);
        // Nor may an engineer reword the waiver.
        app.patch(&eng, &path, json!({"status": "skipped", "reason": "whatever"}), None).await.expect_problem(403, "forbidden");

        // Approval items are done through sign-offs, never by setting them done.
        let approval = item("Data migration scripts");
        app.set_item(&eng, id, &approval, "done").await.expect_problem(409, "signoff_required");
        app.set_item(&rm, id, &approval, "done").await.expect_problem(409, "signoff_required");

        // Templates and users are for admins.
        app.get(&rm, "/api/v1/users").await.expect_problem(403, "forbidden");
        app.post(&rm, "/api/v1/users", json!({"username": "x", "password": "long-enough-password", "role": "admin"}))
            .await
            .expect_problem(403, "forbidden");
        app.send(Method::POST, "/api/v1/templates", Some(&rm), None, &[("content-type", "text/markdown")])
            .await
            .expect_problem(403, "forbidden");
    }

    async fn requests_without_a_valid_token_answer_401(app) {
        let no_token = app.send(Method::GET, "/api/v1/runs", None, None, &[]).await.expect_problem(401, "unauthorized");
        assert!(no_token.json["detail"].as_str().unwrap().contains("Bearer"));
        app.get("not-a-token", "/api/v1/me").await.expect_problem(401, "unauthorized");
        let forged = format!("{}x", &app.admin[..app.admin.len() - 1]);
        app.get(&forged, "/api/v1/me").await.expect_problem(401, "unauthorized");
        app.send(Method::GET, "/api/v1/me", None, None, &[("authorization", "Basic YWRtaW46eA==")]).await.expect_problem(401, "unauthorized");

        let wrong = app
            .send(Method::POST, "/api/v1/auth/login", None, Some(&json!({"username": "admin", "password": "wrong-password"})), &[])
            .await
            .expect_problem(401, "unauthorized");
        let unknown = app
            .send(Method::POST, "/api/v1/auth/login", None, Some(&json!({"username": "nobody", "password": "wrong-password"})), &[])
            .await
            .expect_problem(401, "unauthorized");
        assert_eq!(wrong.json["detail"], unknown.json["detail"], "a failed login does not reveal whether the account exists");

        let me = app.get(&app.admin, "/api/v1/me").await.expect(200).json;
        assert_eq!(me["username"], "admin");
        assert_eq!(me["role"], "admin");
        assert!(me.get("password_hash").is_none());
    }

    async fn every_error_class_is_a_problem_document_never_a_500(app) {
        app.get(&app.admin, "/api/v1/no-such-thing").await.expect_problem(404, "not_found");
        let wrong_method = app.send(Method::DELETE, "/api/v1/runs", Some(&app.admin), None, &[]).await;
        let wrong_method = wrong_method.expect_problem(405, "method_not_allowed");
        assert!(wrong_method.json["detail"].as_str().unwrap().contains("GET, HEAD, POST"));
        app.get(&app.admin, "/api/v1/runs/does-not-exist").await.expect_problem(404, "not_found");

        let raw = |body: &'static str, ct: &'static str| {
            app.client
                .post(app.url("/api/v1/runs"))
                .bearer_auth(&app.admin)
                .header("content-type", ct)
                .body(body)
        };
        let read = |res: reqwest::Response| async move {
            let status = res.status().as_u16();
            let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
            let body: Value = res.json().await.unwrap();
            (status, ct, body["code"].as_str().unwrap().to_owned())
        };
        let (status, ct, code) = read(raw("{not json", "application/json").send().await.unwrap()).await;
        assert_eq!((status, ct.as_str(), code.as_str()), (400, "application/problem+json", "malformed_json"));
        let (status, _, code) = read(raw(r#"{"template_id":"x","product":"p","release_version":"1","environment":"e","colour":"red"}"#, "application/json").send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (400, "unknown_field"));
        let (status, _, code) = read(raw(r#"{"template_id":"x"}"#, "text/plain").send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (415, "unsupported_media_type"));
        let (status, _, code) = read(raw(r#"{"template_id":"x","product":7}"#, "application/json").send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (422, "invalid_input"));

        let huge = format!(r#"{{"template_id":"{}","product":"p","release_version":"1","environment":"e"}}"#, "x".repeat(400 * 1024));
        let res = app.client.post(app.url("/api/v1/runs")).bearer_auth(&app.admin).header("content-type", "application/json").body(huge).send().await.unwrap();
        let (status, _, code) = read(res).await;
        assert_eq!((status, code.as_str()), (413, "payload_too_large"));

        // Values the rules refuse, including a NUL that PostgreSQL would choke on.
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let path = format!("/api/v1/runs/{id}/items/{}", items(&run)[0]["id"].as_str().unwrap());
        app.patch(&app.admin, &path, json!({"note": "bad \u{0000} byte"}), None).await.expect_problem(422, "invalid_input");
        app.patch(&app.admin, &path, json!({"evidence_url": "javascript:alert(1)"}), None).await.expect_problem(422, "invalid_input");
        // Text that displays in another order than it reads (a right-to-left override).
        app.patch(&app.admin, &path, json!({"evidence_url": "https://evil.example/\u{202E}fdp.exe"}), None).await.expect_problem(422, "invalid_input");
        app.patch(&app.admin, &path, json!({"note": "all good \u{202E}"}), None).await.expect_problem(422, "invalid_input");
        app.patch(&app.admin, &path, json!({}), None).await.expect_problem(422, "invalid_input");
        app.patch(&app.admin, &path, json!({"status": "finished"}), None).await.expect_problem(422, "invalid_input");
        app.post(&app.admin, "/api/v1/runs", json!({"template_id": EDULIBRA, "product": "Edu\u{0000}", "release_version": "1", "environment": "e"}))
            .await
            .expect_problem(422, "invalid_input");
        app.post(&app.admin, "/api/v1/runs", json!({"template_id": "nope", "product": "p", "release_version": "1", "environment": "e"}))
            .await
            .expect_problem(404, "not_found");
        app.post(&app.admin, &format!("/api/v1/runs/{id}/transitions"), json!({"action": "fly"})).await.expect_problem(422, "invalid_input");
        app.transition(&app.admin, id, "start").await.expect(200);
        app.post(&app.admin, &format!("/api/v1/runs/{id}/decisions"), json!({"point_key": "go_no_go", "outcome": "go", "rationale": "  "}))
            .await
            .expect_problem(422, "invalid_input");
        app.post(&app.admin, &format!("/api/v1/runs/{id}/decisions"), json!({"point_key": "nope", "outcome": "go", "rationale": "r"}))
            .await
            .expect_problem(422, "invalid_input");
        app.post(
            &app.admin,
            &format!("/api/v1/runs/{id}/decisions"),
            json!({"point_key": "go_no_go", "outcome": "go", "rationale": "r", "criteria": [{"criterion": "made up", "result": "met"}]}),
        )
        .await
        .expect_problem(422, "invalid_input");
        app.get(&app.admin, "/api/v1/runs?limit=0").await.expect_problem(422, "invalid_input");
        app.get(&app.admin, "/api/v1/runs?cursor=garbage").await.expect_problem(422, "invalid_input");
        // A well-formed cursor at a time no database stores is refused, not sent to it.
        for micros in ["-250000000000000000", "300000000000000000", "-62135596800000001"] {
            app.get(&app.admin, &format!("/api/v1/runs?cursor={micros}_00000000-0000-0000-0000-000000000000"))
                .await
                .expect_problem(422, "invalid_input");
        }
        app.get(&app.admin, "/api/v1/runs?status=bogus").await.expect_problem(400, "bad_query");

        // NUL bytes in paths, queries and the login name never reach the database.
        app.get(&app.admin, "/api/v1/runs/%00").await.expect_problem(404, "not_found");
        app.get(&app.admin, &format!("/api/v1/runs/{id}/items/%00")).await.expect_problem(404, "not_found");
        app.get(&app.admin, "/api/v1/runs?environment=%00").await.expect_problem(422, "invalid_input");
        app.get(&app.admin, "/api/v1/runs?product=a%00b").await.expect_problem(422, "invalid_input");
        app.get(&app.admin, "/api/v1/runs?cursor=1_%00").await.expect_problem(422, "invalid_input");
        app.send(Method::POST, "/api/v1/auth/login", None, Some(&json!({"username": "ad\u{0000}min", "password": "x"})), &[])
            .await
            .expect_problem(401, "unauthorized");
    }

    async fn every_answer_the_server_gives_is_a_problem_even_from_the_framework(app) {
        // A body over the limit: 413, as a problem that names the limit.
        let big = format!("# T\n\n## Part\n\n### 1. S\n\n{}", "- [ ] an item\n".repeat(160_000));
        let res = app
            .client
            .post(app.url("/api/v1/templates"))
            .bearer_auth(&app.admin)
            .header("content-type", "text/markdown")
            .body(big)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        let body: Value = res.json().await.unwrap();
        assert_eq!((status, content_type.as_str()), (413, "application/problem+json"));
        assert_eq!(body["code"], "payload_too_large");
        assert!(body["detail"].as_str().unwrap().contains("bytes"), "{body}");
        // Asked for gzip, the problem is compressed as it says (or not at all).
        let res = app
            .client
            .post(app.url("/api/v1/templates"))
            .bearer_auth(&app.admin)
            .header("content-type", "text/markdown")
            .header("accept-encoding", "gzip")
            .body(format!("# T\n\n{}", "x".repeat(1_100_000)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 413);
        let gzipped = res.headers().get("content-encoding").is_some_and(|v| v == "gzip");
        let bytes = res.bytes().await.unwrap();
        if gzipped {
            assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip body behind Content-Encoding: gzip");
        } else {
            serde_json::from_slice::<Value>(&bytes).expect("a plain JSON problem");
        }

        // Within the body limit but over the template limits: 422, naming the limit.
        let sections: String = (1..=6).map(|i| format!("### {i}. S\n\n{}\n", "- [ ] an item\n".repeat(100))).collect();
        let res = app
            .client
            .post(app.url("/api/v1/templates"))
            .bearer_auth(&app.admin)
            .header("content-type", "text/markdown")
            .body(format!("# T\n\n## Part\n\n{sections}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 422);
        let body: Value = res.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("at most 500 items"), "{body}");

        // A URL longer than the server reads: 414.
        let long = format!("/api/v1/runs?product={}", "p".repeat(20_000));
        app.get(&app.admin, &long).await.expect_problem(414, "uri_too_long");

        // HEAD is answered wherever GET is, with the headers and no body.
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let head = app.send(Method::HEAD, &format!("/api/v1/runs/{id}"), Some(&app.admin), None, &[]).await.expect(200);
        assert!(head.text.is_empty(), "no body");
        assert_eq!(head.content_type, "application/json");
        assert!(head.etag.is_some(), "the same headers as GET");
        app.send(Method::HEAD, "/healthz", None, None, &[]).await.expect(200);
        app.send(Method::HEAD, "/api/v1/runs", None, None, &[]).await.expect(401);

        // A method a path does not take: 405 with Allow (HEAD wherever GET), as a problem that
        // names the method sent.
        let put = app.client.put(app.url("/api/v1/runs")).bearer_auth(&app.admin).send().await.unwrap();
        assert_eq!(put.status().as_u16(), 405);
        assert_eq!(put.headers()["allow"], "GET, HEAD, POST");
        let head = app.client.head(app.url(&format!("/api/v1/runs/{id}/transitions"))).bearer_auth(&app.admin).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 405);
        assert_eq!(head.headers()["allow"], "POST");
        let put = app.send(Method::PUT, "/api/v1/runs", Some(&app.admin), None, &[]).await.expect_problem(405, "method_not_allowed");
        assert!(put.json["detail"].as_str().unwrap().starts_with("PUT is not allowed"));
    }

    async fn a_repeated_start_answers_200_without_a_new_event_and_a_late_one_409(app) {
        // The policy: a transition to the state the run is already in succeeds and changes
        // nothing (a tool retrying after a lost answer must not fail); one the run has moved
        // past is refused.
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap().to_owned();
        app.transition(&app.admin, &id, "start").await.expect(200);
        // The server's own probe checks may log results meanwhile; they are not the start's.
        let moves = |events: Vec<Value>| {
            events.into_iter().filter(|e| e["type"] != "probe_checked").count()
        };
        let before = moves(app.events(&id).await);
        let again = app.transition(&app.admin, &id, "start").await.expect(200);
        assert_eq!(again.json["status"], "preparing");
        assert_eq!(moves(app.events(&id).await), before, "no event for a restated start");
        app.finish_gate(&app.admin, &id, "deploy").await;
        app.decide(&app.admin, &id, "go_no_go", "go").await.expect(201);
        app.transition(&app.admin, &id, "advance").await.expect(200);
        app.transition(&app.admin, &id, "start").await.expect_problem(409, "invalid_transition");
    }

    async fn runs_are_listed_newest_first_filtered_and_paged_by_cursor(app) {
        for env in ["production", "staging", "production", "staging", "production"] {
            app.create_run(&app.admin, "EduLibra", env).await;
        }
        let first = app.get(&app.admin, "/api/v1/runs?limit=2").await.expect(200).json;
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        let second = app.get(&app.admin, &format!("/api/v1/runs?limit=2&cursor={cursor}")).await.expect(200).json;
        let cursor = second["next_cursor"].as_str().unwrap().to_owned();
        let third = app.get(&app.admin, &format!("/api/v1/runs?limit=2&cursor={cursor}")).await.expect(200).json;
        assert!(third["next_cursor"].is_null());
        let ids: Vec<Value> = [&first, &second, &third]
            .iter()
            .flat_map(|p| p["items"].as_array().unwrap().iter().map(|r| r["id"].clone()))
            .collect();
        assert_eq!(ids.len(), 5);
        let all = app.get(&app.admin, "/api/v1/runs").await.expect(200).json;
        let all_ids: Vec<Value> = all["items"].as_array().unwrap().iter().map(|r| r["id"].clone()).collect();
        assert_eq!(ids, all_ids, "pages join up without gaps or repeats");
        let times: Vec<&str> = all["items"].as_array().unwrap().iter().map(|r| r["created_at"].as_str().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

        let staging = app.get(&app.admin, "/api/v1/runs?environment=staging").await.expect(200).json;
        assert_eq!(staging["items"].as_array().unwrap().len(), 2);
        let id = staging["items"][0]["id"].as_str().unwrap();
        app.transition(&app.admin, id, "start").await.expect(200);
        let preparing = app.get(&app.admin, "/api/v1/runs?status=preparing").await.expect(200).json;
        assert_eq!(preparing["items"].as_array().unwrap().len(), 1);
        assert_eq!(preparing["items"][0]["id"], id);
        assert_eq!(preparing["items"][0]["progress"]["open"], 31);
    }

    async fn events_are_paged_in_order_with_after(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        for item in items(&run).iter().take(4) {
            app.set_item(&app.admin, id, item["id"].as_str().unwrap(), "in_progress").await.expect(200);
        }
        let page = app.get(&app.admin, &format!("/api/v1/runs/{id}/events?limit=2")).await.expect(200).json;
        let seqs: Vec<i64> = page["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, [1, 2]);
        assert_eq!(page["next_after"], 2);
        let rest = app.get(&app.admin, &format!("/api/v1/runs/{id}/events?after=2")).await.expect(200).json;
        let seqs: Vec<i64> = rest["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert!(rest["next_after"].is_null());
        let e = &rest["items"][0];
        assert_eq!(e["type"], "item_updated");
        assert_eq!(e["actor"], "admin");
        assert_eq!(e["payload"]["changes"]["status"], json!({"from": "pending", "to": "in_progress"}));
    }

    async fn restating_an_item_unchanged_records_no_event(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let item = items(&run)[0]["id"].as_str().unwrap().to_owned();
        app.set_item(&app.admin, id, &item, "done").await.expect(200);
        let again = app.set_item(&app.admin, id, &item, "done").await.expect(200);
        assert_eq!(again.json["version"], 2);
        assert_eq!(app.events(id).await.len(), 2);
        // The run's version did not move either, and the next change takes the next number.
        assert_eq!(app.run(&app.admin, id).await["version"], 2);
        app.set_item(&app.admin, id, &item, "in_progress").await.expect(200);
        let seqs: Vec<i64> = app.events(id).await.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    async fn concurrent_item_updates_are_all_kept_with_one_event_each(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap().to_owned();
        let ids: Vec<String> = items(&run)
            .iter()
            .filter(|i| i["kind"] == "manual" && i["evidence_required"] == false)
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect();
        let app = std::sync::Arc::new(app);
        let mut tasks = Vec::new();
        for item in ids.into_iter().take(16) {
            let app = app.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                app.set_item(&app.admin, &id, &item, "done").await.status.as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let run = app.run(&app.admin, &id).await;
        assert_eq!(run["progress"]["done"], 16);
        let log = app.events(&id).await;
        assert_eq!(log.len(), 17);
        let seqs: Vec<i64> = log.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (1..=17).collect::<Vec<_>>());
        // Each change that waited for another chains to the event that one appended.
        for pair in log.windows(2) {
            assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "{}", pair[1]["seq"]);
        }
    }

    async fn a_change_that_waited_for_the_run_is_judged_by_the_team_the_change_before_left(app) {
        // An engineer's change waits for the run while a release manager removes them from
        // the team: it is judged by the team as the removal left it.
        let eng = app.user("erin", "engineer").await;
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap().to_owned();
        let item = items(&run)[0]["id"].as_str().unwrap().to_owned();
        app.add_member(&id, "erin").await;
        let erin = app.run(&app.admin, &id).await["members"][0]["user_id"].as_str().unwrap().to_owned();
        let hold = RunHold::take(&app.db_url, &id);
        let app = std::sync::Arc::new(app);
        let removal = {
            let (app, path) = (app.clone(), format!("/api/v1/runs/{id}/members/{erin}"));
            tokio::spawn(async move { app.send(Method::DELETE, &path, Some(&app.admin), None, &[]).await.status.as_u16() })
        };
        hold.wait_for_waiters(1).await;
        let change = {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move { app.set_item(&eng, &id, &item, "in_progress").await })
        };
        hold.wait_for_waiters(2).await;
        hold.release();
        assert_eq!(removal.await.unwrap(), 204);
        change.await.unwrap().expect_problem(403, "forbidden");
        let types: Vec<String> = app.events(&id).await.iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
        assert_eq!(types.last().unwrap(), "member_removed");
    }

    async fn concurrent_transitions_of_one_run_move_it_exactly_once(app) {
        let id = app.create_run(&app.admin, "EduLibra", "production").await["id"].as_str().unwrap().to_owned();
        app.transition(&app.admin, &id, "start").await.expect(200);
        app.finish_gate(&app.admin, &id, "deploy").await;
        app.decide(&app.admin, &id, "go_no_go", "go").await.expect(201);
        let app = std::sync::Arc::new(app);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let app = app.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move { app.transition(&app.admin, &id, "advance").await.status.as_u16() }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        // One advance reaches deploying; every other one then meets the verify gate.
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
        assert_eq!(app.run(&app.admin, &id).await["status"], "deploying");
        let log = app.events(&id).await;
        let advances = log.iter().filter(|e| e["type"] == "run_transitioned" && e["payload"]["action"] == "advance").count();
        assert_eq!(advances, 1);
    }

    async fn the_event_stream_delivers_changes_live_and_resumes_without_gaps_or_duplicates(app) {
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap().to_owned();
        let item = items(&run)[0]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/runs/{id}/events/stream");

        let mut stream = app.client.get(app.url(&path)).bearer_auth(&app.admin).send().await.unwrap();
        assert_eq!(stream.status().as_u16(), 200);
        assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let mut seen = String::new();
        read_until(&mut stream, &mut seen, "id: 1\n").await;
        // A change made by someone else arrives without asking.
        app.set_item(&app.admin, &id, &item, "in_progress").await.expect(200);
        read_until(&mut stream, &mut seen, "id: 2\n").await;
        assert!(seen.contains("event: run_created\n"));
        assert!(seen.contains("event: item_updated\n"));
        let data = seen.lines().filter(|l| l.starts_with("data: ")).nth(1).unwrap();
        let event: Value = serde_json::from_str(&data["data: ".len()..]).unwrap();
        assert_eq!(event["seq"], 2);
        assert_eq!(event["payload"]["changes"]["status"]["to"], "in_progress");
        drop(stream);

        // Reconnecting with Last-Event-ID resumes right after it.
        app.set_item(&app.admin, &id, &item, "done").await.expect(200);
        let mut resumed = app
            .client
            .get(app.url(&path))
            .bearer_auth(&app.admin)
            .header("last-event-id", "2")
            .send()
            .await
            .unwrap();
        let mut text = String::new();
        read_until(&mut resumed, &mut text, "id: 3\n").await;
        assert!(!text.contains("id: 1\n") && !text.contains("id: 2\n"), "no duplicates: {text}");

        app.send(Method::GET, "/api/v1/runs/00000000-0000-0000-0000-000000000000/events/stream", Some(&app.admin), None, &[])
            .await
            .expect_problem(404, "not_found");
        let bad = app.client.get(app.url(&path)).bearer_auth(&app.admin).header("last-event-id", "x").send().await.unwrap();
        assert_eq!(bad.status().as_u16(), 400);
    }

    async fn ops_endpoints_and_the_openapi_document_are_served(app) {
        let health = app.send(Method::GET, "/healthz", None, None, &[]).await.expect(200);
        assert_eq!(health.json["status"], "ok");
        app.send(Method::GET, "/readyz", None, None, &[]).await.expect(200);
        let doc = app.send(Method::GET, "/api-docs/openapi.json", None, None, &[]).await.expect(200);
        assert!(doc.json["openapi"].as_str().unwrap().starts_with("3.1"));
        assert!(doc.json["paths"]["/api/v1/runs/{run_id}/transitions"].is_object());
        let ui = app.send(Method::GET, "/docs/", None, None, &[]).await.expect(200);
        assert!(ui.text.contains("swagger"), "Swagger UI is served");
    }
}

/// A run's row held from outside the server (PostgreSQL: its row lock; SQLite: the write
/// lock), so that the server's changes to it wait.
struct RunHold {
    release: std::sync::mpsc::Sender<()>,
    db_url: String,
}

impl RunHold {
    fn take(db_url: &str, run_id: &str) -> Self {
        let url = shipshape_store::DbUrl::parse(db_url).unwrap();
        let hold = match url {
            shipshape_store::DbUrl::Postgres(_) => {
                format!("BEGIN; SELECT id FROM runs WHERE id = '{run_id}' FOR UPDATE;")
            }
            shipshape_store::DbUrl::Sqlite(_) => "BEGIN IMMEDIATE;".to_owned(),
        };
        let (taken, held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut conn = shipshape_store::db::establish(&url).unwrap();
            diesel::connection::SimpleConnection::batch_execute(&mut conn, &hold).unwrap();
            taken.send(()).unwrap();
            let _ = released.recv();
            diesel::connection::SimpleConnection::batch_execute(&mut conn, "ROLLBACK").unwrap();
        });
        held.recv().unwrap();
        RunHold {
            release,
            db_url: db_url.to_owned(),
        }
    }

    /// Waits until `n` of the server's statements wait for the hold (PostgreSQL says so;
    /// on SQLite, where they retry, a request is given time to reach it).
    async fn wait_for_waiters(&self, n: i64) {
        #[derive(diesel::QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let url = shipshape_store::DbUrl::parse(&self.db_url).unwrap();
        if matches!(url, shipshape_store::DbUrl::Sqlite(_)) {
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            return;
        }
        let mut conn = shipshape_store::db::establish(&url).unwrap();
        for _ in 0..200 {
            let waiting: Waiting = diesel::RunQueryDsl::get_result(
                diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                ),
                &mut conn,
            )
            .unwrap();
            if waiting.n >= n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{n} statements never waited for the run");
    }

    fn release(self) {
        self.release.send(()).unwrap();
    }
}
