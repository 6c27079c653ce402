//! The live event stream of a run, as Server-Sent Events: each event of the run's log, in
//! order, with `id` = its sequence number. A client that reconnects with `Last-Event-ID`
//! resumes after that event, so it sees neither gaps nor duplicates. The stream follows the
//! log in the database (polling it briefly), so it works the same with several instances, and
//! re-checks its caller every few seconds, so a logout or revocation ends it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, ContentEncoding};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use shipshape_domain::access::Permission;
use shipshape_domain::wire::{Event, Problem};
use utoipa::IntoParams;
use uuid::Uuid;

use super::blocking;
use crate::AppState;
use crate::auth::{Caller, authenticate, bearer};
use crate::error::ApiError;

/// How often an idle stream looks for new events.
const POLL: Duration = Duration::from_millis(250);
/// How often an idle stream sends a comment so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events read per query.
const BATCH: i64 = 500;
/// Open streams one user may hold at once (each polls the database).
pub const MAX_STREAMS_PER_USER: usize = 16;

/// One open stream of a user; dropping it (the client went away) frees the place.
struct StreamSlot {
    state: web::Data<AppState>,
    user_id: String,
}

impl StreamSlot {
    fn take(state: &web::Data<AppState>, user_id: &str) -> Option<StreamSlot> {
        let mut open = state.streams.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(user_id.to_owned()).or_insert(0);
        if *n >= MAX_STREAMS_PER_USER {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            state: state.clone(),
            user_id: user_id.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.state.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

/// How often an open stream checks that its caller may still read (logout, deactivation,
/// revocation and expiry end it).
const REAUTHENTICATE: Duration = Duration::from_secs(5);

/// Where the stream starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this sequence number (default 0: the whole log). A reconnect's
    /// `Last-Event-ID` header takes precedence.
    pub after: Option<i64>,
}

struct Follow {
    _slot: StreamSlot,
    state: web::Data<AppState>,
    token: String,
    authenticated_at: Instant,
    run_id: String,
    after: i64,
    queue: VecDeque<Event>,
    last_sent: Instant,
    started: bool,
}

fn frame(event: &Event) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.seq,
        event.event_type().as_str()
    ))
}

async fn next(mut f: Follow) -> Option<(Result<Bytes, actix_web::Error>, Follow)> {
    if !f.started {
        f.started = true;
        // Tell EventSource clients to reconnect quickly after a drop.
        return Some((Ok(Bytes::from_static(b"retry: 1000\n\n")), f));
    }
    loop {
        if let Some(event) = f.queue.pop_front() {
            f.after = event.seq;
            f.last_sent = Instant::now();
            return Some((Ok(frame(&event)), f));
        }
        if f.last_sent.elapsed() >= KEEP_ALIVE {
            f.last_sent = Instant::now();
            return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), f));
        }
        actix_web::rt::time::sleep(POLL).await;
        if f.authenticated_at.elapsed() >= REAUTHENTICATE {
            let caller = authenticate(f.state.clone(), f.token.clone()).await.ok()?;
            caller.require(Permission::Read).ok()?;
            f.authenticated_at = Instant::now();
        }
        let (run_id, after) = (f.run_id.clone(), f.after);
        // A store error ends the stream; the client reconnects with Last-Event-ID.
        let page = blocking(&f.state, move |s| s.events(&run_id, after, BATCH))
            .await
            .ok()?;
        f.queue.extend(page.items);
    }
}

fn last_event_id(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    req.headers()
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "bad_header",
                        "Last-Event-ID must be an event's sequence number",
                    )
                })
        })
        .transpose()
}

/// Streams the run's events live as Server-Sent Events (`text/event-stream`): one message per
/// event, `id` = its sequence number, `event` = its type, `data` = the event as JSON.
/// Reconnecting with `Last-Event-ID` resumes right after that event.
#[utoipa::path(
    tag = "events",
    summary = "Stream a run's events live (Server-Sent Events)",
    params(
        ("run_id" = Uuid, Path, description = "The run's id"),
        StreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event (sent by reconnecting clients)"),
    ),
    responses(
        (status = 200, description = "An endless stream of `id: <seq>` / `event: <type>` / `data: <Event JSON>` messages", content_type = "text/event-stream", body = String),
        (status = 400, description = "A malformed Last-Event-ID or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such run", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The user has too many streams open", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/runs/{run_id}/events/stream")]
pub async fn get_event_stream(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let run_id = path.into_inner().to_string();
    let after = last_event_id(&req)?.or(query.after).unwrap_or(0).max(0);
    // The first page is read before answering, so an unknown run is a plain 404.
    let id = run_id.clone();
    let first = blocking(&state, move |s| s.events(&id, after, BATCH)).await?;
    let slot = StreamSlot::take(&state, &caller.id).ok_or_else(|| {
        ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("at most {MAX_STREAMS_PER_USER} open event streams per user; close one first"),
        )
    })?;
    let follow = Follow {
        _slot: slot,
        state,
        token: bearer(&req)?,
        authenticated_at: Instant::now(),
        run_id,
        after,
        queue: first.items.into(),
        last_sent: Instant::now(),
        started: false,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Compression would hold events back in its buffer.
        .insert_header(ContentEncoding::Identity)
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::stream::unfold(follow, next)))
}
