//! A room's log: its head, the client ids it has recently seen, and the commits. A batch of sends
//! is handed to the engine in one call (group commit); the engine numbers it after the stored
//! head and recognises client ids it already has. Only then are the senders answered and the new
//! messages broadcast, so nobody sees a message that is not stored, and live order is history
//! order.
//!
//! Commits can be pipelined: up to the engine's `max_in_flight` batches are with it at once (on
//! Redis, where each is a round trip; on SQLite two, so that the writer commits the next batch
//! while the disk syncs the last). The engine applies them in the order they were
//! handed over (one Redis connection), and the room answers them in that order, so numbers, live
//! order and each sender's order stay as with one batch at a time.
//!
//! With a shared engine other nodes append too. When a batch's numbers do not follow this room's
//! head, another node wrote in between, and the room delivers from the engine, in order; the
//! same happens when another node's new head is announced. Whatever such a catch-up delivered
//! early (a batch of this room's that was stored but not yet answered) is not delivered again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{error, warn};

use super::fanout::Fanout;
use super::{RoomError, SendCommand};
use crate::engine::retention::now_ms;
use crate::engine::{Appended, EngineError, History};
use crate::metrics::Metrics;
use crate::redact::LogName;

/// Recent client ids kept in memory per room for idempotency; older ones the engine recognises.
const RECENT_CLIENT_IDS: usize = 4096;
/// Messages read per page when catching up with what other nodes wrote.
const SYNC_PAGE: usize = 500;

/// A batch the engine has answered, waiting for the room to deliver it and answer its senders.
pub(super) struct Committed {
    /// Each sender's answer, in batch order.
    replies: Vec<Reply>,
    batch: Vec<ChatMessage>,
    started: Instant,
    result: Result<Vec<Appended>, EngineError>,
}

/// Where a sender is told its message's number (or why it has none).
type Reply = oneshot::Sender<Result<Seq, RoomError>>;

/// A send waiting for its batch to commit.
pub(super) struct PendingSend {
    /// The message as sent; the engine gives it its number.
    message: ChatMessage,
    reply: Reply,
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
    /// Batches handed to the engine and not yet answered, oldest first; made at the first post
    /// (an empty set allocates, and a room nobody posts to should cost little).
    in_flight: Option<FuturesOrdered<BoxFuture<'static, Committed>>>,
    /// The highest head another writer announced while batches were in flight: caught up with
    /// once they are answered (they may be what was announced).
    announced: Seq,
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
            in_flight: None,
            announced: 0,
        }
    }

    pub(super) fn history(&self) -> &dyn History {
        &*self.history
    }

    /// The last sequence number delivered (0 before the head is known).
    pub(super) fn committed(&self) -> Seq {
        self.head.map_or(0, |(seq, _)| seq)
    }

    /// Whether another writer's `head` is news to this room that it should catch up with now.
    /// With batches in flight it is remembered instead: they may be what was announced, and
    /// are caught up with when they are answered.
    pub(super) fn is_behind(&mut self, head: Seq) -> bool {
        if self.in_flight() > 0 {
            self.announced = self.announced.max(head);
            return false;
        }
        self.head.is_some_and(|(seq, _)| head > seq)
    }

    /// Batches with the engine.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.as_ref().map_or(0, FuturesOrdered::len)
    }

    /// Whether another batch may go to the engine now.
    pub(super) fn can_start(&self) -> bool {
        self.in_flight() < self.history.max_in_flight()
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

    /// Hands a batch to the engine; [`Log::next_committed`] yields it when the engine answers,
    /// in the order batches were started.
    pub(super) fn start(&mut self, sends: Vec<PendingSend>) {
        // Moved, not copied: the engine hands the batch back with its answer.
        let (batch, replies): (Vec<ChatMessage>, Vec<Reply>) =
            sends.into_iter().map(|p| (p.message, p.reply)).unzip();
        let (history, name) = (self.history.clone(), self.name.clone());
        let in_flight = self.in_flight.get_or_insert_with(FuturesOrdered::new);
        in_flight.push_back(Box::pin(async move {
            let started = Instant::now();
            let (batch, result) = history.append_owned(&name, batch).await;
            Committed {
                replies,
                batch,
                started,
                result,
            }
        }));
    }

    /// The oldest batch in flight, once the engine answered it (pending while none is in
    /// flight). Cancel-safe.
    pub(super) async fn next_committed(&mut self) -> Committed {
        match self.next_in_flight().await {
            Some(committed) => committed,
            None => std::future::pending().await,
        }
    }

    async fn next_in_flight(&mut self) -> Option<Committed> {
        match &mut self.in_flight {
            Some(in_flight) => in_flight.next().await,
            None => None,
        }
    }

    /// Commits a batch and waits for everything in flight.
    #[cfg(test)]
    pub(super) async fn commit(&mut self, sends: Vec<PendingSend>) -> Result<(), EngineError> {
        self.start(sends);
        self.settle().await
    }

    /// Answers every batch in flight; the first error, if any.
    pub(super) async fn settle(&mut self) -> Result<(), EngineError> {
        let mut outcome = Ok(());
        while let Some(committed) = self.next_in_flight().await {
            let answered = self.answer(committed).await;
            outcome = outcome.and(answered);
        }
        outcome
    }

    /// Delivers an answered batch and answers each sender. `Err` when the engine failed: the
    /// batch was refused, or it was committed but what other nodes wrote in between could not
    /// be read.
    pub(super) async fn answer(&mut self, committed: Committed) -> Result<(), EngineError> {
        let Committed {
            replies,
            batch,
            started,
            result,
        } = committed;
        let appended = match result {
            Ok(appended) => appended,
            Err(e) => {
                error!(room = %self.name.logged(), error = %e, count = batch.len(), "commit failed; batch refused");
                // Nothing of this batch was stored.
                for reply in replies {
                    let _ = reply.send(Err(RoomError::Unavailable));
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
        let mut delivered = self.deliver_stored(stored, committed_at).await;
        for (reply, a) in replies.into_iter().zip(appended) {
            let _ = reply.send(Ok(a.seq));
        }
        if self.in_flight() == 0 && self.announced > self.committed() {
            self.announced = 0;
            delivered = delivered.and(self.catch_up().await);
        }
        delivered
    }

    /// Delivers a committed batch's new messages, or everything from the engine in order when
    /// another node wrote in between.
    async fn deliver_stored(
        &mut self,
        mut stored: Vec<ChatMessage>,
        committed_at: Instant,
    ) -> Result<(), EngineError> {
        let head = self.committed();
        // A catch-up may have delivered them already (they were stored while in flight).
        stored.retain(|m| m.seq > head || self.recent.get(&m.client_id) != Some(m.seq));
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
#[path = "commit_tests.rs"]
mod tests;
