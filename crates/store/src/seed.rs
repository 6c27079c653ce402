//! Bulk seeding of a realistic history of finished runs, for demos (`shipshape seed-demo`:
//! so Insights has something to show on a fresh install) and the benchmark harness (lists
//! and insights "at 10,000 runs"): multi-row inserts in large transactions, not one HTTP call
//! per run.
//!
//! The history is made up but shaped like a team's: runs spread over the period, most
//! completing, some rolled back (more often when risky items were skipped), a few aborted;
//! commit times before each run; items timed through their stages; decisions at the
//! template's decision points. Each run's log holds only its creation event (marked
//! `seeded`): the states are written directly.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use shipshape_domain::Role;
use shipshape_domain::decision::Outcome;
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::RunStatus;
use shipshape_domain::template::{Applicability, DecisionStage, Gate, ItemKind};

use crate::runs::{approvers_column, probe_column};
use crate::schema::{
    decisions as d, item_blocks as ib, run_events as ev, run_items as ri, runs as r,
};
use crate::templates::load_version;
use crate::{AnyConnection, Store, StoreResult, new_id, now};

/// Rows per multi-row insert (well under both backends' bind-parameter limits).
const CHUNK: usize = 500;

/// Environments seeded runs go to, most often the first.
pub const SEED_ENVIRONMENTS: [&str; 3] = ["production", "staging", "qa"];

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// The template the runs are of (its latest version).
    pub template_id: String,
    /// How many runs.
    pub runs: usize,
    /// Products the runs release (one each, spread).
    pub products: Vec<String>,
    /// The runs finish over the last this many days.
    pub days: i64,
    /// Varies the history; the same seed gives the same shape.
    pub seed: u64,
}

/// A small deterministic generator (SplitMix64): no dependency, the same history for the
/// same seed.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0.0..1.0`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Minutes between `lo` and `hi`.
    fn minutes(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::minutes(
            lo + i64::try_from(self.next() % u64::try_from(hi - lo + 1).unwrap_or(1)).unwrap_or(0),
        )
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// How likely an item at a position is skipped: most hardly ever, a few often (the same
/// positions in every run, as with a real team's habits).
fn skip_propensity(position: usize) -> f64 {
    match position {
        3 => 0.2,
        14 | 25 => 0.1,
        _ => 0.01,
    }
}

/// The position whose skipping makes a failure likelier.
const RISKY: usize = 3;

impl Store {
    /// Inserts `count` finished runs of a template spread over the last two years (the
    /// benchmark's seed); products `"{product} 0"` to `"{product} 4"`. Returns how many.
    pub fn seed_runs(&self, template_id: &str, count: usize, product: &str) -> StoreResult<usize> {
        self.seed_history(&SeedPlan {
            template_id: template_id.to_owned(),
            runs: count,
            products: (0..5).map(|n| format!("{product} {n}")).collect(),
            days: 730,
            seed: 7,
        })
    }

    /// Inserts a history of finished runs as `plan` says. Returns how many runs.
    pub fn seed_history(&self, plan: &SeedPlan) -> StoreResult<usize> {
        let (_, version) = self.read(|conn| load_version(conn, &plan.template_id, None))?;
        let template = version.template()?;
        let specs: Vec<_> = template.items().collect();
        let points = template.decision_points().to_vec();
        let products = if plan.products.is_empty() {
            vec!["Demo".to_owned()]
        } else {
            plan.products.clone()
        };
        let end = now();
        let span = Duration::days(plan.days.max(1));
        let mut dice = Dice(plan.seed);
        self.write(|conn| {
            for environment in SEED_ENVIRONMENTS {
                crate::environments::ensure_environment(conn, environment, "seed", end)?;
            }
            Ok(())
        })?;
        let mut done = 0;
        while done < plan.runs {
            let batch = CHUNK.min(plan.runs - done);
            self.write(|conn| {
                let mut runs = Vec::with_capacity(batch);
                let mut items = Vec::with_capacity(batch * specs.len());
                let mut events = Vec::with_capacity(batch);
                let mut decisions = Vec::new();
                let mut blocks = Vec::new();
                for n in done..done + batch {
                    let id = new_id();
                    let product_index =
                        usize::try_from(dice.next() % products.len() as u64).unwrap_or(0);
                    let environment = match dice.unit() {
                        x if x < 0.45 => SEED_ENVIRONMENTS[0],
                        x if x < 0.8 => SEED_ENVIRONMENTS[1],
                        _ => SEED_ENVIRONMENTS[2],
                    };
                    // Oldest first, evenly over the span, each a few hours apart at most.
                    let progress = (n as f64 + dice.unit()) / plan.runs.max(1) as f64;
                    let created = end - span
                        + Duration::seconds((span.num_seconds() as f64 * progress) as i64)
                        - Duration::hours(12);
                    let started = created + dice.minutes(30, 600);
                    let deploying = started + dice.minutes(20, 120);
                    let verifying = deploying + dice.minutes(10, 60);
                    let completing = verifying + dice.minutes(10, 60);

                    // Preparation items first: skipping the risky ones makes failure likelier.
                    let mut statuses = Vec::with_capacity(specs.len());
                    let mut risky_skips = 0;
                    for (position, (_, _, _, spec)) in specs.iter().enumerate() {
                        let skipped = spec.kind != ItemKind::Approval
                            && dice.chance(skip_propensity(position));
                        if skipped && position == RISKY {
                            risky_skips += 1;
                        }
                        statuses.push(skipped);
                    }
                    // Teams get better: failures are likelier early in the history, and
                    // differ by product.
                    let base = 0.03 + 0.06 * (1.0 - progress) + 0.015 * product_index as f64;
                    let fail = dice.chance(base + 0.25 * f64::from(risky_skips));
                    let abort = !fail && dice.chance(0.05);
                    let (status, finished, rollback_at) = if abort {
                        (RunStatus::Aborted, deploying, None)
                    } else if fail {
                        let decided = if dice.chance(0.5) {
                            deploying + dice.minutes(5, 40)
                        } else {
                            verifying + dice.minutes(5, 40)
                        };
                        (
                            RunStatus::RolledBack,
                            decided + dice.minutes(10, 180),
                            Some(decided),
                        )
                    } else {
                        (RunStatus::Completed, completing, None)
                    };
                    let committed = dice
                        .chance(0.85)
                        .then(|| started - dice.minutes(60, 60 * 24 * 6));
                    let sha = format!(
                        "{:016x}{:016x}{:08x}",
                        dice.next(),
                        dice.next(),
                        dice.next() as u32
                    );
                    let overridden = dice.chance(0.02);
                    runs.push((
                        r::id.eq(id.clone()),
                        r::template_id.eq(version.template_id.clone()),
                        r::template_version.eq(version.version),
                        r::template_name.eq(version.name.clone()),
                        r::product.eq(products[product_index].clone()),
                        r::release_version.eq(format!("1.{}.{}", n / 10, n % 10)),
                        r::environment.eq(environment),
                        r::status.eq(status.as_str()),
                        r::created_by.eq("seed"),
                        r::created_at.eq(created),
                        r::updated_at.eq(finished),
                        r::closed_at.eq(Some(finished + dice.minutes(10, 600))),
                        r::last_seq.eq(1_i64),
                        r::overridden.eq(overridden),
                        r::stage_entered_at.eq(Some(finished)),
                        (
                            r::commit_sha.eq(committed.map(|_| sha)),
                            r::committed_at.eq(committed),
                            r::started_at.eq(Some(started)),
                            r::finished_at.eq(Some(finished)),
                            r::rollback_decided_at.eq(rollback_at),
                        ),
                    ));
                    let reached = |gate: Gate| -> Option<NaiveDateTime> {
                        // When the stage an item is worked in began, if the run got there.
                        let (stage_start, needs) = match gate {
                            Gate::Deploy => (started, started),
                            Gate::Verify => (deploying, deploying),
                            Gate::Complete => (verifying, verifying),
                            Gate::Close => (finished, finished),
                        };
                        (needs <= finished
                            && (status == RunStatus::Completed
                                || gate == Gate::Deploy
                                || (status == RunStatus::RolledBack && gate == Gate::Verify)))
                            .then_some(stage_start)
                    };
                    for (position, (pi, si, ii, spec)) in specs.iter().enumerate() {
                        let applies = shipshape_domain::run::item_applies(spec.applies, status);
                        let worked = if !applies {
                            None
                        } else if spec.applies == Applicability::AfterRollback {
                            Some(finished)
                        } else {
                            reached(spec.gate)
                        };
                        let item_id = new_id();
                        let (item_status, started_at, finished_at) = match worked {
                            None => (ItemStatus::Pending, None, None),
                            Some(_) if statuses[position] => {
                                (ItemStatus::Skipped, None, Some(finished))
                            }
                            Some(stage) => {
                                let begin = stage + dice.minutes(0, 20);
                                let mean = 3 + i64::try_from(position % 7).unwrap_or(0) * 6;
                                let end_at = begin + dice.minutes(1, mean * 2);
                                let timed = spec.kind != ItemKind::Approval && dice.chance(0.6);
                                (ItemStatus::Done, timed.then_some(begin), Some(end_at))
                            }
                        };
                        if worked.is_some() && spec.gate == Gate::Deploy && dice.chance(0.04) {
                            blocks.push((
                                ib::item_id.eq(item_id.clone()),
                                ib::kind.eq(if overridden { "overridden" } else { "refused" }),
                                ib::run_id.eq(id.clone()),
                                ib::at.eq(started + dice.minutes(5, 60)),
                            ));
                        }
                        items.push((
                            ri::id.eq(item_id),
                            ri::run_id.eq(id.clone()),
                            ri::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
                            ri::part_index.eq(i32::try_from(*pi).unwrap_or(i32::MAX)),
                            ri::section_index.eq(i32::try_from(*si).unwrap_or(i32::MAX)),
                            ri::reference.eq(format!("{}.{}.{}", pi + 1, si + 1, ii + 1)),
                            ri::title.eq(spec.title.clone()),
                            ri::gate.eq(spec.gate.as_str()),
                            ri::applies.eq(spec.applies.as_str()),
                            ri::required.eq(spec.required),
                            ri::kind.eq(spec.kind.as_str()),
                            ri::role.eq(spec.role.map(Role::as_str)),
                            ri::guidance.eq(spec.guidance.clone()),
                            ri::approvers.eq(approvers_column(spec)),
                            (
                                ri::status.eq(item_status.as_str()),
                                ri::skip_reason.eq((item_status == ItemStatus::Skipped)
                                    .then_some("Not needed for this release")),
                                ri::version.eq(1_i64),
                                ri::probe.eq(probe_column(spec)?),
                                ri::evidence_required.eq(spec.evidence_required),
                                ri::record.eq(spec.record.map(|r| r.as_str())),
                                ri::started_at.eq(started_at),
                                ri::finished_at.eq(finished_at),
                            ),
                        ));
                    }
                    let mut rolled_back = false;
                    for point in &points {
                        if rolled_back {
                            break;
                        }
                        let stage_start = match point.stage {
                            DecisionStage::Preparing => started,
                            DecisionStage::Deploying => deploying,
                            DecisionStage::Verifying => verifying,
                        };
                        let outcome = match (status, point.stage) {
                            (RunStatus::Aborted, DecisionStage::Preparing) => Outcome::Abort,
                            (RunStatus::Aborted, _) => continue,
                            (RunStatus::RolledBack, _)
                                if rollback_at.is_some_and(|at| at < stage_start) =>
                            {
                                continue;
                            }
                            (
                                RunStatus::RolledBack,
                                DecisionStage::Deploying | DecisionStage::Verifying,
                            ) if rollback_at
                                .is_some_and(|at| at < stage_start + Duration::hours(2)) =>
                            {
                                Outcome::Rollback
                            }
                            _ => Outcome::Go,
                        };
                        rolled_back = outcome == Outcome::Rollback;
                        let decided_at = match (outcome, rollback_at) {
                            (Outcome::Rollback, Some(at)) => at,
                            _ => stage_start + dice.minutes(2, 45),
                        };
                        decisions.push((
                            d::id.eq(new_id()),
                            d::run_id.eq(id.clone()),
                            d::point_key.eq(point.key.clone()),
                            d::outcome.eq(outcome.as_str()),
                            d::rationale.eq("Seeded history"),
                            d::criteria.eq("[]"),
                            d::decided_by.eq("seed"),
                            d::decided_at.eq(decided_at),
                            d::seq.eq(1_i64),
                            d::stage_entered_at.eq(Some(stage_start)),
                        ));
                    }
                    events.push((
                        ev::run_id.eq(id),
                        ev::seq.eq(1_i64),
                        ev::event_type.eq("run_created"),
                        ev::actor.eq("seed"),
                        ev::at.eq(created),
                        ev::payload.eq("{\"seeded\":true}"),
                    ));
                }
                // Multi-row inserts are not available through the multi-backend connection;
                // the same statements run on the concrete one.
                macro_rules! insert_all {
                    ($c:expr) => {{
                        diesel::insert_into(r::table).values(&runs).execute($c)?;
                        for chunk in items.chunks(CHUNK) {
                            diesel::insert_into(ri::table).values(chunk).execute($c)?;
                        }
                        for chunk in decisions.chunks(CHUNK) {
                            diesel::insert_into(d::table).values(chunk).execute($c)?;
                        }
                        for chunk in blocks.chunks(CHUNK) {
                            diesel::insert_into(ib::table).values(chunk).execute($c)?;
                        }
                        diesel::insert_into(ev::table).values(&events).execute($c)?;
                    }};
                }
                match conn {
                    AnyConnection::Sqlite(c) => insert_all!(c),
                    AnyConnection::Postgresql(c) => insert_all!(c),
                }
                if done + batch >= plan.runs {
                    // With the last runs, in the same transaction: the weekly sums of every
                    // finished run, these included.
                    crate::insights::rebuild_rollups(conn)?;
                }
                // What was read of the runs (a page of the list) is stale now.
                crate::live::runs_changed(conn)?;
                Ok(())
            })?;
            done += batch;
        }
        // Fresh statistics, as autovacuum would gather them on a table that grew gradually;
        // without them PostgreSQL plans for the empty tables it last analysed.
        self.write(|conn| {
            use diesel::connection::SimpleConnection;
            match conn {
                AnyConnection::Postgresql(_) => conn.batch_execute(
                    "ANALYZE runs, run_items, run_events, decisions, item_blocks, item_rollups, \
                     decision_rollups",
                )?,
                AnyConnection::Sqlite(_) => conn.batch_execute("ANALYZE")?,
            }
            Ok(())
        })?;
        Ok(done)
    }
}
