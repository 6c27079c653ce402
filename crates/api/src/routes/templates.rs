//! Templates: list, read (JSON or Markdown), create (JSON or Markdown).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use shipshape_domain::access::Permission;
use shipshape_domain::markdown;
use shipshape_domain::template::{Template, TemplateDraft};
use shipshape_domain::wire::{Problem, TemplateDetail, TemplateSummary};
use utoipa::IntoParams;
use uuid::Uuid;

use super::{blocking, etag, if_match};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, serde_error};

/// Which version of a template.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// The version to read; the latest when absent.
    pub version: Option<i32>,
}

/// Every template at its latest version.
#[utoipa::path(
    tag = "templates",
    summary = "List templates",
    responses(
        (status = 200, description = "Every template, by name", body = Vec<TemplateSummary>),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/templates")]
pub async fn list_templates(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let list = blocking(&state, |s| s.list_templates()).await?;
    Ok(HttpResponse::Ok().json(list))
}

/// Whether `Accept` prefers Markdown to JSON (RFC 9110 §12.5.1: each type's weight is that
/// of the most specific range that names it; on a tie, and without `Accept`, JSON).
pub(crate) fn wants_markdown(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| weight(accept, "text/markdown") > weight(accept, "application/json"))
}

/// The weight (q, in thousandths) an `Accept` value gives a media type: that of the most
/// specific range matching it (`type/subtype` over `type/*` over `*/*`), 0 when none does.
fn weight(accept: &str, media: &str) -> u16 {
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, u16)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = if name == media {
            3
        } else if name.strip_suffix("/*") == Some(kind) {
            2
        } else if name == "*/*" {
            1
        } else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1000, |(_, v)| qvalue(v.trim()));
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0, |(_, q)| q)
}

/// A q-value (`0`, `0.5`, `1.000`) in thousandths; a malformed one counts as 0.
fn qvalue(v: &str) -> u16 {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match whole {
        "0" => thousandths,
        "1" if thousandths == 0 => 1000,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_is_weighed_by_q_values_and_specificity() {
        let md = |a: &str| weight(a, "text/markdown") > weight(a, "application/json");
        assert!(md("text/markdown"));
        assert!(!md("application/json, text/markdown;q=0.1"));
        assert!(md("application/json;q=0.5, text/markdown"));
        assert!(!md("text/markdown, application/json"), "a tie goes to JSON");
        assert!(md("text/*;q=0.9, application/json;q=0.2"));
        assert!(!md("*/*"));
        assert!(!md("text/markdown;q=0, */*"));
        assert!(!md("text/markdown;q=2"), "a malformed weight counts as 0");
        assert_eq!(qvalue("0.125"), 125);
        assert_eq!(qvalue("1.000"), 1000);
        assert_eq!(qvalue("0.1234"), 0);
    }
}

fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// One template version, as JSON or (with `Accept: text/markdown`) as Markdown.
#[utoipa::path(
    tag = "templates",
    summary = "Get a template, as JSON or Markdown",
    params(("template_id" = Uuid, Path, description = "The template's id"), VersionQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag this API returned (or `*`): 304 when it names the current version"),),
    responses(
        (status = 200, description = "The template version", content(
            (TemplateDetail = "application/json"),
            (String = "text/markdown"),
        ), headers(("ETag" = String, description = "The version number, for If-Match on the next edit"))),
        (status = 304, description = "Not modified: If-None-Match names the current version", headers(("ETag" = String, description = "The current version"))),
        (status = 400, description = "Malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or version", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/templates/{template_id}")]
pub async fn get_template(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    query: web::Query<VersionQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let id = path.into_inner().to_string();
    let version = query.version;
    let detail = blocking(&state, move |s| s.template(&id, version)).await?;
    if let Some(mut res) = super::not_modified(&req, i64::from(detail.version)) {
        res.headers_mut()
            .insert(header::VARY, header::HeaderValue::from_static("Accept"));
        return Ok(res);
    }
    if wants_markdown(&req) {
        let template = Template::try_from(detail.content).map_err(|e| ApiError::internal(&e))?;
        return Ok(HttpResponse::Ok()
            .insert_header(etag(i64::from(detail.version)))
            .insert_header((header::VARY, "Accept"))
            .content_type("text/markdown; charset=utf-8")
            .body(markdown::render(&template)));
    }
    Ok(HttpResponse::Ok()
        .insert_header(etag(i64::from(detail.version)))
        .insert_header((header::VARY, "Accept"))
        .json(detail))
}

/// Reads a template from a JSON or Markdown body.
fn template_from_body(req: &HttpRequest, body: &[u8]) -> Result<Template, ApiError> {
    match content_type(req).as_str() {
        "application/json" => {
            let draft: TemplateDraft = serde_json::from_slice(body).map_err(|e| serde_error(&e))?;
            Template::try_from(draft).map_err(|e| ApiError::invalid(e.to_string()))
        }
        "text/markdown" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("bad_encoding", "Markdown must be UTF-8"))?;
            markdown::parse(text).map_err(|e| ApiError::invalid(e.to_string()))
        }
        _ => Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the template as application/json or text/markdown",
        )),
    }
}

/// Creates a template from JSON or from Markdown (`Content-Type: text/markdown`).
#[utoipa::path(
    tag = "templates",
    summary = "Create a template from JSON or Markdown (admin)",
    request_body(content(
        (TemplateDraft = "application/json"),
        (String = "text/markdown"),
    ), description = "The template as JSON, or its Markdown form"),
    responses(
        (status = 201, description = "The new template", body = TemplateDetail),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without templates:write", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor Markdown", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid template", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["templates:write"]))
)]
#[post("/templates")]
pub async fn create_template(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WriteTemplates)?;
    let template = template_from_body(&req, &body)?;
    let by = caller.username.clone();
    let auditor = caller.auditor();
    let detail = blocking(&state, move |s| s.create_template(&template, &by, &auditor)).await?;
    Ok(HttpResponse::Created().json(detail))
}

/// Stores an edit of a template as its next version (JSON or Markdown, as on create). Runs
/// keep the version they pinned; new runs take the latest. Honours `If-Match` with the
/// latest version number.
#[utoipa::path(
    tag = "templates",
    summary = "Edit a template: store its next version (admin)",
    params(
        ("template_id" = Uuid, Path, description = "The template's id"),
        ("If-Match" = Option<String>, Header, description = "The latest version, e.g. \"2\"; 412 if another edit came first"),
    ),
    request_body(content(
        (TemplateDraft = "application/json"),
        (String = "text/markdown"),
    ), description = "The template as JSON, or its Markdown form"),
    responses(
        (status = 201, description = "The new version", body = TemplateDetail, headers(("ETag" = String, description = "The new version number"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin, or a token without templates:write", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Another edit came first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid template, or the built-in template", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["templates:write"]))
)]
#[post("/templates/{template_id}/versions")]
pub async fn create_template_version(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::WriteTemplates)?;
    let id = path.into_inner().to_string();
    let template = template_from_body(&req, &body)?;
    let expected = if_match(&req)?;
    let by = caller.username.clone();
    let auditor = caller.auditor();
    let detail = blocking(&state, move |s| {
        s.add_template_version(&id, &template, expected.as_ref(), &by, &auditor)
    })
    .await?;
    Ok(HttpResponse::Created().json(detail))
}
