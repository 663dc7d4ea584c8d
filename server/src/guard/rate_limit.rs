//! Per-client budgets (GCRA): posts, joins (every WebSocket connection is one), HTTP requests for
//! pages and the API, and history reads (in messages). Each counts across every room and both
//! protocols; with an engine that nodes share, the budget lives in the engine, so a client has one
//! budget across every node, and this node's own limiter decides only when the engine does not
//! answer in time.

use std::fmt::Display;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ClientKey;
use crate::engine::SharedRateLimit;

/// How many at once (`burst`), then one per `interval`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub burst: NonZeroU32,
    pub interval: Duration,
}

impl Budget {
    /// From settings: a burst of at least one, an interval in milliseconds.
    pub fn new(burst: u32, interval_ms: u64) -> Self {
        Self {
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
            interval: Duration::from_millis(interval_ms),
        }
    }

    /// `rate` a second sustained, `burst` at once.
    pub fn per_second(rate: u32, burst: u32) -> Self {
        Self {
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
            interval: Duration::from_secs(1) / rate.max(1),
        }
    }
}

/// One budget per client (an address, or a verified user), kept locally and (with a shared
/// engine) in the engine.
pub(super) struct Limit<K: Hash + Eq + Clone = ClientKey> {
    /// Names the budget in the engine (`post`, `join`).
    bucket: &'static str,
    budget: Budget,
    local: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone + Display> Limit<K> {
    pub(super) fn new(bucket: &'static str, budget: Budget) -> Self {
        let quota = Quota::with_period(budget.interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(budget.burst);
        Self {
            bucket,
            budget,
            local: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Spends `cost` (at most the burst) from `who`'s budget. `Err` says how long until it may
    /// try again.
    pub(super) async fn spend(
        &self,
        who: &K,
        cost: u32,
        shared: Option<&Arc<dyn SharedRateLimit>>,
    ) -> Result<(), Duration> {
        let Budget { burst, interval } = self.budget;
        let cost = cost.clamp(1, burst.get());
        if let Some(shared) = shared {
            let key = who.to_string();
            match shared
                .spend(self.bucket, &key, interval, burst.get(), cost)
                .await
            {
                Ok(verdict) => return verdict,
                Err(e) => {
                    tracing::debug!(error = %e, bucket = self.bucket, "shared rate limit unavailable; deciding locally")
                }
            }
        }
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match self.local.check_key_n(who, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            // More than the burst: cannot happen, the cost is clamped to it.
            Err(_) => Err(interval),
        }
    }

    /// Drops addresses whose budget is full again, keeping the key store bounded by the addresses
    /// active within one refill period.
    pub(super) fn sweep(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
    }
}
