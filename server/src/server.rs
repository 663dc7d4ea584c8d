//! The server's wiring: open the engine, build what handlers share, listen, and stop gracefully.
//! [`Server`] shuts down when dropped, which tests rely on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, Config};
use crate::engine::{self, Engine};
use crate::guard::Guard;
use crate::metrics::Metrics;
use crate::registry::Rooms;
use crate::web::{self, listener, ops, AppState};

/// Why the server could not start. Each names the setting or resource at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}; {}", listen_hint(source, setting))]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
        /// The setting that chose the address (`--bind`, `--metrics-bind`).
        setting: &'static str,
    },
    #[error(transparent)]
    Engine(#[from] engine::OpenError),
    #[error("site settings: {0}")]
    Leptos(String),
    #[error("sign-in settings: {0}")]
    Auth(String),
}

/// What to do about an address that cannot be listened on, naming the setting to change.
fn listen_hint(source: &std::io::Error, setting: &str) -> String {
    match source.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("another program has it: choose a free address with {setting}")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("ports below 1024 need privileges: choose another with {setting}")
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!("no interface here has that address: change {setting}")
        }
        _ => format!("check {setting}"),
    }
}

/// A running server. Dropping it shuts the server down.
pub struct Server {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `--metrics-bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    draining: CancellationToken,
    /// How long the listener keeps serving after `/readyz` turned unready.
    drain_delay: Duration,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Sessions and room tasks; shutdown waits for them up to `drain_timeout`.
    tasks: TaskTracker,
    drain_timeout: Duration,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(config: &Config, addr: SocketAddr) -> Result<Self, StartError> {
        let shutdown = CancellationToken::new();
        let engine = engine::open(config).await?;
        if !config.retention().keeps_all() {
            let history = engine.history.clone();
            tokio::spawn(engine::retention::sweep_until(history, shutdown.clone()));
        }
        let state = app_state(config, engine.clone(), shutdown.clone())?;
        if let Some(verifier) = &state.auth.verifier {
            let revocations = verifier.revocations().clone();
            tokio::spawn(crate::auth::revocations::poll_until(
                engine.directory.clone(),
                revocations,
                shutdown.clone(),
            ));
        }
        let listen_err = |source| StartError::Listen {
            addr,
            source,
            setting: "--bind (PALAVER_BIND)",
        };
        let listener = listen(addr).map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?;
        let metrics_addr = match config.metrics_bind {
            Some(bind) => Some(serve_metrics(bind, state.clone()).await?),
            None => None,
        };
        let (draining, tasks) = (state.draining.clone(), state.tasks.clone());
        let listening = listener::Listening {
            listener,
            guard: state.guard.clone(),
            header_read_timeout: state.http.header_read_timeout,
            shutdown: shutdown.clone(),
        };
        let app = web::router(state);
        let task = tokio::spawn(listener::serve(listening, app));
        Ok(Self {
            addr,
            metrics_addr,
            shutdown,
            draining,
            drain_delay: Duration::from_millis(config.drain_delay_ms),
            task: Some(task),
            tasks,
            drain_timeout: Duration::from_secs(config.shutdown_timeout_secs),
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

/// What every handler shares, built from the settings and the engine.
pub(crate) fn app_state(
    config: &Config,
    engine: Engine,
    shutdown: CancellationToken,
) -> Result<AppState, StartError> {
    let shared_rate_limit = engine.mesh.as_ref().map(|mesh| mesh.rate_limit.clone());
    let shared_connections = engine.mesh.as_ref().map(|mesh| mesh.connections.clone());
    let guard = Guard::new(
        config.guard_settings(),
        shared_rate_limit,
        shared_connections,
        shutdown.clone(),
    );
    let auth = auth(config)?;
    let access = crate::auth::access::RoomAccess::new(engine.directory.clone());
    let metrics = Arc::new(Metrics::new());
    let tasks = TaskTracker::new();
    let room_settings = config.room_settings(metrics.clone(), tasks.clone());
    let mut leptos_options = config::leptos_options().map_err(StartError::Leptos)?;
    let (site, warning) =
        crate::web::site::SiteFiles::choose(config.site_dir.as_deref(), &mut leptos_options)
            .map_err(StartError::Leptos)?;
    match warning {
        Some(warning) => tracing::warn!("{warning}"),
        None => tracing::info!(from = %site.describe(), "serving the site's files"),
    }
    Ok(AppState::new(crate::web::Shared {
        leptos_options,
        site: Arc::new(site),
        rooms: Rooms::new(engine, room_settings, config.max_rooms, shutdown.clone()),
        shutdown,
        draining: CancellationToken::new(),
        limits: config.message_limits(),
        guard,
        sessions: config.session_settings(),
        http: config.http_settings(),
        metrics,
        tasks,
        metrics_on_main: config.metrics_bind.is_none(),
        auth,
        access,
        signin_url: config.auth.signin_url.clone(),
    }))
}

/// Identity settings: the mode, and the verifier with its keys (none when `--auth off`).
fn auth(config: &Config) -> Result<crate::auth::Auth, StartError> {
    use crate::auth::{Auth, AuthMode, KeySource, Verifier};
    let args = &config.auth;
    if args.mode == AuthMode::Off {
        return Ok(Auth::off());
    }
    let settings = args.verifier_settings().map_err(StartError::Auth)?;
    let verifier = Verifier::new(settings, Arc::default()).map_err(|(source, e)| {
        let setting = match source {
            KeySource::Secret => "--auth-secret-file / PALAVER_AUTH_SECRET",
            KeySource::PublicKey => "--auth-public-key",
            KeySource::Jwks => "--auth-jwks-url",
        };
        StartError::Auth(format!("{setting}: {e}"))
    })?;
    Ok(Auth {
        mode: args.mode,
        guests_read: args.guests_read,
        verifier: Some(Arc::new(verifier)),
        secure_cookie: config
            .public_origin
            .first()
            .is_some_and(|o| o.starts_with("https://")),
        leeway: Duration::from_secs(args.leeway_secs),
    })
}

/// Connections the kernel may hold for the accept loop. `TcpListener::bind` asks for 128: a
/// reconnect storm (every client of a restarted node at once) overflows that, and the kernel
/// drops the handshakes past it, so clients wait for retransmits or fail. The kernel caps this at
/// `net.core.somaxconn` (4096 on current Linux).
const ACCEPT_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`ACCEPT_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Serves `/metrics` alone on `bind` (`--metrics-bind`); returns the bound address.
async fn serve_metrics(bind: SocketAddr, state: AppState) -> Result<SocketAddr, StartError> {
    let listen_err = |source| StartError::Listen {
        addr: bind,
        source,
        setting: "--metrics-bind (PALAVER_METRICS_BIND)",
    };
    let listener = TcpListener::bind(bind).await.map_err(listen_err)?;
    let bound = listener.local_addr().map_err(listen_err)?;
    let stop = state.shutdown.clone();
    let app = ops::metrics_routes().with_state(state);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    Ok(bound)
}

/// Starts a graceful shutdown: unready first, then (after the drain delay) stop accepting and
/// tell every session to reconnect.
#[derive(Clone)]
pub struct Stopper {
    draining: CancellationToken,
    shutdown: CancellationToken,
    drain_delay: Duration,
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
