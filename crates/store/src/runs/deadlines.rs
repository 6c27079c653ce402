//! Decision deadlines: a reminder shortly before, and the template's default outcome
//! recorded by the server when a deadline passes with no decision. Both are judged again
//! under the run's lock when applied, and both leave a trace in the run's log (a
//! `decision_due` event, a decision with `deadline_passed`), so neither happens twice, on
//! one instance or several, before or after a restart.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use shipshape_domain::access::Permission;
use shipshape_domain::event::{DecisionDue, EventData, EventType};
use shipshape_domain::probe::format_duration;
use shipshape_domain::run::RunStatus;
use shipshape_domain::template::DecisionPointSpec;
use shipshape_domain::wire::CreateDecisionRequest;
use shipshape_domain::{Role, describe};

use crate::schema::{decisions as d, run_events as ev, runs as r, users as u};
use crate::{Store, StoreResult, utc};

use super::decisions::record_decision_locked;
use super::events::append_event;
use super::rows::*;

/// The user name the server records its own decisions under.
pub const SYSTEM_ACTOR: &str = "system";

/// Something a deadline asks for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadlineWork {
    /// Remind the release managers: the deadline is near.
    Remind {
        /// The run.
        run_id: String,
        /// The decision point.
        point_key: String,
        /// When the run entered the point's stage.
        entered: NaiveDateTime,
    },
    /// Record the default outcome: the deadline passed.
    Apply {
        /// The run.
        run_id: String,
        /// The decision point.
        point_key: String,
        /// When the run entered the point's stage.
        entered: NaiveDateTime,
    },
}

/// Where a point's deadline stands for a run: what is due now, and when next.
enum Standing {
    Done,
    Remind,
    Apply,
    Wait(DateTime<Utc>),
}

fn standing(
    point: &DecisionPointSpec,
    entered: NaiveDateTime,
    decided: bool,
    reminded: bool,
    now: DateTime<Utc>,
) -> Standing {
    let (Some(secs), Some(lead)) = (point.deadline_secs, point.reminder_lead_secs()) else {
        return Standing::Done;
    };
    if decided {
        return Standing::Done;
    }
    let deadline = utc(entered) + chrono::Duration::seconds(i64::from(secs));
    let remind_at = deadline - chrono::Duration::seconds(i64::from(lead));
    if now >= deadline {
        Standing::Apply
    } else if reminded {
        Standing::Wait(deadline)
    } else if now >= remind_at {
        Standing::Remind
    } else {
        Standing::Wait(remind_at)
    }
}

/// Whether someone decided at the point since the run entered its stage, and whether the
/// reminder went out.
fn decided_and_reminded(
    conn: &mut crate::AnyConnection,
    run_id: &str,
    point_key: &str,
    entered: NaiveDateTime,
) -> StoreResult<(bool, bool)> {
    let decided = d::table
        .filter(d::run_id.eq(run_id))
        .filter(d::point_key.eq(point_key))
        .filter(d::decided_at.ge(entered))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    let reminders: Vec<String> = ev::table
        .filter(ev::run_id.eq(run_id))
        .filter(ev::event_type.eq(EventType::DecisionDue.as_str()))
        .filter(ev::at.ge(entered))
        .select(ev::payload)
        .load(conn)?;
    let reminded = reminders.iter().any(|p| {
        serde_json::from_str::<DecisionDue>(p).is_ok_and(|due| due.point_key == point_key)
    });
    Ok((decided, reminded))
}

impl Store {
    /// What the deadlines of live runs ask for now, and when the next one is due.
    pub fn deadline_work(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<(Vec<DeadlineWork>, Option<DateTime<Utc>>)> {
        self.read(|conn| {
            let stages: Vec<&str> = RunStatus::ALL
                .into_iter()
                .filter(|s| s.decision_stage().is_some())
                .map(RunStatus::as_str)
                .collect();
            let runs: Vec<RunRow> = r::table
                .filter(r::status.eq_any(stages))
                .filter(r::closed_at.is_null())
                .filter(r::stage_entered_at.is_not_null())
                .select(RunRow::as_select())
                .load(conn)?;
            let mut work = Vec::new();
            let mut next: Option<DateTime<Utc>> = None;
            for run in runs {
                let (Some(entered), Some(stage)) =
                    (run.stage_entered_at, run.status()?.decision_stage())
                else {
                    continue;
                };
                // A run whose template cannot be read does not hold up the others' deadlines.
                let Ok(template) = self
                    .templates
                    .get(conn, &run.template_id, run.template_version)
                else {
                    continue;
                };
                for point in template
                    .decision_points()
                    .iter()
                    .filter(|p| p.stage == stage && p.deadline_secs.is_some())
                {
                    let (decided, reminded) =
                        decided_and_reminded(conn, &run.id, &point.key, entered)?;
                    let (run_id, point_key) = (run.id.clone(), point.key.clone());
                    match standing(point, entered, decided, reminded, now) {
                        Standing::Done => {}
                        Standing::Remind => work.push(DeadlineWork::Remind {
                            run_id,
                            point_key,
                            entered,
                        }),
                        Standing::Apply => work.push(DeadlineWork::Apply {
                            run_id,
                            point_key,
                            entered,
                        }),
                        Standing::Wait(at) => next = Some(next.map_or(at, |n| n.min(at))),
                    }
                }
            }
            Ok((work, next))
        })
    }

    /// Does what a deadline asks, if it still does under the run's lock (the run still in
    /// the stage it entered then, nobody decided, the reminder not yet sent). Returns whether
    /// anything was done. `mail`: whether mail is configured (the deciders are mailed).
    pub fn apply_deadline(
        &self,
        work: &DeadlineWork,
        now: DateTime<Utc>,
        mail: bool,
    ) -> StoreResult<bool> {
        let (DeadlineWork::Remind {
            run_id,
            point_key,
            entered,
        }
        | DeadlineWork::Apply {
            run_id,
            point_key,
            entered,
        }) = work;
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            let template = self
                .templates
                .get(conn, &run.template_id, run.template_version)?;
            let Some(point) = template.decision_point(point_key) else {
                return Ok(false);
            };
            if run.stage_entered_at != Some(*entered)
                || run.closed_at.is_some()
                || run.status()?.decision_stage() != Some(point.stage)
            {
                return Ok(false);
            }
            let (decided, reminded) = decided_and_reminded(conn, run_id, point_key, *entered)?;
            let deadline = utc(*entered)
                + chrono::Duration::seconds(i64::from(point.deadline_secs.unwrap_or(0)));
            match (work, standing(point, *entered, decided, reminded, now)) {
                (DeadlineWork::Apply { .. }, Standing::Apply) => {
                    let outcome = point.deadline_outcome();
                    let rationale = format!(
                        "The deadline passed: nobody decided within {} after the run became \
                         {}, so the server recorded the template's default, {}.",
                        format_duration(point.deadline_secs.unwrap_or(0)),
                        point.stage.as_str(),
                        outcome.as_str()
                    );
                    record_decision_locked(
                        conn,
                        &self.templates,
                        &run,
                        CreateDecisionRequest {
                            point_key: point.key.clone(),
                            outcome,
                            rationale: rationale.clone(),
                            criteria: Vec::new(),
                            unmet_confirmed: false,
                        },
                        SYSTEM_ACTOR,
                        true,
                    )?;
                    notify_deciders(
                        conn,
                        mail,
                        &format!(
                            "{}: {} recorded at {} (deadline passed)",
                            run_label(&run),
                            describe::outcome(outcome),
                            point.title
                        ),
                        &rationale,
                    )?;
                    Ok(true)
                }
                (DeadlineWork::Remind { .. }, Standing::Remind) => {
                    let due = DecisionDue {
                        point_key: point.key.clone(),
                        title: point.title.clone(),
                        deadline,
                        default_outcome: point.deadline_outcome(),
                    };
                    append_event(
                        conn,
                        run_id,
                        SYSTEM_ACTOR,
                        crate::now(),
                        EventData::DecisionDue(due.clone()),
                    )?;
                    notify_deciders(
                        conn,
                        mail,
                        &format!("{}: {} is due", run_label(&run), point.title),
                        &format!(
                            "Nobody has decided at {} yet. Its deadline is {}; then the server \
                             records {}.",
                            point.title,
                            describe::time(deadline),
                            describe::outcome(due.default_outcome)
                        ),
                    )?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}

fn run_label(run: &RunRow) -> String {
    format!(
        "{} {} ({})",
        run.product, run.release_version, run.environment
    )
}

/// Mails the people who may decide (release managers and admins) who have an address and
/// want mail.
fn notify_deciders(
    conn: &mut crate::AnyConnection,
    mail: bool,
    subject: &str,
    body: &str,
) -> StoreResult<()> {
    if !mail {
        return Ok(());
    }
    let rows: Vec<(String, Option<String>)> = u::table
        .filter(u::active.eq(true))
        .filter(u::email_notifications.eq(true))
        .filter(u::email.is_not_null())
        .select((u::role, u::email))
        .load(conn)?;
    for (role, email) in rows {
        if let (Some(role), Some(email)) = (Role::parse(&role), email)
            && role.allows(Permission::Decide)
        {
            crate::mail::queue_mail(conn, &email, subject, body)?;
        }
    }
    Ok(())
}
