//! The event log's contract: one payload type per kind of event, and the run's log entry
//! that carries it.
//!
//! The store builds events only from these types and the web app decodes them with the same
//! types, so the two cannot drift apart; the OpenAPI document describes [`Event`] as a
//! `oneOf` over one schema per kind, told apart by `type`. The payloads keep the shapes the
//! log has always had, so events written by earlier versions decode (and keep their hashes:
//! see [`crate::chain`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::approval::{ApprovalState, Verdict};
use crate::decision::{CriterionAssessment, Outcome};
use crate::item::{EvidenceLink, ItemStatus};
use crate::records::{IssueStatus, Severity};
use crate::run::{Blocker, RunStatus, TransitionAction};

/// A text field's value before and after a change (`null`: it was or became empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TextChange {
    /// Before.
    pub from: Option<String>,
    /// After.
    pub to: Option<String>,
}

/// A time's value before and after a change (`null`: it was or became unset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimeChange {
    /// Before.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub from: Option<DateTime<Utc>>,
    /// After.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub to: Option<DateTime<Utc>>,
}

/// A number of minutes before and after a change (`null`: it was or became unset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MinutesChange {
    /// Before.
    pub from: Option<i32>,
    /// After.
    pub to: Option<i32>,
}

/// An item's status before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemStatusChange {
    /// Before.
    pub from: ItemStatus,
    /// After.
    pub to: ItemStatus,
}

/// A run's status before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunStatusChange {
    /// Before.
    pub from: RunStatus,
    /// After.
    pub to: RunStatus,
}

/// The run was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunCreated {
    /// The template it was created from.
    pub template_id: String,
    /// The template version it pins.
    pub template_version: i32,
    /// The product released.
    pub product: String,
    /// The version released.
    pub release_version: String,
    /// The environment released to.
    pub environment: String,
}

/// The run's fields that changed; a field left out did not change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunChanges {
    /// The release version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_version: Option<TextChange>,
    /// The start of the scheduled window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<TimeChange>,
    /// The end of the scheduled window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_end: Option<TimeChange>,
    /// The expected downtime, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_downtime_minutes: Option<MinutesChange>,
    /// The commit deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<TextChange>,
    /// When the deployed commit was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<TimeChange>,
}

impl<'de> Deserialize<'de> for RunChanges {
    /// Reads the changes from a JSON tree: far less code than a derived decoder of each kind
    /// of change (the web app decodes events, and its size is budgeted).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tree = serde_json::Value::deserialize(deserializer)?;
        let change = |key: &str| tree.get(key).filter(|c| c.is_object());
        let text = |key: &str| {
            change(key).map(|c| TextChange {
                from: c["from"].as_str().map(str::to_owned),
                to: c["to"].as_str().map(str::to_owned),
            })
        };
        let time = |key: &str| {
            change(key).map(|c| TimeChange {
                from: c["from"].as_str().and_then(crate::timestamp::parse),
                to: c["to"].as_str().and_then(crate::timestamp::parse),
            })
        };
        let minutes = |v: &serde_json::Value| v.as_i64().and_then(|m| i32::try_from(m).ok());
        Ok(RunChanges {
            release_version: text("release_version"),
            window_start: time("window_start"),
            window_end: time("window_end"),
            expected_downtime_minutes: change("expected_downtime_minutes").map(|c| MinutesChange {
                from: minutes(&c["from"]),
                to: minutes(&c["to"]),
            }),
            commit_sha: text("commit_sha"),
            committed_at: time("committed_at"),
        })
    }
}

impl RunChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.release_version.is_none()
            && self.window_start.is_none()
            && self.window_end.is_none()
            && self.expected_downtime_minutes.is_none()
            && self.commit_sha.is_none()
            && self.committed_at.is_none()
    }
}

/// The run's release version or schedule changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunUpdated {
    /// What changed, from what to what.
    pub changes: RunChanges,
    /// How many sign-offs a new release version invalidated (they approved another one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invalidated_signoffs: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The run moved (or was closed) through a transition whose gate was met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunTransitioned {
    /// The transition taken.
    pub action: TransitionAction,
    /// The status before.
    pub from: RunStatus,
    /// The status after (the same as `from` for `close`).
    pub to: RunStatus,
    /// Whether the run was closed.
    pub closed: bool,
    /// The reason given, if any.
    pub reason: Option<String>,
}

/// A release manager forced a transition past unmet gates (break-glass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunOverridden {
    /// The transition taken.
    pub action: TransitionAction,
    /// The status before.
    pub from: RunStatus,
    /// The status after.
    pub to: RunStatus,
    /// Whether the run was closed.
    pub closed: bool,
    /// The reason given (an override needs one).
    pub reason: Option<String>,
    /// Every blocker the override went past.
    pub overridden_blockers: Vec<Blocker>,
    /// The review item the override added to the run.
    pub review_item_id: String,
}

/// An item's fields that changed; a field left out did not change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemChanges {
    /// The status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatusChange>,
    /// The assignee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<TextChange>,
    /// The note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<TextChange>,
    /// The evidence link (events written before items carried several links).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_url: Option<TextChange>,
    /// The evidence links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceChange>,
    /// Why the item is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<TextChange>,
}

impl ItemChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.assignee.is_none()
            && self.note.is_none()
            && self.evidence_url.is_none()
            && self.evidence.is_none()
            && self.skip_reason.is_none()
    }
}

/// An item's evidence links before and after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceChange {
    /// Before.
    pub from: Vec<EvidenceLink>,
    /// After.
    pub to: Vec<EvidenceLink>,
}

/// An item changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemUpdated {
    /// The item.
    pub item_id: String,
    /// The item's reference, e.g. `1.1.1`.
    pub reference: String,
    /// The item's title.
    pub title: String,
    /// The item's version after the change.
    pub version: i64,
    /// Whether the change waived a required item (skipped it).
    pub waiver: bool,
    /// How many sign-offs the change invalidated (a change to an approval item's work).
    pub invalidated_signoffs: u64,
    /// What changed, from what to what.
    pub changes: ItemChanges,
}

/// An approval item was signed off: approved or rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignoffRecorded {
    /// The item.
    pub item_id: String,
    /// The item's reference.
    pub reference: String,
    /// The item's title.
    pub title: String,
    /// The sign-off.
    pub signoff_id: String,
    /// Approve or reject.
    pub verdict: Verdict,
    /// The signer's comment.
    pub comment: Option<String>,
    /// The item's approval state after the sign-off.
    pub approval_state: ApprovalState,
    /// The item's status change the sign-off caused, if any.
    pub status: Option<ItemStatusChange>,
}

/// A decision was recorded at a decision point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecorded {
    /// The decision.
    pub decision_id: String,
    /// The decision point's key.
    pub point_key: String,
    /// The decision point's title (empty in decisions recorded before the log kept it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub point_title: String,
    /// What was decided.
    pub outcome: Outcome,
    /// Why.
    pub rationale: String,
    /// Each criterion's result.
    pub criteria: Vec<CriterionAssessment>,
    /// The run's status change the decision caused (rollback, abort), if any.
    pub run_status: Option<RunStatusChange>,
    /// Whether the server recorded it because the point's deadline passed with no decision.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deadline_passed: bool,
    /// A go with criteria not met or unknown, which the decider confirmed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmet_confirmed: bool,
}

/// What started a probe item's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProbeTrigger {
    /// Someone asked for it ("Run check", `POST …/checks`).
    OnDemand,
    /// The server's schedule, while the run is in the stage the item gates.
    Schedule,
}

impl ProbeTrigger {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeTrigger::OnDemand => "on_demand",
            ProbeTrigger::Schedule => "schedule",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [ProbeTrigger::OnDemand, ProbeTrigger::Schedule]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A probe item's check ran; its result is the item's evidence. (The web app reads only what
/// its timeline tells: fields marked so are left at their defaults there.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeChecked {
    /// The item.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub item_id: String,
    /// The item's reference.
    pub reference: String,
    /// The item's title.
    pub title: String,
    /// The stored result.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub result_id: String,
    /// Whether the answer was what the probe expects.
    pub passed: bool,
    /// What matched or did not ("expected 200, got 503").
    pub summary: String,
    /// The URL requested.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub url: String,
    /// The answer's HTTP status, when there was an answer.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub http_status: Option<u16>,
    /// How long the answer took, in milliseconds, when there was one.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub latency_ms: Option<u64>,
    /// What started the check.
    pub trigger: ProbeTrigger,
    /// The item's status change the result caused, if any.
    pub status: Option<ItemStatusChange>,
}

/// A decision point's deadline is near and nobody has decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionDue {
    /// The decision point's key.
    pub point_key: String,
    /// Its title.
    pub title: String,
    /// When the deadline passes.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub deadline: DateTime<Utc>,
    /// What the server records then if nobody decides.
    pub default_outcome: Outcome,
}

/// A member joined or left the run's team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberChanged {
    /// The user.
    pub user_id: String,
    /// The user's name.
    pub username: String,
    /// Their responsibility in the run.
    pub run_role: String,
}

/// A stakeholder announcement was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnnouncementSent {
    /// What it tells.
    pub announcement: crate::announcement::AnnouncementKind,
    /// Its subject.
    pub subject: String,
    /// Its text.
    pub body: String,
    /// The webhook subscriptions it was sent to.
    pub subscription_ids: Vec<String>,
    /// The addresses it was mailed to.
    pub recipients: Vec<String>,
    /// The checklist item it completed, if any.
    pub item_id: Option<String>,
}

/// An issue was logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueLogged {
    /// The issue.
    pub issue_id: String,
    /// Its number in the run's log.
    pub number: i32,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: Severity,
    /// Its status.
    pub status: IssueStatus,
    /// Its owner.
    pub owner: Option<String>,
    /// The items it concerns.
    pub item_ids: Vec<String>,
}

/// An issue's severity before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeverityChange {
    /// Before.
    pub from: Severity,
    /// After.
    pub to: Severity,
}

/// An issue's status before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueStatusChange {
    /// Before.
    pub from: IssueStatus,
    /// After.
    pub to: IssueStatus,
}

/// A list of ids before and after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdsChange {
    /// Before.
    pub from: Vec<String>,
    /// After.
    pub to: Vec<String>,
}

/// An issue's fields that changed; a field left out did not change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueChanges {
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<TextChange>,
    /// The severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<SeverityChange>,
    /// The status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IssueStatusChange>,
    /// The owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<TextChange>,
    /// The items it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_ids: Option<IdsChange>,
    /// The notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<TextChange>,
    /// The acceptance's reason (set: accepted; cleared: withdrawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_reason: Option<TextChange>,
}

/// An issue changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueUpdated {
    /// The issue.
    pub issue_id: String,
    /// Its number in the run's log.
    pub number: i32,
    /// Its title after the change.
    pub title: String,
    /// Its version after the change.
    pub version: i64,
    /// What changed, from what to what.
    pub changes: IssueChanges,
}

/// The retrospective was written or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetrospectiveSaved {
    /// Its status after the change.
    pub status: crate::records::RetroStatus,
    /// Whether this change published it.
    pub published: bool,
    /// The fields whose text changed (`went_well`, `lessons`, …).
    pub changed: Vec<String>,
    /// The checklist items its publication completed.
    pub completed_item_ids: Vec<String>,
    /// Its version after the change.
    pub version: i64,
}

/// An action item as a change left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionItemChanged {
    /// The action item.
    pub action_id: String,
    /// Its title.
    pub title: String,
    /// Its assignee.
    pub assignee: String,
    /// Its due date.
    #[serde(deserialize_with = "crate::timestamp::deserialize_date")]
    pub due_on: chrono::NaiveDate,
    /// Its status.
    pub status: crate::records::ActionStatus,
    /// The assignee before, when the change reassigned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_assignee: Option<String>,
}

/// A template change was proposed from the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateProposed {
    /// The proposal.
    pub proposal_id: String,
    /// The template.
    pub template_id: String,
    /// The version it was written on.
    pub base_version: i32,
    /// What it changes.
    pub summary: String,
}

/// An administrator accepted or declined a template change proposed from the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalReviewed {
    /// The proposal.
    pub proposal_id: String,
    /// The template.
    pub template_id: String,
    /// Accepted or declined.
    pub status: crate::proposal::ProposalStatus,
    /// The reviewer's reason.
    pub reason: Option<String>,
    /// The template version it became, when accepted.
    pub accepted_version: Option<i32>,
}

/// Declares the kinds of event once: the payload enum, the kind enum, and the list the
/// OpenAPI document is built from.
macro_rules! event_kinds {
    ($( $variant:ident($payload:ty) = $name:literal, $schema:literal, $doc:literal; )*) => {
        /// What happened, with its details: serialized as the event's `type` and `payload`.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "payload", rename_all = "snake_case")]
        pub enum EventData {
            $( #[doc = $doc] $variant($payload), )*
        }

        /// What kind of change an event records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        // The spelling is snake_case of the variant, written out as `$name` for `as_str`
        // (a test holds the two together); utoipa does not read a `rename` made by a macro.
        #[serde(rename_all = "snake_case")]
        pub enum EventType {
            $( #[doc = $doc] $variant, )*
        }

        impl EventType {
            /// Every kind of event.
            pub const ALL: &[EventType] = &[$(EventType::$variant),*];

            /// The wire and database spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( EventType::$variant => $name, )*
                }
            }

            /// Parses the wire and database spelling.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|e| e.as_str() == s)
            }

            /// The name of its event's schema in the OpenAPI document, e.g.
            /// `RunCreatedEvent`.
            pub fn schema_name(self) -> &'static str {
                match self {
                    $( EventType::$variant => $schema, )*
                }
            }

            /// What it records, in a sentence.
            pub fn describe(self) -> &'static str {
                match self {
                    $( EventType::$variant => $doc, )*
                }
            }
        }

        impl EventData {
            /// Decodes a payload of the given kind.
            pub fn from_payload(
                kind: EventType,
                payload: serde_json::Value,
            ) -> Result<EventData, serde_json::Error> {
                match kind {
                    $( EventType::$variant => <$payload>::deserialize(payload).map(EventData::$variant), )*
                }
            }

            /// Its kind.
            pub fn event_type(&self) -> EventType {
                match self {
                    $( EventData::$variant(_) => EventType::$variant, )*
                }
            }
        }

        /// For the OpenAPI document: each kind's `type` value, the name of its event schema,
        /// its description, and its payload schema's name and schemas.
        #[cfg(feature = "openapi")]
        pub(crate) fn openapi_kinds() -> Vec<crate::event::openapi::Kind> {
            use utoipa::ToSchema;
            vec![$(
                crate::event::openapi::Kind {
                    name: $name,
                    schema: $schema,
                    description: $doc,
                    payload: <$payload as ToSchema>::name().into_owned(),
                    payload_schema: <$payload as utoipa::PartialSchema>::schema(),
                    payload_schemas: {
                        let mut v = Vec::new();
                        <$payload as ToSchema>::schemas(&mut v);
                        v
                    },
                },
            )*]
        }
    };
}

event_kinds! {
    RunCreated(RunCreated) = "run_created", "RunCreatedEvent", "The run was created.";
    RunUpdated(RunUpdated) = "run_updated", "RunUpdatedEvent",
        "The run's release version or schedule changed.";
    RunTransitioned(RunTransitioned) = "run_transitioned", "RunTransitionedEvent",
        "The run changed status or was closed.";
    ItemUpdated(ItemUpdated) = "item_updated", "ItemUpdatedEvent", "An item changed.";
    DecisionRecorded(DecisionRecorded) = "decision_recorded", "DecisionRecordedEvent",
        "A decision was recorded.";
    RunOverridden(RunOverridden) = "run_overridden", "RunOverriddenEvent",
        "A release manager forced a transition past unmet gates.";
    MemberAdded(MemberChanged) = "member_added", "MemberAddedEvent",
        "A member joined the run's team.";
    MemberRemoved(MemberChanged) = "member_removed", "MemberRemovedEvent",
        "A member left the run's team.";
    SignoffRecorded(SignoffRecorded) = "signoff_recorded", "SignoffRecordedEvent",
        "An approval item was signed off (approved or rejected).";
    AnnouncementSent(AnnouncementSent) = "announcement_sent", "AnnouncementSentEvent",
        "A stakeholder announcement was sent.";
    ProbeChecked(ProbeChecked) = "probe_checked", "ProbeCheckedEvent",
        "A probe item's check ran.";
    DecisionDue(DecisionDue) = "decision_due", "DecisionDueEvent",
        "A decision point's deadline is near and nobody has decided.";
    IssueLogged(IssueLogged) = "issue_logged", "IssueLoggedEvent",
        "An issue was logged in the run's issues log.";
    IssueUpdated(IssueUpdated) = "issue_updated", "IssueUpdatedEvent",
        "An issue of the run's issues log changed.";
    RetrospectiveSaved(RetrospectiveSaved) = "retrospective_saved", "RetrospectiveSavedEvent",
        "The run's retrospective was written, changed or published.";
    ActionItemCreated(ActionItemChanged) = "action_item_created", "ActionItemCreatedEvent",
        "The retrospective assigned an action item.";
    ActionItemUpdated(ActionItemChanged) = "action_item_updated", "ActionItemUpdatedEvent",
        "An action item changed (reassigned, rescheduled, done or dropped).";
    TemplateProposed(TemplateProposed) = "template_proposed", "TemplateProposedEvent",
        "A change to the run's template was proposed from it.";
    ProposalReviewed(ProposalReviewed) = "proposal_reviewed", "ProposalReviewedEvent",
        "A template change proposed from the run was accepted or declined.";
}

/// One entry of a run's append-only, hash-chained event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Position in the run's log, from 1, without gaps.
    pub seq: i64,
    /// The run.
    pub run_id: String,
    /// Who did it (user name).
    pub actor: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub at: DateTime<Utc>,
    /// What happened: the event's `type` and `payload`.
    #[serde(flatten)]
    pub data: EventData,
    /// The previous event's `hash` (64 zeros for the first event).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this event's canonical encoding (see the README).
    pub hash: String,
}

impl<'de> Deserialize<'de> for Event {
    /// Reads the payload as a JSON tree first, then as the type `type` names: far less code
    /// than a flattened tagged enum (the web app decodes events, and its size is budgeted).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            seq: i64,
            run_id: String,
            actor: String,
            #[serde(deserialize_with = "crate::timestamp::deserialize")]
            at: DateTime<Utc>,
            #[serde(rename = "type")]
            event_type: EventType,
            payload: serde_json::Value,
            prev_hash: String,
            hash: String,
        }
        let w = Wire::deserialize(deserializer)?;
        Ok(Event {
            seq: w.seq,
            run_id: w.run_id,
            actor: w.actor,
            at: w.at,
            data: EventData::from_payload(w.event_type, w.payload)
                .map_err(serde::de::Error::custom)?,
            prev_hash: w.prev_hash,
            hash: w.hash,
        })
    }
}

impl Event {
    /// Its kind.
    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }
}

#[cfg(feature = "openapi")]
pub(crate) mod openapi {
    //! `Event` in the OpenAPI document: a `oneOf` over one schema per kind, each with the
    //! common fields, a one-valued `type`, and its payload, with a `type` discriminator.

    use std::borrow::Cow;

    use utoipa::openapi::schema::RefBuilder;
    use utoipa::openapi::schema::{
        Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
    };
    use utoipa::openapi::{Ref, RefOr};

    pub(crate) struct Kind {
        pub name: &'static str,
        pub schema: &'static str,
        pub description: &'static str,
        pub payload: String,
        pub payload_schema: RefOr<Schema>,
        pub payload_schemas: Vec<(String, RefOr<Schema>)>,
    }

    fn string(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    }

    fn envelope(kind: &Kind) -> Schema {
        ObjectBuilder::new()
            .description(Some(format!("`{}`: {}", kind.name, kind.description)))
            .property(
                "seq",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .description(Some("Position in the run's log, from 1, without gaps.")),
            )
            .required("seq")
            .property("run_id", string("The run."))
            .required("run_id")
            .property(
                "type",
                string(&format!("What happened: always `{}` here.", kind.name))
                    .enum_values(Some([kind.name])),
            )
            .required("type")
            .property("actor", string("Who did it (user name)."))
            .required("actor")
            .property(
                "at",
                string("When.").format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .required("at")
            .property(
                "payload",
                RefBuilder::new()
                    .ref_location_from_schema_name(kind.payload.clone())
                    .description(Some(format!("The details of `{}`.", kind.name))),
            )
            .required("payload")
            .property(
                "prev_hash",
                string("The previous event's `hash` (64 zeros for the first event)."),
            )
            .required("prev_hash")
            .property(
                "hash",
                string(
                    "SHA-256 (hex) over `prev_hash` and this event's canonical encoding (see \
                     the README).",
                ),
            )
            .required("hash")
            .into()
    }

    impl utoipa::PartialSchema for super::Event {
        fn schema() -> RefOr<Schema> {
            let kinds = super::openapi_kinds();
            let mut one_of = OneOfBuilder::new().description(Some(
                "One entry of a run's append-only, hash-chained event log; `type` says which \
                 kind, and so the shape of `payload`.",
            ));
            for kind in &kinds {
                one_of = one_of.item(Ref::from_schema_name(kind.schema));
            }
            let mut one_of = one_of.build();
            one_of.discriminator = Some(Discriminator::with_mapping(
                "type",
                kinds
                    .iter()
                    .map(|k| (k.name, format!("#/components/schemas/{}", k.schema))),
            ));
            RefOr::T(Schema::OneOf(one_of))
        }
    }

    impl utoipa::ToSchema for super::Event {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Event")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            // The kinds on their own, for what names one (a stream's event names).
            schemas.push((
                "EventType".to_owned(),
                <super::EventType as utoipa::PartialSchema>::schema(),
            ));
            for kind in super::openapi_kinds() {
                schemas.push((kind.schema.to_owned(), RefOr::T(envelope(&kind))));
                schemas.push((kind.payload.clone(), kind.payload_schema));
                schemas.extend(kind.payload_schemas);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: EventData) -> Event {
        Event {
            seq: 3,
            run_id: "r".into(),
            actor: "alice".into(),
            at: DateTime::UNIX_EPOCH,
            data,
            prev_hash: "0".repeat(64),
            hash: "h".into(),
        }
    }

    #[test]
    fn an_event_keeps_its_wire_shape_with_type_and_payload() {
        let e = event(EventData::MemberAdded(MemberChanged {
            user_id: "u".into(),
            username: "bob".into(),
            run_role: "DBA".into(),
        }));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "member_added");
        assert_eq!(json["payload"]["run_role"], "DBA");
        assert_eq!(json["seq"], 3);
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.event_type(), EventType::MemberAdded);
    }

    #[test]
    fn payloads_written_by_earlier_versions_decode() {
        let legacy = serde_json::json!({
            "seq": 2, "run_id": "r", "actor": "a", "at": "2026-11-27T10:00:00Z",
            "type": "item_updated", "prev_hash": "", "hash": "",
            "payload": {"item_id": "i", "reference": "1.1.1", "title": "Code freeze", "version": 2,
                "waiver": false, "invalidated_signoffs": 0,
                "changes": {"status": {"from": "pending", "to": "done"}, "note": {"from": null, "to": "ok"}}}
        });
        let e: Event = serde_json::from_value(legacy).unwrap();
        let EventData::ItemUpdated(p) = &e.data else {
            panic!("wrong kind")
        };
        assert_eq!(p.changes.status.unwrap().to, ItemStatus::Done);
        assert_eq!(p.changes.note.as_ref().unwrap().from, None);
        assert!(p.changes.assignee.is_none());
    }

    #[test]
    fn an_unknown_type_or_a_payload_of_the_wrong_shape_is_refused() {
        let bad = serde_json::json!({"seq": 1, "run_id": "r", "actor": "a", "at": "2026-11-27T10:00:00Z",
            "type": "run_exploded", "payload": {}, "prev_hash": "", "hash": ""});
        assert!(serde_json::from_value::<Event>(bad).is_err());
        let wrong = serde_json::json!({"seq": 1, "run_id": "r", "actor": "a", "at": "2026-11-27T10:00:00Z",
            "type": "member_added", "payload": {"user_id": 5}, "prev_hash": "", "hash": ""});
        assert!(serde_json::from_value::<Event>(wrong).is_err());
    }

    #[test]
    fn every_kind_has_one_spelling() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(*kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().into())
            );
        }
        let data = EventData::MemberRemoved(MemberChanged {
            user_id: "u".into(),
            username: "bob".into(),
            run_role: "DBA".into(),
        });
        assert_eq!(
            serde_json::to_value(&data).unwrap()["type"],
            data.event_type().as_str()
        );
        assert_eq!(EventType::ALL.len(), 19);
    }
}
