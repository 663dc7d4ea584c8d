//! The server on port 0 with real WebSocket clients: rooms, ordering, isolation, idempotency,
//! resume and bad input.

mod common;

use std::time::Duration;

use app::protocol::{close_code, ClientMsg, ErrorCode, ServerMsg};
use common::{Frame, Node, TestServer};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn two_clients_in_a_room_see_the_same_messages_in_order_and_another_room_sees_none() {
    let server = TestServer::start().await;
    let mut alice = server.join("room-a", "Alice", None).await;
    let mut bob = server.join("room-a", "Bob", None).await;
    let mut carol = server.join("room-b", "Carol", None).await;

    for i in 1..=3 {
        alice
            .send(&ClientMsg::Send {
                client_id: format!("a-{i}"),
                text: format!("hello {i}"),
            })
            .await;
    }
    let seen_by_alice = alice.messages(3).await;
    let seen_by_bob = bob.messages(3).await;
    assert_eq!(seen_by_alice, seen_by_bob, "both see the same messages");
    let texts: Vec<_> = seen_by_bob.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hello 1", "hello 2", "hello 3"]);
    let seqs: Vec<_> = seen_by_bob.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(seen_by_bob.iter().all(|m| m.sender == "Alice"));

    // Carol's own message is the first thing she receives: nothing from room A reached her.
    let (seq, before) = carol.send_and_ack("c-1", "only in b").await;
    assert_eq!(seq, 1, "room B has its own sequence");
    let mut frames = before;
    if !frames.iter().any(|f| matches!(f, ServerMsg::Message(_))) {
        frames.push(carol.recv().await);
    }
    match &frames[0] {
        ServerMsg::Message(m) => {
            assert_eq!((m.text.as_str(), m.sender.as_str()), ("only in b", "Carol"))
        }
        other => panic!("room B got something else first: {other:?}"),
    }
    assert!(
        carol.next_event(Duration::from_millis(300)).await.is_none(),
        "nothing else arrives in room B"
    );
}

#[tokio::test]
async fn the_roster_lists_everyone_once_and_announces_joins_and_leaves() {
    let server = TestServer::start().await;
    let mut ada = server.join("roster", "Ada", None).await;
    let (first, _, _) = ada.next_presence().await;
    assert!(
        first.is_empty(),
        "the roster as announced follows the welcome"
    );
    ada.wait_for_roster(&["Ada"]).await;
    ada.presence.clear();

    let mut bob = server.join("roster", "Bob", None).await;
    let mut bob_tab = server.join("roster", "Bob", None).await;
    for client in [&mut bob, &mut bob_tab, &mut ada] {
        client.wait_for_roster(&["Ada", "Bob"]).await;
        assert_eq!(client.roster_count, 2, "two tabs, one name");
    }
    let joined: Vec<String> = ada.presence.drain(..).flat_map(|(_, j, _)| j).collect();
    assert_eq!(joined, ["Bob"], "announced once");

    bob.close().await;
    bob_tab.close().await;
    ada.wait_for_roster(&["Ada"]).await;
    let (_, _, left) = ada.presence.pop_back().expect("a change");
    assert_eq!(left, ["Bob"]);
    assert_eq!(ada.roster_count, 1);
}

#[tokio::test]
async fn a_resent_client_id_yields_one_message() {
    let server = TestServer::start().await;
    let mut alice = server.join("dedupe", "Alice", None).await;
    let (first, _) = alice.send_and_ack("same-id", "once").await;
    let (second, _) = alice.send_and_ack("same-id", "once").await;
    assert_eq!(
        first, second,
        "the resend is acknowledged with the original number"
    );

    // A new connection (as after a reconnect) resending the same id is also deduplicated.
    alice.close().await;
    let mut again = server.join("dedupe", "Alice", Some(first)).await;
    let (third, _) = again.send_and_ack("same-id", "once").await;
    assert_eq!(third, first);

    let mut reader = server.join("dedupe", "Reader", None).await;
    let (seq, _) = reader.send_and_ack("reader-1", "marker").await;
    assert_eq!(seq, first + 1, "no second copy was stored");
}

#[tokio::test]
async fn joining_gets_recent_history_and_resume_gets_exactly_what_was_missed() {
    let server = TestServer::start().await;
    let mut writer = server.join("history", "Writer", None).await;
    for i in 1..=150 {
        writer
            .send(&ClientMsg::Send {
                client_id: format!("w-{i}"),
                text: format!("m{i}"),
            })
            .await;
    }
    writer.messages(150).await;

    // A fresh join gets the latest 100.
    let mut fresh = server.join("history", "Fresh", None).await;
    let backlog = fresh.messages(100).await;
    assert_eq!(backlog.first().map(|m| m.seq), Some(51));
    assert_eq!(backlog.last().map(|m| m.seq), Some(150));

    // A resume after seq 20 gets 21..=150, once each, then live messages continue the sequence.
    let mut resumed = server.join("history", "Resumed", Some(20)).await;
    let missed = resumed.messages(130).await;
    assert!(missed.iter().map(|m| m.seq).eq(21..=150));
    writer
        .send(&ClientMsg::Send {
            client_id: "w-151".into(),
            text: "live".into(),
        })
        .await;
    let live = resumed.messages(1).await;
    assert_eq!(live[0].seq, 151);
}

#[tokio::test]
async fn bad_frames_get_clear_errors_and_the_connection_survives() {
    let server = TestServer::start().await;
    let mut c = server.join("errors", "Eve", None).await;

    c.send_text("not json").await;
    assert!(matches!(
        c.recv().await,
        ServerMsg::Error {
            code: ErrorCode::BadFrame,
            ..
        }
    ));
    c.send_text(r#"{"type":"shout"}"#).await;
    assert!(matches!(
        c.recv().await,
        ServerMsg::Error {
            code: ErrorCode::BadFrame,
            ..
        }
    ));
    // Wrong field types, missing fields, other JSON values: each a clear bad_frame error that
    // names the problem and nothing of the server's internals.
    for frame in [
        r#"{"type":"send","client_id":5,"text":"hi"}"#,
        r#"{"type":"send","client_id":"a1","text":["hi"]}"#,
        r#"{"type":"send","text":"hi"}"#,
        r#"{"type":"send","client_id":"a1","text":null}"#,
        r#"{"type":"join","name":"Eve","after_seq":-1}"#,
        r#"[1,2,3]"#,
        r#""send""#,
        "",
    ] {
        c.send_text(frame).await;
        match c.recv().await {
            ServerMsg::Error {
                code: ErrorCode::BadFrame,
                message,
                ..
            } => {
                assert!(
                    message.starts_with("not a valid frame"),
                    "{frame}: {message}"
                );
                assert!(
                    !message.contains("src/") && !message.contains("panick"),
                    "{message}"
                );
            }
            other => panic!("{frame}: {other:?}"),
        }
    }
    c.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert!(matches!(
        c.recv().await,
        ServerMsg::Error {
            code: ErrorCode::BadFrame,
            ..
        }
    ));
    c.send(&ClientMsg::Send {
        client_id: "x1".into(),
        text: "   ".into(),
    })
    .await;
    match c.recv().await {
        ServerMsg::Error {
            code: ErrorCode::InvalidMessage,
            client_id,
            message,
            ..
        } => {
            assert_eq!(client_id.as_deref(), Some("x1"));
            assert!(message.contains("Type a message"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    c.send(&ClientMsg::Send {
        client_id: "x2".into(),
        text: "a".repeat(2001),
    })
    .await;
    assert!(matches!(
        c.recv().await,
        ServerMsg::Error {
            code: ErrorCode::InvalidMessage,
            ..
        }
    ));
    c.send(&ClientMsg::Send {
        client_id: "bad id!".into(),
        text: "hi".into(),
    })
    .await;
    assert!(matches!(
        c.recv().await,
        ServerMsg::Error {
            code: ErrorCode::InvalidClientId,
            ..
        }
    ));
    c.send(&ClientMsg::Join {
        token: None,
        owner_key: None,
        name: "Eve".into(),
        after_seq: None,
        key: common::test_key(),
    })
    .await;
    assert!(matches!(
        c.recv().await,
        ServerMsg::Error {
            code: ErrorCode::BadSequence,
            ..
        }
    ));

    // Still connected and nothing bad was stored: the next good message is number 1.
    let (seq, _) = c.send_and_ack("ok-1", "fine").await;
    assert_eq!(seq, 1);
}

#[tokio::test]
async fn an_invalid_join_is_refused_with_a_close_code() {
    let server = TestServer::start().await;

    let mut c = common::Client::connect(&server.ws_url("ok")).await;
    c.send(&ClientMsg::Join {
        token: None,
        owner_key: None,
        name: " ".into(),
        after_seq: None,
        key: common::test_key(),
    })
    .await;
    assert!(matches!(
        c.recv().await,
        ServerMsg::Error {
            code: ErrorCode::InvalidName,
            ..
        }
    ));
    assert!(matches!(
        c.next_event(Duration::from_secs(2)).await,
        Some(Frame::Closed(Some(close_code::BAD_JOIN)))
    ));

    let mut c = common::Client::connect(&server.ws_url("ok")).await;
    c.send(&ClientMsg::Send {
        client_id: "a".into(),
        text: "hi".into(),
    })
    .await;
    assert!(matches!(
        c.recv().await,
        ServerMsg::Error {
            code: ErrorCode::BadSequence,
            ..
        }
    ));

    // An invalid room name in the URL is refused before the upgrade.
    let err = tokio_tungstenite::connect_async(server.ws_url("no%20such%20room%21")).await;
    assert!(err.is_err(), "upgrade to an invalid room must fail");
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection() {
    let server = TestServer::start().await;
    let mut c = server.join("big", "Mallory", None).await;
    let huge = format!(
        r#"{{"type":"send","client_id":"x","text":"{}"}}"#,
        "a".repeat(64 * 1024)
    );
    c.send_text(&huge).await;
    match c.next_event(Duration::from_secs(3)).await {
        Some(Frame::Closed(code)) => {
            assert_ne!(code, Some(1000), "closed as an error, not normally")
        }
        other => panic!("expected the server to close, got {other:?}"),
    }
}

#[tokio::test]
async fn room_pages_are_server_rendered_with_their_latest_history_as_text() {
    let server = TestServer::start().await;
    let empty = common::http("GET", &server.http_url("/r/general")).await.1;
    assert!(
        empty.contains("#general"),
        "room title is rendered on the server"
    );
    assert!(empty.contains("No messages yet"));
    let home = common::http("GET", &server.http_url("/")).await.1;
    assert!(home.contains("Create a private room"));

    let mut writer = server.join("rendered", "Writer", None).await;
    for i in 1..=120 {
        writer
            .send(&ClientMsg::Send {
                client_id: format!("r-{i}"),
                text: format!("line {i:03}"),
            })
            .await;
    }
    writer
        .send(&ClientMsg::Send {
            client_id: "html".into(),
            text: "<script>alert(1)</script>".into(),
        })
        .await;
    writer.messages(121).await;

    let page = common::http("GET", &server.http_url("/r/rendered")).await.1;
    assert!(
        page.contains("line 120") && page.contains("line 022"),
        "the latest 100 are in the HTML"
    );
    assert!(!page.contains("line 021<"), "older ones are not");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "message text is escaped"
    );
    assert!(!page.contains("<script>alert(1)"), "never raw HTML");
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_whose_nonce_is_on_every_inline_script() {
    let server = TestServer::start().await;
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let policy_of = |page: &str| -> String {
        let at = page
            .find(r#"http-equiv="Content-Security-Policy""#)
            .expect("a CSP meta tag");
        let tag = &page[at..page[at..].find('>').map_or(page.len(), |e| at + e)];
        let content = tag.split(r#"content=""#).nth(1).expect("content");
        content.split('"').next().unwrap_or_default().to_owned()
    };
    for path in ["/r/csp", "/", "/no/such/page"] {
        let (_, headers, page) = common::http_with_headers("GET", &server.http_url(path)).await;
        let csp = policy_of(&page);
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a nonce in the policy");
        assert!(nonce.len() >= 16, "{nonce}");
        assert!(
            csp.contains("'wasm-unsafe-eval'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        // The policy comes before every script, and every script carries its nonce.
        let policy_at = page.find("Content-Security-Policy").unwrap_or(usize::MAX);
        assert!(page.find("<script").is_none_or(|s| s > policy_at), "{path}");
        for script in page.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap_or_default();
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: inline script without this response's nonce: <script{tag}>"
            );
        }
        // No second, stricter policy header that would block the page's own scripts.
        assert_eq!(header(&headers, "content-security-policy"), None, "{path}");
        assert_eq!(header(&headers, "x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            header(&headers, "referrer-policy").as_deref(),
            Some("no-referrer")
        );
        assert_eq!(
            header(&headers, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
    }
    let (_, headers, page) = common::http_with_headers("GET", &server.http_url("/r/csp")).await;
    assert_eq!(
        header(&headers, "cache-control").as_deref(),
        Some("no-cache"),
        "pages are not cached"
    );
    // A fresh nonce per response.
    let (_, _, again) = common::http_with_headers("GET", &server.http_url("/r/csp")).await;
    assert_ne!(policy_of(&page), policy_of(&again));
    // Anything that is not a page gets a policy that allows nothing.
    let (_, headers, _) = common::http_with_headers("GET", &server.http_url("/healthz")).await;
    assert_eq!(
        header(&headers, "content-security-policy").as_deref(),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn message_limits_are_configurable_and_told_to_browsers() {
    let server =
        TestServer::start_with(&["--max-message-chars", "10", "--max-message-bytes", "12"]).await;
    let mut c = server.join("small", "Ada", None).await;
    c.send(&ClientMsg::Send {
        client_id: "long".into(),
        text: "eleven char".into(),
    })
    .await;
    match c.recv().await {
        ServerMsg::Error {
            code: ErrorCode::InvalidMessage,
            message,
            ..
        } => {
            assert_eq!(message, "Messages are at most 10 characters and 12 bytes.")
        }
        other => panic!("{other:?}"),
    }
    c.send(&ClientMsg::Send {
        client_id: "bytes".into(),
        text: "éééééé12".into(),
    })
    .await;
    assert!(
        matches!(
            c.recv().await,
            ServerMsg::Error {
                code: ErrorCode::InvalidMessage,
                ..
            }
        ),
        "14 bytes"
    );
    let (seq, _) = c.send_and_ack("ok", "ten chars!").await;
    assert_eq!(seq, 1);

    // The room page carries the limits for the browser's own check.
    let page = common::http("GET", &server.http_url("/r/small")).await.1;
    assert!(
        page.contains(r#"max_chars\":10"#) && page.contains(r#"max_bytes\":12"#),
        "limits in the page data"
    );
}

#[tokio::test]
async fn a_ping_is_answered_with_a_pong() {
    let server = TestServer::start().await;
    let mut c = server.join("heartbeat", "Ada", None).await;
    c.send(&ClientMsg::Ping).await;
    assert_eq!(c.recv().await, ServerMsg::Pong);
    // Still a working connection.
    assert_eq!(c.send_and_ack("p-1", "after the ping").await.0, 1);
}

/// Joins `room` with a sender key of its own.
async fn join_with_key(
    server: &TestServer,
    room: &str,
    name: &str,
    key: Option<&str>,
) -> common::Client {
    let mut c = common::Client::connect(&server.ws_url(room)).await;
    c.send(&ClientMsg::Join {
        token: None,
        owner_key: None,
        name: name.into(),
        after_seq: None,
        key: key.map(str::to_owned),
    })
    .await;
    assert!(matches!(c.recv().await, ServerMsg::Welcome { .. }));
    c
}

#[tokio::test]
async fn client_ids_belong_to_their_sender() {
    let server = TestServer::start().await;
    let mut ada = join_with_key(&server, "ids", "Ada", Some("ada-secret-key-0001")).await;
    let mut eve = join_with_key(&server, "ids", "Eve", Some("eve-secret-key-0002")).await;
    // Eve guesses Ada's next client id and sends it first: both messages are stored, each its own.
    let (eve_seq, _) = eve.send_and_ack("next-id", "posted first").await;
    let (ada_seq, _) = ada.send_and_ack("next-id", "Ada's real message").await;
    assert_ne!(eve_seq, ada_seq);
    // A connection without a key owns its ids too.
    let mut anon = join_with_key(&server, "ids", "Anon", None).await;
    let (anon_seq, _) = anon.send_and_ack("next-id", "anonymous").await;
    assert!(anon_seq > ada_seq);

    // Ada reconnects with her key and resends: recognised, the same number, stored once.
    ada.close().await;
    let mut again = join_with_key(&server, "ids", "Ada", Some("ada-secret-key-0001")).await;
    let (resent, _) = again.send_and_ack("next-id", "Ada's real message").await;
    assert_eq!(resent, ada_seq);
    // Everyone sees each message with the id its sender chose.
    let mut reader = server.join("ids", "Reader", Some(0)).await;
    let history = reader.messages(3).await;
    assert_eq!(
        history
            .iter()
            .map(|m| (m.text.as_str(), m.client_id.as_str()))
            .collect::<Vec<_>>(),
        [
            ("posted first", "next-id"),
            ("Ada's real message", "next-id"),
            ("anonymous", "next-id")
        ]
    );
    let (status, page) = common::http("GET", &server.http_url("/r/ids")).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("/next-id"),
        "pages show ids without their sender part"
    );
}
