//! [`ModerationStore`]: what the engine keeps for moderators — each room's mutes and bans, its
//! audit log, and for a while the address each guest posted from (a guest has no lasting identity,
//! so a sanction names their address) — so that every node reads the same.
//!
//! [`MemoryModeration`] is the in-memory version the room tests use.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use app::limits::RoomName;
use app::moderation::{AuditEntry, Sanction, SanctionKind, Target, AUDIT_KEPT};
use futures::future::{self, BoxFuture};

use super::EngineError;

/// How long the address a guest posted from is kept for moderators to act on.
pub const GUEST_ADDRESS_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// Sanctions, the audit log and guests' addresses, per room.
pub trait ModerationStore: Send + Sync + 'static {
    /// Stores `sanction`, replacing one of the same kind on the same target.
    fn put_sanction<'a>(
        &'a self,
        room: &'a RoomName,
        sanction: &'a Sanction,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Ends the `kind` sanction on `target` now; whether there was one.
    fn lift_sanction<'a>(
        &'a self,
        room: &'a RoomName,
        kind: SanctionKind,
        target: &'a Target,
    ) -> BoxFuture<'a, Result<bool, EngineError>>;

    /// The room's sanctions in force at `now_ms`, soonest to end first.
    fn sanctions<'a>(
        &'a self,
        room: &'a RoomName,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Vec<Sanction>, EngineError>>;

    /// Adds an entry to the room's audit log (which keeps the latest [`AUDIT_KEPT`]).
    fn record<'a>(
        &'a self,
        room: &'a RoomName,
        entry: &'a AuditEntry,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// The room's latest `limit` audit entries, newest first.
    fn audit<'a>(
        &'a self,
        room: &'a RoomName,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditEntry>, EngineError>>;

    /// Remembers (for [`GUEST_ADDRESS_TTL_MS`]) that the guest whose client ids are scoped by
    /// `scope` posted in the room from `address`.
    fn note_guest<'a>(
        &'a self,
        room: &'a RoomName,
        scope: &'a str,
        address: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// The address the guest `scope` last posted from, if still kept.
    fn guest_address<'a>(
        &'a self,
        room: &'a RoomName,
        scope: &'a str,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Option<String>, EngineError>>;
}

/// JSON, as both engines store sanctions and audit entries.
pub(super) fn encode<T: serde::Serialize>(value: &T) -> Result<String, EngineError> {
    serde_json::to_string(value).map_err(|e| EngineError::Unavailable(e.to_string()))
}

/// Stored JSON another version wrote that this one cannot read is skipped.
pub(super) fn decode<T: serde::de::DeserializeOwned>(stored: &str) -> Option<T> {
    serde_json::from_str(stored)
        .map_err(|e| tracing::warn!(error = %e, "unreadable moderation record; skipped"))
        .ok()
}

/// The stored key of a sanction: kind and target.
pub(super) fn sanction_key(kind: SanctionKind, target: &Target) -> String {
    format!("{}|{}", kind.as_str(), target.key())
}

/// Sorts sanctions soonest to end first, dropping ended ones.
pub(super) fn in_force(mut all: Vec<Sanction>, now_ms: i64) -> Vec<Sanction> {
    all.retain(|s| s.is_active(now_ms));
    all.sort_by_key(|s| s.until_ms);
    all
}

/// Moderation in memory, for tests.
#[derive(Default)]
pub struct MemoryModeration {
    rooms: Mutex<HashMap<RoomName, MemoryRoomModeration>>,
}

#[derive(Default)]
struct MemoryRoomModeration {
    sanctions: HashMap<String, Sanction>,
    /// Oldest first.
    audit: Vec<AuditEntry>,
    guests: HashMap<String, (String, i64)>,
}

impl MemoryModeration {
    fn with<T>(&self, room: &RoomName, f: impl FnOnce(&mut MemoryRoomModeration) -> T) -> T {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        f(rooms.entry(room.clone()).or_default())
    }
}

type Ready<'a, T> = BoxFuture<'a, Result<T, EngineError>>;

fn ready<'a, T: Send + 'a>(value: T) -> Ready<'a, T> {
    Box::pin(future::ready(Ok(value)))
}

impl ModerationStore for MemoryModeration {
    fn put_sanction<'a>(&'a self, room: &'a RoomName, sanction: &'a Sanction) -> Ready<'a, ()> {
        let key = sanction_key(sanction.kind, &sanction.target);
        self.with(room, |r| r.sanctions.insert(key, sanction.clone()));
        ready(())
    }

    fn lift_sanction<'a>(
        &'a self,
        room: &'a RoomName,
        kind: SanctionKind,
        target: &'a Target,
    ) -> Ready<'a, bool> {
        let key = sanction_key(kind, target);
        ready(self.with(room, |r| r.sanctions.remove(&key).is_some()))
    }

    fn sanctions<'a>(&'a self, room: &'a RoomName, now_ms: i64) -> Ready<'a, Vec<Sanction>> {
        let all = self.with(room, |r| r.sanctions.values().cloned().collect());
        ready(in_force(all, now_ms))
    }

    fn record<'a>(&'a self, room: &'a RoomName, entry: &'a AuditEntry) -> Ready<'a, ()> {
        self.with(room, |r| {
            r.audit.push(entry.clone());
            let over = r.audit.len().saturating_sub(AUDIT_KEPT);
            r.audit.drain(..over);
        });
        ready(())
    }

    fn audit<'a>(&'a self, room: &'a RoomName, limit: usize) -> Ready<'a, Vec<AuditEntry>> {
        ready(self.with(room, |r| {
            r.audit.iter().rev().take(limit).cloned().collect()
        }))
    }

    fn note_guest<'a>(
        &'a self,
        room: &'a RoomName,
        scope: &'a str,
        address: &'a str,
        now_ms: i64,
    ) -> Ready<'a, ()> {
        self.with(room, |r| {
            r.guests
                .insert(scope.to_owned(), (address.to_owned(), now_ms))
        });
        ready(())
    }

    fn guest_address<'a>(
        &'a self,
        room: &'a RoomName,
        scope: &'a str,
        now_ms: i64,
    ) -> Ready<'a, Option<String>> {
        ready(self.with(room, |r| {
            r.guests
                .get(scope)
                .filter(|(_, at)| now_ms - at < GUEST_ADDRESS_TTL_MS)
                .map(|(address, _)| address.clone())
        }))
    }
}
