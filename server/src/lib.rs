//! Palaver's server as a library: the binary (`main.rs`) parses settings and calls
//! [`Server::start`]; tests start the same server on port 0. docs/ARCHITECTURE.md follows one
//! message through these modules.
//!
//! - [`server`]: wiring — open the engine, build the shared state, listen, shut down.
//! - [`config`]: every setting and its default, and the Leptos site settings.
//! - [`commands`]: `server token`, `server revoke`, `server rules`, `server backup`/`restore`;
//!   [`transfer`]: `server export`/`import`.
//! - [`auth`]: signed tokens, the session cookie, revocations, rooms' rules.
//! - [`web`]: the router, pages' history, health, metrics, static files and headers.
//! - [`session`]: one WebSocket connection: admission, the run loop, catch-up, the dialects.
//! - [`registry`]: room name -> running room task.
//! - [`room`]: one task per room that owns its state (the hub).
//! - [`engine`]: history, and what nodes sharing an engine share (SQLite, Redis).
//! - [`guard`]: client addresses, Origin, connection caps, the rate limit.
//! - [`metrics`]: what `/metrics` counts.
//! - [`redact`]: what logs may say about a room.

pub mod auth;
pub mod commands;
pub mod config;
pub mod engine;
pub mod guard;
pub mod metrics;
pub mod redact;
pub mod registry;
pub mod room;
pub mod server;
pub mod session;
pub mod transfer;
pub mod web;

pub use server::{Server, StartError, Stopper};
