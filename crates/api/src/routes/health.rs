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
