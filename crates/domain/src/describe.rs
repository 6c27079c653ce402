//! Sentences for what happened: one per event of the log, as the web app's timeline, chat
//! messages and mail say it, so that every channel tells a change in the same words. Plain
//! text; a channel with markup escapes it.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::approval::Verdict;
use crate::decision::Outcome;
use crate::event::{Event, EventData, ItemChanges, RunChanges};

/// A decision outcome in words.
pub fn outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Go => "Go",
        Outcome::Hold => "Hold",
        Outcome::Rollback => "Roll back",
        Outcome::Abort => "Abort",
    }
}

/// A time as "2026-11-27 14:05 UTC".
// Written by hand rather than with chrono's `format`: its format-string machinery would
// add tens of kilobytes to the web app.
pub fn time(at: DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// A wire spelling as words: `rolling_back` → "rolling back".
pub fn words(s: &str) -> String {
    s.replace('_', " ")
}

/// A checklist item's wording inside a sentence: without its closing full stop, so what
/// follows it reads on ("… are assigned: status pending → done").
fn clause(title: &str) -> &str {
    title.trim_end().trim_end_matches('.')
}

fn or_nothing(v: Option<&str>) -> String {
    v.map_or_else(|| "nothing".to_owned(), words)
}

fn change(field: &str, from: String, to: String) -> String {
    format!("{field} {from} → {to}")
}

fn time_or_nothing(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "nothing".to_owned(), time)
}

/// A run's changes, as "release version 1.0 → 1.1; window start … → …".
fn run_changes(c: &RunChanges) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &c.release_version {
        parts.push(change(
            "release version",
            or_nothing(v.from.as_deref()),
            or_nothing(v.to.as_deref()),
        ));
    }
    if let Some(v) = &c.window_start {
        parts.push(change(
            "window start",
            time_or_nothing(v.from),
            time_or_nothing(v.to),
        ));
    }
    if let Some(v) = &c.window_end {
        parts.push(change(
            "window end",
            time_or_nothing(v.from),
            time_or_nothing(v.to),
        ));
    }
    if let Some(v) = &c.expected_downtime_minutes {
        let minutes =
            |m: Option<i32>| m.map_or_else(|| "nothing".to_owned(), |m| format!("{m} min"));
        parts.push(change("expected downtime", minutes(v.from), minutes(v.to)));
    }
    if let Some(v) = &c.commit_sha {
        parts.push(change(
            "commit",
            or_nothing(v.from.as_deref()),
            or_nothing(v.to.as_deref()),
        ));
    }
    if let Some(v) = &c.committed_at {
        parts.push(change(
            "commit time",
            time_or_nothing(v.from),
            time_or_nothing(v.to),
        ));
    }
    parts.join("; ")
}

/// An item's changes, as "status pending → done; note … → …".
fn item_changes(c: &ItemChanges) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &c.status {
        parts.push(change(
            "status",
            words(s.from.as_str()),
            words(s.to.as_str()),
        ));
    }
    for (field, v) in [
        ("assignee", &c.assignee),
        ("note", &c.note),
        ("evidence url", &c.evidence_url),
        ("skip reason", &c.skip_reason),
    ] {
        if let Some(v) = v {
            parts.push(change(
                field,
                or_nothing(v.from.as_deref()),
                or_nothing(v.to.as_deref()),
            ));
        }
    }
    if let Some(v) = &c.evidence {
        let links = |l: &[crate::item::EvidenceLink]| {
            if l.is_empty() {
                "nothing".to_owned()
            } else {
                l.iter()
                    .map(|l| format!("“{}”", l.label))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        parts.push(format!("evidence {} → {}", links(&v.from), links(&v.to)));
    }
    parts.join("; ")
}

/// One event of the log as a sentence (the web app's timeline, chat messages, mail).
pub fn event(event: &Event) -> String {
    let who = &event.actor;
    match &event.data {
        EventData::RunCreated(p) => format!(
            "{who} created the run ({} {} → {})",
            p.product, p.release_version, p.environment
        ),
        EventData::RunUpdated(p) => {
            let mut s = format!("{who} changed the schedule: {}", run_changes(&p.changes));
            if p.invalidated_signoffs > 0 {
                s.push_str(&format!(
                    " ({} sign-off(s) invalidated: they approved the earlier version)",
                    p.invalidated_signoffs
                ));
            }
            s
        }
        EventData::RunTransitioned(p) => {
            let mut s = if !p.closed {
                format!(
                    "{who} moved the run from {} to {}",
                    words(p.from.as_str()),
                    words(p.to.as_str())
                )
            } else if p.from == p.to {
                format!("{who} closed the run ({})", words(p.to.as_str()))
            } else {
                format!(
                    "{who} closed the run ({} → {})",
                    words(p.from.as_str()),
                    words(p.to.as_str())
                )
            };
            if let Some(reason) = p.reason.as_deref().filter(|r| !r.is_empty()) {
                s.push_str(&format!(" — “{reason}”"));
            }
            s
        }
        EventData::RunOverridden(p) => format!(
            "{who} forced “{}” past {} blocker(s) (break-glass) — “{}”",
            words(p.action.as_str()),
            p.overridden_blockers.len(),
            p.reason.as_deref().unwrap_or("")
        ),
        EventData::ItemUpdated(p) => {
            let mut s = format!(
                "{who} updated {} {}: {}",
                p.reference,
                clause(&p.title),
                item_changes(&p.changes)
            );
            if p.invalidated_signoffs > 0 {
                s.push_str(&format!(
                    " ({} sign-off(s) invalidated)",
                    p.invalidated_signoffs
                ));
            }
            s
        }
        EventData::SignoffRecorded(p) => {
            let verdict = match p.verdict {
                Verdict::Reject => "rejected",
                Verdict::Approve => "approved",
            };
            format!("{who} {verdict} {} {}", p.reference, clause(&p.title))
        }
        EventData::DecisionRecorded(p) => {
            let unmet = p
                .criteria
                .iter()
                .filter(|c| c.result != crate::decision::CriterionResult::Met)
                .count();
            format!(
                "{who} decided {} at “{}”{}: “{}”",
                outcome(p.outcome),
                if p.point_title.is_empty() {
                    words(&p.point_key)
                } else {
                    p.point_title.clone()
                },
                if p.unmet_confirmed {
                    format!(", confirming {unmet} criteria not met or unknown")
                } else {
                    String::new()
                },
                p.rationale
            )
        }
        EventData::ProbeChecked(p) => {
            let verdict = if p.passed { "passed" } else { "failed" };
            let by = match p.trigger {
                crate::event::ProbeTrigger::OnDemand => format!("{who} ran the"),
                crate::event::ProbeTrigger::Schedule => "Scheduled".to_owned(),
            };
            format!(
                "{by} check of {} {}: {verdict} — {}",
                p.reference,
                clause(&p.title),
                p.summary
            )
        }
        EventData::DecisionDue(p) => format!(
            "{} is due at {} with no decision; then {} is recorded",
            p.title,
            time(p.deadline),
            outcome(p.default_outcome)
        ),
        EventData::MemberAdded(p) => {
            format!("{who} added {} to the team ({})", p.username, p.run_role)
        }
        EventData::MemberRemoved(p) => format!("{who} removed {} from the team", p.username),
        EventData::AnnouncementSent(p) => format!(
            "{who} sent the {} announcement “{}”",
            p.announcement.as_str(),
            p.subject
        ),
        EventData::IssueLogged(p) => format!(
            "{who} logged issue #{} ({}): {}",
            p.number,
            p.severity.as_str(),
            p.title
        ),
        EventData::IssueUpdated(p) => {
            let c = &p.changes;
            let mut parts = Vec::new();
            if let Some(s) = c.status {
                parts.push(format!("now {}", s.to.as_str()));
            }
            if let Some(s) = c.severity {
                parts.push(format!("severity {} → {}", s.from.as_str(), s.to.as_str()));
            }
            if let Some(a) = &c.accepted_reason {
                parts.push(match &a.to {
                    Some(reason) => format!("accepted — “{reason}”"),
                    None => "acceptance withdrawn".to_owned(),
                });
            }
            if let Some(o) = &c.owner {
                parts.push(format!("owner {}", o.to.as_deref().unwrap_or("nobody")));
            }
            if c.title.is_some() || c.notes.is_some() || c.item_ids.is_some() {
                parts.push("details changed".to_owned());
            }
            format!(
                "{who} updated issue #{} {}: {}",
                p.number,
                p.title,
                parts.join("; ")
            )
        }
        EventData::RetrospectiveSaved(p) => {
            if p.published {
                format!(
                    "{who} published the retrospective ({} checklist item(s) completed)",
                    p.completed_item_ids.len()
                )
            } else {
                format!("{who} updated the retrospective ({})", p.changed.join(", "))
            }
        }
        EventData::ActionItemCreated(p) => format!(
            "{who} assigned the action “{}” to {}, due {}",
            p.title, p.assignee, p.due_on
        ),
        EventData::ActionItemUpdated(p) => format!(
            "{who} updated the action “{}” ({}, {}, due {})",
            p.title,
            p.status.as_str(),
            p.assignee,
            p.due_on
        ),
        EventData::TemplateProposed(p) => format!(
            "{who} proposed a template change: {} (on version {})",
            p.summary, p.base_version
        ),
        EventData::ProposalReviewed(p) => match p.accepted_version {
            Some(v) => format!("{who} accepted the template proposal as version {v}"),
            None => format!(
                "{who} {} the template proposal{}",
                p.status.as_str(),
                p.reason
                    .as_deref()
                    .map_or_else(String::new, |r| format!(" — “{r}”"))
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        DecisionRecorded, ItemStatusChange, ItemUpdated, MinutesChange, RunTransitioned,
        RunUpdated, TextChange,
    };
    use crate::item::ItemStatus;
    use crate::run::{RunStatus, TransitionAction};

    fn event_of(data: EventData) -> Event {
        Event {
            seq: 1,
            run_id: "r".into(),
            actor: "alice".into(),
            at: DateTime::UNIX_EPOCH,
            data,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn events_read_as_sentences() {
        let item = event_of(EventData::ItemUpdated(ItemUpdated {
            item_id: "i".into(),
            reference: "3.4.3".into(),
            title: "Action items for future deployments are identified and assigned.".into(),
            version: 2,
            waiver: false,
            invalidated_signoffs: 2,
            changes: ItemChanges {
                status: Some(ItemStatusChange {
                    from: ItemStatus::Pending,
                    to: ItemStatus::InProgress,
                }),
                note: Some(TextChange {
                    from: None,
                    to: Some("on it".into()),
                }),
                ..ItemChanges::default()
            },
        }));
        assert_eq!(
            event(&item),
            "alice updated 3.4.3 Action items for future deployments are identified and assigned: status pending → in progress; note nothing → on it (2 sign-off(s) invalidated)"
        );
        let decision = |point_title: &str| {
            event(&event_of(EventData::DecisionRecorded(DecisionRecorded {
                decision_id: "d".into(),
                point_key: "deployment_checkpoint".into(),
                point_title: point_title.into(),
                outcome: Outcome::Rollback,
                rationale: "errors".into(),
                criteria: vec![],
                run_status: None,
                deadline_passed: false,
                unmet_confirmed: false,
            })))
        };
        assert_eq!(
            decision("Deployment checkpoint"),
            "alice decided Roll back at “Deployment checkpoint”: “errors”"
        );
        // Recorded before the log kept titles: the key, in words.
        assert_eq!(
            decision(""),
            "alice decided Roll back at “deployment checkpoint”: “errors”"
        );
        let confirmed = event(&event_of(EventData::DecisionRecorded(DecisionRecorded {
            decision_id: "d".into(),
            point_key: "go_no_go".into(),
            point_title: "Go/No-Go".into(),
            outcome: Outcome::Go,
            rationale: "sev-2 only".into(),
            criteria: ["Met", "NotMet", "Unknown"]
                .into_iter()
                .map(|r| crate::decision::CriterionAssessment {
                    criterion: r.into(),
                    result: match r {
                        "Met" => crate::decision::CriterionResult::Met,
                        "NotMet" => crate::decision::CriterionResult::NotMet,
                        _ => crate::decision::CriterionResult::Unknown,
                    },
                    observed: None,
                })
                .collect(),
            run_status: None,
            deadline_passed: false,
            unmet_confirmed: true,
        })));
        assert_eq!(
            confirmed,
            "alice decided Go at “Go/No-Go”, confirming 2 criteria not met or unknown: “sev-2 only”"
        );
        let moved = |from: RunStatus, to: RunStatus, closed: bool| {
            event(&event_of(EventData::RunTransitioned(RunTransitioned {
                action: TransitionAction::Close,
                from,
                to,
                closed,
                reason: None,
            })))
        };
        assert_eq!(
            moved(RunStatus::Completed, RunStatus::Completed, true),
            "alice closed the run (completed)"
        );
        assert_eq!(
            moved(RunStatus::Preparing, RunStatus::Deploying, false),
            "alice moved the run from preparing to deploying"
        );
        let scheduled = |invalidated_signoffs: u64| {
            event(&event_of(EventData::RunUpdated(RunUpdated {
                changes: RunChanges {
                    expected_downtime_minutes: Some(MinutesChange {
                        from: None,
                        to: Some(15),
                    }),
                    ..RunChanges::default()
                },
                invalidated_signoffs,
            })))
        };
        assert_eq!(
            scheduled(0),
            "alice changed the schedule: expected downtime nothing → 15 min"
        );
        assert_eq!(
            scheduled(3),
            "alice changed the schedule: expected downtime nothing → 15 min (3 sign-off(s) invalidated: they approved the earlier version)"
        );
    }
}
