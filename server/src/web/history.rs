//! The server's side of the app's history server function: pages of stored messages, read from
//! the engine (committed messages only), for the first HTML of a room and for scrolling back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use app::history::ssr::HistorySource;
use app::history::HistoryPage;
use app::limits::{MessageLimits, RoomName};
use app::protocol::{sent_client_id, Seq};
use tracing::warn;

use crate::engine::History;
use crate::redact::LogName;

/// Answers history requests straight from the engine.
pub struct EngineHistory {
    pub history: Arc<dyn History>,
    /// Sent along so browsers check the server's own message limits.
    pub limits: MessageLimits,
}

impl HistorySource for EngineHistory {
    fn page<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<HistoryPage, String>> + Send + 'a>> {
        Box::pin(async move {
            let mut messages = self
                .history
                .before(room, before, limit)
                .await
                .map_err(|e| {
                    warn!(room = %room.logged(), error = %e, "history read failed");
                    e.to_string()
                })?;
            // Pages show each message with the client id its sender chose (stored scoped).
            for m in &mut messages {
                m.client_id = sent_client_id(&m.client_id).to_owned();
            }
            // The latest page is complete up to its last message; live updates resume there.
            let upto = match before {
                None => messages.last().map_or(0, |m| m.seq),
                Some(b) => b.saturating_sub(1),
            };
            // A short page reached the oldest message left: below it, retention removed the rest.
            let removed_upto = match (messages.first(), before) {
                (Some(first), _) if messages.len() < limit => first.seq - 1,
                (None, Some(b)) => b.saturating_sub(1),
                _ => 0,
            };
            Ok(HistoryPage {
                messages,
                upto,
                removed_upto,
                limits: self.limits,
            })
        })
    }
}
