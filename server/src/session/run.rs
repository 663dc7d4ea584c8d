//! The session's life: read the join, enter the room, catch up, then follow the room live in one
//! `select!` loop until the client goes, the server stops, or a limit ends it.
//!
//! `sent_seq` is the last sequence number written to this socket; nothing at or below it is ever
//! written again, and nothing above it is skipped.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app::limits::RoomName;
use app::protocol::{close_code, Seq, JOIN_BACKLOG};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::time::{timeout, Instant};
use tracing::debug;

use super::dialect::{Close, Dialect, Frames, Incoming, JoinRequest, Outgoing, PostRequest};
use super::socket::Socket;
use crate::metrics::{Rejection, SlowConsumer};
use crate::room::{Delivery, Membership, RoomError, RoomHandle, SendReply};
use crate::web::AppState;

/// How long a new socket may take to send its join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, how long a session waits for the outcome of posts already with the room.
const ACK_DRAIN: Duration = Duration::from_secs(3);
/// How long the closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Frames written per flush at most, so one busy room cannot starve this session's other work.
const WRITE_BATCH: usize = 64;

/// Why a session ended; decides the close frame.
pub(super) enum End {
    /// The client closed or the connection broke: nothing more to send.
    Gone,
    Close(u16, &'static str),
}

const RESTARTING: End = End::Close(close_code::SERVICE_RESTART, "server restarting");
const ROOM_UNAVAILABLE: End = End::Close(close_code::SERVICE_RESTART, "room unavailable");

/// One connection to one room.
pub(super) struct Session<'a, D> {
    pub(super) socket: Socket,
    pub(super) dialect: D,
    pub(super) state: &'a AppState,
    pub(super) room: RoomName,
    ip: IpAddr,
    /// What the dialect wrote and the socket has not yet (reused, so frames cost no allocation).
    pub(super) out: Frames,
}

/// A joined session's side of the room.
struct InRoom {
    handle: RoomHandle,
    /// The name the member joined as.
    name: String,
    live: broadcast::Receiver<Arc<Delivery>>,
    /// Held until the session ends: dropping it tells the room this member left.
    _membership: Membership,
    sent_seq: Seq,
    /// Posts with the room, answered in order.
    acks: FuturesOrdered<AckFuture>,
}

type AckFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = (String, Result<Seq, RoomError>)> + Send>>;

/// Runs a session on an upgraded socket until it ends, then says goodbye.
pub(super) async fn run<D: Dialect>(
    socket: WebSocket,
    room: RoomName,
    ip: IpAddr,
    state: &AppState,
    dialect: D,
) {
    let mut session = Session {
        socket: Socket {
            inner: socket,
            write_timeout: state.sessions.write_timeout,
        },
        dialect,
        state,
        room,
        ip,
        out: Vec::with_capacity(4),
    };
    let end = match session.serve().await {
        Ok(end) | Err(end) => end,
    };
    session.close(end).await;
    debug!("session ended");
}

impl<D: Dialect> Session<'_, D> {
    async fn serve(&mut self) -> Result<End, End> {
        let shutdown = self.state.shutdown.clone();
        let join = tokio::select! {
            join = timeout(JOIN_TIMEOUT, self.read_join()) => {
                join.map_err(|_| End::Close(close_code::JOIN_TIMEOUT, "join timeout"))??
            }
            _ = shutdown.cancelled() => return Ok(RESTARTING),
        };
        let mut room = self.enter(join).await?;
        self.follow(&mut room).await
    }

    /// Reads frames until the join; a refused join closes the socket.
    async fn read_join(&mut self) -> Result<JoinRequest, End> {
        loop {
            let Some(Ok(frame)) = self.socket.recv().await else {
                return Err(End::Gone);
            };
            let frame = match &frame {
                Message::Text(text) => Incoming::Text(text.as_str()),
                Message::Binary(_) => Incoming::Binary,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(_) => return Err(End::Gone),
            };
            match self.dialect.join(frame, &mut self.out) {
                Ok(join) => return Ok(join),
                Err(Close { code, reason }) => {
                    self.socket.write_all(&mut self.out).await?;
                    return Err(End::Close(code, reason));
                }
            }
        }
    }

    /// Enters the room (retrying once if an idle room task was exiting just then), welcomes the
    /// client and catches it up from the engine to the head reported at subscription.
    async fn enter(&mut self, join: JoinRequest) -> Result<InRoom, End> {
        let rooms = &self.state.rooms;
        let mut handle = rooms.get(&self.room);
        let joined = match handle.join(join.name.clone()).await {
            Ok(joined) => joined,
            Err(RoomError::Closed) => {
                handle = rooms.get(&self.room);
                handle
                    .join(join.name.clone())
                    .await
                    .map_err(|_| ROOM_UNAVAILABLE)?
            }
            Err(RoomError::Unavailable) => return Err(ROOM_UNAVAILABLE),
        };
        self.dialect.encode(
            Outgoing::Welcome {
                room: &self.room,
                name: &join.name,
                head: joined.head,
                online: &joined.online,
            },
            &mut self.out,
        );
        if joined.degraded {
            self.dialect.encode(Outgoing::Degraded, &mut self.out);
        }
        self.socket.write_all(&mut self.out).await?;
        let mut sent_seq = match join.after_seq {
            Some(seq) => seq.min(joined.head),
            None => joined.head.saturating_sub(JOIN_BACKLOG as Seq),
        };
        self.catch_up(&mut sent_seq, Some(joined.head)).await?;
        self.dialect.encode(Outgoing::CaughtUp, &mut self.out);
        self.socket.write_all(&mut self.out).await?;
        Ok(InRoom {
            handle,
            name: join.name,
            live: joined.live,
            _membership: joined.membership,
            sent_seq,
            acks: FuturesOrdered::new(),
        })
    }

    /// Follows the room live: the client's frames, acknowledgements, the room's deliveries, pings.
    async fn follow(&mut self, room: &mut InRoom) -> Result<End, End> {
        let settings = self.state.sessions;
        let shutdown = self.state.shutdown.clone();
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
                _ = shutdown.cancelled() => return self.drain(room).await,
                () = &mut silence => {
                    debug!("peer silent past the timeout");
                    return Ok(End::Close(close_code::PEER_TIMEOUT, "no response"));
                }
                frame = self.socket.recv(), if room.acks.len() < settings.max_pending => {
                    silence.as_mut().reset(Instant::now() + settings.peer_timeout);
                    if let Some(end) = self.on_frame(frame, room).await? {
                        return Ok(end);
                    }
                }
                Some((client_id, result)) = room.acks.next() => self.on_ack(client_id, result).await?,
                delivery = room.live.recv() => self.on_delivery(delivery, room).await?,
                _ = ping.tick() => self.socket.write(Message::Ping(Default::default())).await?,
            }
        }
    }

    /// A frame from the client: a post goes to the room, anything else is answered.
    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, axum::Error>>,
        room: &mut InRoom,
    ) -> Result<Option<End>, End> {
        let Some(Ok(frame)) = frame else {
            return Ok(Some(End::Gone));
        };
        let frame = match &frame {
            Message::Text(text) => Incoming::Text(text.as_str()),
            Message::Binary(_) => Incoming::Binary,
            Message::Close(_) => return Ok(Some(End::Gone)),
            Message::Ping(_) | Message::Pong(_) => return Ok(None),
        };
        if let Some(post) = self.dialect.post(frame, &mut self.out) {
            self.post(post, room).await?;
        }
        self.socket.write_all(&mut self.out).await?;
        Ok(None)
    }

    /// Hands a post to the room, unless the rate limit refuses it.
    async fn post(&mut self, post: PostRequest, room: &mut InRoom) -> Result<(), End> {
        if let Err(retry_after) = self.state.guard.check_post(self.ip).await {
            self.state.metrics.rejected(Rejection::RateLimited);
            let client_id = post.client_id;
            let refusal = Outgoing::RateLimited {
                client_id,
                retry_after,
            };
            self.dialect.encode(refusal, &mut self.out);
            return Ok(());
        }
        let reply = room
            .handle
            .send(room.name.clone(), post.client_id.clone(), post.text)
            .await
            .map_err(|_| ROOM_UNAVAILABLE)?;
        room.acks.push_back(ack_future(post.client_id, reply));
        Ok(())
    }

    async fn on_ack(
        &mut self,
        client_id: String,
        result: Result<Seq, RoomError>,
    ) -> Result<(), End> {
        if result.is_err() {
            self.state.metrics.rejected(Rejection::Unavailable);
        }
        self.dialect
            .encode(Outgoing::Ack { client_id, result }, &mut self.out);
        self.socket.write_all(&mut self.out).await
    }

    /// Takes everything the room has already sent (up to [`WRITE_BATCH`]), queues it on the
    /// socket and flushes once: one write for a burst instead of one per frame.
    async fn on_delivery(
        &mut self,
        first: Result<Arc<Delivery>, broadcast::error::RecvError>,
        room: &mut InRoom,
    ) -> Result<(), End> {
        let mut next = Some(first);
        let mut queued = 0;
        // Counted once per write: metrics stay off the per-delivery path.
        let mut delivered = 0u64;
        let mut oldest: Option<Instant> = None;
        while let Some(delivery) = next.take() {
            match delivery {
                Ok(d) => {
                    if let Some(seq) = d.seq {
                        if seq <= room.sent_seq {
                            next = try_next(&mut room.live, &mut queued);
                            continue;
                        }
                        if seq != room.sent_seq + 1 {
                            // Should not happen (the room commits in order), but never leave a
                            // hole.
                            self.socket.flush().await?;
                            self.catch_up(&mut room.sent_seq, Some(seq - 1)).await?;
                        }
                        room.sent_seq = seq;
                        delivered += 1;
                        oldest.get_or_insert(d.committed_at);
                    }
                    self.dialect.encode(Outgoing::Live(&d), &mut self.out);
                    self.socket.feed_all(&mut self.out).await?;
                    next = try_next(&mut room.live, &mut queued);
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    debug!(skipped, "lagged behind the room; catching up from storage");
                    self.state.metrics.slow_consumer(SlowConsumer::CaughtUp);
                    self.socket.flush().await?;
                    self.catch_up(&mut room.sent_seq, None).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(RESTARTING),
            }
        }
        self.socket.flush().await?;
        if let Some(oldest) = oldest {
            let metrics = &self.state.metrics;
            metrics.deliveries.inc_by(delivered);
            metrics
                .fanout_seconds
                .observe(oldest.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// Shutdown: stop reading; answer what is already with the room (it commits before it
    /// stops), then ask the client to reconnect.
    async fn drain(&mut self, room: &mut InRoom) -> Result<End, End> {
        let deadline = Instant::now() + ACK_DRAIN;
        while let Ok(Some((client_id, result))) =
            tokio::time::timeout_at(deadline, room.acks.next()).await
        {
            self.dialect
                .encode(Outgoing::Ack { client_id, result }, &mut self.out);
            self.socket.write_all(&mut self.out).await?;
        }
        Ok(RESTARTING)
    }

    /// Sends the close frame an ending asks for and finishes the closing handshake.
    async fn close(&mut self, end: End) {
        let End::Close(code, reason) = end else {
            return;
        };
        if code == close_code::TOO_SLOW {
            self.state.metrics.slow_consumer(SlowConsumer::Disconnected);
        }
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let socket = &mut self.socket.inner;
        let closing = async {
            socket.send(Message::Close(Some(frame))).await?;
            // Read (and drop) what the client sent meanwhile until its close arrives. Closing a
            // socket with unread data makes the kernel reset the connection, and a reset can
            // destroy the close frame before the client reads it.
            while let Some(Ok(_)) = socket.recv().await {}
            Ok::<(), axum::Error>(())
        };
        let _ = timeout(CLOSE_TIMEOUT, closing).await;
    }
}

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

fn ack_future(client_id: String, reply: SendReply) -> AckFuture {
    Box::pin(async move { (client_id, reply.await.unwrap_or(Err(RoomError::Closed))) })
}
