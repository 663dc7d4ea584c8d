//! [`Directory`] on Redis: revocations in one hash, `palaver:revoked` (user id → moment), and
//! each room's rules as JSON at `palaver:{room}:rules`, beside the room's other keys.

use std::collections::HashMap;

use app::limits::RoomName;
use app::rules::RoomRules;
use futures::future::BoxFuture;

use super::connection::timed;
use super::RedisEngine;
use crate::engine::directory::{decode_rules, encode_rules, Directory};
use crate::engine::EngineError;

impl Directory for RedisEngine {
    fn revoke<'a>(&'a self, sub: &'a str, at_ms: i64) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = format!("{}:revoked", self.prefix);
            let _: () = timed(
                redis::cmd("HSET")
                    .arg(key)
                    .arg(sub)
                    .arg(at_ms)
                    .query_async(&mut conn),
            )
            .await?;
            Ok(())
        })
    }

    fn revocations(&self) -> BoxFuture<'_, Result<HashMap<String, i64>, EngineError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let key = format!("{}:revoked", self.prefix);
            timed(redis::cmd("HGETALL").arg(key).query_async(&mut conn)).await
        })
    }

    fn rules<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<RoomRules>, EngineError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let stored: Option<String> = timed(
                redis::cmd("GET")
                    .arg(self.key(room, "rules"))
                    .query_async(&mut conn),
            )
            .await?;
            Ok(stored.as_deref().map(decode_rules))
        })
    }

    fn claim_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<bool, EngineError>> {
        Box::pin(async move {
            let encoded = encode_rules(rules)?;
            let mut conn = self.conn.clone();
            let stored: Option<String> = timed(
                redis::cmd("SET")
                    .arg(self.key(room, "rules"))
                    .arg(encoded)
                    .arg("NX")
                    .query_async(&mut conn),
            )
            .await?;
            Ok(stored.is_some())
        })
    }

    fn set_rules<'a>(
        &'a self,
        room: &'a RoomName,
        rules: &'a RoomRules,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let encoded = encode_rules(rules)?;
            let mut conn = self.conn.clone();
            let _: () = timed(
                redis::cmd("SET")
                    .arg(self.key(room, "rules"))
                    .arg(encoded)
                    .query_async(&mut conn),
            )
            .await?;
            Ok(())
        })
    }
}
