//! Environments as records: their settings, locks (a release manager's, or the server's after
//! a rollback), freeze windows, what they say against a run's start, and the release
//! calendar. Every change is audited; a lock and an unlock are webhook events too.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};
use shipshape_domain::environment::{
    Calendar, CalendarEntry, CalendarKind, CreateFreezeRequest, Environment, EnvironmentEvent,
    EnvironmentEventType, EnvironmentFacts, EnvironmentLink, EnvironmentLock, EnvironmentSpec,
    EscalationContact, FreezeOccurrence, FreezeRule, FreezeWindow, LockEnvironmentRequest,
    PutEnvironmentRequest, Recurrence, ScheduleWarning, StoredFreeze, UnlockEnvironmentRequest,
    check_freeze, check_lock, check_unlock, freeze_occurrences, schedule_warnings,
};
use shipshape_domain::run::{Blocker, RunStatus};
use shipshape_domain::wire::AuditAction;

use crate::audit::{Auditor, NewAuditEntry, append_audit};
use crate::schema::{
    environment_locks as el, environments as env, freeze_windows as fw, runs as r,
};
use crate::{AnyConnection, Store, StoreError, StoreResult, lock_named, micros, new_id, now, utc};

/// Who the server records as having taken a lock after a rollback.
pub const SYSTEM: &str = "system";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = env)]
struct EnvironmentRow {
    name: String,
    base_url: Option<String>,
    updated_by: String,
    updated_at: NaiveDateTime,
    description: Option<String>,
    position: i32,
    promotes_from: Option<String>,
    requires_promotion: bool,
    dashboards: String,
    contacts: String,
    archived_at: Option<NaiveDateTime>,
    version: i64,
}

impl EnvironmentRow {
    fn spec(&self) -> StoreResult<EnvironmentSpec> {
        let e = self.to_wire(None, None)?;
        Ok(EnvironmentSpec {
            description: e.description,
            position: e.position,
            promotes_from: e.promotes_from,
            requires_promotion: e.requires_promotion,
            base_url: e.base_url,
            dashboards: e.dashboards,
            contacts: e.contacts,
            archived: e.archived,
        })
    }

    fn to_wire(
        &self,
        lock: Option<EnvironmentLock>,
        freeze: Option<FreezeOccurrence>,
    ) -> StoreResult<Environment> {
        let corrupt = |what: &str, e: serde_json::Error| {
            StoreError::Corrupt(format!("environment {} {what}: {e}", self.name))
        };
        Ok(Environment {
            name: self.name.clone(),
            description: self.description.clone(),
            position: self.position,
            promotes_from: self.promotes_from.clone(),
            requires_promotion: self.requires_promotion,
            base_url: self.base_url.clone(),
            dashboards: serde_json::from_str::<Vec<EnvironmentLink>>(&self.dashboards)
                .map_err(|e| corrupt("dashboards", e))?,
            contacts: serde_json::from_str::<Vec<EscalationContact>>(&self.contacts)
                .map_err(|e| corrupt("contacts", e))?,
            archived: self.archived_at.is_some(),
            lock,
            freeze,
            version: self.version,
            updated_by: self.updated_by.clone(),
            updated_at: utc(self.updated_at),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = el)]
struct LockRow {
    id: String,
    environment: String,
    reason: String,
    locked_by: String,
    locked_at: NaiveDateTime,
    until: Option<NaiveDateTime>,
    run_id: Option<String>,
    unlocked_by: Option<String>,
    unlocked_at: Option<NaiveDateTime>,
    unlock_note: Option<String>,
}

impl LockRow {
    fn to_wire(&self) -> EnvironmentLock {
        EnvironmentLock {
            id: self.id.clone(),
            environment: self.environment.clone(),
            reason: self.reason.clone(),
            locked_by: self.locked_by.clone(),
            locked_at: utc(self.locked_at),
            until: self.until.map(utc),
            run_id: self.run_id.clone(),
            unlocked_by: self.unlocked_by.clone(),
            unlocked_at: self.unlocked_at.map(utc),
            unlock_note: self.unlock_note.clone(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = fw)]
struct FreezeRow {
    id: String,
    environment: String,
    reason: String,
    recurrence: String,
    window_start: String,
    window_end: String,
    time_zone: String,
    until: Option<String>,
    created_by: String,
    created_at: NaiveDateTime,
}

impl FreezeRow {
    fn recurrence(&self) -> StoreResult<Recurrence> {
        Recurrence::parse(&self.recurrence).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "freeze {} recurrence `{}`",
                self.id, self.recurrence
            ))
        })
    }

    fn rule(&self) -> StoreResult<FreezeRule> {
        FreezeRule::parse(&StoredFreeze {
            recurrence: self.recurrence()?,
            start: &self.window_start,
            end: &self.window_end,
            time_zone: &self.time_zone,
            until: self.until.as_deref(),
        })
        .map_err(|e| StoreError::Corrupt(format!("freeze {}: {e}", self.id)))
    }

    fn to_wire(&self, now: DateTime<Utc>) -> StoreResult<FreezeWindow> {
        let next = self
            .rule()?
            .next(now)
            .map(|(starts_at, ends_at)| FreezeOccurrence {
                freeze_id: self.id.clone(),
                reason: self.reason.clone(),
                starts_at,
                ends_at,
            });
        Ok(FreezeWindow {
            id: self.id.clone(),
            environment: self.environment.clone(),
            reason: self.reason.clone(),
            recurrence: self.recurrence()?,
            start: self.window_start.clone(),
            end: self.window_end.clone(),
            time_zone: self.time_zone.clone(),
            until: self.until.clone(),
            next,
            created_by: self.created_by.clone(),
            created_at: utc(self.created_at),
        })
    }
}

fn load_row(conn: &mut AnyConnection, name: &str) -> StoreResult<EnvironmentRow> {
    env::table
        .find(name)
        .select(EnvironmentRow::as_select())
        .get_result(conn)
        .optional()?
        .ok_or(StoreError::NotFound("environment"))
}

/// The lock that holds on `environment` at `now`, if any.
pub(crate) fn lock_in_force(
    conn: &mut AnyConnection,
    environment: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<EnvironmentLock>> {
    Ok(el::table
        .filter(el::environment.eq(environment))
        .filter(el::unlocked_at.is_null())
        .filter(el::until.is_null().or(el::until.gt(now)))
        .select(LockRow::as_select())
        .first(conn)
        .optional()?
        .map(|l| l.to_wire()))
}

fn freezes_of(conn: &mut AnyConnection, environment: &str) -> StoreResult<Vec<FreezeRow>> {
    Ok(fw::table
        .filter(fw::environment.eq(environment))
        .order(fw::created_at.asc())
        .select(FreezeRow::as_select())
        .load(conn)?)
}

fn rules(rows: &[FreezeRow]) -> StoreResult<Vec<(String, String, FreezeRule)>> {
    rows.iter()
        .map(|f| Ok((f.id.clone(), f.reason.clone(), f.rule()?)))
        .collect()
}

/// The freeze occurrence in force at `now` among `rows`.
fn freeze_in_force(
    rows: &[FreezeRow],
    now: DateTime<Utc>,
) -> StoreResult<Option<FreezeOccurrence>> {
    Ok(
        freeze_occurrences(&rules(rows)?, now, now + Duration::microseconds(1))
            .into_iter()
            .next(),
    )
}

fn environment_view(conn: &mut AnyConnection, row: &EnvironmentRow) -> StoreResult<Environment> {
    let at = now();
    let lock = lock_in_force(conn, &row.name, at)?;
    let freeze = freeze_in_force(&freezes_of(conn, &row.name)?, utc(at))?;
    row.to_wire(lock, freeze)
}

/// An environment's record with its lock and freeze in force, in the caller's transaction.
pub(crate) fn environment_view_of(
    conn: &mut AnyConnection,
    name: &str,
) -> StoreResult<Environment> {
    let row = load_row(conn, name)?;
    environment_view(conn, &row)
}

/// Makes sure a run's environment exists as a record, creating it the first time a run names
/// it; an archived one refuses new runs.
pub(crate) fn ensure_environment(
    conn: &mut AnyConnection,
    name: &str,
    by: &str,
    at: NaiveDateTime,
) -> StoreResult<()> {
    // Takes turns with a delete (which counts the runs naming it) and a first PUT.
    lock_named(conn, "environments")?;
    let archived: Option<Option<NaiveDateTime>> = env::table
        .find(name)
        .select(env::archived_at)
        .get_result(conn)
        .optional()?;
    match archived {
        Some(Some(_)) => Err(StoreError::Invalid {
            field: "environment",
            message: format!(
                "environment `{name}` is archived: an administrator brings it back under \
                 Environments"
            ),
        }),
        Some(None) => Ok(()),
        None => {
            // Two first runs of a new environment (two instances) both make sure of it.
            diesel::sql_query(
                "INSERT INTO environments (name, updated_by, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind::<diesel::sql_types::Text, _>(name)
            .bind::<diesel::sql_types::Text, _>(by)
            .bind::<diesel::sql_types::Timestamp, _>(at)
            .execute(conn)?;
            Ok(())
        }
    }
}

/// What a planned or preparing run's environment says: the blockers against starting it or
/// moving it into deploying (judged now), and the warnings about its schedule. The lock and
/// the freeze windows are read once for both.
pub(crate) fn run_environment(
    conn: &mut AnyConnection,
    environment: &str,
    product: &str,
    release_version: &str,
    window: (Option<NaiveDateTime>, Option<NaiveDateTime>),
) -> StoreResult<RunEnvironment> {
    let Some(row) = env::table
        .find(environment)
        .select(EnvironmentRow::as_select())
        .get_result(conn)
        .optional()?
    else {
        return Ok(RunEnvironment::default());
    };
    let promotion = match (&row.promotes_from, row.requires_promotion) {
        (Some(from), true) => {
            let done: Option<String> = r::table
                .filter(r::environment.eq(from))
                .filter(r::product.eq(product))
                .filter(r::release_version.eq(release_version))
                .filter(r::status.eq(RunStatus::Completed.as_str()))
                .select(r::id)
                .first(conn)
                .optional()?;
            Some((from.clone(), done.is_some()))
        }
        _ => None,
    };
    let at = now();
    let lock = lock_in_force(conn, environment, at)?;
    let freezes = rules(&freezes_of(conn, environment)?)?;
    let in_force = |from: DateTime<Utc>, to: DateTime<Utc>| freeze_occurrences(&freezes, from, to);
    let facts = EnvironmentFacts {
        name: environment.to_owned(),
        freeze: in_force(utc(at), utc(at) + Duration::microseconds(1))
            .into_iter()
            .next(),
        lock,
        promotion,
    };
    let blockers = shipshape_domain::environment::blockers(&facts, product, release_version);
    // What is said here holds until a lock's time runs out or a freeze begins or ends.
    let now = utc(at);
    let changes_at = in_force(now, now + Duration::days(1))
        .iter()
        .flat_map(|o| [o.starts_at, o.ends_at])
        .chain(facts.lock.as_ref().and_then(|l| l.until))
        .filter(|t| *t > now)
        .min()
        .or_else(|| Some(now + Duration::days(1)));
    let Some(start) = window.0.map(utc) else {
        return Ok(RunEnvironment {
            blockers,
            warnings: Vec::new(),
            changes_at,
        });
    };
    let end = window.1.map(utc);
    // A window years long is looked at for its first two years (and a few warnings).
    let horizon = start
        .checked_add_signed(Duration::days(shipshape_domain::environment::HORIZON_DAYS))
        .unwrap_or(start);
    let occurrences = in_force(
        start,
        end.filter(|e| *e > start)
            .or_else(|| start.checked_add_signed(Duration::minutes(1)))
            .unwrap_or(start)
            .min(horizon),
    );
    let warnings = schedule_warnings(start, end, &occurrences, facts.lock.as_ref());
    Ok(RunEnvironment {
        blockers,
        warnings,
        changes_at,
    })
}

/// What a run's environment says against it, and until when that holds.
#[derive(Debug, Default)]
pub(crate) struct RunEnvironment {
    /// What stands against starting it or moving it into deploying.
    pub(crate) blockers: Vec<Blocker>,
    /// The warnings about its schedule.
    pub(crate) warnings: Vec<ScheduleWarning>,
    /// When this may next change by itself (a lock's time runs out, a freeze begins or
    /// ends); at most a day ahead.
    pub(crate) changes_at: Option<DateTime<Utc>>,
}

/// Takes a lock in the caller's transaction: closes one whose `until` passed, refuses when
/// one holds, audits it and queues its webhook deliveries.
fn take_lock(
    conn: &mut AnyConnection,
    environment: &str,
    reason: &str,
    until: Option<NaiveDateTime>,
    run_id: Option<&str>,
    by: &Auditor,
    at: NaiveDateTime,
) -> StoreResult<Option<EnvironmentLock>> {
    let locked_by = by.actor.clone().unwrap_or_else(|| SYSTEM.to_owned());
    // A lock whose time ran out stops being the open one.
    diesel::update(
        el::table
            .filter(el::environment.eq(environment))
            .filter(el::unlocked_at.is_null())
            .filter(el::until.le(at)),
    )
    .set((
        el::unlocked_at.eq(el::until),
        el::unlocked_by.eq(SYSTEM),
        el::unlock_note.eq("Its time ran out."),
    ))
    .execute(conn)?;
    if lock_in_force(conn, environment, at)?.is_some() {
        return Ok(None);
    }
    let id = new_id();
    diesel::insert_into(el::table)
        .values((
            el::id.eq(&id),
            el::environment.eq(environment),
            el::reason.eq(reason),
            el::locked_by.eq(&locked_by),
            el::locked_at.eq(at),
            el::until.eq(until),
            el::run_id.eq(run_id),
        ))
        .execute(conn)?;
    let lock = EnvironmentLock {
        id: id.clone(),
        environment: environment.to_owned(),
        reason: reason.to_owned(),
        locked_by: locked_by.clone(),
        locked_at: utc(at),
        until: until.map(utc),
        run_id: run_id.map(str::to_owned),
        unlocked_by: None,
        unlocked_at: None,
        unlock_note: None,
    };
    append_audit(
        conn,
        NewAuditEntry {
            by,
            action: AuditAction::EnvironmentLocked,
            subject: environment,
            details: json!({
                "environment": environment,
                "lock_id": id,
                "reason": reason,
                "until": lock.until,
                "run_id": run_id,
            }),
        },
    )?;
    crate::webhooks::enqueue_for_environment_event(
        conn,
        &EnvironmentEvent {
            event_type: EnvironmentEventType::EnvironmentLocked,
            environment: environment.to_owned(),
            actor: locked_by,
            at: utc(at),
            lock: lock.clone(),
        },
        at,
    )?;
    Ok(Some(lock))
}

/// Locks a run's environment after its rollback began, unless a lock holds already: nobody
/// deploys there until someone has looked and unlocks it with a note.
pub(crate) fn lock_after_rollback(
    conn: &mut AnyConnection,
    run_id: &str,
    environment: &str,
    title: &str,
    at: NaiveDateTime,
) -> StoreResult<()> {
    lock_named(conn, &format!("environment:{environment}"))?;
    let by = Auditor {
        actor: Some(SYSTEM.to_owned()),
        ..Default::default()
    };
    // A lock that would lift by itself gives way to this one, which waits for a person.
    if let Some(timed) = lock_in_force(conn, environment, at)?.filter(|l| l.until.is_some()) {
        diesel::update(el::table.find(&timed.id))
            .set((
                el::unlocked_at.eq(at),
                el::unlocked_by.eq(SYSTEM),
                el::unlock_note.eq(format!(
                    "Replaced by the lock after {title} began to roll back."
                )),
            ))
            .execute(conn)?;
    }
    take_lock(
        conn,
        environment,
        &format!("{title} is rolling back: look at it before anyone deploys here again."),
        None,
        Some(run_id),
        &by,
        at,
    )?;
    Ok(())
}

impl Store {
    /// Every environment, in promotion order, then by name.
    pub fn environments(&self) -> StoreResult<Vec<Environment>> {
        self.read(|conn| {
            let rows: Vec<EnvironmentRow> = env::table
                .order((env::position.asc(), env::name.asc()))
                .select(EnvironmentRow::as_select())
                .load(conn)?;
            let at = now();
            let locks: Vec<LockRow> = el::table
                .filter(el::unlocked_at.is_null())
                .filter(el::until.is_null().or(el::until.gt(at)))
                .select(LockRow::as_select())
                .load(conn)?;
            let freezes: Vec<FreezeRow> = fw::table.select(FreezeRow::as_select()).load(conn)?;
            rows.iter()
                .map(|row| {
                    let mine: Vec<FreezeRow> = freezes
                        .iter()
                        .filter(|f| f.environment == row.name)
                        .cloned()
                        .collect();
                    row.to_wire(
                        locks
                            .iter()
                            .find(|l| l.environment == row.name)
                            .map(LockRow::to_wire),
                        freeze_in_force(&mine, utc(at))?,
                    )
                })
                .collect()
        })
    }

    /// One environment.
    pub fn environment(&self, name: &str) -> StoreResult<Environment> {
        self.read(|conn| {
            let row = load_row(conn, name)?;
            environment_view(conn, &row)
        })
    }

    /// Stores an environment's record (creating it the first time), as an audit-log entry.
    /// With `if_match`, refuses when the record has moved on from that version (an absent
    /// record is version 0).
    pub fn put_environment(
        &self,
        name: &str,
        if_match: Option<&shipshape_domain::precondition::Versions>,
        req: &PutEnvironmentRequest,
        by: &Auditor,
    ) -> StoreResult<Environment> {
        let username = by.actor.clone().unwrap_or_default();
        self.write(|conn| {
            // Two first PUTs of one name (two admins, two instances) take turns.
            lock_named(conn, "environments")?;
            let known: Vec<(String, Option<String>)> = env::table
                .select((env::name, env::promotes_from))
                .load(conn)?;
            let before = env::table
                .find(name)
                .select(EnvironmentRow::as_select())
                .get_result(conn)
                .optional()?;
            let stored = before.as_ref().map(EnvironmentRow::spec).transpose()?;
            let spec = req.validated(name, &known, stored.as_ref())?;
            let current = before.as_ref().map_or(0, |b| b.version);
            if let Some(v) = if_match
                && !v.admits(current)
            {
                return Err(StoreError::PreconditionFailed {
                    what: "environment",
                    current,
                });
            }
            let at = now();
            let dashboards = serde_json::to_string(&spec.dashboards)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let contacts = serde_json::to_string(&spec.contacts)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let archived_at = match (&before, spec.archived) {
                (Some(b), true) => b.archived_at.or(Some(at)),
                (None, true) => Some(at),
                (_, false) => None,
            };
            let values = (
                env::base_url.eq(&spec.base_url),
                env::updated_by.eq(&username),
                env::updated_at.eq(at),
                env::description.eq(&spec.description),
                env::position.eq(spec.position),
                env::promotes_from.eq(&spec.promotes_from),
                env::requires_promotion.eq(spec.requires_promotion),
                env::dashboards.eq(&dashboards),
                env::contacts.eq(&contacts),
                env::archived_at.eq(archived_at),
                env::version.eq(current + 1),
            );
            if before.is_some() {
                diesel::update(env::table.find(name))
                    .set(values)
                    .execute(conn)?;
            } else {
                diesel::insert_into(env::table)
                    .values((env::name.eq(name), values))
                    .execute(conn)?;
            }
            let row = load_row(conn, name)?;
            let after = environment_view(conn, &row)?;
            let mut details = serde_json::Map::new();
            details.insert("environment".into(), json!(name));
            let old = before.as_ref().map(|b| b.to_wire(None, None)).transpose()?;
            let field = |e: &Environment| -> Value {
                json!({
                    "description": e.description,
                    "position": e.position,
                    "promotes_from": e.promotes_from,
                    "requires_promotion": e.requires_promotion,
                    "base_url": e.base_url,
                    "dashboards": e.dashboards,
                    "contacts": e.contacts,
                    "archived": e.archived,
                })
            };
            let new_fields = field(&after);
            let old_fields = old.as_ref().map(field);
            if let Value::Object(new_fields) = new_fields {
                for (k, v) in new_fields {
                    let was = old_fields
                        .as_ref()
                        .and_then(|o| o.get(&k))
                        .cloned()
                        .unwrap_or(Value::Null);
                    if was != v {
                        details.insert(k, json!({"from": was, "to": v}));
                    }
                }
            }
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::EnvironmentUpdated,
                    subject: name,
                    details: Value::Object(details),
                },
            )?;
            Ok(after)
        })
    }

    /// Deletes an environment no run names (with its locks and freeze windows); one that
    /// runs name is refused: archive it instead.
    pub fn delete_environment(&self, name: &str, by: &Auditor) -> StoreResult<()> {
        self.write(|conn| {
            lock_named(conn, "environments")?;
            load_row(conn, name)?;
            let runs: i64 = r::table
                .filter(r::environment.eq(name))
                .count()
                .get_result(conn)?;
            if runs > 0 {
                return Err(StoreError::Conflict {
                    code: "environment_in_use",
                    message: format!(
                        "{runs} run(s) name environment `{name}`: archive it instead (PUT it \
                         with `archived: true`)"
                    ),
                });
            }
            let promoted: Option<String> = env::table
                .filter(env::promotes_from.eq(name))
                .select(env::name)
                .first(conn)
                .optional()?;
            if let Some(next) = promoted {
                return Err(StoreError::Conflict {
                    code: "environment_in_use",
                    message: format!(
                        "environment `{next}` is promoted from `{name}`: change it first"
                    ),
                });
            }
            diesel::delete(el::table.filter(el::environment.eq(name))).execute(conn)?;
            diesel::delete(fw::table.filter(fw::environment.eq(name))).execute(conn)?;
            diesel::delete(env::table.find(name)).execute(conn)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::EnvironmentDeleted,
                    subject: name,
                    details: json!({ "environment": name }),
                },
            )?;
            Ok(())
        })
    }

    /// Locks an environment; refused while a lock holds.
    pub fn lock_environment(
        &self,
        name: &str,
        req: &LockEnvironmentRequest,
        by: &Auditor,
    ) -> StoreResult<EnvironmentLock> {
        let (reason, until) = check_lock(req, chrono::Utc::now())?;
        self.write(|conn| {
            load_row(conn, name)?;
            lock_named(conn, &format!("environment:{name}"))?;
            let at = now();
            match take_lock(conn, name, &reason, until.map(micros), None, by, at)? {
                Some(lock) => Ok(lock),
                None => Err(StoreError::Conflict {
                    code: "environment_locked",
                    message: format!("environment `{name}` is locked already"),
                }),
            }
        })
    }

    /// Unlocks an environment with a note; refused when no lock holds.
    pub fn unlock_environment(
        &self,
        name: &str,
        lock_id: &str,
        req: &UnlockEnvironmentRequest,
        by: &Auditor,
    ) -> StoreResult<EnvironmentLock> {
        let note = check_unlock(req)?;
        let username = by.actor.clone().unwrap_or_default();
        self.write(|conn| {
            load_row(conn, name)?;
            lock_named(conn, &format!("environment:{name}"))?;
            let at = now();
            let mut lock = el::table
                .find(lock_id)
                .filter(el::environment.eq(name))
                .select(LockRow::as_select())
                .get_result(conn)
                .optional()?
                .ok_or(StoreError::NotFound("lock"))?
                .to_wire();
            if !lock.holds(utc(at)) {
                return Err(StoreError::Conflict {
                    code: "environment_not_locked",
                    message: format!("this lock on `{name}` was lifted already"),
                });
            }
            diesel::update(el::table.find(&lock.id))
                .set((
                    el::unlocked_by.eq(&username),
                    el::unlocked_at.eq(at),
                    el::unlock_note.eq(&note),
                ))
                .execute(conn)?;
            lock.unlocked_by = Some(username.clone());
            lock.unlocked_at = Some(utc(at));
            lock.unlock_note = Some(note.clone());
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::EnvironmentUnlocked,
                    subject: name,
                    details: json!({ "environment": name, "lock_id": lock.id, "note": note }),
                },
            )?;
            crate::webhooks::enqueue_for_environment_event(
                conn,
                &EnvironmentEvent {
                    event_type: EnvironmentEventType::EnvironmentUnlocked,
                    environment: name.to_owned(),
                    actor: username.clone(),
                    at: utc(at),
                    lock: lock.clone(),
                },
                at,
            )?;
            Ok(lock)
        })
    }

    /// An environment's locks, newest first (at most `limit`).
    pub fn environment_locks(&self, name: &str, limit: i64) -> StoreResult<Vec<EnvironmentLock>> {
        self.read(|conn| {
            load_row(conn, name)?;
            Ok(el::table
                .filter(el::environment.eq(name))
                .order(el::locked_at.desc())
                .limit(limit)
                .select(LockRow::as_select())
                .load(conn)?
                .iter()
                .map(LockRow::to_wire)
                .collect())
        })
    }

    /// An environment's freeze windows, the soonest next occurrence first (those that will
    /// not occur again last).
    pub fn freezes(&self, name: &str) -> StoreResult<Vec<FreezeWindow>> {
        self.read(|conn| {
            load_row(conn, name)?;
            let at = chrono::Utc::now();
            let mut out = freezes_of(conn, name)?
                .iter()
                .map(|f| f.to_wire(at))
                .collect::<StoreResult<Vec<_>>>()?;
            out.sort_by_key(|f| (f.next.is_none(), f.next.as_ref().map(|n| n.starts_at)));
            Ok(out)
        })
    }

    /// Makes a freeze window: checked against the environment's others for overlap.
    pub fn create_freeze(
        &self,
        name: &str,
        req: &CreateFreezeRequest,
        by: &Auditor,
    ) -> StoreResult<FreezeWindow> {
        let username = by.actor.clone().unwrap_or_default();
        self.write(|conn| {
            load_row(conn, name)?;
            lock_named(conn, &format!("environment:{name}"))?;
            let at = now();
            let others = rules(&freezes_of(conn, name)?)?;
            let (reason, _) = check_freeze(req, utc(at), &others)?;
            let row = FreezeRow {
                id: new_id(),
                environment: name.to_owned(),
                reason,
                recurrence: req.recurrence.as_str().to_owned(),
                window_start: req.start.trim().to_owned(),
                window_end: req.end.trim().to_owned(),
                time_zone: req.time_zone.as_deref().map_or("UTC", str::trim).to_owned(),
                until: req.until.as_deref().map(|u| u.trim().to_owned()),
                created_by: username.clone(),
                created_at: at,
            };
            diesel::insert_into(fw::table)
                .values((
                    fw::id.eq(&row.id),
                    fw::environment.eq(&row.environment),
                    fw::reason.eq(&row.reason),
                    fw::recurrence.eq(&row.recurrence),
                    fw::window_start.eq(&row.window_start),
                    fw::window_end.eq(&row.window_end),
                    fw::time_zone.eq(&row.time_zone),
                    fw::until.eq(&row.until),
                    fw::created_by.eq(&row.created_by),
                    fw::created_at.eq(row.created_at),
                ))
                .execute(conn)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::FreezeWindowCreated,
                    subject: name,
                    details: json!({
                        "environment": name,
                        "freeze_id": row.id,
                        "reason": row.reason,
                        "recurrence": row.recurrence,
                        "start": row.window_start,
                        "end": row.window_end,
                        "time_zone": row.time_zone,
                        "until": row.until,
                    }),
                },
            )?;
            row.to_wire(utc(at))
        })
    }

    /// Deletes a freeze window.
    pub fn delete_freeze(&self, name: &str, id: &str, by: &Auditor) -> StoreResult<()> {
        self.write(|conn| {
            let row: FreezeRow = fw::table
                .find(id)
                .filter(fw::environment.eq(name))
                .select(FreezeRow::as_select())
                .get_result(conn)
                .optional()?
                .ok_or(StoreError::NotFound("freeze window"))?;
            diesel::delete(fw::table.find(id)).execute(conn)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::FreezeWindowDeleted,
                    subject: name,
                    details: json!({ "environment": name, "freeze_id": id, "reason": row.reason }),
                },
            )?;
            Ok(())
        })
    }

    /// The release calendar over `[from, to)`: runs' scheduled windows, freeze occurrences
    /// and locks, in one environment or all, by start.
    pub fn calendar(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        environment: Option<&str>,
    ) -> StoreResult<Calendar> {
        self.read(|conn| {
            let (f, t) = (micros(from), micros(to));
            let at = now();
            let mut entries = Vec::new();
            let mut runs = r::table
                .filter(r::window_start.is_not_null())
                .filter(r::window_start.lt(t))
                .filter(
                    r::window_end
                        .gt(f)
                        .or(r::window_end.is_null().and(r::window_start.ge(f))),
                )
                .select((
                    r::id,
                    r::product,
                    r::release_version,
                    r::environment,
                    r::status,
                    r::window_start,
                    r::window_end,
                ))
                .order(r::window_start.asc())
                .limit(2_000)
                .into_boxed();
            if let Some(e) = environment {
                runs = runs.filter(r::environment.eq(e));
            }
            type RunWindow = (
                String,
                String,
                String,
                String,
                String,
                Option<NaiveDateTime>,
                Option<NaiveDateTime>,
            );
            for (id, product, version, environment, status, start, end) in
                runs.load::<RunWindow>(conn)?
            {
                let status = RunStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("run {id} status `{status}`")))?;
                let Some(start) = start else { continue };
                entries.push(CalendarEntry {
                    kind: CalendarKind::Run,
                    title: format!("{product} {version} → {environment} ({})", status.as_str()),
                    id,
                    environment,
                    starts_at: utc(start),
                    ends_at: end.map(utc),
                    status: Some(status),
                });
            }
            let mut freezes = fw::table.select(FreezeRow::as_select()).into_boxed();
            if let Some(e) = environment {
                freezes = freezes.filter(fw::environment.eq(e));
            }
            for row in freezes.load::<FreezeRow>(conn)? {
                for (starts_at, ends_at) in row.rule()?.occurrences(from, to) {
                    entries.push(CalendarEntry {
                        kind: CalendarKind::Freeze,
                        id: row.id.clone(),
                        environment: row.environment.clone(),
                        title: format!("Freeze ({}): {}", row.environment, row.reason),
                        starts_at,
                        ends_at: Some(ends_at),
                        status: None,
                    });
                }
            }
            let mut locks = el::table
                .filter(el::locked_at.lt(t))
                .filter(el::unlocked_at.is_null().or(el::unlocked_at.gt(f)))
                .filter(el::until.is_null().or(el::until.gt(f)))
                .select(LockRow::as_select())
                .into_boxed();
            if let Some(e) = environment {
                locks = locks.filter(el::environment.eq(e));
            }
            for row in locks.load::<LockRow>(conn)? {
                let lock = row.to_wire();
                entries.push(CalendarEntry {
                    kind: CalendarKind::Lock,
                    id: lock.id.clone(),
                    environment: lock.environment.clone(),
                    title: format!("Locked ({}): {}", lock.environment, lock.reason),
                    starts_at: lock.locked_at,
                    ends_at: lock.ended_at(utc(at)).or(lock.until),
                    status: None,
                });
            }
            entries.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
            Ok(Calendar { from, to, entries })
        })
    }
}
