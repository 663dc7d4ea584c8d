//! The room as a whole, through its handle, on an in-memory engine: numbering and order, dedupe,
//! presence, degraded mode, two rooms on one engine (two nodes), idle eviction.

use std::sync::atomic::Ordering;

use super::*;
use crate::engine::memory::{FlakyStore, MemoryStore};
use crate::engine::{Directory, History};
use crate::registry::Rooms;

pub(super) fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

/// The next message's sequence number, skipping presence frames.
async fn next_seq(live: &mut broadcast::Receiver<Arc<Delivery>>) -> Seq {
    loop {
        if let Some(seq) = live.recv().await.unwrap().seq {
            return seq;
        }
    }
}

/// The next presence change as (count, joined, left).
async fn next_presence(
    live: &mut broadcast::Receiver<Arc<Delivery>>,
) -> (usize, Vec<String>, Vec<String>) {
    loop {
        let d = live.recv().await.unwrap();
        if let RoomEvent::Presence(change) = &d.event {
            let change = change.clone();
            return (change.count, change.joined, change.left);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn presence_counts_tabs_once_and_merges_quick_reconnects() {
    let handle = start(Arc::new(MemoryStore::default()));
    let ada = handle.join("Ada".into()).await.unwrap();
    let mut watch = ada.live.resubscribe();
    assert!(
        ada.roster.names.is_empty(),
        "the roster as announced so far"
    );
    let ada_tab2 = handle.join("Ada".into()).await.unwrap();
    let bob = handle.join("Bob".into()).await.unwrap();
    let (count, joined, left) = next_presence(&mut watch).await;
    assert_eq!(
        (count, joined, left),
        (2, vec!["Ada".into(), "Bob".into()], vec![])
    );
    let cy = handle.join("Cy".into()).await.unwrap();
    assert_eq!(
        (cy.roster.names.as_slice(), cy.roster.count),
        (["Ada".to_owned(), "Bob".to_owned()].as_slice(), 2),
        "each name once; the joiner itself comes with the next change"
    );
    let (count, joined, _) = next_presence(&mut watch).await;
    assert_eq!((count, joined), (3, vec!["Cy".to_owned()]));
    drop(cy);
    let (count, _, left) = next_presence(&mut watch).await;
    assert_eq!((count, left), (2, vec!["Cy".to_owned()]));

    // Closing one of two tabs changes nothing; Bob reconnecting quickly announces nothing.
    drop(ada_tab2);
    drop(bob);
    let bob_again = handle.join("Bob".into()).await.unwrap();
    tokio::time::sleep(PRESENCE_COALESCE * 3).await;
    assert!(
        watch.try_recv().is_err(),
        "no presence frame for a net change of nothing"
    );

    drop(bob_again);
    let (count, joined, left) = next_presence(&mut watch).await;
    assert_eq!((count, joined, left), (1, vec![], vec!["Bob".to_owned()]));
    drop(ada);
}

pub(super) fn start<S: History + Directory>(store: Arc<S>) -> RoomHandle {
    spawn_room(
        room("test"),
        Engine::in_memory(store),
        RoomSettings::for_tests(),
        CancellationToken::new(),
        |_| {},
    )
}

#[tokio::test]
async fn concurrent_sends_get_contiguous_numbers_and_live_order_matches() {
    let store = Arc::new(MemoryStore::default());
    let handle = start(store.clone());
    let mut live = handle.join("tester".into()).await.unwrap().live;
    let mut acks = Vec::new();
    for i in 0..300 {
        acks.push(
            handle
                .send("a".into(), format!("c{i}"), format!("t{i}"))
                .await
                .unwrap(),
        );
    }
    let mut seqs = Vec::new();
    for ack in acks {
        seqs.push(ack.await.unwrap().unwrap());
    }
    assert!(
        seqs.iter().copied().eq(1..=300),
        "acks in send order with contiguous numbers"
    );
    for expected in 1..=300 {
        assert_eq!(next_seq(&mut live).await, expected);
    }
    let stored = store.after(&room("test"), 0, 1000).await.unwrap();
    assert!(stored.iter().map(|m| m.seq).eq(1..=300));
    assert!(
        stored
            .windows(2)
            .all(|w| w[0].sent_at_ms <= w[1].sent_at_ms),
        "timestamps never go back"
    );
}

#[tokio::test]
async fn duplicate_client_ids_store_once_even_in_one_batch() {
    let store = Arc::new(MemoryStore::default());
    let handle = start(store.clone());
    let a = handle
        .send("a".into(), "dup".into(), "x".into())
        .await
        .unwrap();
    let b = handle
        .send("a".into(), "dup".into(), "x".into())
        .await
        .unwrap();
    assert_eq!(a.await.unwrap().unwrap(), 1);
    assert_eq!(b.await.unwrap().unwrap(), 1);
    let c = handle
        .send("a".into(), "dup".into(), "x".into())
        .await
        .unwrap();
    assert_eq!(c.await.unwrap().unwrap(), 1);
    assert_eq!(store.head(&room("test")).await.unwrap().0, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_is_refused_not_broadcast_and_leaves_no_hole() {
    let store = Arc::new(FlakyStore::default());
    let handle = start(store.clone());
    let mut live = handle.join("tester".into()).await.unwrap().live;
    store.down.store(true, Ordering::SeqCst);
    let refused = handle
        .send("a".into(), "c1".into(), "lost?".into())
        .await
        .unwrap();
    assert!(matches!(
        refused.await.unwrap(),
        Err(RoomError::Unavailable)
    ));
    assert_eq!(
        next_status(&mut live).await,
        Some(true),
        "the room says it is degraded"
    );
    assert!(
        live.try_recv().is_err(),
        "nothing is broadcast that was not stored"
    );
    // While degraded, sends are refused at once, and a joiner is told.
    let refused = handle
        .send("a".into(), "c2".into(), "also refused".into())
        .await
        .unwrap();
    assert!(matches!(
        refused.await.unwrap(),
        Err(RoomError::Unavailable)
    ));
    assert!(handle.join("late".into()).await.unwrap().degraded);

    store.down.store(false, Ordering::SeqCst);
    assert_eq!(
        next_status(&mut live).await,
        Some(false),
        "the probe finds storage back and says so"
    );
    // The same client id can be retried and gets number 1: no hole, no duplicate.
    let retried = handle
        .send("a".into(), "c1".into(), "lost?".into())
        .await
        .unwrap();
    assert_eq!(retried.await.unwrap().unwrap(), 1);
    assert_eq!(next_seq(&mut live).await, 1);
}

/// The next status frame's `degraded`, skipping presence; `None` if a message comes first.
async fn next_status(live: &mut broadcast::Receiver<Arc<Delivery>>) -> Option<bool> {
    loop {
        let d = live.recv().await.unwrap();
        match &d.event {
            RoomEvent::Status { degraded } => return Some(*degraded),
            RoomEvent::Message(_) => return None,
            RoomEvent::Presence(_) | RoomEvent::Typing { .. } => {}
        }
    }
}

#[tokio::test]
async fn two_writers_of_one_room_never_refuse_and_deliver_in_order() {
    // Two room tasks on one store stand for two nodes serving the same room.
    let store = Arc::new(MemoryStore::default());
    let (one, two) = (start(store.clone()), start(store.clone()));
    let mut live = two.join("watcher".into()).await.unwrap().live;
    // Each waits for the other's commit, so each node's idea of the head is always stale.
    let mut seqs = Vec::new();
    for i in 0..60 {
        let node = if i % 2 == 0 { &one } else { &two };
        let ack = node
            .send("a".into(), format!("c{i}"), format!("t{i}"))
            .await
            .unwrap();
        seqs.push(ack.await.unwrap().expect("accepted, not refused"));
    }
    // A resend through the other node of a message already stored gets its number.
    let again = two
        .send("a".into(), "c0".into(), "t0".into())
        .await
        .unwrap();
    assert_eq!(again.await.unwrap().unwrap(), seqs[0]);
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert!(
        sorted.iter().copied().eq(1..=60),
        "each number once: {seqs:?}"
    );
    let stored = store.after(&room("test"), 0, 100).await.unwrap();
    assert_eq!(stored.len(), 60);
    for (i, seq) in seqs.iter().enumerate() {
        assert_eq!(stored[*seq as usize - 1].client_id, format!("c{i}"));
    }
    // The last writer's room delivered everything, the other's messages included, in order.
    for expected in 1..=60 {
        assert_eq!(next_seq(&mut live).await, expected);
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_room_leaves_memory_and_comes_back_with_its_history() {
    let store = Arc::new(MemoryStore::default());
    let rooms = Rooms::new(
        Engine::in_memory(store),
        RoomSettings {
            idle_timeout: Duration::from_secs(10),
            ..RoomSettings::for_tests()
        },
        10,
        CancellationToken::new(),
    );
    let handle = rooms.get(&room("quiet")).unwrap();
    let joined = handle.join("tester".into()).await.unwrap();
    let ack = handle
        .send("a".into(), "c1".into(), "hi".into())
        .await
        .unwrap();
    assert_eq!(ack.await.unwrap().unwrap(), 1);
    assert_eq!(rooms.active_count(), 1);

    // Someone connected keeps it in memory.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(rooms.active_count(), 1);

    drop(joined);
    drop(handle);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(rooms.active_count(), 0, "idle room unloaded");

    let handle = rooms.get(&room("quiet")).unwrap();
    let joined = handle.join("tester".into()).await.unwrap();
    assert_eq!(joined.head, 1, "history survives unloading");
    let ack = handle
        .send("a".into(), "c2".into(), "again".into())
        .await
        .unwrap();
    assert_eq!(ack.await.unwrap().unwrap(), 2);
    let dup = handle
        .send("a".into(), "c1".into(), "hi".into())
        .await
        .unwrap();
    assert_eq!(
        dup.await.unwrap().unwrap(),
        1,
        "idempotency survives unloading"
    );
}

#[tokio::test(start_paused = true)]
async fn rooms_past_the_cap_are_refused_and_a_room_nobody_posted_to_leaves_within_seconds() {
    let settings = RoomSettings::for_tests();
    let metrics = settings.metrics.clone();
    let empty_idle = settings.empty_idle_timeout;
    let store = Arc::new(MemoryStore::default());
    let rooms = Rooms::new(
        Engine::in_memory(store),
        settings,
        2,
        CancellationToken::new(),
    );
    let busy = rooms.get(&room("busy")).unwrap();
    let ada = busy.join("Ada".into()).await.unwrap();
    let ack = busy
        .send("Ada".into(), "c1".into(), "hi".into())
        .await
        .unwrap();
    ack.await.unwrap().unwrap();
    let fresh = rooms.get(&room("fresh")).unwrap();
    let visitor = fresh.join("Visitor".into()).await.unwrap();
    assert_eq!(
        rooms.get(&room("third")).err(),
        Some(crate::registry::RoomsFull)
    );
    assert_eq!(metrics.rooms_refused.get(), 1);
    assert!(rooms.get(&room("busy")).is_ok(), "rooms already open go on");

    // The visitor leaves a room nobody posted to: it goes within the short timeout, and its place
    // is free again. The busy room, with its history and member, stays.
    drop((visitor, fresh));
    tokio::time::sleep(empty_idle * 2).await;
    assert_eq!(rooms.active_count(), 1);
    assert!(rooms.get(&room("third")).is_ok());
    assert_eq!(busy.join("Bo".into()).await.unwrap().head, 1);
    drop(ada);
}
