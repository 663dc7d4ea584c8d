//! Slow mode on one node: when each person may next post in each room. Bounded: past
//! [`MAX_ENTRIES`], entries whose wait is over are dropped, then the oldest.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// People-in-rooms remembered at once.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub(super) struct SlowMode {
    next: Mutex<HashMap<String, Instant>>,
}

impl SlowMode {
    /// One post by `key` (room and person), or how long until it may post.
    pub(super) fn spend(&self, key: String, interval: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = next.get(&key) {
            if *at > now {
                return Err(*at - now);
            }
        }
        if next.len() >= MAX_ENTRIES {
            next.retain(|_, at| *at > now);
        }
        next.insert(key, now + interval);
        Ok(())
    }
}
