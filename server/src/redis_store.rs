//! The Redis engine (`--engine redis://…`): the [`RoomStore`] contract on a Redis server, and
//! what lets several nodes serve one room: notifications between nodes, a shared roster and a
//! shared per-IP rate limit.
//!
//! Per room, keys sharing the `{room}` hash tag (so one room lives on one Redis Cluster slot and
//! a script may touch all of them):
//! - `palaver:{room}:log`, a stream with one entry per message, entry id `<seq>-1`;
//! - `palaver:{room}:meta`, a hash with the last `seq` and its `ts`;
//! - `palaver:{room}:ids`, a hash from client id to seq (idempotency);
//! - `palaver:{room}:roster`, a hash from node id to that node's people and its lease;
//! - `palaver:{room}:live`, a pub/sub channel: `h<seq>` for each new head (every node with
//!   clients in the room reads the new messages from the stream and delivers them in sequence
//!   order, whoever wrote them), `r<node>` when a node's part of the roster changes.
//!
//! Per address and rate-limit setting, `palaver:rate:{ip}:<interval ms>:<burst>` holds the GCRA
//! "theoretical arrival time" of the shared rate limit. The setting is part of the key because a
//! generous limit lets that time run far ahead (one interval per post): nodes started with a
//! stricter setting later must not inherit it, or they would lock the address out for hours.
//!
//! `append` is one Lua script: it numbers the new messages after the stored head (skipping client
//! ids already stored, which get their earlier numbers), adds them, moves the head and publishes
//! it, atomically and in one round trip. Several nodes writing one room therefore never race for
//! a number, never leave a hole or a duplicate, and history order is live order.
//!
//! Notifications: one pub/sub connection per node (RESP3 push messages on a connection that
//! reconnects and resubscribes by itself), subscribed to the rooms this node has loaded, i.e. the
//! rooms with local clients. On Redis Cluster (`redis+cluster://host:port,host:port`) the
//! channels are sharded (`SPUBLISH`/`SSUBSCRIBE`), so each message goes only to the shard that
//! holds its room; on a single Redis, plain `PUBLISH`/`SUBSCRIBE`. Each message is routed to its room's task. When the connection
//! drops, every room hears [`EngineEvent::Lost`]; each then probes until Redis answers again and
//! catches up from its last sequence number.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use app::limits::RoomName;
use app::protocol::{ChatMessage, Seq};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream, StreamExt};
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::streams::StreamRangeReply;
use redis::{
    AsyncCommands, Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo, PushKind,
    RedisFuture, RedisResult, Value,
};
use tokio::sync::mpsc;

use crate::store::{Appended, EngineEvent, RoomStore, Roster, StoreError, ROSTER_LEASE};

/// KEYS: meta, log, ids, live. ARGV: the message count, then id, sender, text, ts, client id
/// for each. Numbers the new messages after the stored head, skips client ids already stored,
/// and publishes the new head: returns {seq, ts, 1 if stored now} per message.
const APPEND: &str = r#"
local stored_head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local head = stored_head
local head_ts = redis.call('HGET', KEYS[1], 'ts') or '0'
local n = tonumber(ARGV[1])
local out = {}
for i = 0, n - 1 do
  local b = 2 + i * 5
  local cid = ARGV[b + 4]
  local old = redis.call('HGET', KEYS[3], cid)
  if old then
    local entry = redis.call('XRANGE', KEYS[2], old .. '-1', old .. '-1')
    local ts = 0
    if entry[1] then
      local fields = entry[1][2]
      for f = 1, #fields, 2 do
        if fields[f] == 'ts' then ts = tonumber(fields[f + 1]) end
      end
    end
    out[#out + 1] = {tonumber(old), ts, 0}
  else
    head = head + 1
    local ts = ARGV[b + 3]
    if tonumber(ts) < tonumber(head_ts) then ts = head_ts end
    head_ts = ts
    redis.call('XADD', KEYS[2], head .. '-1', 'id', ARGV[b], 'sender', ARGV[b + 1],
      'text', ARGV[b + 2], 'ts', ts, 'cid', cid)
    redis.call('HSET', KEYS[3], cid, head)
    out[#out + 1] = {head, tonumber(ts), 1}
  end
end
if head > stored_head then
  redis.call('HSET', KEYS[1], 'seq', head, 'ts', head_ts)
  redis.call('__PUBLISH__', KEYS[4], 'h' .. head)
end
return out
"#;

/// Redis's own clock in milliseconds, so that leases and rate limits do not depend on the nodes'
/// clocks agreeing.
const NOW_MS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"#;

/// KEYS: roster hash, live channel. ARGV: node id, JSON roster ('' to leave), lease ms, '1' to
/// announce the change to other nodes.
const SHARE_ROSTER: &str = r#"
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  local lease = tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], ARGV[1], (now + lease) .. '|' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
end
if ARGV[4] == '1' then
  redis.call('__PUBLISH__', KEYS[2], 'r' .. ARGV[1])
end
return 1
"#;

/// KEYS: roster hash. ARGV: this node's id. Returns the other nodes' live JSON rosters and drops
/// lapsed leases (nodes that died without leaving).
const REMOTE_ROSTER: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local value = all[i + 1]
  local sep = string.find(value, '|', 1, true)
  local expires = tonumber(string.sub(value, 1, sep - 1))
  if expires < now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] then
    table.insert(out, string.sub(value, sep + 1))
  end
end
return out
"#;

/// GCRA over all nodes. KEYS: the address's key. ARGV: emission interval ms, burst. Returns 0
/// when the post is allowed, else how many ms until it would be.
const RATE_LIMIT: &str = r#"
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
if tat - now > tolerance then
  return tat - now - tolerance
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now + 1000)
return 0
"#;

fn with_clock(script: &str) -> redis::Script {
    redis::Script::new(&format!("{NOW_MS}{script}"))
}

/// The script with its publish command: sharded on a Cluster (the channel shares the room's
/// hash tag, so it lives on the room's shard).
fn publishing(script: &str, cluster: bool) -> String {
    script.replace("__PUBLISH__", if cluster { "SPUBLISH" } else { "PUBLISH" })
}

/// A connection to a single Redis (reconnecting by itself) or to a Redis Cluster (following its
/// slots and failovers by itself).
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl Connection {
    async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Connection::Single(c) => c.subscribe(channel).await,
            Connection::Cluster(c) => c.ssubscribe(channel).await,
        }
    }

    async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Connection::Single(c) => c.unsubscribe(channel).await,
            Connection::Cluster(c) => c.sunsubscribe(channel).await,
        }
    }
}

/// Longest wait for a connection to be made, and how many times to try.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_RETRIES: usize = 2;

/// Opens the data connection and the pub/sub connection (whose push messages go to `push`).
async fn open(
    url: &str,
    push: impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static,
) -> Result<(Connection, Connection), StoreError> {
    if let Some(seeds) = url.strip_prefix("redis+cluster://") {
        let nodes: Vec<String> = seeds
            .split(',')
            .map(|seed| format!("redis://{seed}"))
            .collect();
        let builder = || {
            redis::cluster::ClusterClient::builder(nodes.clone())
                .retries(CONNECT_RETRIES as u32)
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(REQUEST_TIMEOUT)
        };
        let data = builder().build().map_err(unavailable)?;
        let pubsub = builder()
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(push)
            .build()
            .map_err(unavailable)?;
        let data = data.get_async_connection().await.map_err(unavailable)?;
        let pubsub = pubsub.get_async_connection().await.map_err(unavailable)?;
        return Ok((Connection::Cluster(data), Connection::Cluster(pubsub)));
    }
    let info = url.into_connection_info().map_err(unavailable)?;
    let client = redis::Client::open(info.clone()).map_err(unavailable)?;
    // Reconnects by itself later; at start, fail fast with a clear error instead.
    let config = || {
        redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(CONNECT_RETRIES)
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
    };
    let data = client
        .get_connection_manager_with_config(config())
        .await
        .map_err(unavailable)?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let pubsub_client = redis::Client::open(info.set_redis_settings(resp3)).map_err(unavailable)?;
    let pubsub = pubsub_client
        .get_connection_manager_with_config(
            config()
                .set_push_sender(push)
                .set_automatic_resubscription(),
        )
        .await
        .map_err(unavailable)?;
    Ok((Connection::Single(data), Connection::Single(pubsub)))
}

/// Room channel name -> the room task's event queue. Filled by `watch`, read by the push handler
/// (which runs on the pub/sub connection's task, so it never blocks: a full queue already holds
/// an event that makes the room catch up).
type Routes = Mutex<HashMap<String, mpsc::Sender<EngineEvent>>>;

/// Events queued per room before further ones are dropped (each makes the room read the store
/// up to its latest head, so one waiting event is as good as many).
const ROOM_EVENT_QUEUE: usize = 16;

/// The node's one pub/sub connection and where its messages go.
struct Notifications {
    routes: Routes,
    /// Serialises SUBSCRIBE and UNSUBSCRIBE, so that the unsubscribe of a room that just left
    /// memory cannot overtake the subscribe of the same room loaded again.
    changes: tokio::sync::Mutex<()>,
    /// This node's id, to ignore its own roster announcements.
    node: String,
}

impl Notifications {
    fn routes(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::Sender<EngineEvent>>> {
        // Every mutation is a single insert or remove: a poisoned map is still consistent.
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called for every push message of the pub/sub connection.
    fn route(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                let mut data = push.data.into_iter();
                let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) =
                    (data.next(), data.next())
                else {
                    return;
                };
                let Ok(channel) = String::from_utf8(channel) else {
                    return;
                };
                let event = match payload.split_first() {
                    Some((b'h', seq)) => std::str::from_utf8(seq)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .map(EngineEvent::Head),
                    Some((b'r', node)) if node != self.node.as_bytes() => Some(EngineEvent::Roster),
                    _ => None,
                };
                if let Some(event) = event {
                    if let Some(room) = self.routes().get(&channel) {
                        let _ = room.try_send(event);
                    }
                }
            }
            PushKind::Disconnection => {
                for room in self.routes().values() {
                    let _ = room.try_send(EngineEvent::Lost);
                }
            }
            _ => {}
        }
    }
}

/// A Redis-backed [`RoomStore`]. Cheap to clone; reconnects by itself.
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    /// The node's pub/sub connection (RESP3); resubscribes by itself after a reconnect.
    pubsub: Connection,
    notifications: Arc<Notifications>,
    /// Prepended to every key (tests use a fresh one each).
    prefix: String,
    append: redis::Script,
    share_roster: redis::Script,
    remote_roster: redis::Script,
}

impl RedisStore {
    /// Connects to `url`: `redis://host:port/db` for one Redis, or
    /// `redis+cluster://host:port,host:port` for a Redis Cluster (any of its nodes as seeds).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let cluster = url.starts_with("redis+cluster://");
        let node = random_id();
        let notifications = Arc::new(Notifications {
            routes: Mutex::default(),
            changes: tokio::sync::Mutex::new(()),
            node: node.clone(),
        });
        let router = Arc::downgrade(&notifications);
        let push = move |push: PushInfo| -> Result<(), std::convert::Infallible> {
            if let Some(notifications) = router.upgrade() {
                notifications.route(push);
            }
            Ok(())
        };
        let (conn, pubsub) = open(url, push).await?;
        Ok(Self {
            conn,
            pubsub,
            notifications,
            prefix: prefix.to_owned(),
            append: redis::Script::new(&publishing(APPEND, cluster)),
            share_roster: with_clock(&publishing(SHARE_ROSTER, cluster)),
            remote_roster: with_clock(REMOTE_ROSTER),
        })
    }

    /// This node's id in shared state (random per process).
    pub fn node_id(&self) -> &str {
        &self.notifications.node
    }

    fn key(&self, room: &RoomName, what: &str) -> String {
        format!("{}:{{{}}}:{what}", self.prefix, room.as_str())
    }

    /// The per-IP rate limit shared by every node on this Redis.
    pub fn rate_limit(&self, interval: Duration, burst: u32) -> SharedRateLimit {
        SharedRateLimit {
            conn: self.conn.clone(),
            prefix: self.prefix.clone(),
            script: with_clock(RATE_LIMIT),
            interval_ms: u64::try_from(interval.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            burst: burst.max(1),
        }
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness two nodes could share an id; the time is a fallback that is unique
    // enough for a roster lease.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            .to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Longest wait for one Redis request. A Redis that is down or stalled fails the request quickly
/// (the client is told `unavailable` and keeps its message) instead of holding the room up while
/// the connection manager reconnects.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

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

/// A room's subscription: its events, for as long as the room holds it.
struct Subscription {
    events: mpsc::Receiver<EngineEvent>,
    channel: String,
    notifications: Arc<Notifications>,
    pubsub: Connection,
}

impl Stream for Subscription {
    type Item = EngineEvent;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<EngineEvent>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The room left memory: stop receiving its messages, unless it is already back.
        self.events.close();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (channel, notifications, mut pubsub) = (
            std::mem::take(&mut self.channel),
            self.notifications.clone(),
            self.pubsub.clone(),
        );
        runtime.spawn(async move {
            let _order = notifications.changes.lock().await;
            {
                let mut routes = notifications.routes();
                if !routes.get(&channel).is_some_and(mpsc::Sender::is_closed) {
                    return;
                }
                routes.remove(&channel);
            }
            // Best effort: a failure means the connection is gone, and with it the subscription.
            let _ = timed(pubsub.unsubscribe(&channel)).await;
        });
    }
}

impl RoomStore for RedisStore {
    fn is_shared(&self) -> bool {
        true
    }

    fn append<'a>(
        &'a self,
        room: &'a RoomName,
        batch: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<Vec<Appended>, StoreError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(Vec::new());
            }
            let mut invocation = self.append.prepare_invoke();
            invocation
                .key(self.key(room, "meta"))
                .key(self.key(room, "log"))
                .key(self.key(room, "ids"))
                .key(self.key(room, "live"))
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

    fn watch<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Option<BoxStream<'static, EngineEvent>>, StoreError>> {
        Box::pin(async move {
            let channel = self.key(room, "live");
            let (tx, events) = mpsc::channel(ROOM_EVENT_QUEUE);
            let _order = self.notifications.changes.lock().await;
            self.notifications.routes().insert(channel.clone(), tx);
            let mut pubsub = self.pubsub.clone();
            // The Subscription's drop undoes the route (and the subscription) on failure too.
            let subscription = Subscription {
                events,
                channel: channel.clone(),
                notifications: self.notifications.clone(),
                pubsub: self.pubsub.clone(),
            };
            timed(pubsub.subscribe(&channel)).await?;
            Ok(Some(subscription.boxed()))
        })
    }

    fn share_roster<'a>(
        &'a self,
        room: &'a RoomName,
        local: &'a Roster,
        changed: bool,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let json = if local.is_empty() {
                String::new()
            } else {
                serde_json::to_string(local).map_err(|e| StoreError::Unavailable(e.to_string()))?
            };
            let mut conn = self.conn.clone();
            let _: i64 = timed(
                self.share_roster
                    .key(self.key(room, "roster"))
                    .key(self.key(room, "live"))
                    .arg(&self.notifications.node)
                    .arg(json)
                    .arg(u64::try_from(ROSTER_LEASE.as_millis()).unwrap_or(u64::MAX))
                    .arg(if changed { "1" } else { "0" })
                    .invoke_async(&mut conn),
            )
            .await?;
            Ok(())
        })
    }

    fn remote_roster<'a>(
        &'a self,
        room: &'a RoomName,
    ) -> BoxFuture<'a, Result<Roster, StoreError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let parts: Vec<String> = timed(
                self.remote_roster
                    .key(self.key(room, "roster"))
                    .arg(&self.notifications.node)
                    .invoke_async(&mut conn),
            )
            .await?;
            let mut roster = Roster::new();
            for part in parts {
                // A part another version wrote that this one cannot read is left out, not fatal.
                let Ok(names) = serde_json::from_str::<Roster>(&part) else {
                    continue;
                };
                for (name, count) in names {
                    *roster.entry(name).or_default() += count;
                }
            }
            Ok(roster)
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

/// The per-IP post rate limit kept in Redis, so an address gets one budget across every node.
#[derive(Clone)]
pub struct SharedRateLimit {
    conn: Connection,
    prefix: String,
    script: redis::Script,
    interval_ms: u64,
    burst: u32,
}

/// How long a post waits for the shared rate limit before the node decides on its own.
const RATE_LIMIT_TIMEOUT: Duration = Duration::from_millis(250);

impl SharedRateLimit {
    /// Counts one post from `ip`: `Ok(Ok(()))` allowed, `Ok(Err(wait))` refused for `wait`,
    /// `Err` when Redis did not answer (the caller falls back to its own limiter).
    pub async fn check(&self, ip: IpAddr) -> Result<Result<(), Duration>, StoreError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.script.key(format!(
            "{}:rate:{{{ip}}}:{}:{}",
            self.prefix, self.interval_ms, self.burst
        ));
        invocation.arg(self.interval_ms).arg(self.burst);
        let invocation = invocation.invoke_async::<u64>(&mut conn);
        let wait_ms = match tokio::time::timeout(RATE_LIMIT_TIMEOUT, invocation).await {
            Ok(result) => result.map_err(unavailable)?,
            Err(_) => return Err(StoreError::Unavailable("rate limit timed out".into())),
        };
        Ok(if wait_ms == 0 {
            Ok(())
        } else {
            Err(Duration::from_millis(wait_ms))
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
    async fn a_stricter_rate_limit_does_not_inherit_a_generous_ones_debt() {
        let store = test_store().await;
        let ip: IpAddr = "192.0.2.90".parse().unwrap();
        // A generous limit, used a lot: its next allowed time runs 100 s ahead.
        let generous = store.rate_limit(Duration::from_secs(1), 1000);
        for _ in 0..100 {
            assert!(generous.check(ip).await.unwrap().is_ok());
        }
        // Nodes restarted with a strict limit start afresh instead of refusing for 100 s.
        let strict = store.rate_limit(Duration::from_secs(1), 3);
        assert!(strict.check(ip).await.unwrap().is_ok());
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

/// The engine on a real Redis Cluster (three primaries started here from `redis-server`): the
/// store contract, sharded notifications, the shared roster and rate limit, and two rooms on
/// two "nodes" agreeing on every number.
#[cfg(test)]
mod cluster_tests {
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::room::{spawn_room, RoomSettings};

    /// Three cluster-enabled `redis-server`s joined into one cluster; killed when dropped.
    struct TestCluster {
        servers: Vec<Child>,
        ports: Vec<u16>,
        _dir: tempfile::TempDir,
    }

    /// A port that is free, with its cluster bus port (+10000) free too.
    fn free_cluster_port() -> u16 {
        loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
                return port;
            }
        }
    }

    impl TestCluster {
        async fn start() -> Self {
            let dir = tempfile::tempdir().expect("temp dir");
            let ports: Vec<u16> = (0..3).map(|_| free_cluster_port()).collect();
            let servers = ports
                .iter()
                .map(|port| {
                    Command::new("redis-server")
                        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                        .args([
                            "--cluster-enabled",
                            "yes",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                        ])
                        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                        .arg("--dir")
                        .arg(dir.path())
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("redis-server is installed (.ci/run installs it)")
                })
                .collect();
            let cluster = Self {
                servers,
                ports,
                _dir: dir,
            };
            for port in &cluster.ports {
                cluster.wait_for(*port, |_| true).await;
            }
            let status = Command::new("redis-cli")
                .arg("--cluster")
                .arg("create")
                .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdout(Stdio::null())
                .status()
                .expect("redis-cli is installed with redis-server");
            assert!(status.success(), "redis-cli --cluster create failed");
            for port in &cluster.ports {
                cluster
                    .wait_for(*port, |info| info.contains("cluster_state:ok"))
                    .await;
            }
            cluster
        }

        /// Waits until `CLUSTER INFO` on `port` satisfies `ready`.
        async fn wait_for(&self, port: u16, ready: impl Fn(&str) -> bool) {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
                    if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                        let info: RedisResult<String> = redis::cmd("CLUSTER")
                            .arg("INFO")
                            .query_async(&mut conn)
                            .await;
                        if info.is_ok_and(|i| ready(&i)) {
                            return;
                        }
                    }
                }
                assert!(std::time::Instant::now() < deadline, "cluster never ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        fn url(&self) -> String {
            let seeds: Vec<String> = self
                .ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            format!("redis+cluster://{}", seeds.join(","))
        }
    }

    impl Drop for TestCluster {
        fn drop(&mut self) {
            for server in &mut self.servers {
                let _ = server.kill();
                let _ = server.wait();
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_cluster_the_engine_keeps_its_contract_and_nodes_agree() {
        let cluster = TestCluster::start().await;
        let url = cluster.url();
        let one = RedisStore::connect(&url, "palaver")
            .await
            .expect("node one");
        let two = RedisStore::connect(&url, "palaver")
            .await
            .expect("node two");

        // The same contract as SQLite and a single Redis (rooms spread over the shards).
        crate::store::conformance::all(&one).await;

        // Sharded notifications: node two hears node one's head and roster change.
        let room = crate::store::conformance::room("cluster-watch");
        let mut events = two.watch(&room).await.unwrap().expect("a shared engine");
        one.append(&room, &[crate::store::conformance::msg(1, "w1")])
            .await
            .unwrap();
        let roster = Roster::from([("Ada".to_owned(), 1)]);
        one.share_roster(&room, &roster, true).await.unwrap();
        let mut heard = Vec::new();
        while heard.len() < 2 {
            let event = tokio::time::timeout(Duration::from_secs(5), events.next())
                .await
                .expect("an event in time")
                .expect("subscription open");
            heard.push(event);
        }
        assert_eq!(heard, [EngineEvent::Head(1), EngineEvent::Roster]);
        assert_eq!(two.remote_roster(&room).await.unwrap(), roster);
        assert!(one.remote_roster(&room).await.unwrap().is_empty());

        // One rate-limit budget for an address, whichever node asks.
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        let (limit_one, limit_two) = (
            one.rate_limit(Duration::from_secs(60), 2),
            two.rate_limit(Duration::from_secs(60), 2),
        );
        assert!(limit_one.check(ip).await.unwrap().is_ok());
        assert!(limit_two.check(ip).await.unwrap().is_ok());
        assert!(
            limit_one.check(ip).await.unwrap().is_err(),
            "the third is refused"
        );

        // Two room tasks, one per node, on one room: the same messages, numbers and order.
        let room = crate::store::conformance::room("cluster-room");
        let rooms: Vec<_> = [one, two]
            .into_iter()
            .map(|store| {
                spawn_room(
                    room.clone(),
                    Arc::new(store),
                    RoomSettings::default(),
                    CancellationToken::new(),
                    |_| {},
                )
            })
            .collect();
        let mut watchers = Vec::new();
        for handle in &rooms {
            watchers.push(handle.join("watcher".into()).await.unwrap());
        }
        for i in 0..20 {
            let handle = &rooms[i % 2];
            // The script numbers each batch: nodes never race, nothing is refused.
            let ack = handle
                .send("a".into(), format!("c{i}"), format!("t{i}"))
                .await
                .unwrap();
            ack.await.unwrap().expect("accepted");
        }
        let mut seen = Vec::new();
        for watcher in &mut watchers {
            let mut messages = Vec::new();
            while messages.len() < 20 {
                let delivery = tokio::time::timeout(Duration::from_secs(5), watcher.live.recv())
                    .await
                    .expect("delivered in time")
                    .expect("room open");
                if let app::protocol::ServerMsg::Message(m) = &delivery.msg {
                    messages.push((m.seq, m.client_id.clone()));
                }
            }
            seen.push(messages);
        }
        assert!(seen[0].iter().map(|(seq, _)| *seq).eq(1..=20));
        assert_eq!(
            seen[0], seen[1],
            "both nodes delivered the same, in the same order"
        );
    }
}
