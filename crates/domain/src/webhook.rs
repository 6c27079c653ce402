//! Webhook subscriptions and their deliveries: the wire types, what a subscription must say,
//! and the delivery rules (when to retry, when to give up on a delivery, when to disable a
//! subscription that keeps failing).
//!
//! Deliveries follow Standard Webhooks (<https://www.standardwebhooks.com>): each is a POST
//! with `webhook-id` (the same on every attempt), `webhook-timestamp` and
//! `webhook-signature`, and a body `{type, timestamp, data}` whose `data` is the typed event.
//! A subscription in the `slack` format gets a Slack-compatible message instead.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::environment::EnvironmentEventType;
use crate::event::EventType;
use crate::text::{HttpUrl, Label, TextError};

/// The envelope `type` of the test event a subscription can be sent on demand.
pub const TEST_EVENT_TYPE: &str = "webhook_test";

/// At most this many event types on one subscription (there are fewer kinds than this).
pub const MAX_EVENT_TYPES: usize = 64;

/// How a subscription's deliveries are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The Standard Webhooks envelope `{type, timestamp, data}`, signed.
    #[default]
    Standard,
    /// A Slack-compatible incoming-webhook message (`text` and `blocks`) for a chat channel;
    /// signed the same way.
    Slack,
}

impl WebhookFormat {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Standard => "standard",
            WebhookFormat::Slack => "slack",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [WebhookFormat::Standard, WebhookFormat::Slack]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// A kind of event a subscription may ask for: a run event (see `EventType`), or an
/// environment event (`environment_locked`, `environment_unlocked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum WebhookEventType {
    /// A run event.
    Run(EventType),
    /// An environment event.
    Environment(EnvironmentEventType),
}

impl<'de> Deserialize<'de> for WebhookEventType {
    /// Reads the name and looks it up: far less code than an untagged enum's decoder (the web
    /// app decodes subscriptions, and its size is budgeted).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        WebhookEventType::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event type `{name}`")))
    }
}

impl WebhookEventType {
    /// The wire spelling (the envelope's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::Run(k) => k.as_str(),
            WebhookEventType::Environment(k) => k.as_str(),
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        EventType::parse(s)
            .map(WebhookEventType::Run)
            .or_else(|| EnvironmentEventType::parse(s).map(WebhookEventType::Environment))
    }

    /// Every kind: the run events', then the environment events'.
    pub fn all() -> impl Iterator<Item = WebhookEventType> {
        EventType::ALL
            .iter()
            .copied()
            .map(WebhookEventType::Run)
            .chain(
                EnvironmentEventType::ALL
                    .into_iter()
                    .map(WebhookEventType::Environment),
            )
    }
}

/// A webhook subscription as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookSubscription {
    /// The subscription's id.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// What it is for.
    pub description: Option<String>,
    /// How deliveries are written.
    pub format: WebhookFormat,
    /// The event types delivered.
    pub event_types: Vec<WebhookEventType>,
    /// Only runs of this product (`null`: every product; environment events are not
    /// filtered by product).
    pub product: Option<String>,
    /// Only runs in this environment (`null`: every environment).
    pub environment: Option<String>,
    /// Whether events are delivered. A subscription that kept failing is deactivated by the
    /// server, which says why in `disabled_reason`.
    pub active: bool,
    /// Why the server deactivated it (cleared when it is activated again).
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed (`null`: the last attempt succeeded, or none was
    /// made).
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation still signs (alongside the new one).
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub updated_at: DateTime<Utc>,
}

/// A new webhook subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed: an absolute http(s) URL whose host resolves to a public
    /// address (or one the administrator allow-listed).
    pub url: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// How deliveries are written (default `standard`).
    #[serde(default)]
    pub format: WebhookFormat,
    /// The event types to deliver (at least one).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<WebhookEventType>))]
    pub event_types: Vec<String>,
    /// Only runs of this product.
    #[serde(default)]
    pub product: Option<String>,
    /// Only runs in this environment.
    #[serde(default)]
    pub environment: Option<String>,
    /// Whether events are delivered (default true).
    #[serde(default)]
    pub active: Option<bool>,
}

/// Changes to a webhook subscription; a field left out does not change. An empty
/// `description`, `product` or `environment` clears it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    /// Where deliveries are POSTed.
    #[serde(default)]
    pub url: Option<String>,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// How deliveries are written.
    #[serde(default)]
    pub format: Option<WebhookFormat>,
    /// The event types to deliver (at least one).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<WebhookEventType>>))]
    pub event_types: Option<Vec<String>>,
    /// Only runs of this product.
    #[serde(default)]
    pub product: Option<String>,
    /// Only runs in this environment.
    #[serde(default)]
    pub environment: Option<String>,
    /// Whether events are delivered. Activating a subscription the server deactivated clears
    /// its reason and resumes its waiting deliveries.
    #[serde(default)]
    pub active: Option<bool>,
}

/// A new subscription with its signing secret — shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedWebhook {
    /// The subscription.
    pub subscription: WebhookSubscription,
    /// The signing secret (`whsec_` and base64), for verifying `webhook-signature`. It cannot
    /// be shown again; rotate it to get a new one.
    pub secret: String,
}

/// A subscription's new signing secret — shown this once. The previous secret keeps
/// signing (a second signature in `webhook-signature`) until `previous_secret_expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotatedSecret {
    /// The subscription after the rotation.
    pub subscription: WebhookSubscription,
    /// The new signing secret.
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed; no more are scheduled (redeliver to try again).
    Failed,
}

impl DeliveryStatus {
    /// The wire and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// Parses the wire and database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttempt {
    /// Its number, from 1.
    pub attempt: i32,
    /// When it was made.
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub at: DateTime<Utc>,
    /// The answer's HTTP status (`null`: no answer).
    pub status_code: Option<i32>,
    /// How long it took, in milliseconds.
    pub latency_ms: i64,
    /// What went wrong (`null`: it succeeded).
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response_excerpt: Option<String>,
}

/// A delivery of one event to one subscription, with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// The delivery's id: the `webhook-id` header, the same on every attempt.
    pub id: String,
    /// The subscription.
    pub subscription_id: String,
    /// The envelope `type`: an event type, or `webhook_test`.
    pub event_type: String,
    /// The run the event belongs to (`null` for a test event).
    pub run_id: Option<String>,
    /// The event's `seq` in its run's log.
    pub event_seq: Option<i64>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (`null` once delivered or failed).
    #[serde(default, deserialize_with = "crate::timestamp::deserialize_option")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was created (in the transaction of its event).
    #[serde(deserialize_with = "crate::timestamp::deserialize")]
    pub created_at: DateTime<Utc>,
    /// The body sent (the same on every attempt).
    pub body: serde_json::Value,
    /// Every attempt, oldest first (in a list of deliveries: only the last).
    pub attempt_log: Vec<DeliveryAttempt>,
}

/// A page of a subscription's deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryPage {
    /// The deliveries.
    pub items: Vec<WebhookDelivery>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next_before: Option<String>,
}

/// A checked subscription: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSpec {
    /// The target.
    pub url: String,
    /// What it is for.
    pub description: Option<String>,
    /// How deliveries are written.
    pub format: WebhookFormat,
    /// The event types, without repeats, in the order of [`WebhookEventType::all`].
    pub event_types: Vec<WebhookEventType>,
    /// The product filter.
    pub product: Option<String>,
    /// The environment filter.
    pub environment: Option<String>,
    /// Whether it delivers.
    pub active: bool,
}

/// The event types named, checked: at least one, each known.
pub fn parse_event_types(names: &[String]) -> Result<Vec<WebhookEventType>, TextError> {
    if names.is_empty() {
        return Err(TextError::new(
            "event_types",
            "give at least one event type",
        ));
    }
    if names.len() > MAX_EVENT_TYPES {
        return Err(TextError::new(
            "event_types",
            format!("give at most {MAX_EVENT_TYPES} event types"),
        ));
    }
    let mut wanted = Vec::new();
    for name in names {
        let kind = WebhookEventType::parse(name).ok_or_else(|| {
            TextError::new(
                "event_types",
                format!(
                    "unknown event type `{}` (known: {})",
                    name.chars().take(64).collect::<String>(),
                    WebhookEventType::all()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        wanted.push(kind);
    }
    Ok(WebhookEventType::all()
        .filter(|k| wanted.contains(k))
        .collect())
}

fn optional_label(field: &'static str, s: Option<&str>) -> Result<Option<String>, TextError> {
    match s.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => Ok(Some(Label::parse(field, s)?.into_string())),
    }
}

impl CreateWebhookRequest {
    /// Checks every field (the URL's address is the guard's to judge).
    pub fn validated(&self) -> Result<WebhookSpec, TextError> {
        Ok(WebhookSpec {
            url: HttpUrl::parse("url", &self.url)?.into_string(),
            description: optional_label("description", self.description.as_deref())?,
            format: self.format,
            event_types: parse_event_types(&self.event_types)?,
            product: optional_label("product", self.product.as_deref())?,
            environment: optional_label("environment", self.environment.as_deref())?,
            active: self.active.unwrap_or(true),
        })
    }
}

impl UpdateWebhookRequest {
    /// The subscription `current` becomes, every changed field checked.
    pub fn apply(&self, current: &WebhookSpec) -> Result<WebhookSpec, TextError> {
        let keep = |new: Option<&String>, field, old: &Option<String>| match new {
            Some(s) => optional_label(field, Some(s)),
            None => Ok(old.clone()),
        };
        Ok(WebhookSpec {
            url: match &self.url {
                Some(u) => HttpUrl::parse("url", u)?.into_string(),
                None => current.url.clone(),
            },
            description: keep(
                self.description.as_ref(),
                "description",
                &current.description,
            )?,
            format: self.format.unwrap_or(current.format),
            event_types: match &self.event_types {
                Some(names) => parse_event_types(names)?,
                None => current.event_types.clone(),
            },
            product: keep(self.product.as_ref(), "product", &current.product)?,
            environment: keep(
                self.environment.as_ref(),
                "environment",
                &current.environment,
            )?,
            active: self.active.unwrap_or(current.active),
        })
    }
}

impl WebhookSpec {
    /// Whether an event of `kind` on a run of `product` in `environment` is delivered (an
    /// environment event has no product).
    pub fn wants(&self, kind: WebhookEventType, product: Option<&str>, environment: &str) -> bool {
        self.active
            && self.event_types.contains(&kind)
            && product.is_none_or(|product| self.product.as_deref().is_none_or(|p| p == product))
            && self.environment.as_deref().is_none_or(|e| e == environment)
    }
}

/// When deliveries are retried: the Standard Webhooks schedule. The first attempt is made at
/// once; after the n-th failed attempt the next waits `schedule[n - 1]` (with jitter);
/// after the last, the delivery has failed. About 27 hours from first to last attempt.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// A subscription every attempt of which has failed for this long is deactivated.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// The wait before the attempt after `attempts` failed ones, or `None` when the delivery has
/// failed for good. `jitter` in `[0, 1)` spreads retries over ±20 % of the wait, so that a
/// receiver coming back is not hit by every retry at once.
pub fn retry_after(schedule: &[Duration], attempts: u32, jitter: f64) -> Option<Duration> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    let base = *schedule.get(index)?;
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Some(base.mul_f64(factor))
}

/// Whether a subscription that has failed since `failing_since` is to be deactivated at
/// `now`.
pub fn should_disable(
    failing_since: DateTime<Utc>,
    now: DateTime<Utc>,
    disable_after: Duration,
) -> bool {
    (now - failing_since)
        .to_std()
        .is_ok_and(|failing| failing >= disable_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn event_types_are_checked_and_kept_in_canonical_order() {
        assert_eq!(
            parse_event_types(&names(&["decision_recorded", "run_created", "run_created"])),
            Ok(vec![
                WebhookEventType::Run(EventType::RunCreated),
                WebhookEventType::Run(EventType::DecisionRecorded)
            ])
        );
        let err = parse_event_types(&names(&["run_created", "deploy_done"])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("event_types: unknown event type `deploy_done` (known: run_created,"),
            "{err}"
        );
        assert_eq!(
            parse_event_types(&[]).unwrap_err().to_string(),
            "event_types: give at least one event type"
        );
    }

    #[test]
    fn a_request_is_checked_field_by_field_and_an_update_keeps_what_it_leaves_out() {
        let req = CreateWebhookRequest {
            url: " https://hooks.example.com/x ".into(),
            description: Some("  ".into()),
            format: WebhookFormat::Slack,
            event_types: names(&["run_transitioned"]),
            product: Some("EduLibra".into()),
            environment: None,
            active: None,
        };
        let spec = req.validated().unwrap();
        assert_eq!(spec.url, "https://hooks.example.com/x");
        assert_eq!(spec.description, None);
        assert!(spec.active);
        let bad = CreateWebhookRequest {
            url: "ftp://x".into(),
            ..req.clone()
        };
        assert!(
            bad.validated()
                .unwrap_err()
                .to_string()
                .starts_with("url: ")
        );
        let patch = UpdateWebhookRequest {
            product: Some(String::new()),
            environment: Some("production".into()),
            active: Some(false),
            ..Default::default()
        };
        let next = patch.apply(&spec).unwrap();
        assert_eq!(next.product, None);
        assert_eq!(next.environment.as_deref(), Some("production"));
        assert_eq!(next.url, spec.url);
        assert_eq!(next.format, WebhookFormat::Slack);
        assert!(!next.active);
    }

    #[test]
    fn a_subscription_wants_its_types_on_runs_its_filters_match() {
        let spec = WebhookSpec {
            url: "https://h/".into(),
            description: None,
            format: WebhookFormat::Standard,
            event_types: vec![
                WebhookEventType::Run(EventType::DecisionRecorded),
                WebhookEventType::Environment(EnvironmentEventType::EnvironmentLocked),
            ],
            product: Some("EduLibra".into()),
            environment: Some("staging".into()),
            active: true,
        };
        let decided = WebhookEventType::Run(EventType::DecisionRecorded);
        let locked = WebhookEventType::Environment(EnvironmentEventType::EnvironmentLocked);
        assert!(spec.wants(decided, Some("EduLibra"), "staging"));
        assert!(!spec.wants(
            WebhookEventType::Run(EventType::RunCreated),
            Some("EduLibra"),
            "staging"
        ));
        assert!(!spec.wants(decided, Some("Other"), "staging"));
        assert!(spec.wants(locked, None, "staging"));
        assert!(!spec.wants(locked, None, "production"));
        let inactive = WebhookSpec {
            active: false,
            ..spec
        };
        assert!(!inactive.wants(decided, Some("EduLibra"), "staging"));
    }

    #[test]
    fn retries_follow_the_schedule_with_jitter_and_end() {
        assert_eq!(retry_after(&RETRY_SCHEDULE, 0, 0.5), None);
        assert_eq!(
            retry_after(&RETRY_SCHEDULE, 1, 0.5),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(&RETRY_SCHEDULE, 2, 0.0),
            Some(Duration::from_secs(240))
        );
        assert_eq!(
            retry_after(&RETRY_SCHEDULE, 7, 1.0),
            Some(Duration::from_secs(43_200))
        );
        assert_eq!(retry_after(&RETRY_SCHEDULE, 8, 0.5), None);
        let total: Duration = RETRY_SCHEDULE.iter().sum();
        assert!(total > Duration::from_secs(20 * 3600) && total < Duration::from_secs(30 * 3600));
    }

    #[test]
    fn a_subscription_is_disabled_after_failing_for_days() {
        let now = Utc::now();
        assert!(!should_disable(
            now - chrono::Duration::days(4),
            now,
            DISABLE_AFTER
        ));
        assert!(should_disable(
            now - chrono::Duration::days(5),
            now,
            DISABLE_AFTER
        ));
        assert!(!should_disable(
            now + chrono::Duration::days(1),
            now,
            DISABLE_AFTER
        ));
    }
}
