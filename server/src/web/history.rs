//! The server's side of the app's history server function: pages of stored messages, read from
//! the engine (committed messages only), for the first HTML of a room and for scrolling back —
//! to readers the sign-in mode and the room's rules let read it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use app::history::ssr::HistorySource;
use app::history::{HistoryPage, Refusal};
use app::limits::{MessageLimits, RoomName};
use app::protocol::{sent_client_id, Seq};
use app::rules::RoomRules;
use axum::http::HeaderMap;
use tracing::warn;

use crate::auth::access::{self, RoomAccess};
use crate::auth::Auth;
use crate::engine::History;
use crate::redact::LogName;

/// Answers history requests straight from the engine.
pub struct EngineHistory {
    pub history: Arc<dyn History>,
    /// Sent along so browsers check the server's own message limits.
    pub limits: MessageLimits,
    pub auth: Auth,
    pub access: RoomAccess,
    /// `--edit-window-secs`, so pages offer to change only what the server would change.
    pub edit_window: std::time::Duration,
}

/// What a reader may do in a room, as a page needs it.
struct Access {
    refused: Option<Refusal>,
    can_post: bool,
    can_change: bool,
    /// The rules as shown: members listed only to those who may change them.
    rules: RoomRules,
}

impl EngineHistory {
    async fn access(&self, room: &RoomName, headers: &HeaderMap) -> Result<Access, String> {
        // An expired cookie reads as a guest; the page says why through `account`.
        let identity = super::account::cookie_identity(&self.auth, headers)
            .await
            .unwrap_or(None);
        let rules = self.access.rules(room).await.map_err(|e| e.to_string())?;
        let who = access::who(identity.as_ref(), room, &rules, None);
        let refused = if identity.is_none() && !self.auth.guests_may_connect() {
            Some(Refusal::SignInRequired)
        } else if rules.may_read(&who) {
            None
        } else if identity.is_none() {
            Some(Refusal::SignInRequired)
        } else {
            Some(Refusal::MembersOnly)
        };
        let can_post = refused.is_none()
            && (identity.is_some() || self.auth.guests_may_post())
            && rules.may_post(&who);
        let can_change = rules.may_change(&who);
        let mut shown = RoomRules::clone(&rules);
        if !can_change {
            shown.members.clear();
            shown.member_roles.clear();
        }
        Ok(Access {
            refused,
            can_post,
            can_change,
            rules: shown,
        })
    }
}

impl HistorySource for EngineHistory {
    fn page<'a>(
        &'a self,
        room: &'a RoomName,
        before: Option<Seq>,
        limit: usize,
        headers: &'a HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Result<HistoryPage, String>> + Send + 'a>> {
        Box::pin(async move {
            let access = self.access(room, headers).await.map_err(|e| {
                warn!(room = %room.logged(), error = %e, "room rules read failed");
                e
            })?;
            let mut messages = if access.refused.is_some() {
                Vec::new()
            } else {
                self.history
                    .before(room, before, limit)
                    .await
                    .map_err(|e| {
                        warn!(room = %room.logged(), error = %e, "history read failed");
                        e.to_string()
                    })?
            };
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
                refused: access.refused,
                can_post: access.can_post,
                rules: access.rules,
                can_change_rules: access.can_change,
                edit_window_secs: self.edit_window.as_secs(),
            })
        })
    }
}
