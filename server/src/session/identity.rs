//! Who a session is and what it may do: the identity its token proves (the join frame's, else the
//! session cookie's) under `--auth`, the per-user connection cap, and the room's rules for
//! reading (at join) and posting (at every post, so a change of rules holds at once).

use app::limits::RoomName;
use app::protocol::{close_code, ErrorCode};
use tokio::time::Instant;

use super::dialect::{Dialect, JoinRequest, Outgoing};
use super::run::{End, Session};
use super::signals::Changes;
use crate::auth::{access, AuthMode, Identity};
use crate::guard::UserPermit;
use crate::web::AppState;

/// A session's person: verified or a guest.
pub(super) struct Person {
    /// Boxed: most people in most rooms are guests, and this lives as long as the session.
    pub(super) identity: Option<Box<Identity>>,
    /// The owner key of a room a guest created (checked against the room's rules).
    pub(super) owner_key: Option<String>,
    /// Counts towards `--max-connections-per-user` until the session ends.
    pub(super) _permit: Option<UserPermit>,
}

impl Person {
    /// When the connection ends for its token's expiry (with the clock leeway verification
    /// allows): never for a guest.
    pub(super) fn expires(&self, state: &AppState) -> Option<Instant> {
        let identity = self.identity.as_ref()?;
        let now = crate::engine::retention::now_ms();
        let left = identity.expires_at_ms.saturating_sub(now).max(0) as u64;
        Some(Instant::now() + std::time::Duration::from_millis(left) + state.auth.leeway)
    }

    /// Whether a revocation since the join covers this person's token.
    pub(super) fn is_revoked(&self, state: &AppState) -> bool {
        match (&self.identity, &state.auth.verifier) {
            (Some(identity), Some(verifier)) => verifier.revocations().is_revoked(identity),
            _ => false,
        }
    }
}

/// What a person would own a new private room as: their user id, else their owner key.
fn claim_as(person: &Person) -> Option<app::rules::Owner> {
    match (&person.identity, &person.owner_key) {
        (Some(identity), _) => Some(app::rules::Owner::User(identity.sub.clone())),
        (None, Some(key)) => Some(app::rules::Owner::KeyHash(access::owner_key_hash(key))),
        (None, None) => None,
    }
}

/// The revocations to watch, for a verified person.
pub(super) fn revocations(state: &AppState, person: &Person) -> Option<Changes<u64>> {
    person.identity.as_ref()?;
    let watch = state.auth.verifier.as_ref()?.revocations().subscribe();
    Some(Changes::new(watch))
}

/// Resolves when the revocations change (never without any to watch; nor once the server is
/// going away: shutdown ends the session).
pub(super) async fn revocations_changed(changes: &mut Option<Changes<u64>>) {
    match changes {
        Some(changes) => changes.changed().await,
        None => std::future::pending().await,
    }
}

impl<D: Dialect> Session<'_, D> {
    /// The join's person: verifies its token under the server's mode (a verified person's name
    /// is the token's), counts them towards the per-user cap, and checks the room lets them read.
    /// Returns whether they may post there too.
    pub(super) async fn identify(&mut self, join: &mut JoinRequest) -> Result<(Person, bool), End> {
        let auth = self.state.auth.clone();
        let token = join.token.take().or_else(|| self.cookie.take());
        let identity = match token {
            Some(token) if auth.mode != AuthMode::Off => match auth.verify(&token).await {
                Ok(identity) => Some(identity),
                Err(e) if e.is_stale() => {
                    let close = (close_code::SIGN_IN_EXPIRED, "sign in again");
                    return Err(self
                        .refuse(ErrorCode::SignInExpired, e.to_string(), close)
                        .await);
                }
                Err(e) => {
                    let close = (close_code::SIGN_IN_REQUIRED, "invalid token");
                    return Err(self
                        .refuse(ErrorCode::SignInRequired, e.to_string(), close)
                        .await);
                }
            },
            _ => None,
        };
        if identity.is_none() && !auth.guests_may_connect() {
            let message = "This chat is for signed-in people. Sign in to join.".to_owned();
            let close = (close_code::SIGN_IN_REQUIRED, "sign in required");
            return Err(self.refuse(ErrorCode::SignInRequired, message, close).await);
        }
        let permit = match &identity {
            Some(identity) => {
                join.name.clone_from(&identity.name);
                match self.state.guard.open_user_connection(&identity.sub).await {
                    Some(permit) => Some(permit),
                    None => {
                        let message = "You have as many connections open as you may. Close another tab or device, then try again.".to_owned();
                        let close = (close_code::TOO_MANY_CONNECTIONS, "too many connections");
                        return Err(self
                            .refuse(ErrorCode::TooManyConnections, message, close)
                            .await);
                    }
                }
            }
            None => None,
        };
        let person = Person {
            identity: identity.map(Box::new),
            owner_key: join.owner_key.take(),
            _permit: permit,
        };
        let mut rules = self
            .state
            .access
            .rules(&self.room)
            .await
            .map_err(|_| super::run::ROOM_UNAVAILABLE)?;
        if rules.owner.is_none() && self.room.is_private() {
            if let Some(owner) = claim_as(&person) {
                let access = &self.state.access;
                let history = self.state.rooms.history().as_ref();
                if let Ok(true) = access
                    .claim_new_private_room(&self.room, history, owner)
                    .await
                {
                    rules = access
                        .rules(&self.room)
                        .await
                        .map_err(|_| super::run::ROOM_UNAVAILABLE)?;
                }
            }
        }
        let who = access::who(
            person.identity.as_deref(),
            &self.room,
            &rules,
            person.owner_key.as_deref(),
        );
        if !rules.may_read(&who) {
            let message = if who.user.is_none() {
                "This room is for signed-in members only. Sign in to join it."
            } else {
                "This room is for its members only."
            };
            let close = (close_code::FORBIDDEN, "not a member");
            return Err(self
                .refuse(ErrorCode::Forbidden, message.to_owned(), close)
                .await);
        }
        let can_post = (who.user.is_some() || auth.guests_may_post()) && rules.may_post(&who);
        Ok((person, can_post))
    }
}

/// Why `person` may not post in `room` now, in words for them (`None`: they may).
pub(super) async fn post_refusal(
    state: &AppState,
    room: &RoomName,
    person: &Person,
) -> Option<(ErrorCode, &'static str)> {
    {
        if person.identity.is_none() && !state.auth.guests_may_post() {
            return Some((ErrorCode::SignInRequired, "Sign in to post here."));
        }
        let Ok(rules) = state.access.rules(room).await else {
            return Some((
                ErrorCode::Unavailable,
                "Not saved yet: the server cannot check this room's rules right now. It will be sent again by itself.",
            ));
        };
        let who = access::who(
            person.identity.as_deref(),
            room,
            &rules,
            person.owner_key.as_deref(),
        );
        if rules.may_post(&who) {
            None
        } else if rules.may_read(&who) {
            Some((
                ErrorCode::Forbidden,
                "Only some people may post in this room; you can read it.",
            ))
        } else {
            Some((ErrorCode::Forbidden, "This room is for its members only."))
        }
    }
}

/// With the room in slow mode: the mode's interval and how long until `person` may post again,
/// if they must wait (moderators and the owner never do). A verified person counts by user id,
/// a guest by address.
pub(super) async fn slow_mode_wait(
    state: &AppState,
    room: &RoomName,
    person: &Person,
    address: crate::guard::ClientKey,
) -> Option<(std::time::Duration, std::time::Duration)> {
    let rules = state.access.rules(room).await.ok()?;
    if rules.slow_mode_secs == 0 {
        return None;
    }
    let who = access::who(
        person.identity.as_deref(),
        room,
        &rules,
        person.owner_key.as_deref(),
    );
    if rules.moderates(&who) {
        return None;
    }
    let every = std::time::Duration::from_secs(u64::from(rules.slow_mode_secs));
    let key = match &person.identity {
        Some(identity) => format!("user:{}", identity.sub),
        None => address.to_string(),
    };
    let wait = state
        .guard
        .check_slow_mode(room.as_str(), &key, every)
        .await;
    wait.err().map(|retry_after| (every, retry_after))
}

impl<D: Dialect> Session<'_, D> {
    /// Tells the client why, then ends with `close`.
    pub(super) async fn refuse(
        &mut self,
        code: ErrorCode,
        message: String,
        (close, reason): (u16, &'static str),
    ) -> End {
        let refused = Outgoing::Refused {
            code,
            message,
            client_id: None,
        };
        self.dialect.encode(refused, &mut self.out);
        match self.socket.write_all(&mut self.out).await {
            Ok(()) => End::Close(close, reason),
            Err(end) => end,
        }
    }
}
