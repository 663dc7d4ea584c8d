//! Writing frames: a queue of references to payloads, written by vectored writes with each
//! frame's header (2 to 10 bytes, made on the stack) beside its payload. The queue is released
//! when a flush empties it, so a connection keeps no write buffer between bursts.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;

/// First header bytes (FIN set, RFC 6455 §5.2) of the frames a server sends.
pub(super) const TEXT: u8 = 0x81;
pub(super) const CLOSE: u8 = 0x88;
pub(super) const PING: u8 = 0x89;
pub(super) const PONG: u8 = 0x8A;

/// Frames handed to one `writev` at most (two slices each: header and payload).
const FRAMES_PER_WRITE: usize = 64;

/// The longest header of a server frame (no mask): 1 + 1 + 8 bytes.
const MAX_HEADER: usize = 10;

#[derive(Default)]
pub(super) struct Writer {
    /// Frames to write, in order: the first header byte and the payload.
    queue: Vec<(u8, Bytes)>,
    /// How many frames at the front of `queue` are written...
    written_frames: usize,
    /// ...and how many bytes of the next one.
    written_bytes: usize,
    /// Bytes queued and not yet written, headers included.
    queued_bytes: usize,
}

impl Writer {
    pub(super) fn queue_text(&mut self, payload: Bytes) {
        self.push(TEXT, payload);
    }

    pub(super) fn queue_control(&mut self, first: u8, payload: Bytes) {
        self.push(first, payload);
    }

    fn push(&mut self, first: u8, payload: Bytes) {
        self.queued_bytes += frame_len(payload.len());
        self.queue.push((first, payload));
    }

    pub(super) fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Frames the queue has room for (none between flushes).
    #[cfg(test)]
    pub(super) fn queue_capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// Writes the queue, then releases it.
    pub(super) fn poll_flush<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.written_frames < self.queue.len() {
            let written = ready!(self.poll_write_some(io, cx))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(written);
        }
        ready!(Pin::new(&mut *io).poll_flush(cx))?;
        self.queue = Vec::new();
        self.written_frames = 0;
        self.written_bytes = 0;
        Poll::Ready(Ok(()))
    }

    /// One vectored write of what is left, up to [`FRAMES_PER_WRITE`] frames.
    fn poll_write_some<S: AsyncWrite + Unpin>(
        &self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let pending = &self.queue[self.written_frames..];
        let pending = &pending[..pending.len().min(FRAMES_PER_WRITE)];
        let mut headers = [[0u8; MAX_HEADER]; FRAMES_PER_WRITE];
        let mut header_lens = [0usize; FRAMES_PER_WRITE];
        for (i, (first, payload)) in pending.iter().enumerate() {
            header_lens[i] = header(*first, payload.len(), &mut headers[i]);
        }
        let mut slices = [IoSlice::new(&[]); 2 * FRAMES_PER_WRITE];
        let mut count = 0;
        // Only the first frame may be partly written.
        let mut skip = self.written_bytes;
        for (i, (_, payload)) in pending.iter().enumerate() {
            let header = &headers[i][..header_lens[i]];
            for part in [header, &payload[..]] {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                slices[count] = IoSlice::new(&part[skip..]);
                count += 1;
                skip = 0;
            }
        }
        Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count])
    }

    /// Counts `written` bytes off the front of the queue.
    fn advance(&mut self, mut written: usize) {
        self.queued_bytes = self.queued_bytes.saturating_sub(written);
        while written > 0 {
            let Some((_, payload)) = self.queue.get_mut(self.written_frames) else {
                return;
            };
            let left = frame_len(payload.len()) - self.written_bytes;
            if written < left {
                self.written_bytes += written;
                return;
            }
            written -= left;
            // Written: let go of it now (a shared frame is freed when its last reader is done).
            *payload = Bytes::new();
            self.written_frames += 1;
            self.written_bytes = 0;
        }
    }
}

/// Writes a server frame's header for a payload of `len` bytes; returns its length.
fn header(first: u8, len: usize, out: &mut [u8; MAX_HEADER]) -> usize {
    out[0] = first;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// A frame's length on the wire.
fn frame_len(len: usize) -> usize {
    let header = match len {
        0..126 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    header + len
}
