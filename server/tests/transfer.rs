//! `server export` while the server serves, then `server import` into an empty data directory
//! for a second server: the same history entry by entry (numbers, texts, times, edits and
//! deletions), the same server-rendered page, and new messages numbered after the imported ones.

mod common;

use app::protocol::{ClientMsg, ServerMsg};
use common::process::{full_history, run_command as command, start};
use common::Client;

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends an edit or delete and waits for its acknowledgement.
async fn change(c: &mut Client, frame: ClientMsg, id: &str) -> u64 {
    c.send(&frame).await;
    loop {
        match c.recv().await {
            ServerMsg::Ack { client_id, seq } if client_id == id => return seq,
            ServerMsg::Error { code, message, .. } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
}

/// A page without what differs per response: its CSP nonce (in the policy, on the scripts and as
/// their `crossorigin`).
fn comparable(page: &str) -> String {
    let nonce = page
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a page has a nonce");
    page.replace(nonce, "NONCE")
}

/// Where two pages first differ, for a short failure message.
fn first_difference(a: &str, b: &str) -> Option<String> {
    let at = a.bytes().zip(b.bytes()).position(|(x, y)| x != y)?;
    let around = |s: &str| {
        s.get(at.saturating_sub(80)..(at + 80).min(s.len()))
            .unwrap_or("")
            .to_owned()
    };
    Some(format!("at byte {at}:\n{}\n---\n{}", around(a), around(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_an_empty_server_is_the_same_history_and_page() {
    let dirs = tempfile::tempdir().unwrap();
    let (live, moved) = (dirs.path().join("live"), dirs.path().join("moved"));
    std::fs::create_dir_all(&live).unwrap();
    let first = start(&live, common::RELAXED_RATE_LIMIT).await;

    let mut ann = Client::join(&first.ws_url("archive"), "Ann", None).await;
    let texts = [
        "plain words",
        "**bold** and `code`, a link https://example.org/a?b=c",
        "line one\nline two \"quoted\" \\ backslash",
        "emoji 🎉 and ünïcödé",
    ];
    for i in 0..24 {
        let text = format!("{} #{i}", texts[i % texts.len()]);
        ann.send_and_ack(&format!("m{i}"), &text).await;
    }
    let edit = ClientMsg::Edit {
        client_id: "e1".into(),
        seq: 3,
        text: "edited: line three".into(),
    };
    assert_eq!(change(&mut ann, edit, "e1").await, 25);
    let delete = ClientMsg::Delete {
        client_id: "d1".into(),
        seq: 5,
    };
    assert_eq!(change(&mut ann, delete, "d1").await, 26);
    ann.send_and_ack("last", "the last word").await;

    // Exported while the first server keeps serving.
    let file = dirs.path().join("archive.jsonl");
    let (live_arg, file_arg) = (live.to_str().unwrap(), file.to_str().unwrap());
    let export = |extra: &[&str]| {
        let base = ["--data-dir", live_arg, "export", "--room", "archive"];
        command(&[&base[..], extra].concat())
    };
    let said = stdout(&export(&["--to", file_arg]));
    assert!(said.contains("27 entries (1–27)"), "{said}");
    let written = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 28, "a header and 27 entries");
    assert!(lines[0].contains("\"palaver_export\":1"), "{}", lines[0]);
    // To standard output: the same entries, nothing after them.
    let piped = stdout(&export(&[]));
    assert_eq!(piped.lines().skip(1).collect::<Vec<_>>(), lines[1..]);
    assert!(piped.ends_with("}\n"), "ends with the last entry");
    let again = export(&["--to", file_arg]);
    assert_eq!(again.status.code(), Some(1), "never overwrites");

    let moved_arg = moved.to_str().unwrap();
    let import = |room: &str, from: &str| {
        command(&[
            "--data-dir",
            moved_arg,
            "import",
            "--room",
            room,
            "--from",
            from,
        ])
    };
    let said = stdout(&import("archive", file_arg));
    assert!(said.contains("imported 27 entries"), "{said}");
    redis_round_trip(file_arg, &lines[1..]);
    let twice = import("archive", file_arg);
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("empty room"));
    let junk = dirs.path().join("junk.jsonl");
    std::fs::write(&junk, "{\"hello\":1}\n").unwrap();
    let refused = import("other", junk.to_str().unwrap());
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a Palaver export"));

    let second = start(&moved, common::RELAXED_RATE_LIMIT).await;
    let before = full_history(&first.ws_url("archive")).await;
    let after = full_history(&second.ws_url("archive")).await;
    let json = |h: &[app::protocol::ChatMessage]| serde_json::to_value(h).unwrap();
    assert_eq!(before.len(), 27);
    assert_eq!(json(&after), json(&before), "entry for entry the same");
    assert_eq!(after[2].text, "edited: line three");
    assert!(after[2].edited_at_ms.is_some());
    assert!(after[4].deleted && after[4].text.is_empty());

    let (status_a, page_a) = common::http("GET", &first.http_url("/r/archive")).await;
    let (status_b, page_b) = common::http("GET", &second.http_url("/r/archive")).await;
    assert_eq!((status_a, status_b), (200, 200));
    assert!(
        page_b.contains("the last word"),
        "the page shows the imported messages"
    );
    let (page_a, page_b) = (comparable(&page_a), comparable(&page_b));
    assert_eq!(first_difference(&page_a, &page_b), None, "the same page");
    assert_eq!(page_a.len(), page_b.len(), "the same page");

    let mut bea = Client::join(&second.ws_url("archive"), "Bea", None).await;
    let (next, _) = bea.send_and_ack("after-import", "new here").await;
    assert_eq!(next, 28, "numbered after the imported ones");
}

/// The same file through the Redis engine: imported into a fresh room there and exported again,
/// entry for entry the same lines.
fn redis_round_trip(file: &str, entries: &[&str]) {
    let url = testkit::redis::shared_url();
    let room = testkit::redis::unique("transfer");
    let redis = ["--engine", url.as_str()];
    let import = [&redis[..], &["import", "--room", &room, "--from", file]].concat();
    let said = stdout(&command(&import));
    assert!(said.contains("imported 27 entries"), "{said}");
    let export = [&redis[..], &["export", "--room", &room]].concat();
    let out = stdout(&command(&export));
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        entries,
        "Redis keeps them as they were"
    );
}
