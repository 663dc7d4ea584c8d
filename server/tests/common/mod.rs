//! Test helpers: a real server on port 0 and a real WebSocket client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use app::protocol::{ClientMsg, ServerMsg};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use palaver_server::config::Config;
use palaver_server::Server;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod people;
pub mod process;

pub use testkit::process::Process;

pub use testkit::RELAXED_RATE_LIMIT;

/// The sender key test clients join with: all of them one sender, so a resend on a new
/// connection is recognised as before ids were scoped (tests about scoping choose their own).
pub fn test_key() -> Option<String> {
    Some("palaver-tests-one-sender".to_owned())
}

/// How long a test waits for a frame that must arrive.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// A server on a free port; shut down when dropped.
pub struct TestServer {
    pub server: Server,
    /// The data directory; deleted when the test ends.
    pub data_dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts with extra command-line settings, e.g. `["--room-idle-secs", "1"]`.
    pub async fn start_with(args: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let dir = data_dir
            .path()
            .to_str()
            .expect("utf-8 temp path")
            .to_owned();
        let argv = ["palaver", "--data-dir", dir.as_str()]
            .into_iter()
            .chain(relaxed_unless_set(args))
            .chain(args.iter().copied());
        let config = Config::parse_from(argv);
        let server = Server::start(&config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("server starts");
        Self { server, data_dir }
    }
}

/// A server to talk to: in-process ([`TestServer`]) or a process ([`Process`]).
pub trait Node {
    fn addr(&self) -> SocketAddr;

    fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/api/rooms/{room}/ws", self.addr())
    }

    fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Connects and joins `room` as `name`, returning the client after the welcome.
    fn join(
        &self,
        room: &str,
        name: &str,
        after_seq: Option<u64>,
    ) -> impl std::future::Future<Output = Client> {
        let url = self.ws_url(room);
        let name = name.to_owned();
        async move { Client::join(&url, &name, after_seq).await }
    }
}

impl Node for TestServer {
    fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

impl Node for Process {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A minimal HTTP/1.1 request over a raw TCP stream (tests need no HTTP client crate): status and body.
pub async fn http(method: &str, url: &str) -> (u16, String) {
    let (status, _, body) = http_with_headers(method, url).await;
    (status, body)
}

/// Like [`http`], with the response headers (names lower-cased).
pub async fn http_with_headers(method: &str, url: &str) -> (u16, Vec<(String, String)>, String) {
    http_from(method, url, std::net::Ipv4Addr::LOCALHOST.into()).await
}

/// Like [`http_with_headers`], from a chosen local address (127.0.0.2, …).
pub async fn http_from(
    method: &str,
    url: &str,
    source: std::net::IpAddr,
) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .expect("path");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind source");
    let mut stream = socket
        .connect(host.parse().expect("socket address"))
        .await
        .expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// Tests that are not about the rate limits send and connect far faster than people do: the
/// [`RELAXED_RATE_LIMIT`] settings that `args` does not set itself.
pub fn relaxed_unless_set(args: &[&str]) -> Vec<&'static str> {
    RELAXED_RATE_LIMIT
        .chunks(2)
        .filter(|pair| !args.contains(&pair[0]))
        .flatten()
        .copied()
        .collect()
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Roster and presence frames set aside by [`Client::recv`], oldest first, as (who the
    /// client knows is here after the frame, joined, left).
    pub presence: std::collections::VecDeque<(Vec<String>, Vec<String>, Vec<String>)>,
    /// Who the client knows is here: the roster page after its welcome, and the changes since.
    pub roster: std::collections::BTreeSet<String>,
    /// How many people the server last said are here.
    pub roster_count: usize,
}

impl Client {
    /// Wraps a socket connected by the test itself (for custom headers).
    pub fn from_stream(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self {
            ws,
            presence: Default::default(),
            roster: Default::default(),
            roster_count: 0,
        }
    }

    /// Connects from a chosen local address (127.0.0.2, …): another "person" for per-IP limits.
    pub async fn connect_from(url: &str, source: std::net::IpAddr) -> Self {
        match Self::try_connect_from(url, source).await {
            Ok(client) => client,
            Err(refused) => panic!("websocket handshake refused: {refused:?}"),
        }
    }

    /// Like [`Client::connect_from`], but a refused upgrade is returned as its HTTP status and
    /// `Retry-After` (status 0: the connection failed before an answer).
    pub async fn try_connect_from(
        url: &str,
        source: std::net::IpAddr,
    ) -> Result<Self, (u16, Option<String>)> {
        let host = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .expect("ws url");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind source");
        let Ok(stream) = socket.connect(host.parse().expect("socket address")).await else {
            return Err((0, None));
        };
        match tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await {
            Ok((ws, _)) => Ok(Self::from_stream(ws)),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Err((response.status().as_u16(), retry_after))
            }
            Err(_) => Err((0, None)),
        }
    }

    /// Connects to a room's WebSocket URL and joins as `name`; returns after the welcome.
    pub async fn join(url: &str, name: &str, after_seq: Option<u64>) -> Self {
        let mut client = Client::connect(url).await;
        client
            .send(&ClientMsg::Join {
                token: None,
                owner_key: None,
                name: name.into(),
                after_seq,
                key: test_key(),
            })
            .await;
        match client.recv().await {
            ServerMsg::Welcome { .. } => client,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Posts `text` and returns its number, sending it again while it is refused as
    /// `unavailable` (a node that cannot store right now, e.g. its Redis is down),
    /// as browsers do. Messages that arrive meanwhile are added to `seen`.
    pub async fn post(
        &mut self,
        client_id: &str,
        text: &str,
        seen: &mut Vec<app::protocol::ChatMessage>,
    ) -> u64 {
        // Long enough for a node to notice its Redis is back (it probes every second).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            self.send(&ClientMsg::Send {
                client_id: client_id.into(),
                text: text.into(),
            })
            .await;
            loop {
                match self.recv().await {
                    ServerMsg::Ack { client_id: id, seq } if id == client_id => return seq,
                    ServerMsg::Error {
                        code: app::protocol::ErrorCode::Unavailable,
                        client_id: Some(id),
                        ..
                    } if id == client_id => break,
                    ServerMsg::Message(m) => seen.push(m),
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{client_id} never accepted");
    }

    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        Self::from_stream(ws)
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        self.send_text(&msg.encode()).await;
    }

    /// Like [`Client::send`], for tests where the server may be gone.
    pub async fn try_send(
        &mut self,
        msg: &ClientMsg,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.ws.send(Message::text(msg.encode())).await
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    /// Applies a roster page or presence change to [`Client::roster`] and sets it aside in
    /// [`Client::presence`]; other frames are given back.
    fn set_aside(&mut self, msg: ServerMsg) -> Option<ServerMsg> {
        let (joined, left) = match msg {
            ServerMsg::Roster {
                names,
                after,
                count,
                ..
            } => {
                if after.is_none() {
                    self.roster.clear();
                }
                self.roster.extend(names);
                self.roster_count = count;
                (Vec::new(), Vec::new())
            }
            ServerMsg::Presence {
                joined,
                left,
                count,
                ..
            } => {
                self.roster_count = count;
                for name in &left {
                    self.roster.remove(name);
                }
                self.roster.extend(joined.iter().cloned());
                (joined, left)
            }
            other => return Some(other),
        };
        let known = self.roster.iter().cloned().collect();
        self.presence.push_back((known, joined, left));
        None
    }

    /// The next protocol frame other than roster and presence (pings are skipped; roster and
    /// presence frames are kept in [`Client::presence`]). Panics on timeout or close.
    pub async fn recv(&mut self) -> ServerMsg {
        loop {
            match self.next_frame(FRAME_TIMEOUT).await {
                Some(Frame::Msg(m)) => {
                    if let Some(m) = self.set_aside(m) {
                        return m;
                    }
                }
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// The next roster or presence frame as (who is here, joined, left): one set aside earlier,
    /// or the next to arrive (other frames that arrive first are dropped). Panics on timeout.
    pub async fn next_presence(&mut self) -> (Vec<String>, Vec<String>, Vec<String>) {
        loop {
            if let Some(p) = self.presence.pop_front() {
                return p;
            }
            match self.next_frame(FRAME_TIMEOUT).await {
                Some(Frame::Msg(m)) => {
                    self.set_aside(m);
                }
                other => panic!("expected presence, got {other:?}"),
            }
        }
    }

    /// Waits until this client knows the roster is exactly `expected` (roster and presence
    /// frames; other frames are dropped, presence frames kept). Changes are announced within half
    /// a second, so this waits at most 3 s.
    pub async fn wait_for_roster(&mut self, expected: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.roster.iter().eq(expected.iter()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "roster never became {expected:?} (is {:?})",
                self.roster
            );
            if let Some(Frame::Closed(code)) = self.next_event(Duration::from_millis(200)).await {
                panic!("closed: {code:?}");
            }
        }
    }

    /// Like [`Client::next_frame`], but roster and presence frames are set aside instead of
    /// returned.
    pub async fn next_event(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame(left).await {
                Some(Frame::Msg(m)) => {
                    if let Some(m) = self.set_aside(m) {
                        return Some(Frame::Msg(m));
                    }
                }
                other => return other,
            }
        }
    }

    /// The next text frame as raw JSON (for other dialects), or the close code. Panics on timeout.
    pub async fn recv_json(&mut self) -> Result<serde_json::Value, Option<u16>> {
        loop {
            let msg = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Ok(serde_json::from_str(t.as_str()).expect("JSON"))
                }
                Some(Ok(Message::Close(c))) => return Err(c.map(|c| u16::from(c.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// The next protocol frame of any kind, roster and presence included. Panics on timeout or
    /// close.
    pub async fn recv_any(&mut self) -> ServerMsg {
        match self.next_frame(FRAME_TIMEOUT).await {
            Some(Frame::Msg(m)) => m,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next text frame as sent (pings skipped) within `wait`; `None` on timeout or close.
    pub async fn next_text(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => return Some(t.as_str().to_owned()),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                _ => return None,
            }
        }
    }

    /// The next frame or close within `wait`, or `None` if nothing came.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Some(Frame::Msg(
                        serde_json::from_str(t.as_str()).expect("server frames are valid JSON"),
                    ))
                }
                Some(Ok(Message::Close(c))) => {
                    return Some(Frame::Closed(c.map(|c| u16::from(c.code))))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("server sent binary"),
                Some(Err(_)) | None => return Some(Frame::Closed(None)),
            }
        }
    }

    /// Sends `text` with `client_id` and waits for its acknowledgement, returning its seq. Other
    /// frames that arrive first are returned too, in order.
    pub async fn send_and_ack(&mut self, client_id: &str, text: &str) -> (u64, Vec<ServerMsg>) {
        self.send(&ClientMsg::Send {
            client_id: client_id.into(),
            text: text.into(),
        })
        .await;
        let mut others = Vec::new();
        loop {
            match self.recv().await {
                ServerMsg::Ack { client_id: id, seq } if id == client_id => return (seq, others),
                other => others.push(other),
            }
        }
    }

    /// Receives chat messages until `count` have arrived, skipping acks and status frames.
    pub async fn messages(&mut self, count: usize) -> Vec<app::protocol::ChatMessage> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            match self.recv().await {
                ServerMsg::Message(m) => out.push(m),
                ServerMsg::Ack { .. } | ServerMsg::Status { .. } => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
        out
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

#[derive(Debug)]
pub enum Frame {
    Msg(ServerMsg),
    Closed(Option<u16>),
}

/// Connects and joins with a tiny receive buffer, then never reads again: a client that stopped
/// reading (a frozen tab, a stalled phone). Nothing reads the returned client until the test does.
pub async fn join_and_stop_reading(server: &TestServer, room: &str, name: &str) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.server.addr).await.unwrap();
    let (ws, _) =
        tokio_tungstenite::client_async(server.ws_url(room), MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    let mut c = Client::from_stream(ws);
    c.send(&ClientMsg::Join {
        token: None,
        owner_key: None,
        name: name.into(),
        after_seq: None,
        key: test_key(),
    })
    .await;
    assert!(matches!(c.recv().await, ServerMsg::Welcome { .. }));
    c
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Sends `count` messages of about 1,900 bytes from `sender` (a window of 32 in flight), each
/// stamped with its send time, while `reader` measures how long each took to reach it. Returns
/// the delivery latencies in order, after checking each message arrived once and in order.
pub async fn flood(
    sender: &mut Client,
    reader: &mut Client,
    count: usize,
    mut on_progress: impl FnMut(usize),
) -> Vec<u64> {
    let padding = "x".repeat(1_880);
    let mut latencies = Vec::with_capacity(count);
    let mut last_seq = None;
    let mut sent = 0;
    while latencies.len() < count {
        let window = (count - sent).min(32);
        for _ in 0..window {
            sent += 1;
            sender
                .send(&ClientMsg::Send {
                    client_id: format!("f{sent}"),
                    text: format!("{} {padding}", now_ms()),
                })
                .await;
        }
        // The sender is in the room too: it takes its acks and the messages.
        let mut acked = 0;
        while acked < window {
            if let ServerMsg::Ack { .. } = sender.recv().await {
                acked += 1;
            }
        }
        while latencies.len() < sent {
            if let ServerMsg::Message(m) = reader.recv().await {
                let stamp: u64 = m.text.split(' ').next().unwrap().parse().unwrap();
                latencies.push(now_ms().saturating_sub(stamp));
                if let Some(prev) = last_seq {
                    assert_eq!(m.seq, prev + 1, "in order, once each");
                }
                last_seq = Some(m.seq);
            }
        }
        on_progress(sent);
    }
    latencies
}
