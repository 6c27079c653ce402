//! Environments as records (admins keep them), their locks and freeze windows (release
//! managers set them), and the release calendar, as JSON and as an iCalendar feed.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use shipshape_domain::access::Permission;
use shipshape_domain::environment::{
    Calendar, CalendarEntry, CalendarKind, CreateFreezeRequest, Environment, EnvironmentList,
    EnvironmentLock, FreezeList, FreezeWindow, LockEnvironmentRequest, LockList,
    PutEnvironmentRequest, UnlockEnvironmentRequest, check_period, ics,
};
use shipshape_domain::text::{HttpUrl, Label};
use shipshape_domain::wire::Problem;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{blocking, etag, if_match, object};
use crate::AppState;
use crate::auth::{Caller, authenticate, bearer};
use crate::error::ApiError;

/// An environment's name from the path.
fn name(path: String) -> Result<String, ApiError> {
    Ok(Label::parse("name", &path)?.into_string())
}

/// Every environment.
#[utoipa::path(
    tag = "environments",
    summary = "List environments",
    responses(
        (status = 200, description = "The environments, in promotion order, then by name", body = EnvironmentList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/environments")]
pub async fn list_environments(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let items = blocking(&state, |s| s.environments()).await?;
    Ok(HttpResponse::Ok().json(EnvironmentList { items }))
}

/// One environment: its record, the lock that holds and the freeze in force.
#[utoipa::path(
    tag = "environments",
    summary = "Get an environment",
    params(("name" = String, Path, description = "The environment's name, as runs name it", max_length = 200)),
    responses(
        (status = 200, description = "The environment", body = Environment, headers(("ETag" = String, description = "The record's version"))),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An environment name outside the text rule of names", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/environments/{name}")]
pub async fn get_environment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let name = name(path.into_inner())?;
    let env = blocking(&state, move |s| s.environment(&name)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(env.version))
        .json(env))
}

/// Stores an environment's record, every field (what is left out is cleared); creates it the
/// first time. Honours `If-Match` (`"0"` before it exists).
#[utoipa::path(
    tag = "environments",
    summary = "Store an environment",
    params(("name" = String, Path, description = "The environment's name, as runs name it", max_length = 200)),
    request_body = PutEnvironmentRequest,
    responses(
        (status = 200, description = "The environment", body = Environment, headers(("ETag" = String, description = "The record's version"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without admin", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The record changed since the given ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid field, named in the detail (a URL, a contact, a promotion order with a cycle)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[put("/environments/{name}")]
pub async fn update_environment(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageEnvironments)?;
    let name = name(path.into_inner())?;
    let version = if_match(&req)?;
    let body: PutEnvironmentRequest = object(body.into_inner())?;
    if let Some(Some(u)) = body.base_url.as_ref().map(|u| u.as_deref().map(str::trim))
        && !u.is_empty()
    {
        let url = HttpUrl::parse("base_url", u)?.into_string();
        crate::outbound::Guard::parse(&url)
            .map_err(|e| ApiError::invalid(format!("base_url {e}")))?;
    }
    let by = caller.auditor();
    let env = blocking(&state, move |s| {
        s.put_environment(&name, version.as_ref(), &body, &by)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(etag(env.version))
        .json(env))
}

/// Deletes an environment no run names, with its locks and freeze windows. One that runs
/// name is refused: archive it instead.
#[utoipa::path(
    tag = "environments",
    summary = "Delete an environment",
    params(("name" = String, Path, description = "The environment's name", max_length = 200)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Runs name it, or another environment is promoted from it (`environment_in_use`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An environment name outside the text rule of names", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["admin"]))
)]
#[delete("/environments/{name}")]
pub async fn delete_environment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::ManageEnvironments)?;
    let name = name(path.into_inner())?;
    let by = caller.auditor();
    blocking(&state, move |s| s.delete_environment(&name, &by)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Paging of an environment's locks.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LockQuery {
    /// How many, newest first: 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// An environment's locks, newest first: the one that holds, and those lifted.
#[utoipa::path(
    tag = "environments",
    summary = "List an environment's locks",
    params(("name" = String, Path, description = "The environment's name", max_length = 200), LockQuery),
    responses(
        (status = 200, description = "The locks, newest first", body = LockList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A limit out of range, or an environment name outside the text rule of names", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/environments/{name}/locks")]
pub async fn list_environment_locks(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<LockQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let name = name(path.into_inner())?;
    let limit = super::limit(query.limit, 50, 200)?;
    let items = blocking(&state, move |s| s.environment_locks(&name, limit)).await?;
    Ok(HttpResponse::Ok().json(LockList { items }))
}

/// Locks an environment with a reason, optionally until a time: no run starts or moves into
/// deploying there while it holds (a release manager may force past it, as an override).
#[utoipa::path(
    tag = "environments",
    summary = "Lock an environment",
    params(("name" = String, Path, description = "The environment's name", max_length = 200)),
    request_body = LockEnvironmentRequest,
    responses(
        (status = 201, description = "The lock", body = EnvironmentLock),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A lock holds already (`environment_locked`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or an `until` not in the future", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/environments/{name}/locks")]
pub async fn create_environment_lock(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let name = name(path.into_inner())?;
    let body: LockEnvironmentRequest = object(body.into_inner())?;
    let by = caller.auditor();
    let lock = blocking(&state, move |s| s.lock_environment(&name, &body, &by)).await?;
    Ok(HttpResponse::Created().json(lock))
}

/// Unlocks an environment: lifts the lock that holds, with a note saying what was looked at.
#[utoipa::path(
    tag = "environments",
    summary = "Unlock an environment",
    params(
        ("name" = String, Path, description = "The environment's name", max_length = 200),
        ("lock_id" = Uuid, Path, description = "The lock's id"),
    ),
    request_body = UnlockEnvironmentRequest,
    responses(
        (status = 200, description = "The lock, lifted", body = EnvironmentLock),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment or lock", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The lock no longer holds (`environment_not_locked`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No note", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[patch("/environments/{name}/locks/{lock_id}")]
pub async fn update_environment_lock(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let (env, lock_id) = path.into_inner();
    let name = name(env)?;
    let body: UnlockEnvironmentRequest = object(body.into_inner())?;
    let by = caller.auditor();
    let lock = blocking(&state, move |s| {
        s.unlock_environment(&name, &lock_id.to_string(), &body, &by)
    })
    .await?;
    Ok(HttpResponse::Ok().json(lock))
}

/// An environment's freeze windows, each with its occurrence in force or next.
#[utoipa::path(
    tag = "environments",
    summary = "List an environment's freeze windows",
    params(("name" = String, Path, description = "The environment's name", max_length = 200)),
    responses(
        (status = 200, description = "The freeze windows, soonest first", body = FreezeList),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An environment name outside the text rule of names", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/environments/{name}/freezes")]
pub async fn list_freeze_windows(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let name = name(path.into_inner())?;
    let items = blocking(&state, move |s| s.freezes(&name)).await?;
    Ok(HttpResponse::Ok().json(FreezeList { items }))
}

/// Makes a freeze window: once, weekly or yearly, in a time zone. It must occur, and must
/// not overlap the environment's other windows.
#[utoipa::path(
    tag = "environments",
    summary = "Make a freeze window",
    params(("name" = String, Path, description = "The environment's name", max_length = 200)),
    request_body = CreateFreezeRequest,
    responses(
        (status = 201, description = "The freeze window", body = FreezeWindow),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such environment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid field, named in the detail: an inverted or overlapping window, an unknown time zone, a recurrence that never occurs", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[post("/environments/{name}/freezes")]
pub async fn create_freeze_window(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let name = name(path.into_inner())?;
    let body: CreateFreezeRequest = object(body.into_inner())?;
    let by = caller.auditor();
    let freeze = blocking(&state, move |s| s.create_freeze(&name, &body, &by)).await?;
    Ok(HttpResponse::Created().json(freeze))
}

/// Deletes a freeze window.
#[utoipa::path(
    tag = "environments",
    summary = "Delete a freeze window",
    params(
        ("name" = String, Path, description = "The environment's name", max_length = 200),
        ("freeze_id" = Uuid, Path, description = "The freeze window's id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a release manager, or a token without runs:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such freeze window in that environment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An environment name outside the text rule of names", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:write"]))
)]
#[delete("/environments/{name}/freezes/{freeze_id}")]
pub async fn delete_freeze_window(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::SteerRuns)?;
    let (env, id) = path.into_inner();
    let name = name(env)?;
    let by = caller.auditor();
    blocking(&state, move |s| {
        s.delete_freeze(&name, &id.to_string(), &by)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The period and environment of the calendar.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CalendarQuery {
    /// The period's start, RFC 3339 (default: a week ago).
    pub from: Option<DateTime<Utc>>,
    /// The period's end, RFC 3339 (default: 60 days after `from`); at most 400 days after
    /// `from`.
    pub to: Option<DateTime<Utc>>,
    /// Only this environment.
    #[param(max_length = 200)]
    pub environment: Option<String>,
}

impl CalendarQuery {
    fn period(
        &self,
        back: Duration,
        ahead: Duration,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
        let from = self.from.unwrap_or_else(|| Utc::now() - back);
        let to = match self.to {
            Some(to) => to,
            None => from.checked_add_signed(ahead).unwrap_or(from),
        };
        check_period(from, to)?;
        Ok((from, to))
    }

    fn environment(&self) -> Result<Option<String>, ApiError> {
        Ok(match self.environment.as_deref() {
            None => None,
            Some(e) => Some(Label::parse("environment", e)?.into_string()),
        })
    }
}

/// The release calendar: runs' scheduled windows, freeze occurrences and locks over a period.
#[utoipa::path(
    tag = "environments",
    summary = "Get the release calendar",
    params(CalendarQuery),
    responses(
        (status = 200, description = "The entries that meet the period, by start", body = Calendar),
        (status = 400, description = "A malformed query (a time that is not RFC 3339)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A period that ends before it starts or spans more than 400 days", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/calendar")]
pub async fn get_calendar(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<CalendarQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let (from, to) = query.period(Duration::days(7), Duration::days(60))?;
    let environment = query.environment()?;
    let calendar = blocking(&state, move |s| {
        s.calendar(from, to, environment.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(calendar))
}

/// The feed's query: the API token (calendar applications cannot send a header), and the
/// environment.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// An API token with `runs:read`, for calendar applications that cannot
    /// send an `Authorization` header.
    #[param(max_length = 200)]
    pub token: Option<String>,
    /// Only this environment.
    #[param(max_length = 200)]
    pub environment: Option<String>,
}

/// The release calendar as an iCalendar feed (RFC 5545) to subscribe to from Google
/// Calendar, Outlook or Thunderbird: from 30 days ago to a year ahead. Authorised by an API
/// token with `runs:read`, in the `Authorization` header or the `token` query parameter.
#[utoipa::path(
    tag = "environments",
    summary = "Subscribe to the release calendar (iCalendar)",
    params(FeedQuery),
    responses(
        (status = 200, description = "The feed", content_type = "text/calendar", body = String),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown, revoked or expired one", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid environment name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]), ("query_token" = ["runs:read"]))
)]
#[get("/calendar.ics")]
pub async fn get_calendar_feed(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = match (
        req.headers().contains_key(header::AUTHORIZATION),
        &query.token,
    ) {
        (false, Some(t)) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => bearer(&req)?,
    };
    let caller = authenticate(state.clone(), token).await?;
    caller.require(Permission::Read)?;
    if caller.token.is_none() && query.token.is_some() {
        // A session token in a URL would end up in logs and calendar settings.
        return Err(ApiError::unauthorized(
            "the `token` parameter takes an API token (with runs:read), not a session",
        ));
    }
    let calendar_query = CalendarQuery {
        from: None,
        to: None,
        environment: query.environment.clone(),
    };
    let environment = calendar_query.environment()?;
    let (from, to) = calendar_query.period(Duration::days(30), Duration::days(395))?;
    let env_for_store = environment.clone();
    let calendar: Calendar = blocking(&state, move |s| {
        s.calendar(from, to, env_for_store.as_deref())
    })
    .await?;
    let base = state.public_url.clone();
    let name = match &environment {
        Some(e) => format!("Shipshape releases: {e}"),
        None => "Shipshape releases".to_owned(),
    };
    let link = |e: &CalendarEntry| match (&base, e.kind) {
        (Some(base), CalendarKind::Run) => {
            Some(format!("{}/runs/{}", base.trim_end_matches('/'), e.id))
        }
        (Some(base), CalendarKind::Freeze | CalendarKind::Lock) => Some(format!(
            "{}/environments/{}",
            base.trim_end_matches('/'),
            e.environment
        )),
        (None, _) => None,
    };
    let body = ics(&name, &calendar.entries, Utc::now(), link);
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .body(body))
}
