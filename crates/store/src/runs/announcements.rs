//! Stakeholder announcements: the facts a draft is made from, and sending one — its event
//! (with deliveries to the chosen subscriptions), its mail, and the checklist item it
//! completes, all in one transaction.

use diesel::prelude::*;
use shipshape_domain::announcement::{Announcement, RunFacts};
use shipshape_domain::decision::Outcome;
use shipshape_domain::event::{AnnouncementSent, EventData};
use shipshape_domain::item::{ItemChange, ItemStatus};
use shipshape_domain::run::RunStatus;
use shipshape_domain::wire::RunItem;

use crate::schema::decisions as d;
use crate::{Store, StoreError, StoreResult, now, utc};

use super::Actor;
use super::events::append_event_to;
use super::items::update_item_locked;
use super::rows::*;

/// What sending an announcement did.
#[derive(Debug, Clone)]
pub struct Announced {
    /// The event's `seq`.
    pub seq: i64,
    /// The item it completed.
    pub item: Option<RunItem>,
}

impl Store {
    /// The run's status and what an announcement draft is made from (`run_url` unset).
    pub fn announcement_facts(&self, run_id: &str) -> StoreResult<(RunStatus, RunFacts)> {
        self.read(|conn| {
            let run = load_run(conn, run_id)?;
            let members = load_members(conn, run_id)?;
            let rollback_reason: Option<String> = d::table
                .filter(d::run_id.eq(run_id))
                .filter(d::outcome.eq(Outcome::Rollback.as_str()))
                .order(d::seq.desc())
                .select(d::rationale)
                .first(conn)
                .optional()?;
            Ok((
                run.status()?,
                RunFacts {
                    product: run.product.clone(),
                    release_version: run.release_version.clone(),
                    environment: run.environment.clone(),
                    window_start: run.window_start.map(utc),
                    window_end: run.window_end.map(utc),
                    expected_downtime_minutes: run.expected_downtime_minutes,
                    contacts: members
                        .iter()
                        .map(|m| (m.username.clone(), m.run_role.clone()))
                        .collect(),
                    rollback_reason,
                    run_url: None,
                },
            ))
        })
    }

    /// Sends an announcement: records it in the run's log, queues it to the chosen
    /// subscriptions (which must be active) and addresses (`mail` says whether mail is
    /// configured), and marks the item it satisfies done with the announcement as evidence.
    pub fn announce(
        &self,
        run_id: &str,
        a: &Announcement,
        mail: bool,
        actor: &Actor,
    ) -> StoreResult<Announced> {
        let invalid = |field: &'static str, message: String| StoreError::Invalid { field, message };
        if !a.recipients.is_empty() && !mail {
            return Err(invalid(
                "recipients",
                "mail is not configured on this server (SHIPSHAPE_SMTP_URL)".into(),
            ));
        }
        self.write(|conn| {
            lock_run(conn, run_id)?;
            let run = load_run(conn, run_id)?;
            if run.closed_at.is_some() {
                return Err(invalid("kind", "the run is closed".into()));
            }
            a.kind
                .check_stage(run.status()?)
                .map_err(|m| invalid("kind", m))?;
            for id in &a.subscription_ids {
                if !crate::webhooks::load_subscription_active(conn, id)? {
                    return Err(invalid(
                        "subscription_ids",
                        format!("`{id}` is not an active webhook subscription"),
                    ));
                }
            }
            let seq = append_event_to(
                conn,
                run_id,
                &actor.username,
                now(),
                EventData::AnnouncementSent(AnnouncementSent {
                    announcement: a.kind,
                    subject: a.subject.clone(),
                    body: a.body.clone(),
                    subscription_ids: a.subscription_ids.clone(),
                    recipients: a.recipients.clone(),
                    item_id: a.item_id.clone(),
                }),
                &a.subscription_ids,
            )?;
            for to in &a.recipients {
                crate::mail::queue_mail(conn, to, &a.subject, &a.body)?;
            }
            let item = match &a.item_id {
                Some(item_id) => {
                    let change = ItemChange {
                        status: Some(ItemStatus::Done),
                        note: Some(Some(format!("Announced (event {seq}): {}", a.subject))),
                        ..ItemChange::default()
                    }
                    .validated()?;
                    Some(update_item_locked(
                        conn, run_id, item_id, None, change, actor,
                    )?)
                }
                None => None,
            };
            Ok(Announced { seq, item })
        })
    }
}
