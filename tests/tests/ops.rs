//! Operating the server: metrics a Prometheus scraper reads (parsed by a parser this project
//! did not write), request ids on answers and log lines, the binary's flags and version.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::process::Command;
use std::time::Duration;

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use serde_json::{Value, json};
use shipshape_tests::{Backend, METRICS_TOKEN, Served, TestApp, TestDb, shipshape_binary};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// The value of a sample of `family` whose labels include `labels` (a histogram's count).
fn value(exposition: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = exposition.families.get(family)?;
    family.iter_samples().find_map(|sample| {
        let set = sample.get_labelset().ok()?;
        labels
            .iter()
            .all(|(k, v)| set.get_label_value(k) == Some(*v))
            .then(|| match &sample.value {
                OpenMetricsValue::Counter(c) => c.value.as_f64(),
                OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
                OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
                _ => f64::NAN,
            })
    })
}

async fn metrics_are_read_by_a_scraper_with_the_token_and_parse_as_openmetrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(scrape(&app, None).await.status(), 401);
    let wrong = scrape(&app, Some("not-the-token")).await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json")
    );
    // A session token of an admin is no metrics token either.
    assert_eq!(scrape(&app, Some(&app.admin)).await.status(), 401);
    // A subscriber that is not there: its deliveries fail.
    app.post(
        &app.admin,
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/gone", "event_types": ["run_created"]}),
    )
    .await
    .expect(201);

    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap();
    for _ in 0..3 {
        app.get(&app.admin, &format!("/api/v1/runs/{id}"))
            .await
            .expect(200);
    }
    app.get(&app.admin, "/api/v1/runs/no-such-run")
        .await
        .expect(404);
    app.transition(&app.admin, id, "start").await.expect(200);
    let stream = app
        .stream(
            &app.admin,
            &format!("/api/v1/runs/{id}/events/stream"),
            None,
        )
        .await;
    // A probe check that passes.
    app.serve_probes(&run).await;
    let probe = shipshape_tests::items(&run)
        .into_iter()
        .find(|i| i["kind"] == "probe")
        .unwrap();
    let checked = app
        .check(&app.admin, id, probe["id"].as_str().unwrap())
        .await
        .expect(201);
    assert_eq!(checked.json["passed"], true);
    // The failed delivery is counted once its attempt is made.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&app, Some(METRICS_TOKEN))
            .await
            .text()
            .await
            .unwrap();
        if text.contains("shipshape_webhook_delivery_attempts_total{outcome=\"failed\"}") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed delivery counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let res = scrape(&app, Some(METRICS_TOKEN)).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        res.headers()
    );
    let text = res.text().await.unwrap();
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("the metrics do not parse: {e:?}\n{text}"));

    let route = "/api/v1/runs/{run_id}";
    let ok = [("route", route), ("method", "GET"), ("status", "200")];
    assert_eq!(
        value(&exposition, "shipshape_http_requests", &ok),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(&exposition, "shipshape_http_request_duration_seconds", &ok),
        Some(3.0),
        "the latency histogram counts the same requests"
    );
    assert_eq!(
        value(
            &exposition,
            "shipshape_http_requests",
            &[("route", route), ("status", "404")]
        ),
        Some(1.0)
    );
    assert!(
        !text.contains(&format!("route=\"/api/v1/runs/{id}\"")),
        "paths are labelled by their template, never by their ids"
    );
    assert_eq!(
        value(&exposition, "shipshape_runs", &[("status", "preparing")]),
        Some(1.0)
    );
    assert_eq!(
        value(&exposition, "shipshape_runs", &[("status", "completed")]),
        Some(0.0)
    );
    assert_eq!(
        value(&exposition, "shipshape_event_streams_open", &[]),
        Some(1.0)
    );
    assert!(value(&exposition, "shipshape_bus_events", &[]).unwrap() >= 1.0);
    assert!(
        value(
            &exposition,
            "shipshape_probe_checks",
            &[("outcome", "passed")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        value(
            &exposition,
            "shipshape_webhook_delivery_attempts",
            &[("outcome", "failed")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(value(&exposition, "shipshape_bus_lag_seconds", &[]).unwrap() >= 1.0);
    assert!(
        value(
            &exposition,
            "shipshape_db_pool_wait_seconds",
            &[("pool", "read")]
        )
        .unwrap()
            >= 1.0
    );
    assert!(value(&exposition, "shipshape_db_pool_max_connections", &[]).unwrap() >= 1.0);
    assert!(
        exposition
            .families
            .contains_key("shipshape_db_pool_connections")
    );
    drop(stream);
    app.stop().await;
}

async fn metrics_are_not_served_without_a_configured_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.metrics_token = None).await;
    assert_eq!(
        scrape(&app, None).await.status(),
        401,
        "a token is asked for first"
    );
    let res = scrape(&app, Some(&app.admin)).await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("SHIPSHAPE_METRICS_TOKEN")
    );
    app.stop().await;
}

async fn every_answer_carries_a_request_id_a_trusted_proxy_may_set(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let client = reqwest::Client::new();
    let from_proxy = client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&app.admin)
        .header("x-request-id", "edge-7f3a")
        .send()
        .await
        .unwrap();
    assert_eq!(from_proxy.headers()["x-request-id"], "edge-7f3a");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let res = client.get(app.url("/healthz")).send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(id.len() >= 16, "{id}");
        assert!(seen.insert(id), "each request gets its own id");
    }
    // An id that would break a log line is replaced.
    let res = client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b\"c");
    app.stop().await;
}

async fn the_binary_logs_json_lines_each_with_its_requests_id(backend: Backend) {
    let empty = std::env::temp_dir().join(format!("shipshape-noweb-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&empty).unwrap();
    // Flags after the subcommand.
    let served = Served::start(
        TestDb::create(backend),
        &[
            "serve",
            "--log-format",
            "json",
            "--web-dir",
            empty.to_str().unwrap(),
        ],
    );
    let start = served.read_until(|l| l.contains("listening"));
    let start: Vec<Value> = start
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let message = |v: &Value| v["fields"]["message"].as_str().unwrap_or("").to_owned();
    let version = start
        .iter()
        .find(|v| message(v).contains("starting"))
        .expect("a start-up line");
    assert!(
        version["fields"]["version"]
            .as_str()
            .unwrap()
            .starts_with(env!("CARGO_PKG_VERSION"))
    );
    let ready = start
        .iter()
        .find(|v| v["fields"]["backend"].is_string())
        .expect("a line naming the backend");
    assert_eq!(
        ready["fields"]["backend"],
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    assert!(
        ready["fields"]["bind"]
            .as_str()
            .unwrap()
            .contains(&served.port.to_string())
    );
    let all = serde_json::to_string(&start).unwrap();
    assert!(!all.contains("postgres://"), "no connection string: {all}");
    assert!(
        start
            .iter()
            .any(|v| v["level"] == "WARN" && message(v).contains("index.html")),
        "a missing web app is warned of: {all}"
    );

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", served.port);
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "wrong password here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let lines = served.read_until(|l| l.contains(&id) && l.contains("\"message\":\"request\""));
    let tagged: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["span"]["id"] == id.as_str())
        .collect();
    assert!(
        tagged.len() >= 2,
        "the sign-in's own line and the request line both carry the id: {lines:?}"
    );
    let last = tagged.last().unwrap();
    assert_eq!(last["fields"]["status"], 401);
    assert_eq!(last["fields"]["path"], "/api/v1/auth/login");
    let _ = std::fs::remove_dir_all(&empty);
}

shipshape_tests::each_backend!(
    metrics_are_read_by_a_scraper_with_the_token_and_parse_as_openmetrics,
    metrics_are_not_served_without_a_configured_token,
    every_answer_carries_a_request_id_a_trusted_proxy_may_set,
    the_binary_logs_json_lines_each_with_its_requests_id,
    conditional_requests_and_negotiation_follow_rfc_9110,
    the_web_app_is_served_with_a_policy_validators_and_ranges,
);

#[test]
fn the_binary_says_its_version_with_the_commit() {
    let out = Command::new(shipshape_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = format!("shipshape {} (", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&expected), "{text}");
    let commit = text
        .trim()
        .trim_end_matches(')')
        .rsplit('(')
        .next()
        .unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{text}"
    );
}

#[test]
fn the_openapi_version_is_the_servers() {
    let doc = shipshape_api::openapi::document_value();
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
}

async fn send_raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(&app.admin);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

async fn conditional_requests_and_negotiation_follow_rfc_9110(backend: Backend) {
    use reqwest::Method;
    let app = TestApp::spawn(backend).await;
    let run = app.create_run(&app.admin, "EduLibra", "production").await;
    let id = run["id"].as_str().unwrap();
    let path = format!("/api/v1/runs/{id}");
    let etag = |r: &reqwest::Response| r.headers()["etag"].to_str().unwrap().to_owned();
    let current = etag(&send_raw(&app, Method::GET, &path, &[], None).await);

    // If-None-Match: the current tag (weakly compared) or * gives 304 with the tag, no body.
    for tag in [
        current.clone(),
        format!("W/{current}"),
        format!("\"999\", {current}"),
        "*".into(),
    ] {
        let res = send_raw(&app, Method::GET, &path, &[("if-none-match", &tag)], None).await;
        assert_eq!(res.status(), 304, "{tag}");
        assert_eq!(etag(&res), current);
        assert!(res.bytes().await.unwrap().is_empty());
    }
    let res = send_raw(
        &app,
        Method::GET,
        &path,
        &[("if-none-match", "\"999\"")],
        None,
    )
    .await;
    assert_eq!(res.status(), 200);

    // If-Match: a list admits any of its versions, strongly compared.
    let patch = |n: i64| json!({"expected_downtime_minutes": n});
    let weak = format!("W/{current}");
    let res = send_raw(
        &app,
        Method::PATCH,
        &path,
        &[("if-match", &weak)],
        Some(patch(20)),
    )
    .await;
    assert_eq!(res.status(), 412, "a weak tag never matches strongly");
    let list = format!("\"998\", {current}");
    let res = send_raw(
        &app,
        Method::PATCH,
        &path,
        &[("if-match", &list)],
        Some(patch(25)),
    )
    .await;
    assert_eq!(res.status(), 200, "one of the listed versions is current");
    let newer = etag(&res);
    assert_ne!(newer, current);
    let res = send_raw(
        &app,
        Method::PATCH,
        &path,
        &[("if-match", &list)],
        Some(patch(30)),
    )
    .await;
    assert_eq!(res.status(), 412, "none of them is any more");
    let res = send_raw(
        &app,
        Method::PATCH,
        &path,
        &[("if-match", "\"1\" \"2\"")],
        Some(patch(30)),
    )
    .await;
    assert_eq!(res.status(), 400, "not a list of tags");

    // An item and a template answer 304 too.
    let item = &shipshape_tests::items(&run)[0];
    let item_path = format!("/api/v1/runs/{id}/items/{}", item["id"].as_str().unwrap());
    let item_tag = etag(&send_raw(&app, Method::GET, &item_path, &[], None).await);
    let res = send_raw(
        &app,
        Method::GET,
        &item_path,
        &[("if-none-match", &item_tag)],
        None,
    )
    .await;
    assert_eq!(res.status(), 304);
    let template = format!("/api/v1/templates/{}", shipshape_tests::EDULIBRA);
    let template_tag = etag(&send_raw(&app, Method::GET, &template, &[], None).await);
    let res = send_raw(
        &app,
        Method::GET,
        &template,
        &[("if-none-match", &template_tag)],
        None,
    )
    .await;
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["vary"], "Accept");

    // Accept with q-values: the heavier type wins; on a tie, JSON.
    for (accept, markdown) in [
        ("application/json, text/markdown;q=0.1", false),
        ("text/markdown", true),
        ("application/json;q=0.5, text/markdown", true),
        ("text/*, application/json;q=0.9", true),
        ("*/*", false),
    ] {
        let res = send_raw(&app, Method::GET, &template, &[("accept", accept)], None).await;
        assert_eq!(res.status(), 200);
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct.starts_with("text/markdown"), markdown, "{accept}: {ct}");
    }

    // Every answer: nosniff and a referrer policy.
    let res = send_raw(&app, Method::GET, &path, &[], None).await;
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    app.stop().await;
}

async fn the_web_app_is_served_with_a_policy_validators_and_ranges(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("shipshape-web-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("app-0123abcd4567")).unwrap();
    let script = "\nimport init from \"/app-0123abcd4567/app.js\";\ninit();\n";
    std::fs::write(
        dir.join("index.html"),
        format!(
            "<!doctype html><html><body><script type=\"module\">{script}</script></body></html>"
        ),
    )
    .unwrap();
    let asset: String = (0..2000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    std::fs::write(dir.join("app-0123abcd4567/app.js"), &asset).unwrap();
    let web_dir = dir.clone();
    let app = TestApp::spawn_with(backend, move |c| c.web_dir = web_dir).await;
    let client = reqwest::Client::new();

    let page = client.get(app.url("/runs/some-run")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    use base64::Engine;
    use sha2::Digest;
    let hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()));
    assert!(policy.contains(&format!("'sha256-{hash}'")), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert!(page.headers().contains_key("referrer-policy"));
    assert_eq!(page.headers()["cache-control"], "no-cache");

    let js = client
        .get(app.url("/app-0123abcd4567/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert!(
        js.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let tag = js.headers()["etag"].to_str().unwrap().to_owned();
    assert!(js.headers().contains_key("last-modified"));
    assert_eq!(js.text().await.unwrap(), asset);
    let again = client
        .get(app.url("/app-0123abcd4567/app.js"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let part = client
        .get(app.url("/app-0123abcd4567/app.js"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.text().await.unwrap(), &asset[10..20]);
    let missing = client
        .get(app.url("/app-0123abcd4567/gone.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The systemd unit under `deploy/` is one systemd accepts (`systemd-analyze verify`), run
/// against this build's binary.
#[test]
fn the_systemd_unit_verifies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(root.join("deploy/shipshape.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/shipshape serve"));
    let binary = shipshape_binary();
    let dir = std::env::temp_dir().join(format!("shipshape-unit-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shipshape.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/shipshape", binary.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze (Debian's systemd) is installed");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        !said.contains("shipshape.service"),
        "no warning about the unit: {said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
