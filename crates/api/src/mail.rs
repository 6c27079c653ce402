//! Mail for people: when something waits on someone (an item assigned to them, an approval
//! their role can give, a decision they may take, an action item of a retrospective — again
//! once it is overdue: their `/me/pending` list), they are
//! e-mailed, a burst of changes gathered into one mail.
//!
//! One worker per instance, started when `SHIPSHAPE_SMTP_URL` is set. It wakes when events
//! are written (on any instance), waits the batch window, and then — on the one instance
//! holding the `mail` lease — compares each recipient's pending list with what they were
//! last told of and mails what is new. What a mail named is recorded after it is sent, so a
//! crash between the two sends it again rather than never (at-least-once).

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use shipshape_domain::wire::Pending;
use shipshape_store::Store;
use tokio::time::Instant;

use crate::bus::Bus;

/// The lease that makes one instance at a time send mail.
pub const LEASE: &str = "mail";
const LEASE_TTL: Duration = Duration::from_secs(60);
/// After a failed round (the relay or the database away), try again after this.
const RETRY: Duration = Duration::from_secs(30);
/// Something comes to wait on someone without any event being written (an action item falls
/// overdue): a round at least this often tells of it.
const SWEEP: Duration = Duration::from_secs(3600);

/// How mail is sent.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The relay, as `SHIPSHAPE_SMTP_URL`.
    pub url: String,
    /// The sender.
    pub from: String,
    /// How long a burst of changes is gathered.
    pub batch: Duration,
    /// The web app's public address, for links.
    pub public_url: Option<String>,
}

struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: Option<String>,
}

/// One thing that waits on someone: a stable key (what the mail told of) and a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// E.g. `assigned:ITEM`, `approval:ITEM`, `decision:RUN:POINT`.
    pub key: String,
    /// What to say.
    pub line: String,
    /// The run it is on.
    pub run_id: String,
}

/// What waits on someone, as mail lines, in the order of their pending list.
pub fn waiting(pending: &Pending) -> Vec<Waiting> {
    let mut out = Vec::new();
    for p in &pending.assigned {
        out.push(Waiting {
            key: format!("assigned:{}", p.item.id),
            line: format!(
                "{}: {} {} is assigned to you",
                p.run_label, p.item.reference, p.item.title
            ),
            run_id: p.run_id.clone(),
        });
    }
    for p in &pending.approvals {
        out.push(Waiting {
            key: format!("approval:{}", p.item.id),
            line: format!(
                "{}: {} {} waits for your sign-off",
                p.run_label, p.item.reference, p.item.title
            ),
            run_id: p.run_id.clone(),
        });
    }
    for d in &pending.decisions {
        out.push(Waiting {
            key: format!("decision:{}:{}", d.run_id, d.point_key),
            line: format!("{}: {} waits for your decision", d.run_label, d.title),
            run_id: d.run_id.clone(),
        });
    }
    for a in &pending.action_items {
        out.push(Waiting {
            key: format!("action:{}", a.action.id),
            line: format!(
                "{}: the action “{}” (due {}) is assigned to you",
                a.run_label, a.action.title, a.action.due_on
            ),
            run_id: a.run_id.clone(),
        });
        // Told again once, when it falls overdue.
        if a.action.overdue {
            out.push(Waiting {
                key: format!("action-overdue:{}", a.action.id),
                line: format!(
                    "{}: the action “{}” is overdue (it was due {})",
                    a.run_label, a.action.title, a.action.due_on
                ),
                run_id: a.run_id.clone(),
            });
        }
    }
    out
}

/// The subject and body of a mail telling `username` of `new` things.
pub fn compose(username: &str, new: &[Waiting], public_url: Option<&str>) -> (String, String) {
    let subject = match new {
        [one] => format!("Shipshape: {}", one.line),
        many => format!("Shipshape: {} things wait on you", many.len()),
    };
    let mut body = format!("Hello {username},\n\nThis waits on you in Shipshape now:\n\n");
    for w in new {
        body.push_str(&format!("- {}\n", w.line));
        if let Some(base) = public_url {
            body.push_str(&format!("  {base}/runs/{}\n", w.run_id));
        }
    }
    body.push_str(
        "\nYou get this mail because something waits on you. To stop these mails, turn e-mail \
         notifications off in Shipshape (Account), or send PATCH /api/v1/me/notifications \
         {\"email_notifications\": false}.\n",
    );
    (subject, body)
}

/// Starts the mail worker of an instance (when mail is configured); it ends once `bus` is
/// dropped.
pub fn start(store: &Store, bus: &Arc<Bus>, settings: MailSettings) -> Result<(), String> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
        .map_err(|e| format!("SHIPSHAPE_SMTP_URL: {e}"))?
        .timeout(Some(Duration::from_secs(20)))
        .build();
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| format!("SHIPSHAPE_MAIL_FROM: {e}"))?;
    let mailer = Mailer {
        transport,
        from,
        public_url: settings.public_url,
    };
    let (store, weak, wake, batch) = (
        store.clone(),
        Arc::downgrade(bus),
        (bus.mail(), bus.mail_now()),
        settings.batch,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("shipshape-mail".into())
        .spawn(move || runtime.block_on(work(store, weak, wake, mailer, batch)))
        .map(drop)
        .map_err(|e| e.to_string())
}

async fn work(
    store: Store,
    bus: Weak<Bus>,
    (wake, now): (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>),
    mailer: Mailer,
    batch: Duration,
) {
    let Some(instance) = bus.upgrade().map(|b| b.instance().to_owned()) else {
        return;
    };
    // A first round at start: what changed while no instance was mailing.
    let mut due = Some(Instant::now());
    loop {
        if bus.strong_count() == 0 {
            return;
        }
        let tick = Instant::now() + Duration::from_millis(500);
        let until = due.map_or(tick, |d| d.min(tick));
        tokio::select! {
            () = wake.notified() => {
                // Gather the burst: the first change sets the time, later ones join it (and a
                // later hourly round waits no longer than the burst).
                let burst = Instant::now() + batch;
                due = Some(due.map_or(burst, |d| d.min(burst)));
            }
            () = now.notified() => due = Some(Instant::now()),
            () = tokio::time::sleep_until(until) => {}
        }
        if due.is_some_and(|d| d <= Instant::now()) {
            due = None;
            let leased = {
                let (store, instance) = (store.clone(), instance.clone());
                tokio::task::spawn_blocking(move || store.hold_lease(LEASE, &instance, LEASE_TTL))
                    .await
            };
            match leased {
                Ok(Ok(true)) => {
                    if let Err(e) = round(&store, &mailer).await {
                        tracing::warn!(error = %e, "mail round failed; trying again shortly");
                        due = Some(Instant::now() + RETRY);
                    }
                    // A queued mail waiting for its retry wakes the worker then.
                    if let Ok(Some(at)) = blocking(&store, |s| s.next_mail_due()).await {
                        let wait = (at - chrono::Utc::now().naive_utc())
                            .to_std()
                            .unwrap_or(Duration::ZERO);
                        let at = Instant::now() + wait;
                        due = Some(due.map_or(at, |d| d.min(at)));
                    }
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot take the mail lease; trying again shortly");
                    due = Some(Instant::now() + RETRY);
                }
                Err(e) => tracing::warn!(error = %e, "mail lease task failed"),
            }
            let sweep = Instant::now() + SWEEP;
            due = Some(due.map_or(sweep, |d| d.min(sweep)));
        }
    }
}

async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, shipshape_store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Mails every recipient what is new on their pending list. A failure for one recipient
/// does not stop the others; it is reported at the end (and the round is tried again).
async fn round(store: &Store, mailer: &Mailer) -> Result<(), String> {
    send_queued(store, mailer).await?;
    let recipients = blocking(store, |s| s.mail_recipients()).await?;
    let mut failed = Vec::new();
    for (actor, email) in recipients {
        let user_id = actor.id.clone();
        let username = actor.username.clone();
        let pending = blocking(store, move |s| s.pending(&actor)).await?;
        let now = waiting(&pending);
        let seen: BTreeSet<String> = {
            let id = user_id.clone();
            blocking(store, move |s| s.mail_seen(&id))
                .await?
                .into_iter()
                .collect()
        };
        let new: Vec<Waiting> = now
            .iter()
            .filter(|w| !seen.contains(&w.key))
            .cloned()
            .collect();
        if !new.is_empty() {
            let (subject, body) = compose(&username, &new, mailer.public_url.as_deref());
            if let Err(e) = send(mailer, &email, &username, &subject, body).await {
                tracing::warn!(user = %username, error = %e, "cannot send mail");
                failed.push(username);
                continue;
            }
        }
        let keys: Vec<String> = now.into_iter().map(|w| w.key).collect();
        if keys.iter().collect::<BTreeSet<_>>() != seen.iter().collect::<BTreeSet<_>>() {
            blocking(store, move |s| s.replace_mail_seen(&user_id, &keys)).await?;
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("mail to {} failed", failed.join(", ")))
    }
}

/// Sends the queued mail that is due (announcements), each retried on the webhook schedule
/// until it is sent or its attempts run out.
async fn send_queued(store: &Store, mailer: &Mailer) -> Result<(), String> {
    let due = blocking(store, |s| s.due_mail(50)).await?;
    for mail in due {
        let to: Result<Mailbox, _> = mail.to.parse();
        let result = match to {
            Ok(to) => deliver(mailer, to, &mail.subject, mail.body.clone()).await,
            Err(e) => Err(format!("address {}: {e}", mail.to)),
        };
        let error = result.err();
        if let Some(e) = &error {
            tracing::warn!(to = %mail.to, error = %e, "cannot send queued mail");
        }
        let attempts = u32::try_from(mail.attempts + 1).unwrap_or(u32::MAX);
        let retry_at = error.as_ref().and_then(|_| {
            shipshape_domain::webhook::retry_after(
                &shipshape_domain::webhook::RETRY_SCHEDULE,
                attempts,
                0.5,
            )
            .map(|w| {
                (chrono::Utc::now() + chrono::Duration::from_std(w).unwrap_or_default()).naive_utc()
            })
        });
        let id = mail.id.clone();
        blocking(store, move |s| {
            s.mail_attempted(&id, error.as_deref(), retry_at)
        })
        .await?;
    }
    Ok(())
}

async fn send(
    mailer: &Mailer,
    email: &str,
    username: &str,
    subject: &str,
    body: String,
) -> Result<(), String> {
    let to: Mailbox = format!("{username} <{email}>")
        .parse()
        .map_err(|e| format!("address {email}: {e}"))?;
    deliver(mailer, to, subject, body).await
}

async fn deliver(mailer: &Mailer, to: Mailbox, subject: &str, body: String) -> Result<(), String> {
    let message = Message::builder()
        .from(mailer.from.clone())
        .to(to)
        .subject(subject)
        .body(body)
        .map_err(|e| e.to_string())?;
    mailer
        .transport
        .send(message)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(key: &str, line: &str) -> Waiting {
        Waiting {
            key: key.into(),
            line: line.into(),
            run_id: "r1".into(),
        }
    }

    #[test]
    fn one_thing_is_the_subject_and_several_are_counted() {
        let (subject, body) = compose("erin", &[w("a", "X: 1.1 Do it is assigned to you")], None);
        assert_eq!(subject, "Shipshape: X: 1.1 Do it is assigned to you");
        assert!(body.starts_with("Hello erin,"));
        assert!(body.contains("- X: 1.1 Do it is assigned to you\n"));
        let (subject, body) = compose(
            "erin",
            &[w("a", "one"), w("b", "two")],
            Some("https://ship.example"),
        );
        assert_eq!(subject, "Shipshape: 2 things wait on you");
        assert!(body.contains("- two\n  https://ship.example/runs/r1\n"));
        assert!(body.contains("email_notifications"));
    }
}
