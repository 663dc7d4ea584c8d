//! The client side of one room: what the page shows (messages, outbox, connection state) and, in the
//! browser, the WebSocket task that keeps it in sync with the server.
//!
//! The state here compiles on both sides so the server can render the same page; only the socket
//! task ([`socket`]) is browser-only.

#[cfg(feature = "hydrate")]
mod frames;
mod roster;
#[cfg(feature = "hydrate")]
mod socket;

pub use roster::{Change as RosterChange, Page as RosterPage, RosterView};

use leptos::prelude::*;

use crate::limits::MessageLimits;
use crate::protocol::{ChatMessage, Seq};

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

/// One row of the stream: a message or a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineItem {
    Message(ChatMessage),
    Notice(Notice),
}

impl TimelineItem {
    /// A key that is unique across both kinds, for keyed rendering.
    pub fn key(&self) -> (u8, u64) {
        match self {
            TimelineItem::Message(m) => (0, m.seq),
            TimelineItem::Notice(n) => (1, n.key),
        }
    }
}

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
    /// Join and leave lines, in arrival order.
    pub notices: RwSignal<Vec<Notice>>,
    /// The server's message limits, checked before sending.
    pub limits: MessageLimits,
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
            notices: RwSignal::new(Vec::new()),
            limits: MessageLimits::default(),
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
    pub fn timeline(&self) -> Vec<TimelineItem> {
        let notices = self.notices.get();
        self.messages.with(|messages| {
            let mut out = Vec::with_capacity(messages.len() + notices.len());
            let mut pending = notices.into_iter().peekable();
            for m in messages {
                while let Some(n) = pending.next_if(|n| n.after_seq < m.seq) {
                    // A notice placed before the message just above the first one shown belongs to
                    // older history (not loaded); one right before the first shown is kept.
                    if messages.first().is_some_and(|f| n.after_seq + 1 >= f.seq) {
                        out.push(TimelineItem::Notice(n));
                    }
                }
                out.push(TimelineItem::Message(m.clone()));
            }
            out.extend(pending.map(TimelineItem::Notice));
            out
        })
    }

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
        self.messages.update(|m| m.push(msg));
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

    /// Asks the room for a page of its roster: after `after`, matching `query` (browser only).
    #[allow(unused_variables)]
    pub fn roster(&self, after: Option<String>, query: Option<String>) {
        #[cfg(feature = "hydrate")]
        self.inner.roster(after, query);
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
mod tests {
    use super::*;

    #[test]
    fn messages_retention_removed_are_said_where_they_were_or_at_the_top() {
        let owner = Owner::new();
        owner.with(|| {
            // Away after 2; 3..=6 removed; 7 arrives.
            let state = RoomState::new(vec![msg(1, "a"), msg(2, "b")], 2);
            state.removed(2, 6);
            assert!(state.deliver(msg(7, "c")));
            let items = state.timeline();
            let TimelineItem::Notice(n) = &items[2] else {
                panic!("a notice after 2: {items:?}")
            };
            assert!(n.text.starts_with("4 messages from while you were away"));
            assert_eq!(
                state.removed_upto.get_untracked(),
                0,
                "the top is still the start"
            );

            // Nothing shown yet: the top of the list says it.
            let fresh = RoomState::new(vec![], 0);
            fresh.removed(0, 9);
            assert_eq!(fresh.removed_upto.get_untracked(), 9);
            assert!(fresh.timeline().is_empty());
        });
    }

    #[test]
    fn a_notice_before_the_first_message_of_the_room_is_shown_at_the_top() {
        let owner = Owner::new();
        owner.with(|| {
            let state = RoomState::new(vec![msg(1, "a"), msg(2, "b")], 2);
            state.presence(joined(&["Ada"], 1), 0);
            let keys: Vec<_> = state.timeline().iter().map(TimelineItem::key).collect();
            assert_eq!(keys, [(1, 0), (0, 1), (0, 2)]);

            // Before older history that is not loaded: left out.
            let later = RoomState::new(vec![msg(50, "x")], 50);
            later.presence(joined(&["Ada"], 1), 10);
            assert_eq!(later.timeline().len(), 1);
        });
    }

    #[test]
    fn presence_lines_are_short_and_placed_after_the_last_message() {
        let owner = Owner::new();
        owner.with(|| {
            let state = RoomState::new(vec![msg(1, "a"), msg(2, "b")], 2);
            let mut change = joined(&["Ada", "Bob", "Cy", "Di"], 4);
            change.left = vec!["Ed".into()];
            state.presence(change, 9);
            state.deliver(msg(3, "c"));
            let keys: Vec<_> = state.timeline().iter().map(TimelineItem::key).collect();
            assert_eq!(keys, [(0, 1), (0, 2), (1, 0), (1, 1), (0, 3)]);
            let texts: Vec<_> = state
                .notices
                .get_untracked()
                .into_iter()
                .map(|n| n.text)
                .collect();
            assert_eq!(texts, ["Ada, Bob and 2 others joined", "Ed left"]);
            assert_eq!(state.roster.get_untracked().count, 4);

            // Unnamed arrivals are counted in the line; a change naming nobody adds no line.
            let mut crowd = joined(&["Fay"], 25);
            crowd.more_joined = 20;
            state.presence(crowd, 3);
            state.presence(
                RosterChange {
                    count: 200,
                    more_left: 3,
                    ..RosterChange::default()
                },
                3,
            );
            let texts: Vec<_> = state
                .notices
                .get_untracked()
                .into_iter()
                .map(|n| n.text)
                .collect();
            assert_eq!(
                texts.last().map(String::as_str),
                Some("Fay and 20 others joined")
            );
            assert_eq!(texts.len(), 3);
            assert_eq!(state.roster.get_untracked().count, 200);
        });
    }

    /// A change in which `names` joined and the room now has `count` people.
    fn joined(names: &[&str], count: usize) -> RosterChange {
        RosterChange {
            count,
            joined: names.iter().map(|s| s.to_string()).collect(),
            ..RosterChange::default()
        }
    }

    fn msg(seq: Seq, client_id: &str) -> ChatMessage {
        ChatMessage {
            seq,
            id: format!("m{seq}"),
            sender: "a".into(),
            text: "t".into(),
            sent_at_ms: 0,
            client_id: client_id.into(),
        }
    }

    #[test]
    fn deliver_drops_duplicates_and_clears_outbox() {
        let owner = Owner::new();
        owner.with(|| {
            let state = RoomState::new(vec![msg(1, "x")], 1);
            state.outbox.set(vec![OutboxEntry {
                client_id: "c2".into(),
                text: "t".into(),
                delivery: Delivery::Sending,
            }]);
            assert!(!state.deliver(msg(1, "x")));
            state.acknowledge("c2");
            assert_eq!(state.outbox.get_untracked()[0].delivery, Delivery::Sent);
            assert!(state.deliver(msg(2, "c2")));
            assert!(state.outbox.get_untracked().is_empty());
            assert_eq!(state.last_seq(), 2);
        });
    }

    #[test]
    fn requeue_only_touches_unacknowledged() {
        let owner = Owner::new();
        owner.with(|| {
            let state = RoomState::new(vec![], 0);
            state.outbox.set(vec![
                OutboxEntry {
                    client_id: "a".into(),
                    text: "t".into(),
                    delivery: Delivery::Sending,
                },
                OutboxEntry {
                    client_id: "b".into(),
                    text: "t".into(),
                    delivery: Delivery::Sent,
                },
            ]);
            state.requeue_unacknowledged();
            let o = state.outbox.get_untracked();
            assert_eq!(o[0].delivery, Delivery::Queued);
            assert_eq!(o[1].delivery, Delivery::Sent);
        });
    }

    #[test]
    fn a_hold_back_notice_lasts_until_everything_is_acknowledged() {
        let owner = Owner::new();
        owner.with(|| {
            let state = RoomState::new(vec![], 0);
            let entry = |id: &str, delivery| OutboxEntry {
                client_id: id.into(),
                text: "t".into(),
                delivery,
            };
            // "a" went through; "b" was refused for the rate limit and waits to be resent.
            state.outbox.set(vec![
                entry("a", Delivery::Sending),
                entry("b", Delivery::Queued),
            ]);
            state.acknowledge("a");
            assert!(!state.all_acknowledged());
            state.outbox.update(|o| o[1].delivery = Delivery::Sending);
            state.acknowledge("b");
            assert!(state.all_acknowledged());
        });
    }
}
