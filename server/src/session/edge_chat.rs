//! The edge-chat demo's wire protocol at `/api/room/{name}/websocket`, sharing Palaver's rooms and
//! history, so clients written for that demo work unchanged (`docs/PROTOCOL.md`, "Compatibility").
//!
//! Client: `{"name": ...}` first, then `{"message": ...}`. Server: `{"joined": name}` for each
//! person already there, the latest 100 messages as `{"name","message","timestamp"}`, then
//! `{"ready": true}`; afterwards messages, `{"joined"}`, `{"quit"}` and `{"error"}`. Palaver's own
//! rules for names and text apply (they are counted in characters, not UTF-16 units).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::limits::{validate_display_name, InputError, MessageLimits, RoomName};
use app::protocol::{close_code, ChatMessage, Seq, ServerMsg};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Dialect, JoinRequest, PostRequest, Refusal};
use crate::metrics::{Metrics, Rejection};
use crate::room::{Delivery, RoomError};
use crate::AppState;

/// The demo closes with 1009 when a name is too long.
const NAME_TOO_LONG_CLOSE: u16 = 1009;

/// `GET /api/room/{name}/websocket`
pub async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Path(room): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Response {
    let room = RoomName::parse(&room).map_err(|e| match e {
        InputError::RoomNameTooLong => (StatusCode::NOT_FOUND, "Name too long").into_response(),
        e => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    });
    let dialect = EdgeChat {
        limits: state.limits,
        metrics: state.metrics.clone(),
        ..EdgeChat::default()
    };
    super::admit(ws, room, peer, &headers, state, dialect)
}

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
    /// Who this client has been told is here. The demo speaks only in joins and quits, so each
    /// roster is compared with this, which stays right even when the room merges a quick join and
    /// leave into no change at all.
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

fn error(text: impl std::fmt::Display) -> String {
    json!({ "error": text.to_string() }).to_string()
}

fn message(m: &ChatMessage) -> Arc<str> {
    json!({ "name": m.sender, "message": m.text, "timestamp": m.sent_at_ms })
        .to_string()
        .into()
}

impl EdgeChat {
    /// `{"joined"}` and `{"quit"}` frames that bring this client from what it was told to `online`.
    fn roster_changes(&mut self, online: &[String]) -> Vec<Arc<str>> {
        let now: BTreeSet<String> = online
            .iter()
            .filter(|n| **n != self.name)
            .cloned()
            .collect();
        let quits = self.told.difference(&now).map(|n| json!({ "quit": n }));
        let joins = now.difference(&self.told).map(|n| json!({ "joined": n }));
        let frames = quits
            .chain(joins)
            .map(|v| Arc::from(v.to_string()))
            .collect();
        self.told = now;
        frames
    }
}

impl Dialect for EdgeChat {
    fn join(&mut self, text: &str) -> Result<JoinRequest, Refusal> {
        let Ok(NameFrame { name }) = serde_json::from_str(text) else {
            return Err(Refusal {
                frames: vec![error("The first message must be {\"name\": ...}.")],
                close: (close_code::BAD_JOIN, "expected name"),
            });
        };
        match validate_display_name(&name) {
            Ok(name) => {
                self.name = name.clone();
                Ok(JoinRequest {
                    name,
                    after_seq: None,
                })
            }
            Err(InputError::DisplayNameTooLong) => Err(Refusal {
                frames: vec![error("Name too long.")],
                close: (NAME_TOO_LONG_CLOSE, "name too long"),
            }),
            Err(e) => Err(Refusal {
                frames: vec![error(e)],
                close: (close_code::BAD_JOIN, "invalid name"),
            }),
        }
    }

    fn frame(&mut self, text: &str) -> Result<PostRequest, Vec<String>> {
        let Ok(MessageFrame { message }) = serde_json::from_str(text) else {
            return Err(vec![error("Expected {\"message\": ...}.")]);
        };
        match self.limits.validate(&message) {
            // The demo has no client ids; each frame is a new message.
            Ok(text) => Ok(PostRequest {
                client_id: uuid::Uuid::new_v4().to_string(),
                text,
            }),
            Err(InputError::MessageTooLong { .. }) => {
                self.metrics.rejected(Rejection::Invalid);
                Err(vec![error("Message too long.")])
            }
            Err(e) => {
                self.metrics.rejected(Rejection::Invalid);
                Err(vec![error(e)])
            }
        }
    }

    fn binary(&mut self) -> Vec<String> {
        vec![error("Frames must be JSON text.")]
    }

    fn welcome(
        &mut self,
        _room: &RoomName,
        _name: &str,
        _head: Seq,
        online: &[String],
    ) -> Vec<String> {
        self.roster_changes(online)
            .iter()
            .map(|f| f.to_string())
            .collect()
    }

    fn caught_up(&mut self) -> Vec<String> {
        vec![json!({ "ready": true }).to_string()]
    }

    fn history(&mut self, m: &ChatMessage) -> Option<Arc<str>> {
        Some(message(m))
    }

    fn live(&mut self, delivery: &Delivery, out: &mut Vec<Arc<str>>) {
        match &delivery.msg {
            ServerMsg::Message(m) => out.push(message(m)),
            ServerMsg::Presence { online, .. } => out.extend(self.roster_changes(online)),
            _ => {}
        }
    }

    fn rate_limited(&mut self, _client_id: String, _retry_after: Duration) -> Vec<String> {
        // The demo's own wording, which its clients show as is.
        vec![error(
            "Your IP is being rate-limited, please try again later.",
        )]
    }

    fn ack(&mut self, _client_id: String, result: Result<Seq, RoomError>) -> Option<String> {
        // The demo has no acknowledgements: the sender sees its message when it is broadcast.
        result
            .err()
            .map(|_| error("The message could not be stored; it was not sent. Try again."))
    }
}
