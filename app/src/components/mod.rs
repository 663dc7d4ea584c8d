//! What the pages are built from: the room header, the message list, the composer and name
//! prompt, and the one error card.

mod composer;
mod error_card;
mod header;
mod messages;

pub use composer::{Composer, NamePrompt};
pub use error_card::ErrorCard;
pub use header::RoomHeader;
pub use messages::{MessageList, OlderHistory};
