//! What a reader can do to a message: a menu (a disclosure button, so mouse, touch and keyboard
//! all work) with "Edit" for their own messages within the edit window and "Delete" for their own
//! and, for moderators, anyone's — and for moderators, on someone else's message, "Mute…",
//! "Ban…", "Remove for a minute" and "Remove their recent messages"; and the inline editor (Enter
//! saves, Escape cancels).

use leptos::{ev, html, prelude::*};

use super::moderate::{Moderation, SanctionForm};
use crate::chat::{RoomConnection, RoomState};
use crate::moderation::{Action, ModerationRequest};
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
    /// Where mutes, bans, kicks and purges go.
    pub moderation: Moderation,
}

impl Actions {
    fn may_edit(&self, msg: &ChatMessage, own: bool) -> bool {
        own && !msg.deleted && within(msg.sent_at_ms, self.edit_window_ms)
    }

    fn may_delete(&self, msg: &ChatMessage, own: bool) -> bool {
        !msg.deleted
            && ((own && within(msg.sent_at_ms, self.edit_window_ms)) || self.moderates.get())
    }

    /// Whether this reader may mute, ban, kick or purge the sender of `msg`.
    fn may_moderate(&self, own: bool) -> bool {
        !own && self.moderates.get()
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

/// The "⋯" menu of one message, when there is anything to do to it (what, follows whether the
/// reader moderates, which a guest owner's browser learns after loading).
#[component]
pub fn MessageMenu(
    msg: ChatMessage,
    own: bool,
    actions: Actions,
    editing: RwSignal<bool>,
) -> impl IntoView {
    let open = RwSignal::new(false);
    let form = RwSignal::new(None::<Action>);
    let msg = StoredValue::new(msg);
    move || {
        let m = msg.get_value();
        let can_edit = actions.may_edit(&m, own);
        let can_delete = actions.may_delete(&m, own);
        let can_moderate = actions.may_moderate(own);
        if !can_edit && !can_delete && !can_moderate {
            return ().into_any();
        }
        let seq = m.seq;
        let name = StoredValue::new(m.sender.clone());
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
                            <button type="button" class="danger" on:click=move |_| { open.set(false); delete(actions, seq); }>"Delete"</button>
                        })}
                        {can_moderate.then(|| moderator_items(actions, seq, name.get_value(), open, form))}
                    </div>
                </Show>
                {move || form.get().map(|action| view! {
                    <SanctionForm moderation=actions.moderation action seq name=name.get_value() done=form/>
                })}
            </div>
        }
        .into_any()
    }
}

/// Asks, then deletes message `seq` for everyone.
fn delete(actions: Actions, seq: u64) {
    #[cfg(feature = "hydrate")]
    let sure = window()
        .confirm_with_message("Delete this message for everyone?")
        .unwrap_or(false);
    #[cfg(not(feature = "hydrate"))]
    let sure = false;
    if sure {
        actions.change(seq, None);
    }
}

/// A moderator's items for someone else's message.
fn moderator_items(
    actions: Actions,
    seq: u64,
    name: String,
    open: RwSignal<bool>,
    form: RwSignal<Option<Action>>,
) -> impl IntoView {
    let moderation = actions.moderation;
    let choose = move |action: Action| {
        move |_| {
            open.set(false);
            form.set(Some(action));
        }
    };
    let (kick_name, purge_name) = (name.clone(), name);
    let kick = move |_| {
        open.set(false);
        if confirm(&format!("Remove {kick_name} from the room for a minute?")) {
            let words = format!("{kick_name} was removed for a minute.");
            moderation.act(request(Action::Kick, seq), words);
        }
    };
    let purge = move |_| {
        open.set(false);
        if confirm(&format!(
            "Delete {purge_name}'s recent messages for everyone?"
        )) {
            moderation.act(request(Action::Purge, seq), String::new());
        }
    };
    view! {
        <button type="button" on:click=choose(Action::Mute)>"Mute…"</button>
        <button type="button" on:click=choose(Action::Ban)>"Ban…"</button>
        <button type="button" on:click=kick>"Remove for a minute"</button>
        <button type="button" class="danger" on:click=purge>"Remove their recent messages"</button>
    }
}

fn request(action: Action, seq: u64) -> ModerationRequest {
    ModerationRequest {
        action,
        seq: Some(seq),
        target: None,
        minutes: 0,
        reason: String::new(),
    }
}

fn confirm(question: &str) -> bool {
    #[cfg(feature = "hydrate")]
    return window().confirm_with_message(question).unwrap_or(false);
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = question;
        false
    }
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
