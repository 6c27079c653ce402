//! `shipshape-bench`: measures the hot paths of the real `shipshape` server against this
//! machine's own floors, side by side in one run, on SQLite and on PostgreSQL.
//!
//! For each backend it starts the server on a fresh database, seeds it, and drives load
//! from `wrk` (a separate process on loopback; one client thread, connection counts stated)
//! against a server with a fixed number of workers. It reports, as one Markdown table and
//! as JSON, in `bench/results/latest.md` and `latest.json` (each run replaces them; earlier
//! results live in the history of those files):
//! - reading a whole EduLibra run next to `/healthz` (the floor of a request through the
//!   stack);
//! - durable item updates under 1, 4 and 16 writers next to a raw single-row diesel
//!   `UPDATE` transaction on the same database (the floor of a durable write);
//! - the run list at 100 and at 10,000 runs (seeded in bulk, not over HTTP);
//! - Insights over two years at the same scales (10,000 runs hold 330,000 items): the
//!   delivery metrics and the checklist analytics, one client at a time;
//! - the server's resident memory idle, after the write load, with 200 event streams open and
//!   after they closed.
//!
//! It is a benchmark, not a test: it never fails because a number is slow. `--smoke` runs
//! every step briefly, to keep the harness working in CI.

mod fanout;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use diesel::RunQueryDsl;
use diesel::connection::Connection;
use serde::Serialize;
use serde_json::{Value, json};
use shipshape_store::admin::{create_postgres_database, drop_postgres_database};
use shipshape_store::db::{AnyConnection, DbUrl, establish};
use shipshape_store::{EDULIBRA_TEMPLATE_ID, Store};

/// Server worker threads during the benchmark.
const SERVER_WORKERS: usize = 2;
/// wrk client threads.
const WRK_THREADS: usize = 1;
/// wrk connections for reads.
const READ_CONNECTIONS: usize = 16;
/// Concurrent writers measured.
const WRITERS: [usize; 3] = [1, 4, 16];
const ADMIN_PASSWORD: &str = "bench-admin-password";

/// Benchmark the Shipshape server.
#[derive(Debug, Parser)]
struct Args {
    /// A quick run of every step (CI): short measurements, small seeds, results not kept.
    #[arg(long)]
    smoke: bool,
    /// The `shipshape` binary to benchmark.
    #[arg(long, default_value = "target/release/shipshape")]
    server: PathBuf,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// The PostgreSQL server.
    #[arg(
        long,
        env = "SHIPSHAPE_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// The larger run count of the list measurement (default 10,000; 100 with --smoke).
    #[arg(long)]
    scale_runs: Option<usize>,
    /// Where results go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

/// One measurement from wrk.
#[derive(Debug, Clone, Default, Serialize)]
struct Load {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
struct ScalePoint {
    runs: usize,
    items: i64,
    first_page: Load,
    filtered_page: Load,
    delivery: Load,
    checklist: Load,
}

#[derive(Debug, Clone, Default, Serialize)]
struct BackendResult {
    backend: String,
    version: String,
    run_read: Load,
    healthz: Load,
    writes: Vec<(usize, Load)>,
    raw_update_per_sec: f64,
    scale: Vec<ScalePoint>,
    rss_idle_kib: u64,
    rss_after_writes_kib: u64,
    rss_streams_open_kib: u64,
    rss_streams_closed_kib: u64,
    events_in_read_run: i64,
    fanout: Vec<fanout::FanOut>,
}

struct Settings {
    warmup: Duration,
    measure: Duration,
    scale: [usize; 2],
}

fn main() {
    let args = Args::parse();
    let mut settings = if args.smoke {
        Settings {
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(1),
            scale: [20, 100],
        }
    } else {
        Settings {
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(5),
            scale: [100, 10_000],
        }
    };
    if let Some(n) = args.scale_runs {
        settings.scale[1] = n.max(settings.scale[0]);
    }
    if !args.server.exists() {
        eprintln!(
            "no server binary at {}; build it first (just bench does)",
            args.server.display()
        );
        std::process::exit(2);
    }
    let machine = machine();
    eprintln!("{machine}");
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for backend in &args.backends {
        eprintln!("== {backend}");
        match run_backend(&args, &settings, backend) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("{backend}: could not be measured: {e}");
                failed.push(backend.clone());
            }
        }
    }
    let table = markdown(&machine, &settings, &results);
    println!("{table}");
    if !args.smoke
        && let Err(e) = std::fs::create_dir_all(&args.out)
            .and_then(|()| {
                std::fs::write(
                    args.out.join("latest.json"),
                    serde_json::to_string_pretty(&json!({"machine": machine, "results": results}))
                        .unwrap_or_default(),
                )
            })
            .and_then(|()| std::fs::write(args.out.join("latest.md"), &table))
    {
        eprintln!("could not write results: {e}");
    }
    // A slow number never fails the run; a step that could not run at all does.
    if !failed.is_empty() {
        eprintln!("not measured: {}", failed.join(", "));
        std::process::exit(1);
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or_else(|| "?".into(), |kib| format!("{} GiB", kib / 1024 / 1024));
    let wrk = Command::new("wrk")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_else(|_| "wrk not found".into());
    format!("{cores} cores, {cpu}, {memory} RAM; {wrk}")
}

type BenchResult<T> = Result<T, String>;

fn err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

fn free_port() -> BenchResult<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(err("free port"))
}

fn start_server(bin: &Path, database_url: &str) -> BenchResult<Server> {
    let port = free_port()?;
    let child = Command::new(bin)
        .arg("serve")
        .env("SHIPSHAPE_BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", database_url)
        .env("SHIPSHAPE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SHIPSHAPE_WORKERS", SERVER_WORKERS.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(err("start the server"))?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if client
            .get(format!("{}/readyz", server.base))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the server did not become ready".into())
}

struct Api {
    client: reqwest::blocking::Client,
    base: String,
    token: String,
}

impl Api {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> BenchResult<Value> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().map_err(err(path))?;
        let status = res.status();
        let text = res.text().map_err(err(path))?;
        if !status.is_success() {
            return Err(format!("{path}: {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(err(path))
    }
}

fn items(run: &Value) -> Vec<Value> {
    run["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["sections"].as_array().into_iter().flatten())
        .flat_map(|s| s["items"].as_array().into_iter().flatten())
        .cloned()
        .collect()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

/// A run like one mid-deployment: started, most items worked, two decisions, ~50 events.
fn seed_read_run(api: &Api) -> BenchResult<String> {
    let run = api.call(
        reqwest::Method::POST,
        "/api/v1/runs",
        Some(json!({"template_id": EDULIBRA_TEMPLATE_ID, "product": "EduLibra", "release_version": "4.2.0", "environment": "production"})),
    )?;
    let run_id = id(&run);
    api.call(
        reqwest::Method::POST,
        &format!("/api/v1/runs/{run_id}/transitions"),
        Some(json!({"action": "start"})),
    )?;
    for item in items(&run).iter().filter(|i| i["kind"] == "manual") {
        let path = format!("/api/v1/runs/{run_id}/items/{}", id(item));
        api.call(
            reqwest::Method::PATCH,
            &path,
            Some(json!({"status": "in_progress", "note": "on it"})),
        )?;
        if item["gate"] == "deploy" {
            api.call(
                reqwest::Method::PATCH,
                &path,
                Some(json!({"status": "done", "evidence_url": "https://ci.example/1"})),
            )?;
        }
    }
    for outcome in ["hold", "go"] {
        api.call(
            reqwest::Method::POST,
            &format!("/api/v1/runs/{run_id}/decisions"),
            // The criteria are left unknown: a go says it goes on anyway.
            Some(json!({"point_key": "go_no_go", "outcome": outcome, "rationale": "bench", "unmet_confirmed": true})),
        )?;
    }
    Ok(run_id)
}

fn parse_ms(v: &str) -> f64 {
    let (num, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    num.parse::<f64>().map_or(f64::NAN, |n| n * factor)
}

fn parse_wrk(out: &str) -> Load {
    let mut load = Load::default();
    for line in out.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(v)) => load.p50_ms = parse_ms(v),
            (Some("99%"), Some(v)) => load.p99_ms = parse_ms(v),
            (Some("Requests/sec:"), Some(v)) => load.requests_per_sec = v.parse().unwrap_or(0.0),
            (Some("Non-2xx"), _) => {
                load.errors += line
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
            }
            (Some(n), Some("requests")) => load.requests = n.parse().unwrap_or(0),
            _ if line.starts_with("Socket errors") => {
                // "Socket errors: connect 0, read 2, write 0, timeout 5"
                load.errors += line
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    load
}

fn wrk(
    url: &str,
    token: &str,
    connections: usize,
    time: Duration,
    script: Option<&Path>,
) -> BenchResult<Load> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", time.as_secs().max(1)))
        .arg("--latency")
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"));
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(url)
        .output()
        .map_err(err("run wrk (apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains("Requests/sec") {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(parse_wrk(&text))
}

/// Warms up, then measures.
fn measure(
    s: &Settings,
    url: &str,
    token: &str,
    connections: usize,
    script: Option<&Path>,
) -> BenchResult<Load> {
    wrk(url, token, connections, s.warmup, script)?;
    wrk(url, token, connections, s.measure, script)
}

fn patch_script(
    dir: &Path,
    run_id: &str,
    item_ids: &[String],
    token: &str,
) -> BenchResult<PathBuf> {
    let list: Vec<String> = item_ids.iter().map(|i| format!("\"{i}\"")).collect();
    let script = format!(
        r#"local items = {{{}}}
local counter = 0
local headers = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {token}"}}
request = function()
  counter = counter + 1
  local item = items[(counter % #items) + 1]
  return wrk.format("PATCH", "/api/v1/runs/{run_id}/items/" .. item, headers, '{{"note":"bench ' .. counter .. '"}}')
end
"#,
        list.join(", ")
    );
    let path = dir.join(format!("patch-{run_id}.lua"));
    std::fs::write(&path, script).map_err(err("write the wrk script"))?;
    Ok(path)
}

/// The floor of a durable write: single-row `UPDATE` transactions, one after another, on
/// the same database through diesel.
fn raw_update_rate(url: &DbUrl, time: Duration) -> BenchResult<f64> {
    let mut conn = establish(url).map_err(err("connect"))?;
    diesel::sql_query("INSERT INTO settings (key, value) VALUES ('bench', '0')")
        .execute(&mut conn)
        .map_err(err("insert"))?;
    let started = Instant::now();
    let mut n: u64 = 0;
    while started.elapsed() < time {
        conn.transaction::<_, diesel::result::Error, _>(|c| {
            diesel::sql_query(format!(
                "UPDATE settings SET value = '{n}' WHERE key = 'bench'"
            ))
            .execute(c)
        })
        .map_err(err("update"))?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// How many run items the database holds.
fn count_items(url: &DbUrl) -> BenchResult<i64> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = establish(url).map_err(err("connect"))?;
    let rows: Vec<Count> = diesel::sql_query("SELECT COUNT(*) AS n FROM run_items")
        .load(&mut conn)
        .map_err(err("count items"))?;
    Ok(rows.first().map_or(0, |c| c.n))
}

fn version(url: &DbUrl) -> String {
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let q = match url {
        DbUrl::Sqlite(_) => "SELECT 'SQLite ' || sqlite_version() AS v",
        DbUrl::Postgres(_) => "SELECT 'PostgreSQL ' || current_setting('server_version') AS v",
    };
    establish(url)
        .ok()
        .and_then(|mut c: AnyConnection| diesel::sql_query(q).load::<V>(&mut c).ok())
        .and_then(|mut v| v.pop())
        .map_or_else(|| "?".into(), |v| v.v)
}

fn run_backend(args: &Args, s: &Settings, backend: &str) -> BenchResult<BackendResult> {
    let work =
        std::env::temp_dir().join(format!("shipshape-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).map_err(err("temp dir"))?;
    let pg_name = format!("shipshape_bench_{}", uuid::Uuid::new_v4().simple());
    let database_url = match backend {
        "sqlite" => format!("sqlite://{}", work.join("bench.db").display()),
        "postgres" => create_postgres_database(&args.postgres, &pg_name)
            .map_err(err("create the database"))?,
        other => return Err(format!("unknown backend {other}")),
    };
    let postgres = (backend == "postgres").then(|| (args.postgres.clone(), pg_name.clone()));
    let result = measure_backend(args, s, backend, &database_url, &work, postgres.as_ref());
    if backend == "postgres" {
        let _ = drop_postgres_database(&args.postgres, &pg_name);
    }
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn measure_backend(
    args: &Args,
    s: &Settings,
    backend: &str,
    database_url: &str,
    work: &Path,
    postgres: Option<&(String, String)>,
) -> BenchResult<BackendResult> {
    let db = DbUrl::parse(database_url).map_err(err("database url"))?;
    let server = start_server(&args.server, database_url)?;
    let client = reqwest::blocking::Client::new();
    let login: Value = client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .and_then(|r| r.json())
        .map_err(err("login"))?;
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let api = Api {
        client,
        base: server.base.clone(),
        token: token.clone(),
    };
    let mut r = BackendResult {
        backend: backend.into(),
        version: version(&db),
        ..Default::default()
    };

    eprintln!("seeding the run to read");
    let read_run = seed_read_run(&api)?;
    r.events_in_read_run = api.call(
        reqwest::Method::GET,
        &format!("/api/v1/runs/{read_run}"),
        None,
    )?["version"]
        .as_i64()
        .unwrap_or(0);
    r.rss_idle_kib = server.rss_kib();

    eprintln!("reads");
    r.run_read = measure(
        s,
        &format!("{}/api/v1/runs/{read_run}", server.base),
        &token,
        READ_CONNECTIONS,
        None,
    )?;
    r.healthz = measure(
        s,
        &format!("{}/healthz", server.base),
        &token,
        READ_CONNECTIONS,
        None,
    )?;

    eprintln!("writes");
    let write_run = api.call(
        reqwest::Method::POST,
        "/api/v1/runs",
        Some(json!({"template_id": EDULIBRA_TEMPLATE_ID, "product": "Writes", "release_version": "1", "environment": "bench"})),
    )?;
    let item_ids: Vec<String> = items(&write_run)
        .iter()
        .filter(|i| i["kind"] == "manual")
        .map(id)
        .collect();
    let script = patch_script(work, &id(&write_run), &item_ids, &token)?;
    for writers in WRITERS {
        let load = measure(s, &server.base, &token, writers, Some(&script))?;
        r.writes.push((writers, load));
    }
    r.rss_after_writes_kib = server.rss_kib();
    r.raw_update_per_sec = raw_update_rate(&db, s.measure)?;

    eprintln!("streams");
    (r.rss_streams_open_kib, r.rss_streams_closed_kib) = stream_memory(&api, &server, &read_run)?;

    eprintln!("fan-out");
    let subscribers = if args.smoke { 20 } else { fanout::SUBSCRIBERS };
    let watchers = fanout::watchers(&api, "fanout-watcher", subscribers)?;
    for kind in ["run", "all"] {
        r.fanout.push(fanout::measure(
            &api,
            &server,
            &watchers,
            postgres,
            kind,
            subscribers,
            args.smoke,
        )?);
    }

    eprintln!("scale");
    let store = Store::connect(database_url, 2).map_err(err("connect the store"))?;
    let mut seeded = 2; // the two runs above
    for target in s.scale {
        let started = Instant::now();
        store
            .seed_runs(
                EDULIBRA_TEMPLATE_ID,
                target.saturating_sub(seeded),
                "Seeded",
            )
            .map_err(err("seed"))?;
        eprintln!(
            "seeded {} runs in {:.1?}",
            target.saturating_sub(seeded),
            started.elapsed()
        );
        seeded = target.max(seeded);
        let first_page = measure(
            s,
            &format!("{}/api/v1/runs", server.base),
            &token,
            READ_CONNECTIONS,
            None,
        )?;
        let filtered_page = measure(
            s,
            &format!(
                // Five rows, so the page is as full at 100 runs as at 10,000.
                "{}/api/v1/runs?status=completed&environment=staging&limit=5",
                server.base
            ),
            &token,
            READ_CONNECTIONS,
            None,
        )?;
        // Insights over two years (the longest period), one client: each answer's own time.
        let today = chrono::Utc::now().date_naive();
        let period = format!("from={}&to={today}", today - chrono::Duration::days(730));
        let delivery = measure(
            s,
            &format!("{}/api/v1/insights/delivery?{period}", server.base),
            &token,
            1,
            None,
        )?;
        let checklist = measure(
            s,
            &format!(
                "{}/api/v1/insights/checklist?template_id={EDULIBRA_TEMPLATE_ID}&{period}",
                server.base
            ),
            &token,
            1,
            None,
        )?;
        let items = count_items(&db)?;
        r.scale.push(ScalePoint {
            runs: target,
            items,
            first_page,
            filtered_page,
            delivery,
            checklist,
        });
    }
    drop(server);
    Ok(r)
}

/// Open event streams held at once by the memory step (16 per user, the per-user cap): as
/// many as the fan-out step's subscribers of one kind.
const STREAMS: usize = 200;

/// The server's resident memory with [`STREAMS`] event streams open, and a few seconds after
/// they closed: closed streams must give their memory back.
fn stream_memory(api: &Api, server: &Server, run_id: &str) -> BenchResult<(u64, u64)> {
    let tokens = fanout::watchers(api, "stream-watcher", STREAMS)?;
    let mut open = Vec::with_capacity(STREAMS);
    for i in 0..STREAMS {
        // One connection per stream, as browsers make them.
        let client = reqwest::blocking::Client::new();
        let res = client
            .get(format!("{}/api/v1/runs/{run_id}/events/stream", api.base))
            .bearer_auth(&tokens[i % tokens.len()])
            .send()
            .map_err(err("open a stream"))?;
        if !res.status().is_success() {
            return Err(format!("stream {i}: {}", res.status()));
        }
        open.push((client, res));
    }
    std::thread::sleep(Duration::from_secs(2));
    let with_streams = server.rss_kib();
    drop(open);
    std::thread::sleep(Duration::from_secs(3));
    Ok((with_streams, server.rss_kib()))
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

fn markdown(machine: &str, s: &Settings, results: &[BackendResult]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "Machine: {machine}.");
    let _ = writeln!(
        t,
        "Server: {SERVER_WORKERS} workers; wrk: {WRK_THREADS} thread, {READ_CONNECTIONS} connections for reads; {:?} warm-up, {:?} per measurement.\n",
        s.warmup, s.measure
    );
    let _ = writeln!(
        t,
        "| backend | measure | rate/s | p50 ms | p99 ms | vs floor |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|");
    for r in results {
        let b = &r.version;
        let row = |t: &mut String, what: &str, l: &Load, vs: String| {
            let errors = if l.errors > 0 {
                format!(" ({} errors)", l.errors)
            } else {
                String::new()
            };
            let _ = writeln!(
                t,
                "| {b} | {what}{errors} | {:.0} | {:.2} | {:.2} | {vs} |",
                l.requests_per_sec, l.p50_ms, l.p99_ms
            );
        };
        row(
            &mut t,
            &format!("read whole run (33 items, {} events)", r.events_in_read_run),
            &r.run_read,
            ratio(r.run_read.requests_per_sec, r.healthz.requests_per_sec),
        );
        row(&mut t, "floor: /healthz", &r.healthz, "1.00".into());
        for (writers, l) in &r.writes {
            row(
                &mut t,
                &format!("item PATCH, {writers} writer(s)"),
                l,
                ratio(l.requests_per_sec, r.raw_update_per_sec),
            );
        }
        let _ = writeln!(
            t,
            "| {b} | floor: raw diesel UPDATE transaction, 1 writer | {:.0} | | | 1.00 |",
            r.raw_update_per_sec
        );
        for p in &r.scale {
            row(
                &mut t,
                &format!("run list, first page of 50, {} runs", p.runs),
                &p.first_page,
                String::new(),
            );
            row(
                &mut t,
                &format!("run list, filtered page of 5, {} runs", p.runs),
                &p.filtered_page,
                String::new(),
            );
            row(
                &mut t,
                &format!(
                    "insights: delivery (DORA), 2 years, {} runs, 1 client",
                    p.runs
                ),
                &p.delivery,
                String::new(),
            );
            row(
                &mut t,
                &format!(
                    "insights: checklist analytics, 2 years, {} runs / {} items, 1 client",
                    p.runs, p.items
                ),
                &p.checklist,
                String::new(),
            );
        }
        if let [small, large] = &r.scale[..] {
            let _ = writeln!(
                t,
                "| {b} | list p50 growth {} → {} runs: first page ×{}, filtered ×{} | | | | |",
                small.runs,
                large.runs,
                ratio(large.first_page.p50_ms, small.first_page.p50_ms),
                ratio(large.filtered_page.p50_ms, small.filtered_page.p50_ms)
            );
        }
        let _ = writeln!(
            t,
            "| {b} | server RSS: idle {} MiB, after writes {} MiB, {STREAMS} streams open {} MiB, 3 s after they closed {} MiB | | | | |",
            r.rss_idle_kib / 1024,
            r.rss_after_writes_kib / 1024,
            r.rss_streams_open_kib / 1024,
            r.rss_streams_closed_kib / 1024
        );
    }
    let _ = writeln!(
        t,
        "\nPushed streams: one writer, each write's acknowledgement to its arrival at every subscriber; then the streams sit idle.\n"
    );
    let _ = writeln!(
        t,
        "| backend | stream | subscribers | writes | missing | p50 ms | p95 ms | p99 ms | idle CPU % | idle RSS MiB | idle DB tx/s (none open) |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        for f in &r.fanout {
            let db = match (f.idle_db_tx_per_sec, f.baseline_db_tx_per_sec) {
                (Some(idle), Some(base)) => format!("{idle:.1} ({base:.1})"),
                _ => "–".into(),
            };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {db} |",
                r.version,
                if f.stream == "run" {
                    "a run's"
                } else {
                    "all runs"
                },
                f.subscribers,
                f.writes,
                f.missing,
                f.p50_ms,
                f.p95_ms,
                f.p99_ms,
                f.idle_cpu_percent,
                f.idle_rss_kib / 1024
            );
        }
    }
    t
}
