//! [`ModerationStore`] on Redis, beside the room's other keys (one hash slot per room):
//! `sanctions` (a hash: kind and target → JSON), `audit` (a list, newest first, trimmed to
//! [`AUDIT_KEPT`]) and `guest:<scope>` (the address a guest last posted from, expiring after
//! [`GUEST_ADDRESS_TTL_MS`]).

use app::limits::RoomName;
use app::moderation::{AuditEntry, Sanction, SanctionKind, Target, AUDIT_KEPT};
use futures::future::BoxFuture;

use super::connection::timed;
use super::RedisEngine;
use crate::engine::moderation::{
    decode, encode, in_force, sanction_key, ModerationStore, GUEST_ADDRESS_TTL_MS,
};
use crate::engine::EngineError;

type Answer<'a, T> = BoxFuture<'a, Result<T, EngineError>>;

impl ModerationStore for RedisEngine {
    fn put_sanction<'a>(&'a self, room: &'a RoomName, sanction: &'a Sanction) -> Answer<'a, ()> {
        Box::pin(async move {
            let body = encode(sanction)?;
            let key = self.key(room, "sanctions");
            let mut conn = self.conn.clone();
            let stored: Vec<(String, String)> =
                timed(redis::cmd("HGETALL").arg(&key).query_async(&mut conn)).await?;
            let now = crate::engine::retention::now_ms();
            let mut pipe = redis::pipe();
            pipe.cmd("HSET")
                .arg(&key)
                .arg(sanction_key(sanction.kind, &sanction.target))
                .arg(body)
                .ignore();
            // Ended sanctions go with any change.
            for (field, json) in stored {
                if decode::<Sanction>(&json).is_some_and(|s| !s.is_active(now)) {
                    pipe.cmd("HDEL").arg(&key).arg(field).ignore();
                }
            }
            let _: () = timed(pipe.query_async(&mut conn)).await?;
            Ok(())
        })
    }

    fn lift_sanction<'a>(
        &'a self,
        room: &'a RoomName,
        kind: SanctionKind,
        target: &'a Target,
    ) -> Answer<'a, bool> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let removed: i64 = timed(
                redis::cmd("HDEL")
                    .arg(self.key(room, "sanctions"))
                    .arg(sanction_key(kind, target))
                    .query_async(&mut conn),
            )
            .await?;
            Ok(removed == 1)
        })
    }

    fn sanctions<'a>(&'a self, room: &'a RoomName, now_ms: i64) -> Answer<'a, Vec<Sanction>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let stored: Vec<String> = timed(
                redis::cmd("HVALS")
                    .arg(self.key(room, "sanctions"))
                    .query_async(&mut conn),
            )
            .await?;
            let all = stored.iter().filter_map(|s| decode(s)).collect();
            Ok(in_force(all, now_ms))
        })
    }

    fn record<'a>(&'a self, room: &'a RoomName, entry: &'a AuditEntry) -> Answer<'a, ()> {
        Box::pin(async move {
            let body = encode(entry)?;
            let key = self.key(room, "audit");
            let mut conn = self.conn.clone();
            let _: () = timed(
                redis::pipe()
                    .atomic()
                    .cmd("LPUSH")
                    .arg(&key)
                    .arg(body)
                    .ignore()
                    .cmd("LTRIM")
                    .arg(&key)
                    .arg(0)
                    .arg(AUDIT_KEPT - 1)
                    .ignore()
                    .query_async(&mut conn),
            )
            .await?;
            Ok(())
        })
    }

    fn audit<'a>(&'a self, room: &'a RoomName, limit: usize) -> Answer<'a, Vec<AuditEntry>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let mut conn = self.conn.clone();
            let stored: Vec<String> = timed(
                redis::cmd("LRANGE")
                    .arg(self.key(room, "audit"))
                    .arg(0)
                    .arg(limit - 1)
                    .query_async(&mut conn),
            )
            .await?;
            Ok(stored.iter().filter_map(|s| decode(s)).collect())
        })
    }

    fn note_guest<'a>(
        &'a self,
        room: &'a RoomName,
        scope: &'a str,
        address: &'a str,
        _now_ms: i64,
    ) -> Answer<'a, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: () = timed(
                redis::cmd("SET")
                    .arg(self.key(room, &format!("guest:{scope}")))
                    .arg(address)
                    .arg("PX")
                    .arg(GUEST_ADDRESS_TTL_MS)
                    .query_async(&mut conn),
            )
            .await?;
            Ok(())
        })
    }

    fn guest_address<'a>(
        &'a self,
        room: &'a RoomName,
        scope: &'a str,
        _now_ms: i64,
    ) -> Answer<'a, Option<String>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            timed(
                redis::cmd("GET")
                    .arg(self.key(room, &format!("guest:{scope}")))
                    .query_async(&mut conn),
            )
            .await
        })
    }
}
