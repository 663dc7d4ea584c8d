//! The pages: home (pick a name and a room) and a room (read and chat).

use leptos::{ev, html, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::chat::{ConnState, Delivery, OutboxEntry, RoomConnection, RoomState, TimelineItem};
use crate::history::{load_history, HistoryPage};
use crate::limits::{validate_display_name, RoomName, MAX_DISPLAY_NAME_CHARS};
use crate::protocol::{ChatMessage, Seq};

/// The display name this browser remembered, read after hydration (the server cannot know it).
/// `None` while unknown, `Some(None)` when there is none.
fn use_saved_name() -> RwSignal<Option<Option<String>>> {
    let saved = RwSignal::new(None);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        saved.set(Some(crate::browser::saved_name()));
    });
    saved
}

fn remember_name(_name: &str) {
    #[cfg(feature = "hydrate")]
    crate::browser::save_name(_name);
}

#[component]
pub fn HomePage() -> impl IntoView {
    let saved = use_saved_name();
    let name = RwSignal::new(String::new());
    let room = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    // Fill the name field once the remembered name is known.
    Effect::new(move |_| {
        if let Some(Some(n)) = saved.get() {
            if name.get_untracked().is_empty() {
                name.set(n);
            }
        }
    });
    let navigate = use_navigate();

    let go = move |room_id: Result<RoomName, String>| {
        let display = match validate_display_name(&name.get_untracked()) {
            Ok(n) => n,
            Err(e) => return error.set(Some(e.to_string())),
        };
        let room = match room_id {
            Ok(r) => r,
            Err(e) => return error.set(Some(e)),
        };
        remember_name(&display);
        navigate(&format!("/r/{room}"), Default::default());
    };
    let go_public = go.clone();
    let on_join = move |ev: ev::SubmitEvent| {
        ev.prevent_default();
        go_public(RoomName::parse(&room.get_untracked()).map_err(|e| e.to_string()));
    };
    let on_private = move |_| {
        #[cfg(feature = "hydrate")]
        let id = crate::browser::private_room_id()
            .and_then(|id| RoomName::parse(&id).ok())
            .ok_or_else(|| "This browser cannot make a secure random id.".to_owned());
        #[cfg(not(feature = "hydrate"))]
        let id = Err(String::new());
        go(id);
    };

    view! {
        <Title text=""/>
        <main class="home">
            <section class="card" aria-labelledby="home-title">
                <h1 id="home-title" class="brand">"Palaver"</h1>
                <p class="tagline">"Real-time chat rooms. Nothing lost, nothing twice."</p>
                <form class="stack" on:submit=on_join novalidate>
                    <label for="display-name">"Your name"</label>
                    <input id="display-name" name="name" autocomplete="nickname" required
                        maxlength=MAX_DISPLAY_NAME_CHARS.to_string() placeholder="e.g. Ada"
                        prop:value=move || name.get()
                        on:input=move |ev| { name.set(event_target_value(&ev)); error.set(None); }/>
                    <label for="room-name">"Room"</label>
                    <input id="room-name" name="room" required autocapitalize="none" spellcheck="false"
                        placeholder="e.g. general"
                        prop:value=move || room.get()
                        on:input=move |ev| { room.set(event_target_value(&ev)); error.set(None); }/>
                    <p class="hint">"Letters, digits, - and _; up to 32. Spaces become -."</p>
                    <p class="error" role="alert" aria-live="assertive">{move || error.get()}</p>
                    <button type="submit" class="primary">"Join room"</button>
                </form>
                <div class="divider" role="separator"><span>"or"</span></div>
                <button type="button" class="secondary" on:click=on_private>"Create a private room"</button>
                <p class="hint">"A private room has an unguessable link. Share it to invite people."</p>
            </section>
        </main>
    }
}

#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let room = move || params.read().get("room").map(|r| RoomName::parse(&r));
    move || match room() {
        Some(Ok(room)) => view! { <Room room/> }.into_any(),
        _ => view! {
            <Title text="Not a room"/>
            <main class="home">
                <section class="card">
                    <h1>"That is not a room name"</h1>
                    <p>"Room names use letters, digits, - and _, up to 32 characters."</p>
                    <a class="button primary" href="/">"Choose a room"</a>
                </section>
            </main>
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
                            <main class="home">
                                <section class="card" role="alert">
                                    <h1>"This room is unavailable right now"</h1>
                                    <p>"Its history could not be read. Reload the page in a moment."</p>
                                    <a class="button primary" href="">"Reload"</a>
                                </section>
                            </main>
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
    let title = if room.is_private() {
        "Private room".to_owned()
    } else {
        format!("#{room}")
    };

    // Connect once the name is known; reconnect under a new name if it changes.
    let connection = StoredValue::new(None::<RoomConnection>);
    let room_id = room.to_string();
    let connect_room = room_id.clone();
    Effect::new(move |_| {
        if let Some(Some(name)) = saved.get() {
            if let Some(old) = connection.get_value() {
                old.close();
            }
            connection.set_value(Some(RoomConnection::open(
                state,
                connect_room.clone(),
                name,
            )));
        }
    });
    on_cleanup(move || {
        if let Some(c) = connection.try_get_value().flatten() {
            c.close();
        }
    });

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
        room: StoredValue::new(room_id),
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
    // Follow new messages only when the reader is already at the bottom; otherwise count them.
    // Keyed on the last sequence number, so older pages added at the top do not count.
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

    view! {
        <Title text=title.clone()/>
        <div class="room">
            <RoomHeader title=title.clone() state/>
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

#[component]
fn RoomHeader(title: String, state: RoomState) -> impl IntoView {
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

#[component]
fn MessageList(
    state: RoomState,
    saved: RwSignal<Option<Option<String>>>,
    list_ref: NodeRef<html::Div>,
    on_scroll: impl FnMut(ev::Event) + 'static,
    older: OlderHistory,
    room_label: String,
) -> impl IntoView {
    let first_seq = move || state.messages.with(|m| m.first().map(|m| m.seq));
    view! {
        <div class="messages" node_ref=list_ref on:scroll=on_scroll tabindex="0"
            role="log" aria-label="Messages" aria-live="polite" aria-relevant="additions">
            {move || match first_seq() {
                Some(seq) if seq > 1 => view! {
                    <button type="button" class="load-older secondary" on:click=move |_| older.load()
                        disabled=move || older.loading.get()>
                        {move || if older.loading.get() { "Loading older messages…" } else { "Load older messages" }}
                    </button>
                }
                .into_any(),
                Some(_) => view! { <p class="beginning">"This is the beginning of " {room_label.clone()} "."</p> }.into_any(),
                None => ().into_any(),
            }}
            <Show when=move || state.messages.with(Vec::is_empty) && state.outbox.with(Vec::is_empty)>
                <p class="empty">"No messages yet. Say hello!"</p>
            </Show>
            <ol class="message-list">
                <For each=move || state.timeline() key=TimelineItem::key let:item>
                    {match item {
                        TimelineItem::Message(msg) => view! {
                            <MessageItem msg mine=Signal::derive(move || saved.get().flatten())/>
                        }
                        .into_any(),
                        TimelineItem::Notice(n) => view! { <li class="notice">{n.text}</li> }.into_any(),
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
struct OlderHistory {
    room: StoredValue<String>,
    state: RoomState,
    list_ref: NodeRef<html::Div>,
    loading: RwSignal<bool>,
}

impl OlderHistory {
    fn load(&self) {
        let Some(first) = self
            .state
            .messages
            .with_untracked(|m| m.first().map(|m| m.seq))
        else {
            return;
        };
        if first <= 1 || self.loading.get_untracked() {
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

#[component]
fn MessageItem(msg: ChatMessage, mine: Signal<Option<String>>) -> impl IntoView {
    let is_mine = {
        let sender = msg.sender.clone();
        Memo::new(move |_| mine.get().as_deref() == Some(sender.as_str()))
    };
    let hydrated = use_context::<Hydrated>().map(|h| h.0);
    let ms = msg.sent_at_ms;
    // The server does not know the reader's time zone: it renders UTC, and the browser switches to
    // local time once it has taken over (the same text at hydration, so nothing mismatches).
    let time = move || match hydrated.map(|h| h.get()) {
        Some(true) => clock(ms),
        _ => format!("{} UTC", utc_clock(ms)),
    };
    view! {
        <li class="msg" class:mine=is_mine data-seq=msg.seq>
            <div class="meta">
                <span class="sender">{msg.sender}</span>
                <time datetime=iso_time(msg.sent_at_ms)>{time}</time>
                // Everything in the list is stored; on one's own messages, say so.
                <Show when=move || is_mine.get()>
                    <span class="delivery sent">"✓ Sent"</span>
                </Show>
            </div>
            <p class="text">{msg.text}</p>
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
            <p class="text">{entry.text}</p>
        </li>
    }
    .into_any()
}

/// Asks for a display name when someone opens a room link without one.
#[component]
fn NamePrompt(saved: RwSignal<Option<Option<String>>>) -> impl IntoView {
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
fn Composer(
    state: RoomState,
    connection: StoredValue<Option<RoomConnection>>,
    at_bottom: RwSignal<bool>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let submit = move || {
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
    let on_keydown = move |ev: ev::KeyboardEvent| {
        // Enter sends; Shift+Enter is a new line; never interrupt an IME composition.
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        }
    };
    let notice = move || error.get().or_else(|| state.notice.get());
    view! {
        <form class="composer" on:submit=on_submit>
            <label class="visually-hidden" for="composer-input">"Message"</label>
            <div class="row">
                <textarea id="composer-input" rows="1" placeholder="Write a message…"
                    aria-describedby="composer-hint composer-notice"
                    prop:value=move || text.get()
                    on:input=move |ev| { text.set(event_target_value(&ev)); error.set(None); }
                    on:keydown=on_keydown></textarea>
                <button type="submit" class="primary">"Send"</button>
            </div>
            <p id="composer-notice" class="error" role="alert">{notice}</p>
            <p id="composer-hint" class="hint keys">"Enter sends · Shift+Enter adds a line"</p>
        </form>
    }
    .into_any()
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <main class="home">
            <section class="card">
                <h1>"Page not found"</h1>
                <a class="button primary" href="/">"Go home"</a>
            </section>
        </main>
    }
}

/// Set to true once the browser has taken over the page (provided by [`crate::App`]).
#[derive(Clone, Copy)]
pub struct Hydrated(pub RwSignal<bool>);

/// `HH:MM` of a timestamp in the reader's local time (UTC where there is no browser).
fn clock(ms: i64) -> String {
    #[cfg(feature = "hydrate")]
    {
        crate::browser::local_clock(ms)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        utc_clock(ms)
    }
}

/// `HH:MM` of a timestamp in UTC.
fn utc_clock(ms: i64) -> String {
    let minutes_of_day = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes_of_day / 60, minutes_of_day % 60)
}

/// RFC 3339 UTC time for the `datetime` attribute.
fn iso_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date; Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_time_formats_utc() {
        assert_eq!(super::iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(super::iso_time(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
