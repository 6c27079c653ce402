//! Tamper evidence: whether a run's event log still verifies, and the global audit log of
//! administration and security events (admins only).

use actix_web::{HttpResponse, get, web};
use shipshape_domain::access::Permission;
use shipshape_domain::wire::{AuditPage, ChainVerdict, Problem};
use uuid::Uuid;

use super::{LogPage, blocking};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Whether a run's event log verifies: every event present, well formed, and linked to the
/// one before by its hash.
#[utoipa::path(
    tag = "audit",
    summary = "Verify a run's hash-chained event log",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The verdict: intact or, when broken, the first bad event", body = ChainVerdict),
        (status = 400, description = "Malformed run id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/audit")]
pub async fn get_run_audit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = path.into_inner().to_string();
    let verdict = blocking(&state, move |s| s.verify_run(&id)).await?;
    Ok(HttpResponse::Ok().json(verdict))
}

/// The global audit log in order, paged with `after`: user, token and template
/// administration, and sign-in locks; who, when, from which address, what changed.
#[utoipa::path(
    tag = "audit",
    summary = "List the audit log of administration and security events",
    params(LogPage),
    responses(
        (status = 200, description = "A page of audit entries", body = AuditPage),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/audit-log")]
pub async fn list_audit_log(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<LogPage>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageUsers)?;
    let (after, limit) = query.bounds()?;
    let page = blocking(&state, move |s| s.audit_log(after, limit)).await?;
    Ok(HttpResponse::Ok().json(page))
}
