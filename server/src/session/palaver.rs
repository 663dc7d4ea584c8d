//! Palaver's own wire protocol (`app::protocol`, `docs/PROTOCOL.md`) at `/api/rooms/{room}/ws`:
//! every frame it sends is encoded here.

use std::sync::Arc;
use std::time::Duration;

use app::limits::{
    validate_client_id, validate_display_name, validate_sender_key, MessageLimits, RoomName,
    MAX_DISPLAY_NAME_CHARS,
};
use app::protocol::{
    close_code, sent_client_id, ChatMessage, ClientMsg, ErrorCode, Seq, ServerMsg,
};
use axum::http::StatusCode;

use super::admission::Refused;
use super::dialect::{
    sender_scope, Close, Dialect, Frame, Frames, Incoming, JoinRequest, Outgoing, Request,
    RosterRequest,
};
use crate::metrics::{Metrics, Rejection};
use crate::room::{RoomError, RoomEvent, RosterPage, Wire};

/// Palaver's own protocol.
pub struct Palaver {
    limits: MessageLimits,
    /// Counts messages refused for breaking a rule.
    metrics: Arc<Metrics>,
}

const NOT_JOIN: Close = Close {
    code: close_code::BAD_JOIN,
    reason: "expected join",
};

impl Dialect for Palaver {
    fn new(limits: MessageLimits, metrics: Arc<Metrics>) -> Self {
        Self { limits, metrics }
    }

    fn room(raw: &str) -> Result<RoomName, Refused> {
        RoomName::parse(raw).map_err(|e| Refused::BadRoom {
            status: StatusCode::BAD_REQUEST,
            message: e.to_string(),
        })
    }

    fn join(&mut self, frame: Incoming<'_>, out: &mut Frames) -> Result<JoinRequest, Close> {
        let Incoming::Text(text) = frame else {
            out.push(binary_refused());
            return Err(NOT_JOIN);
        };
        let (name, after_seq, key, token, owner_key) = match ClientMsg::decode(text) {
            Ok(ClientMsg::Join {
                name,
                after_seq,
                key,
                token,
                owner_key,
            }) => (name, after_seq, key, token, owner_key),
            Ok(_) => {
                out.push(error(
                    ErrorCode::BadSequence,
                    "The first frame must be a join.",
                    None,
                ));
                return Err(NOT_JOIN);
            }
            Err(e) => {
                out.push(error(ErrorCode::BadFrame, e, None));
                return Err(NOT_JOIN);
            }
        };
        for key in [&key, &owner_key] {
            if let Some(Err(e)) = key.as_deref().map(validate_sender_key) {
                out.push(error(ErrorCode::BadFrame, e.to_string(), None));
                return Err(NOT_JOIN);
            }
        }
        match validate_display_name(&name) {
            Ok(name) => Ok(JoinRequest {
                name,
                after_seq,
                sender: sender_scope(key.as_deref()),
                token,
                owner_key,
            }),
            Err(e) => {
                out.push(error(ErrorCode::InvalidName, e.to_string(), None));
                Err(Close {
                    code: close_code::BAD_JOIN,
                    reason: "invalid name",
                })
            }
        }
    }

    fn request(&mut self, frame: Incoming<'_>, out: &mut Frames) -> Option<Request> {
        let Incoming::Text(text) = frame else {
            out.push(binary_refused());
            return None;
        };
        match ClientMsg::decode(text) {
            Ok(ClientMsg::Send { client_id, text }) => self.post(client_id, text, out),
            Ok(ClientMsg::Edit {
                client_id,
                seq,
                text,
            }) => match self.post(client_id, text, out)? {
                Request::Post { client_id, text } => Some(Request::Change {
                    client_id,
                    seq,
                    text: Some(text),
                }),
                _ => None,
            },
            Ok(ClientMsg::Delete { client_id, seq }) => match validate_client_id(&client_id) {
                Ok(()) => Some(Request::Change {
                    client_id,
                    seq,
                    text: None,
                }),
                Err(e) => {
                    self.metrics.rejected(Rejection::Invalid);
                    out.push(error(ErrorCode::InvalidClientId, e.to_string(), None));
                    None
                }
            },
            Ok(ClientMsg::Roster { after, query }) => roster_request(after, query, out),
            Ok(ClientMsg::Join { .. }) => {
                out.push(error(ErrorCode::BadSequence, "Already joined.", None));
                None
            }
            Ok(ClientMsg::Typing) => Some(Request::Typing),
            Ok(ClientMsg::Ping) => {
                out.push(Frame::Owned(ServerMsg::Pong.encode()));
                None
            }
            Err(e) => {
                out.push(error(ErrorCode::BadFrame, e, None));
                None
            }
        }
    }

    fn encode(&mut self, event: Outgoing<'_>, out: &mut Frames) {
        match event {
            Outgoing::Welcome {
                room,
                name,
                head,
                roster,
                user_id,
                can_post,
            } => {
                let welcome = ServerMsg::Welcome {
                    room: room.to_string(),
                    name: name.to_owned(),
                    last_seq: head,
                    user_id: user_id.map(str::to_owned),
                    can_post,
                };
                let roster = roster_frame(roster.clone(), RosterRequest::default());
                out.extend([welcome, roster].map(|m| Frame::Owned(m.encode())));
            }
            Outgoing::Busy => out.push(error(
                ErrorCode::ServerBusy,
                "This server has as many rooms open as it can right now. Try again in a minute.",
                None,
            )),
            Outgoing::Roster { page, request } => {
                out.push(Frame::Owned(roster_frame(page, request).encode()));
            }
            Outgoing::Degraded => {
                out.push(Frame::Owned(ServerMsg::Status { degraded: true }.encode()));
            }
            Outgoing::History(m) => out.push(Frame::Owned(message_frame(m).encode())),
            Outgoing::Removed { after, upto } => {
                out.push(Frame::Owned(ServerMsg::Removed { after, upto }.encode()));
            }
            Outgoing::CaughtUp => {}
            // Encoded once for every Palaver client.
            Outgoing::Live(delivery) => {
                out.push(Frame::Shared(delivery.frame(Wire::Palaver, live_frame)))
            }
            Outgoing::Ack { client_id, result } => out.push(ack(client_id, result)),
            Outgoing::RateLimited {
                client_id,
                retry_after,
            } => out.push(rate_limited(client_id, retry_after)),
            Outgoing::Refused {
                code,
                message,
                client_id,
            } => out.push(error(code, message, client_id)),
            Outgoing::SlowMode {
                client_id,
                every,
                retry_after,
            } => out.push(slow_mode(client_id, every, retry_after)),
            Outgoing::Standing {
                muted_until_ms,
                reason,
            } => {
                let standing = ServerMsg::Standing {
                    muted_until_ms,
                    reason,
                };
                out.push(Frame::Owned(standing.encode()));
            }
        }
    }
}

impl Palaver {
    /// A message to post, once its client id and text pass the rules.
    fn post(&self, client_id: String, text: String, out: &mut Frames) -> Option<Request> {
        if let Err(e) = validate_client_id(&client_id) {
            self.metrics.rejected(Rejection::Invalid);
            out.push(error(ErrorCode::InvalidClientId, e.to_string(), None));
            return None;
        }
        match self.limits.validate(&text) {
            Ok(text) => Some(Request::Post { client_id, text }),
            Err(e) => {
                self.metrics.rejected(Rejection::Invalid);
                out.push(error(
                    ErrorCode::InvalidMessage,
                    e.to_string(),
                    Some(client_id),
                ));
                None
            }
        }
    }
}

/// A roster request, if its name and query are no longer than a display name.
fn roster_request(
    after: Option<String>,
    query: Option<String>,
    out: &mut Frames,
) -> Option<Request> {
    let too_long = |s: &Option<String>| {
        s.as_ref()
            .is_some_and(|s| s.chars().count() > MAX_DISPLAY_NAME_CHARS)
    };
    if too_long(&after) || too_long(&query) {
        out.push(error(
            ErrorCode::BadFrame,
            format!("A roster request names at most {MAX_DISPLAY_NAME_CHARS} characters."),
            None,
        ));
        return None;
    }
    Some(Request::Roster(RosterRequest { after, query }))
}

/// A room event as the frame every Palaver client gets.
fn live_frame(event: &RoomEvent) -> String {
    let msg = match event {
        RoomEvent::Message(m) => message_frame(m),
        RoomEvent::Presence(change) => ServerMsg::Presence {
            count: change.count,
            joined: change.joined.clone(),
            verified: change.verified.clone(),
            left: change.left.clone(),
            more_joined: change.more_joined,
            more_left: change.more_left,
            at_seq: change.at_seq,
        },
        RoomEvent::Status { degraded } => ServerMsg::Status {
            degraded: *degraded,
        },
        RoomEvent::Typing { name } => ServerMsg::Typing { name: name.clone() },
    };
    msg.encode()
}

/// A stored message as clients see it: with the client id its sender chose.
fn message_frame(m: &ChatMessage) -> ServerMsg {
    ServerMsg::Message(ChatMessage {
        client_id: sent_client_id(&m.client_id).to_owned(),
        ..m.clone()
    })
}

fn roster_frame(page: RosterPage, request: RosterRequest) -> ServerMsg {
    ServerMsg::Roster {
        names: page.names,
        verified: page.verified,
        count: page.count,
        more: page.more,
        after: request.after,
        query: request.query,
    }
}

fn error(code: ErrorCode, message: impl Into<String>, client_id: Option<String>) -> Frame {
    Frame::Owned(
        ServerMsg::Error {
            code,
            message: message.into(),
            client_id,
            retry_after_ms: None,
        }
        .encode(),
    )
}

fn binary_refused() -> Frame {
    error(ErrorCode::BadFrame, "Frames must be JSON text.", None)
}

fn ack(client_id: String, result: Result<Seq, RoomError>) -> Frame {
    match result {
        Ok(seq) => Frame::Owned(ServerMsg::Ack { client_id, seq }.encode()),
        Err(e) => error(
            e.code(),
            "Not saved yet: the server cannot store messages right now. It will be sent again by itself.",
            Some(client_id),
        ),
    }
}

fn slow_mode(client_id: String, every: Duration, retry_after: Duration) -> Frame {
    let secs = retry_after.as_secs_f64().ceil().max(1.0);
    Frame::Owned(
        ServerMsg::Error {
            code: ErrorCode::SlowMode,
            message: format!(
                "Slow mode: one message every {} s here. Yours goes out in {secs:.0} s.",
                every.as_secs()
            ),
            client_id: Some(client_id),
            retry_after_ms: Some(
                u64::try_from(retry_after.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            ),
        }
        .encode(),
    )
}

fn rate_limited(client_id: String, retry_after: Duration) -> Frame {
    let secs = retry_after.as_secs_f64().ceil().max(1.0);
    Frame::Owned(
        ServerMsg::Error {
            code: ErrorCode::RateLimited,
            message: format!("You are sending too fast. You can send again in {secs:.0} s."),
            client_id: Some(client_id),
            retry_after_ms: Some(
                u64::try_from(retry_after.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            ),
        }
        .encode(),
    )
}
