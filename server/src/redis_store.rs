//! History in Redis (`--engine redis://…`): the [`RoomStore`] contract on a Redis server, and
//! the notifications that let several nodes serve one room.
//!
//! Per room, three keys sharing the `{room}` hash tag (so one room lives on one Redis Cluster
//! slot and a script may touch all three):
//! - `palaver:{room}:log`, a stream with one entry per message, entry id `<seq>-1`;
//! - `palaver:{room}:meta`, a hash with the last `seq` and its `ts`;
//! - `palaver:{room}:ids`, a hash from client id to seq (idempotency);
//! - `palaver:{room}:live`, a pub/sub channel carrying each new head, so every node with clients
//!   in the room reads the new messages from the stream and delivers them (in sequence order,
//!   whoever wrote them).
//!
//! `append` is one Lua script: it checks the batch starts right after the stored head and repeats
//! no client id, then adds every message and moves the head, atomically. A second writer for the
//! same room therefore gets a clear refusal instead of a hole or a duplicate.

use std::collections::HashMap;

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use redis::aio::ConnectionManager;
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;

use crate::store::{RoomStore, StoreError};

const APPEND: &str = r#"
local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local first = tonumber(ARGV[1])
if first ~= head + 1 then
  return redis.error_reply('CONFLICT batch starts at ' .. first .. ' but the head is ' .. head)
end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local cid = ARGV[3 + i * 5 + 4]
  if redis.call('HEXISTS', KEYS[3], cid) == 1 then
    return redis.error_reply('DUPLICATE client id ' .. cid)
  end
end
local ts = '0'
for i = 0, n - 1 do
  local b = 3 + i * 5
  local seq = first + i
  redis.call('XADD', KEYS[2], seq .. '-1', 'id', ARGV[b], 'sender', ARGV[b + 1],
    'text', ARGV[b + 2], 'ts', ARGV[b + 3], 'cid', ARGV[b + 4])
  redis.call('HSET', KEYS[3], ARGV[b + 4], seq)
  ts = ARGV[b + 3]
end
redis.call('HSET', KEYS[1], 'seq', first + n - 1, 'ts', ts)
redis.call('PUBLISH', KEYS[4], first + n - 1)
return n
"#;

/// A Redis-backed [`RoomStore`]. Cheap to clone; reconnects by itself.
#[derive(Clone)]
pub struct RedisStore {
    /// For pub/sub connections (one per room being watched).
    client: redis::Client,
    conn: ConnectionManager,
    /// Prepended to every key (tests use a fresh one each).
    prefix: String,
    append: redis::Script,
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        // Reconnects by itself later; at start, fail fast with a clear error instead.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(std::time::Duration::from_millis(500))
            .set_connection_timeout(Some(std::time::Duration::from_secs(1)));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            append: redis::Script::new(APPEND),
        })
    }

    fn key(&self, room: &RoomName, what: &str) -> String {
        format!("{}:{{{}}}:{what}", self.prefix, room.as_str())
    }
}

/// Longest wait for one Redis request. A Redis that is down or stalled fails the request quickly
/// (the client is told `unavailable` and keeps its message) instead of holding the room up while
/// the connection manager reconnects.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn timed<T>(
    request: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(StoreError::Unavailable(
            "Redis did not answer in time".into(),
        )),
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn message(entry: &redis::streams::StreamId) -> Option<ChatMessage> {
    let seq = entry.id.split('-').next()?.parse().ok()?;
    Some(ChatMessage {
        seq,
        id: entry.get("id")?,
        sender: entry.get("sender")?,
        text: entry.get("text")?,
        sent_at_ms: entry.get("ts")?,
        client_id: entry.get("cid")?,
    })
}

fn messages(reply: StreamRangeReply) -> Result<Vec<ChatMessage>, StoreError> {
    reply
        .ids
        .iter()
        .map(|e| message(e).ok_or_else(|| StoreError::Unavailable(format!("bad entry {}", e.id))))
        .collect()
}

impl RoomStore for RedisStore {
    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let Some(first) = batch.first() else {
                return Ok(());
            };
            let mut invocation = self.append.prepare_invoke();
            invocation
                .key(self.key(room, "meta"))
                .key(self.key(room, "log"))
                .key(self.key(room, "ids"))
                .key(self.key(room, "live"))
                .arg(first.seq)
                .arg(batch.len());
            for m in batch {
                invocation
                    .arg(&m.id)
                    .arg(&m.sender)
                    .arg(&m.text)
                    .arg(m.sent_at_ms)
                    .arg(&m.client_id);
            }
            let mut conn = self.conn.clone();
            let _: i64 = timed(invocation.invoke_async(&mut conn)).await?;
            Ok(())
        })
    }

    fn head<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<(Seq, i64), StoreError>> {
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
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let reply: StreamRangeReply = timed(conn.xrange_count(
                self.key(room, "log"),
                format!("{}-0", after + 1),
                "+",
                limit,
            ))
            .await?;
            messages(reply)
        })
    }

    fn before<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ChatMessage>, StoreError>> {
        Box::pin(async move {
            let end = match before {
                Some(0 | 1) => return Ok(Vec::new()),
                Some(b) => format!("{}-1", b - 1),
                None => "+".to_owned(),
            };
            let mut conn = self.conn.clone();
            let reply: StreamRangeReply =
                timed(conn.xrevrange_count(self.key(room, "log"), end, "-", limit)).await?;
            let mut page = messages(reply)?;
            page.reverse();
            Ok(page)
        })
    }

    fn find_client_ids<'a>(
        &'a self,
        room: &'a RoomName,
        client_ids: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, Seq>, StoreError>> {
        Box::pin(async move {
            if client_ids.is_empty() {
                return Ok(HashMap::new());
            }
            let mut conn = self.conn.clone();
            let seqs: Vec<Option<Seq>> = timed(
                redis::cmd("HMGET")
                    .arg(self.key(room, "ids"))
                    .arg(client_ids)
                    .query_async(&mut conn),
            )
            .await?;
            Ok(client_ids
                .iter()
                .zip(seqs)
                .filter_map(|(id, seq)| seq.map(|s| (id.clone(), s)))
                .collect())
        })
    }

    fn watch<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<BoxStream<'static, Seq>>, StoreError>> {
        Box::pin(async move {
            let mut pubsub = timed(self.client.get_async_pubsub()).await?;
            timed(pubsub.subscribe(self.key(room, "live"))).await?;
            let heads = pubsub
                .into_on_message()
                .filter_map(|msg| futures::future::ready(msg.get_payload::<Seq>().ok()));
            Ok(Some(heads.boxed()))
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let _: String = timed(redis::cmd("PING").query_async(&mut conn)).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Redis the tests use: `PALAVER_TEST_REDIS_URL`, else the local default. Never skipped:
    /// without a Redis these tests fail and say so (`.ci/run` starts one).
    pub async fn test_store() -> RedisStore {
        let url = std::env::var("PALAVER_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("randomness");
        let prefix = format!(
            "palaver-test-{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        match tokio::time::timeout(
            std::time::Duration::from_secs(5),
            RedisStore::connect(&url, &prefix),
        )
        .await
        {
            Ok(Ok(store)) => store,
            other => panic!(
                "these tests need a Redis at {url} (set PALAVER_TEST_REDIS_URL, or run .ci/run, \
                 which starts one): {:?}",
                other.map(|r| r.err())
            ),
        }
    }

    async fn clean_up(store: &RedisStore) {
        let mut conn = store.conn.clone();
        let keys: Vec<String> = conn
            .keys(format!("{}:*", store.prefix))
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = conn.del(keys).await;
        }
    }

    #[tokio::test]
    async fn meets_the_store_contract() {
        let store = test_store().await;
        crate::store::conformance::all(&store).await;
        clean_up(&store).await;
    }

    #[tokio::test]
    async fn keys_share_the_room_hash_tag() {
        let store = test_store().await;
        let room = crate::store::conformance::room("general");
        for what in ["log", "meta", "ids"] {
            assert!(store.key(&room, what).contains("{general}"));
        }
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_clear_error() {
        let Err(e) = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            RedisStore::connect("redis://127.0.0.1:1/", "x"),
        )
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("timed out".into()))) else {
            panic!("connected to nothing");
        };
        assert!(e.to_string().starts_with("storage is unavailable"), "{e}");
    }
}
