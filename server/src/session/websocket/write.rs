//! Writing frames: a queue of references to payloads. A write copies the frames' headers and
//! payloads, in order, into a scratch buffer owned by the worker thread (not by the connection)
//! and hands the kernel one contiguous slice: a `writev` of a header and a payload per frame made
//! the kernel's copy from the segments a tenth of the server's time on bursts of small frames
//! (`_copy_from_iter`; 1% in the ceiling, which copies into one buffer as this does). The queue
//! goes back to the thread's spares when a flush empties it, so a connection keeps no write
//! buffer between bursts.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;

/// First header bytes (FIN set, RFC 6455 §5.2) of the frames a server sends.
pub(super) const TEXT: u8 = 0x81;
pub(super) const CLOSE: u8 = 0x88;
pub(super) const PING: u8 = 0x89;
pub(super) const PONG: u8 = 0x8A;

/// Bytes handed to one `write` at most (the scratch buffer's size).
const WRITE_CHUNK: usize = 64 * 1024;

thread_local! {
    /// Each worker thread's scratch buffer for [`Writer::poll_write_some`]: it holds bytes only
    /// during one call (a partial write is counted in the queue and copied again), so it is
    /// shared by every connection the thread serves.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };

    /// Emptied queues, kept by the worker thread for the next connection that queues a frame:
    /// a queue is taken at a burst's first frame and given back by its flush, so neither an idle
    /// connection holds one nor a burst costs allocations as its queue grows.
    static SPARE_QUEUES: RefCell<Vec<Vec<(u8, Bytes)>>> = const { RefCell::new(Vec::new()) };
}

/// Spare queues a worker thread keeps, and the most frames a kept one has room for (a longer
/// burst's queue is freed: a rare catch-up should not leave a large queue behind).
const SPARE_QUEUES_KEPT: usize = 32;
const SPARE_QUEUE_FRAMES: usize = 128;

/// A queue from the thread's spares, or a new one.
fn take_queue() -> Vec<(u8, Bytes)> {
    SPARE_QUEUES
        .with(|spares| spares.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .unwrap_or_else(|| Vec::with_capacity(16))
}

/// Gives an emptied queue back to the thread's spares (or frees it).
fn give_back(mut queue: Vec<(u8, Bytes)>) {
    queue.clear();
    if queue.capacity() > SPARE_QUEUE_FRAMES {
        return;
    }
    SPARE_QUEUES.with(|spares| {
        if let Ok(mut spares) = spares.try_borrow_mut() {
            if spares.len() < SPARE_QUEUES_KEPT {
                spares.push(queue);
            }
        }
    });
}

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
        if self.queue.capacity() == 0 {
            self.queue = take_queue();
        }
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
        give_back(std::mem::take(&mut self.queue));
        self.written_frames = 0;
        self.written_bytes = 0;
        Poll::Ready(Ok(()))
    }

    /// One write of what is left (up to [`WRITE_CHUNK`] bytes), copied into the thread's
    /// scratch buffer as one contiguous slice.
    fn poll_write_some<S: AsyncWrite + Unpin>(
        &self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        SCRATCH.with(|scratch| {
            // Not borrowed elsewhere: the write below calls no code of ours.
            let Ok(mut buf) = scratch.try_borrow_mut() else {
                return Poll::Ready(Err(io::Error::other("write scratch buffer in use")));
            };
            buf.clear();
            buf.reserve(WRITE_CHUNK);
            // Only the first frame may be partly written.
            let mut skip = self.written_bytes;
            'frames: for (first, payload) in &self.queue[self.written_frames..] {
                let mut header = [0u8; MAX_HEADER];
                let header_len = self::header(*first, payload.len(), &mut header);
                for part in [&header[..header_len], &payload[..]] {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    let part = &part[skip..];
                    skip = 0;
                    let room = WRITE_CHUNK - buf.len();
                    buf.extend_from_slice(&part[..part.len().min(room)]);
                    if buf.len() == WRITE_CHUNK {
                        break 'frames;
                    }
                }
            }
            Pin::new(&mut *io).poll_write(cx, &buf)
        })
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
