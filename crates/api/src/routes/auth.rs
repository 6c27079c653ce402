//! Signing in, who am I, what waits on me, and how I am told of it.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use shipshape_domain::access::Permission;
use shipshape_domain::role::check_password;
use shipshape_domain::signin::Verdict;
use shipshape_domain::text::{EmailAddress, Username};
use shipshape_domain::wire::{
    ChangePasswordRequest, LoginRequest, NotificationSettings, Pending, Problem, TokenResponse,
    UpdateNotificationsRequest, User,
};

use super::blocking;
use crate::AppState;
use crate::auth::{Caller, hash_password, verify_password};
use crate::error::ApiError;
use crate::throttle;

/// Exchanges a user name and password for a bearer access token.
#[utoipa::path(
    tag = "auth",
    summary = "Sign in with a user name and password",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong user name or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins for this account or address; see Retry-After", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(())
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    // The peer address; a forwarded header only when the peer is a trusted proxy.
    let address = throttle::request_address(&req, &state.trusted_proxies);
    let attempt = throttle::Attempt::admit(&state, &username, address).await?;
    // Only wrong credentials count as a failure; an error that kept us from judging them (the
    // database was down) gives the attempt back.
    let checked = check_credentials(&state, &username, password).await;
    let verdict = match &checked {
        Ok(Some(_)) => Verdict::Succeeded,
        Ok(None) => Verdict::Failed,
        Err(_) => Verdict::Unjudged,
    };
    attempt.finish(verdict).await?;
    let Some((user_id, generation)) = checked? else {
        tracing::info!(
            username = %username.chars().take(64).collect::<String>(),
            address = %address.map(|a| a.to_string()).unwrap_or_default(),
            "sign-in refused: wrong user name or password"
        );
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    let token = state.keys.issue(&user_id, generation)?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: state.keys.ttl_secs,
    }))
}

/// The user's id and token generation if the credentials are right, `None` if they are
/// wrong.
async fn check_credentials(
    state: &web::Data<AppState>,
    username: &str,
    password: String,
) -> Result<Option<(String, i32)>, ApiError> {
    // Password hashing is deliberately expensive: only a few run at once.
    let _permit = state
        .hashing
        .acquire()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    // A name that cannot exist is looked up nowhere (and cannot carry a NUL to the database).
    let name = username.to_owned();
    let user = if Username::is_valid(username) {
        blocking(state, move |s| s.user_by_name(&name)).await?
    } else {
        None
    };
    let ok = web::block(move || match &user {
        Some(u) if u.active => {
            verify_password(&password, &u.password_hash).then(|| (u.id.clone(), u.token_generation))
        }
        // Spend the same time on unknown and inactive users, so the answer time does not tell
        // whether an account exists.
        _ => {
            let _ = hash_password(&password);
            None
        }
    })
    .await?;
    Ok(ok)
}

/// The signed-in user.
#[utoipa::path(
    tag = "auth",
    summary = "Get the signed-in user",
    responses(
        (status = 200, description = "The signed-in user", body = User),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/me")]
pub async fn get_me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let user = blocking(&state, move |s| s.user(&caller.id))
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    Ok(HttpResponse::Ok().json(user.to_wire()?))
}

/// Signs out: every access token of the caller issued so far stops working.
#[utoipa::path(
    tag = "auth",
    summary = "Sign out everywhere (revokes the caller's access tokens)",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    blocking(&state, move |s| s.revoke_sessions(&caller.id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the caller's password; their access tokens issued before stop working.
#[utoipa::path(
    tag = "auth",
    summary = "Change the signed-in user's password",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; sign in again"),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong current password, or the new one is not acceptable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/me/password")]
pub async fn update_password(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let req = body.into_inner();
    check_password(&req.new_password).map_err(|e| ApiError::invalid(e.to_string()))?;
    let id = caller.id.clone();
    let user = blocking(&state, move |s| s.user(&id))
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    let hash = web::block(move || {
        if verify_password(&req.current_password, &user.password_hash) {
            hash_password(&req.new_password).map(Some)
        } else {
            Ok(None)
        }
    })
    .await??
    .ok_or_else(|| ApiError::invalid("current_password: that is not your current password"))?;
    blocking(&state, move |s| {
        s.set_password(&caller.id, &hash, &caller.auditor())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What waits on the caller across runs that are not closed.
#[utoipa::path(
    tag = "auth",
    summary = "Get what waits on the signed-in user",
    responses(
        (status = 200, description = "Assigned items, approvals to give, decisions to take", body = Pending),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/me/pending")]
pub async fn get_pending(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let actor = caller.actor();
    let pending = blocking(&state, move |s| s.pending(&actor)).await?;
    Ok(HttpResponse::Ok().json(pending))
}

/// The caller's notification settings.
#[utoipa::path(
    tag = "auth",
    summary = "Get your notification settings",
    responses(
        (status = 200, description = "Your settings", body = NotificationSettings),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/me/notifications")]
pub async fn get_notifications(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let settings = blocking(&state, move |s| s.notification_settings(&caller.id)).await?;
    Ok(HttpResponse::Ok().json(settings))
}

/// Changes the caller's e-mail address or turns e-mail notifications on or off.
#[utoipa::path(
    tag = "auth",
    summary = "Change your notification settings",
    request_body = UpdateNotificationsRequest,
    responses(
        (status = 200, description = "Your settings now", body = NotificationSettings),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not an e-mail address", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[patch("/me/notifications")]
pub async fn update_notifications(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let req: UpdateNotificationsRequest = super::object(body.into_inner())?;
    let email = match req.email.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(e) => Some(Some(EmailAddress::parse("email", e)?.into_string())),
    };
    let on = req.email_notifications;
    let settings = blocking(&state, move |s| {
        s.update_notification_settings(&caller.id, email, on)
    })
    .await?;
    Ok(HttpResponse::Ok().json(settings))
}
