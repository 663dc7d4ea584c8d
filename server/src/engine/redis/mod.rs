//! The Redis engine (`--engine redis://…` or `redis+cluster://…`): every role several nodes need
//! to serve one room, each in its own file — [`History`](crate::engine::History) (`history.rs`),
//! the [`Broker`](crate::engine::Broker) (`pubsub.rs`),
//! [`SharedPresence`](crate::engine::SharedPresence) (`presence.rs`) and
//! [`SharedRateLimit`](crate::engine::SharedRateLimit) (`rate_limit.rs`) — over the two
//! connections of `connection.rs`. The Lua scripts are in `scripts/`.
//!
//! Keys of a room share the `{room}` hash tag, so one room lives on one Cluster slot and a script
//! may touch all of them: `palaver:{room}:log` (stream), `:meta` (head), `:ids` (client ids),
//! `:roster` (each node's people under a lease) and `:live` (the pub/sub channel).

use std::sync::Arc;

use app::limits::RoomName;
use redis::PushInfo;

use super::{Engine, EngineError, Mesh};
use connection::{Connection, CLUSTER_SCHEME};
use pubsub::Notifications;

mod connection;
mod connections;
mod directory;
mod history;
mod moderation;
mod patches;
mod presence;
mod pubsub;
mod rate_limit;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
pub(super) mod tests;

const APPEND: &str = include_str!("scripts/append.lua");
const NOW_MS: &str = include_str!("scripts/now_ms.lua");
const SHARE_ROSTER: &str = include_str!("scripts/share_roster.lua");
const REMOTE_ROSTER: &str = include_str!("scripts/remote_roster.lua");
const RATE_LIMIT: &str = include_str!("scripts/rate_limit.lua");
const USER_CONNECTIONS: &str = include_str!("scripts/user_connections.lua");

/// The scripts, loaded once per node (redis-rs runs them by SHA and loads them when missing).
struct Scripts {
    /// Whether the engine is a Cluster (sharded pub/sub).
    cluster: bool,
    append: redis::Script,
    share_roster: redis::Script,
    remote_roster: redis::Script,
    rate_limit: redis::Script,
    user_connections: redis::Script,
}

impl Scripts {
    fn new(cluster: bool) -> Self {
        // The publishing scripts use sharded pub/sub on a Cluster (the channel shares the room's
        // hash tag, so it lives on the room's shard).
        let publishing = |script: &str| {
            script.replace("__PUBLISH__", if cluster { "SPUBLISH" } else { "PUBLISH" })
        };
        let with_clock = |script: &str| redis::Script::new(&format!("{NOW_MS}{script}"));
        Self {
            cluster,
            append: redis::Script::new(&publishing(APPEND)),
            share_roster: with_clock(&publishing(SHARE_ROSTER)),
            remote_roster: with_clock(REMOTE_ROSTER),
            rate_limit: redis::Script::new(RATE_LIMIT),
            user_connections: with_clock(USER_CONNECTIONS),
        }
    }
}

/// One node's handle on Redis. Cheap to clone; reconnects by itself.
#[derive(Clone)]
pub struct RedisEngine {
    conn: Connection,
    /// The node's pub/sub connection (RESP3); resubscribes by itself after a reconnect.
    pubsub: Connection,
    notifications: Arc<Notifications>,
    /// Prepended to every key (tests use a fresh one each).
    prefix: String,
    scripts: Arc<Scripts>,
    /// The write probe's last outcome.
    probed: Arc<super::Probed>,
    /// What history keeps (applied by the append script; reads skip what is too old).
    retention: super::Retention,
}

impl RedisEngine {
    /// Connects to `url`: `redis://host:port/db` for one Redis, or
    /// `redis+cluster://host:port,host:port` for a Redis Cluster (any of its nodes as seeds).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, EngineError> {
        let notifications = Arc::new(Notifications::new(random_id()));
        let router = Arc::downgrade(&notifications);
        let push = move |push: PushInfo| -> Result<(), std::convert::Infallible> {
            if let Some(notifications) = router.upgrade() {
                notifications.route(push);
            }
            Ok(())
        };
        let (conn, pubsub) = connection::open(url, push).await?;
        Ok(Self {
            conn,
            pubsub,
            notifications,
            prefix: prefix.to_owned(),
            scripts: Arc::new(Scripts::new(url.starts_with(CLUSTER_SCHEME))),
            probed: Arc::default(),
            retention: super::Retention::default(),
        })
    }

    /// This handle, keeping history as `retention` says.
    pub fn with_retention(mut self, retention: super::Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Every role of this engine, for the server.
    pub fn engine(&self) -> Engine {
        let shared = Arc::new(self.clone());
        Engine {
            history: shared.clone(),
            directory: shared.clone(),
            moderation: shared.clone(),
            mesh: Some(Mesh {
                broker: shared.clone(),
                presence: shared.clone(),
                rate_limit: shared.clone(),
                connections: shared,
            }),
        }
    }

    /// This node's id in shared state (random per process).
    pub fn node_id(&self) -> &str {
        &self.notifications.node
    }

    fn key(&self, room: &RoomName, what: &str) -> String {
        format!("{}:{{{}}}:{what}", self.prefix, room.as_str())
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness two nodes could share an id; the time is a fallback that is unique
    // enough for a roster lease.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            .to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
