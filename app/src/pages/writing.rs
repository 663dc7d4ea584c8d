//! What is under a room's messages: the composer, the name prompt for someone who came by a
//! link, a note for readers who may not post, or why the server refused the reader.

use leptos::prelude::*;

use crate::account::Account;
use crate::chat::{RoomConnection, RoomState, Stop};
use crate::components::{Composer, NamePrompt, ReadOnlyNote, StoppedNotice};
use crate::protocol::ErrorCode;

/// What is under the messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Writing {
    Composer,
    /// A guest arrived by a link and has no name yet.
    NamePrompt,
    /// The reader may read but not post; `guest` says whether signing in would help.
    ReadOnly {
        guest: bool,
    },
    /// The server refused the reader: why, above a composer that keeps what they write.
    Stopped(Stop),
}

/// Which of [`Writing`] applies now. A memo, so that a reconnect (a new welcome) does not build
/// the composer again under the reader's fingers.
pub(super) fn writing_mode(
    state: RoomState,
    saved: RwSignal<Option<Option<String>>>,
    guest_page: bool,
    page_can_post: bool,
) -> Writing {
    if let Some(stop) = state.stopped.get() {
        return Writing::Stopped(stop);
    }
    if matches!(saved.get(), Some(None)) {
        return Writing::NamePrompt;
    }
    // The server's word once welcomed; the page's until then.
    let (can_post, guest) = state.me.with(|me| match me {
        Some(me) => (me.can_post, me.user_id.is_none()),
        None => (page_can_post, guest_page),
    });
    if can_post {
        Writing::Composer
    } else {
        Writing::ReadOnly { guest }
    }
}

pub(super) fn writing(
    mode: Writing,
    state: RoomState,
    saved: RwSignal<Option<Option<String>>>,
    account: Account,
    connection: StoredValue<Option<RoomConnection>>,
    at_bottom: RwSignal<bool>,
) -> AnyView {
    match mode {
        Writing::Composer => view! { <Composer state connection at_bottom/> }.into_any(),
        Writing::NamePrompt => view! { <NamePrompt saved/> }.into_any(),
        Writing::ReadOnly { guest } => view! { <ReadOnlyNote account guest/> }.into_any(),
        Writing::Stopped(stop) if stop.code == ErrorCode::NameTaken => view! {
            <div class="writing">
                <p class="error name-taken" role="alert">{stop.message}</p>
                <NamePrompt saved/>
            </div>
        }
        .into_any(),
        Writing::Stopped(stop) => view! {
            <div class="writing">
                <StoppedNotice stop account state connection/>
                <Composer state connection at_bottom/>
            </div>
        }
        .into_any(),
    }
}
