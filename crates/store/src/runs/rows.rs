//! A run's rows as stored, their conversion to wire types, and the loads every change and
//! read builds on: the run's lock, its items, sign-offs, decisions and team, and the whole
//! run assembled from them.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use shipshape_domain::Role;
use shipshape_domain::approval::{SignoffFacts, Verdict, approval_state, missing_approvals};
use shipshape_domain::decision::{CriterionAssessment, CriterionResult, Outcome, assess_items};
use shipshape_domain::environment::ScheduleWarning;
use shipshape_domain::event::ProbeTrigger;
use shipshape_domain::item::{EvidenceLink, ItemContext, ItemStatus};
use shipshape_domain::probe::{ProbeSpec, ProbeVars, staleness};
use shipshape_domain::run::{
    Blocker, IssueFacts, ItemFacts, PointFacts, ProbeFacts, RunFacts, RunStatus,
    available_transitions, item_applies, progress,
};
use shipshape_domain::template::{
    Applicability, DecisionPointSpec, Gate, ItemKind, ItemSpec, RecordKind, Template,
};
use shipshape_domain::wire::{
    Decision, ItemApproval, ItemProbe, Measurement, ProbeResult, Progress, Run, RunDecisionPoint,
    RunItem, RunMember, RunPart, RunSection, RunSummary, Signoff,
};

use crate::schema::{
    decisions as d, environments as env, probe_results as pr, run_items as ri, run_members as m,
    runs as r, signoffs as so, users as u,
};
use crate::templates::TemplateCache;
use crate::{AnyConnection, StoreError, StoreResult, utc};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = r)]
pub(super) struct RunRow {
    pub(super) id: String,
    pub(super) template_id: String,
    pub(super) template_version: i32,
    pub(super) template_name: String,
    pub(super) product: String,
    pub(super) release_version: String,
    pub(super) environment: String,
    pub(super) status: String,
    pub(super) window_start: Option<NaiveDateTime>,
    pub(super) window_end: Option<NaiveDateTime>,
    pub(super) expected_downtime_minutes: Option<i32>,
    pub(super) created_by: String,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
    pub(super) closed_at: Option<NaiveDateTime>,
    pub(super) last_seq: i64,
    pub(super) overridden: bool,
    pub(super) stage_entered_at: Option<NaiveDateTime>,
    pub(super) commit_sha: Option<String>,
    pub(super) committed_at: Option<NaiveDateTime>,
    pub(super) started_at: Option<NaiveDateTime>,
    pub(super) finished_at: Option<NaiveDateTime>,
    pub(super) rollback_decided_at: Option<NaiveDateTime>,
}

/// An item's row. (`Deserialize`: PostgreSQL hands it back with an item change's claim as
/// `row_to_json`, see [`super::events::claim`].)
#[derive(Debug, Clone, Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = ri)]
pub(super) struct ItemRow {
    pub(super) id: String,
    pub(super) run_id: String,
    pub(super) position: i32,
    pub(super) part_index: i32,
    pub(super) section_index: i32,
    pub(super) reference: String,
    pub(super) title: String,
    pub(super) guidance: Option<String>,
    pub(super) gate: String,
    pub(super) applies: String,
    pub(super) required: bool,
    pub(super) kind: String,
    pub(super) role: Option<String>,
    pub(super) status: String,
    pub(super) assignee: Option<String>,
    pub(super) note: Option<String>,
    pub(super) evidence_url: Option<String>,
    pub(super) skip_reason: Option<String>,
    pub(super) version: i64,
    pub(super) updated_by: Option<String>,
    pub(super) updated_at: Option<NaiveDateTime>,
    pub(super) approvers: Option<String>,
    pub(super) worked_by: Option<String>,
    pub(super) probe: Option<String>,
    pub(super) evidence_required: bool,
    pub(super) evidence: String,
    pub(super) probe_result_id: Option<String>,
    pub(super) record: Option<String>,
    pub(super) started_at: Option<NaiveDateTime>,
    pub(super) finished_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pr)]
pub(crate) struct ProbeResultRow {
    pub(crate) id: String,
    pub(crate) run_id: String,
    pub(crate) item_id: String,
    pub(crate) checked_at: NaiveDateTime,
    pub(crate) passed: bool,
    pub(crate) summary: String,
    pub(crate) observed: Option<String>,
    pub(crate) url: String,
    pub(crate) http_status: Option<i32>,
    pub(crate) latency_ms: Option<i64>,
    pub(crate) excerpt: Option<String>,
    pub(crate) trigger_kind: String,
    pub(crate) checked_by: String,
}

impl ProbeResultRow {
    pub(crate) fn to_wire(&self) -> StoreResult<ProbeResult> {
        Ok(ProbeResult {
            id: self.id.clone(),
            checked_at: utc(self.checked_at),
            passed: self.passed,
            summary: self.summary.clone(),
            observed: self.observed.clone(),
            url: self.url.clone(),
            http_status: self.http_status.and_then(|s| u16::try_from(s).ok()),
            latency_ms: self.latency_ms.and_then(|l| u64::try_from(l).ok()),
            excerpt: self.excerpt.clone(),
            trigger: ProbeTrigger::parse(&self.trigger_kind)
                .ok_or_else(|| corrupt("probe trigger", &self.trigger_kind))?,
            checked_by: self.checked_by.clone(),
        })
    }
}

/// What a run's probe items are judged and written with: their latest results, the run's
/// fields and its environment's base URL, and the time.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProbeContext {
    pub(crate) results: HashMap<String, ProbeResultRow>,
    pub(crate) base_url: Option<String>,
    pub(crate) environment: String,
    pub(crate) product: String,
    pub(crate) version: String,
    pub(crate) now: DateTime<Utc>,
}

impl ProbeContext {
    pub(crate) fn vars(&self) -> ProbeVars<'_> {
        ProbeVars {
            base_url: self.base_url.as_deref(),
            environment: &self.environment,
            product: &self.product,
            version: &self.version,
        }
    }
}

/// The latest results of a run's probe items and its environment's base URL.
pub(crate) fn load_probe_context(
    conn: &mut AnyConnection,
    run: &RunRow,
    items: &[ItemRow],
) -> StoreResult<ProbeContext> {
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| i.probe_result_id.as_deref())
        .collect();
    let results = if ids.is_empty() {
        HashMap::new()
    } else {
        pr::table
            .filter(pr::id.eq_any(ids))
            .select(ProbeResultRow::as_select())
            .load(conn)?
            .into_iter()
            .map(|r| (r.item_id.clone(), r))
            .collect()
    };
    let has_probe = items.iter().any(|i| i.probe.is_some());
    let base_url = if has_probe {
        env::table
            .find(&run.environment)
            .select(env::base_url)
            .get_result::<Option<String>>(conn)
            .optional()?
            .flatten()
    } else {
        None
    };
    Ok(ProbeContext {
        results,
        base_url,
        environment: run.environment.clone(),
        product: run.product.clone(),
        version: run.release_version.clone(),
        now: Utc::now(),
    })
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = so)]
pub(super) struct SignoffRow {
    pub(super) id: String,
    pub(super) item_id: String,
    pub(super) user_id: String,
    pub(super) username: String,
    pub(super) role: String,
    pub(super) verdict: String,
    pub(super) comment: Option<String>,
    pub(super) signed_at: NaiveDateTime,
    pub(super) invalidated_at: Option<NaiveDateTime>,
}

impl SignoffRow {
    pub(super) fn role(&self) -> StoreResult<Role> {
        Role::parse(&self.role).ok_or_else(|| corrupt("role", &self.role))
    }
    pub(super) fn verdict(&self) -> StoreResult<Verdict> {
        Verdict::parse(&self.verdict).ok_or_else(|| corrupt("verdict", &self.verdict))
    }
    pub(super) fn facts(&self) -> StoreResult<SignoffFacts> {
        Ok(SignoffFacts {
            user_id: self.user_id.clone(),
            role: self.role()?,
            verdict: self.verdict()?,
        })
    }
    pub(super) fn to_wire(&self) -> StoreResult<Signoff> {
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
pub(super) struct DecisionRow {
    pub(super) id: String,
    pub(super) run_id: String,
    pub(super) point_key: String,
    pub(super) outcome: String,
    pub(super) rationale: String,
    pub(super) criteria: String,
    pub(super) decided_by: String,
    pub(super) decided_at: NaiveDateTime,
    pub(super) seq: i64,
    pub(super) stage_entered_at: Option<NaiveDateTime>,
    pub(super) unmet_confirmed: bool,
}

pub(super) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} `{value}`"))
}

impl RunRow {
    pub(super) fn status(&self) -> StoreResult<RunStatus> {
        RunStatus::parse(&self.status).ok_or_else(|| corrupt("run status", &self.status))
    }

    pub(super) fn summary(&self, progress: Progress) -> StoreResult<RunSummary> {
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
    /// The item's started and finished times once its status goes to `to` at `at`.
    pub(super) fn clock(
        &self,
        to: ItemStatus,
        at: NaiveDateTime,
    ) -> StoreResult<(Option<NaiveDateTime>, Option<NaiveDateTime>)> {
        Ok(shipshape_domain::insights::item_clock(
            self.status()?,
            to,
            self.started_at,
            self.finished_at,
            at,
        ))
    }

    pub(super) fn status(&self) -> StoreResult<ItemStatus> {
        ItemStatus::parse(&self.status).ok_or_else(|| corrupt("item status", &self.status))
    }
    pub(super) fn gate(&self) -> StoreResult<Gate> {
        Gate::parse(&self.gate).ok_or_else(|| corrupt("gate", &self.gate))
    }
    pub(super) fn applies(&self) -> StoreResult<Applicability> {
        Applicability::parse(&self.applies).ok_or_else(|| corrupt("applies", &self.applies))
    }
    pub(super) fn kind(&self) -> StoreResult<ItemKind> {
        ItemKind::parse(&self.kind).ok_or_else(|| corrupt("kind", &self.kind))
    }
    pub(super) fn record(&self) -> StoreResult<Option<RecordKind>> {
        self.record
            .as_deref()
            .map(|r| RecordKind::parse(r).ok_or_else(|| corrupt("record", r)))
            .transpose()
    }

    pub(crate) fn probe_spec(&self) -> StoreResult<Option<ProbeSpec>> {
        self.probe
            .as_deref()
            .map(|p| {
                serde_json::from_str(p)
                    .map_err(|e| StoreError::Corrupt(format!("item {} probe: {e}", self.id)))
            })
            .transpose()
    }

    pub(crate) fn evidence_links(&self) -> StoreResult<Vec<EvidenceLink>> {
        serde_json::from_str(&self.evidence)
            .map_err(|e| StoreError::Corrupt(format!("item {} evidence: {e}", self.id)))
    }

    pub(super) fn facts(&self, probes: &ProbeContext) -> StoreResult<ItemFacts> {
        let probe = self.probe_spec()?.map(|spec| ProbeFacts {
            ttl_secs: spec.ttl_secs,
            latest: probes
                .results
                .get(&self.id)
                .map(|r| (utc(r.checked_at), r.passed, r.summary.clone())),
        });
        Ok(ItemFacts {
            id: self.id.clone(),
            reference: self.reference.clone(),
            title: self.title.clone(),
            gate: self.gate()?,
            applies: self.applies()?,
            required: self.required,
            status: self.status()?,
            probe,
        })
    }

    /// The probe item's check as the run sees it.
    fn probe_view(&self, probes: &ProbeContext) -> StoreResult<Option<ItemProbe>> {
        let Some(spec) = self.probe_spec()? else {
            return Ok(None);
        };
        let latest = probes.results.get(&self.id);
        let url = spec.url_for(&probes.vars());
        let facts = ProbeFacts {
            ttl_secs: spec.ttl_secs,
            latest: latest.map(|r| (utc(r.checked_at), r.passed, r.summary.clone())),
        };
        let problem = match (&url, facts.problem(probes.now)) {
            (Err(e), _) => Some(e.clone()),
            (Ok(_), p) => p,
        };
        Ok(Some(ItemProbe {
            interval_secs: spec.interval_secs(),
            url: url.ok(),
            latest: latest.map(ProbeResultRow::to_wire).transpose()?,
            problem,
            spec,
        }))
    }

    /// The approval policy (empty for a manual item).
    pub(super) fn policy(&self) -> StoreResult<Vec<Role>> {
        match &self.approvers {
            None => Ok(Vec::new()),
            Some(list) => list
                .split(',')
                .map(|r| Role::parse(r).ok_or_else(|| corrupt("approver role", r)))
                .collect(),
        }
    }

    /// What the item rules judge a change to this item by, in `run`.
    pub(super) fn context(&self, run: &RunRow) -> StoreResult<ItemContext> {
        Ok(ItemContext {
            run_status: run.status()?,
            run_closed: run.closed_at.is_some(),
            gate: self.gate()?,
            required: self.required,
            kind: self.kind()?,
            status: self.status()?,
            evidence_required: self.evidence_required,
            record: self.record()?,
        })
    }

    /// Who did the work: the assignee and everyone who changed it materially.
    pub(super) fn workers(&self) -> Vec<&str> {
        self.assignee
            .iter()
            .map(String::as_str)
            .chain(self.worked_by.iter().flat_map(|w| w.split(',')))
            .collect()
    }

    /// `signoffs`: the valid sign-offs of this item.
    pub(super) fn to_wire(
        &self,
        run_status: RunStatus,
        signoffs: &[&SignoffRow],
        probes: &ProbeContext,
    ) -> StoreResult<RunItem> {
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
                workers: self.workers().into_iter().fold(Vec::new(), |mut all, w| {
                    if !all.iter().any(|a: &String| a == w) {
                        all.push(w.to_owned());
                    }
                    all
                }),
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
            evidence: self.evidence_links()?,
            evidence_required: self.evidence_required,
            record: self.record()?,
            probe: self.probe_view(probes)?,
            skip_reason: self.skip_reason.clone(),
            version: self.version,
            updated_by: self.updated_by.clone(),
            updated_at: self.updated_at.map(utc),
            approval,
        })
    }
}

impl DecisionRow {
    pub(super) fn outcome(&self) -> StoreResult<Outcome> {
        Outcome::parse(&self.outcome).ok_or_else(|| corrupt("outcome", &self.outcome))
    }

    pub(super) fn to_wire(&self, superseded: bool) -> StoreResult<Decision> {
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
            unmet_confirmed: self.unmet_confirmed,
        })
    }
}

pub(super) fn load_run(conn: &mut AnyConnection, run_id: &str) -> StoreResult<RunRow> {
    r::table
        .find(run_id)
        .select(RunRow::as_select())
        .get_result(conn)
        .optional()?
        .ok_or(StoreError::NotFound("run"))
}

/// Takes the run's row lock before anything of the run is read, so that every change to a
/// run judges the state the previous change left (on PostgreSQL, where writers run
/// concurrently; SQLite has one writer anyway). Fails with `NotFound` for an unknown run.
pub(super) fn lock_run(conn: &mut AnyConnection, run_id: &str) -> StoreResult<()> {
    crate::native!(conn, |c| crate::Fixed(
        diesel::update(r::table.find(run_id))
            .set(r::last_seq.eq(r::last_seq))
            .returning(r::last_seq),
    )
    .get_result::<i64>(c)
    .optional())?
    .map(|_| ())
    .ok_or(StoreError::NotFound("run"))
}

pub(super) fn load_items(conn: &mut AnyConnection, run_id: &str) -> StoreResult<Vec<ItemRow>> {
    Ok(ri::table
        .filter(ri::run_id.eq(run_id))
        .order(ri::position.asc())
        .select(ItemRow::as_select())
        .load(conn)?)
}

/// The valid (not invalidated) sign-offs of a run, or of one item. (Two fixed queries rather
/// than one boxed one: diesel caches the prepared statements of fixed queries only.)
pub(super) fn load_signoffs(
    conn: &mut AnyConnection,
    run_id: &str,
    item_id: Option<&str>,
) -> StoreResult<Vec<SignoffRow>> {
    let valid = so::run_id.eq(run_id).and(so::invalidated_at.is_null());
    let order = (so::signed_at.asc(), so::id.asc());
    Ok(match item_id {
        Some(item) => crate::native!(conn, |c| so::table
            .filter(valid.and(so::item_id.eq(item)))
            .order(order)
            .select(SignoffRow::as_select())
            .load(c))?,
        None => so::table
            .filter(valid)
            .order(order)
            .select(SignoffRow::as_select())
            .load(conn)?,
    })
}

pub(super) fn load_members(conn: &mut AnyConnection, run_id: &str) -> StoreResult<Vec<RunMember>> {
    let rows: Vec<(String, String, String, String, String, NaiveDateTime)> =
        crate::native!(conn, |c| m::table
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
            .load(c))?;
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

pub(super) fn item_signoffs<'a>(signoffs: &'a [SignoffRow], item_id: &str) -> Vec<&'a SignoffRow> {
    signoffs.iter().filter(|s| s.item_id == item_id).collect()
}

pub(super) fn load_item(
    conn: &mut AnyConnection,
    run_id: &str,
    item_id: &str,
) -> StoreResult<ItemRow> {
    crate::native!(conn, |c| ri::table
        .filter(ri::id.eq(item_id).and(ri::run_id.eq(run_id)))
        .select(ItemRow::as_select())
        .get_result(c)
        .optional())?
    .ok_or(StoreError::NotFound("item"))
}

pub(super) fn load_decisions(
    conn: &mut AnyConnection,
    run_id: &str,
) -> StoreResult<Vec<DecisionRow>> {
    Ok(d::table
        .filter(d::run_id.eq(run_id))
        .order(d::seq.asc())
        .select(DecisionRow::as_select())
        .load(conn)?)
}

/// The latest outcome at each decision point.
pub(super) fn latest_outcomes(decisions: &[DecisionRow]) -> StoreResult<HashMap<&str, Outcome>> {
    let mut latest = HashMap::new();
    for row in decisions {
        latest.insert(row.point_key.as_str(), row.outcome()?);
    }
    Ok(latest)
}

/// What the gates need to know from outside the run's own rows.
pub(super) struct Surroundings {
    /// Another live run of the same product and environment.
    pub(super) other_live_run: Option<String>,
    /// The issues that stop it completing.
    pub(super) blocking_issues: Vec<IssueFacts>,
    /// What its environment says against moving on.
    pub(super) environment_blockers: Vec<Blocker>,
}

pub(super) fn facts(
    run: &RunRow,
    template: &Template,
    items: &[ItemRow],
    decisions: &[DecisionRow],
    probes: &ProbeContext,
    around: Surroundings,
) -> StoreResult<RunFacts> {
    let Surroundings {
        other_live_run,
        blocking_issues,
        environment_blockers,
    } = around;
    let latest = latest_outcomes(decisions)?;
    Ok(RunFacts {
        status: run.status()?,
        closed: run.closed_at.is_some(),
        items: items
            .iter()
            .map(|i| i.facts(probes))
            .collect::<StoreResult<_>>()?,
        points: PointFacts::of_template(template, |key| latest.get(key).copied()),
        other_live_run,
        now: probes.now,
        blocking_issues,
        environment_blockers,
    })
}

pub(super) fn check_if_match(
    what: &'static str,
    if_match: Option<&shipshape_domain::precondition::Versions>,
    current: i64,
) -> StoreResult<()> {
    match if_match {
        Some(v) if !v.admits(current) => Err(StoreError::PreconditionFailed { what, current }),
        _ => Ok(()),
    }
}

pub(super) fn naive(t: Option<DateTime<Utc>>) -> Option<NaiveDateTime> {
    t.map(|t| t.naive_utc())
}

pub(super) fn item_progress(items: &[&ItemRow], status: RunStatus) -> StoreResult<Progress> {
    let pairs = items
        .iter()
        .map(|i| Ok((i.status()?, i.applies()?)))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(progress(pairs, status))
}

/// The rows of one run that make up its whole view.
pub(super) struct RunRows {
    pub(super) run: RunRow,
    pub(super) template: Arc<Template>,
    pub(super) items: Vec<ItemRow>,
    pub(super) decisions: Vec<DecisionRow>,
    pub(super) signoffs: Vec<SignoffRow>,
    pub(super) members: Vec<RunMember>,
    /// For a planned run (the only kind a start applies to): a live run of the same product
    /// and environment, which would refuse the start.
    pub(super) other_live_run: Option<String>,
    /// The probe items' latest results and what their URLs are written with.
    pub(super) probes: ProbeContext,
    /// For a verifying run (the only kind a complete applies to): the issues that stop it
    /// completing.
    pub(super) blocking_issues: Vec<IssueFacts>,
    /// For a planned or preparing run (starting and deploying happen in the environment):
    /// what its environment says against moving on.
    pub(super) environment_blockers: Vec<Blocker>,
    /// For a planned or preparing run: the warnings about its schedule.
    pub(super) warnings: Vec<ScheduleWarning>,
    /// When what is read here may change by itself (its environment's lock or freeze, a
    /// probe result going stale), if it may.
    pub(super) changes_at: Option<DateTime<Utc>>,
}

/// Another live run of the run's product and environment, if any.
pub(super) fn find_other_live_run(
    conn: &mut AnyConnection,
    run: &RunRow,
) -> StoreResult<Option<String>> {
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

pub(super) fn load_rows(
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
    let items = load_items(conn, run_id)?;
    let blocking_issues = if run.status()? == RunStatus::Verifying {
        super::records::blocking_issues(conn, run_id)?
    } else {
        Vec::new()
    };
    let around = if run.closed_at.is_none()
        && matches!(run.status()?, RunStatus::Planned | RunStatus::Preparing)
    {
        crate::environments::run_environment(
            conn,
            &run.environment,
            &run.product,
            &run.release_version,
            (run.window_start, run.window_end),
        )?
    } else {
        crate::environments::RunEnvironment::default()
    };
    let probes = load_probe_context(conn, &run, &items)?;
    let changes_at = probes_change_at(&items, &probes)?
        .into_iter()
        .chain(around.changes_at)
        .min();
    Ok(RunRows {
        environment_blockers: around.blockers,
        warnings: around.warnings,
        changes_at,
        blocking_issues,
        other_live_run,
        template: templates.get(conn, &run.template_id, run.template_version)?,
        probes,
        items,
        decisions: load_decisions(conn, run_id)?,
        signoffs: load_signoffs(conn, run_id, None)?,
        members: load_members(conn, run_id)?,
        run,
    })
}

/// When the first of the probe results shown changes by itself: a fresh one goes stale, a
/// stale one's age moves on.
fn probes_change_at(
    items: &[ItemRow],
    probes: &ProbeContext,
) -> StoreResult<Option<DateTime<Utc>>> {
    let mut first: Option<DateTime<Utc>> = None;
    for item in items {
        let (Some(spec), Some(result)) = (item.probe_spec()?, probes.results.get(&item.id)) else {
            continue;
        };
        let checked_at = utc(result.checked_at);
        let stale_at = checked_at + chrono::Duration::seconds(i64::from(spec.ttl_secs));
        // A stale result's problem says its age, in whole seconds: it reads differently
        // each second.
        let at = if stale_at > probes.now {
            stale_at
        } else {
            checked_at + chrono::Duration::seconds((probes.now - checked_at).num_seconds() + 1)
        };
        first = Some(first.map_or(at, |f| f.min(at)));
    }
    Ok(first)
}

/// Where override review items are shown: after the template's own parts.
pub(super) const OVERRIDE_PART_TITLE: &str = "Emergency overrides";
pub(super) const OVERRIDE_SECTION_TITLE: &str = "Override reviews";

/// Assembles the whole run from its rows.
pub(super) fn assemble(rows: RunRows) -> StoreResult<Run> {
    let RunRows {
        run,
        template,
        items,
        decisions,
        signoffs,
        members,
        other_live_run,
        probes,
        blocking_issues,
        environment_blockers,
        warnings,
        changes_at: _,
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
                    .map(|i| i.to_wire(status, &item_signoffs(&signoffs, &i.id), &probes))
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
        .map(|p| {
            Ok(RunDecisionPoint {
                key: p.key.clone(),
                title: p.title.clone(),
                stage: p.stage,
                criteria: p.criteria.clone(),
                latest_outcome: latest.get(p.key.as_str()).copied(),
                measurements: measurements(p, items, status, &probes)?,
                deadline_secs: p.deadline_secs,
                default_outcome: p.deadline_secs.map(|_| p.deadline_outcome()),
                deadline: deadline(run, p, decisions)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    let wire_decisions = decisions_to_wire(decisions)?;
    let transitions = available_transitions(&facts(
        run,
        template,
        items,
        decisions,
        &probes,
        Surroundings {
            other_live_run,
            blocking_issues,
            environment_blockers,
        },
    )?);
    Ok(Run {
        warnings,
        commit_sha: run.commit_sha.clone(),
        committed_at: run.committed_at.map(utc),
        summary,
        parts,
        decision_points,
        decisions: wire_decisions,
        transitions,
        members,
    })
}

/// The criteria of a point the system measures, in the point's order: those probe items
/// measure, each with the latest result, and those the checklist answers, from the statuses
/// of the applicable items they count.
fn measurements(
    point: &DecisionPointSpec,
    items: &[ItemRow],
    run_status: RunStatus,
    probes: &ProbeContext,
) -> StoreResult<Vec<Measurement>> {
    let mut out = probe_measurements(point, items, probes)?;
    for counted in &point.item_criteria {
        let mut statuses = Vec::new();
        for item in items {
            if counted.counts(&item.reference, item.gate()?)
                && item_applies(item.applies()?, run_status)
            {
                statuses.push((item.reference.as_str(), item.status()?));
            }
        }
        let (result, observed) = assess_items(statuses);
        out.push(Measurement {
            criterion: counted.criterion.clone(),
            measured_by: counted.describe(),
            item_id: None,
            reference: None,
            result,
            observed: Some(observed),
            checked_at: None,
        });
    }
    out.sort_by_key(|m| point.criteria.iter().position(|c| *c == m.criterion));
    Ok(out)
}

/// The criteria of a point that probe items measure, each with the latest result.
fn probe_measurements(
    point: &DecisionPointSpec,
    items: &[ItemRow],
    probes: &ProbeContext,
) -> StoreResult<Vec<Measurement>> {
    let mut out = Vec::new();
    for cp in &point.probes {
        let Some(item) = items.iter().find(|i| i.reference == cp.reference) else {
            continue;
        };
        let Some(spec) = item.probe_spec()? else {
            continue;
        };
        let latest = probes.results.get(&item.id);
        let result = match latest {
            None => CriterionResult::Unknown,
            Some(r) if staleness(utc(r.checked_at), spec.ttl_secs, probes.now).is_some() => {
                CriterionResult::Unknown
            }
            Some(r) if r.passed => CriterionResult::Met,
            Some(_) => CriterionResult::NotMet,
        };
        out.push(Measurement {
            criterion: cp.criterion.clone(),
            measured_by: format!("probe {}", item.reference),
            item_id: Some(item.id.clone()),
            reference: Some(item.reference.clone()),
            result,
            observed: latest.map(|r| r.observed.clone().unwrap_or_else(|| r.summary.clone())),
            checked_at: latest.map(|r| utc(r.checked_at)),
        });
    }
    Ok(out)
}

/// When a point's deadline passes, while the run is at its stage and nobody has decided at
/// it since the stage began.
pub(super) fn deadline(
    run: &RunRow,
    point: &DecisionPointSpec,
    decisions: &[DecisionRow],
) -> StoreResult<Option<DateTime<Utc>>> {
    let (Some(secs), Some(entered)) = (point.deadline_secs, run.stage_entered_at) else {
        return Ok(None);
    };
    if run.closed_at.is_some() || run.status()?.decision_stage() != Some(point.stage) {
        return Ok(None);
    }
    let decided = decisions
        .iter()
        .any(|d| d.point_key == point.key && d.decided_at >= entered);
    Ok((!decided).then(|| utc(entered) + chrono::Duration::seconds(i64::from(secs))))
}

pub(super) fn decisions_to_wire(decisions: &[DecisionRow]) -> StoreResult<Vec<Decision>> {
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

pub(super) fn read_run(
    conn: &mut AnyConnection,
    templates: &TemplateCache,
    run_id: &str,
) -> StoreResult<Run> {
    assemble(load_rows(conn, templates, run_id)?)
}

/// A probe item's check as stored: JSON, `None` for other items.
pub(crate) fn probe_column(item: &ItemSpec) -> StoreResult<Option<String>> {
    item.probe
        .as_ref()
        .map(|p| serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
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
