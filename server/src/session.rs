//! One WebSocket connection to one room: the upgrade handler and the per-socket `select!` loop.
//!
//! A session reads frames (join, then sends), forwards sends to the room task, writes
//! acknowledgements and the room's live messages, and catches up from the store whenever it is
//! behind (on join, and after lagging behind the room's live buffer). `sent_seq` is the last
//! sequence number written to this socket; nothing at or below it is ever written again.

use std::collections::VecDeque;
use std::time::Duration;

use app::limits::{validate_client_id, validate_display_name, validate_message_text, RoomName};
use app::protocol::{close_code, ClientMsg, ErrorCode, Seq, ServerMsg, JOIN_BACKLOG};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use tokio::sync::{broadcast, oneshot};
use tokio::time::{timeout, Instant};
use tracing::{debug, info_span, warn, Instrument};

use crate::room::{RoomError, RoomHandle};
use crate::AppState;

/// Largest frame or message a client may send. A maximal message (4000 bytes, JSON-escaped) fits.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// How long a new socket may take to send its `join`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write may block before the client counts as not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Ping interval; a client silent for three of them is dropped.
const PING_INTERVAL: Duration = Duration::from_secs(20);
/// Sends awaiting their commit per socket; beyond this the session stops reading (backpressure).
const MAX_IN_FLIGHT: usize = 32;
/// Messages read from the store per catch-up page.
const CATCH_UP_PAGE: usize = 500;

/// `GET /api/rooms/{room}/ws`
pub async fn upgrade(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    State(state): State<AppState>,
) -> Response {
    let room = match RoomName::parse(&room) {
        Ok(room) => room,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    ws.max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .write_buffer_size(32 * 1024)
        .max_write_buffer_size(256 * 1024)
        .on_upgrade(move |socket| {
            let span = info_span!("session", room = %room);
            run(socket, room, state).instrument(span)
        })
}

/// Why a session ended; decides the close frame.
enum End {
    /// The client closed or the connection broke: nothing more to send.
    Gone,
    Close(u16, &'static str),
}

async fn run(mut socket: WebSocket, room: RoomName, state: AppState) {
    let end = match session(&mut socket, &room, &state).await {
        Ok(end) | Err(end) => end,
    };
    if let End::Close(code, reason) = end {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = timeout(WRITE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    }
    debug!("session ended");
}

async fn session(socket: &mut WebSocket, room: &RoomName, state: &AppState) -> Result<End, End> {
    let shutdown = state.shutdown.clone();
    // 1. The join frame.
    let (name, after_seq) = tokio::select! {
        join = timeout(JOIN_TIMEOUT, read_join(socket)) => join.map_err(|_| End::Close(close_code::JOIN_TIMEOUT, "join timeout"))??,
        _ = shutdown.cancelled() => return Ok(End::Close(close_code::SERVICE_RESTART, "server restarting")),
    };

    // 2. Subscribe; retry once if an idle room task was exiting just then.
    let mut handle = state.rooms.get(room);
    let joined = match handle.join(name.clone()).await {
        Ok(j) => j,
        Err(RoomError::Closed) => {
            handle = state.rooms.get(room);
            handle
                .join(name.clone())
                .await
                .map_err(|_| End::Close(close_code::SERVICE_RESTART, "room unavailable"))?
        }
        Err(RoomError::Unavailable) => {
            return Err(End::Close(close_code::SERVICE_RESTART, "room unavailable"))
        }
    };
    let mut live = joined.live;
    // Held until this function returns: dropping it tells the room this member left.
    let _membership = joined.membership;
    send(
        socket,
        &ServerMsg::Welcome {
            room: room.to_string(),
            name: name.clone(),
            last_seq: joined.head,
        },
    )
    .await?;
    send(
        socket,
        &ServerMsg::Presence {
            online: joined.online,
            joined: Vec::new(),
            left: Vec::new(),
            at_seq: joined.head,
        },
    )
    .await?;

    // 3. Catch up from the store to the head, then follow live.
    let mut sent_seq: Seq = match after_seq {
        Some(seq) => seq.min(joined.head),
        None => joined.head.saturating_sub(JOIN_BACKLOG as Seq),
    };
    catch_up(socket, state, room, &mut sent_seq, Some(joined.head)).await?;

    let mut acks: FuturesOrdered<AckFuture> = FuturesOrdered::new();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(End::Close(close_code::SERVICE_RESTART, "server restarting")),
            frame = socket.recv(), if acks.len() < MAX_IN_FLIGHT => {
                last_heard = Instant::now();
                let Some(Ok(frame)) = frame else { return Ok(End::Gone) };
                match frame {
                    Message::Text(text) => {
                        if let Some(ack) = on_frame(socket, &handle, &name, text.as_str()).await? {
                            acks.push_back(ack);
                        }
                    }
                    Message::Binary(_) => {
                        send_error(socket, ErrorCode::BadFrame, "Frames must be JSON text.".into(), None).await?;
                    }
                    Message::Close(_) => return Ok(End::Gone),
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
            Some((client_id, result)) = acks.next() => {
                let frame = match result {
                    Ok(seq) => ServerMsg::Ack { client_id, seq },
                    Err(e) => ServerMsg::Error {
                        code: e.code(),
                        message: "The message could not be stored; it was not sent. Try again.".into(),
                        client_id: Some(client_id),
                    },
                };
                send(socket, &frame).await?;
            }
            delivery = live.recv() => match delivery {
                Ok(d) => match d.seq {
                    None => send_raw(socket, &d.frame).await?,
                    Some(seq) if seq > sent_seq => {
                        if seq != sent_seq + 1 {
                            // Should not happen (the room commits in order), but never leave a hole.
                            catch_up(socket, state, room, &mut sent_seq, Some(seq - 1)).await?;
                        }
                        send_raw(socket, &d.frame).await?;
                        sent_seq = seq;
                    }
                    Some(_) => {}
                },
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    debug!(skipped, "lagged behind the room; catching up from storage");
                    catch_up(socket, state, room, &mut sent_seq, None).await?;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Ok(End::Close(close_code::SERVICE_RESTART, "room restarting"));
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > PING_INTERVAL * 3 {
                    return Ok(End::Close(close_code::TOO_SLOW, "no response"));
                }
                write(socket, Message::Ping(Default::default())).await?;
            }
        }
    }
}

type AckFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = (String, Result<Seq, RoomError>)> + Send>>;

fn ack_future(client_id: String, rx: oneshot::Receiver<Result<Seq, RoomError>>) -> AckFuture {
    Box::pin(async move { (client_id, rx.await.unwrap_or(Err(RoomError::Closed))) })
}

/// Reads frames until a valid `join`; anything else closes the socket with a reason.
async fn read_join(socket: &mut WebSocket) -> Result<(String, Option<Seq>), End> {
    loop {
        let Some(Ok(frame)) = socket.recv().await else {
            return Err(End::Gone);
        };
        let text = match frame {
            Message::Text(text) => text,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => return Err(End::Gone),
            Message::Binary(_) => {
                send_error(
                    socket,
                    ErrorCode::BadFrame,
                    "Frames must be JSON text.".into(),
                    None,
                )
                .await?;
                return Err(End::Close(close_code::BAD_JOIN, "expected join"));
            }
        };
        return match ClientMsg::decode(text.as_str()) {
            Ok(ClientMsg::Join { name, after_seq }) => match validate_display_name(&name) {
                Ok(name) => Ok((name, after_seq)),
                Err(e) => {
                    send_error(socket, ErrorCode::InvalidName, e.to_string(), None).await?;
                    Err(End::Close(close_code::BAD_JOIN, "invalid name"))
                }
            },
            Ok(_) => {
                send_error(
                    socket,
                    ErrorCode::BadSequence,
                    "The first frame must be a join.".into(),
                    None,
                )
                .await?;
                Err(End::Close(close_code::BAD_JOIN, "expected join"))
            }
            Err(e) => {
                send_error(socket, ErrorCode::BadFrame, e, None).await?;
                Err(End::Close(close_code::BAD_JOIN, "expected join"))
            }
        };
    }
}

/// Handles one text frame after the join. Returns the acknowledgement to wait for, if any.
async fn on_frame(
    socket: &mut WebSocket,
    room: &RoomHandle,
    name: &str,
    text: &str,
) -> Result<Option<AckFuture>, End> {
    let (client_id, text) = match ClientMsg::decode(text) {
        Ok(ClientMsg::Send { client_id, text }) => (client_id, text),
        Ok(ClientMsg::Join { .. }) => {
            send_error(
                socket,
                ErrorCode::BadSequence,
                "Already joined.".into(),
                None,
            )
            .await?;
            return Ok(None);
        }
        Err(e) => {
            send_error(socket, ErrorCode::BadFrame, e, None).await?;
            return Ok(None);
        }
    };
    if let Err(e) = validate_client_id(&client_id) {
        send_error(socket, ErrorCode::InvalidClientId, e.to_string(), None).await?;
        return Ok(None);
    }
    let text = match validate_message_text(&text) {
        Ok(t) => t,
        Err(e) => {
            send_error(
                socket,
                ErrorCode::InvalidMessage,
                e.to_string(),
                Some(client_id),
            )
            .await?;
            return Ok(None);
        }
    };
    match room.send(name.to_owned(), client_id.clone(), text).await {
        Ok(rx) => Ok(Some(ack_future(client_id, rx))),
        Err(_) => Err(End::Close(close_code::SERVICE_RESTART, "room unavailable")),
    }
}

/// Sends stored messages after `sent_seq`, up to `until` (or until the store has no more).
async fn catch_up(
    socket: &mut WebSocket,
    state: &AppState,
    room: &RoomName,
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
        let mut batch = VecDeque::from(page);
        while let Some(m) = batch.pop_front() {
            if until.is_some_and(|u| m.seq > u) {
                return Ok(());
            }
            let seq = m.seq;
            send(socket, &ServerMsg::Message(m)).await?;
            *sent_seq = seq;
        }
    }
}

async fn send_error(
    socket: &mut WebSocket,
    code: ErrorCode,
    message: String,
    client_id: Option<String>,
) -> Result<(), End> {
    send(
        socket,
        &ServerMsg::Error {
            code,
            message,
            client_id,
        },
    )
    .await
}

async fn send(socket: &mut WebSocket, msg: &ServerMsg) -> Result<(), End> {
    write(socket, Message::Text(msg.encode().into())).await
}

async fn send_raw(socket: &mut WebSocket, frame: &str) -> Result<(), End> {
    write(socket, Message::Text(frame.into())).await
}

/// Writes one frame; a client that does not take it within [`WRITE_TIMEOUT`] is dropped.
async fn write(socket: &mut WebSocket, msg: Message) -> Result<(), End> {
    match timeout(WRITE_TIMEOUT, socket.send(msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(close_code::TOO_SLOW, "not reading")),
    }
}
