//! Recording a decision at a decision point.

use diesel::prelude::*;
use shipshape_domain::decision::{CheckedDecision, DecisionError, check_decision};
use shipshape_domain::event::*;
use shipshape_domain::wire::{CreateDecisionRequest, Decision};

use crate::schema::{decisions as d, runs as r};
use crate::{Store, StoreError, StoreResult, new_id, now};

use super::Actor;
use super::events::append_event;
use super::rows::*;

impl Store {
    /// Records a decision; a rollback or abort moves the run in the same transaction.
    pub fn record_decision(
        &self,
        run_id: &str,
        req: CreateDecisionRequest,
        actor: &Actor,
    ) -> StoreResult<Decision> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            record_decision_locked(conn, &self.templates, &run, req, &actor.username, false)
        })
    }
}

/// Records a decision in the caller's transaction, the run's lock taken. `deadline_passed`:
/// the server records it because the point's deadline passed with no decision.
pub(super) fn record_decision_locked(
    conn: &mut crate::AnyConnection,
    templates: &crate::templates::TemplateCache,
    run: &RunRow,
    req: CreateDecisionRequest,
    decided_by: &str,
    deadline_passed: bool,
) -> StoreResult<Decision> {
    let run_id = run.id.as_str();
    let status = run.status()?;
    let template = templates.get(conn, &run.template_id, run.template_version)?;
    let point = template
        .decision_point(&req.point_key)
        .ok_or_else(|| DecisionError::Invalid {
            field: "point_key",
            message: format!(
                "`{}` is not a decision point of this run; its points are: {}",
                req.point_key,
                template
                    .decision_points()
                    .iter()
                    .map(|p| p.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    let CheckedDecision {
        outcome,
        rationale,
        criteria,
        moves_run_to,
        unmet_confirmed,
    } = check_decision(
        status,
        run.closed_at.is_some(),
        point,
        req.outcome,
        &req.rationale,
        req.criteria,
        req.unmet_confirmed,
    )?;
    let at = now();
    let id = new_id();
    let criteria_json =
        serde_json::to_string(&criteria).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if let Some(to) = moves_run_to
        && to != status
    {
        diesel::update(r::table.find(run_id))
            .set((
                r::status.eq(to.as_str()),
                r::stage_entered_at.eq(Some(at)),
                r::finished_at.eq(if to.is_terminal() {
                    Some(at)
                } else {
                    run.finished_at
                }),
                r::rollback_decided_at.eq(run
                    .rollback_decided_at
                    .or((outcome == shipshape_domain::decision::Outcome::Rollback).then_some(at))),
            ))
            .execute(conn)?;
        if to == shipshape_domain::run::RunStatus::RollingBack {
            crate::environments::lock_after_rollback(
                conn,
                run_id,
                &run.environment,
                &format!(
                    "{} {} → {}",
                    run.product, run.release_version, run.environment
                ),
                at,
            )?;
        }
    }
    let seq = append_event(
        conn,
        run_id,
        decided_by,
        at,
        EventData::DecisionRecorded(DecisionRecorded {
            decision_id: id.clone(),
            point_key: point.key.clone(),
            point_title: point.title.clone(),
            outcome,
            rationale: rationale.clone(),
            criteria: criteria.clone(),
            run_status: moves_run_to.map(|to| RunStatusChange { from: status, to }),
            deadline_passed,
            unmet_confirmed,
        }),
    )?;
    let row = DecisionRow {
        id,
        run_id: run_id.to_owned(),
        point_key: point.key.clone(),
        outcome: outcome.as_str().to_owned(),
        rationale,
        criteria: criteria_json,
        decided_by: decided_by.to_owned(),
        decided_at: at,
        seq,
        stage_entered_at: run.stage_entered_at,
        unmet_confirmed,
    };
    diesel::insert_into(d::table)
        .values((
            d::id.eq(&row.id),
            d::run_id.eq(&row.run_id),
            d::point_key.eq(&row.point_key),
            d::outcome.eq(&row.outcome),
            d::rationale.eq(&row.rationale),
            d::criteria.eq(&row.criteria),
            d::decided_by.eq(&row.decided_by),
            d::decided_at.eq(row.decided_at),
            d::seq.eq(row.seq),
            d::stage_entered_at.eq(row.stage_entered_at),
            d::unmet_confirmed.eq(row.unmet_confirmed),
        ))
        .execute(conn)?;
    if moves_run_to.is_some_and(|to| to.is_terminal() && to != status) {
        // An abort finishes the run: its numbers join the insight rollups.
        crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Add)?;
    }
    row.to_wire(false)
}
