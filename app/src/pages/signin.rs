//! `/signin#token=…[&next=/r/room]`: exchanges a sign-in link's token for the session cookie.
//! The token travels in the fragment, so it never reaches a server log or a `Referer`; the page
//! removes it from the address bar at once, posts it to `/api/session`, and goes on to `next`.

use leptos::prelude::*;
use leptos_meta::Title;

/// Where signing in is (only the browser moves past `Working`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum Progress {
    Working,
    Done { name: String, next: String },
    Failed(String),
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let progress = RwSignal::new(Progress::Working);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            let (token, next) = crate::api::take_sign_in_fragment();
            let Some(token) = token else {
                progress.set(Progress::Failed(
                    "This sign-in link has no token. Ask for a new link.".into(),
                ));
                return;
            };
            match crate::api::sign_in(&token).await {
                Ok(viewer) => {
                    crate::pages::remember_name(&viewer.name);
                    let next = next.unwrap_or_else(|| "/".to_owned());
                    progress.set(Progress::Done {
                        name: viewer.name,
                        next: next.clone(),
                    });
                    crate::api::go(&next);
                }
                Err(e) => progress.set(Progress::Failed(e)),
            }
        });
    });
    view! {
        <Title text="Sign in"/>
        <main class="home">
            <section class="card" aria-labelledby="signin-title">
                <h1 id="signin-title" class="brand">"Palaver"</h1>
                <noscript>
                    <p class="error" role="alert">"Signing in needs JavaScript. Turn it on and open the link again."</p>
                </noscript>
                {move || match progress.get() {
                    Progress::Working => view! {
                        <p class="signin-status" role="status">"Signing you in…"</p>
                    }
                    .into_any(),
                    Progress::Done { name, next } => view! {
                        <p class="signin-status" role="status">"Signed in as " <strong>{name}</strong> "."</p>
                        <a class="button primary" href=next>"Continue"</a>
                    }
                    .into_any(),
                    Progress::Failed(message) => view! {
                        <h2 class="signin-failed">"Could not sign in"</h2>
                        <p class="error" role="alert">{message}</p>
                        <a class="button secondary" href="/">"Continue as a guest"</a>
                    }
                    .into_any(),
                }}
            </section>
        </main>
    }
}
