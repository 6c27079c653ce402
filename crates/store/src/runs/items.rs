//! Changing an item: the domain plans the change (`plan_item_change`); this writes it.

use diesel::prelude::*;
use shipshape_domain::event::*;
use shipshape_domain::item::{ItemActor, ItemChange, StoredItem, plan_item_change};
use shipshape_domain::wire::RunItem;

use crate::schema::{run_items as ri, signoffs as so};
use crate::{Store, StoreError, StoreResult, now};

use super::Actor;
use super::events::{Claimed, append_claimed, append_event, claim};
use super::rows::*;

impl Store {
    /// Changes an item (status, assignee, note, evidence). The domain plans the change
    /// ([`plan_item_change`]); for an approval item, a change to the work invalidates its
    /// earlier sign-offs (the event says how many).
    pub fn update_item(
        &self,
        run_id: &str,
        item_id: &str,
        if_match: Option<&shipshape_domain::precondition::Versions>,
        change: ItemChange,
        actor: &Actor,
    ) -> StoreResult<RunItem> {
        let change = change.validated()?;
        // The run is taken and the event's number claimed first, in one statement; a change
        // that alters nothing gives the number back (the transaction is rolled back).
        self.write_or_undo(|conn| {
            let (claimed, item) = claim(conn, run_id, item_id, &actor.id)?;
            update_item_of(
                conn,
                Taken::Claimed(claimed),
                item,
                item_id,
                if_match,
                change,
                actor,
            )
        })
    }
}

/// How a change holds the item's run.
enum Taken {
    /// Its event's number claimed ([`claim`]).
    Claimed(Claimed),
    /// Locked by the caller, who appends other events in the same transaction.
    Locked(RunRow),
}

/// Changes an item in the caller's transaction, the run's lock already taken; `change` is
/// validated.
pub(super) fn update_item_locked(
    conn: &mut crate::AnyConnection,
    run_id: &str,
    item_id: &str,
    if_match: Option<&shipshape_domain::precondition::Versions>,
    change: ItemChange,
    actor: &Actor,
) -> StoreResult<RunItem> {
    let run = load_run(conn, run_id)?;
    let (item, _) = update_item_of(
        conn,
        Taken::Locked(run),
        None,
        item_id,
        if_match,
        change,
        actor,
    )?;
    Ok(item)
}

/// Changes an item of the run `taken` (the item as read with the run, if it was); answers the
/// item and whether it changed.
fn update_item_of(
    conn: &mut crate::AnyConnection,
    taken: Taken,
    item: Option<ItemRow>,
    item_id: &str,
    if_match: Option<&shipshape_domain::precondition::Versions>,
    change: ItemChange,
    actor: &Actor,
) -> StoreResult<(RunItem, bool)> {
    // When the change happens: once the run is held.
    let (run, at) = match &taken {
        Taken::Claimed(c) => (&c.run, c.at),
        Taken::Locked(run) => (run, now()),
    };
    let run_id = run.id.clone();
    let run_id = run_id.as_str();
    let run_status = run.status()?;
    let item = match item {
        Some(item) => item,
        None => load_item(conn, run_id, item_id)?,
    };
    check_if_match("item", if_match, item.version)?;
    // The team's names are asked only to check a new assignee; whether the actor is on it,
    // the claim has read.
    let (names, is_member) = match &taken {
        Taken::Claimed(c) if !matches!(change.assignee, Some(Some(_))) => (Vec::new(), c.on_team),
        _ => {
            let members = load_members(conn, run_id)?;
            let is_member = members.iter().any(|m| m.user_id == actor.id);
            (members.into_iter().map(|m| m.username).collect(), is_member)
        }
    };
    // Only an approval item takes sign-offs.
    let signoffs = if item.approvers.is_some() {
        load_signoffs(conn, run_id, Some(item_id))?
    } else {
        Vec::new()
    };
    let ctx = item.context(run)?;
    let evidence = item.evidence_links()?;
    let probes = load_probe_context(conn, run, std::slice::from_ref(&item))?;
    let stored = StoredItem {
        id: &item.id,
        reference: &item.reference,
        title: &item.title,
        version: item.version,
        assignee: item.assignee.as_deref(),
        note: item.note.as_deref(),
        evidence: &evidence,
        skip_reason: item.skip_reason.as_deref(),
        worked_by: item.worked_by.as_deref(),
        signoffs: signoffs.len(),
    };
    let who = ItemActor {
        username: &actor.username,
        role: actor.role,
        is_member,
    };
    let Some(plan) = plan_item_change(ctx, stored, who, &names, change)? else {
        let unchanged = item.to_wire(run_status, &signoffs.iter().collect::<Vec<_>>(), &probes)?;
        return Ok((unchanged, false));
    };
    let (started_at, finished_at) = item.clock(plan.status, at)?;
    // A finished run's numbers in the insight rollups change with its item.
    let finished = run.finished_at.is_some();
    if finished {
        crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Remove)?;
    }
    // The row as it will be, written whole with the event.
    let fresh = ItemRow {
        status: plan.status.as_str().to_owned(),
        started_at,
        finished_at,
        assignee: plan.assignee.clone(),
        note: plan.note.clone(),
        evidence_url: plan.evidence.first().map(|l| l.url.clone()),
        evidence: evidence_column(&plan.evidence)?,
        skip_reason: plan.skip_reason.clone(),
        version: plan.version,
        updated_by: Some(actor.username.clone()),
        updated_at: Some(at),
        worked_by: plan.worked_by.clone(),
        ..item.clone()
    };
    if plan.invalidates_signoffs {
        diesel::update(
            so::table
                .filter(so::item_id.eq(item_id))
                .filter(so::invalidated_at.is_null()),
        )
        .set(so::invalidated_at.eq(at))
        .execute(conn)?;
    }
    let data = EventData::ItemUpdated(plan.event);
    let write = ItemWrite {
        row: &fresh,
        expected: item.version,
    };
    match taken {
        Taken::Claimed(claimed) => append_claimed(conn, claimed, &actor.username, data, write)?,
        Taken::Locked(_) => {
            write.write(conn)?;
            append_event(conn, run_id, &actor.username, at, data)?
        }
    };
    if finished {
        crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Add)?;
    }
    // Sign-offs still valid: none once the change invalidated them.
    let signoffs: Vec<&SignoffRow> = if plan.invalidates_signoffs {
        Vec::new()
    } else {
        signoffs.iter().collect()
    };
    Ok((fresh.to_wire(run_status, &signoffs, &probes)?, true))
}

/// An item's row as a change leaves it (the answer is made from it: no read-back), to be
/// written whole if the stored row is still at version `expected`.
pub(super) struct ItemWrite<'a> {
    pub(super) row: &'a ItemRow,
    pub(super) expected: i64,
}

impl ItemWrite<'_> {
    /// Writes the row on its own (on PostgreSQL an item change writes it in its event's
    /// statement: see [`append_claimed`]).
    pub(super) fn write(&self, conn: &mut crate::AnyConnection) -> StoreResult<()> {
        let fresh = self.row;
        let updated = crate::native!(conn, |c| crate::Fixed(
            diesel::update(
                ri::table.filter(ri::id.eq(&fresh.id).and(ri::version.eq(self.expected)))
            )
            .set((
                ri::status.eq(&fresh.status),
                ri::started_at.eq(fresh.started_at),
                ri::finished_at.eq(fresh.finished_at),
                ri::assignee.eq(&fresh.assignee),
                ri::note.eq(&fresh.note),
                ri::evidence_url.eq(&fresh.evidence_url),
                ri::evidence.eq(&fresh.evidence),
                ri::skip_reason.eq(&fresh.skip_reason),
                ri::version.eq(fresh.version),
                ri::updated_by.eq(&fresh.updated_by),
                ri::updated_at.eq(fresh.updated_at),
                ri::worked_by.eq(&fresh.worked_by),
            ),)
            // With RETURNING the kept preparation is used (diesel checks a bare UPDATE run by
            // `execute` as if it could vary).
            .returning(ri::version),
        )
        .get_result::<i64>(c)
        .optional())?;
        match updated {
            Some(_) => Ok(()),
            None => Err(self.refused(conn)),
        }
    }

    /// Why the row was not written: it is no longer at the version the change was planned
    /// on.
    pub(super) fn refused(&self, conn: &mut crate::AnyConnection) -> StoreError {
        match ri::table
            .find(&self.row.id)
            .select(ri::version)
            .get_result(conn)
        {
            Ok(current) => StoreError::PreconditionFailed {
                what: "item",
                current,
            },
            Err(e) => e.into(),
        }
    }
}

/// Evidence links as stored: a JSON array.
pub(super) fn evidence_column(
    links: &[shipshape_domain::item::EvidenceLink],
) -> StoreResult<String> {
    serde_json::to_string(links).map_err(|e| StoreError::Corrupt(e.to_string()))
}
