//! [`History`] on Redis: per room a stream (`log`, entry id `<seq>-1`), a hash with the head
//! (`meta`) and a hash from client id to seq (`ids`). `append` is one Lua script
//! (`scripts/append.lua`): it numbers the new messages after the stored head (skipping client ids
//! already stored, which get their earlier numbers), adds them, moves the head and publishes it,
//! atomically and in one round trip. Several nodes writing one room therefore never race for a
//! number, never leave a hole or a duplicate, and history order is live order. The same script
//! applies retention (see [`crate::engine::retention`]): the oldest entries past the count or age
//! limit go with their client-id records (`XTRIM MINID`, `HDEL`), and with an age limit the log and
//! ids expire that long after the room's last message; reads skip what is too old meanwhile.

use app::limits::RoomName;
use app::protocol::{ChatMessage, EntryKind, Seq};
use futures::future::BoxFuture;
use redis::streams::{StreamId, StreamRangeReply};
use redis::AsyncCommands;

use super::connection::timed;
use super::RedisEngine;
use crate::engine::retention::now_ms;
use crate::engine::{Appended, EngineError, History};

/// Bytes the write probe writes (more than a typical batch).
const PROBE_BYTES: usize = 64 * 1024;

impl History for RedisEngine {
    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, EngineError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            let retention = &self.retention;
            let max_age_ms = retention.max_age.map_or(0, |a| a.as_millis());
            let cutoff = retention.cutoff_ms(now_ms()).unwrap_or(0);
            let mut invocation = self.scripts.append.prepare_invoke();
            invocation
                .key(self.key(room, "meta"))
                .key(self.key(room, "log"))
                .key(self.key(room, "ids"))
                .key(self.key(room, "live"))
                .key(self.key(room, "patch"))
                .arg(batch.len())
                .arg(retention.keep_last.unwrap_or(0))
                .arg(cutoff)
                .arg(u64::try_from(max_age_ms).unwrap_or(u64::MAX));
            for m in batch {
                invocation
                    .arg(&m.id)
                    .arg(&m.sender)
                    .arg(&m.text)
                    .arg(m.sent_at_ms)
                    .arg(&m.client_id)
                    .arg(m.user_id.as_deref().unwrap_or(""))
                    .arg(m.kind.code())
                    .arg(m.target.unwrap_or(0));
            }
            let mut conn = self.conn.clone();
            let reply: Vec<(Seq, i64, i64)> = timed(invocation.invoke_async(&mut conn)).await?;
            Ok(reply
                .into_iter()
                .map(|(seq, sent_at_ms, new)| Appended {
                    seq,
                    sent_at_ms,
                    new: new == 1,
                })
                .collect())
        })
    }

    /// Scripts on one connection run in the order sent: a room keeps several batches in flight,
    /// so Redis works on one while the room handles the answer to the previous.
    fn max_in_flight(&self) -> usize {
        4
    }

    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), EngineError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (seq, ts): (Option<Seq>, Option<i64>) = timed(
                redis::cmd("HMGET")
                    .arg(self.key(room, "meta"))
                    .arg("seq")
                    .arg("ts")
                    .query_async(&mut conn),
            )
            .await?;
            Ok((seq.unwrap_or(0), ts.unwrap_or(0)))
        })
    }

    fn after<'a>(
        &'a self,
        room: &'a RoomName,
        after: Seq,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let cutoff = self.retention.cutoff_now();
            let mut from = after;
            loop {
                let reply: StreamRangeReply = timed(conn.xrange_count(
                    self.key(room, "log"),
                    format!("{}-0", from + 1),
                    "+",
                    limit,
                ))
                .await?;
                let page = messages(reply)?;
                let full = page.len() >= limit;
                // Changes up to the last entry read (or all after it when none follow), with
                // placeholders for deleted ones: the first `limit` are this page.
                let upto = page.last().map(|m| m.seq).filter(|_| full);
                let mut page = self.overlay(room, page, from + 1, upto).await?;
                page.truncate(limit);
                let Some(last) = page.last().map(|m| m.seq) else {
                    return Ok(page);
                };
                let kept: Vec<_> = page
                    .into_iter()
                    .filter(|m| m.sent_at_ms >= cutoff)
                    .collect();
                // A whole page too old and not yet trimmed: what is kept comes after it.
                if !kept.is_empty() || !full {
                    return Ok(kept);
                }
                from = last;
            }
        })
    }

    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, EngineError>> {
        Box::pin(async move {
            let end = match before {
                Some(0 | 1) => return Ok(Vec::new()),
                Some(b) => format!("{}-1", b - 1),
                None => "+".to_owned(),
            };
            let mut conn = self.conn.clone();
            let reply: StreamRangeReply =
                timed(conn.xrevrange_count(self.key(room, "log"), end, "-", limit)).await?;
            let cutoff = self.retention.cutoff_now();
            let mut page = messages(reply)?;
            page.reverse();
            // Changes from the first entry read (or from the start when fewer came) up to
            // `before`, with placeholders for deleted ones: the last `limit` are this page.
            let from = match page.first() {
                Some(first) if page.len() >= limit => first.seq,
                _ => 1,
            };
            let mut page = self
                .overlay(room, page, from, before.map(|b| b - 1))
                .await?;
            let extra = page.len().saturating_sub(limit);
            page.drain(..extra);
            page.retain(|m| m.sent_at_ms >= cutoff);
            Ok(page)
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        // A real write: a Redis out of memory (with `noeviction`) refuses it as it refuses
        // appends. The key expires by itself.
        Box::pin(self.probed.check(async {
            let mut conn = self.conn.clone();
            let key = format!("{}:probe:{}", self.prefix, self.node_id());
            let _: () = timed(
                redis::cmd("SET")
                    .arg(key)
                    .arg(vec![0u8; PROBE_BYTES])
                    .arg("PX")
                    .arg(5_000)
                    .query_async(&mut conn),
            )
            .await?;
            Ok(())
        }))
    }
}

fn message(entry: &StreamId) -> Option<ChatMessage> {
    let seq = entry.id.split('-').next()?.parse().ok()?;
    Some(ChatMessage {
        seq,
        id: entry.get("id")?,
        sender: entry.get("sender")?,
        text: entry.get("text")?,
        sent_at_ms: entry.get("ts")?,
        client_id: entry.get("cid")?,
        user_id: entry.get("uid"),
        kind: EntryKind::from_code(entry.get("kind").unwrap_or(0)),
        target: entry.get("target"),
        ..Default::default()
    })
}

fn messages(reply: StreamRangeReply) -> Result<Vec<ChatMessage>, EngineError> {
    reply
        .ids
        .iter()
        .map(|e| message(e).ok_or_else(|| EngineError::Unavailable(format!("bad entry {}", e.id))))
        .collect()
}
