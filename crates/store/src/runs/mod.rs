//! Runs, their items, decisions and event log.
//!
//! Every change first takes the run's row lock, then reads the state it needs inside its
//! transaction, asks the domain whether the change is allowed, writes it, and appends exactly
//! one event to the run's log — all in the same transaction. The lock serialises changes to
//! one run on PostgreSQL, where writers are concurrent; reads of a whole run see one
//! consistent snapshot. Reading a whole run is a fixed handful of queries whatever its size.
//! An item change, the hot path, takes the lock and its event's number in one statement that
//! also reads what the change needs besides (`events::claim`; read again when the statement
//! had to wait for the lock); on PostgreSQL the item's row is written by the statement that
//! appends its event, so a change is four round trips (`BEGIN`, claim, write, `COMMIT`).

use chrono::{DateTime, Utc};
use shipshape_domain::Role;
use shipshape_domain::run::RunStatus;
use shipshape_domain::text::Label;

mod announcements;
mod deadlines;
mod decisions;
mod events;
pub(crate) use events::verify_run_on;
mod items;
mod lifecycle;
mod probes;
mod reads;
mod records;
mod report;
mod rows;
mod signoffs;
mod team;

pub use announcements::Announced;
pub use deadlines::{DeadlineWork, SYSTEM_ACTOR};
pub(crate) use events::EventRow;
pub use probes::{ProbeOutcome, ProbeTarget};
pub use reads::RunView;

pub(crate) use rows::{approvers_column, probe_column};

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
    pub product: Label,
    /// Release version.
    pub release_version: Label,
    /// Environment.
    pub environment: Label,
    /// Window start.
    pub window_start: Option<DateTime<Utc>>,
    /// Window end.
    pub window_end: Option<DateTime<Utc>>,
    /// Expected downtime, minutes.
    pub expected_downtime_minutes: Option<i32>,
    /// The commit deployed (checked).
    pub commit_sha: Option<String>,
    /// When it was made (checked).
    pub committed_at: Option<DateTime<Utc>>,
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
    /// Only runs whose product, release version or environment contains this, in any case.
    pub search: Option<String>,
    /// Only runs created at or after this.
    pub created_from: Option<DateTime<Utc>>,
    /// Only runs created before this.
    pub created_before: Option<DateTime<Utc>>,
    /// Continue after this cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// Appends an event to a run's log, in the caller's transaction, the run's lock taken.
pub(crate) fn append_run_event(
    conn: &mut crate::AnyConnection,
    run_id: &str,
    actor: &str,
    at: chrono::NaiveDateTime,
    data: shipshape_domain::event::EventData,
) -> crate::StoreResult<i64> {
    events::append_event(conn, run_id, actor, at, data)
}

/// Takes a run's lock (`NotFound` for an unknown run).
pub(crate) fn lock_run_row(
    conn: &mut crate::AnyConnection,
    run_id: &str,
) -> crate::StoreResult<()> {
    rows::lock_run(conn, run_id)
}

/// A run's template, and whether the run is finished (a proposal comes from a finished
/// run).
pub(crate) fn run_facts_for_proposal(
    conn: &mut crate::AnyConnection,
    run_id: &str,
) -> crate::StoreResult<(String, bool)> {
    let run = rows::load_run(conn, run_id)?;
    Ok((run.template_id.clone(), run.status()?.is_terminal()))
}
