//! The session's life: read the join, enter the room, catch up, then follow the room live in one
//! `select!` loop until the client goes, the server stops, or a limit ends it. Each arm hands its
//! work on: what the client asks to `requests.rs`, the room's deliveries to `live.rs`.
//!
//! `sent_seq` is the last sequence number written to this socket; nothing at or below it is ever
//! written again, and nothing above it is skipped.

use std::sync::Arc;
use std::time::Duration;

use app::limits::RoomName;
use app::moderation::SanctionKind;
use app::protocol::{close_code, ErrorCode, Seq, JOIN_BACKLOG};
use tokio::sync::{broadcast, watch};
use tokio::time::{timeout, Instant};
use tracing::debug;

use super::clock::{Clock, Due};
use super::dialect::{Close, Dialect, Frames, Incoming, JoinRequest, Outgoing, RosterRequest};
use super::identity::{self, Person};
use super::requests::Acks;
use super::signals::Changes;
use super::socket::Socket;
use super::standing::{ban_message, sanction_on};
use super::websocket::upgrade::Connection;
use super::websocket::{Received, WebSocket};
use crate::guard::ClientKey;
use crate::metrics::SlowConsumer;
use crate::room::{Delivery, Member, Membership, RoomError, RoomHandle, RosterPage, SanctionList};
use crate::web::AppState;

/// How long a new socket may take to send its join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, how long a session waits for the outcome of posts already with the room.
pub(super) const ACK_DRAIN: Duration = Duration::from_secs(3);
/// How long the closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a session ended; decides the close frame.
pub(super) enum End {
    /// The client closed or the connection broke: nothing more to send.
    Gone,
    Close(u16, &'static str),
}

pub(super) const RESTARTING: End = End::Close(close_code::SERVICE_RESTART, "server restarting");
pub(super) const ROOM_UNAVAILABLE: End =
    End::Close(close_code::SERVICE_RESTART, "room unavailable");

/// One connection to one room.
pub(super) struct Session<'a, D> {
    pub(super) socket: Socket,
    pub(super) dialect: D,
    pub(super) state: &'a AppState,
    pub(super) room: RoomName,
    /// Who the per-address limits count this client as.
    pub(super) who: ClientKey,
    /// The session cookie's token, if the upgrade carried one (used unless the join has its own).
    pub(super) cookie: Option<String>,
    /// What the dialect wrote and the socket has not yet (reused, so frames cost no allocation).
    pub(super) out: Frames,
}

/// A joined session's side of the room.
pub(super) struct InRoom {
    pub(super) handle: RoomHandle,
    /// Who the member is in the room: the name they joined as, and their verified id.
    pub(super) member: Member,
    /// The person behind the connection (their identity, their per-user connection).
    pub(super) person: Person,
    /// The scope this sender's client ids are stored under.
    pub(super) sender: String,
    pub(super) live: broadcast::Receiver<Arc<Delivery>>,
    /// Held until the session ends: dropping it tells the room this member left.
    _membership: Membership,
    pub(super) sent_seq: Seq,
    /// Posts with the room, answered in order.
    pub(super) acks: Acks,
    /// The roster request with the room (one at a time), and the one asked for since.
    pub(super) roster: Option<RosterFuture>,
    pub(super) roster_next: Option<Box<RosterRequest>>,
    /// When the last roster request went (or goes) to the room.
    pub(super) roster_last: Option<Instant>,
    /// The room's mutes and bans, kept current by the room.
    pub(super) sanctions: watch::Receiver<SanctionList>,
    /// The end of this person's mute as last told to them (`None`: not muted).
    pub(super) muted_until: Option<i64>,
    /// Whether this guest's address has been noted for moderators (once per session).
    pub(super) guest_noted: bool,
    /// When this connection's last `typing` was passed on.
    pub(super) typing_last: Option<Instant>,
}

pub(super) type AckFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = (String, Result<Seq, RoomError>)> + Send>>;
pub(super) type RosterFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = (RosterRequest, Result<RosterPage, RoomError>)> + Send>,
>;

/// Runs a session on an upgraded socket until it ends, then says goodbye.
///
/// Not an `async fn`: its arguments would stay in the task beside the session they are moved
/// into. The task holds one [`Session`] and the step it is at; every step before `follow` is
/// boxed, so the task, alive as long as the connection, is only as big as following the room.
pub(super) fn run<'a, D: Dialect + 'a>(
    connection: Connection,
    room: RoomName,
    (who, cookie): (ClientKey, Option<String>),
    state: &'a AppState,
    dialect: D,
) -> impl std::future::Future<Output = ()> + Send + 'a {
    Session {
        socket: Socket {
            // The largest frame and message a client may send: a maximal chat message,
            // JSON-escaped, fits; nothing much larger does.
            inner: WebSocket::new(connection, state.limits.max_frame_bytes()),
            write_timeout: state.sessions.write_timeout,
        },
        dialect,
        state,
        room,
        who,
        cookie,
        // Most writes are one or two frames.
        out: Vec::with_capacity(2),
    }
    .run()
}

impl<'a, D: Dialect + 'a> Session<'a, D> {
    /// Not an `async fn` either: an `async fn` copies `self` into the task beside its argument.
    /// The block captures the session once and works on it in place.
    fn run(self) -> impl std::future::Future<Output = ()> + Send + 'a {
        let mut session = self;
        async move {
            let end = match session.serve().await {
                Ok(end) | Err(end) => end,
            };
            Box::pin(session.close(end)).await;
            debug!("session ended");
        }
    }
}

impl<D: Dialect> Session<'_, D> {
    async fn serve(&mut self) -> Result<End, End> {
        let mut room = Box::pin(self.admit()).await?;
        self.follow(&mut room).await
    }

    /// The join, the person and the room: everything before following it.
    async fn admit(&mut self) -> Result<InRoom, End> {
        let shutdown = self.state.shutdown.clone();
        let mut join = tokio::select! {
            join = timeout(JOIN_TIMEOUT, self.read_join()) => {
                join.map_err(|_| End::Close(close_code::JOIN_TIMEOUT, "join timeout"))??
            }
            _ = shutdown.cancelled() => return Err(RESTARTING),
        };
        let (person, can_post) = self.identify(&mut join).await?;
        let mut room = self.enter(join, person, can_post).await?;
        self.check_standing(&mut room).await?;
        Ok(room)
    }

    /// Reads frames until the join; a refused join closes the socket.
    async fn read_join(&mut self) -> Result<JoinRequest, End> {
        loop {
            let frame = self.socket.recv().await?;
            let frame = match &frame {
                Received::Text(text) => Incoming::Text(text),
                Received::Binary => Incoming::Binary,
                Received::Ping(_) | Received::Pong => continue,
                Received::Close(_) => return Err(End::Gone),
            };
            match self.dialect.join(frame, &mut self.out) {
                Ok(join) => return Ok(join),
                Err(Close { code, reason }) => {
                    self.socket.write_all(&mut self.out).await?;
                    return Err(End::Close(code, reason));
                }
            }
        }
    }

    /// Enters the room (retrying once if an idle room task was exiting just then), welcomes the
    /// client and catches it up from the engine to the head reported at subscription.
    async fn enter(
        &mut self,
        join: JoinRequest,
        person: Person,
        can_post: bool,
    ) -> Result<InRoom, End> {
        let member = Member {
            name: join.name.clone(),
            user: person.identity.as_ref().map(|i| i.sub.clone()),
        };
        let mut handle = self.open_room().await?;
        let mut joined = handle.join_as(member.clone()).await;
        if let Err(RoomError::Closed) = joined {
            handle = self.open_room().await?;
            joined = handle.join_as(member.clone()).await;
        }
        let joined = match joined {
            Ok(joined) => joined,
            Err(RoomError::NameTaken) => {
                let message = format!("Someone signed in as “{}” is in this room, so a guest cannot use that name. Choose another.", join.name);
                let close = (close_code::NAME_TAKEN, "name taken");
                return Err(self.refuse(ErrorCode::NameTaken, message, close).await);
            }
            Err(RoomError::RoomFull) => {
                let message = "This room is full right now. Try again later.".to_owned();
                let close = (close_code::ROOM_FULL, "room full");
                return Err(self
                    .refuse(ErrorCode::TooManyConnections, message, close)
                    .await);
            }
            Err(RoomError::Closed | RoomError::Unavailable) => return Err(ROOM_UNAVAILABLE),
        };
        let banned = {
            let sanctions = joined.sanctions.borrow();
            sanction_on(&sanctions, &person, &self.who, SanctionKind::Ban).map(ban_message)
        };
        if let Some(message) = banned {
            let close = (close_code::BANNED, "banned");
            return Err(self.refuse(ErrorCode::Banned, message, close).await);
        }
        self.dialect.encode(
            Outgoing::Welcome {
                room: &self.room,
                name: &join.name,
                head: joined.head,
                roster: &joined.roster,
                user_id: member.user.as_deref(),
                can_post,
            },
            &mut self.out,
        );
        if joined.degraded {
            self.dialect.encode(Outgoing::Degraded, &mut self.out);
        }
        self.socket.write_all(&mut self.out).await?;
        let mut sent_seq = match join.after_seq {
            Some(seq) => seq.min(joined.head),
            None => joined.head.saturating_sub(JOIN_BACKLOG as Seq),
        };
        self.catch_up(&mut sent_seq, Some(joined.head)).await?;
        self.dialect.encode(Outgoing::CaughtUp, &mut self.out);
        self.socket.write_all(&mut self.out).await?;
        Ok(InRoom {
            handle,
            member,
            person,
            sender: join.sender,
            live: joined.live,
            _membership: joined.membership,
            sent_seq,
            acks: Acks::default(),
            roster: None,
            roster_next: None,
            roster_last: None,
            sanctions: joined.sanctions,
            muted_until: None,
            guest_noted: false,
            typing_last: None,
        })
    }

    /// The room's task, unless this node has as many rooms open as it may: then the client is
    /// told so and the session ends.
    async fn open_room(&mut self) -> Result<RoomHandle, End> {
        match self.state.rooms.get(&self.room) {
            Ok(handle) => Ok(handle),
            Err(_) => {
                self.dialect.encode(Outgoing::Busy, &mut self.out);
                self.socket.write_all(&mut self.out).await?;
                Err(End::Close(close_code::SERVER_BUSY, "too many rooms"))
            }
        }
    }

    /// Follows the room live: the client's frames, acknowledgements, the room's deliveries, pings.
    /// Everything but the socket, the acks and the deliveries is waited for by futures made once
    /// (see `signals.rs`): a turn of this loop registers nothing anew.
    async fn follow(&mut self, room: &mut InRoom) -> Result<End, End> {
        // By reference: a copy would be in the task for the session's life.
        let state = self.state;
        let settings = &state.sessions;
        let shutdown = self.state.shutdown.clone().cancelled_owned();
        tokio::pin!(shutdown);
        // The next ping, the end of the client's allowed silence (dropping the membership takes
        // it off the roster) and the sign-in's expiry, on one timer.
        let mut clock = Clock::new(
            Instant::now(),
            settings.ping_interval,
            settings.peer_timeout,
            room.person.expires(self.state),
        );
        let timer = tokio::time::sleep_until(clock.next());
        tokio::pin!(timer);
        let mut revocations = identity::revocations(self.state, &room.person);
        let mut sanctions = Changes::new(room.sanctions.clone());
        loop {
            tokio::select! {
                _ = &mut shutdown => return Box::pin(self.drain(room)).await,
                () = &mut timer => {
                    match clock.due(Instant::now()) {
                        Due::Expired => {
                            let message = "Your sign-in has expired. Sign in again to keep chatting; what you typed is kept.".to_owned();
                            return Ok(Box::pin(self.refuse(ErrorCode::SignInExpired, message, (close_code::SIGN_IN_EXPIRED, "sign-in expired"))).await);
                        }
                        Due::Silent => {
                            debug!("peer silent past the timeout");
                            return Ok(End::Close(close_code::PEER_TIMEOUT, "no response"));
                        }
                        Due::Ping => self.socket.ping().await?,
                        Due::Nothing => {}
                    }
                    timer.as_mut().reset(clock.next());
                }
                frame = self.socket.recv(), if room.acks.len() < settings.max_pending => {
                    clock.heard(Instant::now());
                    // Boxed (as every rare step below): what a frame can ask for (a post, an
                    // edit, a moderator's delete) would otherwise size every idle session.
                    if let Some(end) = Box::pin(self.on_frame(frame, room)).await? {
                        return Ok(end);
                    }
                }
                Some((client_id, result)) = room.acks.next() => self.on_ack(client_id, result).await?,
                answer = super::requests::pending(&mut room.roster), if room.roster.is_some() => {
                    let (request, page) = *answer;
                    Box::pin(self.on_roster(request, page, room)).await?;
                }
                delivery = room.live.recv() => self.on_delivery(delivery, room).await?,
                () = sanctions.changed() => Box::pin(self.check_standing(room)).await?,
                () = identity::revocations_changed(&mut revocations) => {
                    if room.person.is_revoked(self.state) {
                        let message = "Your sign-in was revoked. Sign in again to keep chatting.".to_owned();
                        return Ok(Box::pin(self.refuse(ErrorCode::SignInExpired, message, (close_code::SIGN_IN_EXPIRED, "sign-in revoked"))).await);
                    }
                }
            }
        }
    }

    /// Sends the close frame an ending asks for and finishes the closing handshake.
    async fn close(&mut self, end: End) {
        let End::Close(code, reason) = end else {
            return;
        };
        if code == close_code::TOO_SLOW {
            self.state.metrics.slow_consumer(SlowConsumer::Disconnected);
        }
        self.socket.close(code, reason, CLOSE_TIMEOUT).await;
    }
}
