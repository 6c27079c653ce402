//! User accounts (admin).

use actix_web::{HttpResponse, get, post, web};
use shipshape_domain::role::{check_password, check_username};
use shipshape_domain::wire::{CreateUserRequest, Problem, User};
use shipshape_store::NewUser;

use super::blocking;
use crate::AppState;
use crate::auth::{Caller, hash_password};
use crate::error::ApiError;

/// Every user account.
#[utoipa::path(
    tag = "users",
    summary = "List users (admin)",
    responses(
        (status = 200, description = "Every user, by name", body = Vec<User>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let users = blocking(&state, |s| s.list_users()).await?;
    Ok(HttpResponse::Ok().json(users))
}

/// Creates a user account with a role.
#[utoipa::path(
    tag = "users",
    summary = "Create a user (admin)",
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid user name, password or role", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let req = body.into_inner();
    check_username(&req.username).map_err(|e| ApiError::invalid(e.to_string()))?;
    check_password(&req.password).map_err(|e| ApiError::invalid(e.to_string()))?;
    let password = req.password;
    let hash = web::block(move || hash_password(&password)).await??;
    let user = blocking(&state, move |s| {
        s.create_user(NewUser {
            username: &req.username,
            password_hash: &hash,
            role: req.role,
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(user.to_wire()?))
}
