//! Defences at the door, shared by every session of both protocols:
//!
//! - `address.rs`: who a client is (its IP, honouring forwarding headers only from trusted
//!   proxies), and the [`ClientKey`] every per-address limit counts (IPv6 by network);
//! - `origin.rs`: whether a page may talk to this server (`Origin`, `Host`);
//! - `connections.rs`: how many sockets a client, and the server, may have open;
//! - `rate_limit.rs`: how fast a client may join, post, load pages and read history.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::{SharedConnections, SharedRateLimit};

mod address;
mod connections;
mod origin;
mod rate_limit;
mod slow;
#[cfg(test)]
mod tests;
mod users;

pub use address::ClientKey;
pub use connections::{ConnectionPermit, ConnectionRefused};
pub use origin::origin_host;
pub use rate_limit::Budget;
use rate_limit::Limit;
use users::UserConnections;
pub use users::UserPermit;

/// How often idle rate-limit entries are dropped.
const RATE_LIMIT_SWEEP: Duration = Duration::from_secs(30);

/// Settings for the guards (from `Config`).
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// Messages an address may post (`--rate-limit-burst`, `--rate-limit-interval-ms`).
    pub posts: Budget,
    /// Messages a verified user may post (`--user-rate-limit-*`).
    pub user_posts: Budget,
    /// Open WebSockets of one verified user, every node's together; 0: no limit.
    pub max_connections_per_user: usize,
    /// WebSocket connections an address may open (`--join-rate-limit-*`).
    pub joins: Budget,
    /// Requests for pages and the API (`--http-rate-limit-*`).
    pub requests: Budget,
    /// History messages read, by catch-up and pages (`--history-rate-limit-*`).
    pub reads: Budget,
    /// IPv6 addresses count by their network of this many bits (`--ipv6-prefix-len`).
    pub ipv6_prefix_len: u8,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins allowed to open WebSockets besides the site's own (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    /// The site's own origins, scheme included (`--public-origin`); empty in development.
    pub public_origins: Vec<String>,
    /// `Host` values requests may carry: the public origins' hosts and `--allowed-hosts`; empty:
    /// any.
    pub allowed_hosts: Vec<String>,
    /// Open WebSockets one address may have at once.
    pub max_connections_per_ip: usize,
    /// Open WebSockets the server accepts at once.
    pub max_connections: usize,
    /// Open TCP connections (pages, API, WebSockets) one client may have; trusted proxies are
    /// exempt.
    pub max_http_connections_per_ip: usize,
}

/// Shared by every session; cheap to clone.
#[derive(Clone)]
pub struct Guard {
    settings: Arc<GuardSettings>,
    posts: Arc<Limit>,
    /// Posts by verified user, counted as `user:<sub>`.
    user_posts: Arc<Limit<String>>,
    users: Arc<UserConnections>,
    /// Slow mode's last posts, when no shared engine keeps them.
    slow: Arc<slow::SlowMode>,
    joins: Arc<Limit>,
    requests: Arc<Limit>,
    reads: Arc<Limit>,
    connections: connections::Connections,
    /// Every TCP connection, counted from accept to close.
    tcp: connections::Connections,
    /// The budgets shared by every node (engines that nodes share), asked before the local ones.
    shared: Option<Arc<dyn SharedRateLimit>>,
}

impl Guard {
    /// Builds the guard and starts the sweeper, which stops with `shutdown`. With `shared`,
    /// budgets are kept in the engine, across every node.
    pub fn new(
        settings: GuardSettings,
        shared: Option<Arc<dyn SharedRateLimit>>,
        shared_connections: Option<Arc<dyn SharedConnections>>,
        shutdown: CancellationToken,
    ) -> Self {
        let posts = Arc::new(Limit::new("post", settings.posts));
        let user_posts = Arc::new(Limit::new("user-post", settings.user_posts));
        let users = Arc::new(UserConnections::new(
            settings.max_connections_per_user,
            shared_connections,
        ));
        tokio::spawn(users.clone().renew_until(shutdown.clone()));
        let sweep_users = Arc::downgrade(&user_posts);
        let joins = Arc::new(Limit::new("join", settings.joins));
        let requests = Arc::new(Limit::new("http", settings.requests));
        let reads = Arc::new(Limit::new("read", settings.reads));
        let sweep = [&posts, &joins, &requests, &reads].map(Arc::downgrade);
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
                if let Some(limit) = sweep_users.upgrade() {
                    limit.sweep();
                }
            }
        });
        Self {
            connections: connections::Connections::new(
                settings.max_connections_per_ip,
                settings.max_connections,
            ),
            tcp: connections::Connections::new(settings.max_http_connections_per_ip, usize::MAX),
            settings: Arc::new(settings),
            posts,
            user_posts,
            users,
            slow: Arc::default(),
            joins,
            requests,
            reads,
            shared,
        }
    }

    /// Counts one post. `Err` says how long until the client may post again.
    pub async fn check_post(&self, who: ClientKey) -> Result<(), Duration> {
        self.posts.spend(&who, 1, self.shared.as_ref()).await
    }

    /// Counts one post by verified user `sub` (besides their address's). `Err` says how long
    /// until they may post again.
    pub async fn check_user_post(&self, sub: &str) -> Result<(), Duration> {
        let key = format!("user:{sub}");
        self.user_posts.spend(&key, 1, self.shared.as_ref()).await
    }

    /// Spends `who`'s one message per `interval` in `room` (slow mode): `Err` says how long until
    /// they may post there again. One budget across every node with a shared engine.
    pub async fn check_slow_mode(
        &self,
        room: &str,
        who: &str,
        interval: Duration,
    ) -> Result<(), Duration> {
        let key = format!("{room}|{who}");
        if let Some(shared) = &self.shared {
            if let Ok(verdict) = shared.spend("slow", &key, interval, 1, 1).await {
                return verdict;
            }
        }
        self.slow.spend(key, interval)
    }

    /// Counts a WebSocket of verified user `sub`, or refuses it (`None`) at
    /// `--max-connections-per-user`.
    pub async fn open_user_connection(&self, sub: &str) -> Option<UserPermit> {
        self.users.open(sub).await
    }

    /// Counts one join (a new WebSocket connection). `Err` says how long until the client may
    /// connect again.
    pub async fn check_join(&self, who: ClientKey) -> Result<(), Duration> {
        self.joins.spend(&who, 1, self.shared.as_ref()).await
    }

    /// Counts one request for a page or the API.
    pub async fn check_request(&self, who: ClientKey) -> Result<(), Duration> {
        self.requests.spend(&who, 1, self.shared.as_ref()).await
    }

    /// Counts `messages` of history read (at most the burst at once).
    pub async fn check_reads(&self, who: ClientKey, messages: usize) -> Result<(), Duration> {
        let cost = u32::try_from(messages).unwrap_or(u32::MAX);
        self.reads.spend(&who, cost, self.shared.as_ref()).await
    }

    /// Counts a newly accepted TCP connection from `peer` (the socket's, before any header is
    /// read), or refuses it: `None` when that address already has as many open as it may.
    pub fn open_tcp(&self, peer: std::net::SocketAddr) -> Option<ConnectionPermit> {
        let ip = peer.ip().to_canonical();
        let key = ClientKey::new(ip, self.settings.ipv6_prefix_len);
        if self.is_trusted(ip) {
            self.tcp.open_uncapped(key).ok()
        } else {
            self.tcp.open(key).ok()
        }
    }

    /// Counts a new WebSocket from the client, or refuses it.
    pub fn open_connection(&self, who: ClientKey) -> Result<ConnectionPermit, ConnectionRefused> {
        self.connections.open(who)
    }
}
