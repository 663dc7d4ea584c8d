//! What a joined client asks, and the room's answers: posts (through the rate limit, answered in
//! order with their acknowledgements) and roster pages (one at a time, a few a second).

use std::time::Duration;

use app::protocol::Seq;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use tokio::time::Instant;

use super::dialect::{Dialect, Incoming, Outgoing, Request, RosterRequest};
use super::run::{
    AckFuture, End, InRoom, RosterFuture, Session, ACK_DRAIN, RESTARTING, ROOM_UNAVAILABLE,
};
use super::websocket::Received;
use crate::metrics::Rejection;
use crate::room::{RoomError, RosterPage, SendReply};

impl<D: Dialect> Session<'_, D> {
    /// A frame from the client: a post goes to the room, anything else is answered.
    pub(super) async fn on_frame(
        &mut self,
        frame: Result<Received, End>,
        room: &mut InRoom,
    ) -> Result<Option<End>, End> {
        let frame = match frame {
            Ok(frame) => frame,
            Err(end) => return Ok(Some(end)),
        };
        let frame = match &frame {
            Received::Text(text) => Incoming::Text(text),
            Received::Binary => Incoming::Binary,
            Received::Close(_) => return Ok(Some(End::Gone)),
            Received::Ping(_) | Received::Pong => return Ok(None),
        };
        match self.dialect.request(frame, &mut self.out) {
            Some(Request::Post { client_id, text }) => self.post(client_id, text, room).await?,
            Some(Request::Change {
                client_id,
                seq,
                text,
            }) => self.change(client_id, seq, text, room).await?,
            Some(Request::Roster(request)) => ask_roster(request, room),
            Some(Request::Typing) => self.typing(room),
            None => {}
        }
        self.socket.write_all(&mut self.out).await?;
        Ok(None)
    }

    /// Hands a post to the room, unless the rate limit refuses it.
    async fn post(
        &mut self,
        client_id: String,
        text: String,
        room: &mut InRoom,
    ) -> Result<(), End> {
        let refusal = super::identity::post_refusal(self.state, &self.room, &room.person).await;
        if let Some((code, message)) = refusal {
            self.state.metrics.rejected(Rejection::Forbidden);
            let refusal = Outgoing::Refused {
                code,
                message: message.to_owned(),
                client_id: Some(client_id),
            };
            self.dialect.encode(refusal, &mut self.out);
            return Ok(());
        }
        if self.refuse_if_muted(&client_id, room) {
            return Ok(());
        }
        let user = room.person.identity.as_ref().map(|i| i.sub.as_str());
        if !self.spend_post_budget(&client_id, user).await {
            return Ok(());
        }
        self.note_guest(room);
        let slow = super::identity::slow_mode_wait(self.state, &self.room, &room.person, self.who);
        if let Some((every, retry_after)) = slow.await {
            self.state.metrics.rejected(Rejection::RateLimited);
            let refusal = Outgoing::SlowMode {
                client_id,
                every,
                retry_after,
            };
            self.dialect.encode(refusal, &mut self.out);
            return Ok(());
        }
        let scoped = format!("{}/{client_id}", room.sender);
        let reply = room
            .handle
            .send_as(room.member.clone(), scoped, text)
            .await
            .map_err(|_| ROOM_UNAVAILABLE)?;
        room.acks.push_back(ack_future(client_id, reply));
        Ok(())
    }

    /// Passes on that the person is typing: at most once per [`TYPING_GAP`] per connection (more
    /// are dropped, so typing cannot flood a room), never for a muted person.
    fn typing(&mut self, room: &mut InRoom) {
        let now = Instant::now();
        if room.typing_last.is_some_and(|last| now - last < TYPING_GAP) {
            self.state.metrics.rejected(Rejection::RateLimited);
            return;
        }
        let list = room.sanctions.borrow();
        let muted = super::standing::sanction_on(
            &list,
            &room.person,
            &self.who,
            app::moderation::SanctionKind::Mute,
        )
        .is_some();
        drop(list);
        if muted {
            return;
        }
        room.typing_last = Some(now);
        room.handle.typing(&room.member.name);
    }

    /// Spends one post from the address's budget and the verified user's; when either is spent,
    /// tells the client when to send `client_id` again and says no.
    pub(super) async fn spend_post_budget(&mut self, client_id: &str, user: Option<&str>) -> bool {
        let mut budget = self.state.guard.check_post(self.who).await;
        if let (Ok(()), Some(user)) = (&budget, user) {
            budget = self.state.guard.check_user_post(user).await;
        }
        let Err(retry_after) = budget else {
            return true;
        };
        self.state.metrics.rejected(Rejection::RateLimited);
        let refusal = Outgoing::RateLimited {
            client_id: client_id.to_owned(),
            retry_after,
        };
        self.dialect.encode(refusal, &mut self.out);
        false
    }

    /// The room answered a roster request: pass it on, and ask the next one if any waits.
    pub(super) async fn on_roster(
        &mut self,
        request: RosterRequest,
        page: Result<RosterPage, RoomError>,
        room: &mut InRoom,
    ) -> Result<(), End> {
        room.roster = None;
        let page = page.map_err(|_| ROOM_UNAVAILABLE)?;
        self.dialect
            .encode(Outgoing::Roster { page, request }, &mut self.out);
        if let Some(next) = room.roster_next.take() {
            ask_roster(*next, room);
        }
        self.socket.write_all(&mut self.out).await
    }

    pub(super) async fn on_ack(
        &mut self,
        client_id: String,
        result: Result<Seq, RoomError>,
    ) -> Result<(), End> {
        if result.is_err() {
            self.state.metrics.rejected(Rejection::Unavailable);
        }
        self.dialect
            .encode(Outgoing::Ack { client_id, result }, &mut self.out);
        self.socket.write_all(&mut self.out).await
    }

    /// Shutdown: stop reading; answer what is already with the room (it commits before it
    /// stops), then ask the client to reconnect.
    pub(super) async fn drain(&mut self, room: &mut InRoom) -> Result<End, End> {
        let deadline = Instant::now() + ACK_DRAIN;
        while let Ok(Some((client_id, result))) =
            tokio::time::timeout_at(deadline, room.acks.next()).await
        {
            self.dialect
                .encode(Outgoing::Ack { client_id, result }, &mut self.out);
            self.socket.write_all(&mut self.out).await?;
        }
        Ok(RESTARTING)
    }
}

/// Posts with the room, answered in order. Holds no allocation while none is pending, as most
/// sessions most of the time (an empty `FuturesOrdered` keeps two).
#[derive(Default)]
pub(super) struct Acks(Option<Box<FuturesOrdered<AckFuture>>>);

impl Acks {
    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |acks| acks.len())
    }

    pub(super) fn push_back(&mut self, ack: AckFuture) {
        self.0.get_or_insert_with(Box::default).push_back(ack);
    }

    /// The next answer in order; `None` at once when none is pending (as an empty stream).
    /// Cancel-safe.
    pub(super) async fn next(&mut self) -> Option<(String, Result<Seq, RoomError>)> {
        let next = self.0.as_mut()?.next().await;
        if self.0.as_ref().is_some_and(|acks| acks.is_empty()) {
            self.0 = None;
        }
        next
    }
}

/// The shortest gap between two `typing` signals of one connection passed on: clients send one
/// every [`app::protocol::TYPING_EVERY_MS`]; a little slack for timers.
const TYPING_GAP: Duration = Duration::from_millis(app::protocol::TYPING_EVERY_MS - 500);

/// Roster requests one session may have the room answer per second at most (a page costs the room
/// a pass over its roster).
const ROSTER_REQUESTS_PER_SECOND: u32 = 4;

/// Asks the room for a roster page, or keeps the request (replacing an older one waiting) until
/// the one with the room is answered: at most one per session is with the room, and they go to
/// the room no faster than [`ROSTER_REQUESTS_PER_SECOND`].
fn ask_roster(request: RosterRequest, room: &mut InRoom) {
    if room.roster.is_some() {
        room.roster_next = Some(Box::new(request));
        return;
    }
    let now = Instant::now();
    let at = room
        .roster_last
        .map_or(now, |last| {
            last + Duration::from_secs(1) / ROSTER_REQUESTS_PER_SECOND
        })
        .max(now);
    room.roster_last = Some(at);
    let handle = room.handle.clone();
    room.roster = Some(Box::pin(async move {
        tokio::time::sleep_until(at).await;
        let page = handle
            .roster(request.after.clone(), request.query.clone())
            .await;
        (request, page)
    }));
}

/// The pending roster answer (pending forever without one).
///
/// Boxed: the loop's `select!` keeps room for the largest of its arms' outputs, and a page is
/// the largest by far.
pub(super) async fn pending(
    roster: &mut Option<RosterFuture>,
) -> Box<(RosterRequest, Result<RosterPage, RoomError>)> {
    match roster {
        Some(future) => Box::new(future.await),
        None => std::future::pending().await,
    }
}

pub(super) fn ack_future(client_id: String, reply: SendReply) -> AckFuture {
    Box::pin(async move { (client_id, reply.await.unwrap_or(Err(RoomError::Closed))) })
}
