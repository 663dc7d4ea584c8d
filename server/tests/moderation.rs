//! Moderation on real servers: mutes, bans, kicks and purges made over HTTP by a moderator
//! (a verified token's role), felt at once by the people they name — verified people by id,
//! guests by address — on this node and on another node sharing Redis; refused to everyone
//! else; every action in the audit log.

mod common;

use std::time::Duration;

use app::moderation::{Action, ModerationView, SanctionKind, Target};
use app::protocol::{close_code, ClientMsg, EntryKind, ErrorCode, ServerMsg};
use common::people::{token, Person};
use common::{Client, Frame, Node, TestServer};
use serde_json::json;

const SECRET: &str = "moderation-tests-secret-0123456789-abcd";

fn args() -> Vec<&'static str> {
    vec!["--auth", "optional", "--auth-secret", SECRET]
}

fn moderator() -> String {
    token(SECRET, "u-mod", "Mod", &["moderator"])
}

/// Posts a moderation request as the bearer of `token`.
async fn moderate(
    node: &impl Node,
    room: &str,
    token: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(node.http_url(&format!("/api/rooms/{room}/moderation")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// Like [`moderate`], asking again while a guest's address is not noted yet (it is written just
/// after their first post).
async fn moderate_guest(node: &impl Node, room: &str, body: serde_json::Value) -> ModerationView {
    for _ in 0..50 {
        let (status, answer) = moderate(node, room, &moderator(), body.clone()).await;
        if status == 200 {
            return serde_json::from_value(answer).expect("a view");
        }
        assert_eq!(status, 409, "{answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the guest's address was never noted");
}

/// Waits for a `standing` frame.
async fn standing(client: &mut Client) -> Option<i64> {
    loop {
        if let ServerMsg::Standing { muted_until_ms, .. } = client.recv().await {
            return muted_until_ms;
        }
    }
}

/// Waits for the close, returning the error said before it.
async fn closed(client: &mut Client) -> (ErrorCode, String, Option<u16>) {
    let mut said = None;
    loop {
        match client.next_event(Duration::from_secs(10)).await {
            Some(Frame::Msg(ServerMsg::Error { code, message, .. })) => {
                said = Some((code, message))
            }
            Some(Frame::Msg(_)) => {}
            Some(Frame::Closed(code)) => {
                let (error, message) = said.expect("an error before the close");
                return (error, message, code);
            }
            None => panic!("not closed in time"),
        }
    }
}

/// Asserts that a join was refused as banned.
fn assert_banned(first: &ServerMsg) {
    assert!(
        matches!(
            first,
            ServerMsg::Error {
                code: ErrorCode::Banned,
                ..
            }
        ),
        "{first:?}"
    );
}

/// Sends a message and returns its ack, or the refusal's code and words.
async fn try_send(client: &mut Client, id: &str, text: &str) -> Result<u64, (ErrorCode, String)> {
    client
        .send(&ClientMsg::Send {
            client_id: id.into(),
            text: text.into(),
        })
        .await;
    loop {
        match client.recv().await {
            ServerMsg::Ack { client_id, seq } if client_id == id => return Ok(seq),
            ServerMsg::Error {
                code,
                message,
                client_id: Some(client_id),
                ..
            } if client_id == id => return Err((code, message)),
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_mute_stops_posts_until_lifted_and_only_moderators_may_mute() {
    let node = TestServer::start_with(&args()).await;
    let ada_token = token(SECRET, "u-ada", "Ada", &[]);
    let mut ada = Person::guest("x", "ada-key-0123456789")
        .with_token(ada_token.clone())
        .join(&node, "m")
        .await;
    let (said, _) = ada.send_and_ack("a1", "hello").await;

    // Not a moderator: refused, nothing changes.
    let (status, answer) = moderate(
        &node,
        "m",
        &ada_token,
        json!({"action": "mute", "seq": said, "minutes": 10}),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    let (status, _) = moderate(
        &node,
        "m",
        &moderator(),
        json!({"action": "mute", "seq": said, "minutes": 0}),
    )
    .await;
    assert_eq!(status, 422, "a mute needs a length");

    let (status, answer) = moderate(
        &node,
        "m",
        &moderator(),
        json!({"action": "mute", "seq": said, "minutes": 10, "reason": "cool off"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let view: ModerationView = serde_json::from_value(answer).unwrap();
    assert_eq!(view.sanctions.len(), 1);
    assert_eq!(
        (
            view.sanctions[0].kind,
            &view.sanctions[0].target,
            view.sanctions[0].name.as_str()
        ),
        (SanctionKind::Mute, &Target::User("u-ada".into()), "Ada")
    );
    let until = standing(&mut ada).await.expect("told of the mute");
    assert!(until > common::now_ms() as i64 + 9 * 60_000);
    let refused = try_send(&mut ada, "a2", "can I?").await.unwrap_err();
    assert_eq!(refused.0, ErrorCode::Muted);
    assert!(
        refused.1.contains("muted") && refused.1.contains("cool off"),
        "{}",
        refused.1
    );

    // Her other tab, joining while muted, is told at once.
    let mut tab = Person::guest("x", "ada-tab-0123456789")
        .with_token(ada_token.clone())
        .join(&node, "m")
        .await;
    assert!(standing(&mut tab).await.is_some());

    let target = json!({"by": "user", "id": "u-ada"});
    let (status, answer) = moderate(
        &node,
        "m",
        &moderator(),
        json!({"action": "unmute", "target": target}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(standing(&mut ada).await, None, "told it ended");
    try_send(&mut ada, "a3", "thanks")
        .await
        .expect("may post again");

    let view: ModerationView = serde_json::from_value(answer).unwrap();
    let actions: Vec<Action> = view.audit.iter().map(|e| e.action).collect();
    assert_eq!(actions, [Action::Unmute, Action::Mute], "newest first");
    assert_eq!(
        (view.audit[1].by.as_str(), view.audit[1].reason.as_str()),
        ("Mod", "cool off")
    );
}

#[tokio::test]
async fn a_guest_is_banned_by_address_and_purged_and_a_kick_keeps_someone_out_briefly() {
    let node = TestServer::start_with(&args()).await;
    let mut watcher = Person::guest("Watcher", "watch-key-0123456789")
        .from("127.0.0.21")
        .join(&node, "g")
        .await;
    let spammer = Person::guest("Spam", "spam-key-0123456789").from("127.0.0.22");
    let mut spam = spammer.join(&node, "g").await;
    let mut seqs = Vec::new();
    for i in 0..3 {
        seqs.push(spam.send_and_ack(&format!("s{i}"), "buy now").await.0);
    }
    let (kept, _) = watcher.send_and_ack("w1", "hi all").await;

    let view = moderate_guest(&node, "g", json!({"action": "purge", "seq": seqs[0]})).await;
    assert_eq!(view.audit[0].count, Some(3), "{:?}", view.audit[0]);
    let mut deleted = Vec::new();
    while deleted.len() < 3 {
        if let ServerMsg::Message(m) = watcher.recv().await {
            if m.kind == EntryKind::Delete {
                deleted.push(m.target.expect("a target"));
            }
        }
    }
    deleted.sort_unstable();
    assert_eq!(deleted, seqs, "each of theirs, none of the others'");
    assert!(!deleted.contains(&kept));

    let view = moderate_guest(
        &node,
        "g",
        json!({"action": "ban", "seq": seqs[1], "minutes": 60, "reason": "spam"}),
    )
    .await;
    assert_eq!(
        view.sanctions[0].target,
        Target::Address("127.0.0.22".into())
    );
    let (code, message, close) = closed(&mut spam).await;
    assert_eq!((code, close), (ErrorCode::Banned, Some(close_code::BANNED)));
    assert!(
        message.contains("banned") && message.contains("spam"),
        "{message}"
    );
    // A new key from the same address is the same guest; another address is not.
    let (_, first) = Person::guest("Spam2", "spam-new-0123456789")
        .from("127.0.0.22")
        .try_join(&node, "g")
        .await;
    assert_banned(&first);
    try_send(&mut watcher, "w2", "still here")
        .await
        .expect("others unaffected");

    // A kick: out now, back after a minute, not before.
    let view = moderate_guest(&node, "g", json!({"action": "kick", "seq": kept})).await;
    assert_eq!(view.audit[0].action, Action::Kick);
    let (code, message, _) = closed(&mut watcher).await;
    assert_eq!(code, ErrorCode::Banned);
    assert!(message.contains("removed"), "{message}");
    let (_, first) = Person::guest("Watcher", "watch-key-0123456789")
        .from("127.0.0.21")
        .try_join(&node, "g")
        .await;
    assert_banned(&first);
}

#[tokio::test]
async fn a_moderators_delete_is_audited_and_nobody_moderates_themselves() {
    let node = TestServer::start_with(&args()).await;
    let mut ada = Person::guest("x", "ada-key-0123456789")
        .with_token(token(SECRET, "u-ada", "Ada", &[]))
        .join(&node, "d")
        .await;
    let mut moderator_client = Person::guest("x", "mod-key-0123456789")
        .with_token(moderator())
        .join(&node, "d")
        .await;
    let (said, _) = ada.send_and_ack("a1", "rude").await;
    let (mine, _) = moderator_client.send_and_ack("m1", "be nice").await;
    moderator_client
        .send(&ClientMsg::Delete {
            client_id: "m2".into(),
            seq: said,
        })
        .await;
    loop {
        if let ServerMsg::Ack { client_id, .. } = moderator_client.recv().await {
            if client_id == "m2" {
                break;
            }
        }
    }
    let (status, answer) = moderate(
        &node,
        "d",
        &moderator(),
        json!({"action": "ban", "seq": mine, "minutes": 5}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    let response = reqwest::Client::new()
        .get(node.http_url("/api/rooms/d/moderation"))
        .bearer_auth(moderator())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let view: ModerationView = response.json().await.unwrap();
    // The audit is written just after the delete goes to the room.
    let entry = &view.audit[0];
    assert_eq!(
        (
            entry.action,
            entry.seq,
            entry.name.as_str(),
            entry.by.as_str()
        ),
        (Action::Delete, Some(said), "Ada", "Mod")
    );
    let anonymous = reqwest::Client::new()
        .get(node.http_url("/api/rooms/d/moderation"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403, "the audit log is for moderators");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_on_one_node_mutes_and_bans_people_on_another() {
    let redis = testkit::redis::shared_url();
    let room = testkit::redis::unique("mod");
    let dirs = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for i in 0..2 {
        let dir = dirs.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut all = vec!["--engine", redis.as_str()];
        all.extend(args());
        all.extend(common::RELAXED_RATE_LIMIT);
        nodes.push(common::process::start(&dir, &all).await);
    }
    let (one, two) = (&nodes[0], &nodes[1]);
    let mut ada = Person::guest("x", "ada-key-0123456789")
        .with_token(token(SECRET, "u-ada", "Ada", &[]))
        .join(two, &room)
        .await;
    let (said, _) = ada.send_and_ack("a1", "hello").await;
    let (status, answer) = moderate(
        one,
        &room,
        &moderator(),
        json!({"action": "mute", "seq": said, "minutes": 5}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(standing(&mut ada).await.is_some(), "told on the other node");
    let refused = try_send(&mut ada, "a2", "hm").await.unwrap_err();
    assert_eq!(refused.0, ErrorCode::Muted);

    let guest = Person::guest("Gus", "gus-key-0123456789").from("127.0.0.31");
    let mut gus = guest.join(two, &room).await;
    let (his, _) = gus.send_and_ack("g1", "spam").await;
    moderate_guest(
        one,
        &room,
        json!({"action": "ban", "seq": his, "minutes": 5}),
    )
    .await;
    let (code, _, close) = closed(&mut gus).await;
    assert_eq!((code, close), (ErrorCode::Banned, Some(close_code::BANNED)));
    let (_, first) = guest.try_join(one, &room).await;
    assert_banned(&first);
}

#[tokio::test]
async fn moderation_actions_pass_the_post_rate_limit() {
    let mut strict = args();
    strict.extend([
        "--rate-limit-burst",
        "3",
        "--rate-limit-interval-ms",
        "60000",
    ]);
    let node = TestServer::start_with(&strict).await;
    let mut ada = Person::guest("x", "ada-key-0123456789")
        .with_token(token(SECRET, "u-ada", "Ada", &[]))
        .from("127.0.0.41")
        .join(&node, "limits")
        .await;
    let (said, _) = ada.send_and_ack("a1", "hello").await;
    let mute = json!({"action": "mute", "seq": said, "minutes": 1});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            moderate(&node, "limits", &moderator(), mute.clone())
                .await
                .0,
        );
    }
    assert_eq!(statuses, [200, 200, 200, 429], "a burst of 3, like posts");
}
