//! Approval items: done only through sign-offs.
//!
//! An item's policy lists one role per sign-off it needs (`[release_manager, approver]`: one
//! release manager and one approver, distinct people). An admin may fill any slot. Nobody
//! signs off their own work. One rejection blocks the item until it is reworked; a material
//! change to the item (status, note, evidence) invalidates every earlier sign-off.

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::item::ItemStatus;
use crate::run::{RunStatus, item_editable};
use crate::template::Gate;
use crate::text::Note;

/// A sign-off's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The work is approved.
    Approve,
    /// The work is rejected and must be reworked.
    Reject,
}

impl Verdict {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Verdict::Approve, Verdict::Reject]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A valid (not invalidated) sign-off as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignoffFacts {
    /// Who signed.
    pub user_id: String,
    /// Their role when they signed.
    pub role: Role,
    /// The verdict.
    pub verdict: Verdict,
}

/// Where an approval item stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Every sign-off the policy asks for is in.
    Approved,
    /// Someone rejected the work; it must be reworked.
    Rejected,
    /// Waiting for sign-offs.
    Pending,
}

fn fills(signer: Role, slot: Role) -> bool {
    signer == slot || signer == Role::Admin
}

/// The policy's roles still waiting for an approval. Each approval fills at most one slot:
/// exact role matches first, then admins fill what is left.
pub fn missing_approvals(policy: &[Role], signoffs: &[SignoffFacts]) -> Vec<Role> {
    let mut missing: Vec<Role> = policy.to_vec();
    for admins in [false, true] {
        for s in signoffs {
            if s.verdict == Verdict::Approve
                && (s.role == Role::Admin) == admins
                && let Some(i) = missing.iter().position(|slot| fills(s.role, *slot))
            {
                missing.remove(i);
            }
        }
    }
    missing
}

/// Where an item with this policy and these sign-offs stands.
pub fn approval_state(policy: &[Role], signoffs: &[SignoffFacts]) -> ApprovalState {
    if signoffs.iter().any(|s| s.verdict == Verdict::Reject) {
        ApprovalState::Rejected
    } else if missing_approvals(policy, signoffs).is_empty() {
        ApprovalState::Approved
    } else {
        ApprovalState::Pending
    }
}

/// Why a sign-off is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignoffError {
    /// A field is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The signer may not sign this item.
    #[error("{0}")]
    Forbidden(String),
    /// The item's state does not take this sign-off now.
    #[error("{0}")]
    Conflict(String),
}

/// A sign-off as the rules read it when they only ask who gave it: the store's facts, and
/// the run view's sign-offs in the web app.
pub trait Signed {
    /// Who signed (their user id).
    fn signer(&self) -> &str;
}

impl Signed for SignoffFacts {
    fn signer(&self) -> &str {
        &self.user_id
    }
}

/// What the rules need to know to judge a sign-off. `S` is how a sign-off is given, `W` how
/// a worker is named (the web app reads both off the run's view as they are).
#[derive(Debug, Clone)]
pub struct SignoffContext<'a, S = SignoffFacts, W = &'a str> {
    /// The run's status.
    pub run_status: RunStatus,
    /// Whether the run is closed.
    pub run_closed: bool,
    /// The item's gate.
    pub gate: Gate,
    /// The item's status.
    pub status: ItemStatus,
    /// The item's policy (empty: not an approval item).
    pub policy: &'a [Role],
    /// The valid sign-offs so far.
    pub signoffs: &'a [S],
    /// Users who did the work (the assignee, whoever last changed it), by id or name.
    pub workers: &'a [W],
}

/// The effect of an accepted sign-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignoffEffect {
    /// The item's approval state afterwards.
    pub state: ApprovalState,
    /// The item's new status, when it changes (approved → `done`, rejected → `blocked`).
    pub new_status: Option<ItemStatus>,
    /// The comment, trimmed.
    pub comment: Option<String>,
}

/// Why a user may not sign an item off now, as a value: [`check_signoff`] words it, the web
/// app only asks whether there is one (and offers the sign-off when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The item has no approval policy.
    NotAnApprovalItem,
    /// The item was skipped.
    Skipped,
    /// The run no longer accepts changes to the item.
    Locked,
    /// The user did the work (assignee, or changed it materially).
    OwnWork,
    /// The user's valid sign-off is already there.
    AlreadySigned,
    /// The policy has no slot the user's role fills.
    RoleNotAsked,
    /// A rejection stands until the item is reworked.
    Rejected,
    /// Every sign-off is in.
    Approved,
    /// An approval: every slot the user's role fills is taken.
    RoleFilled,
}

/// Why `user_id` (`username`, `role`) may not sign this item off now, if there is a reason.
/// `verdict` `None` asks about any sign-off (a rejection is taken wherever an approval is),
/// `Some(verdict)` about that one. The comment is judged by [`check_signoff`].
pub fn refusal(
    ctx: &SignoffContext<'_>,
    user_id: &str,
    username: &str,
    role: Role,
    verdict: Option<Verdict>,
) -> Option<Refusal> {
    let state = approval_state(ctx.policy, ctx.signoffs);
    let missing = missing_approvals(ctx.policy, ctx.signoffs);
    refusal_in(ctx, &state, &missing, user_id, username, role, verdict)
}

/// [`refusal`], given the item's approval state and missing roles as already worked out from
/// the same sign-offs (a run's view carries them).
pub fn refusal_in<S: Signed, W: AsRef<str>>(
    ctx: &SignoffContext<'_, S, W>,
    state: &ApprovalState,
    missing: &[Role],
    user_id: &str,
    username: &str,
    role: Role,
    verdict: Option<Verdict>,
) -> Option<Refusal> {
    Some(if ctx.policy.is_empty() {
        Refusal::NotAnApprovalItem
    } else if ctx.status == ItemStatus::Skipped {
        Refusal::Skipped
    } else if !item_editable(ctx.gate, ctx.run_status, ctx.run_closed) {
        Refusal::Locked
    } else if ctx
        .workers
        .iter()
        .any(|w| w.as_ref() == user_id || w.as_ref() == username)
    {
        Refusal::OwnWork
    } else if ctx.signoffs.iter().any(|s| s.signer() == user_id) {
        Refusal::AlreadySigned
    } else if !ctx.policy.iter().any(|slot| fills(role, *slot)) {
        Refusal::RoleNotAsked
    } else {
        match state {
            ApprovalState::Rejected => Refusal::Rejected,
            ApprovalState::Approved => Refusal::Approved,
            ApprovalState::Pending
                if verdict == Some(Verdict::Approve)
                    && !missing.iter().any(|slot| fills(role, *slot)) =>
            {
                Refusal::RoleFilled
            }
            ApprovalState::Pending => return None,
        }
    })
}

fn roles(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Refusal {
    /// The refusal as the API says it, for a signer with `role`.
    pub fn error(self, ctx: &SignoffContext<'_>, role: Role) -> SignoffError {
        use SignoffError::{Conflict, Forbidden};
        match self {
            Refusal::NotAnApprovalItem => {
                Conflict("this is not an approval item; it needs no sign-off".into())
            }
            Refusal::Skipped => Conflict(
                "the item was skipped; it takes sign-offs again once it is reopened".into(),
            ),
            Refusal::Locked => Conflict("the run no longer accepts changes to this item".into()),
            Refusal::OwnWork => {
                Forbidden("you did the work on this item; someone else must sign it off".into())
            }
            Refusal::AlreadySigned => Conflict("you have already signed this item off".into()),
            Refusal::RoleNotAsked => Forbidden(format!(
                "this item needs sign-offs from: {}; a {} cannot give one",
                roles(ctx.policy),
                role.as_str()
            )),
            Refusal::Rejected => Conflict(
                "the item was rejected; it takes sign-offs again once it is reworked".into(),
            ),
            Refusal::Approved => Conflict("the item is already approved".into()),
            Refusal::RoleFilled => Conflict(format!(
                "no sign-off of a {} is still needed; waiting for: {}",
                role.as_str(),
                roles(&missing_approvals(ctx.policy, ctx.signoffs))
            )),
        }
    }
}

/// Judges a sign-off by a user (`user_id`, `username`, `role`).
pub fn check_signoff(
    ctx: &SignoffContext<'_>,
    user_id: &str,
    username: &str,
    role: Role,
    verdict: Verdict,
    comment: Option<&str>,
) -> Result<SignoffEffect, SignoffError> {
    let refused = refusal(ctx, user_id, username, role, Some(verdict));
    // Whether the item takes sign-offs at all is said before the comment is judged, who may
    // give this one after.
    if let Some(r @ (Refusal::NotAnApprovalItem | Refusal::Skipped | Refusal::Locked)) = refused {
        return Err(r.error(ctx, role));
    }
    let comment = match comment {
        Some(c) => Note::parse("comment", c).map_err(|e| SignoffError::Invalid(e.to_string()))?,
        None => None,
    };
    if let Some(r) = refused {
        return Err(r.error(ctx, role));
    }
    if verdict == Verdict::Reject && comment.is_none() {
        return Err(SignoffError::Invalid(
            "a rejection needs a comment saying what to rework".into(),
        ));
    }
    let mut after = ctx.signoffs.to_vec();
    after.push(SignoffFacts {
        user_id: user_id.to_owned(),
        role,
        verdict,
    });
    let state = approval_state(ctx.policy, &after);
    let target = match state {
        ApprovalState::Approved => Some(ItemStatus::Done),
        ApprovalState::Rejected => Some(ItemStatus::Blocked),
        ApprovalState::Pending => None,
    };
    Ok(SignoffEffect {
        state,
        new_status: target.filter(|t| *t != ctx.status),
        comment: comment.map(String::from),
    })
}

/// The status an approval item takes after a material change invalidated its sign-offs:
/// without sign-offs it cannot stay `done`, and a rejection's `blocked` is lifted by the
/// rework.
pub fn status_after_rework(status: ItemStatus) -> ItemStatus {
    match status {
        ItemStatus::Done | ItemStatus::Blocked => ItemStatus::InProgress,
        ItemStatus::Pending | ItemStatus::InProgress | ItemStatus::Failed | ItemStatus::Skipped => {
            status
        }
    }
}

/// The parts of an item that are the work itself: a change to any of them is material and
/// invalidates the item's sign-offs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work<'a> {
    /// The status.
    pub status: ItemStatus,
    /// The note.
    pub note: Option<&'a str>,
    /// The evidence link.
    pub evidence: &'a [crate::item::EvidenceLink],
}

/// Whether going from `before` to `after` changes the work (re-sending the same values does
/// not).
pub fn is_material_change(before: Work<'_>, after: Work<'_>) -> bool {
    before != after
}

/// Adds `username` to the comma-separated list of people who worked on an item.
pub fn add_worker(workers: Option<&str>, username: &str) -> String {
    match workers {
        Some(list) if list.split(',').any(|w| w == username) => list.to_owned(),
        Some(list) if !list.is_empty() => format!("{list},{username}"),
        _ => username.to_owned(),
    }
}
