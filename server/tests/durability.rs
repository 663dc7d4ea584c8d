//! Durability against the real binary: SIGKILL while clients send, restart, and check that every
//! acknowledged message is stored exactly once, in sequence order with no holes, and that clients
//! resume without duplicates. Also: resuming after missing more than 1,000 messages.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::protocol::{ClientMsg, ServerMsg};
use common::process::{
    assert_history_keeps, full_history, wait_for_acks, write_until_closed, WriterLog,
};
use common::{Client, Node, TestServer};

async fn join(url: &str, name: &str, after_seq: Option<u64>) -> Client {
    Client::join(url, name, after_seq).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_message_and_clients_resume_without_duplicates() {
    let data = tempfile::tempdir().unwrap();
    let server = common::process::start(data.path(), common::RELAXED_RATE_LIMIT).await;
    let url = server.ws_url("crash");

    const WRITERS: usize = 4;
    let total = Arc::new(AtomicUsize::new(0));
    let logs: Vec<_> = (0..WRITERS)
        .map(|_| Arc::new(Mutex::new(WriterLog::default())))
        .collect();
    let tasks: Vec<_> = logs
        .iter()
        .enumerate()
        .map(|(w, log)| {
            tokio::spawn(write_until_closed(
                url.clone(),
                format!("Writer {w}"),
                format!("w{w}"),
                log.clone(),
                total.clone(),
            ))
        })
        .collect();
    wait_for_acks(&total, 200).await;
    server.sigkill().await;
    for t in tasks {
        t.await.unwrap();
    }

    let server = common::process::start(data.path(), common::RELAXED_RATE_LIMIT).await;
    let url = server.ws_url("crash");
    let history = full_history(&url).await;

    // Contiguous, no holes, no duplicates; every acknowledged message under its number.
    let acked: HashMap<String, u64> = logs
        .iter()
        .flat_map(|log| log.lock().unwrap().acked.clone())
        .collect();
    assert!(acked.len() >= 200);
    let stored = assert_history_keeps(&history, &acked);

    // Each writer resumes after its last seen message and resends its unacknowledged message.
    for (w, log) in logs.iter().enumerate() {
        let (last_seen, unacked) = {
            let l = log.lock().unwrap();
            assert!(
                l.seen.windows(2).all(|p| p[1] == p[0] + 1),
                "live stream before the crash had no gap"
            );
            (l.last_seen, l.unacked.clone())
        };
        let mut c = join(&url, &format!("Writer {w}"), Some(last_seen)).await;
        let mut expected_next = last_seen + 1;
        for (id, text) in unacked {
            let (seq, before) = c.send_and_ack(&id, &text).await;
            if let Some(&original) = stored.get(&id) {
                assert_eq!(
                    seq, original,
                    "a resend of a stored message gets its original number"
                );
            }
            for f in before {
                if let ServerMsg::Message(m) = f {
                    assert_eq!(
                        m.seq, expected_next,
                        "resume delivers every message once, in order"
                    );
                    expected_next += 1;
                }
            }
        }
    }
    let after = full_history(&url).await;
    let ids: HashSet<_> = after.iter().map(|m| m.client_id.as_str()).collect();
    assert_eq!(ids.len(), after.len(), "resends created no duplicates");
    assert!(after.iter().map(|m| m.seq).eq(1..=after.len() as u64));
    server.sigkill().await;
}

#[tokio::test]
async fn resume_after_missing_more_than_a_thousand_messages_gets_all_of_them_in_order() {
    let server = TestServer::start().await;
    let mut away = server.join("busy", "Away", None).await;
    let (first, _) = away.send_and_ack("away-1", "see you").await;
    away.close().await;

    let mut writer = server.join("busy", "Writer", Some(first)).await;
    for i in 0..1500 {
        writer
            .send(&ClientMsg::Send {
                client_id: format!("w-{i}"),
                text: format!("m{i}"),
            })
            .await;
    }
    let written = writer.messages(1500).await;
    assert_eq!(written.last().map(|m| m.seq), Some(1501));

    let mut back = server.join("busy", "Away", Some(first)).await;
    let missed = back.messages(1500).await;
    assert!(
        missed.iter().map(|m| m.seq).eq(2..=1501),
        "all 1500 missed messages, in order"
    );
    let texts: BTreeMap<u64, &str> = missed.iter().map(|m| (m.seq, m.text.as_str())).collect();
    assert_eq!(texts[&2], "m0");
    assert_eq!(texts[&1501], "m1499");
    assert!(
        back.next_event(Duration::from_millis(300)).await.is_none(),
        "nothing twice"
    );
}
