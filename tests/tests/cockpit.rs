//! The run page as a cockpit, in a real browser on SQLite and PostgreSQL: a bar that stays in
//! view with the stage, what is settled and how much blocks the next step; a status reached
//! with the keyboard waits for Enter and keeps focus, and type-ahead works; every save says
//! where it stands (saving, slow, saved, not saved with the reason and a retry); approval
//! items do not offer "Done", probe items only what their rule allows.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use serde_json::{Value, json};
use shipshape_tests::browser::{Browser, item, row, started_run};
use shipshape_tests::{ADMIN_PASSWORD, Backend, TestApp, items};

fn reference(i: &Value) -> String {
    i["reference"].as_str().unwrap().to_owned()
}

async fn the_run_page_works_as_a_cockpit(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (_, run_id) = started_run(&app).await;
    let run = app.run(&app.admin, &run_id).await;

    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    let blockers = run["transitions"][0]["blockers"].as_array().unwrap().len();
    b.wait_text(
        ".runbar .next",
        &format!("Next: Advance to deploying — {blockers} blocking"),
    )
    .await;
    let applicable = run["progress"]["applicable"].as_i64().unwrap();
    b.wait_text(".runbar .settled", &format!("0/{applicable} settled"))
        .await;

    b.wait_text(".runbar .run-status", "Preparing").await;
    // The bar stays in view at the bottom of the checklist.
    b.js("window.scrollTo(0, document.body.scrollHeight);", vec![])
        .await;
    let top = b
        .js(
            "return document.querySelector('.runbar').getBoundingClientRect().top;",
            vec![],
        )
        .await;
    assert!(
        top.as_f64().is_some_and(|t| (0.0..2.0).contains(&t)),
        "{top}"
    );

    // The keyboard on a status control: ↓ waits for Enter, focus stays, type-ahead works.
    let select = format!("{} select[name=status]", row("3.2.2"));
    b.js(
        "document.querySelector(arguments[0]).focus();",
        vec![json!(select)],
    )
    .await;
    b.press("\u{e015}").await; // ArrowDown
    b.wait_text(
        &format!("{} .save-state", row("3.2.2")),
        "Press Enter or Set",
    )
    .await;
    let focused = b
        .js(
            "return document.activeElement === document.querySelector(arguments[0]);",
            vec![json!(select)],
        )
        .await;
    assert_eq!(focused, json!(true), "focus stays on the status control");
    assert_eq!(
        item(&app.run(&app.admin, &run_id).await, "3.2.2")["status"],
        "pending",
        "not saved before Enter"
    );
    b.press("\u{e007}").await; // Enter
    b.wait_text(&format!("{} .save-state", row("3.2.2")), "Saved")
        .await;
    assert_eq!(
        item(&app.run(&app.admin, &run_id).await, "3.2.2")["status"],
        "in_progress"
    );
    b.press("b").await;
    b.wait_text(&format!("{} .save-state", row("3.2.2")), "mark it Blocked")
        .await;
    b.click(&format!("{} button.state-action", row("3.2.2")))
        .await;
    b.wait_text(&format!("{} .badge", row("3.2.2")), "Blocked")
        .await;

    // A refused save says why and offers a retry; a slow one says so.
    b.find(&format!("{} button.state-action[hidden]", row("1.1.4")))
        .await;
    b.choose(&format!("{} select[name=status]", row("1.1.4")), "done")
        .await;
    b.wait_text(&format!("{} .save-state", row("1.1.4")), "Not saved")
        .await;
    b.wait_text(&format!("{} .error", row("1.1.4")), "evidence")
        .await;
    b.find(&format!(
        "{} button.state-action:not([hidden])",
        row("1.1.4")
    ))
    .await;
    b.js(
        "const f = window.fetch; window.fetch = (...a) => \
         ((a[0] instanceof Request ? a[0].method : a[1] && a[1].method) === 'PATCH' \
         ? new Promise(r => setTimeout(r, 4500)).then(() => f(...a)) : f(...a));",
        vec![],
    )
    .await;
    b.choose(&format!("{} select[name=status]", row("2.3.1")), "done")
        .await;
    b.wait_text(&format!("{} .save-state", row("2.3.1")), "Saving")
        .await;
    b.wait_text(&format!("{} .save-state", row("2.3.1")), "Still saving")
        .await;
    b.wait_text(&format!("{} .save-state", row("2.3.1")), "Saved")
        .await;
    // The bar follows: one item settled.
    b.wait_text(".runbar .settled", &format!("1/{applicable} settled"))
        .await;

    // An approval item offers no "Done": it is done through its sign-offs.
    let offered = b
        .js(
            "return [...document.querySelectorAll(arguments[0] + ' option')].filter(o => !o.hidden).map(o => o.value);",
            vec![json!(row("1.3.3"))],
        )
        .await;
    assert_eq!(
        offered,
        json!(["pending", "in_progress", "blocked", "failed", "skipped"])
    );
    // A probe item follows its check: people only waive it.
    let probe = items(&run)
        .into_iter()
        .find(|i| i["kind"] == "probe")
        .map(|i| reference(&i))
        .unwrap();
    // Its status as the page shows it, and the statuses it offers, read together.
    let seen = b
        .js(
            "return [document.querySelector(arguments[0]).dataset.status, \
             [...document.querySelectorAll(arguments[0] + ' option')].filter(o => !o.hidden).map(o => o.value)];",
            vec![json!(row(&probe))],
        )
        .await;
    assert_ne!(seen[0], "skipped");
    assert_eq!(seen[1], json!([seen[0], "skipped"]), "{seen}");
    b.quit().await;
}

shipshape_tests::in_the_browser!(the_run_page_works_as_a_cockpit);
