//! One room's hub: a task that owns the room's state and is this node's only writer of the room.
//! Sessions talk to it through a [`RoomHandle`]; nothing here knows about axum or sockets, so each
//! part is tested in-process on paused time.
//!
//! The parts, around one actor (`actor.rs`, the command loop):
//! - `commit.rs`: batching, dedupe by client id, the engine's numbering, delivery. `send`
//!   commands are gathered into batches (group commit); a batch is committed and only then
//!   acknowledged and broadcast, so nobody sees a message that is not stored and live order is
//!   history order.
//! - `presence.rs`: who is here (this node's people and other nodes'), with joins and leaves
//!   coalesced over [`PRESENCE_COALESCE`].
//! - `link.rs`: the link to other nodes sharing the engine (their heads, their rosters).
//! - `health.rs`: degraded mode. When the engine cannot be reached, the room tells its clients
//!   (`status`), refuses sends at once (clients keep them and send again) and probes the engine
//!   every [`PROBE_INTERVAL`] until it answers.
//! - `fanout.rs`: what goes out to every session, on a bounded broadcast channel. The room never
//!   waits for a reader; a reader more than [`FANOUT_CAPACITY`] behind catches up from the engine
//!   by sequence number (see `session`).
//! - `standing.rs`: the room's mutes and bans, read again whenever a moderator changes them and
//!   handed to sessions on a `watch` channel.

use std::sync::Arc;
use std::time::Duration;

use app::limits::RoomName;
use app::protocol::{EntryKind, ErrorCode, Seq};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::Engine;
use crate::metrics::Metrics;

mod actor;
mod commit;
mod fanout;
mod health;
mod link;
#[cfg(test)]
mod membership_tests;
mod presence;
#[cfg(test)]
mod properties;
mod standing;
#[cfg(test)]
mod tests;

pub use fanout::{Delivery, PresenceChange, RoomEvent, RosterPage, Wire, FANOUT_CAPACITY};
pub use health::PROBE_INTERVAL;
pub use presence::PRESENCE_COALESCE;
pub use standing::SanctionList;

/// Commands queued for one room before senders wait (backpressure on sessions).
const COMMAND_QUEUE: usize = 1024;

/// Held by a session for as long as its member is in the room; dropping it is the leave.
pub struct Membership {
    _left: oneshot::Sender<()>,
}

/// Why a room refused a command.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RoomError {
    /// The room task is gone (idle eviction raced the command, or shutdown). Callers retry once
    /// through the registry, which starts a fresh task.
    #[error("room closed")]
    Closed,
    /// The engine failed; nothing was accepted.
    #[error("storage unavailable")]
    Unavailable,
    /// A guest asked for a name a verified person holds in the room.
    #[error("name held by a verified person")]
    NameTaken,
    /// The room has `--max-connections-per-room` connections (on every node together).
    #[error("room full")]
    RoomFull,
}

impl RoomError {
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Unavailable
    }
}

/// What a session gets when it joins.
pub struct Joined {
    /// Last committed sequence number when the subscription was made: everything up to it is in the
    /// engine, everything after it arrives on `live`.
    pub head: Seq,
    pub live: broadcast::Receiver<Arc<Delivery>>,
    /// The first page of who is in the room right now (the joiner included).
    pub roster: RosterPage,
    /// Keep for as long as the member is in the room.
    pub membership: Membership,
    /// Whether the room cannot store messages right now (its engine is unreachable).
    pub degraded: bool,
    /// The room's mutes and bans, kept current.
    pub sanctions: watch::Receiver<SanctionList>,
}

/// What the room answers a join with (see [`Joined`]).
struct JoinReply {
    head: Seq,
    live: broadcast::Receiver<Arc<Delivery>>,
    roster: RosterPage,
    degraded: bool,
    sanctions: watch::Receiver<SanctionList>,
}

/// The outcome of a send: its sequence number once committed.
pub type SendReply = oneshot::Receiver<Result<Seq, RoomError>>;

/// What sessions ask of a room. Kept small (the queue's first block is allocated with the room).
enum Command {
    Join(Box<JoinCommand>),
    Send(Box<SendCommand>),
    Roster(Box<RosterCommand>),
    /// A moderator changed the room's mutes or bans: read them again.
    Moderated,
    /// Someone here is typing.
    Typing(Box<str>),
}

/// Who is joining: a display name, and for a verified person their user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// The verified user id (`sub`); `None` for a guest.
    pub user: Option<String>,
}

impl Member {
    pub fn guest(name: String) -> Self {
        Self { name, user: None }
    }
}

struct JoinCommand {
    member: Member,
    left: oneshot::Receiver<()>,
    reply: oneshot::Sender<Result<JoinReply, RoomError>>,
}

struct SendCommand {
    sender: String,
    /// The sender's verified user id, stored with the message.
    user_id: Option<String>,
    /// A message, or an edit or delete of `target`.
    kind: EntryKind,
    target: Option<Seq>,
    client_id: String,
    text: String,
    reply: oneshot::Sender<Result<Seq, RoomError>>,
}

struct RosterCommand {
    after: Option<String>,
    query: Option<String>,
    reply: oneshot::Sender<RosterPage>,
}

/// A cheap, cloneable address of a running room task.
#[derive(Clone)]
pub struct RoomHandle {
    commands: mpsc::Sender<Command>,
}

impl RoomHandle {
    /// Enters the room as the guest `name` and subscribes to its live messages.
    pub async fn join(&self, name: String) -> Result<Joined, RoomError> {
        self.join_as(Member::guest(name)).await
    }

    /// Enters the room as `member` and subscribes to its live messages. A guest is refused a
    /// name a verified person holds here ([`RoomError::NameTaken`]); anyone is refused when the
    /// room is full ([`RoomError::RoomFull`]).
    pub async fn join_as(&self, member: Member) -> Result<Joined, RoomError> {
        let (reply, rx) = oneshot::channel();
        let (left_tx, left) = oneshot::channel();
        let join = JoinCommand {
            member,
            left,
            reply,
        };
        self.commands
            .send(Command::Join(Box::new(join)))
            .await
            .map_err(|_| RoomError::Closed)?;
        let reply = rx.await.map_err(|_| RoomError::Closed)??;
        Ok(Joined {
            head: reply.head,
            live: reply.live,
            roster: reply.roster,
            membership: Membership { _left: left_tx },
            degraded: reply.degraded,
            sanctions: reply.sanctions,
        })
    }

    /// Queues a message for the room and returns a future of its sequence number, resolved once it
    /// is committed. The text and names must already be validated.
    pub async fn send(
        &self,
        sender: String,
        client_id: String,
        text: String,
    ) -> Result<SendReply, RoomError> {
        self.send_as(Member::guest(sender), client_id, text).await
    }

    /// Queues an edit (`Some(text)`) or a delete (`None`) of message `target` by `author`, as
    /// the next entry of the room's sequence; resolved with its number once committed. Who may
    /// change what is the caller's to check.
    pub async fn change_as(
        &self,
        author: Member,
        client_id: String,
        target: Seq,
        text: Option<String>,
    ) -> Result<SendReply, RoomError> {
        let kind = match text {
            Some(_) => EntryKind::Edit,
            None => EntryKind::Delete,
        };
        self.submit(
            author,
            client_id,
            text.unwrap_or_default(),
            kind,
            Some(target),
        )
        .await
    }

    /// [`RoomHandle::send`] by `author`, whose user id (if verified) is stored with the message.
    pub async fn send_as(
        &self,
        author: Member,
        client_id: String,
        text: String,
    ) -> Result<SendReply, RoomError> {
        self.submit(author, client_id, text, EntryKind::Message, None)
            .await
    }

    async fn submit(
        &self,
        author: Member,
        client_id: String,
        text: String,
        kind: EntryKind,
        target: Option<Seq>,
    ) -> Result<SendReply, RoomError> {
        let (reply, rx) = oneshot::channel();
        let send = SendCommand {
            sender: author.name,
            user_id: author.user,
            kind,
            target,
            client_id,
            text,
            reply,
        };
        self.commands
            .send(Command::Send(Box::new(send)))
            .await
            .map_err(|_| RoomError::Closed)?;
        Ok(rx)
    }

    /// A page of who is in the room: names after `after`, containing `query` if given.
    pub async fn roster(
        &self,
        after: Option<String>,
        query: Option<String>,
    ) -> Result<RosterPage, RoomError> {
        let (reply, rx) = oneshot::channel();
        let roster = RosterCommand {
            after,
            query,
            reply,
        };
        self.commands
            .send(Command::Roster(Box::new(roster)))
            .await
            .map_err(|_| RoomError::Closed)?;
        rx.await.map_err(|_| RoomError::Closed)
    }

    /// Tells the room (and the other nodes) that `name` is typing. Dropped when the room's queue
    /// is full: it is only a hint.
    pub fn typing(&self, name: &str) {
        let _ = self.commands.try_send(Command::Typing(name.into()));
    }

    /// Tells the room a moderator changed its mutes or bans, so it reads them again.
    pub async fn moderated(&self) -> Result<(), RoomError> {
        self.commands
            .send(Command::Moderated)
            .await
            .map_err(|_| RoomError::Closed)
    }

    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    pub fn same_room_task(&self, other: &RoomHandle) -> bool {
        self.commands.same_channel(&other.commands)
    }
}

/// Settings for room tasks.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// How long a room with nobody connected stays in memory (`--room-idle-secs`).
    pub idle_timeout: Duration,
    /// How long a room without messages stays once nobody is connected
    /// (`--empty-room-idle-secs`).
    pub empty_idle_timeout: Duration,
    /// Above this many people, joins and leaves are counted, not named
    /// (`--presence-quiet-above`).
    pub presence_quiet_above: usize,
    /// Most connections in the room, every node's together; 0: no limit
    /// (`--max-connections-per-room`).
    pub max_connections: usize,
    /// Where commits are counted and timed.
    pub metrics: Arc<Metrics>,
    /// Room tasks are spawned on this, so that shutdown can wait for their last commits.
    pub tasks: TaskTracker,
}

impl RoomSettings {
    /// The server's defaults, fresh metrics and a tracker of their own.
    #[cfg(test)]
    pub fn for_tests() -> Self {
        crate::config::Config::defaults().room_settings(Arc::default(), TaskTracker::new())
    }
}

/// Starts a room task and returns its handle. `on_exit` runs when the task ends.
pub fn spawn_room(
    name: RoomName,
    engine: Engine,
    settings: RoomSettings,
    shutdown: CancellationToken,
    on_exit: impl FnOnce(&RoomHandle) + Send + 'static,
) -> RoomHandle {
    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = RoomHandle { commands };
    let own = handle.clone();
    let tasks = settings.tasks.clone();
    tasks.spawn(async move {
        // The task must not keep itself alive through its own sender.
        let weak = own.commands.downgrade();
        drop(own);
        let mut room = actor::Room::new(name, engine, settings);
        room.run(rx, shutdown).await;
        if let Some(commands) = weak.upgrade() {
            on_exit(&RoomHandle { commands });
        }
        // Only now: what the room holds in the engine (its subscription) goes after the registry
        // forgot it.
        drop(room);
    });
    handle
}
