//! The session's WebSocket: writes that give up on a client that stopped reading, frames handed
//! over without copying, and errors turned into how the session ends.

use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::timeout;

use super::dialect::Frame;
use super::run::End;
use super::websocket::upgrade::Connection;
use super::websocket::{Received, WebSocket, WsError};
use app::protocol::close_code;

/// Bytes queued before they are written even without a flush: a long catch-up page is written
/// as it is made, not held whole.
const WRITE_EARLY: usize = 32 * 1024;

/// A WebSocket whose writes give up on a client that stopped reading.
pub(super) struct Socket {
    pub(super) inner: WebSocket<Connection>,
    /// How long one write may block (`--write-timeout-ms`).
    pub(super) write_timeout: Duration,
}

impl Socket {
    /// The client's next message; a ping is answered and a close echoed before it is returned.
    /// A broken protocol ends the session with the close code that says why.
    pub(super) async fn recv(&mut self) -> Result<Received, End> {
        match self.inner.recv().await {
            Ok(received @ (Received::Ping(_) | Received::Close(_))) => {
                // The pong or the echo. Boxed: rare, and this future waits in every idle
                // session's loop.
                Box::pin(self.flush()).await?;
                Ok(received)
            }
            Ok(received) => Ok(received),
            Err(error) => Err(ended_by(&error)),
        }
    }

    /// Writes `frames` (and empties the buffer) with one flush at the end.
    pub(super) async fn write_all(&mut self, frames: &mut Vec<Frame>) -> Result<(), End> {
        if frames.is_empty() {
            return Ok(());
        }
        self.feed_all(frames).await?;
        self.flush().await
    }

    /// Queues `frames` (and empties the buffer) without flushing (see [`Socket::flush`]), unless
    /// the queue has grown past [`WRITE_EARLY`].
    pub(super) async fn feed_all(&mut self, frames: &mut Vec<Frame>) -> Result<(), End> {
        for frame in frames.drain(..) {
            self.inner.queue_text(match frame {
                Frame::Owned(text) => Bytes::from(text),
                Frame::Shared(text) => text,
            });
        }
        // A catch-up page leaves the buffer large; an idle session keeps a small one.
        if frames.capacity() > 8 {
            frames.shrink_to(2);
        }
        if self.inner.queued_bytes() >= WRITE_EARLY {
            self.flush().await?;
        }
        Ok(())
    }

    pub(super) async fn flush(&mut self) -> Result<(), End> {
        timed(self.write_timeout, self.inner.flush()).await
    }

    /// Sends a ping (the protocol's own, answered by any client).
    pub(super) async fn ping(&mut self) -> Result<(), End> {
        self.inner.queue_ping();
        self.flush().await
    }

    /// The closing handshake: the close frame, then what the client sends until its own close
    /// (read and dropped: closing a socket with unread data makes the kernel reset the
    /// connection, and a reset can destroy the close frame before the client reads it).
    pub(super) async fn close(&mut self, code: u16, reason: &str, within: Duration) {
        self.inner.queue_close(code, reason);
        let closing = async {
            self.inner.flush().await?;
            while !matches!(self.inner.recv().await, Ok(Received::Close(_)) | Err(_)) {}
            Ok::<(), std::io::Error>(())
        };
        let _ = timeout(within, closing).await;
    }
}

/// How a session ends on a read error: with the close frame the protocol names, or quietly when
/// the connection is gone.
fn ended_by(error: &WsError) -> End {
    match error.close_code() {
        Some((code, reason)) => End::Close(code, reason),
        None => End::Gone,
    }
}

/// Socket output that gives up on a client that does not take it within `write_timeout`. Most
/// writes complete at once (into the socket's buffers): those make no timer, which would cost a
/// clock read, the runtime's handle and a timer entry per frame.
async fn timed(
    write_timeout: Duration,
    io: impl std::future::Future<Output = std::io::Result<()>>,
) -> Result<(), End> {
    let mut io = std::pin::pin!(io);
    let done = match futures::poll!(io.as_mut()) {
        Poll::Ready(done) => Ok(done),
        // Boxed: a timer is over a hundred bytes, and a write's future is part of every
        // session's task while it waits for something else.
        Poll::Pending => Box::pin(timeout(write_timeout, io)).await,
    };
    match done {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(close_code::TOO_SLOW, "not reading")),
    }
}
