//! Who the reader is, shown plainly: the account bar (signed in as whom, or a guest, with sign-in
//! and sign-out), the mark on verified names, and what the page says when the server will not
//! let the reader in or post.

use leptos::prelude::*;

use crate::account::{Account, SignIn};
use crate::chat::{RoomConnection, RoomState, Stop};
use crate::protocol::ErrorCode;

/// The mark after a verified person's name.
#[component]
pub fn VerifiedMark(#[prop(into)] user_id: String) -> impl IntoView {
    view! {
        <span class="verified" role="img" aria-label="verified"
            title=format!("Verified account ({user_id})")>"✓"</span>
    }
}

/// Signed in as whom (and sign out), or a guest (and where to sign in). Nothing when the server
/// has sign-in off.
#[component]
pub fn AccountBar(account: Account) -> impl IntoView {
    if account.mode == SignIn::Off {
        return ().into_any();
    }
    let error = RwSignal::new(None::<String>);
    let sign_out = move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::api::sign_out().await {
                Ok(()) => crate::api::reload(),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let who = match account.viewer {
        Some(viewer) => view! {
            <span class="who"><span class="visually-hidden">"Signed in as "</span>
                {viewer.name}<VerifiedMark user_id=viewer.user_id/></span>
            <button type="button" class="link" on:click=sign_out>"Sign out"</button>
        }
        .into_any(),
        None => view! {
            <span class="who guest">"Guest"</span>
            {account.signin_url.map(|url| view! { <a class="link" href=url>"Sign in"</a> })}
        }
        .into_any(),
    };
    view! {
        <div class="account" aria-label="Your account">
            {who}
            <span class="error" role="alert">{move || error.get()}</span>
        </div>
    }
    .into_any()
}

/// Where a signed-out reader signs in: the server's sign-in page, or words saying how.
fn sign_in_hint(account: &Account) -> AnyView {
    match account.signin_url.clone() {
        Some(url) => view! {
            <a class="button primary" href=url target="_blank" rel="noopener">"Sign in (new tab)"</a>
        }
        .into_any(),
        None => view! { <span class="hint">"Open your sign-in link, then try again."</span> }.into_any(),
    }
}

/// Instead of the composer when the server refused the reader: why, and what to do.
#[component]
pub fn StoppedNotice(
    stop: Stop,
    account: Account,
    state: RoomState,
    connection: StoredValue<Option<RoomConnection>>,
) -> impl IntoView {
    let retry = move |_| {
        if let Some(c) = connection.get_value() {
            c.retry();
        }
    };
    let signing_in = matches!(
        stop.code,
        ErrorCode::SignInRequired | ErrorCode::SignInExpired
    ) || (stop.code == ErrorCode::Forbidden && account.viewer.is_none());
    let waiting = move || state.outbox.with(|o| !o.is_empty());
    // Where guests may chat, an expired sign-in need not stop anyone: sign out and go on.
    let as_guest = (stop.code == ErrorCode::SignInExpired && account.mode == SignIn::Optional)
        .then(|| {
            let go_on = move |_| {
                #[cfg(feature = "hydrate")]
                leptos::task::spawn_local(async move {
                    if crate::api::sign_out().await.is_ok() {
                        crate::api::reload();
                    }
                });
            };
            view! { <button type="button" class="secondary" on:click=go_on>"Continue as a guest"</button> }
        });
    view! {
        <section class="composer stopped" aria-labelledby="stopped-title">
            <h2 id="stopped-title" class="visually-hidden">"Not connected"</h2>
            <p class="error" role="alert">{stop.message}</p>
            <Show when=waiting>
                <p class="hint">"What you wrote is kept here and is sent once you are back in."</p>
            </Show>
            <div class="row actions">
                {signing_in.then(|| sign_in_hint(&account))}
                <button type="button" class="secondary" on:click=retry>"Try again"</button>
                {as_guest}
            </div>
        </section>
    }
}

/// Instead of the composer when the reader may read but not post here.
#[component]
pub fn ReadOnlyNote(account: Account, guest: bool) -> impl IntoView {
    let text = if guest && account.mode != SignIn::Off {
        "You are reading as a guest. Sign in to post here."
    } else {
        "You can read this room; only some people may post in it."
    };
    view! {
        <section class="composer read-only" aria-label="Posting">
            <p class="hint" role="note">{text}</p>
            {(guest && account.mode != SignIn::Off).then(|| sign_in_hint(&account))}
        </section>
    }
}
