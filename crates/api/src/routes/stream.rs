//! Live event streams, as Server-Sent Events: the all-runs stream (`GET /events/stream`,
//! one per browser tab: every event the caller may read, or those of the runs named) and a
//! run's own stream (`GET /runs/{id}/events/stream`).
//!
//! A stream first catches up from the log, then follows the bus, which pushes each committed
//! event at once (see [`crate::bus`]); one that falls behind the bus re-reads from the log.
//! Each message's `id` is a cursor (the all-runs position, or the run's sequence number): a
//! client that reconnects with `Last-Event-ID` resumes right after it, so it sees neither
//! gaps nor duplicates. A stream costs no query while nothing happens; it checks its caller
//! again when their access changes (sign-out, deactivation, revocation) and ends when the
//! credential expires. How many streams a user holds is counted across every instance.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentEncoding};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use shipshape_domain::access::Permission;
use shipshape_domain::wire::{Event, Problem};
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use uuid::Uuid;

use super::blocking;
use crate::AppState;
use crate::auth::{Caller, authenticate, bearer};
use crate::bus::{ALIVE, BATCH, Message};
use crate::error::ApiError;

/// How often an idle stream sends a comment so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Open streams one user may hold at once, across every instance.
pub const MAX_STREAMS_PER_USER: usize = 16;
/// The most runs one all-runs stream may name.
pub const MAX_STREAM_RUNS: usize = 100;

/// One open stream of a user, counted in the database; dropping it (the client went away)
/// frees the place.
struct StreamSlot {
    state: web::Data<AppState>,
    lease: String,
}

impl StreamSlot {
    async fn take(state: &web::Data<AppState>, user_id: &str) -> Result<StreamSlot, ApiError> {
        let (instance, user) = (state.bus.instance().to_owned(), user_id.to_owned());
        let lease = blocking(state, move |s| {
            s.open_stream(&instance, &user, MAX_STREAMS_PER_USER, ALIVE)
        })
        .await?;
        let lease = lease.ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!(
                    "at most {MAX_STREAMS_PER_USER} open event streams per user; close one first"
                ),
            )
        })?;
        Ok(StreamSlot {
            state: state.clone(),
            lease,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.state
            .bus
            .stream_closed(std::mem::take(&mut self.lease));
    }
}

/// Where a run's stream starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Start after this sequence number (default 0: the whole log). A reconnect's
    /// `Last-Event-ID` header takes precedence.
    pub after: Option<i64>,
}

/// What the all-runs stream carries and where it starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AllStreamQuery {
    /// Only the events of these runs: their ids, separated by commas (at most 100).
    /// Without it, the events of every run.
    pub runs: Option<String>,
    /// Start after this position of the all-runs log (0: from its beginning). Without it,
    /// the stream starts at the end of the log: only what happens from now on. A
    /// reconnect's `Last-Event-ID` header takes precedence.
    pub after: Option<i64>,
}

/// Which events a stream carries, and what its cursor counts.
enum Scope {
    /// One run's events; the cursor is the run's sequence number.
    Run(String),
    /// Every run's events, or those of the runs named; the cursor is the all-runs position.
    Runs(Option<Vec<String>>),
}

impl Scope {
    /// The cursor of an event, if the stream carries it.
    fn cursor_of(&self, position: i64, event: &Event) -> Option<i64> {
        match self {
            Scope::Run(run) => (event.run_id == *run).then_some(event.seq),
            Scope::Runs(None) => Some(position),
            Scope::Runs(Some(runs)) => runs.contains(&event.run_id).then_some(position),
        }
    }
}

struct Follow {
    _slot: StreamSlot,
    state: web::Data<AppState>,
    token: String,
    user_id: String,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    scope: Scope,
    cursor: i64,
    queue: VecDeque<Bytes>,
    bus: tokio::sync::broadcast::Receiver<Message>,
    /// The log holds events the stream has not read yet.
    behind: bool,
    last_sent: Instant,
    started: bool,
}

fn frame(id: i64, event: &Event) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!(
        "id: {id}\nevent: {}\ndata: {data}\n\n",
        event.event_type().as_str()
    ))
}

impl Follow {
    fn push(&mut self, position: i64, event: &Event) {
        if let Some(cursor) = self.scope.cursor_of(position, event)
            && cursor > self.cursor
        {
            self.cursor = cursor;
            self.queue.push_back(frame(cursor, event));
        }
    }

    /// Reads the next page of the log after the cursor; whether it was the last.
    async fn read_log(&mut self) -> Result<bool, ApiError> {
        let after = self.cursor;
        match &self.scope {
            Scope::Run(run) => {
                let run = run.clone();
                let page = blocking(&self.state, move |s| s.events(&run, after, BATCH)).await?;
                let last = (page.items.len() as i64) < BATCH;
                for event in &page.items {
                    self.push(0, event);
                }
                Ok(last)
            }
            Scope::Runs(runs) => {
                let runs = runs.clone();
                let page = blocking(&self.state, move |s| {
                    s.events_since(after, runs.as_deref(), BATCH)
                })
                .await?;
                let last = (page.len() as i64) < BATCH;
                for p in &page {
                    if let Some(event) = &p.event {
                        self.push(p.position, event);
                    }
                }
                // The cursor moves past the whole page, an event that does not decode among
                // it (`audit verify` names that one).
                if let Some(p) = page.last() {
                    self.cursor = self.cursor.max(p.position);
                }
                Ok(last)
            }
        }
    }

    /// Whether the caller may still read.
    async fn still_allowed(&mut self) -> bool {
        match authenticate(self.state.clone(), self.token.clone()).await {
            Ok(caller) if caller.require(Permission::Read).is_ok() => {
                self.expires_at = caller.expires_at;
                true
            }
            _ => false,
        }
    }
}

async fn next(mut f: Follow) -> Option<(Result<Bytes, actix_web::Error>, Follow)> {
    if !f.started {
        f.started = true;
        // Tell EventSource clients to reconnect quickly after a drop.
        return Some((Ok(Bytes::from_static(b"retry: 1000\n\n")), f));
    }
    loop {
        if let Some(bytes) = f.queue.pop_front() {
            f.last_sent = Instant::now();
            return Some((Ok(bytes), f));
        }
        if f.behind {
            // A store error ends the stream; the client reconnects with Last-Event-ID.
            f.behind = !f.read_log().await.ok()?;
            continue;
        }
        let keep_alive = f.last_sent + KEEP_ALIVE;
        let expires = f
            .expires_at
            .and_then(|at| (at - chrono::Utc::now()).to_std().ok())
            .map_or(Duration::from_secs(86_400), |d| d + Duration::from_secs(1));
        tokio::select! {
            message = f.bus.recv() => match message {
                Ok(Message::Event(d)) => f.push(d.position, &d.event),
                Ok(Message::Access(user)) => {
                    if user.is_none_or(|u| *u == *f.user_id) && !f.still_allowed().await {
                        return None;
                    }
                }
                Err(RecvError::Lagged(_)) => f.behind = true,
                Err(RecvError::Closed) => return None,
            },
            () = actix_web::rt::time::sleep_until(keep_alive.into()) => {
                f.last_sent = Instant::now();
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), f));
            }
            () = actix_web::rt::time::sleep(expires) => {
                if !f.still_allowed().await {
                    return None;
                }
            }
        }
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
                        "Last-Event-ID must be a number this stream gave out",
                    )
                })
        })
        .transpose()
}

/// Parses the `runs` filter: run ids (hyphenated, as the API writes them) separated by
/// commas.
fn run_filter(runs: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(runs) = runs else {
        return Ok(None);
    };
    if runs.split(',').count() > MAX_STREAM_RUNS {
        return Err(ApiError::bad_request(
            "bad_query",
            format!("runs names at most {MAX_STREAM_RUNS} runs"),
        ));
    }
    let mut ids = Vec::new();
    for part in runs.split(',') {
        let id = Some(part)
            .filter(|p| p.len() == 36)
            .and_then(|p| Uuid::parse_str(p).ok())
            .ok_or_else(|| {
                ApiError::bad_request("bad_query", "runs must be run ids separated by commas")
            })?;
        let id = id.to_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(Some(ids))
}

async fn open(
    state: web::Data<AppState>,
    caller: Caller,
    req: &HttpRequest,
    scope: Scope,
    cursor: i64,
) -> Result<HttpResponse, ApiError> {
    let headers = |mut res: actix_web::HttpResponseBuilder| {
        res.content_type("text/event-stream")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            // Compression would hold events back in its buffer.
            .insert_header(ContentEncoding::Identity)
            .insert_header(("X-Accel-Buffering", "no"));
        res
    };
    if crate::server::was_head(req) {
        // The headers a GET would answer; no stream is opened, so none is counted.
        return Ok(headers(HttpResponse::Ok()).finish());
    }
    // The first stream here: the head moves past what was written while none was open
    // (read before subscribing, so what comes after it is still pushed).
    if state.bus.subscribers() == 0 {
        let head = blocking(&state, |s| s.log_head()).await?;
        state.bus.skip_to(head);
    }
    // Subscribed before the log is read: nothing committed in between is missed.
    let bus = state.bus.subscribe();
    let slot = StreamSlot::take(&state, &caller.id).await?;
    let mut follow = Follow {
        _slot: slot,
        state,
        token: bearer(req)?,
        user_id: caller.id,
        expires_at: caller.expires_at,
        scope,
        cursor,
        queue: VecDeque::new(),
        bus,
        behind: false,
        last_sent: Instant::now(),
        started: false,
    };
    if let Scope::Runs(_) = follow.scope {
        // Where the stream starts, before any event: a client that reconnects before the
        // first event arrives resumes from here, not from a later "now".
        follow.queue.push_back(Bytes::from(format!(
            "id: {cursor}\nevent: ready\ndata: {{\"position\":{cursor}}}\n\n"
        )));
    }
    // The first page is read before answering, so a store error is a plain error answer.
    follow.behind = !follow.read_log().await?;
    Ok(headers(HttpResponse::Ok()).streaming(futures_util::stream::unfold(follow, next)))
}

/// Streams every event the caller may read as Server-Sent Events (`text/event-stream`), or
/// those of the runs named: one message per event, `id` = its position in the all-runs log,
/// `event` = its type, `data` = the event as JSON. The first message is `event: ready` with
/// `id` = the position the stream starts after (and `data` = `{"position": …}`), so a client
/// that reconnects before any event arrives misses nothing. Reconnecting with
/// `Last-Event-ID` resumes right after that position. One of these per browser tab serves
/// every page.
#[utoipa::path(
    tag = "events",
    summary = "Stream the events of every run live (Server-Sent Events)",
    params(
        AllStreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this position (sent by reconnecting clients)"),
    ),
    responses(
        (status = 200, description = "An endless stream: first `id: <position>` / `event: ready` / `data: {\"position\": <position>}`, then `id: <position>` / `event: <type>` / `data: <Event JSON>` messages", content_type = "text/event-stream", body = String),
        (status = 400, description = "A malformed Last-Event-ID or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "API token without runs:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A run named does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The user has too many streams open", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["runs:read"]))
)]
#[get("/events/stream")]
pub async fn get_all_events_stream(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<AllStreamQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Permission::Read)?;
    let q = query.into_inner();
    let runs = run_filter(q.runs.as_deref())?;
    // A negative `after` is the log's beginning, as for the log's pages.
    let after = last_event_id(&req)?.or(q.after.map(|a| a.max(0)));
    if let Some(runs) = runs.clone() {
        // Every run named must exist (and so be readable).
        blocking(&state, move |s| {
            runs.iter()
                .try_for_each(|id| s.events(id, i64::MAX, 1).map(drop))
        })
        .await?;
    }
    let after = match after {
        Some(a) => a,
        None => state
            .bus
            .head()
            .max(blocking(&state, |s| s.log_head()).await?),
    };
    open(state, caller, &req, Scope::Runs(runs), after).await
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
    // An unknown run is a plain 404, before a stream is counted.
    let id = run_id.clone();
    blocking(&state, move |s| s.events(&id, i64::MAX, 1)).await?;
    open(state, caller, &req, Scope::Run(run_id), after).await
}
