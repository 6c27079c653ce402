//! Live updates: the tab's one event stream (`GET /events/stream`, Server-Sent Events,
//! every run's events), shared by every page of the tab, so that a dashboard and a run page
//! — or eight live runs — cost one connection, not one each (a browser allows six per
//! origin over HTTP/1.1, across all its tabs).
//!
//! The stream is read with `fetch`, because `EventSource` cannot send the bearer token.
//! [`SseParser`] turns the byte stream into messages (pure, tested on the host). The hub
//! opens the stream when the first page subscribes and closes it a while after the last
//! leaves; it reconnects with `Last-Event-ID`, so it misses nothing while it stays open.
//! [`follow`] gives a page one run's events in order from a sequence number: it reads the
//! log itself whenever the hub (re)connects or an event arrives out of order, so a page
//! sees every event once, whenever it subscribed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use shipshape_domain::wire::Event;

/// An event of a run's log as the streams and the log's pages carry it. Following runs
/// needs only where an event stands in the log; what it says is read ([`LogEvent::event`])
/// by the timeline, a panel fetched when opened: so the pages' first load does not grow
/// with every kind of event.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// Its place in the run's log.
    pub seq: i64,
    /// The run.
    pub run_id: String,
    /// Who did it.
    pub actor: String,
    /// Its `type`.
    pub kind: String,
    /// The whole event.
    pub json: serde_json::Value,
}

impl LogEvent {
    /// Reads an event's place in the log; `None` when it is not one.
    pub fn read(json: serde_json::Value) -> Option<LogEvent> {
        Some(LogEvent {
            seq: json["seq"].as_i64()?,
            run_id: json["run_id"].as_str()?.to_owned(),
            actor: json["actor"].as_str()?.to_owned(),
            kind: json["type"].as_str()?.to_owned(),
            json,
        })
    }

    /// The event itself, its payload read as its kind's type.
    pub fn event(&self) -> Option<Event> {
        serde::Deserialize::deserialize(self.json.clone()).ok()
    }

    /// The event in a few words, without reading its payload: "erin: item updated 1.2.1".
    pub fn headline(&self) -> String {
        let what = shipshape_domain::describe::words(&self.kind);
        match self.json["payload"]["reference"].as_str() {
            Some(reference) => format!("{}: {what} {reference}", self.actor),
            None => format!("{}: {what}", self.actor),
        }
    }
}
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// One message of an event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// The `id:` field.
    pub id: Option<String>,
    /// The `event:` field.
    pub event: Option<String>,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// Splits a byte stream into Server-Sent Events messages. Bytes may arrive in any pieces: a
/// line (and so a UTF-8 character) is only read once it is complete.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    id: Option<String>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    /// Feeds bytes; returns the messages they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseMessage> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.pending.drain(..=end).collect();
            let mut line = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
            if line.ends_with('\r') {
                line.pop();
            }
            if line.is_empty() {
                if !self.data.is_empty() || self.id.is_some() {
                    out.push(SseMessage {
                        id: self.id.take(),
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data).join("\n"),
                    });
                }
                self.event = None;
                continue;
            }
            if line.starts_with(':') {
                continue; // a comment (keep-alive)
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "id" => self.id = Some(value),
                "event" => self.event = Some(value),
                "data" => self.data.push(value),
                _ => {}
            }
        }
        out
    }
}

/// The events of a run in `batch` after `after` that follow it without a gap, and the new
/// `after`; `None` when one is missing (the page must read the log).
pub fn in_order(batch: &[LogEvent], run_id: &str, mut after: i64) -> Option<(Vec<LogEvent>, i64)> {
    let mut events = Vec::new();
    for event in batch.iter().filter(|e| e.run_id == run_id) {
        if event.seq <= after {
            continue;
        }
        if event.seq != after + 1 {
            return None;
        }
        after = event.seq;
        events.push(event.clone());
    }
    Some((events, after))
}

/// Whether the stream is connected, for the page to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Receiving.
    Live,
    /// Lost; trying again.
    Reconnecting,
    /// The run cannot be followed (gone, or no longer readable).
    Stopped,
}

/// What the hub tells its subscribers.
enum Note<'a> {
    Events(&'a [LogEvent]),
    State(LinkState),
}

type Listener = Rc<dyn Fn(Note<'_>)>;

/// The tab's one stream and the pages listening to it.
#[derive(Default)]
struct Hub {
    listeners: RefCell<Vec<(u64, Listener)>>,
    next_id: Cell<u64>,
    /// The stream's task runs while this is set; its generation tells an old task to end.
    running: Cell<Option<u64>>,
    generation: Cell<u64>,
    abort: RefCell<Option<web_sys::AbortController>>,
    state: Cell<Option<LinkState>>,
}

thread_local! {
    static HUB: Rc<Hub> = Rc::default();
}

/// A page's place on the hub; dropping it leaves (and the stream closes a while after the
/// last page leaves).
#[derive(Debug)]
pub struct Subscription(u64);

impl Drop for Subscription {
    fn drop(&mut self) {
        let id = self.0;
        HUB.with(|hub| {
            hub.listeners.borrow_mut().retain(|(i, _)| *i != id);
            if hub.listeners.borrow().is_empty() {
                let hub = hub.clone();
                let generation = hub.generation.get();
                wasm_bindgen_futures::spawn_local(async move {
                    // A page that replaces another subscribes again at once: keep the stream.
                    sleep(CLOSE_AFTER_MS).await;
                    if hub.listeners.borrow().is_empty() && hub.generation.get() == generation {
                        hub.stop();
                    }
                });
            }
        });
    }
}

/// How long the stream stays open after the last page left.
const CLOSE_AFTER_MS: i32 = 5_000;

impl Hub {
    fn subscribe(self: &Rc<Self>, listener: Listener) -> Subscription {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        self.listeners.borrow_mut().push((id, listener.clone()));
        if self.running.get().is_none() {
            self.start();
        } else if let Some(state) = self.state.get() {
            listener(Note::State(state));
        }
        Subscription(id)
    }

    /// The pages listening now (a page may leave while it is told).
    fn listeners(&self) -> Vec<Listener> {
        self.listeners
            .borrow()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn tell(&self, note: impl Fn() -> Note<'static>) {
        for l in self.listeners() {
            l(note());
        }
    }

    fn set_state(&self, state: LinkState) {
        if self.state.get() != Some(state) {
            self.state.set(Some(state));
            self.tell(|| Note::State(state));
        }
    }

    fn stop(&self) {
        self.generation.set(self.generation.get() + 1);
        self.running.set(None);
        self.state.set(None);
        if let Some(controller) = self.abort.borrow_mut().take() {
            controller.abort();
        }
    }

    fn start(self: &Rc<Self>) {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        self.running.set(Some(generation));
        let hub = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let current = || hub.running.get() == Some(generation);
            // The position of the last event seen: a reconnect resumes right after it.
            let mut after: Option<i64> = None;
            while current() {
                // Signed out or expired: wait for the user to sign in again.
                let Some(token) = crate::session::token() else {
                    sleep(1000).await;
                    continue;
                };
                let controller = web_sys::AbortController::new().ok();
                let signal = controller.as_ref().map(|c| c.signal());
                *hub.abort.borrow_mut() = controller;
                match open(after, &token, signal.as_ref()).await {
                    Ok(Some(reader)) => {
                        hub.set_state(LinkState::Live);
                        let mut parser = SseParser::default();
                        while let Some(chunk) = read(&reader).await {
                            if !current() {
                                return;
                            }
                            let mut events = Vec::new();
                            for message in parser.feed(&chunk) {
                                let position = message.id.as_deref().and_then(|i| i.parse().ok());
                                if let Some(p) = position {
                                    after = Some(p);
                                }
                                if let Some(event) =
                                    crate::api::from_json::<serde_json::Value>(&message.data)
                                        .and_then(LogEvent::read)
                                {
                                    events.push(event);
                                }
                            }
                            if !events.is_empty() {
                                for l in hub.listeners() {
                                    l(Note::Events(&events));
                                }
                            }
                        }
                    }
                    Ok(None) => {
                        // The caller may not read runs at all.
                        hub.set_state(LinkState::Stopped);
                        hub.running.set(None);
                        return;
                    }
                    Err(()) => {}
                }
                if !current() {
                    return;
                }
                hub.set_state(LinkState::Reconnecting);
                sleep(1000).await;
            }
        });
    }
}

/// Calls `on_events` with every batch of events of any run, and `on_state` when the tab's
/// stream comes and goes (after a gap, the page should read what it shows again).
pub fn watch_all(
    on_events: impl Fn(&[LogEvent]) + 'static,
    on_state: impl Fn(LinkState) + 'static,
) -> Subscription {
    HUB.with(|hub| {
        hub.subscribe(Rc::new(move |note| match note {
            Note::Events(events) => on_events(events),
            Note::State(state) => on_state(state),
        }))
    })
}

/// One page's following of one run.
struct Follower {
    run_id: String,
    /// The last sequence number given to the page.
    seen: Cell<i64>,
    /// A read of the log is under way; `again`: another is wanted after it.
    busy: Cell<bool>,
    again: Cell<bool>,
    on_events: Box<dyn Fn(Vec<LogEvent>)>,
    on_state: Box<dyn Fn(LinkState)>,
}

impl Follower {
    /// Gives the page the events that follow what it has seen.
    fn give(&self, events: Vec<LogEvent>) {
        if let Some(last) = events.last() {
            self.seen.set(last.seq);
            (self.on_events)(events);
        }
    }

    /// Reads the run's log after what the page has seen (one read at a time; a request
    /// while one runs asks for one more after it).
    fn catch_up(self: &Rc<Self>) {
        if self.busy.replace(true) {
            self.again.set(true);
            return;
        }
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                this.again.set(false);
                this.read_log().await;
                if !this.again.get() {
                    break;
                }
            }
            this.busy.set(false);
        });
    }

    async fn read_log(&self) {
        loop {
            match crate::api::events(&self.run_id, self.seen.get()).await {
                Ok(page) => {
                    let seen = self.seen.get();
                    self.give(page.items.into_iter().filter(|e| e.seq > seen).collect());
                    if page.next_after.is_none() {
                        return;
                    }
                }
                Err(e) => {
                    if matches!(e.status, 403 | 404) {
                        (self.on_state)(LinkState::Stopped);
                    }
                    return;
                }
            }
        }
    }

    fn hear(self: &Rc<Self>, note: Note<'_>) {
        match note {
            Note::Events(batch) => match in_order(batch, &self.run_id, self.seen.get()) {
                Some((events, _)) => self.give(events),
                None => self.catch_up(),
            },
            Note::State(state) => {
                (self.on_state)(state);
                if state == LinkState::Live {
                    self.catch_up();
                }
            }
        }
    }
}

/// Follows a run's events after sequence number `after`, calling `on_events` with each batch,
/// in order, each event once, and `on_state` when the connection comes and goes. Reads the
/// run's log itself to start, whenever the tab's stream (re)connects, and when an event
/// arrives out of order.
pub fn follow(
    run_id: String,
    after: i64,
    on_events: impl Fn(Vec<LogEvent>) + 'static,
    on_state: impl Fn(LinkState) + 'static,
) -> Subscription {
    let follower = Rc::new(Follower {
        run_id,
        seen: Cell::new(after),
        busy: Cell::new(false),
        again: Cell::new(false),
        on_events: Box::new(on_events),
        on_state: Box::new(on_state),
    });
    follower.catch_up();
    HUB.with(|hub| hub.subscribe(Rc::new(move |note| follower.hear(note))))
}

async fn open(
    after: Option<i64>,
    token: &str,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<Option<web_sys::ReadableStreamDefaultReader>, ()> {
    let window = web_sys::window().ok_or(())?;
    let headers = web_sys::Headers::new().map_err(|_| ())?;
    headers
        .set("Authorization", &format!("Bearer {token}"))
        .map_err(|_| ())?;
    headers.set("Accept", "text/event-stream").map_err(|_| ())?;
    if let Some(after) = after {
        headers
            .set("Last-Event-ID", &after.to_string())
            .map_err(|_| ())?;
    }
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    init.set_signal(signal);
    let url = format!("{}/events/stream", crate::api::BASE);
    let request = web_sys::Request::new_with_str_and_init(&url, &init).map_err(|_| ())?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| ())?
        .dyn_into()
        .map_err(|_| ())?;
    match response.status() {
        200 => {}
        401 => {
            // The session ended; the loop waits for a new one.
            crate::session::refused(token);
            return Err(());
        }
        403 => return Ok(None),
        _ => return Err(()),
    }
    let body = response.body().ok_or(())?;
    body.get_reader().dyn_into().map(Some).map_err(|_| ())
}

async fn read(reader: &web_sys::ReadableStreamDefaultReader) -> Option<Vec<u8>> {
    let result = JsFuture::from(reader.read()).await.ok()?;
    let done = js_sys::Reflect::get(&result, &JsValue::from_str("done")).ok()?;
    if done.as_bool() == Some(true) {
        return None;
    }
    let value = js_sys::Reflect::get(&result, &JsValue::from_str("value")).ok()?;
    Some(js_sys::Uint8Array::new(&value).to_vec())
}

/// Folds re-reads together: [`Coalesce::read`] starts a read now, or, while one is in
/// flight, asks for exactly one more after it — so a burst of events costs two reads, not
/// one per event, and answers never overlap.
#[derive(Debug, Clone, Default)]
pub struct Coalesce(Rc<Cell<(bool, bool)>>);

impl Coalesce {
    /// Reads with `read` (now or after the read in flight).
    pub fn read<F, Fut>(&self, read: F)
    where
        F: Fn() -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let (busy, _) = self.0.get();
        if busy {
            self.0.set((true, true));
            return;
        }
        self.0.set((true, false));
        let state = self.0.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                read().await;
                let (_, again) = state.get();
                if !again {
                    break;
                }
                state.set((true, false));
            }
            state.set((false, false));
        });
    }
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_read_whatever_the_pieces() {
        let stream = "id: 1\nevent: run_created\ndata: {\"a\":1}\n\n: keep-alive\n\nid: 2\r\ndata: é\r\n\r\n";
        let whole = SseParser::default().feed(stream.as_bytes());
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].id.as_deref(), Some("1"));
        assert_eq!(whole[0].event.as_deref(), Some("run_created"));
        assert_eq!(whole[0].data, "{\"a\":1}");
        assert_eq!(whole[1].data, "é");
        // Byte by byte, splitting the two-byte "é".
        let mut parser = SseParser::default();
        let pieces: Vec<_> = stream
            .as_bytes()
            .iter()
            .flat_map(|b| parser.feed(&[*b]))
            .collect();
        assert_eq!(pieces, whole);
    }

    #[test]
    fn a_run_takes_its_events_in_order_and_asks_for_the_log_after_a_gap() {
        let event = |run: &str, seq: i64| -> LogEvent {
            crate::api::from_json(&format!(
                r#"{{"seq":{seq},"run_id":"{run}","type":"member_added","actor":"a","at":"2026-11-27T10:00:00Z","payload":{{"user_id":"u","username":"bob","run_role":"DBA"}},"prev_hash":"p","hash":"h"}}"#
            ))
            .and_then(LogEvent::read)
            .unwrap()
        };
        let batch = [
            event("r", 3),
            event("other", 9),
            event("r", 4),
            event("r", 5),
        ];
        let (events, after) = in_order(&batch, "r", 3).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(after, 5);
        assert!(
            in_order(&batch, "r", 1).is_none(),
            "seq 2 is missing: read the log"
        );
        assert_eq!(in_order(&batch, "nobody", 0).unwrap().0.len(), 0);
        assert_eq!(batch[0].headline(), "a: member added");
        assert!(
            batch[0].event().is_some(),
            "the payload reads as its kind's"
        );
    }
}
