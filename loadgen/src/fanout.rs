//! Fan-out: R rooms × C clients, S of them per room sending. Every message carries its sender,
//! its number and its send time; every client checks it gets each message of its room exactly once
//! and records how long each took to arrive.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::protocol::{ChatMessage, ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

/// Which server, and how to speak to it.
#[derive(Clone, Debug)]
pub enum Target {
    /// Palaver's own protocol at `ws://addr/api/rooms/<room>/ws`.
    Palaver(String),
    /// The ceiling server at `ws://addr/<room>`.
    Ceiling(String),
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
            Target::PalaverNodes(addrs) => {
                let addr = &addrs[index % addrs.len().max(1)];
                format!("ws://{addr}/api/rooms/{room}/ws")
            }
        }
    }

    /// Whether it speaks Palaver's protocol (join, acks) rather than the ceiling's.
    pub fn is_palaver(&self) -> bool {
        !matches!(self, Target::Ceiling(_))
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
        name,
        after_seq: None,
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

/// A Palaver frame as far as the load generator reads it.
#[derive(serde::Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    client_id: Option<std::borrow::Cow<'a, str>>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What one client saw.
#[derive(Default)]
struct ClientReport {
    latencies_us: Vec<u32>,
    deliveries: u64,
    lost: u64,
    duplicated: u64,
    sent: u64,
    resent: u64,
    last_receive: Option<Instant>,
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
    barrier.wait().await;
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

async fn client(
    target: &Target,
    scenario: &Scenario,
    room: usize,
    index: usize,
    barrier: Arc<Barrier>,
    deadline_after: Duration,
) -> Result<ClientReport, String> {
    let room_name = format!("{}-{room}", scenario.room_prefix);
    let (ws, _) = tokio_tungstenite::connect_async(target.url_for(&room_name, index))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(s) => s.set_nodelay(true),
        _ => Ok(()),
    };
    let (mut sink, mut stream) = ws.split();
    let palaver = target.is_palaver();
    if palaver {
        join(&mut sink, &mut stream, format!("load-{index}")).await?;
    }
    barrier.wait().await;

    let senders = scenario.senders_per_room;
    let per_sender = scenario.messages_per_sender;
    let expected = senders * per_sender;
    let is_sender = index < senders;
    let mut seen = vec![false; expected];
    let mut unique = 0usize;
    let mut report = ClientReport::default();
    let mut sent = 0usize;
    let mut in_flight = 0usize;
    let padding = "x".repeat(64);
    // Palaver sends awaiting their ack, by client id, to send again if refused as unavailable.
    let mut unacked: std::collections::HashMap<String, Message> = std::collections::HashMap::new();
    let deadline = tokio::time::sleep(deadline_after);
    tokio::pin!(deadline);
    // Paced senders send on this ticker; the others fill their window.
    let paced = scenario.rate.is_some();
    let period = scenario.rate.map_or(Duration::from_secs(3600), |r| {
        Duration::from_secs_f64(1.0 / r)
    });
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let encode = |n: usize| -> Message {
        let text = format!("{index}:{n}:{} {padding}", now_ns());
        if palaver {
            Message::text(
                ClientMsg::Send {
                    client_id: format!("r{room}s{index}n{n}"),
                    text,
                }
                .encode(),
            )
        } else {
            // The ceiling relays bytes; give it a frame shaped and sized like the one Palaver
            // delivers, so both cost the readers (and the wire) the same.
            Message::text(
                ServerMsg::Message(ChatMessage {
                    seq: n as u64 + 1,
                    id: format!(
                        "{:032x}",
                        (room as u128) << 64 | (index as u128) << 32 | n as u128
                    ),
                    sender: format!("load-{index}"),
                    text,
                    sent_at_ms: (now_ns() / 1_000_000) as i64,
                    client_id: format!("r{room}s{index}n{n}"),
                })
                .encode(),
            )
        }
    };
    loop {
        if is_sender && !paced && sent < per_sender && in_flight < scenario.window {
            while sent < per_sender && in_flight < scenario.window {
                let frame = encode(sent);
                if palaver {
                    unacked.insert(format!("r{room}s{index}n{sent}"), frame.clone());
                }
                sink.feed(frame).await.map_err(|e| e.to_string())?;
                sent += 1;
                in_flight += 1;
            }
            sink.flush().await.map_err(|e| e.to_string())?;
        }
        if unique >= expected && (!is_sender || (sent == per_sender && in_flight == 0)) {
            break;
        }
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    other => return Err(format!("connection ended: {other:?}")),
                };
                // Only the fields the load generator needs, borrowed from the frame: the
                // generator shares the machine with the server and should cost it little.
                let incoming = match serde_json::from_str::<Incoming>(text.as_str()) {
                    Ok(i) => i,
                    Err(e) => return Err(format!("unreadable frame: {e}")),
                };
                let body: &str = match incoming.kind {
                    "message" => incoming.text.as_deref().unwrap_or_default(),
                    "ack" => {
                        if let Some(id) = incoming.client_id.as_deref() {
                            unacked.remove(id);
                        }
                        in_flight = in_flight.saturating_sub(1);
                        continue;
                    }
                    "error" => {
                        // Refused because storage was briefly unreachable: send it again, as
                        // browsers do (its latency keeps the first send time).
                        let again = match (incoming.code.as_deref(), incoming.client_id.as_deref()) {
                            (Some("unavailable"), Some(id)) => unacked.get(id).cloned(),
                            _ => None,
                        };
                        let Some(frame) = again else {
                            return Err(format!("server refused: {}", incoming.message.as_deref().unwrap_or_default()));
                        };
                        report.resent += 1;
                        sink.send(frame).await.map_err(|e| e.to_string())?;
                        continue;
                    }
                    _ => continue,
                };
                let now = now_ns();
                let mut parts = body.split([':', ' ']);
                let (Some(s), Some(n), Some(t)) = (parts.next(), parts.next(), parts.next()) else { continue };
                let (Ok(s), Ok(n), Ok(t)) = (s.parse::<usize>(), n.parse::<usize>(), t.parse::<u64>()) else { continue };
                if !palaver && s == index && is_sender {
                    // The ceiling has no acks: a sender's own echo answers it.
                    in_flight = in_flight.saturating_sub(1);
                }
                report.deliveries += 1;
                report.last_receive = Some(Instant::now());
                report.latencies_us.push(((now.saturating_sub(t)) / 1000).min(u64::from(u32::MAX)) as u32);
                let slot = s * per_sender + n;
                match seen.get_mut(slot) {
                    Some(true) => report.duplicated += 1,
                    Some(flag) => { *flag = true; unique += 1; }
                    None => report.duplicated += 1,
                }
            }
            _ = ticker.tick(), if paced && is_sender && sent < per_sender => {
                let frame = encode(sent);
                if palaver {
                    unacked.insert(format!("r{room}s{index}n{sent}"), frame.clone());
                }
                sink.send(frame).await.map_err(|e| e.to_string())?;
                sent += 1;
            }
            () = &mut deadline => break,
        }
    }
    report.lost = (expected - unique) as u64;
    report.sent = sent as u64;
    let _ = sink.close().await;
    Ok(report)
}
