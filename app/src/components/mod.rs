//! What the pages are built from: the room header, the message list, the composer and name
//! prompt, the account bar and refusals, the room's settings, moderation, and the one error
//! card.

mod account;
mod actions;
mod composer;
mod error_card;
mod header;
mod invite;
mod mention;
mod messages;
mod moderate;
mod name;
mod notify;
mod settings;
mod typing;

pub use account::{AccountBar, ReadOnlyNote, StoppedNotice, VerifiedMark};
pub use actions::Actions;
pub use composer::{Composer, NamePrompt};
pub use error_card::ErrorCard;
pub use header::RoomHeader;
pub use invite::InviteButton;
pub use messages::{MessageList, OlderHistory};
pub use moderate::{Moderation, ModerationPanel, ModerationStatus};
pub use name::GuestName;
pub use notify::NotifyChoice;
#[cfg(feature = "hydrate")]
pub use notify::{mode as notify_mode, NotifyMode};
pub use settings::RoomSettings;
pub use typing::TypingLine;
