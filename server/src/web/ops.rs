//! What operators and load balancers ask: `GET /healthz` (the process is alive), `GET /readyz`
//! (it can take traffic: storage takes writes and it is not shutting down) and `GET /metrics`
//! (Prometheus text format; on `--metrics-bind` instead when that is set).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tracing::warn;

use super::AppState;

/// `/healthz` and `/readyz`.
pub fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// `/metrics`.
pub fn metrics_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Why the server should not get new traffic now, if it should not.
pub async fn unready_reason(state: &AppState) -> Option<&'static str> {
    if state.draining.is_cancelled() || state.shutdown.is_cancelled() {
        return Some("draining: shutting down");
    }
    if let Err(e) = state.rooms.history().check().await {
        warn!(error = %e, "readiness check: storage unavailable");
        return Some("storage unavailable");
    }
    None
}

async fn readyz(State(state): State<AppState>) -> Response {
    match unready_reason(&state).await {
        None => "ready\n".into_response(),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.rooms.set(state.rooms.active_count() as i64);
    // The write probe (its outcome is kept a second, so scrapes cost little).
    let writable = state.rooms.history().check().await.is_ok();
    state.metrics.storage_writable.set(i64::from(writable));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::config::Config;
    use crate::engine::memory::FlakyStore;
    use crate::engine::Engine;

    fn state(store: Arc<FlakyStore>) -> AppState {
        crate::server::app_state(
            &Config::defaults(),
            Engine::in_memory(store),
            CancellationToken::new(),
        )
        .expect("default site settings")
    }

    #[tokio::test]
    async fn unready_when_storage_fails_or_while_draining() {
        let store = Arc::new(FlakyStore::default());
        let state = state(store.clone());
        assert_eq!(unready_reason(&state).await, None);

        store.down.store(true, Ordering::SeqCst);
        assert_eq!(unready_reason(&state).await, Some("storage unavailable"));
        store.down.store(false, Ordering::SeqCst);
        assert_eq!(unready_reason(&state).await, None, "ready again by itself");

        state.draining.cancel();
        assert_eq!(
            unready_reason(&state).await,
            Some("draining: shutting down")
        );
    }
}
