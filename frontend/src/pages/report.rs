//! A run's report (`/runs/:id/report`), laid out to be printed: the facts and schedule
//! against what happened, decisions, issues, waivers, overrides, sign-offs, the
//! retrospective and its action items, evidence, contacts and the event log's head hash.

use leptos::prelude::*;
use shipshape_domain::decision::CriterionResult;
use shipshape_domain::report::{RunReport, duration};

use crate::api::{self, ApiError};
use crate::components::ErrorNote;
use crate::format;

fn opt_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "—".to_owned(), format::time)
}

/// The report screen.
#[component]
pub fn ReportPage(id: String) -> impl IntoView {
    let report = RwSignal::new(None::<RunReport>);
    let error = RwSignal::new(None::<ApiError>);
    let run_id = id.clone();
    leptos::task::spawn_local(async move {
        match api::report(&run_id).await {
            Ok(r) => {
                report.try_set(Some(r));
            }
            Err(e) => {
                error.try_set(Some(e));
            }
        }
    });
    view! {
        <div class="report">
            <ErrorNote error=error/>
            {move || report.get().map(|r| view! { <Report report=r/> })}
        </div>
    }
}

#[component]
fn Report(report: RunReport) -> impl IntoView {
    let s = report.run.clone();
    let sc = report.schedule.clone();
    let run_href = format!("/runs/{}", s.id);
    let retro = report.retrospective.clone();
    view! {
        <h1>{format!("Run report: {} {} → {}", s.product, s.release_version, s.environment)}</h1>
        <p class="no-print">
            <a href=run_href>"Back to the run"</a>" · "
            <button type="button" class="print" on:click=|_| { let _ = window().print(); }>"Print"</button>
        </p>
        <dl class="facts">
            <dt>"Outcome"</dt><dd class="outcome">{s.status.as_str()}</dd>
            <dt>"Template"</dt><dd>{format!("{} v{}", s.template_name, s.template_version)}</dd>
            <dt>"Created by"</dt><dd>{format!("{} on {}", s.created_by, format::time(s.created_at))}</dd>
            <dt>"Closed"</dt><dd>{opt_time(s.closed_at)}</dd>
            <dt>"Report made"</dt><dd>{format::time(report.generated_at)}</dd>
        </dl>
        <h2>"Schedule"</h2>
        <dl class="facts">
            <dt>"Planned window"</dt><dd>{format!("{} – {}", opt_time(sc.window_start), opt_time(sc.window_end))}</dd>
            <dt>"Expected downtime"</dt><dd>{sc.expected_downtime_minutes.map_or("—".into(), |m| format!("{m} min"))}</dd>
            <dt>"Deployment started"</dt><dd>{opt_time(sc.deployment_started_at)}</dd>
            <dt>"Finished"</dt><dd>{opt_time(sc.finished_at)}</dd>
            <dt>"Within the window"</dt><dd>{match sc.within_window { Some(true) => "yes", Some(false) => "no", None => "—" }}</dd>
        </dl>
        <table class="list stages">
            <thead><tr><th scope="col">"Stage"</th><th scope="col">"Entered"</th><th scope="col">"Left"</th><th scope="col">"Time"</th></tr></thead>
            <tbody>
                {sc.stages.into_iter().map(|st| view! {
                    <tr><td>{st.status.as_str()}</td><td>{format::time(st.entered_at)}</td><td>{opt_time(st.left_at)}</td><td>{duration(st.seconds)}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
        <h2>"Decisions"</h2>
        <ul class="plain report-decisions">
            {report.decisions.into_iter().map(|d| view! {
                <li>
                    <strong>{format!("{}: {}", d.point_key, d.outcome.as_str())}</strong>
                    {format!(" — {} at {}{}", d.decided_by, format::time(d.decided_at), if d.superseded { " (superseded)" } else { "" })}
                    <blockquote>{d.rationale}</blockquote>
                    <ul>{d.criteria.into_iter().map(|c| view! {
                        <li>{format!("{}: {}{}", c.criterion, match c.result {
                            CriterionResult::Met => "met",
                            CriterionResult::NotMet => "not met",
                            CriterionResult::Unknown => "unknown",
                        }, c.observed.map(|o| format!(" ({o})")).unwrap_or_default())}</li>
                    }).collect_view()}</ul>
                </li>
            }).collect_view()}
        </ul>
        <h2>"Issues"</h2>
        <ul class="plain report-issues">
            {report.issues.into_iter().map(|i| view! {
                <li>{format!("#{} [{}, {}] {}{}", i.number, i.severity.as_str(), i.status.as_str(), i.title,
                    i.acceptance.map(|a| format!(" — accepted by {}: {}", a.by, a.reason)).unwrap_or_default())}</li>
            }).collect_view()}
        </ul>
        <h2>"Skipped and waived items"</h2>
        <ul class="plain">
            {report.skipped.into_iter().map(|k| view! {
                <li>{format!("{} {} — {}{}", k.reference, k.title, if k.waiver { "waived" } else { "skipped" },
                    k.reason.map(|r| format!(": {r}")).unwrap_or_default())}</li>
            }).collect_view()}
        </ul>
        <h2>"Overrides"</h2>
        <ul class="plain">
            {report.overrides.into_iter().map(|o| view! {
                <li>{format!("{} forced {} at {} past {} blocker(s): {}", o.by, o.action.as_str(), format::time(o.at), o.blockers.len(), o.reason.unwrap_or_default())}</li>
            }).collect_view()}
        </ul>
        <h2>"Sign-offs"</h2>
        <ul class="plain">
            {report.signoffs.into_iter().map(|so| view! {
                <li>{format!("{} {} — {} by {} at {}", so.reference, so.title, so.verdict.as_str(), so.username, format::time(so.signed_at))}</li>
            }).collect_view()}
        </ul>
        <h2>"Retrospective"</h2>
        {match retro {
            None => view! { <p class="muted">"Not written yet."</p> }.into_any(),
            Some(r) => view! {
                <div class="report-retro">
                    <p>{format!("Status: {}", r.status.as_str())}</p>
                    {[("What went well", r.went_well), ("What did not", r.went_badly), ("Root cause", r.root_cause), ("Lessons learned", r.lessons)]
                        .into_iter()
                        .filter_map(|(h, t)| t.map(|t| view! { <h3>{h}</h3><p class="prose">{t}</p> }))
                        .collect_view()}
                    <h3>"Action items"</h3>
                    <ul class="plain">
                        {r.action_items.into_iter().map(|a| view! {
                            <li>{format!("{} — {}, due {} ({}{})", a.title, a.assignee, a.due_on, a.status.as_str(), if a.overdue { ", overdue" } else { "" })}</li>
                        }).collect_view()}
                    </ul>
                </div>
            }.into_any(),
        }}
        <h2>"Evidence"</h2>
        <ul class="plain">
            {report.evidence.into_iter().map(|e| view! {
                <li>{format!("{} {}: ", e.reference, e.title)}<a href=e.url.clone()>{e.label}</a></li>
            }).collect_view()}
        </ul>
        <h2>"Contacts"</h2>
        <ul class="plain">
            {report.contacts.into_iter().map(|m| view! {
                <li>{format!("{} — {} ({})", m.username, m.run_role, format::role(m.role))}</li>
            }).collect_view()}
        </ul>
        <h2>"Audit"</h2>
        <p class="chain">{format!("{} events; head hash {}; chain {}", report.chain.events,
            report.chain.head_hash.unwrap_or_else(|| "—".into()),
            if report.chain.verified { "verified" } else { "BROKEN" })}</p>
    }
}
