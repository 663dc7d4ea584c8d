//! A room's page (`/r/<room>`): rendered on the server with its latest history (readable without
//! JavaScript), then live once the browser knows the reader's name.

use leptos::{html, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::use_saved_name;
use crate::chat::{RoomConnection, RoomState};
use crate::components::{Composer, ErrorCard, MessageList, NamePrompt, OlderHistory, RoomHeader};
use crate::history::{load_history, HistoryPage};
use crate::limits::RoomName;
use crate::protocol::Seq;

#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let room = move || params.read().get("room").map(|r| RoomName::parse(&r));
    move || match room() {
        Some(Ok(room)) => view! { <Room room/> }.into_any(),
        _ => view! {
            <Title text="Not a room"/>
            <ErrorCard title="That is not a room name"
                text="Room names use letters, digits, - and _, up to 32 characters."
                href="/" action="Choose a room"/>
        }
        .into_any(),
    }
}

/// One (valid) room: loads its latest history (on the server, into the first HTML), then shows it.
#[component]
fn Room(room: RoomName) -> impl IntoView {
    let key = room.to_string();
    let history = Resource::new_blocking(move || key.clone(), |room| load_history(room, None));
    view! {
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading the room…"</p> }>
            {move || {
                let room = room.clone();
                Suspend::new(async move {
                    match history.await {
                        Ok(page) => view! { <RoomView room page/> }.into_any(),
                        Err(_) => view! {
                            <Title text="Room unavailable"/>
                            <ErrorCard title="This room is unavailable right now"
                                text="Its history could not be read. Reload the page in a moment."
                                href="" action="Reload" alert=true/>
                        }
                        .into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// The chat view for one room, starting from a page of its latest history.
#[component]
fn RoomView(room: RoomName, page: HistoryPage) -> impl IntoView {
    let saved = use_saved_name();
    let mut state = RoomState::new(page.messages, page.upto);
    state.limits = page.limits;
    state.removed_upto.set(page.removed_upto);
    let title = if room.is_private() {
        "Private room".to_owned()
    } else {
        format!("#{room}")
    };
    let connection = connect_once_named(room.to_string(), state, saved);

    let list_ref = NodeRef::<html::Div>::new();
    let at_bottom = RwSignal::new(true);
    let unseen = RwSignal::new(0usize);
    let scroll_to_bottom = move || {
        if let Some(el) = list_ref.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
    };
    // Start at the newest message once the page is interactive.
    Effect::new(move |_| request_animation_frame(scroll_to_bottom));
    // Older history, a page at a time, keeping what the reader sees in place.
    let older = OlderHistory {
        room: StoredValue::new(room.to_string()),
        state,
        list_ref,
        loading: RwSignal::new(false),
    };
    let on_scroll = move |_| {
        if let Some(el) = list_ref.get_untracked() {
            let bottom = el.scroll_height() - el.scroll_top() - el.client_height() < 48;
            at_bottom.set(bottom);
            if bottom {
                unseen.set(0);
            }
            if el.scroll_top() < 160 {
                older.load();
            }
        }
    };
    follow_or_count(state, at_bottom, unseen, scroll_to_bottom);

    view! {
        <Title text=title.clone()/>
        <div class="room">
            <RoomHeader title=title.clone() state connection/>
            <noscript>
                <p class="noscript" role="note">
                    "JavaScript is off: you can read this room's recent history. Turn it on to chat live."
                </p>
            </noscript>
            <MessageList state saved list_ref on_scroll older room_label=title/>
            <Show when=move || { unseen.get() > 0 }>
                <button type="button" class="new-below" on:click=move |_| { scroll_to_bottom(); unseen.set(0); }>
                    {move || match unseen.get() { 1 => "1 new message ↓".to_owned(), n => format!("{n} new messages ↓") }}
                </button>
            </Show>
            {move || match saved.get() {
                Some(None) => view! { <NamePrompt saved/> }.into_any(),
                _ => view! { <Composer state connection at_bottom/> }.into_any(),
            }}
        </div>
    }
}

/// Opens the room's connection once the reader's name is known, again under a new name if it
/// changes, and closes it when the view goes.
fn connect_once_named(
    room: String,
    state: RoomState,
    saved: RwSignal<Option<Option<String>>>,
) -> StoredValue<Option<RoomConnection>> {
    let connection = StoredValue::new(None::<RoomConnection>);
    Effect::new(move |_| {
        if let Some(Some(name)) = saved.get() {
            if let Some(old) = connection.get_value() {
                old.close();
            }
            connection.set_value(Some(RoomConnection::open(state, room.clone(), name)));
        }
    });
    on_cleanup(move || {
        if let Some(c) = connection.try_get_value().flatten() {
            c.close();
        }
    });
    connection
}

/// Follows new messages only when the reader is already at the bottom; otherwise counts them.
/// Keyed on the last sequence number, so older pages added at the top do not count.
fn follow_or_count(
    state: RoomState,
    at_bottom: RwSignal<bool>,
    unseen: RwSignal<usize>,
    scroll_to_bottom: impl Fn() + Copy + 'static,
) {
    Effect::new(move |prev: Option<(Seq, usize)>| {
        let last = state.messages.with(|m| m.last().map_or(0, |m| m.seq));
        let pending = state.outbox.with(Vec::len);
        if let Some((prev_last, prev_pending)) = prev {
            let arrived = usize::try_from(last.saturating_sub(prev_last)).unwrap_or(usize::MAX)
                + pending.saturating_sub(prev_pending);
            if arrived > 0 {
                if at_bottom.get_untracked() {
                    request_animation_frame(scroll_to_bottom);
                } else {
                    unseen.update(|u| *u += arrived);
                }
            }
        }
        (last, pending)
    });
}
