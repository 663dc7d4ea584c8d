//! Palaver's own wire protocol (`app::protocol`, `docs/PROTOCOL.md`) at `/api/rooms/{room}/ws`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::limits::{validate_client_id, validate_display_name, MessageLimits, RoomName};
use app::protocol::{close_code, ChatMessage, ClientMsg, ErrorCode, Seq, ServerMsg};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Dialect, JoinRequest, PostRequest, Refusal};
use crate::metrics::{Metrics, Rejection};
use crate::room::{Delivery, RoomError};
use crate::AppState;

/// `GET /api/rooms/{room}/ws`
pub async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Path(room): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(state): State<AppState>,
) -> Response {
    let room = RoomName::parse(&room)
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()).into_response());
    let dialect = Palaver {
        limits: state.limits,
        metrics: state.metrics.clone(),
    };
    super::admit(ws, room, peer, &headers, state, dialect)
}

/// Palaver's own protocol.
pub struct Palaver {
    limits: MessageLimits,
    /// Counts messages refused for breaking a rule.
    metrics: Arc<Metrics>,
}

fn error(code: ErrorCode, message: impl Into<String>, client_id: Option<String>) -> String {
    ServerMsg::Error {
        code,
        message: message.into(),
        client_id,
        retry_after_ms: None,
    }
    .encode()
}

impl Dialect for Palaver {
    fn join(&mut self, text: &str) -> Result<JoinRequest, Refusal> {
        let refuse = |frame| Refusal {
            frames: vec![frame],
            close: (close_code::BAD_JOIN, "expected join"),
        };
        match ClientMsg::decode(text) {
            Ok(ClientMsg::Join { name, after_seq }) => match validate_display_name(&name) {
                Ok(name) => Ok(JoinRequest { name, after_seq }),
                Err(e) => Err(Refusal {
                    frames: vec![error(ErrorCode::InvalidName, e.to_string(), None)],
                    close: (close_code::BAD_JOIN, "invalid name"),
                }),
            },
            Ok(_) => Err(refuse(error(
                ErrorCode::BadSequence,
                "The first frame must be a join.",
                None,
            ))),
            Err(e) => Err(refuse(error(ErrorCode::BadFrame, e, None))),
        }
    }

    fn frame(&mut self, text: &str) -> Result<PostRequest, Vec<String>> {
        let (client_id, text) = match ClientMsg::decode(text) {
            Ok(ClientMsg::Send { client_id, text }) => (client_id, text),
            Ok(ClientMsg::Join { .. }) => {
                return Err(vec![error(ErrorCode::BadSequence, "Already joined.", None)])
            }
            Ok(ClientMsg::Ping) => return Err(vec![ServerMsg::Pong.encode()]),
            Err(e) => return Err(vec![error(ErrorCode::BadFrame, e, None)]),
        };
        if let Err(e) = validate_client_id(&client_id) {
            self.metrics.rejected(Rejection::Invalid);
            return Err(vec![error(ErrorCode::InvalidClientId, e.to_string(), None)]);
        }
        match self.limits.validate(&text) {
            Ok(text) => Ok(PostRequest { client_id, text }),
            Err(e) => {
                self.metrics.rejected(Rejection::Invalid);
                Err(vec![error(
                    ErrorCode::InvalidMessage,
                    e.to_string(),
                    Some(client_id),
                )])
            }
        }
    }

    fn binary(&mut self) -> Vec<String> {
        vec![error(
            ErrorCode::BadFrame,
            "Frames must be JSON text.",
            None,
        )]
    }

    fn welcome(
        &mut self,
        room: &RoomName,
        name: &str,
        head: Seq,
        online: &[String],
    ) -> Vec<String> {
        vec![
            ServerMsg::Welcome {
                room: room.to_string(),
                name: name.to_owned(),
                last_seq: head,
            }
            .encode(),
            ServerMsg::Presence {
                online: online.to_vec(),
                joined: Vec::new(),
                left: Vec::new(),
                at_seq: head,
            }
            .encode(),
        ]
    }

    fn status(&mut self, degraded: bool) -> Vec<String> {
        vec![ServerMsg::Status { degraded }.encode()]
    }

    fn history(&mut self, message: &ChatMessage) -> Option<Arc<str>> {
        Some(ServerMsg::Message(message.clone()).encode().into())
    }

    fn live(&mut self, delivery: &Delivery, out: &mut Vec<Arc<str>>) {
        // Encoded once by the room for every Palaver client.
        out.push(delivery.frame.clone());
    }

    fn rate_limited(&mut self, client_id: String, retry_after: Duration) -> Vec<String> {
        let secs = retry_after.as_secs_f64().ceil().max(1.0);
        vec![ServerMsg::Error {
            code: ErrorCode::RateLimited,
            message: format!("You are sending too fast. You can send again in {secs:.0} s."),
            client_id: Some(client_id),
            retry_after_ms: Some(
                u64::try_from(retry_after.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            ),
        }
        .encode()]
    }

    fn ack(&mut self, client_id: String, result: Result<Seq, RoomError>) -> Option<String> {
        Some(match result {
            Ok(seq) => ServerMsg::Ack { client_id, seq }.encode(),
            Err(e) => error(
                e.code(),
                "Not saved yet: the server cannot store messages right now. It will be sent again by itself.",
                Some(client_id),
            ),
        })
    }
}
