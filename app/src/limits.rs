//! The rules for room names, display names, message text and client ids.
//!
//! The server enforces them on every frame; the browser checks them too, so people see a clear
//! message before anything is sent. Lengths are counted in Unicode scalar values ("characters")
//! and, for message text, also in UTF-8 bytes. `docs/PROTOCOL.md` documents the same rules.

use std::fmt;

/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 32;
/// Longest public room name, in characters (after normalisation).
pub const MAX_ROOM_NAME_CHARS: usize = 32;
/// Length of a private room id: 64 lowercase hex digits, i.e. 256 random bits.
pub const PRIVATE_ROOM_ID_LEN: usize = 64;
/// Default longest message, in characters (configurable on the server).
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Default longest message, in UTF-8 bytes (so 2000 four-byte emoji do not make an 8 KiB message).
pub const MAX_MESSAGE_BYTES: usize = 4000;
/// The most a server may allow per message, in bytes, whatever it is configured with.
pub const MESSAGE_BYTES_CEILING: usize = 16_000;

/// How long a message may be. The server's settings decide; browsers learn them with the room's
/// history page, so they check the same rule before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageLimits {
    pub max_chars: usize,
    pub max_bytes: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        Self {
            max_chars: MAX_MESSAGE_CHARS,
            max_bytes: MAX_MESSAGE_BYTES,
        }
    }
}

impl MessageLimits {
    /// Validates message text. Leading and trailing whitespace is trimmed; the rest is kept
    /// exactly. At least one character, at most `max_chars` characters and `max_bytes` UTF-8 bytes;
    /// no control characters but `\n` and `\t`.
    pub fn validate(&self, input: &str) -> Result<String, InputError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(InputError::MessageEmpty);
        }
        if text.len() > self.max_bytes || text.chars().count() > self.max_chars {
            return Err(InputError::MessageTooLong {
                max_chars: self.max_chars,
                max_bytes: self.max_bytes,
            });
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(InputError::MessageCharacters);
        }
        Ok(text.to_owned())
    }

    /// The largest WebSocket frame a client needs to send a maximal message: JSON escaping at
    /// most doubles the text (`"` and `\` and line breaks), plus room for the envelope.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_bytes * 2 + 1024
    }
}
/// Longest client id, in bytes (a UUID is 36).
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Why an input was refused. The `Display` text is shown to people as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("Enter a room name.")]
    RoomNameEmpty,
    #[error("Room names are at most {MAX_ROOM_NAME_CHARS} characters.")]
    RoomNameTooLong,
    #[error("Room names may use letters, digits, '-' and '_'.")]
    RoomNameCharacters,
    #[error("Enter a name.")]
    DisplayNameEmpty,
    #[error("Names are at most {MAX_DISPLAY_NAME_CHARS} characters.")]
    DisplayNameTooLong,
    #[error("Names cannot contain control characters.")]
    DisplayNameCharacters,
    #[error("Type a message first.")]
    MessageEmpty,
    #[error("Messages are at most {max_chars} characters and {max_bytes} bytes.")]
    MessageTooLong { max_chars: usize, max_bytes: usize },
    #[error("Messages cannot contain control characters other than line breaks and tabs.")]
    MessageCharacters,
    #[error("key must be 16 to 64 characters of [A-Za-z0-9-_].")]
    SenderKey,
    #[error("client_id must be 1 to {MAX_CLIENT_ID_BYTES} characters of [A-Za-z0-9-_].")]
    ClientId,
}

/// A validated, normalised room name: either a public name or a private room id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

impl RoomName {
    /// Normalises what someone typed (or what is in a URL) into a room name.
    ///
    /// Rule: trim; lowercase; every run of whitespace becomes one `-`; then only `a-z`, `0-9`, `-`
    /// and `_` may remain (letters outside ASCII are refused rather than guessed at, so two
    /// different-looking names never share a room). 1 to 32 characters. A string of exactly 64 hex
    /// digits is a private room id and is accepted at that length.
    pub fn parse(input: &str) -> Result<Self, InputError> {
        let mut name = String::with_capacity(input.len().min(PRIVATE_ROOM_ID_LEN + 1));
        let mut pending_dash = false;
        for c in input.trim().chars() {
            if c.is_whitespace() {
                pending_dash = true;
                continue;
            }
            if pending_dash {
                name.push('-');
                pending_dash = false;
            }
            let c = c.to_ascii_lowercase();
            if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
                return Err(InputError::RoomNameCharacters);
            }
            name.push(c);
            if name.len() > PRIVATE_ROOM_ID_LEN {
                return Err(InputError::RoomNameTooLong);
            }
        }
        if name.is_empty() {
            return Err(InputError::RoomNameEmpty);
        }
        let is_private =
            name.len() == PRIVATE_ROOM_ID_LEN && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_private && name.len() > MAX_ROOM_NAME_CHARS {
            return Err(InputError::RoomNameTooLong);
        }
        Ok(Self(name))
    }

    /// True for a 64-hex-digit private room id.
    pub fn is_private(&self) -> bool {
        self.0.len() == PRIVATE_ROOM_ID_LEN
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates a display name and returns it normalised: trimmed, inner whitespace runs collapsed to
/// one space. 1 to 32 characters, no control characters.
pub fn validate_display_name(input: &str) -> Result<String, InputError> {
    let name = input.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(InputError::DisplayNameEmpty);
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(InputError::DisplayNameTooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(InputError::DisplayNameCharacters);
    }
    Ok(name)
}

/// Validates message text against the default limits; see [`MessageLimits::validate`].
pub fn validate_message_text(input: &str) -> Result<String, InputError> {
    MessageLimits::default().validate(input)
}

/// Validates a client-chosen message id: 1 to 64 bytes of `[A-Za-z0-9-_]`.
/// A join's `key`: 16 to 64 characters of `A-Z a-z 0-9 - _`.
pub fn validate_sender_key(key: &str) -> Result<(), InputError> {
    let ok = (16..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InputError::SenderKey)
    }
}

pub fn validate_client_id(id: &str) -> Result<(), InputError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InputError::ClientId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_normalise() {
        assert_eq!(
            RoomName::parse("  Rust  Lovers ").unwrap().as_str(),
            "rust-lovers"
        );
        assert_eq!(RoomName::parse("general").unwrap().as_str(), "general");
        assert_eq!(RoomName::parse("A_b-9").unwrap().as_str(), "a_b-9");
        assert_eq!(RoomName::parse(""), Err(InputError::RoomNameEmpty));
        assert_eq!(RoomName::parse("   "), Err(InputError::RoomNameEmpty));
        assert_eq!(RoomName::parse("café"), Err(InputError::RoomNameCharacters));
        assert_eq!(RoomName::parse("a/b"), Err(InputError::RoomNameCharacters));
        assert_eq!(
            RoomName::parse("<script>"),
            Err(InputError::RoomNameCharacters)
        );
        assert!(RoomName::parse(&"x".repeat(32)).is_ok());
        assert_eq!(
            RoomName::parse(&"x".repeat(33)),
            Err(InputError::RoomNameTooLong)
        );
        assert_eq!(
            RoomName::parse(&"x".repeat(10_000)),
            Err(InputError::RoomNameTooLong)
        );
    }

    #[test]
    fn private_room_ids_are_64_hex() {
        let id = "0123456789abcdef".repeat(4);
        let room = RoomName::parse(&id.to_uppercase()).unwrap();
        assert!(room.is_private());
        assert_eq!(room.as_str(), id);
        // 64 characters that are not all hex are just a too-long public name.
        assert_eq!(
            RoomName::parse(&"g".repeat(64)),
            Err(InputError::RoomNameTooLong)
        );
        assert!(!RoomName::parse("abc").unwrap().is_private());
    }

    #[test]
    fn display_names() {
        assert_eq!(
            validate_display_name("  Ada   Lovelace ").unwrap(),
            "Ada Lovelace"
        );
        assert_eq!(validate_display_name("Zoë 🦀").unwrap(), "Zoë 🦀");
        assert_eq!(
            validate_display_name(" "),
            Err(InputError::DisplayNameEmpty)
        );
        assert!(validate_display_name(&"é".repeat(32)).is_ok());
        assert_eq!(
            validate_display_name(&"é".repeat(33)),
            Err(InputError::DisplayNameTooLong)
        );
        assert_eq!(
            validate_display_name("a\u{0}b"),
            Err(InputError::DisplayNameCharacters)
        );
    }

    #[test]
    fn message_text() {
        assert_eq!(validate_message_text("  hi\nthere  ").unwrap(), "hi\nthere");
        assert_eq!(validate_message_text(" \n "), Err(InputError::MessageEmpty));
        assert!(validate_message_text(&"a".repeat(2000)).is_ok());
        assert_eq!(
            validate_message_text(&"a".repeat(2001)),
            Err(InputError::MessageTooLong {
                max_chars: 2000,
                max_bytes: 4000
            })
        );
        // 1001 four-byte characters: under the character cap, over the byte cap.
        assert_eq!(
            validate_message_text(&"🦀".repeat(1001)),
            Err(InputError::MessageTooLong {
                max_chars: 2000,
                max_bytes: 4000
            })
        );
        assert_eq!(
            validate_message_text("bell\u{7}"),
            Err(InputError::MessageCharacters)
        );
        assert!(validate_message_text("<b>not html</b>").is_ok());
        let small = MessageLimits {
            max_chars: 5,
            max_bytes: 8,
        };
        assert!(small.validate("héllo").is_ok());
        assert!(small.validate("hello!").is_err(), "6 characters");
        assert!(small.validate("ééééé").is_err(), "10 bytes");
        assert_eq!(
            small.validate("hello!").unwrap_err().to_string(),
            "Messages are at most 5 characters and 8 bytes."
        );
    }

    #[test]
    fn client_ids() {
        assert!(validate_client_id("0b6f6c0e-3b1a-4c55-9d1e-4f1f3c2a9b77").is_ok());
        assert!(validate_client_id("").is_err());
        assert!(validate_client_id(&"a".repeat(65)).is_err());
        assert!(validate_client_id("a b").is_err());
    }
}
