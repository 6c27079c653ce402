//! Insights, aggregated in SQL: the delivery metrics read one row per finished run of the
//! period (and of the period before), indexed by `finished_at`; the checklist analytics sum
//! per template version and item position, over the covering index of the item columns they
//! read. The times they use are kept on the rows by the writes that log each event.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text, Timestamp};
use shipshape_domain::decision::Outcome;
use shipshape_domain::insights::{
    ChecklistReport, DeliveryReport, ItemKey, ItemRun, ItemRunFilter, ItemRunList, ItemTally,
    Period, PointTally, RunOutcome, checklist, delivery,
};
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::RunStatus;

use crate::templates::load_version;
use crate::{AnyConnection, Store, StoreResult, utc};

/// What the delivery and checklist analytics are asked for.
#[derive(Debug, Clone)]
pub struct InsightFilter {
    /// The period.
    pub period: Period,
    /// Only this product.
    pub product: Option<String>,
    /// Only this environment.
    pub environment: Option<String>,
    /// Only runs of this template.
    pub template_id: Option<String>,
    /// Only this template version (checklist analytics).
    pub version: Option<i32>,
}

/// Seconds from `a` to `b`, in the backend's SQL.
fn secs(conn: &AnyConnection, a: &str, b: &str) -> String {
    match conn {
        AnyConnection::Sqlite(_) => format!("((julianday({b}) - julianday({a})) * 86400.0)"),
        AnyConnection::Postgresql(_) => {
            format!("CAST(EXTRACT(EPOCH FROM ({b} - {a})) AS DOUBLE PRECISION)")
        }
    }
}

/// A failed run, in SQL.
const FAILED: &str = "(r.rollback_decided_at IS NOT NULL OR r.status = 'rolled_back')";

/// The finished runs of a template the checklist analytics count: `$1` template, `$2`
/// version or null, `$3`..`$4` the period, `$5` product or null, `$6` environment or null.
const CHECKLIST_RUNS: &str = "r.template_id = $1 AND ($2 IS NULL OR r.template_version = $2) \
     AND r.finished_at >= $3 AND r.finished_at < $4 \
     AND r.status IN ('completed', 'rolled_back', 'aborted') \
     AND ($5 IS NULL OR r.product = $5) AND ($6 IS NULL OR r.environment = $6)";

#[derive(QueryableByName)]
struct OutcomeRow {
    #[diesel(sql_type = Text)]
    product: String,
    #[diesel(sql_type = Text)]
    environment: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    finished_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    committed_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    rollback_decided_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    next_success_at: Option<NaiveDateTime>,
}

#[derive(QueryableByName)]
struct VersionCount {
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = BigInt)]
    runs: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

#[derive(QueryableByName)]
struct ItemRowTally {
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Integer)]
    position: i32,
    #[diesel(sql_type = BigInt)]
    runs: i64,
    #[diesel(sql_type = BigInt)]
    skipped: i64,
    #[diesel(sql_type = BigInt)]
    waived: i64,
    #[diesel(sql_type = BigInt)]
    skipped_in_failed: i64,
    #[diesel(sql_type = Double)]
    in_progress_secs: f64,
    #[diesel(sql_type = BigInt)]
    timed: i64,
    #[diesel(sql_type = Double)]
    approval_wait_secs: f64,
    #[diesel(sql_type = BigInt)]
    approvals: i64,
}

#[derive(QueryableByName)]
struct BlockTally {
    #[diesel(sql_type = Integer)]
    version: i32,
    #[diesel(sql_type = Integer)]
    position: i32,
    #[diesel(sql_type = BigInt)]
    blocked: i64,
    #[diesel(sql_type = BigInt)]
    overridden: i64,
}

#[derive(QueryableByName)]
struct PointRow {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = BigInt)]
    decisions: i64,
    #[diesel(sql_type = Double)]
    decide_secs: f64,
    #[diesel(sql_type = BigInt)]
    timed: i64,
}

#[derive(QueryableByName)]
struct ItemRunRow {
    #[diesel(sql_type = Text)]
    run_id: String,
    #[diesel(sql_type = Text)]
    product: String,
    #[diesel(sql_type = Text)]
    environment: String,
    #[diesel(sql_type = Text)]
    release_version: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    finished_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Text)]
    item_status: String,
    #[diesel(sql_type = Nullable<Text>)]
    skip_reason: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    in_progress_secs: Option<f64>,
}

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn run_status(s: &str) -> StoreResult<RunStatus> {
    RunStatus::parse(s).ok_or_else(|| crate::StoreError::Corrupt(format!("run status `{s}`")))
}

/// Binds the checklist filter's six parameters, in order: the template, the version, the
/// range of outcome times `[from, to)`, the product and the environment.
macro_rules! checklist_binds {
    ($query:expr, $f:expr, $template:expr, $range:expr) => {
        $query
            .bind::<Text, _>($template)
            .bind::<Nullable<Integer>, _>($f.version)
            .bind::<Timestamp, _>($range.0)
            .bind::<Timestamp, _>($range.1)
            .bind::<Nullable<Text>, _>($f.product.as_deref())
            .bind::<Nullable<Text>, _>($f.environment.as_deref())
    };
}

/// Binds the rollups' filter's six parameters, in order (see [`ROLLUPS`]).
macro_rules! rollup_binds {
    ($query:expr, $f:expr, $template:expr, $weeks:expr) => {
        $query
            .bind::<Text, _>($template)
            .bind::<Nullable<Integer>, _>($f.version)
            .bind::<Text, _>(&$weeks.0)
            .bind::<Text, _>(&$weeks.1)
            .bind::<Nullable<Text>, _>($f.product.as_deref())
            .bind::<Nullable<Text>, _>($f.environment.as_deref())
    };
}

/// The week (its Monday, `YYYY-MM-DD`, UTC) of a run's outcome, in the backend's SQL.
fn week(conn: &AnyConnection) -> &'static str {
    match conn {
        AnyConnection::Sqlite(_) => "date(r.finished_at, 'weekday 0', '-6 days')",
        AnyConnection::Postgresql(_) => "to_char(date_trunc('week', r.finished_at), 'YYYY-MM-DD')",
    }
}

/// How a period splits for the checklist analytics: the whole weeks it holds (read from the
/// rollups, by their Mondays, both included) and the days before and after them (read from
/// the items), as ranges of outcome times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split {
    pub(crate) weeks: Option<(NaiveDate, NaiveDate)>,
    pub(crate) edges: Vec<(NaiveDateTime, NaiveDateTime)>,
}

pub(crate) fn split(period: &Period) -> Split {
    let day = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN);
    let first_monday = period.from
        + chrono::Duration::days(i64::from(
            (7 - period.from.weekday().num_days_from_monday()) % 7,
        ));
    let last_sunday = period.to
        - chrono::Duration::days(i64::from(
            (period.to.weekday().num_days_from_monday() + 1) % 7,
        ));
    let end = day(period.to) + chrono::Duration::days(1);
    if first_monday + chrono::Duration::days(6) > last_sunday {
        return Split {
            weeks: None,
            edges: vec![(day(period.from), end)],
        };
    }
    let after = day(last_sunday) + chrono::Duration::days(1);
    Split {
        weeks: Some((first_monday, last_sunday - chrono::Duration::days(6))),
        edges: [(day(period.from), day(first_monday)), (after, end)]
            .into_iter()
            .filter(|(a, b)| a < b)
            .collect(),
    }
}

/// A run's items and decisions in the rollups: added when it has finished, taken out before
/// one of them changes after that and added again after. A run not finished
/// is left out.
pub(crate) fn rollup_run(conn: &mut AnyConnection, run_id: &str, sign: Sign) -> StoreResult<()> {
    // The sign is written into the statement: SQLite numbers `$n` parameters in the order
    // they first appear, and it would come before the run's id.
    let sign = match sign {
        Sign::Add => "1",
        Sign::Remove => "-1",
    };
    for sql in rollup_sql(conn, "r.id = $1", sign) {
        diesel::sql_query(sql)
            .bind::<Text, _>(run_id)
            .execute(conn)?;
    }
    Ok(())
}

/// Whether [`rollup_run`] adds a run's numbers or takes them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sign {
    /// Adds them.
    Add,
    /// Takes them out.
    Remove,
}

/// Rebuilds the rollups from every finished run (after a bulk insert of runs).
pub(crate) fn rebuild_rollups(conn: &mut AnyConnection) -> StoreResult<()> {
    diesel::sql_query("DELETE FROM item_rollups").execute(conn)?;
    diesel::sql_query("DELETE FROM decision_rollups").execute(conn)?;
    for sql in rollup_sql(conn, "r.id IS NOT NULL", "1") {
        diesel::sql_query(sql).execute(conn)?;
    }
    Ok(())
}

/// The upserts that add the items and the decisions of the finished runs `which` selects,
/// times `sign`. Rows go in key order, so two transactions lock shared rows alike.
fn rollup_sql(conn: &AnyConnection, which: &str, sign: &str) -> [String; 2] {
    let week = week(conn);
    let worked = secs(conn, "i.started_at", "i.finished_at");
    let waited = secs(conn, "r.started_at", "i.finished_at");
    let decide = secs(conn, "d.stage_entered_at", "d.decided_at");
    let timed = "i.started_at IS NOT NULL AND i.finished_at >= i.started_at";
    let approved = "i.kind = 'approval' AND i.status = 'done' \
         AND r.started_at IS NOT NULL AND i.finished_at >= r.started_at";
    let decided = "d.stage_entered_at IS NOT NULL AND d.decided_at >= d.stage_entered_at";
    let finished =
        "r.finished_at IS NOT NULL AND r.status IN ('completed', 'rolled_back', 'aborted')";
    [
        format!(
            "INSERT INTO item_rollups (template_id, template_version, position, product, \
             environment, week, runs, skipped, waived, skipped_failed, timed, worked_secs, \
             approvals, approval_secs) \
             SELECT r.template_id, r.template_version, i.position, r.product, r.environment, \
             {week}, {sign} * COUNT(*), \
             {sign} * SUM(CASE WHEN i.status = 'skipped' THEN 1 ELSE 0 END), \
             {sign} * SUM(CASE WHEN i.status = 'skipped' AND i.required THEN 1 ELSE 0 END), \
             {sign} * SUM(CASE WHEN i.status = 'skipped' AND {FAILED} THEN 1 ELSE 0 END), \
             {sign} * SUM(CASE WHEN {timed} THEN 1 ELSE 0 END), \
             {sign} * SUM(CASE WHEN {timed} THEN {worked} ELSE 0.0 END), \
             {sign} * SUM(CASE WHEN {approved} THEN 1 ELSE 0 END), \
             {sign} * SUM(CASE WHEN {approved} THEN {waited} ELSE 0.0 END) \
             FROM runs r JOIN run_items i ON i.run_id = r.id \
             WHERE {which} AND {finished} \
             GROUP BY r.template_id, r.template_version, i.position, r.product, \
             r.environment, {week} \
             ORDER BY r.template_id, r.template_version, i.position, r.product, \
             r.environment, {week} \
             ON CONFLICT (template_id, template_version, position, product, environment, week) \
             DO UPDATE SET runs = item_rollups.runs + excluded.runs, \
             skipped = item_rollups.skipped + excluded.skipped, \
             waived = item_rollups.waived + excluded.waived, \
             skipped_failed = item_rollups.skipped_failed + excluded.skipped_failed, \
             timed = item_rollups.timed + excluded.timed, \
             worked_secs = item_rollups.worked_secs + excluded.worked_secs, \
             approvals = item_rollups.approvals + excluded.approvals, \
             approval_secs = item_rollups.approval_secs + excluded.approval_secs"
        ),
        format!(
            "INSERT INTO decision_rollups (template_id, template_version, point_key, outcome, \
             product, environment, week, decisions, timed, decide_secs) \
             SELECT r.template_id, r.template_version, d.point_key, d.outcome, r.product, \
             r.environment, {week}, {sign} * COUNT(*), \
             {sign} * SUM(CASE WHEN {decided} THEN 1 ELSE 0 END), \
             {sign} * SUM(CASE WHEN {decided} THEN {decide} ELSE 0.0 END) \
             FROM runs r JOIN decisions d ON d.run_id = r.id \
             WHERE {which} AND {finished} \
             GROUP BY r.template_id, r.template_version, d.point_key, d.outcome, r.product, \
             r.environment, {week} \
             ORDER BY r.template_id, r.template_version, d.point_key, d.outcome, r.product, \
             r.environment, {week} \
             ON CONFLICT (template_id, template_version, point_key, outcome, product, \
             environment, week) \
             DO UPDATE SET decisions = decision_rollups.decisions + excluded.decisions, \
             timed = decision_rollups.timed + excluded.timed, \
             decide_secs = decision_rollups.decide_secs + excluded.decide_secs"
        ),
    ]
}

/// The rollups' filter: `$1` template, `$2` version or null, `$3`..`$4` the first and last
/// Monday, `$5` product or null, `$6` environment or null.
const ROLLUPS: &str = "template_id = $1 AND ($2 IS NULL OR template_version = $2) \
     AND week >= $3 AND week <= $4 \
     AND ($5 IS NULL OR product = $5) AND ($6 IS NULL OR environment = $6)";

impl Store {
    /// Delivery performance over `filter.period` and the period before.
    pub fn delivery_insights(&self, filter: &InsightFilter) -> StoreResult<DeliveryReport> {
        let previous = filter.period.previous();
        let rows = self.read(|conn| {
            let columns = "r.product, r.environment, r.status, r.finished_at, r.committed_at, \
                 r.rollback_decided_at, CASE WHEN r.rollback_decided_at IS NULL THEN NULL ELSE \
                 (SELECT MIN(n.finished_at) FROM runs n WHERE n.product = r.product \
                 AND n.environment = r.environment AND n.status = 'completed' \
                 AND n.finished_at > r.rollback_decided_at) END AS next_success_at";
            let filters = "($3 IS NULL OR r.product = $3) AND ($4 IS NULL OR r.environment = $4) \
                 AND ($5 IS NULL OR r.template_id = $5)";
            let sql = format!(
                "SELECT {columns} FROM runs r \
                 WHERE r.finished_at >= $1 AND r.finished_at < $2 \
                 AND r.status IN ('completed', 'rolled_back') AND {filters} \
                 UNION ALL \
                 SELECT {columns} FROM runs r \
                 WHERE r.status = 'rolling_back' \
                 AND r.rollback_decided_at >= $1 AND r.rollback_decided_at < $2 AND {filters}"
            );
            Ok(diesel::sql_query(sql)
                .bind::<Timestamp, _>(previous.start().naive_utc())
                .bind::<Timestamp, _>(filter.period.end().naive_utc())
                .bind::<Nullable<Text>, _>(filter.product.as_deref())
                .bind::<Nullable<Text>, _>(filter.environment.as_deref())
                .bind::<Nullable<Text>, _>(filter.template_id.as_deref())
                .load::<OutcomeRow>(conn)?)
        })?;
        let outcomes = rows
            .into_iter()
            .map(|r| {
                Ok(RunOutcome {
                    status: run_status(&r.status)?,
                    product: r.product,
                    environment: r.environment,
                    finished_at: r.finished_at.map(utc),
                    committed_at: r.committed_at.map(utc),
                    rollback_decided_at: r.rollback_decided_at.map(utc),
                    next_success_at: r.next_success_at.map(utc),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(delivery(
            &outcomes,
            filter.period,
            filter.product.clone(),
            filter.environment.clone(),
            filter.template_id.clone(),
        ))
    }

    /// Checklist analytics of a template (all its versions, or `filter.version`) over the
    /// runs that finished in the period. An unknown template or version is `NotFound`.
    pub fn checklist_insights(
        &self,
        template_id: &str,
        filter: &InsightFilter,
    ) -> StoreResult<ChecklistReport> {
        self.read(|conn| {
            let (_, latest) = load_version(conn, template_id, filter.version)?;
            let whole = (
                filter.period.start().naive_utc(),
                filter.period.end().naive_utc(),
            );
            let counts = checklist_binds!(
                diesel::sql_query(format!(
                    "SELECT r.template_version AS version, COUNT(*) AS runs, \
                     SUM(CASE WHEN {FAILED} THEN 1 ELSE 0 END) AS failed \
                     FROM runs r WHERE {CHECKLIST_RUNS} GROUP BY r.template_version"
                )),
                filter,
                template_id,
                whole
            )
            .load::<VersionCount>(conn)?;
            let parts = split(&filter.period);
            let mut items: Vec<ItemRowTally> = Vec::new();
            let mut points: Vec<PointRow> = Vec::new();
            if let Some((first, last)) = parts.weeks {
                let weeks = (first.to_string(), last.to_string());
                items.extend(
                    rollup_binds!(
                        diesel::sql_query(format!(
                            "SELECT template_version AS version, position, \
                             CAST(SUM(runs) AS BIGINT) AS runs, \
                             CAST(SUM(skipped) AS BIGINT) AS skipped, \
                             CAST(SUM(waived) AS BIGINT) AS waived, \
                             CAST(SUM(skipped_failed) AS BIGINT) AS skipped_in_failed, \
                             CAST(SUM(worked_secs) AS DOUBLE PRECISION) AS in_progress_secs, \
                             CAST(SUM(timed) AS BIGINT) AS timed, \
                             CAST(SUM(approval_secs) AS DOUBLE PRECISION) AS approval_wait_secs, \
                             CAST(SUM(approvals) AS BIGINT) AS approvals \
                             FROM item_rollups WHERE {ROLLUPS} \
                             GROUP BY template_version, position"
                        )),
                        filter,
                        template_id,
                        weeks
                    )
                    .load::<ItemRowTally>(conn)?,
                );
                points.extend(
                    rollup_binds!(
                        diesel::sql_query(format!(
                            "SELECT point_key AS key, outcome, \
                             CAST(SUM(decisions) AS BIGINT) AS decisions, \
                             CAST(SUM(decide_secs) AS DOUBLE PRECISION) AS decide_secs, \
                             CAST(SUM(timed) AS BIGINT) AS timed \
                             FROM decision_rollups WHERE {ROLLUPS} GROUP BY point_key, outcome"
                        )),
                        filter,
                        template_id,
                        weeks
                    )
                    .load::<PointRow>(conn)?,
                );
            }
            let in_progress = secs(conn, "i.started_at", "i.finished_at");
            let approval_wait = secs(conn, "r.started_at", "i.finished_at");
            let timed = "i.started_at IS NOT NULL AND i.finished_at >= i.started_at";
            let approved = "i.kind = 'approval' AND i.status = 'done' \
                 AND r.started_at IS NOT NULL AND i.finished_at >= r.started_at";
            let decide = secs(conn, "d.stage_entered_at", "d.decided_at");
            let decided = "d.stage_entered_at IS NOT NULL AND d.decided_at >= d.stage_entered_at";
            for range in &parts.edges {
                items.extend(
                    checklist_binds!(
                        diesel::sql_query(format!(
                            "SELECT r.template_version AS version, i.position AS position, \
                             COUNT(*) AS runs, \
                             SUM(CASE WHEN i.status = 'skipped' THEN 1 ELSE 0 END) AS skipped, \
                             SUM(CASE WHEN i.status = 'skipped' AND i.required THEN 1 ELSE 0 END) \
                               AS waived, \
                             SUM(CASE WHEN i.status = 'skipped' AND {FAILED} THEN 1 ELSE 0 END) \
                               AS skipped_in_failed, \
                             SUM(CASE WHEN {timed} THEN {in_progress} ELSE 0.0 END) \
                               AS in_progress_secs, \
                             SUM(CASE WHEN {timed} THEN 1 ELSE 0 END) AS timed, \
                             SUM(CASE WHEN {approved} THEN {approval_wait} ELSE 0.0 END) \
                               AS approval_wait_secs, \
                             SUM(CASE WHEN {approved} THEN 1 ELSE 0 END) AS approvals \
                             FROM runs r JOIN run_items i ON i.run_id = r.id \
                             WHERE {CHECKLIST_RUNS} GROUP BY r.template_version, i.position"
                        )),
                        filter,
                        template_id,
                        *range
                    )
                    .load::<ItemRowTally>(conn)?,
                );
                points.extend(
                    checklist_binds!(
                        diesel::sql_query(format!(
                            "SELECT d.point_key AS key, d.outcome AS outcome, \
                             COUNT(*) AS decisions, \
                             SUM(CASE WHEN {decided} THEN {decide} ELSE 0.0 END) AS decide_secs, \
                             SUM(CASE WHEN {decided} THEN 1 ELSE 0 END) AS timed \
                             FROM decisions d JOIN runs r ON r.id = d.run_id \
                             WHERE {CHECKLIST_RUNS} GROUP BY d.point_key, d.outcome"
                        )),
                        filter,
                        template_id,
                        *range
                    )
                    .load::<PointRow>(conn)?,
                );
            }
            // Few items ever stand in a transition's way: read from them, not from the runs.
            let blocks = checklist_binds!(
                diesel::sql_query(format!(
                    "SELECT r.template_version AS version, i.position AS position, \
                     COUNT(DISTINCT b.item_id) AS blocked, \
                     SUM(CASE WHEN b.kind = 'overridden' THEN 1 ELSE 0 END) AS overridden \
                     FROM item_blocks b CROSS JOIN runs r CROSS JOIN run_items i \
                     WHERE r.id = b.run_id AND i.id = b.item_id AND {CHECKLIST_RUNS} \
                     GROUP BY r.template_version, i.position"
                )),
                filter,
                template_id,
                whole
            )
            .load::<BlockTally>(conn)?;

            // Names of items and points, from each version counted (the latest first).
            let mut versions: Vec<i32> = counts.iter().map(|c| c.version).collect();
            versions.sort_unstable_by(|a, b| b.cmp(a));
            let mut templates = vec![(latest.version, latest.template()?)];
            for v in versions {
                if v != latest.version {
                    templates.push((v, (*self.templates.get(conn, template_id, v)?).clone()));
                }
            }
            let mut keys = std::collections::HashMap::new();
            let mut point_names: Vec<(String, String)> = Vec::new();
            for (version, template) in &templates {
                for (position, (pi, si, ii, spec)) in template.items().enumerate() {
                    keys.insert(
                        (*version, i32::try_from(position).unwrap_or(i32::MAX)),
                        ItemKey {
                            reference: format!("{}.{}.{}", pi + 1, si + 1, ii + 1),
                            title: spec.title.clone(),
                            kind: spec.kind.as_str().to_owned(),
                            gate: spec.gate.as_str().to_owned(),
                            required: spec.required,
                        },
                    );
                }
                for p in template.decision_points() {
                    if !point_names.iter().any(|(k, _)| k == &p.key) {
                        point_names.push((p.key.clone(), p.title.clone()));
                    }
                }
            }
            let mut tallies: Vec<ItemTally> = Vec::new();
            for t in items {
                let tally = ItemTally {
                    version: t.version,
                    position: t.position,
                    runs: count(t.runs),
                    skipped: count(t.skipped),
                    waived: count(t.waived),
                    skipped_in_failed: count(t.skipped_in_failed),
                    in_progress_secs: t.in_progress_secs,
                    timed: count(t.timed),
                    blocked: 0,
                    overridden: 0,
                    approval_wait_secs: t.approval_wait_secs,
                    approvals: count(t.approvals),
                };
                // A whole week's and an edge's numbers of the same item are summed.
                match tallies
                    .iter_mut()
                    .find(|x| x.version == t.version && x.position == t.position)
                {
                    Some(x) => x.add(&tally),
                    None => tallies.push(tally),
                }
            }
            // Blocks are counted over the whole period at once.
            for b in &blocks {
                if let Some(x) = tallies
                    .iter_mut()
                    .find(|x| x.version == b.version && x.position == b.position)
                {
                    x.blocked = count(b.blocked);
                    x.overridden = count(b.overridden);
                }
            }
            let point_tallies: Vec<PointTally> = points
                .into_iter()
                .filter_map(|p| {
                    Some(PointTally {
                        outcome: Outcome::parse(&p.outcome)?,
                        key: p.key,
                        decisions: count(p.decisions),
                        decide_secs: p.decide_secs,
                        timed: count(p.timed),
                    })
                })
                .collect();
            let runs = counts.iter().map(|c| count(c.runs)).sum();
            let failed = counts.iter().map(|c| count(c.failed)).sum();
            Ok(checklist(
                (template_id, &latest.name, filter.version),
                filter.period,
                (filter.product.clone(), filter.environment.clone()),
                (runs, failed),
                &tallies,
                |v, p| keys.get(&(v, p)).cloned(),
                &point_names,
                &point_tallies,
            ))
        })
    }

    /// The runs behind an item's numbers (the item at `reference`, with `title` when given):
    /// newest first, or slowest first for [`ItemRunFilter::Slow`]; at most 100.
    pub fn item_insight_runs(
        &self,
        template_id: &str,
        (reference, title): (&str, Option<&str>),
        which: ItemRunFilter,
        filter: &InsightFilter,
    ) -> StoreResult<ItemRunList> {
        let rows = self.read(|conn| {
            load_version(conn, template_id, filter.version)?;
            let in_progress = secs(conn, "i.started_at", "i.finished_at");
            let timed = "i.started_at IS NOT NULL AND i.finished_at >= i.started_at";
            let (only, order) = match which {
                ItemRunFilter::All => (String::new(), "r.finished_at DESC, r.id"),
                ItemRunFilter::Skipped => (
                    "AND i.status = 'skipped'".to_owned(),
                    "r.finished_at DESC, r.id",
                ),
                ItemRunFilter::Blocked => (
                    "AND EXISTS (SELECT 1 FROM item_blocks b WHERE b.item_id = i.id)".to_owned(),
                    "r.finished_at DESC, r.id",
                ),
                ItemRunFilter::Overridden => (
                    "AND EXISTS (SELECT 1 FROM item_blocks b WHERE b.item_id = i.id \
                     AND b.kind = 'overridden')"
                        .to_owned(),
                    "r.finished_at DESC, r.id",
                ),
                ItemRunFilter::Slow => (format!("AND {timed}"), "in_progress_secs DESC, r.id"),
            };
            Ok(checklist_binds!(
                diesel::sql_query(format!(
                    "SELECT r.id AS run_id, r.product, r.environment, r.release_version, \
                     r.status, r.finished_at, i.status AS item_status, i.skip_reason, \
                     CASE WHEN {timed} THEN {in_progress} ELSE NULL END AS in_progress_secs \
                     FROM runs r JOIN run_items i ON i.run_id = r.id \
                     WHERE {CHECKLIST_RUNS} AND i.reference = $7 \
                     AND ($8 IS NULL OR i.title = $8) {only} \
                     ORDER BY {order} LIMIT 100"
                )),
                filter,
                template_id,
                (
                    filter.period.start().naive_utc(),
                    filter.period.end().naive_utc()
                )
            )
            .bind::<Text, _>(reference)
            .bind::<Nullable<Text>, _>(title)
            .load::<ItemRunRow>(conn)?)
        })?;
        let runs = rows
            .into_iter()
            .map(|r| {
                Ok(ItemRun {
                    status: run_status(&r.status)?,
                    item_status: ItemStatus::parse(&r.item_status).ok_or_else(|| {
                        crate::StoreError::Corrupt(format!("item status `{}`", r.item_status))
                    })?,
                    run_id: r.run_id,
                    product: r.product,
                    environment: r.environment,
                    release_version: r.release_version,
                    finished_at: r.finished_at.map(utc),
                    skip_reason: r.skip_reason,
                    in_progress_minutes: r.in_progress_secs.map(|s| s / 60.0),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(ItemRunList {
            reference: reference.to_owned(),
            filter: which,
            runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(from: &str, to: &str) -> Period {
        let today = shipshape_domain::timestamp::parse_date("2026-12-06").unwrap();
        Period::parse(Some(from), Some(to), today).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        shipshape_domain::timestamp::parse_date(s).unwrap()
    }

    fn at(s: &str) -> NaiveDateTime {
        day(s).and_time(chrono::NaiveTime::MIN)
    }

    #[test]
    fn a_period_splits_into_whole_weeks_and_the_days_around_them() {
        // Wednesday 2026-11-04 to Tuesday 2026-12-01: whole weeks from Monday the 9th to
        // Sunday the 29th; the days before and after are read from the items.
        let s = split(&period("2026-11-04", "2026-12-01"));
        assert_eq!(s.weeks, Some((day("2026-11-09"), day("2026-11-23"))));
        assert_eq!(
            s.edges,
            [
                (at("2026-11-04"), at("2026-11-09")),
                (at("2026-11-30"), at("2026-12-02"))
            ]
        );
        // Monday to Sunday: whole weeks only.
        let s = split(&period("2026-11-02", "2026-11-15"));
        assert_eq!(s.weeks, Some((day("2026-11-02"), day("2026-11-09"))));
        assert!(s.edges.is_empty());
        // Less than a whole week: the items only.
        let s = split(&period("2026-11-04", "2026-11-09"));
        assert_eq!(s.weeks, None);
        assert_eq!(s.edges, [(at("2026-11-04"), at("2026-11-10"))]);
    }
}
