//! Insights over real HTTP, on SQLite and PostgreSQL: the DORA keys from runs that
//! completed and rolled back (with commit times set by a tool), compared with the period
//! before and banded; checklist analytics that count skips, waivers, refused and overridden
//! gates, time in progress, decisions, and the skips that preceded a rollback, with the runs
//! behind a number; both as CSV; the demo history; and bad input answered as problems or as
//! empty reports that say so.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use chrono::{Datelike, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use shipshape_tests::{Backend, EDULIBRA, TestApp, item_by_title, items};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Takes a started run into deploying, decides a rollback and finishes it; then unlocks the
/// environment the rollback locked.
async fn roll_back(app: &TestApp, rm: &str, run: &str, environment: &str) {
    app.finish_gate(rm, run, "deploy").await;
    app.decide(rm, run, "go_no_go", "go").await.expect(201);
    app.transition(rm, run, "advance").await.expect(200);
    app.decide(rm, run, "deployment_checkpoint", "rollback")
        .await
        .expect(201);
    app.transition(rm, run, "finish_rollback").await.expect(200);
    unlock(app, rm, environment).await;
}

/// Lifts the lock a rollback took on the environment.
async fn unlock(app: &TestApp, rm: &str, environment: &str) {
    let env = app
        .get(rm, &format!("/api/v1/environments/{environment}"))
        .await
        .expect(200)
        .json;
    app.patch(
        rm,
        &format!(
            "/api/v1/environments/{environment}/locks/{}",
            env["lock"]["id"].as_str().unwrap()
        ),
        json!({"note": "Looked at it"}),
        None,
    )
    .await
    .expect(200);
}

async fn delivery(app: &TestApp, query: &str) -> Value {
    app.get(&app.admin, &format!("/api/v1/insights/delivery?{query}"))
        .await
        .expect(200)
        .json
}

async fn delivery_metrics_count_completions_rollbacks_and_commit_times_against_the_period_before(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let rm = app.admin.clone();
    // A tool creates the run with the commit it deploys, made three hours ago.
    let committed = Utc::now() - chrono::Duration::hours(3);
    let first = app
        .post(
            &rm,
            "/api/v1/runs",
            json!({
                "template_id": EDULIBRA,
                "product": "Insights",
                "release_version": "1.0.0",
                "environment": "production",
                "commit_sha": "0123456789ABCDEF0123456789abcdef01234567",
                "committed_at": committed.to_rfc3339_opts(SecondsFormat::Secs, true),
            }),
        )
        .await
        .expect(201)
        .json;
    assert_eq!(
        first["commit_sha"], "0123456789abcdef0123456789abcdef01234567",
        "kept lowercased"
    );
    let first = id(&first);
    app.transition(&rm, &first, "start").await.expect(200);
    app.complete(&rm, &first).await;

    // The second is rolled back; the third, whose commit a tool sets afterwards, completes.
    let second = id(&app.create_run(&rm, "Insights", "production").await);
    app.transition(&rm, &second, "start").await.expect(200);
    roll_back(&app, &rm, &second, "production").await;
    let third = id(&app.create_run(&rm, "Insights", "production").await);
    let patched = app
        .patch(
            &rm,
            &format!("/api/v1/runs/{third}"),
            json!({"commit_sha": "abc1234", "committed_at": (Utc::now() - chrono::Duration::hours(30)).to_rfc3339()}),
            None,
        )
        .await
        .expect(200)
        .json;
    assert_eq!(patched["commit_sha"], "abc1234");
    let events = app.events(&third).await;
    let updated = events.last().unwrap();
    assert_eq!(updated["type"], "run_updated");
    assert_eq!(updated["payload"]["changes"]["commit_sha"]["to"], "abc1234");
    assert!(updated["payload"]["changes"]["committed_at"]["to"].is_string());
    app.transition(&rm, &third, "start").await.expect(200);
    app.complete(&rm, &third).await;
    // Another product in staging, to be counted apart.
    let other = id(&app.create_run(&rm, "Catalogue", "staging").await);
    app.transition(&rm, &other, "start").await.expect(200);
    app.complete(&rm, &other).await;

    let report = delivery(&app, "product=Insights").await;
    assert_eq!(report["empty"], false);
    assert_eq!(report["period"]["days"], 90);
    assert_eq!(report["previous_period"]["days"], 90);
    let overall = &report["overall"];
    assert_eq!(overall["deployments"], 2);
    assert_eq!(overall["failures"], 1);
    let frequency = &overall["deployment_frequency"];
    let per_week = frequency["value"].as_f64().unwrap();
    assert!((per_week - 2.0 / (90.0 / 7.0)).abs() < 1e-9, "{frequency}");
    assert_eq!(frequency["band"], "low");
    assert_eq!(frequency["previous"], 0.0);
    let cfr = &overall["change_failure_rate"];
    assert!(
        (cfr["value"].as_f64().unwrap() - 100.0 / 3.0).abs() < 1e-9,
        "{cfr}"
    );
    assert_eq!(cfr["band"], "low");
    assert_eq!(cfr["sample"], 3);
    assert!(cfr["previous"].is_null(), "nothing finished before: {cfr}");
    assert!(cfr["note"].is_null());
    // Lead time: the median of 3 h and 30 h (and a bit, the runs' own time).
    let lead = &overall["lead_time"];
    assert_eq!(lead["sample"], 2);
    let hours = lead["value"].as_f64().unwrap();
    assert!((16.5..17.5).contains(&hours), "{lead}");
    assert_eq!(lead["band"], "elite");
    // The rollback: decided, then finished; the next completed run came after it.
    let restore = &overall["time_to_restore"];
    assert_eq!(restore["sample"], 1);
    assert!(restore["value"].as_f64().unwrap() < 0.1, "{restore}");
    assert_eq!(restore["band"], "elite");
    assert_eq!(overall["time_to_next_success"]["sample"], 1);
    let weeks = overall["weeks"].as_array().unwrap();
    assert_eq!(weeks.len(), 13);
    let this_week = weeks.last().unwrap();
    assert_eq!(this_week["deployments"], 2);
    assert_eq!(this_week["failures"], 1);
    assert_eq!(report["groups"].as_array().unwrap().len(), 1);
    assert!(
        report["methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["key"] == "change_failure_rate"
                && m["computed"].as_str().unwrap().contains("rollback"))
    );

    // Everything: two groups, per product and environment.
    let all = delivery(&app, "").await;
    assert_eq!(all["overall"]["deployments"], 3);
    let groups: Vec<(String, String)> = all["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["product"].as_str().unwrap().to_owned(),
                g["environment"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("Catalogue".to_owned(), "staging".to_owned()),
            ("Insights".to_owned(), "production".to_owned())
        ]
    );
    let staging = delivery(&app, "environment=staging").await;
    assert_eq!(staging["overall"]["deployments"], 1);
    assert!(staging["overall"]["change_failure_rate"]["value"].as_f64() == Some(0.0));

    // A period before the runs: nothing finished in it (nor before it), and it says so.
    let today = Utc::now().date_naive();
    let earlier = delivery(
        &app,
        &format!(
            "from={}&to={}",
            today - chrono::Duration::days(20),
            today - chrono::Duration::days(1)
        ),
    )
    .await;
    assert_eq!(earlier["empty"], true);
    assert!(
        earlier["message"]
            .as_str()
            .unwrap()
            .contains("nothing to measure")
    );
    assert_eq!(earlier["overall"]["deployments"], 0);
    assert!(earlier["overall"]["change_failure_rate"]["value"].is_null());

    // CSV, as a download.
    let csv = app
        .get(&rm, "/api/v1/insights/delivery?product=Insights&format=csv")
        .await
        .expect(200);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let text = csv.text;
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "product,environment,metric,value,unit,band,sample,previous,previous_sample"
    );
    assert!(
        text.contains(",,change_failure_rate,33.33,percent,low,3,,0"),
        "{text}"
    );
    assert!(text.contains("Insights,production,deployment_frequency,"));
}

async fn bad_input_is_a_problem_and_an_unknown_product_an_empty_report_that_says_so(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let rm = app.admin.clone();
    for (query, field) in [
        ("from=2026-02-01&to=2026-01-31", "to"),
        ("from=2020-01-01&to=2026-01-01", "from"),
        ("from=2026-13-01", "from"),
        ("to=tomorrow", "to"),
        ("from=1969-12-31&to=1970-01-05", "from"),
    ] {
        let problem = app
            .get(&rm, &format!("/api/v1/insights/delivery?{query}"))
            .await
            .expect_problem(422, "invalid_input");
        assert!(problem.text.contains(field), "{query}: {}", problem.text);
    }
    let long = app
        .get(
            &rm,
            "/api/v1/insights/delivery?from=2024-01-01&to=2026-01-02",
        )
        .await
        .expect_problem(422, "invalid_input");
    assert!(long.text.contains("two years"), "{}", long.text);
    app.get(&rm, "/api/v1/insights/delivery?format=xml")
        .await
        .expect(400);
    let nothing = delivery(&app, "product=Nobody%20Ships%20This").await;
    assert_eq!(nothing["empty"], true);
    assert!(
        nothing["message"]
            .as_str()
            .unwrap()
            .contains("`Nobody Ships This`")
    );
    let cfr = &nothing["overall"]["change_failure_rate"];
    assert!(cfr["value"].is_null() && cfr["band"].is_null(), "{cfr}");
    assert!(cfr["note"].as_str().unwrap().contains("no deployment"));
    let empty_csv = app
        .get(&rm, "/api/v1/insights/delivery?product=Nobody&format=csv")
        .await
        .expect(200)
        .text;
    assert!(
        empty_csv.contains(",,change_failure_rate,,percent,,0,,0"),
        "{empty_csv}"
    );
    // Checklist analytics: an unknown template or version is not found.
    app.get(
        &rm,
        "/api/v1/insights/checklist?template_id=00000000-0000-4000-8000-000000000000",
    )
    .await
    .expect_problem(404, "not_found");
    app.get(
        &rm,
        &format!("/api/v1/insights/checklist?template_id={EDULIBRA}&version=99"),
    )
    .await
    .expect_problem(404, "not_found");
    app.get(&rm, "/api/v1/insights/checklist").await.expect(400);
    let none = app
        .get(
            &rm,
            &format!("/api/v1/insights/checklist?template_id={EDULIBRA}&product=Nobody"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(none["empty"], true);
    assert!(none["failure_rate"].is_null());
    assert!(none["items"].as_array().unwrap().is_empty());
    // A run's commit: a hash and a past time, or a problem naming the field.
    let run = id(&app.create_run(&rm, "EduLibra", "qa").await);
    for (body, field) in [
        (json!({"commit_sha": "not-a-sha"}), "commit_sha"),
        (json!({"commit_sha": "abc"}), "commit_sha"),
        (
            json!({"committed_at": (Utc::now() + chrono::Duration::days(1)).to_rfc3339()}),
            "committed_at",
        ),
    ] {
        let problem = app
            .patch(&rm, &format!("/api/v1/runs/{run}"), body, None)
            .await
            .expect_problem(422, "invalid_input");
        assert!(problem.text.contains(field), "{}", problem.text);
    }
    // Reading insights takes runs:read.
    app.send(Method::GET, "/api/v1/insights/delivery", None, None, &[])
        .await
        .expect_problem(401, "unauthorized");
}

async fn checklist_analytics_count_skips_gates_times_and_the_skips_before_a_rollback(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let rm = app.admin.clone();
    let skipped_title = "Release notes detailing";
    let timed_title = "Final testing and validation";

    // A run that is refused a move while items are open, skips an item, then rolls back.
    let failed = id(&app.create_run(&rm, "EduLibra", "production").await);
    app.transition(&rm, &failed, "start").await.expect(200);
    let run = app.run(&rm, &failed).await;
    let timed = item_by_title(&run, timed_title);
    app.set_item(&rm, &failed, &id(&timed), "in_progress")
        .await
        .expect(200);
    let refused = app.transition(&rm, &failed, "advance").await.expect(409);
    let blocking: Vec<String> = refused.json["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["item_id"].as_str().map(str::to_owned))
        .collect();
    assert!(blocking.contains(&id(&timed)));
    // Refused twice: still one run in which it blocked.
    app.transition(&rm, &failed, "advance").await.expect(409);
    app.finish_gate(&rm, &failed, "deploy").await;
    let skip = item_by_title(&run, skipped_title);
    app.patch(
        &rm,
        &format!("/api/v1/runs/{failed}/items/{}", id(&skip)),
        json!({"status": "skipped", "reason": "Notes come later this time"}),
        None,
    )
    .await
    .expect(200);
    app.decide(&rm, &failed, "go_no_go", "go").await.expect(201);
    app.transition(&rm, &failed, "advance").await.expect(200);
    app.decide(&rm, &failed, "deployment_checkpoint", "rollback")
        .await
        .expect(201);
    app.transition(&rm, &failed, "finish_rollback")
        .await
        .expect(200);
    unlock(&app, &rm, "production").await;

    // A run that completes everything, overriding nothing.
    let good = id(&app.create_run(&rm, "EduLibra", "production").await);
    app.transition(&rm, &good, "start").await.expect(200);
    app.complete(&rm, &good).await;
    // Its close items are done after it finished (its numbers change after the fact).
    app.finish_gate(&rm, &good, "close").await;

    // A run forced past its deploy gate (break-glass), then rolled back.
    let forced = id(&app.create_run(&rm, "EduLibra", "staging").await);
    app.transition(&rm, &forced, "start").await.expect(200);
    app.decide(&rm, &forced, "go_no_go", "go").await.expect(201);
    app.post(
        &rm,
        &format!("/api/v1/runs/{forced}/transitions"),
        json!({"action": "advance", "force": true, "reason": "Outage fix, now"}),
    )
    .await
    .expect(200);
    app.decide(&rm, &forced, "deployment_checkpoint", "rollback")
        .await
        .expect(201);
    app.transition(&rm, &forced, "finish_rollback")
        .await
        .expect(200);

    let report = app
        .get(
            &rm,
            &format!("/api/v1/insights/checklist?template_id={EDULIBRA}"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(report["empty"], false);
    assert_eq!(report["runs"], 3);
    assert_eq!(report["failed_runs"], 2);
    let listed = report["items"].as_array().unwrap();
    let find = |prefix: &str| {
        listed
            .iter()
            .find(|i| i["title"].as_str().unwrap().starts_with(prefix))
            .unwrap()
            .clone()
    };
    let notes = find(skipped_title);
    assert_eq!(notes["runs"], 3);
    assert_eq!(notes["skipped"], 1);
    assert_eq!(notes["waived"], 1, "a required item skipped is waived");
    assert_eq!(notes["skipped_then_failed"], 1);
    assert_eq!(notes["failure_rate_when_skipped"], 100.0);
    assert_eq!(notes["overridden"], 1, "the forced run went past it");
    let testing = find(timed_title);
    assert_eq!(testing["timed"], 1, "put in progress, then done, once");
    assert!(testing["mean_in_progress_minutes"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        testing["blocked"], 2,
        "refused in one run, overridden in another"
    );
    assert_eq!(testing["overridden"], 1);
    let risks: Vec<&str> = report["skipped_before_rollback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert!(risks[0].starts_with(skipped_title), "{risks:?}");
    let approvals: Vec<&Value> = listed.iter().filter(|i| i["kind"] == "approval").collect();
    assert!(!approvals.is_empty());
    assert!(
        approvals
            .iter()
            .any(|i| i["approvals"].as_u64().unwrap() >= 1
                && i["mean_approval_wait_minutes"].as_f64().is_some())
    );
    let points = report["decision_points"].as_array().unwrap();
    let go_no_go = points.iter().find(|p| p["key"] == "go_no_go").unwrap();
    assert_eq!(go_no_go["title"], "Go/No-Go");
    assert_eq!(
        (go_no_go["decisions"].as_u64(), go_no_go["go"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(go_no_go["timed"], 3);
    let checkpoint = points
        .iter()
        .find(|p| p["key"] == "deployment_checkpoint")
        .unwrap();
    assert_eq!(checkpoint["rollback"], 2);

    // The same numbers from the items themselves: a period of a few days holds no whole
    // week, so it is not read from the weekly sums.
    let today = Utc::now().date_naive();
    let days = app
        .get(
            &rm,
            &format!(
                "/api/v1/insights/checklist?template_id={EDULIBRA}&from={}&to={today}",
                today - chrono::Duration::days(3)
            ),
        )
        .await
        .expect(200)
        .json;
    // …and from the weekly sums alone: this week and the one before, whole.
    let monday = today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let weeks = app
        .get(
            &rm,
            &format!(
                "/api/v1/insights/checklist?template_id={EDULIBRA}&from={}&to={}",
                monday - chrono::Duration::days(7),
                monday + chrono::Duration::days(6)
            ),
        )
        .await
        .expect(200)
        .json;
    for answer in [&days, &weeks] {
        assert_eq!(answer["items"], report["items"]);
        assert_eq!(answer["decision_points"], report["decision_points"]);
        assert_eq!(
            answer["skipped_before_rollback"],
            report["skipped_before_rollback"]
        );
    }

    // Only staging: the forced run.
    let staging = app
        .get(
            &rm,
            &format!("/api/v1/insights/checklist?template_id={EDULIBRA}&environment=staging"),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(staging["runs"], 1);

    // The runs behind a number.
    let behind = app
        .get(
            &rm,
            &format!(
                "/api/v1/insights/checklist/runs?template_id={EDULIBRA}&reference={}&filter=skipped",
                notes["reference"].as_str().unwrap()
            ),
        )
        .await
        .expect(200)
        .json;
    let runs = behind["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["run_id"], failed.as_str());
    assert_eq!(runs[0]["item_status"], "skipped");
    assert_eq!(runs[0]["skip_reason"], "Notes come later this time");
    let blocked = app
        .get(
            &rm,
            &format!(
                "/api/v1/insights/checklist/runs?template_id={EDULIBRA}&reference={}&filter=blocked",
                testing["reference"].as_str().unwrap()
            ),
        )
        .await
        .expect(200)
        .json;
    let mut blocked_runs: Vec<&str> = blocked["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    blocked_runs.sort_unstable();
    let mut expected = vec![failed.as_str(), forced.as_str()];
    expected.sort_unstable();
    assert_eq!(blocked_runs, expected);
    let slow = app
        .get(
            &rm,
            &format!(
                "/api/v1/insights/checklist/runs?template_id={EDULIBRA}&reference={}&filter=slow",
                testing["reference"].as_str().unwrap()
            ),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(slow["runs"][0]["run_id"], failed.as_str());
    assert!(slow["runs"][0]["in_progress_minutes"].as_f64().is_some());
    app.get(
        &rm,
        &format!(
            "/api/v1/insights/checklist/runs?template_id={EDULIBRA}&reference=1.1.1&filter=nope"
        ),
    )
    .await
    .expect(400);

    // CSV: one row per item, the header first.
    let csv = app
        .get(
            &rm,
            &format!("/api/v1/insights/checklist?template_id={EDULIBRA}&format=csv"),
        )
        .await
        .expect(200)
        .text;
    let run = app.run(&rm, &good).await;
    let template_items = items(&run)
        .iter()
        .filter(|i| i["title"] != "Review the emergency override")
        .count();
    assert_eq!(csv.lines().count(), 1 + template_items);
    assert!(csv.starts_with("reference,title,kind,gate,required,runs,skipped,waived"));
}

async fn the_demo_history_fills_insights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let config = shipshape_api::config::Config::for_database(&app.db_url);
    tokio::task::spawn_blocking(move || shipshape_api::server::seed_demo(&config, 240, 120))
        .await
        .unwrap()
        .unwrap();
    let report = delivery(&app, "").await;
    let overall = &report["overall"];
    let deployments = overall["deployments"].as_u64().unwrap();
    let failures = overall["failures"].as_u64().unwrap();
    assert!(deployments > 100, "{overall}");
    assert!(failures > 0 && failures < deployments, "{overall}");
    for metric in [
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "time_to_restore",
    ] {
        assert!(overall[metric]["value"].is_number(), "{metric}: {overall}");
        assert!(overall[metric]["band"].is_string(), "{metric}");
    }
    assert!(report["groups"].as_array().unwrap().len() >= 3);
    let checklist = app
        .get(
            &app.admin,
            &format!("/api/v1/insights/checklist?template_id={EDULIBRA}"),
        )
        .await
        .expect(200)
        .json;
    assert!(checklist["runs"].as_u64().unwrap() > 100);
    assert!(
        !checklist["skipped_before_rollback"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        checklist["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["mean_in_progress_minutes"].is_number())
    );
    // The seeded runs are ordinary finished runs: listed, readable.
    let page = app
        .get(&app.admin, "/api/v1/runs?limit=5")
        .await
        .expect(200)
        .json;
    let first = page["items"][0]["id"].as_str().unwrap().to_owned();
    app.run(&app.admin, &first).await;
}

shipshape_tests::each_backend!(
    delivery_metrics_count_completions_rollbacks_and_commit_times_against_the_period_before,
    bad_input_is_a_problem_and_an_unknown_product_an_empty_report_that_says_so,
    checklist_analytics_count_skips_gates_times_and_the_skips_before_a_rollback,
    the_demo_history_fills_insights,
);
