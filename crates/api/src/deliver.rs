//! The delivery worker: sends what the outbox holds, through the outbound guard.
//!
//! One worker per instance, on a thread of its own. It claims due deliveries in the
//! database (a claim is held by one worker at a time, so with several instances each attempt
//! is made once), sends each as a signed Standard Webhooks request (or a chat message), and
//! records the attempt: delivered, retried later with backoff and jitter, or failed. A
//! receiver that is slow, redirects, fails or answers garbage holds up only its own
//! delivery: up to [`IN_FLIGHT`] are sent at once, each with a timeout. The worker sleeps
//! until the outbox signals (a commit queued deliveries, on any instance) or the next retry
//! falls due: it costs no query while there is nothing to send.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;
use shipshape_domain::describe;
use shipshape_domain::event::Event;
use shipshape_domain::webhook::{TEST_EVENT_TYPE, WebhookFormat, retry_after};
use shipshape_store::{AttemptOutcome, Outgoing, Store};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::bus::Bus;
use crate::outbound::Guard;

/// Deliveries sent at once by one instance.
pub const IN_FLIGHT: usize = 16;
/// How long a claim lasts: longer than any attempt takes.
const CLAIM: Duration = Duration::from_secs(120);
/// The answer's body kept in the delivery log, at most.
pub const EXCERPT_BYTES: usize = 512;
/// The longest the worker sleeps without looking (a safety net; the outbox signal and the
/// next due time wake it first).
const LONGEST_SLEEP: Duration = Duration::from_secs(300);

/// How the worker sends and retries.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Waits between attempts (see `shipshape_domain::webhook::RETRY_SCHEDULE`).
    pub retry_schedule: Vec<Duration>,
    /// A subscription failing for this long is deactivated.
    pub disable_after: Duration,
    /// The web app's public address, for links in chat messages.
    pub public_url: Option<String>,
}

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill(&mut key);
    format!("whsec_{}", BASE64.encode(key))
}

/// The `webhook-signature` value for one secret: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under the secret's key. `None` for a malformed secret.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = BASE64.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// Escapes text for Slack's `mrkdwn` (its three control characters).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Slack-compatible message of a stored envelope: what happened, on which run, by whom,
/// with a link to the run page when the public address is known.
pub fn chat_message(
    envelope: &Value,
    run: Option<&(String, String, String)>,
    public_url: Option<&str>,
) -> Value {
    let kind = envelope["type"].as_str().unwrap_or_default();
    let event: Option<Event> = serde_json::from_value(envelope["data"].clone()).ok();
    if let Some(Event {
        data: shipshape_domain::event::EventData::AnnouncementSent(a),
        ..
    }) = &event
    {
        // An announcement is the message itself.
        return json!({
            "text": escape(&a.subject),
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": format!("*{}*", escape(&a.subject)) } },
                { "type": "section", "text": { "type": "mrkdwn", "text": escape(&a.body) } },
            ],
        });
    }
    let environment_event = event
        .is_none()
        .then(|| {
            serde_json::from_value::<shipshape_domain::environment::EnvironmentEvent>(
                envelope["data"].clone(),
            )
            .ok()
        })
        .flatten();
    let headline = match (&event, kind) {
        (_, TEST_EVENT_TYPE) => {
            "Test event from Shipshape: this channel receives its notifications.".to_owned()
        }
        (Some(e), _) => describe::event(e),
        (None, other) => match &environment_event {
            Some(e) => e.describe(),
            None => format!("Shipshape event `{other}`"),
        },
    };
    let mut context = Vec::new();
    if let Some((product, version, environment)) = run {
        context.push(format!(
            "*{}* {} → {}",
            escape(product),
            escape(version),
            escape(environment)
        ));
    }
    if let (Some(base), Some(e)) = (public_url, &event) {
        context.push(format!(
            "<{}/runs/{}|Open the run>",
            base.trim_end_matches('/'),
            e.run_id
        ));
    }
    let fallback = match run {
        Some((product, version, environment)) => {
            format!("{headline} — {product} {version} → {environment}")
        }
        None => headline.clone(),
    };
    let mut blocks = vec![json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": escape(&headline) },
    })];
    if !context.is_empty() {
        blocks.push(json!({
            "type": "context",
            "elements": [{ "type": "mrkdwn", "text": context.join("  ·  ") }],
        }));
    }
    json!({ "text": escape(&fallback), "blocks": blocks })
}

/// Starts the worker of an instance; it ends once `bus` is dropped.
pub fn start(
    store: &Store,
    bus: &Arc<Bus>,
    guard: Guard,
    policy: DeliveryPolicy,
) -> std::io::Result<()> {
    let (store, weak, wake) = (store.clone(), Arc::downgrade(bus), bus.outbox());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("shipshape-deliver".into())
        .spawn(move || {
            runtime.block_on(work(store, weak, wake, guard, Arc::new(policy)));
        })
        .map(drop)
}

async fn work(
    store: Store,
    bus: Weak<Bus>,
    wake: Arc<Notify>,
    guard: Guard,
    policy: Arc<DeliveryPolicy>,
) {
    let (worker, metrics) = match bus.upgrade() {
        Some(b) => (b.instance().to_owned(), b.metrics().clone()),
        None => return,
    };
    let mut sending: JoinSet<()> = JoinSet::new();
    let mut look = true;
    let mut due_at = Instant::now() + LONGEST_SLEEP;
    loop {
        if bus.strong_count() == 0 {
            return;
        }
        if look || Instant::now() >= due_at {
            look = false;
            let free = IN_FLIGHT.saturating_sub(sending.len());
            let claimed = if free > 0 {
                let (store, worker) = (store.clone(), worker.clone());
                let until = (Utc::now() + chrono::Duration::from_std(CLAIM).unwrap_or_default())
                    .naive_utc();
                tokio::task::spawn_blocking(move || {
                    store.claim_deliveries(&worker, until, free as i64)
                })
                .await
                .unwrap_or_else(|e| Err(shipshape_store::StoreError::Config(e.to_string())))
            } else {
                Ok(Vec::new())
            };
            match claimed {
                Ok(batch) => {
                    // A full batch: there may be more waiting right now.
                    look = batch.len() == free && free > 0;
                    for outgoing in batch {
                        let (store, worker, guard, policy, metrics) = (
                            store.clone(),
                            worker.clone(),
                            guard.clone(),
                            policy.clone(),
                            metrics.clone(),
                        );
                        sending.spawn(async move {
                            let delivered =
                                attempt(&store, &worker, &guard, &policy, outgoing).await;
                            metrics.delivery(delivered);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim webhook deliveries; retrying");
                    due_at = Instant::now() + Duration::from_secs(1);
                    continue;
                }
            }
            let next = {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.next_delivery_due())
                    .await
                    .unwrap_or_else(|e| Err(shipshape_store::StoreError::Config(e.to_string())))
            };
            due_at = match next {
                Ok(Some(at)) => {
                    let wait = (at - Utc::now().naive_utc())
                        .to_std()
                        .unwrap_or(Duration::ZERO);
                    Instant::now() + wait.min(LONGEST_SLEEP)
                }
                Ok(None) => Instant::now() + LONGEST_SLEEP,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read when deliveries fall due; retrying");
                    Instant::now() + Duration::from_secs(1)
                }
            };
            if look {
                continue;
            }
        }
        // Wait for the outbox, the next due time, or a finished send (which frees a place);
        // wake up twice a second to notice that the instance stopped.
        let tick = tokio::time::sleep_until(
            (due_at.min(Instant::now() + Duration::from_millis(500))).into(),
        );
        tokio::select! {
            () = wake.notified() => look = true,
            Some(_) = sending.join_next(), if !sending.is_empty() => look = true,
            () = tick => {}
        }
    }
}

/// Makes one attempt at a claimed delivery and records it.
async fn attempt(
    store: &Store,
    worker: &str,
    guard: &Guard,
    policy: &DeliveryPolicy,
    out: Outgoing,
) -> bool {
    let at = Utc::now();
    let started = Instant::now();
    let result = send(guard, policy, &out, at.timestamp()).await;
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status_code, error, excerpt) = match result {
        Ok((status, excerpt)) if (200..300).contains(&status) => {
            (Some(i32::from(status)), None, excerpt)
        }
        Ok((status, excerpt)) => (
            Some(i32::from(status)),
            Some(if (300..400).contains(&status) {
                format!("HTTP {status}: redirects are not followed")
            } else {
                format!("HTTP {status}")
            }),
            excerpt,
        ),
        Err(e) => (None, Some(e), None),
    };
    let retry_at = error.as_ref().and_then(|_| {
        let attempts = u32::try_from(out.attempts + 1).unwrap_or(u32::MAX);
        retry_after(
            &policy.retry_schedule,
            attempts,
            rand::rng().random::<f64>(),
        )
        .map(|wait| (at + chrono::Duration::from_std(wait).unwrap_or_default()).naive_utc())
    });
    let outcome = AttemptOutcome {
        at: at.naive_utc(),
        status_code,
        latency_ms,
        error,
        response_excerpt: excerpt,
        retry_at,
    };
    let (store, worker, id, disable_after) = (
        store.clone(),
        worker.to_owned(),
        out.id.clone(),
        policy.disable_after,
    );
    let delivered = outcome.error.is_none();
    let recorded = tokio::task::spawn_blocking(move || {
        store.record_attempt(&worker, &id, &outcome, disable_after)
    })
    .await;
    match recorded {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            tracing::warn!(delivery = %out.id, "a delivery's claim ran out before its attempt was recorded")
        }
        Ok(Err(e)) => {
            tracing::warn!(delivery = %out.id, error = %e, "cannot record a delivery attempt; it will be made again")
        }
        Err(e) => {
            tracing::warn!(delivery = %out.id, error = %e, "cannot record a delivery attempt")
        }
    }
    delivered
}

/// Sends one attempt; the answer's status and the start of its body, or why none came.
async fn send(
    guard: &Guard,
    policy: &DeliveryPolicy,
    out: &Outgoing,
    timestamp: i64,
) -> Result<(u16, Option<String>), String> {
    let body = match out.format {
        WebhookFormat::Standard => out.body.clone(),
        WebhookFormat::Slack => {
            let envelope: Value =
                serde_json::from_str(&out.body).map_err(|e| format!("stored body: {e}"))?;
            chat_message(&envelope, out.run.as_ref(), policy.public_url.as_deref()).to_string()
        }
    };
    let signatures: Vec<String> = out
        .secrets
        .iter()
        .filter_map(|s| signature(s, &out.id, timestamp, body.as_bytes()))
        .collect();
    let request = guard
        .post(&out.url)
        .map_err(|e| format!("refused: {e}"))?
        .header("content-type", "application/json")
        .header("webhook-id", &out.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures.join(" "))
        .body(body);
    let mut response = request.send().await.map_err(describe_error)?;
    let status = response.status().as_u16();
    let mut excerpt = Vec::new();
    while excerpt.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => excerpt.extend_from_slice(&chunk),
            Ok(None) => break,
            // The status came; a body that breaks off or times out is not the point.
            Err(_) => break,
        }
    }
    excerpt.truncate(EXCERPT_BYTES);
    // Kept as text a person can read (and a database can store: no NUL).
    let text: String = String::from_utf8_lossy(&excerpt)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect();
    Ok((status, (!text.is_empty()).then_some(text)))
}

/// What went wrong with a request, in words (with the guard's reason when it refused).
pub(crate) fn describe_error(e: reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    let mut guard_said = None;
    while let Some(s) = source {
        if let Some(o) = s.downcast_ref::<crate::outbound::OutboundError>() {
            guard_said = Some(o.0.clone());
        }
        source = s.source();
    }
    if let Some(reason) = guard_said {
        return format!("refused: {reason}");
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        format!("cannot connect: {}", root_cause(&e))
    } else {
        root_cause(&e)
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, id, 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(signature("not-a-secret", id, 1, body), None);
    }

    #[test]
    fn a_new_secret_is_a_32_byte_key() {
        let s = new_secret();
        let key = BASE64.decode(s.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(key.len(), 32);
        assert_ne!(s, new_secret());
    }

    #[test]
    fn a_chat_message_escapes_what_users_wrote() {
        let envelope = json!({"type": TEST_EVENT_TYPE, "timestamp": "t", "data": {}});
        let run = (
            "<!channel> & co".to_owned(),
            "1.0".to_owned(),
            "prod".to_owned(),
        );
        let m = chat_message(&envelope, Some(&run), None);
        let text = m.to_string();
        assert!(text.contains("&lt;!channel&gt; &amp; co"), "{text}");
        assert!(!text.contains("<!channel>"), "{text}");
    }
}
