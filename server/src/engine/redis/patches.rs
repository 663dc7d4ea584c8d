//! Edits and deletes on Redis. Stream entries cannot be rewritten, so the append script keeps each
//! changed message's latest state in the room's `patch` sorted set (score: the message's number;
//! member: JSON): new text and when it was edited, or, for a deleted message (and each edit of
//! it, whose stream entries the script removed), the fields a placeholder needs and no text.
//! Reads lay the patches over the stream entries they got, and put placeholders where entries
//! were removed, so history stays one gap-free sequence.

use std::collections::{BTreeMap, HashMap};

use app::limits::RoomName;
use app::protocol::{ChatMessage, EntryKind, Seq};
use serde::Deserialize;

use super::connection::timed;
use super::RedisEngine;
use crate::engine::EngineError;

#[derive(Debug, Deserialize)]
struct Patch {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    edited_at_ms: Option<i64>,
    #[serde(default)]
    deleted: bool,
    /// A deleted entry's fields but its text.
    #[serde(default)]
    entry: Option<HashMap<String, serde_json::Value>>,
}

impl RedisEngine {
    /// `page` (stream entries numbered `from..=to`, `to` unbounded when `None`) with the changes of
    /// that range laid over it and placeholders where deleted entries were, in order.
    pub(super) async fn overlay(
        &self,
        room: &RoomName,
        page: Vec<ChatMessage>,
        from: Seq,
        to: Option<Seq>,
    ) -> Result<Vec<ChatMessage>, EngineError> {
        let mut conn = self.conn.clone();
        let upto = to.map_or_else(|| "+inf".to_owned(), |t| t.to_string());
        let found: Vec<(String, f64)> = timed(
            redis::cmd("ZRANGEBYSCORE")
                .arg(self.key(room, "patch"))
                .arg(from)
                .arg(upto)
                .arg("WITHSCORES")
                .query_async(&mut conn),
        )
        .await?;
        if found.is_empty() {
            return Ok(page);
        }
        let mut patches: BTreeMap<Seq, Patch> = found
            .into_iter()
            .filter_map(|(json, seq)| Some((seq as Seq, serde_json::from_str(&json).ok()?)))
            .collect();
        let mut out: BTreeMap<Seq, ChatMessage> = page.into_iter().map(|m| (m.seq, m)).collect();
        for (seq, m) in &mut out {
            if let Some(patch) = patches.remove(seq) {
                apply(m, &patch);
            }
        }
        for (seq, patch) in patches {
            if let Some(m) = placeholder(seq, &patch) {
                out.insert(seq, m);
            }
        }
        Ok(out.into_values().collect())
    }
}

fn apply(m: &mut ChatMessage, patch: &Patch) {
    if patch.deleted {
        m.text.clear();
        m.deleted = true;
    } else if let Some(text) = &patch.text {
        m.text.clone_from(text);
        m.edited_at_ms = patch.edited_at_ms;
    }
}

/// A deleted entry as reads return it: its fields, no text.
fn placeholder(seq: Seq, patch: &Patch) -> Option<ChatMessage> {
    let entry = patch.entry.as_ref().filter(|_| patch.deleted)?;
    let field = |name: &str| -> Option<String> {
        match entry.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    };
    Some(ChatMessage {
        seq,
        id: field("id")?,
        sender: field("sender")?,
        text: String::new(),
        sent_at_ms: field("ts")?.parse().ok()?,
        client_id: field("cid")?,
        user_id: field("uid"),
        kind: EntryKind::from_code(field("kind").and_then(|k| k.parse().ok()).unwrap_or(0)),
        target: field("target").and_then(|t| t.parse().ok()),
        edited_at_ms: None,
        deleted: true,
    })
}
