//! The map from room name to running room task: starts a room on first use and forgets it when the
//! room's task ends (idle eviction), so quiet rooms take no memory. At most `--max-rooms` are in
//! memory at once: past that, opening another is refused, and the rooms already open go on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use app::limits::RoomName;
use tokio_util::sync::CancellationToken;

use crate::engine::{Directory, Engine, EngineError, History, ModerationStore};
use crate::room::{spawn_room, RoomHandle, RoomSettings};

/// Shared by every session; cheap to clone.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<Inner>,
}

/// This node already has as many rooms in memory as it may (`--max-rooms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many rooms are open on this server")]
pub struct RoomsFull;

struct Inner {
    running: Mutex<HashMap<RoomName, RoomHandle>>,
    /// Most rooms in memory at once.
    max_rooms: usize,
    engine: Engine,
    settings: RoomSettings,
    shutdown: CancellationToken,
}

impl Rooms {
    pub fn new(
        engine: Engine,
        settings: RoomSettings,
        max_rooms: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                running: Mutex::new(HashMap::new()),
                max_rooms,
                engine,
                settings,
                shutdown,
            }),
        }
    }

    /// The engine's revocations and room rules.
    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.inner.engine.directory
    }

    /// The engine's mutes, bans and audit log.
    pub fn moderation(&self) -> &Arc<dyn ModerationStore> {
        &self.inner.engine.moderation
    }

    /// After a change of the room's mutes or bans: the room reads them again on this node (if it
    /// is loaded here) and on every other node that has it loaded.
    pub async fn moderated(&self, name: &RoomName) -> Result<(), EngineError> {
        let loaded = self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .filter(|h| !h.is_closed())
            .cloned();
        if let Some(handle) = loaded {
            // A room exiting just now reads them afresh when it loads again.
            let _ = handle.moderated().await;
        }
        match &self.inner.engine.mesh {
            Some(mesh) => mesh.broker.announce_moderation(name).await,
            None => Ok(()),
        }
    }

    /// The engine's history, for readers that do not go through a room (pages, catch-up).
    pub fn history(&self) -> &Arc<dyn History> {
        &self.inner.engine.history
    }

    /// The room's running task, started if needed and if there is room for one more.
    pub fn get(&self, name: &RoomName) -> Result<RoomHandle, RoomsFull> {
        let mut running = self
            .inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = running.get(name).filter(|h| !h.is_closed()) {
            return Ok(handle.clone());
        }
        // An entry still here is a room task that is exiting: it counts until it is gone.
        let open = running.len() - usize::from(running.contains_key(name));
        if open >= self.inner.max_rooms {
            self.inner.settings.metrics.rooms_refused.inc();
            return Err(RoomsFull);
        }
        let registry = Arc::downgrade(&self.inner);
        let key = name.clone();
        let handle = spawn_room(
            name.clone(),
            self.inner.engine.clone(),
            self.inner.settings.clone(),
            self.inner.shutdown.clone(),
            move |exiting| {
                if let Some(inner) = registry.upgrade() {
                    let mut running = inner.running.lock().unwrap_or_else(PoisonError::into_inner);
                    // Remove only our own entry: a newer task may already serve this room.
                    if running.get(&key).is_some_and(|h| h.same_room_task(exiting)) {
                        running.remove(&key);
                    }
                }
            },
        );
        running.insert(name.clone(), handle.clone());
        Ok(handle)
    }

    /// Rooms with a task in memory right now.
    pub fn active_count(&self) -> usize {
        self.inner
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|h| !h.is_closed())
            .count()
    }
}
