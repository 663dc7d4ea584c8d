//! The real `server` binary as a child process (for what only a process can show: SIGKILL,
//! SIGTERM, several nodes sharing one engine), and what writers under such tests remember.

use std::path::Path;
use std::time::Duration;

use app::protocol::{ClientMsg, ServerMsg};

use super::{Client, Process};

/// Starts this build's `server` binary with `data_dir` and extra settings, and waits until it
/// listens.
pub async fn start(data_dir: &Path, args: &[&str]) -> Process {
    let binary = Path::new(env!("CARGO_BIN_EXE_server"));
    Process::start(Process::palaver(binary, data_dir, args))
        .await
        .expect("the server binary starts")
}

/// Runs this build's `server` binary with `args` (a command such as `backup`, or a start that is
/// meant to fail) and returns how it ended.
pub fn run_command(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("the server binary runs")
}

/// What one writer knows when its connection dies.
#[derive(Default, Debug)]
pub struct WriterLog {
    /// client_id -> seq for every acknowledged message.
    pub acked: std::collections::HashMap<String, u64>,
    /// Sent but not acknowledged (at most one: writers wait for each ack).
    pub unacked: Vec<(String, String)>,
    /// Last sequence number this writer received.
    pub last_seen: u64,
    /// Every seq received, in order.
    pub seen: Vec<u64>,
}

/// Sends messages one after another, each after the previous one's ack, until the connection
/// breaks. A message refused as `unavailable` (another node took its number first) is sent again,
/// as browsers do.
pub async fn write_until_closed(
    url: String,
    name: String,
    prefix: String,
    log: std::sync::Arc<std::sync::Mutex<WriterLog>>,
    total_acks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use super::Frame;
    use app::protocol::ErrorCode;
    let mut c = Client::join(&url, &name, Some(0)).await;
    for i in 0.. {
        let client_id = format!("{prefix}-{i}");
        let text = format!("message {i} from {name}");
        log.lock()
            .unwrap()
            .unacked
            .push((client_id.clone(), text.clone()));
        let send = ClientMsg::Send {
            client_id: client_id.clone(),
            text,
        };
        c.send(&send).await;
        loop {
            match c.next_event(Duration::from_secs(10)).await {
                Some(Frame::Msg(ServerMsg::Ack { client_id: id, seq })) if id == client_id => {
                    let mut l = log.lock().unwrap();
                    l.unacked.retain(|(u, _)| u != &id);
                    l.acked.insert(id, seq);
                    total_acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
                Some(Frame::Msg(ServerMsg::Message(m))) => {
                    let mut l = log.lock().unwrap();
                    l.last_seen = m.seq;
                    l.seen.push(m.seq);
                }
                Some(Frame::Msg(ServerMsg::Error {
                    code: ErrorCode::Unavailable,
                    client_id: Some(id),
                    ..
                })) if id == client_id => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    c.send(&send).await;
                }
                Some(Frame::Msg(ServerMsg::Status { .. })) => {}
                Some(Frame::Msg(other)) => panic!("unexpected {other:?}"),
                Some(Frame::Closed(_)) | None => return,
            }
        }
    }
}

/// Reads the whole history of a room through the protocol (join with after_seq 0).
pub async fn full_history(url: &str) -> Vec<app::protocol::ChatMessage> {
    let mut c = Client::connect(url).await;
    c.send(&ClientMsg::Join {
        token: None,
        owner_key: None,
        name: "Auditor".into(),
        after_seq: Some(0),
        key: super::test_key(),
    })
    .await;
    let ServerMsg::Welcome { last_seq, .. } = c.recv().await else {
        panic!("welcome")
    };
    c.messages(last_seq as usize).await
}

/// Waits (up to a minute) until the writers have `count` acknowledgements between them.
pub async fn wait_for_acks(total: &std::sync::atomic::AtomicUsize, count: usize) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while total.load(std::sync::atomic::Ordering::SeqCst) < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{count} acknowledgements within 60 s"));
}

/// Checks a room's whole history against what clients were told: numbers 1..=N with no holes,
/// each client id once, and every acknowledged message stored under the number it was
/// acknowledged with. Returns client id -> seq.
pub fn assert_history_keeps<'a>(
    history: &[app::protocol::ChatMessage],
    acked: impl IntoIterator<Item = (&'a String, &'a u64)>,
) -> std::collections::HashMap<String, u64> {
    assert!(
        history.iter().map(|m| m.seq).eq(1..=history.len() as u64),
        "no holes in the history"
    );
    let stored: std::collections::HashMap<String, u64> = history
        .iter()
        .map(|m| (m.client_id.clone(), m.seq))
        .collect();
    assert_eq!(stored.len(), history.len(), "each client id stored once");
    for (id, seq) in acked {
        assert_eq!(
            stored.get(id),
            Some(seq),
            "acknowledged {id} is stored as {seq}"
        );
    }
    stored
}
