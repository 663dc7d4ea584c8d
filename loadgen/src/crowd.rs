//! Floods of people and rooms: a join storm (N people with the longest names join one room as
//! fast as they can, then idle) and a room flood (sockets joining fresh room names in a loop).
//! What they cost the server: time, bytes per join, memory, rooms in memory.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use futures::SinkExt;
use serde::Serialize;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::idle::rss_kib;

#[derive(Clone, Debug, Default, Serialize)]
pub struct StormOutcome {
    pub members: usize,
    pub errors: usize,
    /// From the first connect until the last member had its roster page.
    pub seconds: f64,
    /// What a newcomer to the full room receives before it can chat: welcome and first roster
    /// page.
    pub join_bytes: usize,
    /// Presence bytes each member received while the room filled, on average.
    pub presence_bytes_per_member: f64,
    /// Presence bytes each member received for the newcomer's join, on average.
    pub presence_bytes_per_join: f64,
    pub rss_per_member_kib: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FloodOutcome {
    pub sockets: usize,
    pub seconds: f64,
    pub rooms_opened: usize,
    pub refused: usize,
    /// Most rooms in memory at once (sampled every 250 ms from /metrics).
    pub peak_rooms: f64,
    /// Rooms still in memory 8 s after the flood stopped.
    pub rooms_after: f64,
    pub rss_growth_kib: u64,
}

/// A distinct display name of 32 four-byte characters, the longest there is.
fn long_name(i: usize) -> String {
    let digit = |d: usize| char::from_u32(0x1F300 + d as u32).unwrap_or('x');
    let mut name: String = [digit(i / 256), digit(i % 256)].into_iter().collect();
    name.extend(std::iter::repeat_n('𝒜', 30));
    name
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket to `path` from source address `127.0.0.{2 + i % 30}`.
async fn connect(server: SocketAddr, path: &str, i: usize) -> Result<Socket, String> {
    let source = Ipv4Addr::new(127, 0, 0, 2 + (i % 30) as u8);
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::from((source, 0)))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(server).await.map_err(|e| e.to_string())?;
    let url = format!("ws://{server}{path}");
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// `members` people join one room as fast as 256 at a time allow, and stay until measured.
pub async fn join_storm(server: SocketAddr, pid: u32, members: usize, room: &str) -> StormOutcome {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid).unwrap_or(0);
    let (stop, stopped) = watch::channel(false);
    let presence = Arc::new(AtomicUsize::new(0));
    let path = format!("/api/rooms/{room}/ws");
    let start = Instant::now();
    let joined: Vec<Result<usize, String>> = stream::iter(0..members)
        .map(|i| member(server, &path, i, stopped.clone(), presence.clone()))
        .buffer_unordered(256)
        .collect()
        .await;
    let seconds = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid).unwrap_or(0);
    let ok = joined.iter().filter(|r| r.is_ok()).count();
    let during_storm = presence.load(Ordering::Relaxed);
    // One more person joins the full room: what it gets, and what it costs everyone else.
    let newcomer = member(server, &path, members, stopped.clone(), Arc::default()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let for_one_join = presence.load(Ordering::Relaxed) - during_storm;
    let _ = stop.send(true);
    let per_member = |bytes: usize| bytes as f64 / ok.max(1) as f64;
    StormOutcome {
        members: ok,
        errors: joined.len() - ok,
        seconds,
        join_bytes: newcomer.unwrap_or(0),
        presence_bytes_per_member: per_member(during_storm),
        presence_bytes_per_join: per_member(for_one_join),
        rss_per_member_kib: after.saturating_sub(before) as f64 / ok.max(1) as f64,
    }
}

/// One member: joins, counts the bytes until its roster page, then reads (counting presence
/// bytes) until stopped. Returns the join's bytes.
async fn member(
    server: SocketAddr,
    path: &str,
    i: usize,
    mut stopped: watch::Receiver<bool>,
    presence: Arc<AtomicUsize>,
) -> Result<usize, String> {
    let ws = connect(server, path, i).await?;
    let (mut sink, mut frames) = ws.split();
    let join = app::protocol::ClientMsg::Join {
        token: None,
        owner_key: None,
        name: long_name(i),
        after_seq: None,
        key: None,
    };
    sink.send(Message::text(join.encode()))
        .await
        .map_err(|e| e.to_string())?;
    let mut join_bytes = 0;
    loop {
        match frames.next().await {
            Some(Ok(Message::Text(t))) => {
                join_bytes += t.len();
                if t.as_str().starts_with(r#"{"type":"roster""#) {
                    break;
                }
            }
            Some(Ok(_)) => {}
            other => return Err(format!("join: {other:?}")),
        }
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                frame = frames.next() => match frame {
                    Some(Ok(Message::Text(t))) if t.as_str().starts_with(r#"{"type":"presence""#) => {
                        presence.fetch_add(t.len(), Ordering::Relaxed);
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
            }
        }
        let _ = sink.close().await;
    });
    Ok(join_bytes)
}

/// `sockets` loops of connect, join a fresh room name, close, for `duration`.
pub async fn room_flood(
    server: SocketAddr,
    pid: u32,
    sockets: usize,
    duration: Duration,
) -> FloodOutcome {
    let before = rss_kib(pid).unwrap_or(0);
    let opened = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let loops: Vec<_> = (0..sockets)
        .map(|s| {
            let (opened, refused) = (opened.clone(), refused.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while start.elapsed() < duration {
                    n += 1;
                    match visit(server, &format!("/api/rooms/flood-{s}-{n}/ws"), s).await {
                        Ok(true) => opened.fetch_add(1, Ordering::Relaxed),
                        Ok(false) | Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let mut peak_rooms = 0.0_f64;
    while start.elapsed() < duration {
        peak_rooms = peak_rooms.max(rooms_active(server).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for l in loops {
        let _ = l.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let rss_growth_kib = rss_kib(pid).unwrap_or(0).saturating_sub(before);
    tokio::time::sleep(Duration::from_secs(8)).await;
    FloodOutcome {
        sockets,
        seconds,
        rooms_opened: opened.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        peak_rooms,
        rooms_after: rooms_active(server).await,
        rss_growth_kib,
    }
}

/// One visit: whether the room let it in (a welcome) or not.
async fn visit(server: SocketAddr, path: &str, s: usize) -> Result<bool, String> {
    let ws = connect(server, path, s).await?;
    let (mut sink, mut frames) = ws.split();
    let join = app::protocol::ClientMsg::Join {
        token: None,
        owner_key: None,
        name: format!("flood-{s}"),
        after_seq: None,
        key: None,
    };
    sink.send(Message::text(join.encode()))
        .await
        .map_err(|e| e.to_string())?;
    let welcomed = match frames.next().await {
        Some(Ok(Message::Text(t))) => t.as_str().starts_with(r#"{"type":"welcome""#),
        _ => false,
    };
    let _ = sink.close().await;
    Ok(welcomed)
}

/// `palaver_rooms_active` from the server's `/metrics`.
async fn rooms_active(server: SocketAddr) -> f64 {
    let Ok((_, _, body)) = crate::web::get(server, "/metrics", false).await else {
        return 0.0;
    };
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("palaver_rooms_active "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
