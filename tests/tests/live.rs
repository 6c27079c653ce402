//! The all-runs event stream (one per browser tab), pushed by the bus: what it carries, how
//! it resumes, what it refuses. On SQLite and PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use shipshape_tests::{Read, on_both_backends};

/// Long enough for a pushed event on a loaded test machine; the benchmark measures latency.
const ARRIVES: Duration = Duration::from_secs(5);
/// How long a stream must stay silent to count as having nothing more.
const QUIET: Duration = Duration::from_millis(400);

/// How many events the bus has pushed to this instance's streams (its metrics' counter).
async fn pushed(app: &shipshape_tests::TestApp) -> f64 {
    let text = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(shipshape_tests::METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("shipshape_bus_events_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no shipshape_bus_events_total in {text}"))
}

on_both_backends! {
    async fn the_all_runs_stream_carries_every_run_from_now_on_in_one_order(app) {
        let a = app.create_run(&app.admin, "EduLibra", "production").await;
        let viewer = app.user("vic", "viewer").await;
        // Without a cursor the stream starts at the end of the log: nothing from before.
        let mut stream = app.stream(&viewer, "/api/v1/events/stream", None).await;
        assert!(matches!(stream.read(QUIET).await, Read::Quiet), "no history without a cursor");
        let head = stream.ready.expect("the stream says where it starts");
        assert_eq!(head, app.events(a["id"].as_str().unwrap()).await.len() as i64, "after the one event so far");

        let b = app.create_run(&app.admin, "EduLibra", "staging").await;
        app.note(&a, 0, "first").await;
        app.note(&b, 0, "second").await;
        let got = [stream.next(ARRIVES).await, stream.next(ARRIVES).await, stream.next(ARRIVES).await];
        assert_eq!(got[0].event, "run_created");
        assert_eq!(got[0].data["run_id"], b["id"]);
        assert_eq!((got[1].event.as_str(), &got[1].data["run_id"]), ("item_updated", &a["id"]));
        assert_eq!((got[2].event.as_str(), &got[2].data["run_id"]), ("item_updated", &b["id"]));
        assert_eq!(got[1].data["payload"]["changes"]["note"]["to"], "first", "typed payloads");
        assert!(got[0].id < got[1].id && got[1].id < got[2].id, "one order across runs");
        assert_eq!(got[2].id - got[0].id, 2, "no position skipped");
        assert_eq!(got[0].id, head + 1, "right after where it started");
        assert!(stream.drain(QUIET).await.is_empty(), "nothing twice");
    }

    async fn a_reconnect_resumes_after_its_last_event_without_gaps_or_duplicates(app) {
        let a = app.create_run(&app.admin, "EduLibra", "production").await;
        let b = app.create_run(&app.admin, "EduLibra", "staging").await;
        let mut whole = app.stream(&app.admin, "/api/v1/events/stream?after=0", None).await;
        let history = whole.drain(QUIET).await;
        assert_eq!(history.len(), 2, "after=0 is the whole log: both runs created");
        for i in 0..6 {
            app.note(if i % 2 == 0 { &a } else { &b }, 0, &format!("note {i}")).await;
        }
        let all: Vec<_> = [history, whole.drain(QUIET).await].concat();
        assert_eq!(all.len(), 8);
        let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "consecutive positions: {ids:?}");

        // A client that saw up to the fourth event reconnects: it gets exactly the rest.
        let mut resumed = app.stream(&app.admin, "/api/v1/events/stream", Some(ids[3])).await;
        let rest: Vec<i64> = resumed.drain(QUIET).await.iter().map(|e| e.id).collect();
        assert_eq!(rest, ids[4..].to_vec());
        // `after` in the query works the same for clients that cannot set headers.
        let mut by_query = app.stream(&app.admin, &format!("/api/v1/events/stream?after={}", ids[5]), None).await;
        let rest: Vec<i64> = by_query.drain(QUIET).await.iter().map(|e| e.id).collect();
        assert_eq!(rest, ids[6..].to_vec());
    }

    async fn a_stream_of_named_runs_carries_only_theirs(app) {
        let a = app.create_run(&app.admin, "EduLibra", "production").await;
        let b = app.create_run(&app.admin, "EduLibra", "staging").await;
        let c = app.create_run(&app.admin, "EduLibra", "test").await;
        let path = format!("/api/v1/events/stream?after=0&runs={},{}", a["id"].as_str().unwrap(), c["id"].as_str().unwrap());
        let mut stream = app.stream(&app.admin, &path, None).await;
        app.note(&b, 0, "not carried").await;
        app.note(&c, 0, "carried").await;
        let got = stream.drain(QUIET).await;
        let runs: Vec<&str> = got.iter().map(|e| e.data["run_id"].as_str().unwrap()).collect();
        assert_eq!(runs, [a["id"].as_str().unwrap(), c["id"].as_str().unwrap(), c["id"].as_str().unwrap()]);
    }

    async fn a_run_stream_is_pushed_too_and_counts_by_sequence(app) {
        let a = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = a["id"].as_str().unwrap();
        let mut stream = app.stream(&app.admin, &format!("/api/v1/runs/{id}/events/stream"), None).await;
        assert_eq!(stream.next(ARRIVES).await.id, 1, "the run's whole log first");
        let other = app.create_run(&app.admin, "EduLibra", "staging").await;
        app.note(&other, 0, "elsewhere").await;
        app.note(&a, 0, "here").await;
        let e = stream.next(ARRIVES).await;
        assert_eq!((e.id, e.event.as_str()), (2, "item_updated"));
        assert!(stream.drain(QUIET).await.is_empty());
    }

    async fn a_stream_opened_after_quiet_writes_is_pushed_only_what_follows(app) {
        // Written while no stream is open: nobody is told, and nobody will be later.
        let a = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = a["id"].as_str().unwrap();
        const QUIET_WRITES: usize = 40;
        for i in 0..QUIET_WRITES {
            app.note(&a, i % 5, &format!("note {i}")).await;
        }
        let before = pushed(&app).await;
        let mut stream = app.stream(&app.admin, &format!("/api/v1/runs/{id}/events/stream"), None).await;
        assert_eq!(stream.drain(QUIET).await.len(), QUIET_WRITES + 1, "the log, read by the stream itself");
        app.note(&a, 0, "now").await;
        let e = stream.next(ARRIVES).await;
        assert_eq!((e.id, e.event.as_str()), (QUIET_WRITES as i64 + 2, "item_updated"));
        // The bus pushed what came after the stream opened (and whatever the scheduler
        // wrote), not the backlog: one stream or two hundred, none falls behind at once.
        let after = pushed(&app).await;
        assert!(after - before < 10.0, "pushed {} events to one new stream", after - before);
        assert!(stream.drain(QUIET).await.is_empty(), "nothing twice");
    }

    async fn bad_cursors_and_filters_are_refused_and_unknown_runs_are_not_found(app) {
        for (path, header) in [
            ("/api/v1/events/stream", Some("ten")),
            ("/api/v1/events/stream", Some("-1")),
            ("/api/v1/events/stream?runs=urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8", None),
            ("/api/v1/events/stream?runs=not-a-run", None),
            ("/api/v1/events/stream?runs=", None),
        ] {
            let headers: Vec<(&str, &str)> = header.map(|h| ("Last-Event-ID", h)).into_iter().collect();
            let a = app.send(Method::GET, path, Some(&app.admin), None, &headers).await;
            assert_eq!(a.status.as_u16(), 400, "{path} {header:?}: {}", a.text);
            assert_eq!(a.content_type, "application/problem+json");
        }
        let unknown = uuid::Uuid::new_v4();
        app.send(Method::GET, &format!("/api/v1/events/stream?runs={unknown}"), Some(&app.admin), None, &[])
            .await
            .expect_problem(404, "not_found");
        let many: Vec<String> = (0..101).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        app.send(Method::GET, &format!("/api/v1/events/stream?runs={}", many.join(",")), Some(&app.admin), None, &[])
            .await
            .expect_problem(400, "bad_query");
    }

    async fn the_all_runs_stream_ends_when_its_token_is_revoked(app) {
        let rm = app.user("rita", "release_manager").await;
        let token = app
            .post(&rm, "/api/v1/tokens", json!({"name": "bot", "scopes": ["runs:read"], "expires_in_days": 1}))
            .await
            .expect(201)
            .json;
        let secret = token["secret"].as_str().unwrap();
        let mut stream = app.stream(secret, "/api/v1/events/stream", None).await;
        app.send(Method::DELETE, &format!("/api/v1/tokens/{}", token["token"]["id"].as_str().unwrap()), Some(&rm), None, &[])
            .await
            .expect(200);
        match stream.read(ARRIVES).await {
            Read::Ended => {}
            other => panic!("the stream ends when its token is revoked; got {other:?}"),
        }
    }
}

mod falling_behind {
    //! A stream whose client does not read while the bus moves on past what it holds for it
    //! re-reads from the log: it loses nothing and repeats nothing.

    use std::time::Duration;

    use serde_json::json;
    use shipshape_tests::{Backend, TestApp, items};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn a_stream_that_falls_behind_the_bus_loses_nothing(backend: Backend) {
        // The bus holds 4 events for a slow stream. The stream's client, with a small receive
        // buffer, reads nothing while 400 events of about 18 KB each are written: far more
        // than the buffers between them hold, so the server stops taking its events off the
        // bus, falls behind, and must re-read them from the log.
        let app = TestApp::spawn_with(backend, |c| c.bus_capacity = 4).await;
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let item = items(&run)[0]["id"].as_str().unwrap().to_owned();
        let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let request = format!(
            "GET /api/v1/events/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
            app.admin
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;

        let path = format!("/api/v1/runs/{id}/items/{item}");
        let filler = "x".repeat(9_000);
        for i in 0..400 {
            app.patch(
                &app.admin,
                &path,
                json!({"note": format!("{i} {filler}")}),
                None,
            )
            .await
            .expect(200);
        }
        // Now read everything the stream sends until it has been quiet for a while.
        let mut received = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&received);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "{}",
            &text[..text.len().min(200)]
        );
        let ids: Vec<i64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(|v| v.trim().parse().unwrap())
            .collect();
        let start = ids[0];
        assert_eq!(
            ids[1..].to_vec(),
            (start + 1..=start + 400).collect::<Vec<_>>(),
            "every event once, in order"
        );
        assert!(text.contains("\"to\":\"399 "), "the last change arrived");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_stream_that_falls_behind_the_bus_loses_nothing(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_stream_that_falls_behind_the_bus_loses_nothing(Backend::Postgres).await;
    }
}

mod decoding {
    //! The wire types the web app decodes with hand-written readers (a run, a blocker) read
    //! back exactly what the server writes.

    use serde_json::Value;
    use shipshape_domain::wire::{Problem, Run};
    use shipshape_tests::on_both_backends;

    on_both_backends! {
        async fn a_run_and_its_blockers_read_back_as_the_server_wrote_them(app) {
            let created = app.create_run(&app.admin, "EduLibra", "production").await;
            let id = created["id"].as_str().unwrap();
            app.transition(&app.admin, id, "start").await.expect(200);
            let json = app.run(&app.admin, id).await;
            let run: Run = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(serde_json::to_value(&run).unwrap(), json);
            assert!(run.transitions.iter().any(|t| !t.blockers.is_empty()), "blockers of both kinds are read");

            let refused = app.post(&app.admin, &format!("/api/v1/runs/{id}/transitions"), serde_json::json!({"action": "advance"})).await;
            let problem: Problem = serde_json::from_str(&refused.text).unwrap();
            let kinds: Vec<Value> = refused.json["blockers"].as_array().unwrap().iter().map(|b| b["kind"].clone()).collect();
            assert!(kinds.contains(&Value::from("item")) && kinds.contains(&Value::from("decision")));
            assert_eq!(serde_json::to_value(&problem).unwrap()["blockers"], refused.json["blockers"]);

            let mut bad = json.clone();
            bad["transitions"][0]["blockers"] = serde_json::json!([{"kind": "weather"}]);
            assert!(serde_json::from_value::<Run>(bad).is_err(), "an unknown blocker kind is refused");
            let mut short = json;
            short.as_object_mut().unwrap().remove("members");
            assert!(serde_json::from_value::<Run>(short).is_err(), "a missing field is refused");
        }
    }
}
