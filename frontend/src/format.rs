//! Words for what the API returns: labels for statuses (always text with a symbol, never
//! colour alone), actions and outcomes, a sentence per event for the timeline, times, and a
//! person-readable message for every error. Pure functions, tested on the host.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use shipshape_domain::approval::ApprovalState;
use shipshape_domain::decision::CriterionResult;
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::{Blocker, RunStatus, TransitionAction};
use shipshape_domain::wire::{Problem, UpdateItemRequest};

pub use shipshape_domain::describe::{event, outcome, time};

/// An item status with its symbol, e.g. "✓ Done".
pub fn item_status(status: ItemStatus) -> &'static str {
    match status {
        ItemStatus::Pending => "○ Pending",
        ItemStatus::InProgress => "◐ In progress",
        ItemStatus::Blocked => "■ Blocked",
        ItemStatus::Done => "✓ Done",
        ItemStatus::Failed => "✗ Failed",
        ItemStatus::Skipped => "↷ Skipped",
    }
}

/// An item status in words only (options start with their word, so typing a letter picks
/// one).
pub fn item_status_word(status: ItemStatus) -> &'static str {
    item_status(status)
        .split_once(' ')
        .map_or("", |(_, word)| word)
}

/// A run status in words, e.g. "Rolling back".
pub fn run_status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Planned => "Planned",
        RunStatus::Preparing => "Preparing",
        RunStatus::Deploying => "Deploying",
        RunStatus::Verifying => "Verifying",
        RunStatus::Completed => "Completed",
        RunStatus::RollingBack => "Rolling back",
        RunStatus::RolledBack => "Rolled back",
        RunStatus::Aborted => "Aborted",
    }
}

/// A transition's button label, from where the run stands.
pub fn action(action: TransitionAction, from: RunStatus) -> &'static str {
    match (action, from) {
        (TransitionAction::Start, _) => "Start preparing",
        (TransitionAction::Advance, RunStatus::Deploying) => "Advance to verifying",
        (TransitionAction::Advance, _) => "Advance to deploying",
        (TransitionAction::Complete, _) => "Complete the run",
        (TransitionAction::Abort, _) => "Abort the run",
        (TransitionAction::FinishRollback, _) => "Finish the rollback",
        (TransitionAction::Close, _) => "Close the run",
    }
}

/// A criterion's result with its symbol.
pub fn criterion_result(result: CriterionResult) -> &'static str {
    match result {
        CriterionResult::Met => "✓ Met",
        CriterionResult::NotMet => "✗ Not met",
        CriterionResult::Unknown => "? Unknown",
    }
}

/// An approval's state with its symbol.
pub fn approval_state(state: &ApprovalState) -> &'static str {
    match state {
        ApprovalState::Approved => "✓ Approved",
        ApprovalState::Rejected => "✗ Rejected",
        ApprovalState::Pending => "○ Awaiting sign-off",
    }
}

/// A role in words.
pub fn role(role: shipshape_domain::Role) -> &'static str {
    use shipshape_domain::Role;
    match role {
        Role::Admin => "admin",
        Role::ReleaseManager => "release manager",
        Role::Engineer => "engineer",
        Role::Approver => "approver",
        Role::Viewer => "viewer",
    }
}

/// One blocker in words, e.g. "1.2.3 Test migration scripts — pending".
pub fn blocker(blocker: &Blocker) -> String {
    match blocker {
        Blocker::Item {
            reference,
            title,
            status,
            reason,
            ..
        } => match reason {
            Some(why) => format!("{reference} {title} — {why}"),
            None => format!("{reference} {title} — {}", item_status(*status)),
        },
        Blocker::Decision {
            title,
            needed,
            latest,
            ..
        } => match latest {
            Some(latest) => format!(
                "Decision “{title}” is {}; it needs {}",
                outcome(*latest),
                outcome(*needed)
            ),
            None => format!("Decision “{title}” needs {}", outcome(*needed)),
        },
        Blocker::Issue {
            number,
            title,
            severity,
            status,
            ..
        } => format!(
            "Issue #{number} {title} — {}, {}: resolve it or have a release manager accept it",
            severity.as_str(),
            status.as_str()
        ),
        Blocker::Lock {
            environment,
            reason,
            locked_by,
            until,
        } => format!(
            "{environment} is locked by {locked_by}{}: {reason}",
            until
                .map(|u| format!(" until {}", time(u)))
                .unwrap_or_default()
        ),
        Blocker::Freeze {
            environment,
            reason,
            ends_at,
            ..
        } => format!("{environment} is frozen until {}: {reason}", time(*ends_at)),
        Blocker::Promotion {
            environment,
            product,
            release_version,
        } => format!("{product} {release_version} has no completed run in {environment} yet"),
    }
}

fn shown(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("“{v}”"),
        None => "nothing".into(),
    }
}

/// Evidence links in words: their labels, or "none".
pub fn evidence(links: &[shipshape_domain::item::EvidenceLink]) -> String {
    if links.is_empty() {
        return "none".into();
    }
    links
        .iter()
        .map(|l| format!("“{}”", l.label))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An item change in words, e.g. "status → ✓ Done; note → “restarted”".
pub fn item_change(change: &UpdateItemRequest) -> String {
    let mut parts = Vec::new();
    if let Some(status) = change.status {
        parts.push(format!("status → {}", item_status(status)));
    }
    if let Some(assignee) = &change.assignee {
        parts.push(format!("assignee → {}", shown(assignee)));
    }
    if let Some(note) = &change.note {
        parts.push(format!("note → {}", shown(note)));
    }
    if let Some(url) = &change.evidence_url {
        parts.push(format!("evidence → {}", shown(url)));
    }
    if let Some(links) = &change.evidence {
        parts.push(format!("evidence → {}", evidence(links)));
    }
    if let Some(reason) = &change.reason {
        parts.push(format!("reason “{reason}”"));
    }
    parts.join("; ")
}

fn input_layout(at: DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// Reads a `datetime-local` input's value ("2026-11-27T14:05"), taken as UTC; an empty value
/// is `Ok(None)`.
pub fn parse_utc_input(value: &str) -> Result<Option<DateTime<Utc>>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let invalid = || format!("“{value}” is not a date and time");
    let (date, clock) = value.split_once('T').ok_or_else(invalid)?;
    let numbers =
        |s: &str, sep: char| -> Option<Vec<u32>> { s.split(sep).map(|n| n.parse().ok()).collect() };
    let d = numbers(date, '-')
        .filter(|d| d.len() == 3)
        .ok_or_else(invalid)?;
    let c = numbers(clock, ':')
        .filter(|c| c.len() == 2 || c.len() == 3)
        .ok_or_else(invalid)?;
    let year = i32::try_from(d[0]).map_err(|_| invalid())?;
    NaiveDate::from_ymd_opt(year, d[1], d[2])
        .and_then(|day| day.and_hms_opt(c[0], c[1], c.get(2).copied().unwrap_or(0)))
        .map(|t| Some(t.and_utc()))
        .ok_or_else(invalid)
}

/// A `datetime-local` input's value for a time.
pub fn utc_input(at: Option<DateTime<Utc>>) -> String {
    at.map(input_layout).unwrap_or_default()
}

/// Where to go after signing in: only a path of this app (never another site).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        // A backslash or a control character could make the browser read another origin.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/login")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A failed call in words a person understands. `status` 0 means the server was not reached.
pub fn problem_message(status: u16, problem: Option<&Problem>) -> String {
    match (status, problem) {
        (0, _) => "Shipshape cannot be reached. Check your connection and try again.".into(),
        (401, Some(p)) if p.code == "invalid_credentials" => {
            "That user name and password do not match.".into()
        }
        (401, _) => "Your session has ended. Sign in again to continue.".into(),
        (403, Some(p)) => format!("You are not allowed to do that: {}", p.detail),
        (403, None) => "You are not allowed to do that.".into(),
        (412, _) => "Someone else changed this since you loaded it.".into(),
        (429, Some(p)) => format!("Too many attempts. {}", p.detail),
        (_, Some(p)) if !p.detail.is_empty() => p.detail.clone(),
        (_, Some(p)) => p.title.clone(),
        (500..=599, None) => {
            "Shipshape ran into a problem on its side. Try again in a moment.".into()
        }
        (status, None) => format!("The request failed (HTTP {status})."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipshape_domain::decision::Outcome;

    fn problem(status: u16, code: &str, detail: &str) -> Problem {
        Problem {
            problem_type: format!("urn:shipshape:problem:{code}"),
            title: "t".into(),
            status,
            detail: detail.into(),
            code: code.into(),
            blockers: None,
        }
    }

    #[test]
    fn every_item_status_reads_as_words_with_a_symbol() {
        let labels: Vec<_> = ItemStatus::ALL.iter().map(|s| item_status(*s)).collect();
        for label in &labels {
            let (symbol, words) = label.split_once(' ').unwrap();
            assert!(!symbol.is_empty() && words.chars().all(|c| c.is_alphabetic() || c == ' '));
        }
        let mut unique = labels.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            labels.len(),
            "labels must tell statuses apart"
        );
    }

    #[test]
    fn errors_read_as_sentences_from_the_problem_detail() {
        let gate = problem(409, "gate_blocked", "3 items block advance");
        assert_eq!(problem_message(409, Some(&gate)), "3 items block advance");
        assert!(problem_message(0, None).contains("cannot be reached"));
        assert!(problem_message(412, None).contains("Someone else changed"));
        assert!(problem_message(401, None).contains("Sign in again"));
        let wrong = problem(401, "invalid_credentials", "invalid credentials");
        assert!(problem_message(401, Some(&wrong)).contains("do not match"));
        assert_eq!(
            problem_message(502, None),
            "Shipshape ran into a problem on its side. Try again in a moment."
        );
        assert_eq!(problem_message(418, None), "The request failed (HTTP 418).");
    }

    #[test]
    fn sign_in_only_returns_to_paths_of_this_app() {
        assert_eq!(safe_next(Some("/runs/abc?x=1")), "/runs/abc?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/login?next=/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn window_inputs_are_read_as_utc() {
        let t = parse_utc_input("2026-11-27T14:05").unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T14:05:00+00:00");
        assert_eq!(utc_input(Some(t)), "2026-11-27T14:05");
        assert_eq!(parse_utc_input("  ").unwrap(), None);
        assert!(parse_utc_input("tomorrow").is_err());
        assert!(parse_utc_input("2026-02-30T10:00").is_err());
        assert_eq!(time(t), "2026-11-27 14:05 UTC");
    }

    #[test]
    fn an_item_change_reads_as_what_it_sets() {
        let change = UpdateItemRequest {
            status: Some(ItemStatus::Done),
            note: Some(Some("restarted".into())),
            evidence_url: Some(None),
            ..UpdateItemRequest::default()
        };
        assert_eq!(
            item_change(&change),
            "status → ✓ Done; note → “restarted”; evidence → nothing"
        );
    }

    #[test]
    fn blockers_name_the_item_and_what_it_waits_for() {
        let b = Blocker::Decision {
            point_key: "go_no_go".into(),
            title: "Go/No-Go".into(),
            needed: Outcome::Go,
            latest: Some(Outcome::Hold),
        };
        assert_eq!(blocker(&b), "Decision “Go/No-Go” is Hold; it needs Go");
    }
}
