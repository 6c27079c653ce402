//! The web app in a real browser: headless Chromium driving the built SPA against the real
//! server, on SQLite and PostgreSQL. A release team signs in, opens an EduLibra run, works
//! its items, is refused by a gate and sees the blockers, signs off an approval and records a
//! rollback decision; a change made in a second browser or through the API appears in the
//! first without a reload; an edit over someone else's change is shown as a conflict and can
//! be re-applied; a release manager forces a gate with a reason; an expired session returns to sign-in and back; templates import with a
//! preview and export; API tokens are created and revoked; a chat channel is subscribed, tested
//! and sent an announcement from the run page; a probe item is checked from the run page,
//! with its age and history, a decision deadline counts down, and measured criteria fill
//! themselves in; after a run the team logs and accepts an issue, publishes the
//! retrospective with an action item, proposes a template change an administrator accepts,
//! and prints the report.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use serde_json::{Value, json};
use shipshape_tests::browser::{Browser, item, row, started_run};
use shipshape_tests::receiver::Receiver;
use shipshape_tests::{ADMIN_PASSWORD, Backend, EDULIBRA, TestApp, USER_PASSWORD, items};

/// The reference of the item with this title prefix.
fn reference(run: &Value, title_prefix: &str) -> String {
    items(run)
        .into_iter()
        .find(|i| i["title"].as_str().unwrap().starts_with(title_prefix))
        .map(|i| i["reference"].as_str().unwrap().to_owned())
        .unwrap()
}

/// Ends the browser's session on the server (as expiry or a sign-out elsewhere would).
async fn end_session_on_the_server(app: &TestApp, b: &Browser) {
    let token = b
        .js("return localStorage.getItem('shipshape.token');", vec![])
        .await;
    app.send(
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(token.as_str().unwrap()),
        None,
        &[],
    )
    .await
    .expect(204);
}

/// Waits until the run page shows the run's latest version (or a later one: a scheduled
/// check may move the run on meanwhile). Clicking before then can miss: the page's layout
/// shifts as the changes arrive, and a click aimed at a button lands beside it.
async fn page_is_current(app: &TestApp, b: &Browser, run_id: &str) {
    let version = app.run(&app.admin, run_id).await["version"]
        .as_i64()
        .unwrap();
    let shown = b
        .wait_at_least(".run-head", "Number(e.dataset.version)", version)
        .await;
    assert!(
        shown >= version,
        "the run page shows version {shown}, the run is at {version}; the page: {}",
        b.page_text().await
    );
}

async fn a_release_team_works_a_run_through_to_a_rollback(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let b = Browser::open(&app.base).await;

    // Anyone not signed in is sent to sign in, and comes back where they wanted to go.
    b.goto("/runs/new").await;
    b.wait_text("h1", "Sign in").await;
    b.assert_accessible("the sign-in page").await;
    assert_eq!(b.path().await, "/login?next=%2Fruns%2Fnew");
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.wait_text("h1", "New run").await;
    b.assert_accessible("the new run form").await;

    // New run.
    b.fill("input[name=release_version]", "4.2.0").await;
    b.set_value("input[name=window_start]", "2026-12-01T18:00")
        .await;
    b.set_value("input[name=window_end]", "2026-12-01T20:00")
        .await;
    b.fill("input[name=downtime]", "15").await;
    b.click("form[aria-label='New run'] button[type=submit]")
        .await;
    b.wait_text(".run-status", "Planned").await;
    let path = b.path().await;
    let run_id = path.strip_prefix("/runs/").unwrap().to_owned();
    b.wait_text(".facts", "2026-12-01 18:00 UTC – 2026-12-01 20:00 UTC")
        .await;
    b.wait_text(".facts", "15 min").await;
    let run = app.run(&app.admin, &run_id).await;
    assert_eq!(run["release_version"], "4.2.0");
    assert_eq!(run["expected_downtime_minutes"], 15);
    assert_eq!(items(&run).len(), 33);

    b.click("[data-action=start] button").await;
    b.wait_text(".run-status", "Preparing").await;

    // What blocks the next step is shown before anyone clicks, and the button says why.
    let why = b
        .wait_text("[data-action=advance] .why", "not possible yet")
        .await;
    assert!(why.contains("1.1.1"), "{why}");
    assert!(why.contains("Go/No-Go"), "{why}");
    let advance = b.find("[data-action=advance] button").await;
    assert_eq!(
        advance.attr("aria-disabled").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        advance.attr("aria-describedby").await.unwrap().as_deref(),
        Some("why-advance")
    );

    // Join the team, then work items: a status, a note and evidence, a claim.
    b.click(".team-panel button.add-member").await;
    b.fill("input[name=member_username]", "admin").await;
    b.fill("input[name=member_role]", "release lead").await;
    b.click("form[aria-label='Add a team member'] button[type=submit]")
        .await;
    b.wait_text(".team", "admin — release lead").await;

    b.choose(&format!("{} select[name=status]", row("1.1.1")), "done")
        .await;
    b.wait_text(&format!("{} .badge", row("1.1.1")), "Done")
        .await;
    b.click(&format!("{} button.edit", row("1.1.2"))).await;
    b.fill(
        &format!("{} textarea[name=note]", row("1.1.2")),
        "Published on the wiki",
    )
    .await;
    b.fill(
        &format!("{} textarea[name=evidence]", row("1.1.2")),
        "Release notes https://wiki.example.com/release-4.2.0\nhttps://ci.example/4.2.0",
    )
    .await;
    b.click(&format!("{} form.editor button[type=submit]", row("1.1.2")))
        .await;
    b.wait_text(&format!("{} .note", row("1.1.2")), "Published on the wiki")
        .await;
    b.click(&format!("{} button.claim", row("1.1.3"))).await;
    b.wait_text(&format!("{} .assignee", row("1.1.3")), "admin")
        .await;

    let run = app.run(&app.admin, &run_id).await;
    assert_eq!(item(&run, "1.1.1")["status"], "done");
    assert_eq!(item(&run, "1.1.2")["note"], "Published on the wiki");
    assert_eq!(
        item(&run, "1.1.2")["evidence"],
        json!([
            {"label": "Release notes", "url": "https://wiki.example.com/release-4.2.0"},
            {"label": "Evidence", "url": "https://ci.example/4.2.0"},
        ])
    );
    b.wait_text(&format!("{} .item-meta", row("1.1.2")), "Release notes")
        .await;
    assert_eq!(item(&run, "1.1.3")["assignee"], "admin");

    // Refused by the gate: the server's answer lists every blocker. (Transitions name the
    // version the user saw, so wait until the page shows the latest.)
    page_is_current(&app, &b, &run_id).await;
    b.click("[data-action=advance] button").await;
    let refused = b.wait_text(".refused", "Refused").await;
    assert!(refused.contains("1.1.3"), "{refused}");
    assert!(
        !refused.contains("1.1.1 "),
        "a done item does not block: {refused}"
    );
    assert_eq!(app.run(&app.admin, &run_id).await["status"], "preparing");

    // Sign off an approval item (the admin did not work on it): the form opens on demand.
    let migration = reference(&run, "Data migration scripts");
    b.click(&format!("{} button.sign-off", row(&migration)))
        .await;
    b.click(&format!("{} button.approve", row(&migration)))
        .await;
    b.wait_text(&format!("{} .approval-state", row(&migration)), "Approved")
        .await;
    assert!(
        b.text(&format!(
            "{} button.sign-off:not([hidden])",
            row(&migration)
        ))
        .await
        .is_none(),
        "one who has signed is not offered to sign again"
    );
    b.wait_text(&format!("{} .badge", row(&migration)), "Done")
        .await;
    let run = app.run(&app.admin, &run_id).await;
    assert_eq!(item(&run, &migration)["approval"]["state"], "approved");

    // A tool finishes the preparation through the API; the page follows without a reload.
    app.finish_gate(&app.admin, &run_id, "deploy").await;
    app.decide(&app.admin, &run_id, "go_no_go", "go")
        .await
        .expect(201);
    app.transition(&app.admin, &run_id, "advance")
        .await
        .expect(200);
    b.wait_text(".run-status", "Deploying").await;

    // The deployment checkpoint: a criterion not met, the outcome rollback, a rationale.
    // The decision form opens on demand (its code is fetched then).
    b.click("[data-point=deployment_checkpoint] button.decide")
        .await;
    let form = "[data-point=deployment_checkpoint] form";
    b.choose(&format!("{form} select[name=criterion_result]"), "not_met")
        .await;
    b.fill(
        &format!("{form} input[name=criterion_observed]"),
        "error rate 7%",
    )
    .await;
    b.click(&format!("{form} input[value=rollback]")).await;
    b.fill(
        &format!("{form} textarea[name=rationale]"),
        "Error rate far above the threshold after the switch",
    )
    .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_text(".run-status", "Rolling back").await;
    // The log with every rationale opens on demand.
    b.wait_text("button.decision-log-toggle", "Decision log (2)")
        .await;
    b.click("button.decision-log-toggle").await;
    b.wait_text("ol.decisions", "Roll back at “Deployment checkpoint”")
        .await;
    b.wait_text("ol.decisions", "observed: error rate 7%").await;
    b.click("button.timeline-toggle").await;
    b.wait_text("ol.timeline", "decided Roll back").await;
    b.assert_accessible("a run rolling back, its decision log and timeline open")
        .await;

    let run = app.run(&app.admin, &run_id).await;
    assert_eq!(run["status"], "rolling_back");
    let decision = run["decisions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(decision["outcome"], "rollback");
    assert_eq!(decision["criteria"][0]["result"], "not_met");
    assert_eq!(decision["criteria"][0]["observed"], "error rate 7%");
    b.quit().await;
}

async fn a_change_made_elsewhere_appears_without_a_reload(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (run, run_id) = started_run(&app).await;
    app.user("erin", "engineer").await;
    app.add_member(&run_id, "erin").await;

    let first = Browser::open(&app.base).await;
    first.goto(&format!("/runs/{run_id}")).await;
    first.sign_in("admin", ADMIN_PASSWORD).await;
    first.wait_text(".link-state", "Live").await;
    // The timeline's sentences open on demand.
    first.click("button.timeline-toggle").await;
    first.wait_text("ol.timeline", "created").await;
    // The log the page opened with is not announced as news.
    assert_eq!(
        first.text(".visually-hidden[role=status]").await.as_deref(),
        Some("")
    );
    first
        .js("window.shipshapeKept = 'still here';", vec![])
        .await;

    let second = Browser::open(&app.base).await;
    second.goto(&format!("/runs/{run_id}")).await;
    second.sign_in("erin", USER_PASSWORD).await;
    second
        .choose(
            &format!("{} select[name=status]", row("1.2.1")),
            "in_progress",
        )
        .await;
    second
        .wait_text(&format!("{} .badge", row("1.2.1")), "In progress")
        .await;

    // The first browser shows the change, and the page was not reloaded.
    first
        .wait_text(&format!("{} .badge", row("1.2.1")), "In progress")
        .await;
    first.wait_text("ol.timeline", "erin updated 1.2.1").await;
    // A change through the API appears too.
    let item_id = item(&run, "1.2.2")["id"].as_str().unwrap().to_owned();
    app.set_item(&app.admin, &run_id, &item_id, "blocked")
        .await
        .expect(200);
    first
        .wait_text(&format!("{} .badge", row("1.2.2")), "Blocked")
        .await;
    second
        .wait_text(&format!("{} .badge", row("1.2.2")), "Blocked")
        .await;
    // The timeline lists the whole log once, newest first, and the status line (what
    // screen readers hear) tells the newest event.
    first
        .wait_text("ol.timeline li:first-child", "updated 1.2.2")
        .await;
    let seqs = first
        .js(
            "return [...document.querySelectorAll('ol.timeline li')].map(li => Number(li.dataset.seq));",
            vec![],
        )
        .await;
    let seqs: Vec<i64> = serde_json::from_value(seqs).unwrap();
    let events = app
        .get(&app.admin, &format!("/api/v1/runs/{run_id}/events"))
        .await
        .expect(200);
    let logged: Vec<i64> = events.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", events.text))
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .rev()
        .collect();
    assert_eq!(seqs, logged, "the timeline is the log, newest first");
    assert!(
        first
            .text(".visually-hidden[role=status]")
            .await
            .unwrap_or_default()
            .contains("updated 1.2.2")
    );
    assert_eq!(
        first.js("return window.shipshapeKept;", vec![]).await,
        json!("still here")
    );

    // The dashboard follows live runs too.
    first.click("nav a[href='/']").await;
    let before = first.wait_text("li.card", "Pre-Deployment Checklist").await;
    assert!(before.contains("0 of 10 settled"), "{before}");
    first
        .js("window.shipshapeKept = 'dashboard';", vec![])
        .await;
    let done_id = item(&run, "1.1.1")["id"].as_str().unwrap().to_owned();
    app.set_item(&app.admin, &run_id, &done_id, "done")
        .await
        .expect(200);
    first.wait_text("li.card", "1 of 10 settled").await;
    assert_eq!(
        first.js("return window.shipshapeKept;", vec![]).await,
        json!("dashboard")
    );
    first.quit().await;
    second.quit().await;
}

async fn one_stream_per_tab_serves_eight_live_runs_a_dashboard_and_a_run_page(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let mut runs = Vec::new();
    for i in 0..8 {
        let run = app
            .create_run(&app.admin, &format!("Service {i}"), "production")
            .await;
        let id = run["id"].as_str().unwrap().to_owned();
        app.transition(&app.admin, &id, "start").await.expect(200);
        runs.push((run, id));
    }
    let b = Browser::open(&app.base).await;
    b.goto("/").await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    for (_, id) in &runs {
        b.find(&format!("li.card[data-run='{id}']")).await;
    }
    let dashboard = b.driver.window().await.unwrap();

    // A run page in a second tab of the same browser.
    let (first_run, first_id) = &runs[0];
    let tab = b.driver.new_tab().await.unwrap();
    b.driver.switch_to_window(tab.clone()).await.unwrap();
    b.goto(&format!("/runs/{first_id}")).await;
    b.wait_text(".link-state", "Live").await;

    // One stream per tab, however many runs are live: the browser's six connections per
    // origin stay free for the pages' own requests.
    let open_streams = || async {
        let listed = app
            .get(&app.admin, "/api/v1/instances")
            .await
            .expect(200)
            .json;
        listed["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["streams"].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(open_streams().await, 2, "one stream per tab");

    // Every page keeps updating: the run page with a change to its run...
    let item_id = item(first_run, "1.1.2")["id"].as_str().unwrap().to_owned();
    app.set_item(&app.admin, first_id, &item_id, "blocked")
        .await
        .expect(200);
    b.wait_text(&format!("{} .badge", row("1.1.2")), "Blocked")
        .await;
    // ...and keeps loading: another screen, and back, in the same tab.
    b.click("nav a[href='/templates']").await;
    b.wait_text("h1", "Templates").await;
    b.driver.back().await.unwrap();
    b.wait_text(".link-state", "Live").await;

    // The dashboard in the first tab shows a change to the last of the eight runs.
    b.driver.switch_to_window(dashboard).await.unwrap();
    let (last_run, last_id) = &runs[7];
    let done_id = item(last_run, "1.1.1")["id"].as_str().unwrap().to_owned();
    app.set_item(&app.admin, last_id, &done_id, "done")
        .await
        .expect(200);
    b.wait_text(&format!("li.card[data-run='{last_id}']"), "1 of 10 settled")
        .await;
    // And it still loads a run page of its own.
    b.click(&format!("li.card[data-run='{}'] a", runs[3].1))
        .await;
    b.wait_text(".link-state", "Live").await;
    assert!(
        open_streams().await <= 2,
        "navigating reuses the tab's stream"
    );
    b.quit().await;
}

async fn an_edit_over_someone_elses_change_is_shown_and_can_be_reapplied(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (run, run_id) = started_run(&app).await;
    let done = item(&run, "1.1.1")["id"].as_str().unwrap().to_owned();
    app.set_item(&app.admin, &run_id, &done, "done")
        .await
        .expect(200);
    let target = item(&run, "1.2.3");
    let item_path = format!(
        "/api/v1/runs/{run_id}/items/{}",
        target["id"].as_str().unwrap()
    );

    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    // Controls start at the item's state.
    b.wait_text(&format!("{} select[name=status]", row("1.1.1")), "done")
        .await;
    b.click(&format!("{} button.edit", row("1.2.3"))).await;
    b.fill(
        &format!("{} textarea[name=note]", row("1.2.3")),
        "Alerts routed to #edulibra-ops",
    )
    .await;

    // Meanwhile someone else writes a note through the API.
    let current = app.get(&app.admin, &item_path).await.expect(200);
    app.patch(
        &app.admin,
        &item_path,
        json!({"note": "Pager rota confirmed"}),
        current.etag.as_deref(),
    )
    .await
    .expect(200);
    // Their note arrives live; the open editor keeps what the user typed.
    b.wait_text(&format!("{} .note", row("1.2.3")), "Pager rota confirmed")
        .await;
    let typed = b
        .js(
            "return document.querySelector(arguments[0]).value;",
            vec![json!(format!("{} textarea[name=note]", row("1.2.3")))],
        )
        .await;
    assert_eq!(typed, json!("Alerts routed to #edulibra-ops"));

    // Saving meets the newer version: shown, not dropped, not overwritten.
    b.click(&format!("{} form.editor button[type=submit]", row("1.2.3")))
        .await;
    let conflict = b
        .wait_text(
            &format!("{} .conflict", row("1.2.3")),
            "Changed by someone else",
        )
        .await;
    assert!(conflict.contains("Pager rota confirmed"), "{conflict}");
    assert!(
        conflict.contains("Alerts routed to #edulibra-ops"),
        "{conflict}"
    );
    let stored = app.get(&app.admin, &item_path).await.expect(200);
    assert_eq!(stored.json["note"], "Pager rota confirmed");

    b.click(&format!("{} button.reapply", row("1.2.3"))).await;
    b.wait_text(
        &format!("{} .note", row("1.2.3")),
        "Alerts routed to #edulibra-ops",
    )
    .await;
    let stored = app.get(&app.admin, &item_path).await.expect(200);
    assert_eq!(stored.json["note"], "Alerts routed to #edulibra-ops");
    assert!(
        b.text(&format!("{} .conflict", row("1.2.3")))
            .await
            .is_none()
    );

    // Errors are the server's words: a required item cannot be waived by a plain skip here
    // without a reason (the form asks for one first).
    b.choose(&format!("{} select[name=status]", row("1.2.1")), "skipped")
        .await;
    b.find(&format!("{} input[name=skip_reason]", row("1.2.1")))
        .await;
    b.quit().await;
}

async fn a_release_manager_forces_a_gate_with_a_reason(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (_, run_id) = started_run(&app).await;
    app.user("rhea", "release_manager").await;

    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("rhea", USER_PASSWORD).await;
    // A note half typed in an item's editor outlives the override, which adds a part to
    // the checklist.
    let note = format!("{} textarea[name=note]", row("1.2.1"));
    b.click(&format!("{} button.edit", row("1.2.1"))).await;
    b.fill(&note, "half-typed note").await;
    b.click(".break-glass summary").await;
    let force = "[data-force=advance]";
    assert!(
        !b.find(force).await.is_enabled().await.unwrap(),
        "no override without a reason"
    );
    b.fill(
        "textarea[name=force_reason]",
        "Security fix must ship tonight",
    )
    .await;
    page_is_current(&app, &b, &run_id).await;
    b.click(force).await;
    b.wait_text(".run-status", "Deploying").await;
    b.wait_text(".run-status", "Break-glass override in effect")
        .await;
    b.click("button.timeline-toggle").await;
    b.wait_text("ol.timeline", "forced “advance”").await;
    b.wait_text(".checklist", "Review the emergency override")
        .await;
    assert_eq!(b.text(&note).await.as_deref(), Some("half-typed note"));

    let run = app.run(&app.admin, &run_id).await;
    assert_eq!(run["status"], "deploying");
    assert_eq!(run["overridden"], true);
    b.quit().await;
}

async fn a_session_survives_a_reload_and_an_expired_one_returns_to_where_you_were(
    backend: Backend,
) {
    let app = TestApp::spawn_web(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "staging").await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let run_path = format!("/runs/{run_id}");

    let b = Browser::open(&app.base).await;
    b.goto("/login").await;
    // A refused sign-in says why; the message goes once the password is being typed again,
    // and a new attempt says what the server answers then.
    let error = "form[aria-label='Sign in'] .error";
    let page = &b;
    let shown = |css: &'static str| async move {
        page.js(
            "const e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null;",
            vec![json!(css)],
        )
        .await
    };
    b.fill("input[name=username]", "admin").await;
    b.fill("input[name=password]", "not-the-password").await;
    b.click("form[aria-label='Sign in'] button[type=submit]")
        .await;
    b.find(error).await;
    assert_eq!(shown(error).await, json!(true));
    b.fill("input[name=password]", "still-not-it").await;
    assert_eq!(shown(error).await, json!(false), "cleared while fixing");
    b.click("form[aria-label='Sign in'] button[type=submit]")
        .await;
    for _ in 0..50 {
        if shown(error).await == json!(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(shown(error).await, json!(true), "said again");
    // The tab has an icon.
    let icon = b
        .js(
            "return fetch(document.querySelector('link[rel=icon]').href).then(r => [r.status, r.headers.get('content-type')]);",
            vec![],
        )
        .await;
    assert_eq!(icon, json!([200, "image/svg+xml"]));
    b.goto("/login").await;
    // Keyboard only: type, Tab, type, Enter.
    let name = b.find("input[name=username]").await;
    name.click().await.unwrap();
    name.send_keys(format!("admin{}{ADMIN_PASSWORD}{}", '\u{e004}', '\u{e007}'))
        .await
        .unwrap();
    b.wait_text("[data-testid=whoami]", "admin").await;
    b.wait_text("h1", "Dashboard").await;
    b.assert_accessible("the dashboard").await;

    b.goto(&run_path).await;
    b.wait_text(".run-status", "Planned").await;
    b.driver.refresh().await.unwrap();
    b.wait_text(".run-status", "Planned").await;
    b.wait_text("[data-testid=whoami]", "admin").await;

    // A session that ends while a page is open: the page stays, with what the user typed,
    // under a sign-in dialog, and carries on after signing in again.
    b.click(&format!("{} button.edit", row("1.1.1"))).await;
    let note = format!("{} textarea[name=note]", row("1.1.1"));
    b.fill(&note, "Typed before the session ended").await;
    end_session_on_the_server(&app, &b).await;
    b.wait_text("[role=dialog]", "Your session has ended").await;
    b.fill("input[name=again_username]", "admin").await;
    b.fill("input[name=again_password]", ADMIN_PASSWORD).await;
    b.click("form[aria-label='Sign in again'] button[type=submit]")
        .await;
    b.wait_text("[data-testid=whoami]", "admin").await;
    assert!(b.text("[role=dialog]").await.is_none());
    assert_eq!(
        b.text(&note).await.unwrap(),
        "Typed before the session ended"
    );
    b.click(&format!("{} form.editor button[type=submit]", row("1.1.1")))
        .await;
    b.wait_text(
        &format!("{} .note", row("1.1.1")),
        "Typed before the session ended",
    )
    .await;

    // The session ends on the server (as when it expires); the next call finds out.
    end_session_on_the_server(&app, &b).await;
    b.driver.refresh().await.unwrap();
    b.wait_text("p.notice", "Your session has ended").await;
    assert_eq!(
        b.path().await,
        format!("/login?next={}", run_path.replace('/', "%2F"))
    );
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.wait_text(".run-status", "Planned").await;
    assert_eq!(b.path().await, run_path);

    // Signing out forgets the session.
    b.click("header button.link").await;
    b.wait_text("h1", "Sign in").await;
    assert_eq!(
        b.js("return localStorage.getItem('shipshape.token');", vec![])
            .await,
        Value::Null
    );
    b.quit().await;
}

async fn templates_import_with_a_preview_and_tokens_are_managed(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let b = Browser::open(&app.base).await;
    b.goto("/templates/import").await;
    b.sign_in("admin", ADMIN_PASSWORD).await;

    let markdown = "# Hotfix checklist <!-- shipshape name=\"Hotfix\" -->\n\n## Checklist\n\n### 1. Prepare\n- [ ] Patch reviewed. <!-- shipshape gate=deploy -->\n- [ ] Hotfix verified in production. <!-- shipshape gate=complete -->\n";
    b.fill(
        "textarea[name=markdown]",
        "# Broken\n- [ ] an item outside any section",
    )
    .await;
    b.wait_text(".preview", "cannot be imported").await;
    let import = b
        .find("form[aria-label='Import a template'] button[type=submit]")
        .await;
    assert!(
        !import.is_enabled().await.unwrap(),
        "invalid Markdown cannot be sent"
    );
    b.fill("textarea[name=markdown]", markdown).await;
    b.wait_text(".preview", "Hotfix — 1 parts, 2 items").await;
    b.wait_text(".preview", "Patch reviewed.").await;
    b.assert_accessible("a template's import, previewed").await;
    b.click("form[aria-label='Import a template'] button[type=submit]")
        .await;
    b.wait_text("h1", "Hotfix").await;
    b.click("button.export").await;
    b.wait_text("textarea.markdown", "- [ ] Hotfix verified in production.")
        .await;
    let templates = app.get(&app.admin, "/api/v1/templates").await.expect(200);
    assert!(
        templates
            .json
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "Hotfix"),
        "{}",
        templates.text
    );

    // Links move within the app: no page load, the navigation marks where you are, and
    // Back returns to the page before.
    b.js("window.stayed = true;", vec![]).await;
    b.click("header nav a[href='/templates']").await;
    b.wait_text("h1", "Templates").await;
    assert_eq!(
        b.text("header nav a[aria-current=page]").await.as_deref(),
        Some("Templates")
    );
    let name = b.text("main table a[href^='/templates/']").await.unwrap();
    b.click("main table a[href^='/templates/']").await;
    b.wait_text("h1", &name).await;
    b.assert_accessible("a template").await;
    let template_path = b.path().await;
    assert!(template_path.starts_with("/templates/"), "{template_path}");
    b.js("history.back();", vec![]).await;
    b.wait_text("h1", "Templates").await;
    assert_eq!(b.path().await, "/templates");
    assert_eq!(
        b.js("return window.stayed === true;", vec![]).await,
        json!(true),
        "following links reloaded the page"
    );

    // API tokens: created (the secret shown once), listed, revoked.
    b.click("nav a[href='/tokens']").await;
    b.fill("input[name=token_name]", "CI pipeline").await;
    b.click("form[aria-label='New token'] button[type=submit]")
        .await;
    let secret = b.wait_text(".secret-value", "ss_").await;
    b.assert_accessible("the tokens, a new secret shown").await;
    let me = app.get(secret.trim(), "/api/v1/runs").await;
    assert_eq!(me.status.as_u16(), 200, "the new token works");
    // Revoking asks first, saying what happens; keeping the token changes nothing.
    b.click("tr[data-token='CI pipeline'] button.revoke").await;
    b.wait_text(".confirm", "Every tool using it is refused")
        .await;
    b.assert_accessible("the tokens, a revocation asking first")
        .await;
    b.click(".confirm button.keep").await;
    assert!(b.text(".confirm").await.is_none());
    assert_eq!(
        app.get(secret.trim(), "/api/v1/runs").await.status.as_u16(),
        200,
        "kept"
    );
    b.click("tr[data-token='CI pipeline'] button.revoke").await;
    b.click(".confirm button.confirm-go").await;
    b.wait_text("tr[data-token='CI pipeline']", "Revoked").await;
    assert_eq!(
        app.get(secret.trim(), "/api/v1/runs").await.status.as_u16(),
        401
    );

    // Users: an admin adds one.
    b.click("nav a[href='/users']").await;
    b.fill("input[name=new_username]", "olivia").await;
    b.fill("input[name=new_password]", "olivia-password-123")
        .await;
    b.choose("select[name=new_role]", "approver").await;
    b.click("form[aria-label='New user'] button[type=submit]")
        .await;
    b.wait_text("tr[data-user=olivia]", "Active").await;
    let olivia = app.login("olivia", "olivia-password-123").await;

    // Changing a role asks first, naming both roles; keeping it changes nothing.
    let role = |users: &serde_json::Value| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == "olivia")
            .map(|u| u["role"].clone())
            .unwrap()
    };
    b.choose("tr[data-user=olivia] select", "viewer").await;
    b.wait_text(".confirm", "from approver to viewer").await;
    b.click(".confirm button.keep").await;
    b.wait_text("tr[data-user=olivia] select", "approver").await;
    assert_eq!(
        role(&app.get(&app.admin, "/api/v1/users").await.json),
        "approver"
    );
    b.choose("tr[data-user=olivia] select", "viewer").await;
    b.click(".confirm button.confirm-go").await;
    b.wait_text("tr[data-user=olivia] select", "viewer").await;
    assert_eq!(
        role(&app.get(&app.admin, "/api/v1/users").await.json),
        "viewer"
    );

    // Deactivating asks first and says what it does; confirmed, the user is out at once.
    b.click("tr[data-user=olivia] button.deactivate").await;
    b.wait_text(".confirm", "can no longer sign in").await;
    b.assert_accessible("the users, a deactivation asking first")
        .await;
    b.click(".confirm button.confirm-go").await;
    b.wait_text("tr[data-user=olivia]", "Deactivated").await;
    assert_eq!(app.get(&olivia, "/api/v1/runs").await.status.as_u16(), 401);
    b.quit().await;
}

/// Integrations and announcements: an admin subscribes a chat channel, sends it a test
/// event, reads the delivery log and redelivers; on a run, the announcement composer (fetched
/// when opened) drafts the schedule, sends it to the channel and completes the schedule item.
async fn a_chat_channel_is_subscribed_tested_and_sent_an_announcement(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.web_dir = shipshape_tests::browser::web_dir();
        c.outbound_allow = Some("127.0.0.1/32".into());
    })
    .await;
    let chat = Receiver::start().await;
    let url = format!("{}/chat", chat.url);
    let b = Browser::open(&app.base).await;
    b.goto("/integrations").await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.wait_text("h1", "Integrations").await;
    b.assert_accessible("the integrations").await;
    b.fill("input[name=hook_url]", &url).await;
    b.fill("input[name=hook_description]", "Release channel")
        .await;
    b.click("input[name=hook_chat]").await;
    b.click("input[name=hook_event][value=run_created]").await;
    b.click("form[aria-label='New subscription'] button[type=submit]")
        .await;
    let secret = b.wait_text(".secret-value", "whsec_").await;
    assert!(secret.trim().len() > 40, "{secret}");
    let card = format!("li[data-webhook='{url}']");
    b.wait_text(&card, "● Active").await;

    // A test event reaches the channel; the delivery log says so; a redelivery repeats it.
    b.click(&format!("{card} .actions button:nth-child(1)"))
        .await;
    let got = chat.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("Test event from Shipshape")
    );
    let started = std::time::Instant::now();
    loop {
        b.click(&format!("{card} .actions button:nth-child(2)"))
            .await;
        let shown = b
            .text(&format!("{card} table.deliveries"))
            .await
            .unwrap_or_default();
        if shown.contains("✓ Delivered") {
            assert!(
                shown.contains("webhook test") && shown.contains("HTTP 200"),
                "{shown}"
            );
            break;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "the log shows the delivery: {shown}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    b.click(&format!("{card} table.deliveries button")).await;
    let got = chat.wait_for(2, std::time::Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));

    // The announcement composer on a run in preparation.
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap();
    app.transition(&app.admin, run_id, "start")
        .await
        .expect(200);
    b.goto(&format!("/runs/{run_id}")).await;
    b.click("p.announce a").await;
    b.wait_text("h1", "Announce").await;
    b.assert_accessible("the announcement composer").await;
    b.wait_text(
        "textarea[name=announce_body]",
        "Expected downtime: about 15 minutes.",
    )
    .await;
    let subject = b
        .js(
            "return document.querySelector('input[name=announce_subject]').value;",
            vec![],
        )
        .await;
    assert_eq!(
        subject,
        json!("Planned deployment: EduLibra 4.2.0 to production on 2026-12-01 22:00 UTC")
    );
    let schedule = shipshape_tests::item_by_title(&run, "Deployment schedule is communicated");
    let chosen = b
        .js(
            "return document.querySelector('select[name=announce_item]').value;",
            vec![],
        )
        .await;
    assert_eq!(chosen, schedule["id"], "the schedule item is proposed");
    b.click("input[name=announce_to]").await;
    b.click("form[aria-label='Announcement'] button[type=submit]")
        .await;
    b.wait_text("form[aria-label='Announcement'] .notice", "Sent (event")
        .await;
    // The channel heard of the run's creation (it subscribed to that), then the announcement.
    let got = chat.wait_for(4, std::time::Duration::from_secs(10)).await;
    assert_eq!(got.len(), 4);
    assert!(
        got[2].json()["text"]
            .as_str()
            .unwrap()
            .starts_with("admin created the run")
    );
    assert_eq!(got[3].json()["text"], subject);
    let item = app
        .get(
            &app.admin,
            &format!(
                "/api/v1/runs/{run_id}/items/{}",
                schedule["id"].as_str().unwrap()
            ),
        )
        .await
        .expect(200)
        .json;
    assert_eq!(item["status"], "done");
    b.quit().await;
}

/// Screens other than sign-in are modules fetched when first opened (asked for as soon as
/// the address names them). One that cannot be fetched is reported on the page; the rest of
/// the app goes on working.
async fn a_probe_item_is_checked_from_the_run_page_and_deadlines_count_down(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    let health = reference(&run, "Pre-deployment health checks");
    // The target the test serves is down when the run starts: the schedule finds it so.
    app.serve_probes(&run).await;
    app.probe_target.route(
        "/healthz",
        shipshape_tests::receiver::Reply::status(503, "maintenance"),
    );
    app.transition(&app.admin, &run_id, "start")
        .await
        .expect(200);
    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    let probe = format!("{} .probe", row(&health));
    b.wait_text(&probe, &format!("{}/healthz", app.probe_target.url))
        .await;
    b.wait_text(&probe, "expected 200, got 503").await;
    b.wait_text(&probe, "ago: ✗ failed").await;
    b.wait_text(&format!("{} .badge", row(&health)), "Failed")
        .await;
    // The blockers of the next step say why.
    b.wait_text("[data-action=advance] .why", "expected 200, got 503")
        .await;

    // The target recovers; "Run check" from the page.
    app.probe_target.route(
        "/healthz",
        shipshape_tests::receiver::Reply::status(200, r#"{"status":"ok"}"#),
    );
    b.click(&format!("{} button.run-check", row(&health))).await;
    b.wait_text(&probe, "✓ passed").await;
    b.wait_text(&format!("{} .badge", row(&health)), "Done")
        .await;
    b.click(&format!("{} button.probe-history", row(&health)))
        .await;
    let history = b
        .wait_text(&format!("{probe} ol.probe-results"), "scheduled")
        .await;
    assert!(history.contains("✓ — HTTP 200 in "), "{history}");
    assert!(
        history.contains("✗ — expected 200, got 503 (scheduled)"),
        "{history}"
    );
    let run = app.run(&app.admin, &run_id).await;
    assert_eq!(item(&run, &health)["status"], "done");

    // The Go/No-Go's deadline counts down, with what happens when it passes.
    let deadline = b
        .wait_text("[data-point=go_no_go] .deadline", "Decide by")
        .await;
    assert!(deadline.contains("(in 1 h 59 min)"), "{deadline}");
    assert!(deadline.contains("then Hold is recorded"), "{deadline}");

    // At the post-deployment verification, the criteria probes measure fill themselves in.
    app.finish_gate(&app.admin, &run_id, "deploy").await;
    app.decide(&app.admin, &run_id, "go_no_go", "go")
        .await
        .expect(201);
    app.transition(&app.admin, &run_id, "advance")
        .await
        .expect(200);
    app.finish_gate(&app.admin, &run_id, "verify").await;
    app.transition(&app.admin, &run_id, "advance")
        .await
        .expect(200);
    app.finish_gate(&app.admin, &run_id, "complete").await;
    b.wait_text(".run-status", "Verifying").await;
    page_is_current(&app, &b, &run_id).await;
    b.click("[data-point=post_deployment_verification] button.decide")
        .await;
    b.find("[data-point=post_deployment_verification] button.decide[aria-expanded=true]")
        .await;
    let form = "[data-point=post_deployment_verification] form";
    b.find(&format!("{form} .measured")).await;
    let filled = b
        .js(
            "const f = document.querySelector(arguments[0]);
             const until = Date.now() + 10000;
             return new Promise(done => (function look() {
                 const v = [...f.querySelectorAll('select[name=criterion_result]')].map(s => s.value);
                 const o = [...f.querySelectorAll('input[name=criterion_observed]')].map(i => i.value);
                 if (v[0] === 'met' || Date.now() > until) done({v, o}); else setTimeout(look, 100);
             })());",
            vec![json!(form)],
        )
        .await;
    assert_eq!(
        filled["v"],
        json!(["met", "unknown", "met", "unknown"]),
        "{filled}"
    );
    assert_eq!(filled["o"][0], "4.2.0", "{filled}");
    b.quit().await;
}

async fn after_a_run_the_team_keeps_its_records_and_an_admin_accepts_its_lesson(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    app.user("bob", "engineer").await;
    let (run, run_id) = started_run(&app).await;
    app.add_member(&run_id, "bob").await;
    app.finish_gate(&app.admin, &run_id, "deploy").await;
    app.decide(&app.admin, &run_id, "go_no_go", "go")
        .await
        .expect(201);
    app.transition(&app.admin, &run_id, "advance")
        .await
        .expect(200);
    app.finish_gate(&app.admin, &run_id, "verify").await;
    app.transition(&app.admin, &run_id, "advance")
        .await
        .expect(200);
    app.finish_gate(&app.admin, &run_id, "complete").await;
    app.decide(&app.admin, &run_id, "post_deployment_verification", "go")
        .await
        .expect(201);
    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    b.sign_in("admin", ADMIN_PASSWORD).await;

    // A major issue is logged from the page; it stops the completion until accepted.
    b.click("button.issues-toggle").await;
    b.fill(
        "form.new-issue input[name=issue-title]",
        "Search returns stale results",
    )
    .await;
    b.choose("form.new-issue select[name=issue-severity]", "sev2")
        .await;
    b.click("form.new-issue button[type=submit]").await;
    b.wait_text(".issue-list", "#1 Search returns stale results")
        .await;
    b.wait_text("button.issues-toggle", "1 blocking completion")
        .await;
    b.wait_text("[data-action=complete] .why", "Issue #1").await;
    b.fill(
        "li.issue[data-number='1'] input.accept-reason",
        "fix ships in 4.2.1",
    )
    .await;
    b.click("li.issue[data-number='1'] button.accept-issue")
        .await;
    b.wait_text(
        "li.issue[data-number='1']",
        "Accepted by admin — fix ships in 4.2.1",
    )
    .await;
    app.transition(&app.admin, &run_id, "complete")
        .await
        .expect(200);
    b.wait_text(".run-status", "Completed").await;

    // The retrospective, with an action item for bob, published from the page.
    b.click("button.retro-toggle").await;
    b.fill(
        ".retrospective textarea[name=lessons]",
        "Warm the cache after reindexing.",
    )
    .await;
    b.fill(
        "form.new-action input[name=action-title]",
        "Automate the cache warm-up",
    )
    .await;
    b.fill("form.new-action input[name=action-assignee]", "bob")
        .await;
    let due = (chrono::Utc::now().date_naive() + chrono::Days::new(14)).to_string();
    b.set_value("form.new-action input[name=action-due]", &due)
        .await;
    b.click("form.new-action button[type=submit]").await;
    b.wait_text(".retrospective .action-item", "Automate the cache warm-up")
        .await;
    b.click("button.publish-retro").await;
    b.wait_text(".retro-status", "Published").await;
    let lessons = reference(&run, "Lessons learned");
    b.wait_text(&format!("{} .badge", row(&lessons)), "Done")
        .await;

    // A lesson proposed as a change to the template, shown as a diff.
    b.click("button.propose").await;
    let markdown = b
        .js(
            "const until = Date.now() + 10000;
             return new Promise(done => (function look() {
                 const t = document.querySelector('textarea[name=proposal-markdown]');
                 if ((t && t.value.length > 0) || Date.now() > until) done(t ? t.value : ''); else setTimeout(look, 100);
             })());",
            vec![],
        )
        .await;
    let edited = markdown.as_str().unwrap().replace(
        "### 2. Monitoring and Support\n",
        "### 2. Monitoring and Support\n- [ ] Cache warm-up is verified after reindexing. <!-- shipshape gate=complete -->\n",
    );
    assert_ne!(
        edited,
        markdown.as_str().unwrap(),
        "the template has the section"
    );
    b.set_value("textarea[name=proposal-markdown]", &edited)
        .await;
    b.fill("input[name=proposal-summary]", "Add a cache warm-up check")
        .await;
    b.click("form.proposal-form button[type=submit]").await;
    b.wait_text(".proposal-made", "Proposed: Add a cache warm-up check")
        .await;
    b.wait_text(
        "pre.diff",
        "+ - [ ] Cache warm-up is verified after reindexing.",
    )
    .await;

    // The report, ready to print.
    b.click("a.report-link").await;
    b.wait_text("h1", "Run report: EduLibra 4.2.0 → production")
        .await;
    b.assert_accessible("the run report").await;
    b.wait_text(
        ".report-issues",
        "#1 [sev2, open] Search returns stale results — accepted by admin",
    )
    .await;
    b.wait_text(".report-retro", "Warm the cache after reindexing.")
        .await;
    let head = app.events(&run_id).await.last().unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_owned();
    b.wait_text(".chain", &format!("head hash {head}; chain verified"))
        .await;

    // An administrator accepts the proposal as the template's next version.
    let before = app
        .get(&app.admin, &format!("/api/v1/templates/{EDULIBRA}"))
        .await
        .expect(200)
        .json["version"]
        .as_i64()
        .unwrap();
    b.goto("/templates").await;
    b.wait_text(".proposals", "Add a cache warm-up check").await;
    b.wait_text(".proposals pre.diff", "Cache warm-up is verified")
        .await;
    b.click(".proposals button.accept-proposal").await;
    b.wait_text("main table", &format!("v{}", before + 1)).await;
    b.click(&format!("main table a[href='/templates/{EDULIBRA}']"))
        .await;
    b.wait_text("p.source", "lessons of a run").await;
    b.wait_text(".outline", "Cache warm-up is verified after reindexing.")
        .await;
    b.quit().await;

    // bob finds the action item waiting on him.
    let b = Browser::open(&app.base).await;
    b.goto("/").await;
    b.sign_in("bob", USER_PASSWORD).await;
    b.wait_text(".pending", "Automate the cache warm-up").await;
    b.wait_text(".pending-action", &format!("due {due}")).await;
    b.quit().await;
}

async fn environments_are_kept_locked_and_frozen_and_the_calendar_shows_them(backend: Backend) {
    let app = TestApp::spawn_web(backend).await;
    let (run, run_id) = started_run(&app).await;
    assert_eq!(run["environment"], "production");
    let b = Browser::open(&app.base).await;
    b.goto("/environments/production").await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.wait_text("h1", "Environment: production").await;
    b.assert_accessible("an environment").await;

    // An administrator keeps the record: contacts and dashboards, one per line.
    b.click("button.edit-env").await;
    b.fill("textarea[name=description]", "Where students are")
        .await;
    b.fill(
        "textarea[name=contacts]",
        "1 | Dana Whitfield | Database on-call | +49 30 555 0101 | 24/7\n2 | Sam Ortiz | Platform lead | sam@edulibra.example",
    )
    .await;
    b.fill(
        "textarea[name=dashboards]",
        "Grafana | https://grafana.example/d/edulibra",
    )
    .await;
    b.click(".env-form button[type=submit]").await;
    b.wait_text(".env-card", "Where students are").await;
    b.wait_text(".env-card ol.contacts", "Dana Whitfield").await;
    let env = app
        .get(&app.admin, "/api/v1/environments/production")
        .await
        .expect(200)
        .json;
    assert_eq!(env["contacts"][1]["reach"], "sam@edulibra.example");
    assert_eq!(
        env["dashboards"][0]["url"],
        "https://grafana.example/d/edulibra"
    );

    // A release manager locks it; the run shows why it cannot deploy.
    b.fill("input[name=lock-reason]", "Database migration half-done")
        .await;
    b.click(".lock-form button[type=submit]").await;
    b.wait_text(".env-card .lock", "Locked by admin").await;
    // A freeze window every weekend, in Berlin's time.
    b.fill("input[name=freeze-reason]", "Weekend").await;
    b.choose("select[name=recurrence]", "weekly").await;
    b.fill("input[name=freeze-start]", "sat 00:00").await;
    b.fill("input[name=freeze-end]", "mon 00:00").await;
    b.fill("input[name=freeze-tz]", "Europe/Berlin").await;
    b.click(".freeze-form button[type=submit]").await;
    b.wait_text(
        "ul.freezes",
        "Weekend: every week, sat 00:00 to mon 00:00 (Europe/Berlin) — next",
    )
    .await;
    // A bad one is refused with the field named.
    b.fill("input[name=freeze-reason]", "Never").await;
    b.fill("input[name=freeze-start]", "sat 00:00").await;
    b.fill("input[name=freeze-end]", "sun 00:00").await;
    b.fill("input[name=freeze-tz]", "Mars/Olympus").await;
    b.click(".freeze-form button[type=submit]").await;
    b.wait_text(".env-card [role=alert]", "time_zone").await;

    b.goto(&format!("/runs/{run_id}")).await;
    b.wait_text(".run-status", "Preparing").await;
    b.click("button.env-toggle").await;
    b.wait_text(
        "#environment ol.contacts",
        "Dana Whitfield — Database on-call",
    )
    .await;
    b.wait_text("#environment .lock", "Database migration half-done")
        .await;
    b.wait_text("#environment .dashboards", "Grafana").await;
    // The escalation item links to the contacts.
    b.wait_text(".record-link[href='#environment']", "escalation contacts")
        .await;

    // The calendar: the lock this week, keyboard-driven between weeks and months.
    b.goto("/calendar").await;
    b.wait_text("h1", "Release calendar").await;
    b.assert_accessible("the release calendar").await;
    b.wait_text(".calendar .cal-entry.lock", "Database migration half-done")
        .await;
    let title = b.text(".cal-title").await.unwrap();
    b.click(".calendar").await;
    b.js("document.querySelector('.calendar').dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));", vec![]).await;
    let mut moved = false;
    for _ in 0..100 {
        if b.text(".cal-title").await.is_some_and(|t| t != title) {
            moved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(moved, "→ moves the calendar on from {title}");
    b.click("button.cal-month").await;
    b.wait_text(".cal-bar button.cal-month[aria-pressed=true]", "Month")
        .await;
    b.js("document.querySelector('.calendar').dispatchEvent(new KeyboardEvent('keydown', {key: 't', bubbles: true}));", vec![]).await;
    b.wait_text(".calendar .cal-entry.freeze", "Weekend").await;
    // Readable on a phone: in a 360-pixel-wide window the days stand one under another,
    // where the desktop shows seven side by side. (The app refuses to be framed, so the
    // window itself is narrowed.)
    let columns = "return getComputedStyle(document.querySelector('.calendar')).gridTemplateColumns.split(' ').length;";
    assert_eq!(b.js(columns, vec![]).await, json!(7));
    b.driver.set_window_rect(0, 0, 360, 640).await.unwrap();
    let mut phone = Value::Null;
    for _ in 0..150 {
        phone = b.js(columns, vec![]).await;
        if phone == json!(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let width = b.js("return window.innerWidth;", vec![]).await;
    assert_eq!(phone, json!(1), "one column on a phone ({width} px wide)");
    b.quit().await;
}

async fn a_screen_that_cannot_be_fetched_is_reported(backend: Backend) {
    // The built app, without the run page's module.
    let dir = std::env::temp_dir().join(format!("shipshape-web-{}", uuid::Uuid::new_v4().simple()));
    let mut removed = 0;
    for entry in walk(&shipshape_tests::browser::web_dir()) {
        let relative = entry
            .strip_prefix(shipshape_tests::browser::web_dir())
            .unwrap();
        let name = relative.file_name().unwrap().to_string_lossy();
        if name.starts_with("split_run.wasm") {
            removed += 1;
            continue;
        }
        std::fs::create_dir_all(dir.join(relative).parent().unwrap()).unwrap();
        std::fs::copy(&entry, dir.join(relative)).unwrap();
    }
    assert!(removed > 0, "the build has a module for the run page");
    let app = TestApp::spawn_with(backend, |config| config.web_dir = dir.clone()).await;
    let run = app.create_run(&app.admin, "EduLibra", "staging").await;
    let run_id = run["id"].as_str().unwrap().to_owned();

    let b = Browser::open(&app.base).await;
    b.goto(&format!("/runs/{run_id}")).await;
    // The screen's module is asked for at once, while the visitor is still signing in.
    let mut asked = false;
    for _ in 0..150 {
        asked = b
            .js(
                "return performance.getEntriesByType('resource').some(e => e.name.endsWith('/split_run.wasm'));",
                vec![],
            )
            .await
            == json!(true);
        if asked {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        asked,
        "the run page's module was not asked for before signing in"
    );
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.wait_text("main [role=alert]", "This page could not be loaded")
        .await;
    // Still alive: another screen opens.
    b.click("header nav a[href='/templates']").await;
    b.wait_text("h1", "Templates").await;
    b.wait_text("main table", "EduLibra").await;
    b.quit().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Each browser test on both backends.
/// Counts the pixels of a PNG close to an RGB colour.
fn pixels_like(png_bytes: &[u8], rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| px.len() >= 3 && px[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 24))
        .count()
}

async fn insights_draw_the_history_as_charts_with_tables_and_the_runs_behind_an_item(
    backend: Backend,
) {
    let app = TestApp::spawn_web(backend).await;
    let config = shipshape_api::config::Config::for_database(&app.db_url);
    tokio::task::spawn_blocking(move || shipshape_api::server::seed_demo(&config, 300, 120))
        .await
        .unwrap()
        .unwrap();
    let b = Browser::open(&app.base).await;
    b.goto("/insights").await;
    b.sign_in("admin", ADMIN_PASSWORD).await;
    b.wait_text("h1", "Insights").await;
    b.assert_accessible("the insights").await;
    b.wait_text(".insights-delivery", "Deployment frequency")
        .await;
    b.wait_text(".insights-checklist", "Most skipped items")
        .await;

    // Each week of the 90 days is a point of the lines.
    let points = b
        .js(
            "return [...document.querySelectorAll('.insights-delivery polyline')]\
                .map(p => p.getAttribute('points').trim().split(' ').length);",
            vec![],
        )
        .await;
    let points: Vec<u64> = points
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(points.len(), 3, "deployments, failures, failure rate");
    assert!(points.iter().all(|n| *n >= 10), "{points:?}");
    // What the browser drew: the lines' colours are on screen, and the bands behind the rate.
    let charts = b
        .driver
        .find_all(thirtyfour::By::Css(".insights-delivery figure.chart svg"))
        .await
        .unwrap();
    let weekly = charts[0].screenshot_as_png().await.unwrap();
    assert!(
        pixels_like(&weekly, [0x2f, 0x6f, 0xb3]) > 200,
        "the deployments line is drawn"
    );
    assert!(
        pixels_like(&weekly, [0xb3, 0x41, 0x2f]) > 100,
        "the failures line is drawn"
    );
    let rate = charts[1].screenshot_as_png().await.unwrap();
    assert!(
        pixels_like(&rate, [0xdf, 0xf1, 0xe4]) > 500,
        "the elite band is shaded"
    );
    assert!(
        pixels_like(&rate, [0xf8, 0xe1, 0xdd]) > 500,
        "the low band is shaded"
    );
    let bars = b
        .find(".bar-charts figure")
        .await
        .screenshot_as_png()
        .await
        .unwrap();
    assert!(
        pixels_like(&bars, [0x2f, 0x6f, 0xb3]) > 200,
        "the bars are drawn"
    );

    // The numbers, as tables and as CSV.
    b.wait_text(
        ".insights-delivery table caption",
        "Deployments and failures per week",
    )
    .await;
    let href = b
        .js(
            "return document.querySelector('.insights-delivery a.csv').getAttribute('href');",
            vec![],
        )
        .await;
    let href = href.as_str().unwrap();
    assert!(href.starts_with("data:text/csv"), "{href}");
    assert!(href.contains("week%2Cdays%2Cdeployments"), "{href}");

    // An item in a chart opens the runs behind it, each a link to the run.
    b.click(".bar-charts figure:first-child .bar-label").await;
    b.wait_text(".item-runs h2", "Runs that skipped item").await;
    let link = b
        .js(
            "return document.querySelector('.item-runs a').getAttribute('href');",
            vec![],
        )
        .await;
    assert!(link.as_str().unwrap().starts_with("/runs/"), "{link}");
    assert!(
        b.text(".item-runs")
            .await
            .unwrap()
            .contains("Not needed for this release")
    );

    // A product nobody ships: the screen says there is nothing to measure.
    b.fill("input[name=product]", "Nobody").await;
    b.click(".insight-filters button[type=submit]").await;
    b.wait_text(".insights-delivery .empty-note", "`Nobody`")
        .await;
    b.quit().await;
}

shipshape_tests::in_the_browser!(
    insights_draw_the_history_as_charts_with_tables_and_the_runs_behind_an_item,
    environments_are_kept_locked_and_frozen_and_the_calendar_shows_them,
    a_release_team_works_a_run_through_to_a_rollback,
    a_change_made_elsewhere_appears_without_a_reload,
    one_stream_per_tab_serves_eight_live_runs_a_dashboard_and_a_run_page,
    an_edit_over_someone_elses_change_is_shown_and_can_be_reapplied,
    a_release_manager_forces_a_gate_with_a_reason,
    a_session_survives_a_reload_and_an_expired_one_returns_to_where_you_were,
    templates_import_with_a_preview_and_tokens_are_managed,
    a_screen_that_cannot_be_fetched_is_reported,
    a_chat_channel_is_subscribed_tested_and_sent_an_announcement,
    a_probe_item_is_checked_from_the_run_page_and_deadlines_count_down,
    after_a_run_the_team_keeps_its_records_and_an_admin_accepts_its_lesson,
);
