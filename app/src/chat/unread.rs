//! What arrived while the reader was away: the count in the tab's title while the page is hidden
//! (with a mark when someone mentioned them), and the "new since you left" line — where the
//! reader last read up to in this room, remembered by the browser (shared by its tabs), or where
//! they were when they switched away.

use leptos::prelude::*;

use super::{Me, RoomState};
use crate::protocol::{ChatMessage, Seq};

/// The unread count, mention mark and "new since" line of one room page. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Unread {
    /// Messages from others that arrived while the page was hidden.
    pub count: RwSignal<usize>,
    /// Whether one of them mentioned the reader.
    pub mention: RwSignal<bool>,
    /// The "new since you left" line goes after this message.
    pub new_since: RwSignal<Option<Seq>>,
}

impl Unread {
    pub fn new() -> Self {
        Self {
            count: RwSignal::new(0),
            mention: RwSignal::new(false),
            new_since: RwSignal::new(None),
        }
    }

    /// The page's title: `(3) #lobby`, `(@3) #lobby` with a mention, else the room's.
    pub fn title(&self, room_title: &str) -> String {
        match (self.count.get(), self.mention.get()) {
            (0, _) => room_title.to_owned(),
            (n, true) => format!("(@{n}) {room_title}"),
            (n, false) => format!("({n}) {room_title}"),
        }
    }

    /// Counts `arrived` (messages just delivered) while the page is hidden: those from others,
    /// and whether any mentions `me`. Returns what it counted, each with whether it mentions them.
    pub fn arrived<'m>(
        &self,
        arrived: &'m [ChatMessage],
        me: Option<&Me>,
        hidden: bool,
    ) -> Vec<(&'m ChatMessage, bool)> {
        if !hidden {
            return Vec::new();
        }
        let mine = |m: &ChatMessage| match me {
            Some(Me {
                user_id: Some(id), ..
            }) => m.user_id.as_deref() == Some(id.as_str()),
            Some(me) => m.user_id.is_none() && m.sender == me.name,
            None => false,
        };
        let theirs: Vec<&ChatMessage> = arrived
            .iter()
            .filter(|m| m.kind.is_message() && !m.deleted && !mine(m))
            .collect();
        self.count.update(|c| *c += theirs.len());
        let name = me.map(|m| m.name.as_str()).unwrap_or_default();
        let counted: Vec<_> = theirs
            .into_iter()
            .map(|m| (m, crate::markup::mentions(&m.text, name)))
            .collect();
        if counted.iter().any(|(_, mention)| *mention) {
            self.mention.set(true);
        }
        counted
    }

    /// The reader is back: the line goes after where they were, and the count starts over.
    pub fn back(&self, away_from: Seq) {
        if self.count.get_untracked() > 0 {
            self.new_since.set(Some(away_from));
        }
        self.count.set(0);
        self.mention.set(false);
    }
}

impl Default for Unread {
    fn default() -> Self {
        Self::new()
    }
}

/// In the browser: follows the page's visibility and the room's messages, keeps the title's count
/// and the line, and remembers (per room, in local storage) how far the reader has read — up to
/// the newest message whenever the page is visible and scrolled to the bottom.
/// `notify` is called for each message counted, with whether it mentions the reader.
#[cfg(feature = "hydrate")]
pub fn follow(
    room: String,
    state: RoomState,
    unread: Unread,
    at_bottom: RwSignal<bool>,
    notify: impl Fn(&ChatMessage, bool) + 'static,
) {
    let key = format!("palaver.read.{room}");
    let storage = || web_sys::window().and_then(|w| w.local_storage().ok().flatten());
    // Coming back to the room: the line after what this browser last read here. Set once the
    // page is hydrated (an effect), so the first render matches the server's, which cannot know.
    let last_read: Option<Seq> = storage()
        .and_then(|s| s.get_item(&key).ok().flatten())
        .and_then(|v| v.parse().ok());
    let loaded_upto = state.last_seq();
    Effect::new(move |done: Option<()>| {
        if done.is_none() {
            if let Some(read) = last_read.filter(|read| *read < loaded_upto) {
                unread.new_since.set(Some(read));
            }
        }
    });
    let hidden = || {
        web_sys::window()
            .and_then(|w| w.document())
            .is_some_and(|d| d.hidden())
    };
    let away_from = StoredValue::new(state.last_seq());
    let save = move |seq: Seq| {
        if let Some(s) = storage() {
            let known = s
                .get_item(&key)
                .ok()
                .flatten()
                .and_then(|v| v.parse::<Seq>().ok());
            // Another tab may have read further.
            if known.is_none_or(|k| k < seq) {
                let _ = s.set_item(&key, &seq.to_string());
            }
        }
    };
    let save = StoredValue::new(save);
    Effect::new(move |prev: Option<Seq>| {
        let last = state.messages.with(|m| m.last().map_or(0, |m| m.seq));
        if let Some(prev) = prev.filter(|p| *p < last) {
            let arrived: Vec<ChatMessage> = state
                .messages
                .with_untracked(|m| m.iter().filter(|m| m.seq > prev).cloned().collect());
            state.me.with_untracked(|me| {
                for (message, mention) in unread.arrived(&arrived, me.as_ref(), hidden()) {
                    notify(message, mention);
                }
            });
        }
        if !hidden() && at_bottom.get() {
            save.with_value(|save| save(last));
        }
        last
    });
    let listener = window_event_listener_untyped("visibilitychange", move |_| {
        if hidden() {
            away_from.set_value(state.last_seq());
        } else {
            unread.back(away_from.get_value());
            if at_bottom.get_untracked() {
                save.with_value(|save| save(state.last_seq()));
            }
        }
    });
    on_cleanup(move || listener.remove());
}

#[cfg(not(feature = "hydrate"))]
pub fn follow(
    _room: String,
    _state: RoomState,
    _unread: Unread,
    _at_bottom: RwSignal<bool>,
    _notify: impl Fn(&ChatMessage, bool) + 'static,
) {
}
