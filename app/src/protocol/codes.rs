//! What the server says when it refuses: error codes in `error` frames and WebSocket close
//! codes. Both only grow; clients treat unknown ones as `internal` (or a plain close).

use serde::{Deserialize, Serialize};

/// Machine-readable error codes. The set only grows; clients treat unknown codes as `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a known frame type.
    BadFrame,
    /// A frame other than `join` came first, or `join` came twice.
    BadSequence,
    /// The display name breaks the rules in `docs/PROTOCOL.md`.
    InvalidName,
    /// The message text breaks the rules (empty, too long, control characters).
    InvalidMessage,
    /// The `client_id` is missing or malformed.
    InvalidClientId,
    /// The server could not store the message; it was not accepted. Retry later.
    Unavailable,
    /// Too many messages (or requests) from this address; not accepted. Send again after
    /// `retry_after_ms`.
    RateLimited,
    /// The server has as many rooms open as it may; this one could not be opened. Try again later.
    ServerBusy,
    /// The room is in slow mode: one message per person per so many seconds. Not accepted; send
    /// it again after `retry_after_ms`.
    SlowMode,
    /// Only verified people may do this (or connect at all): sign in. Closes with 4010 at join.
    SignInRequired,
    /// The token expired or was revoked: sign in again. Closes with 4011.
    SignInExpired,
    /// A verified person in this room has this name; a guest may not use it. Closes with 4005.
    NameTaken,
    /// The room's rules do not allow this (reading: closes with 4003; posting: the message is
    /// not accepted).
    Forbidden,
    /// This user or this room has as many connections as it may. Closes with 4029 or 4014.
    TooManyConnections,
    /// A moderator muted this person here: they may read, not post, until the mute ends.
    Muted,
    /// A moderator banned (or removed) this person from the room until a time. Closes with 4012;
    /// do not reconnect before then.
    Banned,
    /// Anything else. Details are in the server log, never in the frame.
    #[serde(other)]
    Internal,
}

/// WebSocket close codes the server uses (4000-4999 are the application range).
pub mod close_code {
    /// The first frame was not a valid `join`.
    pub const BAD_JOIN: u16 = 4000;
    /// The room name in the URL is invalid.
    pub const BAD_ROOM: u16 = 4001;
    /// The client did not join in time.
    pub const JOIN_TIMEOUT: u16 = 4002;
    /// The client did not read its frames for too long. Reconnect and resume with `after_seq`.
    pub const TOO_SLOW: u16 = 4008;
    /// The server has as many rooms open as it may (`server_busy`); reconnect later.
    pub const SERVER_BUSY: u16 = 4013;
    /// Nothing was heard from the client (no frame, no pong) for the peer timeout. Reconnect and
    /// resume with `after_seq`.
    pub const PEER_TIMEOUT: u16 = 4009;
    /// The room's rules do not let this person read it (`forbidden`); do not reconnect.
    pub const FORBIDDEN: u16 = 4003;
    /// A verified person in the room has the name; choose another (`name_taken`).
    pub const NAME_TAKEN: u16 = 4005;
    /// Only verified people may connect: sign in (`sign_in_required`); do not reconnect as is.
    pub const SIGN_IN_REQUIRED: u16 = 4010;
    /// The token expired or was revoked: sign in again, then reconnect (`sign_in_expired`).
    pub const SIGN_IN_EXPIRED: u16 = 4011;
    /// A moderator banned this person from the room, or removed them for a moment (`banned`);
    /// do not reconnect by yourself.
    pub const BANNED: u16 = 4012;
    /// The room has as many connections as it may (`too_many_connections`); reconnect later.
    pub const ROOM_FULL: u16 = 4014;
    /// This user has as many connections as they may (`too_many_connections`); close another.
    pub const TOO_MANY_CONNECTIONS: u16 = 4029;
    /// The server is restarting; reconnect (standard code 1012).
    pub const SERVICE_RESTART: u16 = 1012;
}
