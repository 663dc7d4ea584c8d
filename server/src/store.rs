//! Where rooms keep their messages, and what rooms on several nodes share: the [`RoomStore`]
//! engine interface (the embedded SQLite implementation is in `sqlite.rs`, the Redis one in
//! `redis_store.rs`; an in-memory one here serves the room logic's tests).
//!
//! The room task is the only writer of a room; it assigns sequence numbers and hands the store
//! complete batches. Readers (sessions catching up) read committed messages directly, without going
//! through the room task, so a big catch-up never slows a room down.

use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::HashMap;
#[cfg(test)]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(test)]
use std::sync::{Mutex, PoisonError};

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
#[cfg(test)]
use futures::future;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

#[cfg(test)]
pub mod conformance;

/// A storage failure. Details go to the log; clients only learn the message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

/// What `append` did with one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The message's sequence number.
    pub seq: Seq,
    /// Its stored timestamp (raised to the room's last one if the clock went back).
    pub sent_at_ms: i64,
    /// Stored by this call; `false` when its client id was already stored (a resend), and `seq`
    /// is the earlier message's.
    pub new: bool,
}

/// Who is in a room, by display name, with how many connections each has (tabs, devices).
pub type Roster = BTreeMap<String, usize>;

/// What a shared engine tells a room about other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// Another writer committed up to this sequence number.
    Head(Seq),
    /// Another node's part of the room's roster changed.
    Roster,
    /// The node lost its connection to the engine: notifications may have been missed, and
    /// writes will fail until it is back.
    Lost,
}

/// Durable (or, for [`MemoryStore`], process-lifetime) history of every room.
///
/// Contract: the store numbers messages. `append` commits a batch atomically, giving each new
/// message the next sequence number after whatever the room has stored (so several writers, e.g.
/// nodes sharing one engine, never race for a number and never leave a hole), and returns only
/// once the batch is committed. A message returned by any read has been committed.
pub trait RoomStore: Send + Sync + 'static {
    /// Commits a batch to a room, all or nothing, in one round trip. The messages' `seq` fields
    /// are ignored. A message whose client id the room already has (stored earlier, or earlier in
    /// this batch) is not stored again and gets that number. Timestamps never go back within a
    /// room. Returns what happened to each message, in batch order.
    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, StoreError>>;

    /// The room's last committed sequence number and that message's timestamp (0, 0 when empty).
    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), StoreError>>;

    /// Up to `limit` messages with sequence numbers above `after`, in order.
    fn after<'a>(
        &'a self,
        room: &'a RoomName,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>>;

    /// Up to `limit` messages just before `before` (or the latest ones), in order.
    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>>;

    /// Whether the store can serve reads and writes right now (for `/readyz`).
    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Whether other nodes share this engine (then rooms watch it, share rosters, and check
    /// periodically that they missed nothing).
    fn is_shared(&self) -> bool {
        false
    }

    /// What other nodes sharing this engine do in the room (new heads, roster changes), for as
    /// long as the stream is held; dropping it unsubscribes. The stream ends if the subscription
    /// is lost. `None` when this process is the room's only writer, as with the embedded engine.
    fn watch<'a>(
        &'a self,
        _room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<BoxStream<'static, EngineEvent>>, StoreError>> {
        Box::pin(futures::future::ready(Ok(None)))
    }

    /// Publishes this node's part of the room's roster (empty: this node has nobody there), so
    /// that other nodes list these people too; `changed` tells them to read it again (a renewal
    /// does not). It lapses unless published again within [`ROSTER_LEASE`]. A no-op for the
    /// embedded engine.
    fn share_roster<'a>(
        &'a self,
        _room: &'a RoomName,
        _local: &'a Roster,
        _changed: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(futures::future::ready(Ok(())))
    }

    /// Everyone other nodes have in the room (leases that lapsed are left out). Empty for the
    /// embedded engine.
    fn remote_roster<'a>(
        &'a self,
        _room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Roster, StoreError>> {
        Box::pin(futures::future::ready(Ok(Roster::new())))
    }
}

/// How long a node's published roster counts without being published again. A node that dies
/// without saying goodbye (SIGKILL, lost machine) leaves the other nodes' rosters within this.
pub const ROSTER_LEASE: std::time::Duration = std::time::Duration::from_secs(30);
/// How often a room with people in it publishes its roster again (well within the lease) and
/// checks it has missed nothing of what other nodes wrote.
pub const ROSTER_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps every room's history in memory for the life of the process: the room logic's tests use
/// it to run without a file. The server itself always uses [`crate::sqlite::SqliteStore`].
#[cfg(test)]
#[derive(Default)]
pub struct MemoryStore {
    rooms: Mutex<HashMap<RoomName, MemoryRoom>>,
}

#[cfg(test)]
#[derive(Default)]
struct MemoryRoom {
    messages: Vec<ChatMessage>,
    by_client_id: HashMap<String, Seq>,
}

#[cfg(test)]
impl MemoryStore {
    fn with_room<T>(&self, room: &RoomName, f: impl FnOnce(&mut MemoryRoom) -> T) -> T {
        // A panic while holding the lock cannot leave a room half-written (every mutation is a
        // push), so a poisoned lock is still safe to use.
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        f(rooms.entry(room.clone()).or_default())
    }
}

#[cfg(test)]
impl RoomStore for MemoryStore {
    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(future::ready(Ok(())))
    }

    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, StoreError>> {
        let appended = self.with_room(room, |r| {
            batch
                .iter()
                .map(|m| {
                    if let Some(&seq) = r.by_client_id.get(&m.client_id) {
                        let sent_at_ms = r.messages[seq as usize - 1].sent_at_ms;
                        return Appended {
                            seq,
                            sent_at_ms,
                            new: false,
                        };
                    }
                    let (head, head_ts) =
                        r.messages.last().map_or((0, 0), |l| (l.seq, l.sent_at_ms));
                    let stored = ChatMessage {
                        seq: head + 1,
                        sent_at_ms: m.sent_at_ms.max(head_ts),
                        ..m.clone()
                    };
                    r.by_client_id.insert(m.client_id.clone(), stored.seq);
                    let appended = Appended {
                        seq: stored.seq,
                        sent_at_ms: stored.sent_at_ms,
                        new: true,
                    };
                    r.messages.push(stored);
                    appended
                })
                .collect()
        });
        Box::pin(future::ready(Ok(appended)))
    }

    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), StoreError>> {
        let head = self.with_room(room, |r| {
            r.messages.last().map_or((0, 0), |m| (m.seq, m.sent_at_ms))
        });
        Box::pin(future::ready(Ok(head)))
    }

    fn after<'a>(
        &'a self,
        room: &'a RoomName,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        // Sequence numbers start at 1 and have no holes, so seq n is at index n - 1.
        let page = self.with_room(room, |r| {
            let start = usize::try_from(after)
                .unwrap_or(usize::MAX)
                .min(r.messages.len());
            r.messages[start..].iter().take(limit).cloned().collect()
        });
        Box::pin(future::ready(Ok(page)))
    }

    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        let page = self.with_room(room, |r| {
            let end = before.map_or(r.messages.len(), |b| {
                usize::try_from(b.saturating_sub(1))
                    .unwrap_or(usize::MAX)
                    .min(r.messages.len())
            });
            r.messages[end.saturating_sub(limit)..end].to_vec()
        });
        Box::pin(future::ready(Ok(page)))
    }
}

#[cfg(test)]
/// A store whose writes can be switched off, to see what the room does when storage fails.
#[derive(Default)]
pub struct FlakyStore {
    pub inner: MemoryStore,
    /// When set, writes and checks fail.
    pub down: AtomicBool,
}

#[cfg(test)]
impl RoomStore for FlakyStore {
    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let down = self.down.load(Ordering::SeqCst);
        Box::pin(async move {
            if down {
                Err(StoreError::Unavailable("switched off".into()))
            } else {
                Ok(())
            }
        })
    }
    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, StoreError>> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::Unavailable("switched off".into())) });
        }
        self.inner.append(room, batch)
    }
    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), StoreError>> {
        self.inner.head(room)
    }
    fn after<'a>(
        &'a self,
        room: &'a RoomName,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        self.inner.after(room, after, limit)
    }
    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        self.inner.before(room, before, limit)
    }
}
