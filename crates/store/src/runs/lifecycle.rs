//! A run's life: creating it, changing its schedule, and moving it through its status
//! machine (including a release manager's forced transition and the review item it adds).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use shipshape_domain::Role;
use shipshape_domain::event::*;
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::{
    Blocker, OVERRIDE_REVIEW_TITLE, RunPatch, RunStatus, TransitionAction, TransitionError,
    check_run_editable, check_schedule, plan_forced_transition, plan_transition,
};
use shipshape_domain::template::{Applicability, Gate, ItemKind, RecordKind};
use shipshape_domain::wire::Run;

use crate::schema::{run_items as ri, runs as r, signoffs as so};
use crate::templates::load_version;
use crate::{AnyConnection, Store, StoreError, StoreResult, is_unique_violation, new_id, now, utc};

use super::events::append_event;
use super::rows::*;
use super::{Actor, NewRun};

/// Adds the required close item that makes someone review a forced transition.
pub(super) fn add_override_review(
    conn: &mut AnyConnection,
    rows: &RunRows,
    at: NaiveDateTime,
) -> StoreResult<String> {
    let part = rows.template.parts().len();
    let existing = rows
        .items
        .iter()
        .filter(|i| usize::try_from(i.part_index).is_ok_and(|p| p >= part))
        .count();
    let position = rows.items.iter().map(|i| i.position).max().unwrap_or(0) + 1;
    let id = new_id();
    diesel::insert_into(ri::table)
        .values((
            ri::id.eq(&id),
            ri::run_id.eq(&rows.run.id),
            ri::position.eq(position),
            ri::part_index.eq(i32::try_from(part).unwrap_or(i32::MAX)),
            ri::section_index.eq(0),
            ri::reference.eq(format!("{}.1.{}", part + 1, existing + 1)),
            ri::title.eq(OVERRIDE_REVIEW_TITLE),
            ri::guidance.eq(Some(
                "A release manager forced a transition past unmet gates. Review why, what was \
                 skipped (see the override in the event log) and what follows from it.",
            )),
            ri::gate.eq(Gate::Close.as_str()),
            ri::applies.eq(Applicability::Always.as_str()),
            ri::required.eq(true),
            ri::kind.eq(ItemKind::Manual.as_str()),
            ri::status.eq(ItemStatus::Pending.as_str()),
            ri::version.eq(1_i64),
            ri::updated_at.eq(Some(at)),
        ))
        .execute(conn)?;
    Ok(id)
}

/// How an item stood in the way of a transition.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BlockKind {
    /// A transition was refused with it among the blockers.
    Refused,
    /// An override went past it.
    Overridden,
}

/// Notes, once per item and kind, that the items among `blockers` stood in the way of a
/// transition of the run.
pub(crate) fn record_item_blocks(
    conn: &mut AnyConnection,
    run_id: &str,
    blockers: &[Blocker],
    kind: BlockKind,
    at: NaiveDateTime,
) -> StoreResult<()> {
    let kind = match kind {
        BlockKind::Refused => "refused",
        BlockKind::Overridden => "overridden",
    };
    for blocker in blockers {
        if let Blocker::Item { item_id, .. } = blocker {
            // Parameters in the order they appear: SQLite numbers them so.
            diesel::sql_query(
                "INSERT INTO item_blocks (item_id, kind, run_id, at) \
                 SELECT id, $1, run_id, $2 FROM run_items WHERE id = $3 AND run_id = $4 \
                 ON CONFLICT (item_id, kind) DO NOTHING",
            )
            .bind::<diesel::sql_types::Text, _>(kind)
            .bind::<diesel::sql_types::Timestamp, _>(at)
            .bind::<diesel::sql_types::Text, _>(item_id)
            .bind::<diesel::sql_types::Text, _>(run_id)
            .execute(conn)?;
        }
    }
    Ok(())
}

impl Store {
    /// Creates a run of a template version, copying its items.
    pub fn create_run(&self, new: NewRun, actor: &Actor) -> StoreResult<Run> {
        let run_id = new_id();
        self.write(|conn| {
            let (_, version) = load_version(conn, &new.template_id, new.template_version)?;
            let template = version.template()?;
            let at = now();
            crate::environments::ensure_environment(
                conn,
                new.environment.as_str(),
                &actor.username,
                at,
            )?;
            diesel::insert_into(r::table)
                .values((
                    r::id.eq(&run_id),
                    r::template_id.eq(&version.template_id),
                    r::template_version.eq(version.version),
                    r::template_name.eq(&version.name),
                    r::product.eq(new.product.as_str()),
                    r::release_version.eq(new.release_version.as_str()),
                    r::environment.eq(new.environment.as_str()),
                    r::status.eq(RunStatus::Planned.as_str()),
                    r::window_start.eq(naive(new.window_start)),
                    r::window_end.eq(naive(new.window_end)),
                    r::expected_downtime_minutes.eq(new.expected_downtime_minutes),
                    r::created_by.eq(&actor.username),
                    r::created_at.eq(at),
                    r::updated_at.eq(at),
                    r::closed_at.eq(None::<NaiveDateTime>),
                    r::last_seq.eq(0_i64),
                    r::overridden.eq(false),
                    r::stage_entered_at.eq(Some(at)),
                    r::commit_sha.eq(&new.commit_sha),
                    r::committed_at.eq(naive(new.committed_at)),
                ))
                .execute(conn)?;
            for (position, (pi, si, ii, item)) in template.items().enumerate() {
                diesel::insert_into(ri::table)
                    .values((
                        ri::id.eq(new_id()),
                        ri::run_id.eq(&run_id),
                        ri::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
                        ri::part_index.eq(i32::try_from(pi).unwrap_or(i32::MAX)),
                        ri::section_index.eq(i32::try_from(si).unwrap_or(i32::MAX)),
                        ri::reference.eq(format!("{}.{}.{}", pi + 1, si + 1, ii + 1)),
                        ri::title.eq(&item.title),
                        ri::guidance.eq(&item.guidance),
                        ri::gate.eq(item.gate.as_str()),
                        ri::applies.eq(item.applies.as_str()),
                        ri::required.eq(item.required),
                        ri::kind.eq(item.kind.as_str()),
                        ri::role.eq(item.role.map(Role::as_str)),
                        ri::approvers.eq(approvers_column(item)),
                        ri::status.eq(ItemStatus::Pending.as_str()),
                        ri::version.eq(1_i64),
                        ri::probe.eq(probe_column(item)?),
                        ri::evidence_required.eq(item.evidence_required),
                        ri::record.eq(item.record.map(RecordKind::as_str)),
                    ))
                    .execute(conn)?;
            }
            append_event(
                conn,
                &run_id,
                &actor.username,
                at,
                EventData::RunCreated(RunCreated {
                    template_id: version.template_id.clone(),
                    template_version: version.version,
                    product: new.product.to_string(),
                    release_version: new.release_version.to_string(),
                    environment: new.environment.to_string(),
                }),
            )?;
            read_run(conn, &self.templates, &run_id)
        })
    }

    /// Changes a run's schedule fields.
    pub fn update_run(
        &self,
        run_id: &str,
        if_match: Option<&shipshape_domain::precondition::Versions>,
        patch: &RunPatch,
        actor: &Actor,
    ) -> StoreResult<Run> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            check_if_match("run", if_match, run.last_seq)?;
            check_run_editable(run.status()?, run.closed_at.is_some())?;
            let start = match patch.window_start {
                Some(v) => naive(v),
                None => run.window_start,
            };
            let end = match patch.window_end {
                Some(v) => naive(v),
                None => run.window_end,
            };
            let release = match &patch.release_version {
                Some(v) => v.as_str().to_owned(),
                None => run.release_version.clone(),
            };
            let downtime = match patch.expected_downtime_minutes {
                Some(v) => v,
                None => run.expected_downtime_minutes,
            };
            check_schedule(start.map(utc), end.map(utc), downtime)?;
            let commit_sha = match &patch.commit_sha {
                Some(v) => v.clone(),
                None => run.commit_sha.clone(),
            };
            let committed_at = match patch.committed_at {
                Some(v) => naive(v),
                None => run.committed_at,
            };
            let changes = RunChanges {
                release_version: (release != run.release_version).then(|| TextChange {
                    from: Some(run.release_version.clone()),
                    to: Some(release.clone()),
                }),
                window_start: (start != run.window_start).then(|| TimeChange {
                    from: run.window_start.map(utc),
                    to: start.map(utc),
                }),
                window_end: (end != run.window_end).then(|| TimeChange {
                    from: run.window_end.map(utc),
                    to: end.map(utc),
                }),
                expected_downtime_minutes: (downtime != run.expected_downtime_minutes).then_some(
                    MinutesChange {
                        from: run.expected_downtime_minutes,
                        to: downtime,
                    },
                ),
                commit_sha: (commit_sha != run.commit_sha).then(|| TextChange {
                    from: run.commit_sha.clone(),
                    to: commit_sha.clone(),
                }),
                committed_at: (committed_at != run.committed_at).then(|| TimeChange {
                    from: run.committed_at.map(utc),
                    to: committed_at.map(utc),
                }),
            };
            if changes.is_empty() {
                return read_run(conn, &self.templates, run_id);
            }
            let at = now();
            // A new release version: the sign-offs approved (or rejected) another one. Every
            // valid one is invalidated; the items they had approved or rejected go back to
            // work (`status_after_rework`), each with its own change in the log.
            let mut reworked = Vec::new();
            let mut invalidated_signoffs = 0;
            if changes.release_version.is_some() {
                let signoffs = load_signoffs(conn, run_id, None)?;
                for s in &signoffs {
                    if !reworked.contains(&s.item_id) {
                        reworked.push(s.item_id.clone());
                    }
                }
                invalidated_signoffs = diesel::update(
                    so::table
                        .filter(so::run_id.eq(run_id))
                        .filter(so::invalidated_at.is_null()),
                )
                .set(so::invalidated_at.eq(at))
                .execute(conn)?;
            }
            diesel::update(r::table.find(run_id))
                .set((
                    r::release_version.eq(&release),
                    r::window_start.eq(start),
                    r::window_end.eq(end),
                    r::expected_downtime_minutes.eq(downtime),
                    r::commit_sha.eq(&commit_sha),
                    r::committed_at.eq(committed_at),
                ))
                .execute(conn)?;
            append_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::RunUpdated(RunUpdated {
                    changes,
                    invalidated_signoffs: u64::try_from(invalidated_signoffs).unwrap_or(0),
                }),
            )?;
            for item_id in reworked {
                let item = load_item(conn, run_id, &item_id)?;
                let status = item.status()?;
                let back = shipshape_domain::approval::status_after_rework(status);
                if back != status {
                    let change = shipshape_domain::item::ItemChange {
                        status: Some(back),
                        ..shipshape_domain::item::ItemChange::default()
                    }
                    .validated()?;
                    super::items::update_item_locked(conn, run_id, &item_id, None, change, actor)?;
                    // Sending the item back is not work on it: whoever changed the version may
                    // still sign it off.
                    diesel::update(ri::table.find(&item_id))
                        .set(ri::worked_by.eq(&item.worked_by))
                        .execute(conn)?;
                }
            }
            read_run(conn, &self.templates, run_id)
        })
    }

    /// Moves a run (start, advance, complete, abort, finish_rollback, close). With `force`
    /// (break-glass) unmet gates are overridden: the override is logged with every blocker it
    /// skipped, the run is flagged, and a required close item to review it is added.
    pub fn transition(
        &self,
        run_id: &str,
        if_match: Option<&shipshape_domain::precondition::Versions>,
        action: TransitionAction,
        reason: Option<&str>,
        force: bool,
        actor: &Actor,
    ) -> StoreResult<Run> {
        let result = self.transition_once(run_id, if_match, action, reason, force, actor);
        if let Err(StoreError::Transition(TransitionError::Blocked { blockers, .. })) = &result {
            // The refusal is the answer; that the items stood in the way is kept for the
            // checklist analytics, on its own (it changes nothing of the run).
            if let Err(e) = self
                .write(|conn| record_item_blocks(conn, run_id, blockers, BlockKind::Refused, now()))
            {
                tracing::warn!(error = %e, run_id, "could not note the items a refused transition waited for");
            }
        }
        result
    }

    fn transition_once(
        &self,
        run_id: &str,
        if_match: Option<&shipshape_domain::precondition::Versions>,
        action: TransitionAction,
        reason: Option<&str>,
        force: bool,
        actor: &Actor,
    ) -> StoreResult<Run> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            if matches!(action, TransitionAction::Start | TransitionAction::Advance) {
                // A lock or freeze taken at this moment on another instance is either seen
                // here or waits for this move (the order: the run, then its environment).
                let environment: String = r::table
                    .find(run_id)
                    .select(r::environment)
                    .get_result(conn)?;
                crate::lock_named(conn, &format!("environment:{environment}"))?;
            }
            let rows = load_rows(conn, &self.templates, run_id)?;
            let run = &rows.run;
            check_if_match("run", if_match, run.last_seq)?;
            // Only a start can collide with another live run; other actions skip the query.
            let facts = facts(
                run,
                &rows.template,
                &rows.items,
                &rows.decisions,
                &rows.probes,
                Surroundings {
                    other_live_run: rows.other_live_run.clone(),
                    blocking_issues: rows.blocking_issues.clone(),
                    environment_blockers: rows.environment_blockers.clone(),
                },
            )?;
            let (plan, overridden) = if force {
                plan_forced_transition(&facts, action, reason)?
            } else {
                (plan_transition(&facts, action)?, Vec::new())
            };
            if !plan.changes() {
                return assemble(rows);
            }
            // A finished run's numbers in the insight rollups are taken out before a change
            // (a forced close adds an item) and put back after; a run that finishes now is
            // added.
            let was_finished = run.finished_at.is_some();
            if was_finished {
                crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Remove)?;
            }
            let at = now();
            diesel::update(r::table.find(run_id))
                .set((
                    r::status.eq(plan.to.as_str()),
                    r::closed_at.eq(if plan.closes { Some(at) } else { run.closed_at }),
                    r::overridden.eq(run.overridden || !overridden.is_empty()),
                    r::stage_entered_at.eq(if plan.from == plan.to {
                        run.stage_entered_at
                    } else {
                        Some(at)
                    }),
                    r::started_at.eq(run
                        .started_at
                        .or((plan.from == RunStatus::Planned && !plan.to.is_terminal())
                            .then_some(at))),
                    r::finished_at.eq(if plan.to.is_terminal() && plan.from != plan.to {
                        Some(at)
                    } else {
                        run.finished_at
                    }),
                ))
                .execute(conn)
                .map_err(|e| {
                    // A concurrent start of another run of the same product and environment
                    // got there first: the unique index is the last line of the live-run rule.
                    if is_unique_violation(&e) {
                        StoreError::Transition(TransitionError::LiveRunExists("another run".into()))
                    } else {
                        e.into()
                    }
                })?;
            if overridden.is_empty() {
                append_event(
                    conn,
                    run_id,
                    &actor.username,
                    at,
                    EventData::RunTransitioned(RunTransitioned {
                        action,
                        from: plan.from,
                        to: plan.to,
                        closed: plan.closes,
                        reason: reason.map(str::to_owned),
                    }),
                )?;
            } else {
                record_item_blocks(conn, run_id, &overridden, BlockKind::Overridden, at)?;
                let review_id = add_override_review(conn, &rows, at)?;
                append_event(
                    conn,
                    run_id,
                    &actor.username,
                    at,
                    EventData::RunOverridden(RunOverridden {
                        action,
                        from: plan.from,
                        to: plan.to,
                        closed: plan.closes,
                        reason: reason.map(str::to_owned),
                        overridden_blockers: overridden,
                        review_item_id: review_id,
                    }),
                )?;
            }
            if was_finished || plan.to.is_terminal() {
                crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Add)?;
            }
            read_run(conn, &self.templates, run_id)
        })
    }
}
