//! The run report: one document that reads as release notes and as an audit record — the
//! run's facts and schedule against what really happened, its decisions, waivers, overrides,
//! sign-offs, issues, retrospective, evidence and contacts, and its event log's head hash.
//!
//! Built from what the API serves (the run, its events, its records), so the report says
//! nothing the API does not; rendered as JSON or as Markdown ([`markdown`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::approval::Verdict;
use crate::decision::CriterionResult;
use crate::event::{Event, EventData};
use crate::item::ItemStatus;
use crate::proposal::{ProposalStatus, TemplateProposal};
use crate::records::{Issue, Retrospective};
use crate::role::Role;
use crate::run::{Blocker, RunStatus, TransitionAction};
use crate::wire::{ChainVerdict, Decision, Run, RunMember, RunSummary};

/// A stretch of time the run spent in one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageSpan {
    /// The status.
    pub status: RunStatus,
    /// When the run entered it.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub entered_at: DateTime<Utc>,
    /// When it left it (`null`: it is still there).
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub left_at: Option<DateTime<Utc>>,
    /// How long, in seconds (up to the report's time for the current status).
    pub seconds: i64,
}

/// The schedule against what really happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportSchedule {
    /// The planned window's start.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub window_start: Option<DateTime<Utc>>,
    /// The planned window's end.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub window_end: Option<DateTime<Utc>>,
    /// The expected downtime, in minutes.
    pub expected_downtime_minutes: Option<i32>,
    /// When the deployment began (the run entered `deploying`).
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub deployment_started_at: Option<DateTime<Utc>>,
    /// When the run reached its outcome (completed, rolled back or aborted).
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether the deployment began and finished inside the planned window (`null` without
    /// a window or before it finished).
    pub within_window: Option<bool>,
    /// Every status the run was in, in order, with the time spent there.
    pub stages: Vec<StageSpan>,
}

/// An item skipped, or waived (a required item skipped by a release manager).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportSkip {
    /// The item's reference.
    pub reference: String,
    /// Its title.
    pub title: String,
    /// Whether it was required (so skipping it was a waiver).
    pub waiver: bool,
    /// Why.
    pub reason: Option<String>,
    /// Who skipped it.
    pub by: Option<String>,
}

/// A transition a release manager forced past unmet gates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportOverride {
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub at: DateTime<Utc>,
    /// Who.
    pub by: String,
    /// The transition.
    pub action: TransitionAction,
    /// Why.
    pub reason: Option<String>,
    /// What it went past.
    pub blockers: Vec<Blocker>,
}

/// A sign-off of an approval item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportSignoff {
    /// The item's reference.
    pub reference: String,
    /// Its title.
    pub title: String,
    /// Who signed.
    pub username: String,
    /// Their role.
    pub role: Role,
    /// Approve or reject.
    pub verdict: Verdict,
    /// Their comment.
    pub comment: Option<String>,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub signed_at: DateTime<Utc>,
}

/// A piece of evidence attached to an item: a link, or a probe check's latest result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportEvidence {
    /// The item's reference.
    pub reference: String,
    /// Its title.
    pub title: String,
    /// What it shows.
    pub label: String,
    /// Where.
    pub url: String,
}

/// A template change proposed from the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportProposal {
    /// The proposal's id.
    pub id: String,
    /// What it changes.
    pub summary: String,
    /// Where it stands.
    pub status: ProposalStatus,
    /// The template version it became.
    pub accepted_version: Option<i32>,
}

/// The run's event log at the time of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportChain {
    /// How many events the log holds.
    pub events: i64,
    /// The last event's hash: whoever keeps it can later show that nothing before it changed.
    pub head_hash: Option<String>,
    /// Whether every event is present and links to the one before.
    pub verified: bool,
}

/// A run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunReport {
    /// When the report was made.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub generated_at: DateTime<Utc>,
    /// The run's facts: product, release, environment, template, status.
    pub run: RunSummary,
    /// The schedule against what happened.
    pub schedule: ReportSchedule,
    /// Every decision with its criteria and rationale, oldest first.
    pub decisions: Vec<Decision>,
    /// Items skipped or waived, with the reasons.
    pub skipped: Vec<ReportSkip>,
    /// Transitions forced past unmet gates.
    pub overrides: Vec<ReportOverride>,
    /// Valid sign-offs of approval items.
    pub signoffs: Vec<ReportSignoff>,
    /// The issues log.
    pub issues: Vec<Issue>,
    /// The retrospective and its action items, once written.
    pub retrospective: Option<Retrospective>,
    /// Template changes proposed from this run.
    pub proposals: Vec<ReportProposal>,
    /// Evidence links and probe results.
    pub evidence: Vec<ReportEvidence>,
    /// The deployment team.
    pub contacts: Vec<RunMember>,
    /// The environment's escalation contacts, in order of escalation.
    pub escalation: Vec<crate::environment::EscalationContact>,
    /// The environment's dashboards.
    pub dashboards: Vec<crate::environment::EnvironmentLink>,
    /// The event log's head.
    pub chain: ReportChain,
}

/// What a report is made of.
#[derive(Debug, Clone, Copy)]
pub struct ReportInputs<'a> {
    /// The whole run.
    pub run: &'a Run,
    /// Its whole event log.
    pub events: &'a [Event],
    /// Its issues log.
    pub issues: &'a [Issue],
    /// Its retrospective.
    pub retrospective: Option<&'a Retrospective>,
    /// Proposals made from it.
    pub proposals: &'a [TemplateProposal],
    /// Its log's verification.
    pub chain: &'a ChainVerdict,
    /// Its environment, when it is on record.
    pub environment: Option<&'a crate::environment::Environment>,
    /// The report's time.
    pub now: DateTime<Utc>,
}

/// The status changes in a run's log: (when, to).
fn status_changes(events: &[Event]) -> Vec<(DateTime<Utc>, RunStatus)> {
    let mut out = Vec::new();
    for e in events {
        match &e.data {
            EventData::RunCreated(_) => out.push((e.at, RunStatus::Planned)),
            EventData::RunTransitioned(t) if t.from != t.to => out.push((e.at, t.to)),
            EventData::RunOverridden(t) if t.from != t.to => out.push((e.at, t.to)),
            EventData::DecisionRecorded(d) => {
                if let Some(change) = d.run_status.filter(|c| c.from != c.to) {
                    out.push((e.at, change.to));
                }
            }
            _ => {}
        }
    }
    out
}

/// The time a run spent in each status, from its log.
pub fn stage_spans(events: &[Event], now: DateTime<Utc>) -> Vec<StageSpan> {
    let changes = status_changes(events);
    changes
        .iter()
        .enumerate()
        .map(|(i, (at, status))| {
            let left_at = changes.get(i + 1).map(|(t, _)| *t);
            StageSpan {
                status: *status,
                entered_at: *at,
                left_at,
                seconds: (left_at.unwrap_or(now) - *at).num_seconds().max(0),
            }
        })
        .collect()
}

/// Builds a run's report.
pub fn build(inputs: ReportInputs<'_>) -> RunReport {
    let run = inputs.run;
    let stages = stage_spans(inputs.events, inputs.now);
    let deployment_started_at = stages
        .iter()
        .find(|s| s.status == RunStatus::Deploying)
        .map(|s| s.entered_at);
    let finished_at = stages
        .iter()
        .find(|s| s.status.is_terminal())
        .map(|s| s.entered_at);
    let within_window = match (
        run.summary.window_start,
        run.summary.window_end,
        finished_at,
    ) {
        (Some(start), Some(end), Some(done)) => {
            Some(deployment_started_at.is_none_or(|s| s >= start) && done <= end)
        }
        _ => None,
    };
    let items = run
        .parts
        .iter()
        .flat_map(|p| &p.sections)
        .flat_map(|s| &s.items);
    let mut skipped = Vec::new();
    let mut signoffs = Vec::new();
    let mut evidence = Vec::new();
    for item in items {
        if item.status == ItemStatus::Skipped && item.applicable {
            skipped.push(ReportSkip {
                reference: item.reference.clone(),
                title: item.title.clone(),
                waiver: item.required,
                reason: item.skip_reason.clone(),
                by: item.updated_by.clone(),
            });
        }
        if let Some(approval) = &item.approval {
            signoffs.extend(approval.signoffs.iter().map(|s| ReportSignoff {
                reference: item.reference.clone(),
                title: item.title.clone(),
                username: s.username.clone(),
                role: s.role,
                verdict: s.verdict,
                comment: s.comment.clone(),
                signed_at: s.signed_at,
            }));
        }
        evidence.extend(item.evidence.iter().map(|l| ReportEvidence {
            reference: item.reference.clone(),
            title: item.title.clone(),
            label: l.label.clone(),
            url: l.url.clone(),
        }));
        if let Some(probe) = &item.probe
            && let Some(latest) = &probe.latest
        {
            evidence.push(ReportEvidence {
                reference: item.reference.clone(),
                title: item.title.clone(),
                label: format!(
                    "Check {} at {}: {}",
                    if latest.passed { "passed" } else { "failed" },
                    latest.checked_at.format("%Y-%m-%d %H:%M UTC"),
                    latest.summary
                ),
                url: latest.url.clone(),
            });
        }
    }
    let overrides = inputs
        .events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::RunOverridden(o) => Some(ReportOverride {
                at: e.at,
                by: e.actor.clone(),
                action: o.action,
                reason: o.reason.clone(),
                blockers: o.overridden_blockers.clone(),
            }),
            _ => None,
        })
        .collect();
    RunReport {
        generated_at: inputs.now,
        run: run.summary.clone(),
        schedule: ReportSchedule {
            window_start: run.summary.window_start,
            window_end: run.summary.window_end,
            expected_downtime_minutes: run.summary.expected_downtime_minutes,
            deployment_started_at,
            finished_at,
            within_window,
            stages,
        },
        decisions: run.decisions.clone(),
        skipped,
        overrides,
        signoffs,
        issues: inputs.issues.to_vec(),
        retrospective: inputs.retrospective.cloned(),
        proposals: inputs
            .proposals
            .iter()
            .map(|p| ReportProposal {
                id: p.id.clone(),
                summary: p.summary.clone(),
                status: p.status,
                accepted_version: p.accepted_version,
            })
            .collect(),
        evidence,
        contacts: run.members.clone(),
        escalation: inputs
            .environment
            .map(|e| e.contacts.clone())
            .unwrap_or_default(),
        dashboards: inputs
            .environment
            .map(|e| e.dashboards.clone())
            .unwrap_or_default(),
        chain: ReportChain {
            events: inputs.chain.count,
            head_hash: inputs.chain.head_hash.clone(),
            verified: inputs.chain.verified,
        },
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "—".to_owned(), time)
}

/// `1 h 05 min`, `12 min`, `40 s`.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

fn result_word(r: CriterionResult) -> &'static str {
    match r {
        CriterionResult::Met => "met",
        CriterionResult::NotMet => "not met",
        CriterionResult::Unknown => "unknown",
    }
}

/// Text on one line (a Markdown list entry): line breaks become spaces.
fn line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Prose kept as written, as a Markdown block quote.
fn quote(out: &mut String, s: &str) {
    for l in s.lines() {
        out.push_str(&format!("> {l}\n"));
    }
}

/// The report as Markdown: release notes first, the audit record after.
pub fn markdown(r: &RunReport) -> String {
    let s = &r.run;
    let mut out = format!(
        "# Run report: {} {} to {}\n\n",
        line(&s.product),
        line(&s.release_version),
        line(&s.environment)
    );
    out.push_str(&format!(
        "- Outcome: **{}**{}\n- Template: {} (version {})\n- Created by {} at {}\n- Run: {}\n- Report made at {}\n\n",
        s.status.as_str(),
        s.closed_at
            .map_or_else(String::new, |c| format!(", closed at {}", time(c))),
        line(&s.template_name),
        s.template_version,
        s.created_by,
        time(s.created_at),
        s.id,
        time(r.generated_at)
    ));
    out.push_str("## Schedule\n\n");
    let sc = &r.schedule;
    out.push_str(&format!(
        "- Planned window: {} to {}\n- Expected downtime: {}\n- Deployment started: {}\n- Finished: {}\n",
        opt_time(sc.window_start),
        opt_time(sc.window_end),
        sc.expected_downtime_minutes
            .map_or_else(|| "—".to_owned(), |m| format!("{m} min")),
        opt_time(sc.deployment_started_at),
        opt_time(sc.finished_at),
    ));
    if let Some(w) = sc.within_window {
        out.push_str(if w {
            "- Within the planned window: yes\n"
        } else {
            "- Within the planned window: **no**\n"
        });
    }
    out.push_str("\n| Stage | Entered | Left | Time |\n|---|---|---|---|\n");
    for st in &sc.stages {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            st.status.as_str(),
            time(st.entered_at),
            opt_time(st.left_at),
            duration(st.seconds)
        ));
    }
    out.push_str("\n## Decisions\n\n");
    if r.decisions.is_empty() {
        out.push_str("None recorded.\n");
    }
    for d in &r.decisions {
        out.push_str(&format!(
            "### {}: {} ({} at {}){}\n\n",
            d.point_key,
            d.outcome.as_str(),
            d.decided_by,
            time(d.decided_at),
            if d.superseded { ", superseded" } else { "" }
        ));
        quote(&mut out, &d.rationale);
        out.push('\n');
        for c in &d.criteria {
            out.push_str(&format!(
                "- {}: {}{}\n",
                line(&c.criterion),
                result_word(c.result),
                c.observed
                    .as_deref()
                    .map_or_else(String::new, |o| format!(" ({})", line(o)))
            ));
        }
        if !d.criteria.is_empty() {
            out.push('\n');
        }
    }
    out.push_str("## Issues\n\n");
    if r.issues.is_empty() {
        out.push_str("None logged.\n");
    }
    for i in &r.issues {
        out.push_str(&format!(
            "- #{} [{}, {}] {}{}{}\n",
            i.number,
            i.severity.as_str(),
            i.status.as_str(),
            line(&i.title),
            i.owner
                .as_deref()
                .map_or_else(String::new, |o| format!(", owner {o}")),
            i.acceptance.as_ref().map_or_else(String::new, |a| format!(
                ", accepted by {}: {}",
                a.by,
                line(&a.reason)
            ))
        ));
    }
    out.push_str("\n## Skipped and waived items\n\n");
    if r.skipped.is_empty() {
        out.push_str("None.\n");
    }
    for sk in &r.skipped {
        out.push_str(&format!(
            "- {} {}: {}{}{}\n",
            sk.reference,
            line(&sk.title),
            if sk.waiver { "waived" } else { "skipped" },
            sk.by
                .as_deref()
                .map_or_else(String::new, |b| format!(" by {b}")),
            sk.reason
                .as_deref()
                .map_or_else(String::new, |why| format!(" — {}", line(why)))
        ));
    }
    out.push_str("\n## Overrides\n\n");
    if r.overrides.is_empty() {
        out.push_str("None.\n");
    }
    for o in &r.overrides {
        out.push_str(&format!(
            "- {} forced `{}` at {} past {} blocker(s){}\n",
            o.by,
            o.action.as_str(),
            time(o.at),
            o.blockers.len(),
            o.reason
                .as_deref()
                .map_or_else(String::new, |why| format!(": {}", line(why)))
        ));
    }
    out.push_str("\n## Sign-offs\n\n");
    if r.signoffs.is_empty() {
        out.push_str("None.\n");
    }
    for so in &r.signoffs {
        out.push_str(&format!(
            "- {} {}: {} by {} ({}) at {}{}\n",
            so.reference,
            line(&so.title),
            so.verdict.as_str(),
            so.username,
            so.role.as_str(),
            time(so.signed_at),
            so.comment
                .as_deref()
                .map_or_else(String::new, |c| format!(" — {}", line(c)))
        ));
    }
    out.push_str("\n## Retrospective\n\n");
    match &r.retrospective {
        None => out.push_str("Not written yet.\n"),
        Some(retro) => {
            out.push_str(&format!(
                "Status: {}{}\n\n",
                retro.status.as_str(),
                retro
                    .held_at
                    .map_or_else(String::new, |h| format!(", held at {}", time(h)))
            ));
            for (heading, text) in [
                ("What went well", &retro.went_well),
                ("What did not", &retro.went_badly),
                ("Root cause", &retro.root_cause),
                ("Lessons learned", &retro.lessons),
            ] {
                if let Some(text) = text {
                    out.push_str(&format!("### {heading}\n\n"));
                    quote(&mut out, text);
                    out.push('\n');
                }
            }
            out.push_str("### Action items\n\n");
            if retro.action_items.is_empty() {
                out.push_str("None.\n");
            }
            for a in &retro.action_items {
                out.push_str(&format!(
                    "- [{}] {} — {}, due {}{}\n",
                    if a.status == crate::records::ActionStatus::Done {
                        "x"
                    } else {
                        " "
                    },
                    line(&a.title),
                    a.assignee,
                    a.due_on,
                    match (a.status, a.overdue) {
                        (_, true) => " (**overdue**)",
                        (crate::records::ActionStatus::Dropped, _) => " (dropped)",
                        _ => "",
                    }
                ));
            }
        }
    }
    if !r.proposals.is_empty() {
        out.push_str("\n## Template proposals\n\n");
        for p in &r.proposals {
            out.push_str(&format!(
                "- {} ({}{})\n",
                line(&p.summary),
                p.status.as_str(),
                p.accepted_version
                    .map_or_else(String::new, |v| format!(" as version {v}"))
            ));
        }
    }
    out.push_str("\n## Evidence\n\n");
    if r.evidence.is_empty() {
        out.push_str("None attached.\n");
    }
    for e in &r.evidence {
        out.push_str(&format!(
            "- {} {}: [{}]({})\n",
            e.reference,
            line(&e.title),
            line(&e.label),
            e.url
        ));
    }
    out.push_str("\n## Contacts\n\n");
    if r.contacts.is_empty() {
        out.push_str("No team recorded.\n");
    }
    for m in &r.contacts {
        out.push_str(&format!(
            "- {} — {} ({})\n",
            m.username,
            line(&m.run_role),
            m.role.as_str()
        ));
    }
    if !r.escalation.is_empty() {
        out.push_str("\nEscalation, in order:\n\n");
    }
    for c in &r.escalation {
        out.push_str(&format!(
            "{}. {} — {}: {}{}\n",
            c.level,
            line(&c.name),
            line(&c.role),
            line(&c.reach),
            c.hours
                .as_deref()
                .map(|h| format!(" ({})", line(h)))
                .unwrap_or_default()
        ));
    }
    if !r.dashboards.is_empty() {
        out.push_str("\nDashboards:\n\n");
    }
    for d in &r.dashboards {
        out.push_str(&format!("- [{}]({})\n", line(&d.label), d.url));
    }
    out.push_str(&format!(
        "\n## Audit\n\n- Events in the log: {}\n- Head hash: `{}`\n- Chain verified: {}\n",
        r.chain.events,
        r.chain.head_hash.as_deref().unwrap_or("—"),
        if r.chain.verified { "yes" } else { "**no**" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DecisionRecorded, RunCreated, RunStatusChange, RunTransitioned};

    fn event(seq: i64, minute: i64, data: EventData) -> Event {
        Event {
            seq,
            run_id: "r".into(),
            actor: "alice".into(),
            at: DateTime::UNIX_EPOCH + chrono::Duration::minutes(minute),
            data,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn moved(action: TransitionAction, from: RunStatus, to: RunStatus) -> EventData {
        EventData::RunTransitioned(RunTransitioned {
            action,
            from,
            to,
            closed: false,
            reason: None,
        })
    }

    #[test]
    fn stages_are_timed_from_the_log_including_a_rollback_decision() {
        let events = [
            event(
                1,
                0,
                EventData::RunCreated(RunCreated {
                    template_id: "t".into(),
                    template_version: 1,
                    product: "p".into(),
                    release_version: "1".into(),
                    environment: "e".into(),
                }),
            ),
            event(
                2,
                10,
                moved(
                    TransitionAction::Start,
                    RunStatus::Planned,
                    RunStatus::Preparing,
                ),
            ),
            event(
                3,
                40,
                moved(
                    TransitionAction::Advance,
                    RunStatus::Preparing,
                    RunStatus::Deploying,
                ),
            ),
            event(
                4,
                65,
                EventData::DecisionRecorded(DecisionRecorded {
                    decision_id: "d".into(),
                    point_key: "checkpoint".into(),
                    point_title: "Checkpoint".into(),
                    outcome: crate::decision::Outcome::Rollback,
                    rationale: "errors".into(),
                    criteria: Vec::new(),
                    run_status: Some(RunStatusChange {
                        from: RunStatus::Deploying,
                        to: RunStatus::RollingBack,
                    }),
                    deadline_passed: false,
                    unmet_confirmed: false,
                }),
            ),
            event(
                5,
                80,
                moved(
                    TransitionAction::FinishRollback,
                    RunStatus::RollingBack,
                    RunStatus::RolledBack,
                ),
            ),
        ];
        let now = DateTime::UNIX_EPOCH + chrono::Duration::minutes(100);
        let spans = stage_spans(&events, now);
        let got: Vec<(RunStatus, i64)> = spans.iter().map(|s| (s.status, s.seconds / 60)).collect();
        assert_eq!(
            got,
            [
                (RunStatus::Planned, 10),
                (RunStatus::Preparing, 30),
                (RunStatus::Deploying, 25),
                (RunStatus::RollingBack, 15),
                (RunStatus::RolledBack, 20),
            ]
        );
        assert_eq!(spans.last().unwrap().left_at, None);
    }

    #[test]
    fn durations_read_in_the_largest_unit() {
        assert_eq!(duration(40), "40 s");
        assert_eq!(duration(12 * 60 + 5), "12 min");
        assert_eq!(duration(3600 + 5 * 60), "1 h 05 min");
    }
}
