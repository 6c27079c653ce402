//! What mail needs: each user's address and opt-out, who is to be mailed, and what each has
//! already been told of (the keys of their pending list that a mail named), so that the next
//! mail says only what is new.

use diesel::prelude::*;
use shipshape_domain::Role;
use shipshape_domain::wire::NotificationSettings;

use chrono::NaiveDateTime;

use crate::live::{Signal, publish};
use crate::runs::Actor;
use crate::schema::{mail_outbox as mo, mail_seen as ms, users as u};
use crate::{AnyConnection, Store, StoreError, StoreResult, new_id, now};

/// A mail waiting in the outbox.
#[derive(Debug, Clone, Queryable)]
pub struct QueuedMail {
    /// Its id.
    pub id: String,
    /// The address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Attempts made.
    pub attempts: i32,
}

/// Queues a mail in the caller's transaction.
pub(crate) fn queue_mail(
    conn: &mut AnyConnection,
    to: &str,
    subject: &str,
    body: &str,
) -> StoreResult<()> {
    let t = now();
    diesel::insert_into(mo::table)
        .values((
            mo::id.eq(new_id()),
            mo::to_address.eq(to),
            mo::subject.eq(subject),
            mo::body.eq(body),
            mo::created_at.eq(t),
            mo::attempts.eq(0),
            mo::next_attempt_at.eq(Some(t)),
        ))
        .execute(conn)?;
    publish(conn, Signal::Outbox)
}

impl Store {
    /// A user's notification settings.
    pub fn notification_settings(&self, user_id: &str) -> StoreResult<NotificationSettings> {
        self.query(|conn| {
            let (email, email_notifications): (Option<String>, bool) = u::table
                .find(user_id)
                .select((u::email, u::email_notifications))
                .get_result(conn)
                .optional()?
                .ok_or(StoreError::NotFound("user"))?;
            Ok(NotificationSettings {
                email,
                email_notifications,
            })
        })
    }

    /// Changes a user's address (`Some(None)` removes it) or opt-out.
    pub fn update_notification_settings(
        &self,
        user_id: &str,
        email: Option<Option<String>>,
        email_notifications: Option<bool>,
    ) -> StoreResult<NotificationSettings> {
        self.write(|conn| {
            if let Some(email) = &email {
                diesel::update(u::table.find(user_id))
                    .set(u::email.eq(email))
                    .execute(conn)?;
            }
            if let Some(on) = email_notifications {
                diesel::update(u::table.find(user_id))
                    .set(u::email_notifications.eq(on))
                    .execute(conn)?;
            }
            Ok(())
        })?;
        self.notification_settings(user_id)
    }

    /// Active users with an address who want mail, with the address.
    pub fn mail_recipients(&self) -> StoreResult<Vec<(Actor, String)>> {
        self.query(|conn| {
            let rows: Vec<(String, String, String, Option<String>)> = u::table
                .filter(u::active.eq(true))
                .filter(u::email_notifications.eq(true))
                .filter(u::email.is_not_null())
                .order(u::username.asc())
                .select((u::id, u::username, u::role, u::email))
                .load(conn)?;
            rows.into_iter()
                .filter_map(|(id, username, role, email)| Some((id, username, role, email?)))
                .map(|(id, username, role, email)| {
                    let role = Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?;
                    Ok((Actor { id, username, role }, email))
                })
                .collect()
        })
    }

    /// The keys a user has been mailed about.
    pub fn mail_seen(&self, user_id: &str) -> StoreResult<Vec<String>> {
        self.query(|conn| {
            Ok(ms::table
                .filter(ms::user_id.eq(user_id))
                .order(ms::key.asc())
                .select(ms::key)
                .load(conn)?)
        })
    }

    /// Records that a user has been told of exactly `keys` (what waits on them now): keys
    /// no longer pending are forgotten, so they are mailed again if they come back.
    pub fn replace_mail_seen(&self, user_id: &str, keys: &[String]) -> StoreResult<()> {
        self.write(|conn| {
            diesel::delete(ms::table.filter(ms::user_id.eq(user_id))).execute(conn)?;
            let t = now();
            for key in keys {
                diesel::insert_into(ms::table)
                    .values((ms::user_id.eq(user_id), ms::key.eq(key), ms::seen_at.eq(t)))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    /// Queued mail that is due, oldest first.
    pub fn due_mail(&self, limit: i64) -> StoreResult<Vec<QueuedMail>> {
        let t = now();
        self.query(|conn| {
            Ok(mo::table
                .filter(mo::sent_at.is_null())
                .filter(mo::next_attempt_at.le(t))
                .order(mo::next_attempt_at.asc())
                .limit(limit)
                .select((mo::id, mo::to_address, mo::subject, mo::body, mo::attempts))
                .load(conn)?)
        })
    }

    /// When the next queued mail falls due, if any waits.
    pub fn next_mail_due(&self) -> StoreResult<Option<NaiveDateTime>> {
        self.query(|conn| {
            Ok(mo::table
                .filter(mo::sent_at.is_null())
                .select(diesel::dsl::min(mo::next_attempt_at))
                .first::<Option<NaiveDateTime>>(conn)?)
        })
    }

    /// Records an attempt at a queued mail: sent (`error` is `None`), to be retried at
    /// `retry_at`, or given up.
    pub fn mail_attempted(
        &self,
        id: &str,
        error: Option<&str>,
        retry_at: Option<NaiveDateTime>,
    ) -> StoreResult<()> {
        self.write(|conn| {
            let t = now();
            diesel::update(mo::table.find(id))
                .set((
                    mo::attempts.eq(mo::attempts + 1),
                    mo::sent_at.eq(error.is_none().then_some(t)),
                    mo::next_attempt_at.eq(if error.is_none() { None } else { retry_at }),
                    mo::last_error.eq(error),
                ))
                .execute(conn)?;
            Ok(())
        })
    }
}
