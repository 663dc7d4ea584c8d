//! Fan-out: R rooms × C clients, S of them per room sending. Every message carries its sender,
//! its number and its send time; every client checks it gets each message of its room exactly once
//! and records how long each took to arrive.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::protocol::{ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

mod client;

use client::client;

/// Which server, and how to speak to it.
#[derive(Clone, Debug)]
pub enum Target {
    /// Palaver's own protocol at `ws://addr/api/rooms/<room>/ws`.
    Palaver(String),
    /// The ceiling server at `ws://addr/<room>`.
    Ceiling(String),
    /// Palaver's edge-chat compatibility endpoint at `ws://addr/api/room/<room>/websocket`
    /// (`{"name"}` first, `{"message"}` to send, no acks: a sender's own echo answers it).
    EdgeChat(String),
    /// Several Palaver nodes sharing one engine: client `i` of each room connects to node
    /// `i % n`, as a load balancer without sticky sessions would spread them.
    PalaverNodes(Vec<String>),
}

impl Target {
    pub fn url(&self, room: &str) -> String {
        self.url_for(room, 0)
    }

    /// The URL client `index` of a room connects to.
    pub fn url_for(&self, room: &str, index: usize) -> String {
        match self {
            Target::Palaver(addr) => format!("ws://{addr}/api/rooms/{room}/ws"),
            Target::Ceiling(addr) => format!("ws://{addr}/{room}"),
            Target::EdgeChat(addr) => format!("ws://{addr}/api/room/{room}/websocket"),
            Target::PalaverNodes(addrs) => {
                let addr = &addrs[index % addrs.len().max(1)];
                format!("ws://{addr}/api/rooms/{room}/ws")
            }
        }
    }

    /// Whether it speaks Palaver's protocol (join, acks) rather than the ceiling's or edge-chat's.
    pub fn is_palaver(&self) -> bool {
        matches!(self, Target::Palaver(_) | Target::PalaverNodes(_))
    }

    pub fn is_edge_chat(&self) -> bool {
        matches!(self, Target::EdgeChat(_))
    }
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub rooms: usize,
    pub clients_per_room: usize,
    pub senders_per_room: usize,
    pub messages_per_sender: usize,
    /// Unanswered messages a sender may have out at once (ignored with `rate`).
    pub window: usize,
    /// Fixed rate per sender, messages per second, instead of a window.
    pub rate: Option<f64>,
    /// Room names start with this, so runs never share rooms.
    pub room_prefix: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    pub sent: u64,
    pub deliveries: u64,
    pub seconds: f64,
    pub deliveries_per_s: f64,
    pub messages_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub lost: u64,
    pub duplicated: u64,
    /// Sends refused as `unavailable` and sent again (storage briefly unreachable).
    pub resent: u64,
}

/// Sends a Palaver `join` and waits for the welcome.
pub async fn join<W, R>(sink: &mut W, frames: &mut R, name: String) -> Result<(), String>
where
    W: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
    R: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let join = ClientMsg::Join {
        token: None,
        owner_key: None,
        name,
        after_seq: None,
        key: None,
    };
    sink.send(Message::text(join.encode()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match frames.next().await {
            Some(Ok(Message::Text(t))) => {
                if let Ok(ServerMsg::Welcome { .. }) = serde_json::from_str(t.as_str()) {
                    return Ok(());
                }
            }
            Some(Ok(_)) => {}
            other => return Err(format!("join: {other:?}")),
        }
    }
}

/// Sends the edge-chat demo's `{"name"}` and waits for its `{"ready":true}`.
pub async fn join_edge_chat<W, R>(sink: &mut W, frames: &mut R, name: String) -> Result<(), String>
where
    W: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
    R: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let hello = serde_json::json!({ "name": name }).to_string();
    sink.send(Message::text(hello))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match frames.next().await {
            Some(Ok(Message::Text(t))) if t.as_str().contains("\"ready\"") => return Ok(()),
            Some(Ok(Message::Text(t))) if t.as_str().contains("\"error\"") => {
                return Err(format!("join: {}", t.as_str()))
            }
            Some(Ok(_)) => {}
            other => return Err(format!("join: {other:?}")),
        }
    }
}

pub async fn run(target: &Target, scenario: &Scenario) -> Result<Outcome, String> {
    let total_clients = scenario.rooms * scenario.clients_per_room;
    let barrier = Arc::new(Barrier::new(total_clients + 1));
    let deadline_after = Duration::from_secs(120);
    let mut tasks = Vec::with_capacity(total_clients);
    for room in 0..scenario.rooms {
        for index in 0..scenario.clients_per_room {
            let target = target.clone();
            let scenario = scenario.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                client(&target, &scenario, room, index, barrier, deadline_after).await
            }));
            // Connect in small steps so the accept queue never overflows.
            if tasks.len() % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
    // Every client connects and joins before anyone sends. A client that fails before then would
    // leave the others waiting at the barrier for ever: the run fails with its error instead.
    if tokio::time::timeout(Duration::from_secs(60), barrier.wait())
        .await
        .is_err()
    {
        let count = tasks.iter().filter(|t| t.is_finished()).count();
        let mut first = None;
        for task in tasks {
            if task.is_finished() && first.is_none() {
                first = Some(
                    task.await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map(drop)),
                );
            } else {
                task.abort();
            }
        }
        return Err(format!(
            "{count} of {total_clients} clients failed before the start; the first: {first:?}"
        ));
    }
    let start = Instant::now();
    let mut reports = Vec::with_capacity(total_clients);
    for task in tasks {
        reports.push(task.await.map_err(|e| e.to_string())??);
    }
    let end = reports
        .iter()
        .filter_map(|r| r.last_receive)
        .max()
        .unwrap_or(start);
    let seconds = (end - start).as_secs_f64().max(1e-9);
    let mut latencies: Vec<u32> = Vec::new();
    let mut outcome = Outcome {
        seconds,
        ..Outcome::default()
    };
    for r in reports {
        outcome.deliveries += r.deliveries;
        outcome.lost += r.lost;
        outcome.duplicated += r.duplicated;
        outcome.sent += r.sent;
        outcome.resent += r.resent;
        latencies.extend(r.latencies_us);
    }
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(latencies[i]) / 1000.0
    };
    outcome.p50_ms = pct(0.50);
    outcome.p90_ms = pct(0.90);
    outcome.p99_ms = pct(0.99);
    outcome.max_ms = pct(1.0);
    outcome.deliveries_per_s = outcome.deliveries as f64 / seconds;
    outcome.messages_per_s = outcome.sent as f64 / seconds;
    Ok(outcome)
}
