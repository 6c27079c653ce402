//! Webhook subscriptions (admins and release managers; tokens with `webhooks:write`): their
//! targets, event types and filters, signing secrets (shown once, rotated with a grace
//! period), and their delivery logs, redelivery and test events. The deliveries themselves
//! are queued in the transaction of each event and sent by the worker (`crate::deliver`).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{Duration, Utc};
use shipshape_domain::access::Permission;
use shipshape_domain::webhook::{
    CreateWebhookRequest, CreatedWebhook, DeliveryPage, RotatedSecret, UpdateWebhookRequest,
    WebhookDelivery, WebhookSubscription,
};
use shipshape_domain::wire::Problem;
use uuid::Uuid;

use super::{blocking, limit, object};
use crate::AppState;
use crate::auth::Caller;
use crate::deliver::new_secret;
use crate::error::ApiError;

/// How long the secret before a rotation keeps signing.
pub const ROTATION_GRACE_HOURS: i64 = 24;

/// Checks a target URL with the outbound guard: 422 saying why it is refused.
async fn vet_url(state: &web::Data<AppState>, url: &str) -> Result<(), ApiError> {
    state
        .outbound
        .vet(url)
        .await
        .map(drop)
        .map_err(|e| ApiError::invalid(format!("url: {e}")))
}

/// Every webhook subscription, oldest first.
#[utoipa::path(
    tag = "webhooks",
    summary = "List webhook subscriptions",
    responses(
        (status = 200, description = "The subscriptions (never their secrets)", body = Vec<WebhookSubscription>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[get("/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let list = blocking(&state, |s| s.list_webhooks()).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Creates a subscription. Its signing secret is in this answer only.
#[utoipa::path(
    tag = "webhooks",
    summary = "Create a webhook subscription (the signing secret is shown once)",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "The subscription and its signing secret", body = CreatedWebhook),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid or refused URL, an unknown event type, or an invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[post("/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let body: CreateWebhookRequest = object(body.into_inner())?;
    let spec = body.validated()?;
    vet_url(&state, &spec.url).await?;
    let secret = new_secret();
    let by = caller.auditor();
    let subscription = blocking(&state, {
        let secret = secret.clone();
        move |s| s.create_webhook(&spec, &secret, &by)
    })
    .await?;
    Ok(HttpResponse::Created().json(CreatedWebhook {
        subscription,
        secret,
    }))
}

/// One subscription.
#[utoipa::path(
    tag = "webhooks",
    summary = "Get a webhook subscription",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = WebhookSubscription),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[get("/webhooks/{webhook_id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let id = path.into_inner().to_string();
    let sub = blocking(&state, move |s| s.webhook(&id)).await?;
    Ok(HttpResponse::Ok().json(sub))
}

/// Changes a subscription; fields left out stay. Activating one the server deactivated
/// clears its reason and resumes its waiting deliveries.
#[utoipa::path(
    tag = "webhooks",
    summary = "Change a webhook subscription",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The subscription as it is now", body = WebhookSubscription),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid or refused URL, an unknown event type, or an invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[patch("/webhooks/{webhook_id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let id = path.into_inner().to_string();
    let patch: UpdateWebhookRequest = object(body.into_inner())?;
    if let Some(url) = &patch.url {
        let url = shipshape_domain::text::HttpUrl::parse("url", url)?;
        vet_url(&state, url.as_str()).await?;
    }
    let by = caller.auditor();
    let sub = blocking(&state, move |s| s.update_webhook(&id, &patch, &by)).await?;
    Ok(HttpResponse::Ok().json(sub))
}

/// Deletes a subscription with its delivery log; waiting deliveries are dropped.
#[utoipa::path(
    tag = "webhooks",
    summary = "Delete a webhook subscription",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The deleted subscription", body = WebhookSubscription),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[delete("/webhooks/{webhook_id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let id = path.into_inner().to_string();
    let by = caller.auditor();
    let sub = blocking(&state, move |s| s.delete_webhook(&id, &by)).await?;
    Ok(HttpResponse::Ok().json(sub))
}

/// Gives a subscription a new signing secret, shown in this answer only. For
/// `ROTATION_GRACE_HOURS` (24) the old secret signs too: `webhook-signature` carries both
/// signatures, so receivers can switch without missing a delivery.
#[utoipa::path(
    tag = "webhooks",
    summary = "Rotate a webhook subscription's signing secret",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The new secret; the old one signs for 24 hours more", body = RotatedSecret),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[post("/webhooks/{webhook_id}/rotate-secret")]
pub async fn create_webhook_secret(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let id = path.into_inner().to_string();
    let secret = new_secret();
    let until = (Utc::now() + Duration::hours(ROTATION_GRACE_HOURS)).naive_utc();
    let by = caller.auditor();
    let subscription = blocking(&state, {
        let secret = secret.clone();
        move |s| s.rotate_webhook_secret(&id, &secret, until, &by)
    })
    .await?;
    Ok(HttpResponse::Ok().json(RotatedSecret {
        subscription,
        secret,
    }))
}

/// Sends a `webhook_test` event to the subscription (even an inactive one), logged like any
/// delivery.
#[utoipa::path(
    tag = "webhooks",
    summary = "Send a test event to a webhook subscription",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id")),
    responses(
        (status = 202, description = "The test delivery, queued", body = WebhookDelivery),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[post("/webhooks/{webhook_id}/test")]
pub async fn create_test_delivery(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let id = path.into_inner().to_string();
    let by = caller.auditor();
    let delivery = blocking(&state, move |s| s.enqueue_test_delivery(&id, &by)).await?;
    Ok(HttpResponse::Accepted().json(delivery))
}

/// Paging of a delivery log, newest first.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries older than this one of the subscription's (the `next_before` of the
    /// page before).
    #[param(pattern = "^msg_[0-9a-f]{32}$")]
    pub before: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A subscription's deliveries, newest first, each with its last attempt.
#[utoipa::path(
    tag = "webhooks",
    summary = "List a webhook subscription's deliveries",
    params(("webhook_id" = Uuid, Path, description = "The subscription's id"), DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A page size out of range, or a cursor that is not a delivery of this subscription", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[get("/webhooks/{webhook_id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let id = path.into_inner().to_string();
    let q = query.into_inner();
    let n = limit(q.limit, 50, 200)?;
    let page = blocking(&state, move |s| s.deliveries(&id, q.before.as_deref(), n)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One delivery with every attempt.
#[utoipa::path(
    tag = "webhooks",
    summary = "Get a delivery with its attempts",
    params(
        ("webhook_id" = Uuid, Path, description = "The subscription's id"),
        ("delivery_id" = String, Path, description = "The delivery's id (its `webhook-id`)"),
    ),
    responses(
        (status = 200, description = "The delivery", body = WebhookDelivery),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription or delivery", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[get("/webhooks/{webhook_id}/deliveries/{delivery_id}")]
pub async fn get_delivery(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let (id, delivery) = path.into_inner();
    let id = id.to_string();
    let d = blocking(&state, move |s| s.delivery(&id, &delivery)).await?;
    Ok(HttpResponse::Ok().json(d))
}

/// Sends a delivery again now (a delivered or failed one too), with the same `webhook-id`
/// and body; the subscription must be active.
#[utoipa::path(
    tag = "webhooks",
    summary = "Redeliver a delivery",
    params(
        ("webhook_id" = Uuid, Path, description = "The subscription's id"),
        ("delivery_id" = String, Path, description = "The delivery's id (its `webhook-id`)"),
    ),
    responses(
        (status = 202, description = "The delivery, queued again", body = WebhookDelivery),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin or release manager, or a token without webhooks:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such subscription or delivery", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The subscription is inactive", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["webhooks:write"]))
)]
#[post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")]
pub async fn create_redelivery(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageWebhooks)?;
    let (id, delivery) = path.into_inner();
    let id = id.to_string();
    let d = blocking(&state, move |s| s.redeliver(&id, &delivery)).await?;
    Ok(HttpResponse::Accepted().json(d))
}
