//! A room's access rules, as stored with the room, shown on its page and edited by its owner:
//! who may read it, who may post in it, and who its members are. Without rules a room is open to
//! everyone the server's `--auth` mode lets in.
//!
//! The server decides with [`RoomRules::may_read`] and [`RoomRules::may_post`]; the page uses the
//! same functions to say what a person can do, so the two cannot disagree.

use serde::{Deserialize, Serialize};

/// Who an action is open to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Anyone the server lets connect (guests too, unless `--auth required`).
    #[default]
    Everyone,
    /// Verified people only.
    Verified,
    /// The room's members: named users, holders of named roles, and tokens granting the room.
    Members,
    /// Moderators, admins and the room's owner only (a read-only announcement room posts this).
    Moderators,
}

impl Audience {
    pub const ALL: [Audience; 4] = [
        Audience::Everyone,
        Audience::Verified,
        Audience::Members,
        Audience::Moderators,
    ];

    /// The setting's name on the wire and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Everyone => "everyone",
            Audience::Verified => "verified",
            Audience::Members => "members",
            Audience::Moderators => "moderators",
        }
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == value)
            .ok_or_else(|| {
                format!("expected one of everyone, verified, members, moderators (not {value:?})")
            })
    }

    /// How the page says it.
    pub fn label(self) -> &'static str {
        match self {
            Audience::Everyone => "Everyone",
            Audience::Verified => "Signed-in people",
            Audience::Members => "Members only",
            Audience::Moderators => "Moderators only",
        }
    }
}

/// Who owns a room: may change its rules and moderates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// A verified user, by id (`sub`).
    User(String),
    /// A guest holding a key their browser keeps; only its SHA-256 (hex) is stored.
    KeyHash(String),
}

/// Most members one room lists by name (bigger groups are roles or token grants).
pub const MAX_MEMBERS: usize = 1_000;

/// A room's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRules {
    #[serde(default)]
    pub read: Audience,
    #[serde(default)]
    pub post: Audience,
    /// Members by user id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Members by token role (for example `staff`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// Slow mode: at most one message per person per this many seconds (0: off). Moderators and
    /// the owner are exempt.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slow_mode_secs: u32,
}

/// Longest slow mode: one message an hour.
pub const MAX_SLOW_MODE_SECS: u32 = 3_600;

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// What the rules need to know about a person.
#[derive(Debug, Clone, Copy, Default)]
pub struct Who<'a> {
    /// Verified user id; `None` for a guest.
    pub user: Option<&'a str>,
    /// Token roles.
    pub roles: &'a [String],
    /// Whether the person's token grants this room (its `rooms` claim).
    pub granted: bool,
    /// Whether the person holds the room's guest owner key.
    pub owner_key: bool,
}

impl Who<'_> {
    fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

impl RoomRules {
    /// Whether the rules restrict anything (a room without rules stores none).
    pub fn is_open(&self) -> bool {
        self.read == Audience::Everyone && self.post == Audience::Everyone
    }

    /// The room's owner, an admin, or (by key) the guest who created it.
    pub fn is_owner(&self, who: &Who<'_>) -> bool {
        match &self.owner {
            Some(Owner::User(id)) => who.user == Some(id.as_str()),
            Some(Owner::KeyHash(_)) => who.owner_key,
            None => false,
        }
    }

    /// Who may change the rules: the owner and admins.
    pub fn may_change(&self, who: &Who<'_>) -> bool {
        who.has_role("admin") || self.is_owner(who)
    }

    /// Moderators, admins and the owner.
    pub fn moderates(&self, who: &Who<'_>) -> bool {
        who.has_role("admin") || who.has_role("moderator") || self.is_owner(who)
    }

    pub fn may_read(&self, who: &Who<'_>) -> bool {
        self.allows(self.read, who)
    }

    /// Posting also needs reading.
    pub fn may_post(&self, who: &Who<'_>) -> bool {
        self.may_read(who) && self.allows(self.post, who)
    }

    fn allows(&self, audience: Audience, who: &Who<'_>) -> bool {
        if self.moderates(who) {
            return true;
        }
        match audience {
            Audience::Everyone => true,
            Audience::Verified => who.user.is_some(),
            Audience::Members => {
                who.granted
                    || who
                        .user
                        .is_some_and(|u| self.members.iter().any(|m| m == u))
                    || (who.user.is_some() && self.member_roles.iter().any(|r| who.has_role(r)))
            }
            Audience::Moderators => false,
        }
    }

    /// Checks sizes: at most [`MAX_MEMBERS`] members and roles, each a reasonable id.
    pub fn validate(&self) -> Result<(), String> {
        if self.slow_mode_secs > MAX_SLOW_MODE_SECS {
            return Err(format!("Slow mode is at most {MAX_SLOW_MODE_SECS} s."));
        }
        if self.members.len() + self.member_roles.len() > MAX_MEMBERS {
            return Err(format!("At most {MAX_MEMBERS} members and roles."));
        }
        let bad = self
            .members
            .iter()
            .chain(&self.member_roles)
            .any(|m| m.is_empty() || m.len() > 255 || m.chars().any(char::is_control));
        if bad {
            return Err(
                "Member ids and roles are 1–255 characters, without control characters.".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn an_announcement_room_lets_everyone_read_and_only_moderators_post() {
        let rules = RoomRules {
            post: Audience::Moderators,
            ..RoomRules::default()
        };
        let guest = Who::default();
        let mods = roles(&["moderator"]);
        let moderator = Who {
            user: Some("m"),
            roles: &mods,
            ..Who::default()
        };
        assert!(rules.may_read(&guest) && !rules.may_post(&guest));
        assert!(rules.may_post(&moderator));
    }

    #[test]
    fn members_are_named_users_roles_and_grants() {
        let rules = RoomRules {
            read: Audience::Members,
            post: Audience::Members,
            members: vec!["ada".into()],
            member_roles: vec!["staff".into()],
            owner: Some(Owner::User("own".into())),
            slow_mode_secs: 0,
        };
        let staff = roles(&["staff"]);
        assert!(rules.may_read(&Who {
            user: Some("ada"),
            ..Who::default()
        }));
        assert!(rules.may_read(&Who {
            user: Some("x"),
            roles: &staff,
            ..Who::default()
        }));
        assert!(rules.may_read(&Who {
            user: Some("y"),
            granted: true,
            ..Who::default()
        }));
        assert!(
            rules.may_read(&Who {
                user: Some("own"),
                ..Who::default()
            }),
            "the owner"
        );
        assert!(!rules.may_read(&Who {
            user: Some("bob"),
            ..Who::default()
        }));
        assert!(!rules.may_read(&Who::default()), "a guest is no member");
        assert!(!rules.may_change(&Who {
            user: Some("ada"),
            ..Who::default()
        }));
        assert!(rules.may_change(&Who {
            user: Some("own"),
            ..Who::default()
        }));
    }

    #[test]
    fn a_guest_owner_is_known_by_key() {
        let rules = RoomRules {
            read: Audience::Verified,
            owner: Some(Owner::KeyHash("h".into())),
            ..RoomRules::default()
        };
        assert!(!rules.may_read(&Who::default()));
        let owner = Who {
            owner_key: true,
            ..Who::default()
        };
        assert!(rules.may_read(&owner) && rules.may_change(&owner));
    }
}
