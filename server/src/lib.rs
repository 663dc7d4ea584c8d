//! Palaver's server as a library: the binary (`main.rs`) only parses settings and calls [`serve`];
//! tests start the same server on port 0 with [`Server::start`].
//!
//! - [`room`]: one task per room that owns its state (the hub).
//! - [`registry`]: room name -> running room task.
//! - [`session`]: one WebSocket connection.
//! - [`store`]: where history lives.
//! - [`config`]: start-up settings.

pub mod config;
pub mod guard;
pub mod history;
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
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;

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
}

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub rooms: Rooms,
    /// Cancelled when the server shuts down; every session and room task watches it.
    pub shutdown: CancellationToken,
    /// How long messages may be (`--max-message-chars`, `--max-message-bytes`).
    pub limits: MessageLimits,
    /// Client addresses, Origin checks and the per-IP rate limit.
    pub guard: guard::Guard,
    /// Heartbeat and write timeouts for every WebSocket.
    pub sessions: session::SessionSettings,
}

/// The Leptos settings: from cargo-leptos's environment when it runs us, else Palaver's defaults
/// (so the binary and the tests also run without cargo-leptos).
pub fn leptos_options() -> LeptosOptions {
    let defaults = || {
        LeptosOptions::builder()
            .output_name("palaver")
            .site_root("target/site")
            .site_pkg_dir("pkg")
            .build()
    };
    match leptos::config::get_configuration(None) {
        // Without cargo-leptos (plain `cargo test`) the output name is empty: use ours.
        Ok(conf) if conf.leptos_options.output_name.is_empty() => {
            let mut options = conf.leptos_options;
            options.output_name = "palaver".into();
            options
        }
        Ok(conf) => conf.leptos_options,
        Err(_) => defaults(),
    }
}

/// Builds the HTTP router: Leptos pages, the WebSocket endpoint, static files.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let history = HistoryHandle(Arc::new(StoreHistory {
        store: state.rooms.store().clone(),
        limits: state.limits,
    }));
    Router::new()
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
        // Headers on every response. Pages set their own Content-Security-Policy with a nonce
        // (`app::security`); everything else gets one that allows nothing. No referrer ever
        // leaves a page, because a private room's address is its secret.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .with_state(state)
}

/// A running server. Dropping it shuts the server down (tests rely on this).
pub struct Server {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(config: &Config, addr: SocketAddr) -> Result<Self, StartError> {
        let data_dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(&data_dir))
            .await
            .map_err(|e| StartError::Listen {
                addr,
                source: std::io::Error::other(e),
            })??;
        tracing::info!(path = %store.path().display(), "history database open");
        let store: Arc<dyn RoomStore> = Arc::new(store);
        let shutdown = CancellationToken::new();
        let rooms = Rooms::new(
            store,
            RoomSettings {
                idle_timeout: config.room_idle_timeout(),
            },
            shutdown.clone(),
        );
        let state = AppState {
            leptos_options: leptos_options(),
            rooms,
            shutdown: shutdown.clone(),
            limits: config.message_limits(),
            guard: guard::Guard::new(config.guard_settings(), shutdown.clone()),
            sessions: config.session_settings(),
        };
        let listen_err = |source| StartError::Listen { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?;
        let app = router(state);
        let stop = shutdown.clone();
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
            shutdown,
            task: Some(task),
        })
    }

    /// Stops accepting, tells every session to reconnect, and waits for the listener to close.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// Waits until the server stops (after [`Server::shutdown`] or a fatal error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
