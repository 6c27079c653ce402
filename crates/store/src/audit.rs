//! The global audit log of administration and security events: who did what, when, from
//! which address, what changed from what to what. Hash-chained like a run's event log
//! (`shipshape_domain::chain`); each entry is written in the transaction of the change it
//! records, by the store call that makes the change.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;
use shipshape_domain::chain::{GENESIS, chained_body, link_hash};
use shipshape_domain::wire::{AuditAction, AuditEntry, AuditPage, ChainVerdict};

use crate::chain::{ChainEntry, links_to_store, verify};
use crate::schema::audit_log::dsl as al;
use crate::{AnyConnection, Store, StoreError, StoreResult, lock_named, now, utc};

/// Who makes an administrative change, and from where: what the audit log records of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auditor {
    /// Their user id (`None` when no one is signed in).
    pub actor_id: Option<String>,
    /// Their user name.
    pub actor: Option<String>,
    /// The client's address.
    pub address: Option<String>,
}

/// One entry to append.
#[derive(Debug, Clone)]
pub(crate) struct NewAuditEntry<'a> {
    /// Who, from where.
    pub by: &'a Auditor,
    /// What happened.
    pub action: AuditAction,
    /// What it happened to, e.g. a user name.
    pub subject: &'a str,
    /// What changed, as a JSON object.
    pub details: Value,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::audit_log)]
struct AuditRow {
    seq: i64,
    at: NaiveDateTime,
    actor_id: Option<String>,
    actor: Option<String>,
    address: Option<String>,
    action: String,
    subject: String,
    details: String,
    prev_hash: Option<String>,
    hash: Option<String>,
}

impl AuditRow {
    fn to_wire(&self) -> Result<AuditEntry, String> {
        Ok(AuditEntry {
            seq: self.seq,
            at: utc(self.at),
            actor: self.actor.clone(),
            actor_id: self.actor_id.clone(),
            address: self.address.clone(),
            action: AuditAction::parse(&self.action)
                .ok_or_else(|| format!("unknown action `{}`", self.action))?,
            subject: self.subject.clone(),
            details: serde_json::from_str(&self.details)
                .map_err(|e| format!("details are not JSON: {e}"))?,
            prev_hash: self.prev_hash.clone().unwrap_or_default(),
            hash: self.hash.clone().unwrap_or_default(),
        })
    }
}

impl ChainEntry for AuditRow {
    fn seq(&self) -> i64 {
        self.seq
    }

    fn body(&self) -> Result<Value, String> {
        chained_body(&self.to_wire()?).map_err(|e| e.to_string())
    }

    fn prev_hash(&self) -> Option<&str> {
        self.prev_hash.as_deref()
    }

    fn hash(&self) -> Option<&str> {
        self.hash.as_deref()
    }
}

/// Appends an entry to the audit log, chained to the last, in the caller's transaction.
pub(crate) fn append_audit(conn: &mut AnyConnection, entry: NewAuditEntry<'_>) -> StoreResult<()> {
    lock_named(conn, "audit_log")?;
    // What an administrator changed may show in what is read elsewhere (an environment's
    // lock in a run's blockers, a user's role in a run's team).
    crate::live::publish(conn, crate::live::Signal::Settings)?;
    let last: Option<(i64, Option<String>)> = al::audit_log
        .order(al::seq.desc())
        .select((al::seq, al::hash))
        .first(conn)
        .optional()?;
    let (seq, prev_hash) = match last {
        None => (1, GENESIS.to_owned()),
        Some((seq, Some(hash))) => (seq + 1, hash),
        Some((seq, None)) => {
            chain_audit(conn)?;
            let hash: Option<String> = al::audit_log.find(seq).select(al::hash).get_result(conn)?;
            let hash = hash.ok_or_else(|| {
                StoreError::Corrupt(format!("audit entry {seq} cannot be chained"))
            })?;
            (seq + 1, hash)
        }
    };
    let row = AuditRow {
        seq,
        at: now(),
        actor_id: entry.by.actor_id.clone(),
        actor: entry.by.actor.clone(),
        address: entry.by.address.clone(),
        action: entry.action.as_str().to_owned(),
        subject: entry.subject.to_owned(),
        details: entry.details.to_string(),
        prev_hash: None,
        hash: None,
    };
    let body = row.body().map_err(StoreError::Corrupt)?;
    let hash = link_hash(&prev_hash, &body);
    diesel::insert_into(al::audit_log)
        .values((
            al::seq.eq(row.seq),
            al::at.eq(row.at),
            al::actor_id.eq(&row.actor_id),
            al::actor.eq(&row.actor),
            al::address.eq(&row.address),
            al::action.eq(&row.action),
            al::subject.eq(&row.subject),
            al::details.eq(&row.details),
            al::prev_hash.eq(&prev_hash),
            al::hash.eq(&hash),
        ))
        .execute(conn)?;
    Ok(())
}

/// Chains the entries written before the log was chained, in order; stops at one that does
/// not decode (verification reports it).
fn chain_audit(conn: &mut AnyConnection) -> StoreResult<()> {
    let rows: Vec<AuditRow> = al::audit_log
        .order(al::seq.asc())
        .select(AuditRow::as_select())
        .load(conn)?;
    let links = links_to_store(&rows, "audit log");
    for (seq, prev_hash, hash) in links {
        diesel::update(al::audit_log.find(seq))
            .set((al::prev_hash.eq(prev_hash), al::hash.eq(hash)))
            .execute(conn)?;
    }
    Ok(())
}

impl Store {
    /// Chains audit entries written before the log was chained. Idempotent; part of
    /// `migrate`.
    pub(crate) fn chain_unchained_audit(&self) -> StoreResult<()> {
        self.write(|conn| {
            let unchained: i64 = al::audit_log
                .filter(al::hash.is_null())
                .count()
                .get_result(conn)?;
            if unchained > 0 {
                lock_named(conn, "audit_log")?;
                chain_audit(conn)?;
            }
            Ok(())
        })
    }

    /// A page of the audit log after `after`, oldest first.
    pub fn audit_log(&self, after: i64, limit: i64) -> StoreResult<AuditPage> {
        self.read(|conn| {
            let rows: Vec<AuditRow> = al::audit_log
                .filter(al::seq.gt(after))
                .order(al::seq.asc())
                .limit(limit)
                .select(AuditRow::as_select())
                .load(conn)?;
            let items = rows
                .iter()
                .map(|r| {
                    r.to_wire()
                        .map_err(|e| StoreError::Corrupt(format!("audit entry {}: {e}", r.seq)))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let next_after = match items.last() {
                Some(last) if items.len() as i64 == limit => Some(last.seq),
                _ => None,
            };
            Ok(AuditPage { items, next_after })
        })
    }

    /// Verifies the audit log's chain.
    pub fn verify_audit_log(&self) -> StoreResult<ChainVerdict> {
        self.read(verify_audit_on)
    }
}

/// Verifies the audit log's chain on a connection (inside a caller's transaction).
pub(crate) fn verify_audit_on(conn: &mut crate::AnyConnection) -> StoreResult<ChainVerdict> {
    let last: Option<i64> = al::audit_log
        .select(diesel::dsl::max(al::seq))
        .first(conn)?;
    verify(last.unwrap_or(0), |after, limit| {
        Ok(al::audit_log
            .filter(al::seq.gt(after))
            .order(al::seq.asc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(conn)?)
    })
}
