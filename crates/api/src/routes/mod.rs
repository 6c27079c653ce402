//! HTTP handlers, one module per area. Each handler extracts, calls the store (off the
//! executor) and maps the result; rules live in the domain crate.

pub mod announcements;
pub mod audit;
pub mod auth;
pub mod environments;
pub mod health;
pub mod insights;
pub mod instances;
pub mod probes;
pub mod records;
pub mod runs;
pub mod stream;
pub mod team;
pub mod templates;
pub mod tokens;
pub mod users;
pub mod webhooks;

use actix_web::dev::HttpServiceFactory;
use actix_web::http::header;
use actix_web::{HttpRequest, web};
use utoipa_actix_web::OpenApiFactory;

use crate::AppState;
use crate::error::ApiError;

/// Where handlers are registered: the server's workers (actix's own configuration: nothing
/// but the routes) or the OpenAPI document (utoipa's, which also describes each one).
/// Describing every handler on every worker built the document's tree again there, which the
/// worker then held as freed but scattered memory: about 2 MiB a worker.
pub trait Routes {
    /// Registers one handler.
    fn service<F: HttpServiceFactory + OpenApiFactory + 'static>(
        &mut self,
        factory: F,
    ) -> &mut Self;
}

impl Routes for web::ServiceConfig {
    fn service<F: HttpServiceFactory + OpenApiFactory + 'static>(
        &mut self,
        factory: F,
    ) -> &mut Self {
        web::ServiceConfig::service(self, factory)
    }
}

impl Routes for utoipa_actix_web::service_config::ServiceConfig<'_> {
    fn service<F: HttpServiceFactory + OpenApiFactory + 'static>(
        &mut self,
        factory: F,
    ) -> &mut Self {
        utoipa_actix_web::service_config::ServiceConfig::service(self, factory)
    }
}

/// A page size: `default` when none is given, 422 outside 1 to `max`.
fn limit(value: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(format!(
            "limit must be between 1 and {max}"
        ))),
    }
}

/// Paging of an ordered log (a run's events, the audit log) by sequence number.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogPage {
    /// Only entries with a sequence number above this (default 0: from the start).
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl LogPage {
    /// `after` (negative reads as 0) and the page size, or 422 for a size out of range.
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        Ok((
            self.after.unwrap_or(0).max(0),
            limit(self.limit, 100, 1000)?,
        ))
    }
}

/// Registers every `/api/v1` handler. A request is matched against the paths in this order
/// (a pattern with a parameter costs a regex run): the hottest come first. No two paths here
/// match the same request.
pub fn api<R: Routes>(cfg: &mut R) {
    cfg.service(runs::get_run)
        .service(runs::update_item)
        .service(runs::list_runs)
        .service(runs::get_item)
        .service(auth::login)
        .service(auth::logout)
        .service(auth::get_me)
        .service(auth::update_password)
        .service(auth::get_pending)
        .service(auth::get_notifications)
        .service(auth::update_notifications)
        .service(users::list_users)
        .service(users::create_user)
        .service(users::update_user)
        .service(tokens::list_tokens)
        .service(tokens::create_token)
        .service(tokens::delete_token)
        .service(templates::list_templates)
        .service(templates::create_template)
        .service(templates::get_template)
        .service(templates::create_template_version)
        .service(runs::create_run)
        .service(runs::update_run)
        .service(runs::create_transition)
        .service(probes::create_check)
        .service(probes::list_checks)
        .service(environments::list_environments)
        .service(environments::get_environment)
        .service(environments::update_environment)
        .service(environments::delete_environment)
        .service(environments::list_environment_locks)
        .service(environments::create_environment_lock)
        .service(environments::update_environment_lock)
        .service(environments::list_freeze_windows)
        .service(environments::create_freeze_window)
        .service(environments::delete_freeze_window)
        .service(environments::get_calendar)
        .service(environments::get_calendar_feed)
        .service(insights::get_delivery_insights)
        .service(insights::get_checklist_insights)
        .service(insights::list_item_insight_runs)
        .service(team::create_claim)
        .service(team::list_signoffs)
        .service(team::create_signoff)
        .service(team::list_members)
        .service(team::create_member)
        .service(team::delete_member)
        .service(team::list_people)
        .service(runs::list_decisions)
        .service(runs::create_decision)
        .service(runs::list_events)
        .service(records::list_issues)
        .service(records::create_issue)
        .service(records::get_issue)
        .service(records::update_issue)
        .service(records::get_retrospective)
        .service(records::update_retrospective)
        .service(records::create_action_item)
        .service(records::update_action_item)
        .service(records::get_run_report)
        .service(records::create_template_proposal)
        .service(records::list_template_proposals)
        .service(records::get_template_proposal)
        .service(records::update_template_proposal)
        .service(announcements::get_announcement_draft)
        .service(announcements::create_announcement)
        .service(stream::get_event_stream)
        .service(stream::get_all_events_stream)
        .service(audit::get_run_audit)
        .service(audit::list_audit_log)
        .service(instances::list_instances)
        .service(webhooks::list_webhooks)
        .service(webhooks::create_webhook)
        .service(webhooks::get_webhook)
        .service(webhooks::update_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::create_webhook_secret)
        .service(webhooks::create_test_delivery)
        .service(webhooks::list_deliveries)
        .service(webhooks::get_delivery)
        .service(webhooks::create_redelivery);
}

/// Registers the ops endpoints outside `/api/v1`.
pub fn ops<R: Routes>(cfg: &mut R) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::get_metrics);
}

/// Reads a JSON body that must be an object: serde would also read a struct from an array
/// of its fields (`[null, null]`), which no client means.
pub fn object<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid("the body must be a JSON object"));
    }
    serde_json::from_value(body).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Runs a blocking store call off the executor.
pub async fn blocking<T, F>(state: &web::Data<AppState>, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&shipshape_store::Store) -> Result<T, shipshape_store::StoreError> + Send + 'static,
    T: Send + 'static,
{
    let store = state.store.clone();
    // What the store logs belongs to the request it serves.
    let span = tracing::Span::current();
    Ok(web::block(move || span.in_scope(|| f(&store))).await??)
}

/// The versions an `If-Match` header admits (RFC 9110: a list of entity tags, compared
/// strongly): `None` when absent, empty or `*`. A header that is not a list of entity tags
/// (`null`, `3` without quotes) is a malformed request: 400. Tags this API never gave out
/// (`"abc"`) and weak tags (`W/"3"`) match no version: 412 when the change is tried.
pub fn if_match(
    req: &HttpRequest,
) -> Result<Option<shipshape_domain::precondition::Versions>, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let malformed = || {
        ApiError::bad_request(
            "bad_header",
            "If-Match must be a list of entity tags this API returned, e.g. \"3\", or *",
        )
    };
    let raw = value.to_str().map_err(|_| malformed())?;
    shipshape_domain::precondition::Versions::parse(raw).map_err(|_| malformed())
}

/// `304 Not Modified`, with the `ETag`, when the request's `If-None-Match` names `version`
/// (weak comparison) or is `*`. A malformed `If-None-Match` is ignored, as if not sent.
pub fn not_modified(req: &HttpRequest, version: i64) -> Option<actix_web::HttpResponse> {
    let value = req.headers().get(header::IF_NONE_MATCH)?.to_str().ok()?;
    let matches = match shipshape_domain::precondition::Versions::parse_weak(value).ok()? {
        None => true,
        Some(v) => v.admits(version),
    };
    matches.then(|| {
        actix_web::HttpResponse::NotModified()
            .insert_header(etag(version))
            .finish()
    })
}

/// An `ETag` header value for a version.
pub fn etag(version: i64) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{version}\""))
}
