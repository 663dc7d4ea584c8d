//! What a person may do in a room: the room's rules ([`RoomRules`], stored by the engine's
//! [`Directory`]) read through a short cache, and who the person is to those rules ([`Who`]).
//!
//! Every node reads rules from the engine at most every [`RULES_TTL`] per room, so a change made
//! on any node, or from the command line, holds on every node within that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use app::limits::RoomName;
use app::rules::{Owner, RoomRules, Who};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::Identity;
use crate::engine::{Directory, EngineError};

/// How long a room's rules are used before they are read again.
pub const RULES_TTL: Duration = Duration::from_secs(2);
/// Rooms whose rules are cached at once; past it the cache starts over.
const CACHED_ROOMS: usize = 10_000;

/// Each room's rules and when they were read.
type Cached = HashMap<RoomName, (Instant, Arc<RoomRules>)>;

/// Rooms' rules, cached; cheap to clone.
#[derive(Clone)]
pub struct RoomAccess {
    directory: Arc<dyn Directory>,
    /// Shared, so a check at every post copies a pointer, not a member list.
    cache: Arc<Mutex<Cached>>,
}

impl RoomAccess {
    pub fn new(directory: Arc<dyn Directory>) -> Self {
        Self {
            directory,
            cache: Arc::default(),
        }
    }

    /// The room's rules (open ones when it has none).
    pub async fn rules(&self, room: &RoomName) -> Result<Arc<RoomRules>, EngineError> {
        if let Some((at, rules)) = self.lock().get(room) {
            if at.elapsed() < RULES_TTL {
                return Ok(rules.clone());
            }
        }
        let rules = Arc::new(self.directory.rules(room).await?.unwrap_or_default());
        let mut cache = self.lock();
        if cache.len() >= CACHED_ROOMS {
            cache.clear();
        }
        cache.insert(room.clone(), (Instant::now(), rules.clone()));
        Ok(rules)
    }

    /// Stores the room's rules; this node uses them at once, the others within [`RULES_TTL`].
    pub async fn set_rules(&self, room: &RoomName, rules: RoomRules) -> Result<(), EngineError> {
        self.directory.set_rules(room, &rules).await?;
        self.lock()
            .insert(room.clone(), (Instant::now(), Arc::new(rules)));
        Ok(())
    }

    /// Makes `owner` the owner of a private room nobody has written in or claimed yet: its first
    /// joiner is its creator. Whether the claim was made.
    pub async fn claim_new_private_room(
        &self,
        room: &RoomName,
        history: &dyn crate::engine::History,
        owner: Owner,
    ) -> Result<bool, EngineError> {
        if !room.is_private() || history.head(room).await?.0 > 0 {
            return Ok(false);
        }
        let rules = RoomRules {
            owner: Some(owner),
            ..RoomRules::default()
        };
        let claimed = self.directory.claim_rules(room, &rules).await?;
        // Either way, what is stored now is read afresh.
        self.lock().remove(room);
        Ok(claimed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The stored form of a guest owner's key.
pub fn owner_key_hash(key: &str) -> String {
    Sha256::digest(format!("palaver-owner:{key}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A person as the rules of `room` see them.
pub fn who<'a>(
    identity: Option<&'a Identity>,
    room: &RoomName,
    rules: &RoomRules,
    owner_key: Option<&str>,
) -> Who<'a> {
    let owner_key = match (&rules.owner, owner_key) {
        (Some(Owner::KeyHash(hash)), Some(key)) => owner_key_hash(key) == *hash,
        _ => false,
    };
    Who {
        user: identity.map(|i| i.sub.as_str()),
        roles: identity.map_or(&[], |i| i.roles.as_slice()),
        granted: identity.is_some_and(|i| i.rooms.contains(room.as_str())),
        owner_key,
    }
}
