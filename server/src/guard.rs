//! Defences at the door: who a client is (its IP, honouring forwarding headers only from trusted
//! proxies), whether its page may open a socket here (`Origin`), and how fast it may post (a per-IP
//! GCRA rate limit shared by every room and both protocols).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::redis_store::{RedisStore, SharedRateLimit};

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

/// Why a connection was refused before its upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefused {
    /// This address already has `max_connections_per_ip` open.
    PerAddress,
    /// The server already has `max_connections` open.
    ServerFull,
}

/// One open connection, counted until dropped.
pub struct ConnectionPermit {
    counts: Arc<ConnectionCounts>,
    ip: IpAddr,
}

#[derive(Default)]
struct ConnectionCounts {
    by_ip: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut by_ip = self
            .counts
            .by_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// Shared by every session; cheap to clone.
#[derive(Clone)]
pub struct Guard {
    settings: Arc<GuardSettings>,
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
    connections: Arc<ConnectionCounts>,
    /// The rate limit shared by every node (Redis engine), used before the local one.
    shared: Option<SharedRateLimit>,
}

impl Guard {
    /// Builds the guard and starts the sweeper, which stops with `shutdown`.
    pub fn new(settings: GuardSettings, shutdown: CancellationToken) -> Self {
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
            settings: Arc::new(settings),
            limiter,
            clock: DefaultClock::default(),
            connections: Arc::default(),
            shared: None,
        }
    }

    /// Counts posts in Redis, so an address has one budget across every node.
    pub fn with_shared_rate_limit(mut self, redis: &RedisStore) -> Self {
        self.shared = Some(redis.rate_limit(self.settings.interval, self.settings.burst.get()));
        self
    }

    /// Counts one post from `ip`. `Err` says how long until it may post again.
    ///
    /// With a shared engine the budget is the address's across every node, kept in Redis. If
    /// Redis does not answer in time, this node's own limiter decides (posts are refused anyway
    /// while storage is down, so this only matters while Redis is slow).
    pub async fn check_post(&self, ip: IpAddr) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            match shared.check(ip).await {
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

    /// Counts a new connection from `ip`, or refuses it. The map holds only addresses with open
    /// connections, so it is bounded by `max_connections`.
    pub fn open_connection(&self, ip: IpAddr) -> Result<ConnectionPermit, ConnectionRefused> {
        let mut by_ip = self
            .connections
            .by_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let total: usize = by_ip.values().sum();
        if total >= self.settings.max_connections {
            return Err(ConnectionRefused::ServerFull);
        }
        let mine = by_ip.entry(ip).or_default();
        if *mine >= self.settings.max_connections_per_ip {
            return Err(ConnectionRefused::PerAddress);
        }
        *mine += 1;
        Ok(ConnectionPermit {
            counts: self.connections.clone(),
            ip,
        })
    }

    /// Addresses currently tracked by the rate limiter.
    pub fn tracked_addresses(&self) -> usize {
        self.limiter.len()
    }

    /// The client's address: the socket peer, or, only when the peer is a trusted proxy, the
    /// nearest address in `X-Forwarded-For` (then `Forwarded`) that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip();
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut chain: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        if chain.is_empty() {
            chain = headers
                .get_all(header::FORWARDED)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split([',', ';']))
                .filter_map(|part| part.trim().strip_prefix("for="))
                .filter_map(|s| parse_forwarded_for(s.trim_matches('"')))
                .collect();
        }
        // Walk from the nearest hop outwards, past our own proxies.
        chain
            .into_iter()
            .rev()
            .find(|ip| !self.is_trusted(*ip))
            .unwrap_or(peer)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.settings.trusted_proxies.contains(&ip)
    }

    /// Whether a WebSocket upgrade with these headers may proceed. Browsers always send `Origin`
    /// on WebSocket upgrades, so a missing one is a non-browser client, which cannot be used for
    /// cross-site WebSocket hijacking; a present one must be the site's own or allowed.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return true;
        };
        let origin = origin.trim_end_matches('/');
        if self
            .settings
            .allowed_origins
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        // Same origin: the Origin's host[:port] equals the Host the request was sent to.
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
    }
}

/// `for=` values: `192.0.2.1`, `"[2001:db8::1]:4711"`, `192.0.2.1:80`.
fn parse_forwarded_for(value: &str) -> Option<IpAddr> {
    if let Ok(ip) = value.parse() {
        return Some(ip);
    }
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    value.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(trusted: &[&str], allowed: &[&str]) -> Guard {
        Guard::new(
            GuardSettings {
                burst: NonZeroU32::new(3).unwrap(),
                interval: Duration::from_secs(10),
                trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
                allowed_origins: allowed.iter().map(|a| a.to_string()).collect(),
                max_connections_per_ip: 2,
                max_connections: 3,
            },
            CancellationToken::new(),
        )
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[tokio::test]
    async fn forwarding_headers_count_only_from_trusted_proxies() {
        let g = guard(&["10.0.0.1"], &[]);
        let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
        let stranger: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        assert_eq!(
            g.client_ip(stranger, &forged),
            stranger.ip(),
            "forged header ignored"
        );
        let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let chain = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.1")]);
        assert_eq!(
            g.client_ip(proxy, &chain),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let fwd = headers(&[("forwarded", r#"for="[2001:db8::1]:4711";proto=https"#)]);
        assert_eq!(
            g.client_ip(proxy, &fwd),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            g.client_ip(proxy, &HeaderMap::new()),
            proxy.ip(),
            "no header: the proxy itself"
        );
    }

    #[tokio::test]
    async fn origins() {
        let g = guard(&[], &["https://chat.example.org"]);
        let same = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        assert!(g.origin_allowed(&same));
        let allowed = headers(&[
            ("host", "internal:3000"),
            ("origin", "https://chat.example.org"),
        ]);
        assert!(g.origin_allowed(&allowed));
        let evil = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!g.origin_allowed(&evil));
        assert!(
            g.origin_allowed(&headers(&[("host", "127.0.0.1:3000")])),
            "no Origin: not a browser"
        );
    }

    #[tokio::test]
    async fn connections_are_capped_per_address_and_in_total() {
        let g = guard(&[], &[]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = g.open_connection(a).unwrap();
        let _a2 = g.open_connection(a).unwrap();
        assert_eq!(
            g.open_connection(a).err(),
            Some(ConnectionRefused::PerAddress)
        );
        let _b1 = g.open_connection(b).unwrap();
        assert_eq!(
            g.open_connection(b).err(),
            Some(ConnectionRefused::ServerFull)
        );
        drop(a1);
        assert!(
            g.open_connection(b).is_ok(),
            "a closed connection frees its place"
        );
    }

    #[tokio::test]
    async fn burst_then_wait() {
        let g = guard(&[], &[]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(g.check_post(ip).await.is_ok());
        }
        let wait = g.check_post(ip).await.unwrap_err();
        assert!(
            wait > Duration::from_secs(8) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(
            g.check_post("192.0.2.2".parse().unwrap()).await.is_ok(),
            "other addresses unaffected"
        );
    }
}
