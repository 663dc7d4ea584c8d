//! The session's WebSocket: writes that give up on a client that stopped reading, and frames
//! handed over without copying.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures::SinkExt;
use tokio::time::timeout;

use super::dialect::Frame;
use super::run::End;
use app::protocol::close_code;

/// A WebSocket whose writes give up on a client that stopped reading.
pub(super) struct Socket {
    pub(super) inner: WebSocket,
    /// How long one write may block (`--write-timeout-ms`).
    pub(super) write_timeout: Duration,
}

impl Socket {
    pub(super) async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        self.inner.recv().await
    }

    /// Writes `frames` (and empties the buffer) with one flush at the end.
    pub(super) async fn write_all(&mut self, frames: &mut Vec<Frame>) -> Result<(), End> {
        if frames.is_empty() {
            return Ok(());
        }
        self.feed_all(frames).await?;
        self.flush().await
    }

    /// Queues `frames` (and empties the buffer) without flushing (see [`Socket::flush`]).
    pub(super) async fn feed_all(&mut self, frames: &mut Vec<Frame>) -> Result<(), End> {
        for frame in frames.drain(..) {
            let text = match frame {
                Frame::Owned(text) => Utf8Bytes::from(text),
                Frame::Shared(text) => shared_text(text),
            };
            timed(self.write_timeout, self.inner.feed(Message::Text(text))).await?;
        }
        Ok(())
    }

    pub(super) async fn flush(&mut self) -> Result<(), End> {
        timed(self.write_timeout, self.inner.flush()).await
    }

    /// Writes one frame of the WebSocket protocol itself (a ping).
    pub(super) async fn write(&mut self, msg: Message) -> Result<(), End> {
        timed(self.write_timeout, self.inner.send(msg)).await
    }
}

/// A frame shared by every session, as the socket's text type without copying it (the bytes
/// are the `Arc<str>`'s own; only their UTF-8 is checked).
fn shared_text(frame: Arc<str>) -> Utf8Bytes {
    Utf8Bytes::try_from(Bytes::from_owner(ArcStr(frame)))
        .unwrap_or_else(|_| Utf8Bytes::from_static(""))
}

/// `Arc<str>` as bytes, for [`Bytes::from_owner`].
struct ArcStr(Arc<str>);

impl AsRef<[u8]> for ArcStr {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Socket output that gives up on a client that does not take it within `write_timeout`.
async fn timed(
    write_timeout: Duration,
    io: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), End> {
    match timeout(write_timeout, io).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(close_code::TOO_SLOW, "not reading")),
    }
}
