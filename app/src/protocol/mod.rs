//! The wire protocol between the browser and the server: typed frames, sent as JSON text.
//!
//! Every frame is a JSON object with a `"type"` tag; `docs/PROTOCOL.md` is the prose version of this
//! module and must change with it. Both sides compile this one definition, so they cannot drift.

use serde::{Deserialize, Serialize};

mod codes;
pub use codes::{close_code, ErrorCode};

/// A room's message sequence number: 1 for the room's first message, then 2, 3, ... with no holes.
/// It is the one ordering truth for clients.
pub type Seq = u64;

/// How many of a room's latest messages a client gets when it joins without a resume point.
pub const JOIN_BACKLOG: usize = 100;

/// Most names in one `roster` page asked for. Every frame stays small, however big the room.
pub const ROSTER_PAGE: usize = 100;

/// Names in the `roster` page that follows `welcome`: enough to list a small room whole, little
/// for every joiner of a big one (a client asks for more when someone looks at the list).
pub const WELCOME_ROSTER: usize = 20;

/// Most names one `presence` change lists; further arrivals and departures are only counted.
pub const PRESENCE_NAMES: usize = 20;

/// A client sends `typing` at most this often while its person types (the server drops more).
pub const TYPING_EVERY_MS: u64 = 3_000;

/// How long "… is typing" is shown after the last `typing` heard.
pub const TYPING_SHOWN_MS: u64 = 6_000;

/// No frame the server sends is longer than this many bytes (a maximal message JSON-escaped, a
/// full roster page of the longest names): far below what a slow socket may buffer.
pub const MAX_SERVER_FRAME_BYTES: usize = 40 * 1024;

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Must be the first frame on a socket: who is speaking, and where to resume.
    Join {
        /// Display name; see [`crate::limits::validate_display_name`].
        name: String,
        /// The last sequence number this client already has. The server then sends every message
        /// after it (and nothing before), so a reconnect has no gap and no duplicate. Without it the
        /// server sends the latest [`JOIN_BACKLOG`] messages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_seq: Option<Seq>,
        /// A secret this client keeps across reconnects (the browser keeps one per browser),
        /// 16–64 characters of `A-Z a-z 0-9 - _`. Client ids are this sender's own: a resend on
        /// a new connection with the same key is recognised, and nobody else can claim its ids.
        /// Without it, a connection's ids are its own only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// A signed token (JWT) proving who is joining, for clients without the browser's
        /// session cookie. With a valid token the name is the token's, and `name` is ignored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// The owner key of a room this browser created as a guest (16–64 characters of
        /// `A-Z a-z 0-9 - _`): its holder is the room's owner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner_key: Option<String>,
    },
    /// Post a message to the room.
    Send {
        /// Chosen by the client, unique per message (a UUID). Sending the same id again, for example
        /// after a reconnect, acknowledges the original message instead of posting a second one.
        client_id: String,
        /// The message text; see [`crate::limits::validate_message_text`].
        text: String,
    },
    /// Changes the text of message `seq`: allowed to its author within the server's edit window.
    /// Becomes an `edit` entry in the room's sequence; idempotent by `client_id` like a send.
    Edit {
        client_id: String,
        seq: Seq,
        /// The new text, under the same rules as a message's.
        text: String,
    },
    /// Takes message `seq` back: allowed to its author within the edit window, and to
    /// moderators. Becomes a `delete` entry; the message's text is removed from storage.
    Delete { client_id: String, seq: Seq },
    /// Heartbeat: the server answers `pong`. Browsers cannot see WebSocket pings, so this is how a
    /// client finds out that a connection died without a close (a sleeping laptop, a network
    /// change) while the browser still accepts sends on it.
    Ping,
    /// The person is typing. Send at most one every [`TYPING_EVERY_MS`] while they type; the
    /// others are told (`typing`) unless the room is big. Never stored or numbered; more frequent
    /// ones are dropped.
    Typing,
    /// Asks for a page of who is in the room: up to [`ROSTER_PAGE`] names after `after` in sorted
    /// order, only those containing `query` (ignoring case) when given. The server answers with a
    /// `roster` frame; one request at a time.
    Roster {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
    },
}

/// What an entry of a room's sequence is: most are messages; an edit or a delete is an event that
/// changes an earlier message (`target`), numbered in the same sequence, so resume and catch-up
/// bring changes as they bring messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    #[default]
    Message,
    /// New text for `target`, which is in this entry's `text`.
    Edit,
    /// `target` was taken back; this entry has no text.
    Delete,
}

impl EntryKind {
    pub fn is_message(&self) -> bool {
        *self == EntryKind::Message
    }

    /// How it is stored (SQLite column, Redis field).
    pub fn code(self) -> i64 {
        match self {
            EntryKind::Message => 0,
            EntryKind::Edit => 1,
            EntryKind::Delete => 2,
        }
    }

    /// From [`EntryKind::code`]; an unknown code reads as a message.
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => EntryKind::Edit,
            2 => EntryKind::Delete,
            _ => EntryKind::Message,
        }
    }
}

/// A chat message (or an edit or delete of one) as stored and delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Position in the room; contiguous from 1.
    pub seq: Seq,
    /// Server-assigned unique id.
    pub id: String,
    /// The sender's display name.
    pub sender: String,
    /// The text, exactly as sent. Always rendered as text, never as HTML.
    pub text: String,
    /// Server time of acceptance, milliseconds since the Unix epoch.
    pub sent_at_ms: i64,
    /// The sender's id for this message, so the sender can match it to its pending copy.
    pub client_id: String,
    /// The sender's verified user id (`sub` of their token); absent for a guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A message, or an event changing one.
    #[serde(default, skip_serializing_if = "EntryKind::is_message")]
    pub kind: EntryKind,
    /// For an edit or a delete: the message it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Seq>,
    /// For a message: when its text was last edited (its `text` is the latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at_ms: Option<i64>,
    /// For a message (or an edit of it): it was deleted, and its text is gone.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The `client_id` as the sender chose it, from the form the server stores (`<sender>/<id>`: ids
/// are scoped to their sender). Messages stored before ids were scoped have no sender part.
pub fn sent_client_id(stored: &str) -> &str {
    stored.rsplit_once('/').map_or(stored, |(_, id)| id)
}

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Answer to `join`. Sent before any message of the room.
    Welcome {
        /// The room's normalised name.
        room: String,
        /// The display name the server accepted (trimmed and normalised).
        name: String,
        /// The room's latest sequence number at the time of joining (0 for an empty room).
        last_seq: Seq,
        /// The joiner's verified user id; absent for a guest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        /// Whether the joiner may post here (a guest where only verified people post, or a
        /// read-only room, may not). Absent means yes.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        can_post: bool,
    },
    /// A message of the room, in sequence order; each sequence number arrives at most once.
    Message(ChatMessage),
    /// A page of who is in the room, in sorted order: the first [`WELCOME_ROSTER`] names right
    /// after `welcome`, then a page in answer to each `roster` request.
    Roster {
        /// At most [`ROSTER_PAGE`] names, each once (several tabs count once).
        names: Vec<String>,
        /// Which of `names` are verified people, as positions in `names` (the rest are guests).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        verified: Vec<usize>,
        /// How many people are in the room.
        count: usize,
        /// Whether more names follow the last one here (ask with `after`).
        more: bool,
        /// The request this page answers (both absent for the page after `welcome`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
    },
    /// The roster changed: who arrived and left since the last change. Changes within half a
    /// second are merged (many reconnects at once announce nothing), and each change names at most
    /// [`PRESENCE_NAMES`] people each way; a big room names nobody and only counts.
    Presence {
        /// How many people are in the room now.
        count: usize,
        /// Names that arrived.
        #[serde(default)]
        joined: Vec<String>,
        /// Which of `joined` are verified people, as positions in `joined`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        verified: Vec<usize>,
        /// Names that left.
        #[serde(default)]
        left: Vec<String>,
        /// Arrivals not named (too many at once, or a big room).
        #[serde(default)]
        more_joined: usize,
        /// Departures not named.
        #[serde(default)]
        more_left: usize,
        /// The room's last sequence number when the first of these changes happened: where the
        /// "joined"/"left" line belongs in the stream.
        #[serde(default)]
        at_seq: Seq,
    },
    /// During catch-up: the messages numbered `after + 1` to `upto` are no longer kept (the
    /// server's retention removed them); what remains follows, in order. Numbering is unchanged.
    Removed { after: Seq, upto: Seq },
    /// The server has durably accepted the message sent with `client_id` as number `seq`.
    Ack { client_id: String, seq: Seq },
    /// Answer to `ping`.
    Pong,
    /// Someone else in the room is typing; show it for [`TYPING_SHOWN_MS`] unless another
    /// `typing` (which extends it) or a message from them comes first.
    Typing { name: String },
    /// Whether the server can store messages right now. Sent after `welcome` when it cannot,
    /// then whenever that changes. While degraded, sends are refused with `unavailable` (keep
    /// them and send again); the connection, history and presence keep working.
    Status { degraded: bool },
    /// This person's standing in the room: sent after `welcome` when a moderator has muted them,
    /// then whenever that changes. While `muted_until_ms` is in the future, posts, edits and
    /// deletes are refused with `muted`; absent, they may post again.
    Standing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        muted_until_ms: Option<i64>,
        /// The moderator's reason, if they gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Something the client sent was refused. The connection stays open unless a close follows.
    Error {
        code: ErrorCode,
        /// Human-readable explanation, safe to show to the user.
        message: String,
        /// For `send` errors: the `client_id` of the refused message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// For `rate_limited`: how long to wait before sending again, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

impl ClientMsg {
    /// Decodes one text frame. Errors are phrased for the client, with no internals.
    pub fn decode(frame: &str) -> Result<Self, String> {
        serde_json::from_str(frame).map_err(|e| {
            // serde_json's messages name fields and types but never echo the input back.
            format!("not a valid frame: {e}")
        })
    }
}

impl ClientMsg {
    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        encode_json(self)
    }
}

/// Serialises a frame. Our frames are plain structs with string keys, which cannot fail to encode.
fn encode_json<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).unwrap_or_else(|_| {
        String::from(r#"{"type":"error","code":"internal","message":"encoding failed"}"#)
    })
}

impl ServerMsg {
    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        encode_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_round_trip_with_type_tag() {
        let join = ClientMsg::Join {
            name: "Ada".into(),
            after_seq: Some(7),
            key: None,
            token: None,
            owner_key: None,
        };
        let json = serde_json::to_string(&join).unwrap();
        assert_eq!(json, r#"{"type":"join","name":"Ada","after_seq":7}"#);
        assert_eq!(ClientMsg::decode(&json).unwrap(), join);

        let fresh = ClientMsg::decode(r#"{"type":"join","name":"Ada"}"#).unwrap();
        assert_eq!(
            fresh,
            ClientMsg::Join {
                name: "Ada".into(),
                after_seq: None,
                key: None,
                token: None,
                owner_key: None,
            }
        );
    }

    #[test]
    fn message_frame_is_flat() {
        let msg = ServerMsg::Message(ChatMessage {
            seq: 3,
            id: "m".into(),
            sender: "Ada".into(),
            text: "hi".into(),
            sent_at_ms: 10,
            client_id: "c".into(),
            user_id: None,
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::from_str(&msg.encode()).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["sender"], "Ada");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(ClientMsg::decode("not json").is_err());
        assert!(ClientMsg::decode(r#"{"type":"shout","text":"x"}"#).is_err());
        assert!(ClientMsg::decode(r#"{"type":"send","client_id":1,"text":"x"}"#).is_err());
    }

    #[test]
    fn unknown_error_codes_decode_as_internal() {
        let v: ServerMsg =
            serde_json::from_str(r#"{"type":"error","code":"new_thing","message":"m"}"#).unwrap();
        assert!(matches!(
            v,
            ServerMsg::Error {
                code: ErrorCode::Internal,
                ..
            }
        ));
    }

    #[test]
    fn no_server_frame_outgrows_the_bound() {
        use crate::limits::{MAX_DISPLAY_NAME_CHARS, MESSAGE_BYTES_CEILING};
        // The longest name in bytes (four-byte characters), and the text that escapes the most.
        let name = "𝒜".repeat(MAX_DISPLAY_NAME_CHARS);
        let quote_heavy = "\"".repeat(MESSAGE_BYTES_CEILING);
        let frames = [
            ServerMsg::Message(ChatMessage {
                seq: u64::MAX,
                id: "f".repeat(32),
                sender: name.clone(),
                text: quote_heavy,
                sent_at_ms: i64::MAX,
                client_id: "c".repeat(crate::limits::MAX_CLIENT_ID_BYTES),
                user_id: Some("u".repeat(255)),
                kind: EntryKind::Edit,
                target: Some(u64::MAX),
                edited_at_ms: Some(i64::MAX),
                deleted: true,
            }),
            ServerMsg::Roster {
                names: vec![name.clone(); ROSTER_PAGE],
                verified: (0..ROSTER_PAGE).map(|i| i + 100_000).collect(),
                count: usize::MAX,
                more: true,
                after: Some(name.clone()),
                query: Some(name.clone()),
            },
            ServerMsg::Presence {
                count: usize::MAX,
                joined: vec![name.clone(); PRESENCE_NAMES],
                verified: (0..PRESENCE_NAMES).collect(),
                left: vec![name.clone(); PRESENCE_NAMES],
                more_joined: usize::MAX,
                more_left: usize::MAX,
                at_seq: u64::MAX,
            },
        ];
        for frame in frames {
            let len = frame.encode().len();
            assert!(len <= MAX_SERVER_FRAME_BYTES, "{len} bytes: {frame:?}");
        }
    }
}
