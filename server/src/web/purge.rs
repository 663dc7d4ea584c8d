//! A purge: a moderator removes one person's recent messages in one action — each of their
//! messages among the room's latest [`PURGE_SCAN`] entries becomes a `delete` entry of the room's
//! sequence, exactly as if deleted one by one (so every client, resume and page sees it).

use app::limits::RoomName;
use app::moderation::PURGE_SCAN;
use app::protocol::ChatMessage;
use axum::http::StatusCode;
use axum::response::Response;

use super::admin::refuse;
use super::moderation::{Author, Moderator};
use super::AppState;
use crate::room::Member;

const UNAVAILABLE: &str = "The messages could not be removed right now. Try again shortly.";

/// Deletes `author`'s recent messages as `by`; how many were deleted.
pub(super) async fn purge(
    state: &AppState,
    room: &RoomName,
    by: &Moderator,
    author: &Author,
) -> Result<usize, Response> {
    let unavailable = || refuse(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE);
    let recent = state
        .rooms
        .history()
        .before(room, None, PURGE_SCAN)
        .await
        .map_err(|_| unavailable())?;
    let theirs: Vec<u64> = recent
        .iter()
        .filter(|m| m.kind.is_message() && !m.deleted && written_by(m, author))
        .map(|m| m.seq)
        .collect();
    if theirs.is_empty() {
        return Ok(0);
    }
    let handle = state.rooms.get(room).map_err(|_| unavailable())?;
    let member = Member {
        name: by.name.clone(),
        user: by.user.clone(),
    };
    let batch = crate::engine::retention::now_ms();
    let mut replies = Vec::with_capacity(theirs.len());
    for seq in theirs {
        // Unique per message and purge; the `moderator` scope is no sender's (those are hex).
        let client_id = format!("moderator/purge-{batch}-{seq}");
        let reply = handle
            .change_as(member.clone(), client_id, seq, None)
            .await
            .map_err(|_| unavailable())?;
        replies.push(reply);
    }
    let mut deleted = 0;
    for reply in replies {
        if let Ok(Ok(_)) = reply.await {
            deleted += 1;
        }
    }
    Ok(deleted)
}

fn written_by(message: &ChatMessage, author: &Author) -> bool {
    match author {
        Author::User(id) => message.user_id.as_deref() == Some(id.as_str()),
        Author::Scope(scope) => {
            !scope.is_empty()
                && message.user_id.is_none()
                && message
                    .client_id
                    .split_once('/')
                    .is_some_and(|(s, _)| s == scope)
        }
    }
}
