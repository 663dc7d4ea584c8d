//! Palaver's server as a library: the binary (`main.rs`) only parses settings and calls [`serve`];
//! tests start the same server on port 0 with [`Server::start`].
//!
//! - [`room`]: one task per room that owns its state (the hub).
//! - [`registry`]: room name -> running room task.
//! - [`session`]: one WebSocket connection.
//! - [`store`]: where history lives.
//! - [`config`]: start-up settings.

pub mod assets;
pub mod config;
pub mod guard;
pub mod history;
pub mod metrics;
pub mod ops;
pub mod redis_store;
pub mod registry;
pub mod room;
pub mod session;
pub mod sqlite;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use app::history::ssr::HistoryHandle;
use app::limits::MessageLimits;
use app::{shell, App};
use axum::extract::FromRef;
use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::history::StoreHistory;
use crate::registry::Rooms;
use crate::room::RoomSettings;
use crate::sqlite::{OpenError, SqliteStore};
use crate::store::RoomStore;

/// Why the server could not start. Each names the setting or resource at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("storage (--data-dir): {0}")]
    Storage(#[from] OpenError),
    #[error("site settings (LEPTOS_* environment): {0}")]
    Leptos(String),
    #[error("engine (--engine): {0}")]
    Engine(String),
}

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub rooms: Rooms,
    /// Cancelled when the server shuts down; every session and room task watches it.
    pub shutdown: CancellationToken,
    /// Cancelled when shutdown begins: `/readyz` turns unready at once, and the listener keeps
    /// serving for `--drain-delay-ms` so load balancers move new traffic elsewhere first.
    #[from_ref(skip)]
    pub draining: CancellationToken,
    /// How long messages may be (`--max-message-chars`, `--max-message-bytes`).
    pub limits: MessageLimits,
    /// Client addresses, Origin checks and the per-IP rate limit.
    pub guard: guard::Guard,
    /// Heartbeat and write timeouts for every WebSocket.
    pub sessions: session::SessionSettings,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Every session and room task, so that shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Whether `/metrics` is on the main router (no `--metrics-bind`).
    pub metrics_on_main: bool,
}

/// The Leptos settings. Under cargo-leptos (which sets `LEPTOS_OUTPUT_NAME` and the other
/// `LEPTOS_*` variables) they come from that environment, and a bad value is an error; otherwise
/// Palaver's defaults apply (site in `target/site`, listening on 127.0.0.1:3000), with
/// `LEPTOS_SITE_ROOT` and `LEPTOS_SITE_ADDR` still honoured, so the plain binary and the tests
/// run without cargo-leptos.
pub fn leptos_options() -> Result<LeptosOptions, StartError> {
    // Leptos's own errors do not say which variable is wrong; check the typed ones first.
    fn check<T: std::str::FromStr>(var: &str) -> Result<(), StartError>
    where
        T::Err: std::fmt::Display,
    {
        match std::env::var(var) {
            Ok(v) => v
                .parse::<T>()
                .map(|_| ())
                .map_err(|e| StartError::Leptos(format!("{var}={v:?}: {e}"))),
            Err(_) => Ok(()),
        }
    }
    check::<SocketAddr>("LEPTOS_SITE_ADDR")?;
    check::<u32>("LEPTOS_RELOAD_PORT")?;
    check::<bool>("LEPTOS_HASH_FILES")?;
    // cargo-leptos writes the hashed file names next to the binary it builds; without
    // LEPTOS_HASH_FILES, that file says whether to use them.
    let hash_file_present = || {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt").is_file()))
            .unwrap_or(false)
    };
    if std::env::var_os("LEPTOS_OUTPUT_NAME").is_some() {
        let mut options = leptos::config::get_configuration(None)
            .map(|conf| conf.leptos_options)
            .map_err(|e| StartError::Leptos(e.to_string()))?;
        if std::env::var_os("LEPTOS_HASH_FILES").is_none() {
            options.hash_files = hash_file_present();
        }
        return Ok(options);
    }
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    let site_addr = match std::env::var("LEPTOS_SITE_ADDR") {
        Ok(addr) => addr
            .parse::<SocketAddr>()
            .map_err(|e| StartError::Leptos(format!("LEPTOS_SITE_ADDR={addr:?}: {e}")))?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let hash_files = match std::env::var("LEPTOS_HASH_FILES") {
        Ok(v) => v
            .parse::<bool>()
            .map_err(|e| StartError::Leptos(format!("LEPTOS_HASH_FILES={v:?}: {e}")))?,
        Err(_) => hash_file_present(),
    };
    Ok(LeptosOptions::builder()
        .output_name("palaver")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(site_addr)
        .hash_files(hash_files)
        .build())
}

/// Builds the HTTP router: Leptos pages, the WebSocket endpoint, static files.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let history = HistoryHandle(Arc::new(StoreHistory {
        store: state.rooms.store().clone(),
        limits: state.limits,
    }));
    let ops = if state.metrics_on_main {
        ops::health_routes().merge(ops::metrics_routes())
    } else {
        ops::health_routes()
    };
    Router::new()
        .merge(ops)
        .route("/api/rooms/{room}/ws", get(session::palaver::upgrade))
        // The edge-chat demo's protocol, on the same rooms.
        .route(
            "/api/room/{room}/websocket",
            get(session::edge_chat::upgrade),
        )
        .route("/api/room", post(session::edge_chat::new_private_room))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(history.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
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

/// A running server. Dropping it shuts the server down (tests rely on this).
pub struct Server {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `--metrics-bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    draining: CancellationToken,
    /// How long the listener keeps serving after `/readyz` turned unready.
    drain_delay: std::time::Duration,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Sessions and room tasks; shutdown waits for them up to `drain_timeout`.
    tasks: TaskTracker,
    drain_timeout: std::time::Duration,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(config: &Config, addr: SocketAddr) -> Result<Self, StartError> {
        let shutdown = CancellationToken::new();
        let mut guard = guard::Guard::new(config.guard_settings(), shutdown.clone());
        let store: Arc<dyn RoomStore> = match &config.engine {
            config::Engine::Embedded => {
                let data_dir = config.data_dir.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&data_dir))
                    .await
                    .map_err(|e| StartError::Listen {
                        addr,
                        source: std::io::Error::other(e),
                    })??;
                tracing::info!(path = %store.path().display(), "history database open");
                Arc::new(store)
            }
            config::Engine::Redis(url) => {
                let store = redis_store::RedisStore::connect(url.as_str(), "palaver")
                    .await
                    .map_err(|e| StartError::Engine(e.to_string()))?;
                tracing::info!(engine = %url, node = store.node_id(), "rooms shared through Redis");
                guard = guard.with_shared_rate_limit(&store);
                Arc::new(store)
            }
        };
        let draining = CancellationToken::new();
        let metrics = Arc::new(metrics::Metrics::new());
        let tasks = TaskTracker::new();
        let rooms = Rooms::new(
            store,
            RoomSettings {
                idle_timeout: config.room_idle_timeout(),
                metrics: metrics.clone(),
                tasks: tasks.clone(),
            },
            shutdown.clone(),
        );
        let state = AppState {
            leptos_options: leptos_options()?,
            rooms,
            shutdown: shutdown.clone(),
            draining: draining.clone(),
            limits: config.message_limits(),
            guard,
            sessions: config.session_settings(),
            metrics,
            tasks: tasks.clone(),
            metrics_on_main: config.metrics_bind.is_none(),
        };
        let listen_err = |source| StartError::Listen { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?;
        let metrics_addr = match config.metrics_bind {
            Some(metrics_addr) => {
                let listen_err = |source| StartError::Listen {
                    addr: metrics_addr,
                    source,
                };
                let listener = TcpListener::bind(metrics_addr).await.map_err(listen_err)?;
                let bound = listener.local_addr().map_err(listen_err)?;
                let app = ops::metrics_routes().with_state(state.clone());
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(error = %e, "metrics listener failed");
                    }
                });
                Some(bound)
            }
            None => None,
        };
        let app = router(state);
        let stop = shutdown.clone();
        // Chat frames are small and latency matters: no Nagle delay on any connection.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
        });
        Ok(Self {
            addr,
            metrics_addr,
            shutdown,
            draining,
            drain_delay: std::time::Duration::from_millis(config.drain_delay_ms),
            task: Some(task),
            tasks,
            drain_timeout: std::time::Duration::from_secs(config.shutdown_timeout_secs),
        })
    }

    /// Stops accepting, tells every session to reconnect, and waits for sessions and rooms to
    /// finish (see [`Server::wait`]).
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.draining.cancel();
        self.shutdown.cancel();
        self.wait().await
    }

    /// A handle that starts a graceful shutdown from elsewhere (a signal handler).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            draining: self.draining.clone(),
            shutdown: self.shutdown.clone(),
            drain_delay: self.drain_delay,
        }
    }

    /// Waits until the server stops (after [`Server::shutdown`] or a fatal error). Once the
    /// listener has closed, waits up to `--shutdown-timeout-secs` for every session to answer its
    /// pending posts and say goodbye (1012) and for every room to commit what it was given.
    pub async fn wait(mut self) -> std::io::Result<()> {
        let served = match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        // The listener only stops on shutdown or failure; either way, everything else stops too.
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(self.drain_timeout, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.tasks.len(),
                "shutdown deadline passed with tasks still running"
            );
        }
        served
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Starts a graceful shutdown: unready first, then (after the drain delay) stop accepting and
/// tell every session to reconnect.
#[derive(Clone)]
pub struct Stopper {
    draining: CancellationToken,
    shutdown: CancellationToken,
    drain_delay: std::time::Duration,
}

impl Stopper {
    pub async fn stop(&self) {
        self.draining.cancel();
        tokio::select! {
            _ = tokio::time::sleep(self.drain_delay) => {}
            _ = self.shutdown.cancelled() => {}
        }
        self.shutdown.cancel();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
