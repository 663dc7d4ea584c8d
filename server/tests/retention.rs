//! Retention seen by clients: a room keeping its newest messages (`--retain-messages`) tells a
//! client resuming from a removed number what is gone (`removed`), then sends what remains, in
//! order; numbering goes on; the room's page says older messages are no longer kept.

mod common;

use app::protocol::{ChatMessage, ServerMsg};
use common::{Node, TestServer};

/// What a client joining after `after_seq` receives until it has the messages up to `head`.
async fn resume(server: &TestServer, after_seq: u64, head: u64) -> (Vec<ServerMsg>, Vec<u64>) {
    let mut client = server.join("kept", "Bo", Some(after_seq)).await;
    let (mut removed, mut seqs) = (Vec::new(), Vec::new());
    while seqs.last().is_none_or(|s| *s < head) {
        match client.recv().await {
            ServerMsg::Message(ChatMessage { seq, .. }) => seqs.push(seq),
            r @ ServerMsg::Removed { .. } => removed.push(r),
            _ => {}
        }
    }
    (removed, seqs)
}

#[tokio::test]
async fn a_client_resuming_from_a_removed_number_is_told_and_gets_what_remains_in_order() {
    let server = TestServer::start_with(&["--retain-messages", "3"]).await;
    let mut ada = server.join("kept", "Ada", None).await;
    for i in 1..=6 {
        let (seq, _) = ada
            .send_and_ack(&format!("m{i}"), &format!("message {i}"))
            .await;
        assert_eq!(seq, i, "numbering goes on past what is removed");
    }

    let (removed, seqs) = resume(&server, 1, 6).await;
    assert_eq!(removed, [ServerMsg::Removed { after: 1, upto: 3 }]);
    assert_eq!(seqs, [4, 5, 6]);
    // A newcomer is told too: the room had more than it shows.
    let (removed, seqs) = resume(&server, 0, 6).await;
    assert_eq!(removed, [ServerMsg::Removed { after: 0, upto: 3 }]);
    assert_eq!(seqs, [4, 5, 6]);
    // Nothing missed, nothing said.
    let (removed, seqs) = resume(&server, 4, 6).await;
    assert!(removed.is_empty());
    assert_eq!(seqs, [5, 6]);

    // The page shows what is kept and says the rest is gone (not "the beginning").
    let (status, page) = common::http("GET", &server.http_url("/r/kept")).await;
    assert_eq!(status, 200);
    assert!(page.contains("are no longer kept by this server"), "{page}");
    assert!(!page.contains("message 3<") && page.contains("message 4"));
    assert!(!page.contains("This is the beginning"));
}
