//! One load client: connects, joins, then sends (in a window or at a fixed rate) while it checks
//! that every message of its room arrives exactly once, recording each one's latency.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::protocol::{ChatMessage, ClientMsg, ServerMsg};
use futures::{SinkExt, StreamExt};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

use super::{join, join_edge_chat, Scenario, Target};

/// A Palaver frame as far as the load generator reads it.
#[derive(serde::Deserialize)]
struct Incoming<'a> {
    /// Absent in edge-chat frames.
    #[serde(rename = "type", default)]
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
pub(super) struct ClientReport {
    pub(super) latencies_us: Vec<u32>,
    pub(super) deliveries: u64,
    pub(super) lost: u64,
    pub(super) duplicated: u64,
    pub(super) sent: u64,
    pub(super) resent: u64,
    pub(super) last_receive: Option<Instant>,
}

pub(super) async fn client(
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
    let edge_chat = target.is_edge_chat();
    if palaver {
        join(&mut sink, &mut stream, format!("load-{index}")).await?;
    } else if edge_chat {
        join_edge_chat(&mut sink, &mut stream, format!("load-{index}")).await?;
    }
    barrier.wait().await;

    let mut me = LoadClient::new(scenario, room, index, palaver);
    me.edge_chat = edge_chat;
    let deadline = tokio::time::sleep(deadline_after);
    tokio::pin!(deadline);
    // Paced senders send on this ticker; the others fill their window.
    let paced = scenario.rate.is_some();
    let period = scenario.rate.map_or(Duration::from_secs(3600), |r| {
        Duration::from_secs_f64(1.0 / r)
    });
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if !paced {
            me.fill_window(&mut sink).await?;
        }
        if me.done() {
            break;
        }
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => me.on_text(text.as_str(), &mut sink).await?,
                Some(Ok(_)) => {}
                other => return Err(format!("connection ended: {other:?}")),
            },
            _ = ticker.tick(), if paced && me.is_sender && me.sent < me.per_sender => {
                let frame = me.next_frame();
                sink.send(frame).await.map_err(|e| e.to_string())?;
            }
            () = &mut deadline => break,
        }
    }
    let _ = sink.close().await;
    Ok(me.finish())
}

/// One load client's state: what it sent, what it is owed, what it saw.
struct LoadClient {
    room: usize,
    index: usize,
    palaver: bool,
    /// Speaks the edge-chat demo's frames (no acks; its own echo answers a sender).
    edge_chat: bool,
    is_sender: bool,
    per_sender: usize,
    /// Unanswered messages allowed out at once (unpaced senders).
    window: usize,
    /// Messages the room will carry: every sender's.
    expected: usize,
    /// Which (sender, number) arrived.
    seen: Vec<bool>,
    unique: usize,
    sent: usize,
    in_flight: usize,
    padding: String,
    /// Palaver sends awaiting their ack, by client id, to send again if refused as unavailable.
    unacked: std::collections::HashMap<String, Message>,
    report: ClientReport,
}

type Sink = futures::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

impl LoadClient {
    fn new(scenario: &Scenario, room: usize, index: usize, palaver: bool) -> Self {
        let expected = scenario.senders_per_room * scenario.messages_per_sender;
        Self {
            room,
            index,
            palaver,
            edge_chat: false,
            is_sender: index < scenario.senders_per_room,
            per_sender: scenario.messages_per_sender,
            window: scenario.window,
            expected,
            seen: vec![false; expected],
            unique: 0,
            sent: 0,
            in_flight: 0,
            padding: "x".repeat(64),
            unacked: std::collections::HashMap::new(),
            report: ClientReport::default(),
        }
    }

    /// Everything arrived, and (for a sender) everything sent was answered.
    fn done(&self) -> bool {
        self.unique >= self.expected
            && (!self.is_sender || (self.sent == self.per_sender && self.in_flight == 0))
    }

    /// Sends until the window is full (one flush for all).
    async fn fill_window(&mut self, sink: &mut Sink) -> Result<(), String> {
        if !self.is_sender || self.sent >= self.per_sender || self.in_flight >= self.window {
            return Ok(());
        }
        while self.sent < self.per_sender && self.in_flight < self.window {
            let frame = self.next_frame();
            sink.feed(frame).await.map_err(|e| e.to_string())?;
            self.in_flight += 1;
        }
        sink.flush().await.map_err(|e| e.to_string())
    }

    /// The next message to send, counted as sent (and remembered until acknowledged).
    fn next_frame(&mut self) -> Message {
        let n = self.sent;
        let frame = self.encode(n);
        if self.palaver {
            let id = format!("r{}s{}n{n}", self.room, self.index);
            self.unacked.insert(id, frame.clone());
        }
        self.sent += 1;
        frame
    }

    /// Message `n` of this sender: `index:n:send-time padding`.
    fn encode(&self, n: usize) -> Message {
        let (room, index) = (self.room, self.index);
        let text = format!("{index}:{n}:{} {}", now_ns(), self.padding);
        if self.edge_chat {
            return Message::text(serde_json::json!({ "message": text }).to_string());
        }
        if self.palaver {
            return Message::text(
                ClientMsg::Send {
                    client_id: format!("r{room}s{index}n{n}"),

                    text,
                }
                .encode(),
            );
        }
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
                user_id: None,
                ..Default::default()
            })
            .encode(),
        )
    }

    async fn on_text(&mut self, text: &str, sink: &mut Sink) -> Result<(), String> {
        // Only the fields the load generator needs, borrowed from the frame: the generator
        // shares the machine with the server and should cost it little.
        let incoming =
            serde_json::from_str::<Incoming>(text).map_err(|e| format!("unreadable frame: {e}"))?;
        if self.edge_chat {
            // `{"name","message","timestamp"}`; `{"joined"}`, `{"quit"}`, `{"ready"}` carry no
            // message; `{"error"}` ends the run.
            if text.starts_with("{\"error\"") {
                return Err(format!("server refused: {text}"));
            }
            if let Some(body) = incoming.message.as_deref() {
                self.record(body);
            }
            return Ok(());
        }
        match incoming.kind {
            "message" => self.record(incoming.text.as_deref().unwrap_or_default()),
            "ack" => {
                if let Some(id) = incoming.client_id.as_deref() {
                    self.unacked.remove(id);
                }
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            "error" => {
                // Refused because storage was briefly unreachable: send it again, as browsers
                // do (its latency keeps the first send time).
                let again = match (incoming.code.as_deref(), incoming.client_id.as_deref()) {
                    (Some("unavailable"), Some(id)) => self.unacked.get(id).cloned(),
                    _ => None,
                };
                let Some(frame) = again else {
                    let message = incoming.message.as_deref().unwrap_or_default();
                    return Err(format!("server refused: {message}"));
                };
                self.report.resent += 1;
                sink.send(frame).await.map_err(|e| e.to_string())?;
            }
            _ => {}
        }
        Ok(())
    }

    /// A delivered message: its latency, and whether it is new, once, in the expected set.
    fn record(&mut self, body: &str) {
        let now = now_ns();
        let mut parts = body.split([':', ' ']);
        let (Some(s), Some(n), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let (Ok(s), Ok(n), Ok(t)) = (s.parse::<usize>(), n.parse::<usize>(), t.parse::<u64>())
        else {
            return;
        };
        if !self.palaver && s == self.index && self.is_sender {
            // The ceiling has no acks: a sender's own echo answers it.
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        let report = &mut self.report;
        report.deliveries += 1;
        report.last_receive = Some(Instant::now());
        let latency_us = (now.saturating_sub(t) / 1000).min(u64::from(u32::MAX)) as u32;
        report.latencies_us.push(latency_us);
        match self.seen.get_mut(s * self.per_sender + n) {
            Some(true) | None => report.duplicated += 1,
            Some(flag) => {
                *flag = true;
                self.unique += 1;
            }
        }
    }

    fn finish(mut self) -> ClientReport {
        self.report.lost = (self.expected - self.unique) as u64;
        self.report.sent = self.sent as u64;
        self.report
    }
}
