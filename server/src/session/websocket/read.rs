//! Reading a client's frames into messages: unmasking, reassembling fragments, and refusing what
//! the protocol forbids. A read lands in a buffer on the stack; only the part of a frame still
//! waiting for the rest of it is kept, so a connection between frames holds no read buffer.

use std::io::Cursor;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::{Received, WsError};

/// Bytes taken from the socket per read at most. On the stack, so free when idle; client frames
/// are small, a larger one takes a few reads.
const READ_CHUNK: usize = 4096;

/// A control frame's payload is at most this long (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

pub(super) struct Reader {
    /// Read and not yet made into a message: the start of a frame whose rest has not arrived.
    /// Empty, and holding no memory, whenever the reads so far ended on a frame's end.
    buf: BytesMut,
    /// A fragmented message still arriving (boxed: rare, and the reader lives in every session).
    partial: Option<Box<Partial>>,
    /// The largest message, and so frame, a client may send, in bytes.
    max_message: usize,
}

/// The fragments of a message received so far.
struct Partial {
    text: bool,
    data: BytesMut,
}

impl Reader {
    pub(super) fn new(max_message: usize) -> Self {
        Reader {
            buf: BytesMut::new(),
            partial: None,
            max_message,
        }
    }

    /// What the buffer holds allocated (none between frames).
    #[cfg(test)]
    pub(super) fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next message: from what is buffered, else from reads until one is complete.
    pub(super) fn poll_next<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Received, WsError>> {
        loop {
            if let Some(received) = self.next_buffered()? {
                return Poll::Ready(Ok(received));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut *io).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Err(WsError::Closed));
            }
            self.buf.extend_from_slice(read.filled());
        }
    }

    /// A message made of the frames buffered, if they complete one.
    fn next_buffered(&mut self) -> Result<Option<Received>, WsError> {
        loop {
            let Some((header, payload)) = self.next_frame()? else {
                return Ok(None);
            };
            if let Some(received) = self.take_frame(header, payload)? {
                return Ok(Some(received));
            }
        }
    }

    /// The next whole frame in the buffer, unmasked.
    fn next_frame(&mut self) -> Result<Option<(FrameHeader, BytesMut)>, WsError> {
        let mut cursor = Cursor::new(&self.buf[..]);
        let Some((header, len)) = FrameHeader::parse(&mut cursor)
            .map_err(|_| WsError::Protocol("malformed frame header"))?
        else {
            return Ok(None);
        };
        let header_len = cursor.position() as usize;
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= self.max_message)
            .ok_or(WsError::TooBig)?;
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WsError::Protocol("reserved bit set"));
        }
        let Some(mask) = header.mask else {
            return Err(WsError::Protocol("unmasked frame from a client"));
        };
        // Nothing is set aside for the rest before it arrives: a client that announces a large
        // frame and sends nothing more holds only what it sent.
        if self.buf.len() < header_len + len {
            return Ok(None);
        }
        self.buf.advance(header_len);
        let mut payload = self.buf.split_to(len);
        if self.buf.is_empty() {
            // Let go of the allocation (the payload keeps its part until it is dropped).
            self.buf = BytesMut::new();
        }
        unmask(&mut payload, mask);
        Ok(Some((header, payload)))
    }

    /// What a frame adds: a whole message, a control message, or a fragment kept for later.
    fn take_frame(
        &mut self,
        header: FrameHeader,
        payload: BytesMut,
    ) -> Result<Option<Received>, WsError> {
        let text = match header.opcode {
            OpCode::Control(control) => return control_message(control, &header, payload),
            OpCode::Data(Data::Text) => true,
            OpCode::Data(Data::Binary) => false,
            OpCode::Data(Data::Continue) => {
                let Some(mut partial) = self.partial.take() else {
                    return Err(WsError::Protocol("continuation without a message"));
                };
                if partial.data.len() + payload.len() > self.max_message {
                    return Err(WsError::TooBig);
                }
                partial.data.extend_from_slice(&payload);
                if !header.is_final {
                    self.partial = Some(partial);
                    return Ok(None);
                }
                return message(partial.text, partial.data).map(Some);
            }
            OpCode::Data(Data::Reserved(_)) => return Err(WsError::Protocol("reserved opcode")),
        };
        if self.partial.is_some() {
            return Err(WsError::Protocol("new message inside a fragmented one"));
        }
        if header.is_final {
            return message(text, payload).map(Some);
        }
        self.partial = Some(Box::new(Partial {
            text,
            data: payload,
        }));
        Ok(None)
    }
}

/// A ping, pong or close (which may come between a message's fragments).
fn control_message(
    control: Control,
    header: &FrameHeader,
    payload: BytesMut,
) -> Result<Option<Received>, WsError> {
    if !header.is_final || payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(WsError::Protocol("fragmented or oversized control frame"));
    }
    match control {
        Control::Ping => Ok(Some(Received::Ping(payload.freeze()))),
        Control::Pong => Ok(Some(Received::Pong)),
        Control::Close => close_message(&payload).map(Some),
        Control::Reserved(_) => Err(WsError::Protocol("reserved opcode")),
    }
}

/// A close frame: no payload, or a code the protocol allows and a UTF-8 reason.
fn close_message(payload: &[u8]) -> Result<Received, WsError> {
    match payload {
        [] => Ok(Received::Close(None)),
        [_] => Err(WsError::Protocol("close frame of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !CloseCode::from(code).is_allowed() {
                return Err(WsError::Protocol("close code not allowed"));
            }
            std::str::from_utf8(reason).map_err(|_| WsError::NotUtf8)?;
            Ok(Received::Close(Some(code)))
        }
    }
}

/// A complete data message.
fn message(text: bool, data: BytesMut) -> Result<Received, WsError> {
    if !text {
        return Ok(Received::Binary);
    }
    String::from_utf8(Vec::from(data))
        .map(Received::Text)
        .map_err(|_| WsError::NotUtf8)
}

/// Undoes the client's masking (RFC 6455 §5.3).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}
