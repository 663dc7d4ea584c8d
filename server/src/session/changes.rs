//! Edits and deletes: who may change which message — its author within the edit window (a
//! verified author by user id, a guest by the scope of the sender key their browser keeps), and
//! moderators, who may delete any — checked against the stored message before the change goes to
//! the room as the next entry of its sequence. They pass the same rate limits as posts.

use app::moderation::{Action, AuditEntry};
use app::protocol::{ErrorCode, Seq};

use app::limits::RoomName;

use super::dialect::{Dialect, Outgoing};
use super::identity::{self, Person};
use super::run::{End, InRoom, Session, ROOM_UNAVAILABLE};
use crate::auth::access;
use crate::metrics::Rejection;
use crate::redact::LogName;
use crate::web::AppState;

impl<D: Dialect> Session<'_, D> {
    /// An edit (`Some(text)`) or a delete of message `target`, if this person may make it.
    pub(super) async fn change(
        &mut self,
        client_id: String,
        target: Seq,
        text: Option<String>,
        room: &mut InRoom,
    ) -> Result<(), End> {
        // A muted person may still take their own words back.
        if text.is_some() && self.refuse_if_muted(&client_id, room) {
            return Ok(());
        }
        let (person, sender) = (&room.person, room.sender.as_str());
        let checked = may_change(
            self.state,
            &self.room,
            person,
            sender,
            target,
            text.is_some(),
        )
        .await;
        let moderated = match checked {
            Ok(moderated) => moderated,
            Err((code, message)) => {
                self.state.metrics.rejected(Rejection::Forbidden);
                let refusal = Outgoing::Refused {
                    code,
                    message,
                    client_id: Some(client_id),
                };
                self.dialect.encode(refusal, &mut self.out);
                return Ok(());
            }
        };
        let user = room.person.identity.as_ref().map(|i| i.sub.as_str());
        if !self.spend_post_budget(&client_id, user).await {
            return Ok(());
        }
        if let Some(author) = moderated {
            let entry = delete_entry(&room.member, target, author);
            let store = self.state.rooms.moderation().clone();
            let name = self.room.clone();
            if let Err(e) = store.record(&name, &entry).await {
                tracing::warn!(room = %name.logged(), error = %e, "a moderator's delete was not written to the audit log");
            }
        }
        let scoped = format!("{}/{client_id}", room.sender);
        let reply = room
            .handle
            .change_as(room.member.clone(), scoped, target, text)
            .await
            .map_err(|_| ROOM_UNAVAILABLE)?;
        room.acks
            .push_back(super::requests::ack_future(client_id, reply));
        Ok(())
    }
}

/// A moderator's delete of `author`'s message `target`, for the room's audit log.
fn delete_entry(by: &crate::room::Member, target: Seq, author: String) -> AuditEntry {
    AuditEntry {
        at_ms: crate::engine::retention::now_ms(),
        by: by.name.clone(),
        by_user: by.user.clone(),
        action: Action::Delete,
        name: author,
        target: None,
        until_ms: None,
        seq: Some(target),
        count: None,
        reason: String::new(),
    }
}

/// Whether `person` (whose client ids are scoped by `sender`) may edit (or delete) message
/// `target` of `name`, and why not. A moderator deleting someone else's message gets its
/// author's name, for the audit log.
async fn may_change(
    state: &AppState,
    name: &RoomName,
    person: &Person,
    sender: &str,
    target: Seq,
    edit: bool,
) -> Result<Option<String>, (ErrorCode, String)> {
    let unavailable = || {
        (
            ErrorCode::Unavailable,
            "The message cannot be changed right now. Try again shortly.".to_owned(),
        )
    };
    let found = state
        .rooms
        .history()
        .after(name, target.saturating_sub(1), 1)
        .await
        .map_err(|_| unavailable())?;
    let Some(message) = found
        .into_iter()
        .next()
        .filter(|m| m.seq == target && m.kind.is_message())
    else {
        return Err((
            ErrorCode::InvalidMessage,
            format!("There is no message {target} here to change."),
        ));
    };
    if message.deleted {
        return Err((
            ErrorCode::InvalidMessage,
            "That message was deleted.".into(),
        ));
    }
    let own = match (&message.user_id, &person.identity) {
        (Some(author), Some(me)) => *author == me.sub,
        (None, None) => message
            .client_id
            .split_once('/')
            .is_some_and(|(scope, _)| scope == sender),
        _ => false,
    };
    let window = state.sessions.edit_window;
    let age = crate::engine::retention::now_ms().saturating_sub(message.sent_at_ms);
    let in_window = u128::try_from(age).unwrap_or(0) <= window.as_millis();
    let minutes = window.as_secs().div_ceil(60);
    if edit {
        if !own {
            return Err((
                ErrorCode::Forbidden,
                "You can only edit your own messages.".into(),
            ));
        }
        if !in_window {
            let why = format!("Messages can be edited for {minutes} min after they are sent.");
            return Err((ErrorCode::Forbidden, why));
        }
        return match identity::post_refusal(state, name, person).await {
            Some((code, why)) => Err((code, why.to_owned())),
            None => Ok(None),
        };
    }
    if own && in_window {
        return Ok(None);
    }
    let rules = state.access.rules(name).await.map_err(|_| unavailable())?;
    let who = access::who(
        person.identity.as_deref(),
        name,
        &rules,
        person.owner_key.as_deref(),
    );
    if rules.moderates(&who) {
        return Ok((!own).then_some(message.sender));
    }
    let why = if own {
        format!("Messages can be deleted for {minutes} min after they are sent.")
    } else {
        "You can only delete your own messages.".to_owned()
    };
    Err((ErrorCode::Forbidden, why))
}
