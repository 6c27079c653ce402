//! Insights: delivery performance (the four DORA keys, with explicit failures: rollback
//! decisions) and checklist analytics (which items are skipped, slow, in the way).
//!
//! The store aggregates in SQL; what is left here is pure: the period and its checks, the
//! medians and rates, the DORA performance bands, and the report shapes the API answers
//! with (JSON, and CSV through [`csv`]).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::decision::Outcome;
use crate::run::RunStatus;
use crate::text::TextError;

/// The longest period asked for at once: two years.
pub const MAX_PERIOD_DAYS: i64 = 731;
/// The period when none is given: the last 90 days.
pub const DEFAULT_PERIOD_DAYS: i64 = 90;
/// How many items the "skipped before a rollback" list names at most.
pub const MAX_SKIP_RISKS: usize = 10;

/// A period of whole days, UTC, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Period {
    /// The first day.
    #[serde(deserialize_with = "crate::timestamp::deserialize_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub from: NaiveDate,
    /// The last day.
    #[serde(deserialize_with = "crate::timestamp::deserialize_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub to: NaiveDate,
    /// How many days it spans.
    pub days: i64,
}

impl Period {
    /// Reads `from` and `to` (`YYYY-MM-DD`, both optional): `to` defaults to `today`, `from`
    /// to [`DEFAULT_PERIOD_DAYS`] days ending on `to`. Refuses an empty period (`to` before
    /// `from`), one longer than [`MAX_PERIOD_DAYS`], and days outside 1970–9999.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        today: NaiveDate,
    ) -> Result<Self, TextError> {
        let day =
            |field: &'static str, text: Option<&str>| -> Result<Option<NaiveDate>, TextError> {
                text.map(|t| {
                    crate::timestamp::parse_date(t)
                        .filter(|d| d >= &earliest() && d.year_ce().1 <= 9999)
                        .ok_or_else(|| {
                            TextError::new(field, "must be a day YYYY-MM-DD between 1970 and 9999")
                        })
                })
                .transpose()
            };
        let to = day("to", to)?.unwrap_or(today);
        let from = match day("from", from)? {
            Some(from) => from,
            None => to
                .checked_sub_signed(Duration::days(DEFAULT_PERIOD_DAYS - 1))
                .unwrap_or(to),
        };
        if to < from {
            return Err(TextError::new(
                "to",
                "the period is empty: `to` comes before `from`",
            ));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_PERIOD_DAYS {
            return Err(TextError::new(
                "from",
                format!(
                    "a period spans at most {MAX_PERIOD_DAYS} days (two years); this one spans {days}"
                ),
            ));
        }
        Ok(Period { from, to, days })
    }

    /// The period of the same length just before this one (for comparison), cut at 1970;
    /// none (0 days) before a period that starts on 1970-01-01.
    pub fn previous(&self) -> Period {
        let Some(to) = self.from.pred_opt().filter(|d| *d >= earliest()) else {
            return Period {
                from: self.from,
                to: self.from,
                days: 0,
            };
        };
        let from = to
            .checked_sub_signed(Duration::days(self.days - 1))
            .unwrap_or(to)
            .max(earliest());
        Period {
            from,
            to,
            days: (to - from).num_days() + 1,
        }
    }

    /// Its first instant.
    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(NaiveTime::MIN).and_utc()
    }

    /// The instant after its last day.
    pub fn end(&self) -> DateTime<Utc> {
        self.start() + Duration::days(self.days)
    }

    /// Whether `at` falls in it.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start() <= at && at < self.end()
    }

    fn weeks(&self) -> f64 {
        self.days as f64 / 7.0
    }
}

fn earliest() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// A DORA performance band (thresholds after the 2023 State of DevOps report; see
/// [`METHODS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// The best performers.
    Elite,
    /// High performers.
    High,
    /// Medium performers.
    Medium,
    /// Low performers.
    Low,
}

impl Band {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }
}

/// The band of a deployment frequency (completed runs per week): daily or more is elite,
/// weekly high, monthly medium.
pub fn frequency_band(per_week: f64) -> Band {
    if per_week >= 7.0 {
        Band::Elite
    } else if per_week >= 1.0 {
        Band::High
    } else if per_week >= 12.0 / 52.0 {
        Band::Medium
    } else {
        Band::Low
    }
}

/// The band of a lead time for changes, in hours: under a day is elite, up to a week high,
/// up to a month medium.
pub fn lead_time_band(hours: f64) -> Band {
    if hours < 24.0 {
        Band::Elite
    } else if hours <= 168.0 {
        Band::High
    } else if hours <= 720.0 {
        Band::Medium
    } else {
        Band::Low
    }
}

/// The band of a change failure rate, in percent: up to 5 % is elite, 10 % high, 15 %
/// medium.
pub fn failure_band(percent: f64) -> Band {
    if percent <= 5.0 {
        Band::Elite
    } else if percent <= 10.0 {
        Band::High
    } else if percent <= 15.0 {
        Band::Medium
    } else {
        Band::Low
    }
}

/// The band of a time to restore, in hours: under an hour is elite, under a day high, up to
/// a week medium.
pub fn restore_band(hours: f64) -> Band {
    if hours < 1.0 {
        Band::Elite
    } else if hours < 24.0 {
        Band::High
    } else if hours <= 168.0 {
        Band::Medium
    } else {
        Band::Low
    }
}

/// How each delivery metric is computed and banded, in words (the API answers with it, and
/// the web app shows it next to the numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricMethod {
    /// The metric's key in a [`DeliveryGroup`].
    pub key: String,
    /// Its name.
    pub name: String,
    /// How it is computed.
    pub computed: String,
    /// Its bands.
    pub bands: String,
}

/// Keys, names, computations and bands of the delivery metrics.
pub const METHODS: [(&str, &str, &str, &str); 5] = [
    (
        "deployment_frequency",
        "Deployment frequency",
        "Runs that reached `completed` in the period, per week (days in the period ÷ 7).",
        "elite: 7 or more a week (daily or on demand); high: 1 or more a week; medium: about \
         monthly (12 a year) or more; low: less.",
    ),
    (
        "lead_time",
        "Lead time for changes",
        "Median time from the run's `committed_at` (set by the tool that created it) to the \
         run reaching `completed`, over completed runs that carry one.",
        "elite: under a day; high: up to a week; medium: up to 30 days; low: longer.",
    ),
    (
        "change_failure_rate",
        "Change failure rate",
        "Runs that failed (a rollback was decided, or the run rolled back) over finished \
         deployments (completed plus failed) in the period. Aborted runs never deployed and \
         are not counted.",
        "elite: 5 % or less; high: up to 10 %; medium: up to 15 %; low: more.",
    ),
    (
        "time_to_restore",
        "Time to restore (rollback)",
        "Median time from the rollback decision to the run reaching `rolled_back`, over the \
         period's rolled-back runs.",
        "elite: under an hour; high: under a day; medium: up to a week; low: longer.",
    ),
    (
        "time_to_next_success",
        "Time to the next success",
        "Median time from the rollback decision to the next run of the same product and \
         environment that completed, over the period's failures followed by one.",
        "as time to restore.",
    ),
];

/// The methods as the API writes them.
pub fn methods() -> Vec<MetricMethod> {
    METHODS
        .iter()
        .map(|(key, name, computed, bands)| MetricMethod {
            key: (*key).to_owned(),
            name: (*name).to_owned(),
            computed: (*computed).to_owned(),
            bands: (*bands).to_owned(),
        })
        .collect()
}

/// One delivery metric over the period, with the period before for comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metric {
    /// The value over the period; `null` when the period has nothing to compute it from
    /// (`note` says why), never a division by zero.
    pub value: Option<f64>,
    /// The same over the period before.
    pub previous: Option<f64>,
    /// What it is measured in: `per_week`, `hours` or `percent`.
    pub unit: String,
    /// The DORA band `value` falls in.
    pub band: Option<Band>,
    /// How many runs `value` is computed from.
    pub sample: u32,
    /// How many runs `previous` is computed from.
    pub previous_sample: u32,
    /// Why there is no value.
    pub note: Option<String>,
}

/// One week of a period (the last may be shorter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeekPoint {
    /// Its first day.
    #[serde(deserialize_with = "crate::timestamp::deserialize_date")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub start: NaiveDate,
    /// How many of the period's days it holds (7 but for the last).
    pub days: i64,
    /// Runs that completed in it.
    pub deployments: u32,
    /// Runs that failed in it.
    pub failures: u32,
    /// Failures over finished deployments, in percent (`null` with none).
    pub failure_rate: Option<f64>,
    /// Median lead time of its completed runs, in hours (`null` with none timed).
    pub lead_time_hours: Option<f64>,
}

/// The delivery metrics of one product and environment (or of all, in `overall`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryGroup {
    /// The product (`null` in `overall`).
    pub product: Option<String>,
    /// The environment (`null` in `overall`).
    pub environment: Option<String>,
    /// Runs that completed in the period.
    pub deployments: u32,
    /// Runs that failed in the period.
    pub failures: u32,
    /// Completed runs per week.
    pub deployment_frequency: Metric,
    /// Commit to completed, median hours.
    pub lead_time: Metric,
    /// Failures over finished deployments, percent.
    pub change_failure_rate: Metric,
    /// Rollback decision to rolled back, median hours.
    pub time_to_restore: Metric,
    /// Rollback decision to the next completed run, median hours.
    pub time_to_next_success: Metric,
    /// The period week by week.
    pub weeks: Vec<WeekPoint>,
}

/// Delivery performance over a period: overall and per product and environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryReport {
    /// The period.
    pub period: Period,
    /// The period before, of the same length, for comparison.
    pub previous_period: Period,
    /// The product asked for, if one was.
    pub product: Option<String>,
    /// The environment asked for, if one was.
    pub environment: Option<String>,
    /// The template asked for, if one was.
    pub template_id: Option<String>,
    /// Whether no run finished in the period (nor in the one before).
    pub empty: bool,
    /// What an empty answer means, in a sentence.
    pub message: Option<String>,
    /// Everything the filters selected.
    pub overall: DeliveryGroup,
    /// Per product and environment, sorted by both.
    pub groups: Vec<DeliveryGroup>,
    /// How each metric is computed and banded.
    pub methods: Vec<MetricMethod>,
}

/// A run's outcome as the delivery metrics read it (one row of the store's query).
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The product.
    pub product: String,
    /// The environment.
    pub environment: String,
    /// Where it stands.
    pub status: RunStatus,
    /// When it reached completed, rolled back or aborted.
    pub finished_at: Option<DateTime<Utc>>,
    /// The deployed commit's time.
    pub committed_at: Option<DateTime<Utc>>,
    /// When a rollback was first decided.
    pub rollback_decided_at: Option<DateTime<Utc>>,
    /// When the next run of its product and environment completed after the rollback
    /// decision.
    pub next_success_at: Option<DateTime<Utc>>,
}

impl RunOutcome {
    /// Whether the deployment failed: a rollback was decided, or it rolled back.
    pub fn failed(&self) -> bool {
        self.rollback_decided_at.is_some()
            || matches!(self.status, RunStatus::RollingBack | RunStatus::RolledBack)
    }

    /// When it counts: its outcome, or the rollback decision of one still rolling back.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        self.finished_at.or(self.rollback_decided_at)
    }
}

/// The median, `None` for none.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
    let secs = (to - from).num_seconds();
    (secs >= 0).then(|| secs as f64 / 3600.0)
}

/// `part` of `whole` in percent, `None` when `whole` is 0.
pub fn percent(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) * 100.0 / f64::from(whole))
}

#[derive(Default)]
struct Tally {
    completed: u32,
    failed: u32,
    rolled_back: u32,
    lead: Vec<f64>,
    restore: Vec<f64>,
    next: Vec<f64>,
}

impl Tally {
    fn of<'a>(rows: impl Iterator<Item = &'a RunOutcome>) -> Tally {
        let mut t = Tally::default();
        for row in rows {
            if row.failed() {
                t.failed += 1;
                if let Some(decided) = row.rollback_decided_at {
                    if row.status == RunStatus::RolledBack {
                        t.rolled_back += 1;
                        if let Some(h) = row.finished_at.and_then(|f| hours(decided, f)) {
                            t.restore.push(h);
                        }
                    }
                    if let Some(h) = row.next_success_at.and_then(|n| hours(decided, n)) {
                        t.next.push(h);
                    }
                }
            } else if row.status == RunStatus::Completed {
                t.completed += 1;
                if let (Some(c), Some(f)) = (row.committed_at, row.finished_at)
                    && let Some(h) = hours(c, f)
                {
                    t.lead.push(h);
                }
            }
        }
        t
    }
}

fn sample(v: &[f64]) -> u32 {
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}

fn metric(
    unit: &str,
    band: fn(f64) -> Band,
    value: (Option<f64>, u32),
    previous: (Option<f64>, u32),
    why_none: &str,
) -> Metric {
    Metric {
        value: value.0,
        previous: previous.0,
        unit: unit.to_owned(),
        band: value.0.map(band),
        sample: value.1,
        previous_sample: previous.1,
        note: value.0.is_none().then(|| why_none.to_owned()),
    }
}

fn group(
    product: Option<String>,
    environment: Option<String>,
    rows: &[&RunOutcome],
    period: &Period,
    previous: &Period,
) -> DeliveryGroup {
    let in_period = |p: Period| {
        rows.iter()
            .copied()
            .filter(move |r| r.at().is_some_and(|at| p.contains(at)))
    };
    let mut cur = Tally::of(in_period(*period));
    let mut prev = Tally::of(in_period(*previous));
    let finished = |t: &Tally| t.completed + t.failed;
    let frequency = |t: &Tally, p: &Period| {
        (
            (p.days > 0).then(|| f64::from(t.completed) / p.weeks()),
            t.completed,
        )
    };
    let weeks = (0..)
        .map(|i| period.from + Duration::days(7 * i))
        .take_while(|start| *start <= period.to)
        .map(|start| {
            let days = ((period.to - start).num_days() + 1).min(7);
            let week = Period {
                from: start,
                to: start + Duration::days(days - 1),
                days,
            };
            let mut t = Tally::of(in_period(week));
            WeekPoint {
                start,
                days,
                deployments: t.completed,
                failures: t.failed,
                failure_rate: percent(t.failed, finished(&t)),
                lead_time_hours: median(&mut t.lead),
            }
        })
        .collect();
    DeliveryGroup {
        product,
        environment,
        deployments: cur.completed,
        failures: cur.failed,
        deployment_frequency: metric(
            "per_week",
            frequency_band,
            frequency(&cur, period),
            frequency(&prev, previous),
            "",
        ),
        lead_time: metric(
            "hours",
            lead_time_band,
            (median(&mut cur.lead), sample(&cur.lead)),
            (median(&mut prev.lead), sample(&prev.lead)),
            "no completed run in the period carries a commit time (`committed_at`)",
        ),
        change_failure_rate: metric(
            "percent",
            failure_band,
            (percent(cur.failed, finished(&cur)), finished(&cur)),
            (percent(prev.failed, finished(&prev)), finished(&prev)),
            "no deployment finished in the period",
        ),
        time_to_restore: metric(
            "hours",
            restore_band,
            (median(&mut cur.restore), sample(&cur.restore)),
            (median(&mut prev.restore), sample(&prev.restore)),
            "no run rolled back in the period",
        ),
        time_to_next_success: metric(
            "hours",
            restore_band,
            (median(&mut cur.next), sample(&cur.next)),
            (median(&mut prev.next), sample(&prev.next)),
            "no failure in the period was followed by a completed run",
        ),
        weeks,
    }
}

/// The delivery report of `rows` (the runs the filters selected, finished in `period` or
/// the period before).
pub fn delivery(
    rows: &[RunOutcome],
    period: Period,
    product: Option<String>,
    environment: Option<String>,
    template_id: Option<String>,
) -> DeliveryReport {
    let previous = period.previous();
    let all: Vec<&RunOutcome> = rows.iter().collect();
    let overall = group(None, None, &all, &period, &previous);
    let mut keys: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.product.as_str(), r.environment.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let groups = keys
        .into_iter()
        .map(|(p, e)| {
            let mine: Vec<&RunOutcome> = rows
                .iter()
                .filter(|r| r.product == p && r.environment == e)
                .collect();
            group(
                Some(p.to_owned()),
                Some(e.to_owned()),
                &mine,
                &period,
                &previous,
            )
        })
        .collect();
    let empty = rows.is_empty();
    let message = empty.then(|| {
        let mut what = String::from("No run");
        if let Some(p) = &product {
            what.push_str(&format!(" of product `{p}`"));
        }
        if let Some(e) = &environment {
            what.push_str(&format!(" in environment `{e}`"));
        }
        if let Some(t) = &template_id {
            what.push_str(&format!(" from template `{t}`"));
        }
        format!(
            "{what} completed or rolled back between {} and {} (nor in the {} days before): \
             there is nothing to measure yet.",
            period.from, period.to, period.days
        )
    });
    DeliveryReport {
        period,
        previous_period: previous,
        product,
        environment,
        template_id,
        empty,
        message,
        overall,
        groups,
        methods: methods(),
    }
}

/// One checklist item's numbers, summed over its runs (SQL's answer, per template version
/// and position).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemTally {
    /// The template version.
    pub version: i32,
    /// The item's position in that version.
    pub position: i32,
    /// Finished runs that had it.
    pub runs: u32,
    /// How often it ended skipped.
    pub skipped: u32,
    /// How often it ended skipped although required (a waiver).
    pub waived: u32,
    /// How often it was skipped in a run that failed.
    pub skipped_in_failed: u32,
    /// Seconds in progress, summed over the runs that put it in progress and finished it.
    pub in_progress_secs: f64,
    /// How many runs those were.
    pub timed: u32,
    /// Runs in which it stood in the way of a transition.
    pub blocked: u32,
    /// Runs in which an override went past it.
    pub overridden: u32,
    /// Seconds from the run's start to its approval, summed (approval items).
    pub approval_wait_secs: f64,
    /// How many approvals those were.
    pub approvals: u32,
}

impl ItemTally {
    /// Adds `other`'s numbers (the same item's, from elsewhere) to these; its blocks too.
    pub fn add(&mut self, other: &ItemTally) {
        self.runs += other.runs;
        self.skipped += other.skipped;
        self.waived += other.waived;
        self.skipped_in_failed += other.skipped_in_failed;
        self.in_progress_secs += other.in_progress_secs;
        self.timed += other.timed;
        self.blocked += other.blocked;
        self.overridden += other.overridden;
        self.approval_wait_secs += other.approval_wait_secs;
        self.approvals += other.approvals;
    }
}

/// One decision point's decisions with one outcome (SQL's answer).
#[derive(Debug, Clone, PartialEq)]
pub struct PointTally {
    /// The point's key.
    pub key: String,
    /// The outcome.
    pub outcome: Outcome,
    /// How many decisions.
    pub decisions: u32,
    /// Seconds from the stage's start to the decision, summed over the timed ones.
    pub decide_secs: f64,
    /// How many were timed.
    pub timed: u32,
}

/// A checklist item as the analytics show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemInsight {
    /// Its reference, e.g. `2.1.3`.
    pub reference: String,
    /// Its wording.
    pub title: String,
    /// Its kind (`task`, `approval`, `probe`, …).
    pub kind: String,
    /// The transition it gates.
    pub gate: String,
    /// Whether the gate waits for it.
    pub required: bool,
    /// Finished runs that had it.
    pub runs: u32,
    /// How often it ended skipped.
    pub skipped: u32,
    /// How often it was skipped although required (waived).
    pub waived: u32,
    /// Skipped over runs, percent (`null` with no run).
    pub skip_rate: Option<f64>,
    /// Mean time in progress (from first put in progress to finished), minutes; `null` when
    /// no run put it in progress first.
    pub mean_in_progress_minutes: Option<f64>,
    /// Runs that timed it.
    pub timed: u32,
    /// Runs in which it stood in the way of a transition (refused, or overridden).
    pub blocked: u32,
    /// Runs in which an override went past it.
    pub overridden: u32,
    /// Mean wait from the run's start to the approval, minutes (approval items; `null`
    /// otherwise or with none).
    pub mean_approval_wait_minutes: Option<f64>,
    /// Approvals measured.
    pub approvals: u32,
    /// Runs that skipped it and then failed.
    pub skipped_then_failed: u32,
    /// Of the runs that skipped it, the percentage that failed (`null` if never skipped).
    pub failure_rate_when_skipped: Option<f64>,
}

/// A decision point's decisions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PointInsight {
    /// Its key.
    pub key: String,
    /// Its title.
    pub title: String,
    /// Decisions recorded.
    pub decisions: u32,
    /// Mean minutes from the stage's start (the point opening) to the decision.
    pub mean_minutes_to_decide: Option<f64>,
    /// Decisions timed.
    pub timed: u32,
    /// How many went `go`.
    pub go: u32,
    /// How many `hold`.
    pub hold: u32,
    /// How many `rollback`.
    pub rollback: u32,
    /// How many `abort`.
    pub abort: u32,
}

/// Checklist analytics of a template over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChecklistReport {
    /// The template.
    pub template_id: String,
    /// Its name.
    pub template_name: String,
    /// The version asked for (`null`: every version, items matched by reference and
    /// wording).
    pub version: Option<i32>,
    /// The period (runs that finished in it).
    pub period: Period,
    /// The product asked for, if one was.
    pub product: Option<String>,
    /// The environment asked for, if one was.
    pub environment: Option<String>,
    /// Finished runs counted (completed, rolled back, aborted).
    pub runs: u32,
    /// Of them, runs that failed (a rollback decided or rolled back).
    pub failed_runs: u32,
    /// Failed over counted runs, percent: the base rate `failure_rate_when_skipped` compares
    /// with.
    pub failure_rate: Option<f64>,
    /// Whether no run counted.
    pub empty: bool,
    /// What an empty answer means.
    pub message: Option<String>,
    /// Every item of the template, in checklist order.
    pub items: Vec<ItemInsight>,
    /// Every decision point.
    pub decision_points: Vec<PointInsight>,
    /// Items whose skipping most often preceded a failure, worst first (at most 10).
    pub skipped_before_rollback: Vec<ItemInsight>,
}

/// What the checklist analytics know of a template version's item at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey {
    /// Reference.
    pub reference: String,
    /// Wording.
    pub title: String,
    /// Kind.
    pub kind: String,
    /// Gate.
    pub gate: String,
    /// Required.
    pub required: bool,
}

fn mean_minutes(secs: f64, n: u32) -> Option<f64> {
    (n > 0).then(|| secs / 60.0 / f64::from(n))
}

/// The checklist report: `items(version, position)` names the template's items (positions
/// it does not know, such as an override's review item, are left out); `points` names the
/// decision points by key, in order.
#[allow(clippy::too_many_arguments)]
pub fn checklist(
    template: (&str, &str, Option<i32>),
    period: Period,
    filters: (Option<String>, Option<String>),
    (runs, failed_runs): (u32, u32),
    tallies: &[ItemTally],
    items: impl Fn(i32, i32) -> Option<ItemKey>,
    points: &[(String, String)],
    point_tallies: &[PointTally],
) -> ChecklistReport {
    // Items in checklist order (the newest version's order first, then the rest), merged
    // across versions by reference and wording.
    let mut ordered: Vec<(i32, i32, &ItemTally)> = tallies
        .iter()
        .map(|t| (-t.version, t.position, t))
        .collect();
    ordered.sort_by_key(|(v, p, _)| (*v, *p));
    let mut merged: Vec<(ItemKey, ItemTally)> = Vec::new();
    for (_, _, t) in ordered {
        let Some(key) = items(t.version, t.position) else {
            continue;
        };
        match merged
            .iter_mut()
            .find(|(k, _)| k.reference == key.reference && k.title == key.title)
        {
            Some((_, sum)) => sum.add(t),
            None => merged.push((key, t.clone())),
        }
    }
    merged.sort_by(|(a, _), (b, _)| {
        reference_order(&a.reference).cmp(&reference_order(&b.reference))
    });
    let items: Vec<ItemInsight> = merged
        .into_iter()
        .map(|(k, t)| ItemInsight {
            reference: k.reference,
            title: k.title,
            kind: k.kind,
            gate: k.gate,
            required: k.required,
            runs: t.runs,
            skipped: t.skipped,
            waived: t.waived,
            skip_rate: percent(t.skipped, t.runs),
            mean_in_progress_minutes: mean_minutes(t.in_progress_secs, t.timed),
            timed: t.timed,
            blocked: t.blocked,
            overridden: t.overridden,
            mean_approval_wait_minutes: mean_minutes(t.approval_wait_secs, t.approvals),
            approvals: t.approvals,
            skipped_then_failed: t.skipped_in_failed,
            failure_rate_when_skipped: percent(t.skipped_in_failed, t.skipped),
        })
        .collect();
    let mut risks: Vec<ItemInsight> = items
        .iter()
        .filter(|i| i.skipped_then_failed > 0)
        .cloned()
        .collect();
    risks.sort_by(|a, b| {
        b.skipped_then_failed.cmp(&a.skipped_then_failed).then(
            b.failure_rate_when_skipped
                .unwrap_or(0.0)
                .total_cmp(&a.failure_rate_when_skipped.unwrap_or(0.0)),
        )
    });
    risks.truncate(MAX_SKIP_RISKS);
    let decision_points = points
        .iter()
        .map(|(key, title)| {
            let mine = point_tallies.iter().filter(|t| &t.key == key);
            let mut p = PointInsight {
                key: key.clone(),
                title: title.clone(),
                decisions: 0,
                mean_minutes_to_decide: None,
                timed: 0,
                go: 0,
                hold: 0,
                rollback: 0,
                abort: 0,
            };
            let mut secs = 0.0;
            for t in mine {
                p.decisions += t.decisions;
                p.timed += t.timed;
                secs += t.decide_secs;
                *match t.outcome {
                    Outcome::Go => &mut p.go,
                    Outcome::Hold => &mut p.hold,
                    Outcome::Rollback => &mut p.rollback,
                    Outcome::Abort => &mut p.abort,
                } += t.decisions;
            }
            p.mean_minutes_to_decide = mean_minutes(secs, p.timed);
            p
        })
        .collect();
    let (template_id, template_name, version) = template;
    let (product, environment) = filters;
    let empty = runs == 0;
    let message = empty.then(|| {
        let mut what = format!("No run of template `{template_id}`");
        if let Some(v) = version {
            what.push_str(&format!(" version {v}"));
        }
        if let Some(p) = &product {
            what.push_str(&format!(" for product `{p}`"));
        }
        if let Some(e) = &environment {
            what.push_str(&format!(" in environment `{e}`"));
        }
        format!(
            "{what} finished between {} and {}: there is nothing to measure yet.",
            period.from, period.to
        )
    });
    ChecklistReport {
        template_id: template_id.to_owned(),
        template_name: template_name.to_owned(),
        version,
        period,
        product,
        environment,
        runs,
        failed_runs,
        failure_rate: percent(failed_runs, runs),
        empty,
        message,
        items,
        decision_points,
        skipped_before_rollback: risks,
    }
}

/// `1.10.2` after `1.9.2`.
fn reference_order(reference: &str) -> Vec<u32> {
    reference
        .split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect()
}

/// RFC 4180 CSV: a header, then rows; fields with commas, quotes or line breaks quoted.
/// A text field a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is
/// prefixed with `'`; numbers are written as they are.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let mut line = |fields: &mut dyn Iterator<Item = &str>| {
        let mut first = true;
        for field in fields {
            if !first {
                out.push(',');
            }
            first = false;
            let guarded =
                if !is_number(field) && field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    format!("'{field}")
                } else {
                    field.to_owned()
                };
            if guarded.contains([',', '"', '\n', '\r']) {
                out.push('"');
                out.push_str(&guarded.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(&guarded);
            }
        }
        out.push_str("\r\n");
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Whether a field is a plain decimal number (`-3.5`), read without a float parser (the web
/// app writes CSV too, and its size is budgeted).
fn is_number(field: &str) -> bool {
    let digits = field.strip_prefix('-').unwrap_or(field);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// A number for CSV and tables: rounded to two decimals, trailing zeros dropped; empty for
/// `None`. Written with integer arithmetic, without the float formatter (the web app's size
/// is budgeted).
pub fn number(value: Option<f64>) -> String {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return String::new();
    };
    let hundredths = (v * 100.0).round() as i64;
    let sign = if hundredths < 0 { "-" } else { "" };
    let abs = hundredths.unsigned_abs();
    let (whole, fraction) = (abs / 100, abs % 100);
    match fraction {
        0 => format!("{sign}{whole}"),
        f if f % 10 == 0 => format!("{sign}{whole}.{}", f / 10),
        f => format!("{sign}{whole}.{f:02}"),
    }
}

impl DeliveryReport {
    /// As CSV: one row per group and metric, the overall group first (product and
    /// environment empty).
    pub fn to_csv(&self) -> String {
        let mut rows = Vec::new();
        for g in std::iter::once(&self.overall).chain(&self.groups) {
            for (key, m) in [
                ("deployment_frequency", &g.deployment_frequency),
                ("lead_time", &g.lead_time),
                ("change_failure_rate", &g.change_failure_rate),
                ("time_to_restore", &g.time_to_restore),
                ("time_to_next_success", &g.time_to_next_success),
            ] {
                rows.push(vec![
                    g.product.clone().unwrap_or_default(),
                    g.environment.clone().unwrap_or_default(),
                    key.to_owned(),
                    number(m.value),
                    m.unit.clone(),
                    m.band.map(|b| b.as_str().to_owned()).unwrap_or_default(),
                    m.sample.to_string(),
                    number(m.previous),
                    m.previous_sample.to_string(),
                ]);
            }
        }
        csv(
            &[
                "product",
                "environment",
                "metric",
                "value",
                "unit",
                "band",
                "sample",
                "previous",
                "previous_sample",
            ],
            &rows,
        )
    }
}

impl ChecklistReport {
    /// As CSV: one row per item, in checklist order.
    pub fn to_csv(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .items
            .iter()
            .map(|i| {
                vec![
                    i.reference.clone(),
                    i.title.clone(),
                    i.kind.clone(),
                    i.gate.clone(),
                    i.required.to_string(),
                    i.runs.to_string(),
                    i.skipped.to_string(),
                    i.waived.to_string(),
                    number(i.skip_rate),
                    number(i.mean_in_progress_minutes),
                    i.timed.to_string(),
                    i.blocked.to_string(),
                    i.overridden.to_string(),
                    number(i.mean_approval_wait_minutes),
                    i.approvals.to_string(),
                    i.skipped_then_failed.to_string(),
                    number(i.failure_rate_when_skipped),
                ]
            })
            .collect();
        csv(
            &[
                "reference",
                "title",
                "kind",
                "gate",
                "required",
                "runs",
                "skipped",
                "waived",
                "skip_rate_percent",
                "mean_in_progress_minutes",
                "timed",
                "blocked",
                "overridden",
                "mean_approval_wait_minutes",
                "approvals",
                "skipped_then_failed",
                "failure_rate_when_skipped_percent",
            ],
            &rows,
        )
    }
}

/// A run behind a number of the checklist analytics (drill-down from an item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemRun {
    /// The run.
    pub run_id: String,
    /// Its product.
    pub product: String,
    /// Its environment.
    pub environment: String,
    /// Its release version.
    pub release_version: String,
    /// Where it stands.
    pub status: RunStatus,
    /// When it finished.
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The item's status in it.
    pub item_status: crate::item::ItemStatus,
    /// Why it was skipped there.
    pub skip_reason: Option<String>,
    /// Minutes it spent in progress there.
    pub in_progress_minutes: Option<f64>,
}

/// Which runs of an item the drill-down lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemRunFilter {
    /// Every run that had it.
    All,
    /// Runs that skipped it.
    Skipped,
    /// Runs in which it blocked a transition.
    Blocked,
    /// Runs in which an override went past it.
    Overridden,
    /// Runs that timed it in progress, slowest first.
    Slow,
}

impl ItemRunFilter {
    /// Parses the query spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ItemRunFilter::All,
            ItemRunFilter::Skipped,
            ItemRunFilter::Blocked,
            ItemRunFilter::Overridden,
            ItemRunFilter::Slow,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }

    /// The query spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemRunFilter::All => "all",
            ItemRunFilter::Skipped => "skipped",
            ItemRunFilter::Blocked => "blocked",
            ItemRunFilter::Overridden => "overridden",
            ItemRunFilter::Slow => "slow",
        }
    }
}

/// The runs behind an item's numbers, newest first (slowest first for `slow`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemRunList {
    /// The item's reference.
    pub reference: String,
    /// Which runs.
    pub filter: ItemRunFilter,
    /// The runs (at most 100).
    pub runs: Vec<ItemRun>,
}

/// Where an item's times stand after its status goes from `from` to `to` at `at`: it
/// started when it was first put in progress; it finished when it last reached done,
/// skipped or failed (reopened, it is not finished). A change that keeps the status keeps
/// the times.
pub fn item_clock<T: Copy>(
    from: crate::item::ItemStatus,
    to: crate::item::ItemStatus,
    started: Option<T>,
    finished: Option<T>,
    at: T,
) -> (Option<T>, Option<T>) {
    use crate::item::ItemStatus as S;
    if from == to {
        return (started, finished);
    }
    match to {
        S::InProgress => (started.or(Some(at)), None),
        S::Done | S::Skipped | S::Failed => (started, Some(at)),
        S::Pending | S::Blocked => (started, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::ItemStatus;

    fn day(s: &str) -> NaiveDate {
        crate::timestamp::parse_date(s).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        crate::timestamp::parse(s).unwrap()
    }

    #[test]
    fn a_period_defaults_to_90_days_and_refuses_empty_and_long_ones() {
        let today = day("2026-12-06");
        let p = Period::parse(None, None, today).unwrap();
        assert_eq!((p.from, p.to, p.days), (day("2026-09-08"), today, 90));
        let prev = p.previous();
        assert_eq!(
            (prev.from, prev.to, prev.days),
            (day("2026-06-10"), day("2026-09-07"), 90)
        );
        assert_eq!(p.end() - p.start(), Duration::days(90));

        let one = Period::parse(Some("2026-12-06"), Some("2026-12-06"), today).unwrap();
        assert_eq!(one.days, 1);
        let empty = Period::parse(Some("2026-12-07"), Some("2026-12-06"), today).unwrap_err();
        assert_eq!(empty.field, "to");
        assert!(empty.message.contains("empty"), "{}", empty.message);
        let long = Period::parse(Some("2024-01-01"), Some("2026-01-02"), today).unwrap_err();
        assert!(long.message.contains("731"), "{}", long.message);
        assert!(Period::parse(Some("2024-01-01"), Some("2025-12-31"), today).is_ok());
        for bad in ["2026-13-01", "yesterday", "1969-12-31", ""] {
            assert_eq!(
                Period::parse(Some(bad), None, today).unwrap_err().field,
                "from"
            );
        }
        // The period before one starting in 1970 is cut there, not before; before the first
        // day there is none.
        let early = Period::parse(Some("1970-01-05"), Some("1970-01-14"), today).unwrap();
        assert_eq!(
            (early.previous().from, early.previous().days),
            (day("1970-01-01"), 4)
        );
        let first = Period::parse(Some("1970-01-01"), Some("1970-01-10"), today).unwrap();
        assert_eq!(first.previous().days, 0);
        assert!(!first.previous().contains(first.start()));
        let r = delivery(&[], first, None, None, None);
        assert_eq!(r.overall.deployment_frequency.previous, None);
    }

    #[test]
    fn bands_follow_the_dora_thresholds() {
        assert_eq!(frequency_band(7.0), Band::Elite);
        assert_eq!(frequency_band(6.9), Band::High);
        assert_eq!(frequency_band(1.0), Band::High);
        assert_eq!(frequency_band(0.25), Band::Medium);
        assert_eq!(frequency_band(0.2), Band::Low);
        assert_eq!(lead_time_band(23.9), Band::Elite);
        assert_eq!(lead_time_band(168.0), Band::High);
        assert_eq!(lead_time_band(700.0), Band::Medium);
        assert_eq!(lead_time_band(721.0), Band::Low);
        assert_eq!(failure_band(5.0), Band::Elite);
        assert_eq!(failure_band(10.0), Band::High);
        assert_eq!(failure_band(15.0), Band::Medium);
        assert_eq!(failure_band(15.1), Band::Low);
        assert_eq!(restore_band(0.5), Band::Elite);
        assert_eq!(restore_band(23.0), Band::High);
        assert_eq!(restore_band(168.0), Band::Medium);
        assert_eq!(restore_band(169.0), Band::Low);
    }

    #[test]
    fn medians_and_percentages_never_divide_by_zero() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(percent(0, 0), None);
        assert_eq!(percent(1, 4), Some(25.0));
    }

    fn outcome(
        product: &str,
        status: RunStatus,
        finished: Option<&str>,
        committed: Option<&str>,
        rollback: Option<&str>,
        next: Option<&str>,
    ) -> RunOutcome {
        RunOutcome {
            product: product.into(),
            environment: "production".into(),
            status,
            finished_at: finished.map(at),
            committed_at: committed.map(at),
            rollback_decided_at: rollback.map(at),
            next_success_at: next.map(at),
        }
    }

    #[test]
    fn delivery_counts_the_period_and_the_one_before() {
        let period =
            Period::parse(Some("2026-11-02"), Some("2026-11-29"), day("2026-12-06")).unwrap();
        let rows = vec![
            // This period: two completed (lead times 2 h and 4 h), one rolled back.
            outcome(
                "A",
                RunStatus::Completed,
                Some("2026-11-03T12:00:00Z"),
                Some("2026-11-03T10:00:00Z"),
                None,
                None,
            ),
            outcome(
                "A",
                RunStatus::Completed,
                Some("2026-11-20T12:00:00Z"),
                Some("2026-11-20T08:00:00Z"),
                None,
                None,
            ),
            outcome(
                "A",
                RunStatus::RolledBack,
                Some("2026-11-10T12:30:00Z"),
                None,
                Some("2026-11-10T12:00:00Z"),
                Some("2026-11-20T12:00:00Z"),
            ),
            // Another product, still rolling back.
            outcome(
                "B",
                RunStatus::RollingBack,
                None,
                None,
                Some("2026-11-28T09:00:00Z"),
                None,
            ),
            // The period before: one completed.
            outcome(
                "A",
                RunStatus::Completed,
                Some("2026-10-20T12:00:00Z"),
                None,
                None,
                None,
            ),
        ];
        let r = delivery(&rows, period, None, None, None);
        assert!(!r.empty);
        let o = &r.overall;
        assert_eq!((o.deployments, o.failures), (2, 2));
        assert_eq!(o.deployment_frequency.value, Some(0.5));
        assert_eq!(o.deployment_frequency.previous, Some(0.25));
        assert_eq!(o.deployment_frequency.band, Some(Band::Medium));
        assert_eq!(o.lead_time.value, Some(3.0));
        assert_eq!(o.lead_time.band, Some(Band::Elite));
        assert_eq!(o.lead_time.previous, None);
        assert_eq!(o.change_failure_rate.value, Some(50.0));
        assert_eq!(o.change_failure_rate.previous, Some(0.0));
        assert_eq!(o.change_failure_rate.band, Some(Band::Low));
        assert_eq!(o.time_to_restore.value, Some(0.5));
        assert_eq!(o.time_to_restore.sample, 1);
        assert_eq!(o.time_to_next_success.value, Some(240.0));
        assert_eq!(o.weeks.len(), 4);
        assert_eq!(o.weeks[0].deployments, 1);
        assert_eq!(o.weeks[1].failures, 1);
        assert_eq!(o.weeks[1].failure_rate, Some(100.0));
        assert_eq!(o.weeks[3].failures, 1);
        assert_eq!(r.groups.len(), 2);
        assert_eq!(r.groups[1].product.as_deref(), Some("B"));
        assert_eq!(r.groups[1].lead_time.value, None);
        assert!(r.groups[1].lead_time.note.is_some());
        let csv = r.to_csv();
        assert!(csv.starts_with("product,environment,metric,value,unit,band"));
        assert!(
            csv.contains(",,change_failure_rate,50,percent,low,4,0,1\r\n"),
            "{csv}"
        );
    }

    #[test]
    fn an_empty_answer_says_so_and_computes_no_number() {
        let period = Period::parse(None, None, day("2026-12-06")).unwrap();
        let r = delivery(&[], period, Some("Nope".into()), None, None);
        assert!(r.empty);
        assert!(r.message.as_deref().unwrap().contains("`Nope`"));
        assert_eq!(r.overall.change_failure_rate.value, None);
        assert_eq!(r.overall.change_failure_rate.band, None);
        assert_eq!(r.overall.deployment_frequency.value, Some(0.0));
        assert!(r.overall.weeks.iter().all(|w| w.failure_rate.is_none()));
    }

    #[test]
    fn checklist_merges_versions_and_ranks_skips_before_rollbacks() {
        let period = Period::parse(None, None, day("2026-12-06")).unwrap();
        let key = |reference: &str, title: &str| ItemKey {
            reference: reference.into(),
            title: title.into(),
            kind: "task".into(),
            gate: "deploy".into(),
            required: true,
        };
        let names = |version: i32, position: i32| match (version, position) {
            (1, 0) | (2, 0) => Some(key("1.1.1", "Back up")),
            (2, 1) => Some(key("1.1.2", "Smoke test")),
            (1, 1) => Some(key("1.1.2", "Smoke tests (old wording)")),
            _ => None,
        };
        let tallies = vec![
            ItemTally {
                version: 1,
                position: 0,
                runs: 3,
                skipped: 1,
                skipped_in_failed: 1,
                ..Default::default()
            },
            ItemTally {
                version: 2,
                position: 0,
                runs: 2,
                skipped: 1,
                skipped_in_failed: 1,
                in_progress_secs: 600.0,
                timed: 2,
                ..Default::default()
            },
            ItemTally {
                version: 2,
                position: 1,
                runs: 2,
                skipped: 2,
                skipped_in_failed: 1,
                ..Default::default()
            },
            ItemTally {
                version: 1,
                position: 1,
                runs: 3,
                ..Default::default()
            },
            ItemTally {
                version: 2,
                position: 7,
                runs: 2,
                skipped: 2,
                ..Default::default()
            },
        ];
        let points = vec![("go_no_go".to_owned(), "Go/No-Go".to_owned())];
        let point_tallies = vec![
            PointTally {
                key: "go_no_go".into(),
                outcome: Outcome::Go,
                decisions: 3,
                decide_secs: 3600.0,
                timed: 2,
            },
            PointTally {
                key: "go_no_go".into(),
                outcome: Outcome::Rollback,
                decisions: 1,
                decide_secs: 0.0,
                timed: 0,
            },
        ];
        let r = checklist(
            ("t", "T", None),
            period,
            (None, None),
            (5, 2),
            &tallies,
            names,
            &points,
            &point_tallies,
        );
        assert_eq!(r.items.len(), 3);
        let backup = &r.items[0];
        assert_eq!(
            (backup.reference.as_str(), backup.runs, backup.skipped),
            ("1.1.1", 5, 2)
        );
        assert_eq!(backup.skip_rate, Some(40.0));
        assert_eq!(backup.mean_in_progress_minutes, Some(5.0));
        assert_eq!(backup.failure_rate_when_skipped, Some(100.0));
        assert_eq!(r.items[1].title, "Smoke test");
        assert_eq!(r.items[2].skip_rate, Some(0.0));
        assert_eq!(r.items[2].failure_rate_when_skipped, None);
        assert_eq!(r.failure_rate, Some(40.0));
        let risks: Vec<_> = r
            .skipped_before_rollback
            .iter()
            .map(|i| i.title.as_str())
            .collect();
        assert_eq!(risks, ["Back up", "Smoke test"]);
        let p = &r.decision_points[0];
        assert_eq!((p.decisions, p.go, p.rollback, p.timed), (4, 3, 1, 2));
        assert_eq!(p.mean_minutes_to_decide, Some(30.0));
        let csv = r.to_csv();
        assert_eq!(csv.lines().count(), 4);
        assert!(
            csv.contains("1.1.1,Back up,task,deploy,true,5,2,0,40,5,2,0,0,,0,2,100\r\n"),
            "{csv}"
        );

        let none = checklist(
            ("t", "T", Some(3)),
            period,
            (Some("P".into()), None),
            (0, 0),
            &[],
            names,
            &points,
            &[],
        );
        assert!(none.empty);
        assert_eq!(none.failure_rate, None);
        assert!(none.message.unwrap().contains("version 3"));
    }

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let out = csv(
            &["a", "b"],
            &[
                vec!["x, y".into(), "say \"hi\"".into()],
                vec!["=HYPERLINK(\"x\")".into(), "-3.5".into()],
                vec!["line\nbreak".into(), "@me".into()],
            ],
        );
        assert_eq!(
            out,
            "a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n\"'=HYPERLINK(\"\"x\"\")\",-3.5\r\n\"line\nbreak\",'@me\r\n"
        );
        assert_eq!(number(Some(2.0)), "2");
        assert_eq!(number(Some(2.346)), "2.35");
        assert_eq!(number(Some(0.1)), "0.1");
        assert_eq!(number(Some(-0.05)), "-0.05");
        assert_eq!(number(Some(33.333_333)), "33.33");
        assert_eq!(number(Some(f64::NAN)), "");
        assert_eq!(number(None), "");
        assert!(is_number("12") && is_number("-3.5") && is_number("0.25"));
        assert!(!is_number("-") && !is_number("1.") && !is_number("=1") && !is_number(""));
    }

    #[test]
    fn an_item_clock_starts_once_and_finishes_last() {
        use ItemStatus::{Done, InProgress, Pending, Skipped};
        assert_eq!(
            item_clock(Pending, InProgress, None, None, 1),
            (Some(1), None)
        );
        assert_eq!(
            item_clock(Done, InProgress, Some(1), Some(3), 5),
            (Some(1), None)
        );
        assert_eq!(
            item_clock(InProgress, Done, Some(1), None, 4),
            (Some(1), Some(4))
        );
        assert_eq!(item_clock(Pending, Done, None, None, 4), (None, Some(4)));
        assert_eq!(
            item_clock(Done, Skipped, Some(1), Some(2), 6),
            (Some(1), Some(6))
        );
        assert_eq!(
            item_clock(Done, Pending, Some(1), Some(2), 6),
            (Some(1), None)
        );
        // Evidence added to a done item keeps its finish.
        assert_eq!(
            item_clock(Done, Done, Some(1), Some(2), 6),
            (Some(1), Some(2))
        );
        assert_eq!(ItemRunFilter::parse("slow"), Some(ItemRunFilter::Slow));
        assert_eq!(ItemRunFilter::parse("nope"), None);
    }
}
