//! [`SharedRateLimit`] on Redis: GCRA in a script on Redis's clock (`scripts/rate_limit.lua`), so
//! an address has one budget of each kind across every node.
//!
//! Key: `palaver:rate:{client}:<bucket>:<interval µs>:<burst>`, holding the GCRA "theoretical
//! arrival time" of one budget (`post`, `join`, `http`, `read`) of one client (an IPv4 address or
//! an IPv6 network).
//! The setting is part of the key because a generous limit lets that time run far ahead (one
//! interval per post): nodes started with a stricter setting later must not inherit it, or they
//! would lock the address out for hours.

use std::time::Duration;

use futures::future::BoxFuture;

use super::connection::within;
use super::RedisEngine;
use crate::engine::{EngineError, SharedRateLimit};

/// How long a post waits for the shared rate limit before the node decides on its own.
const RATE_LIMIT_TIMEOUT: Duration = Duration::from_millis(250);

impl SharedRateLimit for RedisEngine {
    fn spend<'a>(
        &'a self,
        bucket: &'static str,
        who: &'a str,
        interval: Duration,
        burst: u32,
        cost: u32,
    ) -> BoxFuture<'a, Result<Result<(), Duration>, EngineError>> {
        let interval_us = u64::try_from(interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let burst = burst.max(1);
        let key = format!(
            "{}:rate:{{{who}}}:{bucket}:{interval_us}:{burst}",
            self.prefix
        );
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let mut invocation = self.scripts.rate_limit.key(key);
            invocation.arg(interval_us).arg(burst).arg(cost.max(1));
            let wait_us: u64 =
                within(RATE_LIMIT_TIMEOUT, invocation.invoke_async(&mut conn)).await?;
            Ok(if wait_us == 0 {
                Ok(())
            } else {
                Err(Duration::from_micros(wait_us))
            })
        })
    }
}
