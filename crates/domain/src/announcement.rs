//! Stakeholder announcements: the draft a release manager starts from, generated from the run
//! (product, version, environment, the window in UTC and in the reader's zone, the expected
//! downtime and what users will notice, the contacts), and when each kind may be sent.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::describe::time;
use crate::run::RunStatus;
use crate::text::{EmailAddress, Label, Note, TextError};

/// The longest subject.
pub const MAX_SUBJECT_LEN: usize = 200;
/// At most this many mail recipients and subscriptions per announcement.
pub const MAX_RECIPIENTS: usize = 100;

/// What an announcement tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnnouncementKind {
    /// The deployment's schedule and expected downtime, before deploying.
    Schedule,
    /// The deployment succeeded.
    Success,
    /// The deployment was rolled back.
    Rollback,
}

impl AnnouncementKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnouncementKind::Schedule => "schedule",
            AnnouncementKind::Success => "success",
            AnnouncementKind::Rollback => "rollback",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AnnouncementKind::Schedule,
            AnnouncementKind::Success,
            AnnouncementKind::Rollback,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether a checklist item with this wording is the one an announcement of this kind
    /// satisfies: it speaks of communicating the schedule (before deploying) or the success
    /// (after). No item is a rollback announcement's.
    pub fn satisfies(self, item_title: &str) -> bool {
        let words: &[&str] = match self {
            AnnouncementKind::Schedule => &["schedule", "communicated"],
            AnnouncementKind::Success => &["success", "communicated"],
            AnnouncementKind::Rollback => &[],
        };
        let title = item_title.to_lowercase();
        !words.is_empty() && words.iter().all(|w| title.contains(w))
    }

    /// Whether a run in `status` may send this kind: the schedule before deploying, success
    /// once verified or completed, a rollback once rolling back or rolled back. The error
    /// says when it may.
    pub fn check_stage(self, status: RunStatus) -> Result<(), String> {
        let (ok, when) = match self {
            AnnouncementKind::Schedule => (
                matches!(status, RunStatus::Planned | RunStatus::Preparing),
                "before deploying (planned or preparing)",
            ),
            AnnouncementKind::Success => (
                matches!(status, RunStatus::Verifying | RunStatus::Completed),
                "once the deployment is verifying or completed",
            ),
            AnnouncementKind::Rollback => (
                matches!(status, RunStatus::RollingBack | RunStatus::RolledBack),
                "once the run is rolling back or rolled back",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "a {} announcement is sent {when}; this run is {}",
                self.as_str(),
                status.as_str().replace('_', " ")
            ))
        }
    }
}

/// What a draft is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    /// The product.
    pub product: String,
    /// The version.
    pub release_version: String,
    /// The environment.
    pub environment: String,
    /// The window's start.
    pub window_start: Option<DateTime<Utc>>,
    /// The window's end.
    pub window_end: Option<DateTime<Utc>>,
    /// The expected downtime.
    pub expected_downtime_minutes: Option<i32>,
    /// The team: user name and responsibility.
    pub contacts: Vec<(String, String)>,
    /// Why it was rolled back (the latest rollback decision's rationale).
    pub rollback_reason: Option<String>,
    /// The run page's address, when the server knows its public address.
    pub run_url: Option<String>,
}

/// An announcement's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnnouncementDraft {
    /// What it tells.
    pub kind: AnnouncementKind,
    /// One line.
    pub subject: String,
    /// The text.
    pub body: String,
}

/// `at` in the reader's zone, e.g. "23:00 (UTC+01:00)".
fn local(at: DateTime<Utc>, offset_minutes: i32) -> String {
    let shifted = at + Duration::minutes(i64::from(offset_minutes));
    let (sign, abs) = if offset_minutes < 0 {
        ('-', -offset_minutes)
    } else {
        ('+', offset_minutes)
    };
    let clock = time(shifted);
    let clock = clock.trim_end_matches(" UTC");
    format!("{clock} (UTC{sign}{:02}:{:02})", abs / 60, abs % 60)
}

/// The draft of an announcement of `kind` for a run; times are given in UTC and, when
/// `reader_offset_minutes` is known, in the reader's zone too.
pub fn draft(
    kind: AnnouncementKind,
    facts: &RunFacts,
    reader_offset_minutes: Option<i32>,
) -> AnnouncementDraft {
    let what = format!("{} {}", facts.product, facts.release_version);
    let env = &facts.environment;
    let mut body = String::new();
    let subject = match kind {
        AnnouncementKind::Schedule => {
            body.push_str(&format!("{what} will be deployed to {env}.\n\n"));
            match (facts.window_start, facts.window_end) {
                (Some(start), end) => {
                    body.push_str(&format!("When: {}", time(start)));
                    if let Some(end) = end {
                        body.push_str(&format!(" to {}", time(end)));
                    }
                    body.push('\n');
                    if let Some(offset) = reader_offset_minutes.filter(|o| *o != 0) {
                        body.push_str(&format!("Your time: {}", local(start, offset)));
                        if let Some(end) = end {
                            body.push_str(&format!(" to {}", local(end, offset)));
                        }
                        body.push('\n');
                    }
                }
                (None, _) => body.push_str("When: not scheduled yet\n"),
            }
            match facts.expected_downtime_minutes {
                Some(m) if m > 0 => body.push_str(&format!(
                    "Expected downtime: about {m} minutes.\nWhat you will notice: {} is \
                     unavailable for about {m} minutes during the window; save your work \
                     before it starts.\n",
                    facts.product
                )),
                _ => body.push_str(
                    "Expected downtime: none.\nWhat you will notice: nothing; the service \
                     stays available.\n",
                ),
            }
            match facts.window_start {
                Some(start) => format!("Planned deployment: {what} to {env} on {}", time(start)),
                None => format!("Planned deployment: {what} to {env}"),
            }
        }
        AnnouncementKind::Success => {
            body.push_str(&format!(
                "{what} has been deployed to {env} and verified.\nWhat you will notice: the \
                 new version is live; no action is needed.\n"
            ));
            format!("Deployed: {what} is live in {env}")
        }
        AnnouncementKind::Rollback => {
            body.push_str(&format!(
                "The deployment of {what} to {env} was rolled back; the previous version is \
                 running.\n"
            ));
            if let Some(reason) = &facts.rollback_reason {
                body.push_str(&format!("Why: {reason}\n"));
            }
            body.push_str(
                "What you will notice: nothing changes for you; we will announce a new date.\n",
            );
            format!("Rolled back: {what} in {env}")
        }
    };
    if !facts.contacts.is_empty() {
        body.push_str("\nContacts:\n");
        for (name, role) in &facts.contacts {
            body.push_str(&format!("- {name} ({role})\n"));
        }
    }
    if let Some(url) = &facts.run_url {
        body.push_str(&format!("\nFollow the deployment: {url}\n"));
    }
    AnnouncementDraft {
        kind,
        subject,
        body,
    }
}

/// An announcement to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendAnnouncementRequest {
    /// What it tells.
    pub kind: AnnouncementKind,
    /// One line (the mail subject, the chat headline).
    pub subject: String,
    /// The text, as edited.
    pub body: String,
    /// Webhook subscriptions (active ones) to send it to, whatever their event types.
    #[serde(default)]
    pub subscription_ids: Vec<String>,
    /// E-mail addresses to mail it to (needs `SHIPSHAPE_SMTP_URL`).
    #[serde(default)]
    pub recipients: Vec<String>,
    /// A checklist item the announcement completes (marked done, the announcement as its
    /// evidence), e.g. the schedule item before deploying, the success item after.
    #[serde(default)]
    pub item_id: Option<String>,
}

/// What sending an announcement did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnnouncementReceipt {
    /// The `seq` of its `announcement_sent` event in the run's log.
    pub seq: i64,
    /// The checklist item it completed, as it is now.
    pub item: Option<crate::wire::RunItem>,
}

/// A checked announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// What it tells.
    pub kind: AnnouncementKind,
    /// One line.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Subscriptions, without repeats.
    pub subscription_ids: Vec<String>,
    /// Addresses, without repeats.
    pub recipients: Vec<String>,
    /// The item it completes.
    pub item_id: Option<String>,
}

impl SendAnnouncementRequest {
    /// Checks every field.
    pub fn validated(&self) -> Result<Announcement, TextError> {
        let subject = Label::parse("subject", &self.subject)?.into_string();
        let body = Note::parse_required("body", &self.body)?.into_string();
        if self.subscription_ids.len() + self.recipients.len() > MAX_RECIPIENTS {
            return Err(TextError::new(
                "recipients",
                format!("at most {MAX_RECIPIENTS} subscriptions and addresses in all"),
            ));
        }
        let mut recipients: Vec<String> = Vec::new();
        for r in &self.recipients {
            let r = EmailAddress::parse("recipients", r)?.into_string();
            if !recipients.contains(&r) {
                recipients.push(r);
            }
        }
        let mut subscription_ids: Vec<String> = Vec::new();
        for s in &self.subscription_ids {
            if !subscription_ids.contains(s) {
                subscription_ids.push(s.clone());
            }
        }
        if recipients.is_empty() && subscription_ids.is_empty() {
            return Err(TextError::new(
                "recipients",
                "choose at least one subscription or e-mail address",
            ));
        }
        Ok(Announcement {
            kind: self.kind,
            subject,
            body,
            subscription_ids,
            recipients,
            item_id: self.item_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RunFacts {
        RunFacts {
            product: "EduLibra".into(),
            release_version: "4.2.0".into(),
            environment: "production".into(),
            window_start: Some("2026-12-01T22:00:00Z".parse().unwrap()),
            window_end: Some("2026-12-01T23:30:00Z".parse().unwrap()),
            expected_downtime_minutes: Some(15),
            contacts: vec![("rita".into(), "release manager".into())],
            rollback_reason: None,
            run_url: Some("https://ship.example/runs/r1".into()),
        }
    }

    #[test]
    fn a_schedule_draft_gives_the_window_in_utc_and_the_readers_zone() {
        let d = draft(AnnouncementKind::Schedule, &facts(), Some(90));
        assert_eq!(
            d.subject,
            "Planned deployment: EduLibra 4.2.0 to production on 2026-12-01 22:00 UTC"
        );
        assert_eq!(
            d.body,
            "EduLibra 4.2.0 will be deployed to production.\n\n\
             When: 2026-12-01 22:00 UTC to 2026-12-01 23:30 UTC\n\
             Your time: 2026-12-01 23:30 (UTC+01:30) to 2026-12-02 01:00 (UTC+01:30)\n\
             Expected downtime: about 15 minutes.\n\
             What you will notice: EduLibra is unavailable for about 15 minutes during the \
             window; save your work before it starts.\n\
             \nContacts:\n- rita (release manager)\n\
             \nFollow the deployment: https://ship.example/runs/r1\n"
        );
        let west = draft(AnnouncementKind::Schedule, &facts(), Some(-300));
        assert!(
            west.body
                .contains("Your time: 2026-12-01 17:00 (UTC-05:00)")
        );
        let utc = draft(AnnouncementKind::Schedule, &facts(), Some(0));
        assert!(!utc.body.contains("Your time"));
    }

    #[test]
    fn success_and_rollback_drafts_say_what_happened() {
        let mut f = facts();
        f.expected_downtime_minutes = None;
        assert_eq!(
            draft(AnnouncementKind::Success, &f, None).subject,
            "Deployed: EduLibra 4.2.0 is live in production"
        );
        f.rollback_reason = Some("error rate doubled".into());
        let r = draft(AnnouncementKind::Rollback, &f, None);
        assert_eq!(r.subject, "Rolled back: EduLibra 4.2.0 in production");
        assert!(r.body.contains("Why: error rate doubled\n"));
    }

    #[test]
    fn the_seed_checklists_communication_items_are_found_by_their_wording() {
        let schedule = "Deployment schedule is communicated to all stakeholders and users, \
                        including expected downtime.";
        let success = "Successful deployment and availability of the new release is \
                       communicated to users and stakeholders.";
        assert!(AnnouncementKind::Schedule.satisfies(schedule));
        assert!(!AnnouncementKind::Schedule.satisfies(success));
        assert!(AnnouncementKind::Success.satisfies(success));
        assert!(!AnnouncementKind::Rollback.satisfies(schedule));
        assert_eq!(
            AnnouncementKind::parse("rollback"),
            Some(AnnouncementKind::Rollback)
        );
        assert_eq!(AnnouncementKind::parse("teams"), None);
    }

    #[test]
    fn each_kind_is_sent_at_its_stage() {
        assert!(
            AnnouncementKind::Schedule
                .check_stage(RunStatus::Preparing)
                .is_ok()
        );
        assert_eq!(
            AnnouncementKind::Schedule.check_stage(RunStatus::Deploying),
            Err(
                "a schedule announcement is sent before deploying (planned or preparing); \
                 this run is deploying"
                    .into()
            )
        );
        assert!(
            AnnouncementKind::Success
                .check_stage(RunStatus::Completed)
                .is_ok()
        );
        assert!(
            AnnouncementKind::Success
                .check_stage(RunStatus::Planned)
                .is_err()
        );
        assert!(
            AnnouncementKind::Rollback
                .check_stage(RunStatus::RolledBack)
                .is_ok()
        );
    }

    #[test]
    fn a_request_needs_somewhere_to_go_and_valid_addresses() {
        let req = SendAnnouncementRequest {
            kind: AnnouncementKind::Schedule,
            subject: " Planned ".into(),
            body: "text".into(),
            subscription_ids: vec![],
            recipients: vec!["a@example.com".into(), "a@example.com".into()],
            item_id: None,
        };
        let ok = req.validated().unwrap();
        assert_eq!(ok.subject, "Planned");
        assert_eq!(ok.recipients, ["a@example.com"]);
        let nowhere = SendAnnouncementRequest {
            recipients: vec![],
            ..req.clone()
        };
        assert!(
            nowhere
                .validated()
                .unwrap_err()
                .to_string()
                .starts_with("recipients: choose")
        );
        let bad = SendAnnouncementRequest {
            recipients: vec!["nope".into()],
            ..req
        };
        assert!(
            bad.validated()
                .unwrap_err()
                .to_string()
                .starts_with("recipients: must be")
        );
    }
}
