//! A room's log: its head, the client ids it has recently seen, and the commits. A batch of sends
//! is handed to the engine in one call (group commit); the engine numbers it after the stored
//! head and recognises client ids it already has. Only then are the senders answered and the new
//! messages broadcast, so nobody sees a message that is not stored, and live order is history
//! order.
//!
//! With a shared engine other nodes append too. When a batch's numbers do not follow this room's
//! head, another node wrote in between, and the room delivers from the engine, in order; the
//! same happens when another node's new head is announced.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{error, warn};

use super::fanout::Fanout;
use super::{RoomError, SendCommand};
use crate::engine::retention::now_ms;
use crate::engine::{EngineError, History};
use crate::metrics::Metrics;
use crate::redact::LogName;

/// Recent client ids kept in memory per room for idempotency; older ones the engine recognises.
const RECENT_CLIENT_IDS: usize = 4096;
/// Messages read per page when catching up with what other nodes wrote.
const SYNC_PAGE: usize = 500;

/// A send waiting for its batch to commit.
pub(super) struct PendingSend {
    /// The message as sent; the engine gives it its number.
    message: ChatMessage,
    reply: oneshot::Sender<Result<Seq, RoomError>>,
}

impl PendingSend {
    pub(super) fn new(
        SendCommand {
            sender,
            user_id,
            kind,
            target,
            client_id,
            text,
            reply,
        }: SendCommand,
    ) -> Self {
        Self {
            message: ChatMessage {
                // The engine numbers it.
                seq: 0,
                id: uuid::Uuid::new_v4().simple().to_string(),
                sender,
                text,
                sent_at_ms: now_ms(),
                client_id,
                user_id,
                kind,
                target,
                ..Default::default()
            },
            reply,
        }
    }
}

pub(super) struct Log {
    name: RoomName,
    history: Arc<dyn History>,
    fanout: Fanout,
    metrics: Arc<Metrics>,
    /// Last delivered sequence number and timestamp; read from the engine on first use.
    head: Option<(Seq, i64)>,
    recent: RecentIds,
}

impl Log {
    pub(super) fn new(
        name: RoomName,
        history: Arc<dyn History>,
        fanout: Fanout,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            name,
            history,
            fanout,
            metrics,
            head: None,
            recent: RecentIds::default(),
        }
    }

    pub(super) fn history(&self) -> &dyn History {
        &*self.history
    }

    /// The last sequence number delivered (0 before the head is known).
    pub(super) fn committed(&self) -> Seq {
        self.head.map_or(0, |(seq, _)| seq)
    }

    /// Whether another writer's `head` is news to this room.
    pub(super) fn is_behind(&self, head: Seq) -> bool {
        self.head.is_some_and(|(seq, _)| head > seq)
    }

    /// The head, read from the engine the first time.
    pub(super) async fn load_head(&mut self) -> Result<(Seq, i64), EngineError> {
        if let Some(head) = self.head {
            return Ok(head);
        }
        let head = self.history.head(&self.name).await.inspect_err(|e| {
            error!(room = %self.name.logged(), error = %e, "cannot read room head");
        })?;
        self.head = Some(head);
        Ok(head)
    }

    /// The number of a recently committed client id (a resend).
    pub(super) fn recent(&self, client_id: &str) -> Option<Seq> {
        self.recent.get(client_id)
    }

    /// Commits a batch and answers each sender. `Err` when the engine failed: the batch was
    /// refused, or it was committed but what other nodes wrote in between could not be read.
    pub(super) async fn commit(&mut self, sends: Vec<PendingSend>) -> Result<(), EngineError> {
        let batch: Vec<ChatMessage> = sends.iter().map(|p| p.message.clone()).collect();
        let started = Instant::now();
        let appended = match self.history.append(&self.name, &batch).await {
            Ok(appended) => appended,
            Err(e) => {
                error!(room = %self.name.logged(), error = %e, count = batch.len(), "commit failed; batch refused");
                // Nothing of this batch was stored.
                for p in sends {
                    let _ = p.reply.send(Err(RoomError::Unavailable));
                }
                return Err(e);
            }
        };
        let committed_at = Instant::now();
        self.metrics.observe_commit(committed_at - started);
        let stored: Vec<ChatMessage> = batch
            .into_iter()
            .zip(&appended)
            .filter(|(_, a)| a.new)
            .map(|(m, a)| ChatMessage {
                seq: a.seq,
                sent_at_ms: a.sent_at_ms,
                ..m
            })
            .collect();
        self.metrics.accepted.inc_by(stored.len() as u64);
        let delivered = self.deliver_stored(stored, committed_at).await;
        for (p, a) in sends.into_iter().zip(appended) {
            let _ = p.reply.send(Ok(a.seq));
        }
        delivered
    }

    /// Delivers a committed batch's new messages, or everything from the engine in order when
    /// another node wrote in between.
    async fn deliver_stored(
        &mut self,
        stored: Vec<ChatMessage>,
        committed_at: Instant,
    ) -> Result<(), EngineError> {
        let head = self.committed();
        match stored.first() {
            Some(first) if first.seq > head + 1 => self.catch_up().await,
            Some(first) => {
                if first.seq <= head {
                    warn!(room = %self.name.logged(), local = head, stored = first.seq - 1, "the engine has fewer messages than this room had; following its numbers");
                }
                for m in stored {
                    self.deliver(m, committed_at);
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Delivers, in order, what other writers committed after this room's head.
    pub(super) async fn catch_up(&mut self) -> Result<(), EngineError> {
        while let Some((head, _)) = self.head {
            let page = self
                .history
                .after(&self.name, head, SYNC_PAGE)
                .await
                .inspect_err(|e| {
                    warn!(room = %self.name.logged(), error = %e, "cannot read what other nodes wrote");
                })?;
            if page.is_empty() {
                break;
            }
            let committed_at = Instant::now();
            for m in page {
                self.deliver(m, committed_at);
            }
        }
        Ok(())
    }

    /// After a recovery, or as a periodic safety net for lost notifications: catch up with the
    /// engine if it moved on, or follow its head if it went back (a Redis that lost data).
    pub(super) async fn resync(&mut self) -> Result<(), EngineError> {
        let Some((local, _)) = self.head else {
            return Ok(());
        };
        let stored = self.history.head(&self.name).await?;
        if stored.0 > local {
            self.catch_up().await?;
        } else if stored.0 < local {
            warn!(room = %self.name.logged(), local, stored = stored.0, "the engine has fewer messages than this room had; following its head");
            self.head = Some(stored);
        }
        Ok(())
    }

    /// Moves the head to a committed message, remembers its client id and broadcasts it.
    fn deliver(&mut self, m: ChatMessage, committed_at: Instant) {
        self.head = Some((m.seq, m.sent_at_ms));
        self.recent.insert(m.client_id.clone(), m.seq);
        self.fanout.message(m, committed_at);
    }
}

/// Client id -> seq for the latest [`RECENT_CLIENT_IDS`] messages, oldest evicted first.
#[derive(Default)]
struct RecentIds {
    seqs: HashMap<String, Seq>,
    order: VecDeque<String>,
}

impl RecentIds {
    fn get(&self, client_id: &str) -> Option<Seq> {
        self.seqs.get(client_id).copied()
    }

    fn insert(&mut self, client_id: String, seq: Seq) {
        if self.order.len() >= RECENT_CLIENT_IDS {
            if let Some(old) = self.order.pop_front() {
                self.seqs.remove(&old);
            }
        }
        self.order.push_back(client_id.clone());
        self.seqs.insert(client_id, seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryStore;

    fn send(client_id: &str) -> (PendingSend, oneshot::Receiver<Result<Seq, RoomError>>) {
        let (reply, rx) = oneshot::channel();
        let send = PendingSend::new(SendCommand {
            sender: "Ada".into(),
            user_id: None,
            kind: Default::default(),
            target: None,
            client_id: client_id.into(),
            text: "hi".into(),
            reply,
        });
        (send, rx)
    }

    #[tokio::test(start_paused = true)]
    async fn another_writers_messages_are_delivered_before_this_batch_in_order() {
        let store = Arc::new(MemoryStore::default());
        let name = RoomName::parse("log").unwrap();
        let fanout = Fanout::default();
        let mut live = fanout.subscribe();
        let mut log = Log::new(name.clone(), store.clone(), fanout, Arc::default());
        assert_eq!(log.load_head().await.unwrap(), (0, 0));
        // Another node stores two messages this room has not seen.
        let other: Vec<ChatMessage> = (1..=2)
            .map(|i| send(&format!("other{i}")).0.message)
            .collect();
        store.append(&name, &other).await.unwrap();
        let (mine, ack) = send("mine");
        log.commit(vec![mine]).await.unwrap();
        assert_eq!(ack.await.unwrap().unwrap(), 3);
        let delivered: Vec<Seq> = std::iter::from_fn(|| live.try_recv().ok())
            .filter_map(|d| d.seq)
            .collect();
        assert_eq!(delivered, [1, 2, 3]);
        assert_eq!(
            log.recent("other1"),
            Some(1),
            "others' ids are remembered too"
        );
        assert!(!log.is_behind(3) && log.is_behind(4));
    }

    #[test]
    fn recent_ids_forget_the_oldest_first() {
        let mut recent = RecentIds::default();
        for i in 0..=RECENT_CLIENT_IDS as u64 {
            recent.insert(format!("c{i}"), i + 1);
        }
        assert_eq!(recent.get("c0"), None);
        assert_eq!(recent.get("c1"), Some(2));
        assert_eq!(recent.seqs.len(), RECENT_CLIENT_IDS);
    }
}
