//! The accept loop: HTTP/1.1 connections served by hyper (with WebSocket upgrades), each with a
//! deadline to send its request head, at most `--max-http-connections-per-ip` open per client
//! (trusted proxies exempt), no Nagle delay, and the client's address for handlers
//! (`ConnectInfo`).
//!
//! axum's own `serve` gives hyper no timer, so a client that sends half a request head and
//! nothing more holds its connection (and a file descriptor) forever; it also waits for every
//! connection to finish on shutdown, however stuck. Here a connection that has not sent its whole
//! head within `--header-read-timeout-ms` is closed, and on shutdown the loop stops accepting and
//! asks every connection to close; whatever has not closed by `--shutdown-timeout-secs` is dropped
//! with the process.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::guard::{ConnectionPermit, Guard};

/// What the accept loop needs besides the router.
pub struct Listening {
    pub listener: TcpListener,
    pub guard: Guard,
    /// How long a connection may take to send a request head.
    pub header_read_timeout: Duration,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

/// Serves `app` until shutdown. Returns once it stops accepting (connections still open close
/// by themselves, asked to gracefully).
pub async fn serve(listening: Listening, app: Router) -> std::io::Result<()> {
    let Listening {
        listener,
        guard,
        header_read_timeout,
        shutdown,
    } = listening;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return Ok(()),
        };
        let Some(permit) = guard.open_tcp(peer) else {
            debug!(%peer, "too many connections from one client; closed at once");
            continue;
        };
        let connection = Connection {
            stream,
            peer,
            header_read_timeout,
            _permit: permit,
        };
        tokio::spawn(connection.serve(app.clone(), shutdown.clone()));
    }
}

/// One accepted connection, counted against its client until it closes.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    header_read_timeout: Duration,
    _permit: ConnectionPermit,
}

impl Connection {
    async fn serve(self, app: Router, shutdown: CancellationToken) {
        // Chat frames are small and latency matters.
        if let Err(e) = self.stream.set_nodelay(true) {
            debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let peer = self.peer;
        let service = app.map_request(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.map(axum::body::Body::new)
        });
        let service = TowerToHyperService::new(service);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let connection = builder
            .serve_connection(TokioIo::new(self.stream), service)
            .with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    debug!(error = %e, %peer, "connection ended");
                }
                return;
            }
            _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
        }
        if let Err(e) = connection.await {
            debug!(error = %e, %peer, "connection ended during shutdown");
        }
    }
}
