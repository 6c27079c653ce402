//! The run page in a real browser, on SQLite and PostgreSQL: the run and its log are asked
//! for alongside the page's code, not after it; the item editor takes focus and closes with Escape;
//! someone else's change to another field of an item is merged, not shown as a conflict;
//! aborting asks first and says what it does; a viewer sees what blocks the run but no
//! controls, an engineer off the team none either, an approver no sign-off of their own work; a rolled-back run shows its rollback rationale and does not ask for statements
//! of success.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use serde_json::json;
use shipshape_tests::browser::{Browser, item, row, started_run};
use shipshape_tests::{ADMIN_PASSWORD, Backend, TestApp, USER_PASSWORD, items};

async fn a_run_page_loads_its_run_with_its_code_merges_other_fields_and_asks_before_aborting(
    backend: Backend,
) {
    let app = TestApp::spawn_web(backend).await;
    let (run, run_id) = started_run(&app).await;

    let b = Browser::open(&app.base).await;
    b.goto("/").await;
    b.sign_in("admin", ADMIN_PASSWORD).await;

    // A cold load of the run page: the run and its log are asked for before the page's code
    // has arrived, each once (the page takes the answers already on their way).
    b.goto(&format!("/runs/{run_id}")).await;
    b.wait_text(".run-status", "Preparing").await;
    // The whole log has arrived: as many events as it had when counted here, or more (a
    // scheduled check may add one meanwhile).
    let logged = app.events(&run_id).await.len();
    let shown = b
        .wait_at_least(
            "button.timeline-toggle",
            "Number((e.innerText.match(/\\((\\d+) events\\)/) || [])[1])",
            logged as i64,
        )
        .await;
    assert!(
        shown >= logged as i64,
        "the timeline counts {shown} events; the log had {logged}"
    );
    let timing = b
        .js(
            "const e = performance.getEntriesByType('resource'); \
             const run = e.filter(x => x.name.endsWith('/api/v1/runs/' + arguments[0])); \
             const log = e.filter(x => x.name.includes('/api/v1/runs/' + arguments[0] + '/events?after=0&')); \
             const code = e.find(x => /split_run[^/]*\\.wasm$/.test(x.name)); \
             return [run.length, log.length, run.length ? run[0].startTime : null, \
                     log.length ? log[0].startTime : null, code ? code.responseEnd : null];",
            vec![json!(run_id)],
        )
        .await;
    assert_eq!((&timing[0], &timing[1]), (&json!(1), &json!(1)), "{timing}");
    let (asked, logged, arrived) = (timing[2].as_f64(), timing[3].as_f64(), timing[4].as_f64());
    assert!(
        asked.is_some() && arrived.is_some() && asked < arrived && logged < arrived,
        "the run was asked for at {asked:?} ms, its log at {logged:?} ms, the page's code had \
         arrived at {arrived:?} ms"
    );
    b.find("a.skip[href='#checklist']").await;

    // The editor takes focus when it opens; Escape closes it and focus returns to its item.
    b.click(&format!("{} button.edit", row("1.3.1"))).await;
    b.find(&format!("{} form.editor", row("1.3.1"))).await;
    let name = b.js("return document.activeElement.name;", vec![]).await;
    assert_eq!(name, json!("assignee"));
    b.press("\u{e00c}").await;
    assert!(
        b.text(&format!("{} form.editor", row("1.3.1")))
            .await
            .is_none()
    );
    assert_eq!(b.focused_row().await.as_deref(), Some("1.3.1"));

    // Someone else sets the status while this person writes a note: both stand, no conflict.
    b.click(&format!("{} button.edit", row("1.3.1"))).await;
    b.fill(
        &format!("{} textarea[name=note]", row("1.3.1")),
        "Migration dry run on staging",
    )
    .await;
    let id = item(&run, "1.3.1")["id"].as_str().unwrap().to_owned();
    app.set_item(&app.admin, &run_id, &id, "in_progress")
        .await
        .expect(200);
    b.wait_text(&format!("{} .badge", row("1.3.1")), "In progress")
        .await;
    b.click(&format!("{} form.editor button[type=submit]", row("1.3.1")))
        .await;
    b.wait_text(
        &format!("{} .note", row("1.3.1")),
        "Migration dry run on staging",
    )
    .await;
    assert!(
        b.text(&format!("{} .conflict", row("1.3.1")))
            .await
            .is_none()
    );
    let stored = item(&app.run(&app.admin, &run_id).await, "1.3.1");
    assert_eq!(stored["status"], "in_progress");
    assert_eq!(stored["note"], "Migration dry run on staging");
    // The same field changed by both is still a conflict, shown with both values.
    b.click(&format!("{} button.edit", row("1.3.1"))).await;
    b.fill(
        &format!("{} textarea[name=note]", row("1.3.1")),
        "Dry run done twice",
    )
    .await;
    let current = app.run(&app.admin, &run_id).await;
    let at = items(&current)
        .iter()
        .position(|i| i["reference"] == "1.3.1")
        .unwrap();
    app.note(&current, at, "Dry run skipped").await;
    b.wait_text(&format!("{} .note", row("1.3.1")), "Dry run skipped")
        .await;
    b.click(&format!("{} form.editor button[type=submit]", row("1.3.1")))
        .await;
    let conflict = b
        .wait_text(
            &format!("{} .conflict", row("1.3.1")),
            "Changed by someone else",
        )
        .await;
    assert!(conflict.contains("Dry run done twice"), "{conflict}");

    // Aborting asks first and says what it does; keeping the run changes nothing.
    b.click("[data-action=abort] button.danger").await;
    b.wait_text(".confirm", "cannot be started again").await;
    b.click(".confirm button.keep").await;
    assert!(b.text(".confirm").await.is_none());
    assert_eq!(app.run(&app.admin, &run_id).await["status"], "preparing");

    // A viewer sees what blocks the run, not controls they may not use.
    app.user("vera", "viewer").await;
    b.js("localStorage.clear();", vec![]).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("vera", USER_PASSWORD).await;
    b.wait_text("[data-action=advance] .why", "not possible yet")
        .await;
    let controls = b
        .js(
            "return document.querySelectorAll('[data-action] button, li.item select, label:not([hidden]) > input[name=transition_reason], button.add-member:not([hidden])').length;",
            vec![],
        )
        .await;
    assert_eq!(controls, json!(0));

    // What others are offered follows the server's rules too. An engineer not on the team
    // may not change items: no status control, no "Run check", no sign-off. Once added to
    // the team, the status controls appear (the page follows the team's change).
    app.user("ezra", "engineer").await;
    b.js("localStorage.clear();", vec![]).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("ezra", USER_PASSWORD).await;
    b.wait_text("[data-action=advance] .why", "not possible yet")
        .await;
    let offered = "return document.querySelectorAll('li.item select, li.item button.run-check:not([hidden]), li.item button.sign-off:not([hidden])').length;";
    assert_eq!(b.js(offered, vec![]).await, json!(0));
    app.add_member(&run_id, "ezra").await;
    b.find(&format!("{} select", row("1.1.1"))).await;

    // An approver is not offered to sign off work they did (here: the item is assigned to
    // them), and is offered an approval item whose policy asks for an approver.
    app.user("alma", "approver").await;
    app.add_member(&run_id, "alma").await;
    let run = app.run(&app.admin, &run_id).await;
    let titled = |prefix: &str| {
        items(&run)
            .into_iter()
            .find(|i| i["title"].as_str().unwrap().starts_with(prefix))
            .unwrap()
    };
    let (migration, plan) = (
        titled("Data migration scripts"),
        titled("Detailed deployment plan"),
    );
    app.patch(
        &app.admin,
        &format!(
            "/api/v1/runs/{run_id}/items/{}",
            migration["id"].as_str().unwrap()
        ),
        json!({"assignee": "alma"}),
        None,
    )
    .await
    .expect(200);
    b.js("localStorage.clear();", vec![]).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("alma", USER_PASSWORD).await;
    let plan_row = row(plan["reference"].as_str().unwrap());
    let migration_row = row(migration["reference"].as_str().unwrap());
    b.find(&format!("{plan_row} button.sign-off:not([hidden])"))
        .await;
    b.wait_text(&format!("{migration_row} .assignee"), "alma")
        .await;
    assert!(
        b.text(&format!("{migration_row} button.sign-off:not([hidden])"))
            .await
            .is_none(),
        "no sign-off is offered on one's own work"
    );

    // Confirmed, the abort happens.
    b.js("localStorage.clear();", vec![]).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.click("[data-action=abort] button.danger").await;
    b.click(".confirm button.confirm-abort").await;
    b.wait_text(".run-status", "Aborted").await;
    assert_eq!(app.run(&app.admin, &run_id).await["status"], "aborted");
    b.quit().await;
}

async fn a_rolled_back_run_shows_why_and_does_not_ask_for_statements_of_success(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (_, run_id) = started_run(&app).await;
    app.finish_gate(&app.admin, &run_id, "deploy").await;
    app.decide(&app.admin, &run_id, "go_no_go", "go")
        .await
        .expect(201);
    app.transition(&app.admin, &run_id, "advance")
        .await
        .expect(200);
    app.post(
        &app.admin,
        &format!("/api/v1/runs/{run_id}/decisions"),
        json!({
            "point_key": "deployment_checkpoint",
            "outcome": "rollback",
            "rationale": "Error rate 7% after the switch",
        }),
    )
    .await
    .expect(201);
    app.transition(&app.admin, &run_id, "finish_rollback")
        .await
        .expect(200);

    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    let banner = b
        .wait_text(".banner.rollback", "Error rate 7% after the switch")
        .await;
    assert!(banner.contains("Deployment checkpoint"), "{banner}");

    // The statements of success do not apply and do not block closing; the contingency
    // review does.
    let run = app.run(&app.admin, &run_id).await;
    let success = items(&run)
        .into_iter()
        .find(|i| {
            i["title"]
                .as_str()
                .unwrap()
                .starts_with("Successful deployment")
        })
        .unwrap();
    let reference = success["reference"].as_str().unwrap();
    b.wait_text(
        &format!("{}.na .tags", row(reference)),
        "only after a successful deployment",
    )
    .await;
    let why = b
        .wait_text("[data-action=close] .why", "not possible yet")
        .await;
    assert!(!why.contains(reference), "{why}");
    assert!(why.contains("Post-contingency review"), "{why}");
    b.quit().await;
}

shipshape_tests::in_the_browser!(
    a_run_page_loads_its_run_with_its_code_merges_other_fields_and_asks_before_aborting,
    a_rolled_back_run_shows_why_and_does_not_ask_for_statements_of_success,
);
