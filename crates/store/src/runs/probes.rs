//! Probe items: what a check requests, its results (kept as the item's evidence, each one
//! an event), and the schedule the worker claims checks from.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use shipshape_domain::event::{EventData, ItemStatusChange, ProbeChecked, ProbeTrigger};
use shipshape_domain::item::may_change;
use shipshape_domain::item::{ItemError, ItemStatus};
use shipshape_domain::probe::ProbeSpec;
use shipshape_domain::run::{gate_stage, item_applies, item_editable};
use shipshape_domain::template::Gate;
use shipshape_domain::wire::{ProbeResult, ProbeResultPage};

use crate::schema::{probe_results as pr, run_items as ri, runs as r};
use crate::{Store, StoreError, StoreResult, new_id, utc};

use super::Actor;
use super::events::append_event;
use super::reads::{decode_cursor, encode_cursor};
use super::rows::*;

/// What a probe item's check requests for a run.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The check as declared.
    pub spec: ProbeSpec,
    /// The URL for this run, or why it cannot be written.
    pub url: Result<String, String>,
    /// The expected value for this run, or why it cannot be written.
    pub equals: Result<Option<String>, String>,
    /// When this was read: the check's time. A check that read its target later began
    /// later, and its result is the item's even if it ends first (a scheduled check that
    /// read an environment without its base URL never outranks one that read it with).
    pub read_at: DateTime<Utc>,
}

/// A check's result, to record.
#[derive(Debug, Clone)]
pub struct ProbeOutcome {
    /// When the check began: when its target was read (see [`ProbeTarget::read_at`]).
    pub checked_at: DateTime<Utc>,
    /// Whether the answer was what the probe expects.
    pub passed: bool,
    /// What matched or did not.
    pub summary: String,
    /// The observed value.
    pub observed: Option<String>,
    /// The URL requested (or the declared one, when it could not be written).
    pub url: String,
    /// The answer's status.
    pub http_status: Option<u16>,
    /// The answer's latency.
    pub latency_ms: Option<u64>,
    /// The start of the answer's body.
    pub excerpt: Option<String>,
}

/// The checks an instance claimed (run id, item id), and when the next one falls due.
pub type ClaimedProbes = (Vec<(String, String)>, Option<DateTime<Utc>>);

/// The probe items whose gate's stage the run is in, not waived, of runs not closed: the
/// ones the schedule checks. (run id, item id, next check, check, applies, run status)
type Scheduled = (
    String,
    String,
    Option<NaiveDateTime>,
    Option<String>,
    String,
    String,
);

fn scheduled(conn: &mut crate::AnyConnection) -> StoreResult<Vec<Scheduled>> {
    let mut rows = Vec::new();
    for gate in Gate::ALL {
        let statuses: Vec<&str> = gate_stage(gate).iter().map(|s| s.as_str()).collect();
        let found: Vec<Scheduled> = ri::table
            .inner_join(r::table.on(r::id.eq(ri::run_id)))
            .filter(ri::probe.is_not_null())
            .filter(ri::gate.eq(gate.as_str()))
            .filter(ri::status.ne(ItemStatus::Skipped.as_str()))
            .filter(r::status.eq_any(statuses))
            .filter(r::closed_at.is_null())
            .select((
                ri::run_id,
                ri::id,
                ri::probe_next_at,
                ri::probe,
                ri::applies,
                r::status,
            ))
            .load(conn)?;
        rows.extend(found);
    }
    rows.retain(|(.., applies, status)| {
        match (
            shipshape_domain::template::Applicability::parse(applies),
            shipshape_domain::run::RunStatus::parse(status),
        ) {
            (Some(a), Some(s)) => item_applies(a, s),
            _ => false,
        }
    });
    Ok(rows)
}

impl Store {
    /// What a probe item's check requests, after checking that `actor` may run it now: a
    /// member of the run's team (or a release manager), the run not closed, the item still
    /// open to change.
    pub fn probe_target(
        &self,
        run_id: &str,
        item_id: &str,
        actor: Option<&Actor>,
    ) -> StoreResult<ProbeTarget> {
        self.read(|conn| {
            let read_at = Utc::now();
            let run = load_run(conn, run_id)?;
            let item = load_item(conn, run_id, item_id)?;
            if let Some(actor) = actor {
                let member = load_members(conn, run_id)?
                    .iter()
                    .any(|m| m.user_id == actor.id);
                may_change(&item.context(&run)?, actor.role, member)?;
            }
            let Some(spec) = item.probe_spec()? else {
                return Err(StoreError::Invalid {
                    field: "item_id",
                    message: format!(
                        "{} is not a probe item: only probe items (kind=probe) have a check",
                        item.reference
                    ),
                });
            };
            let probes = load_probe_context(conn, &run, std::slice::from_ref(&item))?;
            let vars = probes.vars();
            Ok(ProbeTarget {
                url: spec.url_for(&vars),
                equals: spec.equals_for(&vars),
                spec,
                read_at,
            })
        })
    }

    /// Records a check's result as the item's evidence: the item is done when it passed and
    /// failed when it did not (a waived item stays skipped; an item of a finished gate keeps
    /// its status), and the result is an event of the run's log.
    pub fn record_probe(
        &self,
        run_id: &str,
        item_id: &str,
        outcome: ProbeOutcome,
        trigger: ProbeTrigger,
        checked_by: &str,
    ) -> StoreResult<ProbeResult> {
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            let item = load_item(conn, run_id, item_id)?;
            let spec = item
                .probe_spec()?
                .ok_or(StoreError::NotFound("probe item"))?;
            // A run closed while its check was under way takes no more results; a scheduled
            // check is for its stage, and a result that comes after the stage is over says
            // nothing about it.
            if run.closed_at.is_some() {
                return Err(
                    ItemError::Locked("the run is closed; its items no longer change").into(),
                );
            }
            if trigger == ProbeTrigger::Schedule
                && !gate_stage(item.gate()?).contains(&run.status()?)
            {
                return Err(
                    ItemError::Locked("the stage this check was scheduled for is over").into(),
                );
            }
            let at = crate::micros(outcome.checked_at);
            let row = ProbeResultRow {
                id: new_id(),
                run_id: run_id.to_owned(),
                item_id: item_id.to_owned(),
                checked_at: at,
                passed: outcome.passed,
                summary: outcome.summary,
                observed: outcome.observed,
                url: outcome.url,
                http_status: outcome.http_status.map(i32::from),
                latency_ms: outcome.latency_ms.and_then(|l| i64::try_from(l).ok()),
                excerpt: outcome.excerpt,
                trigger_kind: trigger.as_str().to_owned(),
                checked_by: checked_by.to_owned(),
            };
            diesel::insert_into(pr::table)
                .values((
                    pr::id.eq(&row.id),
                    pr::run_id.eq(&row.run_id),
                    pr::item_id.eq(&row.item_id),
                    pr::checked_at.eq(row.checked_at),
                    pr::passed.eq(row.passed),
                    pr::summary.eq(&row.summary),
                    pr::observed.eq(&row.observed),
                    pr::url.eq(&row.url),
                    pr::http_status.eq(row.http_status),
                    pr::latency_ms.eq(row.latency_ms),
                    pr::excerpt.eq(&row.excerpt),
                    pr::trigger_kind.eq(&row.trigger_kind),
                    pr::checked_by.eq(&row.checked_by),
                ))
                .execute(conn)?;
            // A check that began before the latest recorded one ended after it: it joins the
            // history, but the latest result stays the one of the later check.
            let superseded = match &item.probe_result_id {
                Some(latest) => pr::table
                    .find(latest)
                    .select(pr::checked_at)
                    .get_result::<NaiveDateTime>(conn)
                    .optional()?
                    .is_some_and(|latest_at| latest_at > at),
                None => false,
            };
            let from = item.status()?;
            let editable = item_editable(item.gate()?, run.status()?, run.closed_at.is_some());
            let to = match (from, editable, row.passed) {
                _ if superseded => from,
                (ItemStatus::Skipped, _, _) | (_, false, _) => from,
                (_, true, true) => ItemStatus::Done,
                (_, true, false) => ItemStatus::Failed,
            };
            let next = at + chrono::Duration::seconds(i64::from(spec.interval_secs()));
            if !superseded {
                let update = ri::table.find(item_id);
                if to == from {
                    diesel::update(update)
                        .set((
                            ri::probe_result_id.eq(Some(&row.id)),
                            ri::probe_next_at.eq(Some(next)),
                        ))
                        .execute(conn)?;
                } else {
                    let (started_at, finished_at) = item.clock(to, at)?;
                    let finished = run.finished_at.is_some();
                    if finished {
                        crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Remove)?;
                    }
                    diesel::update(update)
                        .set((
                            ri::probe_result_id.eq(Some(&row.id)),
                            ri::probe_next_at.eq(Some(next)),
                            ri::status.eq(to.as_str()),
                            ri::started_at.eq(started_at),
                            ri::finished_at.eq(finished_at),
                            ri::version.eq(item.version + 1),
                            ri::updated_by.eq(checked_by),
                            ri::updated_at.eq(Some(at)),
                        ))
                        .execute(conn)?;
                    if finished {
                        crate::insights::rollup_run(conn, run_id, crate::insights::Sign::Add)?;
                    }
                }
            }
            append_event(
                conn,
                run_id,
                checked_by,
                at,
                EventData::ProbeChecked(ProbeChecked {
                    item_id: item_id.to_owned(),
                    reference: item.reference.clone(),
                    title: item.title.clone(),
                    result_id: row.id.clone(),
                    passed: row.passed,
                    summary: row.summary.clone(),
                    url: row.url.clone(),
                    http_status: outcome.http_status,
                    latency_ms: outcome.latency_ms,
                    trigger,
                    status: (to != from).then_some(ItemStatusChange { from, to }),
                }),
            )?;
            row.to_wire()
        })
    }

    /// A probe item's results, newest first, `limit` at a time, older than `before` (a
    /// cursor from an earlier page).
    pub fn probe_results(
        &self,
        run_id: &str,
        item_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<ProbeResultPage> {
        self.read(|conn| {
            let item = load_item(conn, run_id, item_id)?;
            if item.probe.is_none() {
                return Err(StoreError::Invalid {
                    field: "item_id",
                    message: format!("{} is not a probe item", item.reference),
                });
            }
            let mut query = pr::table
                .filter(pr::item_id.eq(item_id))
                .order((pr::checked_at.desc(), pr::id.desc()))
                .limit(limit + 1)
                .select(ProbeResultRow::as_select())
                .into_boxed();
            if let Some(cursor) = before {
                let (at, id) = decode_cursor(cursor)?;
                query = query.filter(
                    pr::checked_at
                        .lt(at)
                        .or(pr::checked_at.eq(at).and(pr::id.lt(id))),
                );
            }
            let mut rows: Vec<ProbeResultRow> = query.load(conn)?;
            let more = rows.len() > usize::try_from(limit).unwrap_or(0);
            rows.truncate(usize::try_from(limit).unwrap_or(0));
            let next_cursor = match (more, rows.last()) {
                (true, Some(last)) => Some(encode_cursor(last.checked_at, &last.id)),
                _ => None,
            };
            Ok(ProbeResultPage {
                items: rows
                    .iter()
                    .map(ProbeResultRow::to_wire)
                    .collect::<StoreResult<_>>()?,
                next_cursor,
            })
        })
    }

    /// Claims the scheduled checks due at `now` (at most `limit`): each is moved to its next
    /// time in the statement that finds it still due, so one instance claims it. Also says
    /// when the next one not claimed now falls due. Reads only, when nothing is due.
    pub fn claim_due_probes(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<ClaimedProbes> {
        let now = crate::micros(now);
        let rows = self.read(scheduled)?;
        let (due, later): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|(_, _, next_at, ..)| next_at.is_none_or(|n| n <= now));
        let mut next_due = later.iter().filter_map(|(_, _, n, ..)| *n).min().map(utc);
        if due.is_empty() {
            return Ok((Vec::new(), next_due));
        }
        let claimed = self.write(|conn| {
            let next_due = &mut next_due;
            let mut claimed = Vec::new();
            for (run_id, item_id, next_at, probe, ..) in due.iter().take(limit) {
                let interval = probe
                    .as_deref()
                    .and_then(|p| serde_json::from_str::<ProbeSpec>(p).ok())
                    .map_or(60, |p| p.interval_secs());
                let next = now + chrono::Duration::seconds(i64::from(interval));
                let target = ri::table.filter(ri::id.eq(item_id));
                let moved = match next_at {
                    None => diesel::update(target.filter(ri::probe_next_at.is_null()))
                        .set(ri::probe_next_at.eq(Some(next)))
                        .execute(conn)?,
                    Some(at) => diesel::update(target.filter(ri::probe_next_at.eq(*at)))
                        .set(ri::probe_next_at.eq(Some(next)))
                        .execute(conn)?,
                };
                if moved == 1 {
                    claimed.push((run_id.clone(), item_id.clone()));
                    let next = utc(next);
                    *next_due = Some(next_due.map_or(next, |n| n.min(next)));
                }
            }
            Ok(claimed)
        })?;
        if due.len() > limit {
            // More are due than were claimed now: look again at once.
            next_due = Some(utc(now));
        }
        Ok((claimed, next_due))
    }
}
