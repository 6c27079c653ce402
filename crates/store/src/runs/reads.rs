//! Reads: a whole run, the run list and its cursors, one item, sign-offs, the team,
//! decisions, and what waits on a user.

use chrono::{DateTime, NaiveDateTime};
use diesel::prelude::*;
use shipshape_domain::access::Permission;
use shipshape_domain::approval::{SignoffContext, Verdict, refusal};
use shipshape_domain::decision::Outcome;
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::{RunStatus, item_applies, item_editable, progress};
use shipshape_domain::template::Applicability;
use shipshape_domain::wire::{
    Decision, Pending, PendingDecision, PendingItem, Run, RunItem, RunMember, RunPage, Signoff,
};

use crate::schema::{decisions as d, run_items as ri, runs as r, signoffs as so};
use crate::{Store, StoreError, StoreResult};

use super::rows::*;
use super::{Actor, ListRunsFilter};

/// A whole run as read, with what it depends on besides its own rows and log.
#[derive(Debug)]
pub struct RunView {
    /// The run.
    pub run: Run,
    /// When it may change by itself (a probe result going stale, its environment's lock
    /// running out or a freeze beginning or ending), if it may.
    pub changes_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether other runs and its environment decide parts of it (what may start, what
    /// stands in the way), beyond changes the audit log records.
    pub on_others: bool,
}

pub(super) fn encode_cursor(at: NaiveDateTime, id: &str) -> String {
    format!("{}_{id}", at.and_utc().timestamp_micros())
}

pub(super) fn decode_cursor(cursor: &str) -> StoreResult<(NaiveDateTime, String)> {
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

diesel::define_sql_function! {
    /// SQL's `lower`, on both backends.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A `LIKE` pattern matching `text` anywhere, in any case: lower-cased, its `%`, `_` and `\`
/// escaped (with `\`).
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// The whole run.
    pub fn run(&self, run_id: &str) -> StoreResult<Run> {
        self.read(|conn| read_run(conn, &self.templates, run_id))
    }

    /// The whole run, with what a copy of it kept in memory depends on.
    pub fn run_view(&self, run_id: &str) -> StoreResult<RunView> {
        self.read(|conn| {
            let rows = load_rows(conn, &self.templates, run_id)?;
            let changes_at = rows.changes_at;
            let run = assemble(rows)?;
            // A planned run's start depends on other runs (one live run per product and
            // environment) and, like a preparing run's, on its environment.
            let on_others = matches!(
                run.summary.status,
                RunStatus::Planned | RunStatus::Preparing
            ) && run.summary.closed_at.is_none();
            Ok(RunView {
                run,
                changes_at,
                on_others,
            })
        })
    }

    /// How many runs are in each status (metrics).
    pub fn runs_by_status(&self) -> StoreResult<Vec<(String, i64)>> {
        self.query(|conn| {
            Ok(r::table
                .group_by(r::status)
                .select((r::status, diesel::dsl::count_star()))
                .load::<(String, i64)>(conn)?)
        })
    }

    /// A page of runs, newest first.
    pub fn list_runs(&self, filter: &ListRunsFilter) -> StoreResult<RunPage> {
        Ok(self.list_runs_at(filter)?.1)
    }

    /// A page of runs, newest first, with the all-runs log position it shows the runs at
    /// (read first, in the same snapshot: every change to a run or its items moves it, see
    /// [`Store::log_head`]).
    pub fn list_runs_at(&self, filter: &ListRunsFilter) -> StoreResult<(i64, RunPage)> {
        let after = filter.cursor.as_deref().map(decode_cursor).transpose()?;
        self.read(|conn| {
            let version = crate::live::head(conn)?;
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
            if let Some(text) = filter.search.as_deref().filter(|t| !t.is_empty()) {
                let pattern = like_pattern(text);
                q = q.filter(
                    lower(r::product)
                        .like(pattern.clone())
                        .escape('\\')
                        .or(lower(r::release_version).like(pattern.clone()).escape('\\'))
                        .or(lower(r::environment).like(pattern).escape('\\')),
                );
            }
            if let Some(from) = filter.created_from {
                q = q.filter(r::created_at.ge(from.naive_utc()));
            }
            if let Some(before) = filter.created_before {
                q = q.filter(r::created_at.lt(before.naive_utc()));
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
            Ok((version, RunPage { items, next_cursor }))
        })
    }

    /// One item of a run.
    pub fn item(&self, run_id: &str, item_id: &str) -> StoreResult<RunItem> {
        self.read(|conn| {
            let run = load_run(conn, run_id)?;
            let item = load_item(conn, run_id, item_id)?;
            let signoffs = load_signoffs(conn, run_id, Some(item_id))?;
            let probes = load_probe_context(conn, &run, std::slice::from_ref(&item))?;
            item.to_wire(run.status()?, &signoffs.iter().collect::<Vec<_>>(), &probes)
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
                action_items: super::records::pending_actions(conn, &actor.username)?,
            };
            for item in &items {
                let Some(run) = runs.iter().find(|r| r.id == item.run_id) else {
                    continue;
                };
                let status = run.status()?;
                let own = item_signoffs(&signoffs, &item.id);
                let probes = if item.probe.is_some() {
                    load_probe_context(conn, run, std::slice::from_ref(item))?
                } else {
                    ProbeContext::default()
                };
                let wire = || item.to_wire(status, &own, &probes);
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
                    // Would an approval by this user be accepted now? (The sign-off rule's own
                    // answer, without judging a comment or working out the effect.)
                    if refusal(
                        &ctx,
                        &actor.id,
                        &actor.username,
                        actor.role,
                        Some(Verdict::Approve),
                    )
                    .is_none()
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

    /// Every decision of a run, oldest first.
    pub fn decisions(&self, run_id: &str) -> StoreResult<Vec<Decision>> {
        self.read(|conn| {
            load_run(conn, run_id)?;
            decisions_to_wire(&load_decisions(conn, run_id)?)
        })
    }
}
