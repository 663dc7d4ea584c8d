//! One WebSocket connection to one room, whatever protocol the client speaks:
//!
//! - `admission.rs`: the door (room name, upgrade, Origin, connection caps) and its one error
//!   type, [`admission::Refused`];
//! - `run.rs`: the session's life — join, enter, catch up, then follow the room live in one
//!   `select!` loop — independent of the protocol; `requests.rs` handles what the client asks
//!   (posts, roster pages) and `live.rs` the room's deliveries;
//! - `identity.rs`: who the person is and what the room's rules let them do; `changes.rs`: edits
//!   and deletes; `standing.rs`: mutes and bans;
//! - `catch_up.rs`: stored messages the session has not written, read by sequence number;
//! - `dialect.rs`: the [`Dialect`] trait each protocol implements: [`palaver`], the native
//!   protocol, and [`edge_chat`], the edge-chat demo's. Each dialect's frames are encoded in its
//!   own file and nowhere else;
//! - `socket.rs`: writes with a timeout over [`websocket`], the protocol itself (the handshake,
//!   frames read into no kept buffer, shared frames written without copying).

pub mod admission;
mod catch_up;
mod changes;
mod clock;
pub mod dialect;
pub mod edge_chat;
mod identity;
mod live;
pub mod palaver;
mod requests;
mod run;
mod signals;
mod socket;
mod standing;
pub mod websocket;

use std::time::Duration;

pub use admission::{upgrade, Refused};
pub use dialect::Dialect;

/// Timeouts and limits every session shares (from `Config`).
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// How often the server pings; keeps proxies from closing idle connections.
    pub ping_interval: Duration,
    /// A client heard from (any frame, pong included) less recently than this is dropped.
    pub peer_timeout: Duration,
    /// How long one write may block before the client counts as not reading.
    pub write_timeout: Duration,
    /// Posts awaiting their commit per connection; beyond this the session stops reading its
    /// socket, so a flooding client is slowed by TCP instead of buffered.
    pub max_pending: usize,
    /// How long after sending its author may edit or delete a message (`--edit-window-secs`).
    pub edit_window: Duration,
}
