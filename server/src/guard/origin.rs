//! Whether a page may talk to this server. With `--public-origin` set (the address people use,
//! scheme included), a WebSocket's `Origin` must be one of those origins (or `--allowed-origins`),
//! and every request's `Host` must be one of their hosts (or `--allowed-hosts`): a page on another
//! site cannot open sockets here, and a site that rebinds its DNS name to this server's address
//! is refused, because its requests carry its own name as `Host`. Without `--public-origin` (a
//! development default), an `Origin` must name the host the request was sent to, and any `Host`
//! is accepted.

use axum::http::{header, HeaderMap};

use super::Guard;

impl Guard {
    /// Whether a WebSocket upgrade with these headers may proceed. Browsers always send `Origin`
    /// on WebSocket upgrades, so a missing one is a non-browser client, which cannot be used for
    /// cross-site WebSocket hijacking; a present one must be the site's own or allowed.
    pub fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
            return true;
        };
        let origin = origin.trim_end_matches('/');
        let listed = |list: &[String]| {
            list.iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
        };
        if listed(&self.settings.allowed_origins) {
            return true;
        }
        if !self.settings.public_origins.is_empty() {
            return listed(&self.settings.public_origins);
        }
        // Same origin, as far as can be told without knowing the public address: the Origin's
        // host[:port] equals the Host the request was sent to.
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
    }

    /// Whether a request with these headers was meant for this server (see the module). Requests
    /// without `Host` (HTTP/1.0) are let through when no list is set, refused otherwise.
    pub fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let hosts = &self.settings.allowed_hosts;
        if hosts.is_empty() {
            return true;
        }
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// The `host[:port]` of an origin (`https://chat.example.org:8443` → `chat.example.org:8443`).
pub fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin
        .trim_end_matches('/')
        .split_once("://")
        .map(|(_, rest)| rest)?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}
