//! Access control over real HTTP, on SQLite and PostgreSQL: the auth matrix over every
//! operation of the OpenAPI document, token attacks, API tokens, session revocation,
//! throttling, run teams, approvals with sign-offs, and break-glass overrides.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly, naming what went wrong"
)]

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::Method;
use serde_json::{Value, json};
use shipshape_tests::{
    Answer, EDULIBRA, JWT_SECRET, TestApp, USER_PASSWORD, item_by_title, on_both_backends,
};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn forge(claims: Value, key: &str, alg: Algorithm) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

fn claims_for(user_id: &str) -> Value {
    json!({"sub": user_id, "iss": "shipshape", "aud": "shipshape-api", "iat": now(), "exp": now() + 600, "tgen": 0})
}

async fn user_id(app: &TestApp, token: &str) -> String {
    app.get(token, "/api/v1/me").await.expect(200).json["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn api_token(app: &TestApp, session: &str, scopes: &[&str]) -> Value {
    app.post(
        session,
        "/api/v1/tokens",
        json!({"name": "tool", "scopes": scopes, "expires_in_days": 30}),
    )
    .await
    .expect(201)
    .json
}

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user or token.
    SignedIn,
    /// A signed-in person (session); API tokens are refused.
    SessionOnly,
    /// Only the metrics scraper, with the metrics token (no user's credential).
    Scraper,
    /// These roles, and API tokens carrying this scope.
    Roles(&'static [&'static str], &'static str),
}

const ALL: &[&str] = &["viewer", "engineer", "approver", "release_manager", "admin"];
const WORKERS: &[&str] = &["engineer", "approver", "release_manager", "admin"];
const SIGNERS: &[&str] = &["approver", "release_manager", "admin"];
const STEER: &[&str] = &["release_manager", "admin"];
const ADMIN: &[&str] = &["admin"];

/// The expected access of every operation, written out independently of the server's code.
fn access_table() -> Vec<(&'static str, Access)> {
    use Access::*;
    vec![
        ("login", Public),
        ("healthz", Public),
        ("readyz", Public),
        ("get_metrics", Scraper),
        ("get_me", SignedIn),
        ("logout", SessionOnly),
        ("update_password", SessionOnly),
        ("list_tokens", SessionOnly),
        ("create_token", SessionOnly),
        ("delete_token", SessionOnly),
        ("get_pending", Roles(ALL, "runs:read")),
        ("get_notifications", SessionOnly),
        ("update_notifications", SessionOnly),
        ("list_users", Roles(ADMIN, "admin")),
        ("create_user", Roles(ADMIN, "admin")),
        ("update_user", Roles(ADMIN, "admin")),
        ("list_templates", Roles(ALL, "runs:read")),
        ("get_template", Roles(ALL, "runs:read")),
        ("create_template", Roles(ADMIN, "templates:write")),
        ("create_template_version", Roles(ADMIN, "templates:write")),
        ("list_runs", Roles(ALL, "runs:read")),
        ("get_run", Roles(ALL, "runs:read")),
        ("create_run", Roles(STEER, "runs:write")),
        ("update_run", Roles(STEER, "runs:write")),
        ("create_transition", Roles(STEER, "runs:write")),
        ("get_item", Roles(ALL, "runs:read")),
        ("update_item", Roles(WORKERS, "runs:write")),
        ("create_claim", Roles(WORKERS, "runs:write")),
        ("create_check", Roles(WORKERS, "runs:write")),
        ("list_checks", Roles(ALL, "runs:read")),
        ("list_environments", Roles(ALL, "runs:read")),
        ("update_environment", Roles(ADMIN, "admin")),
        ("get_environment", Roles(ALL, "runs:read")),
        ("delete_environment", Roles(ADMIN, "admin")),
        ("list_environment_locks", Roles(ALL, "runs:read")),
        ("create_environment_lock", Roles(STEER, "runs:write")),
        ("update_environment_lock", Roles(STEER, "runs:write")),
        ("list_freeze_windows", Roles(ALL, "runs:read")),
        ("create_freeze_window", Roles(STEER, "runs:write")),
        ("delete_freeze_window", Roles(STEER, "runs:write")),
        ("get_calendar", Roles(ALL, "runs:read")),
        ("get_calendar_feed", Roles(ALL, "runs:read")),
        ("get_delivery_insights", Roles(ALL, "runs:read")),
        ("get_checklist_insights", Roles(ALL, "runs:read")),
        ("list_item_insight_runs", Roles(ALL, "runs:read")),
        ("list_signoffs", Roles(ALL, "runs:read")),
        ("create_signoff", Roles(SIGNERS, "runs:write")),
        ("list_members", Roles(ALL, "runs:read")),
        ("create_member", Roles(STEER, "runs:write")),
        ("delete_member", Roles(STEER, "runs:write")),
        ("list_people", Roles(STEER, "runs:write")),
        ("list_decisions", Roles(ALL, "runs:read")),
        ("create_decision", Roles(STEER, "decisions:write")),
        ("list_events", Roles(ALL, "runs:read")),
        ("get_announcement_draft", Roles(STEER, "runs:write")),
        ("create_announcement", Roles(STEER, "runs:write")),
        ("get_event_stream", Roles(ALL, "runs:read")),
        ("get_all_events_stream", Roles(ALL, "runs:read")),
        ("list_instances", Roles(ADMIN, "admin")),
        ("get_run_audit", Roles(ALL, "runs:read")),
        ("list_audit_log", Roles(ADMIN, "admin")),
        ("list_webhooks", Roles(STEER, "webhooks:write")),
        ("create_webhook", Roles(STEER, "webhooks:write")),
        ("get_webhook", Roles(STEER, "webhooks:write")),
        ("update_webhook", Roles(STEER, "webhooks:write")),
        ("delete_webhook", Roles(STEER, "webhooks:write")),
        ("create_webhook_secret", Roles(STEER, "webhooks:write")),
        ("create_test_delivery", Roles(STEER, "webhooks:write")),
        ("list_deliveries", Roles(STEER, "webhooks:write")),
        ("get_delivery", Roles(STEER, "webhooks:write")),
        ("create_redelivery", Roles(STEER, "webhooks:write")),
        ("list_issues", Roles(ALL, "runs:read")),
        ("create_issue", Roles(WORKERS, "runs:write")),
        ("get_issue", Roles(ALL, "runs:read")),
        ("update_issue", Roles(WORKERS, "runs:write")),
        ("get_retrospective", Roles(ALL, "runs:read")),
        ("update_retrospective", Roles(WORKERS, "runs:write")),
        ("create_action_item", Roles(WORKERS, "runs:write")),
        ("update_action_item", Roles(WORKERS, "runs:write")),
        ("get_run_report", Roles(ALL, "runs:read")),
        ("create_template_proposal", Roles(STEER, "runs:write")),
        ("list_template_proposals", Roles(ALL, "runs:read")),
        ("get_template_proposal", Roles(ALL, "runs:read")),
        ("update_template_proposal", Roles(ADMIN, "templates:write")),
    ]
}

/// Who is calling.
#[derive(Clone, Debug)]
enum Identity {
    Anonymous,
    User(&'static str, String),
    ScopedToken(Vec<&'static str>, String),
    Deactivated(String),
    Expired(String),
}

impl Identity {
    fn token(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::User(_, t)
            | Identity::ScopedToken(_, t)
            | Identity::Deactivated(t)
            | Identity::Expired(t) => Some(t),
        }
    }

    /// `None`: the call must succeed past authorization; `Some(code)`: 401 or 403.
    fn expected(&self, access: Access) -> Option<u16> {
        match (self, access) {
            (_, Access::Public) => None,
            (_, Access::Scraper) => Some(401),
            (Identity::Anonymous | Identity::Deactivated(_) | Identity::Expired(_), _) => Some(401),
            (Identity::User(..), Access::SignedIn | Access::SessionOnly) => None,
            (Identity::ScopedToken(..), Access::SignedIn) => None,
            (Identity::ScopedToken(..), Access::SessionOnly) => Some(403),
            (Identity::User(role, _), Access::Roles(roles, _)) => {
                (!roles.contains(role)).then_some(403)
            }
            // Tokens here belong to the admin, whose role holds every permission.
            (Identity::ScopedToken(scopes, _), Access::Roles(_, scope)) => {
                (!scopes.contains(&scope)).then_some(403)
            }
        }
    }
}

/// An id nothing has.
const NO_ID: &str = "00000000-0000-0000-0000-000000000000";

/// A request for an operation, with real ids from the fixture.
fn request(op: &str, f: &Fixture, caller: &str) -> (Method, String, Option<Value>) {
    let run = &f.run_id;
    let manual = &f.manual_item;
    let approval = &f.approval_item;
    let post = Method::POST;
    let get = Method::GET;
    match op {
        "login" => (
            post,
            "/api/v1/auth/login".into(),
            Some(json!({"username": "spare", "password": USER_PASSWORD})),
        ),
        "healthz" => (get, "/healthz".into(), None),
        "readyz" => (get, "/readyz".into(), None),
        "get_metrics" => (get, "/metrics".into(), None),
        "get_me" => (get, "/api/v1/me".into(), None),
        "logout" => (post, "/api/v1/auth/logout".into(), None),
        "update_password" => (
            post,
            "/api/v1/me/password".into(),
            Some(
                json!({"current_password": "not-the-password", "new_password": "another-long-password"}),
            ),
        ),
        "list_tokens" => (get, "/api/v1/tokens".into(), None),
        "create_token" => (
            post,
            "/api/v1/tokens".into(),
            Some(json!({"name": "matrix", "scopes": ["runs:read"], "expires_in_days": 1})),
        ),
        "delete_token" => (
            Method::DELETE,
            "/api/v1/tokens/00000000-0000-0000-0000-000000000000".into(),
            None,
        ),
        "get_pending" => (get, "/api/v1/me/pending".into(), None),
        "get_notifications" => (get, "/api/v1/me/notifications".into(), None),
        "update_notifications" => (
            Method::PATCH,
            "/api/v1/me/notifications".into(),
            Some(json!({"email_notifications": false})),
        ),
        "list_users" => (get, "/api/v1/users".into(), None),
        "create_user" => (
            post,
            "/api/v1/users".into(),
            Some(
                json!({"username": format!("made-by-{caller}"), "password": USER_PASSWORD, "role": "viewer"}),
            ),
        ),
        "update_user" => (
            Method::PATCH,
            format!("/api/v1/users/{}", f.spare_user_id),
            Some(json!({"active": true})),
        ),
        "list_templates" => (get, "/api/v1/templates".into(), None),
        "get_template" => (get, format!("/api/v1/templates/{EDULIBRA}"), None),
        "create_template" => (
            post,
            "/api/v1/templates".into(),
            Some(
                json!({"name": "Matrix", "parts": [{"title": "P", "sections": [{"title": "S", "items": [{"title": "I", "gate": "deploy"}]}]}]}),
            ),
        ),
        "create_template_version" => (
            post,
            format!("/api/v1/templates/{EDULIBRA}/versions"),
            Some(
                json!({"name": "Matrix", "parts": [{"title": "P", "sections": [{"title": "S", "items": [{"title": "I", "gate": "deploy"}]}]}]}),
            ),
        ),
        "list_runs" => (get, "/api/v1/runs".into(), None),
        "get_run" => (get, format!("/api/v1/runs/{run}"), None),
        "create_run" => (
            post,
            "/api/v1/runs".into(),
            Some(
                json!({"template_id": EDULIBRA, "product": "Matrix", "release_version": "1", "environment": "test"}),
            ),
        ),
        "update_run" => (
            Method::PATCH,
            format!("/api/v1/runs/{run}"),
            Some(json!({"expected_downtime_minutes": 5})),
        ),
        "create_transition" => (
            post,
            format!("/api/v1/runs/{run}/transitions"),
            Some(json!({"action": "start"})),
        ),
        "get_item" => (get, format!("/api/v1/runs/{run}/items/{manual}"), None),
        "update_item" => (
            Method::PATCH,
            format!("/api/v1/runs/{run}/items/{manual}"),
            Some(json!({"note": format!("checked by {caller}")})),
        ),
        "create_claim" => (
            post,
            format!("/api/v1/runs/{run}/items/{manual}/claim"),
            None,
        ),
        // Refused (422) past authorization: not a probe item.
        "create_check" => (
            post,
            format!("/api/v1/runs/{run}/items/{manual}/checks"),
            None,
        ),
        "list_checks" => (
            get,
            format!("/api/v1/runs/{run}/items/{manual}/checks"),
            None,
        ),
        "list_environments" => (get, "/api/v1/environments".into(), None),
        "list_issues" => (get, format!("/api/v1/runs/{run}/issues"), None),
        "create_issue" => (
            post,
            format!("/api/v1/runs/{run}/issues"),
            Some(json!({"title": format!("Seen by {caller}"), "severity": "sev4"})),
        ),
        // 404 past authorization: no such issue.
        "get_issue" => (get, format!("/api/v1/runs/{run}/issues/{NO_ID}"), None),
        "update_issue" => (
            Method::PATCH,
            format!("/api/v1/runs/{run}/issues/{NO_ID}"),
            Some(json!({"status": "resolved"})),
        ),
        "get_retrospective" => (get, format!("/api/v1/runs/{run}/retrospective"), None),
        // 409 past authorization: the run is not finished.
        "update_retrospective" => (
            Method::PUT,
            format!("/api/v1/runs/{run}/retrospective"),
            Some(json!({"lessons": "rehearse"})),
        ),
        "create_action_item" => (
            post,
            format!("/api/v1/runs/{run}/action-items"),
            Some(json!({"title": "Automate", "assignee": "spare", "due_on": "2999-01-01"})),
        ),
        "update_action_item" => (
            Method::PATCH,
            format!("/api/v1/runs/{run}/action-items/{NO_ID}"),
            Some(json!({"status": "done"})),
        ),
        "get_run_report" => (get, format!("/api/v1/runs/{run}/report"), None),
        "create_template_proposal" => (
            post,
            format!("/api/v1/runs/{run}/template-proposals"),
            Some(
                json!({"base_version": 1, "summary": "Reword", "markdown": "# T\n\n## P\n\n### S\n- [ ] I\n"}),
            ),
        ),
        "list_template_proposals" => (get, "/api/v1/template-proposals".into(), None),
        "get_template_proposal" => (get, format!("/api/v1/template-proposals/{NO_ID}"), None),
        "update_template_proposal" => (
            Method::PATCH,
            format!("/api/v1/template-proposals/{NO_ID}"),
            Some(json!({"status": "declined", "reason": "not now"})),
        ),
        "update_environment" => (
            Method::PUT,
            "/api/v1/environments/matrix".into(),
            Some(json!({"base_url": "https://matrix.example"})),
        ),
        "get_environment" => (get, "/api/v1/environments/production".into(), None),
        // Refused (404) past authorization: nothing has that name.
        "delete_environment" => (Method::DELETE, "/api/v1/environments/nowhere".into(), None),
        "list_environment_locks" => (get, "/api/v1/environments/production/locks".into(), None),
        // Refused (404) past authorization: locking a real environment would stop the run.
        "create_environment_lock" => (
            post,
            "/api/v1/environments/nowhere/locks".into(),
            Some(json!({"reason": "matrix"})),
        ),
        "update_environment_lock" => (
            Method::PATCH,
            format!("/api/v1/environments/production/locks/{NO_ID}"),
            Some(json!({"note": "matrix"})),
        ),
        "list_freeze_windows" => (get, "/api/v1/environments/production/freezes".into(), None),
        "create_freeze_window" => (
            post,
            "/api/v1/environments/nowhere/freezes".into(),
            Some(
                json!({"reason": "matrix", "recurrence": "weekly", "start": "sat 00:00", "end": "sun 00:00"}),
            ),
        ),
        "delete_freeze_window" => (
            Method::DELETE,
            format!("/api/v1/environments/production/freezes/{NO_ID}"),
            None,
        ),
        "get_calendar" => (get, "/api/v1/calendar".into(), None),
        "get_calendar_feed" => (get, "/api/v1/calendar.ics".into(), None),
        "get_delivery_insights" => (get, "/api/v1/insights/delivery".into(), None),
        "get_checklist_insights" => (
            get,
            format!("/api/v1/insights/checklist?template_id={EDULIBRA}"),
            None,
        ),
        "list_item_insight_runs" => (
            get,
            format!("/api/v1/insights/checklist/runs?template_id={EDULIBRA}&reference=1.1.1"),
            None,
        ),
        "list_signoffs" => (
            get,
            format!("/api/v1/runs/{run}/items/{approval}/signoffs"),
            None,
        ),
        "create_signoff" => (
            post,
            format!("/api/v1/runs/{run}/items/{approval}/signoffs"),
            Some(json!({"verdict": "approve"})),
        ),
        "list_members" => (get, format!("/api/v1/runs/{run}/members"), None),
        "list_people" => (get, "/api/v1/people?q=a".into(), None),
        "create_member" => (
            post,
            format!("/api/v1/runs/{run}/members"),
            Some(json!({"username": "spare", "run_role": "observer"})),
        ),
        "delete_member" => (
            Method::DELETE,
            format!("/api/v1/runs/{run}/members/{}", f.spare_user_id),
            None,
        ),
        "list_decisions" => (get, format!("/api/v1/runs/{run}/decisions"), None),
        "create_decision" => (
            post,
            format!("/api/v1/runs/{run}/decisions"),
            Some(json!({"point_key": "go_no_go", "outcome": "hold", "rationale": "matrix"})),
        ),
        "get_run_audit" => (get, format!("/api/v1/runs/{run}/audit"), None),
        "list_audit_log" => (get, "/api/v1/audit-log".into(), None),
        "list_events" => (get, format!("/api/v1/runs/{run}/events"), None),
        "get_announcement_draft" => (
            get,
            format!("/api/v1/runs/{run}/announcements/draft?kind=schedule"),
            None,
        ),
        "create_announcement" => (
            post,
            format!("/api/v1/runs/{run}/announcements"),
            // Refused (422) past authorization: mail is not configured here.
            Some(
                json!({"kind": "schedule", "subject": "s", "body": "b", "recipients": ["x@example.com"]}),
            ),
        ),
        "get_event_stream" => (get, format!("/api/v1/runs/{run}/events/stream"), None),
        "get_all_events_stream" => (get, "/api/v1/events/stream".into(), None),
        "list_instances" => (get, "/api/v1/instances".into(), None),
        "list_webhooks" => (get, "/api/v1/webhooks".into(), None),
        "create_webhook" => (
            post,
            "/api/v1/webhooks".into(),
            // Refused (422) past authorization: loopback without an allow-list.
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["run_created"]})),
        ),
        "get_webhook" => (get, format!("/api/v1/webhooks/{NO_ID}"), None),
        "update_webhook" => (
            Method::PATCH,
            format!("/api/v1/webhooks/{NO_ID}"),
            Some(json!({"active": false})),
        ),
        "delete_webhook" => (Method::DELETE, format!("/api/v1/webhooks/{NO_ID}"), None),
        "create_webhook_secret" => (
            post,
            format!("/api/v1/webhooks/{NO_ID}/rotate-secret"),
            None,
        ),
        "create_test_delivery" => (post, format!("/api/v1/webhooks/{NO_ID}/test"), None),
        "list_deliveries" => (get, format!("/api/v1/webhooks/{NO_ID}/deliveries"), None),
        "get_delivery" => (
            get,
            format!("/api/v1/webhooks/{NO_ID}/deliveries/msg_x"),
            None,
        ),
        "create_redelivery" => (
            post,
            format!("/api/v1/webhooks/{NO_ID}/deliveries/msg_x/redeliver"),
            None,
        ),
        other => panic!("the matrix has no request for `{other}`"),
    }
}

struct Fixture {
    run_id: String,
    manual_item: String,
    approval_item: String,
    spare_user_id: String,
}

async fn document_operations(app: &TestApp) -> Vec<(String, Vec<String>)> {
    let doc = app
        .send(Method::GET, "/api-docs/openapi.json", None, None, &[])
        .await
        .expect(200)
        .json;
    let mut ops = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let scopes = op["security"][0]["bearer"]
                .as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            ops.push((op["operationId"].as_str().unwrap().to_owned(), scopes));
        }
    }
    ops
}

on_both_backends! {
    async fn the_auth_matrix_holds_for_every_operation_and_identity(app) {
        // The table covers exactly the operations of the document, with the scopes it states.
        let table = access_table();
        let documented = document_operations(&app).await;
        let in_doc: BTreeSet<&str> = documented.iter().map(|(id, _)| id.as_str()).collect();
        let in_table: BTreeSet<&str> = table.iter().map(|(id, _)| *id).collect();
        assert_eq!(in_doc, in_table, "every operation in openapi.json is in the auth table and vice versa");
        for (id, scopes) in &documented {
            let access = table.iter().find(|(t, _)| t == id).unwrap().1;
            if let Access::Roles(_, scope) = access {
                assert_eq!(scopes, &vec![scope.to_owned()], "{id}: the document states the scope");
            }
        }

        // A run everyone works on.
        let mut roles = Vec::new();
        for role in ["viewer", "engineer", "approver", "release_manager"] {
            roles.push((role, app.user(role, role).await));
        }
        app.user("spare", "viewer").await;
        let spare_token = app.login("spare", USER_PASSWORD).await;
        let spare_user_id = user_id(&app, &spare_token).await;
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let run_id = run["id"].as_str().unwrap().to_owned();
        for (role, _) in &roles {
            app.add_member(&run_id, role).await;
        }
        app.add_member(&run_id, "spare").await;
        app.transition(&app.admin, &run_id, "start").await.expect(200);
        let fixture = Fixture {
            manual_item: item_by_title(&run, "Final testing")["id"].as_str().unwrap().to_owned(),
            approval_item: item_by_title(&run, "Detailed deployment plan")["id"].as_str().unwrap().to_owned(),
            run_id,
            spare_user_id,
        };

        let gone = app.user("gone", "engineer").await;
        let gone_id = user_id(&app, &gone).await;
        app.patch(&app.admin, &format!("/api/v1/users/{gone_id}"), json!({"active": false}), None).await.expect(200);
        let admin_id = user_id(&app, &app.admin).await;
        let expired = forge(
            json!({"sub": admin_id, "iss": "shipshape", "aud": "shipshape-api", "iat": now() - 7200, "exp": now() - 3600, "tgen": 0}),
            JWT_SECRET,
            Algorithm::HS256,
        );
        let every_scope = vec!["runs:read", "runs:write", "decisions:write", "templates:write", "webhooks:write", "admin"];
        let full = api_token(&app, &app.admin, &every_scope).await["secret"].as_str().unwrap().to_owned();
        let read_only = api_token(&app, &app.admin, &["runs:read"]).await["secret"].as_str().unwrap().to_owned();

        let mut identities = vec![
            Identity::Anonymous,
            Identity::Deactivated(gone),
            Identity::Expired(expired),
            Identity::ScopedToken(every_scope, full),
            Identity::ScopedToken(vec!["runs:read"], read_only),
        ];
        identities.extend(roles.into_iter().map(|(role, t)| Identity::User(role, t)));
        identities.push(Identity::User("admin", app.admin.clone()));

        // Logging out revokes the session the rest of the walk uses: it goes last.
        let mut ops: Vec<(&str, Access)> = table.clone();
        ops.sort_by_key(|(id, _)| *id == "logout");
        let mut failures = Vec::new();
        for identity in &identities {
            let name = match identity {
                Identity::User(role, _) => role.to_string(),
                other => format!("{other:?}").split('(').next().unwrap().to_owned(),
            };
            for (op, access) in &ops {
                let (method, path, body) = request(op, &fixture, &name);
                if op.ends_with("events_stream") || *op == "get_event_stream" {
                    // The stream never ends: judge it by its status, then hang up.
                    let mut req = app.client.get(app.url(&path));
                    if let Some(t) = identity.token() {
                        req = req.bearer_auth(t);
                    }
                    let status = req.send().await.unwrap().status().as_u16();
                    let ok = match identity.expected(*access) {
                        None => status == 200,
                        Some(code) => status == code,
                    };
                    if !ok {
                        failures.push(format!("{name} {op}: got {status}, expected {:?}", identity.expected(*access)));
                    }
                    continue;
                }
                let answer: Answer = app.send(method, &path, identity.token(), body.as_ref(), &[]).await;
                let status = answer.status.as_u16();
                let ok = match identity.expected(*access) {
                    None => status != 401 && status != 403 && status < 500,
                    Some(code) => status == code && answer.content_type == "application/problem+json",
                };
                if !ok {
                    let body: String = answer.text.chars().take(200).collect();
                    failures.push(format!("{name} {op}: got {status}, expected {:?}: {body}", identity.expected(*access)));
                }
            }
        }
        assert!(failures.is_empty(), "auth matrix failures:\n{}", failures.join("\n"));
    }

    async fn forged_expired_and_revoked_tokens_are_refused(app) {
        let admin_id = user_id(&app, &app.admin).await;
        let attacks = [
            ("alg none", {
                let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
                let body = serde_json::to_vec(&claims_for(&admin_id)).unwrap();
                format!("{header}.{}.", base64url(&body))
            }),
            ("wrong key", forge(claims_for(&admin_id), "another-secret-entirely-0123456789", Algorithm::HS256)),
            ("other algorithm", forge(claims_for(&admin_id), JWT_SECRET, Algorithm::HS512)),
            ("expired", forge(json!({"sub": admin_id, "iss": "shipshape", "aud": "shipshape-api", "iat": now() - 7200, "exp": now() - 3600, "tgen": 0}), JWT_SECRET, Algorithm::HS256)),
            ("wrong issuer", forge(json!({"sub": admin_id, "iss": "elsewhere", "aud": "shipshape-api", "iat": now(), "exp": now() + 600, "tgen": 0}), JWT_SECRET, Algorithm::HS256)),
            ("wrong audience", forge(json!({"sub": admin_id, "iss": "shipshape", "aud": "another-api", "iat": now(), "exp": now() + 600, "tgen": 0}), JWT_SECRET, Algorithm::HS256)),
            ("no expiry", forge(json!({"sub": admin_id, "iss": "shipshape", "aud": "shipshape-api", "iat": now(), "tgen": 0}), JWT_SECRET, Algorithm::HS256)),
            ("unknown user", forge(claims_for("00000000-0000-0000-0000-000000000000"), JWT_SECRET, Algorithm::HS256)),
        ];
        // The forging itself is right: a well-formed token with the real key is accepted.
        app.get(&forge(claims_for(&admin_id), JWT_SECRET, Algorithm::HS256), "/api/v1/me").await.expect(200);
        for (name, token) in attacks {
            let a = app.get(&token, "/api/v1/runs").await;
            assert_eq!(a.status.as_u16(), 401, "{name}: {}", a.text);
        }

        // Logging out revokes every earlier session of the user, not only the one used.
        let other_session = app.login("admin", shipshape_tests::ADMIN_PASSWORD).await;
        app.send(Method::POST, "/api/v1/auth/logout", Some(&app.admin), None, &[]).await.expect(204);
        app.get(&app.admin, "/api/v1/me").await.expect_problem(401, "unauthorized");
        app.get(&other_session, "/api/v1/me").await.expect_problem(401, "unauthorized");
        let fresh = app.login("admin", shipshape_tests::ADMIN_PASSWORD).await;
        app.get(&fresh, "/api/v1/me").await.expect(200);
    }

    async fn a_password_change_revokes_earlier_sessions_and_needs_the_current_password(app) {
        let eng = app.user("erin", "engineer").await;
        app.post(&eng, "/api/v1/me/password", json!({"current_password": "wrong-password!", "new_password": "a-new-long-password"}))
            .await
            .expect_problem(422, "invalid_input");
        app.post(&eng, "/api/v1/me/password", json!({"current_password": USER_PASSWORD, "new_password": "short"}))
            .await
            .expect_problem(422, "invalid_input");
        app.get(&eng, "/api/v1/me").await.expect(200);
        app.post(&eng, "/api/v1/me/password", json!({"current_password": USER_PASSWORD, "new_password": "a-new-long-password"}))
            .await
            .expect(204);
        app.get(&eng, "/api/v1/me").await.expect_problem(401, "unauthorized");
        let again = app.login("erin", "a-new-long-password").await;
        app.get(&again, "/api/v1/me").await.expect(200);
    }

    async fn deactivating_a_user_stops_their_sessions_and_tokens_at_once(app) {
        let rm = app.user("rita", "release_manager").await;
        let tool = api_token(&app, &rm, &["runs:read", "runs:write"]).await["secret"].as_str().unwrap().to_owned();
        app.get(&tool, "/api/v1/runs").await.expect(200);
        let id = user_id(&app, &rm).await;
        let users = app.get(&app.admin, "/api/v1/users").await.expect(200).json;
        assert!(users.as_array().unwrap().iter().all(|u| u.get("password_hash").is_none()), "no password data leaks");

        app.patch(&app.admin, &format!("/api/v1/users/{id}"), json!({"active": false}), None).await.expect(200);
        app.get(&rm, "/api/v1/runs").await.expect_problem(401, "unauthorized");
        app.get(&tool, "/api/v1/runs").await.expect_problem(401, "unauthorized");
        let login = app
            .send(Method::POST, "/api/v1/auth/login", None, Some(&json!({"username": "rita", "password": USER_PASSWORD})), &[])
            .await;
        assert_eq!(login.status.as_u16(), 401);

        // Reactivating the user revives neither the old session nor the old token.
        app.patch(&app.admin, &format!("/api/v1/users/{id}"), json!({"active": true}), None).await.expect(200);
        app.get(&rm, "/api/v1/runs").await.expect_problem(401, "unauthorized");
        app.get(&tool, "/api/v1/runs").await.expect_problem(401, "unauthorized");
        let again = app.login("rita", USER_PASSWORD).await;
        let tokens = app.get(&again, "/api/v1/tokens").await.expect(200).json;
        assert!(tokens[0]["revoked_at"].is_string(), "deactivation revoked the API token");

        // The last active admin cannot be demoted or deactivated.
        let admin_id = user_id(&app, &app.admin).await;
        app.patch(&app.admin, &format!("/api/v1/users/{admin_id}"), json!({"role": "viewer"}), None)
            .await
            .expect_problem(422, "invalid_input");
    }

    async fn api_tokens_are_shown_once_scoped_listed_and_revoked(app) {
        let rm = app.user("rita", "release_manager").await;
        let created = api_token(&app, &rm, &["runs:read"]).await;
        let secret = created["secret"].as_str().unwrap().to_owned();
        let token_id = created["token"]["id"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("ss_"));
        assert!(created["token"]["last_used_at"].is_null());

        // Scopes bound what the token does, even though its user may do more.
        app.get(&secret, "/api/v1/runs").await.expect(200);
        let refused = app
            .post(&secret, "/api/v1/runs", json!({"template_id": EDULIBRA, "product": "P", "release_version": "1", "environment": "e"}))
            .await
            .expect_problem(403, "forbidden");
        assert!(refused.json["detail"].as_str().unwrap().contains("runs:write"));
        // Tokens cannot mint or list tokens.
        app.get(&secret, "/api/v1/tokens").await.expect_problem(403, "forbidden");

        let listed = app.get(&rm, "/api/v1/tokens").await.expect(200);
        assert!(!listed.text.contains(&secret), "the secret is never shown again");
        assert!(listed.json[0]["last_used_at"].is_string(), "use is recorded");
        assert_eq!(listed.json[0]["scopes"], json!(["runs:read"]));

        // Another user neither sees nor revokes it.
        let other = app.user("otto", "release_manager").await;
        assert_eq!(app.get(&other, "/api/v1/tokens").await.expect(200).json, json!([]));
        app.send(Method::DELETE, &format!("/api/v1/tokens/{token_id}"), Some(&other), None, &[]).await.expect_problem(404, "not_found");
        app.get(&secret, "/api/v1/runs").await.expect(200);

        let revoked = app.send(Method::DELETE, &format!("/api/v1/tokens/{token_id}"), Some(&rm), None, &[]).await.expect(200);
        assert!(revoked.json["revoked_at"].is_string());
        app.get(&secret, "/api/v1/runs").await.expect_problem(401, "unauthorized");
        app.get("ss_0000000000000000000000000000000000000000000000000000000000000000", "/api/v1/runs").await.expect_problem(401, "unauthorized");

        // A token never gets more power than its user's role.
        let eng = app.user("erin", "engineer").await;
        app.post(&eng, "/api/v1/tokens", json!({"name": "x", "scopes": ["admin"], "expires_in_days": 1})).await.expect_problem(403, "forbidden");
        app.post(&eng, "/api/v1/tokens", json!({"name": "x", "scopes": ["runs:read"], "expires_in_days": 0})).await.expect_problem(422, "invalid_input");
        app.post(&eng, "/api/v1/tokens", json!({"name": "x", "scopes": ["runs:fly"], "expires_in_days": 1})).await.expect_problem(422, "invalid_input");
    }

    async fn an_open_event_stream_ends_when_its_session_is_revoked(app) {
        let viewer = app.user("vic", "viewer").await;
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let mut stream = app
            .client
            .get(app.url(&format!("/api/v1/runs/{id}/events/stream")))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status().as_u16(), 200);
        app.send(Method::POST, "/api/v1/auth/logout", Some(&viewer), None, &[]).await.expect(204);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await.expect("the stream ends soon after the logout");
            match chunk {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }

    async fn a_user_holds_a_bounded_number_of_event_streams(app) {
        let viewer = app.user("vic", "viewer").await;
        let id = app.create_run(&app.admin, "EduLibra", "production").await["id"].as_str().unwrap().to_owned();
        let path = app.url(&format!("/api/v1/runs/{id}/events/stream"));
        let mut open = Vec::new();
        for _ in 0..16 {
            let res = app.client.get(&path).bearer_auth(&viewer).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            open.push(res);
        }
        let refused = app.client.get(&path).bearer_auth(&viewer).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 429);
        // Others are not affected.
        let other = app.client.get(&path).bearer_auth(&app.admin).send().await.unwrap();
        assert_eq!(other.status().as_u16(), 200);
        // HEAD asks for the headers only: it opens no stream, so it is answered even now.
        let head = app.client.head(&path).bearer_auth(&viewer).send().await.unwrap();
        assert_eq!(head.status().as_u16(), 200, "HEAD holds no place");

        // Closing the streams frees their places at once: a person reloading a page is not
        // refused. (A moment's grace covers the close reaching a busy server.)
        drop(open);
        let mut reopened = Vec::new();
        // HEAD on a stream answers its headers and holds no place.
        for _ in 0..16 {
            let head = app.client.head(&path).bearer_auth(&viewer).send().await.unwrap();
            assert_eq!(head.status().as_u16(), 200);
            assert!(head.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
            assert_eq!(head.text().await.unwrap(), "");
        }
        for n in 0..16 {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            loop {
                let res = app.client.get(&path).bearer_auth(&viewer).send().await.unwrap();
                if res.status().as_u16() == 200 {
                    reopened.push(res);
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "stream {n} is refused after the others closed: {}", res.status());
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }

    async fn a_token_loses_power_when_its_user_does(app) {
        let rm = app.user("rita", "release_manager").await;
        let tool = api_token(&app, &rm, &["runs:read", "runs:write"]).await["secret"].as_str().unwrap().to_owned();
        let body = json!({"template_id": EDULIBRA, "product": "P", "release_version": "1", "environment": "e"});
        app.post(&tool, "/api/v1/runs", body.clone()).await.expect(201);
        let id = user_id(&app, &rm).await;
        app.patch(&app.admin, &format!("/api/v1/users/{id}"), json!({"role": "viewer"}), None).await.expect(200);
        app.post(&tool, "/api/v1/runs", body).await.expect_problem(403, "forbidden");
        app.get(&tool, "/api/v1/runs").await.expect(200);
    }

    async fn repeated_failed_logins_are_throttled_with_retry_after(app) {
        app.user("erin", "engineer").await;
        let wrong = json!({"username": "erin", "password": "wrong-password"});
        for _ in 0..5 {
            app.send(Method::POST, "/api/v1/auth/login", None, Some(&wrong), &[]).await.expect_problem(401, "unauthorized");
        }
        let throttled = app.send(Method::POST, "/api/v1/auth/login", None, Some(&wrong), &[]).await;
        let retry_after: u64 = {
            let res = app
                .client
                .post(app.url("/api/v1/auth/login"))
                .json(&json!({"username": "erin", "password": USER_PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 429, "even the right password waits");
            res.headers()["retry-after"].to_str().unwrap().parse().unwrap()
        };
        let throttled = throttled.expect_problem(429, "too_many_attempts");
        assert!(throttled.json["detail"].as_str().unwrap().contains("try again"));
        assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        // Other accounts are not locked by it.
        app.login("admin", shipshape_tests::ADMIN_PASSWORD).await;
    }

    async fn one_address_cannot_lock_out_another_account_with_the_right_password(app) {
        // Twenty failures from one address, spread over accounts so none of them locks.
        for i in 0..20 {
            let wrong = json!({"username": format!("guess{}", i / 4), "password": "wrong-password"});
            app.send(Method::POST, "/api/v1/auth/login", None, Some(&wrong), &[]).await.expect_problem(401, "unauthorized");
        }
        // Past the address's limit, guesses are paced: one more still gets its answer, after
        // waiting for its turn.
        let wrong = json!({"username": "guess9", "password": "wrong-password"});
        app.send(Method::POST, "/api/v1/auth/login", None, Some(&wrong), &[]).await.expect_problem(401, "unauthorized");
        // Someone else at the same address signs in with the right password: slowed, not refused.
        let started = std::time::Instant::now();
        app.login("admin", shipshape_tests::ADMIN_PASSWORD).await;
        assert!(started.elapsed() >= std::time::Duration::from_millis(500), "the attempt waited for its turn");
    }

    async fn team_members_claim_items_and_find_them_waiting(app) {
        let eng = app.user("erin", "engineer").await;
        let outsider = app.user("oscar", "engineer").await;
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let item = item_by_title(&run, "Final testing")["id"].as_str().unwrap().to_owned();

        app.post(&app.admin, &format!("/api/v1/runs/{id}/members"), json!({"username": "erin", "run_role": "deployment lead"}))
            .await
            .expect(201);
        app.post(&app.admin, &format!("/api/v1/runs/{id}/members"), json!({"username": "erin", "run_role": "again"}))
            .await
            .expect_problem(409, "duplicate");
        app.post(&app.admin, &format!("/api/v1/runs/{id}/members"), json!({"username": "nobody", "run_role": "x"}))
            .await
            .expect_problem(422, "invalid_input");
        let members = app.get(&eng, &format!("/api/v1/runs/{id}/members")).await.expect(200).json;
        assert_eq!(members[0]["username"], "erin");
        assert_eq!(members[0]["run_role"], "deployment lead");

        let claim = format!("/api/v1/runs/{id}/items/{item}/claim");
        app.send(Method::POST, &claim, Some(&outsider), None, &[]).await.expect_problem(403, "forbidden");
        let claimed = app.send(Method::POST, &claim, Some(&eng), None, &[]).await.expect(200);
        assert_eq!(claimed.json["assignee"], "erin");
        let path = format!("/api/v1/runs/{id}/items/{item}");
        app.patch(&app.admin, &path, json!({"assignee": "oscar"}), None).await.expect_problem(422, "invalid_input");

        let pending = app.get(&eng, "/api/v1/me/pending").await.expect(200).json;
        assert_eq!(pending["assigned"].as_array().unwrap().len(), 1);
        assert_eq!(pending["assigned"][0]["item"]["id"], item.as_str());
        assert_eq!(pending["assigned"][0]["run_label"], "EduLibra 4.2.0 → production");
        app.set_item(&eng, id, &item, "done").await.expect(200);
        let pending = app.get(&eng, "/api/v1/me/pending").await.expect(200).json;
        assert!(pending["assigned"].as_array().unwrap().is_empty(), "done items no longer wait");

        // Release managers find the decisions of the runs' current stages waiting on them.
        app.transition(&app.admin, id, "start").await.expect(200);
        let rm = app.user("rita", "release_manager").await;
        let pending = app.get(&rm, "/api/v1/me/pending").await.expect(200).json;
        let decisions: Vec<&str> = pending["decisions"].as_array().unwrap().iter().map(|d| d["point_key"].as_str().unwrap()).collect();
        assert_eq!(decisions, ["go_no_go"]);
        assert!(app.get(&eng, "/api/v1/me/pending").await.expect(200).json["decisions"].as_array().unwrap().is_empty(), "engineers do not decide");
        app.decide(&rm, id, "go_no_go", "go").await.expect(201);
        assert!(app.get(&rm, "/api/v1/me/pending").await.expect(200).json["decisions"].as_array().unwrap().is_empty());

        // The run shows its team; removing a member is logged.
        let run = app.run(&eng, id).await;
        assert_eq!(run["members"].as_array().unwrap().len(), 1);
        let erin_id = run["members"][0]["user_id"].as_str().unwrap();
        app.send(Method::DELETE, &format!("/api/v1/runs/{id}/members/{erin_id}"), Some(&app.admin), None, &[]).await.expect(204);
        let types: Vec<String> = app.get(&app.admin, &format!("/api/v1/runs/{id}/events")).await.expect(200).json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert!(types.contains(&"member_added".to_owned()) && types.contains(&"member_removed".to_owned()));
        app.set_item(&eng, id, &item, "pending").await.expect_problem(403, "forbidden");
    }

    async fn an_approver_outside_the_team_signs_off_but_does_not_work_the_item(app) {
        // The policy: sign-off is a separate duty from the work (four eyes), and approvers are
        // usually outside the deployment team, so any approver may sign off any run's
        // approval items; working an item still needs a place on the team.
        let outsider = app.user("olga", "approver").await;
        let rm = app.user("rita", "release_manager").await;
        let run = app.create_run(&rm, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        let members = app.get(&rm, &format!("/api/v1/runs/{id}/members")).await.expect(200).json;
        assert!(!members.to_string().contains("olga"), "not on the team");
        let plan = item_by_title(&run, "Detailed deployment plan");
        let plan_id = plan["id"].as_str().unwrap();
        app.patch(&outsider, &format!("/api/v1/runs/{id}/items/{plan_id}"), json!({"note": "looks fine"}), None)
            .await
            .expect_problem(403, "forbidden");
        app.sign(&outsider, id, plan_id, "approve").await.expect(201);
    }

    async fn an_approval_needs_distinct_signers_of_the_policy_roles_and_never_the_worker(app) {
        let eng = app.user("erin", "engineer").await;
        let approver = app.user("alex", "approver").await;
        let approver_who_worked = app.user("wendy", "approver").await;
        let rm = app.user("rita", "release_manager").await;
        let rm2 = app.user("ray", "release_manager").await;
        let run = app.create_run(&rm, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        for who in ["erin", "wendy"] {
            app.add_member(id, who).await;
        }
        let plan = item_by_title(&run, "Detailed deployment plan");
        let plan_id = plan["id"].as_str().unwrap();
        assert_eq!(plan["approval"]["approvers"], json!(["release_manager", "approver"]));
        assert_eq!(plan["approval"]["state"], "pending");

        // The work: an engineer prepares, an approver chips in.
        let path = format!("/api/v1/runs/{id}/items/{plan_id}");
        app.patch(&eng, &path, json!({"status": "in_progress", "evidence_url": "https://wiki.example/plan"}), None).await.expect(200);
        app.patch(&approver_who_worked, &path, json!({"note": "added the rollback steps"}), None).await.expect(200);
        app.patch(&eng, &path, json!({"note": "added the rollback steps; fixed a typo"}), None).await.expect(200);

        let pending = app.get(&approver, "/api/v1/me/pending").await.expect(200).json;
        assert!(pending["approvals"].as_array().unwrap().iter().any(|p| p["item"]["id"] == plan_id));
        let pending = app.get(&approver_who_worked, "/api/v1/me/pending").await.expect(200).json;
        assert!(!pending["approvals"].as_array().unwrap().iter().any(|p| p["item"]["id"] == plan_id), "not one's own work");

        app.sign(&eng, id, plan_id, "approve").await.expect_problem(403, "forbidden");
        app.sign(&approver_who_worked, id, plan_id, "approve").await.expect_problem(403, "forbidden");
        app.sign(&approver, id, plan_id, "approve").await.expect(201);
        app.sign(&approver, id, plan_id, "approve").await.expect_problem(409, "signoff_refused");
        let other_approver = app.user("abe", "approver").await;
        app.sign(&other_approver, id, plan_id, "approve").await.expect_problem(409, "signoff_refused");
        let item = app.get(&rm, &path).await.expect(200).json;
        assert_eq!(item["approval"]["missing"], json!(["release_manager"]));
        assert_ne!(item["status"], "done");

        app.sign(&rm2, id, plan_id, "approve").await.expect(201);
        let item = app.get(&rm, &path).await.expect(200).json;
        assert_eq!(item["status"], "done");
        assert_eq!(item["approval"]["state"], "approved");
        assert_eq!(item["approval"]["signoffs"].as_array().unwrap().len(), 2);

        // Re-sending the same evidence changes nothing and keeps the approval.
        app.patch(&eng, &path, json!({"evidence_url": "https://wiki.example/plan"}), None).await.expect(200);
        assert_eq!(app.get(&rm, &path).await.expect(200).json["status"], "done");

        // A material change to the approved work invalidates the sign-offs, and the log says so.
        app.patch(&eng, &path, json!({"evidence_url": "https://wiki.example/plan-v2"}), None).await.expect(200);
        let item = app.get(&rm, &path).await.expect(200).json;
        assert_eq!(item["status"], "in_progress");
        assert_eq!(item["approval"]["state"], "pending");
        assert!(item["approval"]["signoffs"].as_array().unwrap().is_empty());
        let log = app.get(&rm, &format!("/api/v1/runs/{id}/events")).await.expect(200).json;
        let last = log["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["type"], "item_updated");
        assert_eq!(last["payload"]["invalidated_signoffs"], 2);
        let all = app.get(&rm, &format!("/api/v1/runs/{id}/items/{plan_id}/signoffs")).await.expect(200).json;
        assert_eq!(all.as_array().unwrap().len(), 2);
        assert!(all.as_array().unwrap().iter().all(|s| s["invalidated_at"].is_string()));
    }

    async fn a_rejection_blocks_the_item_until_it_is_reworked(app) {
        let eng = app.user("erin", "engineer").await;
        let approver = app.user("alex", "approver").await;
        let run = app.create_run(&app.admin, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        app.add_member(id, "erin").await;
        let migration = item_by_title(&run, "Data migration scripts")["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/runs/{id}/items/{migration}");

        app.post(&approver, &format!("{path}/signoffs"), json!({"verdict": "reject"})).await.expect_problem(422, "invalid_input");
        app.post(&approver, &format!("{path}/signoffs"), json!({"verdict": "reject", "comment": "the down migration is missing"}))
            .await
            .expect(201);
        let item = app.get(&eng, &path).await.expect(200).json;
        assert_eq!(item["status"], "blocked");
        assert_eq!(item["approval"]["state"], "rejected");
        let second = app.user("abe", "approver").await;
        app.sign(&second, id, &migration, "approve").await.expect_problem(409, "signoff_refused");

        app.patch(&eng, &path, json!({"note": "down migration added"}), None).await.expect(200);
        let item = app.get(&eng, &path).await.expect(200).json;
        assert_eq!(item["status"], "in_progress", "the rework lifts the block");
        app.sign(&approver, id, &migration, "approve").await.expect(201);
        assert_eq!(app.get(&eng, &path).await.expect(200).json["status"], "done");
        app.sign(&second, id, &migration, "approve").await.expect_problem(409, "signoff_refused");
        // A waived approval item takes no sign-offs (they would undo the waiver).
        let plan = item_by_title(&run, "Detailed deployment plan")["id"].as_str().unwrap().to_owned();
        app.patch(&app.admin, &format!("/api/v1/runs/{id}/items/{plan}"), json!({"status": "skipped", "reason": "plan reviewed offline"}), None)
            .await
            .expect(200);
        app.sign(&approver, id, &plan, "reject").await.expect_problem(409, "signoff_refused");
        // Manual items take no sign-offs.
        let manual = item_by_title(&run, "Final testing")["id"].as_str().unwrap().to_owned();
        app.sign(&approver, id, &manual, "approve").await.expect_problem(409, "signoff_refused");
    }

    async fn break_glass_forces_a_gate_flags_the_run_and_holds_the_close_for_a_review(app) {
        let rm = app.user("rita", "release_manager").await;
        let eng = app.user("erin", "engineer").await;
        let run = app.create_run(&rm, "EduLibra", "production").await;
        let id = run["id"].as_str().unwrap();
        app.transition(&rm, id, "start").await.expect(200);
        let path = format!("/api/v1/runs/{id}/transitions");
        let app = &app;
        let force = |token: &str, body: Value| {
            let token = token.to_owned();
            let path = path.clone();
            async move { app.post(&token, &path, body).await }
        };
        force(&rm, json!({"action": "advance", "force": true})).await.expect_problem(422, "invalid_input");
        force(&eng, json!({"action": "advance", "force": true, "reason": "outage"})).await.expect_problem(403, "forbidden");
        force(&rm, json!({"action": "complete", "force": true, "reason": "outage"})).await.expect_problem(409, "invalid_transition");

        let forced = force(&rm, json!({"action": "advance", "force": true, "reason": "sev-1: the old release corrupts loans"}))
            .await
            .expect(200)
            .json;
        assert_eq!(forced["status"], "deploying");
        assert_eq!(forced["overridden"], true);
        let review = item_by_title(&forced, "Review the emergency override");
        assert_eq!(review["gate"], "close");
        assert_eq!(review["required"], true);
        let last_part = forced["parts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last_part["title"], "Emergency overrides");

        let log = app.get(&rm, &format!("/api/v1/runs/{id}/events")).await.expect(200).json;
        let event = log["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(event["type"], "run_overridden");
        assert_eq!(event["payload"]["reason"], "sev-1: the old release corrupts loans");
        assert_eq!(event["payload"]["overridden_blockers"].as_array().unwrap().len(), 19);
        let listed = app.get(&rm, "/api/v1/runs?status=deploying").await.expect(200).json;
        assert_eq!(listed["items"][0]["overridden"], true, "the flag shows in lists too");

        // The run cannot close until someone reviews the override.
        app.decide(&rm, id, "deployment_checkpoint", "rollback").await.expect(201);
        app.transition(&rm, id, "finish_rollback").await.expect(200);
        let refused = app.transition(&rm, id, "close").await.expect_problem(409, "gate_blocked");
        force(&rm, json!({"action": "close", "force": true, "reason": "skip the review"}))
            .await
            .expect_problem(409, "invalid_transition");
        let review_id = review["id"].as_str().unwrap();
        assert!(refused.json["blockers"].as_array().unwrap().iter().any(|b| b["item_id"] == review_id));
        app.finish_gate(&rm, id, "close").await;
        app.transition(&rm, id, "close").await.expect(200);
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
