//! Runs, their items, decisions and event log.
//!
//! Every change first takes the run's row lock, then reads the state it needs inside its
//! transaction, asks the domain whether the change is allowed, writes it, and appends exactly
//! one event to the run's log — all in the same transaction. The lock serialises changes to
//! one run on PostgreSQL, where writers are concurrent; reads of a whole run see one
//! consistent snapshot. Reading a whole run is a fixed handful of queries whatever its size.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use shipshape_domain::Role;
use shipshape_domain::access::Permission;
use shipshape_domain::approval::{
    SignoffContext, SignoffFacts, Verdict, Work, add_worker, approval_state, check_signoff,
    is_material_change, missing_approvals, status_after_rework,
};
use shipshape_domain::decision::{
    CheckedDecision, CriterionAssessment, DecisionError, Outcome, check_decision,
};
use shipshape_domain::item::{ItemChange, ItemContext, ItemStatus, check_item_change};
use shipshape_domain::run::{
    ItemFacts, OVERRIDE_REVIEW_TITLE, PointFacts, RunFacts, RunStatus, TransitionAction,
    TransitionError, available_transitions, check_label, check_run_editable, check_schedule,
    item_applies, item_editable, plan_forced_transition, plan_transition, progress,
};
use shipshape_domain::template::{Applicability, Gate, ItemKind, ItemSpec, Template};
use shipshape_domain::wire::{
    CreateDecisionRequest, Decision, Event, EventPage, EventType, ItemApproval, Pending,
    PendingDecision, PendingItem, Progress, Run, RunDecisionPoint, RunItem, RunMember, RunPage,
    RunPart, RunSection, RunSummary, Signoff, UpdateRunRequest,
};

use crate::schema::{
    decisions as d, run_events as ev, run_items as ri, run_members as m, runs as r, signoffs as so,
    users as u,
};
use crate::templates::{TemplateCache, load_version};
use crate::{AnyConnection, Store, StoreError, StoreResult, is_unique_violation, new_id, now, utc};

/// Who is making a change.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id.
    pub id: String,
    /// User name (recorded in the log).
    pub username: String,
    /// Role.
    pub role: Role,
}

/// A run to create (fields already validated by the domain).
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Template id.
    pub template_id: String,
    /// Template version; latest when `None`.
    pub template_version: Option<i32>,
    /// Product.
    pub product: String,
    /// Release version.
    pub release_version: String,
    /// Environment.
    pub environment: String,
    /// Window start.
    pub window_start: Option<DateTime<Utc>>,
    /// Window end.
    pub window_end: Option<DateTime<Utc>>,
    /// Expected downtime, minutes.
    pub expected_downtime_minutes: Option<i32>,
}

/// Filters and paging for the run list.
#[derive(Debug, Clone, Default)]
pub struct ListRunsFilter {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs in this environment.
    pub environment: Option<String>,
    /// Only runs of this product.
    pub product: Option<String>,
    /// Continue after this cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = r)]
struct RunRow {
    id: String,
    template_id: String,
    template_version: i32,
    template_name: String,
    product: String,
    release_version: String,
    environment: String,
    status: String,
    window_start: Option<NaiveDateTime>,
    window_end: Option<NaiveDateTime>,
    expected_downtime_minutes: Option<i32>,
    created_by: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    closed_at: Option<NaiveDateTime>,
    last_seq: i64,
    overridden: bool,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ri)]
struct ItemRow {
    id: String,
    run_id: String,
    position: i32,
    part_index: i32,
    section_index: i32,
    reference: String,
    title: String,
    guidance: Option<String>,
    gate: String,
    applies: String,
    required: bool,
    kind: String,
    role: Option<String>,
    status: String,
    assignee: Option<String>,
    note: Option<String>,
    evidence_url: Option<String>,
    skip_reason: Option<String>,
    version: i64,
    updated_by: Option<String>,
    updated_at: Option<NaiveDateTime>,
    approvers: Option<String>,
    worked_by: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = so)]
struct SignoffRow {
    id: String,
    item_id: String,
    user_id: String,
    username: String,
    role: String,
    verdict: String,
    comment: Option<String>,
    signed_at: NaiveDateTime,
    invalidated_at: Option<NaiveDateTime>,
}

impl SignoffRow {
    fn role(&self) -> StoreResult<Role> {
        Role::parse(&self.role).ok_or_else(|| corrupt("role", &self.role))
    }
    fn verdict(&self) -> StoreResult<Verdict> {
        Verdict::parse(&self.verdict).ok_or_else(|| corrupt("verdict", &self.verdict))
    }
    fn facts(&self) -> StoreResult<SignoffFacts> {
        Ok(SignoffFacts {
            user_id: self.user_id.clone(),
            role: self.role()?,
            verdict: self.verdict()?,
        })
    }
    fn to_wire(&self) -> StoreResult<Signoff> {
        Ok(Signoff {
            id: self.id.clone(),
            item_id: self.item_id.clone(),
            user_id: self.user_id.clone(),
            username: self.username.clone(),
            role: self.role()?,
            verdict: self.verdict()?,
            comment: self.comment.clone(),
            signed_at: utc(self.signed_at),
            invalidated_at: self.invalidated_at.map(utc),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = d)]
struct DecisionRow {
    id: String,
    run_id: String,
    point_key: String,
    outcome: String,
    rationale: String,
    criteria: String,
    decided_by: String,
    decided_at: NaiveDateTime,
    seq: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ev)]
struct EventRow {
    run_id: String,
    seq: i64,
    event_type: String,
    actor: String,
    at: NaiveDateTime,
    payload: String,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} `{value}`"))
}

impl RunRow {
    fn status(&self) -> StoreResult<RunStatus> {
        RunStatus::parse(&self.status).ok_or_else(|| corrupt("run status", &self.status))
    }

    fn summary(&self, progress: Progress) -> StoreResult<RunSummary> {
        Ok(RunSummary {
            id: self.id.clone(),
            template_id: self.template_id.clone(),
            template_version: self.template_version,
            template_name: self.template_name.clone(),
            product: self.product.clone(),
            release_version: self.release_version.clone(),
            environment: self.environment.clone(),
            status: self.status()?,
            closed_at: self.closed_at.map(utc),
            window_start: self.window_start.map(utc),
            window_end: self.window_end.map(utc),
            expected_downtime_minutes: self.expected_downtime_minutes,
            progress,
            overridden: self.overridden,
            created_by: self.created_by.clone(),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            version: self.last_seq,
        })
    }
}

impl ItemRow {
    fn status(&self) -> StoreResult<ItemStatus> {
        ItemStatus::parse(&self.status).ok_or_else(|| corrupt("item status", &self.status))
    }
    fn gate(&self) -> StoreResult<Gate> {
        Gate::parse(&self.gate).ok_or_else(|| corrupt("gate", &self.gate))
    }
    fn applies(&self) -> StoreResult<Applicability> {
        Applicability::parse(&self.applies).ok_or_else(|| corrupt("applies", &self.applies))
    }
    fn kind(&self) -> StoreResult<ItemKind> {
        ItemKind::parse(&self.kind).ok_or_else(|| corrupt("kind", &self.kind))
    }

    fn facts(&self) -> StoreResult<ItemFacts> {
        Ok(ItemFacts {
            id: self.id.clone(),
            reference: self.reference.clone(),
            title: self.title.clone(),
            gate: self.gate()?,
            applies: self.applies()?,
            required: self.required,
            status: self.status()?,
        })
    }

    /// The approval policy (empty for a manual item).
    fn policy(&self) -> StoreResult<Vec<Role>> {
        match &self.approvers {
            None => Ok(Vec::new()),
            Some(list) => list
                .split(',')
                .map(|r| Role::parse(r).ok_or_else(|| corrupt("approver role", r)))
                .collect(),
        }
    }

    /// Who did the work: the assignee and everyone who changed it materially.
    fn workers(&self) -> Vec<&str> {
        self.assignee
            .iter()
            .map(String::as_str)
            .chain(self.worked_by.iter().flat_map(|w| w.split(',')))
            .collect()
    }

    /// `signoffs`: the valid sign-offs of this item.
    fn to_wire(&self, run_status: RunStatus, signoffs: &[&SignoffRow]) -> StoreResult<RunItem> {
        let applies = self.applies()?;
        let policy = self.policy()?;
        let approval = if policy.is_empty() {
            None
        } else {
            let facts = signoffs
                .iter()
                .map(|s| s.facts())
                .collect::<StoreResult<Vec<_>>>()?;
            Some(ItemApproval {
                state: approval_state(&policy, &facts),
                missing: missing_approvals(&policy, &facts),
                approvers: policy,
                signoffs: signoffs
                    .iter()
                    .map(|s| s.to_wire())
                    .collect::<StoreResult<_>>()?,
            })
        };
        Ok(RunItem {
            id: self.id.clone(),
            reference: self.reference.clone(),
            title: self.title.clone(),
            guidance: self.guidance.clone(),
            gate: self.gate()?,
            applies,
            applicable: item_applies(applies, run_status),
            required: self.required,
            kind: self.kind()?,
            role: match &self.role {
                Some(s) => Some(Role::parse(s).ok_or_else(|| corrupt("role", s))?),
                None => None,
            },
            status: self.status()?,
            assignee: self.assignee.clone(),
            note: self.note.clone(),
            evidence_url: self.evidence_url.clone(),
            skip_reason: self.skip_reason.clone(),
            version: self.version,
            updated_by: self.updated_by.clone(),
            updated_at: self.updated_at.map(utc),
            approval,
        })
    }
}

impl DecisionRow {
    fn outcome(&self) -> StoreResult<Outcome> {
        Outcome::parse(&self.outcome).ok_or_else(|| corrupt("outcome", &self.outcome))
    }

    fn to_wire(&self, superseded: bool) -> StoreResult<Decision> {
        let criteria: Vec<CriterionAssessment> = serde_json::from_str(&self.criteria)
            .map_err(|e| StoreError::Corrupt(format!("decision {} criteria: {e}", self.id)))?;
        Ok(Decision {
            id: self.id.clone(),
            point_key: self.point_key.clone(),
            outcome: self.outcome()?,
            rationale: self.rationale.clone(),
            criteria,
            decided_by: self.decided_by.clone(),
            decided_at: utc(self.decided_at),
            superseded,
        })
    }
}

impl EventRow {
    fn to_wire(&self) -> StoreResult<Event> {
        Ok(Event {
            seq: self.seq,
            run_id: self.run_id.clone(),
            event_type: EventType::parse(&self.event_type)
                .ok_or_else(|| corrupt("event type", &self.event_type))?,
            actor: self.actor.clone(),
            at: utc(self.at),
            payload: serde_json::from_str(&self.payload)
                .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?,
        })
    }
}

fn load_run(conn: &mut AnyConnection, run_id: &str) -> StoreResult<RunRow> {
    r::table
        .find(run_id)
        .select(RunRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("run"))
}

/// Takes the run's row lock before anything of the run is read, so that every change to a
/// run judges the state the previous change left (on PostgreSQL, where writers run
/// concurrently; SQLite has one writer anyway). Fails with `NotFound` for an unknown run.
fn lock_run(conn: &mut AnyConnection, run_id: &str) -> StoreResult<()> {
    let locked = diesel::update(r::table.find(run_id))
        .set(r::last_seq.eq(r::last_seq))
        .execute(conn)?;
    if locked == 0 {
        return Err(StoreError::NotFound("run"));
    }
    Ok(())
}

fn load_items(conn: &mut AnyConnection, run_id: &str) -> StoreResult<Vec<ItemRow>> {
    Ok(ri::table
        .filter(ri::run_id.eq(run_id))
        .order(ri::position.asc())
        .select(ItemRow::as_select())
        .load(conn)?)
}

/// The valid (not invalidated) sign-offs of a run, or of one item. (Two fixed queries rather
/// than one boxed one: diesel caches the prepared statements of fixed queries only.)
fn load_signoffs(
    conn: &mut AnyConnection,
    run_id: &str,
    item_id: Option<&str>,
) -> StoreResult<Vec<SignoffRow>> {
    let valid = so::run_id.eq(run_id).and(so::invalidated_at.is_null());
    let order = (so::signed_at.asc(), so::id.asc());
    Ok(match item_id {
        Some(item) => so::table
            .filter(valid.and(so::item_id.eq(item)))
            .order(order)
            .select(SignoffRow::as_select())
            .load(conn)?,
        None => so::table
            .filter(valid)
            .order(order)
            .select(SignoffRow::as_select())
            .load(conn)?,
    })
}

fn load_members(conn: &mut AnyConnection, run_id: &str) -> StoreResult<Vec<RunMember>> {
    let rows: Vec<(String, String, String, String, String, NaiveDateTime)> = m::table
        .inner_join(u::table)
        .filter(m::run_id.eq(run_id))
        .order((m::added_at.asc(), u::username.asc()))
        .select((
            m::user_id,
            u::username,
            u::role,
            m::run_role,
            m::added_by,
            m::added_at,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(user_id, username, role, run_role, added_by, added_at)| {
            Ok(RunMember {
                role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
                user_id,
                username,
                run_role,
                added_by,
                added_at: utc(added_at),
            })
        })
        .collect()
}

fn item_signoffs<'a>(signoffs: &'a [SignoffRow], item_id: &str) -> Vec<&'a SignoffRow> {
    signoffs.iter().filter(|s| s.item_id == item_id).collect()
}

fn load_item(conn: &mut AnyConnection, run_id: &str, item_id: &str) -> StoreResult<ItemRow> {
    ri::table
        .filter(ri::id.eq(item_id).and(ri::run_id.eq(run_id)))
        .select(ItemRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("item"))
}

fn load_decisions(conn: &mut AnyConnection, run_id: &str) -> StoreResult<Vec<DecisionRow>> {
    Ok(d::table
        .filter(d::run_id.eq(run_id))
        .order(d::seq.asc())
        .select(DecisionRow::as_select())
        .load(conn)?)
}

/// Appends one event to a run's log, numbering it after the last, and touches the run.
fn append_event(
    conn: &mut AnyConnection,
    run_id: &str,
    event_type: EventType,
    actor: &str,
    at: NaiveDateTime,
    payload: &Value,
) -> StoreResult<i64> {
    diesel::update(r::table.find(run_id))
        .set((r::last_seq.eq(r::last_seq + 1), r::updated_at.eq(at)))
        .execute(conn)?;
    let seq: i64 = r::table.find(run_id).select(r::last_seq).first(conn)?;
    diesel::insert_into(ev::table)
        .values((
            ev::run_id.eq(run_id),
            ev::seq.eq(seq),
            ev::event_type.eq(event_type.as_str()),
            ev::actor.eq(actor),
            ev::at.eq(at),
            ev::payload.eq(payload.to_string()),
        ))
        .execute(conn)?;
    Ok(seq)
}

/// The latest outcome at each decision point.
fn latest_outcomes(decisions: &[DecisionRow]) -> StoreResult<HashMap<&str, Outcome>> {
    let mut latest = HashMap::new();
    for row in decisions {
        latest.insert(row.point_key.as_str(), row.outcome()?);
    }
    Ok(latest)
}

fn facts(
    run: &RunRow,
    template: &Template,
    items: &[ItemRow],
    decisions: &[DecisionRow],
    other_live_run: Option<String>,
) -> StoreResult<RunFacts> {
    let latest = latest_outcomes(decisions)?;
    Ok(RunFacts {
        status: run.status()?,
        closed: run.closed_at.is_some(),
        items: items
            .iter()
            .map(ItemRow::facts)
            .collect::<StoreResult<_>>()?,
        points: PointFacts::of_template(template, |key| latest.get(key).copied()),
        other_live_run,
    })
}

fn check_if_match(what: &'static str, if_match: Option<i64>, current: i64) -> StoreResult<()> {
    match if_match {
        Some(v) if v != current => Err(StoreError::PreconditionFailed { what, current }),
        _ => Ok(()),
    }
}

fn naive(t: Option<DateTime<Utc>>) -> Option<NaiveDateTime> {
    t.map(|t| t.naive_utc())
}

fn item_progress(items: &[&ItemRow], status: RunStatus) -> StoreResult<Progress> {
    let pairs = items
        .iter()
        .map(|i| Ok((i.status()?, i.applies()?)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(progress(pairs, status))
}

/// The rows of one run that make up its whole view.
struct RunRows {
    run: RunRow,
    template: Arc<Template>,
    items: Vec<ItemRow>,
    decisions: Vec<DecisionRow>,
    signoffs: Vec<SignoffRow>,
    members: Vec<RunMember>,
    /// For a planned run (the only kind a start applies to): a live run of the same product
    /// and environment, which would refuse the start.
    other_live_run: Option<String>,
}

/// Another live run of the run's product and environment, if any.
fn find_other_live_run(conn: &mut AnyConnection, run: &RunRow) -> StoreResult<Option<String>> {
    Ok(r::table
        .filter(r::product.eq(&run.product))
        .filter(r::environment.eq(&run.environment))
        .filter(r::id.ne(&run.id))
        .filter(
            r::status.eq_any(
                RunStatus::ALL
                    .into_iter()
                    .filter(|s| s.is_live())
                    .map(RunStatus::as_str)
                    .collect::<Vec<_>>(),
            ),
        )
        .select(r::id)
        .first(conn)
        .optional()?)
}

fn load_rows(
    conn: &mut AnyConnection,
    templates: &TemplateCache,
    run_id: &str,
) -> StoreResult<RunRows> {
    let run = load_run(conn, run_id)?;
    let other_live_run = if run.status()? == RunStatus::Planned {
        find_other_live_run(conn, &run)?
    } else {
        None
    };
    Ok(RunRows {
        other_live_run,
        template: templates.get(conn, &run.template_id, run.template_version)?,
        items: load_items(conn, run_id)?,
        decisions: load_decisions(conn, run_id)?,
        signoffs: load_signoffs(conn, run_id, None)?,
        members: load_members(conn, run_id)?,
        run,
    })
}

/// Where override review items are shown: after the template's own parts.
const OVERRIDE_PART_TITLE: &str = "Emergency overrides";
const OVERRIDE_SECTION_TITLE: &str = "Override reviews";

/// Assembles the whole run from its rows.
fn assemble(rows: RunRows) -> StoreResult<Run> {
    let RunRows {
        run,
        template,
        items,
        decisions,
        signoffs,
        members,
        other_live_run,
    } = rows;
    let (run, template, items, decisions) = (&run, &template, &items[..], &decisions[..]);
    let status = run.status()?;
    let all: Vec<&ItemRow> = items.iter().collect();
    let summary = run.summary(item_progress(&all, status)?)?;
    let mut layout: Vec<(String, Vec<String>)> = template
        .parts()
        .iter()
        .map(|p| {
            (
                p.title.clone(),
                p.sections.iter().map(|s| s.title.clone()).collect(),
            )
        })
        .collect();
    if items
        .iter()
        .any(|i| usize::try_from(i.part_index).is_ok_and(|p| p >= template.parts().len()))
    {
        layout.push((
            OVERRIDE_PART_TITLE.to_owned(),
            vec![OVERRIDE_SECTION_TITLE.to_owned()],
        ));
    }
    let mut parts = Vec::with_capacity(layout.len());
    for (pi, (part_title, section_titles)) in layout.iter().enumerate() {
        let in_part: Vec<&ItemRow> = items
            .iter()
            .filter(|i| usize::try_from(i.part_index).ok() == Some(pi))
            .collect();
        let mut sections = Vec::with_capacity(section_titles.len());
        for (si, section_title) in section_titles.iter().enumerate() {
            sections.push(RunSection {
                title: section_title.clone(),
                items: in_part
                    .iter()
                    .filter(|i| usize::try_from(i.section_index).ok() == Some(si))
                    .map(|i| i.to_wire(status, &item_signoffs(&signoffs, &i.id)))
                    .collect::<StoreResult<_>>()?,
            });
        }
        parts.push(RunPart {
            title: part_title.clone(),
            progress: item_progress(&in_part, status)?,
            sections,
        });
    }
    let latest = latest_outcomes(decisions)?;
    let decision_points = template
        .decision_points()
        .iter()
        .map(|p| RunDecisionPoint {
            key: p.key.clone(),
            title: p.title.clone(),
            stage: p.stage,
            criteria: p.criteria.clone(),
            latest_outcome: latest.get(p.key.as_str()).copied(),
        })
        .collect();
    let wire_decisions = decisions_to_wire(decisions)?;
    let transitions =
        available_transitions(&facts(run, template, items, decisions, other_live_run)?);
    Ok(Run {
        summary,
        parts,
        decision_points,
        decisions: wire_decisions,
        transitions,
        members,
    })
}

fn decisions_to_wire(decisions: &[DecisionRow]) -> StoreResult<Vec<Decision>> {
    decisions
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let superseded = decisions[i + 1..]
                .iter()
                .any(|later| later.point_key == row.point_key);
            row.to_wire(superseded)
        })
        .collect()
}

fn read_run(conn: &mut AnyConnection, templates: &TemplateCache, run_id: &str) -> StoreResult<Run> {
    assemble(load_rows(conn, templates, run_id)?)
}

/// An approval policy as stored: comma-separated roles, `None` for a manual item.
pub(crate) fn approvers_column(item: &ItemSpec) -> Option<String> {
    let policy = item.approval_policy();
    (!policy.is_empty()).then(|| {
        policy
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Adds the required close item that makes someone review a forced transition.
fn add_override_review(
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

fn encode_cursor(at: NaiveDateTime, id: &str) -> String {
    format!("{}_{id}", at.and_utc().timestamp_micros())
}

fn decode_cursor(cursor: &str) -> StoreResult<(NaiveDateTime, String)> {
    let bad = || StoreError::Invalid {
        field: "cursor",
        message: "not a cursor this API returned".into(),
    };
    let (micros, id) = cursor.split_once('_').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    // A cursor names a run's creation time: within the years both backends store (PostgreSQL
    // refuses timestamps outside 4713 BC to 294276 AD, SQLite compares them as text).
    if !(1..=9999).contains(&chrono::Datelike::year(&at)) {
        return Err(bad());
    }
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(bad());
    }
    Ok((at.naive_utc(), id.to_owned()))
}

impl Store {
    /// Creates a run of a template version, copying its items.
    pub fn create_run(&self, new: NewRun, actor: &Actor) -> StoreResult<Run> {
        let run_id = new_id();
        self.write(|conn| {
            let (_, version) = load_version(conn, &new.template_id, new.template_version)?;
            let template = version.template()?;
            let at = now();
            diesel::insert_into(r::table)
                .values((
                    r::id.eq(&run_id),
                    r::template_id.eq(&version.template_id),
                    r::template_version.eq(version.version),
                    r::template_name.eq(&version.name),
                    r::product.eq(&new.product),
                    r::release_version.eq(&new.release_version),
                    r::environment.eq(&new.environment),
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
                    ))
                    .execute(conn)?;
            }
            append_event(
                conn,
                &run_id,
                EventType::RunCreated,
                &actor.username,
                at,
                &json!({
                    "template_id": version.template_id,
                    "template_version": version.version,
                    "product": new.product,
                    "release_version": new.release_version,
                    "environment": new.environment,
                }),
            )?;
            read_run(conn, &self.templates, &run_id)
        })
    }

    /// The whole run.
    pub fn run(&self, run_id: &str) -> StoreResult<Run> {
        self.read(|conn| read_run(conn, &self.templates, run_id))
    }

    /// A page of runs, newest first.
    pub fn list_runs(&self, filter: &ListRunsFilter) -> StoreResult<RunPage> {
        let after = filter.cursor.as_deref().map(decode_cursor).transpose()?;
        self.read(|conn| {
            let mut q = r::table.select(RunRow::as_select()).into_boxed();
            if let Some(s) = filter.status {
                q = q.filter(r::status.eq(s.as_str()));
            }
            if let Some(e) = &filter.environment {
                q = q.filter(r::environment.eq(e.clone()));
            }
            if let Some(p) = &filter.product {
                q = q.filter(r::product.eq(p.clone()));
            }
            if let Some((at, id)) = &after {
                q = q.filter(
                    r::created_at
                        .lt(*at)
                        .or(r::created_at.eq(*at).and(r::id.lt(id.clone()))),
                );
            }
            let rows: Vec<RunRow> = q
                .order((r::created_at.desc(), r::id.desc()))
                .limit(filter.limit + 1)
                .load(conn)?;
            let has_more = rows.len() as i64 > filter.limit;
            let rows: Vec<RunRow> = rows
                .into_iter()
                .take(usize::try_from(filter.limit).unwrap_or(0))
                .collect();
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            let counts: Vec<(String, String, String, i64)> = ri::table
                .filter(ri::run_id.eq_any(&ids))
                .group_by((ri::run_id, ri::status, ri::applies))
                .select((
                    ri::run_id,
                    ri::status,
                    ri::applies,
                    diesel::dsl::count_star(),
                ))
                .load(conn)?;
            let mut items = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut pairs = Vec::new();
                for (_, s, a, n) in counts.iter().filter(|c| c.0 == row.id) {
                    let s = ItemStatus::parse(s).ok_or_else(|| corrupt("item status", s))?;
                    let a = Applicability::parse(a).ok_or_else(|| corrupt("applies", a))?;
                    pairs.extend(std::iter::repeat_n(
                        (s, a),
                        usize::try_from(*n).unwrap_or(0),
                    ));
                }
                items.push(row.summary(progress(pairs, row.status()?))?);
            }
            let next_cursor = match (has_more, rows.last()) {
                (true, Some(last)) => Some(encode_cursor(last.created_at, &last.id)),
                _ => None,
            };
            Ok(RunPage { items, next_cursor })
        })
    }

    /// Changes a run's schedule fields.
    pub fn update_run(
        &self,
        run_id: &str,
        if_match: Option<i64>,
        patch: &UpdateRunRequest,
        actor: &Actor,
    ) -> StoreResult<Run> {
        // What the patch says on its own is checked before anything is compared with the
        // stored run (its version, its other fields).
        if patch.release_version.is_none()
            && patch.window_start.is_none()
            && patch.window_end.is_none()
            && patch.expected_downtime_minutes.is_none()
        {
            return Err(StoreError::Invalid {
                field: "release_version",
                message: "nothing to change: give at least one of release_version, \
                          window_start, window_end, expected_downtime_minutes"
                    .into(),
            });
        }
        if let Some(v) = &patch.release_version {
            check_label("release_version", v)?;
        }
        check_schedule(
            patch.window_start.flatten(),
            patch.window_end.flatten(),
            patch.expected_downtime_minutes.flatten(),
        )?;
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
                Some(v) => check_label("release_version", v)?,
                None => run.release_version.clone(),
            };
            let downtime = match patch.expected_downtime_minutes {
                Some(v) => v,
                None => run.expected_downtime_minutes,
            };
            check_schedule(start.map(utc), end.map(utc), downtime)?;
            let mut changes = serde_json::Map::new();
            if release != run.release_version {
                changes.insert(
                    "release_version".into(),
                    json!({"from": run.release_version, "to": release}),
                );
            }
            if start != run.window_start {
                changes.insert(
                    "window_start".into(),
                    json!({"from": run.window_start.map(utc), "to": start.map(utc)}),
                );
            }
            if end != run.window_end {
                changes.insert(
                    "window_end".into(),
                    json!({"from": run.window_end.map(utc), "to": end.map(utc)}),
                );
            }
            if downtime != run.expected_downtime_minutes {
                changes.insert(
                    "expected_downtime_minutes".into(),
                    json!({"from": run.expected_downtime_minutes, "to": downtime}),
                );
            }
            if changes.is_empty() {
                return read_run(conn, &self.templates, run_id);
            }
            diesel::update(r::table.find(run_id))
                .set((
                    r::release_version.eq(&release),
                    r::window_start.eq(start),
                    r::window_end.eq(end),
                    r::expected_downtime_minutes.eq(downtime),
                ))
                .execute(conn)?;
            append_event(
                conn,
                run_id,
                EventType::RunUpdated,
                &actor.username,
                now(),
                &json!({ "changes": changes }),
            )?;
            read_run(conn, &self.templates, run_id)
        })
    }

    /// Moves a run (start, advance, complete, abort, finish_rollback, close). With `force`
    /// (break-glass) unmet gates are overridden: the override is logged with every blocker it
    /// skipped, the run is flagged, and a required close item to review it is added.
    pub fn transition(
        &self,
        run_id: &str,
        if_match: Option<i64>,
        action: TransitionAction,
        reason: Option<&str>,
        force: bool,
        actor: &Actor,
    ) -> StoreResult<Run> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let rows = load_rows(conn, &self.templates, run_id)?;
            let run = &rows.run;
            check_if_match("run", if_match, run.last_seq)?;
            // Only a start can collide with another live run; other actions skip the query.
            let other_live_run = rows.other_live_run.clone();
            let facts = facts(
                run,
                &rows.template,
                &rows.items,
                &rows.decisions,
                other_live_run,
            )?;
            let (plan, overridden) = if force {
                plan_forced_transition(&facts, action, reason)?
            } else {
                (plan_transition(&facts, action)?, Vec::new())
            };
            if !plan.changes() {
                return assemble(rows);
            }
            let at = now();
            diesel::update(r::table.find(run_id))
                .set((
                    r::status.eq(plan.to.as_str()),
                    r::closed_at.eq(if plan.closes { Some(at) } else { run.closed_at }),
                    r::overridden.eq(run.overridden || !overridden.is_empty()),
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
                    EventType::RunTransitioned,
                    &actor.username,
                    at,
                    &json!({
                        "action": action,
                        "from": plan.from,
                        "to": plan.to,
                        "closed": plan.closes,
                        "reason": reason,
                    }),
                )?;
            } else {
                let review_id = add_override_review(conn, &rows, at)?;
                append_event(
                    conn,
                    run_id,
                    EventType::RunOverridden,
                    &actor.username,
                    at,
                    &json!({
                        "action": action,
                        "from": plan.from,
                        "to": plan.to,
                        "closed": plan.closes,
                        "reason": reason,
                        "overridden_blockers": overridden,
                        "review_item_id": review_id,
                    }),
                )?;
            }
            read_run(conn, &self.templates, run_id)
        })
    }

    /// One item of a run.
    pub fn item(&self, run_id: &str, item_id: &str) -> StoreResult<RunItem> {
        self.read(|conn| {
            let run = load_run(conn, run_id)?;
            let item = load_item(conn, run_id, item_id)?;
            let signoffs = load_signoffs(conn, run_id, Some(item_id))?;
            item.to_wire(run.status()?, &signoffs.iter().collect::<Vec<_>>())
        })
    }

    /// Changes an item (status, assignee, note, evidence). For an approval item, a change to
    /// the work invalidates its earlier sign-offs (the event says how many).
    pub fn update_item(
        &self,
        run_id: &str,
        item_id: &str,
        if_match: Option<i64>,
        change: ItemChange,
        actor: &Actor,
    ) -> StoreResult<RunItem> {
        let change = change.validated()?;
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            let run_status = run.status()?;
            let item = load_item(conn, run_id, item_id)?;
            check_if_match("item", if_match, item.version)?;
            let members = load_members(conn, run_id)?;
            let names: Vec<String> = members.iter().map(|m| m.username.clone()).collect();
            let is_member = members.iter().any(|m| m.user_id == actor.id);
            let ctx = ItemContext {
                run_status,
                run_closed: run.closed_at.is_some(),
                gate: item.gate()?,
                required: item.required,
                kind: item.kind()?,
                status: item.status()?,
            };
            let checked = check_item_change(ctx, actor.role, is_member, &names, change)?;
            let signoffs = load_signoffs(conn, run_id, Some(item_id))?;
            let c = &checked.change;
            let assignee = c.assignee.clone().unwrap_or_else(|| item.assignee.clone());
            let note = c.note.clone().unwrap_or_else(|| item.note.clone());
            let evidence = c
                .evidence_url
                .clone()
                .unwrap_or_else(|| item.evidence_url.clone());
            let patched_status = c.status.unwrap_or(ctx.status);
            let material = is_material_change(
                Work {
                    status: ctx.status,
                    note: item.note.as_deref(),
                    evidence_url: item.evidence_url.as_deref(),
                },
                Work {
                    status: patched_status,
                    note: note.as_deref(),
                    evidence_url: evidence.as_deref(),
                },
            );
            let invalidates = material && !signoffs.is_empty();
            let status = if invalidates && c.status.is_none() {
                status_after_rework(ctx.status)
            } else {
                patched_status
            };
            let skip_reason = checked
                .skip_reason
                .clone()
                .unwrap_or_else(|| item.skip_reason.clone());
            let mut changes = serde_json::Map::new();
            let mut diff = |field: &str, from: &Option<String>, to: &Option<String>| {
                if from != to {
                    changes.insert(field.into(), json!({"from": from, "to": to}));
                }
            };
            diff(
                "status",
                &Some(item.status.clone()),
                &Some(status.as_str().to_owned()),
            );
            diff("assignee", &item.assignee, &assignee);
            diff("note", &item.note, &note);
            diff("evidence_url", &item.evidence_url, &evidence);
            diff("skip_reason", &item.skip_reason, &skip_reason);
            if changes.is_empty() {
                return item.to_wire(run_status, &signoffs.iter().collect::<Vec<_>>());
            }
            let at = now();
            let worked_by = if material {
                Some(add_worker(item.worked_by.as_deref(), &actor.username))
            } else {
                item.worked_by.clone()
            };
            let updated = diesel::update(
                ri::table.filter(ri::id.eq(item_id).and(ri::version.eq(item.version))),
            )
            .set((
                ri::status.eq(status.as_str()),
                ri::assignee.eq(&assignee),
                ri::note.eq(&note),
                ri::evidence_url.eq(&evidence),
                ri::skip_reason.eq(&skip_reason),
                ri::version.eq(item.version + 1),
                ri::updated_by.eq(&actor.username),
                ri::updated_at.eq(at),
                ri::worked_by.eq(&worked_by),
            ))
            .execute(conn)?;
            if updated != 1 {
                let current = ri::table.find(item_id).select(ri::version).first(conn)?;
                return Err(StoreError::PreconditionFailed {
                    what: "item",
                    current,
                });
            }
            let invalidated = if invalidates {
                diesel::update(
                    so::table
                        .filter(so::item_id.eq(item_id))
                        .filter(so::invalidated_at.is_null()),
                )
                .set(so::invalidated_at.eq(at))
                .execute(conn)?
            } else {
                0
            };
            append_event(
                conn,
                run_id,
                EventType::ItemUpdated,
                &actor.username,
                at,
                &json!({
                    "item_id": item.id,
                    "reference": item.reference,
                    "title": item.title,
                    "version": item.version + 1,
                    "waiver": checked.waiver,
                    "invalidated_signoffs": invalidated,
                    "changes": changes,
                }),
            )?;
            let fresh = load_item(conn, run_id, item_id)?;
            let signoffs = load_signoffs(conn, run_id, Some(item_id))?;
            fresh.to_wire(run_status, &signoffs.iter().collect::<Vec<_>>())
        })
    }

    /// Records a sign-off on an approval item; enough approvals make it done, a rejection
    /// blocks it.
    pub fn record_signoff(
        &self,
        run_id: &str,
        item_id: &str,
        verdict: Verdict,
        comment: Option<&str>,
        actor: &Actor,
    ) -> StoreResult<Signoff> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            let run_status = run.status()?;
            let item = load_item(conn, run_id, item_id)?;
            let policy = item.policy()?;
            let signoffs = load_signoffs(conn, run_id, Some(item_id))?;
            let facts = signoffs
                .iter()
                .map(SignoffRow::facts)
                .collect::<StoreResult<Vec<_>>>()?;
            let workers = item.workers();
            let ctx = SignoffContext {
                run_status,
                run_closed: run.closed_at.is_some(),
                gate: item.gate()?,
                status: item.status()?,
                policy: &policy,
                signoffs: &facts,
                workers: &workers,
            };
            let effect = check_signoff(
                &ctx,
                &actor.id,
                &actor.username,
                actor.role,
                verdict,
                comment,
            )?;
            let at = now();
            let row = SignoffRow {
                id: new_id(),
                item_id: item_id.to_owned(),
                user_id: actor.id.clone(),
                username: actor.username.clone(),
                role: actor.role.as_str().to_owned(),
                verdict: verdict.as_str().to_owned(),
                comment: effect.comment.clone(),
                signed_at: at,
                invalidated_at: None,
            };
            diesel::insert_into(so::table)
                .values((
                    so::id.eq(&row.id),
                    so::run_id.eq(run_id),
                    so::item_id.eq(&row.item_id),
                    so::user_id.eq(&row.user_id),
                    so::username.eq(&row.username),
                    so::role.eq(&row.role),
                    so::verdict.eq(&row.verdict),
                    so::comment.eq(&row.comment),
                    so::signed_at.eq(row.signed_at),
                ))
                .execute(conn)?;
            if let Some(status) = effect.new_status {
                diesel::update(ri::table.find(item_id))
                    .set((
                        ri::status.eq(status.as_str()),
                        ri::version.eq(item.version + 1),
                        ri::updated_by.eq(&actor.username),
                        ri::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            append_event(
                conn,
                run_id,
                EventType::SignoffRecorded,
                &actor.username,
                at,
                &json!({
                    "item_id": item.id,
                    "reference": item.reference,
                    "title": item.title,
                    "signoff_id": row.id,
                    "verdict": verdict,
                    "comment": row.comment,
                    "approval_state": effect.state,
                    "status": effect.new_status.map(|to| json!({"from": item.status, "to": to})),
                }),
            )?;
            row.to_wire()
        })
    }

    /// Every sign-off of an item, valid and invalidated, oldest first.
    pub fn signoffs(&self, run_id: &str, item_id: &str) -> StoreResult<Vec<Signoff>> {
        self.read(|conn| {
            load_item(conn, run_id, item_id)?;
            so::table
                .filter(so::run_id.eq(run_id).and(so::item_id.eq(item_id)))
                .order((so::signed_at.asc(), so::id.asc()))
                .select(SignoffRow::as_select())
                .load(conn)?
                .iter()
                .map(SignoffRow::to_wire)
                .collect()
        })
    }

    /// The run's team.
    pub fn members(&self, run_id: &str) -> StoreResult<Vec<RunMember>> {
        self.read(|conn| {
            load_run(conn, run_id)?;
            load_members(conn, run_id)
        })
    }

    /// Adds an active user to a run's team.
    pub fn add_member(
        &self,
        run_id: &str,
        username: &str,
        run_role: &str,
        actor: &Actor,
    ) -> StoreResult<RunMember> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            check_run_editable(run.status()?, run.closed_at.is_some())?;
            let (user_id, active): (String, bool) = u::table
                .filter(u::username.eq(username))
                .select((u::id, u::active))
                .first(conn)
                .optional()?
                .ok_or_else(|| StoreError::Invalid {
                    field: "username",
                    message: format!("there is no user `{username}`"),
                })?;
            if !active {
                return Err(StoreError::Invalid {
                    field: "username",
                    message: format!("`{username}` is deactivated"),
                });
            }
            let at = now();
            diesel::insert_into(m::table)
                .values((
                    m::run_id.eq(run_id),
                    m::user_id.eq(&user_id),
                    m::run_role.eq(run_role),
                    m::added_by.eq(&actor.username),
                    m::added_at.eq(at),
                ))
                .execute(conn)
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Duplicate("member")
                    } else {
                        e.into()
                    }
                })?;
            append_event(
                conn,
                run_id,
                EventType::MemberAdded,
                &actor.username,
                at,
                &json!({"user_id": user_id, "username": username, "run_role": run_role}),
            )?;
            load_members(conn, run_id)?
                .into_iter()
                .find(|m| m.user_id == user_id)
                .ok_or(StoreError::NotFound("member"))
        })
    }

    /// Removes a user from a run's team.
    pub fn remove_member(&self, run_id: &str, user_id: &str, actor: &Actor) -> StoreResult<()> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            check_run_editable(run.status()?, run.closed_at.is_some())?;
            let member = load_members(conn, run_id)?
                .into_iter()
                .find(|m| m.user_id == user_id)
                .ok_or(StoreError::NotFound("member"))?;
            diesel::delete(m::table.filter(m::run_id.eq(run_id).and(m::user_id.eq(user_id))))
                .execute(conn)?;
            append_event(
                conn,
                run_id,
                EventType::MemberRemoved,
                &actor.username,
                now(),
                &json!({"user_id": member.user_id, "username": member.username, "run_role": member.run_role}),
            )?;
            Ok(())
        })
    }

    /// What waits on a user across runs that are not closed: open items assigned to them,
    /// approval items they could sign off, decisions they may take.
    pub fn pending(&self, actor: &Actor) -> StoreResult<Pending> {
        self.read(|conn| {
            let runs: Vec<RunRow> = r::table
                .filter(r::closed_at.is_null())
                .order((r::created_at.desc(), r::id.desc()))
                .select(RunRow::as_select())
                .load(conn)?;
            let items: Vec<ItemRow> = ri::table
                .inner_join(r::table.on(r::id.eq(ri::run_id)))
                .filter(r::closed_at.is_null())
                .filter(
                    ri::assignee
                        .eq(&actor.username)
                        .or(ri::approvers.is_not_null()),
                )
                .order((ri::run_id.asc(), ri::position.asc()))
                .select(ItemRow::as_select())
                .load(conn)?;
            let signoffs: Vec<SignoffRow> = so::table
                .inner_join(r::table.on(r::id.eq(so::run_id)))
                .filter(r::closed_at.is_null())
                .filter(so::invalidated_at.is_null())
                .select(SignoffRow::as_select())
                .load(conn)?;
            let label = |run: &RunRow| {
                format!(
                    "{} {} → {}",
                    run.product, run.release_version, run.environment
                )
            };
            let mut pending = Pending {
                assigned: Vec::new(),
                approvals: Vec::new(),
                decisions: Vec::new(),
            };
            for item in &items {
                let Some(run) = runs.iter().find(|r| r.id == item.run_id) else {
                    continue;
                };
                let status = run.status()?;
                let own = item_signoffs(&signoffs, &item.id);
                let wire = || item.to_wire(status, &own);
                let item_status = item.status()?;
                let editable = item_editable(item.gate()?, status, run.closed_at.is_some());
                if !editable || !item_applies(item.applies()?, status) {
                    continue;
                }
                if item.assignee.as_deref() == Some(actor.username.as_str())
                    && !item_status.is_settled()
                {
                    pending.assigned.push(PendingItem {
                        run_id: run.id.clone(),
                        run_label: label(run),
                        item: wire()?,
                    });
                }
                let policy = item.policy()?;
                if !policy.is_empty() && item_status != ItemStatus::Skipped {
                    let facts = own
                        .iter()
                        .map(|s| s.facts())
                        .collect::<StoreResult<Vec<_>>>()?;
                    let workers = item.workers();
                    let ctx = SignoffContext {
                        run_status: status,
                        run_closed: run.closed_at.is_some(),
                        gate: item.gate()?,
                        status: item_status,
                        policy: &policy,
                        signoffs: &facts,
                        workers: &workers,
                    };
                    // Would an approval by this user be accepted now?
                    if check_signoff(
                        &ctx,
                        &actor.id,
                        &actor.username,
                        actor.role,
                        Verdict::Approve,
                        None,
                    )
                    .is_ok()
                    {
                        pending.approvals.push(PendingItem {
                            run_id: run.id.clone(),
                            run_label: label(run),
                            item: wire()?,
                        });
                    }
                }
            }
            if actor.role.allows(Permission::Decide) {
                let decisions: Vec<DecisionRow> = d::table
                    .inner_join(r::table.on(r::id.eq(d::run_id)))
                    .filter(r::closed_at.is_null())
                    .order(d::seq.asc())
                    .select(DecisionRow::as_select())
                    .load(conn)?;
                for run in &runs {
                    let Some(stage) = run.status()?.decision_stage() else {
                        continue;
                    };
                    let template =
                        self.templates
                            .get(conn, &run.template_id, run.template_version)?;
                    let of_run: Vec<DecisionRow> = decisions
                        .iter()
                        .filter(|d| d.run_id == run.id)
                        .cloned()
                        .collect();
                    let latest = latest_outcomes(&of_run)?;
                    for point in template
                        .decision_points()
                        .iter()
                        .filter(|p| p.stage == stage)
                    {
                        let latest = latest.get(point.key.as_str()).copied();
                        if latest != Some(Outcome::Go) {
                            pending.decisions.push(PendingDecision {
                                run_id: run.id.clone(),
                                run_label: label(run),
                                point_key: point.key.clone(),
                                title: point.title.clone(),
                                latest_outcome: latest,
                            });
                        }
                    }
                }
            }
            Ok(pending)
        })
    }

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
            let status = run.status()?;
            let template = self
                .templates
                .get(conn, &run.template_id, run.template_version)?;
            let point =
                template
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
            } = check_decision(
                status,
                run.closed_at.is_some(),
                point,
                req.outcome,
                &req.rationale,
                req.criteria,
            )?;
            let at = now();
            let id = new_id();
            let criteria_json =
                serde_json::to_string(&criteria).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(to) = moves_run_to {
                diesel::update(r::table.find(run_id))
                    .set(r::status.eq(to.as_str()))
                    .execute(conn)?;
            }
            let seq = append_event(
                conn,
                run_id,
                EventType::DecisionRecorded,
                &actor.username,
                at,
                &json!({
                    "decision_id": id,
                    "point_key": point.key,
                    "outcome": outcome,
                    "rationale": rationale,
                    "criteria": criteria,
                    "run_status": moves_run_to.map(|to| json!({"from": status, "to": to})),
                }),
            )?;
            let row = DecisionRow {
                id,
                run_id: run_id.to_owned(),
                point_key: point.key.clone(),
                outcome: outcome.as_str().to_owned(),
                rationale,
                criteria: criteria_json,
                decided_by: actor.username.clone(),
                decided_at: at,
                seq,
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
                ))
                .execute(conn)?;
            row.to_wire(false)
        })
    }

    /// Every decision of a run, oldest first.
    pub fn decisions(&self, run_id: &str) -> StoreResult<Vec<Decision>> {
        self.read(|conn| {
            load_run(conn, run_id)?;
            decisions_to_wire(&load_decisions(conn, run_id)?)
        })
    }

    /// A page of a run's events after `after`, in order.
    pub fn events(&self, run_id: &str, after: i64, limit: i64) -> StoreResult<EventPage> {
        self.read(|conn| {
            load_run(conn, run_id)?;
            let rows: Vec<EventRow> = ev::table
                .filter(ev::run_id.eq(run_id).and(ev::seq.gt(after)))
                .order(ev::seq.asc())
                .limit(limit)
                .select(EventRow::as_select())
                .load(conn)?;
            let items = rows
                .iter()
                .map(EventRow::to_wire)
                .collect::<StoreResult<Vec<_>>>()?;
            let next_after = match items.last() {
                Some(last) if items.len() as i64 == limit => Some(last.seq),
                _ => None,
            };
            Ok(EventPage { items, next_after })
        })
    }
}
