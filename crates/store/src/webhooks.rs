//! Webhook subscriptions and their outbox.
//!
//! A delivery row is written in the transaction of the event it carries
//! ([`enqueue_for_event`], called where events are appended), so a crash or a restart loses
//! none. Workers on any instance claim due rows for a while (`claimed_by`,
//! `claimed_until`): a row is claimed by one worker at a time, so each attempt is made once
//! however many instances run, and a worker that dies mid-attempt leaves a claim that
//! expires, after which the attempt is made again (at-least-once; the `webhook-id` lets a
//! receiver drop the repeat).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Value, json};
use shipshape_domain::environment::EnvironmentEvent;
use shipshape_domain::event::Event;
use shipshape_domain::webhook::{
    DeliveryAttempt, DeliveryPage, DeliveryStatus, TEST_EVENT_TYPE, UpdateWebhookRequest,
    WebhookDelivery, WebhookEventType, WebhookFormat, WebhookSpec, WebhookSubscription,
};
use shipshape_domain::wire::AuditAction;

use crate::audit::{NewAuditEntry, append_audit};
use crate::live::{Signal, publish};
use crate::schema::runs as r;
use crate::schema::webhook_attempts as wa;
use crate::schema::webhook_deliveries as wd;
use crate::schema::webhook_subscriptions as ws;
use crate::{AnyConnection, Auditor, Store, StoreError, StoreResult, new_id, now, utc};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ws)]
struct SubscriptionRow {
    id: String,
    url: String,
    description: Option<String>,
    format: String,
    event_types: String,
    product: Option<String>,
    environment: Option<String>,
    active: bool,
    disabled_reason: Option<String>,
    failing_since: Option<NaiveDateTime>,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_expires_at: Option<NaiveDateTime>,
    created_by: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl SubscriptionRow {
    fn spec(&self) -> StoreResult<WebhookSpec> {
        let names: Vec<String> = serde_json::from_str(&self.event_types)
            .map_err(|e| StoreError::Corrupt(format!("webhook {} event types: {e}", self.id)))?;
        Ok(WebhookSpec {
            url: self.url.clone(),
            description: self.description.clone(),
            format: WebhookFormat::parse(&self.format).ok_or_else(|| {
                StoreError::Corrupt(format!("webhook {} format `{}`", self.id, self.format))
            })?,
            // A kind a later version no longer knows is dropped, not fatal.
            event_types: names
                .iter()
                .filter_map(|n| WebhookEventType::parse(n))
                .collect(),
            product: self.product.clone(),
            environment: self.environment.clone(),
            active: self.active,
        })
    }

    fn to_wire(&self) -> StoreResult<WebhookSubscription> {
        let spec = self.spec()?;
        let previous_secret_expires_at = self
            .previous_secret_expires_at
            .filter(|t| self.previous_secret.is_some() && *t > now())
            .map(utc);
        Ok(WebhookSubscription {
            id: self.id.clone(),
            url: spec.url,
            description: spec.description,
            format: spec.format,
            event_types: spec.event_types,
            product: spec.product,
            environment: spec.environment,
            active: spec.active,
            disabled_reason: self.disabled_reason.clone(),
            failing_since: self.failing_since.map(utc),
            previous_secret_expires_at,
            created_by: self.created_by.clone(),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
        })
    }
}

fn event_types_json(kinds: &[WebhookEventType]) -> String {
    Value::from(kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>()).to_string()
}

pub(crate) fn load_subscription_active(conn: &mut AnyConnection, id: &str) -> StoreResult<bool> {
    Ok(ws::table
        .find(id)
        .select(ws::active)
        .get_result::<bool>(conn)
        .optional()?
        .unwrap_or(false))
}

fn load_subscription(conn: &mut AnyConnection, id: &str) -> StoreResult<SubscriptionRow> {
    ws::table
        .find(id)
        .select(SubscriptionRow::as_select())
        .get_result(conn)
        .optional()?
        .ok_or(StoreError::NotFound("webhook subscription"))
}

/// A new delivery id: the `webhook-id` header.
fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// The Standard Webhooks envelope of an event.
pub fn envelope(event_type: &str, timestamp: Value, data: Value) -> Value {
    json!({ "type": event_type, "timestamp": timestamp, "data": data })
}

struct NewDelivery<'a> {
    subscription_id: &'a str,
    event_type: &'a str,
    run_id: Option<&'a str>,
    event_seq: Option<i64>,
    body: &'a str,
    at: NaiveDateTime,
}

fn insert_delivery(conn: &mut AnyConnection, d: NewDelivery<'_>) -> StoreResult<String> {
    let id = new_message_id();
    diesel::insert_into(wd::table)
        .values((
            wd::id.eq(&id),
            wd::subscription_id.eq(d.subscription_id),
            wd::event_type.eq(d.event_type),
            wd::run_id.eq(d.run_id),
            wd::event_seq.eq(d.event_seq),
            wd::body.eq(d.body),
            wd::status.eq(DeliveryStatus::Pending.as_str()),
            wd::attempts.eq(0),
            wd::next_attempt_at.eq(Some(d.at)),
            wd::created_at.eq(d.at),
        ))
        .execute(conn)?;
    publish(conn, Signal::Outbox)?;
    Ok(id)
}

fn active_subscriptions(conn: &mut AnyConnection) -> StoreResult<Vec<SubscriptionRow>> {
    Ok(ws::table
        .filter(ws::active.eq(true))
        .select(SubscriptionRow::as_select())
        .load(conn)?)
}

/// An event to deliver: its kind, what subscriptions filter it by, its data (the envelope's
/// `data`) and where it came from.
struct Outbound<'a, T: serde::Serialize> {
    kind: WebhookEventType,
    product: Option<&'a str>,
    environment: &'a str,
    data: &'a T,
    happened_at: chrono::DateTime<chrono::Utc>,
    run_id: Option<&'a str>,
    event_seq: Option<i64>,
}

/// Queues one delivery of `out` to each of `subscriptions` that wants it (or is in `also`),
/// the envelope written once.
fn enqueue<T: serde::Serialize>(
    conn: &mut AnyConnection,
    subscriptions: &[SubscriptionRow],
    out: Outbound<'_, T>,
    also: &[String],
    at: NaiveDateTime,
) -> StoreResult<()> {
    let mut body: Option<String> = None;
    for sub in subscriptions {
        let Ok(spec) = sub.spec() else { continue };
        if !spec.wants(out.kind, out.product, out.environment) && !also.contains(&sub.id) {
            continue;
        }
        let body = match &body {
            Some(b) => b,
            None => {
                let data = serde_json::to_value(out.data)
                    .map_err(|e| StoreError::Corrupt(format!("event: {e}")))?;
                let timestamp = serde_json::to_value(out.happened_at)
                    .map_err(|e| StoreError::Corrupt(format!("event time: {e}")))?;
                body.insert(envelope(out.kind.as_str(), timestamp, data).to_string())
            }
        };
        insert_delivery(
            conn,
            NewDelivery {
                subscription_id: &sub.id,
                event_type: out.kind.as_str(),
                run_id: out.run_id,
                event_seq: out.event_seq,
                body,
                at,
            },
        )?;
    }
    Ok(())
}

/// What a change already knows of where its run event may go: whether any subscription is
/// active, and the run's product and environment (the filters).
pub(crate) struct Audience<'a> {
    /// Whether any subscription is active (read in the change's transaction).
    pub(crate) any_active: bool,
    /// The run's product.
    pub(crate) product: &'a str,
    /// The run's environment.
    pub(crate) environment: &'a str,
}

/// Queues a delivery of `event` to every active subscription that wants it (and to those in
/// `also` that are active), in the transaction that appends the event. `known`: what the
/// change read of them already (else it is read here).
pub(crate) fn enqueue_for_event(
    conn: &mut AnyConnection,
    event: &Event,
    at: NaiveDateTime,
    also: &[String],
    known: Option<Audience<'_>>,
) -> StoreResult<()> {
    if known.as_ref().is_some_and(|k| !k.any_active) {
        return Ok(());
    }
    let subscriptions = active_subscriptions(conn)?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    let (product, environment): (String, String) = match known {
        Some(k) => (k.product.to_owned(), k.environment.to_owned()),
        None => r::table
            .find(&event.run_id)
            .select((r::product, r::environment))
            .get_result(conn)?,
    };
    enqueue(
        conn,
        &subscriptions,
        Outbound {
            kind: WebhookEventType::Run(event.event_type()),
            product: Some(&product),
            environment: &environment,
            data: event,
            happened_at: event.at,
            run_id: Some(&event.run_id),
            event_seq: Some(event.seq),
        },
        also,
        at,
    )
}

/// Queues a delivery of an environment event to every active subscription that asks for its
/// kind in that environment (the product filter does not apply), in the transaction that
/// makes the change.
pub(crate) fn enqueue_for_environment_event(
    conn: &mut AnyConnection,
    event: &EnvironmentEvent,
    at: NaiveDateTime,
) -> StoreResult<()> {
    let subscriptions = active_subscriptions(conn)?;
    enqueue(
        conn,
        &subscriptions,
        Outbound {
            kind: WebhookEventType::Environment(event.event_type),
            product: None,
            environment: &event.environment,
            data: event,
            happened_at: event.at,
            run_id: event.lock.run_id.as_deref(),
            event_seq: None,
        },
        &[],
        at,
    )
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = wd)]
struct DeliveryRow {
    id: String,
    subscription_id: String,
    event_type: String,
    run_id: Option<String>,
    event_seq: Option<i64>,
    body: String,
    status: String,
    attempts: i32,
    next_attempt_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = wa)]
struct AttemptRow {
    attempt: i32,
    at: NaiveDateTime,
    status_code: Option<i32>,
    latency_ms: i64,
    error: Option<String>,
    response_excerpt: Option<String>,
}

impl AttemptRow {
    fn to_wire(&self) -> DeliveryAttempt {
        DeliveryAttempt {
            attempt: self.attempt,
            at: utc(self.at),
            status_code: self.status_code,
            latency_ms: self.latency_ms,
            error: self.error.clone(),
            response_excerpt: self.response_excerpt.clone(),
        }
    }
}

impl DeliveryRow {
    fn to_wire(&self, attempts: Vec<DeliveryAttempt>) -> StoreResult<WebhookDelivery> {
        Ok(WebhookDelivery {
            id: self.id.clone(),
            subscription_id: self.subscription_id.clone(),
            event_type: self.event_type.clone(),
            run_id: self.run_id.clone(),
            event_seq: self.event_seq,
            status: DeliveryStatus::parse(&self.status).ok_or_else(|| {
                StoreError::Corrupt(format!("delivery {} status `{}`", self.id, self.status))
            })?,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at.map(utc),
            created_at: utc(self.created_at),
            body: serde_json::from_str(&self.body)
                .map_err(|e| StoreError::Corrupt(format!("delivery {} body: {e}", self.id)))?,
            attempt_log: attempts,
        })
    }
}

fn attempts_of(
    conn: &mut AnyConnection,
    delivery_id: &str,
    last_only: bool,
) -> StoreResult<Vec<DeliveryAttempt>> {
    let mut q = wa::table
        .filter(wa::delivery_id.eq(delivery_id))
        .select(AttemptRow::as_select())
        .into_boxed();
    q = if last_only {
        q.order(wa::attempt.desc()).limit(1)
    } else {
        q.order(wa::attempt.asc())
    };
    Ok(q.load(conn)?.iter().map(AttemptRow::to_wire).collect())
}

fn load_delivery(
    conn: &mut AnyConnection,
    subscription_id: &str,
    delivery_id: &str,
) -> StoreResult<DeliveryRow> {
    wd::table
        .filter(
            wd::id
                .eq(delivery_id)
                .and(wd::subscription_id.eq(subscription_id)),
        )
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("delivery"))
}

/// A delivery a worker has claimed: what it needs to make the attempt.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The delivery's id (`webhook-id`).
    pub id: String,
    /// The subscription.
    pub subscription_id: String,
    /// Where to send it.
    pub url: String,
    /// How to write it.
    pub format: WebhookFormat,
    /// The secrets that sign it: the current one first, then the previous one while its
    /// grace period lasts.
    pub secrets: Vec<String>,
    /// The stored envelope.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: i32,
    /// The run's product, release version and environment (for a chat message).
    pub run: Option<(String, String, String)>,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// When it was made.
    pub at: NaiveDateTime,
    /// The answer's status, if one came.
    pub status_code: Option<i32>,
    /// How long it took.
    pub latency_ms: i64,
    /// What went wrong (`None`: delivered).
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response_excerpt: Option<String>,
    /// When to try again after a failure (`None`: give up).
    pub retry_at: Option<NaiveDateTime>,
}

impl Store {
    /// Creates a subscription with its signing secret.
    pub fn create_webhook(
        &self,
        spec: &WebhookSpec,
        secret: &str,
        by: &Auditor,
    ) -> StoreResult<WebhookSubscription> {
        let id = new_id();
        let t = now();
        self.write(|conn| {
            diesel::insert_into(ws::table)
                .values((
                    ws::id.eq(&id),
                    ws::url.eq(&spec.url),
                    ws::description.eq(&spec.description),
                    ws::format.eq(spec.format.as_str()),
                    ws::event_types.eq(event_types_json(&spec.event_types)),
                    ws::product.eq(&spec.product),
                    ws::environment.eq(&spec.environment),
                    ws::active.eq(spec.active),
                    ws::secret.eq(secret),
                    ws::created_by.eq(by.actor.as_deref().unwrap_or("")),
                    ws::created_at.eq(t),
                    ws::updated_at.eq(t),
                ))
                .execute(conn)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::WebhookCreated,
                    subject: &id,
                    details: json!({
                        "url": spec.url,
                        "format": spec.format.as_str(),
                        "event_types": spec.event_types.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                        "product": spec.product,
                        "environment": spec.environment,
                        "active": spec.active,
                    }),
                },
            )?;
            load_subscription(conn, &id)?.to_wire()
        })
    }

    /// Every subscription, oldest first.
    pub fn list_webhooks(&self) -> StoreResult<Vec<WebhookSubscription>> {
        self.query(|conn| {
            let rows: Vec<SubscriptionRow> = ws::table
                .order((ws::created_at.asc(), ws::id.asc()))
                .select(SubscriptionRow::as_select())
                .load(conn)?;
            rows.iter().map(SubscriptionRow::to_wire).collect()
        })
    }

    /// One subscription.
    pub fn webhook(&self, id: &str) -> StoreResult<WebhookSubscription> {
        self.query(|conn| load_subscription(conn, id)?.to_wire())
    }

    /// Changes a subscription: `patch` is applied to what it is now, in the transaction.
    /// Activating it clears the reason the server deactivated it.
    pub fn update_webhook(
        &self,
        id: &str,
        patch: &UpdateWebhookRequest,
        by: &Auditor,
    ) -> StoreResult<WebhookSubscription> {
        self.write(|conn| {
            let row = load_subscription(conn, id)?;
            let before = row.spec()?;
            let after = patch.apply(&before).map_err(|e| StoreError::Invalid {
                field: e.field,
                message: e.message,
            })?;
            let mut changes = serde_json::Map::new();
            let mut note = |field: &str, from: Value, to: Value| {
                if from != to {
                    changes.insert(field.to_owned(), json!({ "from": from, "to": to }));
                }
            };
            note("url", json!(before.url), json!(after.url));
            note(
                "description",
                json!(before.description),
                json!(after.description),
            );
            note("format", json!(before.format), json!(after.format));
            note(
                "event_types",
                json!(before.event_types),
                json!(after.event_types),
            );
            note("product", json!(before.product), json!(after.product));
            note(
                "environment",
                json!(before.environment),
                json!(after.environment),
            );
            note("active", json!(before.active), json!(after.active));
            if changes.is_empty() {
                return row.to_wire();
            }
            let reactivated = after.active && !before.active;
            diesel::update(ws::table.find(id))
                .set((
                    ws::url.eq(&after.url),
                    ws::description.eq(&after.description),
                    ws::format.eq(after.format.as_str()),
                    ws::event_types.eq(event_types_json(&after.event_types)),
                    ws::product.eq(&after.product),
                    ws::environment.eq(&after.environment),
                    ws::active.eq(after.active),
                    ws::updated_at.eq(now()),
                ))
                .execute(conn)?;
            if reactivated {
                diesel::update(ws::table.find(id))
                    .set((
                        ws::disabled_reason.eq(None::<String>),
                        ws::failing_since.eq(None::<NaiveDateTime>),
                    ))
                    .execute(conn)?;
                // Its waiting deliveries resume.
                publish(conn, Signal::Outbox)?;
            }
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::WebhookUpdated,
                    subject: id,
                    details: Value::Object(changes),
                },
            )?;
            load_subscription(conn, id)?.to_wire()
        })
    }

    /// Deletes a subscription with its deliveries.
    pub fn delete_webhook(&self, id: &str, by: &Auditor) -> StoreResult<WebhookSubscription> {
        self.write(|conn| {
            let row = load_subscription(conn, id)?;
            diesel::delete(wa::table.filter(
                wa::delivery_id.eq_any(wd::table.filter(wd::subscription_id.eq(id)).select(wd::id)),
            ))
            .execute(conn)?;
            diesel::delete(wd::table.filter(wd::subscription_id.eq(id))).execute(conn)?;
            diesel::delete(ws::table.find(id)).execute(conn)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::WebhookDeleted,
                    subject: id,
                    details: json!({ "url": row.url }),
                },
            )?;
            row.to_wire()
        })
    }

    /// Replaces a subscription's secret with `secret`; the one it replaces keeps signing
    /// until `previous_until`.
    pub fn rotate_webhook_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: NaiveDateTime,
        by: &Auditor,
    ) -> StoreResult<WebhookSubscription> {
        self.write(|conn| {
            let row = load_subscription(conn, id)?;
            diesel::update(ws::table.find(id))
                .set((
                    ws::previous_secret.eq(Some(&row.secret)),
                    ws::previous_secret_expires_at.eq(Some(previous_until)),
                    ws::secret.eq(secret),
                    ws::updated_at.eq(now()),
                ))
                .execute(conn)?;
            append_audit(
                conn,
                NewAuditEntry {
                    by,
                    action: AuditAction::WebhookSecretRotated,
                    subject: id,
                    details: json!({ "previous_secret_expires_at": utc(previous_until) }),
                },
            )?;
            load_subscription(conn, id)?.to_wire()
        })
    }

    /// Queues a test event to a subscription (active or not: it is sent either way).
    pub fn enqueue_test_delivery(&self, id: &str, by: &Auditor) -> StoreResult<WebhookDelivery> {
        self.write(|conn| {
            load_subscription(conn, id)?;
            let t = now();
            let body = envelope(
                TEST_EVENT_TYPE,
                json!(utc(t)),
                json!({
                    "subscription_id": id,
                    "requested_by": by.actor,
                    "message": "A test event from Shipshape: this subscription receives deliveries.",
                }),
            )
            .to_string();
            let delivery_id = insert_delivery(
                conn,
                NewDelivery {
                    subscription_id: id,
                    event_type: TEST_EVENT_TYPE,
                    run_id: None,
                    event_seq: None,
                    body: &body,
                    at: t,
                },
            )?;
            load_delivery(conn, id, &delivery_id)?.to_wire(Vec::new())
        })
    }

    /// A page of a subscription's deliveries, newest first, each with its last attempt;
    /// `before` is the id of the last delivery of the page before.
    pub fn deliveries(
        &self,
        subscription_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<DeliveryPage> {
        self.read(|conn| {
            load_subscription(conn, subscription_id)?;
            let mut q = wd::table
                .filter(wd::subscription_id.eq(subscription_id))
                .select(DeliveryRow::as_select())
                .order((wd::created_at.desc(), wd::id.desc()))
                .limit(limit)
                .into_boxed();
            if let Some(before) = before {
                let cursor = load_delivery(conn, subscription_id, before).map_err(|_| {
                    StoreError::Invalid {
                        field: "before",
                        message: "is not a delivery of this subscription".into(),
                    }
                })?;
                q = q.filter(
                    wd::created_at.lt(cursor.created_at).or(wd::created_at
                        .eq(cursor.created_at)
                        .and(wd::id.lt(cursor.id))),
                );
            }
            let rows: Vec<DeliveryRow> = q.load(conn)?;
            let mut items = Vec::with_capacity(rows.len());
            for row in &rows {
                let last = attempts_of(conn, &row.id, true)?;
                items.push(row.to_wire(last)?);
            }
            let next_before = match items.last() {
                Some(last) if items.len() as i64 == limit => Some(last.id.clone()),
                _ => None,
            };
            Ok(DeliveryPage { items, next_before })
        })
    }

    /// One delivery with every attempt.
    pub fn delivery(
        &self,
        subscription_id: &str,
        delivery_id: &str,
    ) -> StoreResult<WebhookDelivery> {
        self.read(|conn| {
            load_subscription(conn, subscription_id)?;
            let row = load_delivery(conn, subscription_id, delivery_id)?;
            let attempts = attempts_of(conn, delivery_id, false)?;
            row.to_wire(attempts)
        })
    }

    /// Schedules another attempt of a delivery now, with the same `webhook-id` and body
    /// (a delivered or failed one too). The subscription must be active.
    pub fn redeliver(
        &self,
        subscription_id: &str,
        delivery_id: &str,
    ) -> StoreResult<WebhookDelivery> {
        self.write(|conn| {
            if !load_subscription(conn, subscription_id)?.active {
                return Err(StoreError::Invalid {
                    field: "subscription",
                    message: "is inactive: activate it to redeliver".into(),
                });
            }
            load_delivery(conn, subscription_id, delivery_id)?;
            diesel::update(wd::table.find(delivery_id))
                .set((
                    wd::status.eq(DeliveryStatus::Pending.as_str()),
                    wd::next_attempt_at.eq(Some(now())),
                ))
                .execute(conn)?;
            publish(conn, Signal::Outbox)?;
            let row = load_delivery(conn, subscription_id, delivery_id)?;
            row.to_wire(attempts_of(conn, delivery_id, false)?)
        })
    }

    /// Claims up to `limit` due deliveries for `worker` until `until`: each is claimed by
    /// one worker at a time, whichever instance it runs on. A delivery of an inactive
    /// subscription waits (until it is activated again), unless it is a test event.
    pub fn claim_deliveries(
        &self,
        worker: &str,
        until: NaiveDateTime,
        limit: i64,
    ) -> StoreResult<Vec<Outgoing>> {
        let t = now();
        let due: Vec<String> = self.query(|conn| {
            Ok(wd::table
                .inner_join(ws::table)
                .filter(wd::status.eq(DeliveryStatus::Pending.as_str()))
                .filter(wd::next_attempt_at.le(t))
                .filter(wd::claimed_until.is_null().or(wd::claimed_until.lt(t)))
                .filter(ws::active.eq(true).or(wd::event_type.eq(TEST_EVENT_TYPE)))
                .order(wd::next_attempt_at.asc())
                .limit(limit)
                .select(wd::id)
                .load(conn)?)
        })?;
        let mut claimed = Vec::new();
        for id in due {
            let got = self.write(|conn| {
                let n = diesel::update(
                    wd::table.find(&id).filter(
                        wd::status
                            .eq(DeliveryStatus::Pending.as_str())
                            .and(wd::claimed_until.is_null().or(wd::claimed_until.lt(t))),
                    ),
                )
                .set((wd::claimed_by.eq(worker), wd::claimed_until.eq(until)))
                .execute(conn)?;
                if n == 0 {
                    return Ok(None);
                }
                let d: DeliveryRow = wd::table
                    .find(&id)
                    .select(DeliveryRow::as_select())
                    .get_result(conn)?;
                let s = load_subscription(conn, &d.subscription_id)?;
                let mut secrets = vec![s.secret.clone()];
                if let (Some(prev), Some(exp)) = (&s.previous_secret, s.previous_secret_expires_at)
                    && exp > t
                {
                    secrets.push(prev.clone());
                }
                let run = match &d.run_id {
                    Some(run_id) => r::table
                        .find(run_id)
                        .select((r::product, r::release_version, r::environment))
                        .get_result(conn)
                        .optional()?,
                    None => None,
                };
                Ok(Some(Outgoing {
                    id: d.id,
                    subscription_id: d.subscription_id,
                    url: s.url,
                    format: WebhookFormat::parse(&s.format).unwrap_or_default(),
                    secrets,
                    body: d.body,
                    attempts: d.attempts,
                    run,
                }))
            })?;
            claimed.extend(got);
        }
        Ok(claimed)
    }

    /// Records an attempt of a delivery `worker` claimed, and what follows from it: the
    /// delivery is delivered, retried at `retry_at`, or failed; the subscription's failing
    /// streak starts or ends, and a streak older than `disable_after` deactivates it.
    /// Returns false if the claim was lost (the attempt is then not recorded).
    pub fn record_attempt(
        &self,
        worker: &str,
        delivery_id: &str,
        outcome: &AttemptOutcome,
        disable_after: std::time::Duration,
    ) -> StoreResult<bool> {
        self.write(|conn| {
            let claimed: Option<(String, i32)> = wd::table
                .find(delivery_id)
                .filter(wd::claimed_by.eq(worker))
                .select((wd::subscription_id, wd::attempts))
                .get_result(conn)
                .optional()?;
            let Some((subscription_id, attempts)) = claimed else {
                return Ok(false);
            };
            let attempt = attempts + 1;
            diesel::insert_into(wa::table)
                .values((
                    wa::delivery_id.eq(delivery_id),
                    wa::attempt.eq(attempt),
                    wa::at.eq(outcome.at),
                    wa::status_code.eq(outcome.status_code),
                    wa::latency_ms.eq(outcome.latency_ms),
                    wa::error.eq(&outcome.error),
                    wa::response_excerpt.eq(&outcome.response_excerpt),
                ))
                .execute(conn)?;
            let (status, next) = match (&outcome.error, outcome.retry_at) {
                (None, _) => (DeliveryStatus::Delivered, None),
                (Some(_), Some(at)) => (DeliveryStatus::Pending, Some(at)),
                (Some(_), None) => (DeliveryStatus::Failed, None),
            };
            diesel::update(wd::table.find(delivery_id))
                .set((
                    wd::attempts.eq(attempt),
                    wd::status.eq(status.as_str()),
                    wd::next_attempt_at.eq(next),
                    wd::claimed_by.eq(None::<String>),
                    wd::claimed_until.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            let sub = load_subscription(conn, &subscription_id)?;
            match &outcome.error {
                None => {
                    if sub.failing_since.is_some() {
                        diesel::update(ws::table.find(&subscription_id))
                            .set(ws::failing_since.eq(None::<NaiveDateTime>))
                            .execute(conn)?;
                    }
                }
                Some(error) => {
                    let since = sub.failing_since.unwrap_or(outcome.at);
                    if sub.failing_since.is_none() {
                        diesel::update(ws::table.find(&subscription_id))
                            .set(ws::failing_since.eq(Some(since)))
                            .execute(conn)?;
                    }
                    if sub.active
                        && shipshape_domain::webhook::should_disable(
                            utc(since),
                            utc(outcome.at),
                            disable_after,
                        )
                    {
                        let reason = format!(
                            "deactivated by the server at {}: every delivery attempt has \
                             failed since {} (last: {error})",
                            utc(outcome.at).format("%Y-%m-%d %H:%M UTC"),
                            utc(since).format("%Y-%m-%d %H:%M UTC"),
                        );
                        diesel::update(ws::table.find(&subscription_id))
                            .set((
                                ws::active.eq(false),
                                ws::disabled_reason.eq(Some(&reason)),
                                ws::updated_at.eq(now()),
                            ))
                            .execute(conn)?;
                        append_audit(
                            conn,
                            NewAuditEntry {
                                by: &Auditor::default(),
                                action: AuditAction::WebhookDisabled,
                                subject: &subscription_id,
                                details: json!({ "reason": reason }),
                            },
                        )?;
                    }
                }
            }
            Ok(true)
        })
    }

    /// When the next delivery falls due (a claimed one: when its claim runs out), if any is
    /// waiting.
    pub fn next_delivery_due(&self) -> StoreResult<Option<NaiveDateTime>> {
        self.query(|conn| {
            let rows: Vec<(Option<NaiveDateTime>, Option<NaiveDateTime>)> = wd::table
                .inner_join(ws::table)
                .filter(wd::status.eq(DeliveryStatus::Pending.as_str()))
                .filter(ws::active.eq(true).or(wd::event_type.eq(TEST_EVENT_TYPE)))
                .order(wd::next_attempt_at.asc())
                .limit(64)
                .select((wd::next_attempt_at, wd::claimed_until))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .filter_map(|(next, claim)| match (next, claim) {
                    (Some(n), Some(c)) => Some(n.max(c)),
                    (n, None) => n,
                    (None, Some(_)) => None,
                })
                .min())
        })
    }
}
