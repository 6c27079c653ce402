//! API tokens for tools: created with scopes and an expiry, the secret shown once; listed
//! (never the secret) and revoked by their owner. Managed from a signed-in session only.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{Duration, Utc};
use shipshape_domain::access::{Scope, role_can_use_scope};
use shipshape_domain::text::Label;
use shipshape_domain::wire::{ApiToken, CreateTokenRequest, CreatedToken, Problem};
use shipshape_store::NewToken;
use uuid::Uuid;

use super::blocking;
use crate::AppState;
use crate::auth::{Caller, hash_api_secret, new_api_secret};
use crate::error::ApiError;

/// The longest a token may live.
pub(crate) const MAX_TOKEN_DAYS: u32 = 365;

/// The caller's own API tokens, newest first.
#[utoipa::path(
    tag = "tokens",
    summary = "List your API tokens",
    responses(
        (status = 200, description = "Your tokens (never their secrets)", body = Vec<ApiToken>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/tokens")]
pub async fn list_tokens(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let tokens = blocking(&state, move |s| s.list_tokens(&caller.id)).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// Creates an API token for a tool. The secret is in this answer only.
#[utoipa::path(
    tag = "tokens",
    summary = "Create an API token (the secret is shown once)",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "The token and its secret", body = CreatedToken),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API token, or a scope your role cannot use", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, scopes or expiry", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/tokens")]
pub async fn create_token(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let req = body.into_inner();
    let name = Label::parse("name", &req.name)?.into_string();
    if req.scopes.is_empty() {
        return Err(ApiError::invalid("scopes: give at least one scope"));
    }
    if !(1..=MAX_TOKEN_DAYS).contains(&req.expires_in_days) {
        return Err(ApiError::invalid(format!(
            "expires_in_days must be between 1 and {MAX_TOKEN_DAYS}"
        )));
    }
    // A token never has more power than its user: refuse scopes the role cannot use at all.
    for scope in &req.scopes {
        if !role_can_use_scope(caller.role, *scope) {
            return Err(ApiError::forbidden(format!(
                "a {} cannot use the `{}` scope",
                caller.role.as_str(),
                scope.as_str()
            )));
        }
    }
    let mut scopes: Vec<Scope> = req.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let secret = new_api_secret();
    let hash = hash_api_secret(&secret);
    let prefix: String = secret.chars().take(10).collect();
    let expires_at = (Utc::now() + Duration::days(i64::from(req.expires_in_days))).naive_utc();
    let token = blocking(&state, move |s| {
        s.create_token(
            NewToken {
                user_id: &caller.id,
                name: &name,
                prefix: &prefix,
                secret_hash: &hash,
                scopes: &scopes,
                expires_at,
            },
            &caller.auditor(),
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(CreatedToken { token, secret }))
}

/// Revokes one of the caller's tokens; it stops working at once.
#[utoipa::path(
    tag = "tokens",
    summary = "Revoke one of your API tokens",
    params(("token_id" = Uuid, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The revoked token", body = ApiToken),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "You have no such token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[delete("/tokens/{token_id}")]
pub async fn delete_token(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let token_id = path.into_inner().to_string();
    let by = caller.auditor();
    let token = blocking(&state, move |s| s.revoke_token(&caller.id, &token_id, &by)).await?;
    Ok(HttpResponse::Ok().json(token))
}
