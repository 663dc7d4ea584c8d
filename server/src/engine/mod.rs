//! Engines: where rooms keep their history and, when several nodes share one engine, how they
//! learn what the others did. Each role is a small trait, and each engine implements the roles it
//! has:
//!
//! | role | trait | embedded ([`sqlite`]) | Redis ([`redis`]) | memory (tests) |
//! | --- | --- | --- | --- | --- |
//! | durable, numbered history | [`History`] | yes | yes | yes |
//! | what other nodes wrote or lost | [`Broker`] | — | pub/sub | — |
//! | other nodes' people | [`SharedPresence`] | — | leased hashes | — |
//! | one rate-limit budget for all nodes | [`SharedRateLimit`] | — | GCRA script | — |
//! | each user's connections on every node | [`SharedConnections`] | — | leased hashes | — |
//!
//! An engine that other nodes share comes with a [`Mesh`] (the last three); the embedded one has
//! none, because its process is every room's only writer. [`conformance`] is the [`History`]
//! contract as tests, run against every engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

#[cfg(test)]
pub mod conformance;
pub mod directory;
#[cfg(test)]
pub mod memory;
pub mod moderation;
#[cfg(test)]
pub mod moderation_conformance;
pub mod redis;
pub mod retention;
pub mod sqlite;

pub use directory::Directory;
pub use moderation::ModerationStore;
pub use retention::Retention;

/// An engine failure. Details go to the log; clients only learn the message was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
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

/// A batch handed back with its outcome (see [`History::append_owned`]).
pub type Written = (Vec<ChatMessage>, Result<Vec<Appended>, EngineError>);

/// Durable history of every room.
///
/// Contract: the engine numbers messages. `append` commits a batch atomically, giving each new
/// message the next sequence number after whatever the room has stored (so several writers, e.g.
/// nodes sharing one engine, never race for a number and never leave a hole), and returns only
/// once the batch is committed. A message returned by any read has been committed. Readers (pages,
/// sessions catching up) read directly, without going through the room task, so a big catch-up
/// never slows a room down.
pub trait History: Send + Sync + 'static {
    /// Commits a batch to a room, all or nothing, in one round trip. The messages' `seq` fields
    /// are ignored. A message whose client id the room already has (stored earlier, or earlier in
    /// this batch) is not stored again and gets that number. Timestamps never go back within a
    /// room. Returns what happened to each message, in batch order.
    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, EngineError>>;

    /// [`History::append`] of a batch the caller gives up and gets back with the outcome: an
    /// engine that hands the batch to another thread (SQLite's writer) moves it there and back
    /// instead of copying every message.
    fn append_owned<'a>(
        &'a self,
        room: &'a RoomName,
        batch: Vec<ChatMessage>,
    ) -> BoxFuture<'a, Written> {
        Box::pin(async move {
            let result = self.append(room, &batch).await;
            (batch, result)
        })
    }

    /// The room's last committed sequence number and that message's timestamp (0, 0 when empty).
    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), EngineError>>;

    /// Up to `limit` messages with sequence numbers above `after`, in order.
    fn after<'a>(
        &'a self,
        room: &'a RoomName,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>>;

    /// Up to `limit` messages just before `before` (or the latest ones), in order.
    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>>;

    /// Whether the engine can take writes right now (for `/readyz` and the probe of a degraded
    /// room): a real write of some size, so that a full disk or a Redis out of memory fails it as
    /// it fails appends, and a room stays degraded until appends can succeed again.
    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>>;

    /// Batches one room may have with the engine at once (see `room::commit`): more than one
    /// where the engine can work on the next batch while the last one is made durable (a round
    /// trip to Redis, SQLite's fsync).
    /// Whatever the number, the engine applies a room's batches in the order it was given them.
    fn max_in_flight(&self) -> usize {
        1
    }

    /// Removes a bounded amount of what the engine's [`Retention`] no longer keeps and that
    /// appends did not already remove (messages past the age limit in rooms nobody writes to);
    /// returns how many messages went. The server calls it every
    /// [`retention::SWEEP_INTERVAL`], again at once while it returns [`SWEEP_BATCH`].
    fn sweep(&self) -> BoxFuture<'_, Result<u64, EngineError>> {
        Box::pin(async { Ok(0) })
    }
}

/// Most messages one [`History::sweep`] removes (a sweep holds up appends while it runs).
pub const SWEEP_BATCH: u64 = 5_000;

/// A write probe's outcome, kept for [`PROBE_TTL`]: many degraded rooms and `/readyz` asking at
/// once cost one probe. It logs when the engine stops and starts taking writes.
#[derive(Default)]
pub struct Probed {
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Result<(), EngineError>)>>,
}

/// How long a probe's outcome stands.
pub const PROBE_TTL: Duration = Duration::from_secs(1);

impl Probed {
    /// The last outcome if fresh, else `probe`'s.
    pub async fn check<F>(&self, probe: F) -> Result<(), EngineError>
    where
        F: std::future::Future<Output = Result<(), EngineError>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = &*last {
            if at.elapsed() < PROBE_TTL {
                return outcome.clone();
            }
        }
        let outcome = probe.await;
        let was_ok = last.as_ref().is_none_or(|(_, o)| o.is_ok());
        match (&outcome, was_ok) {
            (Err(e), true) => tracing::warn!(error = %e, "storage cannot take writes"),
            (Ok(()), false) => tracing::info!("storage takes writes again"),
            _ => {}
        }
        *last = Some((tokio::time::Instant::now(), outcome.clone()));
        outcome
    }
}

/// What other nodes sharing the engine did in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// Another writer committed up to this sequence number.
    Head(Seq),
    /// Another node's part of the room's roster changed.
    Roster,
    /// A moderator changed the room's mutes or bans (on any node): read them again.
    Moderation,
    /// Someone on another node is typing (never stored).
    Typing(String),
    /// The node lost its connection to the engine: notifications may have been missed, and
    /// writes will fail until it is back.
    Lost,
}

/// Tells a room what other nodes do in it.
pub trait Broker: Send + Sync + 'static {
    /// The room's events for as long as the stream is held; dropping it unsubscribes. The stream
    /// ends if the subscription is lost.
    fn subscribe<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<BoxStream<'static, PeerEvent>, EngineError>>;

    /// Tells every node with the room loaded (this one too) that its mutes or bans changed.
    fn announce_moderation<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Tells the other nodes with the room loaded that `name` is typing.
    fn announce_typing<'a>(
        &'a self,
        room: &'a RoomName,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>>;
}

/// Who is in a room, by display name.
pub type Roster = BTreeMap<String, Present>;

/// One name in a roster: how many connections it has (tabs, devices), and whether a verified
/// person holds it. Short keys: every node publishes its roster on every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Present {
    #[serde(rename = "n")]
    pub connections: usize,
    /// The verified user id behind the name, if a verified person holds it.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Present {
    /// `n` guest connections (tests).
    pub fn guests(connections: usize) -> Self {
        Self {
            connections,
            user: None,
        }
    }

    /// Adds another node's connections under the same name.
    pub fn merge(&mut self, other: Present) {
        self.connections += other.connections;
        if self.user.is_none() {
            self.user = other.user;
        }
    }
}

/// How long a node's published roster counts without being published again. A node that dies
/// without saying goodbye (SIGKILL, lost machine) leaves the other nodes' rosters within this.
pub const ROSTER_LEASE: Duration = Duration::from_secs(30);
/// How often a room with people in it publishes its roster again (well within the lease) and
/// checks it has missed nothing of what other nodes wrote.
pub const ROSTER_REFRESH: Duration = Duration::from_secs(10);

/// Each node's part of every room's roster, shared with the other nodes.
pub trait SharedPresence: Send + Sync + 'static {
    /// Publishes this node's people in the room (empty: this node has nobody there); `changed`
    /// tells the other nodes to read it again (a renewal does not). It lapses unless published
    /// again within [`ROSTER_LEASE`].
    fn publish<'a>(
        &'a self,
        room: &'a RoomName,
        local: &'a Roster,
        changed: bool,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Everyone the other nodes have in the room (lapsed leases are left out).
    fn others<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<Roster, EngineError>>;
}

/// Rate limits whose budgets every node shares.
pub trait SharedRateLimit: Send + Sync + 'static {
    /// Spends `cost` from the budget named `bucket` (`post`, `join`, …) of client `who`: `burst`
    /// at once and one per `interval` sustained. `Ok(Ok(()))` allowed, `Ok(Err(wait))` refused for
    /// `wait`, `Err` when the engine did not answer in time (the caller then decides on its own).
    fn spend<'a>(
        &'a self,
        bucket: &'static str,
        who: &'a str,
        interval: Duration,
        burst: u32,
        cost: u32,
    ) -> BoxFuture<'a, Result<Result<(), Duration>, EngineError>>;
}

/// Each user's open connections on every node, for a per-user cap that holds across nodes.
pub trait SharedConnections: Send + Sync + 'static {
    /// Sets this node's count of `user`'s connections (renewing its [`ROSTER_LEASE`]), unless
    /// it rises and the other nodes' counts plus it would pass `cap` (0: no cap): then `false`
    /// and nothing changes.
    fn set<'a>(
        &'a self,
        user: &'a str,
        count: usize,
        cap: usize,
    ) -> BoxFuture<'a, Result<bool, EngineError>>;
}

/// What a node shares with the other nodes of its engine.
#[derive(Clone)]
pub struct Mesh {
    pub broker: Arc<dyn Broker>,
    pub presence: Arc<dyn SharedPresence>,
    pub rate_limit: Arc<dyn SharedRateLimit>,
    pub connections: Arc<dyn SharedConnections>,
}

/// The engine a server runs on.
#[derive(Clone)]
pub struct Engine {
    pub history: Arc<dyn History>,
    /// Revocations and room rules.
    pub directory: Arc<dyn Directory>,
    /// Mutes, bans, the audit log.
    pub moderation: Arc<dyn ModerationStore>,
    /// `None` when this process is every room's only writer (the embedded engine).
    pub mesh: Option<Mesh>,
}

impl Engine {
    /// An engine of one node: history, directory and moderation in one store, no mesh.
    pub fn alone<S: History + Directory + ModerationStore>(store: Arc<S>) -> Self {
        Self {
            history: store.clone(),
            directory: store.clone(),
            moderation: store,
            mesh: None,
        }
    }

    /// An engine of one node for room tests: `store`'s history and directory, moderation in
    /// memory.
    pub fn in_memory<S: History + Directory>(store: Arc<S>) -> Self {
        Self {
            history: store.clone(),
            directory: store,
            moderation: Arc::new(moderation::MemoryModeration::default()),
            mesh: None,
        }
    }
}

/// Why the engine could not be opened at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("storage (--data-dir): {0}")]
    Embedded(#[from] sqlite::OpenError),
    #[error("engine (--engine): {0}")]
    Redis(EngineError),
}

/// Opens the engine `--engine` names: SQLite in `--data-dir` (at most `--max-database-mb`), or
/// Redis.
pub async fn open(config: &crate::config::Config) -> Result<Engine, OpenError> {
    match &config.engine {
        crate::config::EngineKind::Embedded => {
            let data_dir = config.data_dir.clone();
            let options = sqlite::StoreOptions {
                max_bytes: config.max_database_bytes(),
                retention: config.retention(),
            };
            let store = tokio::task::spawn_blocking(move || {
                sqlite::SqliteStore::open_with(&data_dir, options)
            })
            .await
            .map_err(|e| sqlite::OpenError::Thread(std::io::Error::other(e)))??;
            tracing::info!(path = %store.path().display(), "history database open");
            Ok(Engine::alone(Arc::new(store)))
        }
        crate::config::EngineKind::Redis(url) => {
            let redis = redis::RedisEngine::connect(url.as_str(), "palaver")
                .await
                .map_err(OpenError::Redis)?
                .with_retention(config.retention());
            tracing::info!(engine = %url, node = redis.node_id(), "rooms shared through Redis");
            Ok(redis.engine())
        }
    }
}
