//! Defences at the door, shared by every session of both protocols:
//!
//! - `address.rs`: who a client is (its IP, honouring forwarding headers only from trusted
//!   proxies);
//! - `origin.rs`: whether its page may open a socket here (`Origin`);
//! - `connections.rs`: how many sockets an address, and the server, may have open;
//! - here: how fast an address may post (a per-IP GCRA rate limit across every room, kept in the
//!   engine when nodes share one, so an address has one budget across every node).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::engine::SharedRateLimit;

mod address;
mod connections;
mod origin;
#[cfg(test)]
mod tests;

pub use connections::{ConnectionPermit, ConnectionRefused};

/// How often idle rate-limit entries are dropped, which keeps the key store bounded by the number
/// of addresses active within one refill period.
const RATE_LIMIT_SWEEP: Duration = Duration::from_secs(30);

/// Settings for the guards (from `Config`).
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Messages an address may post at once before the sustained rate applies.
    pub burst: NonZeroU32,
    /// Sustained rate: one message per this long, per address.
    pub interval: Duration,
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
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
    connections: connections::Connections,
    /// The rate limit shared by every node (engines that nodes share), asked before the local one.
    shared: Option<Arc<dyn SharedRateLimit>>,
}

impl Guard {
    /// Builds the guard and starts the sweeper, which stops with `shutdown`. With `shared`, posts
    /// are counted in the engine, across every node.
    pub fn new(
        settings: GuardSettings,
        shared: Option<Arc<dyn SharedRateLimit>>,
        shutdown: CancellationToken,
    ) -> Self {
        let quota = Quota::with_period(settings.interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(settings.burst);
        let limiter = Arc::new(RateLimiter::keyed(quota));
        let sweep = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RATE_LIMIT_SWEEP);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                let Some(limiter) = sweep.upgrade() else {
                    return;
                };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
        Self {
            connections: connections::Connections::new(
                settings.max_connections_per_ip,
                settings.max_connections,
            ),
            settings: Arc::new(settings),
            limiter,
            clock: DefaultClock::default(),
            shared,
        }
    }

    /// Counts one post from `ip`. `Err` says how long until it may post again.
    ///
    /// With a shared budget, if the engine does not answer in time, this node's own limiter
    /// decides (posts are refused anyway while storage is down, so this only matters while the
    /// engine is slow).
    pub async fn check_post(&self, ip: IpAddr) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            let (interval, burst) = (self.settings.interval, self.settings.burst.get());
            match shared.check_post(ip, interval, burst).await {
                Ok(verdict) => return verdict,
                Err(e) => {
                    tracing::debug!(error = %e, "shared rate limit unavailable; deciding locally")
                }
            }
        }
        self.limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub fn open_connection(&self, ip: IpAddr) -> Result<ConnectionPermit, ConnectionRefused> {
        self.connections.open(ip)
    }

    /// Addresses currently tracked by the rate limiter.
    pub fn tracked_addresses(&self) -> usize {
        self.limiter.len()
    }
}
