//! The client side of one room: what the page shows (messages, outbox, connection state) and, in the
//! browser, the WebSocket task that keeps it in sync with the server.
//!
//! The state here compiles on both sides so the server can render the same page; only the socket
//! task ([`socket`]) is browser-only.

#[cfg(feature = "hydrate")]
mod connection;
#[cfg(feature = "hydrate")]
mod frames;
mod roster;
#[cfg(feature = "hydrate")]
mod socket;
mod timeline;
mod unread;

pub use roster::{Change as RosterChange, Page as RosterPage, RosterView};
pub use timeline::{TimelineItem, RUN_GAP_MS};
pub use unread::{follow as follow_unread, Unread};

use leptos::prelude::*;

use crate::limits::MessageLimits;
use crate::protocol::{ChatMessage, EntryKind, Seq};

/// How the page's connection to its room is doing, as shown in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Opening the first connection (also what the server renders).
    Connecting,
    /// Joined; messages flow live.
    Connected,
    /// Lost the connection; trying again after a short, growing, jittered delay.
    Reconnecting { attempt: u32 },
    /// The browser reports no network; we retry as soon as it comes back.
    Offline,
    /// The server will not let this reader in as they are ([`RoomState::stopped`] says why);
    /// tried again when they act (sign in, choose another name) or come back to the tab.
    Stopped,
}

/// Who the server says this page is in the room (from its welcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// The name the server accepted (a verified person's is their token's).
    pub name: String,
    /// The verified user id; `None` for a guest.
    pub user_id: Option<String>,
    /// Whether this reader may post here.
    pub can_post: bool,
}

/// Why the server refused this reader, in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub code: crate::protocol::ErrorCode,
    pub message: String,
}

/// Where a message the user sent is on its way to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// In the outbox, waiting for a connection.
    Queued,
    /// Written to the socket; waiting for the server's durable acknowledgement.
    Sending,
    /// Acknowledged: stored and numbered. It leaves the outbox when the room's copy arrives.
    Sent,
}

/// A mute on this reader, as the server said.
#[derive(Debug, Clone, PartialEq)]
pub struct Muted {
    pub until_ms: f64,
    pub reason: Option<String>,
}

/// A message the user sent that the room has not yet delivered back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub client_id: String,
    pub text: String,
    pub delivery: Delivery,
}

/// A line in the stream that is not a message ("Ada joined").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Unique within the page.
    pub key: u64,
    /// Shown after the message with this sequence number.
    pub after_seq: Seq,
    pub text: String,
}

/// Notices kept on a page; older ones are dropped.
const MAX_NOTICES: usize = 50;

/// Most messages a person may have waiting in the outbox; the composer refuses more.
pub const MAX_OUTBOX: usize = 50;

/// Everything the room page shows about the conversation. Cheap to copy (signals only).
#[derive(Debug, Clone, Copy)]
pub struct RoomState {
    /// Delivered messages in sequence order, each sequence number once.
    pub messages: RwSignal<Vec<ChatMessage>>,
    /// The user's own messages not yet delivered back, in the order they were typed.
    pub outbox: RwSignal<Vec<OutboxEntry>>,
    pub conn: RwSignal<ConnState>,
    /// The last problem worth telling the user about (a refused message, for example).
    pub notice: RwSignal<Option<String>>,
    /// Whether the server said it cannot store messages right now (its storage is unreachable):
    /// messages wait in the outbox until it says it is back.
    pub degraded: RwSignal<bool>,
    /// Who is in the room (nobody until the server says).
    pub roster: RwSignal<RosterView>,
    /// Who this page is in the room, once welcomed.
    pub me: RwSignal<Option<Me>>,
    /// What is typed in the composer and not sent yet: kept here, so that it survives the
    /// composer being shown again (after a refusal, a new name).
    pub draft: RwSignal<String>,
    /// Why the server refused this reader (sign in, not a member, name taken); `None` while it
    /// lets them in.
    pub stopped: RwSignal<Option<Stop>>,
    /// Join and leave lines, in arrival order.
    pub notices: RwSignal<Vec<Notice>>,
    /// The server's message limits, checked before sending.
    pub limits: MessageLimits,
    /// The room's slow mode: one message per person per this many seconds (0: off).
    pub slow_mode_secs: u32,
    /// Under slow mode, when this reader may next post (ms since the epoch): the composer counts
    /// down to it.
    pub slow_until: RwSignal<Option<f64>>,
    /// Who else is typing, and until when (ms since the epoch) to say so.
    pub typing: RwSignal<Vec<(String, f64)>>,
    /// A moderator muted this reader: until when (ms since the epoch) and why. Cleared when the
    /// server says it ended, or when the time comes.
    pub muted: RwSignal<Option<Muted>>,
    /// Messages up to this number are no longer kept by the server (retention): the top of the
    /// list says so instead of offering older messages. 0: nothing known removed.
    pub removed_upto: RwSignal<Seq>,
    /// The sequence number the page's history was complete up to when it was loaded: where the
    /// connection resumes when no message has arrived since.
    loaded_upto: Seq,
}

impl RoomState {
    /// State for a page that loaded `initial` (consecutive messages) and is complete up to
    /// `loaded_upto`.
    pub fn new(initial: Vec<ChatMessage>, loaded_upto: Seq) -> Self {
        Self {
            messages: RwSignal::new(initial),
            outbox: RwSignal::new(Vec::new()),
            conn: RwSignal::new(ConnState::Connecting),
            notice: RwSignal::new(None),
            degraded: RwSignal::new(false),
            roster: RwSignal::new(RosterView::default()),
            me: RwSignal::new(None),
            draft: RwSignal::new(String::new()),
            stopped: RwSignal::new(None),
            notices: RwSignal::new(Vec::new()),
            limits: MessageLimits::default(),
            slow_mode_secs: 0,
            slow_until: RwSignal::new(None),
            muted: RwSignal::new(None),
            typing: RwSignal::new(Vec::new()),
            removed_upto: RwSignal::new(0),
            loaded_upto,
        }
    }

    /// The sequence number everything up to which this page has shown: the resume point.
    pub fn last_seq(&self) -> Seq {
        self.messages
            .with_untracked(|m| m.last().map_or(0, |m| m.seq))
            .max(self.loaded_upto)
    }

    /// Applies a presence frame: the roster, and a line in the stream for arrivals and departures
    /// (named ones: a big room names nobody).
    pub fn presence(&self, change: RosterChange, at_seq: Seq) {
        self.roster.update(|r| r.apply_change(&change));
        let after_seq = at_seq.min(self.last_seq());
        let lines = [
            describe(&change.joined, change.more_joined, "joined"),
            describe(&change.left, change.more_left, "left"),
        ];
        self.notices.update(|n| {
            for text in lines.into_iter().flatten() {
                let key = n.last().map_or(0, |l| l.key + 1);
                n.push(Notice {
                    key,
                    after_seq,
                    text,
                });
            }
            if n.len() > MAX_NOTICES {
                n.drain(..n.len() - MAX_NOTICES);
            }
        });
    }

    /// The server no longer keeps messages `after + 1..=upto` (retention), which this page missed:
    /// after what it shows, a line says so; with nothing shown yet, the top of the list does.
    pub fn removed(&self, after: Seq, upto: Seq) {
        if self.messages.with_untracked(Vec::is_empty) {
            self.removed_upto.update(|r| *r = (*r).max(upto));
            return;
        }
        let count = upto.saturating_sub(after);
        let text = match count {
            1 => "1 message from while you were away is no longer kept by this server.".to_owned(),
            n => {
                format!("{n} messages from while you were away are no longer kept by this server.")
            }
        };
        self.notices.update(|n| {
            let key = n.last().map_or(0, |l| l.key + 1);
            n.push(Notice {
                key,
                after_seq: after,
                text,
            });
        });
    }

    /// Messages and notices interleaved in the order to show them.
    /// Adds an older page of history before the first message shown.
    pub fn prepend(&self, older: Vec<ChatMessage>) {
        self.messages.update(|m| {
            let first = m.first().map_or(Seq::MAX, |f| f.seq);
            let mut merged: Vec<ChatMessage> =
                older.into_iter().filter(|o| o.seq < first).collect();
            merged.append(m);
            *m = merged;
        });
    }

    /// Adds a message from the room, keeping sequence order and dropping anything already shown.
    /// Returns whether it was new.
    pub fn deliver(&self, msg: ChatMessage) -> bool {
        if msg.seq <= self.last_seq() {
            return false;
        }
        let client_id = msg.client_id.clone();
        self.messages.update(|m| {
            apply_change(m, &msg);
            m.push(msg);
        });
        // The room's copy replaces the pending one.
        self.outbox
            .update(|o| o.retain(|e| e.client_id != client_id));
        true
    }

    /// Marks an outbox entry as durably accepted by the server.
    pub fn acknowledge(&self, client_id: &str) {
        self.outbox.update(|o| {
            if let Some(e) = o.iter_mut().find(|e| e.client_id == client_id) {
                e.delivery = Delivery::Sent;
            }
        });
    }

    /// Whether every message the user sent has been acknowledged (none waits to be sent or for
    /// its acknowledgement). A notice about holding back ("too fast", "unavailable") stays until
    /// then, so it does not vanish while some of the user's messages still wait.
    pub fn all_acknowledged(&self) -> bool {
        self.outbox
            .with_untracked(|o| o.iter().all(|e| e.delivery == Delivery::Sent))
    }

    /// Puts every unacknowledged entry back in the queue (after a disconnect).
    pub fn requeue_unacknowledged(&self) {
        self.outbox.update(|o| {
            for e in o.iter_mut().filter(|e| e.delivery == Delivery::Sending) {
                e.delivery = Delivery::Queued;
            }
        });
    }
}

/// Makes an edit or a delete take effect on the message it changes (as the server did when it
/// stored it): an edit replaces a live message's text, a delete removes the text of the message
/// and of its edits.
fn apply_change(messages: &mut [ChatMessage], change: &ChatMessage) {
    let Some(target) = change.target else {
        return;
    };
    for m in messages.iter_mut() {
        let is_target = m.seq == target && m.kind.is_message();
        match change.kind {
            EntryKind::Edit if is_target && !m.deleted => {
                m.text.clone_from(&change.text);
                m.edited_at_ms = Some(change.sent_at_ms);
            }
            EntryKind::Delete
                if is_target || (m.kind == EntryKind::Edit && m.target == Some(target)) =>
            {
                m.text.clear();
                m.deleted = true;
            }
            _ => {}
        }
    }
}

/// A live connection to a room, owned by the room page. Dropping it does not stop the socket:
/// [`RoomConnection::close`] does (the page calls it on cleanup).
#[derive(Clone)]
pub struct RoomConnection {
    #[cfg(feature = "hydrate")]
    inner: socket::Handle,
}

impl RoomConnection {
    /// Starts the connection task (browser only; on the server this does nothing).
    #[allow(unused_variables)]
    pub fn open(state: RoomState, room: String, name: String) -> Self {
        Self {
            #[cfg(feature = "hydrate")]
            inner: socket::spawn(state, room, name),
        }
    }

    /// Queues a message and sends it as soon as the room is reachable.
    pub fn send(&self, state: &RoomState, text: String) -> Result<(), String> {
        if state.outbox.with_untracked(Vec::len) >= MAX_OUTBOX {
            return Err(format!(
                "{MAX_OUTBOX} messages are already waiting to be sent."
            ));
        }
        #[cfg(feature = "hydrate")]
        {
            let client_id = crate::browser::random_uuid();
            state.outbox.update(|o| {
                o.push(OutboxEntry {
                    client_id,
                    text,
                    delivery: Delivery::Queued,
                })
            });
            self.inner.flush();
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = text;
        Ok(())
    }

    /// Edits (`Some(text)`) or deletes message `seq`; the room's entry for it updates the page,
    /// a refusal arrives as the notice. Only while connected: there is no queue for changes.
    #[allow(unused_variables)]
    pub fn change(&self, state: &RoomState, seq: Seq, text: Option<String>) -> Result<(), String> {
        if state.conn.get_untracked() != ConnState::Connected {
            return Err("Not connected right now; try again in a moment.".into());
        }
        #[cfg(feature = "hydrate")]
        self.inner.change(crate::browser::random_uuid(), seq, text);
        Ok(())
    }

    /// Asks the room for a page of its roster: after `after`, matching `query` (browser only).
    #[allow(unused_variables)]
    pub fn roster(&self, after: Option<String>, query: Option<String>) {
        #[cfg(feature = "hydrate")]
        self.inner.roster(after, query);
    }

    /// Tells the room the reader is typing (the composer calls it at most every few seconds).
    pub fn typing(&self) {
        #[cfg(feature = "hydrate")]
        self.inner.typing();
    }

    /// Tries again after the server refused this reader (they signed in in another tab, say).
    pub fn retry(&self) {
        #[cfg(feature = "hydrate")]
        self.inner.retry();
    }

    /// Stops the task and closes the socket.
    pub fn close(&self) {
        #[cfg(feature = "hydrate")]
        self.inner.stop();
    }
}

/// "Ada joined", "Ada and Bob left", "Ada, Bob and 3 others joined"; `more` are unnamed others.
/// Nothing when nobody is named (a big room only counts).
fn describe(names: &[String], more: usize, verb: &str) -> Option<String> {
    let who = match (names, more) {
        ([], _) => return None,
        ([one], 0) => one.clone(),
        ([a, b], 0) => format!("{a} and {b}"),
        ([a, b, c], 0) => format!("{a}, {b} and {c}"),
        ([a], 1) => format!("{a} and 1 other"),
        ([a], n) => format!("{a} and {n} others"),
        ([a, b, rest @ ..], n) => format!("{a}, {b} and {} others", rest.len() + n),
    };
    Some(format!("{who} {verb}"))
}

#[cfg(test)]
mod tests;
