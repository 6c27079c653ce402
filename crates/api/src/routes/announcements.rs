//! Stakeholder announcements of a run (release managers): a draft generated from the run,
//! and sending the edited text to chosen webhook subscriptions and addresses, recorded in the
//! run's log and completing the checklist item it satisfies.

use actix_web::{HttpResponse, get, post, web};
use shipshape_domain::access::Permission;
use shipshape_domain::announcement::{
    AnnouncementDraft, AnnouncementKind, AnnouncementReceipt, SendAnnouncementRequest, draft,
};
use shipshape_domain::wire::Problem;
use uuid::Uuid;

use super::{blocking, object};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// What to draft.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DraftQuery {
    /// What it tells.
    pub kind: AnnouncementKind,
    /// The reader's offset from UTC in minutes (e.g. 60 for UTC+01:00): the window is also
    /// given in that zone.
    #[param(minimum = -840, maximum = 840)]
    pub offset_minutes: Option<i32>,
}

/// A draft announcement generated from the run: product, version, environment, the window
/// in UTC and in the reader's zone, the expected downtime and what users will notice, the
/// team as contacts, and a link to the run.
#[utoipa::path(
    tag = "announcements",
    summary = "Draft an announcement from the run (release manager)",
    params(("run_id" = Uuid, Path, description = "The run's id"), DraftQuery),
    responses(
        (status = 200, description = "The draft, to edit before sending", body = AnnouncementDraft),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An offset out of range", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[get("/runs/{run_id}/announcements/draft")]
pub async fn get_announcement_draft(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<DraftQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let q = query.into_inner();
    if q.offset_minutes.is_some_and(|o| !(-840..=840).contains(&o)) {
        return Err(ApiError::invalid(
            "offset_minutes must be between -840 and 840",
        ));
    }
    let id = path.into_inner().to_string();
    let run_id = id.clone();
    let (_, mut facts) = blocking(&state, move |s| s.announcement_facts(&run_id)).await?;
    facts.run_url = state
        .public_url
        .as_ref()
        .map(|base| format!("{base}/runs/{id}"));
    Ok(HttpResponse::Ok().json(draft(q.kind, &facts, q.offset_minutes)))
}

/// Sends an announcement: to the chosen webhook subscriptions (chat channels get it as their
/// message) and e-mail addresses, recorded as an `announcement_sent` event; with `item_id`,
/// the item it satisfies is marked done with the announcement as its evidence — all or
/// nothing.
#[utoipa::path(
    tag = "announcements",
    summary = "Send an announcement (release manager)",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    request_body = SendAnnouncementRequest,
    responses(
        (status = 201, description = "Sent: its event, and the item it completed", body = AnnouncementReceipt),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or item", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The item cannot be completed at this stage", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not this kind's stage, an inactive subscription, an invalid address, mail not configured, or an empty subject or body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/announcements")]
pub async fn create_announcement(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let req: SendAnnouncementRequest = object(body.into_inner())?;
    let announcement = req.validated()?;
    let id = path.into_inner().to_string();
    let mail = state.mail_enabled;
    let actor = caller.actor();
    let done = blocking(&state, move |s| {
        s.announce(&id, &announcement, mail, &actor)
    })
    .await?;
    Ok(HttpResponse::Created().json(AnnouncementReceipt {
        seq: done.seq,
        item: done.item,
    }))
}
