//! Insights: delivery performance (DORA) and checklist analytics, as JSON or CSV.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use shipshape_domain::access::Permission;
use shipshape_domain::insights::{
    ChecklistReport, DeliveryReport, ItemRunFilter, ItemRunList, Period,
};
use shipshape_domain::text::Label;
use shipshape_domain::wire::Problem;
use shipshape_store::InsightFilter;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::blocking;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// How an answer is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InsightFormat {
    /// JSON (the default).
    #[default]
    Json,
    /// CSV (RFC 4180), as a download.
    Csv,
}

/// What the delivery metrics cover.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// The period's first day, `YYYY-MM-DD` (UTC; default: 89 days before `to`).
    #[param(max_length = 10, format = Date)]
    pub from: Option<String>,
    /// The period's last day, `YYYY-MM-DD` (UTC; default: today). A period spans at most
    /// 731 days (two years), both ends included.
    #[param(max_length = 10, format = Date)]
    pub to: Option<String>,
    /// Only this product.
    #[param(max_length = 200)]
    pub product: Option<String>,
    /// Only this environment.
    #[param(max_length = 200)]
    pub environment: Option<String>,
    /// Only runs of this template.
    pub template_id: Option<Uuid>,
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<InsightFormat>,
}

/// What the checklist analytics cover.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChecklistQuery {
    /// The template.
    pub template_id: Uuid,
    /// Only runs of this template version (default: every version, items matched by
    /// reference and wording).
    #[param(minimum = 1)]
    pub version: Option<i32>,
    /// The period's first day, `YYYY-MM-DD` (UTC; default: 89 days before `to`).
    #[param(max_length = 10, format = Date)]
    pub from: Option<String>,
    /// The period's last day, `YYYY-MM-DD` (UTC; default: today); a period spans at most
    /// 731 days, both ends included.
    #[param(max_length = 10, format = Date)]
    pub to: Option<String>,
    /// Only this product.
    #[param(max_length = 200)]
    pub product: Option<String>,
    /// Only this environment.
    #[param(max_length = 200)]
    pub environment: Option<String>,
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<InsightFormat>,
}

/// Which runs of an item to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemRunsQuery {
    /// The template.
    pub template_id: Uuid,
    /// The item's reference, e.g. `2.1.3`.
    #[param(max_length = 40)]
    pub reference: String,
    /// The item's wording, to tell it from an item of another version at the same reference
    /// (the analytics match items by both).
    #[param(max_length = 2000)]
    pub title: Option<String>,
    /// `all` (default), `skipped`, `blocked`, `overridden` or `slow` (slowest first).
    #[param(inline)]
    pub filter: Option<ItemRunFilter>,
    /// Only runs of this template version.
    #[param(minimum = 1)]
    pub version: Option<i32>,
    /// The period's first day, `YYYY-MM-DD`.
    #[param(max_length = 10, format = Date)]
    pub from: Option<String>,
    /// The period's last day, `YYYY-MM-DD`.
    #[param(max_length = 10, format = Date)]
    pub to: Option<String>,
    /// Only this product.
    #[param(max_length = 200)]
    pub product: Option<String>,
    /// Only this environment.
    #[param(max_length = 200)]
    pub environment: Option<String>,
}

fn label(field: &'static str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    Ok(match value {
        None => None,
        Some(v) => Some(Label::parse(field, v)?.into_string()),
    })
}

fn filter(
    from: Option<&str>,
    to: Option<&str>,
    product: Option<&str>,
    environment: Option<&str>,
    template_id: Option<Uuid>,
    version: Option<i32>,
) -> Result<InsightFilter, ApiError> {
    let period = Period::parse(from, to, chrono::Utc::now().date_naive())?;
    if version.is_some_and(|v| v < 1) {
        return Err(shipshape_domain::text::TextError::new("version", "must be 1 or more").into());
    }
    Ok(InsightFilter {
        period,
        product: label("product", product)?,
        environment: label("environment", environment)?,
        template_id: template_id.map(|t| t.to_string()),
        version,
    })
}

fn csv(name: &str, period: &Period, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"shipshape-{name}-{}-{}.csv\"",
                period.from, period.to
            ),
        ))
        .body(body)
}

/// Delivery performance over a period, overall and per product and environment, with the
/// period before for comparison: deployment frequency, lead time for changes, change
/// failure rate and time to restore, each with its DORA band and how it was computed. A
/// filter that matches no run answers an empty report that says so (`empty`, `message`);
/// a rate with nothing to divide is `null`, never a number.
#[utoipa::path(
    tag = "insights",
    summary = "Get delivery performance (DORA keys), as JSON or CSV",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "The report", content(
            (DeliveryReport = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An empty period, one longer than two years, a day that is not YYYY-MM-DD, or a product or environment name out of bounds", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/insights/delivery")]
pub async fn get_delivery_insights(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let q = query.into_inner();
    let f = filter(
        q.from.as_deref(),
        q.to.as_deref(),
        q.product.as_deref(),
        q.environment.as_deref(),
        q.template_id,
        None,
    )?;
    let report = blocking(&state, move |s| s.delivery_insights(&f)).await?;
    Ok(match q.format.unwrap_or_default() {
        InsightFormat::Csv => csv("delivery", &report.period, report.to_csv()),
        InsightFormat::Json => HttpResponse::Ok().json(report),
    })
}

/// Checklist analytics of a template over a period: per item how often it is skipped or
/// waived, how long it stays in progress, how often it blocks a transition or is
/// overridden, how long approvals wait; per decision point the time to decide and the
/// outcome mix; and the items whose skipping most often preceded a rollback.
#[utoipa::path(
    tag = "insights",
    summary = "Get checklist analytics of a template, as JSON or CSV",
    params(ChecklistQuery),
    responses(
        (status = 200, description = "The report", content(
            (ChecklistReport = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An empty period, one longer than two years, a day that is not YYYY-MM-DD, or a name out of bounds", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/insights/checklist")]
pub async fn get_checklist_insights(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ChecklistQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let q = query.into_inner();
    let f = filter(
        q.from.as_deref(),
        q.to.as_deref(),
        q.product.as_deref(),
        q.environment.as_deref(),
        None,
        q.version,
    )?;
    let template = q.template_id.to_string();
    let report = blocking(&state, move |s| s.checklist_insights(&template, &f)).await?;
    Ok(match q.format.unwrap_or_default() {
        InsightFormat::Csv => csv("checklist", &report.period, report.to_csv()),
        InsightFormat::Json => HttpResponse::Ok().json(report),
    })
}

/// The runs behind an item's numbers in the checklist analytics: every run that had the
/// item, or those that skipped it, were blocked or overridden by it, or the slowest at it.
/// At most 100, newest (or slowest) first.
#[utoipa::path(
    tag = "insights",
    summary = "List the runs behind a checklist item's numbers",
    params(ItemRunsQuery),
    responses(
        (status = 200, description = "The runs", body = ItemRunList),
        (status = 400, description = "A malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An empty or too long period, or a value out of bounds", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/insights/checklist/runs")]
pub async fn list_item_insight_runs(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ItemRunsQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let q = query.into_inner();
    let f = filter(
        q.from.as_deref(),
        q.to.as_deref(),
        q.product.as_deref(),
        q.environment.as_deref(),
        None,
        q.version,
    )?;
    let reference = Label::parse("reference", &q.reference)?.into_string();
    if reference.len() > 40 {
        return Err(
            shipshape_domain::text::TextError::new("reference", "at most 40 characters").into(),
        );
    }
    let template = q.template_id.to_string();
    let which = q.filter.unwrap_or(ItemRunFilter::All);
    let title = q.title;
    let list = blocking(&state, move |s| {
        s.item_insight_runs(&template, (&reference, title.as_deref()), which, &f)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}
