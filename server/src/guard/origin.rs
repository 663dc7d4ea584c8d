//! Whether a page may open a WebSocket here: cross-site WebSocket hijacking is refused by the
//! `Origin` check on every upgrade (`--allowed-origins` adds origins besides the site's own).

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
