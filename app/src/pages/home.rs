//! The home page: pick a name, then join a public room by name or create a private one.

use leptos::{ev, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use super::{remember_name, use_saved_name};
use crate::account::load_account;
use crate::components::AccountBar;
use crate::limits::{validate_display_name, RoomName, MAX_DISPLAY_NAME_CHARS};

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
            .ok_or_else(|| "This browser cannot make a secure random id.".to_owned())
            .inspect(|room| {
                // Its holder is the room's owner (a signed-in creator owns it by account).
                crate::api::new_owner_key(room.as_str());
            });
        #[cfg(not(feature = "hydrate"))]
        let id = Err(String::new());
        go(id);
    };

    let account = Resource::new_blocking(|| (), |_| load_account());
    let verified = RwSignal::new(false);
    let account_bar = move || {
        Suspend::new(async move {
            let account = account.await.unwrap_or_default();
            if let Some(viewer) = &account.viewer {
                // Signed in: the name is the account's.
                name.set(viewer.name.clone());
                verified.set(true);
            }
            view! { <AccountBar account/> }
        })
    };
    view! {
        <Title text=""/>
        <main class="home">
            <section class="card" aria-labelledby="home-title">
                <Suspense>{account_bar}</Suspense>
                <h1 id="home-title" class="brand">"Palaver"</h1>
                <p class="tagline">"Real-time chat rooms. Nothing lost, nothing twice."</p>
                <form class="stack" on:submit=on_join novalidate>
                    <label for="display-name">"Your name"</label>
                    <input id="display-name" name="name" autocomplete="nickname" required
                        maxlength=MAX_DISPLAY_NAME_CHARS.to_string() placeholder="e.g. Ada"
                        readonly=move || verified.get() aria-describedby="name-hint"
                        prop:value=move || name.get()
                        on:input=move |ev| { name.set(event_target_value(&ev)); error.set(None); }/>
                    <p id="name-hint" class="hint">
                        {move || verified.get().then_some("Your name comes from your account.")}
                    </p>
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
                <RecentRooms/>
            </section>
        </main>
    }
}

/// The rooms this browser visited lately (known only after hydration: they are kept in the
/// browser).
#[component]
fn RecentRooms() -> impl IntoView {
    let visits = RwSignal::new(Vec::<crate::recent::Visit>::new());
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| visits.set(crate::recent::load()));
    move || {
        let list = visits.get();
        (!list.is_empty()).then(|| {
            view! {
                <nav class="recent" aria-labelledby="recent-title">
                    <h2 id="recent-title">"Recent rooms"</h2>
                    <ul>
                        {list.into_iter().map(|v| {
                            let label = match crate::limits::RoomName::parse(&v.room) {
                                Ok(name) if name.is_private() => "Private room".to_owned(),
                                _ => format!("#{}", v.room),
                            };
                            let when = crate::time::clock(v.at_ms);
                            view! {
                                <li><a href=format!("/r/{}", v.room)>{label}</a>
                                    <span class="hint">" · " {when}</span></li>
                            }
                        }).collect_view()}
                    </ul>
                </nav>
            }
        })
    }
}
