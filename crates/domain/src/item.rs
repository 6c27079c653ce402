//! The rules for changing one item of a run: statuses, skips and waivers, who may mark an
//! approval done, and the shape of assignee, note and evidence.

use serde::{Deserialize, Serialize};

use crate::Role;
use crate::access::Permission;
use crate::run::{RunStatus, item_editable};
use crate::template::{Gate, ItemKind};
use crate::text::{HttpUrl, Label, Note, TextError};

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

/// A labelled link to evidence (a log, a dashboard, a ticket, a CI run).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvidenceLink {
    /// What it shows, e.g. "Backup restore log" (1 to 200 characters, one line).
    pub label: String,
    /// Where, an absolute http(s) URL.
    pub url: String,
}

/// The most evidence links an item carries.
pub const MAX_EVIDENCE_LINKS: usize = 10;
/// The label an evidence link set through `evidence_url` gets.
pub const DEFAULT_EVIDENCE_LABEL: &str = "Evidence";

/// Reads evidence links written one per line as `label URL` (without a label, the link is
/// labelled [`DEFAULT_EVIDENCE_LABEL`]), the way the web app's editor takes them. A line
/// without an http(s) URL is read as a URL alone, for the server to refuse.
pub fn parse_evidence_lines(text: &str) -> Vec<EvidenceLink> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let at = line.find("https://").or_else(|| line.find("http://"));
            let (label, url) = match at {
                Some(i) => (&line[..i], &line[i..]),
                None => ("", line),
            };
            let label = label
                .trim()
                .trim_end_matches([':', '-', '\u{2014}', '\u{2013}'])
                .trim();
            EvidenceLink {
                label: if label.is_empty() {
                    DEFAULT_EVIDENCE_LABEL.to_owned()
                } else {
                    label.to_owned()
                },
                url: url.trim().to_owned(),
            }
        })
        .collect()
}

/// Writes evidence links one per line, as [`parse_evidence_lines`] reads them.
pub fn evidence_lines(links: &[EvidenceLink]) -> String {
    links
        .iter()
        .map(|l| format!("{} {}", l.label, l.url))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks a list of evidence links: each label a [`Label`], each URL an [`HttpUrl`], at most
/// [`MAX_EVIDENCE_LINKS`]. Values are trimmed.
pub fn check_evidence(links: Vec<EvidenceLink>) -> Result<Vec<EvidenceLink>, ItemError> {
    if links.len() > MAX_EVIDENCE_LINKS {
        return Err(invalid(
            "evidence",
            format!("at most {MAX_EVIDENCE_LINKS} evidence links"),
        ));
    }
    links
        .into_iter()
        .map(|l| {
            Ok(EvidenceLink {
                label: Label::parse("evidence.label", &l.label)?.into(),
                url: HttpUrl::parse("evidence.url", &l.url)?.into_string(),
            })
        })
        .collect()
}

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
    /// A probe item's status follows its check's results.
    #[error(
        "a probe item's status follows its check's results: POST its checks to run it, or \
         skip it with a reason (a waiver)"
    )]
    NeedsCheck,
    /// A retrospective item is done when the run's retrospective is published.
    #[error(
        "this item is done when the run's retrospective is published: PUT the retrospective \
         with status published, or skip the item with a reason"
    )]
    NeedsRetrospective,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ItemError {
    ItemError::Invalid {
        field,
        message: message.into(),
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
    /// New first evidence link's URL, or remove the first link.
    pub evidence_url: Option<Option<String>>,
    /// The evidence links, replacing the ones the item has.
    pub evidence: Option<Vec<EvidenceLink>>,
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
    /// Whether the item is done only with evidence.
    pub evidence_required: bool,
    /// The run record the item is kept through, if any.
    pub record: Option<crate::template::RecordKind>,
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
            assignee: clearable(self.assignee, |s| Label::RULE.optional("assignee", s))?,
            note: clearable(self.note, |s| Ok(Note::parse("note", s)?.map(String::from)))?,
            evidence_url: clearable(self.evidence_url, |s| {
                Ok(match s.trim() {
                    "" => None,
                    u => Some(HttpUrl::parse("evidence_url", u)?.into_string()),
                })
            })?,
            reason: match self.reason {
                Some(r) => Note::parse("reason", &r)?.map(String::from),
                None => None,
            },
            evidence: self.evidence.map(check_evidence).transpose()?,
            status: self.status,
        };
        if change.evidence.is_some() && change.evidence_url.is_some() {
            return Err(invalid(
                "evidence_url",
                "give evidence (every link) or evidence_url (the first link's URL), not both",
            ));
        }
        if change.status.is_none()
            && change.assignee.is_none()
            && change.note.is_none()
            && change.evidence_url.is_none()
            && change.evidence.is_none()
        {
            return Err(invalid(
                "status",
                "nothing to change: give at least one of status, assignee, note, evidence, \
                 evidence_url",
            ));
        }
        Ok(change)
    }
}

/// A clearable field checked by `check` (which trims, and answers `None` for white space
/// alone: a cleared field).
fn clearable(
    v: Option<Option<String>>,
    check: impl Fn(&str) -> Result<Option<String>, TextError>,
) -> Result<Option<Option<String>>, TextError> {
    Ok(match v {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => Some(check(&s)?),
    })
}

impl From<TextError> for ItemError {
    fn from(e: TextError) -> Self {
        invalid(e.field, e.message)
    }
}

/// Whether a person may move an item of `kind` (kept through `record`) from `from` to `to`
/// by changing its status: an approval item is done through sign-offs, a probe item follows
/// its check (people only waive it, or take the waiver back), a retrospective item is done
/// by publishing the retrospective. The web app offers only the statuses this allows.
pub fn status_by_hand(
    kind: ItemKind,
    record: Option<crate::template::RecordKind>,
    from: ItemStatus,
    to: ItemStatus,
) -> Result<(), ItemError> {
    if to == from {
        return Ok(());
    }
    if kind == ItemKind::Probe
        && !(to == ItemStatus::Skipped
            || (to == ItemStatus::Pending && from == ItemStatus::Skipped))
    {
        return Err(ItemError::NeedsCheck);
    }
    if to == ItemStatus::Done && kind == ItemKind::Approval {
        return Err(ItemError::NeedsSignoff);
    }
    if to == ItemStatus::Done && record == Some(crate::template::RecordKind::Retrospective) {
        return Err(ItemError::NeedsRetrospective);
    }
    Ok(())
}

/// Whether someone with `role` may change this item now, whatever the change: their role
/// works items, they are on the run's team (`is_member`) or steer runs, and the run still
/// takes changes to the item's gate. The first part of [`check_item_change`]; the web app
/// shows an item's controls only where this holds.
pub fn may_change(ctx: &ItemContext, role: Role, is_member: bool) -> Result<(), ItemError> {
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
    Ok(())
}

/// Whether someone with `role` may mark this item done by hand now: it is not done yet, they
/// may change it ([`may_change`]) and its kind is done by hand ([`status_by_hand`]).
pub fn may_mark_done(ctx: &ItemContext, role: Role, is_member: bool) -> bool {
    ctx.status != ItemStatus::Done
        && may_change(ctx, role, is_member).is_ok()
        && status_by_hand(ctx.kind, ctx.record, ctx.status, ItemStatus::Done).is_ok()
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
    may_change(&ctx, role, is_member)?;
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
    if let Some(to) = change.status {
        status_by_hand(ctx.kind, ctx.record, ctx.status, to)?;
    }
    // Re-stating the current status is not a change of status.
    if change.status == Some(ctx.status) && ctx.status != ItemStatus::Skipped {
        change.status = None;
        if change.assignee.is_none()
            && change.note.is_none()
            && change.evidence_url.is_none()
            && change.evidence.is_none()
        {
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
            && self.change.evidence.is_none()
            && self.skip_reason.is_none()
    }
}

/// An item as it is stored, for planning a change to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredItem<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its reference, e.g. `1.1.1`.
    pub reference: &'a str,
    /// Its title.
    pub title: &'a str,
    /// Its version.
    pub version: i64,
    /// Its assignee.
    pub assignee: Option<&'a str>,
    /// Its note.
    pub note: Option<&'a str>,
    /// Its evidence links.
    pub evidence: &'a [EvidenceLink],
    /// Why it is skipped.
    pub skip_reason: Option<&'a str>,
    /// Who worked on it (comma-separated user names).
    pub worked_by: Option<&'a str>,
    /// How many valid sign-offs it has.
    pub signoffs: usize,
}

/// Who asks for an item change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemActor<'a> {
    /// Their user name.
    pub username: &'a str,
    /// Their role.
    pub role: Role,
    /// Whether they are on the run's team.
    pub is_member: bool,
}

/// An item change the rules allow, worked out in full: the item's next state and the event
/// that records it. The store writes it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPlan {
    /// The next status.
    pub status: ItemStatus,
    /// The next assignee.
    pub assignee: Option<String>,
    /// The next note.
    pub note: Option<String>,
    /// The next evidence links.
    pub evidence: Vec<EvidenceLink>,
    /// The next skip reason.
    pub skip_reason: Option<String>,
    /// Who has worked on the item after the change.
    pub worked_by: Option<String>,
    /// The item's next version.
    pub version: i64,
    /// Whether the item's valid sign-offs are invalidated (the work changed under them).
    pub invalidates_signoffs: bool,
    /// The event payload.
    pub event: crate::event::ItemUpdated,
}

fn text_change(from: Option<&str>, to: &Option<String>) -> Option<crate::event::TextChange> {
    (from != to.as_deref()).then(|| crate::event::TextChange {
        from: from.map(str::to_owned),
        to: to.clone(),
    })
}

/// Plans a change to an item, the way [`crate::run::plan_transition`] plans a transition:
/// checks it ([`check_item_change`]), merges it into the stored item, decides whether it
/// changes the work (which invalidates an approval item's sign-offs and, when the status is
/// not set, sends a done or blocked item back to `in_progress`), who has worked on the item,
/// and the diff the event records. `None` when the change alters nothing.
pub fn plan_item_change(
    ctx: ItemContext,
    item: StoredItem<'_>,
    actor: ItemActor<'_>,
    members: &[String],
    change: ItemChange,
) -> Result<Option<ItemPlan>, ItemError> {
    use crate::approval::{Work, add_worker, is_material_change, status_after_rework};

    let checked = check_item_change(ctx, actor.role, actor.is_member, members, change)?;
    let c = checked.change;
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let assignee = c.assignee.unwrap_or_else(|| owned(item.assignee));
    let note = c.note.unwrap_or_else(|| owned(item.note));
    let evidence = match (c.evidence, c.evidence_url) {
        (Some(links), _) => links,
        (None, Some(first)) => with_first_url(item.evidence, first),
        (None, None) => item.evidence.to_vec(),
    };
    let patched_status = c.status.unwrap_or(ctx.status);
    if ctx.evidence_required
        && ctx.kind == ItemKind::Manual
        && patched_status == ItemStatus::Done
        && evidence.is_empty()
    {
        return Err(invalid(
            "evidence",
            "this item requires evidence: add at least one evidence link (label and URL) \
             before it is done",
        ));
    }
    let material = is_material_change(
        Work {
            status: ctx.status,
            note: item.note,
            evidence: item.evidence,
        },
        Work {
            status: patched_status,
            note: note.as_deref(),
            evidence: &evidence,
        },
    );
    let invalidates_signoffs = material && item.signoffs > 0;
    let status = if invalidates_signoffs && c.status.is_none() {
        status_after_rework(ctx.status)
    } else {
        patched_status
    };
    let skip_reason = checked
        .skip_reason
        .unwrap_or_else(|| owned(item.skip_reason));
    let changes = crate::event::ItemChanges {
        status: (status != ctx.status).then_some(crate::event::ItemStatusChange {
            from: ctx.status,
            to: status,
        }),
        assignee: text_change(item.assignee, &assignee),
        note: text_change(item.note, &note),
        evidence_url: None,
        evidence: (item.evidence != evidence.as_slice()).then(|| crate::event::EvidenceChange {
            from: item.evidence.to_vec(),
            to: evidence.clone(),
        }),
        skip_reason: text_change(item.skip_reason, &skip_reason),
    };
    if changes.is_empty() {
        return Ok(None);
    }
    let worked_by = if material {
        Some(add_worker(item.worked_by, actor.username))
    } else {
        owned(item.worked_by)
    };
    let version = item.version + 1;
    let invalidated = if invalidates_signoffs {
        item.signoffs as u64
    } else {
        0
    };
    Ok(Some(ItemPlan {
        status,
        assignee,
        note,
        evidence,
        skip_reason,
        worked_by,
        version,
        invalidates_signoffs,
        event: crate::event::ItemUpdated {
            item_id: item.id.to_owned(),
            reference: item.reference.to_owned(),
            title: item.title.to_owned(),
            version,
            waiver: checked.waiver,
            invalidated_signoffs: invalidated,
            changes,
        },
    }))
}

/// The links with the first one's URL replaced (or a first link added), or the first one
/// removed: what `evidence_url` means now that an item carries several links.
fn with_first_url(links: &[EvidenceLink], first: Option<String>) -> Vec<EvidenceLink> {
    let mut out = links.to_vec();
    match (first, out.is_empty()) {
        (Some(url), true) => out.push(EvidenceLink {
            label: DEFAULT_EVIDENCE_LABEL.to_owned(),
            url,
        }),
        (Some(url), false) => out[0].url = url,
        (None, true) => {}
        (None, false) => {
            out.remove(0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_lines_read_a_label_and_a_url_per_line_and_write_back() {
        let links = parse_evidence_lines(
            "Backup job: https://ci.example/backup/41\n\n  https://ci.example/restore/7 \nRestore log \u{2014} http://logs.example/r",
        );
        assert_eq!(
            links,
            vec![
                EvidenceLink {
                    label: "Backup job".into(),
                    url: "https://ci.example/backup/41".into()
                },
                EvidenceLink {
                    label: "Evidence".into(),
                    url: "https://ci.example/restore/7".into()
                },
                EvidenceLink {
                    label: "Restore log".into(),
                    url: "http://logs.example/r".into()
                },
            ]
        );
        assert_eq!(parse_evidence_lines(&evidence_lines(&links)), links);
        assert_eq!(parse_evidence_lines("not a url")[0].url, "not a url");
    }

    #[test]
    fn statuses_by_hand_follow_the_kind_of_item() {
        use crate::template::RecordKind;
        use ItemStatus::*;
        let retro = Some(RecordKind::Retrospective);
        // (kind, record, from, to, allowed)
        let table = [
            (ItemKind::Manual, None, Pending, Done, true),
            (ItemKind::Manual, None, Done, Pending, true),
            (
                ItemKind::Manual,
                Some(RecordKind::Issues),
                Pending,
                Done,
                true,
            ),
            (ItemKind::Approval, None, Pending, Done, false),
            (ItemKind::Approval, None, Pending, Blocked, true),
            (ItemKind::Approval, None, Done, Done, true),
            (ItemKind::Approval, None, Done, InProgress, true),
            (ItemKind::Probe, None, Pending, Done, false),
            (ItemKind::Probe, None, Pending, InProgress, false),
            (ItemKind::Probe, None, Pending, Skipped, true),
            (ItemKind::Probe, None, Skipped, Pending, true),
            (ItemKind::Probe, None, Failed, Pending, false),
            (ItemKind::Probe, None, Failed, Failed, true),
            (ItemKind::Manual, retro, Pending, Done, false),
            (ItemKind::Manual, retro, Pending, Skipped, true),
        ];
        for (kind, record, from, to, allowed) in table {
            assert_eq!(
                status_by_hand(kind, record, from, to).is_ok(),
                allowed,
                "{kind:?} {record:?} {from:?} → {to:?}"
            );
        }
        assert_eq!(
            status_by_hand(ItemKind::Approval, None, Pending, Done),
            Err(ItemError::NeedsSignoff)
        );
        assert_eq!(
            status_by_hand(ItemKind::Probe, None, Pending, Done),
            Err(ItemError::NeedsCheck)
        );
        assert_eq!(
            status_by_hand(ItemKind::Manual, retro, Pending, Done),
            Err(ItemError::NeedsRetrospective)
        );
    }

    fn ctx(kind: ItemKind, status: ItemStatus) -> ItemContext {
        ItemContext {
            run_status: RunStatus::Preparing,
            run_closed: false,
            gate: Gate::Deploy,
            required: true,
            kind,
            status,
            evidence_required: false,
            record: None,
        }
    }

    fn stored(signoffs: usize) -> StoredItem<'static> {
        StoredItem {
            id: "i",
            reference: "1.2.3",
            title: "Data migration scripts",
            version: 4,
            assignee: None,
            note: Some("written"),
            evidence: &[],
            skip_reason: None,
            worked_by: Some("carol"),
            signoffs,
        }
    }

    const BOB: ItemActor<'static> = ItemActor {
        username: "bob",
        role: Role::Engineer,
        is_member: true,
    };

    #[test]
    fn a_note_change_to_signed_work_invalidates_the_signoffs_and_reopens_it() {
        let change = ItemChange {
            note: Some(Some("down migration added".into())),
            ..ItemChange::default()
        };
        let plan = plan_item_change(
            ctx(ItemKind::Approval, ItemStatus::Blocked),
            stored(2),
            BOB,
            &[],
            change,
        )
        .unwrap()
        .expect("a change");
        assert!(plan.invalidates_signoffs);
        assert_eq!(plan.status, ItemStatus::InProgress);
        assert_eq!(plan.version, 5);
        assert_eq!(plan.worked_by.as_deref(), Some("carol,bob"));
        let e = &plan.event;
        assert_eq!((e.invalidated_signoffs, e.version, e.waiver), (2, 5, false));
        assert_eq!(
            e.changes.status,
            Some(crate::event::ItemStatusChange {
                from: ItemStatus::Blocked,
                to: ItemStatus::InProgress
            })
        );
        assert_eq!(
            e.changes.note.as_ref().unwrap().from.as_deref(),
            Some("written")
        );
        assert!(e.changes.assignee.is_none());
    }

    #[test]
    fn assigning_is_not_work_and_keeps_the_signoffs() {
        let change = ItemChange {
            assignee: Some(Some("bob".into())),
            ..ItemChange::default()
        };
        let plan = plan_item_change(
            ctx(ItemKind::Approval, ItemStatus::InProgress),
            stored(1),
            BOB,
            &["bob".into()],
            change,
        )
        .unwrap()
        .unwrap();
        assert!(!plan.invalidates_signoffs);
        assert_eq!(plan.event.invalidated_signoffs, 0);
        assert_eq!(plan.worked_by.as_deref(), Some("carol"));
        assert_eq!(plan.status, ItemStatus::InProgress);
    }

    #[test]
    fn resending_what_is_stored_plans_nothing() {
        let change = ItemChange {
            note: Some(Some("  written ".into())),
            ..ItemChange::default()
        };
        let plan = plan_item_change(
            ctx(ItemKind::Manual, ItemStatus::Pending),
            stored(0),
            BOB,
            &[],
            change,
        )
        .unwrap();
        assert_eq!(plan, None);
    }

    #[test]
    fn a_waiver_is_recorded_with_its_reason() {
        let change = ItemChange {
            status: Some(ItemStatus::Skipped),
            reason: Some("not needed for this release".into()),
            ..ItemChange::default()
        };
        let manager = ItemActor {
            role: Role::ReleaseManager,
            ..BOB
        };
        let plan = plan_item_change(
            ctx(ItemKind::Manual, ItemStatus::Pending),
            stored(0),
            manager,
            &[],
            change,
        )
        .unwrap()
        .unwrap();
        assert!(plan.event.waiver);
        assert_eq!(
            plan.skip_reason.as_deref(),
            Some("not needed for this release")
        );
        assert_eq!(
            plan.event.changes.skip_reason.unwrap().to.as_deref(),
            Some("not needed for this release")
        );
    }
}
