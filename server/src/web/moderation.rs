//! Moderation over HTTP, for the room's moderators (a verified token with the `moderator` or
//! `admin` role, or the room's owner — a guest owner sends its key as `X-Owner-Key`):
//!
//! - `GET /api/rooms/{room}/moderation`: the mutes and bans in force and the audit log;
//! - `POST /api/rooms/{room}/moderation` ([`ModerationRequest`]): mute, ban, kick or purge the
//!   person who sent a message, or lift a mute or ban.
//!
//! Every action is stored in the audit log, passes the per-address post limit, and reaches every
//! node at once (`Rooms::moderated`). A person is named by their verified id, a guest by the
//! address their posts came from.

use std::net::SocketAddr;

use app::limits::RoomName;
use app::moderation::{
    Action, AuditEntry, ModerationRequest, ModerationView, Sanction, SanctionKind, Target,
    KICK_SECS,
};
use app::protocol::ChatMessage;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::admin::{caller, refuse};
use super::AppState;
use crate::auth::access;
use crate::engine::retention::now_ms;

/// Audit entries the panel shows.
const AUDIT_SHOWN: usize = 100;

const UNAVAILABLE: &str = "Moderation is not available right now. Try again shortly.";

/// The moderator making a request.
pub(super) struct Moderator {
    pub(super) name: String,
    pub(super) user: Option<String>,
}

/// The person acted on.
struct Subject {
    target: Target,
    name: String,
    /// How their messages are recognised (for a purge): user id, or guest scope.
    author: Author,
}

pub(super) enum Author {
    User(String),
    Scope(String),
}

/// `GET /api/rooms/{room}/moderation`.
pub async fn view(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Response {
    let room = match moderator(&state, &room, &headers).await {
        Ok((room, _)) => room,
        Err(response) => return response,
    };
    current(&state, &room).await
}

/// `POST /api/rooms/{room}/moderation`.
pub async fn act(
    State(state): State<AppState>,
    Path(room): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(request): Json<ModerationRequest>,
) -> Response {
    let (room, by) = match moderator(&state, &room, &headers).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if let Err(e) = request.validate() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    let who = state.guard.client_key(peer, &headers);
    let mut budget = state.guard.check_post(who).await;
    if let (Ok(()), Some(user)) = (&budget, &by.user) {
        budget = state.guard.check_user_post(user).await;
    }
    if let Err(wait) = budget {
        let why = format!(
            "Too many actions at once. Try again in {} s.",
            wait.as_secs().max(1)
        );
        return refuse(StatusCode::TOO_MANY_REQUESTS, why);
    }
    let subject = match subject(&state, &room, &request).await {
        Ok(subject) => subject,
        Err(response) => return response,
    };
    if by.user.is_some()
        && matches!(&subject.target, Target::User(id) if Some(id) == by.user.as_ref())
    {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "You cannot moderate yourself.",
        );
    }
    match apply(&state, &room, &by, &request, &subject).await {
        Ok(entry) => {
            if state
                .rooms
                .moderation()
                .record(&room, &entry)
                .await
                .is_err()
            {
                tracing::warn!("a moderation action was made but not written to the audit log");
            }
            if let Err(e) = state.rooms.moderated(&room).await {
                tracing::warn!(error = %e, "cannot tell the other nodes of a moderation change");
            }
            current(&state, &room).await
        }
        Err(response) => response,
    }
}

/// The room, if the caller moderates it, and who they are.
async fn moderator(
    state: &AppState,
    room: &str,
    headers: &HeaderMap,
) -> Result<(RoomName, Moderator), Response> {
    let room = RoomName::parse(room)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "That is not a room name."))?;
    let identity = caller(state, headers).await?;
    let rules = state
        .access
        .rules(&room)
        .await
        .map_err(|_| refuse(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE))?;
    let owner_key = headers.get("x-owner-key").and_then(|v| v.to_str().ok());
    let who = access::who(identity.as_ref(), &room, &rules, owner_key);
    if !rules.moderates(&who) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Only the room's moderators can do that.",
        ));
    }
    let by = match identity {
        Some(identity) => Moderator {
            name: identity.name,
            user: Some(identity.sub),
        },
        None => Moderator {
            name: "The room's owner".to_owned(),
            user: None,
        },
    };
    Ok((room, by))
}

/// Whom the request is about: the sender of message `seq`, or the sanction's target.
async fn subject(
    state: &AppState,
    room: &RoomName,
    request: &ModerationRequest,
) -> Result<Subject, Response> {
    if let (Some(target), None) = (&request.target, request.seq) {
        let author = match target {
            Target::User(id) => Author::User(id.clone()),
            Target::Address(_) => Author::Scope(String::new()),
        };
        return Ok(Subject {
            target: target.clone(),
            name: sanction_name(state, room, target).await,
            author,
        });
    }
    let seq = request.seq.unwrap_or_default();
    let unavailable = |_| refuse(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    let found = state
        .rooms
        .history()
        .after(room, seq.saturating_sub(1), 1)
        .await
        .map_err(unavailable)?;
    let Some(message) = found
        .into_iter()
        .find(|m| m.seq == seq && m.kind.is_message())
    else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!("There is no message {seq} here."),
        ));
    };
    author_of(state, room, message).await
}

/// The sender of `message` as a subject; a guest by the address they posted from.
async fn author_of(
    state: &AppState,
    room: &RoomName,
    message: ChatMessage,
) -> Result<Subject, Response> {
    if let Some(user) = message.user_id {
        return Ok(Subject {
            target: Target::User(user.clone()),
            name: message.sender,
            author: Author::User(user),
        });
    }
    let scope = message
        .client_id
        .split_once('/')
        .map(|(scope, _)| scope.to_owned())
        .unwrap_or_default();
    let address = state
        .rooms
        .moderation()
        .guest_address(room, &scope, now_ms())
        .await
        .map_err(|_| refuse(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE))?;
    let Some(address) = address.filter(|_| !scope.is_empty()) else {
        return Err(refuse(
            StatusCode::CONFLICT,
            "This guest has not posted here for a week, so their address is no longer known. Delete the message instead.",
        ));
    };
    Ok(Subject {
        target: Target::Address(address),
        name: message.sender,
        author: Author::Scope(scope),
    })
}

/// The name a sanction on `target` was made under.
async fn sanction_name(state: &AppState, room: &RoomName, target: &Target) -> String {
    let found = state.rooms.moderation().sanctions(room, now_ms()).await;
    found
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.target == *target))
        .map_or_else(|| "someone".to_owned(), |s| s.name)
}

/// Makes the change; what the audit log keeps of it.
async fn apply(
    state: &AppState,
    room: &RoomName,
    by: &Moderator,
    request: &ModerationRequest,
    subject: &Subject,
) -> Result<AuditEntry, Response> {
    let now = now_ms();
    let store = state.rooms.moderation();
    let unavailable = |_| refuse(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    let mut entry = AuditEntry {
        at_ms: now,
        by: by.name.clone(),
        by_user: by.user.clone(),
        action: request.action,
        name: subject.name.clone(),
        target: Some(subject.target.clone()),
        until_ms: None,
        seq: request.seq,
        count: None,
        reason: request.reason.clone(),
    };
    let kind = match request.action {
        Action::Mute | Action::Unmute => SanctionKind::Mute,
        _ => SanctionKind::Ban,
    };
    match request.action {
        Action::Mute | Action::Ban | Action::Kick => {
            let minutes_ms = i64::from(request.minutes) * 60_000;
            let until_ms = now
                + if request.action == Action::Kick {
                    KICK_SECS * 1000
                } else {
                    minutes_ms
                };
            let sanction = Sanction {
                kind,
                target: subject.target.clone(),
                name: subject.name.clone(),
                until_ms,
                at_ms: now,
                by: by.name.clone(),
                reason: request.reason.clone(),
            };
            store
                .put_sanction(room, &sanction)
                .await
                .map_err(unavailable)?;
            entry.until_ms = Some(until_ms);
        }
        Action::Unmute | Action::Unban => {
            let lifted = store
                .lift_sanction(room, kind, &subject.target)
                .await
                .map_err(unavailable)?;
            if !lifted {
                return Err(refuse(StatusCode::NOT_FOUND, "That has already ended."));
            }
        }
        Action::Purge => {
            entry.count = Some(super::purge::purge(state, room, by, &subject.author).await?);
        }
        // Refused by validation; deletes are made from the message menu.
        Action::Delete => {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Delete messages from the message menu.",
            ))
        }
    }
    Ok(entry)
}

/// What the panel shows now.
async fn current(state: &AppState, room: &RoomName) -> Response {
    let store = state.rooms.moderation();
    let sanctions = store.sanctions(room, now_ms()).await;
    let audit = store.audit(room, AUDIT_SHOWN).await;
    match (sanctions, audit) {
        (Ok(sanctions), Ok(audit)) => Json(ModerationView { sanctions, audit }).into_response(),
        _ => refuse(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
    }
}
