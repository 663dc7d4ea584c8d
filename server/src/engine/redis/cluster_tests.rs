//! The engine on a real Redis Cluster (three primaries started here from `redis-server`): the
//! history, retention and presence contracts, sharded notifications, the shared rate limit, and
//! two rooms on two "nodes" agreeing on every number.

use std::time::Duration;

use futures::StreamExt;
use testkit::redis::TestCluster;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::engine::{
    conformance, Broker, History, PeerEvent, Roster, SharedPresence, SharedRateLimit,
};
use crate::room::{spawn_room, RoomEvent, RoomSettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_engine_keeps_its_contract_and_nodes_agree() {
    let cluster = TestCluster::start().await;
    let url = cluster.url();
    let one = RedisEngine::connect(&url, "palaver")
        .await
        .expect("node one");
    let two = RedisEngine::connect(&url, "palaver")
        .await
        .expect("node two");

    // The same contracts as SQLite and a single Redis (rooms spread over the shards).
    conformance::all(&one).await;
    conformance::directory(&one).await;
    crate::engine::moderation_conformance::all(&one).await;
    super::tests::moderation_is_announced(&one, &two).await;
    conformance::presence(&one, &two).await;
    conformance::shared_connections(&one, &two).await;
    conformance::keeps_the_newest(&one.clone().with_retention(conformance::KEEP_NEWEST)).await;
    conformance::forgets_the_old(&one.clone().with_retention(conformance::KEEP_A_DAY)).await;

    // Sharded notifications: node two hears node one's head and roster change.
    let room = conformance::room("cluster-watch");
    let mut events = two.subscribe(&room).await.unwrap();
    one.append(&room, &[conformance::msg(1, "w1")])
        .await
        .unwrap();
    let roster = Roster::from([("Ada".to_owned(), crate::engine::Present::guests(1))]);
    one.publish(&room, &roster, true).await.unwrap();
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event in time")
            .expect("subscription open");
        heard.push(event);
    }
    assert_eq!(heard, [PeerEvent::Head(1), PeerEvent::Roster]);
    assert_eq!(two.others(&room).await.unwrap(), roster);
    assert!(one.others(&room).await.unwrap().is_empty());

    // One rate-limit budget for an address, whichever node asks.
    let ip = "192.0.2.77";
    let minute = Duration::from_secs(60);
    assert!(one.spend("post", ip, minute, 2, 1).await.unwrap().is_ok());
    assert!(two.spend("post", ip, minute, 2, 1).await.unwrap().is_ok());
    assert!(
        one.spend("post", ip, minute, 2, 1).await.unwrap().is_err(),
        "the third is refused"
    );

    // Two room tasks, one per node, on one room: the same messages, numbers and order.
    let room = conformance::room("cluster-room");
    let rooms: Vec<_> = [one, two]
        .into_iter()
        .map(|node| {
            spawn_room(
                room.clone(),
                node.engine(),
                RoomSettings::for_tests(),
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
            if let RoomEvent::Message(m) = &delivery.event {
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
