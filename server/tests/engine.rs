//! The server on the Redis engine (`--engine redis://…`), against the Redis on 127.0.0.1:6379
//! (or `PALAVER_TEST_REDIS_URL`). Never skipped: without a Redis these fail and say so.

mod common;

use app::protocol::ServerMsg;
use common::{Node, TestServer};
use testkit::redis::{shared_url as redis_url, PrivateRedis};

fn unique_room() -> String {
    testkit::redis::unique("engine")
}

#[tokio::test]
async fn on_redis_rooms_work_and_history_outlives_the_server() {
    let url = redis_url();
    let room = unique_room();
    {
        let server = TestServer::start_with(&["--engine", &url]).await;
        assert_eq!(
            common::http("GET", &server.http_url("/readyz")).await,
            (200, "ready\n".into())
        );
        let mut ada = server.join(&room, "Ada", None).await;
        let mut bob = server.join(&room, "Bob", None).await;
        assert_eq!(ada.send_and_ack("r1", "stored in Redis").await.0, 1);
        assert_eq!(bob.send_and_ack("r2", "me too").await.0, 2);
        let mut reader = server.join(&room, "Reader", Some(0)).await;
        let seen = reader.messages(2).await;
        assert_eq!(seen.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
        // A resend after a lost ack gets the original number.
        assert_eq!(ada.send_and_ack("r1", "stored in Redis").await.0, 1);
    }
    // A new server (another data directory, same Redis) has the history.
    let server = TestServer::start_with(&["--engine", &url]).await;
    let mut carol = server.join(&room, "Carol", Some(0)).await;
    let history = carol.messages(2).await;
    assert_eq!(history[0].text, "stored in Redis");
    assert_eq!(history[1].sender, "Bob");
    let (seq, before_ack) = carol.send_and_ack("r3", "continuing").await;
    assert_eq!(seq, 3);
    // Its own copy comes live, before or after the ack.
    let live = match before_ack.into_iter().find_map(|m| match m {
        ServerMsg::Message(m) => Some(m),
        _ => None,
    }) {
        Some(m) => m,
        None => carol.messages(1).await.remove(0),
    };
    assert_eq!(live.seq, 3);
}

#[tokio::test]
async fn an_unreachable_engine_is_a_clear_start_up_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--engine", "redis://127.0.0.1:1", "--bind", "127.0.0.1:0"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("palaver: engine (--engine):"),
        "{stderr}"
    );
}

#[tokio::test]
async fn while_redis_is_down_messages_are_refused_clearly_and_the_node_recovers_by_itself() {
    let redis = PrivateRedis::start(testkit::free_port(), None).await;
    let (port, url) = (redis.port, redis.url());
    let server = TestServer::start_with(&["--engine", &url]).await;
    let mut ada = server.join("outage", "Ada", None).await;
    assert_eq!(ada.send_and_ack("o1", "before").await.0, 1);

    drop(redis);
    // Still connected; the message is refused as `unavailable` (not accepted: the client keeps
    // it and sends it again), and the node says it is not ready.
    ada.send(&app::protocol::ClientMsg::Send {
        client_id: "o2".into(),
        text: "during".into(),
    })
    .await;
    let (mut refused, mut told_degraded) = (false, false);
    while !(refused && told_degraded) {
        match ada.recv().await {
            ServerMsg::Error {
                code, client_id, ..
            } => {
                assert_eq!(code, app::protocol::ErrorCode::Unavailable);
                assert_eq!(client_id.as_deref(), Some("o2"));
                refused = true;
            }
            ServerMsg::Status { degraded } => {
                assert!(degraded, "the first status says degraded");
                told_degraded = true;
            }
            ServerMsg::Message(_) | ServerMsg::Presence { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        common::http("GET", &server.http_url("/readyz")).await.0,
        503
    );
    let (_, metrics) = common::http("GET", &server.http_url("/metrics")).await;
    assert!(
        metrics.contains("palaver_rooms_degraded 1"),
        "the degraded room is counted"
    );

    // Redis comes back (empty: it kept nothing); the node reconnects by itself and the resend is
    // accepted.
    let _redis = PrivateRedis::start(port, None).await;
    loop {
        match ada.recv().await {
            ServerMsg::Status { degraded } => {
                assert!(!degraded, "the next status says it is back");
                break;
            }
            ServerMsg::Presence { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if common::http("GET", &server.http_url("/readyz")).await.0 == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, metrics) = common::http("GET", &server.http_url("/metrics")).await;
    assert!(
        metrics.contains("palaver_rooms_degraded 0"),
        "and uncounted"
    );
    let (seq, _) = ada.send_and_ack("o2", "during").await;
    assert_eq!(
        seq, 1,
        "this Redis kept nothing (no AOF), so numbering starts again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_deliver_the_same_messages_in_the_same_order() {
    let url = redis_url();
    let room = unique_room();
    let one = TestServer::start_with(&["--engine", &url]).await;
    let two = TestServer::start_with(&["--engine", &url]).await;
    let mut ada = one.join(&room, "Ada", None).await;
    let mut bob = two.join(&room, "Bob", None).await;
    let mut watcher_one = one.join(&room, "Watch1", None).await;
    let mut watcher_two = two.join(&room, "Watch2", None).await;

    // Both nodes post at once; every message gets one number and everyone sees the same order.
    let (a, b) = tokio::join!(
        async {
            for i in 0..20 {
                ada.post(&format!("a{i}"), &format!("from Ada {i}"), &mut Vec::new())
                    .await;
            }
        },
        async {
            for i in 0..20 {
                bob.post(&format!("b{i}"), &format!("from Bob {i}"), &mut Vec::new())
                    .await;
            }
        }
    );
    let ((), ()) = (a, b);
    let on_one = watcher_one.messages(40).await;
    let on_two = watcher_two.messages(40).await;
    assert!(
        on_one.iter().map(|m| m.seq).eq(1..=40),
        "contiguous on node one"
    );
    assert_eq!(
        on_one, on_two,
        "the same messages, numbers and order on both nodes"
    );
    let mut ids: Vec<&str> = on_one.iter().map(|m| m.client_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "no duplicates");

    // A client that moves to the other node resumes with nothing missed or repeated.
    let mut moved = two.join(&room, "Ada", Some(on_one[29].seq)).await;
    let rest = moved.messages(10).await;
    assert_eq!(rest, on_one[30..]);
}
