//! The sign-in guard's counters, and the audit entries of the locks they start. The rules are
//! the domain's (`shipshape_domain::signin`); here they are applied to stored counters, every
//! key of an attempt in one transaction, serialised by a named lock so that two instances
//! admitting attempts at once count both.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use shipshape_domain::signin::{self, Admission, Counter, GuardKey, LockStarted, Verdict};

use shipshape_domain::wire::AuditAction;

use crate::audit::{Auditor, NewAuditEntry, append_audit};
use crate::schema::sign_in_guard::dsl as g;
use crate::{AnyConnection, Store, StoreResult, lock_named, now, utc};

#[derive(Queryable)]
struct Row {
    attempts: i32,
    last_attempt: NaiveDateTime,
    locked_until: Option<NaiveDateTime>,
    next_turn: Option<NaiveDateTime>,
}

fn load(conn: &mut AnyConnection, key: &GuardKey) -> StoreResult<Option<Counter>> {
    let row = g::sign_in_guard
        .filter(g::key.eq(key.stored()))
        .select((g::attempts, g::last_attempt, g::locked_until, g::next_turn))
        .first::<Row>(conn)
        .optional()?;
    Ok(row.map(|r| Counter {
        attempts: u32::try_from(r.attempts).unwrap_or(0),
        last_attempt: utc(r.last_attempt),
        locked_until: r.locked_until.map(utc),
        next_turn: r.next_turn.map(utc),
    }))
}

fn store(conn: &mut AnyConnection, key: &GuardKey, counter: Option<Counter>) -> StoreResult<()> {
    let stored = key.stored();
    diesel::delete(g::sign_in_guard.filter(g::key.eq(&stored))).execute(conn)?;
    if let Some(c) = counter {
        diesel::insert_into(g::sign_in_guard)
            .values((
                g::key.eq(&stored),
                g::attempts.eq(i32::try_from(c.attempts).unwrap_or(i32::MAX)),
                g::last_attempt.eq(c.last_attempt.naive_utc()),
                g::locked_until.eq(c.locked_until.map(|t| t.naive_utc())),
                g::next_turn.eq(c.next_turn.map(|t| t.naive_utc())),
            ))
            .execute(conn)?;
    }
    Ok(())
}

impl Store {
    /// Admits a sign-in attempt against every key it counts against, or refuses it with the
    /// longest wait any key asks for. Nothing is counted for a refused attempt.
    pub fn admit_sign_in(&self, keys: &[GuardKey]) -> StoreResult<Admission> {
        self.write(|conn| {
            lock_named(conn, "sign_in_guard")?;
            let at = utc(now());
            let mut admitted = Vec::with_capacity(keys.len());
            let mut wait = std::time::Duration::ZERO;
            let mut refused = None;
            for key in keys {
                let (answer, counter) = signin::admit(key, load(conn, key)?, at);
                match answer {
                    Admission::Go { wait: w } => {
                        wait = wait.max(w);
                        admitted.push((key, counter));
                    }
                    Admission::Refused { retry_after } => {
                        refused = refused.max(Some(retry_after));
                    }
                }
            }
            if let Some(retry_after) = refused {
                return Ok(Admission::Refused { retry_after });
            }
            for (key, counter) in admitted {
                store(conn, key, Some(counter))?;
            }
            Ok(Admission::Go { wait })
        })
    }

    /// Records how an admitted attempt ended. A failure that locks an account is written to
    /// the audit log in the same transaction, and returned for the server's log.
    pub fn finish_sign_in(
        &self,
        keys: &[GuardKey],
        verdict: Verdict,
        address: Option<&str>,
    ) -> StoreResult<Option<LockStarted>> {
        self.write(|conn| {
            lock_named(conn, "sign_in_guard")?;
            let at = utc(now());
            let mut started = None;
            for key in keys {
                let (counter, lock) = signin::finish(key, load(conn, key)?, verdict, at);
                store(conn, key, counter)?;
                if let (Some(lock), GuardKey::Account(name)) = (lock, key) {
                    append_audit(
                        conn,
                        NewAuditEntry {
                            by: &Auditor {
                                address: address.map(str::to_owned),
                                ..Auditor::default()
                            },
                            action: AuditAction::SignInLocked,
                            subject: name,
                            details: serde_json::json!({
                                "failures": lock.failures,
                                "locked_until": lock.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            }),
                        },
                    )?;
                    started = Some(lock);
                }
            }
            // Forget what has gone quiet, so the table stays small.
            prune(conn, at)?;
            Ok(started)
        })
    }
}

fn prune(conn: &mut AnyConnection, at: chrono::DateTime<chrono::Utc>) -> StoreResult<()> {
    let cutoff = (at - chrono::TimeDelta::from_std(signin::WINDOW).unwrap_or_default()).naive_utc();
    diesel::delete(
        g::sign_in_guard.filter(
            g::last_attempt
                .lt(cutoff)
                .and(g::locked_until.is_null().or(g::locked_until.lt(cutoff)))
                .and(g::next_turn.is_null().or(g::next_turn.lt(cutoff))),
        ),
    )
    .execute(conn)?;
    Ok(())
}
