//! Moderation as the server stores it and the moderators' panel shows it: sanctions (mute, ban,
//! and the short ban a kick leaves), what a moderator asks for, and the audit log.
//!
//! A sanction names its person by verified user id, or — for a guest, who has no lasting
//! identity — by the address prefix their posts came from (an IPv4 address, an IPv6 /64).

use serde::{Deserialize, Serialize};

/// What a sanction stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SanctionKind {
    /// May read, may not post, edit or delete.
    Mute,
    /// May not join; disconnected at once.
    Ban,
}

impl SanctionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SanctionKind::Mute => "mute",
            SanctionKind::Ban => "ban",
        }
    }
}

/// Whom a sanction applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// A verified person, by user id (`sub`): every device, every address.
    User(String),
    /// Guests posting from this address (IPv4) or /64 prefix (IPv6), as the server's per-address
    /// limits count them.
    Address(String),
}

impl Target {
    /// The stored key: `user:<id>` or `address:<prefix>`.
    pub fn key(&self) -> String {
        match self {
            Target::User(id) => format!("user:{id}"),
            Target::Address(prefix) => format!("address:{prefix}"),
        }
    }
}

/// A mute or ban in force until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sanction {
    pub kind: SanctionKind,
    pub target: Target,
    /// The name the person had when sanctioned (for the panel; the target is what counts).
    pub name: String,
    /// When it ends, ms since the epoch.
    pub until_ms: i64,
    /// When it was made.
    pub at_ms: i64,
    /// The moderator's display name.
    pub by: String,
    /// The moderator's words, shown to the person.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl Sanction {
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.until_ms > now_ms
    }
}

/// What a moderator can do to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stop them posting for `minutes`.
    Mute,
    /// Disconnect them and keep them out for `minutes`.
    Ban,
    /// Disconnect them now; they may come back after [`KICK_SECS`].
    Kick,
    /// Delete their messages among the room's latest [`PURGE_SCAN`] entries.
    Purge,
    /// End a mute early.
    Unmute,
    /// End a ban early.
    Unban,
    /// (Audit only) a moderator deleted someone's message.
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Mute => "mute",
            Action::Ban => "ban",
            Action::Kick => "kick",
            Action::Purge => "purge",
            Action::Unmute => "unmute",
            Action::Unban => "unban",
            Action::Delete => "delete",
        }
    }

    /// How the audit log says it.
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Mute => "muted",
            Action::Ban => "banned",
            Action::Kick => "removed",
            Action::Purge => "removed the recent messages of",
            Action::Unmute => "unmuted",
            Action::Unban => "unbanned",
            Action::Delete => "deleted a message of",
        }
    }
}

/// How long a kick keeps someone out: long enough that their browser's reconnect does not put
/// them straight back.
pub const KICK_SECS: i64 = 60;
/// How many of a room's latest entries a purge looks through.
pub const PURGE_SCAN: usize = 1_000;
/// Longest mute or ban: a year.
pub const MAX_MINUTES: u32 = 525_600;
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 200;
/// Audit entries kept per room (older ones are dropped).
pub const AUDIT_KEPT: usize = 1_000;

/// `POST /api/rooms/{room}/moderation`: an action on the person who sent message `seq` (or, for
/// `unmute`/`unban`, on `target`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModerationRequest {
    pub action: Action,
    /// A message of the person acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// For `unmute` and `unban`: the sanction's target, from the panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// For `mute` and `ban`.
    #[serde(default)]
    pub minutes: u32,
    #[serde(default)]
    pub reason: String,
}

impl ModerationRequest {
    /// Checks the request's own fields (who may make it is the server's to check).
    pub fn validate(&self) -> Result<(), String> {
        if self.reason.chars().count() > MAX_REASON_CHARS {
            return Err(format!(
                "A reason is at most {MAX_REASON_CHARS} characters."
            ));
        }
        if self.reason.chars().any(char::is_control) {
            return Err("A reason is one line of text.".into());
        }
        match self.action {
            Action::Mute | Action::Ban if self.minutes == 0 || self.minutes > MAX_MINUTES => {
                Err(format!("Choose how long: 1 to {MAX_MINUTES} minutes."))
            }
            Action::Unmute | Action::Unban if self.target.is_none() => {
                Err("Say whose sanction to lift.".into())
            }
            Action::Delete => Err("Delete messages from the message menu.".into()),
            _ if self.seq.is_none() && self.target.is_none() => {
                Err("Say whom: one of their messages.".into())
            }
            _ => Ok(()),
        }
    }
}

/// One moderation action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    /// The moderator's display name, and their user id if verified.
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_user: Option<String>,
    pub action: Action,
    /// The person acted on, by name as they appeared.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// For a mute or ban: when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// For a delete: the message; for a purge: how many were removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// `GET /api/rooms/{room}/moderation`: what the moderators' panel shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationView {
    /// Mutes and bans in force, soonest to end first.
    pub sanctions: Vec<Sanction>,
    /// The latest actions, newest first.
    pub audit: Vec<AuditEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(action: Action, minutes: u32) -> ModerationRequest {
        ModerationRequest {
            action,
            seq: Some(3),
            target: None,
            minutes,
            reason: String::new(),
        }
    }

    #[test]
    fn requests_are_checked() {
        assert!(request(Action::Mute, 10).validate().is_ok());
        assert!(request(Action::Kick, 0).validate().is_ok());
        assert!(request(Action::Mute, 0).validate().is_err());
        assert!(request(Action::Ban, MAX_MINUTES + 1).validate().is_err());
        assert!(request(Action::Unban, 0).validate().is_err());
        assert!(request(Action::Delete, 0).validate().is_err());
        let mut long = request(Action::Kick, 0);
        long.reason = "x".repeat(MAX_REASON_CHARS + 1);
        assert!(long.validate().is_err());
        long.reason = "two\nlines".into();
        assert!(long.validate().is_err());
    }

    #[test]
    fn targets_serialise_tagged() {
        let target = Target::Address("203.0.113.7".into());
        let json = serde_json::to_string(&target).unwrap();
        assert_eq!(json, r#"{"by":"address","id":"203.0.113.7"}"#);
        assert_eq!(target.key(), "address:203.0.113.7");
    }
}
