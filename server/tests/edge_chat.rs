//! The edge-chat demo's protocol at /api/room/<name>/websocket, sharing rooms with Palaver clients.

mod common;

use app::protocol::ClientMsg;
use common::{Client, Node, TestServer};
use serde_json::{json, Value};

fn demo_url(server: &TestServer, room: &str) -> String {
    format!("ws://{}/api/room/{room}/websocket", server.server.addr)
}

#[tokio::test]
async fn a_demo_client_and_a_palaver_client_share_a_room_and_its_history() {
    let server = TestServer::start().await;
    let mut ada = server.join("lobby", "Ada", None).await;
    ada.send(&ClientMsg::Send {
        client_id: "a1".into(),
        text: "first".into(),
    })
    .await;
    ada.send(&ClientMsg::Send {
        client_id: "a2".into(),
        text: "second".into(),
    })
    .await;
    ada.messages(2).await;
    // Ada is announced (within half a second): the demo is told of her as someone already here.
    ada.wait_for_roster(&["Ada"]).await;

    let mut demo = Client::connect(&demo_url(&server, "lobby")).await;
    demo.send_text(&json!({ "name": "Demo" }).to_string()).await;
    assert_eq!(
        demo.recv_json().await.unwrap(),
        json!({ "joined": "Ada" }),
        "people already there"
    );
    for text in ["first", "second"] {
        let m = demo.recv_json().await.unwrap();
        assert_eq!(
            (m["name"].as_str(), m["message"].as_str()),
            (Some("Ada"), Some(text))
        );
        assert!(m["timestamp"]
            .as_i64()
            .is_some_and(|t| t > 1_600_000_000_000));
    }
    assert_eq!(demo.recv_json().await.unwrap(), json!({ "ready": true }));

    demo.send_text(&json!({ "message": "hello from the demo" }).to_string())
        .await;
    let echoed = demo.recv_json().await.unwrap();
    assert_eq!(echoed["message"], "hello from the demo");
    assert_eq!(echoed["name"], "Demo");
    let seen = ada.messages(1).await;
    assert_eq!(
        (seen[0].sender.as_str(), seen[0].text.as_str(), seen[0].seq),
        ("Demo", "hello from the demo", 3)
    );

    // Palaver's messages reach the demo client live too.
    ada.send(&ClientMsg::Send {
        client_id: "a3".into(),
        text: "back at you".into(),
    })
    .await;
    let mut got = demo.recv_json().await.unwrap();
    while got.get("message").is_none() {
        got = demo.recv_json().await.unwrap();
    }
    assert_eq!(got["message"], "back at you");

    // Bad input gets the demo's kind of error and keeps the connection.
    demo.send_text(&json!({ "message": "x".repeat(5000) }).to_string())
        .await;
    let mut err = demo.recv_json().await.unwrap();
    while err.get("error").is_none() {
        err = demo.recv_json().await.unwrap();
    }
    assert_eq!(err, json!({ "error": "Message too long." }));
    demo.send_text("not json").await;
    let err: Value = demo.recv_json().await.unwrap();
    assert!(
        err["error"].as_str().is_some_and(|e| e.contains("message")),
        "{err}"
    );

    // Leaving is announced to demo clients as quit.
    ada.close().await;
    let mut quit = demo.recv_json().await.unwrap();
    while quit.get("quit").is_none() {
        quit = demo.recv_json().await.unwrap();
    }
    assert_eq!(quit, json!({ "quit": "Ada" }));
}

#[tokio::test]
async fn demo_limits_and_private_rooms() {
    let server = TestServer::start().await;
    let mut demo = Client::connect(&demo_url(&server, "limits")).await;
    demo.send_text(&json!({ "name": "n".repeat(33) }).to_string())
        .await;
    assert_eq!(
        demo.recv_json().await.unwrap(),
        json!({ "error": "Name too long." })
    );
    assert_eq!(demo.recv_json().await, Err(Some(1009)));

    let (status, body) = common::http(
        "GET",
        &format!(
            "http://{}/api/room/{}/websocket",
            server.server.addr,
            "x".repeat(33)
        ),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("Name too long"));

    let (status, id) =
        common::http("POST", &format!("http://{}/api/room", server.server.addr)).await;
    assert_eq!(status, 200);
    assert_eq!(id.len(), 64);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let (_, other) = common::http("POST", &format!("http://{}/api/room", server.server.addr)).await;
    assert_ne!(id, other, "every private room id is new");

    // The id is a working room for both protocols.
    let mut ada = server.join(&id, "Ada", None).await;
    let (seq, _) = ada.send_and_ack("p1", "private hello").await;
    assert_eq!(seq, 1);
}
