//! Fan-out: many subscribers on the pushed event streams, one writer. How long a write takes
//! from its acknowledgement to its arrival at every subscriber (p50/p95/p99), and what idle
//! streams cost the server: CPU, resident memory and — on PostgreSQL — database transactions.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::{Api, BenchResult, Server, err, id, items};

/// Subscribers per stream kind (a full run; the smoke run uses fewer).
pub const SUBSCRIBERS: usize = 200;
/// Writes whose arrival is timed.
const WRITES: usize = 30;
/// How long idle streams are watched for their cost.
const IDLE: Duration = Duration::from_secs(10);
/// PostgreSQL reports a busy backend's statistics within 10 s of its work (an idle one's at
/// once): the window for the idle cost opens after this.
const STATS_SETTLE: Duration = Duration::from_secs(11);
/// The per-user stream cap: subscribers are spread over enough users.
const PER_USER: usize = 16;

/// One fan-out measurement.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FanOut {
    /// `run` (a run's stream) or `all` (the all-runs stream).
    pub stream: String,
    /// Subscribers.
    pub subscribers: usize,
    /// Writes timed.
    pub writes: usize,
    /// Deliveries that did not arrive within 5 s.
    pub missing: usize,
    /// Acknowledgement to arrival, over every (write, subscriber).
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The server's CPU while the streams sat idle, in % of one core.
    pub idle_cpu_percent: f64,
    /// The server's resident memory with the streams open and idle.
    pub idle_rss_kib: u64,
    /// Database transactions per second while the streams sat idle (PostgreSQL only).
    pub idle_db_tx_per_sec: Option<f64>,
    /// The same with no stream open, for comparison (the instance's own heartbeat).
    pub baseline_db_tx_per_sec: Option<f64>,
}

/// Tokens of enough new users (`<prefix>-0`, …) to hold `n` streams.
pub fn watchers(api: &Api, prefix: &str, n: usize) -> BenchResult<Vec<String>> {
    let mut tokens = Vec::new();
    for k in 0..n.div_ceil(PER_USER) {
        let name = format!("{prefix}-{k}");
        let password = "watcher-password";
        api.call(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({"username": name, "password": password, "role": "viewer"})),
        )?;
        let login: Value = api
            .client
            .post(format!("{}/api/v1/auth/login", api.base))
            .json(&json!({"username": name, "password": password}))
            .send()
            .and_then(|r| r.json())
            .map_err(err("login"))?;
        tokens.push(
            login["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    Ok(tokens)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The server's CPU time so far, in clock ticks.
fn cpu_ticks(server: &Server) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
        .ok()
        .and_then(|s| {
            // After the command name in parentheses: utime and stime are fields 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Committed transactions of the database so far (PostgreSQL).
fn db_transactions(postgres: Option<&(String, String)>) -> Option<i64> {
    let (server_url, name) = postgres?;
    let out = std::process::Command::new("psql")
        .arg(server_url)
        .args([
            "-Atc",
            &format!("SELECT xact_commit FROM pg_stat_database WHERE datname = '{name}'"),
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Database transactions per second over [`IDLE`], once the statistics of earlier work
/// have been reported.
fn db_rate(postgres: Option<&(String, String)>) -> Option<f64> {
    postgres?;
    std::thread::sleep(STATS_SETTLE);
    let before = db_transactions(postgres)?;
    std::thread::sleep(IDLE);
    let after = db_transactions(postgres)?;
    Some((after - before) as f64 / IDLE.as_secs_f64())
}

/// Opens `n` subscribers on `path`, one connection each as browsers make them (plain
/// sockets, so that the measurement can close them); each sends (write number, arrival time)
/// for every note `fanout <k>` it sees.
fn subscribe(
    api: &Api,
    tokens: &[String],
    path: &str,
    n: usize,
    arrived: &mpsc::Sender<(usize, Instant)>,
) -> BenchResult<Vec<TcpStream>> {
    let addr = api
        .base
        .strip_prefix("http://")
        .ok_or("the server's address")?
        .to_owned();
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let mut socket = TcpStream::connect(&addr).map_err(err("connect a subscriber"))?;
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
            tokens[i / PER_USER]
        )
        .map_err(err("open a stream"))?;
        let mut reader = BufReader::new(socket.try_clone().map_err(err("socket"))?);
        let mut status = String::new();
        reader
            .read_line(&mut status)
            .map_err(err("stream status"))?;
        if !status.contains(" 200 ") {
            return Err(format!("stream {i}: {}", status.trim()));
        }
        let arrived = arrived.clone();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if let Some(k) = line
                    .rfind("\"fanout ")
                    .and_then(|at| line[at + 8..].split('"').next())
                    .and_then(|k| k.parse::<usize>().ok())
                    && arrived.send((k, Instant::now())).is_err()
                {
                    return;
                }
            }
        });
        sockets.push(socket);
    }
    Ok(sockets)
}

/// Measures `n` subscribers of one stream kind.
pub fn measure(
    api: &Api,
    server: &Server,
    tokens: &[String],
    postgres: Option<&(String, String)>,
    kind: &str,
    n: usize,
    smoke: bool,
) -> BenchResult<FanOut> {
    let run = api.call(
        reqwest::Method::POST,
        "/api/v1/runs",
        Some(json!({"template_id": shipshape_store::EDULIBRA_TEMPLATE_ID, "product": format!("Fan-out {kind}"), "release_version": "1", "environment": "bench"})),
    )?;
    let run_id = id(&run);
    let item = items(&run)
        .into_iter()
        .find(|i| i["kind"] == "manual")
        .map(|i| id(&i))
        .ok_or("no manual item")?;
    let path = match kind {
        "run" => format!(
            "/api/v1/runs/{run_id}/events/stream?after={}",
            run["version"]
        ),
        _ => "/api/v1/events/stream".to_owned(),
    };
    let baseline = if smoke { None } else { db_rate(postgres) };
    let (tx, rx) = mpsc::channel();
    let sockets = subscribe(api, tokens, &path, n, &tx)?;
    drop(tx);
    std::thread::sleep(Duration::from_millis(500));

    let writes = if smoke { 3 } else { WRITES };
    let mut latencies = Vec::with_capacity(writes * n);
    let mut missing = 0;
    for k in 0..writes {
        api.call(
            reqwest::Method::PATCH,
            &format!("/api/v1/runs/{run_id}/items/{item}"),
            Some(json!({"note": format!("fanout {k}")})),
        )?;
        let acked = Instant::now();
        let mut got = 0;
        let deadline = acked + Duration::from_secs(5);
        while got < n {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match rx.recv_timeout(left) {
                Ok((seen, at)) if seen == k => {
                    got += 1;
                    latencies.push(at.saturating_duration_since(acked).as_secs_f64() * 1000.0);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        missing += n - got;
        std::thread::sleep(Duration::from_millis(20));
    }
    latencies.sort_by(f64::total_cmp);

    // The streams sit idle: what do they cost?
    let ticks = cpu_ticks(server);
    let started = Instant::now();
    let idle_db = if smoke {
        std::thread::sleep(Duration::from_millis(500));
        None
    } else {
        match db_rate(postgres) {
            Some(rate) => Some(rate),
            None => {
                std::thread::sleep(IDLE);
                None
            }
        }
    };
    // Clock ticks are 1/100 s on Linux.
    let cpu = (cpu_ticks(server) - ticks) as f64 / 100.0 / started.elapsed().as_secs_f64() * 100.0;
    let rss = server.rss_kib();
    drop(rx);
    for socket in sockets {
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
    // The server frees their places as the connections close.
    std::thread::sleep(Duration::from_secs(1));
    Ok(FanOut {
        stream: kind.into(),
        subscribers: n,
        writes,
        missing,
        p50_ms: percentile(&latencies, 0.50),
        p95_ms: percentile(&latencies, 0.95),
        p99_ms: percentile(&latencies, 0.99),
        idle_cpu_percent: cpu,
        idle_rss_kib: rss,
        idle_db_tx_per_sec: idle_db,
        baseline_db_tx_per_sec: baseline,
    })
}
