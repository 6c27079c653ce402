//! Runs, their items, decisions and event log.
//!
//! Every change reads the state it needs inside its transaction, asks the domain whether the
//! change is allowed, writes it, and appends exactly one event to the run's log — all in the
//! same transaction. Bumping `runs.last_seq` to number the event also serialises concurrent
//! changes to one run. Reading a whole run is four queries whatever its size.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use shipshape_domain::Role;
use shipshape_domain::decision::{
    CheckedDecision, CriterionAssessment, DecisionError, Outcome, check_decision,
};
use shipshape_domain::item::{ItemChange, ItemContext, ItemStatus, check_item_change};
use shipshape_domain::run::{
    ItemFacts, PointFacts, RunFacts, RunStatus, TransitionAction, TransitionError,
    available_transitions, check_label, check_schedule, item_applies, plan_transition, progress,
};
use shipshape_domain::template::{Applicability, Gate, ItemKind, Template};
use shipshape_domain::wire::{
    CreateDecisionRequest, Decision, Event, EventPage, EventType, Progress, Run, RunDecisionPoint,
    RunItem, RunPage, RunPart, RunSection, RunSummary, UpdateRunRequest,
};

use crate::schema::{decisions as d, run_events as ev, run_items as ri, runs as r};
use crate::templates::load_version;
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
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ri)]
struct ItemRow {
    id: String,
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
            created_by: self.created_by.clone(),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
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

    fn to_wire(&self, run_status: RunStatus) -> StoreResult<RunItem> {
        let applies = self.applies()?;
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

fn load_items(conn: &mut AnyConnection, run_id: &str) -> StoreResult<Vec<ItemRow>> {
    Ok(ri::table
        .filter(ri::run_id.eq(run_id))
        .order(ri::position.asc())
        .select(ItemRow::as_select())
        .load(conn)?)
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
        points: template
            .decision_points()
            .iter()
            .map(|p| PointFacts {
                key: p.key.clone(),
                title: p.title.clone(),
                stage: p.stage,
                latest: latest.get(p.key.as_str()).copied(),
            })
            .collect(),
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

/// Assembles the whole run from its rows.
fn assemble(
    run: &RunRow,
    template: &Template,
    items: &[ItemRow],
    decisions: &[DecisionRow],
) -> StoreResult<Run> {
    let status = run.status()?;
    let all: Vec<&ItemRow> = items.iter().collect();
    let summary = run.summary(item_progress(&all, status)?)?;
    let mut parts = Vec::with_capacity(template.parts().len());
    for (pi, part) in template.parts().iter().enumerate() {
        let in_part: Vec<&ItemRow> = items
            .iter()
            .filter(|i| usize::try_from(i.part_index).ok() == Some(pi))
            .collect();
        let mut sections = Vec::with_capacity(part.sections.len());
        for (si, section) in part.sections.iter().enumerate() {
            sections.push(RunSection {
                title: section.title.clone(),
                items: in_part
                    .iter()
                    .filter(|i| usize::try_from(i.section_index).ok() == Some(si))
                    .map(|i| i.to_wire(status))
                    .collect::<StoreResult<_>>()?,
            });
        }
        parts.push(RunPart {
            title: part.title.clone(),
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
    // The live-run rule is checked when a start is attempted; the view does not query for it.
    let transitions = available_transitions(&facts(run, template, items, decisions, None)?);
    Ok(Run {
        summary,
        version: run.last_seq,
        parts,
        decision_points,
        decisions: wire_decisions,
        transitions,
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

fn read_run(conn: &mut AnyConnection, run_id: &str) -> StoreResult<Run> {
    let run = load_run(conn, run_id)?;
    let (_, version) = load_version(conn, &run.template_id, Some(run.template_version))?;
    let template = version.template()?;
    let items = load_items(conn, run_id)?;
    let decisions = load_decisions(conn, run_id)?;
    assemble(&run, &template, &items, &decisions)
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
    if id.is_empty() || id.len() > 64 {
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
            read_run(conn, &run_id)
        })
    }

    /// The whole run.
    pub fn run(&self, run_id: &str) -> StoreResult<Run> {
        self.read(|conn| read_run(conn, run_id))
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
        self.write(|conn| {
            let run = load_run(conn, run_id)?;
            check_if_match("run", if_match, run.last_seq)?;
            if run.closed_at.is_some() {
                return Err(StoreError::Transition(TransitionError::Closed));
            }
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
                return read_run(conn, run_id);
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
            read_run(conn, run_id)
        })
    }

    /// Moves a run (start, advance, complete, abort, finish_rollback, close).
    pub fn transition(
        &self,
        run_id: &str,
        if_match: Option<i64>,
        action: TransitionAction,
        reason: Option<&str>,
        actor: &Actor,
    ) -> StoreResult<Run> {
        self.write(|conn| {
            let run = load_run(conn, run_id)?;
            check_if_match("run", if_match, run.last_seq)?;
            let (_, version) = load_version(conn, &run.template_id, Some(run.template_version))?;
            let template = version.template()?;
            let items = load_items(conn, run_id)?;
            let decisions = load_decisions(conn, run_id)?;
            let other_live_run: Option<String> = r::table
                .filter(r::product.eq(&run.product))
                .filter(r::environment.eq(&run.environment))
                .filter(r::id.ne(run_id))
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
                .optional()?;
            let facts = facts(&run, &template, &items, &decisions, other_live_run)?;
            let plan = plan_transition(&facts, action)?;
            if !plan.changes() {
                return assemble(&run, &template, &items, &decisions);
            }
            let at = now();
            diesel::update(r::table.find(run_id))
                .set((
                    r::status.eq(plan.to.as_str()),
                    r::closed_at.eq(if plan.closes { Some(at) } else { run.closed_at }),
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
            read_run(conn, run_id)
        })
    }

    /// One item of a run.
    pub fn item(&self, run_id: &str, item_id: &str) -> StoreResult<RunItem> {
        self.read(|conn| {
            let run = load_run(conn, run_id)?;
            let item = ri::table
                .filter(ri::id.eq(item_id).and(ri::run_id.eq(run_id)))
                .select(ItemRow::as_select())
                .first(conn)
                .optional()?
                .ok_or(StoreError::NotFound("item"))?;
            item.to_wire(run.status()?)
        })
    }

    /// Changes an item (status, assignee, note, evidence).
    pub fn update_item(
        &self,
        run_id: &str,
        item_id: &str,
        if_match: Option<i64>,
        change: ItemChange,
        actor: &Actor,
    ) -> StoreResult<RunItem> {
        self.write(|conn| {
            let run = load_run(conn, run_id)?;
            let run_status = run.status()?;
            let item = ri::table
                .filter(ri::id.eq(item_id).and(ri::run_id.eq(run_id)))
                .select(ItemRow::as_select())
                .first(conn)
                .optional()?
                .ok_or(StoreError::NotFound("item"))?;
            check_if_match("item", if_match, item.version)?;
            let ctx = ItemContext {
                run_status,
                run_closed: run.closed_at.is_some(),
                gate: item.gate()?,
                required: item.required,
                kind: item.kind()?,
                status: item.status()?,
            };
            let checked = check_item_change(ctx, actor.role, change)?;
            let c = &checked.change;
            let status = c.status.map(ItemStatus::as_str).unwrap_or(&item.status);
            let assignee = c.assignee.clone().unwrap_or_else(|| item.assignee.clone());
            let note = c.note.clone().unwrap_or_else(|| item.note.clone());
            let evidence = c
                .evidence_url
                .clone()
                .unwrap_or_else(|| item.evidence_url.clone());
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
                &Some(status.to_owned()),
            );
            diff("assignee", &item.assignee, &assignee);
            diff("note", &item.note, &note);
            diff("evidence_url", &item.evidence_url, &evidence);
            diff("skip_reason", &item.skip_reason, &skip_reason);
            if changes.is_empty() {
                return item.to_wire(run_status);
            }
            let at = now();
            let updated = diesel::update(
                ri::table.filter(ri::id.eq(item_id).and(ri::version.eq(item.version))),
            )
            .set((
                ri::status.eq(status),
                ri::assignee.eq(&assignee),
                ri::note.eq(&note),
                ri::evidence_url.eq(&evidence),
                ri::skip_reason.eq(&skip_reason),
                ri::version.eq(item.version + 1),
                ri::updated_by.eq(&actor.username),
                ri::updated_at.eq(at),
            ))
            .execute(conn)?;
            if updated != 1 {
                let current = ri::table.find(item_id).select(ri::version).first(conn)?;
                return Err(StoreError::PreconditionFailed {
                    what: "item",
                    current,
                });
            }
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
                    "changes": changes,
                }),
            )?;
            let fresh = ri::table
                .find(item_id)
                .select(ItemRow::as_select())
                .first(conn)?;
            fresh.to_wire(run_status)
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
            let run = load_run(conn, run_id)?;
            let status = run.status()?;
            let (_, version) = load_version(conn, &run.template_id, Some(run.template_version))?;
            let template = version.template()?;
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
