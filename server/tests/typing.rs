//! Typing indicators on real servers: passed on to the others (not the typist) on this node and
//! on another node sharing Redis, never stored or numbered, and a flood of them from one
//! connection reaches the others as at most one every few seconds.

mod common;

use std::time::Duration;

use app::protocol::{ClientMsg, ServerMsg};
use common::people::Person;
use common::{Client, Frame};

/// The `typing` frames that arrive within `wait`.
async fn typing_seen(client: &mut Client, wait: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_event(left).await {
            Some(Frame::Msg(ServerMsg::Typing { name })) => seen.push(name),
            Some(Frame::Msg(ServerMsg::Message(m))) => panic!("typing made a message: {m:?}"),
            Some(Frame::Msg(_)) => {}
            Some(Frame::Closed(code)) => panic!("closed: {code:?}"),
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_others_on_both_nodes_and_a_flood_is_thinned() {
    let redis = testkit::redis::shared_url();
    let room = testkit::redis::unique("typing");
    let dirs = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let dir = dirs.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["--engine", redis.as_str()];
        args.extend(common::RELAXED_RATE_LIMIT);
        nodes.push(common::process::start(&dir, &args).await);
    }
    let mut ada = Person::guest("Ada", "ada-key-0123456789")
        .join(&nodes[0], &room)
        .await;
    let mut bob = Person::guest("Bob", "bob-key-0123456789")
        .join(&nodes[1], &room)
        .await;
    let mut cy = Person::guest("Cy", "cy-key-01234567890")
        .join(&nodes[0], &room)
        .await;
    bob.wait_for_roster(&["Ada", "Bob", "Cy"]).await;

    ada.send(&ClientMsg::Typing).await;
    assert_eq!(
        typing_seen(&mut bob, Duration::from_secs(2)).await,
        ["Ada"],
        "on the other node"
    );
    assert_eq!(
        typing_seen(&mut cy, Duration::from_millis(300)).await,
        ["Ada"],
        "on this node"
    );
    assert!(
        typing_seen(&mut ada, Duration::from_millis(300))
            .await
            .is_empty(),
        "not the typist"
    );

    // 200 signals in about a second from one connection: the others hear one.
    for _ in 0..200 {
        ada.send(&ClientMsg::Typing).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let heard = typing_seen(&mut bob, Duration::from_millis(1500)).await;
    assert!(
        heard.len() <= 1,
        "a flood is thinned: {} heard",
        heard.len()
    );

    // Nothing was stored: the room has no messages.
    let mut dan = Client::join(&nodes[1].ws_url(&room), "Dan", Some(0)).await;
    dan.send(&ClientMsg::Ping).await;
    loop {
        match dan.recv().await {
            ServerMsg::Pong => break,
            ServerMsg::Message(m) => panic!("stored: {m:?}"),
            _ => {}
        }
    }
}
