//! What a room sends to every session: [`Delivery`]s on one bounded broadcast channel. The room
//! never waits for a reader; a reader that falls more than [`FANOUT_CAPACITY`] behind is told it
//! lagged and catches up from the engine by sequence number. Events are typed here; each wire
//! dialect encodes them, once per dialect for all its sessions (see [`Delivery::frame`]).
//!
//! The channel's buffer (most of an empty room's memory) exists only while someone listens: it is
//! made by the first subscriber and let go once nobody is left.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use app::protocol::{ChatMessage, Seq};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// Live events buffered per room for readers; a reader further behind catches up from the engine.
pub const FANOUT_CAPACITY: usize = 512;

/// Something that happened in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A committed message.
    Message(ChatMessage),
    /// The roster changed.
    Presence(PresenceChange),
    /// Whether the room can store messages right now changed.
    Status { degraded: bool },
    /// Someone is typing (on this node or another); never stored.
    Typing { name: String },
}

/// A net change of the roster since the last one announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// How many people are in the room now.
    pub count: usize,
    /// Names that arrived (at most [`app::protocol::PRESENCE_NAMES`]).
    pub joined: Vec<String>,
    /// Positions in `joined` of verified people.
    pub verified: Vec<usize>,
    /// Names that left (likewise).
    pub left: Vec<String>,
    /// Arrivals and departures not named: too many at once, or a big room.
    pub more_joined: usize,
    pub more_left: usize,
    /// The room's head when the first of these changes happened.
    pub at_seq: Seq,
}

/// A page of who is in the room, in sorted order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterPage {
    /// At most [`app::protocol::ROSTER_PAGE`] names.
    pub names: Vec<String>,
    /// Positions in `names` of verified people.
    pub verified: Vec<usize>,
    /// How many people are in the room.
    pub count: usize,
    /// Whether more names follow.
    pub more: bool,
}

/// One event, as every session receives it.
#[derive(Debug)]
pub struct Delivery {
    /// The message's sequence number; `None` for events that are not part of history.
    pub seq: Option<Seq>,
    pub event: RoomEvent,
    /// When the event was committed or made (for the fan-out latency metric).
    pub committed_at: Instant,
    /// The frame in each wire dialect, encoded by the first session of that dialect that writes
    /// it and shared by all the others (a room of 1,000 encodes a message twice at most, not
    /// 1,000 times); each session's copy is a reference count.
    frames: [OnceLock<bytes::Bytes>; 2],
}

/// The wire dialects a delivery is encoded in (see `session::dialect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Palaver = 0,
    EdgeChat = 1,
}

impl Delivery {
    /// The event encoded by `encode` for `wire`, once for every session of that dialect: each
    /// session's copy is a reference count.
    pub fn frame(&self, wire: Wire, encode: impl FnOnce(&RoomEvent) -> String) -> bytes::Bytes {
        let slot = &self.frames[wire as usize];
        // Two first readers at once may both encode: harmless, one is kept.
        slot.get_or_init(|| bytes::Bytes::from(encode(&self.event)))
            .clone()
    }
}

/// The room's end of the channel; parts of the room that announce something hold a clone.
#[derive(Clone, Default)]
pub(super) struct Fanout {
    /// `None` while nobody listens.
    live: Arc<Mutex<Option<broadcast::Sender<Arc<Delivery>>>>>,
}

impl Fanout {
    fn live(&self) -> MutexGuard<'_, Option<broadcast::Sender<Arc<Delivery>>>> {
        // Only this room's task locks it, never across an await: poisoning cannot happen, and the
        // channel stays consistent if it did.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Arc<Delivery>> {
        self.live()
            .get_or_insert_with(|| broadcast::channel(FANOUT_CAPACITY).0)
            .subscribe()
    }

    /// Sessions subscribed right now.
    pub(super) fn readers(&self) -> usize {
        self.live()
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// Lets the buffer go if nobody listens (an idle room keeps only a few bytes).
    pub(super) fn release_if_unheard(&self) {
        let mut live = self.live();
        if live.as_ref().is_some_and(|l| l.receiver_count() == 0) {
            *live = None;
        }
    }

    /// A committed message.
    pub(super) fn message(&self, m: ChatMessage, committed_at: Instant) {
        self.send(Some(m.seq), RoomEvent::Message(m), committed_at);
    }

    /// An event that is not part of history (presence, status).
    pub(super) fn event(&self, event: RoomEvent) {
        self.send(None, event, Instant::now());
    }

    fn send(&self, seq: Option<Seq>, event: RoomEvent, committed_at: Instant) {
        let live = self.live();
        let Some(live) = live.as_ref() else {
            return;
        };
        // An error only means nobody is listening right now.
        let _ = live.send(Arc::new(Delivery {
            seq,
            event,
            committed_at,
            frames: Default::default(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_buffer_exists_only_while_someone_listens() {
        let fanout = Fanout::default();
        fanout.event(RoomEvent::Status { degraded: true });
        assert!(fanout.live().is_none(), "nobody listening: no buffer");
        let reader = fanout.subscribe();
        fanout.release_if_unheard();
        assert!(fanout.live().is_some(), "kept while someone listens");
        drop(reader);
        fanout.release_if_unheard();
        assert!(fanout.live().is_none());
        assert_eq!(fanout.readers(), 0);
    }

    #[tokio::test]
    async fn a_frame_is_encoded_once_for_every_reader() {
        let fanout = Fanout::default();
        let (mut one, mut two) = (fanout.subscribe(), fanout.subscribe());
        fanout.event(RoomEvent::Status { degraded: true });
        let encodings = std::sync::atomic::AtomicUsize::new(0);
        let encode = |event: &RoomEvent| {
            encodings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            format!("{event:?}")
        };
        let a = one.recv().await.unwrap().frame(Wire::Palaver, encode);
        let b = two.recv().await.unwrap().frame(Wire::Palaver, encode);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same bytes for both");
        assert_eq!(encodings.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(fanout.readers(), 2);
    }
}
