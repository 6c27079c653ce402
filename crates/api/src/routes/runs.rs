//! Runs, their items, decisions and events.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use serde::Deserialize;
use shipshape_domain::access::Permission;
use shipshape_domain::item::ItemChange;
use shipshape_domain::run::{RunStatus, check_commit_sha, check_committed_at, check_schedule};
use shipshape_domain::text::{Label, Note};
use shipshape_domain::wire::{
    CreateDecisionRequest, CreateRunRequest, Decision, EventPage, Problem, Run, RunItem, RunPage,
    TransitionRequest, UpdateItemRequest, UpdateRunRequest,
};
use shipshape_store::{ListRunsFilter, NewRun};
use utoipa::IntoParams;
use uuid::Uuid;

use std::sync::Arc;

use super::{LogPage, blocking, etag, if_match, limit};
use crate::AppState;
use crate::auth::Caller;
use crate::bus::RunCopy;
use crate::cache::Depends;
use crate::error::ApiError;

/// Filters and paging for the run list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListRunsQuery {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs in this environment.
    #[param(min_length = 1, max_length = 200)]
    pub environment: Option<String>,
    /// Only runs of this product.
    #[param(min_length = 1, max_length = 200)]
    pub product: Option<String>,
    /// Only runs whose product, release version or environment contains this text, in any
    /// case.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Only runs created at or after this time (RFC 3339).
    pub created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only runs created before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A page of runs, newest first.
#[utoipa::path(
    tag = "runs",
    summary = "List runs, filtered, newest first",
    params(ListRunsQuery),
    responses(
        (status = 200, description = "A page of runs", body = RunPage),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid cursor, limit or search text", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs")]
pub async fn list_runs(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListRunsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let q = query.into_inner();
    let label = |field, v: Option<String>| {
        v.map(|v| Label::parse(field, &v).map(Label::into_string))
            .transpose()
    };
    let filter = ListRunsFilter {
        status: q.status,
        environment: label("environment", q.environment)?,
        product: label("product", q.product)?,
        search: match q.q.as_deref().map(str::trim) {
            Some(t) if t.chars().count() > 200 => {
                return Err(ApiError::invalid("q: at most 200 characters"));
            }
            Some(t) if !t.is_empty() => Some(t.to_owned()),
            _ => None,
        },
        created_from: q.created_from,
        created_before: q.created_before,
        cursor: q.cursor,
        limit: limit(q.limit, 50, 200)?,
    };
    // The page as served before, while the runs are as they were then: one small read
    // instead of the page's queries.
    let bus = state.bus.clone();
    let key = format!("{filter:?}");
    // Readers that miss it together (the runs changed under a dashboard wall) wait for one
    // read instead of each making the same page.
    let page = blocking(&state, move |s| {
        bus.lists().get_or_make(&key, s.log_head()?, || {
            let (version, page) = s.list_runs_at(&filter)?;
            let json = actix_web::web::Bytes::from(
                serde_json::to_vec(&page)
                    .map_err(|e| shipshape_store::StoreError::Corrupt(e.to_string()))?,
            );
            Ok((version, json))
        })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(page))
}

/// Creates a run of a template version; it starts `planned`.
#[utoipa::path(
    tag = "runs",
    summary = "Create a run from a template (release manager)",
    request_body = CreateRunRequest,
    responses(
        (status = 201, description = "The new run", body = Run, headers(("ETag" = String, description = "The run's version"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs")]
pub async fn create_run(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateRunRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let req = body.into_inner();
    let new = NewRun {
        product: Label::parse("product", &req.product)?,
        release_version: Label::parse("release_version", &req.release_version)?,
        environment: Label::parse("environment", &req.environment)?,
        template_id: Uuid::parse_str(&req.template_id)
            .map_err(|_| ApiError::not_found("template not found"))?
            .to_string(),
        template_version: req.template_version,
        window_start: req.window_start,
        window_end: req.window_end,
        expected_downtime_minutes: req.expected_downtime_minutes,
        commit_sha: req
            .commit_sha
            .as_deref()
            .map(check_commit_sha)
            .transpose()?,
        committed_at: req.committed_at,
    };
    if let Some(at) = new.committed_at {
        check_committed_at(at, chrono::Utc::now())?;
    }
    check_schedule(
        new.window_start,
        new.window_end,
        new.expected_downtime_minutes,
    )?;
    let actor = caller.actor();
    let run = blocking(&state, move |s| s.create_run(new, &actor)).await?;
    Ok(HttpResponse::Created()
        .insert_header(etag(run.summary.version))
        .insert_header(("Location", format!("/api/v1/runs/{}", run.summary.id)))
        .json(run))
}

/// The whole run: parts, sections, items, decision points, decisions, progress, and the
/// transitions open from here with their blockers.
#[utoipa::path(
    tag = "runs",
    summary = "Get a whole run",
    params(("run_id" = Uuid, Path, description = "The run's id"), ("If-None-Match" = Option<String>, Header, description = "An ETag this API returned (or `*`): 304 when it names the current version"),),
    responses(
        (status = 200, description = "The run", body = Run, headers(("ETag" = String, description = "The run's version"))),
        (status = 304, description = "Not modified: If-None-Match names the current version", headers(("ETag" = String, description = "The current version"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}")]
pub async fn get_run(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let copy = run_copy(&state, path.into_inner().to_string()).await?;
    if let Some(res) = super::not_modified(&req, copy.version) {
        return Ok(res);
    }
    Ok(HttpResponse::Ok()
        .insert_header(etag(copy.version))
        .content_type(actix_web::http::header::ContentType::json())
        .body(copy.json.clone()))
}

/// A run as served: the copy kept in memory while nothing it shows changed (see
/// [`crate::cache`]), else read, serialised off the worker, and kept.
async fn run_copy(state: &web::Data<AppState>, id: String) -> Result<Arc<RunCopy>, ApiError> {
    let runs = state.bus.runs();
    if let Some(copy) = runs.get(&id, chrono::Utc::now()) {
        return Ok(copy);
    }
    let ticket = runs.ticket();
    let key = id.clone();
    let (copy, changes_at, on_others) = blocking(state, move |s| {
        let view = s.run_view(&key)?;
        let json = serde_json::to_vec(&view.run)
            .map_err(|e| shipshape_store::StoreError::Corrupt(e.to_string()))?;
        let copy = RunCopy {
            version: view.run.summary.version,
            json: json.into(),
        };
        Ok((Arc::new(copy), view.changes_at, view.on_others))
    })
    .await?;
    if let Some(ticket) = ticket {
        let depends = if on_others {
            Depends::Any
        } else {
            Depends::Own
        };
        runs.put(id.clone(), &id, ticket, depends, changes_at, copy.clone());
    }
    Ok(copy)
}

/// Changes a run's release version or schedule. Honours `If-Match`.
#[utoipa::path(
    tag = "runs",
    summary = "Update a run's schedule (release manager)",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("If-Match" = Option<String>, Header, description = "The run's ETag; 412 if it changed since"),
    ),
    request_body = UpdateRunRequest,
    responses(
        (status = 200, description = "The updated run", body = Run, headers(("ETag" = String, description = "The run's version"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is closed", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The run changed since the given ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[patch("/runs/{run_id}")]
pub async fn update_run(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: web::Json<UpdateRunRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let expected = if_match(&req)?;
    let id = path.into_inner().to_string();
    let patch = body.into_inner().validated()?;
    if let Some(Some(at)) = patch.committed_at {
        check_committed_at(at, chrono::Utc::now())?;
    }
    let actor = caller.actor();
    let run = blocking(&state, move |s| {
        s.update_run(&id, expected.as_ref(), &patch, &actor)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(run.summary.version))
        .json(run))
}

/// Moves a run: start, advance, complete, abort, finish_rollback or close. A gate that is
/// not met answers 409 with every blocker — unless a release manager forces it (`force`,
/// with a reason): break-glass, recorded as an override.
#[utoipa::path(
    tag = "runs",
    summary = "Move a run through its stages (release manager)",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("If-Match" = Option<String>, Header, description = "The run's ETag; 412 if it changed since"),
    ),
    request_body = TransitionRequest,
    responses(
        (status = 200, description = "The run after the transition", body = Run, headers(("ETag" = String, description = "The run's version"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not possible from here, gates not met (with every blocker), run closed, or another live run", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The run changed since the given ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown action", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/transitions")]
pub async fn create_transition(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: web::Json<TransitionRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let expected = if_match(&req)?;
    let id = path.into_inner().to_string();
    let TransitionRequest {
        action,
        reason,
        force,
    } = body.into_inner();
    let reason = match reason {
        Some(r) => Note::parse("reason", &r)?,
        None => None,
    };
    let actor = caller.actor();
    let run = blocking(&state, move |s| {
        s.transition(
            &id,
            expected.as_ref(),
            action,
            reason.as_deref(),
            force,
            &actor,
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(run.summary.version))
        .json(run))
}

/// One item of a run.
#[utoipa::path(
    tag = "items",
    summary = "Get an item of a run",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("item_id" = Uuid, Path, description = "The item's id"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag this API returned (or `*`): 304 when it names the current version"),
    ),
    responses(
        (status = 200, description = "The item", body = RunItem, headers(("ETag" = String, description = "The item's version"))),
        (status = 304, description = "Not modified: If-None-Match names the current version", headers(("ETag" = String, description = "The current version"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or item", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/items/{item_id}")]
pub async fn get_item(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let (run_id, item_id) = path.into_inner();
    let (run_id, item_id) = (run_id.to_string(), item_id.to_string());
    let item = blocking(&state, move |s| s.item(&run_id, &item_id)).await?;
    if let Some(res) = super::not_modified(&req, item.version) {
        return Ok(res);
    }
    Ok(HttpResponse::Ok()
        .insert_header(etag(item.version))
        .json(item))
}

/// Changes an item's status, assignee, note or evidence. Honours `If-Match`.
#[utoipa::path(
    tag = "items",
    summary = "Update an item of a run",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("item_id" = Uuid, Path, description = "The item's id"),
        ("If-Match" = Option<String>, Header, description = "The item's ETag; 412 if it changed since"),
    ),
    request_body = UpdateItemRequest,
    responses(
        (status = 200, description = "The updated item", body = RunItem, headers(("ETag" = String, description = "The item's version"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Viewer, not on the run's team, a waiver the role may not grant, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or item", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run no longer accepts changes to this item, or an approval item set done without sign-offs (`signoff_required`), or a probe item's status set by hand (`check_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The item changed since the given ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[patch("/runs/{run_id}/items/{item_id}")]
pub async fn update_item(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<UpdateItemRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WorkItems)?;
    let expected = if_match(&req)?;
    let (run_id, item_id) = path.into_inner();
    let (run_id, item_id) = (run_id.to_string(), item_id.to_string());
    let b = body.into_inner();
    let change = ItemChange {
        status: b.status,
        assignee: b.assignee,
        note: b.note,
        evidence_url: b.evidence_url,
        evidence: b.evidence,
        reason: b.reason,
    };
    let actor = caller.actor();
    let item = blocking(&state, move |s| {
        s.update_item(&run_id, &item_id, expected.as_ref(), change, &actor)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(item.version))
        .json(item))
}

/// Every decision of a run, oldest first.
#[utoipa::path(
    tag = "decisions",
    summary = "List a run's decisions",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "Every decision, oldest first", body = Vec<Decision>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/decisions")]
pub async fn list_decisions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = path.into_inner().to_string();
    let list = blocking(&state, move |s| s.decisions(&id)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Records a decision at a decision point. `rollback` moves the run to `rolling_back` and
/// `abort` to `aborted`, in the same transaction.
#[utoipa::path(
    tag = "decisions",
    summary = "Record a decision (release manager)",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    request_body = CreateDecisionRequest,
    responses(
        (status = 201, description = "The recorded decision", body = Decision),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without the scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is not at the point's stage, or the outcome is not open there", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown point or criterion, missing rationale", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["decisions:write"]))
)]
#[post("/runs/{run_id}/decisions")]
pub async fn create_decision(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<CreateDecisionRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Decide)?;
    let id = path.into_inner().to_string();
    let req = body.into_inner();
    let actor = caller.actor();
    let decision = blocking(&state, move |s| s.record_decision(&id, req, &actor)).await?;
    Ok(HttpResponse::Created().json(decision))
}

/// The run's event log in order, paged with `after`.
#[utoipa::path(
    tag = "events",
    summary = "List a run's events in order",
    params(("run_id" = Uuid, Path, description = "The run's id"), LogPage),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<LogPage>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = path.into_inner().to_string();
    let (after, limit) = query.bounds()?;
    let page = blocking(&state, move |s| s.events(&id, after, limit)).await?;
    Ok(HttpResponse::Ok().json(page))
}
