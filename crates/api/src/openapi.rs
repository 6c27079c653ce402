//! The OpenAPI 3.1 document, generated from the handlers' annotations. The committed copy at
//! `openapi/openapi.json` is checked against it by a test; `just openapi` rewrites it.

use actix_web::App;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::{AppExt, scope};

use crate::routes;

mod limits;
mod webhooks;

/// The document's fixed parts: info, tags, the bearer scheme.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shipshape API",
        description = "Deployment checklists and rollback decisions. A release team opens a run from a \
checklist template; people and tools work through its items; the run moves through gated stages; \
at decision points someone records go / hold / rollback / abort; everything lands in an \
append-only event log.\n\nErrors are RFC 9457 `application/problem+json` bodies with a stable \
`code`. Runs and items carry an `ETag`; `PATCH` honours `If-Match` and answers 412 on a stale \
version.",
        version = "0.0.0",
        license(name = "MIT", identifier = "MIT"),
    ),
    modifiers(&BearerScheme),
    // Sent to webhook subscribers only: no operation names it.
    components(schemas(shipshape_domain::environment::EnvironmentEvent)),
    tags(
        (name = "auth", description = "Signing in"),
        (name = "users", description = "User accounts (admin)"),
        (name = "tokens", description = "API tokens for tools: scoped, expiring, revocable"),
        (name = "team", description = "A run's deployment team"),
        (name = "templates", description = "Checklist templates, as JSON or Markdown"),
        (name = "runs", description = "Runs of a template and their status machine"),
        (name = "items", description = "Checklist items of a run"),
        (name = "decisions", description = "Go / hold / rollback / abort decisions"),
        (name = "environments", description = "Environments as records (promotion order, base URL, dashboards, escalation contacts), their locks and freeze windows, and the release calendar (JSON and iCalendar)"),
        (name = "insights", description = "Delivery performance (DORA keys with explicit failures: rollback decisions) and checklist analytics, as JSON or CSV"),
        (name = "events", description = "The append-only event log of a run"),
        (name = "records", description = "After the deploy: a run's issues log, retrospective and action items, template proposals from it, and its report"),
        (name = "announcements", description = "Stakeholder announcements of a run: drafted from the run, sent to chat, webhooks and mail"),
        (name = "webhooks", description = "Signed webhook deliveries (Standard Webhooks) and chat notifications: subscriptions, delivery logs, redelivery"),
        (name = "audit", description = "Tamper evidence: hash-chain verification and the audit log (admin)"),
        (name = "ops", description = "Liveness and readiness"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from `POST /api/v1/auth/login`, or an API token \
                         (`ss_…`) from `POST /api/v1/tokens`, sent as `Authorization: Bearer \
                         <token>`. Each operation lists the API token scope it needs: \
                         `runs:read`, `runs:write`, `decisions:write`, `templates:write`, \
                         `webhooks:write` or `admin`; an empty list means any signed-in user (operations on \
                         sessions and tokens refuse API tokens). Roles: `admin`, \
                         `release_manager`, `approver`, `engineer`, `viewer` — a token never \
                         has more power than its user's role.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The metrics token the server was started with \
                         (`SHIPSHAPE_METRICS_TOKEN`), sent as `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "query_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "An API token in the `token` query parameter, for the one operation a calendar \
                 application calls (it cannot send a header): the iCalendar feed.",
            ))),
        );
    }
}

/// The whole document, collected from the same registrations the server uses.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(scope("/api/v1").configure(|c| routes::api(c)))
        .configure(|c| routes::ops(c))
        .split_for_parts();
    // The API's version is the server's.
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document_body_errors(&mut api);
    document_idempotency(&mut api);
    api
}

/// A problem answer of the document.
fn problem(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// Every `POST` that acts for a signed-in user takes an `Idempotency-Key` (see
/// [`crate::idempotency`]), with the answers that brings.
fn document_idempotency(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::Required;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    for (path, item) in api.paths.paths.iter_mut() {
        let Some(op) = item.post.as_mut() else {
            continue;
        };
        if !path.starts_with("/api/v1/") || path == "/api/v1/auth/login" {
            continue;
        }
        let header = ParameterBuilder::new()
            .name(crate::idempotency::HEADER)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retry safe: the same key with the same request (method, path, query, \
                 content type and body) within a day is answered with the first answer again \
                 (marked `Idempotent-Replayed: true`) and not carried out twice; with a \
                 different request, 422 `idempotency_key_reused`; while the first is still being \
                 served, 409 `idempotency_key_in_use` with `Retry-After`. Keys are per user. \
                 Successes and refusals of the request itself (400, 404, 410, 413, 415, 422) are \
                 kept; other answers are not, so a retry is served afresh.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(crate::idempotency::MAX_KEY_CHARS))
                    .pattern(Some("^[!-~]+$")),
            ))
            .build();
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(header.into());
        let responses = &mut op.responses.responses;
        responses
            .entry("400".into())
            .or_insert_with(|| problem("A malformed request or header").into());
        responses.entry("409".into()).or_insert_with(|| {
            problem("A conflict, or a request with this Idempotency-Key still being served").into()
        });
        responses.entry("422".into()).or_insert_with(|| {
            problem("Invalid input, or an Idempotency-Key used for a different request").into()
        });
    }
}

/// Every operation that takes a body can answer 413 (too large) and 415 (wrong content
/// type): the body extractors say so for all of them, so the document says it once, here.
fn document_body_errors(api: &mut utoipa::openapi::OpenApi) {
    for item in api.paths.paths.values_mut() {
        let operations = [item.post.as_mut(), item.put.as_mut(), item.patch.as_mut()];
        for op in operations.into_iter().flatten() {
            if op.request_body.is_none() {
                continue;
            }
            let responses = &mut op.responses.responses;
            responses
                .entry("413".into())
                .or_insert_with(|| problem("The body is too large").into());
            responses
                .entry("415".into())
                .or_insert_with(|| problem("The body is not of a supported content type").into());
        }
    }
}

/// The document as served and committed: the generated one with the limits the server
/// enforces (see [`limits`]).
pub fn document_value() -> serde_json::Value {
    value_of(document())
}

/// [`document_value`] of a document already built.
pub(crate) fn value_of(document: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut doc = serde_json::to_value(document).unwrap_or_default();
    let missing = limits::apply(&mut doc);
    webhooks::apply(&mut doc);
    if !missing.is_empty() {
        doc["x-missing-limits"] = serde_json::json!(missing);
    }
    doc
}

/// The document as pretty JSON, exactly as committed.
pub fn document_json() -> String {
    serde_json::to_string_pretty(&document_value())
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
