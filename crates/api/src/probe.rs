//! Probe items' checks: the request through the outbound guard, the answer read within
//! bounds, the verdict from the domain's rules ([`shipshape_domain::probe::evaluate`]), and
//! the worker that runs checks on schedule and applies decision deadlines.
//!
//! The worker is one per instance, on a thread of its own. Checks due on schedule are
//! claimed in the database (the claim moves the item's next check time in the statement that
//! finds it due), so each runs once across instances; a deadline is applied under the run's
//! lock after judging it again, and leaves its trace in the run's log, so it is applied once
//! across instances and restarts.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use shipshape_domain::event::ProbeTrigger;
use shipshape_domain::probe::{self, EXCERPT_CHARS, MAX_BODY_BYTES, Observation, ProbeMethod};
use shipshape_store::{ProbeOutcome, ProbeTarget, SYSTEM_ACTOR, Store};
use tokio::task::JoinSet;

use crate::bus::Bus;
use crate::outbound::Guard;

/// How many scheduled checks an instance runs at once.
const IN_FLIGHT: usize = 8;

/// Runs a probe item's check and judges the answer. Never fails: an unreachable, slow,
/// refused or unreadable target is a failed result that says why.
pub async fn check(guard: &Guard, target: &ProbeTarget) -> ProbeOutcome {
    // The check's time is when its target was read, not when it got to run: of two checks,
    // the one that read the later configuration counts, whichever ends last.
    let checked_at = target.read_at;
    let failed = |url: String, summary: String| ProbeOutcome {
        checked_at,
        passed: false,
        summary,
        observed: None,
        url,
        http_status: None,
        latency_ms: None,
        excerpt: None,
    };
    let url = match &target.url {
        Ok(u) => u.clone(),
        Err(e) => return failed(target.spec.url.clone(), e.clone()),
    };
    let equals = match &target.equals {
        Ok(e) => e.clone(),
        Err(e) => return failed(url, e.clone()),
    };
    let method = match target.spec.method {
        ProbeMethod::Get => reqwest::Method::GET,
        ProbeMethod::Head => reqwest::Method::HEAD,
    };
    let request = match guard.request(method, &url) {
        Ok(r) => r,
        Err(e) => return failed(url, format!("refused: {e}")),
    };
    let started = Instant::now();
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return failed(url, crate::deliver::describe_error(e)),
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    let mut truncated = false;
    // Read (within bounds) even when the status is wrong: its start is the excerpt that
    // says why.
    if target.spec.method != ProbeMethod::Head {
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        body.extend_from_slice(&chunk[..MAX_BODY_BYTES - body.len()]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return ProbeOutcome {
                        http_status: Some(status),
                        ..failed(
                            url,
                            format!(
                                "the answer broke off: {}",
                                crate::deliver::describe_error(e)
                            ),
                        )
                    };
                }
            }
        }
    }
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let verdict = probe::evaluate(
        &target.spec,
        equals.as_deref(),
        &Observation {
            status,
            latency_ms,
            body: &body,
            truncated,
        },
    );
    let text = String::from_utf8_lossy(&body);
    ProbeOutcome {
        checked_at,
        passed: verdict.passed,
        summary: verdict.summary,
        observed: Some(verdict.observed),
        url,
        http_status: Some(status),
        latency_ms: Some(latency_ms),
        excerpt: (!text.trim().is_empty()).then(|| probe::excerpt(text.trim(), EXCERPT_CHARS)),
    }
}

/// Runs a check for the schedule and records it.
async fn scheduled_check(
    store: Store,
    guard: Guard,
    metrics: Arc<crate::metrics::Metrics>,
    run_id: String,
    item_id: String,
) {
    let target = {
        let (store, run_id, item_id) = (store.clone(), run_id.clone(), item_id.clone());
        tokio::task::spawn_blocking(move || store.probe_target(&run_id, &item_id, None)).await
    };
    let target = match target {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, run_id, item_id, "cannot read a scheduled check");
            return;
        }
        Err(_) => return,
    };
    let outcome = check(&guard, &target).await;
    metrics.probe(outcome.passed);
    let recorded = tokio::task::spawn_blocking(move || {
        store.record_probe(
            &run_id,
            &item_id,
            outcome,
            ProbeTrigger::Schedule,
            SYSTEM_ACTOR,
        )
    })
    .await;
    match recorded {
        // The run moved on (or closed) while the check was under way: nothing to record.
        Ok(Err(shipshape_store::StoreError::Item(e))) => {
            tracing::debug!(error = %e, "a scheduled check outlived its stage");
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot record a scheduled check"),
        Ok(Ok(_)) | Err(_) => {}
    }
}

/// What the worker needs besides the store.
#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// The longest the worker sleeps before looking again (new stages, other instances'
    /// work).
    pub poll: Duration,
    /// Whether mail is configured (deadline reminders are mailed).
    pub mail: bool,
}

/// Starts the instance's worker for scheduled checks and decision deadlines; it ends once
/// `bus` is dropped.
pub fn start(
    store: &Store,
    bus: &Arc<Bus>,
    guard: Guard,
    settings: ScheduleSettings,
) -> std::io::Result<()> {
    let (store, weak) = (store.clone(), Arc::downgrade(bus));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("shipshape-schedule".into())
        .spawn(move || runtime.block_on(work(store, weak, guard, settings)))
        .map(drop)
}

async fn work(store: Store, bus: Weak<Bus>, guard: Guard, settings: ScheduleSettings) {
    let mut checks: JoinSet<()> = JoinSet::new();
    loop {
        if bus.strong_count() == 0 {
            return;
        }
        while checks.try_join_next().is_some() {}
        let now = Utc::now();
        let free = IN_FLIGHT.saturating_sub(checks.len());
        let round = {
            let store = store.clone();
            let mail = settings.mail;
            tokio::task::spawn_blocking(move || {
                let (claimed, next_probe) = if free > 0 {
                    store.claim_due_probes(now, free)?
                } else {
                    // Every place is taken: look again when one frees up.
                    (Vec::new(), Some(now + chrono::Duration::seconds(1)))
                };
                // A failure here must not lose the checks just claimed.
                let (deadlines, next_deadline) = store.deadline_work(now).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read the decision deadlines");
                    (Vec::new(), Some(now + chrono::Duration::seconds(1)))
                });
                for work in &deadlines {
                    // One run's trouble does not hold up the others' deadlines.
                    if let Err(e) = store.apply_deadline(work, Utc::now(), mail) {
                        tracing::warn!(error = %e, ?work, "cannot apply a decision deadline");
                    }
                }
                Ok::<_, shipshape_store::StoreError>((claimed, next_deadline, next_probe))
            })
            .await
        };
        let wait = match round {
            Ok(Ok((claimed, next_deadline, next_probe))) => {
                for (run_id, item_id) in claimed {
                    let Some(metrics) = bus.upgrade().map(|b| b.metrics().clone()) else {
                        return;
                    };
                    checks.spawn(scheduled_check(
                        store.clone(),
                        guard.clone(),
                        metrics,
                        run_id,
                        item_id,
                    ));
                }
                [next_deadline, next_probe]
                    .into_iter()
                    .flatten()
                    .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                    .min()
                    .unwrap_or(settings.poll)
                    .min(settings.poll)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "scheduled checks and deadlines: retrying");
                Duration::from_secs(1)
            }
            Err(_) => Duration::from_secs(1),
        };
        // Wake twice a second at most to notice that the instance stopped.
        let until = Instant::now() + wait.max(Duration::from_millis(50));
        while Instant::now() < until && bus.strong_count() > 0 {
            let step = until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500));
            tokio::time::sleep(step).await;
        }
    }
}
