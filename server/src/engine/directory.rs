//! [`Directory`]: what the engine keeps about people and rooms besides history — revoked users
//! and each room's rules — so that every node (and every process on the engine) reads the same.

use std::collections::HashMap;

use app::limits::RoomName;
use app::rules::RoomRules;
use futures::future::BoxFuture;

use super::EngineError;

/// Revocations and room rules.
pub trait Directory: Send + Sync + 'static {
    /// Stores that `sub`'s tokens issued up to `at_ms` no longer count (a later revocation of
    /// the same user replaces an earlier one).
    fn revoke<'a>(&'a self, sub: &'a str, at_ms: i64) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Every revocation: user id → moment.
    fn revocations(&self) -> BoxFuture<'_, Result<HashMap<String, i64>, EngineError>>;

    /// The room's rules (`None`: it has none, so it is open).
    fn rules<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<RoomRules>, EngineError>>;

    /// Stores the room's rules only if it has none yet; whether they were stored. How a private
    /// room's creator becomes its owner (two creators at once: one wins).
    fn claim_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<bool, EngineError>>;

    /// Replaces the room's rules.
    fn set_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<(), EngineError>>;
}

/// Rules as stored: JSON.
pub(super) fn encode_rules(rules: &RoomRules) -> Result<String, EngineError> {
    serde_json::to_string(rules).map_err(|e| EngineError::Unavailable(e.to_string()))
}

/// Stored rules another version wrote and this one cannot read count as the strictest (only
/// moderators), so that a misread never opens a room.
pub(super) fn decode_rules(stored: &str) -> RoomRules {
    serde_json::from_str(stored).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "unreadable room rules; treating the room as moderators-only");
        RoomRules {
            read: app::rules::Audience::Moderators,
            post: app::rules::Audience::Moderators,
            ..RoomRules::default()
        }
    })
}
