//! Hostile input against the real server: floods, cross-site upgrades, forged forwarding headers,
//! clients that stop reading or go silent.

mod common;

use std::time::Duration;

use app::protocol::{close_code, ClientMsg, ErrorCode, ServerMsg};
use common::{flood, join_and_stop_reading, Node, TestServer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const STRICT: &[&str] = &[
    "--rate-limit-burst",
    "3",
    "--rate-limit-interval-ms",
    "60000",
];

/// Sends `text` as a new message and returns what the server answered: Ok(seq) or the error.
async fn post(c: &mut common::Client, id: &str) -> Result<u64, (ErrorCode, Option<u64>)> {
    c.send(&ClientMsg::Send {
        client_id: id.into(),
        text: format!("flood {id}"),
    })
    .await;
    loop {
        match c.recv().await {
            ServerMsg::Ack { client_id, seq } if client_id == id => return Ok(seq),
            ServerMsg::Error {
                code,
                client_id: Some(cid),
                retry_after_ms,
                ..
            } if cid == id => return Err((code, retry_after_ms)),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_flood_from_one_address_across_two_rooms_is_limited_and_told_when_to_retry() {
    let server = TestServer::start_with(STRICT).await;
    let mut a = server.join("flood-a", "Mallory", None).await;
    let mut b = server.join("flood-b", "Mallory", None).await;
    assert!(post(&mut a, "a1").await.is_ok());
    assert!(post(&mut b, "b1").await.is_ok());
    assert!(post(&mut a, "a2").await.is_ok());
    // The burst of 3 is shared by both rooms: the fourth is refused, with how long to wait.
    let (code, retry) = post(&mut b, "b2").await.expect_err("limited");
    assert_eq!(code, ErrorCode::RateLimited);
    let retry = retry.expect("retry_after_ms");
    assert!(retry > 50_000 && retry <= 60_000, "{retry} ms");
    // Nothing refused was stored: room B still has only its first message.
    let mut reader = server.join("flood-b", "Reader", Some(0)).await;
    let stored = reader.messages(1).await;
    assert_eq!(stored[0].client_id, "b1");
    assert!(reader
        .next_event(Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test]
async fn a_cross_origin_upgrade_is_refused_with_403() {
    let server = TestServer::start().await;
    let mut req = server.ws_url("origin").into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", HeaderValue::from_static("https://evil.example"));
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    // The site's own origin is fine.
    let mut req = server.ws_url("origin").into_client_request().unwrap();
    let own = format!("http://{}", server.server.addr);
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(&own).unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
    // So is one on the allow-list.
    let allowed = TestServer::start_with(&["--allowed-origins", "https://chat.example.org"]).await;
    let mut req = allowed.ws_url("origin").into_client_request().unwrap();
    req.headers_mut().insert(
        "origin",
        HeaderValue::from_static("https://chat.example.org"),
    );
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

#[tokio::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let server = TestServer::start_with(STRICT).await;
    // Each connection claims to be someone else; the server only believes the socket peer.
    let mut spent = 0;
    for i in 0..4 {
        let mut req = server.ws_url("forged").into_client_request().unwrap();
        let fake = format!("203.0.113.{i}");
        req.headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_str(&fake).unwrap());
        req.headers_mut().insert(
            "forwarded",
            HeaderValue::from_str(&format!("for={fake}")).unwrap(),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut c = common::Client::from_stream(ws);
        c.send(&ClientMsg::Join {
            token: None,
            owner_key: None,
            name: format!("Fake {i}"),
            after_seq: None,
            key: common::test_key(),
        })
        .await;
        assert!(matches!(c.recv().await, ServerMsg::Welcome { .. }));
        match post(&mut c, &format!("f{i}")).await {
            Ok(_) => spent += 1,
            Err((code, _)) => assert_eq!(code, ErrorCode::RateLimited),
        }
    }
    assert_eq!(spent, 3, "one shared limit for one real address");
}

#[tokio::test]
async fn connections_are_capped_per_address_before_the_upgrade() {
    let server = TestServer::start_with(&["--max-connections-per-ip", "2"]).await;
    let first = server.join("caps", "One", None).await;
    let _second = server.join("caps-other-room", "Two", None).await;
    match tokio_tungstenite::connect_async(server.ws_url("caps")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    // Closing one frees its place (the server notices the close within moments).
    first.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio_tungstenite::connect_async(server.ws_url("caps")).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("place not freed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stays_behind_is_disconnected_after_the_write_timeout() {
    let server = TestServer::start_with(&["--write-timeout-ms", "500"]).await;
    let mut reader = server.join("behind", "Reader", None).await;
    let mut sender = server.join("behind", "Sender", None).await;
    let mut stalled = join_and_stop_reading(&server, "behind", "Stalled").await;
    // Enough to fill the stalled client's buffers, so a write blocks and times out.
    flood(&mut sender, &mut reader, 3_000, |_| {}).await;
    loop {
        let (_, _, left) = reader.next_presence().await;
        if left.contains(&"Stalled".to_owned()) {
            break;
        }
    }
    // When it finally reads, it gets what fitted in its buffers, then the end of the connection
    // (a 4008 close if the close frame still fitted): it reconnects and resumes from there.
    loop {
        match stalled.next_frame(Duration::from_secs(5)).await {
            Some(common::Frame::Msg(_)) => continue,
            Some(common::Frame::Closed(code)) => {
                assert!(
                    matches!(code, None | Some(close_code::TOO_SLOW)),
                    "{code:?}"
                );
                break;
            }
            None => panic!("the connection was not closed"),
        }
    }
}

#[tokio::test]
async fn a_silent_client_leaves_the_roster_after_the_peer_timeout_once() {
    let server =
        TestServer::start_with(&["--ping-interval-ms", "200", "--peer-timeout-ms", "1000"]).await;
    let mut watcher = server.join("silent", "Watcher", None).await;
    let started = tokio::time::Instant::now();
    // Joined, then silent: it answers no pings (nothing reads its socket).
    let _silent = join_and_stop_reading(&server, "silent", "Ghost").await;
    loop {
        let (_, _, left) = watcher.next_presence().await;
        if left.contains(&"Ghost".to_owned()) {
            break;
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(4),
        "left after {waited:?}"
    );
    // The watcher itself answers pings (its socket is read) and stays; Ghost leaves once.
    let quiet = watcher.next_event(Duration::from_millis(1500)).await;
    assert!(quiet.is_none(), "{quiet:?}");
    assert!(
        watcher.presence.iter().all(|(_, _, left)| left.is_empty()),
        "{:?}",
        watcher.presence
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_catch_up_is_paced_by_the_history_budget_and_loses_nothing() {
    let server = TestServer::start_with(&[
        "--history-rate-limit",
        "1000",
        "--history-rate-limit-burst",
        "500",
    ])
    .await;
    let mut writer = server.join("long", "Writer", None).await;
    let mut reader = server.join("long", "Reader", None).await;
    flood(&mut writer, &mut reader, 2_500, |_| {}).await;
    // From the start: 2,500 messages with 500 at once, then 1,000 a second: about two seconds.
    let started = std::time::Instant::now();
    let mut late =
        common::Client::connect_from(&server.ws_url("long"), [127, 30, 0, 1].into()).await;
    late.send(&ClientMsg::Join {
        token: None,
        owner_key: None,
        name: "Late".into(),
        after_seq: Some(0),
        key: common::test_key(),
    })
    .await;
    assert!(matches!(late.recv().await, ServerMsg::Welcome { .. }));
    let all = late.messages(2_500).await;
    let took = started.elapsed();
    assert!(
        all.iter().map(|m| m.seq).eq(1..=2_500),
        "every message once, in order"
    );
    eprintln!("catch-up of 2,500 messages paced by a 500 + 1,000/s budget: {took:?}");
    assert!(took >= Duration::from_millis(1_500), "paced: {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Another address has its own budget: a short catch-up is not held up.
    let other = std::time::Instant::now();
    let mut quick =
        common::Client::connect_from(&server.ws_url("long"), [127, 30, 0, 2].into()).await;
    quick
        .send(&ClientMsg::Join {
            token: None,
            owner_key: None,
            name: "Quick".into(),
            after_seq: Some(2_400),
            key: common::test_key(),
        })
        .await;
    assert!(matches!(quick.recv().await, ServerMsg::Welcome { .. }));
    assert_eq!(quick.messages(100).await.len(), 100);
    eprintln!("another address caught up 100 in {:?}", other.elapsed());
    assert!(
        other.elapsed() < Duration::from_millis(800),
        "{:?}",
        other.elapsed()
    );
}
