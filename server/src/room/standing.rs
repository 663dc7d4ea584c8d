//! The room's mutes and bans, as its sessions see them: read from the engine when the room loads
//! and again whenever a moderator changes them (on this node, or on another: the engine's
//! notification), then handed to every session through one `watch` channel, so a session checks
//! a post, or whether it must leave, without asking anyone.

use std::sync::Arc;

use app::limits::RoomName;
use app::moderation::Sanction;
use tokio::sync::watch;
use tracing::warn;

use crate::engine::ModerationStore;
use crate::redact::LogName;

/// The room's sanctions in force, newest reading.
pub type SanctionList = Arc<[Sanction]>;

pub(super) struct Standing {
    store: Arc<dyn ModerationStore>,
    current: watch::Sender<SanctionList>,
}

impl Standing {
    pub(super) fn new(store: Arc<dyn ModerationStore>) -> Self {
        Self {
            store,
            current: watch::Sender::new(Arc::from(Vec::new())),
        }
    }

    /// Reads the room's sanctions again; sessions are told if they changed. On failure the last
    /// reading stays (and is read again when the engine is back).
    pub(super) async fn reload(&mut self, room: &RoomName) {
        let now = crate::engine::retention::now_ms();
        match self.store.sanctions(room, now).await {
            Ok(list) => {
                self.current.send_if_modified(|current| {
                    let changed = **current != *list;
                    if changed {
                        *current = Arc::from(list);
                    }
                    changed
                });
            }
            Err(e) => warn!(room = %room.logged(), error = %e, "cannot read the room's sanctions"),
        }
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<SanctionList> {
        self.current.subscribe()
    }
}
