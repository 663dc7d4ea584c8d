//! Idle connections: N clients connect (from several 127.0.0.x source addresses, to get past one
//! address's ~28,000 ephemeral ports), join rooms of 100 people each and stay; the server's
//! resident memory is read from /proc before, right after the joins, and again after they have
//! been held idle a while. Rooms of a fixed size keep the figure per connection independent of N
//! (a roster frame grows with its room). `loadgen bench` runs it on a fresh process, so nothing
//! freed by earlier bursts is there to be reused: the hard case, as a server restarted into a
//! reconnect storm meets it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use futures::SinkExt;
use serde::Serialize;
use tokio::net::TcpSocket;
use tokio::sync::oneshot;

use crate::fanout::Target;

/// People per room in the idle scenario.
const ROOM_SIZE: usize = 100;

#[derive(Clone, Debug, Default, Serialize)]
pub struct IdleOutcome {
    pub connections: usize,
    pub errors: usize,
    pub connect_per_s: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// Right after the joins (and a 2 s settle).
    pub bytes_per_connection: f64,
    /// After the connections were held idle for the hold period.
    pub bytes_per_connection_later: f64,
    pub held_secs: u64,
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Holds the connections open until dropped.
pub struct Held {
    stop: Vec<oneshot::Sender<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        for s in self.stop.drain(..) {
            let _ = s.send(());
        }
    }
}

pub async fn run(
    target: &Target,
    server: SocketAddr,
    server_pid: u32,
    connections: usize,
    room_prefix: &str,
    hold: Duration,
) -> (IdleOutcome, Held) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(server_pid).unwrap_or(0);
    let start = Instant::now();
    let results: Vec<Result<oneshot::Sender<()>, String>> = stream::iter(0..connections)
        .map(|i| {
            let target = target.clone();
            let room = format!("{room_prefix}-{}", i / ROOM_SIZE);
            async move { connect_and_hold(&target, server, i, &room).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let connect_secs = start.elapsed().as_secs_f64();
    let mut held = Held { stop: Vec::new() };
    let mut errors = 0;
    for r in results {
        match r {
            Ok(stop) => held.stop.push(stop),
            Err(_) => errors += 1,
        }
    }
    // Let the server settle (presence announcements, allocator) before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(server_pid).unwrap_or(0);
    tokio::time::sleep(hold).await;
    let later = rss_kib(server_pid).unwrap_or(0);
    let ok = held.stop.len();
    let per = |rss: u64| (rss.saturating_sub(before) * 1024) as f64 / ok.max(1) as f64;
    let outcome = IdleOutcome {
        connections: ok,
        errors,
        connect_per_s: ok as f64 / connect_secs.max(1e-9),
        rss_before_kib: before,
        rss_after_kib: after,
        bytes_per_connection: per(after),
        bytes_per_connection_later: per(later),
        held_secs: hold.as_secs(),
    };
    (outcome, held)
}

async fn connect_and_hold(
    target: &Target,
    server: SocketAddr,
    i: usize,
    room: &str,
) -> Result<oneshot::Sender<()>, String> {
    // 127.0.0.2 .. 127.0.0.31: each source address has its own ephemeral port range.
    let source = Ipv4Addr::new(127, 0, 0, 2 + (i % 30) as u8);
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::from((source, 0)))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(server).await.map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::client_async(target.url(room), stream)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sink, mut frames) = ws.split();
    if target.is_palaver() {
        crate::fanout::join(&mut sink, &mut frames, format!("idle-{i}")).await?;
    }
    let (stop, mut stopped) = oneshot::channel();
    // Keep reading (answers pings, takes presence frames) until told to stop.
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                frame = frames.next() => if !matches!(frame, Some(Ok(_))) { break },
            }
        }
        let _ = sink.close().await;
    });
    Ok(stop)
}
