//! How one kind of client speaks: the [`Dialect`] trait every wire protocol implements, and the
//! plain types that cross it. A dialect decodes what the client sends into requests and encodes
//! what the session tells the client into frames; everything it writes goes into one reused
//! buffer of [`Frame`]s, so every method has the same shape and the session decides when to write.

use std::sync::Arc;
use std::time::Duration;

use app::limits::{MessageLimits, RoomName};
use app::protocol::{ChatMessage, ErrorCode, Seq};

use super::admission::Refused;
use crate::metrics::Metrics;
use crate::room::{Delivery, RoomError, RosterPage};

/// One text frame for the client: the dialect's own, or one shared by every session (encoded once
/// by the room's first reader).
#[derive(Debug, Clone)]
pub enum Frame {
    Owned(String),
    Shared(bytes::Bytes),
}

/// Frames a dialect writes, in order; the session writes and clears them.
pub type Frames = Vec<Frame>;

/// A frame from the client.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Text(&'a str),
    Binary,
}

/// What a client's join asks for.
pub struct JoinRequest {
    /// Validated, normalised display name.
    pub name: String,
    /// Resume after this sequence number; `None` for the latest messages.
    pub after_seq: Option<Seq>,
    /// Whose client ids this connection's are (see [`sender_scope`]).
    pub sender: String,
    /// A signed token from the join frame (else the session cookie counts).
    pub token: Option<String>,
    /// The owner key of a room a guest created.
    pub owner_key: Option<String>,
}

/// The scope a sender's client ids are stored under (`<scope>/<client id>`), so that one sender
/// can never claim another's id: a hash of the secret key the client keeps across reconnects
/// (resends on a new connection are recognised), or, without one, a random scope of this
/// connection alone.
pub fn sender_scope(key: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let bytes: Vec<u8> = match key {
        Some(key) => Sha256::digest(format!("palaver-sender:{key}")).to_vec(),
        None => uuid::Uuid::new_v4().as_bytes().to_vec(),
    };
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What a client asks for once joined.
pub enum Request {
    /// The person is typing (dropped when it comes too often).
    Typing,
    /// A message to post (already validated).
    Post { client_id: String, text: String },
    /// A change to message `seq`: new text (validated) for an edit, `None` for a delete.
    Change {
        client_id: String,
        seq: Seq,
        text: Option<String>,
    },
    /// A page of who is in the room.
    Roster(RosterRequest),
}

/// Which page of the roster a client asks for (see `app::protocol::ClientMsg::Roster`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterRequest {
    pub after: Option<String>,
    pub query: Option<String>,
}

/// A refused join: the session writes the dialect's frames, then closes with this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: &'static str,
}

/// What the session tells the client, in the order it happens.
pub enum Outgoing<'a> {
    /// Right after joining, before the catch-up messages.
    Welcome {
        room: &'a RoomName,
        name: &'a str,
        head: Seq,
        /// The first page of who is here.
        roster: &'a RosterPage,
        /// The joiner's verified user id (`None`: a guest).
        user_id: Option<&'a str>,
        /// Whether the joiner may post.
        can_post: bool,
    },
    /// Something refused, in words for the person (before a close, or for one post).
    Refused {
        code: ErrorCode,
        message: String,
        client_id: Option<String>,
    },
    /// The room could not be opened: the node has as many rooms open as it may.
    Busy,
    /// The room cannot store messages (after the welcome; later changes arrive live).
    Degraded,
    /// One stored message, during catch-up.
    History(&'a ChatMessage),
    /// During catch-up: messages after `after` up to `upto` are no longer kept (retention).
    Removed { after: Seq, upto: Seq },
    /// The join's catch-up is done.
    CaughtUp,
    /// One live event of the room.
    Live(&'a Delivery),
    /// The outcome of a post.
    Ack {
        client_id: String,
        result: Result<Seq, RoomError>,
    },
    /// A post refused by the rate limit; it may be sent again after `retry_after`.
    RateLimited {
        client_id: String,
        retry_after: Duration,
    },
    /// A post refused by the room's slow mode (one per `every`); again after `retry_after`.
    SlowMode {
        client_id: String,
        every: Duration,
        retry_after: Duration,
    },
    /// This person's mute began, changed or ended (`None`).
    Standing {
        muted_until_ms: Option<i64>,
        reason: Option<String>,
    },
    /// The answer to a roster request.
    Roster {
        page: RosterPage,
        request: RosterRequest,
    },
}

/// A wire protocol. Implementations validate input with `app::limits` and never put internal
/// details in what they send.
pub trait Dialect: Send + Sized + 'static {
    /// A dialect for one connection, checking the server's message limits.
    fn new(limits: MessageLimits, metrics: Arc<Metrics>) -> Self;

    /// The room named in the URL, or how this dialect refuses a bad name.
    fn room(raw: &str) -> Result<RoomName, Refused>;

    /// Decodes the first frame: the join, or a refusal (its frames go to `out`).
    fn join(&mut self, frame: Incoming<'_>, out: &mut Frames) -> Result<JoinRequest, Close>;

    /// Decodes a later frame: a request, or nothing (answers such as errors and pongs go to
    /// `out`).
    fn request(&mut self, frame: Incoming<'_>, out: &mut Frames) -> Option<Request>;

    /// Encodes what the session tells the client.
    fn encode(&mut self, event: Outgoing<'_>, out: &mut Frames);
}
