//! Defences at the door, shared by every session of both protocols:
//!
//! - `address.rs`: who a client is (its IP, honouring forwarding headers only from trusted
//!   proxies);
//! - `origin.rs`: whether its page may open a socket here (`Origin`);
//! - `connections.rs`: how many sockets an address, and the server, may have open;
//! - `rate_limit.rs`: how fast an address may join and post.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::SharedRateLimit;

mod address;
mod connections;
mod origin;
mod rate_limit;
#[cfg(test)]
mod tests;

pub use connections::{ConnectionPermit, ConnectionRefused};
pub use rate_limit::Budget;
use rate_limit::Limit;

/// How often idle rate-limit entries are dropped.
const RATE_LIMIT_SWEEP: Duration = Duration::from_secs(30);

/// Settings for the guards (from `Config`).
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Messages an address may post (`--rate-limit-burst`, `--rate-limit-interval-ms`).
    pub posts: Budget,
    /// WebSocket connections an address may open (`--join-rate-limit-*`).
    pub joins: Budget,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins allowed to open WebSockets besides the site's own (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    /// Open WebSockets one address may have at once.
    pub max_connections_per_ip: usize,
    /// Open WebSockets the server accepts at once.
    pub max_connections: usize,
}

/// Shared by every session; cheap to clone.
#[derive(Clone)]
pub struct Guard {
    settings: Arc<GuardSettings>,
    posts: Arc<Limit>,
    joins: Arc<Limit>,
    connections: connections::Connections,
    /// The budgets shared by every node (engines that nodes share), asked before the local ones.
    shared: Option<Arc<dyn SharedRateLimit>>,
}

impl Guard {
    /// Builds the guard and starts the sweeper, which stops with `shutdown`. With `shared`,
    /// budgets are kept in the engine, across every node.
    pub fn new(
        settings: GuardSettings,
        shared: Option<Arc<dyn SharedRateLimit>>,
        shutdown: CancellationToken,
    ) -> Self {
        let posts = Arc::new(Limit::new("post", settings.posts));
        let joins = Arc::new(Limit::new("join", settings.joins));
        let sweep = [Arc::downgrade(&posts), Arc::downgrade(&joins)];
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RATE_LIMIT_SWEEP);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                for limit in &sweep {
                    match limit.upgrade() {
                        Some(limit) => limit.sweep(),
                        None => return,
                    }
                }
            }
        });
        Self {
            connections: connections::Connections::new(
                settings.max_connections_per_ip,
                settings.max_connections,
            ),
            settings: Arc::new(settings),
            posts,
            joins,
            shared,
        }
    }

    /// Counts one post from `ip`. `Err` says how long until it may post again.
    pub async fn check_post(&self, ip: IpAddr) -> Result<(), Duration> {
        self.posts.spend(ip, self.shared.as_ref()).await
    }

    /// Counts one join (a new WebSocket connection) from `ip`. `Err` says how long until it may
    /// connect again.
    pub async fn check_join(&self, ip: IpAddr) -> Result<(), Duration> {
        self.joins.spend(ip, self.shared.as_ref()).await
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub fn open_connection(&self, ip: IpAddr) -> Result<ConnectionPermit, ConnectionRefused> {
        self.connections.open(ip)
    }
}
