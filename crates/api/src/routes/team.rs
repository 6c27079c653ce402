//! A run's deployment team, claiming items, and sign-offs on approval items.

use actix_web::{HttpResponse, delete, get, post, web};
use shipshape_domain::access::Permission;
use shipshape_domain::item::ItemChange;
use shipshape_domain::text::{Label, Username};
use shipshape_domain::wire::{
    AddMemberRequest, CreateSignoffRequest, Person, Problem, RunItem, RunMember, Signoff,
};
use uuid::Uuid;

use super::{blocking, etag};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The run's deployment team.
#[utoipa::path(
    tag = "team",
    summary = "List a run's team members",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The members", body = Vec<RunMember>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/members")]
pub async fn list_members(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = path.into_inner().to_string();
    let members = blocking(&state, move |s| s.members(&id)).await?;
    Ok(HttpResponse::Ok().json(members))
}

/// What to look for in the directory.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    /// Only names containing this, in any case (default: everyone).
    pub q: Option<String>,
    /// At most this many, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The people who can be put on a run's team: active users, by name, with their roles.
#[utoipa::path(
    tag = "team",
    summary = "Find people to put on a run's team (release manager)",
    params(PeopleQuery),
    responses(
        (status = 200, description = "Active users whose names match, by name", body = Vec<Person>),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A limit out of range", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[get("/people")]
pub async fn list_people(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PeopleQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let limit = usize::try_from(super::limit(query.limit, 50, 200)?).unwrap_or(50);
    let needle = query.q.as_deref().unwrap_or("").trim().to_lowercase();
    let users = blocking(&state, |s| s.list_users()).await?;
    let people: Vec<Person> = users
        .into_iter()
        .filter(|u| u.active && u.username.to_lowercase().contains(&needle))
        .take(limit)
        .map(|u| Person {
            username: u.username,
            role: u.role,
        })
        .collect();
    Ok(HttpResponse::Ok().json(people))
}

/// Adds a user to the run's team with a run role.
#[utoipa::path(
    tag = "team",
    summary = "Add a member to a run's team (release manager)",
    params(("run_id" = Uuid, Path, description = "The run's id")),
    request_body = AddMemberRequest,
    responses(
        (status = 201, description = "The new member", body = RunMember),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already a member, or the run is closed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No such active user, or an invalid run role", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/members")]
pub async fn create_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<AddMemberRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let id = path.into_inner().to_string();
    let req = body.into_inner();
    let run_role = Label::parse("run_role", &req.run_role)?;
    let username = Username::parse("username", &req.username)?;
    let actor = caller.actor();
    let member = blocking(&state, move |s| {
        s.add_member(&id, &username, &run_role, &actor)
    })
    .await?;
    Ok(HttpResponse::Created().json(member))
}

/// Removes a user from the run's team.
#[utoipa::path(
    tag = "team",
    summary = "Remove a member from a run's team (release manager)",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("user_id" = Uuid, Path, description = "The member's user id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or member", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run is closed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[delete("/runs/{run_id}/members/{user_id}")]
pub async fn delete_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let (run_id, user_id) = path.into_inner();
    let (run_id, user_id) = (run_id.to_string(), user_id.to_string());
    let actor = caller.actor();
    blocking(&state, move |s| s.remove_member(&run_id, &user_id, &actor)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Assigns the item to the caller ("assign to me"); the caller must be on the run's team.
#[utoipa::path(
    tag = "items",
    summary = "Claim an item (assign it to yourself)",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("item_id" = Uuid, Path, description = "The item's id"),
    ),
    responses(
        (status = 200, description = "The item, assigned to you", body = RunItem, headers(("ETag" = String, description = "The item's version"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a team member that works items, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or item", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The run no longer accepts changes to this item", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "You are not on the run's team", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/items/{item_id}/claim")]
pub async fn create_claim(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WorkItems)?;
    let (run_id, item_id) = path.into_inner();
    let (run_id, item_id) = (run_id.to_string(), item_id.to_string());
    let change = ItemChange {
        assignee: Some(Some(caller.username.clone())),
        ..ItemChange::default()
    };
    let actor = caller.actor();
    let item = blocking(&state, move |s| {
        s.update_item(&run_id, &item_id, None, change, &actor)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(item.version))
        .json(item))
}

/// Every sign-off of an approval item, including those a later change invalidated.
#[utoipa::path(
    tag = "items",
    summary = "List an item's sign-offs",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("item_id" = Uuid, Path, description = "The item's id"),
    ),
    responses(
        (status = 200, description = "The sign-offs, oldest first", body = Vec<Signoff>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or item", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/items/{item_id}/signoffs")]
pub async fn list_signoffs(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let (run_id, item_id) = path.into_inner();
    let (run_id, item_id) = (run_id.to_string(), item_id.to_string());
    let list = blocking(&state, move |s| s.signoffs(&run_id, &item_id)).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Approves or rejects an approval item. Enough approvals (one distinct signer per role the
/// policy lists, never the person who did the work) make it done; a rejection blocks it
/// until it is reworked.
#[utoipa::path(
    tag = "items",
    summary = "Sign off an approval item",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        ("item_id" = Uuid, Path, description = "The item's id"),
    ),
    request_body = CreateSignoffRequest,
    responses(
        (status = 201, description = "The recorded sign-off", body = Signoff),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Your role is not in the policy, you did the work, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run or item", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not an approval item, already signed, rejected and not reworked, or already approved", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A rejection without a comment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/runs/{run_id}/items/{item_id}/signoffs")]
pub async fn create_signoff(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Uuid, Uuid)>,
    body: web::Json<CreateSignoffRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SignOff)?;
    let (run_id, item_id) = path.into_inner();
    let (run_id, item_id) = (run_id.to_string(), item_id.to_string());
    let req = body.into_inner();
    let actor = caller.actor();
    let signoff = blocking(&state, move |s| {
        s.record_signoff(
            &run_id,
            &item_id,
            req.verdict,
            req.comment.as_deref(),
            &actor,
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(signoff))
}
