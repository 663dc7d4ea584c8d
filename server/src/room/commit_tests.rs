//! The log's commits: order across nodes and across batches in flight, and the recent ids.

use super::*;
use crate::engine::memory::MemoryStore;

/// Batches started before any is answered.
const IN_FLIGHT: usize = 4;

fn send(client_id: &str) -> (PendingSend, oneshot::Receiver<Result<Seq, RoomError>>) {
    let (reply, rx) = oneshot::channel();
    let send = PendingSend::new(SendCommand {
        sender: "Ada".into(),
        user_id: None,
        kind: Default::default(),
        target: None,
        client_id: client_id.into(),
        text: "hi".into(),
        reply,
    });
    (send, rx)
}

#[tokio::test(start_paused = true)]
async fn another_writers_messages_are_delivered_before_this_batch_in_order() {
    let store = Arc::new(MemoryStore::default());
    let name = RoomName::parse("log").unwrap();
    let fanout = Fanout::default();
    let mut live = fanout.subscribe();
    let mut log = Log::new(name.clone(), store.clone(), fanout, Arc::default());
    assert_eq!(log.load_head().await.unwrap(), (0, 0));
    // Another node stores two messages this room has not seen.
    let other: Vec<ChatMessage> = (1..=2)
        .map(|i| send(&format!("other{i}")).0.message)
        .collect();
    store.append(&name, &other).await.unwrap();
    let (mine, ack) = send("mine");
    log.commit(vec![mine]).await.unwrap();
    assert_eq!(ack.await.unwrap().unwrap(), 3);
    let delivered: Vec<Seq> = std::iter::from_fn(|| live.try_recv().ok())
        .filter_map(|d| d.seq)
        .collect();
    assert_eq!(delivered, [1, 2, 3]);
    assert_eq!(
        log.recent("other1"),
        Some(1),
        "others' ids are remembered too"
    );
    assert!(!log.is_behind(3) && log.is_behind(4));
}

#[tokio::test(start_paused = true)]
async fn batches_in_flight_are_numbered_delivered_and_answered_in_the_order_started() {
    let store = Arc::new(MemoryStore::default());
    let name = RoomName::parse("pipeline").unwrap();
    let fanout = Fanout::default();
    let mut live = fanout.subscribe();
    let mut log = Log::new(name.clone(), store.clone(), fanout, Arc::default());
    log.load_head().await.unwrap();
    let mut acks = Vec::new();
    for b in 0..IN_FLIGHT {
        let (sends, rx): (Vec<_>, Vec<_>) = (0..3).map(|i| send(&format!("b{b}m{i}"))).unzip();
        log.start(sends);
        acks.extend(rx);
    }
    // A resend of a message whose batch is still in flight gets that message's number.
    let (again, again_ack) = send("b0m1");
    log.start(vec![again]);
    // Another writer announces a head meanwhile: remembered, not chased yet.
    assert!(!log.is_behind(100));
    assert_eq!(log.in_flight(), IN_FLIGHT + 1);
    log.settle().await.unwrap();
    let numbers: Vec<Seq> = futures::future::join_all(acks)
        .await
        .into_iter()
        .map(|a| a.unwrap().unwrap())
        .collect();
    let expected: Vec<Seq> = (1..=(3 * IN_FLIGHT) as Seq).collect();
    assert_eq!(numbers, expected);
    assert_eq!(again_ack.await.unwrap().unwrap(), 2);
    let delivered: Vec<Seq> = std::iter::from_fn(|| live.try_recv().ok())
        .filter_map(|d| d.seq)
        .collect();
    assert_eq!(delivered, expected, "each once, in order");
    assert_eq!(log.committed(), expected.len() as Seq);
}

#[tokio::test(start_paused = true)]
async fn a_catch_up_that_delivered_a_batch_in_flight_is_not_repeated_by_its_answer() {
    let store = Arc::new(MemoryStore::default());
    let name = RoomName::parse("early").unwrap();
    let fanout = Fanout::default();
    let mut live = fanout.subscribe();
    let mut log = Log::new(name.clone(), store.clone(), fanout, Arc::default());
    log.load_head().await.unwrap();
    let (mine, ack) = send("mine");
    log.start(vec![mine]);
    // The engine stores it (the future runs), but the room has not answered it yet when a
    // catch-up (another node's announcement, a resync) reads it from the engine.
    let committed = log.next_committed().await;
    log.catch_up().await.unwrap();
    log.answer(committed).await.unwrap();
    assert_eq!(ack.await.unwrap().unwrap(), 1);
    let delivered: Vec<Seq> = std::iter::from_fn(|| live.try_recv().ok())
        .filter_map(|d| d.seq)
        .collect();
    assert_eq!(delivered, [1]);
    assert_eq!(log.committed(), 1);
}

#[test]
fn recent_ids_forget_the_oldest_first() {
    let mut recent = RecentIds::default();
    for i in 0..=RECENT_CLIENT_IDS as u64 {
        recent.insert(format!("c{i}"), i + 1);
    }
    assert_eq!(recent.get("c0"), None);
    assert_eq!(recent.get("c1"), Some(2));
    assert_eq!(recent.seqs.len(), RECENT_CLIENT_IDS);
}
