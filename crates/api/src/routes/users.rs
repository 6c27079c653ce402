//! User accounts (admin).

use actix_web::{HttpResponse, get, patch, post, web};
use shipshape_domain::access::Permission;
use shipshape_domain::role::check_password;
use shipshape_domain::text::Username;
use shipshape_domain::wire::{CreateUserRequest, Problem, UpdateUserRequest, User};
use shipshape_store::NewUser;
use uuid::Uuid;

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
        (status = 403, description = "Not an admin, or a token without the admin scope", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageUsers)?;
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
        (status = 403, description = "Not an admin, or a token without the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid user name, password or role", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageUsers)?;
    let req = body.into_inner();
    let username = Username::parse("username", &req.username)?;
    check_password(&req.password).map_err(|e| ApiError::invalid(e.to_string()))?;
    let password = req.password;
    let hash = web::block(move || hash_password(&password)).await??;
    let by = caller.auditor();
    let user = blocking(&state, move |s| {
        s.create_user(
            NewUser {
                username: &username,
                password_hash: &hash,
                role: req.role,
            },
            &by,
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(user.to_wire()?))
}

/// Changes a user's role or deactivates them; a deactivated user's sessions and API tokens
/// stop working at once.
#[utoipa::path(
    tag = "users",
    summary = "Update a user's role or active flag (admin)",
    params(("user_id" = Uuid, Path, description = "The user's id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without the admin scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing to change, or it would leave no active admin", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[patch("/users/{user_id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageUsers)?;
    let id = path.into_inner().to_string();
    let req = body.into_inner();
    if req.role.is_none() && req.active.is_none() {
        return Err(ApiError::invalid("nothing to change: give role or active"));
    }
    let by = caller.auditor();
    let user = blocking(&state, move |s| {
        s.update_user(&id, req.role, req.active, &by)
    })
    .await?;
    Ok(HttpResponse::Ok().json(user.to_wire()?))
}
