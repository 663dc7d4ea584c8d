//! The room's header: where you are, who is here, and whether messages are getting through.

use leptos::{ev, html, prelude::*};

use super::{AccountBar, VerifiedMark};
use crate::account::Account;
use crate::chat::{ConnState, RoomConnection, RoomState};

#[component]
pub fn RoomHeader(
    title: String,
    state: RoomState,
    connection: StoredValue<Option<RoomConnection>>,
    account: Account,
    /// More controls (the room's settings, for its owner).
    #[prop(optional)]
    children: Option<Children>,
) -> impl IntoView {
    let status = move || match state.conn.get() {
        ConnState::Stopped => ("stopped", "Not connected".to_owned()),
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
            <Roster state connection/>
            <AccountBar account/>
            {children.map(|c| c())}
            <p class="status needs-js" data-state=move || status().0 role="status" aria-live="polite">
                <span class="dot" aria-hidden="true"></span>
                <span class="status-text">{move || status().1}</span>
            </p>
        </header>
    }
    .into_any()
}

/// Who is online: a disclosure in the header ("3 online"), a list when opened. The list is
/// loaded a page at a time from the room when it opens, can be searched, and shows more on
/// request, so a room of thousands costs the page no more than what the reader looks at.
#[component]
fn Roster(state: RoomState, connection: StoredValue<Option<RoomConnection>>) -> impl IntoView {
    let roster = state.roster;
    let count = move || roster.with(|r| r.count);
    let query = RwSignal::new(String::new());
    let details = NodeRef::<html::Details>::new();
    let ask = move |after: Option<String>, query: Option<String>| {
        if let Some(c) = connection.get_value() {
            c.roster(after, query);
        }
    };
    let on_toggle = move |_: ev::Event| {
        if details.get_untracked().is_some_and(|d| d.open()) {
            // Opened: the list afresh (a big room's changes name nobody).
            let q = query.get_untracked();
            ask(None, Some(q.trim().to_owned()).filter(|q| !q.is_empty()));
        }
    };
    let on_search = move |ev: ev::Event| {
        let q = event_target_value(&ev);
        query.set(q.clone());
        match q.trim() {
            "" => roster.update(|r| r.search = None),
            q => ask(None, Some(q.to_owned())),
        }
    };
    let on_more = move |_| {
        let (after, q) = roster.with_untracked(|r| {
            (
                r.continue_after(),
                r.search.as_ref().map(|s| s.query.clone()),
            )
        });
        if after.is_some() {
            ask(after, q);
        }
    };
    let searching_nobody =
        move || roster.with(|r| r.search.as_ref().is_some_and(|s| s.names.is_empty()));
    view! {
        <Show when=move || { count() > 0 }>
            <details class="roster" node_ref=details on:toggle=on_toggle>
                <summary aria-label=move || format!("{} online; show who", count())>
                    {move || format!("{} online", count())}
                </summary>
                <div class="roster-panel">
                    <input type="search" class="roster-search" placeholder="Find someone"
                        aria-label="Find someone in this room" autocomplete="off"
                        prop:value=move || query.get() on:input=on_search/>
                    <ul aria-label="Online now">
                        <For each=move || roster.with(|r| r.listed()) key=|n| n.clone() let:name>
                            <li>
                                {name.clone()}
                                <Show when={let name = name.clone(); move || roster.with(|r| r.is_verified(&name))}>
                                    <VerifiedMark user_id="in this room"/>
                                </Show>
                            </li>
                        </For>
                    </ul>
                    <Show when=searching_nobody>
                        <p class="roster-empty" role="status">"Nobody here by that name."</p>
                    </Show>
                    <Show when=move || roster.with(|r| r.continue_after().is_some())>
                        <button type="button" class="secondary roster-more" on:click=on_more>"Show more"</button>
                    </Show>
                </div>
            </details>
        </Show>
    }
    .into_any()
}
