//! Full storage, for real: SQLite at its size limit (`--max-database-mb`, enforced by SQLite's
//! `max_page_count`) and a Redis out of memory (`maxmemory` with `noeviction`). The room says it
//! is degraded once and stays so (no flapping while storage is still full), `/readyz` is 503, the
//! metric says so, and when room is made it recovers by itself; nothing acknowledged is lost.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use app::protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::{Client, Frame, Node, Process};
use testkit::redis::PrivateRedis;

/// About 2 KB of text (near the longest message), numbered.
fn text(i: usize) -> String {
    format!("{i} {}", "x".repeat(1_990))
}

/// Posts until a message is refused as unavailable; returns what was acknowledged.
async fn fill(client: &mut Client, prefix: &str) -> (HashMap<String, u64>, String) {
    let mut acked = HashMap::new();
    for i in 0.. {
        let id = format!("{prefix}{i}");
        client
            .send(&ClientMsg::Send {
                client_id: id.clone(),
                text: text(i),
            })
            .await;
        loop {
            match client.recv().await {
                ServerMsg::Ack { client_id, seq } if client_id == id => {
                    acked.insert(client_id, seq);
                    break;
                }
                ServerMsg::Error {
                    code: ErrorCode::Unavailable,
                    client_id: Some(refused),
                    ..
                } if refused == id => return (acked, refused),
                _ => {}
            }
        }
        assert!(i < 10_000, "storage never filled");
    }
    unreachable!()
}

/// The status frames a watcher sees within `wait` (degraded flags, in order).
async fn statuses(watcher: &mut Client, wait: Duration) -> Vec<bool> {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match watcher.next_event(left).await {
            Some(Frame::Msg(ServerMsg::Status { degraded })) => seen.push(degraded),
            Some(Frame::Closed(code)) => panic!("closed: {code:?}"),
            _ => {}
        }
    }
    seen
}

async fn ready(node: &impl Node) -> u16 {
    common::http("GET", &node.http_url("/readyz")).await.0
}

async fn writable(node: &impl Node) -> String {
    let (_, metrics) = common::http("GET", &node.http_url("/metrics")).await;
    metrics
        .lines()
        .find(|l| l.starts_with("palaver_storage_writable "))
        .unwrap_or_default()
        .to_owned()
}

/// Full, steady, then back: what every engine must do when its storage fills up.
async fn full_then_back(server: &Process, make_room: impl std::future::Future<Output = ()>) {
    let mut ada = server.join("full", "Ada", None).await;
    let mut watcher = server.join("full", "Watcher", None).await;
    let (acked, refused) = fill(&mut ada, "f").await;
    assert!(!acked.is_empty());
    // Degraded once, and it stays so while storage is full: no back-and-forth.
    let seen = statuses(&mut watcher, Duration::from_secs(4)).await;
    assert_eq!(seen, [true], "one steady degraded state");
    assert_eq!(ready(server).await, 503);
    assert_eq!(writable(server).await, "palaver_storage_writable 0");

    make_room.await;
    let seen = statuses(&mut watcher, Duration::from_secs(5)).await;
    assert_eq!(seen, [false], "back by itself");
    assert_eq!(ready(server).await, 200);
    assert_eq!(writable(server).await, "palaver_storage_writable 1");
    // What was refused is sent again and taken; nothing acknowledged was lost.
    let mut seen_meanwhile = Vec::new();
    let seq = ada
        .post(&refused, &text(acked.len()), &mut seen_meanwhile)
        .await;
    let history = common::process::full_history(&server.ws_url("full")).await;
    let stored = common::process::assert_history_keeps(&history, acked.iter());
    assert_eq!(stored.get(&refused), Some(&seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_is_one_steady_degraded_state_until_room_is_made() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = common::RELAXED_RATE_LIMIT.to_vec();
    args.extend(["--max-database-mb", "1"]);
    let server = common::process::start(dir.path(), &args).await;
    // A third of the database is another room's, to be deleted later.
    let mut ballast = server.join("ballast", "Ballast", None).await;
    for i in 0..150 {
        ballast.send_and_ack(&format!("b{i}"), &text(i)).await;
    }
    let db = dir.path().join("palaver.db");
    full_then_back(&server, async move {
        // An operator deletes old messages: the database has room again.
        let conn = rusqlite::Connection::open(&db).expect("open the database");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        let deleted = conn
            .execute("DELETE FROM messages WHERE room = 'ballast'", [])
            .expect("delete");
        assert_eq!(deleted, 150);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_out_of_memory_is_one_steady_degraded_state_until_it_has_memory() {
    let redis = PrivateRedis::start_with(
        testkit::free_port(),
        None,
        &["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"],
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = common::RELAXED_RATE_LIMIT.to_vec();
    let url = redis.url();
    args.extend(["--engine", url.as_str()]);
    let server = common::process::start(dir.path(), &args).await;
    let port = redis.port;
    full_then_back(&server, async move {
        let status = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &port.to_string(),
                "CONFIG",
                "SET",
                "maxmemory",
                "64mb",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("redis-cli");
        assert!(status.success());
    })
    .await;
    drop(redis);
}
