//! The opening handshake (RFC 6455 §4.2): an extractor that checks a request is a WebSocket
//! upgrade, and the `101 Switching Protocols` answer with the connection it hands over.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

/// A request to open a WebSocket (HTTP/1.1 `GET` with `Upgrade: websocket`, version 13).
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a WebSocket upgrade (the same answers axum's own extractor gives).
#[derive(Debug, thiserror::Error)]
pub enum NotWebSocket {
    #[error("Request method must be `GET`")]
    MethodNotGet,
    #[error("Connection header did not include 'upgrade'")]
    ConnectionHeader,
    #[error("`Upgrade` header did not include 'websocket'")]
    UpgradeHeader,
    #[error("`Sec-WebSocket-Version` header did not include '13'")]
    VersionHeader,
    #[error("`Sec-WebSocket-Key` header missing")]
    KeyMissing,
    #[error("WebSocket request couldn't be upgraded since no upgrade state was present")]
    NotUpgradable,
}

impl IntoResponse for NotWebSocket {
    fn into_response(self) -> Response {
        let status = match self {
            NotWebSocket::MethodNotGet => StatusCode::METHOD_NOT_ALLOWED,
            NotWebSocket::NotUpgradable => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotWebSocket;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NotWebSocket> {
        let headers = &parts.headers;
        if parts.method != Method::GET {
            return Err(NotWebSocket::MethodNotGet);
        }
        if !header_has_token(headers, header::CONNECTION, "upgrade") {
            return Err(NotWebSocket::ConnectionHeader);
        }
        if !header_is(headers, header::UPGRADE, "websocket") {
            return Err(NotWebSocket::UpgradeHeader);
        }
        if !header_is(headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return Err(NotWebSocket::VersionHeader);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(NotWebSocket::KeyMissing)?
            .clone();
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotWebSocket::NotUpgradable)?;
        Ok(Upgrade { key, on_upgrade })
    }
}

/// The upgraded connection, once the `101` has gone out.
pub type Connection = TokioIo<Upgraded>;

impl Upgrade {
    /// The `101` to answer with, and the connection it turns into (`None` if the client went
    /// before the switch).
    pub fn accept(
        self,
    ) -> (
        Response,
        impl std::future::Future<Output = Option<Connection>> + Send + 'static,
    ) {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        let on_upgrade = self.on_upgrade;
        (
            response,
            async move { on_upgrade.await.ok().map(TokioIo::new) },
        )
    }
}

/// Whether `name` is `value` (ASCII case ignored).
fn header_is(headers: &HeaderMap, name: header::HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

/// Whether the comma-separated `name` lists `token` (ASCII case ignored).
fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}
