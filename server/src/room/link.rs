//! A room's link to the other nodes sharing its engine: their events (new heads, roster changes,
//! a lost connection) and this node's part of the shared roster, published under a lease that
//! the actor renews every [`crate::engine::ROSTER_REFRESH`]. Rooms on the embedded engine have no
//! link.

use app::limits::RoomName;
use futures::stream::{BoxStream, StreamExt};
use tracing::warn;

use crate::engine::{EngineError, Mesh, PeerEvent, Roster};
use crate::redact::LogName;

pub(super) struct Link {
    mesh: Mesh,
    /// The room's subscription; `None` until made, and after it was lost.
    feed: Option<BoxStream<'static, PeerEvent>>,
    /// This node's roster as last published; `None` when it must be published again.
    published: Option<Roster>,
}

impl Link {
    pub(super) fn new(mesh: Mesh) -> Self {
        Self {
            mesh,
            feed: None,
            published: None,
        }
    }

    /// Subscribes to the room's events (again).
    pub(super) async fn subscribe(&mut self, room: &RoomName) -> Result<(), EngineError> {
        // The old subscription goes first, so that its end cannot undo the new one.
        self.feed = None;
        self.feed = Some(self.mesh.broker.subscribe(room).await?);
        Ok(())
    }

    pub(super) fn is_subscribed(&self) -> bool {
        self.feed.is_some()
    }

    /// The next event; `None` when the subscription ended. Pending forever without one.
    pub(super) async fn next_event(&mut self) -> Option<PeerEvent> {
        match &mut self.feed {
            Some(feed) => feed.next().await,
            None => std::future::pending().await,
        }
    }

    /// The subscription is gone (the connection dropped); the probe makes a new one.
    pub(super) fn lost(&mut self) {
        self.feed = None;
    }

    /// Publishes this node's people: when they changed (other nodes are told), or to renew the
    /// lease. Nobody here and nothing changed: nothing to do.
    pub(super) async fn publish(
        &mut self,
        room: &RoomName,
        local: &Roster,
    ) -> Result<(), EngineError> {
        let changed = self.published.as_ref() != Some(local);
        if !changed && local.is_empty() {
            return Ok(());
        }
        match self.mesh.presence.publish(room, local, changed).await {
            Ok(()) => {
                self.published = Some(local.clone());
                Ok(())
            }
            Err(e) => {
                warn!(room = %room.logged(), error = %e, "cannot publish the roster");
                self.published = None;
                Err(e)
            }
        }
    }

    /// The engine may have lost what was published: publish it again at the next chance.
    pub(super) fn republish(&mut self) {
        self.published = None;
    }

    /// Whether the other nodes were last told this node has people here.
    pub(super) fn published_someone(&self) -> bool {
        self.published.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// Tells the other nodes that `name` is typing, without waiting (it is only a hint).
    pub(super) fn announce_typing(&self, room: &RoomName, name: &str) {
        let (broker, room, name) = (self.mesh.broker.clone(), room.clone(), name.to_owned());
        tokio::spawn(async move {
            let _ = broker.announce_typing(&room, &name).await;
        });
    }

    /// The people the other nodes have in the room.
    pub(super) async fn others(&mut self, room: &RoomName) -> Result<Roster, EngineError> {
        self.mesh.presence.others(room).await.inspect_err(|e| {
            warn!(room = %room.logged(), error = %e, "cannot read the other nodes' roster");
        })
    }
}
