//! The run report's inputs, read in one snapshot: the whole run, its event log (verified),
//! its issues, retrospective and proposals. The domain builds the report from them.

use chrono::Utc;
use diesel::prelude::*;
use shipshape_domain::report::{ReportInputs, RunReport, build};

use crate::schema::run_events as ev;
use crate::{Store, StoreResult};

use super::events::EventRow;
use super::records::{load_issues, load_retrospective};
use super::rows::*;

impl Store {
    /// The run's report.
    pub fn report(&self, run_id: &str) -> StoreResult<RunReport> {
        self.read(|conn| {
            let run = read_run(conn, &self.templates, run_id)?;
            let rows: Vec<EventRow> = ev::table
                .filter(ev::run_id.eq(run_id))
                .order(ev::seq.asc())
                .select(EventRow::as_select())
                .load(conn)?;
            let events = rows
                .iter()
                .map(EventRow::to_wire)
                .collect::<StoreResult<Vec<_>>>()?;
            let chain = crate::chain::verify(run.summary.version, |after, limit| {
                Ok(rows
                    .iter()
                    .filter(|r| crate::chain::ChainEntry::seq(*r) > after)
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    .cloned()
                    .collect())
            })?;
            let issues = load_issues(conn, run_id)?;
            let retro = load_retrospective(conn, run_id)?;
            let proposals = crate::proposals::load_proposals(
                conn,
                &crate::proposals::ProposalFilter {
                    run_id: Some(run_id.to_owned()),
                    ..Default::default()
                },
            )?;
            let environment =
                match crate::environments::environment_view_of(conn, &run.summary.environment) {
                    Ok(e) => Some(e),
                    Err(crate::StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e),
                };
            Ok(build(ReportInputs {
                environment: environment.as_ref(),
                run: &run,
                events: &events,
                issues: &issues,
                retrospective: (retro.version > 0 || !retro.action_items.is_empty())
                    .then_some(&retro),
                proposals: &proposals,
                chain: &chain,
                now: Utc::now(),
            }))
        })
    }
}
