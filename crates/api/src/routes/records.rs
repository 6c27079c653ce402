//! A run's records after the deploy: its issues log, its retrospective with action items,
//! template proposals made from it, and its report (JSON or Markdown).

use actix_web::{HttpRequest, HttpResponse, get, patch, post, put, web};
use shipshape_domain::access::Permission;
use shipshape_domain::markdown;
use shipshape_domain::proposal::{
    CreateProposalRequest, ProposalList, ProposalStatus, ReviewProposalRequest, TemplateProposal,
};
use shipshape_domain::records::{
    ActionItem, CreateActionItemRequest, CreateIssueRequest, Issue, IssueList,
    PutRetrospectiveRequest, Retrospective, UpdateActionItemRequest, UpdateIssueRequest,
};
use shipshape_domain::report::RunReport;
use shipshape_domain::wire::Problem;
use shipshape_store::ProposalFilter;
use uuid::Uuid;

use super::{blocking, etag, if_match, object};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The run's issues log.
#[utoipa::path(
    tag = "records",
    summary = "List a run's issues",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "Every issue, by number", body = IssueList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/issues")]
pub async fn list_issues(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let run_id = path.into_inner().to_string();
    let items = blocking(&state, move |s| s.issues(&run_id)).await?;
    Ok(HttpResponse::Ok().json(IssueList { items }))
}

/// Logs an issue. An open sev1 or sev2 issue stops the run completing until it is resolved
/// or a release manager accepts it.
#[utoipa::path(
    tag = "records",
    summary = "Log an issue",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    request_body = CreateIssueRequest,
    responses(
        (status = 201, description = "The issue", body = Issue, headers(("ETag" = String, description = "The issue's version"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Viewer, not on the run's team, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: an owner not on the team, an item not of the run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/issues")]
pub async fn create_issue(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WorkItems)?;
    let run_id = path.into_inner().to_string();
    let req: CreateIssueRequest = object(body.into_inner())?;
    let actor = caller.actor();
    let issue = blocking(&state, move |s| s.create_issue(&run_id, req, &actor)).await?;
    Ok(HttpResponse::Created()
        .insert_header(etag(issue.version))
        .json(issue))
}

/// One issue.
#[utoipa::path(
    tag = "records",
    summary = "Get an issue",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("issue_id" = Uuid, Path, description = "The issue's id"),
    ),
    responses(
        (status = 200, description = "The issue", body = Issue, headers(("ETag" = String, description = "The issue's version"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or issue", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/issues/{issue_id}")]
pub async fn get_issue(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let (run_id, issue_id) = path.into_inner();
    let issue = blocking(&state, move |s| {
        s.issue(&run_id.to_string(), &issue_id.to_string())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(issue.version))
        .json(issue))
}

/// Changes an issue; a release manager accepts it (`accepted_reason`) so the run may complete
/// with it. Honours `If-Match`.
#[utoipa::path(
    tag = "records",
    summary = "Update an issue",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("issue_id" = Uuid, Path, description = "The issue's id"),
        ("If-Match" = Option<String>, Header, description = "The issue's ETag; 412 if it changed since"),
    ),
    request_body = UpdateIssueRequest,
    responses(
        (status = 200, description = "The issue", body = Issue, headers(("ETag" = String, description = "The issue's version"))),
        (status = 400, description = "Malformed body or If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Viewer, not on the run's team, an acceptance by someone not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or issue", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is closed", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The issue changed since the given ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[patch("/runs/{run_id}/issues/{issue_id}")]
pub async fn update_issue(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WorkItems)?;
    let expected = if_match(&req)?;
    let (run_id, issue_id) = path.into_inner();
    let change: UpdateIssueRequest = object(body.into_inner())?;
    let actor = caller.actor();
    let issue = blocking(&state, move |s| {
        s.update_issue(
            &run_id.to_string(),
            &issue_id.to_string(),
            expected.as_ref(),
            change,
            &actor,
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(issue.version))
        .json(issue))
}

/// The run's retrospective with its action items: an empty draft (version 0) before anyone
/// wrote it.
#[utoipa::path(
    tag = "records",
    summary = "Get a run's retrospective",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The retrospective", body = Retrospective, headers(("ETag" = String, description = "The retrospective's version"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/retrospective")]
pub async fn get_retrospective(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let run_id = path.into_inner().to_string();
    let retro = blocking(&state, move |s| s.retrospective(&run_id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(retro.version))
        .json(retro))
}

/// Where a run's report is seen: the server's public URL when set, else the address the
/// request came to.
fn report_url(state: &AppState, req: &HttpRequest, run_id: &str) -> String {
    match &state.public_url {
        Some(base) => format!("{}/runs/{run_id}/report", base.trim_end_matches('/')),
        None => {
            let info = req.connection_info();
            format!("{}://{}/runs/{run_id}/report", info.scheme(), info.host())
        }
    }
}

/// Writes the run's retrospective, replacing its text; `status: published` publishes it,
/// which completes the checklist's retrospective items with the run's report as their
/// evidence. Honours `If-Match` (`"0"` before it exists).
#[utoipa::path(
    tag = "records",
    summary = "Write a run's retrospective",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("If-Match" = Option<String>, Header, description = "The retrospective's ETag; 412 if it changed since"),
    ),
    request_body = PutRetrospectiveRequest,
    responses(
        (status = 200, description = "The retrospective", body = Retrospective, headers(("ETag" = String, description = "The retrospective's version"))),
        (status = 201, description = "The retrospective, written for the first time", body = Retrospective, headers(("ETag" = String, description = "The retrospective's version"))),
        (status = 400, description = "Malformed body or If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Viewer, not on the run's team, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not finished yet, or closed", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The retrospective changed since the given ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields; publishing without lessons, or without the root cause of a rolled-back run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[put("/runs/{run_id}/retrospective")]
pub async fn update_retrospective(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WorkItems)?;
    let expected = if_match(&req)?;
    let run_id = path.into_inner().to_string();
    let text: PutRetrospectiveRequest = object(body.into_inner())?;
    let url = report_url(&state, &req, &run_id);
    let actor = caller.actor();
    let (created, retro) = blocking(&state, move |s| {
        s.put_retrospective(&run_id, expected.as_ref(), text, &url, &actor)
    })
    .await?;
    let mut answer = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.insert_header(etag(retro.version)).json(retro))
}

/// Assigns an action item from a finished run's retrospective; its assignee is told and sees
/// it in their pending list.
#[utoipa::path(
    tag = "records",
    summary = "Add an action item",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    request_body = CreateActionItemRequest,
    responses(
        (status = 201, description = "The action item", body = ActionItem, headers(("ETag" = String, description = "The action item's version"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Viewer, not on the run's team, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not finished yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An assignee who is not an active user, a due date in the past, or another invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/action-items")]
pub async fn create_action_item(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WorkItems)?;
    let run_id = path.into_inner().to_string();
    let new: CreateActionItemRequest = object(body.into_inner())?;
    let actor = caller.actor();
    let action = blocking(&state, move |s| s.create_action_item(&run_id, new, &actor)).await?;
    Ok(HttpResponse::Created()
        .insert_header(etag(action.version))
        .json(action))
}

/// Changes an action item: its title, assignee, due date or status (also after the run is
/// closed). Honours `If-Match`.
#[utoipa::path(
    tag = "records",
    summary = "Update an action item",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("action_id" = Uuid, Path, description = "The action item's id"),
        ("If-Match" = Option<String>, Header, description = "The action item's ETag; 412 if it changed since"),
    ),
    request_body = UpdateActionItemRequest,
    responses(
        (status = 200, description = "The action item", body = ActionItem, headers(("ETag" = String, description = "The action item's version"))),
        (status = 400, description = "Malformed body or If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Viewer, not on the run's team, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or action item", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The action item changed since the given ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An assignee who is not an active user, a new due date in the past, or another invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[patch("/runs/{run_id}/action-items/{action_id}")]
pub async fn update_action_item(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WorkItems)?;
    let expected = if_match(&req)?;
    let (run_id, action_id) = path.into_inner();
    let change: UpdateActionItemRequest = object(body.into_inner())?;
    let actor = caller.actor();
    let action = blocking(&state, move |s| {
        s.update_action_item(
            &run_id.to_string(),
            &action_id.to_string(),
            expected.as_ref(),
            change,
            &actor,
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(action.version))
        .json(action))
}

/// The run's report: facts and schedule against what happened, decisions, waivers,
/// overrides, sign-offs, issues, retrospective, evidence, contacts and the event log's head
/// hash. JSON, or Markdown with `Accept: text/markdown`.
#[utoipa::path(
    tag = "records",
    summary = "Get a run's report, as JSON or Markdown",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The report", content(
            (RunReport = "application/json"),
            (String = "text/markdown"),
        )),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/report")]
pub async fn get_run_report(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let run_id = path.into_inner().to_string();
    let report = blocking(&state, move |s| s.report(&run_id)).await?;
    if super::templates::wants_markdown(&req) {
        return Ok(HttpResponse::Ok()
            .content_type("text/markdown; charset=utf-8")
            .body(shipshape_domain::report::markdown(&report)));
    }
    Ok(HttpResponse::Ok().json(report))
}

/// Proposes a change to a finished run's template, from its retrospective: the whole
/// template as Markdown, edited, written on its latest version.
#[utoipa::path(
    tag = "records",
    summary = "Propose a change to the run's template",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    request_body = CreateProposalRequest,
    responses(
        (status = 201, description = "The proposal, with its diff", body = TemplateProposal),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not finished", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The template moved on from `base_version`; the `ETag` names its current version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Markdown that is not a valid template, a proposal that changes nothing, or an invalid summary", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/template-proposals")]
pub async fn create_template_proposal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let run_id = path.into_inner().to_string();
    let req: CreateProposalRequest = object(body.into_inner())?;
    let template = markdown::parse(&req.markdown)?;
    let actor = caller.actor();
    let proposal = blocking(&state, move |s| {
        s.create_proposal(&run_id, req.base_version, &req.summary, &template, &actor)
    })
    .await?;
    Ok(HttpResponse::Created().json(proposal))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProposalQuery {
    /// Only proposals in this status.
    pub status: Option<ProposalStatus>,
    /// Only proposals from this run.
    pub run_id: Option<Uuid>,
    /// Only proposals for this template.
    pub template_id: Option<Uuid>,
}

/// Template proposals, newest first (at most 200).
#[utoipa::path(
    tag = "templates",
    summary = "List template proposals",
    params(ProposalQuery),
    responses(
        (status = 200, description = "The proposals", body = ProposalList),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/template-proposals")]
pub async fn list_template_proposals(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ProposalQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let q = query.into_inner();
    let filter = ProposalFilter {
        status: q.status,
        run_id: q.run_id.map(|u| u.to_string()),
        template_id: q.template_id.map(|u| u.to_string()),
    };
    let items = blocking(&state, move |s| s.proposals(&filter)).await?;
    Ok(HttpResponse::Ok().json(ProposalList { items }))
}

/// One template proposal, with its diff.
#[utoipa::path(
    tag = "templates",
    summary = "Get a template proposal",
    params(("proposal_id" = Uuid, Path, description = "The proposal's id")),
    responses(
        (status = 200, description = "The proposal", body = TemplateProposal),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such proposal", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/template-proposals/{proposal_id}")]
pub async fn get_template_proposal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = path.into_inner().to_string();
    let proposal = blocking(&state, move |s| s.proposal(&id)).await?;
    Ok(HttpResponse::Ok().json(proposal))
}

/// Accepts a proposal as its template's next version (which names the run it came from), or
/// declines it with a reason.
#[utoipa::path(
    tag = "templates",
    summary = "Accept or decline a template proposal",
    params(("proposal_id" = Uuid, Path, description = "The proposal's id")),
    request_body = ReviewProposalRequest,
    responses(
        (status = 200, description = "The proposal, accepted (with the version it became) or declined", body = TemplateProposal),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without templates:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such proposal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The proposal was already accepted or declined", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The template moved on from the proposal's base version; the `ETag` names its current version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A decline without a reason, or status open", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["templates:write"]))
)]
#[patch("/template-proposals/{proposal_id}")]
pub async fn update_template_proposal(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WriteTemplates)?;
    let id = path.into_inner().to_string();
    let review: ReviewProposalRequest = object(body.into_inner())?;
    let (actor, by) = (caller.actor(), caller.auditor());
    let proposal = blocking(&state, move |s| {
        s.review_proposal(&id, &review, &actor, &by)
    })
    .await?;
    Ok(HttpResponse::Ok().json(proposal))
}
