//! One WebSocket connection to one room: the per-socket `select!` loop, shared by every wire
//! dialect ([`palaver`], the native protocol, and [`edge_chat`], the edge-chat demo's).
//!
//! A session reads frames (a join, then messages to post), forwards posts to the room task, writes
//! acknowledgements and the room's live messages, and catches up from the store whenever it is
//! behind (on join, and after lagging behind the room's live buffer). `sent_seq` is the last
//! sequence number written to this socket; nothing at or below it is ever written again, and
//! nothing above it is skipped.

pub mod edge_chat;
pub mod palaver;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use app::limits::RoomName;
use app::protocol::{close_code, ChatMessage, Seq, JOIN_BACKLOG};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::FuturesOrdered;
use futures::{SinkExt, StreamExt};
use tokio::sync::{broadcast, oneshot};
use tokio::time::{timeout, Instant};
use tracing::{debug, info_span, warn, Instrument};

use crate::guard::{ConnectionPermit, ConnectionRefused};
use crate::metrics::{Rejection, SlowConsumer};
use crate::room::{Delivery, RoomError};
use crate::AppState;

/// How long a new socket may take to send its join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, how long a session waits for the outcome of posts already with the room.
const ACK_DRAIN: Duration = Duration::from_secs(3);
/// How long the closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Messages read from the store per catch-up page.
const CATCH_UP_PAGE: usize = 500;

/// Timeouts every session shares (from `Config`).
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// How often the server pings; keeps proxies from closing idle connections.
    pub ping_interval: Duration,
    /// A client heard from (any frame, pong included) less recently than this is dropped.
    pub peer_timeout: Duration,
    /// How long one write may block before the client counts as not reading.
    pub write_timeout: Duration,
    /// Posts awaiting their commit per connection; beyond this the session stops reading its
    /// socket, so a flooding client is slowed by TCP instead of buffered.
    pub max_pending: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(20),
            peer_timeout: Duration::from_secs(45),
            write_timeout: Duration::from_secs(10),
            max_pending: 32,
        }
    }
}

/// What a client's join asks for.
pub struct JoinRequest {
    /// Validated, normalised display name.
    pub name: String,
    /// Resume after this sequence number; `None` for the latest [`JOIN_BACKLOG`] messages.
    pub after_seq: Option<Seq>,
}

/// A message a client wants to post (already validated).
pub struct PostRequest {
    pub client_id: String,
    pub text: String,
}

/// A refused join: frames to send, then the close.
pub struct Refusal {
    pub frames: Vec<String>,
    pub close: (u16, &'static str),
}

/// How one kind of client speaks. Implementations validate input with `app::limits` and never put
/// internal details in what they send.
pub trait Dialect: Send + 'static {
    /// Decodes the first text frame.
    fn join(&mut self, text: &str) -> Result<JoinRequest, Refusal>;
    /// Decodes a later text frame: something to post, or frames that answer it (errors, pongs).
    fn frame(&mut self, text: &str) -> Result<PostRequest, Vec<String>>;
    /// The answer to a binary frame.
    fn binary(&mut self) -> Vec<String>;
    /// Frames right after joining, before the catch-up messages.
    fn welcome(&mut self, room: &RoomName, name: &str, head: Seq, online: &[String])
        -> Vec<String>;
    /// Frames saying whether the room can store messages (after the welcome when it cannot;
    /// later changes arrive as live deliveries).
    fn status(&mut self, _degraded: bool) -> Vec<String> {
        Vec::new()
    }
    /// Frames after the join's catch-up messages.
    fn caught_up(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// One stored message, during catch-up.
    fn history(&mut self, message: &ChatMessage) -> Option<Arc<str>>;
    /// One live delivery (a message or a presence change): the frames to write, appended to
    /// `out` (a buffer the session reuses, so a delivery costs no allocation).
    fn live(&mut self, delivery: &Delivery, out: &mut Vec<Arc<str>>);
    /// The outcome of a post.
    fn ack(&mut self, client_id: String, result: Result<Seq, RoomError>) -> Option<String>;
    /// A post refused by the per-IP rate limit; it may be sent again after `retry_after`.
    fn rate_limited(&mut self, client_id: String, retry_after: Duration) -> Vec<String>;
}

/// The checks every upgrade passes before a dialect runs, in order: a valid room (the dialect
/// says how a bad one is answered), a real upgrade request, an allowed Origin (else 403), and room
/// under the connection caps (429, 503). The client's address is worked out for the rate limit.
pub fn admit(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    room: Result<RoomName, Response>,
    peer: SocketAddr,
    headers: &HeaderMap,
    state: AppState,
    dialect: impl Dialect,
) -> Response {
    let room = match room {
        Ok(room) => room,
        Err(refusal) => return refusal,
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if !state.guard.origin_allowed(headers) {
        debug!(origin = ?headers.get(axum::http::header::ORIGIN), "cross-origin upgrade refused");
        return (
            StatusCode::FORBIDDEN,
            "This origin may not open a connection here.",
        )
            .into_response();
    }
    let ip = state.guard.client_ip(peer, headers);
    let permit = match state.guard.open_connection(ip) {
        Ok(permit) => permit,
        Err(ConnectionRefused::PerAddress) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many connections from your address.",
            )
                .into_response()
        }
        Err(ConnectionRefused::ServerFull) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is full; try again shortly.",
            )
                .into_response()
        }
    };
    upgrade(ws, room, ip, permit, state, dialect)
}

/// Upgrades with the limits every session shares, then runs `dialect` on the socket.
fn upgrade(
    ws: WebSocketUpgrade,
    room: RoomName,
    ip: IpAddr,
    permit: ConnectionPermit,
    state: AppState,
    dialect: impl Dialect,
) -> Response {
    // A maximal message, JSON-escaped, fits; nothing much larger does.
    let max_frame = state.limits.max_frame_bytes();
    ws.max_frame_size(max_frame)
        .max_message_size(max_frame)
        // tungstenite allocates its read buffer up front (128 KiB by default): most of an idle
        // connection's memory. Client frames are small; 1 KiB holds most, and the buffer grows
        // for a larger one (up to the frame cap).
        .read_buffer_size(1024)
        .write_buffer_size(32 * 1024)
        .max_write_buffer_size(256 * 1024)
        .on_upgrade(move |socket| {
            let span = info_span!("session", room = %room, client = %ip);
            // Tracked, so that shutdown waits for every session to say goodbye.
            let tasks = state.tasks.clone();
            tasks.track_future(
                async move {
                    state.metrics.connections.inc();
                    run(socket, room, ip, &state, dialect).await;
                    state.metrics.connections.dec();
                    // Counted until the session is over.
                    drop(permit);
                }
                .instrument(span),
            )
        })
}

/// Why a session ended; decides the close frame.
enum End {
    /// The client closed or the connection broke: nothing more to send.
    Gone,
    Close(u16, &'static str),
}

async fn run(
    socket: WebSocket,
    room: RoomName,
    ip: IpAddr,
    state: &AppState,
    mut dialect: impl Dialect,
) {
    let mut socket = Socket {
        inner: socket,
        write_timeout: state.sessions.write_timeout,
    };
    let end = match session(&mut socket, &room, ip, state, &mut dialect).await {
        Ok(end) | Err(end) => end,
    };
    if let End::Close(close_code::TOO_SLOW, _) = end {
        state.metrics.slow_consumer(SlowConsumer::Disconnected);
    }
    if let End::Close(code, reason) = end {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let closing = async {
            socket.inner.send(Message::Close(Some(frame))).await?;
            // Finish the closing handshake: read (and drop) what the client sent meanwhile until
            // its close arrives. Closing a socket with unread data makes the kernel reset the
            // connection, and a reset can destroy the close frame before the client reads it.
            while let Some(Ok(_)) = socket.inner.recv().await {}
            Ok::<(), axum::Error>(())
        };
        let _ = timeout(CLOSE_TIMEOUT, closing).await;
    }
    debug!("session ended");
}

const RESTARTING: End = End::Close(close_code::SERVICE_RESTART, "server restarting");
const ROOM_UNAVAILABLE: End = End::Close(close_code::SERVICE_RESTART, "room unavailable");

async fn session(
    socket: &mut Socket,
    room: &RoomName,
    ip: IpAddr,
    state: &AppState,
    dialect: &mut impl Dialect,
) -> Result<End, End> {
    let shutdown = state.shutdown.clone();
    // 1. The join frame.
    let join = tokio::select! {
        join = timeout(JOIN_TIMEOUT, read_join(socket, dialect)) => {
            join.map_err(|_| End::Close(close_code::JOIN_TIMEOUT, "join timeout"))??
        }
        _ = shutdown.cancelled() => return Ok(RESTARTING),
    };

    // 2. Enter the room; retry once if an idle room task was exiting just then.
    let mut handle = state.rooms.get(room);
    let joined = match handle.join(join.name.clone()).await {
        Ok(j) => j,
        Err(RoomError::Closed) => {
            handle = state.rooms.get(room);
            handle
                .join(join.name.clone())
                .await
                .map_err(|_| ROOM_UNAVAILABLE)?
        }
        Err(RoomError::Unavailable) => return Err(ROOM_UNAVAILABLE),
    };
    let mut live = joined.live;
    // Held until this function returns: dropping it tells the room this member left.
    let _membership = joined.membership;
    for frame in dialect.welcome(room, &join.name, joined.head, &joined.online) {
        socket.write_text(frame.into()).await?;
    }
    if joined.degraded {
        for frame in dialect.status(true) {
            socket.write_text(frame.into()).await?;
        }
    }

    // 3. Catch up from the store to the head, then follow live.
    let mut sent_seq: Seq = match join.after_seq {
        Some(seq) => seq.min(joined.head),
        None => joined.head.saturating_sub(JOIN_BACKLOG as Seq),
    };
    catch_up(
        socket,
        state,
        room,
        dialect,
        &mut sent_seq,
        Some(joined.head),
    )
    .await?;
    for frame in dialect.caught_up() {
        socket.write_text(frame.into()).await?;
    }

    let mut acks: FuturesOrdered<AckFuture> = FuturesOrdered::new();
    // Reused for every delivery's frames.
    let mut frames: Vec<Arc<str>> = Vec::with_capacity(4);
    let settings = state.sessions;
    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Any frame from the client (a pong included) proves it is alive; silence past the
    // deadline drops it, and dropping the membership takes it off the roster.
    let silence = tokio::time::sleep(settings.peer_timeout);
    tokio::pin!(silence);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                // Stop reading; answer what is already with the room (it commits before it
                // stops), then ask the client to reconnect.
                let deadline = Instant::now() + ACK_DRAIN;
                while let Ok(Some((client_id, result))) = tokio::time::timeout_at(deadline, acks.next()).await {
                    if let Some(frame) = dialect.ack(client_id, result) {
                        socket.write_text(frame.into()).await?;
                    }
                }
                return Ok(RESTARTING);
            }
            () = &mut silence => {
                debug!("peer silent past the timeout");
                return Ok(End::Close(close_code::PEER_TIMEOUT, "no response"));
            }
            frame = socket.recv(), if acks.len() < settings.max_pending => {
                silence.as_mut().reset(Instant::now() + settings.peer_timeout);
                let Some(Ok(frame)) = frame else { return Ok(End::Gone) };
                let answers = match frame {
                    Message::Text(text) => match dialect.frame(text.as_str()) {
                        Ok(post) => {
                            if let Err(wait) = state.guard.check_post(ip).await {
                                state.metrics.rejected(Rejection::RateLimited);
                                for frame in dialect.rate_limited(post.client_id, wait) {
                                    socket.write_text(frame.into()).await?;
                                }
                                continue;
                            }
                            let rx = handle.send(join.name.clone(), post.client_id.clone(), post.text).await.map_err(|_| ROOM_UNAVAILABLE)?;
                            acks.push_back(ack_future(post.client_id, rx));
                            Vec::new()
                        }
                        Err(answers) => answers,
                    },
                    Message::Binary(_) => dialect.binary(),
                    Message::Close(_) => return Ok(End::Gone),
                    Message::Ping(_) | Message::Pong(_) => Vec::new(),
                };
                for frame in answers {
                    socket.write_text(frame.into()).await?;
                }
            }
            Some((client_id, result)) = acks.next() => {
                if result.is_err() {
                    state.metrics.rejected(Rejection::Unavailable);
                }
                if let Some(frame) = dialect.ack(client_id, result) {
                    socket.write_text(frame.into()).await?;
                }
            }
            delivery = live.recv() => {
                // Take everything the room has already sent (up to a limit), queue it on the
                // socket, and flush once: one write for a burst instead of one per frame.
                let mut next = Some(delivery);
                let mut queued = 0;
                // Counted once per write: metrics stay off the per-delivery path.
                let mut delivered = 0u64;
                let mut oldest: Option<Instant> = None;
                while let Some(delivery) = next.take() {
                    match delivery {
                        Ok(d) => {
                            if let Some(seq) = d.seq {
                                if seq <= sent_seq {
                                    next = try_next(&mut live, &mut queued);
                                    continue;
                                }
                                if seq != sent_seq + 1 {
                                    // Should not happen (the room commits in order), but never
                                    // leave a hole.
                                    socket.flush().await?;
                                    catch_up(socket, state, room, dialect, &mut sent_seq, Some(seq - 1)).await?;
                                }
                                sent_seq = seq;
                                delivered += 1;
                                oldest.get_or_insert(d.committed_at);
                            }
                            frames.clear();
                            dialect.live(&d, &mut frames);
                            for frame in frames.drain(..) {
                                socket.feed_text(shared_text(frame)).await?;
                            }
                            next = try_next(&mut live, &mut queued);
                        }
                        Err(broadcast::error::RecvError::Lagged(skipped)) => {
                            debug!(skipped, "lagged behind the room; catching up from storage");
                            state.metrics.slow_consumer(SlowConsumer::CaughtUp);
                            socket.flush().await?;
                            catch_up(socket, state, room, dialect, &mut sent_seq, None).await?;
                        }
                        Err(broadcast::error::RecvError::Closed) => return Ok(RESTARTING),
                    }
                }
                socket.flush().await?;
                if let Some(oldest) = oldest {
                    state.metrics.deliveries.inc_by(delivered);
                    state.metrics.fanout_seconds.observe(oldest.elapsed().as_secs_f64());
                }
            }
            _ = ping.tick() => {
                socket.write(Message::Ping(Default::default())).await?;
            }
        }
    }
}

/// A frame shared by every session, as the socket's text type without copying it (the bytes
/// are the `Arc<str>`'s own; only their UTF-8 is checked).
fn shared_text(frame: Arc<str>) -> Utf8Bytes {
    Utf8Bytes::try_from(Bytes::from_owner(ArcStr(frame)))
        .unwrap_or_else(|_| Utf8Bytes::from_static(""))
}

/// `Arc<str>` as bytes, for [`Bytes::from_owner`].
struct ArcStr(Arc<str>);

impl AsRef<[u8]> for ArcStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Frames written per flush at most, so one busy room cannot starve this session's other work.
const WRITE_BATCH: usize = 64;

/// The next delivery that is already waiting, while the current write batch has room.
fn try_next(
    live: &mut broadcast::Receiver<Arc<Delivery>>,
    queued: &mut usize,
) -> Option<Result<Arc<Delivery>, broadcast::error::RecvError>> {
    *queued += 1;
    if *queued >= WRITE_BATCH {
        return None;
    }
    match live.try_recv() {
        Ok(d) => Some(Ok(d)),
        Err(broadcast::error::TryRecvError::Lagged(n)) => {
            Some(Err(broadcast::error::RecvError::Lagged(n)))
        }
        Err(broadcast::error::TryRecvError::Closed) => {
            Some(Err(broadcast::error::RecvError::Closed))
        }
        Err(broadcast::error::TryRecvError::Empty) => None,
    }
}

type AckFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = (String, Result<Seq, RoomError>)> + Send>>;

fn ack_future(client_id: String, rx: oneshot::Receiver<Result<Seq, RoomError>>) -> AckFuture {
    Box::pin(async move { (client_id, rx.await.unwrap_or(Err(RoomError::Closed))) })
}

/// Reads frames until the join; a refused join closes the socket.
async fn read_join(socket: &mut Socket, dialect: &mut impl Dialect) -> Result<JoinRequest, End> {
    loop {
        let Some(Ok(frame)) = socket.recv().await else {
            return Err(End::Gone);
        };
        let refusal = match frame {
            Message::Text(text) => match dialect.join(text.as_str()) {
                Ok(join) => return Ok(join),
                Err(refusal) => refusal,
            },
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return Err(End::Gone),
            Message::Binary(_) => Refusal {
                frames: dialect.binary(),
                close: (close_code::BAD_JOIN, "expected join"),
            },
        };
        for frame in refusal.frames {
            socket.write_text(frame.into()).await?;
        }
        return Err(End::Close(refusal.close.0, refusal.close.1));
    }
}

/// Sends stored messages after `sent_seq`, up to `until` (or until the store has no more).
async fn catch_up(
    socket: &mut Socket,
    state: &AppState,
    room: &RoomName,
    dialect: &mut impl Dialect,
    sent_seq: &mut Seq,
    until: Option<Seq>,
) -> Result<(), End> {
    let store = state.rooms.store();
    loop {
        if until.is_some_and(|u| *sent_seq >= u) {
            return Ok(());
        }
        let page = store
            .after(room, *sent_seq, CATCH_UP_PAGE)
            .await
            .map_err(|e| {
                warn!(error = %e, "catch-up read failed");
                End::Close(close_code::SERVICE_RESTART, "storage unavailable")
            })?;
        if page.is_empty() {
            return Ok(());
        }
        for m in page {
            if until.is_some_and(|u| m.seq > u) {
                return Ok(());
            }
            if let Some(frame) = dialect.history(&m) {
                socket.write_text(Utf8Bytes::from(&*frame)).await?;
                state.metrics.deliveries.inc();
            }
            *sent_seq = m.seq;
        }
    }
}

/// A WebSocket whose writes give up on a client that stopped reading.
struct Socket {
    inner: WebSocket,
    /// See [`SessionSettings::write_timeout`].
    write_timeout: Duration,
}

impl Socket {
    async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        self.inner.recv().await
    }

    async fn write_text(&mut self, text: Utf8Bytes) -> Result<(), End> {
        self.write(Message::Text(text)).await
    }

    /// Queues a frame without flushing (see [`Socket::flush`]).
    async fn feed_text(&mut self, text: Utf8Bytes) -> Result<(), End> {
        timed(self.write_timeout, self.inner.feed(Message::Text(text))).await
    }

    async fn flush(&mut self) -> Result<(), End> {
        timed(self.write_timeout, self.inner.flush()).await
    }

    /// Writes one frame; a client that does not take it within the write timeout is dropped.
    async fn write(&mut self, msg: Message) -> Result<(), End> {
        timed(self.write_timeout, self.inner.send(msg)).await
    }
}

/// Socket output that gives up on a client that does not take it within `write_timeout`.
async fn timed(
    write_timeout: Duration,
    io: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), End> {
    match timeout(write_timeout, io).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(close_code::TOO_SLOW, "not reading")),
    }
}
