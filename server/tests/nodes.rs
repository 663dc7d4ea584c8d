//! Several Palaver processes sharing one Redis (`--engine redis://…`), as they run behind a load
//! balancer: the same messages in the same order with the same numbers on every node, one roster,
//! one per-IP rate limit, a node killed with SIGKILL, and Redis itself killed and restarted with
//! AOF. Uses the Redis on 127.0.0.1:6379 (or `PALAVER_TEST_REDIS_URL`) and, for the restart, a
//! private `redis-server`. Never skipped: without Redis these fail and say so.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::protocol::{ChatMessage, ClientMsg, ErrorCode, ServerMsg};
use common::process::{
    assert_history_keeps, full_history, wait_for_acks, write_until_closed, WriterLog,
};
use common::{Client, Frame, Node, Process};
use testkit::redis::{shared_url as redis_url, unique as unique_room, PrivateRedis};

/// `count` nodes on one engine, each with its own (unused) data directory.
async fn start_nodes(
    count: usize,
    engine: &str,
    extra: &[&str],
) -> (Vec<Process>, tempfile::TempDir) {
    let dirs = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for i in 0..count {
        let dir = dirs.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let args: Vec<&str> = ["--engine", engine]
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect();
        nodes.push(common::process::start(&dir, &args).await);
    }
    (nodes, dirs)
}

/// Presence is announced within half a second: a node must not wait for the 10 s roster renewal
/// to learn who is on the others.
async fn wait_roster(client: &mut Client, expected: &[&str]) {
    client.wait_for_roster(expected).await;
    client.presence.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_show_the_same_messages_in_the_same_order_and_one_roster() {
    let (nodes, _dirs) = start_nodes(3, &redis_url(), common::RELAXED_RATE_LIMIT).await;
    let room = unique_room("three");
    let names = ["Ada", "Bob", "Cy"];
    // One after another, each once the room has settled: a newcomer's node must learn who is
    // already on the other nodes, and they must learn of the newcomer.
    let mut people = Vec::new();
    for (i, (node, name)) in nodes.iter().zip(names).enumerate() {
        people.push(node.join(&room, name, None).await);
        for person in &mut people {
            wait_roster(person, &names[..=i]).await;
        }
    }

    // All three post at once through their own nodes.
    const EACH: usize = 15;
    let mut tasks = Vec::new();
    for (i, mut person) in people.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for n in 0..EACH {
                person
                    .post(&format!("p{i}-{n}"), &format!("{i} says {n}"), &mut seen)
                    .await;
            }
            (person, seen)
        }));
    }
    let mut people = Vec::new();
    let mut seen_while_posting = Vec::new();
    for task in tasks {
        let (person, seen) = task.await.unwrap();
        people.push(person);
        seen_while_posting.push(seen);
    }

    // Every person, on every node, got the same 45 messages: same numbers, same order, no
    // duplicates. (Their own messages come back live too, after or before the acks.)
    let mut seen: Vec<Vec<ChatMessage>> = Vec::new();
    for (person, mut got) in people.iter_mut().zip(seen_while_posting) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 3 * EACH {
            assert!(
                Instant::now() < deadline,
                "only {} messages arrived",
                got.len()
            );
            if let Some(Frame::Msg(ServerMsg::Message(m))) =
                person.next_frame(Duration::from_secs(1)).await
            {
                got.push(m);
            }
        }
        seen.push(got);
    }
    assert!(
        seen[0].iter().map(|m| m.seq).eq(1..=(3 * EACH) as u64),
        "contiguous from 1"
    );
    assert_eq!(seen[0], seen[1], "nodes one and two agree");
    assert_eq!(seen[0], seen[2], "nodes one and three agree");
    let ids: HashSet<&str> = seen[0].iter().map(|m| m.client_id.as_str()).collect();
    assert_eq!(ids.len(), 3 * EACH, "each message once");
    assert_eq!(
        full_history(&nodes[1].ws_url(&room)).await,
        seen[0],
        "history is live order"
    );

    // Bob leaves node two: the others, on nodes one and three, see him go.
    let bob = people.remove(1);
    bob.close().await;
    for person in &mut people {
        wait_roster(person, &["Ada", "Cy"]).await;
    }
}

/// A loopback address of its own (127.x.y.z), so that no other test or run shares its budget
/// in the shared Redis.
fn random_loopback() -> IpAddr {
    let mut b = [0u8; 3];
    getrandom::fill(&mut b).unwrap();
    IpAddr::from([127, b[0], b[1], b[2].max(2)])
}

/// Sends one message from a fresh connection and reports whether it was accepted.
async fn accepted(c: &mut Client, client_id: &str) -> bool {
    c.send(&ClientMsg::Send {
        client_id: client_id.into(),
        text: "counting".into(),
    })
    .await;
    loop {
        match c.recv().await {
            ServerMsg::Ack { client_id: id, .. } if id == client_id => return true,
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                client_id: Some(id),
                retry_after_ms,
                ..
            } if id == client_id => {
                assert!(
                    retry_after_ms.is_some_and(|ms| ms > 0),
                    "says how long to wait"
                );
                return false;
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_budget_is_one_across_nodes() {
    // Four connections at once, then one a minute, per address: across both nodes together.
    let (nodes, _dirs) = start_nodes(
        2,
        &redis_url(),
        &[
            "--join-rate-limit-burst",
            "4",
            "--join-rate-limit-interval-ms",
            "60000",
        ],
    )
    .await;
    let room = unique_room("joins");
    let address = random_loopback();
    let mut held = Vec::new();
    for i in 0..4 {
        let url = nodes[i % 2].ws_url(&room);
        held.push(
            Client::try_connect_from(&url, address)
                .await
                .expect("within the budget"),
        );
    }
    // A budget per node would let two more in.
    for node in &nodes {
        let refused = Client::try_connect_from(&node.ws_url(&room), address).await;
        let (status, retry_after) = refused.err().expect("over the shared budget");
        assert_eq!(status, 429);
        assert!(retry_after.is_some(), "says when to come back");
    }
    // Another address has its own budget, on any node.
    assert!(
        Client::try_connect_from(&nodes[1].ws_url(&room), random_loopback())
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_rate_limit_holds_across_nodes() {
    // Six posts at once, then one a minute, per address: across all nodes together.
    let (nodes, _dirs) = start_nodes(
        3,
        &redis_url(),
        &[
            "--rate-limit-burst",
            "6",
            "--rate-limit-interval-ms",
            "60000",
        ],
    )
    .await;
    let room = unique_room("limit");
    let address = random_loopback();
    let mut clients = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut c = Client::connect_from(&node.ws_url(&room), address).await;
        c.send(&ClientMsg::Join {
            token: None,
            owner_key: None,
            name: format!("Tab {i}"),
            after_seq: None,
            key: common::test_key(),
        })
        .await;
        assert!(matches!(c.recv().await, ServerMsg::Welcome { .. }));
        clients.push(c);
    }
    // Three rounds over the three nodes: nine posts, of which the address may make six. A limit
    // per node would let all nine through (three per node).
    let mut verdicts = Vec::new();
    for round in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            verdicts.push(accepted(c, &format!("r{round}-n{i}")).await);
        }
    }
    assert_eq!(verdicts.iter().filter(|&&ok| ok).count(), 6, "{verdicts:?}");
    assert!(
        verdicts[..6].iter().all(|&ok| ok),
        "the burst comes first: {verdicts:?}"
    );

    // Another address has its own budget, on any node.
    let mut other = Client::connect_from(&nodes[2].ws_url(&room), random_loopback()).await;
    other
        .send(&ClientMsg::Join {
            token: None,
            owner_key: None,
            name: "Someone else".into(),
            after_seq: None,
            key: common::test_key(),
        })
        .await;
    assert!(matches!(other.recv().await, ServerMsg::Welcome { .. }));
    assert!(accepted(&mut other, "other-1").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_sigkill_loses_nothing_its_clients_resume_on_another() {
    let (mut nodes, _dirs) = start_nodes(3, &redis_url(), common::RELAXED_RATE_LIMIT).await;
    let room = unique_room("sigkill");
    let mut watcher = nodes[2].join(&room, "Watcher", Some(0)).await;

    // Two writers on node one (the one to be killed), one on node two.
    let total = Arc::new(AtomicUsize::new(0));
    let placement = [0usize, 0, 1];
    let logs: Vec<_> = placement
        .iter()
        .map(|_| Arc::new(Mutex::new(WriterLog::default())))
        .collect();
    let tasks: Vec<_> = placement
        .iter()
        .zip(&logs)
        .enumerate()
        .map(|(w, (&node, log))| {
            tokio::spawn(write_until_closed(
                nodes[node].ws_url(&room),
                format!("Writer {w}"),
                format!("w{w}"),
                log.clone(),
                total.clone(),
            ))
        })
        .collect();
    wait_for_acks(&total, 150).await;
    nodes.remove(0).sigkill().await;
    // The killed node's writers end; the survivor keeps writing a little longer, then is stopped.
    let [dead_a, dead_b, survivor]: [_; 3] = tasks.try_into().map_err(|_| ()).unwrap();
    dead_a.await.unwrap();
    dead_b.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    survivor.abort();
    let _ = survivor.await;

    // The killed node's clients reconnect to node two (the load balancer's next choice), resume
    // after the last message they saw and resend what was not acknowledged.
    let url = nodes[0].ws_url(&room);
    for (w, log) in logs.iter().enumerate().take(2) {
        let (last_seen, unacked, acked) = {
            let l = log.lock().unwrap();
            assert!(
                l.seen.windows(2).all(|p| p[1] == p[0] + 1),
                "no gap before the kill"
            );
            (l.last_seen, l.unacked.clone(), l.acked.clone())
        };
        let mut c = Client::join(&url, &format!("Writer {w}"), Some(last_seen)).await;
        let mut resumed = Vec::new();
        for (id, text) in unacked {
            c.post(&id, &text, &mut resumed).await;
            assert!(!acked.contains_key(&id));
        }
        // Everything after last_seen arrives, once, in order.
        let history = full_history(&url).await;
        let head = history.last().map_or(0, |m| m.seq);
        while resumed.last().map_or(last_seen, |m: &ChatMessage| m.seq) < head {
            match c.next_frame(Duration::from_secs(5)).await {
                Some(Frame::Msg(ServerMsg::Message(m))) => resumed.push(m),
                Some(Frame::Msg(_)) => {}
                other => panic!(
                    "resume stalled at {:?}: {other:?}",
                    resumed.last().map(|m| m.seq)
                ),
            }
        }
        assert!(
            resumed.iter().map(|m| m.seq).eq(last_seen + 1..=head),
            "writer {w} resumed with no loss and no duplicates"
        );
    }

    // Every acknowledged message is stored once under the number it was acknowledged with, and
    // the history has no holes.
    let history = full_history(&nodes[1].ws_url(&room)).await;
    let acked: HashMap<String, u64> = logs
        .iter()
        .flat_map(|log| log.lock().unwrap().acked.clone())
        .collect();
    assert_history_keeps(&history, &acked);
    // The watcher on node three saw the whole stream live, each message once, in order.
    let mut live = Vec::new();
    while live.len() < history.len() {
        match watcher.next_frame(Duration::from_secs(5)).await {
            Some(Frame::Msg(ServerMsg::Message(m))) => live.push(m),
            Some(Frame::Msg(_)) => {}
            other => panic!("watcher stalled after {}: {other:?}", live.len()),
        }
    }
    assert_eq!(
        live, history,
        "the watcher on another node saw exactly the history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_aof_loses_no_acknowledged_message() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = PrivateRedis::start(testkit::free_port(), Some(redis_dir.path())).await;
    let engine = redis.url();
    let (nodes, _dirs) = start_nodes(2, &engine, common::RELAXED_RATE_LIMIT).await;
    let room = unique_room("aof");
    let mut watchers = Vec::new();
    for node in &nodes {
        watchers.push(node.join(&room, "Watcher", None).await);
    }

    // One writer per node, each message sent after the previous ack; a refused one is resent.
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for (w, node) in nodes.iter().enumerate() {
        let mut c = node.join(&room, &format!("Writer {w}"), None).await;
        let (acked, stop) = (acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let id = format!("w{w}-{i}");
                let seq = c.post(&id, "kept?", &mut Vec::new()).await;
                acked.lock().unwrap().insert(id, seq);
                i += 1;
            }
        }));
    }
    let count = || acked.lock().unwrap().len();
    while count() < 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _redis = redis.kill_and_restart().await;
    let at_restart = count();
    // The nodes come back by themselves; the writers' resends go through.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count() < at_restart + 50 {
        assert!(
            Instant::now() < deadline,
            "writing never resumed after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    for node in &nodes {
        assert_eq!(common::http("GET", &node.http_url("/readyz")).await.0, 200);
    }

    // Each node told its clients it was degraded, then that it recovered (by itself).
    let mut live: Vec<Vec<u64>> = vec![Vec::new(); watchers.len()];
    for (watcher, live) in watchers.iter_mut().zip(&mut live) {
        let mut degraded_seen = false;
        loop {
            match watcher.next_frame(Duration::from_secs(10)).await {
                Some(Frame::Msg(ServerMsg::Message(m))) => live.push(m.seq),
                Some(Frame::Msg(ServerMsg::Status { degraded: true })) => degraded_seen = true,
                Some(Frame::Msg(ServerMsg::Status { degraded: false })) if degraded_seen => break,
                Some(Frame::Msg(_)) => {}
                other => panic!("never told of the outage and recovery: {other:?}"),
            }
        }
    }

    // Every acknowledged message survived the kill, under its number, once; no holes.
    let history = full_history(&nodes[0].ws_url(&room)).await;
    let acked = acked.lock().unwrap().clone();
    assert_history_keeps(&history, &acked);

    // The watchers saw each message once, in order, with none missing.
    for (watcher, live) in watchers.iter_mut().zip(&mut live) {
        while live.len() < history.len() {
            match watcher.next_frame(Duration::from_secs(15)).await {
                Some(Frame::Msg(ServerMsg::Message(m))) => live.push(m.seq),
                Some(Frame::Msg(_)) => {}
                other => panic!("watcher stalled after {}: {other:?}", live.len()),
            }
        }
        assert!(
            live.iter().copied().eq(1..=history.len() as u64),
            "live: each once, in order"
        );
    }
}
