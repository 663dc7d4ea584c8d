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
//! Shared engines (Redis): other nodes append to the same room. Their new heads arrive on the
//! store's `watch` feed; the room reads what they wrote and broadcasts it in sequence order like
//! its own. The store numbers every batch, so nodes never race for a number: when the numbers
//! of a batch do not follow the room's head, another node wrote in between, and the room
//! delivers from the store, in order. The roster is this node's people plus the
//! other nodes' (published through the engine under a lease, renewed every
//! [`ROSTER_REFRESH`]).
//!
//! Degraded: when the engine cannot be reached, the room tells its clients (`status`), refuses
//! sends at once (`unavailable`: clients keep them and send again) instead of making everyone
//! wait on timeouts, and probes the engine every [`PROBE_INTERVAL`]. When it answers, the room
//! subscribes again, catches up from its last sequence number, and says it is back.
//!
//! Slow consumers: live messages go out on a bounded `tokio::sync::broadcast` channel. The room
//! never waits for a reader; a reader that falls more than [`FANOUT_CAPACITY`] messages behind
//! is told it lagged and catches up from the store by sequence number (see `session`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::limits::RoomName;
use app::protocol::{ChatMessage, ErrorCode, Seq, ServerMsg};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered, StreamExt};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, warn};

use crate::metrics::Metrics;
use crate::store::{EngineEvent, RoomStore, Roster, StoreError, ROSTER_REFRESH};

/// Commands queued for one room before senders wait (backpressure on sessions).
const COMMAND_QUEUE: usize = 1024;
/// Most `send` commands committed in one batch. One fsync costs the same for one message or a
/// thousand, so a busy room takes everything that is waiting (the command queue holds 1024).
const MAX_BATCH: usize = 1024;
/// Live messages buffered per room for readers; a reader further behind catches up from storage.
pub const FANOUT_CAPACITY: usize = 512;
/// Recent client ids kept in memory per room for idempotency; older ones are looked up in storage.
const RECENT_CLIENT_IDS: usize = 4096;

/// Messages read per page when catching up with what other nodes wrote.
const SYNC_PAGE: usize = 500;
/// How often a degraded room checks whether the engine is back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Longest wait before joins and leaves are announced; changes within it are merged, so a crowd
/// reconnecting at once (leave + join) announces nothing, and many joins make one frame.
pub const PRESENCE_COALESCE: Duration = Duration::from_millis(500);

/// What goes out to every session, encoded once for all.
#[derive(Debug)]
pub struct Delivery {
    /// The message's sequence number; `None` for presence, which is not part of history.
    pub seq: Option<Seq>,
    /// What is delivered, for dialects other than Palaver's own.
    pub msg: ServerMsg,
    /// The encoded `ServerMsg::Message` or `ServerMsg::Presence` frame.
    pub frame: Arc<str>,
    /// When the message was committed (for the fan-out latency metric).
    pub committed_at: Instant,
}

/// Held by a session for as long as its member is in the room; dropping it is the leave.
pub struct Membership {
    _left: oneshot::Sender<()>,
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
    /// Who is in the room right now (the joiner included), sorted, each name once.
    pub online: Vec<String>,
    /// Keep for as long as the member is in the room.
    pub membership: Membership,
    /// Whether the room cannot store messages right now (its engine is unreachable).
    pub degraded: bool,
}

/// What the room answers a join with (see [`Joined`]).
struct JoinReply {
    head: Seq,
    live: broadcast::Receiver<Arc<Delivery>>,
    online: Vec<String>,
    degraded: bool,
}

enum Command {
    Join {
        name: String,
        left: oneshot::Receiver<()>,
        reply: oneshot::Sender<JoinReply>,
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
    /// Enters the room as `name` and subscribes to its live messages.
    pub async fn join(&self, name: String) -> Result<Joined, RoomError> {
        let (reply, rx) = oneshot::channel();
        let (left_tx, left) = oneshot::channel();
        self.commands
            .send(Command::Join { name, left, reply })
            .await
            .map_err(|_| RoomError::Closed)?;
        let reply = rx.await.map_err(|_| RoomError::Closed)?;
        Ok(Joined {
            head: reply.head,
            live: reply.live,
            online: reply.online,
            membership: Membership { _left: left_tx },
            degraded: reply.degraded,
        })
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
    /// Where commits are counted and timed.
    pub metrics: Arc<Metrics>,
    /// Room tasks are spawned on this, so that shutdown can wait for their last commits.
    pub tasks: TaskTracker,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            metrics: Arc::default(),
            tasks: TaskTracker::new(),
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
    let tasks = settings.tasks.clone();
    tasks.spawn(async move {
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
    /// Member id -> display name, for everyone connected.
    members: HashMap<u64, String>,
    next_member: u64,
    /// Display name -> number of connections on this node (several tabs count once).
    online: Roster,
    /// The people other nodes have in the room (shared engines only).
    remote: Roster,
    /// This node's roster as last published to the engine, and whether that worked.
    shared: Option<Roster>,
    /// The roster as last announced, to compute net joins and leaves.
    announced: BTreeSet<String>,
    /// When the pending roster change is announced, and the room's head when it began.
    presence_due: Option<(Instant, Seq)>,
    /// Resolves with a member id when that member's session ends.
    departures: FuturesUnordered<BoxFuture<'static, u64>>,
    /// What other nodes do in the room (shared engines only); `None` when this node is the only
    /// writer, or while the subscription is being re-established.
    feed: Option<BoxStream<'static, EngineEvent>>,
    /// Whether the engine is unreachable: sends are refused at once and the engine is probed.
    degraded: bool,
    /// When to check again whether the engine is back (set while degraded).
    probe_at: Option<Instant>,
}

/// The next event from the engine's notifications (pending forever without a feed).
async fn next_event(feed: &mut Option<BoxStream<'static, EngineEvent>>) -> Option<EngineEvent> {
    match feed {
        Some(feed) => feed.next().await,
        None => std::future::pending().await,
    }
}

/// A send waiting for its batch to commit.
struct PendingSend {
    /// The message as sent; the store gives it its number.
    message: ChatMessage,
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
            members: HashMap::new(),
            next_member: 0,
            online: Roster::new(),
            remote: Roster::new(),
            shared: None,
            announced: BTreeSet::new(),
            presence_due: None,
            departures: FuturesUnordered::new(),
            feed: None,
            degraded: false,
            probe_at: None,
        }
    }

    fn add_member(&mut self, name: String, left: oneshot::Receiver<()>) {
        let id = self.next_member;
        self.next_member += 1;
        *self.online.entry(name.clone()).or_default() += 1;
        self.members.insert(id, name);
        self.departures.push(Box::pin(async move {
            // Resolves (with an error) when the session drops its Membership.
            let _ = left.await;
            id
        }));
        self.schedule_presence();
    }

    fn remove_member(&mut self, id: u64) {
        if let Some(name) = self.members.remove(&id) {
            if let Some(count) = self.online.get_mut(&name) {
                *count -= 1;
                if *count == 0 {
                    self.online.remove(&name);
                }
            }
            self.schedule_presence();
        }
    }

    fn schedule_presence(&mut self) {
        if self.presence_due.is_none() {
            let head = self.head.map_or(0, |(seq, _)| seq);
            self.presence_due = Some((Instant::now() + PRESENCE_COALESCE, head));
        }
    }

    /// Everyone in the room: this node's people and other nodes', sorted, each name once.
    fn roster_names(&self) -> BTreeSet<String> {
        self.online
            .keys()
            .chain(self.remote.keys())
            .cloned()
            .collect()
    }

    /// Publishes this node's roster to a shared engine: when it changed (other nodes are told),
    /// or to renew its lease. A failure is tried again at the next change or renewal.
    async fn share_roster(&mut self) {
        if !self.store.is_shared() {
            return;
        }
        let changed = self.shared.as_ref() != Some(&self.online);
        if !changed && self.online.is_empty() {
            return;
        }
        match self
            .store
            .share_roster(&self.name, &self.online, changed)
            .await
        {
            Ok(()) => self.shared = Some(self.online.clone()),
            Err(e) => {
                warn!(room = %self.name, error = %e, "cannot publish the roster");
                self.shared = None;
                self.engine_failed(&e);
            }
        }
    }

    /// Reads the other nodes' people again; announces any change.
    async fn refresh_remote_roster(&mut self) {
        if !self.store.is_shared() {
            return;
        }
        match self.store.remote_roster(&self.name).await {
            Ok(remote) => {
                if remote != self.remote {
                    self.remote = remote;
                    self.schedule_presence();
                }
            }
            Err(e) => {
                warn!(room = %self.name, error = %e, "cannot read the other nodes' roster");
                self.engine_failed(&e);
            }
        }
    }

    /// Broadcasts the net change of the roster since the last announcement, if any.
    async fn announce_presence(&mut self) {
        // While degraded the engine cannot take it; the probe publishes it on recovery.
        if !self.degraded {
            self.share_roster().await;
        }
        let at_seq = self.presence_due.take().map_or(0, |(_, seq)| seq);
        let now = self.roster_names();
        let joined: Vec<String> = now.difference(&self.announced).cloned().collect();
        let left: Vec<String> = self.announced.difference(&now).cloned().collect();
        if joined.is_empty() && left.is_empty() {
            return;
        }
        self.broadcast(ServerMsg::Presence {
            online: now.iter().cloned().collect(),
            joined,
            left,
            at_seq,
        });
        self.announced = now;
    }

    /// Broadcasts a frame that is not part of history (presence, status).
    fn broadcast(&self, msg: ServerMsg) {
        let frame = msg.encode().into();
        let _ = self.live.send(Arc::new(Delivery {
            seq: None,
            msg,
            frame,
            committed_at: Instant::now(),
        }));
    }

    /// The engine failed a request: the room is degraded until a probe finds it back.
    fn engine_failed(&mut self, error: &StoreError) {
        debug!(room = %self.name, %error, "engine request failed");
        self.set_degraded(true);
    }

    fn set_degraded(&mut self, degraded: bool) {
        // A probe already due stays due: further failures must not keep postponing it.
        self.probe_at = match (degraded, self.probe_at) {
            (true, Some(due)) => Some(due),
            (true, None) => Some(Instant::now() + PROBE_INTERVAL),
            (false, _) => None,
        };
        if self.degraded != degraded {
            self.degraded = degraded;
            if degraded {
                self.settings.metrics.rooms_degraded.inc();
            } else {
                self.settings.metrics.rooms_degraded.dec();
            }
            if degraded {
                // The head stays: it is what this node's clients have seen, and the probe
                // catches up from it (or starts again from the engine's, if that went back).
                warn!(room = %self.name, "storage unreachable; refusing messages until it is back");
            } else {
                tracing::info!(room = %self.name, "storage reachable again");
            }
            self.broadcast(ServerMsg::Status { degraded });
        }
    }

    /// While degraded: is the engine back? If so, subscribe again, catch up from the last
    /// sequence number, renew the roster, and say so.
    async fn probe(&mut self) {
        if let Err(e) = self.store.check().await {
            debug!(room = %self.name, error = %e, "storage still unreachable");
            self.probe_at = Some(Instant::now() + PROBE_INTERVAL);
            return;
        }
        if self.store.is_shared() {
            if let Err(e) = self.watch().await {
                debug!(room = %self.name, error = %e, "cannot subscribe yet");
                self.probe_at = Some(Instant::now() + PROBE_INTERVAL);
                return;
            }
        }
        // Each step below sets `probe_at` again if the engine fails it.
        self.probe_at = None;
        self.resync().await;
        self.shared = None; // publish again: the engine may have lost it
        self.share_roster().await;
        self.refresh_remote_roster().await;
        if self.probe_at.is_none() {
            self.set_degraded(false);
        }
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        if let Err(e) = self.watch().await {
            warn!(room = %self.name, error = %e, "cannot subscribe to the engine");
            self.set_degraded(true);
        }
        // Who is already here through other nodes: they announced it before this room was
        // loaded (and subscribed) on this node.
        self.refresh_remote_roster().await;
        let mut refresh = tokio::time::interval_at(Instant::now() + ROSTER_REFRESH, ROSTER_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Grows to the largest batch seen; a quiet room keeps it small.
        let mut batch = Vec::new();
        let mut idle_check = tokio::time::interval(self.settings.idle_timeout / 2);
        let mut idle_ticks = 0u32;
        loop {
            let presence_due = self.presence_due.map(|(due, _)| due);
            tokio::select! {
                Some(member) = self.departures.next() => self.remove_member(member),
                event = next_event(&mut self.feed), if self.feed.is_some() => match event {
                    Some(EngineEvent::Head(head)) => {
                        if !self.degraded && self.head.is_some_and(|(seq, _)| head > seq) {
                            self.sync_from_store().await;
                        }
                    }
                    Some(EngineEvent::Roster) => self.refresh_remote_roster().await,
                    Some(EngineEvent::Lost) | None => {
                        warn!(room = %self.name, "lost the engine's notifications");
                        self.feed = None;
                        self.set_degraded(true);
                    }
                },
                _ = sleep_until(self.probe_at.unwrap_or_else(Instant::now)), if self.probe_at.is_some() => {
                    self.probe().await;
                }
                _ = refresh.tick(), if self.store.is_shared() && !self.degraded => {
                    // Renew this node's roster lease, drop other nodes' lapsed ones, and catch up
                    // on anything whose notification was lost.
                    self.share_roster().await;
                    self.refresh_remote_roster().await;
                    if !self.degraded {
                        self.resync().await;
                    }
                }
                _ = sleep_until(presence_due.unwrap_or_else(Instant::now)), if presence_due.is_some() => {
                    self.announce_presence().await;
                }
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
                            self.leave_engine().await;
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
                    self.leave_engine().await;
                    break;
                }
            }
        }
    }

    /// Takes this node's people off the shared roster (the room is leaving memory).
    async fn leave_engine(&mut self) {
        if self.degraded {
            self.settings.metrics.rooms_degraded.dec();
        }
        self.online.clear();
        if self.shared.as_ref().is_some_and(|r| !r.is_empty()) {
            self.share_roster().await;
        }
    }

    /// Subscribes to the engine's notifications for this room, if it has any.
    async fn watch(&mut self) -> Result<(), StoreError> {
        // The old subscription goes first, so that its end cannot undo the new one.
        self.feed = None;
        self.feed = self.store.watch(&self.name).await?;
        Ok(())
    }

    /// Delivers, in order, what other writers committed after this room's head.
    async fn sync_from_store(&mut self) {
        while let Some((head, _)) = self.head {
            let page = match self.store.after(&self.name, head, SYNC_PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    warn!(room = %self.name, error = %e, "cannot read what other nodes wrote");
                    self.engine_failed(&e);
                    return;
                }
            };
            if page.is_empty() {
                return;
            }
            let committed_at = Instant::now();
            for m in page {
                self.head = Some((m.seq, m.sent_at_ms));
                self.deliver(m, committed_at);
            }
        }
    }

    /// After a recovery, or as a periodic safety net for lost notifications: catch up with the
    /// store if it moved on, or follow its head if it went back (a Redis that lost data).
    async fn resync(&mut self) {
        let Some((local, _)) = self.head else {
            return;
        };
        match self.store.head(&self.name).await {
            Ok((stored, _)) if stored > local => self.sync_from_store().await,
            Ok(head) if head.0 < local => {
                warn!(room = %self.name, local, stored = head.0, "the engine has fewer messages than this room had; following its head");
                self.head = Some(head);
            }
            Ok(_) => {}
            Err(e) => self.engine_failed(&e),
        }
    }

    async fn load_head(&mut self) -> Result<(Seq, i64), RoomError> {
        // Degraded: refuse at once rather than make every sender wait for a timeout.
        if self.degraded {
            return Err(RoomError::Unavailable);
        }
        if let Some(head) = self.head {
            return Ok(head);
        }
        let head = match self.store.head(&self.name).await {
            Ok(head) => head,
            Err(e) => {
                error!(room = %self.name, error = %e, "cannot read room head");
                self.engine_failed(&e);
                return Err(RoomError::Unavailable);
            }
        };
        self.head = Some(head);
        Ok(head)
    }

    /// Handles a batch of commands: joins at once, sends as one group commit.
    async fn process(&mut self, batch: &mut Vec<Command>) {
        let mut sends: Vec<PendingSend> = Vec::new();
        // Joiners are told the head; sends are refused at once without one (degraded).
        let head = self.load_head().await;
        for cmd in batch.drain(..) {
            match cmd {
                Command::Join { name, left, reply } => {
                    // Subscribe before anything in this batch is broadcast, and report the head
                    // committed so far: the joiner reads up to `head` from the store and gets the
                    // rest live, so it sees each message exactly once.
                    let committed = self.head.map_or(0, |(seq, _)| seq);
                    self.add_member(name, left);
                    let _ = reply.send(JoinReply {
                        head: committed,
                        live: self.live.subscribe(),
                        online: self.roster_names().into_iter().collect(),
                        degraded: self.degraded,
                    });
                }
                Command::Send {
                    sender,
                    client_id,
                    text,
                    reply,
                } => {
                    if head.is_err() {
                        let _ = reply.send(Err(RoomError::Unavailable));
                        continue;
                    }
                    // A resend of a recent message is answered from memory; older ones (and
                    // repeats within this batch) the store recognises.
                    if let Some(&seq) = self.recent.get(&client_id) {
                        let _ = reply.send(Ok(seq));
                        continue;
                    }
                    sends.push(PendingSend {
                        message: ChatMessage {
                            // The store numbers it.
                            seq: 0,
                            id: uuid::Uuid::new_v4().simple().to_string(),
                            sender,
                            text,
                            sent_at_ms: now_ms(),
                            client_id,
                        },
                        reply,
                    });
                }
            }
        }
        if !sends.is_empty() {
            self.commit(sends).await;
        }
    }

    async fn commit(&mut self, sends: Vec<PendingSend>) {
        let batch: Vec<ChatMessage> = sends.iter().map(|p| p.message.clone()).collect();
        let started = Instant::now();
        let appended = match self.store.append(&self.name, &batch).await {
            Ok(appended) => appended,
            Err(e) => {
                error!(room = %self.name, error = %e, count = batch.len(), "commit failed; batch refused");
                // Nothing of this batch was stored; the room is degraded until storage is back.
                self.engine_failed(&e);
                for p in sends {
                    let _ = p.reply.send(Err(RoomError::Unavailable));
                }
                return;
            }
        };
        let committed_at = Instant::now();
        let metrics = &self.settings.metrics;
        metrics.observe_commit(committed_at - started);
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
        metrics.accepted.inc_by(stored.len() as u64);
        let head = self.head.map_or(0, |(seq, _)| seq);
        match stored.first() {
            // Another node wrote in between: deliver its messages and ours from the store, in
            // sequence order.
            Some(first) if first.seq > head + 1 => self.sync_from_store().await,
            Some(first) => {
                if first.seq <= head {
                    warn!(room = %self.name, local = head, stored = first.seq - 1, "the engine has fewer messages than this room had; following its numbers");
                }
                for m in stored {
                    self.head = Some((m.seq, m.sent_at_ms));
                    self.deliver(m, committed_at);
                }
            }
            None => {}
        }
        for (p, a) in sends.into_iter().zip(appended) {
            let _ = p.reply.send(Ok(a.seq));
        }
    }

    /// Remembers a committed message's client id and sends it, encoded once, to every session.
    fn deliver(&mut self, m: ChatMessage, committed_at: Instant) {
        self.remember_client_id(m.client_id.clone(), m.seq);
        let seq = m.seq;
        let msg = ServerMsg::Message(m);
        let frame: Arc<str> = msg.encode().into();
        // An error only means nobody is listening right now; the message is stored.
        let _ = self.live.send(Arc::new(Delivery {
            seq: Some(seq),
            msg,
            frame,
            committed_at,
        }));
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
mod properties;

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::registry::Rooms;
    use crate::store::{FlakyStore, MemoryStore};

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    /// The next message's sequence number, skipping presence frames.
    async fn next_seq(live: &mut broadcast::Receiver<Arc<Delivery>>) -> Seq {
        loop {
            if let Some(seq) = live.recv().await.unwrap().seq {
                return seq;
            }
        }
    }

    /// The next presence frame as (online, joined, left).
    async fn next_presence(
        live: &mut broadcast::Receiver<Arc<Delivery>>,
    ) -> (Vec<String>, Vec<String>, Vec<String>) {
        loop {
            let d = live.recv().await.unwrap();
            if d.seq.is_none() {
                match serde_json::from_str(&d.frame).unwrap() {
                    ServerMsg::Presence {
                        online,
                        joined,
                        left,
                        ..
                    } => return (online, joined, left),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn presence_counts_tabs_once_and_merges_quick_reconnects() {
        let handle = start(Arc::new(MemoryStore::default()));
        let ada = handle.join("Ada".into()).await.unwrap();
        let mut watch = ada.live.resubscribe();
        assert_eq!(ada.online, ["Ada"]);
        let ada_tab2 = handle.join("Ada".into()).await.unwrap();
        let bob = handle.join("Bob".into()).await.unwrap();
        assert_eq!(
            bob.online,
            ["Ada", "Bob"],
            "the joiner sees the roster at once, each name once"
        );
        let (online, joined, left) = next_presence(&mut watch).await;
        assert_eq!(
            (online, joined, left),
            (
                vec!["Ada".into(), "Bob".into()],
                vec!["Ada".into(), "Bob".into()],
                vec![]
            )
        );

        // Closing one of two tabs changes nothing; Bob reconnecting quickly announces nothing.
        drop(ada_tab2);
        drop(bob);
        let bob_again = handle.join("Bob".into()).await.unwrap();
        tokio::time::sleep(PRESENCE_COALESCE * 3).await;
        assert!(
            watch.try_recv().is_err(),
            "no presence frame for a net change of nothing"
        );

        drop(bob_again);
        let (online, joined, left) = next_presence(&mut watch).await;
        assert_eq!(
            (online, joined, left),
            (vec!["Ada".to_owned()], vec![], vec!["Bob".to_owned()])
        );
        drop(ada);
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
        let mut live = handle.join("tester".into()).await.unwrap().live;
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
            assert_eq!(next_seq(&mut live).await, expected);
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

    #[tokio::test(start_paused = true)]
    async fn a_failed_commit_is_refused_not_broadcast_and_leaves_no_hole() {
        let store = Arc::new(FlakyStore::default());
        let handle = start(store.clone());
        let mut live = handle.join("tester".into()).await.unwrap().live;
        store.down.store(true, Ordering::SeqCst);
        let refused = handle
            .send("a".into(), "c1".into(), "lost?".into())
            .await
            .unwrap();
        assert!(matches!(
            refused.await.unwrap(),
            Err(RoomError::Unavailable)
        ));
        assert_eq!(
            next_status(&mut live).await,
            Some(true),
            "the room says it is degraded"
        );
        assert!(
            live.try_recv().is_err(),
            "nothing is broadcast that was not stored"
        );
        // While degraded, sends are refused at once, and a joiner is told.
        let refused = handle
            .send("a".into(), "c2".into(), "also refused".into())
            .await
            .unwrap();
        assert!(matches!(
            refused.await.unwrap(),
            Err(RoomError::Unavailable)
        ));
        assert!(handle.join("late".into()).await.unwrap().degraded);

        store.down.store(false, Ordering::SeqCst);
        assert_eq!(
            next_status(&mut live).await,
            Some(false),
            "the probe finds storage back and says so"
        );
        // The same client id can be retried and gets number 1: no hole, no duplicate.
        let retried = handle
            .send("a".into(), "c1".into(), "lost?".into())
            .await
            .unwrap();
        assert_eq!(retried.await.unwrap().unwrap(), 1);
        assert_eq!(next_seq(&mut live).await, 1);
    }

    /// The next status frame's `degraded`, skipping presence; `None` if a message comes first.
    async fn next_status(live: &mut broadcast::Receiver<Arc<Delivery>>) -> Option<bool> {
        loop {
            let d = live.recv().await.unwrap();
            match &d.msg {
                ServerMsg::Status { degraded } => return Some(*degraded),
                ServerMsg::Message(_) => return None,
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn two_writers_of_one_room_never_refuse_and_deliver_in_order() {
        // Two room tasks on one store stand for two nodes serving the same room.
        let store = Arc::new(MemoryStore::default());
        let (one, two) = (start(store.clone()), start(store.clone()));
        let mut live = two.join("watcher".into()).await.unwrap().live;
        // Each waits for the other's commit, so each node's idea of the head is always stale.
        let mut seqs = Vec::new();
        for i in 0..60 {
            let node = if i % 2 == 0 { &one } else { &two };
            let ack = node
                .send("a".into(), format!("c{i}"), format!("t{i}"))
                .await
                .unwrap();
            seqs.push(ack.await.unwrap().expect("accepted, not refused"));
        }
        // A resend through the other node of a message already stored gets its number.
        let again = two
            .send("a".into(), "c0".into(), "t0".into())
            .await
            .unwrap();
        assert_eq!(again.await.unwrap().unwrap(), seqs[0]);
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert!(
            sorted.iter().copied().eq(1..=60),
            "each number once: {seqs:?}"
        );
        let stored = store.after(&room("test"), 0, 100).await.unwrap();
        assert_eq!(stored.len(), 60);
        for (i, seq) in seqs.iter().enumerate() {
            assert_eq!(stored[*seq as usize - 1].client_id, format!("c{i}"));
        }
        // The last writer's room delivered everything, the other's messages included, in order.
        for expected in 1..=60 {
            assert_eq!(next_seq(&mut live).await, expected);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_room_leaves_memory_and_comes_back_with_its_history() {
        let store: Arc<dyn RoomStore> = Arc::new(MemoryStore::default());
        let rooms = Rooms::new(
            store,
            RoomSettings {
                idle_timeout: Duration::from_secs(10),
                ..RoomSettings::default()
            },
            CancellationToken::new(),
        );
        let handle = rooms.get(&room("quiet"));
        let joined = handle.join("tester".into()).await.unwrap();
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
        let joined = handle.join("tester".into()).await.unwrap();
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
