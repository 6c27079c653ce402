//! The single mapping from errors to HTTP: every error answer is an RFC 9457
//! `application/problem+json` body with a stable `code`. Database details never reach a
//! client; the whole error chain is logged once, here, for 5xx answers.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use shipshape_domain::decision::DecisionError;
use shipshape_domain::item::ItemError;
use shipshape_domain::run::{Blocker, TransitionError};
use shipshape_domain::wire::Problem;
use shipshape_store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    blockers: Option<Vec<Blocker>>,
    etag: Option<String>,
    retry_after: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ApiError {
    /// An error with a status, a stable code and a detail for people.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            blockers: None,
            etag: None,
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`.
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!(
                    "too many failed sign-ins; try again in {} seconds",
                    retry_after_secs.max(1)
                ),
            )
        }
    }

    /// 400.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }
    /// 422.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", detail)
    }
    /// 503 with `Retry-After`: the database cannot serve now; the same request may be sent
    /// again shortly.
    pub fn database_unavailable() -> Self {
        Self {
            retry_after: Some(DATABASE_RETRY_AFTER_SECS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable; try again shortly",
            )
        }
    }

    /// 500: the cause is logged, never sent.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %chain(cause), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; it has been logged",
        )
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// How long a client is told to wait when the database is unavailable.
const DATABASE_RETRY_AFTER_SECS: u64 = 2;

/// An error and its sources, as one line for the log.
fn chain(cause: &dyn std::error::Error) -> String {
    let mut chain = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = Problem {
            problem_type: format!("urn:shipshape:problem:{}", self.code),
            title: title(self.status).to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            blockers: self.blockers.clone(),
        };
        let mut res = HttpResponse::build(self.status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if self.status == StatusCode::UNAUTHORIZED {
            res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(etag) = &self.etag {
            res.insert_header((header::ETAG, etag.clone()));
        }
        res.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        let detail = e.to_string();
        match e {
            TransitionError::Blocked { blockers, .. } => ApiError {
                blockers: Some(blockers),
                ..ApiError::new(StatusCode::CONFLICT, "gate_blocked", detail)
            },
            TransitionError::Invalid(_) => {
                ApiError::new(StatusCode::CONFLICT, "invalid_transition", detail)
            }
            TransitionError::Closed => ApiError::new(StatusCode::CONFLICT, "run_closed", detail),
            TransitionError::LiveRunExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "live_run_exists", detail)
            }
        }
    }
}

impl From<ItemError> for ApiError {
    fn from(e: ItemError) -> Self {
        let detail = e.to_string();
        match e {
            ItemError::Invalid { .. } => ApiError::invalid(detail),
            ItemError::Forbidden(_) => ApiError::forbidden(detail),
            ItemError::Locked(_) => ApiError::new(StatusCode::CONFLICT, "item_locked", detail),
            ItemError::NeedsSignoff => {
                ApiError::new(StatusCode::CONFLICT, "signoff_required", detail)
            }
            ItemError::NeedsCheck => ApiError::new(StatusCode::CONFLICT, "check_required", detail),
            ItemError::NeedsRetrospective => {
                ApiError::new(StatusCode::CONFLICT, "retrospective_required", detail)
            }
        }
    }
}

impl From<DecisionError> for ApiError {
    fn from(e: DecisionError) -> Self {
        let detail = e.to_string();
        match e {
            DecisionError::Invalid { .. } => ApiError::invalid(detail),
            DecisionError::WrongStage(_) => {
                ApiError::new(StatusCode::CONFLICT, "wrong_stage", detail)
            }
            DecisionError::Transition(t) => TransitionError::Invalid(t).into(),
        }
    }
}

impl From<shipshape_domain::text::TextError> for ApiError {
    fn from(e: shipshape_domain::text::TextError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

impl From<shipshape_domain::run::FieldError> for ApiError {
    fn from(e: shipshape_domain::run::FieldError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Duplicate(what) => ApiError::new(
                StatusCode::CONFLICT,
                "duplicate",
                format!("{what} is already taken"),
            ),
            StoreError::PreconditionFailed { what, current } => ApiError {
                etag: Some(format!("\"{current}\"")),
                ..ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "precondition_failed",
                    format!(
                        "the {what} was changed by someone else (now at version {current}); \
                         fetch it again and re-apply your change"
                    ),
                )
            },
            StoreError::Invalid { field, message } => {
                ApiError::invalid(format!("{field}: {message}"))
            }
            StoreError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            StoreError::Transition(t) => t.into(),
            StoreError::Item(i) => i.into(),
            StoreError::Decision(d) => d.into(),
            StoreError::Template(t) => ApiError::invalid(t.to_string()),
            StoreError::Signoff(e) => {
                use shipshape_domain::approval::SignoffError as S;
                let detail = e.to_string();
                match e {
                    S::Invalid(_) => ApiError::invalid(detail),
                    S::Forbidden(_) => ApiError::forbidden(detail),
                    S::Conflict(_) => {
                        ApiError::new(StatusCode::CONFLICT, "signoff_refused", detail)
                    }
                }
            }
            StoreError::Force(e) => match e {
                shipshape_domain::run::ForceError::ReasonRequired => {
                    ApiError::invalid(e.to_string())
                }
                shipshape_domain::run::ForceError::NotClose => {
                    ApiError::new(StatusCode::CONFLICT, "invalid_transition", e.to_string())
                }
                shipshape_domain::run::ForceError::Transition(t) => t.into(),
            },
            StoreError::Field(f) => ApiError::invalid(f.to_string()),
            StoreError::Record(r) => {
                use shipshape_domain::records::RecordError as R;
                let detail = r.to_string();
                match r {
                    R::Invalid { .. } => ApiError::invalid(detail),
                    R::Forbidden(_) => ApiError::forbidden(detail),
                    R::Locked(_) => ApiError::new(StatusCode::CONFLICT, "record_locked", detail),
                }
            }
            StoreError::Proposal(p) => {
                use shipshape_domain::proposal::ProposalError as P;
                let detail = p.to_string();
                match p {
                    P::Invalid { .. } => ApiError::invalid(detail),
                    P::Reviewed(_) => {
                        ApiError::new(StatusCode::CONFLICT, "proposal_reviewed", detail)
                    }
                }
            }
            StoreError::RunLocked(l) => {
                ApiError::new(StatusCode::CONFLICT, "run_locked", l.to_string())
            }
            StoreError::Connect(_) | StoreError::Unavailable { .. } => {
                tracing::warn!(error = %chain(&e), "database unavailable");
                ApiError::database_unavailable()
            }
            StoreError::Config(_)
            | StoreError::Transfer(_)
            | StoreError::Migration(_)
            | StoreError::Corrupt(_)
            | StoreError::Database(_) => ApiError::internal(&e),
        }
    }
}

impl From<shipshape_domain::template::TemplateError> for ApiError {
    fn from(e: shipshape_domain::template::TemplateError) -> Self {
        ApiError::invalid(e.to_string())
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::internal(&e)
    }
}

/// Maps a JSON body error: malformed JSON and unknown fields are 400, a wrong content type
/// 415, an oversized body 413, values the types refuse 422.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body must be at most {limit} bytes"),
        ),
        J::Deserialize(e) => serde_error(&e),
        other => ApiError::bad_request("bad_request", other.to_string()),
    }
}

/// Maps a serde_json error to 400 (syntax, unknown field) or 422 (a value the types refuse).
pub fn serde_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
        Category::Data => {
            let msg = e.to_string();
            if msg.starts_with("unknown field") {
                ApiError::bad_request("unknown_field", msg)
            } else {
                ApiError::invalid(msg)
            }
        }
    }
}
