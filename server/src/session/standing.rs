//! A session under the room's mutes and bans (`room::SanctionList`, kept current by the room):
//! a banned person is refused at join and disconnected the moment a ban (or kick) is made on any
//! node; a muted person is told (`standing`), and their posts and edits are refused in plain
//! words (they may still delete their own messages). A verified person is matched by user id, a guest by address; a guest's address is
//! noted at their first post so that a moderator can act on their messages.

use app::moderation::{Sanction, SanctionKind, Target, KICK_SECS};
use app::protocol::{close_code, ErrorCode};

use super::dialect::{Dialect, Outgoing};
use super::identity::Person;
use super::run::{End, InRoom, Session};
use crate::guard::ClientKey;

/// The `kind` sanction in force on this person, if any (address sanctions apply to guests only:
/// verified people are moderated by their id, wherever they connect from).
pub(super) fn sanction_on<'a>(
    list: &'a [Sanction],
    person: &Person,
    address: &ClientKey,
    kind: SanctionKind,
) -> Option<&'a Sanction> {
    let now = crate::engine::retention::now_ms();
    let address = address.to_string();
    list.iter().find(|s| {
        s.kind == kind
            && s.is_active(now)
            && match (&s.target, &person.identity) {
                (Target::User(id), Some(identity)) => *id == identity.sub,
                (Target::Address(prefix), None) => *prefix == address,
                _ => false,
            }
    })
}

/// How long until `until_ms`, in words: "2 h 5 min", "3 days".
pub(super) fn time_left(until_ms: i64) -> String {
    let left = (until_ms - crate::engine::retention::now_ms()).max(0) / 1000;
    let minutes = (left + 59) / 60;
    match minutes {
        0..=1 => "a minute".to_owned(),
        2..=59 => format!("{minutes} min"),
        60..=2879 => match minutes % 60 {
            0 => format!("{} h", minutes / 60),
            m => format!("{} h {m} min", minutes / 60),
        },
        _ => format!("{} days", (minutes + 1439) / 1440),
    }
}

fn with_reason(sentence: String, sanction: &Sanction) -> String {
    if sanction.reason.is_empty() {
        sentence
    } else {
        format!("{sentence} Reason: {}", sanction.reason)
    }
}

/// Why a banned (or kicked) person may not be here, in words for them.
pub(super) fn ban_message(ban: &Sanction) -> String {
    let sentence = if ban.until_ms - ban.at_ms <= KICK_SECS * 1000 {
        "A moderator removed you from this room. You can come back in a minute.".to_owned()
    } else {
        format!(
            "A moderator banned you from this room for {}.",
            time_left(ban.until_ms)
        )
    };
    with_reason(sentence, ban)
}

/// Why a muted person's post was refused.
pub(super) fn mute_message(mute: &Sanction) -> String {
    let sentence = format!(
        "A moderator muted you here: you can read, and post again in {}.",
        time_left(mute.until_ms)
    );
    with_reason(sentence, mute)
}

impl<D: Dialect> Session<'_, D> {
    /// Checks this person against the room's sanctions: ends the session if they are banned,
    /// tells them if their mute began, changed or ended.
    pub(super) async fn check_standing(&mut self, room: &mut InRoom) -> Result<(), End> {
        let list = room.sanctions.borrow_and_update().clone();
        if let Some(ban) = sanction_on(&list, &room.person, &self.who, SanctionKind::Ban) {
            let message = ban_message(ban);
            return Err(self
                .refuse(ErrorCode::Banned, message, (close_code::BANNED, "banned"))
                .await);
        }
        let mute = sanction_on(&list, &room.person, &self.who, SanctionKind::Mute);
        let until = mute.map(|m| m.until_ms);
        if until != room.muted_until {
            room.muted_until = until;
            let reason = mute.map(|m| m.reason.clone()).filter(|r| !r.is_empty());
            self.dialect.encode(
                Outgoing::Standing {
                    muted_until_ms: until,
                    reason,
                },
                &mut self.out,
            );
            self.socket.write_all(&mut self.out).await?;
        }
        Ok(())
    }

    /// If this person is muted, refuses the post `client_id` and says so (`true`).
    pub(super) fn refuse_if_muted(&mut self, client_id: &str, room: &InRoom) -> bool {
        let list = room.sanctions.borrow();
        let Some(mute) = sanction_on(&list, &room.person, &self.who, SanctionKind::Mute) else {
            return false;
        };
        let refusal = Outgoing::Refused {
            code: ErrorCode::Muted,
            message: mute_message(mute),
            client_id: Some(client_id.to_owned()),
        };
        drop(list);
        self.state
            .metrics
            .rejected(crate::metrics::Rejection::Forbidden);
        self.dialect.encode(refusal, &mut self.out);
        true
    }

    /// Notes, once per session, the address a guest posts from (see the module's doc).
    pub(super) fn note_guest(&self, room: &mut InRoom) {
        if room.person.identity.is_some() || room.guest_noted {
            return;
        }
        room.guest_noted = true;
        let store = self.state.rooms.moderation().clone();
        let (name, scope, address) = (self.room.clone(), room.sender.clone(), self.who.to_string());
        tokio::spawn(async move {
            let now = crate::engine::retention::now_ms();
            if let Err(e) = store.note_guest(&name, &scope, &address, now).await {
                tracing::debug!(error = %e, "cannot note a guest's address");
            }
        });
    }
}
