//! Edits and deletes on a real server: numbered in the room's sequence and delivered live and on
//! resume, allowed to the author within the window (by sender key for guests, by user id for
//! verified people) and to moderators for deletes, refused to everyone else with nothing changed.

mod common;

use std::time::Duration;

use app::protocol::{ChatMessage, ClientMsg, EntryKind, ErrorCode, ServerMsg};
use common::{Client, Node, TestServer};

const SECRET: &str = "changes-tests-secret-0123456789-abcdefgh";

/// Joins `room` with sender `key` (16+ characters) and optionally a token.
async fn join(
    node: &impl Node,
    room: &str,
    name: &str,
    key: &str,
    token: Option<String>,
) -> Client {
    let person = common::people::Person {
        name,
        key,
        token,
        from: std::net::Ipv4Addr::LOCALHOST.into(),
    };
    person.join(node, room).await
}

fn token(sub: &str, name: &str, roles: &[&str]) -> String {
    common::people::token(SECRET, sub, name, roles)
}

/// Sends `frame` and returns its ack's number, or the error's code and words.
async fn try_change(c: &mut Client, frame: ClientMsg) -> Result<u64, (ErrorCode, String)> {
    let id = match &frame {
        ClientMsg::Edit { client_id, .. } | ClientMsg::Delete { client_id, .. } => {
            client_id.clone()
        }
        _ => unreachable!(),
    };
    c.send(&frame).await;
    loop {
        match c.recv().await {
            ServerMsg::Ack { client_id, seq } if client_id == id => return Ok(seq),
            ServerMsg::Error {
                code,
                message,
                client_id: Some(client_id),
                ..
            } if client_id == id => return Err((code, message)),
            _ => continue,
        }
    }
}

fn edit(id: &str, seq: u64, text: &str) -> ClientMsg {
    ClientMsg::Edit {
        client_id: id.into(),
        seq,
        text: text.into(),
    }
}

fn delete(id: &str, seq: u64) -> ClientMsg {
    ClientMsg::Delete {
        client_id: id.into(),
        seq,
    }
}

/// Waits for the entry numbered `seq`.
async fn entry(c: &mut Client, seq: u64) -> ChatMessage {
    loop {
        if let ServerMsg::Message(m) = c.recv().await {
            if m.seq == seq {
                return m;
            }
        }
    }
}

#[tokio::test]
async fn an_author_edits_and_deletes_and_everyone_sees_it_live_and_on_resume() {
    let node = TestServer::start().await;
    let mut ada = join(&node, "edits", "Ada", "ada-key-0123456789", None).await;
    let mut bob = join(&node, "edits", "Bob", "bob-key-0123456789", None).await;
    let (first, _) = ada.send_and_ack("a1", "helo").await;
    let (second, _) = ada.send_and_ack("a2", "second").await;

    let edited = try_change(&mut ada, edit("a3", first, "hello"))
        .await
        .unwrap();
    assert_eq!(edited, second + 1, "an edit is the next number");
    let again = try_change(&mut ada, edit("a3", first, "hello"))
        .await
        .unwrap();
    assert_eq!(again, edited, "a resent edit is the same entry");
    let live = entry(&mut bob, edited).await;
    assert_eq!(
        (live.kind, live.target, live.text.as_str()),
        (EntryKind::Edit, Some(first), "hello")
    );

    // Bob may not touch Ada's messages; nothing changes.
    let refused = try_change(&mut bob, edit("b1", second, "mine now"))
        .await
        .unwrap_err();
    assert_eq!(refused.0, ErrorCode::Forbidden, "{}", refused.1);
    let refused = try_change(&mut bob, delete("b2", second))
        .await
        .unwrap_err();
    assert!(refused.1.contains("your own"), "{}", refused.1);
    let missing = try_change(&mut ada, edit("a4", 999, "x"))
        .await
        .unwrap_err();
    assert_eq!(missing.0, ErrorCode::InvalidMessage);

    // Ada again from another connection with her key: still hers.
    let mut ada_tab = join(&node, "edits", "Ada", "ada-key-0123456789", None).await;
    let deleted = try_change(&mut ada_tab, delete("a5", first)).await.unwrap();
    let live = entry(&mut bob, deleted).await;
    assert_eq!((live.kind, live.target), (EntryKind::Delete, Some(first)));
    let gone = try_change(&mut ada, edit("a6", first, "back?"))
        .await
        .unwrap_err();
    assert!(gone.1.contains("deleted"), "{}", gone.1);

    // Someone resuming from the start gets the room as it is now, in order.
    let mut carol = node.join("edits", "Carol", Some(0)).await;
    let all = carol.messages(4).await;
    let seqs: Vec<_> = all.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [first, second, edited, deleted]);
    assert!(all[0].deleted && all[0].text.is_empty(), "{:?}", all[0]);
    assert!(
        all[2].deleted && all[2].text.is_empty(),
        "the edit's text went too"
    );
    assert_eq!(all[1].text, "second");

    // The page shows it too (no JavaScript needed).
    let (status, page) = common::http("GET", &node.http_url("/r/edits")).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("helo") && !page.contains(">hello<"),
        "no trace of the deleted text"
    );
    assert!(page.contains("Message deleted"), "a placeholder");
}

#[tokio::test]
async fn the_window_closes_for_authors_but_moderators_delete_any_message() {
    let args = [
        "--auth",
        "optional",
        "--auth-secret",
        SECRET,
        "--edit-window-secs",
        "1",
    ];
    let node = TestServer::start_with(&args).await;
    let mut ada = join(
        &node,
        "w",
        "x",
        "ada-key-0123456789",
        Some(token("u-ada", "Ada", &[])),
    )
    .await;
    let (first, _) = ada.send_and_ack("a1", "quick").await;
    let (second, _) = ada.send_and_ack("a2", "typo").await;
    let edited = try_change(&mut ada, edit("a3", second, "no typo"))
        .await
        .unwrap();
    // Another device of hers (another key): hers by her user id.
    let mut phone = join(
        &node,
        "w",
        "x",
        "ada-phone-0123456789",
        Some(token("u-ada", "Ada", &[])),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = try_change(&mut phone, edit("p1", first, "too late"))
        .await
        .unwrap_err();
    assert!(late.1.contains("1 min"), "{}", late.1);

    let mut moderator = join(
        &node,
        "w",
        "x",
        "mod-key-0123456789",
        Some(token("u-mo", "Mo", &["moderator"])),
    )
    .await;
    let refused = try_change(&mut moderator, edit("m1", first, "moderated"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.0,
        ErrorCode::Forbidden,
        "moderators delete, they do not edit"
    );
    let deleted = try_change(&mut moderator, delete("m2", second))
        .await
        .unwrap();
    assert!(deleted > edited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_during_a_burst_of_changes_loses_nothing_acknowledged_and_applies_nothing_by_half(
) {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let args = common::RELAXED_RATE_LIMIT;
    let node = common::process::start(dir.path(), args).await;
    let mut writer = join(&node, "burst", "Writer", "writer-key-0123456789", None).await;
    let mut targets = Vec::new();
    for i in 0..60 {
        targets.push(
            writer
                .send_and_ack(&format!("m{i}"), &format!("message {i}"))
                .await
                .0,
        );
    }
    // Every third message deleted, the others edited, all at once.
    let mut sent = HashMap::new();
    for (i, &target) in targets.iter().enumerate() {
        let id = format!("c{i}");
        let frame = if i % 3 == 0 {
            delete(&id, target)
        } else {
            edit(&id, target, &format!("edited {i}"))
        };
        writer.send(&frame).await;
        sent.insert(id, (target, i % 3 != 0));
    }
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (acked, count) = (acked.clone(), count.clone());
        tokio::spawn(async move {
            while let Some(common::Frame::Msg(m)) = writer.next_frame(Duration::from_secs(10)).await
            {
                if let ServerMsg::Ack { client_id, seq } = m {
                    acked.lock().unwrap().insert(client_id, seq);
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    };
    common::process::wait_for_acks(&count, 15).await;
    node.sigkill().await;
    let _ = reader.await;

    let node = common::process::start(dir.path(), args).await;
    let all = common::process::full_history(&node.ws_url("burst")).await;
    let by_seq: HashMap<u64, &ChatMessage> = all.iter().map(|m| (m.seq, m)).collect();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 15, "{} acknowledged", acked.len());
    for (id, seq) in &acked {
        let (target, is_edit) = sent[id];
        let change = by_seq
            .get(seq)
            .unwrap_or_else(|| panic!("acknowledged {id} as {seq} is kept"));
        assert_eq!(change.target, Some(target), "{id}");
        let message = by_seq[&target];
        if is_edit {
            assert_eq!(
                message.text,
                format!("edited {}", &id[1..]),
                "{id}: the edit applied"
            );
        } else {
            assert!(
                message.deleted && message.text.is_empty(),
                "{id}: the delete applied"
            );
        }
    }
    // Whatever was stored, acknowledged or not, was applied whole.
    for change in all.iter().filter(|m| !m.kind.is_message()) {
        let target = by_seq[&change.target.unwrap()];
        match change.kind {
            EntryKind::Delete => assert!(target.deleted && target.text.is_empty()),
            _ => assert_eq!(target.text, change.text, "entry {}", change.seq),
        }
    }
    let changed = all.iter().filter(|m| !m.kind.is_message()).count();
    let untouched = all
        .iter()
        .filter(|m| m.kind.is_message() && !m.deleted && m.edited_at_ms.is_none())
        .count();
    assert_eq!(
        changed + untouched,
        targets.len(),
        "each message changed once or not at all"
    );
}
