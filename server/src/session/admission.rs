//! The door: the checks every WebSocket upgrade passes before a dialect runs, and the one error
//! type for refusals. In order: a valid room (each dialect says how a bad name is answered), an
//! allowed `Origin` (else 403), the address's join budget (429 with `Retry-After`), a real upgrade
//! request, and room under the connection caps (429 per address, 503 for the server). The
//! client's address is worked out here for the limits.
//!
//! The budget comes before the upgrade check on purpose: a browser cannot read why an upgrade
//! failed, so after a failed connection it asks the same URL with a plain `GET`, which answers
//! 429 and `Retry-After` while the address is over its budget.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::{debug, debug_span, Instrument};

use super::dialect::Dialect;
use super::websocket::{NotWebSocket, Upgrade};
use crate::guard::{ClientKey, ConnectionPermit, ConnectionRefused};
use crate::redact::LogName;
use crate::web::AppState;

/// Why an upgrade was refused; each answers with its own status and a plain sentence.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The room in the URL is not a room name.
    #[error("{message}")]
    BadRoom { status: StatusCode, message: String },
    /// Not a WebSocket upgrade (which part is wrong).
    #[error(transparent)]
    NotWebSocket(#[from] NotWebSocket),
    #[error("This origin may not open a connection here.")]
    Origin,
    #[error("Too many connection attempts from your address; try again in {} s.", retry_after_secs(*retry_after))]
    JoinsTooFast { retry_after: std::time::Duration },
    #[error("Too many connections from your address.")]
    TooManyFromAddress,
    #[error("The server is full; try again shortly.")]
    ServerFull,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let status = match self {
            Refused::BadRoom { status, .. } => status,
            Refused::NotWebSocket(rejection) => return rejection.into_response(),
            Refused::Origin => StatusCode::FORBIDDEN,
            Refused::JoinsTooFast { retry_after } => {
                let retry_after = [(
                    header::RETRY_AFTER,
                    retry_after_secs(retry_after).to_string(),
                )];
                return (StatusCode::TOO_MANY_REQUESTS, retry_after, message).into_response();
            }
            Refused::TooManyFromAddress => StatusCode::TOO_MANY_REQUESTS,
            Refused::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, message).into_response()
    }
}

/// Whole seconds to wait, at least one (what `Retry-After` says).
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

impl From<ConnectionRefused> for Refused {
    fn from(refused: ConnectionRefused) -> Self {
        match refused {
            ConnectionRefused::PerAddress => Refused::TooManyFromAddress,
            ConnectionRefused::ServerFull => Refused::ServerFull,
        }
    }
}

/// `GET` on a dialect's WebSocket route: admits the connection, then runs the session in a task
/// of its own.
pub async fn upgrade<D: Dialect>(
    ws: Result<Upgrade, NotWebSocket>,
    Path(room): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Result<Response, Refused> {
    let room = D::room(&room)?;
    if !state.guard.origin_allowed(&headers) {
        debug!(origin = ?headers.get(header::ORIGIN), "cross-origin upgrade refused");
        return Err(Refused::Origin);
    }
    let who = state.guard.client_key(peer, &headers);
    if let Err(retry_after) = state.guard.check_join(who).await {
        state.metrics.joins_refused.inc();
        return Err(Refused::JoinsTooFast { retry_after });
    }
    let ws = ws?;
    let permit = state.guard.open_connection(who)?;
    let dialect = D::new(state.limits, state.metrics.clone());
    // Read now, verified after the join (whose own token, if any, counts instead).
    let cookie = crate::auth::token_from_cookies(&headers);
    Ok(accept(ws, room, (who, cookie), permit, state, dialect))
}

/// Answers the upgrade, then runs `dialect` on the connection in a task of its own.
fn accept<D: Dialect>(
    ws: Upgrade,
    room: app::limits::RoomName,
    (who, cookie): (ClientKey, Option<String>),
    permit: ConnectionPermit,
    state: AppState,
    dialect: D,
) -> Response {
    let (response, connection) = ws.accept();
    // At debug level: an enabled span costs every session memory and every poll two reads of
    // the filter's global lock (with `RUST_LOG=debug` its lines carry it).
    let span = debug_span!("session", room = %room.logged(), client = %who);
    let tasks = state.tasks.clone();
    // One box captured: what the block captures stays in the task beside the session it is
    // moved into, for the connection's whole life.
    let admitted = Box::new((room, who, cookie, dialect));
    // Tracked, so that shutdown waits for every session to say goodbye.
    let session = tasks.track_future(
        async move {
            let Some(connection) = connection.await else {
                return;
            };
            let (room, who, cookie, dialect) = *admitted;
            state.metrics.connections.inc();
            super::run::run(connection, room, (who, cookie), &state, dialect).await;
            state.metrics.connections.dec();
            // Counted until the session is over.
            drop(permit);
        }
        .instrument(span),
    );
    tokio::spawn(session);
    response
}
