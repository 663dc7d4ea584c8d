//! In-memory engines for the room logic's tests: [`MemoryStore`] keeps history for the life of the
//! process, [`FlakyStore`] is one whose writes can be switched off. The server itself always runs
//! on SQLite or Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use app::limits::RoomName;
use app::protocol::{ChatMessage, EntryKind, Seq};
use futures::future::{self, BoxFuture};

use app::rules::RoomRules;

use super::{Appended, Directory, EngineError, History};

/// Every room's history in memory, numbered and deduplicated like the real engines.
#[derive(Default)]
pub struct MemoryStore {
    rooms: Mutex<HashMap<RoomName, MemoryRoom>>,
    revoked: Mutex<HashMap<String, i64>>,
    rules: Mutex<HashMap<RoomName, RoomRules>>,
}

#[derive(Default)]
struct MemoryRoom {
    messages: Vec<ChatMessage>,
    by_client_id: HashMap<String, Seq>,
}

impl MemoryRoom {
    fn append(&mut self, m: &ChatMessage) -> Appended {
        if let Some(&seq) = self.by_client_id.get(&m.client_id) {
            return Appended {
                seq,
                sent_at_ms: self.messages[seq as usize - 1].sent_at_ms,
                new: false,
            };
        }
        let (head, head_ts) = self
            .messages
            .last()
            .map_or((0, 0), |l| (l.seq, l.sent_at_ms));
        let stored = ChatMessage {
            seq: head + 1,
            sent_at_ms: m.sent_at_ms.max(head_ts),
            ..m.clone()
        };
        self.by_client_id.insert(m.client_id.clone(), stored.seq);
        self.apply_change(&stored);
        let appended = Appended {
            seq: stored.seq,
            sent_at_ms: stored.sent_at_ms,
            new: true,
        };
        self.messages.push(stored);
        appended
    }
}

impl MemoryRoom {
    /// An edit or a delete takes effect on its target, as the real engines do.
    fn apply_change(&mut self, change: &ChatMessage) {
        let Some(target) = change.target else {
            return;
        };
        for m in &mut self.messages {
            let is_target = m.seq == target && m.kind == EntryKind::Message;
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
}

impl MemoryStore {
    fn with_room<T>(&self, room: &RoomName, f: impl FnOnce(&mut MemoryRoom) -> T) -> T {
        // A panic while holding the lock cannot leave a room half-written (every mutation is a
        // push), so a poisoned lock is still safe to use.
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        f(rooms.entry(room.clone()).or_default())
    }
}

impl History for MemoryStore {
    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(future::ready(Ok(())))
    }

    /// As Redis: the room tests exercise batches in flight.
    fn max_in_flight(&self) -> usize {
        4
    }

    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, EngineError>> {
        let appended = self.with_room(room, |r| batch.iter().map(|m| r.append(m)).collect());
        Box::pin(future::ready(Ok(appended)))
    }

    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), EngineError>> {
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
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>> {
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
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>> {
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

/// A store whose writes can be switched off, to see what the room does when storage fails.
#[derive(Default)]
pub struct FlakyStore {
    pub inner: MemoryStore,
    /// When set, writes and checks fail.
    pub down: AtomicBool,
}

impl FlakyStore {
    fn fail_if_down(&self) -> Result<(), EngineError> {
        if self.down.load(Ordering::SeqCst) {
            Err(EngineError::Unavailable("switched off".into()))
        } else {
            Ok(())
        }
    }
}

impl History for FlakyStore {
    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(future::ready(self.fail_if_down()))
    }

    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, EngineError>> {
        match self.fail_if_down() {
            Ok(()) => self.inner.append(room, batch),
            Err(e) => Box::pin(future::ready(Err(e))),
        }
    }

    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), EngineError>> {
        self.inner.head(room)
    }

    fn after<'a>(
        &'a self,
        room: &'a RoomName,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>> {
        self.inner.after(room, after, limit)
    }

    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>> {
        self.inner.before(room, before, limit)
    }
}

impl Directory for MemoryStore {
    fn claim_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<bool, EngineError>> {
        let mut all = lock(&self.rules);
        let claimed = !all.contains_key(room);
        if claimed {
            all.insert(room.clone(), rules.clone());
        }
        Box::pin(future::ready(Ok(claimed)))
    }

    fn revoke<'a>(&'a self, sub: &'a str, at_ms: i64) -> BoxFuture<'a, Result<(), EngineError>> {
        lock(&self.revoked).insert(sub.to_owned(), at_ms);
        Box::pin(future::ready(Ok(())))
    }

    fn revocations(&self) -> BoxFuture<'_, Result<HashMap<String, i64>, EngineError>> {
        Box::pin(future::ready(Ok(lock(&self.revoked).clone())))
    }

    fn rules<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<RoomRules>, EngineError>> {
        Box::pin(future::ready(Ok(lock(&self.rules).get(room).cloned())))
    }

    fn set_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        lock(&self.rules).insert(room.clone(), rules.clone());
        Box::pin(future::ready(Ok(())))
    }
}

impl Directory for FlakyStore {
    fn claim_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<bool, EngineError>> {
        self.inner.claim_rules(room, rules)
    }

    fn revoke<'a>(&'a self, sub: &'a str, at_ms: i64) -> BoxFuture<'a, Result<(), EngineError>> {
        self.inner.revoke(sub, at_ms)
    }

    fn revocations(&self) -> BoxFuture<'_, Result<HashMap<String, i64>, EngineError>> {
        self.inner.revocations()
    }

    fn rules<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<RoomRules>, EngineError>> {
        self.inner.rules(room)
    }

    fn set_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        self.inner.set_rules(room, rules)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn meets_the_history_contract() {
        super::super::conformance::all(&super::MemoryStore::default()).await;
        super::super::conformance::directory(&super::MemoryStore::default()).await;
        let moderation = super::super::moderation::MemoryModeration::default();
        super::super::moderation_conformance::all(&moderation).await;
    }
}
