//! Palaver's user interface and everything the browser and the server share.
//!
//! - [`protocol`]: the typed WebSocket frames (`ClientMsg`, `ServerMsg`).
//! - [`account`]: who is reading (sign-in mode, the verified person), shared with the server.
//! - [`limits`]: the rules for room names, display names and message text.
//! - [`markup`]: message text as shown: a safe Markdown subset and links.
//! - [`pages`]: the routes (`/` and `/r/<room>`), rendered on the server and hydrated in the
//!   browser, built from [`components`].
//! - [`chat`]: the client side of a room connection (state, outbox, reconnects).
//! - [`history`]: the server function pages load history with, and the server's side of it.
//! - [`recent`]: rooms this browser visited lately (home page).
//! - [`rules`]: a room's access rules (who reads, who posts, who owns it).
//! - [`moderation`]: mutes, bans, kicks and the audit log, shared with the server.
//! - [`time`]: how times are shown.
//! - `security` (server only): the Content-Security-Policy pages are served with.

// Release builds (no `erase_components`) type whole views; the room header nests deeply.
#![recursion_limit = "256"]

pub mod account;
pub mod chat;
mod components;
pub mod history;
pub mod limits;
pub mod markup;
pub mod moderation;
mod pages;
pub mod protocol;
pub mod recent;
pub mod rules;
#[cfg(feature = "ssr")]
pub mod security;
pub mod time;

#[cfg(feature = "hydrate")]
mod api;
#[cfg(feature = "hydrate")]
mod browser;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Meta, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The HTML document around the app; the server renders it for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // Only ever rendered on the server, where the response's nonce is known.
    #[cfg(feature = "ssr")]
    let policy = security::page_policy(&options);
    #[cfg(not(feature = "ssr"))]
    let policy: Option<String> = None;
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                // Before any script, so it covers them all.
                {policy.map(|policy| view! { <meta http-equiv="Content-Security-Policy" content=policy/> })}
                <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                // With hashed file names (release builds), so they can be cached forever.
                <HashedStylesheet options=options.clone() id="leptos"/>
                // Without JavaScript, what needs it is not shown (an external sheet: the CSP
                // allows no inline styles).
                <noscript><link rel="stylesheet" href="/noscript.css"/></noscript>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The root component: routes and page-wide metadata.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser, after hydration: mark the page as interactive (tests and
    // CSS can wait for it).
    let hydrated = RwSignal::new(false);
    provide_context(pages::Hydrated(hydrated));
    Effect::new(move |_| {
        hydrated.set(true);
        #[cfg(feature = "hydrate")]
        browser::mark_hydrated();
    });
    view! {
        <Title formatter=|text: String| if text.is_empty() { "Palaver".to_owned() } else { format!("{text} · Palaver") }/>
        <Meta name="description" content="Palaver: real-time chat rooms."/>
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/") view=pages::HomePage/>
                <Route path=path!("/signin") view=pages::SignInPage/>
                // Async: the whole page, history included, is rendered before it is sent, so it
                // reads fine without JavaScript.
                <Route path=path!("/r/:room") view=pages::RoomPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
