//! What the server keeps in memory between requests (a run as served, who a credential
//! belongs to) is never older than what it was made from: every test here reads first, so
//! that a copy is kept, then changes what the copy depends on, by the API, and reads again
//! at once — without waiting — and must see the change. Pages of the run list are also
//! checked against changes the server never heard of (another process writing the database).
#![expect(clippy::unwrap_used, reason = "tests")]

use serde_json::{Value, json};
use shipshape_tests::{Backend, TestApp, items};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn transition(run: &Value, action: &str) -> Value {
    run["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == action)
        .cloned()
        .unwrap()
}

fn blockers(run: &Value, action: &str) -> Vec<Value> {
    transition(run, action)["blockers"]
        .as_array()
        .unwrap()
        .clone()
}

async fn a_change_to_a_run_shows_in_the_next_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = id(&run);
    let item = id(&items(&run)[0]);
    let read = app.run(&app.admin, &run_id).await;
    assert_eq!(app.run(&app.admin, &run_id).await, read, "read twice alike");
    for i in 0..5 {
        app.patch(
            &app.admin,
            &format!("/api/v1/runs/{run_id}/items/{item}"),
            json!({ "note": format!("note {i}") }),
            None,
        )
        .await
        .expect(200);
        let after = app
            .get(&app.admin, &format!("/api/v1/runs/{run_id}"))
            .await
            .expect(200);
        let note = items(&after.json)[0]["note"].clone();
        assert_eq!(note, format!("note {i}"), "the change shows at once");
        assert_eq!(
            after.etag.unwrap(),
            format!("\"{}\"", after.json["version"])
        );
    }
    // Another run's change leaves this run's read alone (and right).
    let other = app.create_run(&app.admin, "Catalogue", "staging").await;
    app.note(&other, 0, "elsewhere").await;
    assert_eq!(
        items(&app.run(&app.admin, &run_id).await)[0]["note"],
        "note 4"
    );
}

async fn a_lock_or_another_live_run_shows_in_a_planned_runs_next_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let planned = id(&app.create_run(&app.admin, "EduLibra", "production").await);
    let start = transition(&app.run(&app.admin, &planned).await, "start");
    assert_eq!(start["allowed"], true, "{start}");

    // The environment is locked: an administrator's change, not the run's.
    let lock = app
        .post(
            &app.admin,
            "/api/v1/environments/production/locks",
            json!({"reason": "Database migration half-done"}),
        )
        .await
        .expect(201)
        .json;
    let now = blockers(&app.run(&app.admin, &planned).await, "start");
    assert!(
        now.iter().any(|b| b["kind"] == "lock"),
        "the lock shows at once: {now:?}"
    );
    app.patch(
        &app.admin,
        &format!("/api/v1/environments/production/locks/{}", id(&lock)),
        json!({"note": "Migration finished and checked"}),
        None,
    )
    .await
    .expect(200);
    assert!(blockers(&app.run(&app.admin, &planned).await, "start").is_empty());

    // Another run of the same product and environment starts: one live run at a time.
    let other = id(&app.create_run(&app.admin, "EduLibra", "production").await);
    app.transition(&app.admin, &other, "start")
        .await
        .expect(200);
    let start = transition(&app.run(&app.admin, &planned).await, "start");
    assert_eq!(start["allowed"], false, "the other live run shows at once");
    assert!(
        start["reason"].as_str().unwrap().contains(&other),
        "{start}"
    );
}

async fn a_role_change_shows_in_the_team_and_in_what_the_token_may_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rita = app.user("rita", "release_manager").await;
    let run = id(&app.create_run(&app.admin, "EduLibra", "production").await);
    app.add_member(&run, "rita").await;
    let member = |run: &Value| run["members"][0]["role"].clone();
    assert_eq!(member(&app.run(&rita, &run).await), "release_manager");
    app.transition(&rita, &run, "start").await.expect(200);
    let users = app.get(&app.admin, "/api/v1/users").await.expect(200).json;
    let rita_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "rita")
        .map(id)
        .unwrap();
    app.patch(
        &app.admin,
        &format!("/api/v1/users/{rita_id}"),
        json!({"role": "viewer"}),
        None,
    )
    .await
    .expect(200);
    assert_eq!(member(&app.run(&app.admin, &run).await), "viewer");
    app.transition(&rita, &run, "abort")
        .await
        .expect_problem(403, "forbidden");
}

fn listed<'a>(page: &'a Value, run_id: &str) -> &'a Value {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == run_id)
        .unwrap()
}

async fn a_change_to_any_run_shows_in_the_next_list_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let run_id = id(&run);
    let app = &app;
    let list = |path: &'static str| async move { app.get(&app.admin, path).await.expect(200).json };
    let page = list("/api/v1/runs").await;
    assert_eq!(list("/api/v1/runs").await, page, "read twice alike");
    assert_eq!(listed(&page, &run_id)["progress"]["done"], 0);
    let filtered = list("/api/v1/runs?environment=production&limit=5").await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);

    // An item done: the progress on every page that shows the run.
    let item = id(&items(&run)[0]);
    app.set_item(&app.admin, &run_id, &item, "done")
        .await
        .expect(200);
    assert_eq!(
        listed(&list("/api/v1/runs").await, &run_id)["progress"]["done"],
        1
    );
    assert_eq!(
        listed(
            &list("/api/v1/runs?environment=production&limit=5").await,
            &run_id
        )["progress"]["done"],
        1
    );

    // A new run comes first.
    let second = id(&app.create_run(&app.admin, "Catalogue", "production").await);
    let page = list("/api/v1/runs").await;
    assert_eq!(page["items"][0]["id"], second, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        list("/api/v1/runs?environment=production&limit=5").await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Runs written by another process on the same database (a seeding command): the server
    // heard nothing, and still lists them at once.
    let store = shipshape_store::Store::connect(&app.db_url, 1).unwrap();
    store
        .seed_runs(shipshape_store::EDULIBRA_TEMPLATE_ID, 60, "Seeded")
        .unwrap();
    let page = list("/api/v1/runs").await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        50,
        "a full page now"
    );
    assert!(page["next_cursor"].is_string(), "{page}");
}

shipshape_tests::each_backend!(
    a_change_to_a_run_shows_in_the_next_read,
    a_lock_or_another_live_run_shows_in_a_planned_runs_next_read,
    a_role_change_shows_in_the_team_and_in_what_the_token_may_do,
    a_change_to_any_run_shows_in_the_next_list_page,
);
