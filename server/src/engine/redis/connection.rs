//! Connections to Redis: one for data and one for pub/sub per node, to a single Redis
//! (reconnecting by itself) or to a Redis Cluster (following its slots and failovers by itself),
//! and the time limit every request runs under.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo, RedisFuture, RedisResult, Value,
};

use crate::engine::EngineError;

/// Longest wait for a connection to be made, and how many times to try.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_RETRIES: usize = 2;

/// Longest wait for one Redis request. A Redis that is down or stalled fails the request quickly
/// (the client is told `unavailable` and keeps its message) instead of holding the room up while
/// the connection manager reconnects.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection to a single Redis or to a Redis Cluster.
#[derive(Clone)]
pub(super) enum Connection {
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
    /// Subscribes to a room's channel: sharded on a Cluster (the channel shares the room's hash
    /// tag, so it lives on the room's shard).
    pub(super) async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Connection::Single(c) => c.subscribe(channel).await,
            Connection::Cluster(c) => c.ssubscribe(channel).await,
        }
    }

    pub(super) async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Connection::Single(c) => c.unsubscribe(channel).await,
            Connection::Cluster(c) => c.sunsubscribe(channel).await,
        }
    }
}

/// The URL prefix of a Redis Cluster's seeds.
pub(super) const CLUSTER_SCHEME: &str = "redis+cluster://";

/// Opens the data connection and the pub/sub connection (whose push messages go to `push`).
pub(super) async fn open(
    url: &str,
    push: impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static,
) -> Result<(Connection, Connection), EngineError> {
    if let Some(seeds) = url.strip_prefix(CLUSTER_SCHEME) {
        return open_cluster(seeds, push).await;
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

/// [`open`] on a Cluster, from comma-separated `host:port` seeds.
async fn open_cluster(
    seeds: &str,
    push: impl Fn(PushInfo) -> Result<(), std::convert::Infallible> + Send + Sync + 'static,
) -> Result<(Connection, Connection), EngineError> {
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
    Ok((Connection::Cluster(data), Connection::Cluster(pubsub)))
}

/// Runs a request under [`REQUEST_TIMEOUT`].
pub(super) async fn timed<T>(
    request: impl std::future::Future<Output = RedisResult<T>>,
) -> Result<T, EngineError> {
    within(REQUEST_TIMEOUT, request).await
}

/// Runs a request under `limit`; a Redis that does not answer in time is unavailable.
pub(super) async fn within<T>(
    limit: Duration,
    request: impl std::future::Future<Output = RedisResult<T>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(limit, request).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => Err(EngineError::Unavailable(
            "Redis did not answer in time".into(),
        )),
    }
}

pub(super) fn unavailable(e: redis::RedisError) -> EngineError {
    EngineError::Unavailable(e.to_string())
}
