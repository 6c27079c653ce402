//! Probe items' checks (run on demand, their results) and environments' settings (the base
//! URL probes are written with). Checks on schedule are the worker's (`crate::probe`).

use actix_web::{HttpResponse, get, post, put, web};
use shipshape_domain::access::Permission;
use shipshape_domain::event::ProbeTrigger;
use shipshape_domain::text::{HttpUrl, Label};
use shipshape_domain::wire::{
    Environment, EnvironmentList, ProbeResult, ProbeResultPage, Problem, PutEnvironmentRequest,
};
use uuid::Uuid;

use super::{blocking, limit, object};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Runs a probe item's check now and records its result as the item's evidence.
#[utoipa::path(
    tag = "items",
    summary = "Run a probe item's check now",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("item_id" = Uuid, Path, description = "The probe item's id"),
    ),
    responses(
        (status = 201, description = "The result (passed or failed, with the reason); the item is done while it passed and is fresh", body = ProbeResult),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Viewer, not on the run's team, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or item", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is finished or closed for this item", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The item is not a probe item", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/items/{item_id}/checks")]
pub async fn create_check(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WorkItems)?;
    let (run_id, item_id) = path.into_inner();
    let (run_id, item_id) = (run_id.to_string(), item_id.to_string());
    let actor = caller.actor();
    let target = {
        let (run_id, item_id, actor) = (run_id.clone(), item_id.clone(), actor.clone());
        blocking(&state, move |s| {
            s.probe_target(&run_id, &item_id, Some(&actor))
        })
        .await?
    };
    let outcome = crate::probe::check(&state.outbound, &target).await;
    let result = blocking(&state, move |s| {
        s.record_probe(
            &run_id,
            &item_id,
            outcome,
            ProbeTrigger::OnDemand,
            &actor.username,
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(result))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// Only results older than this cursor (the `next_cursor` of the page before).
    #[param(max_length = 100)]
    pub before: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A probe item's results, newest first.
#[utoipa::path(
    tag = "items",
    summary = "List a probe item's results",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("item_id" = Uuid, Path, description = "The probe item's id"),
        CheckQuery,
    ),
    responses(
        (status = 200, description = "A page of results", body = ProbeResultPage),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or item", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a probe item, a page size out of range, or a cursor this API did not return", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/items/{item_id}/checks")]
pub async fn list_checks(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    query: web::Query<CheckQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let (run_id, item_id) = path.into_inner();
    let q = query.into_inner();
    let limit = limit(q.limit, 50, 200)?;
    let page = blocking(&state, move |s| {
        s.probe_results(
            &run_id.to_string(),
            &item_id.to_string(),
            q.before.as_deref(),
            limit,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Every environment with settings.
#[utoipa::path(
    tag = "environments",
    summary = "List environments' settings",
    responses(
        (status = 200, description = "The environments, by name", body = EnvironmentList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/environments")]
pub async fn list_environments(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let items = blocking(&state, |s| s.environments()).await?;
    Ok(HttpResponse::Ok().json(EnvironmentList { items }))
}

/// Stores an environment's settings: the base URL its runs' probe items write `{base_url}`
/// with.
#[utoipa::path(
    tag = "environments",
    summary = "Set an environment's base URL",
    params(("name" = String, Path, description = "The environment's name, as runs name it", max_length = 200)),
    request_body = PutEnvironmentRequest,
    responses(
        (status = 200, description = "The environment's settings", body = Environment),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid name or URL", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[put("/environments/{name}")]
pub async fn update_environment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageEnvironments)?;
    let name = Label::parse("name", &path.into_inner())?;
    let body: PutEnvironmentRequest = object(body.into_inner())?;
    let base_url = match body.base_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => {
            let url = HttpUrl::parse("base_url", u)?.into_string();
            crate::outbound::Guard::parse(&url)
                .map_err(|e| ApiError::invalid(format!("base_url {e}")))?;
            Some(url)
        }
    };
    let by = caller.auditor();
    let env = blocking(&state, move |s| {
        s.put_environment(name.as_str(), base_url.as_deref(), &by)
    })
    .await?;
    Ok(HttpResponse::Ok().json(env))
}
