//! What logs may say about a room. A public room's name is public; a private room's id is its
//! only secret (whoever knows it can read and post), so logs name it by a short hash instead:
//! stable across restarts and nodes, so one room's lines can still be followed, and useless for
//! finding the room.

use std::fmt;

use app::limits::RoomName;
use sha2::{Digest, Sha256};

/// A room as logs show it (see the module).
pub struct Logged<'a>(&'a RoomName);

impl fmt::Display for Logged<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.is_private() {
            return f.write_str(self.0.as_str());
        }
        let digest = Sha256::digest(self.0.as_str().as_bytes());
        f.write_str("private-")?;
        digest[..4].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// `room.logged()`: what to put in a log line instead of the room's name.
pub trait LogName {
    fn logged(&self) -> Logged<'_>;
}

impl LogName for RoomName {
    fn logged(&self) -> Logged<'_> {
        Logged(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_rooms_are_logged_by_a_short_stable_hash() {
        let id = "ab".repeat(32);
        let private = RoomName::parse(&id).unwrap();
        let shown = private.logged().to_string();
        assert!(
            shown.starts_with("private-") && shown.len() == "private-".len() + 8,
            "{shown}"
        );
        assert!(!shown.contains(&id[..8]), "no part of the id");
        assert_eq!(shown, private.logged().to_string(), "stable");
        let public = RoomName::parse("general").unwrap();
        assert_eq!(public.logged().to_string(), "general");
    }
}
