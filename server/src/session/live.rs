//! The room's live deliveries to one socket: a burst is written with one flush, nothing at or
//! below `sent_seq` is written again, and a reader that fell behind catches up from the engine.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::debug;

use super::dialect::{Dialect, Outgoing};
use super::run::{End, InRoom, Session, RESTARTING};
use crate::metrics::SlowConsumer;
use crate::room::{Delivery, RoomEvent};

/// Frames written per flush at most, so one busy room cannot starve this session's other work.
const WRITE_BATCH: usize = 64;

impl<D: Dialect> Session<'_, D> {
    /// Takes everything the room has already sent (up to [`WRITE_BATCH`]), queues it on the
    /// socket and flushes once: one write for a burst instead of one per frame.
    pub(super) async fn on_delivery(
        &mut self,
        first: Result<Arc<Delivery>, broadcast::error::RecvError>,
        room: &mut InRoom,
    ) -> Result<(), End> {
        let mut next = Some(first);
        let mut queued = 0;
        // Counted once per write: metrics stay off the per-delivery path.
        let mut delivered = 0u64;
        let mut oldest: Option<Instant> = None;
        while let Some(delivery) = next.take() {
            match delivery {
                Ok(d) => {
                    // Nobody is told that they themselves are typing.
                    if matches!(&d.event, RoomEvent::Typing { name } if *name == room.member.name) {
                        next = try_next(&mut room.live, &mut queued);
                        continue;
                    }
                    if let Some(seq) = d.seq {
                        if seq <= room.sent_seq {
                            next = try_next(&mut room.live, &mut queued);
                            continue;
                        }
                        if seq != room.sent_seq + 1 {
                            // Should not happen (the room commits in order), but never leave a
                            // hole.
                            self.socket.flush().await?;
                            Box::pin(self.catch_up(&mut room.sent_seq, Some(seq - 1))).await?;
                        }
                        room.sent_seq = seq;
                        delivered += 1;
                        oldest.get_or_insert(d.committed_at);
                    }
                    self.dialect.encode(Outgoing::Live(&d), &mut self.out);
                    self.socket.feed_all(&mut self.out).await?;
                    next = try_next(&mut room.live, &mut queued);
                }
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    debug!(skipped, "lagged behind the room; catching up from storage");
                    self.state.metrics.slow_consumer(SlowConsumer::CaughtUp);
                    self.socket.flush().await?;
                    Box::pin(self.catch_up(&mut room.sent_seq, None)).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(RESTARTING),
            }
        }
        self.socket.flush().await?;
        if let Some(oldest) = oldest {
            let metrics = &self.state.metrics;
            metrics.deliveries.inc_by(delivered);
            metrics
                .fanout_seconds
                .observe(oldest.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

/// The next delivery that is already waiting, while the current write batch has room.
fn try_next(
    live: &mut broadcast::Receiver<Arc<Delivery>>,
    queued: &mut usize,
) -> Option<Result<Arc<Delivery>, broadcast::error::RecvError>> {
    *queued += 1;
    if *queued >= WRITE_BATCH {
        return None;
    }
    match live.try_recv() {
        Ok(d) => Some(Ok(d)),
        Err(broadcast::error::TryRecvError::Lagged(n)) => {
            Some(Err(broadcast::error::RecvError::Lagged(n)))
        }
        Err(broadcast::error::TryRecvError::Closed) => {
            Some(Err(broadcast::error::RecvError::Closed))
        }
        Err(broadcast::error::TryRecvError::Empty) => None,
    }
}
