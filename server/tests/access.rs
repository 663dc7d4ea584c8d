//! Signing in through the session cookie, room rules and revocation on real servers: a cookie set
//! by `/api/session` opens verified connections, read-only and members-only rooms refuse the
//! right people in plain words, rules survive a restart and hold on every node (Redis), the
//! command line sets them through a running server, and a revocation closes a user's
//! connections on another node.

mod common;

use std::path::Path;
use std::time::Duration;

use app::protocol::{close_code, ClientMsg, ErrorCode, ServerMsg};
use common::{Client, Frame, Node, TestServer};
use testkit::redis::{shared_url as redis_url, unique};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "access-tests-secret-0123456789-abcdefgh";

fn token(sub: &str, name: &str, roles: &[&str]) -> String {
    common::people::token(SECRET, sub, name, roles)
}

async fn server(extra: &[&str]) -> TestServer {
    let args: Vec<&str> = ["--auth", "optional", "--auth-secret", SECRET]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    TestServer::start_with(&args).await
}

/// Joins with an optional token and cookie; returns the client and its first frame.
async fn join_with(
    node: &impl Node,
    room: &str,
    token: Option<String>,
    cookie: Option<&str>,
) -> (Client, ServerMsg) {
    let mut request = node.ws_url(room).into_client_request().unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    let mut client = Client::from_stream(ws);
    client
        .send(&ClientMsg::Join {
            name: "Guest".into(),
            after_seq: None,
            key: common::test_key(),
            token,
            owner_key: None,
        })
        .await;
    let first = client.recv_any().await;
    (client, first)
}

async fn expect_close(
    client: &mut Client,
    first: ServerMsg,
    code: ErrorCode,
    close: u16,
) -> String {
    let ServerMsg::Error {
        code: got, message, ..
    } = first
    else {
        panic!("expected an error, got {first:?}");
    };
    assert_eq!(got, code, "{message}");
    let closed = client.next_frame(Duration::from_secs(5)).await;
    assert!(
        matches!(closed, Some(Frame::Closed(Some(c))) if c == close),
        "{closed:?}"
    );
    message
}

fn user_of(first: &ServerMsg) -> (Option<String>, bool) {
    match first {
        ServerMsg::Welcome {
            user_id, can_post, ..
        } => (user_id.clone(), *can_post),
        other => panic!("expected welcome, got {other:?}"),
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Sets a room's rules through the API as an admin.
async fn set_rules(node: &impl Node, room: &str, rules: serde_json::Value) -> reqwest::Response {
    http()
        .put(node.http_url(&format!("/api/rooms/{room}/rules")))
        .bearer_auth(token("admin-1", "Admin", &["admin"]))
        .json(&rules)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sign_in_sets_a_cookie_that_verifies_the_socket_and_sign_out_clears_it() {
    let node = server(&[]).await;
    let origin = format!("http://{}", node.addr());
    let response = http()
        .post(node.http_url("/api/session"))
        .header("origin", &origin)
        .json(&serde_json::json!({ "token": token("u-ada", "Ada", &[]) }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "palaver_session=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http in tests: {cookie}");
    let viewer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (viewer["name"].as_str(), viewer["user_id"].as_str()),
        (Some("Ada"), Some("u-ada"))
    );

    let pair = cookie.split(';').next().unwrap();
    let (_c, first) = join_with(&node, "lobby", None, Some(pair)).await;
    assert_eq!(user_of(&first).0.as_deref(), Some("u-ada"));

    // Another site may not sign anyone in (or out).
    let foreign = http()
        .post(node.http_url("/api/session"))
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({ "token": token("u-ada", "Ada", &[]) }))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let bad = http()
        .post(node.http_url("/api/session"))
        .header("origin", &origin)
        .json(&serde_json::json!({ "token": "nonsense" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let error: serde_json::Value = bad.json().await.unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("not a valid token"),
        "{error}"
    );

    let out = http()
        .post(node.http_url("/api/session/end"))
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn a_read_only_room_lets_everyone_read_and_only_moderators_post() {
    let node = server(&[]).await;
    let response = set_rules(
        &node,
        "news",
        serde_json::json!({ "read": "everyone", "post": "moderators" }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (mut guest, first) = join_with(&node, "news", None, None).await;
    assert_eq!(user_of(&first), (None, false));
    let (mut reader, first) = join_with(&node, "news", Some(token("u-bo", "Bo", &[])), None).await;
    assert_eq!(user_of(&first), (Some("u-bo".into()), false));
    for client in [&mut guest, &mut reader] {
        client
            .send(&ClientMsg::Send {
                client_id: "x1".into(),
                text: "may I?".into(),
            })
            .await;
        match client.recv().await {
            ServerMsg::Error { code, message, .. } => {
                assert_eq!(code, ErrorCode::Forbidden);
                assert!(message.contains("you can read it"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let (mut moderator, first) = join_with(
        &node,
        "news",
        Some(token("u-mo", "Mo", &["moderator"])),
        None,
    )
    .await;
    assert_eq!(user_of(&first), (Some("u-mo".into()), true));
    moderator.send_and_ack("m1", "Announcement").await;
    // A non-admin may not change the rules.
    let not_admin = http()
        .put(node.http_url("/api/rooms/news/rules"))
        .bearer_auth(token("u-bo", "Bo", &[]))
        .json(&serde_json::json!({ "read": "everyone", "post": "everyone" }))
        .send()
        .await
        .unwrap();
    assert_eq!(not_admin.status(), 403);
}

#[tokio::test]
async fn a_members_only_room_refuses_others_at_join_on_every_node() {
    let engine = redis_url();
    let one = server(&["--engine", &engine]).await;
    let two = server(&["--engine", &engine]).await;
    let room = unique("club");
    let member = unique("member");
    let rules = serde_json::json!({ "read": "members", "post": "members", "members": [member] });
    assert_eq!(set_rules(&one, &room, rules).await.status(), 200);
    // Node two reads the rules within their cache time.
    tokio::time::sleep(palaver_server::auth::access::RULES_TTL).await;
    let (mut stranger, first) =
        join_with(&two, &room, Some(token(&unique("other"), "Bo", &[])), None).await;
    let message = expect_close(
        &mut stranger,
        first,
        ErrorCode::Forbidden,
        close_code::FORBIDDEN,
    )
    .await;
    assert!(message.contains("members only"), "{message}");
    let (mut guest, first) = join_with(&two, &room, None, None).await;
    let message = expect_close(
        &mut guest,
        first,
        ErrorCode::Forbidden,
        close_code::FORBIDDEN,
    )
    .await;
    assert!(message.contains("Sign in"), "{message}");
    let (_member, first) = join_with(&two, &room, Some(token(&member, "Ada", &[])), None).await;
    assert_eq!(user_of(&first), (Some(member.clone()), true));
}

#[tokio::test]
async fn a_guest_who_creates_a_private_room_owns_it_by_key() {
    let node = server(&[]).await;
    let room = "ab".repeat(32);
    let owner_key = "owner-key-0123456789abcdef";
    let mut creator = Client::connect(&node.ws_url(&room)).await;
    creator
        .send(&ClientMsg::Join {
            name: "Creator".into(),
            after_seq: None,
            key: None,
            token: None,
            owner_key: Some(owner_key.into()),
        })
        .await;
    assert!(matches!(creator.recv().await, ServerMsg::Welcome { .. }));
    let rules = serde_json::json!({ "read": "everyone", "post": "moderators" });
    let url = node.http_url(&format!("/api/rooms/{room}/rules"));
    let origin = format!("http://{}", node.addr());
    let without = http()
        .put(&url)
        .header("origin", &origin)
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 403);
    let with = http()
        .put(&url)
        .header("origin", &origin)
        .header("x-owner-key", owner_key)
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200);
    let stored: serde_json::Value = with.json().await.unwrap();
    assert!(stored["owner"]["key_hash"].is_string(), "{stored}");
    assert!(
        !stored.to_string().contains(owner_key),
        "only a hash is stored: {stored}"
    );
}

#[tokio::test]
async fn a_revocation_closes_the_users_connections_on_another_node() {
    let engine = redis_url();
    let one = server(&["--engine", &engine]).await;
    let two = server(&["--engine", &engine]).await;
    let sub = unique("revoked");
    let old = token(&sub, "Eve", &[]);
    let (mut eve, first) = join_with(&two, &unique("r"), Some(old.clone()), None).await;
    assert_eq!(user_of(&first).0, Some(sub.clone()));
    let response = http()
        .post(one.http_url("/api/admin/revoke"))
        .bearer_auth(token("admin-1", "Admin", &["admin"]))
        .json(&serde_json::json!({ "sub": sub }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let started = std::time::Instant::now();
    loop {
        match eve.next_frame(Duration::from_secs(5)).await {
            Some(Frame::Msg(ServerMsg::Error { code, .. })) => {
                assert_eq!(code, ErrorCode::SignInExpired)
            }
            Some(Frame::Msg(_)) => {}
            Some(Frame::Closed(code)) => {
                assert_eq!(code, Some(close_code::SIGN_IN_EXPIRED));
                break;
            }
            None => panic!("still connected after a revocation"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let (mut again, first) = join_with(&one, "lobby", Some(old), None).await;
    expect_close(
        &mut again,
        first,
        ErrorCode::SignInExpired,
        close_code::SIGN_IN_EXPIRED,
    )
    .await;
    // A token issued after the revocation works again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_fresh, first) = join_with(&one, "lobby", Some(token(&sub, "Eve", &[])), None).await;
    assert_eq!(user_of(&first).0, Some(sub));
}

/// Runs the `server` binary with `args` and returns (success, stdout + stderr).
fn cli(data_dir: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("PALAVER_AUTH_SECRET", SECRET)
        .output()
        .expect("the binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn rules_set_from_the_command_line_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--auth", "optional", "--auth-secret", SECRET];
    let node = common::process::start(dir.path(), &args).await;
    // The running server holds the database: the command says how to go through it.
    let (ok, text) = cli(
        dir.path(),
        &["rules", "--room", "news", "--post", "moderators"],
    );
    assert!(!ok && text.contains("--url"), "{text}");
    let url = format!("http://{}", node.addr);
    let (ok, text) = cli(
        dir.path(),
        &[
            "rules",
            "--room",
            "news",
            "--post",
            "moderators",
            "--url",
            &url,
        ],
    );
    assert!(ok, "{text}");
    drop(node);
    let node = common::process::start(dir.path(), &args).await;
    let (_guest, first) = join_with(&node, "news", None, None).await;
    assert_eq!(
        user_of(&first),
        (None, false),
        "still read-only after the restart"
    );
    let (ok, text) = cli(
        dir.path(),
        &["token", "--sub", "u1", "--name", "Ada", "--ttl", "5m"],
    );
    assert!(ok && text.trim().split('.').count() == 3, "{text}");
}

#[tokio::test]
async fn slow_mode_holds_one_message_per_person_across_nodes_and_spares_moderators() {
    let engine = redis_url();
    let one = server(&["--engine", &engine]).await;
    let two = server(&["--engine", &engine]).await;
    let room = unique("slow");
    let rules = serde_json::json!({ "read": "everyone", "post": "everyone", "slow_mode_secs": 30 });
    assert_eq!(set_rules(&one, &room, rules).await.status(), 200);
    tokio::time::sleep(palaver_server::auth::access::RULES_TTL).await;
    let user = unique("slow-user");
    let (mut here, _) = join_with(&one, &room, Some(token(&user, "Sam", &[])), None).await;
    let (mut there, _) = join_with(&two, &room, Some(token(&user, "Sam", &[])), None).await;
    here.send_and_ack("s1", "first").await;
    there
        .send(&ClientMsg::Send {
            client_id: "s2".into(),
            text: "too soon, from the other node".into(),
        })
        .await;
    loop {
        match there.recv().await {
            ServerMsg::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => {
                assert_eq!(code, ErrorCode::SlowMode, "{message}");
                assert!(message.contains("every 30 s"), "{message}");
                let wait = retry_after_ms.unwrap_or_default();
                assert!((20_000..=30_000).contains(&wait), "{wait} ms");
                break;
            }
            ServerMsg::Ack { .. } => panic!("slow mode let a second message through"),
            _ => continue,
        }
    }
    let (mut moderator, _) = join_with(
        &two,
        &room,
        Some(token("u-mod", "Mo", &["moderator"])),
        None,
    )
    .await;
    moderator.send_and_ack("m1", "one").await;
    moderator
        .send_and_ack("m2", "two: moderators are not slowed")
        .await;
}
