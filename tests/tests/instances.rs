//! Several instances on one PostgreSQL database, as behind a load balancer: a change made
//! through one reaches streams held on the other, and the sign-in throttle, the stream cap
//! and background work hold across both. (Several instances need PostgreSQL: SQLite is one
//! process's database, and has no way to tell another process of a commit.)

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use shipshape_tests::{Backend, TestApp, USER_PASSWORD, items};

/// What the issue promises: a change on one instance reaches the other within a second.
const WITHIN: Duration = Duration::from_secs(1);

async fn two_instances() -> (TestApp, TestApp) {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = a.spawn_beside().await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_instance_reaches_a_stream_held_on_the_other_within_a_second() {
    let (a, b) = two_instances().await;
    let run = a.create_run(&a.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap();
    let mut on_b = b.stream(&b.admin, "/api/v1/events/stream", None).await;
    let mut run_on_b = b
        .stream(
            &b.admin,
            &format!("/api/v1/runs/{id}/events/stream?after=1"),
            None,
        )
        .await;
    for i in 0..3 {
        let item = &items(&run)[i];
        a.patch(
            &a.admin,
            &format!("/api/v1/runs/{id}/items/{}", item["id"].as_str().unwrap()),
            json!({"note": format!("through a, {i}")}),
            None,
        )
        .await
        .expect(200);
        let all = on_b.next(WITHIN).await;
        assert_eq!(
            all.data["payload"]["changes"]["note"]["to"],
            format!("through a, {i}")
        );
        let one = run_on_b.next(WITHIN).await;
        assert_eq!(one.id, 2 + i as i64);
    }
    // And the other way round.
    let mut on_a = a.stream(&a.admin, "/api/v1/events/stream", None).await;
    let created = b.create_run(&b.admin, "EduLibra", "staging").await;
    assert_eq!(on_a.next(WITHIN).await.data["run_id"], created["id"]);
    drop((on_a, on_b, run_on_b, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_count_across_instances() {
    let (a, b) = two_instances().await;
    a.user("erin", "engineer").await;
    let wrong = json!({"username": "erin", "password": "wrong-password"});
    // Five failures, alternating instances: together they lock the account.
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        app.send(Method::POST, "/api/v1/auth/login", None, Some(&wrong), &[])
            .await
            .expect_problem(401, "unauthorized");
    }
    let right = json!({"username": "erin", "password": USER_PASSWORD});
    for app in [&a, &b] {
        app.send(Method::POST, "/api/v1/auth/login", None, Some(&right), &[])
            .await
            .expect_problem(429, "too_many_attempts");
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_cap_counts_streams_on_every_instance() {
    let (a, b) = two_instances().await;
    let viewer = a.user("vic", "viewer").await;
    let mut open = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 { &a } else { &b };
        open.push(app.stream(&viewer, "/api/v1/events/stream", None).await);
    }
    for app in [&a, &b] {
        app.send(
            Method::GET,
            "/api/v1/events/stream",
            Some(&viewer),
            None,
            &[],
        )
        .await
        .expect_problem(429, "too_many_streams");
    }
    // Closing one on either instance frees a place on both.
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let open_again = loop {
        let res = a
            .client
            .get(a.url("/api/v1/events/stream"))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break res;
        }
        assert_eq!(res.status(), 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed stream frees its place"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let listed = a.get(&a.admin, "/api/v1/instances").await.expect(200).json;
    let streams: i64 = listed["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["streams"].as_i64().unwrap())
        .sum();
    assert_eq!(streams, 16, "the instances hold the streams: {listed}");
    drop((open, open_again, b));
}

async fn instances(app: &TestApp) -> Value {
    app.get(&app.admin, "/api/v1/instances")
        .await
        .expect(200)
        .json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_runs_on_one_instance_and_moves_when_it_stops() {
    let (a, b) = two_instances().await;
    let (on_a, on_b) = (instances(&a).await, instances(&b).await);
    let (id_a, id_b) = (on_a["answered_by"].clone(), on_b["answered_by"].clone());
    assert_ne!(id_a, id_b);
    for listed in [&on_a, &on_b] {
        let all = listed["instances"].as_array().unwrap();
        assert_eq!(all.len(), 2, "both instances are recorded: {listed}");
        assert!(all.iter().all(|i| i["alive"] == true));
        let workers: Vec<_> = all
            .iter()
            .filter(|i| i["runs_background_work"] == true)
            .collect();
        assert_eq!(
            workers.len(),
            1,
            "exactly one instance runs the background work: {listed}"
        );
    }
    // The one that works stops: within the lease, the other takes over.
    let worker = on_a["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["runs_background_work"] == true)
        .unwrap()["id"]
        .clone();
    let (stays, stays_id) = if worker == id_a {
        a.stop().await;
        (&b, id_b)
    } else {
        b.stop().await;
        (&a, id_a)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let listed = instances(stays).await;
        let now_working = listed["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["runs_background_work"] == true)
            .map(|i| i["id"].clone());
        if now_working == Some(stays_id.clone()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other instance takes the work over: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls `check` until it holds, for at most [`WITHIN`].
async fn within(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_read_through_one_instance_shows_a_change_made_through_the_other() {
    let (a, b) = two_instances().await;
    let run = a.create_run(&a.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap().to_owned();
    // Read on both: each keeps the run as served.
    let before = b.run(&b.admin, &id).await;
    assert_eq!(a.run(&a.admin, &id).await, before);
    for (i, (writer, reader)) in [(&a, &b), (&b, &a)].into_iter().enumerate() {
        writer.note(&run, i, &format!("through one, {i}")).await;
        within("the other instance shows the change", async || {
            items(&reader.run(&reader.admin, &id).await)[i]["note"] == format!("through one, {i}")
        })
        .await;
    }
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivating_a_user_through_one_instance_refuses_them_on_the_other() {
    let (a, b) = two_instances().await;
    let rita = a.user("rita", "release_manager").await;
    b.get(&rita, "/api/v1/me").await.expect(200);
    let me = a.get(&rita, "/api/v1/me").await.expect(200).json;
    let path = format!("/api/v1/users/{}", me["id"].as_str().unwrap());
    a.patch(&a.admin, &path, json!({"active": false}), None)
        .await
        .expect(200);
    a.get(&rita, "/api/v1/me")
        .await
        .expect_problem(401, "unauthorized");
    within("the other instance refuses the session", async || {
        b.send(Method::GET, "/api/v1/me", Some(&rita), None, &[])
            .await
            .status
            == 401
    })
    .await;
    drop(b);
}
