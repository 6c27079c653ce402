//! Configuration: one typed struct, every field a flag that also reads the environment.
//! Secrets are wrapped so they never print.

use clap::{Args, Parser, Subcommand};

/// A secret value: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The value itself: use it, never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// The version and the commit it was built from (`shipshape --version`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SHIPSHAPE_COMMIT"),
    ")"
);

/// Shipshape: deployment checklists and rollback decisions.
#[derive(Debug, Parser)]
#[command(name = "shipshape", version = VERSION, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings shared by every command.
    #[command(flatten)]
    pub config: Config,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the API, its documentation and the web app (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document and exit.
    Openapi,
    /// Add a made-up history of finished runs of the built-in template, so Insights has
    /// something to show (a demo; the runs are marked `seeded` in their logs).
    SeedDemo {
        /// How many runs.
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        runs: u32,
        /// Over the last how many days.
        #[arg(long, default_value_t = 182, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
    /// Copy a SQLite database to FILE while it is served (consistent: every write committed
    /// before the copy began is in it). For PostgreSQL use pg_dump, or export.
    Backup {
        /// The copy to make (must not exist).
        file: std::path::PathBuf,
    },
    /// Write everything (users, token hashes, templates, runs, logs, subscriptions, …) to
    /// FILE, from one consistent snapshot, for `import` on either backend.
    Export {
        /// The file to write (must not exist).
        file: std::path::PathBuf,
    },
    /// Read an export into the database (a new one: no users, templates or runs), in one
    /// transaction, verifying every log's hash chain before committing.
    Import {
        /// The export to read.
        file: std::path::PathBuf,
    },
    /// Tamper evidence of the stored logs.
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: AuditCommand,
    },
}

/// What `shipshape audit` does.
#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chains of every run's event log and of the audit log (or of one run's
    /// log), print each verdict, and exit non-zero on any break. Applies pending migrations
    /// first (which chain entries written before the logs were chained).
    Verify {
        /// Only this run.
        #[arg(long = "run", value_name = "RUN_ID")]
        run: Option<String>,
    },
}

/// The log's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// Settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_BIND",
        default_value = "127.0.0.1:8080"
    )]
    pub bind: String,
    /// Database: `sqlite://PATH` (default, created if missing) or `postgres://…`.
    #[arg(
        global = true,
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/shipshape.db",
        hide_env_values = true
    )]
    pub database_url: Secret,
    /// Secret that signs access tokens; when unset one is generated once and kept in the
    /// database, so tokens survive a restart.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secret: Option<Secret>,
    /// Password of the `admin` user created on first start; when unset one is generated and
    /// printed once.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: Option<Secret>,
    /// Lifetime of access tokens, in seconds.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_TOKEN_TTL_SECS",
        default_value_t = 3600
    )]
    pub token_ttl_secs: u64,
    /// HTTP worker threads (default: one per core).
    #[arg(global = true, long, env = "SHIPSHAPE_WORKERS")]
    pub workers: Option<usize>,
    /// Reverse proxies (comma-separated IP addresses) whose `X-Forwarded-For` names the real
    /// client; login throttling counts per client address. Without it, the peer address counts.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The built web app (a folder with `index.html`), served at `/`.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_WEB_DIR",
        default_value = "frontend/dist"
    )]
    pub web_dir: std::path::PathBuf,
    /// Database connections in the reader pool.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_DB_POOL_SIZE",
        default_value_t = 8
    )]
    pub db_pool_size: u32,
    /// Events the bus holds for a slow stream before that stream must re-read the log.
    #[arg(global = true, long, env = "SHIPSHAPE_BUS_CAPACITY", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub bus_capacity: u32,
    /// Addresses outbound requests (webhooks) may reach beyond public ones: comma-separated
    /// CIDRs (`10.20.0.0/16`, `127.0.0.1/32`) or host names. Loopback, private, link-local
    /// and cloud-metadata addresses are refused unless listed here.
    #[arg(global = true, long, env = "SHIPSHAPE_OUTBOUND_ALLOW")]
    pub outbound_allow: Option<String>,
    /// Whether outbound requests may reach public addresses; `false` limits them to what
    /// SHIPSHAPE_OUTBOUND_ALLOW lists (strict egress).
    #[arg(global = true, long, env = "SHIPSHAPE_OUTBOUND_PUBLIC", default_value_t = true, action = clap::ArgAction::Set)]
    pub outbound_public: bool,
    /// The address people open the web app at (e.g. `https://shipshape.example.com`), for
    /// links in chat messages and mail.
    #[arg(global = true, long, env = "SHIPSHAPE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Seconds an outbound request (a webhook delivery) may take before it counts as failed.
    #[arg(global = true, long, env = "SHIPSHAPE_WEBHOOK_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub webhook_timeout_secs: u64,
    /// Where mail is sent from: `smtp://user:password@host:587?tls=required` (STARTTLS),
    /// `smtps://…:465` (TLS) or `smtp://host:25` (plain, a local relay). Unset: no mail.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_SMTP_URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<Secret>,
    /// The sender of mail.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_MAIL_FROM",
        default_value = "Shipshape <shipshape@localhost>"
    )]
    pub mail_from: String,
    /// Seconds a burst of changes is gathered before one mail tells of it.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_MAIL_BATCH_SECS",
        default_value_t = 60
    )]
    pub mail_batch_secs: u64,
    /// The token a metrics scraper sends (`Authorization: Bearer …`) to read `GET /metrics`;
    /// unset, `/metrics` is not served.
    #[arg(
        global = true,
        long,
        env = "SHIPSHAPE_METRICS_TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<Secret>,
    /// The log's format: `text` (for a terminal) or `json` (one object per line).
    #[arg(global = true, long, env = "SHIPSHAPE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Waits between a delivery's attempts (the Standard Webhooks schedule; tests shorten it).
    #[arg(skip = shipshape_domain::webhook::RETRY_SCHEDULE.to_vec())]
    pub webhook_retry_schedule: Vec<std::time::Duration>,
    /// A subscription whose every attempt has failed for this long is deactivated.
    #[arg(skip = shipshape_domain::webhook::DISABLE_AFTER)]
    pub webhook_disable_after: std::time::Duration,
    /// The longest the scheduled-checks-and-deadlines worker sleeps before looking again
    /// (tests shorten it).
    #[arg(skip = std::time::Duration::from_secs(10))]
    pub schedule_poll: std::time::Duration,
}

impl Config {
    /// Settings for a test or tool: defaults, with the given database.
    pub fn for_database(database_url: &str) -> Self {
        Config {
            bind: "127.0.0.1:0".into(),
            database_url: Secret::new(database_url),
            jwt_secret: None,
            admin_password: None,
            token_ttl_secs: 3600,
            workers: Some(2),
            trusted_proxies: Vec::new(),
            web_dir: "frontend/dist".into(),
            db_pool_size: 4,
            bus_capacity: 4096,
            outbound_allow: None,
            outbound_public: true,
            public_url: None,
            webhook_timeout_secs: 10,
            smtp_url: None,
            mail_from: "Shipshape <shipshape@localhost>".into(),
            mail_batch_secs: 60,
            metrics_token: None,
            log_format: LogFormat::Text,
            webhook_retry_schedule: shipshape_domain::webhook::RETRY_SCHEDULE.to_vec(),
            webhook_disable_after: shipshape_domain::webhook::DISABLE_AFTER,
            schedule_poll: std::time::Duration::from_secs(10),
        }
    }
}
