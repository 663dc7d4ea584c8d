//! [`SharedConnections`] on Redis: each user's open connections as one hash,
//! `palaver:conns:{user}`, holding each node's count under a lease (`scripts/user_connections.lua`),
//! so a per-user cap holds across every node and a dead node's count lapses.

use futures::future::BoxFuture;

use super::connection::timed;
use super::RedisEngine;
use crate::engine::{EngineError, SharedConnections, ROSTER_LEASE};

impl SharedConnections for RedisEngine {
    fn set<'a>(
        &'a self,
        user: &'a str,
        count: usize,
        cap: usize,
    ) -> BoxFuture<'a, Result<bool, EngineError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let set: i64 = timed(
                self.scripts
                    .user_connections
                    .key(format!("{}:conns:{{{user}}}", self.prefix))
                    .arg(self.node_id())
                    .arg(count)
                    .arg(cap)
                    .arg(ROSTER_LEASE.as_millis() as u64)
                    .invoke_async(&mut conn),
            )
            .await?;
            Ok(set == 1)
        })
    }
}
