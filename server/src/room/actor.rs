//! The room task: one `select!` loop that owns the room's parts and drives them. Each arm hands
//! its work to one part; whatever fails in the engine ends in [`Room::engine_failed`], which
//! makes the room degraded until a probe finds the engine back.

use app::limits::RoomName;
use app::protocol::{ROSTER_PAGE, WELCOME_ROSTER};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::commit::{Log, PendingSend};
use super::fanout::{Fanout, RoomEvent};
use super::health::Health;
use super::link::Link;
use super::presence::Presence;
use super::standing::Standing;
use super::{Command, JoinCommand, JoinReply, RoomError, RoomSettings, RosterCommand};
use crate::engine::{Engine, EngineError, PeerEvent, Roster, ROSTER_REFRESH};
use crate::redact::LogName;

/// Most `send` commands committed in one batch. One fsync costs the same for one message or a
/// thousand, so a busy room takes everything that is waiting (the command queue holds 1024).
const MAX_BATCH: usize = 1024;

pub(super) struct Room {
    name: RoomName,
    settings: RoomSettings,
    fanout: Fanout,
    log: Log,
    presence: Presence,
    health: Health,
    /// The other nodes sharing the engine; `None` on the embedded engine.
    link: Option<Link>,
    standing: Standing,
}

impl Room {
    pub(super) fn new(name: RoomName, engine: Engine, settings: RoomSettings) -> Self {
        let fanout = Fanout::default();
        let metrics = settings.metrics.clone();
        Self {
            log: Log::new(
                name.clone(),
                engine.history,
                fanout.clone(),
                metrics.clone(),
            ),
            health: Health::new(name.clone(), fanout.clone(), metrics),
            standing: Standing::new(engine.moderation),
            link: engine.mesh.map(Link::new),
            presence: Presence::new(settings.presence_quiet_above),
            fanout,
            name,
            settings,
        }
    }

    /// Serves commands until the room has been idle long enough, or shutdown.
    pub(super) async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) {
        self.start().await;
        let mut refresh = tokio::time::interval_at(Instant::now() + ROSTER_REFRESH, ROSTER_REFRESH);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut idle = Idle::new(&self.settings);
        let mut idle_check = tokio::time::interval(idle.period);
        // Grows to the largest batch seen; a quiet room keeps it small.
        let mut batch = Vec::new();
        loop {
            let presence_due = self.presence.due();
            let probe_due = self.health.probe_due();
            let subscribed = self.link.as_ref().is_some_and(Link::is_subscribed);
            let linked = self.link.is_some() && !self.health.is_degraded();
            tokio::select! {
                Some(member) = self.presence.next_departure() => {
                    self.presence.leave(member, self.log.committed());
                    // The session let go of its subscription first: with the last one gone, so
                    // goes the buffer.
                    self.fanout.release_if_unheard();
                }
                event = next_peer_event(&mut self.link), if subscribed => self.on_peer_event(event).await,
                _ = sleep_until(probe_due.unwrap_or_else(Instant::now)), if probe_due.is_some() => {
                    self.probe().await;
                }
                _ = refresh.tick(), if linked => self.refresh().await,
                _ = sleep_until(presence_due.unwrap_or_else(Instant::now)), if presence_due.is_some() => {
                    self.announce().await;
                }
                committed = self.log.next_committed(), if self.log.in_flight() > 0 => {
                    if let Err(e) = self.log.answer(committed).await {
                        self.engine_failed(&e);
                    }
                }
                // While as many batches as may be are with the engine, commands wait in the
                // (bounded) queue and are taken as one bigger batch when one is answered.
                n = rx.recv_many(&mut batch, MAX_BATCH), if self.log.can_start() => {
                    if n == 0 {
                        break;
                    }
                    idle.busy();
                    self.process(&mut batch).await;
                }
                _ = idle_check.tick() => {
                    if idle.tick(self.fanout.readers() == 0, self.log.committed() == 0) {
                        debug!(room = %self.name.logged(), "room idle, leaving memory");
                        self.finish(&mut rx, &mut batch).await;
                        break;
                    }
                }
                _ = shutdown.cancelled() => {
                    self.finish(&mut rx, &mut batch).await;
                    break;
                }
            }
        }
    }

    /// Subscribes to the other nodes' events and reads who is already here through them: they
    /// announced it before this room was loaded (and subscribed) on this node.
    async fn start(&mut self) {
        if let Some(link) = &mut self.link {
            if let Err(e) = link.subscribe(&self.name).await {
                warn!(room = %self.name.logged(), error = %e, "cannot subscribe to the engine");
                self.health.failed();
            }
        }
        self.refresh_others().await;
        self.standing.reload(&self.name).await;
    }

    /// Handles a batch of commands: joins at once, sends as one group commit (handed to the
    /// engine here, answered when it is stored).
    async fn process(&mut self, batch: &mut Vec<Command>) {
        // Joiners are told the head; sends are refused at once without one (degraded).
        let head = self.usable_head().await;
        let mut sends = Vec::new();
        for command in batch.drain(..) {
            match command {
                Command::Join(join) => self.join(*join),
                Command::Roster(request) => self.roster(*request),
                Command::Moderated => self.standing.reload(&self.name).await,
                Command::Typing(name) => self.typing(name.into(), true),
                Command::Send(send) => {
                    if head.is_err() {
                        let _ = send.reply.send(Err(RoomError::Unavailable));
                    } else if let Some(seq) = self.log.recent(&send.client_id) {
                        // A resend of a recent message is answered from memory; older ones (and
                        // repeats within this batch) the engine recognises.
                        let _ = send.reply.send(Ok(seq));
                    } else {
                        sends.push(PendingSend::new(*send));
                    }
                }
            }
        }
        if !sends.is_empty() {
            self.log.start(sends);
        }
    }

    /// The head to number sends after; refused at once while degraded rather than making every
    /// sender wait for a timeout.
    async fn usable_head(&mut self) -> Result<(), RoomError> {
        if self.health.is_degraded() {
            return Err(RoomError::Unavailable);
        }
        match self.log.load_head().await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.engine_failed(&e);
                Err(RoomError::Unavailable)
            }
        }
    }

    /// Subscribes the joiner before anything of this batch is broadcast, and reports the head
    /// committed so far: it reads up to that head from the engine and gets the rest live, so it
    /// sees each message exactly once.
    fn join(
        &mut self,
        JoinCommand {
            member,
            left,
            reply,
        }: JoinCommand,
    ) {
        let cap = self.settings.max_connections;
        if cap > 0 && self.presence.connections() >= cap {
            let _ = reply.send(Err(RoomError::RoomFull));
            return;
        }
        if member.user.is_none() && self.presence.held_by_verified(&member.name) {
            let _ = reply.send(Err(RoomError::NameTaken));
            return;
        }
        let committed = self.log.committed();
        self.presence.join(member, left, committed);
        let _ = reply.send(Ok(JoinReply {
            head: committed,
            live: self.fanout.subscribe(),
            roster: self.presence.page(None, None, WELCOME_ROSTER),
            degraded: self.health.is_degraded(),
            sanctions: self.standing.subscribe(),
        }));
    }

    fn roster(&self, request: RosterCommand) {
        let page = self.presence.page(
            request.after.as_deref(),
            request.query.as_deref(),
            ROSTER_PAGE,
        );
        let _ = request.reply.send(page);
    }

    /// Someone is typing: everyone here is told, and (if it happened here) the other nodes —
    /// unless the room is big, where a line of names would never rest.
    fn typing(&mut self, name: String, here: bool) {
        if self.presence.connections() > self.settings.presence_quiet_above {
            return;
        }
        if here {
            if let Some(link) = &self.link {
                link.announce_typing(&self.name, &name);
            }
        }
        self.fanout.event(RoomEvent::Typing { name });
    }

    async fn on_peer_event(&mut self, event: Option<PeerEvent>) {
        match event {
            Some(PeerEvent::Head(head)) => {
                if !self.health.is_degraded() && self.log.is_behind(head) {
                    if let Err(e) = self.log.catch_up().await {
                        self.engine_failed(&e);
                    }
                }
            }
            Some(PeerEvent::Roster) => self.refresh_others().await,
            Some(PeerEvent::Moderation) => self.standing.reload(&self.name).await,
            Some(PeerEvent::Typing(name)) => self.typing(name, false),
            Some(PeerEvent::Lost) | None => {
                warn!(room = %self.name.logged(), "lost the engine's notifications");
                if let Some(link) = &mut self.link {
                    link.lost();
                }
                self.health.failed();
            }
        }
    }

    /// Broadcasts the net roster change, after publishing this node's part of it (not while
    /// degraded: the probe publishes it on recovery).
    async fn announce(&mut self) {
        if !self.health.is_degraded() {
            if let Err(e) = self.publish().await {
                self.engine_failed(&e);
            }
        }
        if let Some(change) = self.presence.announcement() {
            self.fanout.event(RoomEvent::Presence(change));
        }
    }

    /// Renews this node's roster lease, drops other nodes' lapsed ones, and catches up on anything
    /// whose notification was lost.
    async fn refresh(&mut self) {
        let renewed = async {
            self.publish().await?;
            self.read_others().await?;
            self.log.resync().await
        };
        if let Err(e) = renewed.await {
            self.engine_failed(&e);
        }
    }

    /// While degraded: is the engine back? If so, subscribe again, catch up from the last
    /// sequence number, publish the roster again, and say so.
    async fn probe(&mut self) {
        if let Err(e) = self.log.history().check().await {
            debug!(room = %self.name.logged(), error = %e, "storage still unreachable");
            return self.health.still_down();
        }
        if let Some(link) = &mut self.link {
            if let Err(e) = link.subscribe(&self.name).await {
                debug!(room = %self.name.logged(), error = %e, "cannot subscribe yet");
                return self.health.still_down();
            }
            // The engine may have lost what was published.
            link.republish();
        }
        self.health.probing();
        let rejoined = async {
            self.log.resync().await?;
            self.publish().await?;
            self.read_others().await
        };
        match rejoined.await {
            Ok(()) => {
                self.health.probe_succeeded();
                // A change may have been announced while the notifications were lost.
                self.standing.reload(&self.name).await;
            }
            Err(e) => self.engine_failed(&e),
        }
    }

    /// Publishes this node's people to the other nodes, if there are any.
    async fn publish(&mut self) -> Result<(), EngineError> {
        match &mut self.link {
            Some(link) => link.publish(&self.name, self.presence.local()).await,
            None => Ok(()),
        }
    }

    /// Reads the other nodes' people again; a change is announced like a local one.
    async fn read_others(&mut self) -> Result<(), EngineError> {
        if let Some(link) = &mut self.link {
            let others = link.others(&self.name).await?;
            self.presence.set_remote(others, self.log.committed());
        }
        Ok(())
    }

    async fn refresh_others(&mut self) {
        if let Err(e) = self.read_others().await {
            self.engine_failed(&e);
        }
    }

    /// The engine failed a request: the room is degraded until a probe finds it back.
    fn engine_failed(&mut self, error: &EngineError) {
        debug!(room = %self.name.logged(), %error, "engine request failed");
        self.health.failed();
    }

    /// Answers what raced in before the queue closed, then takes this node's people off the
    /// shared roster.
    async fn finish(&mut self, rx: &mut mpsc::Receiver<Command>, batch: &mut Vec<Command>) {
        rx.close();
        while let Ok(command) = rx.try_recv() {
            batch.push(command);
        }
        self.process(batch).await;
        if let Err(e) = self.log.settle().await {
            self.engine_failed(&e);
        }
        self.presence.clear_local();
        if let Some(link) = &mut self.link {
            if link.published_someone() {
                let _ = link.publish(&self.name, &Roster::new()).await;
            }
        }
    }
}

/// When a room leaves memory: after `idle_timeout` with nobody subscribed, or after the shorter
/// `empty_idle_timeout` if nobody ever posted to it (a flood of fresh names leaves nothing
/// behind for long). Checked every `period`.
struct Idle {
    period: std::time::Duration,
    idle_timeout: std::time::Duration,
    empty_idle_timeout: std::time::Duration,
    /// How long nobody has been subscribed, in whole periods.
    unheard_for: std::time::Duration,
}

impl Idle {
    fn new(settings: &RoomSettings) -> Self {
        let shortest = settings.idle_timeout.min(settings.empty_idle_timeout);
        Self {
            period: (shortest / 2).max(std::time::Duration::from_millis(100)),
            idle_timeout: settings.idle_timeout,
            empty_idle_timeout: settings.empty_idle_timeout,
            unheard_for: std::time::Duration::ZERO,
        }
    }

    /// Commands came in.
    fn busy(&mut self) {
        self.unheard_for = std::time::Duration::ZERO;
    }

    /// One period went by; whether the room should leave memory now.
    fn tick(&mut self, unheard: bool, empty: bool) -> bool {
        if !unheard {
            self.unheard_for = std::time::Duration::ZERO;
            return false;
        }
        self.unheard_for += self.period;
        let limit = if empty {
            self.empty_idle_timeout
        } else {
            self.idle_timeout
        };
        self.unheard_for >= limit
    }
}

/// The next event from the other nodes (pending forever without a link).
async fn next_peer_event(link: &mut Option<Link>) -> Option<PeerEvent> {
    match link {
        Some(link) => link.next_event().await,
        None => std::future::pending().await,
    }
}
