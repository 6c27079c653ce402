//! Insights (`/insights`): delivery performance (the DORA keys, banded, against the period
//! before) and checklist analytics (the most skipped and the slowest items, the skips that
//! preceded rollbacks, decisions). Charts are SVG drawn here; each has its numbers as a table
//! and a CSV download, and an item in a chart opens the runs behind it.
//!
//! Answers are read as JSON trees and the reports written as markup (every text from the
//! server escaped), with one click handler for the whole screen: far less code than a view
//! per cell, and the screen rides in the forms' module, whose size counts on its first load.

use chrono::{DateTime, Duration, NaiveDate};
use leptos::prelude::*;
use serde_json::Value;
use shipshape_domain::insights::{csv, number};
use std::fmt::Write as _;
use wasm_bindgen::JsCast;

use crate::api::{self, ApiError};
use crate::components::ErrorNote;

/// The screen's style: kept in its module, so other screens do not download it.
const STYLE: &str = r#"
.insight-filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; margin-bottom: 1rem; }
.metrics { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: .75rem; margin: .75rem 0; }
.metric { border: 1px solid #c9d2dc; border-radius: 6px; padding: .5rem .75rem; }
.metric h3 { margin: 0; font-size: 1rem; }
.metric-value { font-size: 1.4rem; margin: .25rem 0; }
.band-badge { font-size: .75rem; margin-left: .5rem; padding: .1rem .4rem; border-radius: 3px; color: #fff; background: #4a5563; text-transform: capitalize; vertical-align: middle; }
.band-badge.elite { background: #1d6b3a; } .band-badge.high { background: #2c5e8f; }
.band-badge.medium { background: #7a5a00; } .band-badge.low { background: #9b2c1f; }
.chart { margin: 1rem 0; max-width: 44rem; }
.chart svg { width: 100%; height: auto; background: #fff; }
.chart figcaption { font-weight: 600; }
.chart .axis { stroke: #5b6573; stroke-width: 1; }
.chart .tick { font-size: 11px; fill: #3d4652; }
.chart .line { stroke-width: 2.5; }
.chart .line.s-deploy, .swatch.s-deploy { stroke: #2f6fb3; background: #2f6fb3; }
.chart .line.s-fail, .swatch.s-fail { stroke: #b3412f; background: #b3412f; }
.chart circle.s-deploy { fill: #2f6fb3; } .chart circle.s-fail { fill: #b3412f; }
.chart .band.elite { fill: #dff1e4; } .chart .band.high { fill: #e3edf7; }
.chart .band.medium { fill: #fbf1d6; } .chart .band.low { fill: #f8e1dd; }
.legend { display: inline-flex; gap: 1rem; list-style: none; margin: 0 0 0 1rem; padding: 0; font-weight: 400; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: middle; }
.bar-charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1rem; }
.bar-row { display: grid; grid-template-columns: minmax(8rem, 2fr) 3fr auto; gap: .5rem; align-items: center; margin: .2rem 0; }
.bar-label { text-align: left; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bar-track svg.bar { width: 100%; height: .9rem; display: block; }
.bar-track rect { fill: #2f6fb3; }
.bar-value { font-variant-numeric: tabular-nums; }
table.numbers { border-collapse: collapse; margin: .75rem 0; font-size: .9rem; }
table.numbers caption { text-align: left; font-weight: 600; }
table.numbers th, table.numbers td { border: 1px solid #c9d2dc; padding: .2rem .5rem; text-align: left; }
.empty-note { padding: .5rem .75rem; background: #f3f5f7; border-left: 4px solid #5b6573; }
a.csv { display: inline-block; margin-bottom: 1rem; }
"#;

/// The built-in template, the default of the checklist analytics.
const BUILTIN: &str = "5d0c3c1e-7f0b-4c52-9a57-3f6f0e2d1a01";

fn today() -> NaiveDate {
    DateTime::from_timestamp_millis(js_sys::Date::now() as i64)
        .unwrap_or_default()
        .date_naive()
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Text from the server, escaped for markup.
fn esc(v: &str) -> String {
    v.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A string field, as it is (escape it before it goes into markup).
fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// A whole number as text (without serde_json's writer).
fn int(v: &Value) -> String {
    v.as_i64().map(|n| n.to_string()).unwrap_or_default()
}

/// A coordinate, as a whole number of the chart's units (written without the float
/// formatter, which would cost the module its size).
fn at(v: f64) -> i64 {
    v.round() as i64
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// A metric's value with its unit, or a dash.
fn shown(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "—".into(),
        Some(v) => match unit {
            "per_week" => format!("{} / week", number(Some(v))),
            "percent" => format!("{} %", number(Some(v))),
            "hours" if v < 1.0 => format!("{} min", number(Some(v * 60.0))),
            "hours" if v >= 48.0 => format!("{} days", number(Some(v / 24.0))),
            "hours" => format!("{} h", number(Some(v))),
            _ => number(Some(v)),
        },
    }
}

/// A table with a caption, then a link that downloads its numbers as CSV.
fn table(out: &mut String, caption: &str, file: &str, header: &[&str], rows: &[Vec<String>]) {
    let _ = write!(
        out,
        "<table class=\"numbers\"><caption>{}</caption><thead><tr>",
        esc(caption)
    );
    for h in header {
        let _ = write!(out, "<th scope=\"col\">{}</th>", h.replace('_', " "));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", esc(cell));
        }
        out.push_str("</tr>");
    }
    let href = format!(
        "data:text/csv;charset=utf-8,{}",
        api::encode(&csv(header, rows))
    );
    let _ = write!(
        out,
        "</tbody></table><a class=\"csv\" href=\"{}\" download=\"{file}.csv\">Download CSV: {}</a>",
        esc(&href),
        esc(caption)
    );
}

const W: f64 = 640.0;
const H: f64 = 200.0;
const P: f64 = 32.0;

/// A line chart of weekly values (`(label, class, points)`), over horizontal bands
/// (`(from, to, class, label)` in the values' scale).
fn line_chart(
    out: &mut String,
    title: &str,
    weeks: &[String],
    series: &[(&str, &str, Vec<Option<f64>>)],
    bands: &[(f64, f64, &str, &str)],
    max_hint: f64,
) {
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().flatten().copied())
        .fold(max_hint, f64::max)
        .max(1.0);
    let n = weeks.len().max(2) as f64;
    let x = |i: usize| at(P + (W - 2.0 * P) * i as f64 / (n - 1.0));
    let y = |v: f64| at(H - P - (H - 2.0 * P) * (v / max).min(1.0));
    let _ = write!(
        out,
        "<figure class=\"chart\"><svg viewBox=\"0 0 640 200\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for (lo, hi, class, label) in bands {
        let (top, bottom) = (y(hi.min(max)), y(*lo));
        let _ = write!(
            out,
            "<rect class=\"band {class}\" x=\"32\" y=\"{top}\" width=\"576\" height=\"{}\"><title>{label}</title></rect>",
            (bottom - top).max(0)
        );
    }
    let first = weeks.first().map(|w| esc(w)).unwrap_or_default();
    let last = weeks.last().map(|w| esc(w)).unwrap_or_default();
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"32\" y1=\"168\" x2=\"608\" y2=\"168\"/>\
         <line class=\"axis\" x1=\"32\" y1=\"32\" x2=\"32\" y2=\"168\"/>\
         <text class=\"tick\" x=\"28\" y=\"36\" text-anchor=\"end\">{}</text>\
         <text class=\"tick\" x=\"28\" y=\"168\" text-anchor=\"end\">0</text>\
         <text class=\"tick\" x=\"32\" y=\"192\">{first}</text>\
         <text class=\"tick\" x=\"608\" y=\"192\" text-anchor=\"end\">{last}</text>",
        number(Some(max))
    );
    for (_, class, points) in series {
        let _ = write!(
            out,
            "<polyline class=\"line {class}\" fill=\"none\" points=\""
        );
        for (i, v) in points.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(out, "{},{} ", x(i), y(*v));
            }
        }
        out.push_str("\"/>");
        for (i, v) in points.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    out,
                    "<circle class=\"{class}\" cx=\"{}\" cy=\"{}\" r=\"3\"/>",
                    x(i),
                    y(*v)
                );
            }
        }
    }
    let _ = write!(out, "</svg><figcaption>{}<ul class=\"legend\">", esc(title));
    for (label, class, _) in series {
        let _ = write!(
            out,
            "<li><span class=\"swatch {class}\"></span>{label}</li>"
        );
    }
    out.push_str("</ul></figcaption></figure>");
}

/// A horizontal bar chart; each bar's label opens the runs behind it (`filter`).
fn bar_chart(
    out: &mut String,
    title: &str,
    unit: &str,
    filter: &str,
    bars: &[(String, String, f64)],
) {
    let max = bars.iter().map(|b| b.2).fold(0.0, f64::max).max(1.0);
    let _ = write!(
        out,
        "<figure class=\"chart bars\"><figcaption>{}</figcaption><ul class=\"plain\">",
        esc(title)
    );
    if bars.is_empty() {
        out.push_str("<li class=\"muted\">None in this period.</li>");
    }
    for (reference, title, v) in bars {
        let _ = write!(
            out,
            "<li class=\"bar-row\"><button type=\"button\" class=\"link bar-label\" data-ref=\"{r}\" data-title=\"{t}\" data-filter=\"{filter}\" \
             title=\"Show the runs behind it\">{r} {t}</button><span class=\"bar-track\">\
             <svg viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" aria-hidden=\"true\" class=\"bar\">\
             <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"10\"/></svg></span><span class=\"bar-value\">{n} {unit}</span></li>",
            r = esc(reference),
            t = esc(title),
            w = at(100.0 * v / max),
            n = number(Some(*v)),
        );
    }
    out.push_str("</ul></figure>");
}

const METRICS: [(&str, &str); 5] = [
    ("deployment_frequency", "Deployment frequency"),
    ("lead_time", "Lead time for changes"),
    ("change_failure_rate", "Change failure rate"),
    ("time_to_restore", "Time to restore"),
    ("time_to_next_success", "Time to the next success"),
];

fn note(out: &mut String, message: &Value) {
    if let Some(m) = message.as_str() {
        let _ = write!(
            out,
            "<p class=\"empty-note\" role=\"status\">{}</p>",
            esc(m)
        );
    }
}

/// The delivery report, as markup.
fn delivery(report: &Value) -> String {
    let mut out = String::new();
    let overall = &report["overall"];
    let methods = list(&report["methods"]);
    let _ = write!(
        out,
        "<h2 id=\"delivery-title\">Delivery performance</h2><p class=\"muted\">{} to {} ({} days), against {} to {}</p>",
        esc(&text(&report["period"]["from"])),
        esc(&text(&report["period"]["to"])),
        int(&report["period"]["days"]),
        esc(&text(&report["previous_period"]["from"])),
        esc(&text(&report["previous_period"]["to"])),
    );
    note(&mut out, &report["message"]);
    out.push_str("<div class=\"metrics\">");
    for (key, name) in METRICS {
        let m = &overall[key];
        let unit = text(&m["unit"]);
        let band = m["band"]
            .as_str()
            .map(|b| format!("<span class=\"band-badge {b}\">{b}</span>", b = esc(b)))
            .unwrap_or_default();
        let method = methods
            .iter()
            .find(|x| x["key"] == key)
            .map(|x| format!("{} Bands: {}", text(&x["computed"]), text(&x["bands"])))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<section class=\"metric\" data-metric=\"{key}\"><h3>{name}</h3><p class=\"metric-value\">{}{band}</p>\
             <p class=\"muted\">Before: {} · from {} runs (before: {})</p>{}\
             <details><summary>How it is computed</summary><p>{}</p></details></section>",
            shown(num(&m["value"]), &unit),
            shown(num(&m["previous"]), &unit),
            int(&m["sample"]),
            int(&m["previous_sample"]),
            m["note"]
                .as_str()
                .map(|n| format!("<p class=\"muted\">{}</p>", esc(n)))
                .unwrap_or_default(),
            esc(&method),
        );
    }
    out.push_str("</div>");
    let weeks = list(&overall["weeks"]);
    let labels: Vec<String> = weeks.iter().map(|w| text(&w["start"])).collect();
    let column = |key: &str| -> Vec<Option<f64>> { weeks.iter().map(|w| num(&w[key])).collect() };
    line_chart(
        &mut out,
        "Deployments and failures per week",
        &labels,
        &[
            ("Completed", "s-deploy", column("deployments")),
            ("Failed", "s-fail", column("failures")),
        ],
        &[],
        1.0,
    );
    let header = [
        "week",
        "days",
        "deployments",
        "failures",
        "failure_rate_percent",
        "median_lead_time_hours",
    ];
    let rows: Vec<Vec<String>> = weeks
        .iter()
        .map(|w| {
            vec![
                text(&w["start"]),
                int(&w["days"]),
                int(&w["deployments"]),
                int(&w["failures"]),
                number(num(&w["failure_rate"])),
                number(num(&w["lead_time_hours"])),
            ]
        })
        .collect();
    table(
        &mut out,
        "Deployments and failures per week",
        "deployments-per-week",
        &header,
        &rows,
    );
    line_chart(
        &mut out,
        "Change failure rate per week (%), over the DORA bands",
        &labels,
        &[("Failure rate", "s-fail", column("failure_rate"))],
        &[
            (0.0, 5.0, "elite", "Elite: 5 % or less"),
            (5.0, 10.0, "high", "High: up to 10 %"),
            (10.0, 15.0, "medium", "Medium: up to 15 %"),
            (15.0, 100.0, "low", "Low: more than 15 %"),
        ],
        20.0,
    );
    let groups: Vec<Vec<String>> = list(&report["groups"])
        .iter()
        .map(|g| {
            let mut row = vec![text(&g["product"]), text(&g["environment"])];
            for (key, _) in METRICS.iter().take(4) {
                row.push(shown(num(&g[*key]["value"]), &text(&g[*key]["unit"])));
                row.push(text(&g[*key]["band"]));
            }
            row
        })
        .collect();
    table(
        &mut out,
        "Per product and environment",
        "delivery-per-product-and-environment",
        &[
            "product",
            "environment",
            "deployment_frequency",
            "band",
            "lead_time",
            "band",
            "change_failure_rate",
            "band",
            "time_to_restore",
            "band",
        ],
        &groups,
    );
    out
}

/// The checklist report, as markup.
fn checklist(report: &Value) -> String {
    let mut out = String::new();
    let items = list(&report["items"]);
    let _ = write!(
        out,
        "<h2 id=\"checklist-title\">Checklist: {}</h2><p class=\"muted\">{} finished runs, {} failed ({})</p>",
        esc(&text(&report["template_name"])),
        int(&report["runs"]),
        int(&report["failed_runs"]),
        shown(num(&report["failure_rate"]), "percent"),
    );
    note(&mut out, &report["message"]);
    let top = |key: &str| -> Vec<(String, String, f64)> {
        let mut bars: Vec<(String, String, f64)> = items
            .iter()
            .filter_map(|i| {
                let v = num(&i[key]).filter(|v| *v > 0.0)?;
                Some((text(&i["reference"]), text(&i["title"]), v))
            })
            .collect();
        bars.sort_by(|a, b| b.2.total_cmp(&a.2));
        bars.truncate(10);
        bars
    };
    out.push_str("<div class=\"bar-charts\">");
    bar_chart(
        &mut out,
        "Most skipped items (% of runs)",
        "%",
        "skipped",
        &top("skip_rate"),
    );
    bar_chart(
        &mut out,
        "Slowest items (mean minutes in progress)",
        "min",
        "slow",
        &top("mean_in_progress_minutes"),
    );
    out.push_str("</div><h3>Skipped before a rollback</h3>");
    let risks = list(&report["skipped_before_rollback"]);
    if risks.is_empty() {
        out.push_str("<p class=\"muted\">No skipped item preceded a rollback in this period.</p>");
    } else {
        let _ = write!(
            out,
            "<table class=\"numbers risks\"><caption>Runs that skipped the item and then failed; of all runs, {} failed</caption>\
             <thead><tr><th scope=\"col\">Item</th><th scope=\"col\">Skipped</th><th scope=\"col\">Then failed</th>\
             <th scope=\"col\">Failure rate when skipped</th></tr></thead><tbody>",
            shown(num(&report["failure_rate"]), "percent")
        );
        for i in &risks {
            let _ = write!(
                out,
                "<tr><td><button type=\"button\" class=\"link\" data-ref=\"{r}\" data-title=\"{t}\" data-filter=\"skipped\">{r} {t}</button></td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                int(&i["skipped"]),
                int(&i["skipped_then_failed"]),
                shown(num(&i["failure_rate_when_skipped"]), "percent"),
                r = esc(&text(&i["reference"])),
                t = esc(&text(&i["title"])),
            );
        }
        out.push_str("</tbody></table>");
    }
    let points: Vec<Vec<String>> = list(&report["decision_points"])
        .iter()
        .map(|p| {
            vec![
                text(&p["title"]),
                int(&p["decisions"]),
                shown(num(&p["mean_minutes_to_decide"]).map(|m| m / 60.0), "hours"),
                int(&p["go"]),
                int(&p["hold"]),
                int(&p["rollback"]),
                int(&p["abort"]),
            ]
        })
        .collect();
    table(
        &mut out,
        "Decision points",
        "decision-points",
        &[
            "point",
            "decisions",
            "mean_time_to_decide",
            "go",
            "hold",
            "rollback",
            "abort",
        ],
        &points,
    );
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                text(&i["reference"]),
                text(&i["title"]),
                int(&i["runs"]),
                int(&i["skipped"]),
                int(&i["waived"]),
                number(num(&i["skip_rate"])),
                number(num(&i["mean_in_progress_minutes"])),
                int(&i["blocked"]),
                int(&i["overridden"]),
                number(num(&i["mean_approval_wait_minutes"])),
                int(&i["skipped_then_failed"]),
            ]
        })
        .collect();
    out.push_str("<details class=\"all-items\"><summary>Every item's numbers</summary>");
    table(
        &mut out,
        "Items",
        "checklist-items",
        &[
            "reference",
            "title",
            "runs",
            "skipped",
            "waived",
            "skip_rate_percent",
            "mean_in_progress_minutes",
            "blocked",
            "overridden",
            "mean_approval_wait_minutes",
            "skipped_then_failed",
        ],
        &rows,
    );
    out.push_str("</details>");
    out
}

/// The runs behind an item's number, as markup.
fn runs_behind(reference: &str, filter: &str, answer: &Value) -> String {
    let what = match filter {
        "skipped" => "that skipped",
        "slow" => "slowest at",
        _ => "with",
    };
    let mut out = format!("<h2>Runs {what} item {}</h2>", esc(reference));
    let runs = list(&answer["runs"]);
    if runs.is_empty() {
        out.push_str("<p class=\"muted\">No run in this period.</p>");
        return out;
    }
    out.push_str("<ul class=\"plain\">");
    for r in &runs {
        let minutes = num(&r["in_progress_minutes"])
            .map(|m| format!(", {} min in progress", number(Some(m))))
            .unwrap_or_default();
        let reason = r["skip_reason"]
            .as_str()
            .map(|s| format!(": “{}”", esc(s)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<li><a href=\"/runs/{}\">{} {} → {}</a> ({}, item {}{minutes}{reason})</li>",
            esc(&text(&r["run_id"])),
            esc(&text(&r["product"])),
            esc(&text(&r["release_version"])),
            esc(&text(&r["environment"])),
            esc(&text(&r["status"]).replace('_', " ")),
            esc(&text(&r["item_status"]).replace('_', " ")),
        );
    }
    out.push_str("</ul>");
    out
}

/// The filters, as the API's query.
#[derive(Clone, PartialEq)]
struct Filters {
    days: i64,
    product: String,
    environment: String,
    template: String,
}

impl Filters {
    fn query(&self) -> String {
        let to = today();
        let from = to - Duration::days(self.days - 1);
        let mut q = format!("from={from}&to={to}");
        for (key, value) in [
            ("product", &self.product),
            ("environment", &self.environment),
        ] {
            if !value.trim().is_empty() {
                let _ = write!(q, "&{key}={}", api::encode(value.trim()));
            }
        }
        q
    }
}

/// The insights screen.
#[component]
pub fn Insights() -> impl IntoView {
    let filters = RwSignal::new(Filters {
        days: 90,
        product: String::new(),
        environment: String::new(),
        template: BUILTIN.to_owned(),
    });
    let delivery_html = RwSignal::new(String::new());
    let checklist_html = RwSignal::new(String::new());
    let runs_html = RwSignal::new(String::new());
    let templates = RwSignal::new(Vec::<(String, String)>::new());
    let error = RwSignal::new(None::<ApiError>);
    leptos::task::spawn_local(async move {
        if let Ok(list) = api::list_templates().await {
            templates.try_set(list.into_iter().map(|t| (t.id, t.name)).collect());
        }
    });
    Effect::new(move |_| {
        let f = filters.get();
        let query = f.query();
        runs_html.set(String::new());
        leptos::task::spawn_local(async move {
            let d = api::insights(&format!("/insights/delivery?{query}")).await;
            let c = api::insights(&format!(
                "/insights/checklist?template_id={}&{query}",
                api::encode(&f.template)
            ))
            .await;
            match (d, c) {
                (Ok(d), Ok(c)) => {
                    error.try_set(None);
                    delivery_html.try_set(delivery(&d));
                    checklist_html.try_set(checklist(&c));
                }
                (Err(e), _) | (_, Err(e)) => {
                    error.try_set(Some(e));
                }
            }
        });
    });
    // One handler for every item button of the reports: it opens the runs behind it.
    let open = move |ev: leptos::ev::MouseEvent| {
        let Some(button) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("[data-ref]").ok().flatten())
        else {
            return;
        };
        let reference = button.get_attribute("data-ref").unwrap_or_default();
        let filter = button.get_attribute("data-filter").unwrap_or_default();
        let title = button.get_attribute("data-title").unwrap_or_default();
        let f = filters.get_untracked();
        let query = f.query();
        leptos::task::spawn_local(async move {
            match api::insights(&format!(
                "/insights/checklist/runs?template_id={}&reference={}&title={}&filter={}&{query}",
                api::encode(&f.template),
                api::encode(&reference),
                api::encode(&title),
                api::encode(&filter)
            ))
            .await
            {
                Ok(list) => {
                    runs_html.try_set(runs_behind(&reference, &filter, &list));
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let product = NodeRef::<leptos::html::Input>::new();
    let environment = NodeRef::<leptos::html::Input>::new();
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        filters.update(|f| {
            f.product = product.get().map(|i| i.value()).unwrap_or_default();
            f.environment = environment.get().map(|i| i.value()).unwrap_or_default();
        });
    };
    view! {
        <style>{STYLE}</style>
        <h1>"Insights"</h1>
        <form class="insight-filters" on:submit=apply aria-label="What to show">
            <label>"Period "
                <select name="days" on:change=move |ev| {
                    let days = event_target_value(&ev).parse().unwrap_or(90);
                    filters.update(|f| f.days = days);
                }>
                    <option value="30">"Last 30 days"</option>
                    <option value="90" selected>"Last 90 days"</option>
                    <option value="182">"Last 6 months"</option>
                    <option value="365">"Last year"</option>
                    <option value="730">"Last 2 years"</option>
                </select>
            </label>
            <label>"Product "<input name="product" node_ref=product placeholder="all"/></label>
            <label>"Environment "<input name="environment" node_ref=environment placeholder="all"/></label>
            <label>"Template "
                <select name="template" on:change=move |ev| {
                    let t = event_target_value(&ev);
                    filters.update(|f| f.template = t);
                }>
                    {move || templates.get().into_iter().map(|(id, name)| {
                        let selected = id == filters.get_untracked().template;
                        view! { <option value=id selected=selected>{name}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="submit">"Show"</button>
        </form>
        <ErrorNote error=error/>
        <div on:click=open>
            <section class="insights-delivery" aria-labelledby="delivery-title" inner_html=move || delivery_html.get()></section>
            <section class="insights-checklist" aria-labelledby="checklist-title" inner_html=move || checklist_html.get()></section>
            <section class="item-runs" aria-live="polite" inner_html=move || runs_html.get()></section>
        </div>
    }
}
