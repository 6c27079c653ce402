//! An HTTP receiver on 127.0.0.1 for outbound requests (webhook deliveries, probe checks): it
//! records every request it gets and answers each as told — a status, a body, a delay, or a
//! redirect; in order from a script, or by path.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line's path.
    pub path: String,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is JSON: {e}: {:?}", self.body))
    }

    /// The headers as an `http` header map (for a Standard Webhooks verifier).
    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                map.append(k, v);
            }
        }
        map
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: String,
    /// A wait before answering.
    pub delay: Duration,
    /// A `Location` header (for a redirect).
    pub location: Option<String>,
}

impl Reply {
    /// A status with a short body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
            location: None,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    /// Standing replies by path, when the script is empty.
    routes: Vec<(String, Reply)>,
}

/// The receiver: answers from its script in order, then 200 `ok` by default.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Starts one on a free port of 127.0.0.1.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, state).await;
                });
            }
        });
        Receiver { url, state }
    }

    /// Answers the next requests with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Answers every later request for `path` with `reply` while the script is empty.
    pub fn route(&self, path: &str, reply: Reply) {
        let mut s = self.state.lock().unwrap();
        s.routes.retain(|(p, _)| p != path);
        s.routes.push((path.to_owned(), reply));
    }

    /// What it got so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits until it has got `n` requests (or `within` passes); returns them all.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let reply = {
        let mut s = state.lock().unwrap();
        let standing = s
            .routes
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, r)| r.clone());
        s.received.push(Received {
            path,
            headers,
            body,
        });
        s.script
            .pop_front()
            .or(standing)
            .unwrap_or_else(|| Reply::status(200, "ok"))
    };
    tokio::time::sleep(reply.delay).await;
    let location = reply
        .location
        .map(|l| format!("location: {l}\r\n"))
        .unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 {} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{location}connection: close\r\n\r\n{}",
        reply.status,
        reply.body.len(),
        reply.body
    );
    socket.write_all(answer.as_bytes()).await?;
    socket.shutdown().await
}
