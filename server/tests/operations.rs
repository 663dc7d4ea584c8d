//! Running it for real: health and readiness, Prometheus metrics, start-up errors for bad
//! settings, and a graceful restart under load (the real binary, SIGTERM, then a restart).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use app::protocol::{close_code, ClientMsg, ServerMsg};
use common::{Frame, Node, TestServer};

/// Every sample of a scrape, as metric name (plus labels) -> value; histograms give their count.
fn scrape(text: &str) -> HashMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => 0.0,
            };
            let labels = s.labels.to_string();
            let key = if labels.is_empty() {
                s.metric
            } else {
                format!("{}{{{labels}}}", s.metric)
            };
            (key, value)
        })
        .collect()
}

fn metric(samples: &HashMap<String, f64>, name: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| *v)
        .sum()
}

#[tokio::test]
async fn health_readiness_and_metrics_that_move_when_messages_flow() {
    let server = TestServer::start().await;
    assert_eq!(
        common::http("GET", &server.http_url("/healthz")).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        common::http("GET", &server.http_url("/readyz")).await,
        (200, "ready\n".into())
    );

    let (status, headers, body) =
        common::http_with_headers("GET", &server.http_url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.contains("openmetrics-text")));
    let before = scrape(&body);
    assert_eq!(metric(&before, "palaver_messages_accepted_total"), 0.0);
    assert!(
        before.keys().any(|k| k.starts_with("palaver_build_info")),
        "{before:?}"
    );

    let mut ada = server.join("metrics", "Ada", None).await;
    let mut bob = server.join("metrics", "Bob", None).await;
    for i in 0..5 {
        ada.send_and_ack(&format!("m{i}"), "hello").await;
    }
    bob.messages(5).await;
    ada.send(&ClientMsg::Send {
        client_id: "bad".into(),
        text: "   ".into(),
    })
    .await;
    while !matches!(ada.recv().await, ServerMsg::Error { .. }) {}

    let after = scrape(&common::http("GET", &server.http_url("/metrics")).await.1);
    assert_eq!(metric(&after, "palaver_messages_accepted_total"), 5.0);
    assert_eq!(metric(&after, "palaver_connections"), 2.0);
    assert_eq!(metric(&after, "palaver_rooms_active"), 1.0);
    assert!(
        metric(&after, "palaver_deliveries_total") >= 10.0,
        "{after:?}"
    );
    assert_eq!(
        after
            .get("palaver_messages_rejected_total{reason=\"Invalid\"}")
            .copied(),
        Some(1.0),
        "{after:?}"
    );
    assert!(
        metric(&after, "palaver_storage_commit_seconds") >= 1.0,
        "{after:?}"
    );
    assert!(
        metric(&after, "palaver_fanout_seconds") >= 10.0,
        "{after:?}"
    );
}

#[tokio::test]
async fn metrics_can_live_on_their_own_address() {
    let server = TestServer::start_with(&["--metrics-bind", "127.0.0.1:0"]).await;
    let metrics = server.server.metrics_addr.expect("a metrics address");
    let (status, body) = common::http("GET", &format!("http://{metrics}/metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("palaver_connections"));
    let (status, _) = common::http("GET", &server.http_url("/metrics")).await;
    assert_eq!(status, 404, "not on the public address");
}

#[tokio::test]
async fn readiness_turns_off_while_draining_and_sessions_are_told_to_reconnect() {
    let server = TestServer::start_with(&["--drain-delay-ms", "1500"]).await;
    let mut ada = server.join("drain", "Ada", None).await;
    let stopper = server.server.stopper();
    let stopping = tokio::spawn(async move { stopper.stop().await });

    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (status, body) = common::http("GET", &server.http_url("/readyz")).await;
        if status == 503 {
            assert!(body.contains("draining"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "still ready while draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Still serving during the drain delay: alive, and the session still works.
    assert_eq!(
        common::http("GET", &server.http_url("/healthz")).await.0,
        200
    );
    assert_eq!(ada.send_and_ack("d1", "still here").await.0, 1);

    // Then every session is told to reconnect.
    loop {
        match ada.next_frame(Duration::from_secs(5)).await {
            Some(Frame::Msg(_)) => continue,
            Some(Frame::Closed(code)) => {
                assert_eq!(code, Some(close_code::SERVICE_RESTART));
                break;
            }
            None => panic!("no 1012 close"),
        }
    }
    stopping.await.unwrap();
}

/// Runs the server binary with `args`; returns its exit status and what it printed to stderr.
fn run_binary(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("the server binary runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_settings_each_fail_at_start_with_an_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let data_in_file = file.join("data");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--bind".into(), "nowhere".into()], "--bind"),
        (
            vec!["--rate-limit-burst".into(), "0".into()],
            "--rate-limit-burst",
        ),
        (
            vec!["--max-message-bytes".into(), "99999999".into()],
            "--max-message-bytes",
        ),
        (
            vec!["--ping-interval-ms".into(), "soon".into()],
            "--ping-interval-ms",
        ),
        (
            vec!["--trusted-proxies".into(), "10.0.0.300".into()],
            "--trusted-proxies",
        ),
        (vec!["--log-format".into(), "xml".into()], "--log-format"),
        (
            vec!["--shutdown-timeout-secs".into(), "0".into()],
            "--shutdown-timeout-secs",
        ),
        (
            vec![
                "--data-dir".into(),
                data_in_file.display().to_string(),
                "--bind".into(),
                "127.0.0.1:0".into(),
            ],
            "--data-dir",
        ),
    ];
    for (args, setting) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, stderr) = run_binary(&args);
        assert!(!status.success(), "{args:?} started");
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert!(
            first.contains(setting),
            "{args:?}: the first line should name {setting}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A bad site setting from the environment is an error too, not a silent default.
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .env("LEPTOS_SITE_ADDR", "nowhere")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LEPTOS_SITE_ADDR"));

    // The same through the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .env("PALAVER_MAX_CONNECTIONS", "none")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-connections"));
}

/// The server binary on a free port with room for 50 senders from one address; killed when
/// dropped.
async fn start_process(data_dir: &std::path::Path) -> common::Process {
    let mut args = common::RELAXED_RATE_LIMIT.to_vec();
    args.extend([
        "--max-connections-per-ip",
        "1000",
        "--shutdown-timeout-secs",
        "5",
    ]);
    common::process::start(data_dir, &args).await
}

/// One of the 50 senders: what it was told, and what it still owes.
struct Sender {
    id: usize,
    client: common::Client,
    /// client_id -> seq, from acks.
    acked: BTreeMap<String, u64>,
    /// Sent but not acknowledged, in order.
    unacked: Vec<String>,
    /// The last sequence number seen (messages and acks).
    last_seen: u64,
    next: usize,
}

async fn join(url: &str, name: &str, after_seq: Option<u64>) -> common::Client {
    let mut c = common::Client::connect(url).await;
    c.send(&ClientMsg::Join {
        token: None,
        owner_key: None,
        name: name.into(),
        after_seq,
        key: common::test_key(),
    })
    .await;
    assert!(matches!(c.recv().await, ServerMsg::Welcome { .. }));
    c
}

impl Sender {
    fn post(&mut self) -> ClientMsg {
        self.next += 1;
        let client_id = format!("s{}-{}", self.id, self.next);
        self.unacked.push(client_id.clone());
        ClientMsg::Send {
            client_id,
            text: format!("from {} number {}", self.id, self.next),
        }
    }

    fn take(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Ack { client_id, seq } => {
                self.unacked.retain(|id| *id != client_id);
                self.acked.insert(client_id, seq);
            }
            ServerMsg::Message(m) => self.last_seen = self.last_seen.max(m.seq),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_and_clients_resume_after_the_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut first = start_process(data.path()).await;
    let url = first.ws_url("restart");
    let mut senders = Vec::new();
    for id in 0..50 {
        senders.push(Sender {
            id,
            client: join(&url, &format!("Sender {id}"), None).await,
            acked: BTreeMap::new(),
            unacked: Vec::new(),
            last_seen: 0,
            next: 0,
        });
    }

    // Everyone sends, a few in flight each, until the server goes away under them.
    let pid = first.pid().expect("running");
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        Instant::now()
    });
    let mut tasks = Vec::new();
    for mut s in senders {
        tasks.push(tokio::spawn(async move {
            loop {
                for _ in 0..3 {
                    let msg = s.post();
                    if s.client.try_send(&msg).await.is_err() {
                        break;
                    }
                }
                // Read until this round's posts are answered or the connection ends.
                loop {
                    match s.client.next_frame(Duration::from_secs(10)).await {
                        Some(Frame::Msg(m)) => {
                            s.take(m);
                            if s.unacked.is_empty() {
                                break;
                            }
                        }
                        Some(Frame::Closed(code)) => return (s, code),
                        None => panic!("sender {} heard nothing for 10 s", s.id),
                    }
                }
            }
        }));
    }
    let mut senders = Vec::new();
    for t in tasks {
        let (s, code) = t.await.unwrap();
        assert_eq!(code, Some(close_code::SERVICE_RESTART), "sender {}", s.id);
        senders.push(s);
    }
    let signalled = killer.await.unwrap();
    let status = loop {
        if let Some(status) = first.try_wait() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(6),
            "still running past the 5 s shutdown deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    let acked_before: usize = senders.iter().map(|s| s.acked.len()).sum();
    let pending: usize = senders.iter().map(|s| s.unacked.len()).sum();
    eprintln!(
        "before the restart: {acked_before} acknowledged, {pending} unanswered; exited {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert!(acked_before > 0);

    // Restart on the same data; everyone resumes where they were and resends what was unanswered.
    let second = start_process(data.path()).await;
    let url = second.ws_url("restart");
    for s in &mut senders {
        let mut c = common::Client::connect(&url).await;
        c.send(&ClientMsg::Join {
            token: None,
            owner_key: None,
            name: format!("Sender {}", s.id),
            after_seq: Some(s.last_seen),
            key: common::test_key(),
        })
        .await;
        let head = match c.recv().await {
            ServerMsg::Welcome { last_seq, .. } => last_seq,
            other => panic!("{other:?}"),
        };
        // Catch-up: exactly the messages after the last one seen, each once, in order.
        let mut expect = s.last_seen + 1;
        while expect <= head {
            if let ServerMsg::Message(m) = c.recv().await {
                assert_eq!(m.seq, expect, "sender {}: gap or duplicate", s.id);
                expect += 1;
            }
        }
        s.last_seen = head;
        s.client = c;
        for client_id in s.unacked.clone() {
            s.client
                .send(&ClientMsg::Send {
                    client_id,
                    text: "resent".into(),
                })
                .await;
        }
    }
    for s in &mut senders {
        while !s.unacked.is_empty() {
            let msg = s.client.recv().await;
            s.take(msg);
        }
    }

    // History holds every acknowledged message once, under the number its sender was given.
    let mut reader = join(&url, "Auditor", Some(0)).await;
    let total: usize = senders.iter().map(|s| s.acked.len()).sum();
    let history = reader.messages(total).await;
    assert!(
        history.iter().map(|m| m.seq).eq(1..=total as u64),
        "contiguous, no holes"
    );
    let by_id: HashMap<&str, u64> = history
        .iter()
        .map(|m| (m.client_id.as_str(), m.seq))
        .collect();
    assert_eq!(by_id.len(), total, "no client id stored twice");
    for s in &senders {
        for (client_id, seq) in &s.acked {
            assert_eq!(by_id.get(client_id.as_str()), Some(seq), "{client_id}");
        }
    }
    assert!(
        reader
            .next_event(Duration::from_millis(300))
            .await
            .is_none(),
        "nothing beyond what was acknowledged"
    );
}
