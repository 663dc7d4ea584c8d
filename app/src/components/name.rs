//! A guest's own name in the room's header ("You: Ada"), changeable there: the room is joined
//! again under the new name (kept by the browser for next time). A verified person's name is
//! their account's and shown by the account bar instead.

use leptos::{ev, prelude::*};

use crate::limits::{validate_display_name, MAX_DISPLAY_NAME_CHARS};
use crate::pages::remember_name;

#[component]
pub fn GuestName(saved: RwSignal<Option<Option<String>>>) -> impl IntoView {
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let save = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        match validate_display_name(&draft.get_untracked()) {
            Ok(name) => {
                remember_name(&name);
                saved.set(Some(Some(name)));
                editing.set(false);
            }
            Err(e) => error.set(Some(e.to_string())),
        }
    };
    let on_keydown = move |ev: ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            editing.set(false);
        }
    };
    move || {
        let name = saved.get().flatten()?;
        Some(if editing.get() {
            view! {
                <form class="guest-name editing" on:submit=save on:keydown=on_keydown>
                    <label for="guest-name-input" class="visually-hidden">"Your name"</label>
                    <input id="guest-name-input" autocomplete="nickname" autofocus
                        maxlength=MAX_DISPLAY_NAME_CHARS.to_string() prop:value=move || draft.get()
                        on:input=move |ev| { draft.set(event_target_value(&ev)); error.set(None); }/>
                    <button type="submit" class="primary">"Save"</button>
                    <button type="button" class="secondary" on:click=move |_| editing.set(false)>"Cancel"</button>
                    <span class="error" role="alert">{move || error.get()}</span>
                </form>
            }
            .into_any()
        } else {
            let current = name.clone();
            view! {
                <button type="button" class="guest-name pill" aria-label=format!("Your name: {name}. Change it")
                    on:click=move |_| { draft.set(current.clone()); editing.set(true); }>
                    "You: " {name.clone()} " ✎"
                </button>
            }
            .into_any()
        })
    }
}
