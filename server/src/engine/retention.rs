//! What history keeps: by default everything; with `--retain-messages` a room's newest messages
//! only, with `--retain-days` only messages younger than that. Both engines apply the same policy
//! (see `docs/OPERATIONS.md`, "Retention"): reads never return a message older than the age limit,
//! a room's excess over the count limit goes as new messages come, and numbering always continues
//! after the last number ever given (the head is kept when every message is gone).

use std::time::Duration;

use app::protocol::Seq;

/// A retention policy. `Default` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Newest messages kept per room (`--retain-messages`).
    pub keep_last: Option<u64>,
    /// How long a message is kept after it was sent (`--retain-days`).
    pub max_age: Option<Duration>,
}

/// How often the server asks its engine to remove what retention no longer keeps.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

impl Retention {
    /// Whether anything is ever removed.
    pub fn keeps_all(&self) -> bool {
        self.keep_last.is_none() && self.max_age.is_none()
    }

    /// Messages sent before this (ms since the epoch) are no longer kept, at `now_ms`.
    pub fn cutoff_ms(&self, now_ms: i64) -> Option<i64> {
        self.max_age
            .map(|age| now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)))
    }

    /// [`Retention::cutoff_ms`] now, or `i64::MIN` (nothing is too old) without an age limit.
    pub fn cutoff_now(&self) -> i64 {
        self.cutoff_ms(now_ms()).unwrap_or(i64::MIN)
    }

    /// The highest sequence number the count limit removes once the room's head is `head` (0:
    /// none).
    pub fn removed_upto(&self, head: Seq) -> Seq {
        self.keep_last.map_or(0, |keep| head.saturating_sub(keep))
    }
}

/// Until `shutdown`, asks `history` every [`SWEEP_INTERVAL`] to remove what retention no longer
/// keeps, again at once while a sweep removes a full batch.
pub async fn sweep_until(
    history: std::sync::Arc<dyn super::History>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut removed = 0;
        loop {
            let swept = tokio::select! {
                () = shutdown.cancelled() => return,
                swept = history.sweep() => swept,
            };
            match swept {
                Ok(n) => {
                    removed += n;
                    if n < super::SWEEP_BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention sweep failed");
                    break;
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "messages past the retention limit removed");
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keeps_everything() {
        let keep = Retention::default();
        assert!(keep.keeps_all());
        assert_eq!(keep.cutoff_ms(1_000), None);
        assert_eq!(keep.cutoff_now(), i64::MIN);
        assert_eq!(keep.removed_upto(1_000), 0);
    }

    #[test]
    fn limits_by_count_and_age() {
        let policy = Retention {
            keep_last: Some(3),
            max_age: Some(Duration::from_secs(86_400)),
        };
        assert!(!policy.keeps_all());
        assert_eq!(policy.removed_upto(2), 0);
        assert_eq!(policy.removed_upto(10), 7);
        assert_eq!(
            policy.cutoff_ms(100_000_000),
            Some(100_000_000 - 86_400_000)
        );
        assert_eq!(policy.cutoff_ms(5), Some(5 - 86_400_000));
    }
}
