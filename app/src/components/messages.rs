//! The message list: history and live messages in sequence order, join and leave notices, one's
//! own messages still on their way, and older history loaded a page at a time without moving
//! what the reader sees.

use leptos::{ev, html, prelude::*};

use super::actions::{Actions, InlineEditor, MessageMenu};
use super::VerifiedMark;
use crate::chat::{Delivery, Me, OutboxEntry, RoomState, TimelineItem, Unread};
use crate::history::load_history;
use crate::markup::render;
use crate::pages::Hydrated;
use crate::protocol::ChatMessage;
use crate::time::{clock, day_label, full_time, iso_time, utc_clock};

#[component]
pub fn MessageList(
    state: RoomState,
    saved: RwSignal<Option<Option<String>>>,
    list_ref: NodeRef<html::Div>,
    on_scroll: impl FnMut(ev::Event) + 'static,
    older: OlderHistory,
    room_label: String,
    actions: Actions,
    unread: Unread,
) -> impl IntoView {
    let first_seq = move || state.messages.with(|m| m.first().map(|m| m.seq));
    let hydrated = use_context::<Hydrated>().map(|h| h.0);
    let removed_upto = state.removed_upto;
    view! {
        <div class="messages" node_ref=list_ref on:scroll=on_scroll tabindex="0"
            role="log" aria-label="Messages" aria-live="polite" aria-relevant="additions">
            {move || match (first_seq(), removed_upto.get()) {
                (_, removed) if removed > 0 && first_seq().is_none_or(|seq| seq <= removed + 1) => view! {
                    <p class="beginning">"Earlier messages in " {room_label.clone()} " are no longer kept by this server."</p>
                }
                .into_any(),
                // A real link: without JavaScript it opens the older page (the server renders it);
                // with it, the page loads in place.
                (Some(seq), _) if seq > 1 => view! {
                    <a class="load-older button secondary" href=format!("?before={seq}")
                        aria-disabled=move || older.loading.get().to_string()
                        on:click=move |ev: ev::MouseEvent| { ev.prevent_default(); older.load(); }>
                        {move || if older.loading.get() { "Loading older messages…" } else { "Load older messages" }}
                    </a>
                }
                .into_any(),
                (Some(_), _) => view! { <p class="beginning">"This is the beginning of " {room_label.clone()} "."</p> }.into_any(),
                (None, _) => ().into_any(),
            }}
            <Show when=move || state.messages.with(Vec::is_empty) && state.outbox.with(Vec::is_empty)
                && removed_upto.get() == 0>
                <p class="empty">"No messages yet. Say hello!"</p>
            </Show>
            <ol class="message-list">
                // Days in UTC as the server renders them, then the reader's own once in the browser.
                <For each=move || state.timeline(hydrated.is_some_and(|h| h.get()), unread.new_since.get())
                    key=TimelineItem::key let:item>
                    {match item {
                        TimelineItem::Message(msg, run) => view! {
                            <MessageItem msg run me=state.me saved=Signal::derive(move || saved.get().flatten()) actions/>
                        }
                        .into_any(),
                        TimelineItem::Notice(n) => view! { <li class="notice">{n.text}</li> }.into_any(),
                        TimelineItem::NewSince(_) => view! {
                            <li class="new-since" id="new-since"><span>"New since you left"</span></li>
                        }
                        .into_any(),
                        TimelineItem::Day(day) => view! {
                            <li class="day"><span>{day_label(day)}</span></li>
                        }
                        .into_any(),
                    }}
                </For>
                <For each=move || state.outbox.get() key=|e| (e.client_id.clone(), e.delivery) let:entry>
                    <PendingItem entry name=Signal::derive(move || saved.get().flatten().unwrap_or_default())/>
                </For>
            </ol>
        </div>
    }
    .into_any()
}

/// Loads the page of history before the first message shown, and keeps the reader's place.
#[derive(Clone, Copy)]
pub struct OlderHistory {
    pub room: StoredValue<String>,
    pub state: RoomState,
    pub list_ref: NodeRef<html::Div>,
    pub loading: RwSignal<bool>,
}

impl OlderHistory {
    pub fn load(&self) {
        let Some(first) = self
            .state
            .messages
            .with_untracked(|m| m.first().map(|m| m.seq))
        else {
            return;
        };
        let removed = self.state.removed_upto.get_untracked();
        if first <= 1 || first <= removed + 1 || self.loading.get_untracked() {
            return;
        }
        self.loading.set(true);
        let this = *self;
        leptos::task::spawn_local(async move {
            match load_history(this.room.get_value(), Some(first)).await {
                Ok(page) => {
                    // Content added above the reader would push the view down: measure before,
                    // and after the render move the scroll position by the added height.
                    let before = this
                        .list_ref
                        .get_untracked()
                        .map(|el| (el.scroll_height(), el.scroll_top()));
                    this.state.prepend(page.messages);
                    if page.removed_upto > 0 {
                        this.state.removed_upto.set(page.removed_upto);
                    }
                    let list_ref = this.list_ref;
                    request_animation_frame(move || {
                        if let (Some(el), Some((height, top))) = (list_ref.get_untracked(), before)
                        {
                            el.set_scroll_top(top + el.scroll_height() - height);
                        }
                    });
                }
                Err(_) => this.state.notice.set(Some(
                    "Older messages could not be loaded; try again.".into(),
                )),
            }
            this.loading.set(false);
        });
    }
}

/// Whether `msg` is the reader's own: by user id for a verified reader, else by name among
/// guests' messages (before the welcome, by the name this browser keeps).
pub(crate) fn is_own(msg: &ChatMessage, me: Option<&Me>, saved: Option<&str>) -> bool {
    match me {
        Some(Me {
            user_id: Some(id), ..
        }) => msg.user_id.as_deref() == Some(id.as_str()),
        Some(me) => msg.user_id.is_none() && msg.sender == me.name,
        None => msg.user_id.is_none() && saved == Some(msg.sender.as_str()),
    }
}

#[component]
fn MessageItem(
    msg: ChatMessage,
    /// Whether it continues a run of this person's messages (their name is not repeated).
    run: bool,
    me: RwSignal<Option<Me>>,
    saved: Signal<Option<String>>,
    actions: Actions,
) -> impl IntoView {
    let is_mine = {
        let msg = msg.clone();
        Memo::new(move |_| me.with(|me| is_own(&msg, me.as_ref(), saved.get().as_deref())))
    };
    let mentioned = {
        let text = msg.text.clone();
        Memo::new(move |_| {
            let name = me
                .with(|m| m.as_ref().map(|m| m.name.clone()))
                .or_else(|| saved.get());
            !is_mine.get() && name.is_some_and(|n| crate::markup::mentions(&text, &n))
        })
    };
    let verified = msg
        .user_id
        .clone()
        .map(|id| view! { <VerifiedMark user_id=id/> });
    let hydrated = use_context::<Hydrated>().map(|h| h.0);
    let editing = RwSignal::new(false);
    let edited = msg.edited_at_ms.filter(|_| !msg.deleted).map(|at| {
        view! { <span class="edited" title=format!("Edited {}", iso_time(at))>"(edited)"</span> }
    });
    let body = {
        let msg = msg.clone();
        move || match (msg.deleted, editing.get()) {
            (true, _) => view! { <p class="text placeholder">"Message deleted"</p> }.into_any(),
            (false, true) => view! { <InlineEditor msg=msg.clone() actions editing/> }.into_any(),
            (false, false) => view! { <div class="text">{render(&msg.text)}</div> }.into_any(),
        }
    };
    let menu = {
        let msg = msg.clone();
        // Only once the page is live: without JavaScript nothing can be changed.
        move || {
            let live = hydrated.is_some_and(|h| h.get());
            live.then(|| view! { <MessageMenu msg=msg.clone() own=is_mine.get() actions editing/> })
        }
    };
    let ms = msg.sent_at_ms;
    // The server does not know the reader's time zone: it renders UTC, and the browser switches to
    // local time once it has taken over (the same text at hydration, so nothing mismatches).
    let full = move || full_time(ms, hydrated.is_some_and(|h| h.get()));
    // A tap (touch screens have no hover) shows the full date and time in place.
    let show_full = RwSignal::new(false);
    let time = move || match hydrated.map(|h| h.get()) {
        Some(true) if show_full.get() => full(),
        Some(true) => clock(ms),
        _ => format!("{} UTC", utc_clock(ms)),
    };
    view! {
        <li class="msg" class:mine=is_mine class:deleted=msg.deleted class:run=run class:mention=mentioned
            data-seq=msg.seq>
            <div class="meta">
                <span class="sender">{msg.sender}{verified}</span>
                <time datetime=iso_time(msg.sent_at_ms) title=full
                    on:click=move |_| show_full.update(|f| *f = !*f)>{time}</time>
                {edited}
                // Everything in the list is stored; on one's own messages, say so.
                <Show when=move || is_mine.get() && !msg.deleted>
                    <span class="delivery sent">"✓ Sent"</span>
                </Show>
                {menu}
            </div>
            {body}
        </li>
    }
    .into_any()
}

#[component]
fn PendingItem(entry: OutboxEntry, name: Signal<String>) -> impl IntoView {
    let (class, label) = match entry.delivery {
        Delivery::Queued => ("queued", "Waiting to send"),
        Delivery::Sending => ("sending", "Sending…"),
        Delivery::Sent => ("sent", "Sent"),
    };
    view! {
        <li class=format!("msg mine pending {class}")>
            <div class="meta">
                <span class="sender">{name}</span>
                <span class="delivery">{label}</span>
            </div>
            <div class="text">{render(&entry.text)}</div>
        </li>
    }
    .into_any()
}
