//! Degraded mode. Any failed engine request makes the room degraded: it says so to its clients
//! (`status`), refuses sends at once (instead of making everyone wait on timeouts) and probes the
//! engine every [`PROBE_INTERVAL`]; the actor decides what a probe does and reports its outcome.

use std::sync::Arc;
use std::time::Duration;

use app::limits::RoomName;
use tokio::time::Instant;
use tracing::{info, warn};

use super::fanout::{Fanout, RoomEvent};
use crate::metrics::Metrics;
use crate::redact::LogName;

/// How often a degraded room checks whether the engine is back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct Health {
    name: RoomName,
    fanout: Fanout,
    metrics: Arc<Metrics>,
    degraded: bool,
    /// When to check again whether the engine is back (set while degraded, cleared while a probe
    /// runs).
    probe_at: Option<Instant>,
}

impl Health {
    pub(super) fn new(name: RoomName, fanout: Fanout, metrics: Arc<Metrics>) -> Self {
        Self {
            name,
            fanout,
            metrics,
            degraded: false,
            probe_at: None,
        }
    }

    pub(super) fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// When the next probe is due, while degraded.
    pub(super) fn probe_due(&self) -> Option<Instant> {
        self.probe_at
    }

    /// An engine request failed: degraded until a probe finds the engine back. A probe already
    /// due stays due: further failures must not keep postponing it.
    pub(super) fn failed(&mut self) {
        self.probe_at
            .get_or_insert_with(|| Instant::now() + PROBE_INTERVAL);
        self.set(true);
    }

    /// A probe is under way; whatever fails during it schedules the next one.
    pub(super) fn probing(&mut self) {
        self.probe_at = None;
    }

    /// The engine did not answer the probe: try again later.
    pub(super) fn still_down(&mut self) {
        self.probe_at = Some(Instant::now() + PROBE_INTERVAL);
    }

    /// The probe went through without a failure: the room works again.
    pub(super) fn probe_succeeded(&mut self) {
        if self.probe_at.is_none() {
            self.set(false);
        }
    }

    fn set(&mut self, degraded: bool) {
        if self.degraded == degraded {
            return;
        }
        self.degraded = degraded;
        if degraded {
            self.metrics.rooms_degraded.inc();
            // The head stays: it is what this node's clients have seen, and the probe catches up
            // from it (or starts again from the engine's, if that went back).
            warn!(room = %self.name.logged(), "storage unreachable; refusing messages until it is back");
        } else {
            self.metrics.rooms_degraded.dec();
            info!(room = %self.name.logged(), "storage reachable again");
        }
        self.fanout.event(RoomEvent::Status { degraded });
    }
}

impl Drop for Health {
    /// A room leaving memory while degraded is no longer counted.
    fn drop(&mut self) {
        if self.degraded {
            self.metrics.rooms_degraded.dec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> (
        Health,
        tokio::sync::broadcast::Receiver<Arc<super::super::Delivery>>,
    ) {
        let fanout = Fanout::default();
        let live = fanout.subscribe();
        let name = RoomName::parse("health").unwrap();
        (Health::new(name, fanout, Arc::default()), live)
    }

    #[tokio::test(start_paused = true)]
    async fn failures_degrade_once_and_do_not_postpone_the_probe() {
        let (mut h, mut live) = health();
        h.failed();
        let due = h.probe_due().unwrap();
        assert_eq!(due, Instant::now() + PROBE_INTERVAL);
        tokio::time::advance(Duration::from_millis(600)).await;
        h.failed();
        assert_eq!(
            h.probe_due(),
            Some(due),
            "still due at the first failure's time"
        );
        assert_eq!(h.metrics.rooms_degraded.get(), 1);
        assert_eq!(
            live.recv().await.unwrap().event,
            RoomEvent::Status { degraded: true }
        );
        assert!(live.try_recv().is_err(), "said once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_recovers_only_if_nothing_failed_during_it() {
        let (mut h, mut live) = health();
        h.failed();
        h.probing();
        h.failed();
        h.probe_succeeded();
        assert!(
            h.is_degraded(),
            "a failure during the probe keeps it degraded"
        );
        assert!(h.probe_due().is_some());
        h.probing();
        h.still_down();
        assert_eq!(h.probe_due(), Some(Instant::now() + PROBE_INTERVAL));
        h.probing();
        h.probe_succeeded();
        assert!(!h.is_degraded());
        assert_eq!(h.metrics.rooms_degraded.get(), 0);
        let statuses: Vec<RoomEvent> = std::iter::from_fn(|| live.try_recv().ok())
            .map(|d| d.event.clone())
            .collect();
        assert_eq!(
            statuses,
            [
                RoomEvent::Status { degraded: true },
                RoomEvent::Status { degraded: false }
            ]
        );
    }
}
