//! Writing: the composer (Enter sends, Shift+Enter adds a line; the message is checked against
//! the server's limits before it goes), and the name prompt for someone who arrives by a link.

use leptos::{ev, html, prelude::*};

use super::mention::{self, Completion, MentionList};

use crate::chat::{Muted, RoomConnection, RoomState};
use crate::limits::{validate_display_name, MAX_DISPLAY_NAME_CHARS};
use crate::pages::remember_name;

/// Asks for a display name when someone opens a room link without one.
#[component]
pub fn NamePrompt(saved: RwSignal<Option<Option<String>>>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let on_submit = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        match validate_display_name(&name.get_untracked()) {
            Ok(n) => {
                remember_name(&n);
                saved.set(Some(Some(n)));
            }
            Err(e) => error.set(Some(e.to_string())),
        }
    };
    view! {
        <form class="composer name-prompt" on:submit=on_submit>
            <label for="display-name">"Choose a name to join"</label>
            <div class="row">
                <input id="display-name" autocomplete="nickname" maxlength=MAX_DISPLAY_NAME_CHARS.to_string()
                    placeholder="Your name" prop:value=move || name.get()
                    on:input=move |ev| { name.set(event_target_value(&ev)); error.set(None); }/>
                <button type="submit" class="primary">"Join"</button>
            </div>
            <p class="error" role="alert">{move || error.get()}</p>
        </form>
    }
    .into_any()
}

#[component]
pub fn Composer(
    state: RoomState,
    connection: StoredValue<Option<RoomConnection>>,
    at_bottom: RwSignal<bool>,
) -> impl IntoView {
    let text = state.draft;
    let error = RwSignal::new(None::<String>);
    let submit = move || {
        if let Some(muted) = state.muted.get_untracked() {
            return error.set(Some(mute_words(&muted)));
        }
        let draft = text.get_untracked();
        let valid = match state.limits.validate(&draft) {
            Ok(t) => t,
            Err(e) => return error.set(Some(e.to_string())),
        };
        let Some(conn) = connection.get_value() else {
            return error.set(Some("Still connecting; try again in a moment.".into()));
        };
        match conn.send(&state, valid) {
            Ok(()) => {
                start_slow_wait(&state);
                text.set(String::new());
                error.set(None);
                // Sending is a reason to jump to the newest message.
                at_bottom.set(true);
            }
            Err(e) => error.set(Some(e)),
        }
    };
    let on_submit = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        submit();
    };
    let area = NodeRef::<html::Textarea>::new();
    let completion = Completion::new(state);
    let caret = move || {
        area.get_untracked()
            .and_then(|a| a.selection_start().ok().flatten())
            .map_or_else(|| text.get_untracked().len(), |c| c as usize)
    };
    // Selection offsets are UTF-16 units; the text's own are bytes: count the caret in chars.
    let caret_byte = move || {
        let t = text.get_untracked();
        let units = caret();
        let mut seen = 0;
        t.char_indices()
            .find(|(_, c)| {
                let before = seen;
                seen += c.len_utf16();
                before >= units
            })
            .map_or(t.len(), |(i, _)| i)
    };
    let pick = Callback::new(move |name: String| {
        let t = text.get_untracked();
        let at = caret_byte();
        if let Some(p) = mention::partial(&t, at) {
            let (done, after) = mention::complete(&t, &p, at, &name);
            text.set(done);
            let after_units = text.with_untracked(|t| t[..after].encode_utf16().count() as u32);
            request_animation_frame(move || {
                if let Some(a) = area.get_untracked() {
                    let _ = a.set_selection_range(after_units, after_units);
                    let _ = a.focus();
                }
            });
        }
        completion.close();
    });
    let on_keydown = move |ev: ev::KeyboardEvent| {
        if completion.is_open() {
            match ev.key().as_str() {
                "ArrowDown" => {
                    return {
                        ev.prevent_default();
                        completion.step(1)
                    }
                }
                "ArrowUp" => {
                    return {
                        ev.prevent_default();
                        completion.step(-1)
                    }
                }
                "Enter" | "Tab" if !ev.is_composing() => {
                    ev.prevent_default();
                    let chosen = completion
                        .options
                        .with_untracked(|o| o.get(completion.active.get_untracked()).cloned());
                    if let Some(name) = chosen {
                        pick.run(name);
                    }
                    return;
                }
                "Escape" => {
                    return {
                        ev.prevent_default();
                        completion.close()
                    }
                }
                _ => {}
            }
        }
        // Enter sends; Shift+Enter is a new line; never interrupt an IME composition.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        }
    };
    let last_typing = StoredValue::new(f64::MIN);
    let on_input = move |ev: ev::Event| {
        text.set(event_target_value(&ev));
        error.set(None);
        // Others are told at most every few seconds while there is something typed.
        #[cfg(feature = "hydrate")]
        if !text.with_untracked(|t| t.trim().is_empty()) {
            let now = js_sys::Date::now();
            if now - last_typing.get_value() >= crate::protocol::TYPING_EVERY_MS as f64 {
                last_typing.set_value(now);
                if let Some(conn) = connection.get_value() {
                    conn.typing();
                }
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = last_typing;
        let p = mention::partial(&text.get_untracked(), caret_byte());
        if p != completion.partial.get_untracked() {
            completion.active.set(0);
        }
        completion.partial.set(p);
    };
    let notice = move || error.get().or_else(|| state.notice.get());
    let countdown = slow_countdown(state);
    view! {
        <form class="composer" on:submit=on_submit>
            <label class="visually-hidden" for="composer-input">"Message"</label>
            <div class="row">
                <textarea id="composer-input" rows="1" placeholder="Write a message…" node_ref=area
                    aria-describedby="composer-hint composer-notice"
                    aria-autocomplete="list"
                    aria-controls=move || completion.is_open().then_some("mention-list")
                    aria-activedescendant=move || completion.is_open()
                        .then(|| format!("mention-{}", completion.active.get()))
                    prop:value=move || text.get()
                    on:input=on_input on:blur=move |_| completion.close()
                    on:keydown=on_keydown></textarea>
                <button type="submit" class="primary" disabled=move || state.muted.with(Option::is_some)>"Send"</button>
            </div>
            <MentionList completion on_pick=pick/>
            <Show when=move || state.muted.with(Option::is_some)>
                <p class="muted-note" role="status">{move || state.muted.get().map(|m| mute_words(&m))}</p>
            </Show>
            <p id="composer-notice" class="error" role="alert">{notice}</p>
            {(state.slow_mode_secs > 0).then(|| view! {
                <p class="hint slow-mode" aria-live="polite">
                    {move || match countdown.get() {
                        Some(secs) => format!("Slow mode: your next message goes out in {secs} s."),
                        None => format!("Slow mode: one message every {} s.", state.slow_mode_secs),
                    }}
                </p>
            })}
            <p id="composer-hint" class="hint keys">"Enter sends · Shift+Enter adds a line"</p>
        </form>
    }
    .into_any()
}

/// What a muted reader is told above the composer.
fn mute_words(muted: &Muted) -> String {
    let mut words = format!(
        "A moderator muted you: you can read, and write again {}.",
        crate::time::when(muted.until_ms as i64)
    );
    if let Some(reason) = &muted.reason {
        words.push_str(" Reason: ");
        words.push_str(reason);
    }
    words
}

/// After a send in a room in slow mode: the next may go out only so much later.
fn start_slow_wait(state: &RoomState) {
    #[cfg(feature = "hydrate")]
    if state.slow_mode_secs > 0 {
        let next = js_sys::Date::now() + f64::from(state.slow_mode_secs) * 1000.0;
        state.slow_until.set(Some(next));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = state;
}

/// Whole seconds until the reader may post again under slow mode, ticking every second (`None`
/// when they may now).
fn slow_countdown(state: RoomState) -> RwSignal<Option<u64>> {
    let left = RwSignal::new(None);
    #[cfg(feature = "hydrate")]
    {
        let tick = move || {
            let secs = state.slow_until.get_untracked().and_then(|until| {
                let ms = until - js_sys::Date::now();
                (ms > 0.0).then(|| (ms / 1000.0).ceil() as u64)
            });
            left.set(secs);
        };
        Effect::new(move |_| {
            state.slow_until.track();
            tick();
        });
        if state.slow_mode_secs > 0 {
            if let Ok(interval) = set_interval_with_handle(tick, std::time::Duration::from_secs(1))
            {
                on_cleanup(move || interval.clear());
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = state;
    left
}
