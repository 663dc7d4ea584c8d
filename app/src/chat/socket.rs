//! The browser's WebSocket task for one room (hydrate only).
//!
//! One task per open room page. It joins, resumes after the last delivered sequence number, sends
//! the outbox in order, and on any drop reconnects with jittered exponential backoff. The outbox
//! lives in [`RoomState`], not in the socket, so nothing typed is lost across reconnects; the
//! server's idempotency on `client_id` makes a resend after a lost acknowledgement harmless.

use futures::{
    channel::mpsc,
    future::{AbortHandle, Abortable},
    select, FutureExt, SinkExt, StreamExt,
};
use gloo_net::websocket::{futures::WebSocket, Message};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;

use super::connection::{Connection, Liveness};
use super::{ConnState, RoomState, Stop};
use crate::browser;
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};

/// First retry delay after a drop; doubles per failed attempt.
const BACKOFF_BASE_MS: f64 = 500.0;
/// Longest delay between attempts.
const BACKOFF_MAX_MS: f64 = 15_000.0;
/// How often to look whether the browser is back online.
const OFFLINE_POLL_MS: u32 = 1_000;

/// What the page asks of the task.
enum Ask {
    /// Send newly queued outbox entries.
    Flush,
    /// Ask the room for a page of its roster (dropped while not connected).
    Roster {
        after: Option<String>,
        query: Option<String>,
    },
    /// Try again now after a refusal.
    Retry,
    /// Tell the room the reader is typing (dropped while not connected).
    Typing,
    /// Edit (`Some(text)`) or delete message `seq` (dropped while not connected).
    Change {
        client_id: String,
        seq: crate::protocol::Seq,
        text: Option<String>,
    },
}

/// Controls the task from the page.
#[derive(Clone)]
pub struct Handle {
    kick: mpsc::UnboundedSender<Ask>,
    abort: AbortHandle,
}

impl Handle {
    pub fn flush(&self) {
        let _ = self.kick.unbounded_send(Ask::Flush);
    }

    pub fn roster(&self, after: Option<String>, query: Option<String>) {
        let _ = self.kick.unbounded_send(Ask::Roster { after, query });
    }

    pub fn change(&self, client_id: String, seq: crate::protocol::Seq, text: Option<String>) {
        let _ = self.kick.unbounded_send(Ask::Change {
            client_id,
            seq,
            text,
        });
    }

    pub fn retry(&self) {
        let _ = self.kick.unbounded_send(Ask::Retry);
    }

    pub fn typing(&self) {
        let _ = self.kick.unbounded_send(Ask::Typing);
    }

    pub fn stop(&self) {
        self.abort.abort();
    }
}

/// What the browser tells the page about its surroundings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Browser {
    /// The network went: drop the socket at once rather than wait for it to time out.
    Offline,
    /// The network came back: reconnect at once.
    Online,
    /// The tab came back to the foreground (timers may have been throttled, the machine may have
    /// slept): check the connection now, or reconnect now if waiting.
    Visible,
}

pub fn spawn(state: RoomState, room: String, name: String) -> Handle {
    let (kick, kick_rx) = mpsc::unbounded();
    let (network, network_rx) = mpsc::unbounded();
    let on_offline = network.clone();
    let offline = window_event_listener(leptos::ev::offline, move |_| {
        let _ = on_offline.unbounded_send(Browser::Offline);
    });
    let on_online = network.clone();
    let online = window_event_listener(leptos::ev::online, move |_| {
        let _ = on_online.unbounded_send(Browser::Online);
    });
    let visible = window_event_listener_untyped("visibilitychange", move |_| {
        if !document().hidden() {
            let _ = network.unbounded_send(Browser::Visible);
        }
    });
    on_cleanup(move || {
        offline.remove();
        online.remove();
        visible.remove();
    });
    let (abort, registration) = AbortHandle::new_pair();
    leptos::task::spawn_local(async move {
        let _ = Abortable::new(run(state, room, name, kick_rx, network_rx), registration).await;
    });
    Handle { kick, abort }
}

async fn run(
    state: RoomState,
    room: String,
    name: String,
    mut kick: mpsc::UnboundedReceiver<Ask>,
    mut network: mpsc::UnboundedReceiver<Browser>,
) {
    let path = format!("/api/rooms/{room}/ws");
    // A room this browser created: its key makes the creator the owner.
    let owner_key = crate::api::owner_key(&room);
    let mut failures: u32 = 0;
    loop {
        while !browser::is_online() {
            state.conn.set(ConnState::Offline);
            select! {
                _ = TimeoutFuture::new(OFFLINE_POLL_MS).fuse() => {}
                _ = network.next() => {}
            }
        }
        let joining = Joining {
            path: &path,
            name: &name,
            owner_key: owner_key.as_deref(),
        };
        let refused_for = match connect_once(&state, joining, &mut kick, &mut network).await {
            Session::PageGone => return,
            Session::Refused => {
                // Nothing changes by itself: wait for the reader to act, or to come back.
                if !wait_for_reader(&mut kick, &mut network).await {
                    return;
                }
                state.stopped.set(None);
                state.conn.set(ConnState::Connecting);
                continue;
            }
            Session::Ended { joined: true } => {
                failures = 0;
                None
            }
            // A browser cannot see why an upgrade failed; the server says it on a plain request.
            Session::Ended { joined: false } => browser::join_refusal(&path).await,
        };
        state.requeue_unacknowledged();
        if !browser::is_online() {
            // Straight to waiting for the network; no backoff needed.
            continue;
        }
        failures = failures.saturating_add(1);
        state
            .conn
            .set(ConnState::Reconnecting { attempt: failures });
        let wait = match refused_for {
            Some(ms) => {
                let secs = ms.div_ceil(1000);
                state.notice.set(Some(format!(
                    "Too many connection attempts from your network. Trying again in {secs} s."
                )));
                ms.max(backoff_ms(failures))
            }
            None => backoff_ms(failures),
        };
        if refused_for.is_some() {
            // The server said how long: coming back to the tab does not shorten it.
            TimeoutFuture::new(wait).await;
            continue;
        }
        select! {
            _ = TimeoutFuture::new(wait).fuse() => {}
            // Back online, or back in the foreground: try now.
            _ = network.next() => {}
        }
    }
}

/// A refusal of the reader as they are (not of one message): they must sign in (again), are not
/// a member, or chose a name a verified person holds.
pub(super) fn refusal(msg: &ServerMsg) -> Option<Stop> {
    match msg {
        ServerMsg::Error {
            code,
            message,
            client_id: None,
            ..
        } if matches!(
            code,
            ErrorCode::SignInRequired
                | ErrorCode::SignInExpired
                | ErrorCode::Forbidden
                | ErrorCode::NameTaken
                | ErrorCode::Banned
        ) =>
        {
            Some(Stop {
                code: *code,
                message: message.clone(),
            })
        }
        _ => None,
    }
}

/// Waits until the reader asks to try again or comes back to the page; `false` when the page
/// is gone.
async fn wait_for_reader(
    kick: &mut mpsc::UnboundedReceiver<Ask>,
    network: &mut mpsc::UnboundedReceiver<Browser>,
) -> bool {
    loop {
        select! {
            asked = kick.next() => match asked {
                Some(Ask::Retry) => return true,
                Some(_) => {}
                None => return false,
            },
            change = network.next() => match change {
                Some(Browser::Visible | Browser::Online) => return true,
                Some(Browser::Offline) => {}
                None => return false,
            },
        }
    }
}

/// "Equal jitter": half the exponential delay, plus a random part of the other half, so that many
/// clients dropped at once do not come back at once.
fn backoff_ms(failures: u32) -> u32 {
    let exp = BACKOFF_BASE_MS * 2f64.powi(failures.saturating_sub(1).min(16) as i32);
    let capped = exp.min(BACKOFF_MAX_MS);
    (capped / 2.0 + browser::jitter() * capped / 2.0) as u32
}

/// What a connection joins with.
#[derive(Clone, Copy)]
struct Joining<'a> {
    path: &'a str,
    name: &'a str,
    owner_key: Option<&'a str>,
}

enum Session {
    /// The connection ended; `joined` says whether it got as far as the welcome.
    Ended { joined: bool },
    /// The server will not let this reader in as they are (see [`RoomState::stopped`]).
    Refused,
    /// The page that owned this task is gone.
    PageGone,
}

/// One connection, from opening to its end: joins, then keeps it alive and sends the outbox
/// until the connection or the page goes.
async fn connect_once(
    state: &RoomState,
    Joining {
        path,
        name,
        owner_key,
    }: Joining<'_>,
    kick: &mut mpsc::UnboundedReceiver<Ask>,
    network: &mut mpsc::UnboundedReceiver<Browser>,
) -> Session {
    let Some(socket) = browser::websocket_url(path).and_then(|url| WebSocket::open(&url).ok())
    else {
        return Session::Ended { joined: false };
    };
    let (mut sink, stream) = socket.split();
    let mut stream = stream.fuse();
    let join = ClientMsg::Join {
        // The session cookie says who a signed-in reader is.
        token: None,
        owner_key: owner_key.map(str::to_owned),
        name: name.to_owned(),
        // The page shows everything up to last_seq (server-rendered history, then live
        // messages): resume right after it, so nothing is missed and nothing arrives twice.
        after_seq: Some(state.last_seq()),
        key: Some(browser::sender_key()),
    };
    if sink.send(Message::Text(join.encode())).await.is_err() {
        return Session::Ended { joined: false };
    }
    let mut conn = Connection {
        joined: false,
        retry: futures::future::Fuse::terminated(),
        liveness: Liveness::new(),
    };
    loop {
        let step = select! {
            _ = &mut conn.liveness.timer => conn.on_timer(&mut sink).await,
            _ = &mut conn.retry => conn.send_queued(state, &mut sink).await,
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => conn.on_text(state, &text, &mut sink).await,
                Some(Ok(Message::Bytes(_))) => Ok(()),
                Some(Err(_)) | None => Err(()),
            },
            change = network.next() => conn.on_network(state, change, &mut sink).await,
            asked = kick.next() => match asked {
                Some(Ask::Flush) => conn.send_queued(state, &mut sink).await,
                Some(Ask::Roster { after, query }) => conn.ask_roster(after, query, &mut sink).await,
                Some(Ask::Retry) => Ok(()),
                Some(Ask::Typing) => conn.typing(&mut sink).await,
                Some(Ask::Change { client_id, seq, text }) => conn.change(client_id, seq, text, &mut sink).await,
                None => return Session::PageGone,
            },
        };
        if step.is_err() {
            if state.stopped.with_untracked(Option::is_some) {
                return Session::Refused;
            }
            return Session::Ended {
                joined: conn.joined,
            };
        }
    }
}
