//! Who is who, end to end on real servers: `--auth required` and `optional`, tokens in the join
//! frame and in the session cookie (signed in through `/api/session`), tokens expiring and being
//! revoked mid-connection, verified names a guest cannot take, per-user limits and room rules —
//! the multi-node ones on two servers sharing the Redis on 127.0.0.1:6379.

mod common;

use std::time::Duration;

use app::protocol::{close_code, ClientMsg, ErrorCode, ServerMsg};
use common::{Client, Frame, Node, TestServer};
use palaver_server::auth::{mint, MintRequest};
use testkit::redis::{shared_url as redis_url, unique};

const SECRET: &str = "identity-tests-secret-0123456789-abcdef";

fn now_secs() -> i64 {
    (common::now_ms() / 1000) as i64
}

fn token(sub: &str, name: &str, roles: &[&str], ttl_secs: u64) -> String {
    let request = MintRequest {
        sub: sub.into(),
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        rooms: vec![],
        ttl: Duration::from_secs(ttl_secs),
    };
    mint(SECRET.as_bytes(), &request, now_secs()).expect("a token")
}

async fn server(mode: &str, extra: &[&str]) -> TestServer {
    let args: Vec<&str> = ["--auth", mode, "--auth-secret", SECRET]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    TestServer::start_with(&args).await
}

/// Sends a join (with `token` if given) and returns the first answer: the welcome, or the
/// refusal's error and close code.
async fn join(
    node: &impl Node,
    room: &str,
    name: &str,
    token: Option<String>,
) -> (Client, ServerMsg) {
    let mut client = Client::connect(&node.ws_url(room)).await;
    client
        .send(&ClientMsg::Join {
            name: name.into(),
            after_seq: None,
            key: common::test_key(),
            token,
            owner_key: None,
        })
        .await;
    let first = client.recv_any().await;
    (client, first)
}

/// Expects an error with `code`, then a close with `close`.
async fn refused(client: &mut Client, first: ServerMsg, code: ErrorCode, close: u16) -> String {
    let ServerMsg::Error {
        code: got, message, ..
    } = first
    else {
        panic!("expected an error, got {first:?}");
    };
    assert_eq!(got, code, "{message}");
    match client.next_frame(Duration::from_secs(5)).await {
        Some(Frame::Closed(Some(c))) => assert_eq!(c, close, "{message}"),
        other => panic!("expected close {close}, got {other:?}"),
    }
    message
}

fn welcome(first: &ServerMsg) -> (String, Option<String>, bool) {
    match first {
        ServerMsg::Welcome {
            name,
            user_id,
            can_post,
            ..
        } => (name.clone(), user_id.clone(), *can_post),
        other => panic!("expected welcome, got {other:?}"),
    }
}

#[tokio::test]
async fn required_mode_refuses_guests_and_lets_a_token_in_under_its_own_name() {
    let node = server("required", &[]).await;
    let (mut guest, first) = join(&node, "lobby", "Guest", None).await;
    let message = refused(
        &mut guest,
        first,
        ErrorCode::SignInRequired,
        close_code::SIGN_IN_REQUIRED,
    )
    .await;
    assert!(message.contains("Sign in"), "{message}");

    let (mut ada, first) = join(
        &node,
        "lobby",
        "Mallory",
        Some(token("u-ada", "Ada", &[], 600)),
    )
    .await;
    assert_eq!(
        welcome(&first),
        ("Ada".to_owned(), Some("u-ada".to_owned()), true),
        "the token's name, not the one asked for"
    );
    let (seq, _) = ada.send_and_ack("c1", "hello").await;
    let (_, first) = join(&node, "lobby", "x", Some(token("u-bo", "Bo", &[], 600))).await;
    welcome(&first);
    let mut reader = join(&node, "lobby", "x", Some(token("u-cy", "Cy", &[], 600)))
        .await
        .0;
    let stored = reader.messages(1).await;
    assert_eq!(
        (stored[0].seq, stored[0].user_id.as_deref()),
        (seq, Some("u-ada"))
    );
}

#[tokio::test]
async fn bad_and_expired_tokens_are_refused_each_in_its_own_words() {
    let node = server("optional", &["--auth-leeway-secs", "0"]).await;
    let expired = token("u1", "Ada", &[], 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (mut c, first) = join(&node, "r", "Ada", Some(expired)).await;
    let message = refused(
        &mut c,
        first,
        ErrorCode::SignInExpired,
        close_code::SIGN_IN_EXPIRED,
    )
    .await;
    assert!(message.contains("expired"), "{message}");

    let forged = {
        let request = MintRequest {
            sub: "u1".into(),
            name: "Ada".into(),
            roles: vec!["admin".into()],
            rooms: vec![],
            ttl: Duration::from_secs(600),
        };
        mint(
            b"not the server's secret, but long enough",
            &request,
            now_secs(),
        )
        .unwrap()
    };
    let (mut c, first) = join(&node, "r", "Ada", Some(forged)).await;
    let message = refused(
        &mut c,
        first,
        ErrorCode::SignInRequired,
        close_code::SIGN_IN_REQUIRED,
    )
    .await;
    assert!(message.contains("signature"), "{message}");

    let (mut c, first) = join(&node, "r", "Ada", Some("garbage".into())).await;
    refused(
        &mut c,
        first,
        ErrorCode::SignInRequired,
        close_code::SIGN_IN_REQUIRED,
    )
    .await;
}

#[tokio::test]
async fn a_token_that_expires_mid_connection_ends_it_with_its_own_code() {
    let node = server("optional", &["--auth-leeway-secs", "0"]).await;
    let (mut c, first) = join(&node, "r", "Ada", Some(token("u1", "Ada", &[], 2))).await;
    welcome(&first);
    loop {
        match c.next_frame(Duration::from_secs(5)).await {
            Some(Frame::Msg(ServerMsg::Error { code, .. })) => {
                assert_eq!(code, ErrorCode::SignInExpired);
            }
            Some(Frame::Msg(_)) => {}
            Some(Frame::Closed(code)) => {
                assert_eq!(code, Some(close_code::SIGN_IN_EXPIRED));
                break;
            }
            None => panic!("the connection outlived its token"),
        }
    }
}

#[tokio::test]
async fn with_guests_read_a_guest_reads_but_may_not_post() {
    let node = server("required", &["--auth-guests-read"]).await;
    let (mut guest, first) = join(&node, "r", "Guest", None).await;
    assert_eq!(welcome(&first), ("Guest".to_owned(), None, false));
    guest
        .send(&ClientMsg::Send {
            client_id: "g1".into(),
            text: "hi".into(),
        })
        .await;
    match guest.recv().await {
        ServerMsg::Error {
            code, client_id, ..
        } => {
            assert_eq!(
                (code, client_id.as_deref()),
                (ErrorCode::SignInRequired, Some("g1"))
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_guest_cannot_take_a_verified_name_on_any_node() {
    let room = unique("names");
    let engine = redis_url();
    let one = server("optional", &["--engine", &engine]).await;
    let two = server("optional", &["--engine", &engine]).await;
    let (ada, first) = join(&one, &room, "x", Some(token(&unique("u"), "Ada", &[], 600))).await;
    welcome(&first);
    // The guest on the same node, then (once the roster has spread) on the other.
    let (mut guest, first) = join(&one, &room, "ada", None).await;
    refused(
        &mut guest,
        first,
        ErrorCode::NameTaken,
        close_code::NAME_TAKEN,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (mut guest, first) = join(&two, &room, "Ada", None).await;
        if let ServerMsg::Error { .. } = first {
            refused(
                &mut guest,
                first,
                ErrorCode::NameTaken,
                close_code::NAME_TAKEN,
            )
            .await;
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node two never learned Ada is verified"
        );
        guest.close().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The roster marks her verified.
    let (mut watcher, first) = join(&two, &room, "Watcher", None).await;
    welcome(&first);
    let marked = loop {
        match watcher.recv_any().await {
            ServerMsg::Roster {
                names, verified, ..
            } => {
                break verified
                    .iter()
                    .map(|&i| names[i].clone())
                    .collect::<Vec<_>>()
            }
            _ => continue,
        }
    };
    assert_eq!(marked, ["Ada"]);
    ada.close().await;
}

#[tokio::test]
async fn per_user_rate_limit_and_connection_cap_hold_across_two_nodes() {
    let engine = redis_url();
    let limits = [
        "--engine",
        engine.as_str(),
        "--max-connections-per-user",
        "2",
        "--user-rate-limit-burst",
        "3",
        "--user-rate-limit-interval-ms",
        "60000",
    ];
    let one = server("optional", &limits).await;
    let two = server("optional", &limits).await;
    let user = unique("user");
    let room = unique("caps");
    let (mut first_tab, first) = join(&one, &room, "x", Some(token(&user, "Ada", &[], 600))).await;
    welcome(&first);
    let (_second_tab, first) = join(&two, &room, "x", Some(token(&user, "Ada", &[], 600))).await;
    welcome(&first);
    let (mut third, first) = join(&two, &room, "x", Some(token(&user, "Ada", &[], 600))).await;
    let message = refused(
        &mut third,
        first,
        ErrorCode::TooManyConnections,
        close_code::TOO_MANY_CONNECTIONS,
    )
    .await;
    assert!(message.contains("connections"), "{message}");

    // Three posts, spread over both nodes' connections; the fourth is refused on either.
    for i in 0..3 {
        first_tab.send_and_ack(&format!("p{i}"), "hi").await;
    }
    first_tab.close().await;
    let (mut again, first) = join(&two, &room, "x", Some(token(&user, "Ada", &[], 600))).await;
    welcome(&first);
    again
        .send(&ClientMsg::Send {
            client_id: "p4".into(),
            text: "one too many".into(),
        })
        .await;
    loop {
        match again.recv().await {
            ServerMsg::Error { code, .. } => {
                assert_eq!(code, ErrorCode::RateLimited);
                break;
            }
            ServerMsg::Ack { .. } => panic!("the user's budget was spent on node one"),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_room_full_refuses_the_next_connection() {
    let node = server("off", &["--max-connections-per-room", "2"]).await;
    let _a = node.join("full", "A", None).await;
    let _b = node.join("full", "B", None).await;
    let (mut c, first) = join(&node, "full", "C", None).await;
    refused(
        &mut c,
        first,
        ErrorCode::TooManyConnections,
        close_code::ROOM_FULL,
    )
    .await;
    let _other_room = node.join("other", "C", None).await;
}

#[tokio::test]
async fn the_edge_chat_dialect_follows_the_same_rules() {
    let node = server("optional", &[]).await;
    let (_ada, first) = join(&node, "demo", "x", Some(token("u-ada", "Ada", &[], 600))).await;
    welcome(&first);
    let url = format!("ws://{}/api/room/demo/websocket", node.addr());
    let mut guest = Client::connect(&url).await;
    guest.send_text(r#"{"name": "ADA"}"#).await;
    let error = guest.recv_json().await.expect("an error frame");
    let text = error["error"].as_str().unwrap_or_default();
    assert!(text.contains("signed in as"), "{error}");
    assert_eq!(guest.recv_json().await, Err(Some(close_code::NAME_TAKEN)));

    let required = server("required", &[]).await;
    let url = format!("ws://{}/api/room/demo/websocket", required.addr());
    let mut guest = Client::connect(&url).await;
    guest.send_text(r#"{"name": "Bo"}"#).await;
    let error = guest.recv_json().await.expect("an error frame");
    assert!(
        error["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Sign in"),
        "{error}"
    );
    assert_eq!(
        guest.recv_json().await,
        Err(Some(close_code::SIGN_IN_REQUIRED))
    );
}
