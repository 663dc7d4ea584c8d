//! What the HTTP side lets through. A request must carry a `Host` this server answers to (421
//! otherwise; see `guard/origin.rs`). Pages and API calls count against their client's request
//! budget (`--http-rate-limit-*`), and pages and history calls, which read up to a page of
//! messages each, against its history budget too (`--history-rate-limit-*`); past either: 429
//! with `Retry-After`. Static files, health checks and WebSocket upgrades (which have the join
//! budget) do not count.

use std::net::SocketAddr;
use std::time::Duration;

use app::protocol::JOIN_BACKLOG;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// What a request costs its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cost {
    /// Nothing: static files, health, WebSocket upgrades.
    Free,
    /// One request.
    Request,
    /// One request and a page of history.
    History,
}

fn cost(path: &str) -> Cost {
    let is_file = path
        .rsplit('/')
        .next()
        .is_some_and(|name| name.contains('.'));
    if is_file || matches!(path, "/healthz" | "/readyz" | "/metrics") || path.ends_with("/ws") {
        return Cost::Free;
    }
    if path.ends_with("/websocket") && path.starts_with("/api/room/") {
        return Cost::Free;
    }
    if path.starts_with("/r/") || path.starts_with("/api/history") {
        return Cost::History;
    }
    Cost::Request
}

/// The middleware.
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.guard.host_allowed(request.headers()) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "This server does not answer to that host name.",
        )
            .into_response();
    }
    let cost = cost(request.uri().path());
    if cost == Cost::Free {
        return next.run(request).await;
    }
    let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    else {
        return next.run(request).await;
    };
    let who = state.guard.client_key(peer, request.headers());
    let mut verdict = state.guard.check_request(who).await;
    if verdict.is_ok() && cost == Cost::History {
        verdict = state.guard.check_reads(who, JOIN_BACKLOG).await;
    }
    match verdict {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many(wait),
    }
}

fn too_many(wait: Duration) -> Response {
    let secs = u64::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        format!("Too many requests from your address; try again in {secs} s."),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_path_costs() {
        assert_eq!(cost("/pkg/palaver.abc.wasm"), Cost::Free);
        assert_eq!(cost("/favicon.svg"), Cost::Free);
        assert_eq!(cost("/readyz"), Cost::Free);
        assert_eq!(cost("/api/rooms/general/ws"), Cost::Free);
        assert_eq!(cost("/api/room/general/websocket"), Cost::Free);
        assert_eq!(cost("/r/general"), Cost::History);
        assert_eq!(cost("/api/history"), Cost::History);
        assert_eq!(cost("/"), Cost::Request);
        assert_eq!(cost("/api/room"), Cost::Request);
    }
}
