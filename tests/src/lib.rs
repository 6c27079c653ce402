//! Helpers for the black-box tests: [`TestApp::spawn`] starts the real server on port 0 with
//! a fresh database of its own — a temporary SQLite file, or a new PostgreSQL database that
//! is dropped afterwards — and typed helpers drive it over real HTTP with reqwest.
//!
//! PostgreSQL is found at `SHIPSHAPE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). A test that cannot reach it fails.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, with the cause"
)]

pub mod browser;
pub mod postgres;
pub mod receiver;
pub mod smtp;

use std::path::PathBuf;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use shipshape_api::config::{Config, Secret};

/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
/// The password of every user the helpers create.
pub const USER_PASSWORD: &str = "user-password-for-tests";
/// The secret test servers sign access tokens with (so tests can forge some).
pub const JWT_SECRET: &str = "jwt-secret-for-tests-only-0123456789abcdef";
/// The built-in EduLibra template's id.
pub const EDULIBRA: &str = shipshape_store::EDULIBRA_TEMPLATE_ID;

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// A free port on the loopback address (for helper processes the tests start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"))
}

/// The PostgreSQL server the tests use.
pub fn postgres_server_url() -> String {
    std::env::var("SHIPSHAPE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that lives as long as the test.
#[derive(Debug)]
pub enum TestDb {
    /// A SQLite file in a temporary folder.
    Sqlite(PathBuf),
    /// A PostgreSQL database on a PostgreSQL server.
    Postgres {
        /// The server's URL.
        server: String,
        /// The database's name.
        name: String,
    },
    /// Another server's database: the other server drops it.
    Shared,
}

impl TestDb {
    /// Creates a fresh, empty database; returns it with its URL.
    pub fn create(backend: Backend) -> (TestDb, String) {
        TestDb::create_on(backend, &postgres_server_url())
    }

    /// Creates a fresh, empty database, on the PostgreSQL server of `server` for that backend.
    pub fn create_on(backend: Backend, server: &str) -> (TestDb, String) {
        let name = format!("shipshape_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(name);
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}", dir.join("shipshape.db").display());
                (TestDb::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let url = shipshape_store::admin::create_postgres_database(server, &name)
                    .unwrap_or_else(|e| panic!("PostgreSQL must be reachable for the tests: {e}"));
                let server = server.to_owned();
                (TestDb::Postgres { server, name }, url)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDb::Postgres { server, name } => {
                let _ = shipshape_store::admin::drop_postgres_database(server, name);
            }
            TestDb::Shared => {}
        }
    }
}

/// A running server with its own database.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An HTTP client.
    pub client: Client,
    /// A token of the `admin` user.
    pub admin: String,
    /// Tokens of an approver and a release manager who sign off approval items in
    /// [`TestApp::finish_gate`] (distinct people, never the ones doing the work).
    pub signers: (String, String),
    /// The database's URL (for tests that reach behind the API, e.g. to tamper with it).
    pub db_url: String,
    /// What probe items check in [`TestApp::finish_gate`]: the base URL of the runs'
    /// environments, answering `/healthz` and `/version` (the run's release version).
    pub probe_target: receiver::Receiver,
    handle: actix_web::dev::ServerHandle,
    // Dropped last: the database outlives the server.
    _db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command; the workers wind down on their own.
        drop(self.handle.stop(false));
    }
}

/// A response read whole: status, headers we care about, and the body as JSON (or text).
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The `Content-Type`.
    pub content_type: String,
    /// The `ETag`, if any.
    pub etag: Option<String>,
    /// The `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
}

impl Answer {
    async fn read(res: Response) -> Answer {
        let status = res.status();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let etag = header("etag");
        let retry_after = header("retry-after");
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            content_type,
            etag,
            retry_after,
            text,
            json,
        }
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Answer {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an RFC 9457 problem with this status and code.
    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Answer {
        let a = self.expect(status);
        assert_eq!(
            a.content_type, "application/problem+json",
            "problem content type; body: {}",
            a.text
        );
        assert_eq!(a.json["code"], code, "problem code; body: {}", a.text);
        assert_eq!(a.json["status"], status);
        assert!(
            a.json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "a problem has a detail"
        );
        a
    }
}

impl TestApp {
    /// Starts a server on a fresh database of the backend.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// Starts a server on a fresh database of the backend, with changes to its configuration.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
        let (db, url) = TestDb::create(backend);
        TestApp::spawn_on(db, &url, configure).await
    }

    /// Starts a server on a database made with [`TestDb::create_on`]. Its outbound requests
    /// may reach 127.0.0.1 (where the tests' receivers and probe targets listen) unless
    /// `configure` says otherwise.
    pub async fn spawn_on(db: TestDb, url: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::for_database(url);
        config.outbound_allow = Some("127.0.0.1/32".into());
        config.schedule_poll = std::time::Duration::from_millis(200);
        config.metrics_token = Some(Secret::new(METRICS_TOKEN));
        configure(&mut config);
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.jwt_secret = Some(Secret::new(JWT_SECRET));
        let (server, addr) = shipshape_api::server::start(config)
            .await
            .unwrap_or_else(|e| panic!("server starts: {e}"));
        let handle = server.handle();
        tokio::spawn(server);
        let base = format!("http://{addr}");
        let client = Client::new();
        let mut app = TestApp {
            base,
            client,
            admin: String::new(),
            signers: (String::new(), String::new()),
            probe_target: healthy_target().await,
            handle,
            db_url: url.to_owned(),
            _db: db,
        };
        app.admin = app.login("admin", ADMIN_PASSWORD).await;
        app.signers = (
            app.user("signing-approver", "approver").await,
            app.user("signing-manager", "release_manager").await,
        );
        app
    }

    /// Starts a second instance on this server's database (several instances behind one
    /// load balancer); it shares the first one's signers. Drop it before the first.
    pub async fn spawn_beside(&self) -> TestApp {
        self.spawn_beside_with(|_| {}).await
    }

    /// [`TestApp::spawn_beside`], with changes to the second instance's configuration.
    pub async fn spawn_beside_with(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::for_database(&self.db_url);
        config.outbound_allow = Some("127.0.0.1/32".into());
        config.schedule_poll = std::time::Duration::from_millis(200);
        configure(&mut config);
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.jwt_secret = Some(Secret::new(JWT_SECRET));
        let (server, addr) = shipshape_api::server::start(config)
            .await
            .unwrap_or_else(|e| panic!("a second server starts: {e}"));
        let handle = server.handle();
        tokio::spawn(server);
        let mut app = TestApp {
            base: format!("http://{addr}"),
            client: Client::new(),
            admin: String::new(),
            signers: self.signers.clone(),
            probe_target: self.probe_target.clone(),
            handle,
            db_url: self.db_url.clone(),
            _db: TestDb::Shared,
        };
        app.admin = app.login("admin", ADMIN_PASSWORD).await;
        app
    }

    /// Stops the server (gracefully, as at a deployment), keeping its database.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// Opens an event stream at `path` (asserting 200), resuming after `last_event_id`.
    pub async fn stream(&self, token: &str, path: &str, last_event_id: Option<i64>) -> Sse {
        let mut req = self.client.get(self.url(path)).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "the stream {path} opens");
        Sse {
            response,
            pending: String::new(),
            ready: None,
        }
    }

    /// A run's whole event log (up to 1,000 events), as the admin reads it.
    pub async fn events(&self, run_id: &str) -> Vec<Value> {
        self.get(
            &self.admin,
            &format!("/api/v1/runs/{run_id}/events?limit=1000"),
        )
        .await
        .expect(200)
        .json["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Runs SQL on the database directly, behind the server's back.
    pub fn sql(&self, statements: &str) {
        let url = shipshape_store::DbUrl::parse(&self.db_url).unwrap();
        let mut conn = shipshape_store::db::establish(&url).unwrap();
        diesel::connection::SimpleConnection::batch_execute(&mut conn, statements)
            .unwrap_or_else(|e| panic!("{statements}: {e}"));
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional token, JSON body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Answer::read(req.send().await.unwrap()).await
    }

    /// GET with a token.
    pub async fn get(&self, token: &str, path: &str) -> Answer {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    /// POST JSON with a token.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(token), Some(&body), &[])
            .await
    }

    /// PATCH JSON with a token and an optional `If-Match`.
    pub async fn patch(
        &self,
        token: &str,
        path: &str,
        body: Value,
        if_match: Option<&str>,
    ) -> Answer {
        let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
        self.send(Method::PATCH, path, Some(token), Some(&body), &headers)
            .await
    }

    /// Signs in; returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let a = self
            .send(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"username": username, "password": password})),
                &[],
            )
            .await
            .expect(200);
        a.json["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a user with a role (as admin) and signs in as them; returns the token.
    pub async fn user(&self, username: &str, role: &str) -> String {
        self.post(
            &self.admin,
            "/api/v1/users",
            json!({"username": username, "password": USER_PASSWORD, "role": role}),
        )
        .await
        .expect(201);
        self.login(username, USER_PASSWORD).await
    }

    /// Creates an EduLibra run; returns the run.
    pub async fn create_run(&self, token: &str, product: &str, environment: &str) -> Value {
        self.post(
            token,
            "/api/v1/runs",
            json!({
                "template_id": EDULIBRA,
                "product": product,
                "release_version": "4.2.0",
                "environment": environment,
                "window_start": "2026-12-01T22:00:00Z",
                "window_end": "2026-12-01T23:30:00Z",
                "expected_downtime_minutes": 15
            }),
        )
        .await
        .expect(201)
        .json
    }

    /// The whole run.
    pub async fn run(&self, token: &str, run_id: &str) -> Value {
        self.get(token, &format!("/api/v1/runs/{run_id}"))
            .await
            .expect(200)
            .json
    }

    /// Asks for a transition.
    pub async fn transition(&self, token: &str, run_id: &str, action: &str) -> Answer {
        self.post(
            token,
            &format!("/api/v1/runs/{run_id}/transitions"),
            json!({"action": action, "reason": format!("test: {action}")}),
        )
        .await
    }

    /// Records a decision with every criterion met.
    pub async fn decide(&self, token: &str, run_id: &str, point: &str, outcome: &str) -> Answer {
        let run = self.run(token, run_id).await;
        let criteria: Vec<Value> = run["decision_points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == point)
            .map(|p| {
                p["criteria"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| json!({"criterion": c, "result": "met", "observed": "as expected"}))
                    .collect()
            })
            .unwrap_or_default();
        self.post(
            token,
            &format!("/api/v1/runs/{run_id}/decisions"),
            json!({
                "point_key": point,
                "outcome": outcome,
                "rationale": format!("test decision: {outcome}"),
                "criteria": criteria
            }),
        )
        .await
    }

    /// Writes a note on the run's `i`-th item, as the admin (asserting 200).
    pub async fn note(&self, run: &Value, i: usize, text: &str) {
        let id = run["id"].as_str().unwrap();
        let item = &items(run)[i];
        self.patch(
            &self.admin,
            &format!("/api/v1/runs/{id}/items/{}", item["id"].as_str().unwrap()),
            json!({"note": text}),
            None,
        )
        .await
        .expect(200);
    }

    /// Sets an item's status (as the token's user).
    pub async fn set_item(&self, token: &str, run_id: &str, item_id: &str, status: &str) -> Answer {
        self.patch(
            token,
            &format!("/api/v1/runs/{run_id}/items/{item_id}"),
            json!({"status": status}),
            None,
        )
        .await
    }

    /// Adds a user to a run's team (as admin).
    pub async fn add_member(&self, run_id: &str, username: &str) {
        self.post(
            &self.admin,
            &format!("/api/v1/runs/{run_id}/members"),
            json!({"username": username, "run_role": "engineer on duty"}),
        )
        .await
        .expect(201);
    }

    /// Signs off an item.
    pub async fn sign(&self, token: &str, run_id: &str, item_id: &str, verdict: &str) -> Answer {
        self.post(
            token,
            &format!("/api/v1/runs/{run_id}/items/{item_id}/signoffs"),
            json!({"verdict": verdict, "comment": format!("test: {verdict}")}),
        )
        .await
    }

    /// Points the run's environment at [`TestApp::probe_target`] (as the admin) and has the
    /// target answer `/version` with the run's release version.
    pub async fn serve_probes(&self, run: &Value) {
        let environment = run["environment"].as_str().unwrap();
        self.send(
            Method::PUT,
            &format!("/api/v1/environments/{environment}"),
            Some(&self.admin),
            Some(&json!({"base_url": self.probe_target.url})),
            &[],
        )
        .await
        .expect(200);
        self.probe_target.route(
            "/version",
            receiver::Reply::status(200, &json!({"version": run["release_version"]}).to_string()),
        );
    }

    /// Runs a probe item's check now (as the token's user).
    pub async fn check(&self, token: &str, run_id: &str, item_id: &str) -> Answer {
        self.post(
            token,
            &format!("/api/v1/runs/{run_id}/items/{item_id}/checks"),
            json!({}),
        )
        .await
    }

    /// Publishes a finished run's retrospective (with lessons and a root cause); returns it.
    pub async fn publish_retrospective(&self, token: &str, run_id: &str) -> Value {
        let answer = self
            .send(
                Method::PUT,
                &format!("/api/v1/runs/{run_id}/retrospective"),
                Some(token),
                Some(&json!({
                    "went_well": "The checklist kept everyone in step.",
                    "root_cause": "A migration locked a hot table.",
                    "lessons": "Rehearse migrations on a production-sized copy.",
                    "status": "published"
                })),
                &[],
            )
            .await;
        assert!(
            answer.status == 200 || answer.status == 201,
            "the retrospective is published: {}",
            answer.json
        );
        answer.json
    }

    /// Takes a started run through its gates and decisions to completed.
    pub async fn complete(&self, token: &str, run_id: &str) {
        self.finish_gate(token, run_id, "deploy").await;
        self.decide(token, run_id, "go_no_go", "go")
            .await
            .expect(201);
        self.transition(token, run_id, "advance").await.expect(200);
        self.finish_gate(token, run_id, "verify").await;
        self.transition(token, run_id, "advance").await.expect(200);
        self.finish_gate(token, run_id, "complete").await;
        self.decide(token, run_id, "post_deployment_verification", "go")
            .await
            .expect(201);
        self.transition(token, run_id, "complete").await.expect(200);
    }

    /// Marks done every applicable item of a gate; approval items get the sign-offs their
    /// policy asks for from the signers, probe items a passing check of
    /// [`TestApp::probe_target`], items that require evidence a link.
    pub async fn finish_gate(&self, token: &str, run_id: &str, gate: &str) {
        let run = self.run(token, run_id).await;
        // Retrospective items are done by publishing the retrospective.
        if items(&run).iter().any(|i| {
            i["gate"] == gate
                && i["applicable"] == true
                && i["record"] == "retrospective"
                && i["status"] != "done"
        }) {
            self.publish_retrospective(token, run_id).await;
        }
        let run = self.run(token, run_id).await;
        for item in items(&run) {
            let fresh_probe = item["probe"]["problem"].is_null();
            if item["gate"] == gate
                && item["applicable"] == true
                && (item["status"] != "done" || !fresh_probe)
            {
                let id = item["id"].as_str().unwrap();
                if item["kind"] == "probe" {
                    self.serve_probes(&run).await;
                    let result = self.check(token, run_id, id).await.expect(201).json;
                    assert_eq!(result["passed"], true, "the check passes: {result}");
                } else if item["evidence_required"] == true {
                    self.patch(
                        token,
                        &format!("/api/v1/runs/{run_id}/items/{id}"),
                        json!({"status": "done", "evidence": [
                            {"label": "Log", "url": "https://ci.example/log/1"}
                        ]}),
                        None,
                    )
                    .await
                    .expect(200);
                } else if item["kind"] == "approval" {
                    for role in item["approval"]["missing"].as_array().unwrap() {
                        let signer = match role.as_str().unwrap() {
                            "release_manager" => &self.signers.1,
                            _ => &self.signers.0,
                        };
                        self.sign(signer, run_id, id, "approve").await.expect(201);
                    }
                } else {
                    self.set_item(token, run_id, id, "done").await.expect(200);
                }
            }
        }
    }
}

/// An open Server-Sent Events stream, read message by message.
#[derive(Debug)]
pub struct Sse {
    response: Response,
    pending: String,
    /// The position an all-runs stream said it starts after (its `ready` message).
    pub ready: Option<i64>,
}

/// One message of an event stream.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// Its `id` (the cursor).
    pub id: i64,
    /// Its `event` (the event type).
    pub event: String,
    /// Its `data`, as JSON.
    pub data: Value,
}

/// What reading a stream found.
#[derive(Debug)]
pub enum Read {
    /// A message.
    Event(SseEvent),
    /// Nothing within the time allowed.
    Quiet,
    /// The server ended the stream.
    Ended,
}

impl Sse {
    /// The next message with an id, waiting at most `wait`.
    pub async fn read(&mut self, wait: std::time::Duration) -> Read {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if event == "ready" {
                    self.ready = id;
                    continue;
                }
                if let Some(id) = id {
                    let data = serde_json::from_str(&data).unwrap();
                    return Read::Event(SseEvent { id, event, data });
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Read::Quiet,
                Ok(Ok(Some(bytes))) => self.pending.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None) | Err(_)) => return Read::Ended,
            }
        }
    }

    /// The next message, which must arrive within `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> SseEvent {
        match self.read(wait).await {
            Read::Event(e) => e,
            other => panic!("expected an event within {wait:?}, got {other:?}"),
        }
    }

    /// Every message until the stream is quiet for `quiet`.
    pub async fn drain(&mut self, quiet: std::time::Duration) -> Vec<SseEvent> {
        let mut out = Vec::new();
        loop {
            match self.read(quiet).await {
                Read::Event(e) => out.push(e),
                Read::Quiet => return out,
                Read::Ended => panic!("the stream ended"),
            }
        }
    }
}

/// Every item of a run, in checklist order.
pub fn items(run: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for part in run["parts"].as_array().unwrap() {
        for section in part["sections"].as_array().unwrap() {
            out.extend(section["items"].as_array().unwrap().iter().cloned());
        }
    }
    out
}

/// The run's first item whose title starts with `prefix`.
pub fn item_by_title(run: &Value, prefix: &str) -> Value {
    items(run)
        .into_iter()
        .find(|i| i["title"].as_str().unwrap().starts_with(prefix))
        .unwrap_or_else(|| panic!("no item titled `{prefix}…`"))
}

/// Defines each test twice: once on SQLite (`sqlite::name`), once on PostgreSQL
/// (`postgres::name`). The body gets `app: TestApp`.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $app = $crate::TestApp::spawn($crate::Backend::Sqlite).await;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $app = $crate::TestApp::spawn($crate::Backend::Postgres).await;
                    $body
                }
            )*
        }
    };
}

/// Defines each named browser test (`async fn name(backend: Backend)`) on SQLite and
/// PostgreSQL, each taking its turn with the browser (see [`browser::take_turn`]).
#[macro_export]
macro_rules! in_the_browser {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let _turn = $crate::browser::take_turn().await;
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let _turn = $crate::browser::take_turn().await;
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Defines each named test function (`async fn name(backend: Backend)`) twice: once on
/// SQLite (`sqlite::name`), once on PostgreSQL (`postgres::name`).
#[macro_export]
macro_rules! each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// A probe target that answers `/healthz` with 200 `{"status":"ok"}` (and anything else with
/// 200 `ok`).
async fn healthy_target() -> receiver::Receiver {
    let target = receiver::Receiver::start().await;
    target.route(
        "/healthz",
        receiver::Reply::status(200, r#"{"status":"ok"}"#),
    );
    target
}

/// The metrics token test servers are started with (unless a test says otherwise).
pub const METRICS_TOKEN: &str = "scrape-me-0123456789";

/// The `shipshape` binary of this build (built first when a test runs without it).
pub fn shipshape_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/shipshape
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let binary = dir.join("shipshape");
    if !binary.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args([
                "build",
                "--locked",
                "-p",
                "shipshape-api",
                "--bin",
                "shipshape",
            ])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cargo build of the shipshape binary failed"
        );
    }
    binary
}

/// A `shipshape` process serving a database; its log lines arrive on the channel.
#[derive(Debug)]
pub struct Served {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// The port it listens on.
    pub port: u16,
    _db: TestDb,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts `shipshape` with `args` (and `--bind`, `--database-url`) on a database.
    pub fn start((db, url): (TestDb, String), args: &[&str]) -> Served {
        let port = free_port();
        let mut child = std::process::Command::new(shipshape_binary())
            .args(args)
            .args([
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                &url,
            ])
            .env_remove("RUST_LOG")
            .env("SHIPSHAPE_ADMIN_PASSWORD", "correct horse battery")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in
                std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Served {
            child,
            lines,
            port,
            _db: db,
        }
    }

    /// Log lines until one satisfies `done` (or 30 s pass); all of them.
    pub fn read_until(&self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut seen = Vec::new();
        while std::time::Instant::now() < deadline {
            if let Ok(line) = self
                .lines
                .recv_timeout(std::time::Duration::from_millis(200))
            {
                let stop = done(&line);
                seen.push(line);
                if stop {
                    return seen;
                }
            }
        }
        panic!(
            "the awaited log line never came; the log:\n{}",
            seen.join("\n")
        );
    }
}
