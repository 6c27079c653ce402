//! The web app's one typed HTTP client. Every call goes through [`send`]: it adds the
//! session's bearer token, sends `If-Match` where an edit names the version it was based on,
//! and decodes a non-2xx answer into the API's problem type, so pages show the server's own
//! words. A 401 on a signed-in call ends the session (the sign-in page then brings the user
//! back where they were).

use serde::Serialize;
use serde::de::DeserializeOwned;
use shipshape_domain::announcement::{
    AnnouncementDraft, AnnouncementKind, AnnouncementReceipt, SendAnnouncementRequest,
};
use shipshape_domain::environment::{
    Calendar, CreateFreezeRequest, Environment, EnvironmentList, EnvironmentLock, FreezeList,
    FreezeWindow, LockEnvironmentRequest, PutEnvironmentRequest, UnlockEnvironmentRequest,
};
use shipshape_domain::proposal::{
    CreateProposalRequest, ProposalList, ReviewProposalRequest, TemplateProposal,
};
use shipshape_domain::records::{
    ActionItem, CreateActionItemRequest, CreateIssueRequest, Issue, IssueList,
    PutRetrospectiveRequest, Retrospective, UpdateActionItemRequest, UpdateIssueRequest,
};
use shipshape_domain::report::RunReport;
use shipshape_domain::webhook::{
    CreateWebhookRequest, CreatedWebhook, DeliveryPage, RotatedSecret, UpdateWebhookRequest,
    WebhookDelivery, WebhookSubscription,
};
use shipshape_domain::wire::{
    ApiToken, ChangePasswordRequest, CreateDecisionRequest, CreateRunRequest, CreateSignoffRequest,
    CreateTokenRequest, CreateUserRequest, CreatedToken, Decision, Pending, ProbeResult,
    ProbeResultPage, Problem, Run, RunItem, RunPage, Signoff, TemplateDetail, TemplateSummary,
    TokenResponse, TransitionRequest, UpdateItemRequest, UpdateUserRequest, User,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::format::problem_message;
use crate::session;

/// The API's base path.
pub const BASE: &str = "/api/v1";

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status; 0 when the server could not be reached.
    pub status: u16,
    /// The problem detail the server sent, if it sent one.
    pub problem: Option<Box<Problem>>,
}

impl ApiError {
    fn network() -> Self {
        ApiError {
            status: 0,
            problem: None,
        }
    }

    /// The failure in words a person understands.
    pub fn message(&self) -> String {
        problem_message(self.status, self.problem.as_deref())
    }

    /// The problem's machine code, if any.
    pub fn code(&self) -> Option<&str> {
        self.problem.as_ref().map(|p| p.code.as_str())
    }

    /// A problem found before anything was sent (a field that cannot be read).
    pub fn invalid(detail: impl Into<String>) -> Self {
        ApiError {
            status: 422,
            problem: Some(Box::new(Problem {
                problem_type: "about:blank".into(),
                title: "Invalid input".into(),
                status: 422,
                detail: detail.into(),
                code: "invalid_input".into(),
                blockers: None,
            })),
        }
    }

    /// Whether someone else changed the thing since it was loaded (412).
    pub fn is_conflict(&self) -> bool {
        self.status == 412
    }
}

/// What a call returns.
pub type ApiResult<T> = Result<T, ApiError>;

enum Body {
    Json(String),
    Markdown(String),
}

fn json_body<B: Serialize>(body: &B) -> ApiResult<Option<Body>> {
    serde_json::to_string(body)
        .map(|s| Some(Body::Json(s)))
        .map_err(|_| ApiError::network())
}

thread_local! {
    /// Reads started before the screen that wants them was loaded: when they started, and
    /// each one's path and pending `fetch` (see [`prefetch`]).
    static EARLY: std::cell::RefCell<(f64, Vec<(String, js_sys::Promise)>)> =
        const { std::cell::RefCell::new((0.0, Vec::new())) };
}

/// Starts reading `paths` now, for the screen whose module is still on its way: its first
/// `GET` of each path takes this answer instead of asking again. The screen's data and its
/// code then arrive side by side, not one after the other. (Another screen's reads started
/// earlier are dropped.)
pub fn prefetch(paths: &[String]) {
    if session::token().is_none() {
        return;
    }
    let mut pending = Vec::new();
    for path in paths {
        if let Ok(read) = start("GET", path, None, None, "application/json") {
            pending.push((path.clone(), read));
        }
    }
    EARLY.set((js_sys::Date::now(), pending));
}

/// Drops the reads [`prefetch`] started: the session they were read for has ended or
/// changed, and no one else may be served them.
pub fn forget_prefetched() {
    EARLY.set((0.0, Vec::new()));
}

/// The answer of a read [`prefetch`] started for `path`, once, and only while it is fresh
/// (a screen that never came, its module not fetched, leaves answers nobody should read).
fn early(path: &str) -> Option<js_sys::Promise> {
    EARLY.with_borrow_mut(|(at, early)| {
        let i = early.iter().position(|(p, _)| p == path)?;
        (js_sys::Date::now() - *at < 10_000.0).then(|| early.swap_remove(i).1)
    })
}

/// Starts a request: the browser's `fetch` promise.
fn start(
    method: &str,
    path: &str,
    body: Option<Body>,
    if_match: Option<i64>,
    accept: &str,
) -> ApiResult<js_sys::Promise> {
    let window = web_sys::window().ok_or_else(ApiError::network)?;
    let headers = web_sys::Headers::new().map_err(|_| ApiError::network())?;
    let _ = headers.set("Accept", accept);
    let token = session::token();
    if let Some(token) = &token {
        let _ = headers.set("Authorization", &format!("Bearer {token}"));
    }
    if let Some(version) = if_match {
        let _ = headers.set("If-Match", &format!("\"{version}\""));
    }
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    match &body {
        Some(Body::Json(text)) => {
            let _ = headers.set("Content-Type", "application/json");
            init.set_body(&JsValue::from_str(text));
        }
        Some(Body::Markdown(text)) => {
            let _ = headers.set("Content-Type", "text/markdown; charset=utf-8");
            init.set_body(&JsValue::from_str(text));
        }
        None => {}
    }
    init.set_headers(&headers);
    let url = format!("{BASE}{path}");
    let request =
        web_sys::Request::new_with_str_and_init(&url, &init).map_err(|_| ApiError::network())?;
    Ok(window.fetch_with_request(&request))
}

async fn send(
    method: &str,
    path: &str,
    body: Option<Body>,
    if_match: Option<i64>,
    accept: &str,
) -> ApiResult<web_sys::Response> {
    let token = session::token();
    // Only a read takes a prefetched answer (and only a read may use it up).
    let prefetched = if method == "GET" { early(path) } else { None };
    let pending = match prefetched {
        Some(pending) => pending,
        None => start(method, path, body, if_match, accept)?,
    };
    let response: web_sys::Response = JsFuture::from(pending)
        .await
        .map_err(|_| ApiError::network())?
        .dyn_into()
        .map_err(|_| ApiError::network())?;
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let problem = text(&response)
        .await
        .ok()
        .and_then(|t| from_json::<Problem>(&t))
        .map(Box::new);
    if status == 401
        && let Some(sent) = &token
    {
        session::refused(sent);
    }
    Err(ApiError { status, problem })
}

async fn text(response: &web_sys::Response) -> ApiResult<String> {
    let promise = response.text().map_err(|_| ApiError::network())?;
    JsFuture::from(promise)
        .await
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(ApiError::network)
}

/// Reads JSON into one of the wire types. The text is parsed into a `serde_json::Value`
/// first: one copy of the parser serves every type, and each type's decoder reads from the
/// tree, which takes far less code per type (the module is smaller by a fifth of its decoders).
pub fn from_json<T: DeserializeOwned>(text: &str) -> Option<T> {
    let value = serde_json::from_str::<serde_json::Value>(text).ok()?;
    T::deserialize(value).ok()
}

/// The error for an answer that is not what the API documents.
fn unreadable(status: u16) -> ApiError {
    ApiError {
        status,
        problem: Some(Box::new(Problem {
            problem_type: "about:blank".into(),
            title: "Unexpected answer".into(),
            status,
            detail: "The server's answer could not be read; reload the page.".into(),
            code: "unreadable_response".into(),
            blockers: None,
        })),
    }
}

async fn decode<T: DeserializeOwned>(response: web_sys::Response) -> ApiResult<T> {
    let status = response.status();
    let body = text(&response).await?;
    from_json(&body).ok_or_else(|| unreadable(status))
}

async fn get<T: DeserializeOwned>(path: &str) -> ApiResult<T> {
    decode(send("GET", path, None, None, "application/json").await?).await
}

async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> ApiResult<T> {
    decode(send("POST", path, json_body(body)?, None, "application/json").await?).await
}

async fn patch<B: Serialize, T: DeserializeOwned>(
    path: &str,
    body: &B,
    version: i64,
) -> ApiResult<T> {
    decode(
        send(
            "PATCH",
            path,
            json_body(body)?,
            Some(version),
            "application/json",
        )
        .await?,
    )
    .await
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}

// --- Sessions ---------------------------------------------------------------------------

/// Signs in.
pub async fn login(username: &str, password: &str) -> ApiResult<TokenResponse> {
    let body = shipshape_domain::wire::LoginRequest {
        username: username.to_owned(),
        password: password.to_owned(),
    };
    post("/auth/login", &body).await
}

/// Ends the session on the server (its token stops working everywhere).
pub async fn logout() -> ApiResult<()> {
    send("POST", "/auth/logout", None, None, "application/json").await?;
    Ok(())
}

/// The signed-in user.
pub async fn me() -> ApiResult<User> {
    get("/me").await
}

/// What waits on the signed-in user.
pub async fn pending() -> ApiResult<Pending> {
    get("/me/pending").await
}

/// Changes the signed-in user's password.
pub async fn change_password(body: &ChangePasswordRequest) -> ApiResult<()> {
    send(
        "POST",
        "/me/password",
        json_body(body)?,
        None,
        "application/json",
    )
    .await?;
    Ok(())
}

// --- Runs -------------------------------------------------------------------------------

/// One page of runs, newest first; `query` is a ready query string (`status=planned&…`).
pub async fn list_runs(query: &str) -> ApiResult<RunPage> {
    get(&format!("/runs?{query}")).await
}

/// Opens a run.
pub async fn create_run(body: &CreateRunRequest) -> ApiResult<Run> {
    post("/runs", body).await
}

/// The whole run.
pub async fn get_run(run_id: &str) -> ApiResult<Run> {
    get(&format!("/runs/{run_id}")).await
}

/// The path of a page of a run's event log after sequence number `after`.
pub fn events_path(run_id: &str, after: i64) -> String {
    format!("/runs/{run_id}/events?after={after}&limit=500")
}

/// A page of a run's event log after sequence number `after`.
pub async fn events(run_id: &str, after: i64) -> ApiResult<LogPage> {
    // Each item is read for its place in the log only (see `LogEvent`).
    let mut tree: serde_json::Value = get(&events_path(run_id, after)).await?;
    let items = match tree["items"].take() {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|e| crate::live::LogEvent::read(e).ok_or_else(|| unreadable(200)))
            .collect::<ApiResult<Vec<_>>>()?,
        _ => return Err(unreadable(200)),
    };
    Ok(LogPage {
        items,
        next_after: tree["next_after"].as_i64(),
    })
}

/// One page of a run's log.
#[derive(Debug)]
pub struct LogPage {
    /// The events, in order.
    pub items: Vec<crate::live::LogEvent>,
    /// Where the next page starts, if there is one.
    pub next_after: Option<i64>,
}

/// Moves a run that was at `version` when the user chose to (two people pressing "advance"
/// at once must not move it twice).
pub async fn transition(run_id: &str, body: &TransitionRequest, version: i64) -> ApiResult<Run> {
    let path = format!("/runs/{run_id}/transitions");
    decode(
        send(
            "POST",
            &path,
            json_body(body)?,
            Some(version),
            "application/json",
        )
        .await?,
    )
    .await
}

/// One item, fresh.
pub async fn get_item(run_id: &str, item_id: &str) -> ApiResult<RunItem> {
    get(&format!("/runs/{run_id}/items/{item_id}")).await
}

/// Changes an item that was at `version` when the change was made.
pub async fn update_item(
    run_id: &str,
    item_id: &str,
    body: &UpdateItemRequest,
    version: i64,
) -> ApiResult<RunItem> {
    patch(&format!("/runs/{run_id}/items/{item_id}"), body, version).await
}

/// Changes a run's release version or schedule, if it is still at `version`.
pub async fn update_run(
    run_id: &str,
    body: &shipshape_domain::wire::UpdateRunRequest,
    version: i64,
) -> ApiResult<Run> {
    patch(&format!("/runs/{run_id}"), body, version).await
}

/// Assigns an item to the signed-in user.
pub async fn claim(run_id: &str, item_id: &str) -> ApiResult<RunItem> {
    let path = format!("/runs/{run_id}/items/{item_id}/claim");
    decode(send("POST", &path, None, None, "application/json").await?).await
}

/// Runs a probe item's check now.
pub async fn run_check(run_id: &str, item_id: &str) -> ApiResult<ProbeResult> {
    let path = format!("/runs/{run_id}/items/{item_id}/checks");
    decode(send("POST", &path, None, None, "application/json").await?).await
}

/// A probe item's latest results, newest first.
pub async fn checks(run_id: &str, item_id: &str) -> ApiResult<ProbeResultPage> {
    get(&format!("/runs/{run_id}/items/{item_id}/checks?limit=20")).await
}

/// Signs off an approval item.
pub async fn sign_off(
    run_id: &str,
    item_id: &str,
    body: &CreateSignoffRequest,
) -> ApiResult<Signoff> {
    post(&format!("/runs/{run_id}/items/{item_id}/signoffs"), body).await
}

/// Records a decision.
pub async fn decide(run_id: &str, body: &CreateDecisionRequest) -> ApiResult<Decision> {
    post(&format!("/runs/{run_id}/decisions"), body).await
}

/// Adds someone to the run's team.
pub async fn add_member(
    run_id: &str,
    body: &shipshape_domain::wire::AddMemberRequest,
) -> ApiResult<shipshape_domain::wire::RunMember> {
    post(&format!("/runs/{run_id}/members"), body).await
}

/// Takes someone off the run's team.
pub async fn remove_member(run_id: &str, user_id: &str) -> ApiResult<()> {
    send(
        "DELETE",
        &format!("/runs/{run_id}/members/{user_id}"),
        None,
        None,
        "application/json",
    )
    .await?;
    Ok(())
}

/// The people who can be put on a team (release managers).
pub async fn people() -> ApiResult<Vec<shipshape_domain::wire::Person>> {
    get("/people?limit=200").await
}

// --- Templates --------------------------------------------------------------------------

/// Every template.
pub async fn list_templates() -> ApiResult<Vec<TemplateSummary>> {
    get("/templates").await
}

/// A template's latest version.
pub async fn get_template(template_id: &str) -> ApiResult<TemplateDetail> {
    get(&format!("/templates/{template_id}")).await
}

/// A template's latest version as Markdown.
pub async fn get_template_markdown(template_id: &str) -> ApiResult<String> {
    Ok(template_markdown(template_id).await?.0)
}

/// A template's latest version as Markdown, with its version number (its `ETag`).
pub async fn template_markdown(template_id: &str) -> ApiResult<(String, i32)> {
    let path = format!("/templates/{template_id}");
    let response = send("GET", &path, None, None, "text/markdown").await?;
    let version = response
        .headers()
        .get("etag")
        .ok()
        .flatten()
        .and_then(|t| t.trim_matches('"').parse().ok())
        .unwrap_or(0);
    Ok((text(&response).await?, version))
}

/// Imports a template from Markdown.
pub async fn import_template(markdown: &str) -> ApiResult<TemplateDetail> {
    let body = Some(Body::Markdown(markdown.to_owned()));
    decode(send("POST", "/templates", body, None, "application/json").await?).await
}

// --- Users and tokens -------------------------------------------------------------------

/// Every user (admin).
pub async fn list_users() -> ApiResult<Vec<User>> {
    get("/users").await
}

/// Creates a user (admin).
pub async fn create_user(body: &CreateUserRequest) -> ApiResult<User> {
    post("/users", body).await
}

/// Changes a user's role or deactivates them (admin).
pub async fn update_user(user_id: &str, body: &UpdateUserRequest) -> ApiResult<User> {
    let path = format!("/users/{user_id}");
    decode(send("PATCH", &path, json_body(body)?, None, "application/json").await?).await
}

/// The signed-in user's API tokens.
pub async fn list_tokens() -> ApiResult<Vec<ApiToken>> {
    get("/tokens").await
}

/// Creates an API token; its secret is in the answer, once.
pub async fn create_token(body: &CreateTokenRequest) -> ApiResult<CreatedToken> {
    post("/tokens", body).await
}

/// Revokes an API token.
pub async fn revoke_token(token_id: &str) -> ApiResult<()> {
    send(
        "DELETE",
        &format!("/tokens/{token_id}"),
        None,
        None,
        "application/json",
    )
    .await?;
    Ok(())
}

// --- Webhooks and announcements ---------------------------------------------------------

/// Every webhook subscription.
pub async fn list_webhooks() -> ApiResult<Vec<WebhookSubscription>> {
    get("/webhooks").await
}

/// Creates a webhook subscription; its signing secret is in the answer, once.
pub async fn create_webhook(body: &CreateWebhookRequest) -> ApiResult<CreatedWebhook> {
    post("/webhooks", body).await
}

/// Changes a webhook subscription.
pub async fn update_webhook(
    id: &str,
    body: &UpdateWebhookRequest,
) -> ApiResult<WebhookSubscription> {
    decode(
        send(
            "PATCH",
            &format!("/webhooks/{id}"),
            json_body(body)?,
            None,
            "application/json",
        )
        .await?,
    )
    .await
}

/// Deletes a webhook subscription.
pub async fn delete_webhook(id: &str) -> ApiResult<()> {
    send(
        "DELETE",
        &format!("/webhooks/{id}"),
        None,
        None,
        "application/json",
    )
    .await?;
    Ok(())
}

/// Gives a subscription a new signing secret (in the answer, once).
pub async fn rotate_webhook_secret(id: &str) -> ApiResult<RotatedSecret> {
    post(&format!("/webhooks/{id}/rotate-secret"), &()).await
}

/// Sends a subscription a test event.
pub async fn test_webhook(id: &str) -> ApiResult<WebhookDelivery> {
    post(&format!("/webhooks/{id}/test"), &()).await
}

/// A subscription's latest deliveries.
pub async fn deliveries(id: &str) -> ApiResult<DeliveryPage> {
    get(&format!("/webhooks/{id}/deliveries?limit=20")).await
}

/// Sends a delivery again.
pub async fn redeliver(id: &str, delivery_id: &str) -> ApiResult<WebhookDelivery> {
    post(
        &format!("/webhooks/{id}/deliveries/{delivery_id}/redeliver"),
        &(),
    )
    .await
}

/// A draft announcement of a run, with the window in the reader's zone too.
pub async fn announcement_draft(
    run_id: &str,
    kind: AnnouncementKind,
    offset_minutes: i32,
) -> ApiResult<AnnouncementDraft> {
    get(&format!(
        "/runs/{run_id}/announcements/draft?kind={}&offset_minutes={offset_minutes}",
        kind.as_str()
    ))
    .await
}

/// Sends an announcement.
pub async fn send_announcement(
    run_id: &str,
    body: &SendAnnouncementRequest,
) -> ApiResult<AnnouncementReceipt> {
    post(&format!("/runs/{run_id}/announcements"), body).await
}

// --- Records after the deploy -------------------------------------------------------------

/// The run's issues log.
pub async fn issues(run_id: &str) -> ApiResult<IssueList> {
    get(&format!("/runs/{run_id}/issues")).await
}

/// Logs an issue.
pub async fn create_issue(run_id: &str, body: &CreateIssueRequest) -> ApiResult<Issue> {
    post(&format!("/runs/{run_id}/issues"), body).await
}

/// Changes an issue that was at `version`.
pub async fn update_issue(
    run_id: &str,
    issue_id: &str,
    body: &UpdateIssueRequest,
    version: i64,
) -> ApiResult<Issue> {
    patch(&format!("/runs/{run_id}/issues/{issue_id}"), body, version).await
}

/// The run's retrospective.
pub async fn retrospective(run_id: &str) -> ApiResult<Retrospective> {
    get(&format!("/runs/{run_id}/retrospective")).await
}

/// Writes the run's retrospective, which was at `version`.
pub async fn put_retrospective(
    run_id: &str,
    body: &PutRetrospectiveRequest,
    version: i64,
) -> ApiResult<Retrospective> {
    let path = format!("/runs/{run_id}/retrospective");
    decode(
        send(
            "PUT",
            &path,
            json_body(body)?,
            Some(version),
            "application/json",
        )
        .await?,
    )
    .await
}

/// Adds an action item to the run's retrospective.
pub async fn create_action(run_id: &str, body: &CreateActionItemRequest) -> ApiResult<ActionItem> {
    post(&format!("/runs/{run_id}/action-items"), body).await
}

/// Changes an action item that was at `version`.
pub async fn update_action(
    run_id: &str,
    action_id: &str,
    body: &UpdateActionItemRequest,
    version: i64,
) -> ApiResult<ActionItem> {
    patch(
        &format!("/runs/{run_id}/action-items/{action_id}"),
        body,
        version,
    )
    .await
}

/// The run's report.
pub async fn report(run_id: &str) -> ApiResult<RunReport> {
    get(&format!("/runs/{run_id}/report")).await
}

/// Proposes a change to the run's template.
pub async fn propose(run_id: &str, body: &CreateProposalRequest) -> ApiResult<TemplateProposal> {
    post(&format!("/runs/{run_id}/template-proposals"), body).await
}

/// Template proposals (`query`: e.g. `?status=open`).
pub async fn proposals(query: &str) -> ApiResult<ProposalList> {
    get(&format!("/template-proposals{query}")).await
}

/// Accepts or declines a proposal.
pub async fn review_proposal(
    id: &str,
    body: &ReviewProposalRequest,
) -> ApiResult<TemplateProposal> {
    let path = format!("/template-proposals/{id}");
    decode(send("PATCH", &path, json_body(body)?, None, "application/json").await?).await
}

// --- Environments and the release calendar ----------------------------------------------

/// Every environment, in promotion order.
pub async fn environments() -> ApiResult<EnvironmentList> {
    get("/environments").await
}

/// One environment, with the lock that holds and the freeze in force.
pub async fn environment(name: &str) -> ApiResult<Environment> {
    get(&format!("/environments/{}", encode(name))).await
}

/// Stores an environment's record, based on the version it was read at.
pub async fn put_environment(
    name: &str,
    body: &PutEnvironmentRequest,
    version: i64,
) -> ApiResult<Environment> {
    decode(
        send(
            "PUT",
            &format!("/environments/{}", encode(name)),
            json_body(body)?,
            Some(version),
            "application/json",
        )
        .await?,
    )
    .await
}

/// Locks an environment.
pub async fn lock_environment(
    name: &str,
    body: &LockEnvironmentRequest,
) -> ApiResult<EnvironmentLock> {
    post(&format!("/environments/{}/locks", encode(name)), body).await
}

/// Lifts a lock, with a note.
pub async fn unlock_environment(
    name: &str,
    lock_id: &str,
    body: &UnlockEnvironmentRequest,
) -> ApiResult<EnvironmentLock> {
    decode(
        send(
            "PATCH",
            &format!("/environments/{}/locks/{lock_id}", encode(name)),
            json_body(body)?,
            None,
            "application/json",
        )
        .await?,
    )
    .await
}

/// An environment's freeze windows.
pub async fn freezes(name: &str) -> ApiResult<FreezeList> {
    get(&format!("/environments/{}/freezes", encode(name))).await
}

/// Makes a freeze window.
pub async fn create_freeze(name: &str, body: &CreateFreezeRequest) -> ApiResult<FreezeWindow> {
    post(&format!("/environments/{}/freezes", encode(name)), body).await
}

/// Deletes a freeze window.
pub async fn delete_freeze(name: &str, id: &str) -> ApiResult<()> {
    send(
        "DELETE",
        &format!("/environments/{}/freezes/{id}", encode(name)),
        None,
        None,
        "application/json",
    )
    .await?;
    Ok(())
}

/// The release calendar over a period (RFC 3339 bounds).
pub async fn calendar(from: &str, to: &str) -> ApiResult<Calendar> {
    get(&format!(
        "/calendar?from={}&to={}",
        encode(from),
        encode(to)
    ))
    .await
}

// --- Insights --------------------------------------------------------------------------

/// An answer (`path` below `/api/v1`, with its query) read as a JSON tree: the insights, and
/// the runs list's pages.
pub async fn insights(path: &str) -> ApiResult<serde_json::Value> {
    get(path).await
}
