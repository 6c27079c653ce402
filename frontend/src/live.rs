//! Live updates: a run's event stream (`GET /runs/{id}/events/stream`, Server-Sent Events)
//! read with `fetch`, because `EventSource` cannot send the bearer token. [`SseParser`] turns
//! the byte stream into messages (pure, tested on the host); [`follow`] keeps a stream open,
//! reconnecting with `Last-Event-ID` so no event is missed or seen twice, until the returned
//! [`Follow`] is dropped.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use shipshape_domain::wire::Event;
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

/// The events of messages, skipping those already seen (`seq <= after`), and the new `after`.
pub fn events_after(messages: &[SseMessage], mut after: i64) -> (Vec<Event>, i64) {
    let mut events = Vec::new();
    for message in messages {
        if let Some(event) = crate::api::from_json::<Event>(&message.data)
            && event.seq > after
        {
            after = event.seq;
            events.push(event);
        }
    }
    (events, after)
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

/// An open stream; dropping it closes the connection.
#[derive(Debug)]
pub struct Follow {
    stop: Rc<Cell<bool>>,
    abort: Rc<RefCell<Option<web_sys::AbortController>>>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        self.stop.set(true);
        if let Some(controller) = self.abort.borrow_mut().take() {
            controller.abort();
        }
    }
}

/// Follows a run's events after `after`, calling `on_events` with each batch and `on_state`
/// when the connection comes and goes.
pub fn follow(
    run_id: String,
    after: i64,
    on_events: impl Fn(Vec<Event>) + 'static,
    on_state: impl Fn(LinkState) + 'static,
) -> Follow {
    let stop = Rc::new(Cell::new(false));
    let abort = Rc::new(RefCell::new(None::<web_sys::AbortController>));
    let follow = Follow {
        stop: stop.clone(),
        abort: abort.clone(),
    };
    wasm_bindgen_futures::spawn_local(async move {
        let mut after = after;
        while !stop.get() {
            // Signed out or expired: wait for the user to sign in again, then catch up.
            let Some(token) = crate::session::token() else {
                sleep(1000).await;
                continue;
            };
            let controller = web_sys::AbortController::new().ok();
            let signal = controller.as_ref().map(|c| c.signal());
            *abort.borrow_mut() = controller;
            match open(&run_id, after, &token, signal.as_ref()).await {
                Ok(Some(reader)) => {
                    on_state(LinkState::Live);
                    let mut parser = SseParser::default();
                    while let Some(chunk) = read(&reader).await {
                        let (events, next) = events_after(&parser.feed(&chunk), after);
                        after = next;
                        if !events.is_empty() {
                            on_events(events);
                        }
                    }
                }
                Ok(None) => {
                    // The run is gone or may not be read: nothing more to follow.
                    on_state(LinkState::Stopped);
                    return;
                }
                Err(()) => {}
            }
            if stop.get() {
                return;
            }
            on_state(LinkState::Reconnecting);
            sleep(1000).await;
        }
    });
    follow
}

async fn open(
    run_id: &str,
    after: i64,
    token: &str,
    signal: Option<&web_sys::AbortSignal>,
) -> Result<Option<web_sys::ReadableStreamDefaultReader>, ()> {
    let window = web_sys::window().ok_or(())?;
    let headers = web_sys::Headers::new().map_err(|_| ())?;
    headers
        .set("Authorization", &format!("Bearer {token}"))
        .map_err(|_| ())?;
    headers.set("Accept", "text/event-stream").map_err(|_| ())?;
    headers
        .set("Last-Event-ID", &after.to_string())
        .map_err(|_| ())?;
    let init = web_sys::RequestInit::new();
    init.set_headers(&headers);
    init.set_signal(signal);
    let url = format!(
        "{}/runs/{run_id}/events/stream?after={after}",
        crate::api::BASE
    );
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
        403 | 404 => return Ok(None),
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
    fn replayed_events_are_not_delivered_twice() {
        let message = |seq: i64| SseMessage {
            id: Some(seq.to_string()),
            event: Some("member_added".into()),
            data: format!(
                r#"{{"seq":{seq},"run_id":"r","type":"member_added","actor":"a","at":"2026-11-27T10:00:00Z","payload":{{"user_id":"u","username":"bob","run_role":"DBA"}},"prev_hash":"p","hash":"h"}}"#
            ),
        };
        let (events, after) = events_after(&[message(3), message(4), message(5)], 4);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5]);
        assert_eq!(after, 5);
    }
}
