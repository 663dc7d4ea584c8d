//! The HTTP side: what every handler can reach ([`AppState`]) and the router — pages (Leptos),
//! the two WebSocket protocols, health and metrics, static files — with the headers every
//! response carries.
//!
//! - `site.rs`: the static files, from the binary or a folder; `assets.rs`: `Cache-Control` by
//!   asset kind;
//! - `history.rs`: the pages' history source, read from the engine;
//! - `ops.rs`: `/healthz`, `/readyz`, `/metrics`;
//! - `account.rs` (signing in), `admin.rs` (rules, revocations), `moderation.rs` and `purge.rs`
//!   (mutes, bans, kicks, purges and the audit log).

use std::sync::Arc;

use app::account::ssr::AccountHandle;
use app::history::ssr::HistoryHandle;
use app::limits::MessageLimits;
use app::{shell, App};
use axum::extract::FromRef;
use axum::http::{header, HeaderValue};
use axum::routing::{get, post, put};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::guard::Guard;
use crate::metrics::Metrics;
use crate::registry::Rooms;
use crate::session::edge_chat::{self, EdgeChat};
use crate::session::palaver::Palaver;
use crate::session::{self, SessionSettings};

pub mod account;
pub mod admin;
pub mod assets;
pub mod history;
pub mod listener;
pub mod moderation;
pub mod ops;
mod purge;
pub mod requests;
pub mod site;

/// Limits on every HTTP request (from `Config`).
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// How long a connection may take to send a request head (`--header-read-timeout-ms`).
    pub header_read_timeout: std::time::Duration,
    /// How long a request may take, body included (`--request-timeout-ms`); then 408.
    pub request_timeout: std::time::Duration,
    /// Largest request body (`--max-request-body-bytes`); larger: 413.
    pub max_body: usize,
}

/// What every handler can reach: one shared [`Shared`], so that a copy (every request's, every
/// session's for its whole life) is a reference count, not the half a kilobyte of the fields.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Leptos's handlers take their options from the router's state.
impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub leptos_options: LeptosOptions,
    pub rooms: Rooms,
    /// Cancelled when the server shuts down; every session and room task watches it.
    pub shutdown: CancellationToken,
    /// Cancelled when shutdown begins: `/readyz` turns unready at once, and the listener keeps
    /// serving for `--drain-delay-ms` so load balancers move new traffic elsewhere first.
    pub draining: CancellationToken,
    /// How long messages may be (`--max-message-chars`, `--max-message-bytes`).
    pub limits: MessageLimits,
    /// Client addresses, Origin checks and the per-IP rate limit.
    pub guard: Guard,
    /// Heartbeat and write timeouts for every WebSocket.
    pub sessions: SessionSettings,
    /// Timeouts and size limits for every HTTP request.
    pub http: HttpSettings,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Every session and room task, so that shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Whether `/metrics` is on the main router (no `--metrics-bind`).
    pub metrics_on_main: bool,
    /// Who may connect, and how tokens are verified (`--auth`).
    pub auth: crate::auth::Auth,
    /// Rooms' rules, read through a short cache.
    pub access: crate::auth::access::RoomAccess,
    /// Where people get a sign-in link (`--auth-signin-url`).
    pub signin_url: Option<String>,
    /// Where the CSS, Wasm and JS are served from (the binary, or `--site-dir`).
    pub site: Arc<site::SiteFiles>,
}

/// Builds the HTTP router: Leptos pages, the WebSocket endpoint, static files.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let history = HistoryHandle(Arc::new(history::EngineHistory {
        history: state.rooms.history().clone(),
        limits: state.limits,
        auth: state.auth.clone(),
        access: state.access.clone(),
        edit_window: state.sessions.edit_window,
    }));
    let accounts = AccountHandle(Arc::new(account::Accounts {
        auth: state.auth.clone(),
        signin_url: state.signin_url.clone(),
    }));
    let site = state.site.clone();
    let not_found = {
        let (history, accounts, options) = (history.clone(), accounts.clone(), options.clone());
        leptos_axum::render_app_to_stream_in_order_with_context(
            move || {
                provide_context(history.clone());
                provide_context(accounts.clone());
            },
            move || shell(options.clone()),
        )
    };
    let ops = if state.metrics_on_main {
        ops::health_routes().merge(ops::metrics_routes())
    } else {
        ops::health_routes()
    };
    Router::new()
        .merge(ops)
        .route("/api/rooms/{room}/ws", get(session::upgrade::<Palaver>))
        // The edge-chat demo's protocol, on the same rooms.
        .route(
            "/api/room/{room}/websocket",
            get(session::upgrade::<EdgeChat>),
        )
        .route("/api/room", post(edge_chat::new_private_room))
        .route("/api/session", post(account::sign_in))
        .route("/api/session/end", post(account::sign_out))
        .route("/api/rooms/{room}/rules", put(admin::set_rules))
        .route("/api/admin/revoke", post(admin::revoke))
        .route(
            "/api/rooms/{room}/moderation",
            get(moderation::view).post(moderation::act),
        )
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(history.clone());
                provide_context(accounts.clone());
            },
            move || shell(options.clone()),
        )
        // A static file, or else the app's "not found" page.
        .fallback(move |request: axum::extract::Request| {
            let (site, not_found) = (site.clone(), not_found.clone());
            async move {
                let file = site
                    .serve(request.method(), request.uri(), request.headers())
                    .await;
                match file {
                    Some(file) => file,
                    None => not_found(request).await,
                }
            }
        })
        // A request that takes too long, body included, gets 408; a body too big, 413.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.http.request_timeout,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            state.http.max_body,
        ))
        // Known hosts only, and each client within its request and history budgets.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            requests::admit,
        ))
        // Pages and API answers compressed on the fly; static files come precompressed (a
        // response that already has a Content-Encoding is left alone).
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::map_response_with_state(
            assets::CachePolicy::new(&state.leptos_options),
            assets::cache_control,
        ))
        // Headers on every response. Pages carry their Content-Security-Policy (with the nonce)
        // in the HTML itself (`app::security`); everything else gets one that allows nothing.
        // No page may be framed, and no referrer ever leaves a page, because a private room's
        // address is its secret.
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// See the router: `nosniff`, `no-referrer` and `X-Frame-Options: DENY` on everything, and a
/// deny-all Content-Security-Policy on what is not a page (a page's own policy is in its HTML;
/// a second, stricter header policy would block its scripts).
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_page && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    response
}
