//! The instances serving this database (admins): which are alive, how many streams each
//! holds, and which one runs the background work.

use actix_web::{HttpResponse, get, web};
use shipshape_domain::access::Permission;
use shipshape_domain::wire::{Instance, InstanceList, Problem};

use super::blocking;
use crate::AppState;
use crate::auth::Caller;
use crate::bus::{ALIVE, HOUSEKEEPING};
use crate::error::ApiError;

/// Lists the instances serving this database.
#[utoipa::path(
    tag = "ops",
    summary = "List the instances serving this database (admin)",
    responses(
        (status = 200, description = "The instances, and which one answered", body = InstanceList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without the admin scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/instances")]
pub async fn list_instances(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageUsers)?;
    let (records, worker) = blocking(&state, |s| {
        Ok((s.instances()?, s.lease_holder(HOUSEKEEPING)?))
    })
    .await?;
    let alive_since = chrono::Utc::now() - chrono::Duration::from_std(ALIVE).unwrap_or_default();
    let instances = records
        .into_iter()
        .map(|r| Instance {
            alive: r.seen_at.and_utc() >= alive_since,
            runs_background_work: worker.as_deref() == Some(r.id.as_str()),
            id: r.id,
            version: r.version,
            started_at: r.started_at.and_utc(),
            seen_at: r.seen_at.and_utc(),
            streams: r.streams,
        })
        .collect();
    Ok(HttpResponse::Ok().json(InstanceList {
        answered_by: state.bus.instance().to_owned(),
        instances,
    }))
}
