//! The run page as a cockpit, in a real browser on SQLite and PostgreSQL: a bar that stays in
//! view with the stage, what is settled and how much blocks the next step; filters (blocking
//! the next step, open, mine); several items marked done at once, each its own change, those
//! refused named with the server's reason; shortcuts (j/k/c/x/d/?); a status reached with the
//! keyboard waits for Enter and keeps focus, and type-ahead works; every save says where it
//! stands (saving, slow, saved, not saved with the reason and a retry); approval items do not
//! offer "Done", probe items only what their rule allows.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use serde_json::{Value, json};
use shipshape_tests::browser::{Browser, item, row, started_run};
use shipshape_tests::{ADMIN_PASSWORD, Backend, TestApp, items};

/// The references of the rows the checklist shows.
async fn shown_rows(b: &Browser) -> Vec<String> {
    let refs = b
        .js(
            "return [...document.querySelectorAll('li.item')].filter(r => r.offsetParent !== null).map(r => r.dataset.ref);",
            vec![],
        )
        .await;
    serde_json::from_value(refs).unwrap()
}

/// Waits until the checklist shows exactly `expected` rows (a filter has applied).
async fn wait_rows(b: &Browser, expected: &[String]) {
    for _ in 0..100 {
        if shown_rows(b).await == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(shown_rows(b).await, expected);
}

/// The references of the items blocking the run's next step forward, from the API.
fn blocking(run: &Value) -> Vec<String> {
    let next = run["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] != "abort")
        .unwrap();
    next["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["kind"] == "item")
        .map(|b| b["reference"].as_str().unwrap().to_owned())
        .collect()
}

/// The references of the rows picked.
async fn picked_rows(b: &Browser) -> Value {
    b.js(
        "return [...document.querySelectorAll('li.item button.pick[aria-pressed=true]')].map(c => c.closest('li').dataset.ref);",
        vec![],
    )
    .await
}

fn reference(i: &Value) -> String {
    i["reference"].as_str().unwrap().to_owned()
}

async fn the_run_page_works_as_a_cockpit(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (_, run_id) = started_run(&app).await;
    // Assigning to oneself takes a place on the team.
    app.add_member(&run_id, "admin").await;
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
    b.assert_accessible("the run page").await;
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

    // Filters: blocking the next step, open.
    let blocking_refs = blocking(&run);
    b.click("#show-blocking").await;
    wait_rows(&b, &blocking_refs).await;
    assert_eq!(
        b.js(
            "return [...document.querySelectorAll('.runbar .filters button')].map(b => b.getAttribute('aria-pressed'));",
            vec![]
        )
        .await,
        json!(["false", "false", "false", "true"])
    );
    let open: Vec<String> = items(&run)
        .iter()
        .filter(|i| i["applicable"] == true && i["status"] != "done" && i["status"] != "skipped")
        .map(reference)
        .collect();
    b.click("#show-open").await;
    wait_rows(&b, &open).await;
    assert_eq!(open.len() as i64, applicable);

    // Several at once: every blocking item that is done by hand, each its own change; the
    // ones the server refuses (evidence required) named with its reason, still selected.
    b.click("#show-blocking").await;
    wait_rows(&b, &blocking_refs).await;
    b.click("#pick-mode").await;
    b.click(".bulk button.pick-shown").await;
    let by_hand: Vec<Value> = items(&run)
        .into_iter()
        .filter(|i| blocking_refs.contains(&reference(i)) && i["kind"] == "manual")
        .filter(|i| i["record"] != "retrospective")
        .collect();
    b.wait_text(".bulk .picked", &format!("{} selected", by_hand.len()))
        .await;
    b.assert_accessible("the run page, picking several").await;
    assert_eq!(
        picked_rows(&b).await,
        json!(by_hand.iter().map(reference).collect::<Vec<_>>())
    );
    let events_before = app.events(&run_id).await.len();
    b.click(".bulk button.mark-done").await;
    let outcome = b.wait_text(".bulk-outcome", "marked done").await;
    let needs_evidence: Vec<String> = by_hand
        .iter()
        .filter(|i| i["evidence_required"] == true)
        .map(reference)
        .collect();
    assert!(!needs_evidence.is_empty());
    assert!(
        outcome.starts_with(&format!(
            "{} marked done",
            by_hand.len() - needs_evidence.len()
        )),
        "{outcome}"
    );
    for r in &needs_evidence {
        assert!(outcome.contains(r.as_str()), "{r} named: {outcome}");
    }
    assert!(
        outcome.contains("evidence"),
        "the server's reason: {outcome}"
    );
    b.wait_text(
        ".bulk .picked",
        &format!("{} selected", needs_evidence.len()),
    )
    .await;
    assert_eq!(picked_rows(&b).await, json!(needs_evidence));
    let after = app.run(&app.admin, &run_id).await;
    for i in &by_hand {
        let now = item(&after, &reference(i));
        let expected = if needs_evidence.contains(&reference(i)) {
            "pending"
        } else {
            "done"
        };
        assert_eq!(now["status"], expected, "{}", reference(i));
    }
    let updates = app.events(&run_id).await[events_before..]
        .iter()
        .filter(|e| e["type"] == "item_updated")
        .count();
    assert_eq!(
        updates,
        by_hand.len() - needs_evidence.len(),
        "one event each"
    );
    b.click(".bulk button.pick-none").await;
    assert_eq!(
        picked_rows(&b).await,
        json!([]),
        "stopping leaves nothing picked"
    );
    // The rows marked done left the "blocking" filter, and the bar's count followed.
    wait_rows(&b, &blocking(&after)).await;
    let left = after["transitions"][0]["blockers"]
        .as_array()
        .unwrap()
        .len();
    b.wait_text(".runbar .next", &format!("— {left} blocking"))
        .await;

    // Shortcuts: j and k move between the rows shown, c assigns, x picks, d marks done, ?
    // lists them.
    b.click("#show-all").await;
    b.js("document.activeElement.blur();", vec![]).await;
    b.press("j").await;
    assert_eq!(b.focused_row().await.as_deref(), Some("1.1.1"));
    b.press("jj").await;
    assert_eq!(b.focused_row().await.as_deref(), Some("1.1.3"));
    b.press("k").await;
    assert_eq!(b.focused_row().await.as_deref(), Some("1.1.2"));
    b.press("jjj").await;
    assert_eq!(b.focused_row().await.as_deref(), Some("1.2.1"));
    b.press("c").await;
    b.wait_text(&format!("{} .assignee", row("1.2.1")), "admin")
        .await;
    b.press("x").await;
    b.wait_text(".bulk .picked", "1 selected").await;
    assert_eq!(picked_rows(&b).await, json!(["1.2.1"]));
    b.click(".bulk button.pick-none").await;
    b.click("#show-mine").await;
    wait_rows(&b, &["1.2.1".to_owned()]).await;
    b.click("#show-all").await;
    b.js(
        "document.querySelector(arguments[0]).focus();",
        vec![json!(row("3.2.1"))],
    )
    .await;
    b.press("d").await;
    b.wait_text(&format!("{} .badge", row("3.2.1")), "Done")
        .await;
    b.wait_text(&format!("{} .save-state", row("3.2.1")), "Saved")
        .await;
    assert_eq!(
        item(&app.run(&app.admin, &run_id).await, "3.2.1")["status"],
        "done"
    );
    b.js("document.activeElement.blur();", vec![]).await;
    b.press("?").await;
    b.wait_text(".shortcuts", "mark the item done").await;
    b.assert_accessible("the run page, with its shortcuts listed")
        .await;

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
    b.assert_accessible("the run page, a save refused").await;
    b.find(&format!(
        "{} button.state-action:not([hidden])",
        row("1.1.4")
    ))
    .await;
    // The editor gives the evidence and marks the item done in one change.
    b.click(&format!("{} button.edit", row("1.1.4"))).await;
    b.fill(
        &format!("{} form.editor textarea[name=evidence]", row("1.1.4")),
        "Backup job https://backups.example/42",
    )
    .await;
    b.click(&format!("{} form.editor button.save-done", row("1.1.4")))
        .await;
    b.wait_text(&format!("{} .badge", row("1.1.4")), "Done")
        .await;
    let backup = item(&app.run(&app.admin, &run_id).await, "1.1.4");
    assert_eq!(backup["evidence"][0]["url"], "https://backups.example/42");
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
    // The bar follows: the count of settled items includes it.
    let progress = app.run(&app.admin, &run_id).await["progress"].clone();
    let settled = progress["done"].as_i64().unwrap() + progress["skipped"].as_i64().unwrap();
    b.wait_text(
        ".runbar .settled",
        &format!("{settled}/{applicable} settled"),
    )
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

    // The accessibility checker sees a broken rule when there is one.
    b.js(
        "const i = document.createElement('img'); i.src = '/nothing.png'; document.body.appendChild(i);",
        vec![],
    )
    .await;
    let found = b.accessibility_violations().await;
    assert!(
        found.iter().any(|v| v.starts_with("image-alt")),
        "{found:?}"
    );
    b.quit().await;
}

async fn the_team_and_the_schedule_are_changed_on_the_page(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (run, run_id) = started_run(&app).await;
    app.add_member(&run_id, "admin").await;
    let approver = app.user("ada", "approver").await;
    let migration = reference(&shipshape_tests::item_by_title(
        &run,
        "Data migration scripts",
    ));
    app.sign(
        &approver,
        &run_id,
        item(&run, &migration)["id"].as_str().unwrap(),
        "approve",
    )
    .await
    .expect(201);

    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.wait_text(&format!("{} .badge", row(&migration)), "Done")
        .await;

    // A new release version: the page says which sign-offs it invalidated.
    b.click("#edit-schedule").await;
    b.fill("form.schedule input[name=release_version]", "2.0.1")
        .await;
    b.fill("form.schedule input[name=expected_downtime]", "20")
        .await;
    b.click("form.schedule button[type=submit]").await;
    let said = b.wait_text("form.schedule .saved", "Saved").await;
    assert!(said.contains("invalidated 1 sign-off(s)"), "{said}");
    assert!(said.contains(&migration), "{said}");
    b.wait_text("h1", "2.0.1").await;
    b.assert_accessible("the run page, its schedule edited")
        .await;
    b.wait_text(&format!("{} .badge", row(&migration)), "In progress")
        .await;
    let now = app.run(&app.admin, &run_id).await;
    assert_eq!(now["release_version"], "2.0.1");
    assert_eq!(now["expected_downtime_minutes"], 20);

    // People are chosen from a list that narrows as one types; a member is taken off the
    // team after saying what that does.
    b.click("button.add-member").await;
    b.find("datalist#people option[value=ada]").await;
    b.fill("input[name=member_username]", "ada").await;
    b.fill("input[name=member_role]", "approver on call").await;
    b.click("form[aria-label='Add a team member'] button[type=submit]")
        .await;
    b.wait_text(".team", "ada — approver on call").await;
    // The item editor offers the team as assignees.
    b.click(&format!("{} button.edit", row("1.1.1"))).await;
    b.find(&format!("{} datalist option[value=ada]", row("1.1.1")))
        .await;
    b.press("\u{e00c}").await;
    b.click("li[data-member=ada] button.remove-member").await;
    b.wait_text(".confirm", "Remove ada from the team?").await;
    b.assert_accessible("the run page, the team's form asking first")
        .await;
    b.click(".confirm button.confirm-go").await;
    for _ in 0..50 {
        if !b.text(".team").await.unwrap_or_default().contains("ada") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!b.text(".team").await.unwrap_or_default().contains("ada"));
    let members = app
        .get(&app.admin, &format!("/api/v1/runs/{run_id}/members"))
        .await
        .expect(200)
        .json;
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["username"] != "ada")
    );
    b.quit().await;
}

async fn finished_runs_are_found_in_the_history(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (aborted, aborted_id) = started_run(&app).await;
    app.transition(&app.admin, &aborted_id, "abort")
        .await
        .expect(200);
    let other = app.create_run(&app.admin, "Payroll", "staging").await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    assert_eq!(aborted["product"], "EduLibra");

    let b = Browser::open(&app.base).await;
    b.goto("/").await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    // What waits on the person comes first on the dashboard.
    b.wait_text("main h2", "Waiting on me").await;
    b.click("nav a[href='/runs']").await;
    b.wait_text("h1", "All runs").await;
    b.find(&format!("tr[data-run='{aborted_id}']")).await;
    b.find(&format!("tr[data-run='{other_id}']")).await;
    b.assert_accessible("the run history").await;
    // Searched: in any case.
    b.fill("input[name=q]", "PAYROLL").await;
    b.click("form[aria-label='Find runs'] button[type=submit]")
        .await;
    wait_runs(&b, std::slice::from_ref(&other_id)).await;
    // Filtered by status: the finished run is found.
    b.set_value("input[name=q]", "").await;
    b.choose("select[name=status]", "aborted").await;
    b.click("form[aria-label='Find runs'] button[type=submit]")
        .await;
    wait_runs(&b, std::slice::from_ref(&aborted_id)).await;
    b.wait_text(&format!("tr[data-run='{aborted_id}']"), "Aborted")
        .await;
    b.quit().await;
}

/// Waits until the history lists exactly these runs.
async fn wait_runs(b: &Browser, expected: &[String]) {
    let read = || async {
        let ids = b
            .js(
                "return [...document.querySelectorAll('table.runs tr[data-run]')].map(r => r.dataset.run);",
                vec![],
            )
            .await;
        serde_json::from_value::<Vec<String>>(ids).unwrap()
    };
    for _ in 0..100 {
        if read().await == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(read().await, expected);
}

/// Waits until the decision form `form` shows `expected` as its criteria's results (some
/// fill themselves in from what the server measures) and returns their observed values.
async fn wait_results(b: &Browser, form: &str, expected: &[&str]) -> Value {
    let found = b
        .js(
            "const until = Date.now() + 15000;
             const [css, want] = [arguments[0], JSON.stringify(arguments[1])];
             return new Promise(done => (function look() {
                 const f = document.querySelector(css);
                 const v = f ? [...f.querySelectorAll('select[name=criterion_result]')].map(s => s.value) : [];
                 const o = f ? [...f.querySelectorAll('input[name=criterion_observed]')].map(i => i.value) : [];
                 if (JSON.stringify(v) === want || Date.now() > until) done({v, o}); else setTimeout(look, 100);
             })());",
            vec![json!(form), json!(expected)],
        )
        .await;
    if found["v"] != json!(expected) {
        panic!("{found}; the page: {}", b.page_text().await);
    }
    found["o"].clone()
}

/// Waits until the run's bar names the next step and how much blocks it.
async fn wait_next(b: &Browser, next: &str, blocking: usize) {
    b.wait_text(
        ".runbar .next",
        &format!("Next: {next} — {blocking} blocking"),
    )
    .await;
}

/// The EduLibra run from start to closed, worked in the browser by a release manager and an
/// approver, counting every click, text typed and key pressed (signing in aside): under 40.
async fn the_edulibra_run_is_worked_to_its_close_in_under_40_interactions(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    // The environment's base URL is the test's healthy target: probes pass on schedule.
    app.serve_probes(&run).await;
    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    let approver = Browser::open(&app.base).await;
    approver.goto(&format!("/runs/{run_id}")).await;
    approver
        .sign_in("signing-approver", shipshape_tests::USER_PASSWORD)
        .await;
    let signing_in = b.interactions() + approver.interactions();
    let mut steps: Vec<(&str, usize)> = Vec::new();
    let counted =
        |b: &Browser, approver: &Browser| b.interactions() + approver.interactions() - signing_in;

    // Preparing: every manual item at once, the two backups with their evidence, three
    // sign-offs (the approver's from their own browser), the Go/No-Go, advance.
    b.click("[data-action=start] button").await;
    b.wait_text(".runbar .run-status", "Preparing").await;
    b.click("#show-blocking").await;
    b.click("#pick-mode").await;
    b.click(".bulk button.pick-shown").await;
    b.click(".bulk button.mark-done").await;
    b.wait_text(".bulk-outcome", "marked done").await;
    // The two backups were refused for want of evidence: it is given where that is said.
    b.find(".bulk-outcome form.give-evidence").await;
    b.assert_accessible("the run page, evidence asked for where it was refused")
        .await;
    for r in ["1.1.4", "1.3.2"] {
        let fix = format!(".bulk-outcome li[data-ref='{r}'] form.give-evidence");
        b.fill(
            &format!("{fix} input[name=evidence]"),
            "Restore test https://backups.example/edulibra/4.2.0",
        )
        .await;
        b.click(&format!("{fix} button[type=submit]")).await;
        b.wait_text(&format!("{} .badge", row(r)), "Done").await;
    }
    b.wait_text(".bulk .picked", "0 selected").await;
    b.click(&format!("{} button.sign-off", row("2.1.1"))).await;
    b.click(&format!("{} button.approve", row("2.1.1"))).await;
    for r in ["1.3.3", "2.1.1"] {
        approver.click(&format!("{} button.sign-off", row(r))).await;
        approver.click(&format!("{} button.approve", row(r))).await;
        approver
            .wait_text(&format!("{} .badge", row(r)), "Done")
            .await;
    }
    // The Go/No-Go: the criteria the checklist answers are filled in, met.
    b.click("[data-point=go_no_go] button.decide").await;
    let form = "[data-point=go_no_go] form";
    let observed = wait_results(&b, form, &["met", "met", "met", "unknown"]).await;
    let deploy_gated = items(&run).iter().filter(|i| i["gate"] == "deploy").count();
    assert_eq!(
        observed,
        json!([
            format!("{deploy_gated} of {deploy_gated} done or waived"),
            "2 of 2 done or waived",
            "1 of 1 done or waived",
            ""
        ])
    );
    b.choose(
        &format!("{form} select[aria-label='Result: No sev-1 incident open']"),
        "met",
    )
    .await;
    b.click(&format!("{form} input[type=radio][value=go]"))
        .await;
    b.fill(
        &format!("{form} textarea[name=rationale]"),
        "Checklist green, no incident open.",
    )
    .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_text("[data-point=go_no_go] .outcome", "Go").await;
    b.click("[data-action=advance] button").await;
    b.wait_text(".runbar .run-status", "Deploying").await;
    steps.push(("preparing", counted(&b, &approver)));

    // Deploying: the three items of the deployment itself, advance.
    wait_next(&b, "Advance to verifying", 3).await;
    b.click(".bulk button.pick-shown").await;
    b.wait_text(".bulk .picked", "3 selected").await;
    b.click(".bulk button.mark-done").await;
    b.wait_text(".bulk-outcome", "3 marked done").await;
    b.click("[data-action=advance] button").await;
    b.wait_text(".runbar .run-status", "Verifying").await;
    steps.push(("deploying", counted(&b, &approver)));

    // Verifying: the manual checks; the probes pass on schedule; the verification decision,
    // whose two criteria nobody measured ask a confirmation of the go.
    b.click(".bulk button.pick-shown").await;
    b.wait_text(".bulk .picked", "3 selected").await;
    b.click(".bulk button.mark-done").await;
    b.wait_text(".bulk-outcome", "3 marked done").await;
    b.click("[data-point=post_deployment_verification] button.decide")
        .await;
    let form = "[data-point=post_deployment_verification] form";
    wait_results(&b, form, &["met", "unknown", "met", "unknown"]).await;
    b.click(&format!("{form} input[type=radio][value=go]"))
        .await;
    b.fill(
        &format!("{form} textarea[name=rationale]"),
        "Probes green; dashboards quiet.",
    )
    .await;
    b.click(&format!("{form} button[type=submit]")).await;
    let question = b
        .wait_text(&format!("{form} .confirm"), "Record Go anyway?")
        .await;
    assert!(
        question.contains("Error rate below 1% for 10 minutes; No sev-1 issue open"),
        "{question}"
    );
    b.assert_accessible("the run page, a go asking its confirmation")
        .await;
    b.click(&format!("{form} .confirm button.confirm-go")).await;
    b.wait_text("[data-point=post_deployment_verification] .outcome", "Go")
        .await;
    wait_next(&b, "Complete the run", 0).await;
    b.click("[data-action=complete] button").await;
    b.wait_text(".runbar .run-status", "Completed").await;
    steps.push(("verifying", counted(&b, &approver)));

    // Completed: the two success notices, the retrospective, close.
    b.click(".bulk button.pick-shown").await;
    b.wait_text(".bulk .picked", "2 selected").await;
    b.click(".bulk button.mark-done").await;
    b.wait_text(".bulk-outcome", "2 marked done").await;
    b.click("button.retro-toggle").await;
    b.fill(
        ".retrospective textarea[name=lessons]",
        "Backups took longest; start them earlier.",
    )
    .await;
    b.click("button.publish-retro").await;
    b.wait_text(".retro-status", "Published").await;
    wait_next(&b, "Close the run", 0).await;
    b.click("[data-action=close] button").await;
    b.wait_text(".runbar", "Closed").await;
    steps.push(("completed and closed", counted(&b, &approver)));

    let total = counted(&b, &approver);
    println!("{total} interactions, by the end of each stage: {steps:?}");
    assert!(total < 40, "{total} interactions: {steps:?}");
    let done = app.run(&app.admin, &run_id).await;
    assert_eq!(done["status"], "completed");
    assert!(done["closed_at"].is_string());
    assert!(
        items(&done)
            .iter()
            .filter(|i| i["applicable"] == true)
            .all(|i| i["status"] == "done"),
        "every applicable item done"
    );
    let decisions = app
        .get(&app.admin, &format!("/api/v1/runs/{run_id}/decisions"))
        .await
        .expect(200)
        .json;
    let confirmed: Vec<(&str, bool)> = decisions
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["point_key"].as_str().unwrap(),
                d["unmet_confirmed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        confirmed,
        [("go_no_go", false), ("post_deployment_verification", true)]
    );
    b.click("button.decision-log-toggle").await;
    b.wait_text(
        "ol.decisions",
        "Go at “Post-deployment verification” — confirmed with criteria not met or unknown",
    )
    .await;
    b.quit().await;
    approver.quit().await;
}

shipshape_tests::in_the_browser!(
    the_edulibra_run_is_worked_to_its_close_in_under_40_interactions,
    the_run_page_works_as_a_cockpit,
    the_team_and_the_schedule_are_changed_on_the_page,
    finished_runs_are_found_in_the_history,
);
