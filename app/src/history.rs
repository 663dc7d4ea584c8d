//! Room history for pages: the server function a room page loads its messages with (rendered into
//! the first HTML on the server, fetched over HTTP when scrolling back), and the interface through
//! which the server answers it ([`ssr::HistorySource`], provided as context by `server`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::protocol::{ChatMessage, Seq};

/// Messages per history page (also what a new page shows).
pub const HISTORY_PAGE: usize = 100;

/// A run of consecutive messages of one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// Consecutive messages in sequence order (empty for an empty room or before the first).
    pub messages: Vec<ChatMessage>,
    /// For the latest page: the sequence number the page is complete up to, which is where a
    /// client resumes its live connection (`after_seq`). For older pages: the first seq asked about
    /// minus one (unused by clients).
    pub upto: Seq,
    /// Messages up to this number are no longer kept (the server's retention removed them): the
    /// page reached the oldest message left. 0 when nothing is known to be removed.
    #[serde(default)]
    pub removed_upto: Seq,
    /// The server's message limits, so the page checks the same rule before sending.
    #[serde(default)]
    pub limits: crate::limits::MessageLimits,
    /// Why this reader may not read the room (then `messages` is empty).
    #[serde(default)]
    pub refused: Option<Refusal>,
    /// Whether this reader may post here (the sign-in mode and the room's rules).
    #[serde(default = "yes")]
    pub can_post: bool,
    /// The room's rules: what the page says about who reads and posts.
    #[serde(default)]
    pub rules: crate::rules::RoomRules,
    /// Whether this reader may change the rules (the owner, an admin).
    #[serde(default)]
    pub can_change_rules: bool,
    /// How long after sending an author may edit or delete a message (`--edit-window-secs`).
    #[serde(default)]
    pub edit_window_secs: u64,
}

/// Why a room's page shows no history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Only signed-in people may read it (the server's mode or the room's rules).
    SignInRequired,
    /// Only the room's members may read it.
    MembersOnly,
}

fn yes() -> bool {
    true
}

/// Reads a page of a room's history: the latest messages, or those just before `before`.
#[server(endpoint = "history")]
pub async fn load_history(room: String, before: Option<Seq>) -> Result<HistoryPage, ServerFnError> {
    let room =
        crate::limits::RoomName::parse(&room).map_err(|e| ServerFnError::new(e.to_string()))?;
    let source = use_context::<ssr::HistoryHandle>()
        .ok_or_else(|| ServerFnError::new("History is unavailable."))?;
    let headers = use_context::<http::request::Parts>()
        .map(|parts| parts.headers)
        .unwrap_or_default();
    source
        .0
        .page(&room, before, HISTORY_PAGE, &headers)
        .await
        .map_err(|_| ServerFnError::new("History is unavailable right now. Try again shortly."))
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! What the app needs from the server to render history.

    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use super::HistoryPage;
    use crate::limits::RoomName;
    use crate::protocol::Seq;

    /// Implemented by the server over its storage.
    pub trait HistorySource: Send + Sync + 'static {
        /// Up to `limit` consecutive messages ending just before `before` (or the latest ones),
        /// if the request's reader (by its cookies in `headers`) may read the room. Errors are
        /// logged by the implementation; the string is not shown to users.
        fn page<'a>(
            &'a self,
            room: &'a RoomName,
            before: Option<Seq>,
            limit: usize,
            headers: &'a http::HeaderMap,
        ) -> Pin<Box<dyn Future<Output = Result<HistoryPage, String>> + Send + 'a>>;
    }

    /// The context value the server provides to pages and server functions.
    #[derive(Clone)]
    pub struct HistoryHandle(pub Arc<dyn HistorySource>);
}
