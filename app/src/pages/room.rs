//! A room's page (`/r/<room>`): rendered on the server with its latest history (readable without
//! JavaScript), then live once the browser knows the reader's name.

use leptos::{html, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::use_saved_name;
use super::writing::{writing, writing_mode};
use crate::account::{load_account, Account};
use crate::chat::{follow_unread, RoomConnection, RoomState, Unread};
use crate::components::{
    Actions, ErrorCard, GuestName, InviteButton, MessageList, Moderation, ModerationPanel,
    ModerationStatus, NotifyChoice, OlderHistory, RoomHeader, RoomSettings, TypingLine,
};
use crate::history::{load_history, HistoryPage, Refusal};
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
    let room_key = room.to_string();
    // `?before=N`: an older page of the history (the "Load older messages" link without
    // JavaScript).
    let query = leptos_router::hooks::use_query_map();
    let before = move || {
        query
            .read()
            .get("before")
            .and_then(|b| b.parse::<Seq>().ok())
            .filter(|b| *b > 1)
    };
    let key = move || (room_key.clone(), before());
    // One resource for both: the page waits on a single future (awaiting two blocking resources
    // one after the other in one `Suspend` sometimes left the server's response hanging).
    let loaded = Resource::new_blocking(key, |(room, before)| async move {
        let account = load_account().await;
        (account, load_history(room, before).await)
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading" role="status">"Loading the room…"</p> }>
            {move || {
                let room = room.clone();
                let before_now = before();
                Suspend::new(async move {
                    let (account, history) = loaded.await;
                    let account = account.unwrap_or_default();
                    match history {
                        Ok(page) if page.refused.is_some() => refused(page.refused, &account),
                        Ok(page) => {
                            let older_page = before_now.is_some();
                            view! { <RoomView room page account older_page/> }.into_any()
                        }
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

/// The page for a room this reader may not read: why, and how to get in.
fn refused(why: Option<Refusal>, account: &Account) -> AnyView {
    let (title, text) = match why {
        Some(Refusal::MembersOnly) => (
            "This room is for its members",
            "Your account is not one of its members. Ask the room's owner to add you.",
        ),
        _ => (
            "Sign in to read this room",
            "Only signed-in people can read it. Open your sign-in link, then come back.",
        ),
    };
    let (href, action) = match (&account.signin_url, why) {
        (Some(url), Some(Refusal::SignInRequired)) => (url.clone(), "Sign in"),
        _ => ("/".to_owned(), "Choose another room"),
    };
    view! {
        <Title text=title/>
        <ErrorCard title text href action/>
    }
    .into_any()
}

/// The chat view for one room, starting from a page of its latest history.
#[component]
fn RoomView(
    room: RoomName,
    page: HistoryPage,
    account: Account,
    /// Whether this is an older page of the history (`?before=N`), not the latest.
    older_page: bool,
) -> impl IntoView {
    // A signed-in reader's name is their account's; a guest's is the one this browser keeps.
    let saved = match &account.viewer {
        Some(viewer) => RwSignal::new(Some(Some(viewer.name.clone()))),
        None => use_saved_name(),
    };
    let mut state = RoomState::new(page.messages, page.upto);
    state.limits = page.limits;
    state.slow_mode_secs = page.rules.slow_mode_secs;
    state.removed_upto.set(page.removed_upto);
    let title = if room.is_private() {
        "Private room".to_owned()
    } else {
        format!("#{room}")
    };
    let connection = connect_once_named(room.to_string(), state, saved);
    // The owner by account is known on the server; a guest owner's key only in the browser, so
    // that is looked at after hydration (the first render matches the server's).
    let owns = RwSignal::new(page.can_change_rules);
    #[cfg(feature = "hydrate")]
    {
        let room = room.to_string();
        Effect::new(move |_| {
            if crate::api::owner_key(&room).is_some() {
                owns.set(true);
            }
        });
    }
    let settings = {
        let (room, rules) = (room.to_string(), page.rules.clone());
        move || {
            owns.get()
                .then(|| view! { <RoomSettings room=room.clone() rules=rules.clone()/> })
        }
    };

    let moderates = account.viewer.as_ref().is_some_and(|v| v.is_moderator());
    let actions = Actions {
        state,
        connection,
        // The owner (by account or by key) moderates too.
        moderates: Signal::derive(move || moderates || owns.get()),
        edit_window_ms: i64::try_from(page.edit_window_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        moderation: Moderation::new(room.to_string()),
    };
    let panel = move || {
        actions
            .moderates
            .get()
            .then(|| view! { <ModerationPanel moderation=actions.moderation/> })
    };
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
    // Whether the "new since you left" line is above what the reader sees (then a button
    // offers to jump to it).
    let line_above = RwSignal::new(false);
    let on_scroll = move |_| {
        if let Some(el) = list_ref.get_untracked() {
            #[cfg(feature = "hydrate")]
            line_above.set(
                document()
                    .get_element_by_id("new-since")
                    .is_some_and(|line| {
                        line.get_bounding_client_rect().top() < el.get_bounding_client_rect().top()
                    }),
            );
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
    #[cfg(feature = "hydrate")]
    {
        let room = room.to_string();
        Effect::new(move |_| crate::recent::visited(&room));
    }
    let unread = Unread::new();
    let notify = {
        let (room, title) = (room.to_string(), title.clone());
        move |m: &crate::protocol::ChatMessage, mention: bool| {
            #[cfg(feature = "hydrate")]
            {
                use crate::components::NotifyMode;
                let wanted = match crate::components::notify_mode(&room) {
                    NotifyMode::All => true,
                    NotifyMode::Mentions => mention,
                    NotifyMode::Off => false,
                };
                if wanted {
                    let body = crate::markup::plain(&crate::markup::parse(&m.text));
                    let head = format!("{} in {title}", m.sender);
                    crate::browser::notify(&head, &body, &room);
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (m, mention, &room, &title);
        }
    };
    follow_unread(room.to_string(), state, unread, at_bottom, notify);
    // The line arrives after the first render: a reader at the bottom stays there.
    Effect::new(move |_| {
        if unread.new_since.get().is_some() && at_bottom.get_untracked() {
            request_animation_frame(scroll_to_bottom);
        }
    });
    let page_title = {
        let title = title.clone();
        move || unread.title(&title)
    };
    let jumped = RwSignal::new(false);
    let jump = move |_| {
        jumped.set(true);
        #[cfg(feature = "hydrate")]
        if let Some(line) = document().get_element_by_id("new-since") {
            line.scroll_into_view();
        }
    };

    let newest = format!("/r/{room}");
    let is_guest = account.viewer.is_none();
    view! {
        <Title text=page_title/>
        <div class="room">
            <RoomHeader title=title.clone() state connection account=account.clone()>
                {room.is_private().then(|| view! { <InviteButton room=room.to_string()/> })}
                {is_guest.then(|| view! { <GuestName saved/> })}
                <NotifyChoice room=room.to_string()/>
                {settings}
                {panel}
            </RoomHeader>
            // The page's main landmark; `display: contents`, so its parts stay in the room's grid.
            <main class="room-main">
            <noscript>
                <p class="noscript" role="note">
                    "JavaScript is off: you can read this room's history, page by page. To chat, turn JavaScript on."
                </p>
            </noscript>
            <MessageList state saved list_ref on_scroll older room_label=title actions unread/>
            <Show when=move || unread.new_since.get().is_some() && line_above.get() && !jumped.get()>
                <button type="button" class="jump-new secondary" on:click=jump>"↑ New since you left"</button>
            </Show>
            <TypingLine state/>
            <ModerationStatus moderation=actions.moderation/>
            {older_page.then(|| view! {
                <a class="newest button secondary" href=newest.clone()>"Newest messages ↓"</a>
            })}
            <Show when=move || { unseen.get() > 0 }>
                <button type="button" class="new-below" on:click=move |_| { scroll_to_bottom(); unseen.set(0); }>
                    {move || match unseen.get() { 1 => "1 new message ↓".to_owned(), n => format!("{n} new messages ↓") }}
                </button>
            </Show>
            {
                let guest_page = account.viewer.is_none();
                let can_post = page.can_post;
                let mode = Memo::new(move |_| writing_mode(state, saved, guest_page, can_post));
                let write = move || writing(mode.get(), state, saved, account.clone(), connection, at_bottom);
                view! { <div class="writing-area needs-js">{write}</div> }
            }
            </main>
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
            // A new name is a new try: whatever refused the old one is over.
            state.stopped.set(None);
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
