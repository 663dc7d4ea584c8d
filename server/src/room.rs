//! One room's hub: a task that owns the room's state (next sequence number, recent client ids, the
//! live fan-out channel) and is the only writer of its history.
//!
//! Sessions talk to it through [`RoomHandle`]. Nothing here knows about axum or sockets, so the
//! logic is tested in-process (see the tests at the bottom).
//!
//! Ordering and durability: `send` commands are gathered into batches (group commit). A batch is
//! numbered, committed to the store, and only then acknowledged and broadcast, so nobody ever sees
//! a message that is not stored, and live order equals history order.
//!
//! Slow consumers: live messages go out on a bounded `tokio::sync::broadcast` channel. The room
//! never waits for a reader; a reader that falls more than [`FANOUT_CAPACITY`] messages behind
//! is told it lagged and catches up from the store by sequence number (see `session`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::limits::RoomName;
use app::protocol::{ChatMessage, ErrorCode, Seq, ServerMsg};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use crate::store::RoomStore;

/// Commands queued for one room before senders wait (backpressure on sessions).
const COMMAND_QUEUE: usize = 1024;
/// Most `send` commands committed in one batch.
const MAX_BATCH: usize = 256;
/// Live messages buffered per room for readers; a reader further behind catches up from storage.
pub const FANOUT_CAPACITY: usize = 512;
/// Recent client ids kept in memory per room for idempotency; older ones are looked up in storage.
const RECENT_CLIENT_IDS: usize = 4096;

/// A message as it goes out to every session: the number, and the frame encoded once for all.
#[derive(Debug)]
pub struct Delivery {
    pub seq: Seq,
    /// The encoded `ServerMsg::Message` frame.
    pub frame: Arc<str>,
}

/// Why a room refused a command.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RoomError {
    /// The room task is gone (idle eviction raced the command, or shutdown). Callers retry once
    /// through the registry, which starts a fresh task.
    #[error("room closed")]
    Closed,
    /// The store failed; nothing was accepted.
    #[error("storage unavailable")]
    Unavailable,
}

impl RoomError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Unavailable
    }
}

/// What a session gets when it joins.
pub struct Joined {
    /// Last committed sequence number when the subscription was made: everything up to it is in the
    /// store, everything after it arrives on `live`.
    pub head: Seq,
    pub live: broadcast::Receiver<Arc<Delivery>>,
}

enum Command {
    Join {
        reply: oneshot::Sender<Joined>,
    },
    Send {
        sender: String,
        client_id: String,
        text: String,
        reply: oneshot::Sender<Result<Seq, RoomError>>,
    },
}

/// A cheap, cloneable address of a running room task.
#[derive(Clone)]
pub struct RoomHandle {
    commands: mpsc::Sender<Command>,
}

impl RoomHandle {
    /// Subscribes to the room's live messages.
    pub async fn join(&self) -> Result<Joined, RoomError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Join { reply })
            .await
            .map_err(|_| RoomError::Closed)?;
        rx.await.map_err(|_| RoomError::Closed)
    }

    /// Queues a message for the room and returns a future of its sequence number, resolved once it
    /// is committed. The text and names must already be validated.
    pub async fn send(
        &self,
        sender: String,
        client_id: String,
        text: String,
    ) -> Result<oneshot::Receiver<Result<Seq, RoomError>>, RoomError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Send {
                sender,
                client_id,
                text,
                reply,
            })
            .await
            .map_err(|_| RoomError::Closed)?;
        Ok(rx)
    }

    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    pub fn same_room_task(&self, other: &RoomHandle) -> bool {
        self.commands.same_channel(&other.commands)
    }
}

/// Settings for room tasks.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// How long a room with nobody connected stays in memory.
    pub idle_timeout: Duration,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Starts a room task and returns its handle. `on_exit` runs when the task ends.
pub fn spawn_room(
    name: RoomName,
    store: Arc<dyn RoomStore>,
    settings: RoomSettings,
    shutdown: CancellationToken,
    on_exit: impl FnOnce(&RoomHandle) + Send + 'static,
) -> RoomHandle {
    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = RoomHandle { commands };
    let own = handle.clone();
    tokio::spawn(async move {
        // The task must not keep itself alive through its own sender.
        let weak = own.commands.downgrade();
        drop(own);
        let mut room = Room::new(name, store, settings);
        room.run(rx, shutdown).await;
        if let Some(commands) = weak.upgrade() {
            on_exit(&RoomHandle { commands });
        }
    });
    handle
}

struct Room {
    name: RoomName,
    store: Arc<dyn RoomStore>,
    settings: RoomSettings,
    /// Last committed sequence number and timestamp; loaded from the store on first use.
    head: Option<(Seq, i64)>,
    live: broadcast::Sender<Arc<Delivery>>,
    /// client_id -> seq for recent messages, with insertion order for eviction.
    recent: HashMap<String, Seq>,
    recent_order: VecDeque<String>,
}

/// A send waiting for its batch to commit.
struct PendingSend {
    /// The new message, or `None` when this send repeats a client id earlier in the same batch.
    message: Option<ChatMessage>,
    /// The sequence number the sender will be told.
    seq: Seq,
    reply: oneshot::Sender<Result<Seq, RoomError>>,
}

impl Room {
    fn new(name: RoomName, store: Arc<dyn RoomStore>, settings: RoomSettings) -> Self {
        let (live, _) = broadcast::channel(FANOUT_CAPACITY);
        Self {
            name,
            store,
            settings,
            head: None,
            live,
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
        }
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut idle_check = tokio::time::interval(self.settings.idle_timeout / 2);
        let mut idle_ticks = 0u32;
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, MAX_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    idle_ticks = 0;
                    self.process(&mut batch).await;
                }
                _ = idle_check.tick() => {
                    if self.live.receiver_count() == 0 {
                        idle_ticks += 1;
                        // Two ticks with nobody: at least idle_timeout / 2 and usually more.
                        if idle_ticks >= 2 {
                            rx.close();
                            // Drain what raced in before the close; its senders are answered.
                            while let Ok(cmd) = rx.try_recv() {
                                batch.push(cmd);
                            }
                            self.process(&mut batch).await;
                            debug!(room = %self.name, "room idle, leaving memory");
                            break;
                        }
                    } else {
                        idle_ticks = 0;
                    }
                }
                _ = shutdown.cancelled() => {
                    rx.close();
                    while let Ok(cmd) = rx.try_recv() {
                        batch.push(cmd);
                    }
                    self.process(&mut batch).await;
                    break;
                }
            }
        }
    }

    async fn load_head(&mut self) -> Result<(Seq, i64), RoomError> {
        if let Some(head) = self.head {
            return Ok(head);
        }
        let head = self.store.head(&self.name).await.map_err(|e| {
            error!(room = %self.name, error = %e, "cannot read room head");
            RoomError::Unavailable
        })?;
        self.head = Some(head);
        Ok(head)
    }

    /// Handles a batch of commands: joins at once, sends as one group commit.
    async fn process(&mut self, batch: &mut Vec<Command>) {
        let mut sends: Vec<PendingSend> = Vec::new();
        // client_ids within this batch, so a duplicate inside one batch is caught too.
        let mut batch_ids: HashMap<String, Seq> = HashMap::new();
        let head = self.load_head().await;
        for cmd in batch.drain(..) {
            match cmd {
                Command::Join { reply } => {
                    // Subscribe before anything in this batch is broadcast, and report the head
                    // committed so far: the joiner reads up to `head` from the store and gets the
                    // rest live, so it sees each message exactly once.
                    let committed = self.head.map_or(0, |(seq, _)| seq);
                    let _ = reply.send(Joined {
                        head: committed,
                        live: self.live.subscribe(),
                    });
                }
                Command::Send {
                    sender,
                    client_id,
                    text,
                    reply,
                } => {
                    let Ok((head_seq, head_ts)) = head else {
                        let _ = reply.send(Err(RoomError::Unavailable));
                        continue;
                    };
                    match self.lookup_client_id(&client_id).await {
                        Ok(Some(seq)) => {
                            let _ = reply.send(Ok(seq));
                            continue;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                    }
                    if let Some(&seq) = batch_ids.get(&client_id) {
                        // Same id twice in one batch: the second gets the first's number.
                        sends.push(PendingSend {
                            message: None,
                            seq,
                            reply,
                        });
                        continue;
                    }
                    let (prev_seq, prev_ts) = sends
                        .iter()
                        .rev()
                        .find_map(|p| p.message.as_ref())
                        .map_or((head_seq, head_ts), |m| (m.seq, m.sent_at_ms));
                    let message = ChatMessage {
                        seq: prev_seq + 1,
                        id: uuid::Uuid::new_v4().simple().to_string(),
                        sender,
                        text,
                        // Timestamps never go backwards within a room, even if the clock does.
                        sent_at_ms: now_ms().max(prev_ts),
                        client_id: client_id.clone(),
                    };
                    batch_ids.insert(client_id, message.seq);
                    sends.push(PendingSend {
                        seq: message.seq,
                        message: Some(message),
                        reply,
                    });
                }
            }
        }
        if !sends.is_empty() {
            self.commit(sends).await;
        }
    }

    async fn lookup_client_id(&mut self, client_id: &str) -> Result<Option<Seq>, RoomError> {
        if let Some(&seq) = self.recent.get(client_id) {
            return Ok(Some(seq));
        }
        self.store
            .find_client_id(&self.name, client_id)
            .await
            .map_err(|e| {
                error!(room = %self.name, error = %e, "cannot look up client id");
                RoomError::Unavailable
            })
    }

    async fn commit(&mut self, sends: Vec<PendingSend>) {
        // Entries that repeat an id already in this batch are answered, not stored.
        let unique: Vec<ChatMessage> = sends.iter().filter_map(|p| p.message.clone()).collect();
        if let Err(e) = self.store.append(&self.name, &unique).await {
            error!(room = %self.name, error = %e, count = unique.len(), "commit failed; batch refused");
            for p in sends {
                let _ = p.reply.send(Err(RoomError::Unavailable));
            }
            return;
        }
        if let Some(last) = unique.last() {
            self.head = Some((last.seq, last.sent_at_ms));
        }
        for m in unique {
            self.remember_client_id(m.client_id.clone(), m.seq);
            let frame: Arc<str> = ServerMsg::Message(m.clone()).encode().into();
            // An error only means nobody is listening right now; the message is stored.
            let _ = self.live.send(Arc::new(Delivery { seq: m.seq, frame }));
        }
        for p in sends {
            let _ = p.reply.send(Ok(p.seq));
        }
    }

    fn remember_client_id(&mut self, client_id: String, seq: Seq) {
        if self.recent_order.len() >= RECENT_CLIENT_IDS {
            if let Some(old) = self.recent_order.pop_front() {
                self.recent.remove(&old);
            }
        }
        self.recent_order.push_back(client_id.clone());
        self.recent.insert(client_id, seq);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures::future::BoxFuture;

    use super::*;
    use crate::registry::Rooms;
    use crate::store::{MemoryStore, StoreError};

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn start(store: Arc<dyn RoomStore>) -> RoomHandle {
        spawn_room(
            room("test"),
            store,
            RoomSettings::default(),
            CancellationToken::new(),
            |_| {},
        )
    }

    #[tokio::test]
    async fn concurrent_sends_get_contiguous_numbers_and_live_order_matches() {
        let store = Arc::new(MemoryStore::default());
        let handle = start(store.clone());
        let mut live = handle.join().await.unwrap().live;
        let mut acks = Vec::new();
        for i in 0..300 {
            acks.push(
                handle
                    .send("a".into(), format!("c{i}"), format!("t{i}"))
                    .await
                    .unwrap(),
            );
        }
        let mut seqs = Vec::new();
        for ack in acks {
            seqs.push(ack.await.unwrap().unwrap());
        }
        assert!(
            seqs.iter().copied().eq(1..=300),
            "acks in send order with contiguous numbers"
        );
        for expected in 1..=300 {
            assert_eq!(live.recv().await.unwrap().seq, expected);
        }
        let stored = store.after(&room("test"), 0, 1000).await.unwrap();
        assert!(stored.iter().map(|m| m.seq).eq(1..=300));
        assert!(
            stored
                .windows(2)
                .all(|w| w[0].sent_at_ms <= w[1].sent_at_ms),
            "timestamps never go back"
        );
    }

    #[tokio::test]
    async fn duplicate_client_ids_store_once_even_in_one_batch() {
        let store = Arc::new(MemoryStore::default());
        let handle = start(store.clone());
        let a = handle
            .send("a".into(), "dup".into(), "x".into())
            .await
            .unwrap();
        let b = handle
            .send("a".into(), "dup".into(), "x".into())
            .await
            .unwrap();
        assert_eq!(a.await.unwrap().unwrap(), 1);
        assert_eq!(b.await.unwrap().unwrap(), 1);
        let c = handle
            .send("a".into(), "dup".into(), "x".into())
            .await
            .unwrap();
        assert_eq!(c.await.unwrap().unwrap(), 1);
        assert_eq!(store.head(&room("test")).await.unwrap().0, 1);
    }

    /// A store whose writes can be switched off, to see what the room does when storage fails.
    #[derive(Default)]
    struct FlakyStore {
        inner: MemoryStore,
        down: AtomicBool,
    }

    impl RoomStore for FlakyStore {
        fn append<'a>(
            &'a self,
            room: &'a RoomName,
            batch: &'a [ChatMessage],
        ) -> BoxFuture<'a, Result<(), StoreError>> {
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
        fn find_client_id<'a>(
            &'a self,
            room: &'a RoomName,
            id: &'a str,
        ) -> BoxFuture<'a, Result<Option<Seq>, StoreError>> {
            self.inner.find_client_id(room, id)
        }
    }

    #[tokio::test]
    async fn a_failed_commit_is_refused_not_broadcast_and_leaves_no_hole() {
        let store = Arc::new(FlakyStore::default());
        let handle = start(store.clone());
        let mut live = handle.join().await.unwrap().live;
        store.down.store(true, Ordering::SeqCst);
        let refused = handle
            .send("a".into(), "c1".into(), "lost?".into())
            .await
            .unwrap();
        assert!(matches!(
            refused.await.unwrap(),
            Err(RoomError::Unavailable)
        ));
        assert!(
            live.try_recv().is_err(),
            "nothing is broadcast that was not stored"
        );

        store.down.store(false, Ordering::SeqCst);
        // The same client id can be retried and gets number 1: no hole, no duplicate.
        let retried = handle
            .send("a".into(), "c1".into(), "lost?".into())
            .await
            .unwrap();
        assert_eq!(retried.await.unwrap().unwrap(), 1);
        assert_eq!(live.recv().await.unwrap().seq, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_room_leaves_memory_and_comes_back_with_its_history() {
        let store: Arc<dyn RoomStore> = Arc::new(MemoryStore::default());
        let rooms = Rooms::new(
            store,
            RoomSettings {
                idle_timeout: Duration::from_secs(10),
            },
            CancellationToken::new(),
        );
        let handle = rooms.get(&room("quiet"));
        let joined = handle.join().await.unwrap();
        let ack = handle
            .send("a".into(), "c1".into(), "hi".into())
            .await
            .unwrap();
        assert_eq!(ack.await.unwrap().unwrap(), 1);
        assert_eq!(rooms.active_count(), 1);

        // Someone connected keeps it in memory.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(rooms.active_count(), 1);

        drop(joined);
        drop(handle);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(rooms.active_count(), 0, "idle room unloaded");

        let handle = rooms.get(&room("quiet"));
        let joined = handle.join().await.unwrap();
        assert_eq!(joined.head, 1, "history survives unloading");
        let ack = handle
            .send("a".into(), "c2".into(), "again".into())
            .await
            .unwrap();
        assert_eq!(ack.await.unwrap().unwrap(), 2);
        let dup = handle
            .send("a".into(), "c1".into(), "hi".into())
            .await
            .unwrap();
        assert_eq!(
            dup.await.unwrap().unwrap(),
            1,
            "idempotency survives unloading"
        );
    }
}
