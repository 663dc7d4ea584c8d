//! The Redis engine on the shared test Redis: the history and presence contracts, the shared rate
//! limit, key layout and a clear error when Redis is not there.

use std::time::Duration;

use redis::AsyncCommands;

use super::*;
use crate::engine::{conformance, Broker, History, SharedRateLimit};

/// A node on the shared test Redis, under a key prefix of its own. Never skipped: without a
/// Redis these tests fail and say so (`.ci/run` starts one).
pub async fn test_engine() -> RedisEngine {
    node(&testkit::redis::unique("palaver-test")).await
}

/// A node on the shared test Redis under `prefix` (nodes with one prefix share rooms).
async fn node(prefix: &str) -> RedisEngine {
    let url = testkit::redis::shared_url();
    match tokio::time::timeout(Duration::from_secs(5), RedisEngine::connect(&url, prefix)).await {
        Ok(Ok(engine)) => engine,
        other => panic!(
            "these tests need a Redis at {url} (set PALAVER_TEST_REDIS_URL, or run .ci/run, \
             which starts one): {:?}",
            other.map(|r| r.err())
        ),
    }
}

async fn clean_up(engine: &RedisEngine) {
    let mut conn = engine.conn.clone();
    let keys: Vec<String> = conn
        .keys(format!("{}:*", engine.prefix))
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = conn.del(keys).await;
    }
}

#[tokio::test]
async fn keeps_what_retention_says_with_client_ids_and_expiry() {
    let newest = test_engine().await.with_retention(conformance::KEEP_NEWEST);
    conformance::keeps_the_newest(&newest).await;
    let mut conn = newest.conn.clone();
    let room = conformance::room("conf-keep");
    let (log, ids): (u64, u64) = redis::pipe()
        .xlen(newest.key(&room, "log"))
        .hlen(newest.key(&room, "ids"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        (log, ids),
        (3, 3),
        "client-id records go with their messages"
    );

    let day = test_engine().await.with_retention(conformance::KEEP_A_DAY);
    conformance::forgets_the_old(&day).await;
    let room = conformance::room("conf-age");
    let (log, ids, ttl): (u64, u64, i64) = redis::pipe()
        .xlen(day.key(&room, "log"))
        .hlen(day.key(&room, "ids"))
        .pttl(day.key(&room, "log"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((log, ids), (1, 1), "removed from Redis, not only hidden");
    assert!(
        ttl > 0 && ttl <= 86_400_000,
        "the log expires a day after its last message: {ttl}"
    );
    let head_ttl: i64 = conn.pttl(day.key(&room, "meta")).await.unwrap();
    assert_eq!(head_ttl, -1, "the head never expires");
    clean_up(&newest).await;
    clean_up(&day).await;
}

#[tokio::test]
async fn meets_the_history_directory_presence_and_connection_contracts() {
    let one = test_engine().await;
    conformance::all(&one).await;
    conformance::directory(&one).await;
    crate::engine::moderation_conformance::all(&one).await;
    let two = node(&one.prefix).await;
    moderation_is_announced(&one, &two).await;
    conformance::presence(&one, &two).await;
    conformance::shared_connections(&one, &two).await;
    clean_up(&one).await;
}

#[tokio::test]
async fn a_stricter_rate_limit_does_not_inherit_a_generous_ones_debt() {
    let engine = test_engine().await;
    let ip = "192.0.2.90";
    // A generous limit, used a lot: its next allowed time runs 100 s ahead.
    for _ in 0..100 {
        let verdict = engine
            .spend("post", ip, Duration::from_secs(1), 1000, 1)
            .await;
        assert!(verdict.unwrap().is_ok());
    }
    // Nodes restarted with a strict limit start afresh instead of refusing for 100 s.
    let strict = engine.spend("post", ip, Duration::from_secs(1), 3, 1).await;
    assert!(strict.unwrap().is_ok());
    clean_up(&engine).await;
}

#[tokio::test]
async fn a_budget_spends_many_at_once_and_says_how_long_until_it_has_them() {
    let engine = test_engine().await;
    let (who, ms) = ("2001:db8::/64", Duration::from_millis(1));
    // 1,000 at once, then one a millisecond: two spends of 400 fit, a third must wait ~0.2 s.
    for _ in 0..2 {
        assert!(engine
            .spend("read", who, ms, 1000, 400)
            .await
            .unwrap()
            .is_ok());
    }
    let wait = engine
        .spend("read", who, ms, 1000, 400)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        wait > Duration::from_millis(150) && wait <= Duration::from_millis(200),
        "{wait:?}"
    );
    assert!(engine
        .spend("read", who, ms, 1000, 100)
        .await
        .unwrap()
        .is_ok());
    clean_up(&engine).await;
}

#[tokio::test]
async fn keys_share_the_room_hash_tag() {
    let engine = test_engine().await;
    let room = conformance::room("general");
    for what in ["log", "meta", "ids", "roster", "live"] {
        assert!(engine.key(&room, what).contains("{general}"));
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error() {
    let Err(e) = tokio::time::timeout(
        Duration::from_secs(10),
        RedisEngine::connect("redis://127.0.0.1:1/", "x"),
    )
    .await
    .unwrap_or_else(|_| Err(EngineError::Unavailable("timed out".into()))) else {
        panic!("connected to nothing");
    };
    assert!(e.to_string().starts_with("storage is unavailable"), "{e}");
}

#[tokio::test]
async fn a_working_engine_checks_out() {
    let engine = test_engine().await;
    engine.check().await.expect("PING answered");
}

#[tokio::test]
async fn a_deleted_messages_text_is_gone_from_redis() {
    use crate::engine::conformance::{change, msg, room};
    let engine = test_engine().await;
    let r = room("secrets");
    let marker = "SECRET-7f3a9c-TEXT";
    let mut said = msg(1, "s1");
    said.text = format!("{marker} as sent");
    engine.append(&r, &[said, msg(2, "s2")]).await.unwrap();
    let edit = change("s3", 1, Some(&format!("{marker} as edited")));
    engine.append(&r, &[edit]).await.unwrap();
    let stored = |engine: RedisEngine| async move {
        let mut conn = engine.conn.clone();
        let keys: Vec<String> = conn.keys(format!("{}:*", engine.prefix)).await.unwrap();
        let mut all = String::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let mut command = match kind.as_str() {
                "stream" => redis::cmd("XRANGE"),
                "zset" => redis::cmd("ZRANGE"),
                "hash" => redis::cmd("HGETALL"),
                _ => continue,
            };
            command.arg(&key);
            match kind.as_str() {
                "stream" => command.arg("-").arg("+"),
                "zset" => command.arg(0).arg(-1),
                _ => &mut command,
            };
            let dump: Vec<redis::Value> = command.query_async(&mut conn).await.unwrap();
            all.push_str(&format!("{dump:?}"));
        }
        all
    };
    assert!(
        stored(engine.clone()).await.contains(marker),
        "stored before the delete"
    );
    engine.append(&r, &[change("s4", 1, None)]).await.unwrap();
    let left = stored(engine.clone()).await;
    assert!(!left.contains(marker), "gone from every key: {left}");
    let all = engine.after(&r, 0, 10).await.unwrap();
    assert!(all[0].deleted && all[0].text.is_empty());
    clean_up(&engine).await;
}

/// A moderation change announced on one node reaches a room subscribed on another.
pub(super) async fn moderation_is_announced(one: &RedisEngine, two: &RedisEngine) {
    use futures::StreamExt;
    let r = crate::engine::conformance::room("conf-announce");
    let mut events = two.subscribe(&r).await.expect("subscribe");
    one.announce_moderation(&r).await.expect("announce");
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await;
    assert_eq!(
        event.expect("in time"),
        Some(crate::engine::PeerEvent::Moderation)
    );
}
