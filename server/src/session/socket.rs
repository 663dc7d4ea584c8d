//! The session's WebSocket: writes that give up on a client that stopped reading, and frames
//! handed over without copying.

use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
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
        let socket = &mut self.inner;
        let feeding = async move {
            for frame in frames.drain(..) {
                let text = match frame {
                    Frame::Owned(text) => Utf8Bytes::from(text),
                    Frame::Shared(text) => text,
                };
                socket.feed(Message::Text(text)).await?;
            }
            Ok(())
        };
        timed(self.write_timeout, feeding).await
    }

    pub(super) async fn flush(&mut self) -> Result<(), End> {
        timed(self.write_timeout, self.inner.flush()).await
    }

    /// Writes one frame of the WebSocket protocol itself (a ping).
    pub(super) async fn write(&mut self, msg: Message) -> Result<(), End> {
        timed(self.write_timeout, self.inner.send(msg)).await
    }
}

/// Socket output that gives up on a client that does not take it within `write_timeout`. Most
/// writes complete at once (into the socket's buffers): those make no timer, which would cost a
/// clock read, the runtime's handle and a timer entry per frame.
async fn timed(
    write_timeout: Duration,
    io: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), End> {
    let mut io = std::pin::pin!(io);
    let done = match futures::poll!(io.as_mut()) {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => timeout(write_timeout, io).await,
    };
    match done {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(close_code::TOO_SLOW, "not reading")),
    }
}
