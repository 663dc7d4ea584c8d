//! Who a client is: the socket peer's address, or, only when the peer is a trusted proxy
//! (`--trusted-proxies`), the nearest address in `X-Forwarded-For` (then `Forwarded`) that is not
//! itself a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap};

use super::Guard;

impl Guard {
    /// The client's address (see the module).
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
