//! The WebSocket protocol (RFC 6455) as a server speaks it, on the connection the HTTP upgrade
//! hands over, shaped for many long-lived, mostly idle connections that are sent the same frames:
//!
//! - **nothing is kept between frames**: no read buffer (a read lands on the stack and is kept only
//!   while a frame is incomplete) and no write buffer (frames queued for a flush are released
//!   with it), so an idle connection costs the struct and the kernel's socket;
//! - **frames are queued by reference**: a queued frame is a reference to its bytes (one encoding
//!   shared by every member of a room); a burst is copied, headers and payloads, into the worker
//!   thread's scratch buffer and written with one contiguous `write`, with no per-connection
//!   buffer (a `writev` of each frame's header and payload from where they are was measured
//!   slower: the kernel's copy from many small segments cost more than this copy).
//!
//! tungstenite, which axum's WebSocket wraps, keeps both buffers for the connection's life (its
//! write buffer as large as the largest burst, its read buffer allocated up front) and copies every
//! frame into the first. The handshake and the header format still come from tungstenite
//! ([`upgrade`] and [`read`] use its key derivation, header parser and close codes).
//!
//! What is left out on purpose: extensions (`permessage-deflate` is never agreed to, so every
//! reserved bit is an error), subprotocols, and WebSocket over HTTP/2.

mod read;
pub mod upgrade;
mod write;

use std::future::poll_fn;
use std::io;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

pub use upgrade::{NotWebSocket, Upgrade};

/// Close codes this module sends (RFC 6455 §7.4.1).
pub mod close {
    /// The client broke the protocol (an unmasked frame, a reserved bit, a bad fragment).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A message over the size limit.
    pub const TOO_BIG: u16 = 1009;
}

/// A message from the client. Pongs and pings count (a client that answers is alive); a ping is
/// answered by [`WebSocket::recv`] itself.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Text(String),
    /// A binary message; its contents are of no use to a chat and are dropped.
    Binary,
    /// A ping, with its payload (at most 125 bytes).
    Ping(Bytes),
    Pong,
    /// The client's closing handshake, with its code if it sent one.
    Close(Option<u16>),
}

/// Why reading failed. Those with a [`WsError::close_code`] deserve a close frame saying so.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("connection closed")]
    Closed,
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("message too big")]
    TooBig,
    #[error("text message is not UTF-8")]
    NotUtf8,
}

impl WsError {
    /// The close frame this error calls for (none when the connection is gone anyway).
    pub fn close_code(&self) -> Option<(u16, &'static str)> {
        match self {
            WsError::Closed | WsError::Io(_) => None,
            WsError::Protocol(why) => Some((close::PROTOCOL_ERROR, why)),
            WsError::TooBig => Some((close::TOO_BIG, "message too big")),
            WsError::NotUtf8 => Some((close::INVALID_DATA, "text is not UTF-8")),
        }
    }
}

/// The server's end of one WebSocket connection over `S` (the upgraded HTTP connection; a pipe
/// in tests).
pub struct WebSocket<S> {
    io: S,
    reader: read::Reader,
    writer: write::Writer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A connection whose messages may be at most `max_message` bytes.
    pub fn new(io: S, max_message: usize) -> Self {
        WebSocket {
            io,
            reader: read::Reader::new(max_message),
            writer: write::Writer::default(),
        }
    }

    /// The next message. Cancel-safe: what has arrived of an unfinished frame stays here.
    ///
    /// A ping is answered and a close echoed, as the protocol asks (queued for the next flush);
    /// both are also returned.
    pub async fn recv(&mut self) -> Result<Received, WsError> {
        let (reader, io) = (&mut self.reader, &mut self.io);
        let received = poll_fn(|cx| reader.poll_next(io, cx)).await?;
        match &received {
            Received::Ping(payload) => self.writer.queue_control(write::PONG, payload.clone()),
            Received::Close(code) => {
                let echo = code.map(|code| Bytes::copy_from_slice(&code.to_be_bytes()));
                self.writer
                    .queue_control(write::CLOSE, echo.unwrap_or_default());
            }
            _ => {}
        }
        Ok(received)
    }

    /// Queues a text frame; nothing is written until [`WebSocket::flush`].
    pub fn queue_text(&mut self, text: Bytes) {
        self.writer.queue_text(text);
    }

    /// Queues a ping with no payload.
    pub fn queue_ping(&mut self) {
        self.writer.queue_control(write::PING, Bytes::new());
    }

    /// Queues a close frame with `code` and `reason` (cut to fit a control frame).
    pub fn queue_close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        self.writer
            .queue_control(write::CLOSE, Bytes::from(payload));
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.writer.queued_bytes()
    }

    /// Writes everything queued. Cancel-safe: what is not yet written stays queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        let (writer, io) = (&mut self.writer, &mut self.io);
        poll_fn(|cx| writer.poll_flush(io, cx)).await
    }
}

#[cfg(test)]
mod tests;
