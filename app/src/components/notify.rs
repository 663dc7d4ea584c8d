//! Desktop notifications for one room, opt-in: off, for mentions, or for every message — chosen
//! here (kept by the browser per room), asked of the browser only when someone chooses one, and
//! shown only while the page is hidden. When the browser refuses, the choice goes back to off
//! and the page says so.

use leptos::prelude::*;

use crate::pages::Hydrated;

/// What to be notified of in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyMode {
    Off,
    Mentions,
    All,
}

impl NotifyMode {
    const ALL: [NotifyMode; 3] = [NotifyMode::Off, NotifyMode::Mentions, NotifyMode::All];

    fn as_str(self) -> &'static str {
        match self {
            NotifyMode::Off => "off",
            NotifyMode::Mentions => "mentions",
            NotifyMode::All => "all",
        }
    }

    fn label(self) -> &'static str {
        match self {
            NotifyMode::Off => "Notify: off",
            NotifyMode::Mentions => "Notify: mentions",
            NotifyMode::All => "Notify: everything",
        }
    }

    fn parse(value: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == value)
            .unwrap_or(NotifyMode::Off)
    }
}

#[cfg(feature = "hydrate")]
fn storage_key(room: &str) -> String {
    format!("palaver.notify.{room}")
}

/// The reader's choice for `room` (off unless they chose).
#[cfg(feature = "hydrate")]
pub fn mode(room: &str) -> NotifyMode {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(&storage_key(room)).ok().flatten())
        .map_or(NotifyMode::Off, |v| NotifyMode::parse(&v))
}

#[cfg(feature = "hydrate")]
fn keep(room: &str, mode: NotifyMode) {
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(&storage_key(room), mode.as_str());
    }
}

#[component]
pub fn NotifyChoice(room: String) -> impl IntoView {
    let hydrated = use_context::<Hydrated>().map(|h| h.0);
    let chosen = RwSignal::new(NotifyMode::Off);
    let said = RwSignal::new(None::<&'static str>);
    let room = StoredValue::new(room);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| chosen.set(mode(&room.get_value())));
    let on_change = move |ev: leptos::ev::Event| {
        let wanted = NotifyMode::parse(&event_target_value(&ev));
        chosen.set(wanted);
        said.set(None);
        #[cfg(not(feature = "hydrate"))]
        let _ = room;
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            use web_sys::NotificationPermission as P;
            let room = room.get_value();
            if wanted == NotifyMode::Off {
                return keep(&room, wanted);
            }
            let permission = match crate::browser::notification_permission() {
                Some(P::Default) => crate::browser::request_notifications().await,
                other => other,
            };
            if permission == Some(P::Granted) {
                keep(&room, wanted);
            } else {
                keep(&room, NotifyMode::Off);
                chosen.set(NotifyMode::Off);
                said.set(Some(if permission.is_none() {
                    "This browser cannot show notifications."
                } else {
                    "Notifications are blocked for this site in your browser's settings."
                }));
            }
        });
    };
    move || {
        hydrated.is_some_and(|h| h.get()).then(|| {
            view! {
                <div class="notify">
                    <label class="visually-hidden" for="notify-choice">"Desktop notifications for this room"</label>
                    <select id="notify-choice" on:change=on_change>
                        {NotifyMode::ALL.into_iter().map(|m| view! {
                            <option value=m.as_str() selected=move || chosen.get() == m>{m.label()}</option>
                        }).collect_view()}
                    </select>
                    <span class="error" role="status">{move || said.get()}</span>
                </div>
            }
        })
    }
}
