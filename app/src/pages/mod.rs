//! The pages, one file each: home (pick a name and a room), a room (read and chat), and not
//! found. What they are built from is in [`crate::components`].

mod home;
mod not_found;
mod room;
mod signin;
mod writing;

use leptos::prelude::*;

pub use home::HomePage;
pub use not_found::NotFound;
pub use room::RoomPage;
pub use signin::SignInPage;

/// Set to true once the browser has taken over the page (provided by [`crate::App`]).
#[derive(Clone, Copy)]
pub struct Hydrated(pub RwSignal<bool>);

/// The display name this browser remembered, read after hydration (the server cannot know it).
/// `None` while unknown, `Some(None)` when there is none.
pub(crate) fn use_saved_name() -> RwSignal<Option<Option<String>>> {
    let saved = RwSignal::new(None);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        saved.set(Some(crate::browser::saved_name()));
    });
    saved
}

/// Remembers the reader's display name in this browser.
pub(crate) fn remember_name(_name: &str) {
    #[cfg(feature = "hydrate")]
    crate::browser::save_name(_name);
}
