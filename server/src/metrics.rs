//! What the server counts, exposed at `GET /metrics` in the Prometheus/OpenMetrics text format
//! (the `prometheus-client` crate writes it). Every handle is cheap to update from any task.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Why a message was not accepted.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Rejection {
    /// The per-IP rate limit.
    RateLimited,
    /// It broke a rule: empty, too long, bad client id.
    Invalid,
    /// Storage failed; the client retries.
    Unavailable,
    /// The sender may not post there (a guest where only verified people post, a read-only room).
    Forbidden,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    reason: Rejection,
}

/// What happened to a reader that fell behind.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum SlowConsumer {
    /// It fell out of the room's live buffer and caught up from storage.
    CaughtUp,
    /// It took no frame within the write timeout and was disconnected.
    Disconnected,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlowConsumerLabels {
    outcome: SlowConsumer,
}

/// All of the server's metrics. Shared as `Arc<Metrics>`.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections (both protocols).
    pub connections: Gauge,
    /// Rooms with a running task (in memory).
    pub rooms: Gauge,
    /// Rooms not opened because the node had `--max-rooms` open.
    pub rooms_refused: Counter,
    /// WebSocket upgrades refused by the per-address join rate limit.
    pub joins_refused: Counter,
    /// Messages durably stored and acknowledged.
    pub accepted: Counter,
    rejected: Family<RejectionLabels, Counter>,
    /// Chat messages written to sockets (one per message per reader).
    pub deliveries: Counter,
    slow_consumers: Family<SlowConsumerLabels, Counter>,
    /// Time from handing a batch to storage until it is durable.
    pub commit_seconds: Histogram,
    /// Time from a message's commit until it is written to a reader's socket.
    pub fanout_seconds: Histogram,
    /// Rooms that cannot reach their storage right now (refusing sends, probing).
    pub rooms_degraded: Gauge,
    /// Whether storage took the write probe at the last scrape (0: full, or unreachable).
    pub storage_writable: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("palaver"),
            connections: Gauge::default(),
            rooms: Gauge::default(),
            rooms_refused: Counter::default(),
            joins_refused: Counter::default(),
            accepted: Counter::default(),
            rejected: Family::default(),
            deliveries: Counter::default(),
            slow_consumers: Family::default(),
            // 100 µs .. ~1.6 s
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            // 50 µs .. ~0.8 s
            fanout_seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 15)),
            rooms_degraded: Gauge::default(),
            storage_writable: Gauge::default(),
        };
        metrics.registry.register(
            "connections",
            "Open WebSocket connections",
            metrics.connections.clone(),
        );
        metrics.registry.register(
            "rooms_active",
            "Rooms loaded in memory",
            metrics.rooms.clone(),
        );
        metrics.registry.register(
            "rooms_refused",
            "Rooms not opened because this node had --max-rooms open",
            metrics.rooms_refused.clone(),
        );
        metrics.registry.register(
            "joins_refused",
            "Connections refused by the per-address join rate limit",
            metrics.joins_refused.clone(),
        );
        metrics.registry.register(
            "messages_accepted",
            "Messages stored and acknowledged",
            metrics.accepted.clone(),
        );
        metrics.registry.register(
            "messages_rejected",
            "Messages not accepted, by reason",
            metrics.rejected.clone(),
        );
        metrics.registry.register(
            "deliveries",
            "Chat messages written to readers' sockets",
            metrics.deliveries.clone(),
        );
        metrics.registry.register(
            "slow_consumers",
            "Readers that fell behind, by outcome",
            metrics.slow_consumers.clone(),
        );
        metrics.registry.register(
            "storage_commit_seconds",
            "Time to make a batch of messages durable",
            metrics.commit_seconds.clone(),
        );
        metrics.registry.register(
            "fanout_seconds",
            "Time from a message's commit to its write to a reader",
            metrics.fanout_seconds.clone(),
        );
        metrics.registry.register(
            "rooms_degraded",
            "Rooms that cannot reach their storage (refusing messages until it is back)",
            metrics.rooms_degraded.clone(),
        );
        metrics.registry.register(
            "storage_writable",
            "Whether storage took a write probe at this scrape (0: full disk, Redis out of memory, or unreachable)",
            metrics.storage_writable.clone(),
        );
        metrics.registry.register(
            "build",
            "Build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        metrics
    }

    pub fn rejected(&self, reason: Rejection) {
        self.rejected
            .get_or_create(&RejectionLabels { reason })
            .inc();
    }

    pub fn slow_consumer(&self, outcome: SlowConsumer) {
        self.slow_consumers
            .get_or_create(&SlowConsumerLabels { outcome })
            .inc();
    }

    pub fn observe_commit(&self, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Shared handle.
pub type SharedMetrics = Arc<Metrics>;
