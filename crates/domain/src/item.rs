//! The rules for changing one item of a run: statuses, skips and waivers, who may mark an
//! approval done, and the shape of assignee, note and evidence.

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::access::Permission;
use crate::run::{RunStatus, item_editable};
use crate::template::{Gate, ItemKind};

/// An item's state in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Not started.
    Pending,
    /// Someone is on it.
    InProgress,
    /// Cannot proceed.
    Blocked,
    /// Finished.
    Done,
    /// Tried and failed.
    Failed,
    /// Deliberately not done, with a reason (a waiver when the item is required).
    Skipped,
}

impl ItemStatus {
    /// Every status.
    pub const ALL: [ItemStatus; 6] = [
        ItemStatus::Pending,
        ItemStatus::InProgress,
        ItemStatus::Blocked,
        ItemStatus::Done,
        ItemStatus::Failed,
        ItemStatus::Skipped,
    ];

    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::InProgress => "in_progress",
            ItemStatus::Blocked => "blocked",
            ItemStatus::Done => "done",
            ItemStatus::Failed => "failed",
            ItemStatus::Skipped => "skipped",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        ItemStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Done or skipped: nothing more is expected of the item, so it does not block its gate.
    pub fn is_settled(self) -> bool {
        match self {
            ItemStatus::Done | ItemStatus::Skipped => true,
            ItemStatus::Pending
            | ItemStatus::InProgress
            | ItemStatus::Blocked
            | ItemStatus::Failed => false,
        }
    }
}

/// The longest assignee accepted.
pub const MAX_ASSIGNEE_LEN: usize = 200;
/// The longest note or reason accepted.
pub const MAX_NOTE_LEN: usize = 10_000;
/// The longest evidence URL accepted.
pub const MAX_URL_LEN: usize = 2_000;

/// Why an item change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// A field has a value the rules do not accept.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The caller's role may not make this change.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The run no longer accepts changes to this item.
    #[error("{0}")]
    Locked(&'static str),
    /// Approval items are done only through sign-offs.
    #[error("an approval item is done only through sign-offs: POST its signoffs")]
    NeedsSignoff,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ItemError {
    ItemError::Invalid {
        field,
        message: message.into(),
    }
}

/// Free text: no NUL or other control characters but newlines and tabs (PostgreSQL rejects
/// NUL in text, SQLite accepts it: refuse it for both).
pub fn check_free_text(field: &'static str, s: &str, max: usize) -> Result<(), ItemError> {
    if s.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(crate::text::is_forbidden) {
        return Err(invalid(
            field,
            "must not contain control or bidirectional-override characters",
        ));
    }
    Ok(())
}

/// An absolute `http` or `https` URL without white space.
pub fn check_url(field: &'static str, s: &str) -> Result<(), ItemError> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(host_and_path)
            if !host_and_path.is_empty()
                && !host_and_path.starts_with('/')
                && s.chars().count() <= MAX_URL_LEN
                && !s.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || crate::text::is_forbidden(c)
                }) =>
        {
            Ok(())
        }
        _ => Err(invalid(
            field,
            format!("must be an absolute http(s) URL of at most {MAX_URL_LEN} characters"),
        )),
    }
}

/// A requested change to an item. `None` leaves a field alone; for the clearable fields,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemChange {
    /// New status.
    pub status: Option<ItemStatus>,
    /// New assignee, or clear it.
    pub assignee: Option<Option<String>>,
    /// New note, or clear it.
    pub note: Option<Option<String>>,
    /// New evidence URL, or clear it.
    pub evidence_url: Option<Option<String>>,
    /// Why the item is skipped (required with status `skipped`).
    pub reason: Option<String>,
}

/// What the rules need to know about the item and its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemContext {
    /// The run's status.
    pub run_status: RunStatus,
    /// Whether the run is closed.
    pub run_closed: bool,
    /// The item's gate.
    pub gate: Gate,
    /// Whether the item is required.
    pub required: bool,
    /// The item's kind.
    pub kind: ItemKind,
    /// The item's current status.
    pub status: ItemStatus,
}

/// The checked change, ready to store: `skip_reason` is what the stored reason becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedItemChange {
    /// The change itself, values normalised (trimmed, empty → cleared).
    pub change: ItemChange,
    /// The stored skip reason after the change (`None` unless the item ends up skipped).
    pub skip_reason: Option<Option<String>>,
    /// Whether this change is a waiver of a required item.
    pub waiver: bool,
}

impl ItemChange {
    /// The change with its values normalised (trimmed, empty → cleared) and checked on their
    /// own, without the item: so a malformed change is refused before anything is compared
    /// with what is stored (an `If-Match`, the item's state).
    pub fn validated(self) -> Result<ItemChange, ItemError> {
        let change = ItemChange {
            assignee: normalise(self.assignee),
            note: normalise(self.note),
            evidence_url: normalise(self.evidence_url),
            reason: self
                .reason
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            status: self.status,
        };
        if change.status.is_none()
            && change.assignee.is_none()
            && change.note.is_none()
            && change.evidence_url.is_none()
        {
            return Err(invalid(
                "status",
                "nothing to change: give at least one of status, assignee, note, evidence_url",
            ));
        }
        if let Some(Some(a)) = &change.assignee {
            check_free_text("assignee", a, MAX_ASSIGNEE_LEN)?;
        }
        if let Some(Some(n)) = &change.note {
            check_free_text("note", n, MAX_NOTE_LEN)?;
        }
        if let Some(Some(u)) = &change.evidence_url {
            check_url("evidence_url", u)?;
        }
        if let Some(r) = &change.reason {
            check_free_text("reason", r, MAX_NOTE_LEN)?;
        }
        Ok(change)
    }
}

fn normalise(v: Option<Option<String>>) -> Option<Option<String>> {
    v.map(|inner| inner.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

/// Checks a change to an item made by someone with `role`. `is_member` says whether they are
/// on the run's team; `members` are the team's user names (an assignee must be one of them).
pub fn check_item_change(
    ctx: ItemContext,
    role: Role,
    is_member: bool,
    members: &[String],
    change: ItemChange,
) -> Result<CheckedItemChange, ItemError> {
    if !role.allows(Permission::WorkItems) {
        return Err(ItemError::Forbidden("viewers cannot change items"));
    }
    if !is_member && !role.allows(Permission::SteerRuns) {
        return Err(ItemError::Forbidden(
            "only the run's team members (and release managers) change its items",
        ));
    }
    if ctx.run_closed {
        return Err(ItemError::Locked(
            "the run is closed; its items no longer change",
        ));
    }
    if !item_editable(ctx.gate, ctx.run_status, ctx.run_closed) {
        return Err(ItemError::Locked(
            "the run is finished; only its close-gated items can still change",
        ));
    }
    let mut change = change.validated()?;
    if let Some(Some(a)) = &change.assignee
        && !members.iter().any(|m| m == a)
    {
        return Err(invalid(
            "assignee",
            format!("`{a}` is not a member of this run's team; add them first"),
        ));
    }
    let mut waiver = false;
    let skip_reason = match change.status {
        Some(ItemStatus::Skipped) => {
            let Some(reason) = change.reason.clone() else {
                return Err(invalid("reason", "skipping an item needs a reason"));
            };
            // A waiver, and rewording an existing waiver's reason, are a release manager's.
            if ctx.required {
                if !role.allows(Permission::SteerRuns) {
                    return Err(ItemError::Forbidden(
                        "skipping a required item is a waiver only a release manager may grant",
                    ));
                }
                waiver = ctx.status != ItemStatus::Skipped;
            }
            Some(Some(reason))
        }
        Some(
            ItemStatus::Pending
            | ItemStatus::InProgress
            | ItemStatus::Blocked
            | ItemStatus::Done
            | ItemStatus::Failed,
        ) => {
            if change.reason.is_some() {
                return Err(invalid("reason", "a reason is only taken when skipping"));
            }
            Some(None)
        }
        None => {
            if change.reason.is_some() {
                return Err(invalid("reason", "a reason is only taken when skipping"));
            }
            None
        }
    };
    if change.status == Some(ItemStatus::Done)
        && ctx.kind == ItemKind::Approval
        && ctx.status != ItemStatus::Done
    {
        return Err(ItemError::NeedsSignoff);
    }
    // Re-stating the current status is not a change of status.
    if change.status == Some(ctx.status) && ctx.status != ItemStatus::Skipped {
        change.status = None;
        if change.assignee.is_none() && change.note.is_none() && change.evidence_url.is_none() {
            return Ok(CheckedItemChange {
                change,
                skip_reason: None,
                waiver: false,
            });
        }
    }
    Ok(CheckedItemChange {
        change,
        skip_reason,
        waiver,
    })
}

impl CheckedItemChange {
    /// Whether the change alters anything at all.
    pub fn is_noop(&self) -> bool {
        self.change.status.is_none()
            && self.change.assignee.is_none()
            && self.change.note.is_none()
            && self.change.evidence_url.is_none()
            && self.skip_reason.is_none()
    }
}
