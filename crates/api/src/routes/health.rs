//! Ops endpoints: liveness and readiness.

use actix_web::{HttpResponse, get, web};
use shipshape_domain::wire::{Health, Problem};

use super::blocking;
use crate::AppState;
use crate::error::ApiError;

/// Process liveness: answers while the process serves requests.
#[utoipa::path(
    tag = "ops",
    summary = "Liveness: the process is up",
    responses((status = 200, description = "The process is up", body = Health)),
    security(())
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers.
#[utoipa::path(
    tag = "ops",
    summary = "Readiness: the database is reachable",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    ),
    security(())
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    blocking(&state, |s| s.ping())
        .await
        .map_err(|_| ApiError::database_unavailable())?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
    }))
}

/// The server's metrics for Prometheus: requests by route template, method and status with
/// latency histograms, database pool use and waits, open event streams and bus lag, webhook
/// delivery attempts, probe checks, runs by status. Served only when `SHIPSHAPE_METRICS_TOKEN`
/// is set, to a scraper that sends it as a bearer token.
#[utoipa::path(
    tag = "ops",
    summary = "Metrics in the OpenMetrics text format (Prometheus)",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "No token, or not the metrics token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Metrics are not served (no metrics token is configured); asked with a token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    ),
    security(("metrics" = []))
)]
#[get("/metrics")]
pub async fn get_metrics(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    use sha2::{Digest, Sha256};
    // A scraper that sends no token is asked for one, whether or not metrics are served.
    let sent = crate::auth::bearer(&req)?;
    let Some(expected) = &state.metrics_token else {
        return Err(ApiError::not_found(
            "metrics are not served: set SHIPSHAPE_METRICS_TOKEN",
        ));
    };
    // Digests compared, so the comparison's time says nothing about the token.
    if Sha256::digest(sent.as_bytes()) != Sha256::digest(expected.expose().as_bytes()) {
        return Err(ApiError::unauthorized("the metrics token is wrong"));
    }
    let streams = state.bus.subscribers();
    let metrics = state.bus.metrics().clone();
    let body = blocking(&state, move |s| metrics.render(s, streams)).await?;
    Ok(HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(body))
}
