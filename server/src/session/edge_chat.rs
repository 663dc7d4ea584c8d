//! The edge-chat demo's wire protocol at `/api/room/{name}/websocket`, sharing Palaver's rooms and
//! history, so clients written for that demo work unchanged (`docs/PROTOCOL.md`, "Compatibility").
//!
//! Client: `{"name": ...}` first, then `{"message": ...}`. Server: `{"joined": name}` for each
//! person already there, the latest 100 messages as `{"name","message","timestamp"}`, then
//! `{"ready": true}`; afterwards messages, `{"joined"}`, `{"quit"}` and `{"error"}`. Palaver's own
//! rules for names and text apply (they are counted in characters, not UTF-16 units).

use std::collections::BTreeSet;
use std::sync::Arc;

use app::limits::{validate_display_name, InputError, MessageLimits, RoomName};
use app::protocol::{close_code, ChatMessage};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::admission::Refused;
use super::dialect::{
    sender_scope, Close, Dialect, Frame, Frames, Incoming, JoinRequest, Outgoing, Request,
};
use crate::metrics::{Metrics, Rejection};
use crate::room::{PresenceChange, RoomEvent, Wire};

/// The demo closes with 1009 when a name is too long.
const NAME_TOO_LONG_CLOSE: u16 = 1009;

/// `POST /api/room`: a new private room id (64 hex digits, 256 random bits) as plain text.
pub async fn new_private_room() -> Response {
    let mut bytes = [0u8; 32];
    match getrandom::fill(&mut bytes) {
        Ok(()) => bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "no randomness available").into_response(),
    }
}

#[derive(Default)]
pub struct EdgeChat {
    /// This client's name: the demo does not announce people to themselves.
    name: String,
    /// Who this client has been told is here: the demo speaks only in joins and quits, and a quit
    /// is sent only for someone it was told of (a big room names nobody, and a roster page is
    /// bounded).
    told: BTreeSet<String>,
    /// The server's message limits.
    limits: MessageLimits,
    /// Counts messages refused for breaking a rule.
    metrics: Arc<Metrics>,
}

#[derive(Deserialize)]
struct NameFrame {
    name: String,
}

#[derive(Deserialize)]
struct MessageFrame {
    message: String,
}

fn error(text: impl std::fmt::Display) -> Frame {
    Frame::Owned(json!({ "error": text.to_string() }).to_string())
}

/// The demo's message frame.
#[derive(serde::Serialize)]
struct MessageOut<'a> {
    name: &'a str,
    message: &'a str,
    timestamp: i64,
}

fn message_text(m: &ChatMessage) -> String {
    let out = MessageOut {
        name: &m.sender,
        message: &m.text,
        timestamp: m.sent_at_ms,
    };
    serde_json::to_string(&out).unwrap_or_default()
}

fn message(m: &ChatMessage) -> Frame {
    Frame::Owned(message_text(m))
}

impl EdgeChat {
    /// `{"joined"}` for each of `names` (other than this client) it was not told of yet.
    fn tell_joined<'a>(&mut self, names: impl IntoIterator<Item = &'a String>, out: &mut Frames) {
        for name in names {
            if *name != self.name && self.told.insert(name.clone()) {
                out.push(Frame::Owned(json!({ "joined": name }).to_string()));
            }
        }
    }

    /// `{"joined"}` and `{"quit"}` for a roster change: only named people, and a quit only for
    /// someone this client was told had joined.
    fn tell_change(&mut self, change: &PresenceChange, out: &mut Frames) {
        for name in &change.left {
            if self.told.remove(name) {
                out.push(Frame::Owned(json!({ "quit": name }).to_string()));
            }
        }
        self.tell_joined(&change.joined, out);
    }
}

const NOT_NAME: Close = Close {
    code: close_code::BAD_JOIN,
    reason: "expected name",
};

impl Dialect for EdgeChat {
    fn new(limits: MessageLimits, metrics: Arc<Metrics>) -> Self {
        Self {
            limits,
            metrics,
            ..Self::default()
        }
    }

    fn room(raw: &str) -> Result<RoomName, Refused> {
        RoomName::parse(raw).map_err(|e| Refused::BadRoom {
            status: StatusCode::NOT_FOUND,
            message: match e {
                InputError::RoomNameTooLong => "Name too long".to_owned(),
                e => e.to_string(),
            },
        })
    }

    fn join(&mut self, frame: Incoming<'_>, out: &mut Frames) -> Result<JoinRequest, Close> {
        let Incoming::Text(text) = frame else {
            out.push(error("Frames must be JSON text."));
            return Err(Close {
                code: close_code::BAD_JOIN,
                reason: "expected join",
            });
        };
        let Ok(NameFrame { name }) = serde_json::from_str(text) else {
            out.push(error("The first message must be {\"name\": ...}."));
            return Err(NOT_NAME);
        };
        match validate_display_name(&name) {
            Ok(name) => {
                self.name = name.clone();
                Ok(JoinRequest {
                    name,
                    after_seq: None,
                    // The demo has no client ids worth keeping: every frame is a new message.
                    sender: sender_scope(None),
                    // Verified people use the session cookie; the demo's join has no token.
                    token: None,
                    owner_key: None,
                })
            }
            Err(InputError::DisplayNameTooLong) => {
                out.push(error("Name too long."));
                Err(Close {
                    code: NAME_TOO_LONG_CLOSE,
                    reason: "name too long",
                })
            }
            Err(e) => {
                out.push(error(e));
                Err(Close {
                    code: close_code::BAD_JOIN,
                    reason: "invalid name",
                })
            }
        }
    }

    fn request(&mut self, frame: Incoming<'_>, out: &mut Frames) -> Option<Request> {
        let Incoming::Text(text) = frame else {
            out.push(error("Frames must be JSON text."));
            return None;
        };
        let Ok(MessageFrame { message }) = serde_json::from_str(text) else {
            out.push(error("Expected {\"message\": ...}."));
            return None;
        };
        match self.limits.validate(&message) {
            // The demo has no client ids; each frame is a new message.
            Ok(text) => Some(Request::Post {
                client_id: uuid::Uuid::new_v4().to_string(),
                text,
            }),
            Err(e) => {
                self.metrics.rejected(Rejection::Invalid);
                out.push(match e {
                    InputError::MessageTooLong { .. } => error("Message too long."),
                    e => error(e),
                });
                None
            }
        }
    }

    fn encode(&mut self, event: Outgoing<'_>, out: &mut Frames) {
        match event {
            // The first page of who is here; later arrivals come as they are named.
            Outgoing::Welcome { roster, name, .. } => {
                // A verified person's name is their token's, whatever they asked for.
                name.clone_into(&mut self.name);
                self.tell_joined(&roster.names, out);
            }
            Outgoing::Busy => out.push(error(
                "This server has as many rooms open as it can right now. Try again in a minute.",
            )),
            // The demo asks for no roster pages.
            Outgoing::Roster { .. } => {}
            // The demo has no such notice; sends are refused with an error instead.
            // The demo's clients have no numbers, hence nothing to say about a gap in them.
            Outgoing::Degraded | Outgoing::Removed { .. } => {}
            // Edits and deletes: the demo has no way to say which message changed, and a corrected
            // copy as a new line would repeat (or keep showing) what its author took back.
            Outgoing::History(m) if !m.kind.is_message() || m.deleted => {}
            Outgoing::History(m) => out.push(message(m)),
            Outgoing::CaughtUp => out.push(Frame::Owned(json!({ "ready": true }).to_string())),
            Outgoing::Live(delivery) => match &delivery.event {
                // Encoded once for every edge-chat client of the room.
                RoomEvent::Message(m) if m.kind.is_message() => out.push(Frame::Shared(
                    delivery.frame(Wire::EdgeChat, |_| message_text(m)),
                )),
                RoomEvent::Message(_) => {}
                RoomEvent::Presence(change) => self.tell_change(change, out),
                // The demo has no way to say it.
                RoomEvent::Status { .. } | RoomEvent::Typing { .. } => {}
            },
            // The demo has no acknowledgements: the sender sees its message when it is
            // broadcast.
            Outgoing::Ack { result, .. } => {
                if result.is_err() {
                    out.push(error(
                        "The message could not be stored; it was not sent. Try again.",
                    ));
                }
            }
            // The demo's own wording, which its clients show as is.
            Outgoing::RateLimited { .. } => out.push(error(
                "Your IP is being rate-limited, please try again later.",
            )),
            Outgoing::Refused { message, .. } => out.push(error(message)),
            // Its clients learn of a mute when a post is refused (with the reason, as an error).
            Outgoing::Standing { .. } => {}
            Outgoing::SlowMode { every, .. } => out.push(error(format!(
                "Slow mode: one message every {} s in this room; that one was not sent.",
                every.as_secs()
            ))),
        }
    }
}
