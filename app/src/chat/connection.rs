//! One open connection of the browser's room task (hydrate only): what each frame from the
//! server does to it, keeping it alive (pings, answers due), and sending the outbox, edits and
//! deletes. The task in `socket.rs` decides when to connect and when to give up.

use futures::{FutureExt, SinkExt};
use gloo_net::websocket::Message;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;

use super::socket::{refusal, Browser};
use super::{ConnState, Delivery, Me, RoomState};
use crate::protocol::{ClientMsg, ServerMsg};

/// After this long without a frame from the server, send a `ping`.
const HEARTBEAT_IDLE_MS: u32 = 10_000;
/// A connection that answers neither the join nor a `ping` within this long is taken as dead
/// (the browser may not notice for minutes) and replaced. So a dead connection is noticed at
/// most `HEARTBEAT_IDLE_MS + RESPONSE_TIMEOUT_MS` after the server was last heard from.
const RESPONSE_TIMEOUT_MS: u32 = 5_000;

/// One open connection's state. Each handler's `Err` ends the connection.
pub(super) struct Connection {
    /// Whether the welcome arrived.
    pub(super) joined: bool,
    /// Armed when the server asks us to hold back (rate limit, storage briefly unavailable).
    pub(super) retry: futures::future::Fuse<TimeoutFuture>,
    /// The join, then pings and messages, must be answered in time.
    pub(super) liveness: Liveness,
}

impl Connection {
    /// Nothing heard for a while: ping, or give up on a connection that did not answer one.
    pub(super) async fn on_timer<S: futures::Sink<Message> + Unpin>(
        &mut self,
        sink: &mut S,
    ) -> Result<(), ()> {
        if self.liveness.awaiting_answer {
            leptos::logging::warn!("no answer from the server; reconnecting");
            return Err(());
        }
        self.ping(sink).await
    }

    pub(super) async fn ping<S: futures::Sink<Message> + Unpin>(
        &mut self,
        sink: &mut S,
    ) -> Result<(), ()> {
        let ping = Message::Text(ClientMsg::Ping.encode());
        sink.send(ping).await.map_err(|_| ())?;
        self.liveness.expect_answer();
        Ok(())
    }

    /// Asks for a roster page, once joined.
    pub(super) async fn ask_roster<S: futures::Sink<Message> + Unpin>(
        &mut self,
        after: Option<String>,
        query: Option<String>,
        sink: &mut S,
    ) -> Result<(), ()> {
        if !self.joined {
            return Ok(());
        }
        let ask = Message::Text(ClientMsg::Roster { after, query }.encode());
        sink.send(ask).await.map_err(|_| ())
    }

    /// Says the reader is typing, once joined.
    pub(super) async fn typing<S: futures::Sink<Message> + Unpin>(
        &mut self,
        sink: &mut S,
    ) -> Result<(), ()> {
        if !self.joined {
            return Ok(());
        }
        sink.send(Message::Text(ClientMsg::Typing.encode()))
            .await
            .map_err(|_| ())
    }

    /// Sends an edit or a delete, once joined.
    pub(super) async fn change<S: futures::Sink<Message> + Unpin>(
        &mut self,
        client_id: String,
        seq: crate::protocol::Seq,
        text: Option<String>,
        sink: &mut S,
    ) -> Result<(), ()> {
        if !self.joined {
            return Ok(());
        }
        let frame = match text {
            Some(text) => ClientMsg::Edit {
                client_id,
                seq,
                text,
            },
            None => ClientMsg::Delete { client_id, seq },
        };
        sink.send(Message::Text(frame.encode()))
            .await
            .map_err(|_| ())?;
        self.liveness.expect_answer();
        Ok(())
    }

    /// Sends the queued outbox, once joined.
    pub(super) async fn send_queued<S: futures::Sink<Message> + Unpin>(
        &mut self,
        state: &RoomState,
        sink: &mut S,
    ) -> Result<(), ()> {
        if !self.joined {
            return Ok(());
        }
        send_queued(state, sink, &mut self.liveness).await
    }

    pub(super) async fn on_text<S: futures::Sink<Message> + Unpin>(
        &mut self,
        state: &RoomState,
        text: &str,
        sink: &mut S,
    ) -> Result<(), ()> {
        let Ok(msg) = serde_json::from_str::<ServerMsg>(text) else {
            leptos::logging::warn!("ignoring an unreadable frame from the server");
            return Ok(());
        };
        let welcome = matches!(msg, ServerMsg::Welcome { .. });
        if self.joined || welcome {
            self.liveness.heard();
        }
        if let Some(stop) = refusal(&msg) {
            // A close follows; the page says why and waits for the reader.
            state.stopped.set(Some(stop));
            state.conn.set(ConnState::Stopped);
            return Err(());
        }
        if let ServerMsg::Welcome {
            name,
            user_id,
            can_post,
            ..
        } = &msg
        {
            state.me.set(Some(Me {
                name: name.clone(),
                user_id: user_id.clone(),
                can_post: *can_post,
            }));
        }
        if welcome {
            self.joined = true;
            state.conn.set(ConnState::Connected);
            // A degraded server says so right after the welcome.
            state.degraded.set(false);
            state.notice.set(None);
            return self.send_queued(state, sink).await;
        }
        if let Some(wait) = super::frames::apply(state, msg) {
            // Hold the queue; the next sends go out when the wait is over.
            self.retry = TimeoutFuture::new(wait).fuse();
        }
        Ok(())
    }

    pub(super) async fn on_network<S: futures::Sink<Message> + Unpin>(
        &mut self,
        state: &RoomState,
        change: Option<Browser>,
        sink: &mut S,
    ) -> Result<(), ()> {
        match change {
            Some(Browser::Offline) => {
                state.conn.set(ConnState::Offline);
                Err(())
            }
            Some(Browser::Visible) if self.joined && !self.liveness.awaiting_answer => {
                self.ping(sink).await
            }
            _ => Ok(()),
        }
    }
}

/// Whether the connection still works, as far as the client can tell. The browser may report
/// nothing for minutes about a connection that died without a close, and even accept sends on it.
pub(super) struct Liveness {
    /// Something was sent that the server must answer (the join, a ping, a message).
    pub(super) awaiting_answer: bool,
    /// When that answer is overdue, or (when nothing is awaited) when to send a ping.
    pub(super) timer: futures::future::Fuse<TimeoutFuture>,
}

impl Liveness {
    /// A new connection, whose join awaits its welcome.
    pub(super) fn new() -> Self {
        Self {
            awaiting_answer: true,
            timer: TimeoutFuture::new(RESPONSE_TIMEOUT_MS).fuse(),
        }
    }

    /// A frame arrived after the welcome: the connection is alive.
    pub(super) fn heard(&mut self) {
        self.awaiting_answer = false;
        self.timer = TimeoutFuture::new(HEARTBEAT_IDLE_MS).fuse();
    }

    /// Something went out that the server answers: an answer is due within the timeout, so a
    /// message sent on a dead connection is noticed (and resent on a new one) within seconds.
    pub(super) fn expect_answer(&mut self) {
        if !self.awaiting_answer {
            self.awaiting_answer = true;
            self.timer = TimeoutFuture::new(RESPONSE_TIMEOUT_MS).fuse();
        }
    }
}

/// Sends every queued outbox entry, in order, and marks it as sending.
async fn send_queued<S>(state: &RoomState, sink: &mut S, liveness: &mut Liveness) -> Result<(), ()>
where
    S: futures::Sink<Message> + Unpin,
{
    let queued: Vec<(String, String)> = state.outbox.with_untracked(|o| {
        o.iter()
            .filter(|e| e.delivery == Delivery::Queued)
            .map(|e| (e.client_id.clone(), e.text.clone()))
            .collect()
    });
    for (client_id, text) in queued {
        let frame = ClientMsg::Send {
            client_id: client_id.clone(),
            text,
        }
        .encode();
        sink.send(Message::Text(frame)).await.map_err(|_| ())?;
        liveness.expect_answer();
        state.outbox.update(|o| {
            if let Some(e) = o
                .iter_mut()
                .find(|e| e.client_id == client_id && e.delivery == Delivery::Queued)
            {
                e.delivery = Delivery::Sending;
            }
        });
    }
    Ok(())
}
