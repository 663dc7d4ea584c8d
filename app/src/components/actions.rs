//! What a reader can do to a message: a menu (a disclosure button, so mouse, touch and keyboard
//! all work) with "Edit" for their own messages within the edit window and "Delete" for their own
//! and, for moderators, anyone's; and the inline editor (Enter saves, Escape cancels).

use leptos::{ev, html, prelude::*};

use crate::chat::{RoomConnection, RoomState};
use crate::protocol::ChatMessage;

/// Who may change what here, and the connection changes go through.
#[derive(Clone, Copy)]
pub struct Actions {
    pub state: RoomState,
    pub connection: StoredValue<Option<RoomConnection>>,
    /// Whether this reader deletes anyone's message (a moderator, an admin, the room's owner).
    pub moderates: Signal<bool>,
    /// How long after sending an author may change a message, in milliseconds.
    pub edit_window_ms: i64,
}

impl Actions {
    fn may_edit(&self, msg: &ChatMessage, own: bool) -> bool {
        own && !msg.deleted && within(msg.sent_at_ms, self.edit_window_ms)
    }

    fn may_delete(&self, msg: &ChatMessage, own: bool) -> bool {
        !msg.deleted
            && ((own && within(msg.sent_at_ms, self.edit_window_ms))
                || self.moderates.get_untracked())
    }

    fn change(&self, seq: u64, text: Option<String>) {
        let Some(conn) = self.connection.get_value() else {
            return;
        };
        if let Err(e) = conn.change(&self.state, seq, text) {
            self.state.notice.set(Some(e));
        }
    }
}

fn within(sent_at_ms: i64, window_ms: i64) -> bool {
    #[cfg(feature = "hydrate")]
    let now = js_sys::Date::now() as i64;
    #[cfg(not(feature = "hydrate"))]
    let now = sent_at_ms;
    now - sent_at_ms <= window_ms
}

/// The "⋯" menu of one message, when there is anything to do to it.
#[component]
pub fn MessageMenu(
    msg: ChatMessage,
    own: bool,
    actions: Actions,
    editing: RwSignal<bool>,
) -> impl IntoView {
    let can_edit = actions.may_edit(&msg, own);
    let can_delete = actions.may_delete(&msg, own);
    if !can_edit && !can_delete {
        return ().into_any();
    }
    let open = RwSignal::new(false);
    let seq = msg.seq;
    let on_delete = move |_| {
        open.set(false);
        #[cfg(feature = "hydrate")]
        let sure = window()
            .confirm_with_message("Delete this message for everyone?")
            .unwrap_or(false);
        #[cfg(not(feature = "hydrate"))]
        let sure = false;
        if sure {
            actions.change(seq, None);
        }
    };
    let on_keydown = move |ev: ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            open.set(false);
        }
    };
    view! {
        <div class="msg-menu" on:keydown=on_keydown>
            <button type="button" class="icon" aria-haspopup="true" aria-expanded=move || open.get().to_string()
                aria-label=format!("Actions for message {seq}") on:click=move |_| open.update(|o| *o = !*o)>
                "⋯"
            </button>
            <Show when=move || open.get()>
                <div class="menu" role="group" aria-label="Message actions">
                    {can_edit.then(|| view! {
                        <button type="button" on:click=move |_| { open.set(false); editing.set(true); }>"Edit"</button>
                    })}
                    {can_delete.then(|| view! {
                        <button type="button" class="danger" on:click=on_delete>"Delete"</button>
                    })}
                </div>
            </Show>
        </div>
    }
    .into_any()
}

/// The message's text as an editor: Enter (or Save) sends the new text, Escape (or Cancel) keeps
/// the old one.
#[component]
pub fn InlineEditor(msg: ChatMessage, actions: Actions, editing: RwSignal<bool>) -> impl IntoView {
    let text = RwSignal::new(msg.text.clone());
    let error = RwSignal::new(None::<String>);
    let area = NodeRef::<html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(el) = area.get() {
            let _ = el.focus();
        }
    });
    let seq = msg.seq;
    let save = move || match actions.state.limits.validate(&text.get_untracked()) {
        Ok(valid) => {
            actions.change(seq, Some(valid));
            editing.set(false);
        }
        Err(e) => error.set(Some(e.to_string())),
    };
    let on_keydown = move |ev: ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            editing.set(false);
        } else if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            save();
        }
    };
    view! {
        <form class="edit" on:submit=move |ev: ev::SubmitEvent| { ev.prevent_default(); save(); }>
            <label class="visually-hidden" for=format!("edit-{seq}")>"Edit message"</label>
            <textarea id=format!("edit-{seq}") node_ref=area rows="2" prop:value=move || text.get()
                on:input=move |ev| { text.set(event_target_value(&ev)); error.set(None); }
                on:keydown=on_keydown></textarea>
            <div class="row">
                <button type="submit" class="primary">"Save"</button>
                <button type="button" class="secondary" on:click=move |_| editing.set(false)>"Cancel"</button>
                <span class="hint">"Enter saves · Escape cancels"</span>
            </div>
            <p class="error" role="alert">{move || error.get()}</p>
        </form>
    }
}
