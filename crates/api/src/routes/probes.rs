//! Probe items' checks (run on demand, and their results). Checks on schedule are the
//! worker's (`crate::probe`).

use actix_web::{HttpResponse, get, post, web};
use shipshape_domain::access::Permission;
use shipshape_domain::event::ProbeTrigger;
use shipshape_domain::wire::{ProbeResult, ProbeResultPage, Problem};
use uuid::Uuid;

use super::{blocking, limit};
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
    state.bus.metrics().probe(outcome.passed);
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
