//! Records after the deploy: a run's issues log, its retrospective and the retrospective's
//! action items — their wire types and the rules a change to them must pass.
//!
//! Issues are logged while the run is worked (an open sev1 or sev2 stops it completing, see
//! [`crate::run::Blocker::Issue`]); the retrospective and its action items belong to a
//! finished run. Publishing the retrospective completes the checklist items that record it
//! (`record=retrospective` in the template), with the run's report as their evidence.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::access::Permission;
use crate::role::Role;
use crate::run::RunStatus;
use crate::text::{Label, Note};

/// How bad an issue is: sev1 (worst) to sev4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Critical: an outage or data loss.
    Sev1,
    /// Major: a core function broken for many users.
    Sev2,
    /// Minor: degraded, with a workaround.
    Sev3,
    /// Cosmetic or low impact.
    Sev4,
}

impl Severity {
    /// Every severity, worst first.
    pub const ALL: [Severity; 4] = [
        Severity::Sev1,
        Severity::Sev2,
        Severity::Sev3,
        Severity::Sev4,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Sev1 => "sev1",
            Severity::Sev2 => "sev2",
            Severity::Sev3 => "sev3",
            Severity::Sev4 => "sev4",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Severity::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether an unresolved, unaccepted issue of this severity stops the run completing.
    pub fn blocks_completion(self) -> bool {
        match self {
            Severity::Sev1 | Severity::Sev2 => true,
            Severity::Sev3 | Severity::Sev4 => false,
        }
    }
}

/// Where an issue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    /// Found, not yet contained.
    Open,
    /// Contained (a workaround, a feature flag), not yet fixed.
    Mitigated,
    /// Fixed.
    Resolved,
}

impl IssueStatus {
    /// Every status.
    pub const ALL: [IssueStatus; 3] = [
        IssueStatus::Open,
        IssueStatus::Mitigated,
        IssueStatus::Resolved,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Open => "open",
            IssueStatus::Mitigated => "mitigated",
            IssueStatus::Resolved => "resolved",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        IssueStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A release manager's acceptance of an issue the run may complete with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueAcceptance {
    /// Who accepted it.
    pub by: String,
    /// Why the run may complete with it.
    pub reason: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub at: DateTime<Utc>,
}

/// An issue in a run's issues log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Issue {
    /// The issue's id.
    pub id: String,
    /// The run.
    pub run_id: String,
    /// Its number in the run's log, from 1 (`#3`).
    pub number: i32,
    /// What went wrong, one line.
    pub title: String,
    /// How bad it is.
    pub severity: Severity,
    /// Where it stands.
    pub status: IssueStatus,
    /// Who owns it (a member of the run's team), if anyone.
    pub owner: Option<String>,
    /// The ids of the run's items it concerns.
    pub item_ids: Vec<String>,
    /// What is known: symptoms, impact, what was done.
    pub notes: Option<String>,
    /// Set when a release manager accepted it: the run may complete with it open.
    pub acceptance: Option<IssueAcceptance>,
    /// Whether it stops the run completing now (sev1 or sev2, not resolved, not accepted).
    pub blocks_completion: bool,
    /// Who logged it.
    pub created_by: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub updated_at: DateTime<Utc>,
    /// When it was resolved, if it is.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// The issue's version (its `ETag`), for `If-Match`.
    pub version: i64,
}

/// Whether an issue stops its run completing.
pub fn issue_blocks(severity: Severity, status: IssueStatus, accepted: bool) -> bool {
    severity.blocks_completion() && status != IssueStatus::Resolved && !accepted
}

/// The run's issues log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssueList {
    /// Every issue, by number.
    pub items: Vec<Issue>,
}

/// An issue to log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateIssueRequest {
    /// What went wrong, one line.
    pub title: String,
    /// How bad it is.
    pub severity: Severity,
    /// Where it stands (default `open`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IssueStatus>,
    /// Who owns it: the user name of a member of the run's team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The ids of the run's items it concerns (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_ids: Vec<String>,
    /// What is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// Changes to an issue. Absent fields stay; `null` clears the owner, the notes or the
/// acceptance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateIssueRequest {
    /// New title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// New status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IssueStatus>,
    /// New owner (`null`: nobody).
    #[serde(
        default,
        deserialize_with = "crate::wire::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub owner: Option<Option<String>>,
    /// The items it concerns, replacing the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_ids: Option<Vec<String>>,
    /// New notes (`null` clears).
    #[serde(
        default,
        deserialize_with = "crate::wire::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub notes: Option<Option<String>>,
    /// A release manager accepts the issue, giving the reason the run may complete with it;
    /// `null` withdraws the acceptance.
    #[serde(
        default,
        deserialize_with = "crate::wire::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub accepted_reason: Option<Option<String>>,
}

/// The most items an issue names.
pub const MAX_ISSUE_ITEMS: usize = 20;

/// Why a change to a record is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A field is not valid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The caller may not make this change.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The run does not take this record now (not finished yet, or closed).
    #[error("{0}")]
    Locked(&'static str),
}

fn invalid(field: &'static str, message: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        field,
        message: message.into(),
    }
}

impl From<crate::text::TextError> for RecordError {
    fn from(e: crate::text::TextError) -> Self {
        invalid(e.field, e.message)
    }
}

/// Who is changing a run's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordActor {
    /// Their role.
    pub role: Role,
    /// Whether they are on the run's team.
    pub is_member: bool,
}

impl RecordActor {
    /// The run's team (and release managers) keep its records; viewers only read them.
    pub fn check_team(self) -> Result<(), RecordError> {
        if !self.role.allows(Permission::WorkItems) {
            return Err(RecordError::Forbidden(
                "viewers cannot change a run's records",
            ));
        }
        if !self.is_member && !self.role.allows(Permission::SteerRuns) {
            return Err(RecordError::Forbidden(
                "only the run's team members (and release managers) keep its records",
            ));
        }
        Ok(())
    }
}

/// An issue as stored, for planning a change to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueState {
    /// Title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Status.
    pub status: IssueStatus,
    /// Owner.
    pub owner: Option<String>,
    /// Items it concerns.
    pub item_ids: Vec<String>,
    /// Notes.
    pub notes: Option<String>,
    /// The acceptance's reason, if accepted.
    pub accepted_reason: Option<String>,
}

/// What the rules check an issue's fields against: the run's team and items.
#[derive(Debug, Clone, Copy)]
pub struct IssueContext<'a> {
    /// Whether the run is closed.
    pub run_closed: bool,
    /// The team's user names (an owner must be one).
    pub members: &'a [String],
    /// The run's item ids.
    pub item_ids: &'a [String],
}

impl IssueContext<'_> {
    fn check_open(&self) -> Result<(), RecordError> {
        if self.run_closed {
            return Err(RecordError::Locked(
                "the run is closed; its issues log no longer changes",
            ));
        }
        Ok(())
    }

    fn owner(&self, owner: Option<&str>) -> Result<Option<String>, RecordError> {
        match owner.map(str::trim).filter(|o| !o.is_empty()) {
            None => Ok(None),
            Some(o) if self.members.iter().any(|m| m == o) => Ok(Some(o.to_owned())),
            Some(o) => Err(invalid(
                "owner",
                format!("`{o}` is not a member of this run's team; add them first"),
            )),
        }
    }

    fn items(&self, ids: &[String]) -> Result<Vec<String>, RecordError> {
        if ids.len() > MAX_ISSUE_ITEMS {
            return Err(invalid(
                "item_ids",
                format!("an issue names at most {MAX_ISSUE_ITEMS} items"),
            ));
        }
        let mut out: Vec<String> = Vec::with_capacity(ids.len());
        for id in ids {
            if !self.item_ids.contains(id) {
                return Err(invalid(
                    "item_ids",
                    format!("`{id}` is not an item of this run"),
                ));
            }
            if !out.contains(id) {
                out.push(id.clone());
            }
        }
        Ok(out)
    }
}

/// Checks a new issue: anyone on the team logs one, while the run is not closed.
pub fn check_new_issue(
    ctx: &IssueContext<'_>,
    who: RecordActor,
    req: CreateIssueRequest,
) -> Result<IssueState, RecordError> {
    who.check_team()?;
    ctx.check_open()?;
    Ok(IssueState {
        title: Label::parse("title", &req.title)?.to_string(),
        severity: req.severity,
        status: req.status.unwrap_or(IssueStatus::Open),
        owner: ctx.owner(req.owner.as_deref())?,
        item_ids: ctx.items(&req.item_ids)?,
        notes: match req.notes {
            Some(n) => Note::parse("notes", &n)?.map(String::from),
            None => None,
        },
        accepted_reason: None,
    })
}

/// Plans a change to an issue: the state after it, or `None` when nothing changes.
/// Accepting (or withdrawing an acceptance) is a release manager's.
pub fn plan_issue_update(
    ctx: &IssueContext<'_>,
    who: RecordActor,
    current: &IssueState,
    req: UpdateIssueRequest,
) -> Result<Option<IssueState>, RecordError> {
    who.check_team()?;
    ctx.check_open()?;
    if req == UpdateIssueRequest::default() {
        return Err(invalid(
            "title",
            "nothing to change: give at least one of title, severity, status, owner, item_ids, \
             notes, accepted_reason",
        ));
    }
    let mut next = current.clone();
    if let Some(t) = &req.title {
        next.title = Label::parse("title", t)?.to_string();
    }
    if let Some(s) = req.severity {
        next.severity = s;
    }
    if let Some(s) = req.status {
        next.status = s;
    }
    if let Some(o) = &req.owner {
        next.owner = ctx.owner(o.as_deref())?;
    }
    if let Some(ids) = &req.item_ids {
        next.item_ids = ctx.items(ids)?;
    }
    if let Some(n) = &req.notes {
        next.notes = match n {
            Some(n) => Note::parse("notes", n)?.map(String::from),
            None => None,
        };
    }
    if let Some(reason) = &req.accepted_reason {
        if !who.role.allows(Permission::SteerRuns) {
            return Err(RecordError::Forbidden(
                "accepting an issue the run completes with is a release manager's call",
            ));
        }
        next.accepted_reason = match reason {
            Some(r) => Some(String::from(Note::parse_required("accepted_reason", r)?)),
            None => None,
        };
    }
    Ok((next != *current).then_some(next))
}

/// Whether a retrospective is still being written or is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetroStatus {
    /// Being written; the checklist's retrospective items stay open.
    Draft,
    /// Published: the checklist's retrospective items are done, with it as their evidence.
    Published,
}

impl RetroStatus {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RetroStatus::Draft => "draft",
            RetroStatus::Published => "published",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [RetroStatus::Draft, RetroStatus::Published]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Where an action item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// To do.
    Open,
    /// Done.
    Done,
    /// Decided against.
    Dropped,
}

impl ActionStatus {
    /// Every status.
    pub const ALL: [ActionStatus; 3] = [
        ActionStatus::Open,
        ActionStatus::Done,
        ActionStatus::Dropped,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Open => "open",
            ActionStatus::Done => "done",
            ActionStatus::Dropped => "dropped",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        ActionStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A follow-up a retrospective assigns to someone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionItem {
    /// The action item's id.
    pub id: String,
    /// The run whose retrospective it came from.
    pub run_id: String,
    /// What is to be done, one line.
    pub title: String,
    /// Who does it (a user name).
    pub assignee: String,
    /// By when (a date, UTC).
    #[serde(deserialize_with = "crate::timestamp::deserialize_date")]
    pub due_on: NaiveDate,
    /// Where it stands.
    pub status: ActionStatus,
    /// Whether it is open and its due date has passed.
    pub overdue: bool,
    /// Who created it.
    pub created_by: String,
    /// When.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub updated_at: DateTime<Utc>,
    /// Its version (its `ETag`), for `If-Match`.
    pub version: i64,
}

/// Whether an action item is overdue on `today`.
pub fn is_overdue(status: ActionStatus, due_on: NaiveDate, today: NaiveDate) -> bool {
    status == ActionStatus::Open && due_on < today
}

/// A run's retrospective with its action items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retrospective {
    /// The run.
    pub run_id: String,
    /// Draft or published.
    pub status: RetroStatus,
    /// When the review meeting was held.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub held_at: Option<DateTime<Utc>>,
    /// What went well.
    pub went_well: Option<String>,
    /// What did not.
    pub went_badly: Option<String>,
    /// The root cause of what went wrong (required to publish the retrospective of a
    /// rolled-back run).
    pub root_cause: Option<String>,
    /// Lessons learned (required to publish).
    pub lessons: Option<String>,
    /// Its action items, oldest first.
    pub action_items: Vec<ActionItem>,
    /// Who last changed it (`null` before anyone wrote it).
    pub updated_by: Option<String>,
    /// When it last changed.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub updated_at: Option<DateTime<Utc>>,
    /// When it was published.
    #[serde(deserialize_with = "crate::timestamp::deserialize_option")]
    pub published_at: Option<DateTime<Utc>>,
    /// Its version (its `ETag`), for `If-Match`: 0 before anyone wrote it.
    pub version: i64,
}

/// A retrospective's text, replacing what it says. `status: published` publishes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutRetrospectiveRequest {
    /// When the review meeting was held (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_at: Option<DateTime<Utc>>,
    /// What went well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub went_well: Option<String>,
    /// What did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub went_badly: Option<String>,
    /// The root cause (required to publish the retrospective of a rolled-back run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    /// Lessons learned (required to publish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lessons: Option<String>,
    /// `published` publishes it (it cannot go back to draft); absent keeps its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RetroStatus>,
}

/// A retrospective's checked text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetroText {
    /// When the meeting was held.
    pub held_at: Option<DateTime<Utc>>,
    /// What went well.
    pub went_well: Option<String>,
    /// What did not.
    pub went_badly: Option<String>,
    /// The root cause.
    pub root_cause: Option<String>,
    /// Lessons learned.
    pub lessons: Option<String>,
    /// The status after the change.
    pub status: RetroStatus,
}

/// Why a run takes no retrospective yet, or any more.
pub fn check_retro_run(run_status: RunStatus, run_closed: bool) -> Result<(), RecordError> {
    if !run_status.is_terminal() {
        return Err(RecordError::Locked(
            "a retrospective is written once the run is finished (completed, rolled back or \
             aborted)",
        ));
    }
    if run_closed {
        return Err(RecordError::Locked(
            "the run is closed; its retrospective no longer changes",
        ));
    }
    Ok(())
}

/// Checks a retrospective's new text and status against the run and its current status.
/// Publishing needs lessons, and for a rolled-back run the root cause; a published
/// retrospective stays published.
pub fn check_retrospective(
    run_status: RunStatus,
    run_closed: bool,
    who: RecordActor,
    current: RetroStatus,
    req: PutRetrospectiveRequest,
) -> Result<RetroText, RecordError> {
    who.check_team()?;
    check_retro_run(run_status, run_closed)?;
    let prose = |field: &'static str, v: &Option<String>| -> Result<Option<String>, RecordError> {
        Ok(match v {
            Some(s) => Note::parse(field, s)?.map(String::from),
            None => None,
        })
    };
    let status = req.status.unwrap_or(current);
    if current == RetroStatus::Published && status == RetroStatus::Draft {
        return Err(invalid(
            "status",
            "a published retrospective stays published; change its text instead",
        ));
    }
    let text = RetroText {
        held_at: req.held_at,
        went_well: prose("went_well", &req.went_well)?,
        went_badly: prose("went_badly", &req.went_badly)?,
        root_cause: prose("root_cause", &req.root_cause)?,
        lessons: prose("lessons", &req.lessons)?,
        status,
    };
    if status == RetroStatus::Published {
        if text.lessons.is_none() {
            return Err(invalid(
                "lessons",
                "a retrospective is published with its lessons learned",
            ));
        }
        if run_status.has_rolled_back() && text.root_cause.is_none() {
            return Err(invalid(
                "root_cause",
                "the retrospective of a rolled-back run names the root cause",
            ));
        }
    }
    Ok(text)
}

/// A new action item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateActionItemRequest {
    /// What is to be done, one line.
    pub title: String,
    /// Who does it: the user name of an active user.
    pub assignee: String,
    /// By when: today or later (`YYYY-MM-DD`, UTC).
    pub due_on: NaiveDate,
}

/// Changes to an action item; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateActionItemRequest {
    /// New title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New assignee: an active user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// New due date: today or later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_on: Option<NaiveDate>,
    /// New status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ActionStatus>,
}

/// An action item's fields as stored or planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionState {
    /// Title.
    pub title: String,
    /// Assignee's user name.
    pub assignee: String,
    /// Due date.
    pub due_on: NaiveDate,
    /// Status.
    pub status: ActionStatus,
}

fn due(due_on: NaiveDate, today: NaiveDate) -> Result<NaiveDate, RecordError> {
    if due_on < today {
        return Err(invalid(
            "due_on",
            format!("{due_on} is in the past; give today ({today}) or a later date"),
        ));
    }
    Ok(due_on)
}

fn assignee(name: &str, is_active: &dyn Fn(&str) -> bool) -> Result<String, RecordError> {
    let name = name.trim();
    if !is_active(name) {
        return Err(invalid(
            "assignee",
            format!("`{name}` is not an active user; assign the action to someone who is"),
        ));
    }
    Ok(name.to_owned())
}

/// Checks a new action item of a finished run's retrospective. `is_active` says whether a
/// user name is an active user's.
pub fn check_new_action(
    run_status: RunStatus,
    who: RecordActor,
    req: CreateActionItemRequest,
    today: NaiveDate,
    is_active: &dyn Fn(&str) -> bool,
) -> Result<ActionState, RecordError> {
    who.check_team()?;
    if !run_status.is_terminal() {
        return Err(RecordError::Locked(
            "action items come from the retrospective of a finished run",
        ));
    }
    Ok(ActionState {
        title: Label::parse("title", &req.title)?.to_string(),
        assignee: assignee(&req.assignee, is_active)?,
        due_on: due(req.due_on, today)?,
        status: ActionStatus::Open,
    })
}

/// Plans a change to an action item (its run may be closed: follow-ups outlive the run);
/// `None` when nothing changes. A due date that is not changed may lie in the past.
pub fn plan_action_update(
    who: RecordActor,
    current: &ActionState,
    req: UpdateActionItemRequest,
    today: NaiveDate,
    is_active: &dyn Fn(&str) -> bool,
) -> Result<Option<ActionState>, RecordError> {
    who.check_team()?;
    if req == UpdateActionItemRequest::default() {
        return Err(invalid(
            "title",
            "nothing to change: give at least one of title, assignee, due_on, status",
        ));
    }
    let mut next = current.clone();
    if let Some(t) = &req.title {
        next.title = Label::parse("title", t)?.to_string();
    }
    if let Some(a) = &req.assignee
        && a.trim() != current.assignee
    {
        next.assignee = assignee(a, is_active)?;
    }
    if let Some(d) = req.due_on
        && d != current.due_on
    {
        next.due_on = due(d, today)?;
    }
    if let Some(s) = req.status {
        next.status = s;
    }
    Ok((next != *current).then_some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RM: RecordActor = RecordActor {
        role: Role::ReleaseManager,
        is_member: false,
    };
    const ENGINEER: RecordActor = RecordActor {
        role: Role::Engineer,
        is_member: true,
    };

    fn ctx<'a>(members: &'a [String], items: &'a [String]) -> IssueContext<'a> {
        IssueContext {
            run_closed: false,
            members,
            item_ids: items,
        }
    }

    fn new_issue(severity: Severity) -> CreateIssueRequest {
        CreateIssueRequest {
            title: "Login page slow".into(),
            severity,
            status: None,
            owner: None,
            item_ids: Vec::new(),
            notes: None,
        }
    }

    #[test]
    fn only_unresolved_unaccepted_sev1_and_sev2_issues_block() {
        for severity in Severity::ALL {
            for status in IssueStatus::ALL {
                for accepted in [false, true] {
                    let expected = matches!(severity, Severity::Sev1 | Severity::Sev2)
                        && status != IssueStatus::Resolved
                        && !accepted;
                    assert_eq!(issue_blocks(severity, status, accepted), expected);
                }
            }
        }
    }

    #[test]
    fn the_team_logs_issues_about_its_own_items_and_members() {
        let members = vec!["alice".to_owned()];
        let items = vec!["i1".to_owned()];
        let c = ctx(&members, &items);
        let mut req = new_issue(Severity::Sev2);
        req.owner = Some("alice".into());
        req.item_ids = vec!["i1".into(), "i1".into()];
        let issue = check_new_issue(&c, ENGINEER, req.clone()).unwrap();
        assert_eq!(issue.item_ids, ["i1"]);
        assert_eq!(issue.status, IssueStatus::Open);
        req.owner = Some("mallory".into());
        assert!(matches!(
            check_new_issue(&c, ENGINEER, req.clone()),
            Err(RecordError::Invalid { field: "owner", .. })
        ));
        req.owner = None;
        req.item_ids = vec!["elsewhere".into()];
        assert!(matches!(
            check_new_issue(&c, ENGINEER, req),
            Err(RecordError::Invalid {
                field: "item_ids",
                ..
            })
        ));
        let outsider = RecordActor {
            role: Role::Engineer,
            is_member: false,
        };
        assert!(matches!(
            check_new_issue(&c, outsider, new_issue(Severity::Sev3)),
            Err(RecordError::Forbidden(_))
        ));
        let viewer = RecordActor {
            role: Role::Viewer,
            is_member: true,
        };
        assert!(matches!(
            check_new_issue(&c, viewer, new_issue(Severity::Sev3)),
            Err(RecordError::Forbidden(_))
        ));
    }

    #[test]
    fn only_a_release_manager_accepts_an_issue_and_with_a_reason() {
        let (members, items) = (Vec::new(), Vec::new());
        let c = ctx(&members, &items);
        let issue = check_new_issue(&c, RM, new_issue(Severity::Sev1)).unwrap();
        let accept = UpdateIssueRequest {
            accepted_reason: Some(Some("known, fixed in 4.2.1".into())),
            ..Default::default()
        };
        assert!(matches!(
            plan_issue_update(&c, ENGINEER, &issue, accept.clone()),
            Err(RecordError::Forbidden(_))
        ));
        let accepted = plan_issue_update(&c, RM, &issue, accept).unwrap().unwrap();
        assert_eq!(
            accepted.accepted_reason.as_deref(),
            Some("known, fixed in 4.2.1")
        );
        let blank = UpdateIssueRequest {
            accepted_reason: Some(Some("  ".into())),
            ..Default::default()
        };
        assert!(plan_issue_update(&c, RM, &issue, blank).is_err());
        let same = UpdateIssueRequest {
            severity: Some(Severity::Sev1),
            ..Default::default()
        };
        assert_eq!(plan_issue_update(&c, RM, &issue, same).unwrap(), None);
    }

    #[test]
    fn a_retrospective_is_written_after_the_run_and_published_with_its_lessons() {
        let req = PutRetrospectiveRequest {
            went_well: Some("fast rollback".into()),
            status: Some(RetroStatus::Published),
            ..Default::default()
        };
        assert!(matches!(
            check_retrospective(
                RunStatus::Verifying,
                false,
                ENGINEER,
                RetroStatus::Draft,
                req.clone()
            ),
            Err(RecordError::Locked(_))
        ));
        assert!(matches!(
            check_retrospective(
                RunStatus::Completed,
                false,
                ENGINEER,
                RetroStatus::Draft,
                req.clone()
            ),
            Err(RecordError::Invalid {
                field: "lessons",
                ..
            })
        ));
        let with_lessons = PutRetrospectiveRequest {
            lessons: Some("rehearse the migration".into()),
            ..req
        };
        assert!(
            check_retrospective(
                RunStatus::Completed,
                false,
                ENGINEER,
                RetroStatus::Draft,
                with_lessons.clone()
            )
            .is_ok()
        );
        assert!(matches!(
            check_retrospective(
                RunStatus::RolledBack,
                false,
                ENGINEER,
                RetroStatus::Draft,
                with_lessons.clone()
            ),
            Err(RecordError::Invalid {
                field: "root_cause",
                ..
            })
        ));
        let back = PutRetrospectiveRequest {
            status: Some(RetroStatus::Draft),
            ..with_lessons.clone()
        };
        assert!(
            check_retrospective(
                RunStatus::Completed,
                false,
                ENGINEER,
                RetroStatus::Published,
                back
            )
            .is_err()
        );
        assert!(matches!(
            check_retrospective(
                RunStatus::Completed,
                true,
                ENGINEER,
                RetroStatus::Draft,
                with_lessons
            ),
            Err(RecordError::Locked(_))
        ));
    }

    #[test]
    fn an_action_item_goes_to_an_active_user_and_is_not_due_in_the_past() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let active = |u: &str| u == "bob";
        let req = |assignee: &str, due_on: NaiveDate| CreateActionItemRequest {
            title: "Automate the smoke test".into(),
            assignee: assignee.into(),
            due_on,
        };
        let ok = check_new_action(
            RunStatus::Completed,
            ENGINEER,
            req("bob", today),
            today,
            &active,
        )
        .unwrap();
        assert_eq!(ok.status, ActionStatus::Open);
        assert!(matches!(
            check_new_action(
                RunStatus::Completed,
                ENGINEER,
                req("carol", today),
                today,
                &active
            ),
            Err(RecordError::Invalid {
                field: "assignee",
                ..
            })
        ));
        let yesterday = today.pred_opt().unwrap();
        assert!(matches!(
            check_new_action(
                RunStatus::Completed,
                ENGINEER,
                req("bob", yesterday),
                today,
                &active
            ),
            Err(RecordError::Invalid {
                field: "due_on",
                ..
            })
        ));
        assert!(matches!(
            check_new_action(
                RunStatus::Deploying,
                ENGINEER,
                req("bob", today),
                today,
                &active
            ),
            Err(RecordError::Locked(_))
        ));
        // Later, the same due date has passed: the item is overdue, and closing it does not
        // ask for a new date.
        let later = today.succ_opt().unwrap().succ_opt().unwrap();
        assert!(is_overdue(ok.status, ok.due_on, later));
        let done = UpdateActionItemRequest {
            status: Some(ActionStatus::Done),
            ..Default::default()
        };
        let next = plan_action_update(ENGINEER, &ok, done, later, &active)
            .unwrap()
            .unwrap();
        assert!(!is_overdue(next.status, next.due_on, later));
    }
}
