//! Reading client frames (RFC 6455, server side) with byte bounds that hold
//! whatever the client sends.
//!
//! - The read buffer never grows past [`ReadLimits::read_buffer`] (plus
//!   one frame header): a frame whose payload is not already buffered is
//!   read straight into an allocation of exactly its length, owned by the
//!   message and freed with it.
//! - A connection waiting for its next message holds no read buffer: with
//!   nothing buffered, the read goes to the stack, and the buffer is
//!   allocated when bytes arrive.
//! - A fragmented message is assembled in one buffer that grows by
//!   doubling, capped at [`ReadLimits::max_message`], so its capacity never
//!   exceeds the limit and 1-byte fragments cost no quadratic copying.
//! - A message must arrive whole within [`ReadLimits::message_timeout`] of
//!   the moment it first had to wait for bytes: past it, reading fails with
//!   [`ReadError::TimedOut`], so a message that never ends (kept open with
//!   pongs) cannot hold its bytes forever.
//!
//! Header parsing is tungstenite's ([`FrameHeader::parse`]); what is ours is
//! the buffer policy, which tungstenite does not let a caller bound.

use std::future::{Future, poll_fn};
use std::io::{self, Cursor};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{
    CloseCode as WsCloseCode, Control, Data, OpCode,
};

/// The longest frame header a client can send (2 + 8 length + 4 mask).
const MAX_HEADER: usize = 14;
/// The most a read into an empty buffer takes, on the stack. Reads after
/// it, while a frame is incomplete, use the configured buffer's size.
const IDLE_READ: usize = 4096;

/// Size limits of the read side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadLimits {
    /// The largest frame payload.
    pub(crate) max_frame: usize,
    /// The largest message (all fragments together).
    pub(crate) max_message: usize,
    /// The read buffer's size.
    pub(crate) read_buffer: usize,
    /// How long a message may take to arrive once it had to wait for bytes.
    pub(crate) message_timeout: Duration,
}

/// One thing read from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A complete text message.
    Text(Utf8Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping, with its payload.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The client's close frame: its code and reason, if it gave one.
    Close(Option<(u16, Utf8Bytes)>),
}

/// Why reading stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stream ended without a close frame.
    Eof,
    /// The socket failed.
    Io(io::Error),
    /// A frame or message over the size limits.
    TooBig,
    /// The client broke RFC 6455.
    Protocol(&'static str),
    /// A text message or close reason that is not UTF-8.
    InvalidUtf8,
    /// A message did not arrive whole within the message timeout.
    TimedOut,
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Eof => f.write_str("the client closed the stream without a close frame"),
            Self::Io(error) => write!(f, "read failed: {error}"),
            Self::TooBig => f.write_str("frame or message over the size limit"),
            Self::Protocol(what) => write!(f, "protocol error: {what}"),
            Self::InvalidUtf8 => f.write_str("text that is not UTF-8"),
            Self::TimedOut => f.write_str("a message did not arrive within the message timeout"),
        }
    }
}

/// The frame whose payload is being read.
struct Current {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    len: usize,
    /// Where the payload goes.
    dest: Dest,
}

enum Dest {
    /// Not started: the payload may still be sliced out of the read buffer.
    Pending,
    /// An allocation of exactly the payload's length.
    Own(BytesMut),
    /// Appended to the message being assembled, from this offset.
    Assembly { start: usize },
}

/// A fragmented message being assembled.
struct Assembly {
    text: bool,
    data: Vec<u8>,
}

/// Reads client frames from `R`.
pub(crate) struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    limits: ReadLimits,
    current: Option<Current>,
    assembly: Option<Assembly>,
    /// When the data message in progress started waiting for bytes.
    started: Option<Instant>,
    /// The deadline of that message, once it has had to wait (allocated
    /// only then).
    deadline: Option<Pin<Box<Sleep>>>,
    /// Frames read for the data message in progress (fragments).
    frames: u32,
    /// Frames of the last message returned.
    last_frames: u32,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(io: R, limits: ReadLimits) -> Self {
        let limits = ReadLimits {
            read_buffer: limits.read_buffer.max(MAX_HEADER),
            ..limits
        };
        Self {
            io,
            buf: BytesMut::with_capacity(limits.read_buffer),
            limits,
            current: None,
            assembly: None,
            started: None,
            deadline: None,
            frames: 0,
            last_frames: 0,
        }
    }

    /// Bytes already read from the stream by someone else (the HTTP server,
    /// past the upgrade request), read before anything from the stream.
    pub(crate) fn prepend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// When the message in progress began to wait for the rest of its bytes,
    /// if one is in progress.
    #[cfg(test)]
    pub(crate) fn assembling_since(&self) -> Option<Instant> {
        self.started
    }

    /// How many frames the last returned data message took (1 unless it was
    /// fragmented).
    pub(crate) fn last_frames(&self) -> u32 {
        self.last_frames
    }

    /// Bytes this reader holds now: the read buffer and the message in
    /// progress.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        let current = match self.current.as_ref().map(|current| &current.dest) {
            Some(Dest::Own(bytes)) => bytes.capacity(),
            _ => 0,
        };
        let assembly = self
            .assembly
            .as_ref()
            .map_or(0, |assembly| assembly.data.capacity());
        self.buf.capacity() + current + assembly
    }

    /// The next message or control frame. Cancel-safe: all progress is kept
    /// in `self`.
    pub(crate) async fn next(&mut self) -> Result<Incoming, ReadError> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, ReadError>> {
        let polled = self.poll_frames(cx);
        if polled.is_ready() {
            return polled;
        }
        // Waiting for bytes: a message in progress has a deadline.
        let Some(started) = self.started else {
            return Poll::Pending;
        };
        let at = started + self.limits.message_timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at.into())));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(ReadError::TimedOut)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_frames(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, ReadError>> {
        loop {
            if self.current.is_none() {
                let mut cursor = Cursor::new(&self.buf[..]);
                match FrameHeader::parse(&mut cursor) {
                    Err(_) => {
                        return Poll::Ready(Err(ReadError::Protocol("malformed frame header")));
                    }
                    Ok(None) => {
                        ready!(self.poll_fill(cx))?;
                        continue;
                    }
                    Ok(Some((header, len))) => {
                        let consumed = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
                        self.buf.advance(consumed.min(self.buf.len()));
                        if let Err(error) = self.start_frame(&header, len) {
                            return Poll::Ready(Err(error));
                        }
                    }
                }
            }
            if let Some(message) = ready!(self.poll_payload(cx))? {
                return Poll::Ready(Ok(message));
            }
        }
    }

    /// Validates a header and prepares its payload's destination.
    fn start_frame(&mut self, header: &FrameHeader, len: u64) -> Result<(), ReadError> {
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(ReadError::Protocol(
                "reserved bits set without an extension",
            ));
        }
        let Some(mask) = header.mask else {
            return Err(ReadError::Protocol("client frames must be masked"));
        };
        let len = usize::try_from(len).map_err(|_| ReadError::TooBig)?;
        match header.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return Err(ReadError::Protocol("unknown opcode"));
            }
            OpCode::Control(_) => {
                if !header.is_final {
                    return Err(ReadError::Protocol("fragmented control frame"));
                }
                if len > 125 {
                    return Err(ReadError::Protocol("control frame longer than 125 bytes"));
                }
            }
            OpCode::Data(data) => {
                if len > self.limits.max_frame {
                    return Err(ReadError::TooBig);
                }
                match (data, &self.assembly) {
                    (Data::Continue, None) => {
                        return Err(ReadError::Protocol("continuation frame without a message"));
                    }
                    (Data::Continue, Some(assembly)) => {
                        if assembly.data.len().saturating_add(len) > self.limits.max_message {
                            return Err(ReadError::TooBig);
                        }
                    }
                    (_, Some(_)) => {
                        return Err(ReadError::Protocol("new message before the last one ended"));
                    }
                    (_, None) => {
                        if len > self.limits.max_message {
                            return Err(ReadError::TooBig);
                        }
                    }
                }
                self.frames = self.frames.saturating_add(1);
            }
        }
        self.current = Some(Current {
            opcode: header.opcode,
            fin: header.is_final,
            mask,
            len,
            dest: Dest::Pending,
        });
        Ok(())
    }

    /// Reads the current frame's payload; returns a message once one is
    /// complete.
    fn poll_payload(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Incoming>, ReadError>> {
        let Some(current) = self.current.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let len = current.len;
        if matches!(current.dest, Dest::Pending) {
            if let OpCode::Data(Data::Continue) = current.opcode {
                let Some(assembly) = self.assembly.as_mut() else {
                    return Poll::Ready(Err(ReadError::Protocol(
                        "continuation frame without a message",
                    )));
                };
                let start = assembly.data.len();
                reserve_bounded(&mut assembly.data, len, self.limits.max_message);
                current.dest = Dest::Assembly { start };
            } else if self.buf.len() >= len {
                // The common case: the whole frame is buffered; slice it out
                // (or, when it is all that is buffered, take the buffer: no
                // shared allocation, and nothing left to free while idle).
                let mut payload = if self.buf.len() == len {
                    std::mem::take(&mut self.buf)
                } else {
                    self.buf.split_to(len)
                };
                apply_mask(&mut payload, current.mask);
                let frame = self.current.take();
                let (opcode, fin) = frame.map_or((OpCode::Data(Data::Binary), true), |frame| {
                    (frame.opcode, frame.fin)
                });
                return Poll::Ready(self.finish(opcode, fin, payload));
            } else {
                current.dest = Dest::Own(BytesMut::with_capacity(len));
            }
        }
        // Copy what is buffered, then read the rest straight into place.
        loop {
            let filled = match &current.dest {
                Dest::Own(bytes) => bytes.len(),
                Dest::Assembly { start } => self
                    .assembly
                    .as_ref()
                    .map_or(0, |assembly| assembly.data.len() - start),
                Dest::Pending => 0,
            };
            let need = len - filled;
            if need == 0 {
                break;
            }
            if !self.buf.is_empty() {
                let take = need.min(self.buf.len());
                let chunk = self.buf.split_to(take);
                match &mut current.dest {
                    Dest::Own(bytes) => bytes.extend_from_slice(&chunk),
                    Dest::Assembly { .. } => {
                        if let Some(assembly) = self.assembly.as_mut() {
                            assembly.data.extend_from_slice(&chunk);
                        }
                    }
                    Dest::Pending => {}
                }
                continue;
            }
            if self.started.is_none() && matches!(current.opcode, OpCode::Data(_)) {
                self.started = Some(Instant::now());
            }
            let read = match &mut current.dest {
                Dest::Own(bytes) => {
                    ready!(poll_read_into(
                        Pin::new(&mut self.io),
                        cx,
                        &mut bytes.limit(need)
                    ))
                }
                Dest::Assembly { .. } => match self.assembly.as_mut() {
                    Some(assembly) => ready!(poll_read_into(
                        Pin::new(&mut self.io),
                        cx,
                        &mut (&mut assembly.data).limit(need)
                    )),
                    None => Ok(0),
                },
                Dest::Pending => Ok(0),
            }?;
            if read == 0 {
                return Poll::Ready(Err(ReadError::Eof));
            }
        }
        let Some(current) = self.current.take() else {
            return Poll::Ready(Ok(None));
        };
        match current.dest {
            Dest::Own(mut payload) => {
                apply_mask(&mut payload, current.mask);
                Poll::Ready(self.finish(current.opcode, current.fin, payload))
            }
            Dest::Assembly { start } => {
                if let Some(assembly) = self.assembly.as_mut() {
                    apply_mask(&mut assembly.data[start..], current.mask);
                }
                Poll::Ready(self.finish(current.opcode, current.fin, BytesMut::new()))
            }
            Dest::Pending => Poll::Ready(Ok(None)),
        }
    }

    /// A frame's payload is complete (and unmasked).
    fn finish(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: BytesMut,
    ) -> Result<Option<Incoming>, ReadError> {
        match opcode {
            OpCode::Control(Control::Ping) => Ok(Some(Incoming::Ping(payload.freeze()))),
            OpCode::Control(Control::Pong) => Ok(Some(Incoming::Pong(payload.freeze()))),
            OpCode::Control(Control::Close) => close_frame(payload.freeze()).map(Some),
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                Err(ReadError::Protocol("unknown opcode"))
            }
            OpCode::Data(Data::Continue) => {
                if !fin {
                    return Ok(None);
                }
                let Some(assembly) = self.assembly.take() else {
                    return Err(ReadError::Protocol("continuation frame without a message"));
                };
                self.complete(assembly.text, Bytes::from(assembly.data))
                    .map(Some)
            }
            OpCode::Data(data) => {
                let text = data == Data::Text;
                if fin {
                    return self.complete(text, payload.freeze()).map(Some);
                }
                let mut data = Vec::new();
                reserve_bounded(&mut data, payload.len(), self.limits.max_message);
                data.extend_from_slice(&payload);
                self.assembly = Some(Assembly { text, data });
                Ok(None)
            }
        }
    }

    fn complete(&mut self, text: bool, payload: Bytes) -> Result<Incoming, ReadError> {
        self.started = None;
        self.deadline = None;
        self.last_frames = std::mem::take(&mut self.frames).max(1);
        if text {
            Utf8Bytes::try_from(payload)
                .map(Incoming::Text)
                .map_err(|_| ReadError::InvalidUtf8)
        } else {
            Ok(Incoming::Binary(payload))
        }
    }

    /// Reads more bytes into the read buffer, which stays at its size.
    ///
    /// With nothing buffered, the read goes to the stack first and the
    /// buffer is allocated only once bytes arrive: a connection waiting for
    /// its next message holds no read buffer.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ReadError>> {
        if self.started.is_none() && self.assembly.is_some() {
            self.started = Some(Instant::now());
        }
        if self.buf.is_empty() {
            // Gives the allocation back (a payload sliced out of it keeps
            // its own part alive until it is dropped).
            self.buf = BytesMut::new();
            let mut stack = [MaybeUninit::<u8>::uninit(); IDLE_READ];
            let size = self.limits.read_buffer.min(IDLE_READ);
            let mut read = ReadBuf::uninit(&mut stack[..size]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            let filled = read.filled();
            if filled.is_empty() {
                return Poll::Ready(Err(ReadError::Eof));
            }
            // Exactly what arrived: a frame still incomplete grows it to the
            // read buffer's size on the next read.
            self.buf = BytesMut::from(filled);
            return Poll::Ready(Ok(()));
        }
        if self.buf.capacity() - self.buf.len() < MAX_HEADER {
            // Reuses the allocation when nothing else holds it; otherwise a
            // new one of the same size.
            self.buf.reserve(self.limits.read_buffer);
        }
        let read = ready!(poll_read_into(Pin::new(&mut self.io), cx, &mut self.buf))?;
        if read == 0 {
            return Poll::Ready(Err(ReadError::Eof));
        }
        Poll::Ready(Ok(()))
    }
}

fn poll_read_into<R: AsyncRead + Unpin, B: BufMut>(
    io: Pin<&mut R>,
    cx: &mut Context<'_>,
    buf: &mut B,
) -> Poll<io::Result<usize>> {
    tokio_util::io::poll_read_buf(io, cx, buf)
}

/// Makes room for `additional` more bytes, growing by doubling but never
/// past `max` (the caller has checked that `len + additional <= max`).
fn reserve_bounded(data: &mut Vec<u8>, additional: usize, max: usize) {
    let needed = data.len() + additional;
    if needed <= data.capacity() {
        return;
    }
    let target = needed.max(data.capacity().saturating_mul(2).min(max));
    data.reserve_exact(target - data.len());
}

/// Parses a close frame's payload: nothing, or a valid code and a UTF-8
/// reason.
fn close_frame(payload: Bytes) -> Result<Incoming, ReadError> {
    if payload.is_empty() {
        return Ok(Incoming::Close(None));
    }
    if payload.len() < 2 {
        return Err(ReadError::Protocol("close frame with a one-byte payload"));
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    if !WsCloseCode::from(code).is_allowed() {
        return Err(ReadError::Protocol("close code not allowed on the wire"));
    }
    let reason = Utf8Bytes::try_from(payload.slice(2..)).map_err(|_| ReadError::InvalidUtf8)?;
    Ok(Incoming::Close(Some((code, reason))))
}

/// Unmasks (or masks) `buf` with `mask`, eight bytes at a time.
pub(crate) fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (index, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[index % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const LIMITS: ReadLimits = ReadLimits {
        max_frame: 1024,
        max_message: 2048,
        read_buffer: 64,
        message_timeout: Duration::from_secs(60),
    };

    /// A masked client frame.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        chanx_testing::raw::frame(first & 0x80 != 0, first & 0x7F, payload)
    }

    async fn read_all(bytes: Vec<u8>, limits: ReadLimits) -> Vec<Result<Incoming, String>> {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            // Byte by byte: every split point is exercised.
            for byte in bytes {
                client.write_all(&[byte]).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(server, limits);
        let mut out = Vec::new();
        loop {
            match reader.next().await {
                Ok(message) => out.push(Ok(message)),
                Err(ReadError::Eof) => break,
                Err(error) => {
                    out.push(Err(error.to_string()));
                    break;
                }
            }
        }
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn messages_fragments_and_control_frames() {
        let mut bytes = frame(0x81, b"hello");
        bytes.extend(frame(0x89, b"p"));
        bytes.extend(frame(0x01, b"frag"));
        bytes.extend(frame(0x8A, b""));
        bytes.extend(frame(0x00, b"men"));
        bytes.extend(frame(0x80, b"ted"));
        bytes.extend(frame(0x82, &[0, 159, 146, 150]));
        bytes.extend(frame(0x81, &vec![b'x'; 300]));
        bytes.extend(frame(0x88, &[0x03, 0xE8, b'b', b'y', b'e']));
        let out = read_all(bytes, LIMITS).await;
        assert_eq!(
            out,
            vec![
                Ok(Incoming::Text("hello".into())),
                Ok(Incoming::Ping(Bytes::from_static(b"p"))),
                Ok(Incoming::Pong(Bytes::new())),
                Ok(Incoming::Text("fragmented".into())),
                Ok(Incoming::Binary(Bytes::from_static(&[0, 159, 146, 150]))),
                Ok(Incoming::Text("x".repeat(300).into())),
                Ok(Incoming::Close(Some((1000, "bye".into())))),
            ]
        );
    }

    #[tokio::test]
    async fn limits_and_protocol_errors() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (frame(0x81, &vec![b'x'; 1025]), "over the size limit"),
            (
                [
                    frame(0x01, &vec![b'x'; 1024]),
                    frame(0x00, &vec![b'x'; 1024]),
                    frame(0x80, b"x"),
                ]
                .concat(),
                "over the size limit",
            ),
            (frame(0x80, b"x"), "continuation frame without a message"),
            (
                [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
                "new message before",
            ),
            (frame(0x09, b"x"), "fragmented control frame"),
            (frame(0x89, &[0; 126]), "longer than 125"),
            (frame(0xC1, b"x"), "reserved bits"),
            (frame(0x83, b"x"), "malformed frame header"),
            (vec![0x81, 0x01, b'x'], "must be masked"),
            (frame(0x81, &[0xff, 0xfe]), "not UTF-8"),
            (frame(0x88, &[0x03]), "one-byte payload"),
            (frame(0x88, &[0x03, 0xED]), "close code not allowed"),
        ];
        for (bytes, expected) in cases {
            let out = read_all(bytes, LIMITS).await;
            let last = out.into_iter().last().unwrap().unwrap_err();
            assert!(last.contains(expected), "{last} should mention {expected}");
        }
    }

    #[tokio::test]
    async fn the_read_buffer_stays_small_after_a_large_message() {
        let limits = ReadLimits {
            max_frame: 1 << 20,
            max_message: 1 << 20,
            read_buffer: 1024,
            message_timeout: Duration::from_secs(60),
        };
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server, limits);
        let big = frame(0x81, &vec![b'y'; 1 << 20]);
        let writer = tokio::spawn(async move {
            client.write_all(&big).await.unwrap();
            client.write_all(&frame(0x81, b"small")).await.unwrap();
            client
        });
        let Incoming::Text(text) = reader.next().await.unwrap() else {
            panic!("expected text")
        };
        assert_eq!(text.len(), 1 << 20);
        drop(text);
        assert_eq!(reader.next().await.unwrap(), Incoming::Text("small".into()));
        assert!(reader.held_bytes() <= 2 * 1024, "{}", reader.held_bytes());
        let mut client = writer.await.unwrap();
        // Waiting for the next message: no read buffer at all.
        let waiting = poll_fn(|cx| Poll::Ready(reader.poll_next(cx).is_pending())).await;
        assert!(waiting);
        assert_eq!(reader.held_bytes(), 0);
        // Two messages in one read, then a header split across reads.
        let mut both = frame(0x81, b"one");
        both.extend(frame(0x81, b"two"));
        let split = frame(0x81, b"three");
        both.push(split[0]);
        client.write_all(&both).await.unwrap();
        assert_eq!(reader.next().await.unwrap(), Incoming::Text("one".into()));
        assert_eq!(reader.next().await.unwrap(), Incoming::Text("two".into()));
        client.write_all(&split[1..]).await.unwrap();
        assert_eq!(reader.next().await.unwrap(), Incoming::Text("three".into()));
        let waiting = poll_fn(|cx| Poll::Ready(reader.poll_next(cx).is_pending())).await;
        assert!(waiting);
        assert_eq!(reader.held_bytes(), 0);
    }

    #[tokio::test]
    async fn one_byte_fragments_stay_within_the_message_limit() {
        let limits = ReadLimits {
            max_frame: 1024,
            max_message: 4096,
            read_buffer: 64,
            message_timeout: Duration::from_secs(60),
        };
        let mut bytes = frame(0x01, b"a");
        for _ in 0..4094 {
            bytes.extend(frame(0x00, b"b"));
        }
        bytes.extend(frame(0x80, b"c"));
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let writer = tokio::spawn(async move { client.write_all(&bytes).await.unwrap() });
        let mut reader = FrameReader::new(server, limits);
        let Incoming::Text(text) = reader.next().await.unwrap() else {
            panic!("expected text")
        };
        assert_eq!(text.len(), 4096);
        assert_eq!(reader.last_frames(), 4096);
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_slow_message_reports_when_it_started() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server, LIMITS);
        let bytes = frame(0x81, &vec![b'z'; 500]);
        client.write_all(&bytes[..100]).await.unwrap();
        let pending =
            tokio::time::timeout(std::time::Duration::from_millis(50), reader.next()).await;
        assert!(pending.is_err());
        assert!(reader.assembling_since().is_some());
        client.write_all(&bytes[100..]).await.unwrap();
        assert!(matches!(reader.next().await.unwrap(), Incoming::Text(_)));
        assert!(reader.assembling_since().is_none());
    }

    #[tokio::test]
    async fn a_message_that_never_ends_times_out_even_between_fragments() {
        let limits = ReadLimits {
            message_timeout: Duration::from_millis(200),
            ..LIMITS
        };
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server, limits);
        // A first fragment, then pongs (which are returned) and silence.
        client.write_all(&frame(0x01, b"start")).await.unwrap();
        client.write_all(&frame(0x8A, b"")).await.unwrap();
        assert_eq!(reader.next().await.unwrap(), Incoming::Pong(Bytes::new()));
        let started = std::time::Instant::now();
        match reader.next().await {
            Err(ReadError::TimedOut) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(client);
    }

    #[test]
    fn masking_round_trips() {
        let mask = [1, 2, 3, 4];
        let original: Vec<u8> = (0..=255).collect();
        for len in [0, 1, 7, 8, 9, 255] {
            let mut data = original[..len].to_vec();
            apply_mask(&mut data, mask);
            let expected: Vec<u8> = original[..len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(data, expected);
            apply_mask(&mut data, mask);
            assert_eq!(data, &original[..len]);
        }
    }
}
