//! The HTTP side under slow and greedy clients, against the real server binary: half-sent heads,
//! stalled bodies, floods of page and history requests, requests for other host names, and a
//! shutdown with a request stuck in the middle.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Node, Process};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn start(args: &[&str]) -> (Process, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = common::process::start(dir.path(), args).await;
    (server, dir)
}

/// A TCP connection to `server` from `source`.
async fn connect_from(server: SocketAddr, source: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind source");
    socket.connect(server).await.expect("connect")
}

/// Whether the server closed `stream` (EOF or reset) within `wait`; what it sent meanwhile is
/// read and dropped.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_are_closed_and_cannot_lock_others_out() {
    let (server, _dir) = start(&[
        "--header-read-timeout-ms",
        "5000",
        "--max-http-connections-per-ip",
        "100",
    ])
    .await;
    // 20 addresses, each opening 110 connections that send half a request head.
    let started = Instant::now();
    let mut held = Vec::new();
    let mut over_cap = Vec::new();
    for a in 1..=20u8 {
        let attacker: IpAddr = [127, 20, 0, a].into();
        for i in 0..110 {
            let mut stream = connect_from(server.addr, attacker).await;
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
            if i < 100 {
                held.push(stream);
            } else {
                over_cap.push(stream);
            }
        }
    }
    let opened = started.elapsed();
    // Past its 100, an address's connections are closed at once.
    for stream in &mut over_cap {
        assert!(
            closed_within(stream, Duration::from_millis(500)).await,
            "connections past the cap are closed at once"
        );
    }
    // With 2,000 half-sent heads held open, someone else loads the page and chats.
    let (status, _) = common::http("GET", &server.http_url("/")).await;
    assert_eq!(status, 200);
    let mut ada = server.join("open", "Ada", None).await;
    let sent = Instant::now();
    assert_eq!(ada.send_and_ack("a1", "still works").await.0, 1);
    let ack = sent.elapsed();
    // The 2,000 that got in are closed by the header deadline.
    for stream in &mut held {
        assert!(
            closed_within(stream, Duration::from_secs(8)).await,
            "held open"
        );
    }
    let took = started.elapsed();
    eprintln!("2,200 half-sent heads from 20 addresses opened in {opened:?}; a post acknowledged in {ack:?} meanwhile; all closed {took:?} after the first");
    assert!(
        took < opened + Duration::from_secs(8),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_gets_408_within_the_request_timeout() {
    let (server, _dir) = start(&["--request-timeout-ms", "1000"]).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /api/history HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 100\r\n\r\nroom=gen",
        server.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_page_and_history_flood_from_one_address_is_limited_and_others_are_not() {
    let (server, _dir) = start(&[
        "--http-rate-limit-burst",
        "10",
        "--http-rate-limit-interval-ms",
        "60000",
    ])
    .await;
    let flooder: IpAddr = [127, 21, 0, 1].into();
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let (status, headers, _) =
            common::http_from("GET", &server.http_url("/r/general"), flooder).await;
        if status == 429 {
            let retry: u64 = headers
                .iter()
                .find(|(k, _)| k == "retry-after")
                .and_then(|(_, v)| v.parse().ok())
                .expect("Retry-After in seconds");
            assert!((1..=60).contains(&retry), "{retry}");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert!(statuses[10..].iter().all(|&s| s == 429), "{statuses:?}");
    // Static files and health checks are not counted; another address is not limited.
    let (status, _, _) = common::http_from("GET", &server.http_url("/readyz"), flooder).await;
    assert_eq!(status, 200);
    let (status, _, _) = common::http_from("GET", &server.http_url("/favicon.svg"), flooder).await;
    assert_ne!(status, 429);
    let other: IpAddr = [127, 21, 0, 2].into();
    let (status, _, _) = common::http_from("GET", &server.http_url("/r/general"), other).await;
    assert_eq!(status, 200);
    // A room someone else is in keeps its latency.
    let mut ada = server.join("general", "Ada", None).await;
    let sent = Instant::now();
    ada.send_and_ack("a1", "hello").await;
    let ack = sent.elapsed();
    eprintln!("page flood: 10 pages, then 429 ({statuses:?}); a post on another address acknowledged in {ack:?}");
    assert!(ack < Duration::from_millis(500));
}

#[tokio::test]
async fn with_a_public_origin_other_hosts_and_origins_are_refused() {
    let (server, _dir) = start(&["--public-origin", "https://chat.example.org"]).await;
    let ask = |host: &str, origin: &str| {
        let request = format!(
            "GET /api/rooms/general/ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        let addr = server.addr;
        async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(request.as_bytes()).await.expect("write");
            let mut head = vec![0u8; 256];
            let n = stream.read(&mut head).await.expect("read");
            String::from_utf8_lossy(&head[..n]).into_owned()
        }
    };
    // DNS rebinding: a page of evil.example, whose name now points here.
    let rebound = ask("evil.example", "http://evil.example").await;
    assert!(rebound.starts_with("HTTP/1.1 421"), "{rebound}");
    let wrong_scheme = ask("chat.example.org", "http://chat.example.org").await;
    assert!(wrong_scheme.starts_with("HTTP/1.1 403"), "{wrong_scheme}");
    let own = ask("chat.example.org", "https://chat.example.org").await;
    assert!(own.starts_with("HTTP/1.1 101"), "{own}");
}

#[tokio::test]
async fn after_sigterm_a_stuck_request_does_not_keep_the_server_alive() {
    let (mut server, _dir) = start(&[
        "--shutdown-timeout-secs",
        "2",
        "--request-timeout-ms",
        "600000",
    ])
    .await;
    // A request whose body never comes.
    let mut stuck = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /api/history HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\n\r\nroom=",
        server.addr
    );
    stuck.write_all(head.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.pid().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let signalled = Instant::now();
    let exit = loop {
        if let Some(exit) = server.try_wait() {
            break exit;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(4),
            "still running {:?} after SIGTERM",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "exited {:?} after SIGTERM with a stuck request",
        signalled.elapsed()
    );
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn logs_never_name_a_private_room() {
    let dir = tempfile::tempdir().expect("temp dir");
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_server"));
    let mut command = Process::palaver(binary, dir.path(), common::RELAXED_RATE_LIMIT);
    // Every session line carries its room in its span.
    command.env("RUST_LOG", "debug");
    let server = Process::start(command).await.expect("starts");
    let id = "c0ffee".repeat(10) + "abcd";
    let mut ada = server.join(&id, "Ada", None).await;
    ada.send_and_ack("p1", "secret plans").await;
    ada.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines = server.log_lines();
    assert!(
        lines.iter().any(|l| l.contains("room=private-")),
        "the room is named by its hash"
    );
    assert!(
        !lines.iter().any(|l| l.contains(&id[..12])),
        "no log line holds the private room's id"
    );
}
