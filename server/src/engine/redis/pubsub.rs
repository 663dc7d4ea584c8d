//! The [`Broker`] on Redis pub/sub: one connection per node (RESP3 push messages on a connection
//! that reconnects and resubscribes by itself), subscribed to the rooms this node has loaded,
//! i.e. the rooms with local clients. Each message is routed to its room's task. When the
//! connection drops, every room hears [`PeerEvent::Lost`].
//!
//! On a room's channel: `h<seq>` for each new head (written by the append script), `r<node>` when
//! a node's part of the roster changes, `m` when a moderator changed the room's mutes or bans,
//! `t<node>:<name>` when someone on that node is typing. On a Cluster the channels are sharded
//! (`SPUBLISH`/`SSUBSCRIBE`), so each message goes only to the shard that holds its room.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use app::limits::RoomName;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream, StreamExt};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::connection::{timed, Connection};
use super::RedisEngine;
use crate::engine::{Broker, EngineError, PeerEvent};

/// Events queued per room before further ones are dropped (each makes the room read the store
/// up to its latest head, so one waiting event is as good as many).
const ROOM_EVENT_QUEUE: usize = 16;

/// Room channel name -> the room task's event queue.
type Routes = HashMap<String, mpsc::Sender<PeerEvent>>;

/// Where the node's pub/sub messages go. Filled by `subscribe`, read by the push handler (which
/// runs on the pub/sub connection's task, so it never blocks: a full queue already holds an event
/// that makes the room catch up).
pub(super) struct Notifications {
    routes: Mutex<Routes>,
    /// Serialises SUBSCRIBE and UNSUBSCRIBE, so that the unsubscribe of a room that just left
    /// memory cannot overtake the subscribe of the same room loaded again.
    changes: tokio::sync::Mutex<()>,
    /// This node's id, to ignore its own roster announcements.
    pub(super) node: String,
}

impl Notifications {
    pub(super) fn new(node: String) -> Self {
        Self {
            routes: Mutex::default(),
            changes: tokio::sync::Mutex::new(()),
            node,
        }
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // Every mutation is a single insert or remove: a poisoned map is still consistent.
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called for every push message of the pub/sub connection.
    pub(super) fn route(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                let mut data = push.data.into_iter();
                let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
                    (data.next(), data.next())
                else {
                    return;
                };
                let Ok(channel) = String::from_utf8(channel) else {
                    return;
                };
                if let Some(event) = self.event(&payload) {
                    if let Some(room) = self.routes().get(&channel) {
                        let _ = room.try_send(event);
                    }
                }
            }
            PushKind::Disconnection => {
                for room in self.routes().values() {
                    let _ = room.try_send(PeerEvent::Lost);
                }
            }
            _ => {}
        }
    }

    /// A channel message as an event; this node's own roster changes are not news to it.
    fn event(&self, payload: &[u8]) -> Option<PeerEvent> {
        match payload.split_first() {
            Some((b'h', seq)) => std::str::from_utf8(seq)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(PeerEvent::Head),
            Some((b'r', node)) if node != self.node.as_bytes() => Some(PeerEvent::Roster),
            Some((b'm', _)) => Some(PeerEvent::Moderation),
            Some((b't', rest)) => {
                let (node, name) = std::str::from_utf8(rest).ok()?.split_once(':')?;
                (node != self.node).then(|| PeerEvent::Typing(name.to_owned()))
            }
            _ => None,
        }
    }
}

/// A room's subscription: its events, for as long as the room holds it.
struct Subscription {
    events: mpsc::Receiver<PeerEvent>,
    channel: String,
    notifications: Arc<Notifications>,
    pubsub: Connection,
}

impl Stream for Subscription {
    type Item = PeerEvent;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<PeerEvent>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The room left memory: stop receiving its messages, unless it is already back.
        self.events.close();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (channel, notifications, mut pubsub) = (
            std::mem::take(&mut self.channel),
            self.notifications.clone(),
            self.pubsub.clone(),
        );
        runtime.spawn(async move {
            let _order = notifications.changes.lock().await;
            {
                let mut routes = notifications.routes();
                if !routes.get(&channel).is_some_and(mpsc::Sender::is_closed) {
                    return;
                }
                routes.remove(&channel);
            }
            // Best effort: a failure means the connection is gone, and with it the subscription.
            let _ = timed(pubsub.unsubscribe(&channel)).await;
        });
    }
}

impl Broker for RedisEngine {
    fn subscribe<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<BoxStream<'static, PeerEvent>, EngineError>> {
        Box::pin(async move {
            let channel = self.key(room, "live");
            let (tx, events) = mpsc::channel(ROOM_EVENT_QUEUE);
            let _order = self.notifications.changes.lock().await;
            self.notifications.routes().insert(channel.clone(), tx);
            let mut pubsub = self.pubsub.clone();
            // The Subscription's drop undoes the route (and the subscription) on failure too.
            let subscription = Subscription {
                events,
                channel: channel.clone(),
                notifications: self.notifications.clone(),
                pubsub: self.pubsub.clone(),
            };
            timed(pubsub.subscribe(&channel)).await?;
            Ok(subscription.boxed())
        })
    }

    fn announce_moderation<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(self.publish_live(room, "m".to_owned()))
    }

    fn announce_typing<'a>(
        &'a self,
        room: &'a RoomName,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        let payload = format!("t{}:{name}", self.notifications.node);
        Box::pin(self.publish_live(room, payload))
    }
}

impl RedisEngine {
    /// Publishes `payload` on the room's channel (sharded on a Cluster, like the scripts do).
    async fn publish_live(&self, room: &RoomName, payload: String) -> Result<(), EngineError> {
        let mut conn = self.conn.clone();
        let command = if self.scripts.cluster {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let _: i64 = timed(
            redis::cmd(command)
                .arg(self.key(room, "live"))
                .arg(payload)
                .query_async(&mut conn),
        )
        .await?;
        Ok(())
    }
}
