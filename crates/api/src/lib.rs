//! Shipshape's HTTP API: actix-web handlers, authentication, the error mapping to
//! `application/problem+json`, the OpenAPI document and the server set-up. It depends on the
//! store and domain crates; handlers stay thin — extract, call the store, map the result.

pub mod auth;
pub mod bus;
pub mod cache;
pub mod config;
pub mod deliver;
pub mod error;
pub mod idempotency;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod probe;
mod routes;
pub mod server;
pub mod throttle;
pub mod transfer;
pub mod verify;
pub mod web;

use shipshape_store::Store;

/// Shared state of every worker.
#[derive(Debug)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Token keys.
    pub keys: auth::TokenKeys,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// This instance's bus: pushes committed events to its open streams.
    pub bus: std::sync::Arc<bus::Bus>,
    /// Whether mail is configured (`SHIPSHAPE_SMTP_URL`).
    pub mail_enabled: bool,
    /// The web app's public address, for links (`SHIPSHAPE_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// The guard every outbound request passes (webhook targets are vetted with it too).
    pub outbound: outbound::Guard,
    /// The token that reads `GET /metrics` (`SHIPSHAPE_METRICS_TOKEN`).
    pub metrics_token: Option<config::Secret>,
    /// The server secret idempotent answers are encrypted with (with the client's key).
    pub idempotency_secret: Vec<u8>,
    /// Bounds concurrent password hashing (each takes ~19 MiB and a core for a while).
    pub hashing: tokio::sync::Semaphore,
}
