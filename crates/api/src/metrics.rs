//! The server's metrics, in the OpenMetrics text format Prometheus scrapes (`GET /metrics`):
//! requests by route template, method and status with their latencies; the database pools'
//! use and checkout waits; open event streams and how long the bus takes to push an event;
//! webhook deliveries; probe checks; runs by status.
//!
//! One [`Metrics`] per server instance (tests run several in one process). Counters and
//! histograms are recorded where things happen; gauges of state (pools, streams, runs) are
//! read when scraped.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use shipshape_domain::run::RunStatus;
use shipshape_store::Store;

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A request's labels: the route template (`/api/v1/runs/{run_id}`, never the path itself,
/// so that the number of series stays bounded), the method and the status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolStateLabels {
    pool: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

fn latency_buckets() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn wait_buckets() -> Histogram {
    // 0.1 ms to about 3 s (the checkout timeout).
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The metrics of one server instance.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pool_wait: Family<PoolLabels, Histogram, fn() -> Histogram>,
    pool_timeouts: Family<PoolLabels, Counter>,
    pool_connections: Family<PoolStateLabels, Gauge>,
    pool_max: Family<PoolLabels, Gauge>,
    streams: Gauge,
    bus_lag: Histogram,
    bus_events: Counter,
    deliveries: Family<OutcomeLabels, Counter>,
    probes: Family<OutcomeLabels, Counter>,
    runs: Family<StatusLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("shipshape");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_buckets,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer's headers, by route template, method and status",
            latency.clone(),
        );
        let pool_wait =
            Family::<PoolLabels, Histogram, fn() -> Histogram>::new_with_constructor(wait_buckets);
        registry.register(
            "db_pool_wait_seconds",
            "Time spent waiting for a database connection, by use (read or write)",
            pool_wait.clone(),
        );
        let pool_timeouts = Family::<PoolLabels, Counter>::default();
        registry.register(
            "db_pool_timeouts",
            "Waits for a database connection that ended without one, by use",
            pool_timeouts.clone(),
        );
        let pool_connections = Family::<PoolStateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections open, by pool and state (idle or in_use)",
            pool_connections.clone(),
        );
        let pool_max = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_max_connections",
            "The most connections a pool opens",
            pool_max.clone(),
        );
        let streams = Gauge::default();
        registry.register(
            "event_streams_open",
            "Event streams (server-sent events) open on this instance",
            streams.clone(),
        );
        let bus_lag = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "bus_lag_seconds",
            "Time from an event's commit to the bus pushing it to this instance's streams",
            bus_lag.clone(),
        );
        let bus_events = Counter::default();
        registry.register(
            "bus_events",
            "Events the bus pushed to this instance's streams",
            bus_events.clone(),
        );
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_delivery_attempts",
            "Webhook delivery attempts by this instance, by outcome (delivered or failed)",
            deliveries.clone(),
        );
        let probes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "probe_checks",
            "Probe checks made by this instance, by result (passed or failed)",
            probes.clone(),
        );
        let runs = Family::<StatusLabels, Gauge>::default();
        registry.register("runs", "Runs in the database, by status", runs.clone());
        Metrics {
            registry,
            requests,
            latency,
            pool_wait,
            pool_timeouts,
            pool_connections,
            pool_max,
            streams,
            bus_lag,
            bus_events,
            deliveries,
            probes,
            runs,
        }
    }

    /// Records an answered request.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let labels = RequestLabels {
            route: route.to_owned(),
            method: method.to_owned(),
            status,
        };
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Records a connection checkout.
    pub fn checkout(&self, pool: &'static str, waited: Duration, had: bool) {
        let labels = PoolLabels { pool: pool.into() };
        self.pool_wait
            .get_or_create(&labels)
            .observe(waited.as_secs_f64());
        if !had {
            self.pool_timeouts.get_or_create(&labels).inc();
        }
    }

    /// Records an event pushed by the bus, committed `lag` ago.
    pub fn pushed(&self, lag: Duration) {
        self.bus_events.inc();
        self.bus_lag.observe(lag.as_secs_f64());
    }

    /// Records a webhook delivery attempt.
    pub fn delivery(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Records a probe check's result.
    pub fn probe(&self, passed: bool) {
        let outcome = if passed { "passed" } else { "failed" };
        self.probes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Reads the gauges of state and writes every metric in the OpenMetrics text format
    /// (blocking: it counts runs in the database).
    pub fn render(
        &self,
        store: &Store,
        streams: usize,
    ) -> Result<String, shipshape_store::StoreError> {
        for p in store.pool_states() {
            let gauge = |state: &str| {
                self.pool_connections.get_or_create(&PoolStateLabels {
                    pool: p.pool.into(),
                    state: state.into(),
                })
            };
            gauge("idle").set(i64::from(p.idle));
            gauge("in_use").set(i64::from(p.connections.saturating_sub(p.idle)));
            self.pool_max
                .get_or_create(&PoolLabels {
                    pool: p.pool.into(),
                })
                .set(i64::from(p.max));
        }
        self.streams.set(i64::try_from(streams).unwrap_or(i64::MAX));
        let counts = store.runs_by_status()?;
        for status in RunStatus::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            self.runs
                .get_or_create(&StatusLabels {
                    status: status.as_str().into(),
                })
                .set(n);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| shipshape_store::StoreError::Config(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_template_and_the_histogram_holds_them() {
        let m = Metrics::new();
        m.request(
            "/api/v1/runs/{run_id}",
            "GET",
            200,
            Duration::from_millis(3),
        );
        m.request(
            "/api/v1/runs/{run_id}",
            "GET",
            200,
            Duration::from_millis(40),
        );
        m.request(
            "/api/v1/runs/{run_id}",
            "GET",
            404,
            Duration::from_millis(1),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap_or_default();
        assert!(out.contains(
            "shipshape_http_requests_total{route=\"/api/v1/runs/{run_id}\",method=\"GET\",status=\"200\"} 2"
        ), "{out}");
        assert!(out.contains(
            "shipshape_http_request_duration_seconds_count{route=\"/api/v1/runs/{run_id}\",method=\"GET\",status=\"404\"} 1"
        ), "{out}");
        assert!(out.ends_with("# EOF\n"));
    }
}
