//! Durable throughput: how many messages per second Palaver acknowledges with every message
//! committed to SQLite (WAL, fsynced) before its ack and broadcast.
//!
//! Starts the real server on a free port with a fresh data directory, connects real WebSocket
//! clients, and has each keep up to 32 messages in flight. Run with `scripts/bench.sh` (release
//! build); numbers go in `docs/BENCHMARKS.md`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use app::protocol::{ClientMsg, ServerMsg};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use palaver_server::config::Config;
use palaver_server::Server;
use tokio_tungstenite::tungstenite::Message;

/// Messages each client keeps unacknowledged (the server allows 32).
const WINDOW: usize = 32;

struct Outcome {
    acked: usize,
    latencies: Vec<Duration>,
}

async fn client(addr: SocketAddr, room: String, id: usize, count: usize, window: usize) -> Outcome {
    let url = format!("ws://{addr}/api/rooms/{room}/ws");
    let (ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    let (mut tx, mut rx) = ws.split();
    let join = ClientMsg::Join {
        token: None,
        owner_key: None,
        name: format!("bench-{id}"),
        after_seq: None,
        key: None,
    };
    tx.send(Message::text(join.encode())).await.expect("join");
    let mut sent_at = std::collections::HashMap::new();
    let mut latencies = Vec::with_capacity(count);
    let (mut sent, mut acked) = (0usize, 0usize);
    while acked < count {
        while sent < count && sent - acked < window {
            let client_id = format!("c{id}-{sent}");
            let frame = ClientMsg::Send {
                client_id: client_id.clone(),
                text: format!("benchmark message {sent}"),
            };
            sent_at.insert(client_id, Instant::now());
            tx.send(Message::text(frame.encode())).await.expect("send");
            sent += 1;
        }
        match rx.next().await {
            Some(Ok(Message::Text(t))) => {
                if let Ok(ServerMsg::Ack { client_id, .. }) = serde_json::from_str(t.as_str()) {
                    if let Some(at) = sent_at.remove(&client_id) {
                        latencies.push(at.elapsed());
                    }
                    acked += 1;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    Outcome { acked, latencies }
}

async fn scenario(
    label: &str,
    rooms: usize,
    clients_per_room: usize,
    per_client: usize,
    window: usize,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::parse_from([
        "palaver",
        "--data-dir",
        dir.path().to_str().expect("utf-8 path"),
        // One address sends everything here; the per-IP limit is not what is measured.
        "--rate-limit-burst",
        "1000000",
    ]);
    let server = Server::start(&config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("server");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..rooms {
        for c in 0..clients_per_room {
            let id = r * clients_per_room + c;
            tasks.push(tokio::spawn(client(
                server.addr,
                format!("bench-{r}"),
                id,
                per_client,
                window,
            )));
        }
    }
    let mut acked = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        let o = t.await.expect("client");
        acked += o.acked;
        latencies.extend(o.latencies);
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "| {label} | {rooms} | {} | {acked} | {:.0} | {:.1} | {:.1} |",
        rooms * clients_per_room,
        acked as f64 / secs,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    drop(server);
}

#[tokio::main]
async fn main() {
    println!("| scenario | rooms | clients | messages | acked msg/s | p50 ack ms | p99 ack ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    scenario(
        "one client, one at a time (a commit per message)",
        1,
        1,
        500,
        1,
    )
    .await;
    scenario("one busy room", 1, 50, 400, WINDOW).await;
    scenario("many rooms", 20, 5, 200, WINDOW).await;
}
