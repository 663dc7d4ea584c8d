//! The room's header: where you are, who is here, and whether messages are getting through.

use leptos::prelude::*;

use crate::chat::{ConnState, RoomState};

#[component]
pub fn RoomHeader(title: String, state: RoomState) -> impl IntoView {
    let status = move || match state.conn.get() {
        ConnState::Connecting => ("connecting", "Connecting…".to_owned()),
        ConnState::Connected if state.degraded.get() => {
            ("degraded", "Saving paused: messages wait".to_owned())
        }
        ConnState::Connected => ("connected", "Connected".to_owned()),
        ConnState::Reconnecting { attempt } => {
            ("reconnecting", format!("Reconnecting… (attempt {attempt})"))
        }
        ConnState::Offline => (
            "offline",
            "Offline: messages wait until you are back".to_owned(),
        ),
    };
    view! {
        <header class="room-header">
            <a class="brand small" href="/" aria-label="Palaver home">"Palaver"</a>
            <h1 class="room-title">{title}</h1>
            <Roster online=state.online/>
            <p class="status" data-state=move || status().0 role="status" aria-live="polite">
                <span class="dot" aria-hidden="true"></span>
                <span class="status-text">{move || status().1}</span>
            </p>
        </header>
    }
    .into_any()
}

/// Who is online: a disclosure in the header ("3 online"), a list when opened.
#[component]
fn Roster(online: RwSignal<Vec<String>>) -> impl IntoView {
    view! {
        <Show when=move || online.with(|o| !o.is_empty())>
            <details class="roster">
                <summary aria-label=move || format!("{} online; show who", online.with(Vec::len))>
                    {move || format!("{} online", online.with(Vec::len))}
                </summary>
                <ul aria-label="Online now">
                    <For each=move || online.get() key=|n| n.clone() let:name>
                        <li>{name}</li>
                    </For>
                </ul>
            </details>
        </Show>
    }
    .into_any()
}
