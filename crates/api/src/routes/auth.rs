//! Signing in and who am I.

use actix_web::{HttpResponse, get, post, web};
use shipshape_domain::wire::{LoginRequest, Problem, TokenResponse, User};

use super::blocking;
use crate::AppState;
use crate::auth::{Caller, hash_password, verify_password};
use crate::error::ApiError;

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
    ),
    security(())
)]
#[post("/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    let user = blocking(&state, move |s| s.user_by_name(&username)).await?;
    let ok = web::block(move || match &user {
        Some(u) if u.active => verify_password(&password, &u.password_hash).then(|| u.id.clone()),
        // Spend the same time on unknown and inactive users, so the answer time does not tell
        // whether an account exists.
        _ => {
            let _ = hash_password(&password);
            None
        }
    })
    .await?;
    let Some(user_id) = ok else {
        return Err(ApiError::unauthorized("wrong user name or password"));
    };
    let token = state.keys.issue(&user_id)?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: state.keys.ttl_secs,
    }))
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
