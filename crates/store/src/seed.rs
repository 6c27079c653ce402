//! Bulk seeding of finished runs, for the benchmark harness (lists "at 10,000 runs") and
//! demos: multi-row inserts in large transactions, not one HTTP call per run.

use diesel::prelude::*;
use shipshape_domain::Role;
use shipshape_domain::item::ItemStatus;
use shipshape_domain::run::RunStatus;

use crate::runs::{approvers_column, probe_column};
use crate::schema::{run_events as ev, run_items as ri, runs as r};
use crate::templates::load_version;
use crate::{AnyConnection, Store, StoreResult, new_id, now};

/// Rows per multi-row insert (well under both backends' bind-parameter limits).
const CHUNK: usize = 500;

/// The outcomes seeded runs cycle through; none is live, so they never collide with the
/// one-live-run rule.
const OUTCOMES: [RunStatus; 4] = [
    RunStatus::Completed,
    RunStatus::RolledBack,
    RunStatus::Aborted,
    RunStatus::Planned,
];

/// Environments seeded runs cycle through.
pub const SEED_ENVIRONMENTS: [&str; 3] = ["production", "staging", "qa"];

impl Store {
    /// Inserts `count` runs of a template (with all their items and a creation event),
    /// spread over the statuses in `OUTCOMES` and [`SEED_ENVIRONMENTS`]. Returns how many
    /// runs were inserted.
    pub fn seed_runs(&self, template_id: &str, count: usize, product: &str) -> StoreResult<usize> {
        let template = self.read(|conn| load_version(conn, template_id, None))?;
        let (_, version) = template;
        let parsed = version.template()?;
        let specs: Vec<_> = parsed.items().collect();
        let mut done = 0;
        while done < count {
            let batch = CHUNK.min(count - done);
            self.write(|conn| {
                let at = now();
                let mut runs = Vec::with_capacity(batch);
                let mut items = Vec::with_capacity(batch * specs.len());
                let mut events = Vec::with_capacity(batch);
                for n in done..done + batch {
                    let id = new_id();
                    let status = OUTCOMES[n % OUTCOMES.len()];
                    let item_status = match status {
                        RunStatus::Planned | RunStatus::Aborted => ItemStatus::Pending,
                        _ => ItemStatus::Done,
                    };
                    let created =
                        at - chrono::Duration::seconds(i64::try_from(count - n).unwrap_or(0));
                    runs.push((
                        r::id.eq(id.clone()),
                        r::template_id.eq(version.template_id.clone()),
                        r::template_version.eq(version.version),
                        r::template_name.eq(version.name.clone()),
                        r::product.eq(format!("{product} {}", n % 50)),
                        r::release_version.eq(format!("1.{n}.0")),
                        r::environment.eq(SEED_ENVIRONMENTS[n % SEED_ENVIRONMENTS.len()]),
                        r::status.eq(status.as_str()),
                        r::created_by.eq("seed"),
                        r::created_at.eq(created),
                        r::updated_at.eq(created),
                        r::last_seq.eq(1_i64),
                        r::overridden.eq(false),
                    ));
                    for (position, (pi, si, ii, spec)) in specs.iter().enumerate() {
                        items.push((
                            ri::id.eq(new_id()),
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
                            ri::status.eq(item_status.as_str()),
                            ri::version.eq(1_i64),
                            ri::probe.eq(probe_column(spec)?),
                            ri::evidence_required.eq(spec.evidence_required),
                            ri::record.eq(spec.record.map(|r| r.as_str())),
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
                        diesel::insert_into(ev::table).values(&events).execute($c)?;
                    }};
                }
                match conn {
                    AnyConnection::Sqlite(c) => insert_all!(c),
                    AnyConnection::Postgresql(c) => insert_all!(c),
                }
                Ok(())
            })?;
            done += batch;
        }
        // Fresh statistics, as autovacuum would gather them on a table that grew gradually;
        // without them PostgreSQL plans for the empty tables it last analysed.
        self.write(|conn| {
            use diesel::connection::SimpleConnection;
            match conn {
                AnyConnection::Postgresql(_) => {
                    conn.batch_execute("ANALYZE runs, run_items, run_events")?
                }
                AnyConnection::Sqlite(_) => conn.batch_execute("ANALYZE")?,
            }
            Ok(())
        })?;
        Ok(done)
    }
}
