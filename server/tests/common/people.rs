//! People for tests: signed tokens (real HS256 JWTs) and joins with a sender key, a token and a
//! chosen source address.

use std::time::Duration;

use app::protocol::{ClientMsg, ServerMsg};
use palaver_server::auth::{mint, MintRequest};

use super::{Client, Node};

/// A token for `sub` signed with `secret`, valid for ten minutes.
pub fn token(secret: &str, sub: &str, name: &str, roles: &[&str]) -> String {
    let request = MintRequest {
        sub: sub.into(),
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        rooms: vec![],
        ttl: Duration::from_secs(600),
    };
    mint(secret.as_bytes(), &request, (super::now_ms() / 1000) as i64).expect("mint")
}

/// Someone joining: a name, a sender key (16+ characters), perhaps a token, from an address.
pub struct Person<'a> {
    pub name: &'a str,
    pub key: &'a str,
    pub token: Option<String>,
    pub from: std::net::IpAddr,
}

impl<'a> Person<'a> {
    /// A guest on 127.0.0.1.
    pub fn guest(name: &'a str, key: &'a str) -> Self {
        Self {
            name,
            key,
            token: None,
            from: std::net::Ipv4Addr::LOCALHOST.into(),
        }
    }

    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    pub fn from(mut self, address: &str) -> Self {
        self.from = address.parse().expect("an address");
        self
    }

    /// Connects and joins `room`; the client and the server's first answer (a welcome, or an
    /// error before a close).
    pub async fn try_join(&self, node: &impl Node, room: &str) -> (Client, ServerMsg) {
        let mut client = Client::connect_from(&node.ws_url(room), self.from).await;
        client
            .send(&ClientMsg::Join {
                name: self.name.into(),
                after_seq: None,
                key: Some(self.key.into()),
                token: self.token.clone(),
                owner_key: None,
            })
            .await;
        let first = client.recv().await;
        (client, first)
    }

    /// Joins `room`; panics unless welcomed.
    pub async fn join(&self, node: &impl Node, room: &str) -> Client {
        match self.try_join(node, room).await {
            (client, ServerMsg::Welcome { .. }) => client,
            (_, other) => panic!("{} expected a welcome, got {other:?}", self.name),
        }
    }
}
