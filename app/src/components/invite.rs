//! Inviting someone to a private room: its address is its only key, so the room offers it —
//! "Copy invite link", and on phones the system share sheet. Shown only once the page is live
//! (without JavaScript neither can work; the address bar holds the link).

use leptos::prelude::*;

use crate::pages::Hydrated;

#[component]
pub fn InviteButton(room: String) -> impl IntoView {
    let hydrated = use_context::<Hydrated>().map(|h| h.0);
    let said = RwSignal::new(None::<(bool, &'static str)>);
    let room = StoredValue::new(room);
    let link = move || {
        #[cfg(feature = "hydrate")]
        let origin = crate::browser::origin().unwrap_or_default();
        #[cfg(not(feature = "hydrate"))]
        let origin = String::new();
        format!("{origin}/r/{}", room.get_value())
    };
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let copied = crate::browser::copy_text(&link()).await;
            said.set(Some(if copied {
                (true, "Invite link copied.")
            } else {
                (false, "Copying failed: copy the address bar instead.")
            }));
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = link();
    };
    let share = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            crate::browser::share("Join my private room on Palaver", &link()).await;
        });
    };
    #[cfg(feature = "hydrate")]
    let can_share = crate::browser::can_share();
    #[cfg(not(feature = "hydrate"))]
    let can_share = false;
    move || {
        hydrated.is_some_and(|h| h.get()).then(|| {
            view! {
                <div class="invite">
                    <button type="button" class="secondary pill" on:click=copy>"Copy invite link"</button>
                    {can_share.then(|| view! {
                        <button type="button" class="secondary pill" on:click=share>"Share…"</button>
                    })}
                    <span class=move || match said.get() { Some((false, _)) => "error", _ => "hint" }
                        role="status" aria-live="polite">{move || said.get().map(|(_, s)| s)}</span>
                </div>
            }
        })
    }
}
