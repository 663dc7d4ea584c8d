//! Who a client is. The address is the socket peer's, or, only when the peer is a trusted proxy
//! (`--trusted-proxies`), the nearest address in the forwarding headers that is not itself a
//! trusted proxy: `Forwarded` (RFC 7239) when present, else `X-Forwarded-For`. IPv4-mapped IPv6
//! addresses (`::ffff:10.0.0.5`, what a `[::]` listener sees) are their IPv4 address everywhere.
//!
//! Per-address limits count a [`ClientKey`]: an IPv4 address, or the IPv6 network an address is
//! in (`--ipv6-prefix-len`, /64 by default), because one host or home is routinely given a whole
//! /64 and could otherwise take a fresh budget per address.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::{header, HeaderMap};

use super::Guard;

/// What per-address limits count (see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    /// The address, with the host bits of an IPv6 one cleared.
    network: IpAddr,
    /// For IPv6, the prefix length that was kept.
    prefix: u8,
}

impl ClientKey {
    /// The key of `ip`, grouping IPv6 addresses by their first `v6_prefix` bits.
    pub fn new(ip: IpAddr, v6_prefix: u8) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self {
                network: IpAddr::V4(v4),
                prefix: 32,
            },
            IpAddr::V6(v6) => {
                let prefix = v6_prefix.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                Self {
                    network: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                    prefix,
                }
            }
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.network {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) if self.prefix == 128 => write!(f, "{v6}"),
            IpAddr::V6(v6) => write!(f, "{v6}/{}", self.prefix),
        }
    }
}

impl Guard {
    /// The key the limits count this client by (see the module).
    pub fn client_key(&self, peer: SocketAddr, headers: &HeaderMap) -> ClientKey {
        ClientKey::new(self.client_ip(peer, headers), self.settings.ipv6_prefix_len)
    }

    /// The client's address (see the module).
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip().to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut chain: Vec<IpAddr> = headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .filter_map(|part| part.trim().strip_prefix("for="))
            .filter_map(|s| parse_forwarded_for(s.trim_matches('"')))
            .collect();
        if chain.is_empty() {
            chain = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse().ok())
                .collect();
        }
        // Walk from the nearest hop outwards, past our own proxies.
        chain
            .into_iter()
            .map(|ip| ip.to_canonical())
            .rev()
            .find(|ip| !self.is_trusted(*ip))
            .unwrap_or(peer)
    }

    pub(super) fn is_trusted(&self, ip: IpAddr) -> bool {
        self.settings
            .trusted_proxies
            .iter()
            .any(|proxy| proxy.to_canonical() == ip)
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
