//! Template proposals: a run's lessons as an edit of its template, accepted by an
//! administrator as the template's next version (which names the run and proposal it came
//! from) or declined with a reason. Both are recorded in the run's log and the audit log.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;
use shipshape_domain::event::{EventData, ProposalReviewed, TemplateProposed};
use shipshape_domain::markdown;
use shipshape_domain::proposal::{
    DiffLine, ProposalStatus, ReviewProposalRequest, TemplateProposal, check_proposal, check_review,
};
use shipshape_domain::records::RecordError;
use shipshape_domain::template::Template;
use shipshape_domain::wire::AuditAction;

use crate::audit::{Auditor, NewAuditEntry, append_audit};
use crate::runs::{Actor, append_run_event, lock_run_row, run_facts_for_proposal};
use crate::schema::{runs as r, template_proposals as tp, templates as t};
use crate::templates::{insert_version_from, template_head, version_row};
use crate::{AnyConnection, Store, StoreError, StoreResult, new_id, now, utc};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tp)]
struct ProposalRow {
    id: String,
    template_id: String,
    base_version: i32,
    run_id: String,
    summary: String,
    markdown: String,
    diff: String,
    status: String,
    proposed_by: String,
    proposed_at: NaiveDateTime,
    reviewed_by: Option<String>,
    reviewed_at: Option<NaiveDateTime>,
    review_reason: Option<String>,
    accepted_version: Option<i32>,
}

impl ProposalRow {
    fn status(&self) -> StoreResult<ProposalStatus> {
        ProposalStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("proposal status `{}`", self.status)))
    }

    fn to_wire(&self, template_name: String, run_label: String) -> StoreResult<TemplateProposal> {
        let diff: Vec<DiffLine> = serde_json::from_str(&self.diff)
            .map_err(|e| StoreError::Corrupt(format!("proposal {} diff: {e}", self.id)))?;
        Ok(TemplateProposal {
            id: self.id.clone(),
            template_id: self.template_id.clone(),
            template_name,
            base_version: self.base_version,
            run_id: self.run_id.clone(),
            run_label,
            summary: self.summary.clone(),
            markdown: self.markdown.clone(),
            diff,
            status: self.status()?,
            proposed_by: self.proposed_by.clone(),
            proposed_at: utc(self.proposed_at),
            reviewed_by: self.reviewed_by.clone(),
            reviewed_at: self.reviewed_at.map(utc),
            review_reason: self.review_reason.clone(),
            accepted_version: self.accepted_version,
        })
    }
}

/// Filters for the proposal list.
#[derive(Debug, Clone, Default)]
pub struct ProposalFilter {
    /// Only proposals in this status.
    pub status: Option<ProposalStatus>,
    /// Only proposals from this run.
    pub run_id: Option<String>,
    /// Only proposals for this template.
    pub template_id: Option<String>,
}

type Labelled = (ProposalRow, String, (String, String, String));

fn labelled(rows: Vec<Labelled>) -> StoreResult<Vec<TemplateProposal>> {
    rows.into_iter()
        .map(|(row, name, (product, release, environment))| {
            row.to_wire(name, format!("{product} {release} → {environment}"))
        })
        .collect()
}

/// Proposals as listed, newest first (at most 200).
pub(crate) fn load_proposals(
    conn: &mut AnyConnection,
    filter: &ProposalFilter,
) -> StoreResult<Vec<TemplateProposal>> {
    let mut q = tp::table
        .inner_join(t::table.on(t::id.eq(tp::template_id)))
        .inner_join(r::table.on(r::id.eq(tp::run_id)))
        .select((
            ProposalRow::as_select(),
            t::name,
            (r::product, r::release_version, r::environment),
        ))
        .into_boxed();
    if let Some(s) = filter.status {
        q = q.filter(tp::status.eq(s.as_str()));
    }
    if let Some(run) = &filter.run_id {
        q = q.filter(tp::run_id.eq(run.clone()));
    }
    if let Some(template) = &filter.template_id {
        q = q.filter(tp::template_id.eq(template.clone()));
    }
    labelled(
        q.order((tp::proposed_at.desc(), tp::id.desc()))
            .limit(200)
            .load(conn)?,
    )
}

fn load_proposal(conn: &mut AnyConnection, id: &str) -> StoreResult<TemplateProposal> {
    let rows: Vec<Labelled> = tp::table
        .inner_join(t::table.on(t::id.eq(tp::template_id)))
        .inner_join(r::table.on(r::id.eq(tp::run_id)))
        .filter(tp::id.eq(id))
        .select((
            ProposalRow::as_select(),
            t::name,
            (r::product, r::release_version, r::environment),
        ))
        .load(conn)?;
    labelled(rows)?
        .pop()
        .ok_or(StoreError::NotFound("proposal"))
}

fn json_text<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Proposes a change to a finished run's template: the whole template, edited, written on
    /// `base_version`, which must be its latest (else `PreconditionFailed` with the current
    /// one).
    pub fn create_proposal(
        &self,
        run_id: &str,
        base_version: i32,
        summary: &str,
        proposed: &Template,
        actor: &Actor,
    ) -> StoreResult<TemplateProposal> {
        self.write(|conn| {
            lock_run_row(conn, run_id)?;
            let (template_id, finished) = run_facts_for_proposal(conn, run_id)?;
            if !finished {
                return Err(RecordError::Locked(
                    "a template change is proposed from a finished run (its retrospective)",
                )
                .into());
            }
            crate::lock_named(conn, &format!("template:{template_id}"))?;
            let (_, latest) = template_head(conn, &template_id)?;
            if base_version != latest {
                return Err(StoreError::PreconditionFailed {
                    what: "template",
                    current: i64::from(latest),
                });
            }
            let base = version_row(conn, &template_id, latest)?.template()?;
            let normalised = markdown::render(proposed);
            let (summary, diff) = check_proposal(summary, &markdown::render(&base), &normalised)?;
            let (id, at) = (new_id(), now());
            diesel::insert_into(tp::table)
                .values((
                    tp::id.eq(&id),
                    tp::template_id.eq(&template_id),
                    tp::base_version.eq(latest),
                    tp::run_id.eq(run_id),
                    tp::summary.eq(summary.as_str()),
                    tp::markdown.eq(&normalised),
                    tp::diff.eq(json_text(&diff)?),
                    tp::status.eq(ProposalStatus::Open.as_str()),
                    tp::proposed_by.eq(&actor.username),
                    tp::proposed_at.eq(at),
                ))
                .execute(conn)?;
            append_run_event(
                conn,
                run_id,
                &actor.username,
                at,
                EventData::TemplateProposed(TemplateProposed {
                    proposal_id: id.clone(),
                    template_id: template_id.clone(),
                    base_version: latest,
                    summary: summary.to_string(),
                }),
            )?;
            load_proposal(conn, &id)
        })
    }

    /// Proposals, newest first.
    pub fn proposals(&self, filter: &ProposalFilter) -> StoreResult<Vec<TemplateProposal>> {
        self.read(|conn| load_proposals(conn, filter))
    }

    /// One proposal.
    pub fn proposal(&self, id: &str) -> StoreResult<TemplateProposal> {
        self.read(|conn| load_proposal(conn, id))
    }

    /// Accepts a proposal as its template's next version (its base must still be the
    /// latest, else `PreconditionFailed` with the current version), or declines it.
    pub fn review_proposal(
        &self,
        id: &str,
        req: &ReviewProposalRequest,
        actor: &Actor,
        by: &Auditor,
    ) -> StoreResult<TemplateProposal> {
        self.write(|conn| {
            let run_id: String = tp::table
                .find(id)
                .select(tp::run_id)
                .get_result(conn)
                .optional()?
                .ok_or(StoreError::NotFound("proposal"))?;
            lock_run_row(conn, &run_id)?;
            let row: ProposalRow = tp::table
                .find(id)
                .select(ProposalRow::as_select())
                .get_result(conn)?;
            let reason = check_review(row.status()?, req)?;
            crate::lock_named(conn, &format!("template:{}", row.template_id))?;
            let at = now();
            let accepted_version = if req.status == ProposalStatus::Accepted {
                let (_, latest) = template_head(conn, &row.template_id)?;
                if latest != row.base_version {
                    return Err(StoreError::PreconditionFailed {
                        what: "template",
                        current: i64::from(latest),
                    });
                }
                let template = markdown::parse(&row.markdown)?;
                let next = latest + 1;
                insert_version_from(
                    conn,
                    &row.template_id,
                    next,
                    &template,
                    &actor.username,
                    Some((&row.run_id, &row.id)),
                )?;
                diesel::update(t::table.find(&row.template_id))
                    .set((t::latest_version.eq(next), t::name.eq(template.name())))
                    .execute(conn)?;
                append_audit(
                    conn,
                    NewAuditEntry {
                        by,
                        action: AuditAction::TemplateVersionCreated,
                        subject: &row.template_id,
                        details: json!({
                            "template_id": row.template_id,
                            "name": template.name(),
                            "version": {"from": latest, "to": next},
                            "proposal_id": row.id,
                            "run_id": row.run_id,
                        }),
                    },
                )?;
                Some(next)
            } else {
                append_audit(
                    conn,
                    NewAuditEntry {
                        by,
                        action: AuditAction::TemplateProposalDeclined,
                        subject: &row.template_id,
                        details: json!({
                            "proposal_id": row.id,
                            "run_id": row.run_id,
                            "reason": reason,
                        }),
                    },
                )?;
                None
            };
            diesel::update(tp::table.find(id))
                .set((
                    tp::status.eq(req.status.as_str()),
                    tp::reviewed_by.eq(&actor.username),
                    tp::reviewed_at.eq(at),
                    tp::review_reason.eq(&reason),
                    tp::accepted_version.eq(accepted_version),
                ))
                .execute(conn)?;
            append_run_event(
                conn,
                &row.run_id,
                &actor.username,
                at,
                EventData::ProposalReviewed(ProposalReviewed {
                    proposal_id: row.id.clone(),
                    template_id: row.template_id.clone(),
                    status: req.status,
                    reason,
                    accepted_version,
                }),
            )?;
            load_proposal(conn, id)
        })
    }
}
