//! The writer task of a connection: drains its [`Outbox`] onto the socket.
//!
//! Frames are written in batches with one vectored write: headers and small
//! payloads are copied into one short buffer, larger payloads are written
//! from their shared bytes as they are (a broadcast is never copied per
//! receiver). A batch holds at most [`WriteSettings::write_buffer`] bytes of
//! payload beyond its first frame, and nothing is kept between batches.
//! (On TCP, frames sent while the writer is idle go out at once from the
//! sender; see [`Outbox`].)

use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

use super::encode::{OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, SMALL_FRAME, frame_header, small_frame};
use super::outbox::{Outbound, Outbox};

/// Payloads up to this size are copied next to their header, so a burst of
/// small frames is one contiguous write.
const INLINE_PAYLOAD: usize = 1024;

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteSettings {
    /// Payload bytes gathered into one write.
    pub(crate) write_buffer: usize,
    /// How long one batch may take to reach the socket.
    pub(crate) write_timeout: Duration,
}

/// Where the writer writes.
pub(crate) enum Sink {
    /// A TCP socket's write half, shared with the outbox for writes made at
    /// once.
    Tcp(Arc<OwnedWriteHalf>),
    /// Any other byte stream.
    Io(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Sink {
    /// Writes every part, in order.
    async fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        match self {
            Self::Tcp(socket) => {
                let stream = (**socket).as_ref();
                let mut slices: Vec<IoSlice<'_>> =
                    parts.iter().map(|part| IoSlice::new(part)).collect();
                let mut slices = slices.as_mut_slice();
                while !slices.is_empty() {
                    match stream.try_write_vectored(slices) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(written) => IoSlice::advance_slices(&mut slices, written),
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                            stream.writable().await?;
                        }
                        Err(error) => return Err(error),
                    }
                }
                Ok(())
            }
            Self::Io(io) => {
                if parts.len() > 1 && io.is_write_vectored() {
                    let mut slices: Vec<IoSlice<'_>> =
                        parts.iter().map(|part| IoSlice::new(part)).collect();
                    let mut slices = slices.as_mut_slice();
                    while !slices.is_empty() {
                        let written = io.write_vectored(slices).await?;
                        if written == 0 {
                            return Err(io::ErrorKind::WriteZero.into());
                        }
                        IoSlice::advance_slices(&mut slices, written);
                    }
                } else {
                    for part in parts {
                        io.write_all(part).await?;
                    }
                }
                io.flush().await
            }
        }
    }

    /// Ends the write direction (TCP: once the outbox gives back its share
    /// of the socket, dropping the last one shuts it down).
    async fn finish(self, timeout: Duration) {
        match self {
            Self::Tcp(socket) => drop(socket),
            Self::Io(mut io) => {
                let _ = tokio::time::timeout(timeout, io.shutdown()).await;
            }
        }
    }
}

/// Writes what `outbox` receives to `sink` until the close frame is
/// written, the outbox is shut, or a write fails or times out (then
/// `failed` is raised).
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice in the future"
)]
pub(crate) fn write_loop(
    mut sink: Sink,
    outbox: Arc<Outbox>,
    settings: WriteSettings,
    failed: Arc<crate::connection::flag::Flag>,
) -> impl Future<Output = ()> + Send {
    async move {
        let mut batch = Vec::new();
        let mut pong = None;
        let mut written = 0;
        loop {
            let taken = poll_fn(|cx| {
                outbox.poll_batch(
                    cx,
                    &mut written,
                    &mut batch,
                    &mut pong,
                    settings.write_buffer,
                )
            })
            .await;
            let Some(taken) = taken else { break };
            let closing = matches!(batch.last(), Some(Outbound::Close(..)));
            let outcome = match write_at_once(&sink, pong.as_ref(), &batch) {
                Ok(SmallWrite::Done) => Ok(Ok(())),
                Err(error) => Ok(Err(error)),
                // Boxed: the writer's future, held for the connection's whole
                // life, does not carry the state of a write that has to
                // wait, nor its timer (about 600 bytes per connection).
                Ok(started) => {
                    Box::pin(write_in_time(
                        &mut sink,
                        pong.take(),
                        &batch,
                        started,
                        settings.write_timeout,
                    ))
                    .await
                }
            };
            written = taken;
            batch.clear();
            if batch.capacity() > 16 {
                batch = Vec::new();
            }
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::debug!(%error, "write failed");
                    drop(outbox.shut());
                    failed.raise();
                    return;
                }
                Err(_) => {
                    tracing::info!(
                        write_timeout = ?settings.write_timeout,
                        "a write did not complete in time; dropping the connection"
                    );
                    drop(outbox.shut());
                    failed.raise();
                    return;
                }
            }
            if closing {
                break;
            }
        }
        outbox.release(written);
        drop(outbox.shut());
        Box::pin(sink.finish(settings.write_timeout)).await;
    }
}

enum Segment<'a> {
    Head(Range<usize>),
    Body(&'a [u8]),
}

/// What writing one small frame at once achieved.
enum SmallWrite {
    /// All of it is on the socket.
    Done,
    /// The encoded bytes the socket did not take yet.
    Rest(Vec<u8>),
    /// Not a small frame, or not a TCP socket: the general path writes it.
    NotTried,
}

/// Encodes a small text frame on the stack and writes what the TCP socket
/// takes at once.
fn small_now(sink: &Sink, text: &[u8]) -> io::Result<SmallWrite> {
    let Sink::Tcp(socket) = sink else {
        return Ok(SmallWrite::NotTried);
    };
    let mut buffer = [0u8; SMALL_FRAME];
    let Some(len) = small_frame(&mut buffer, OP_TEXT, text) else {
        return Ok(SmallWrite::NotTried);
    };
    let written = match (**socket).as_ref().try_write(&buffer[..len]) {
        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
        Ok(written) => written,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(error) => return Err(error),
    };
    Ok(if written == len {
        SmallWrite::Done
    } else {
        SmallWrite::Rest(buffer[written..len].to_vec())
    })
}

/// The common case: a batch of one small frame, on TCP, written with one
/// non-blocking write and no allocation, by a plain function (so the
/// writer's future does not carry the encoding buffer).
fn write_at_once(sink: &Sink, pong: Option<&Bytes>, batch: &[Outbound]) -> io::Result<SmallWrite> {
    match (pong, batch) {
        (None, [Outbound::Text(text)]) => small_now(sink, text.as_bytes()),
        _ => Ok(SmallWrite::NotTried),
    }
}

/// [`write_batch`] within `timeout`. Most writes complete at once: only one
/// that has to wait for the socket pays for a timer.
async fn write_in_time(
    sink: &mut Sink,
    pong: Option<Bytes>,
    batch: &[Outbound],
    started: SmallWrite,
    timeout: Duration,
) -> Result<io::Result<()>, tokio::time::error::Elapsed> {
    let write = write_batch(sink, pong, batch, started);
    tokio::pin!(write);
    tokio::select! {
        biased;
        written = &mut write => Ok(written),
        () = std::future::ready(()) => tokio::time::timeout(timeout, write).await,
    }
}

/// Encodes and writes one batch, or the rest of one that [`write_at_once`]
/// `started`.
async fn write_batch(
    sink: &mut Sink,
    pong: Option<Bytes>,
    batch: &[Outbound],
    started: SmallWrite,
) -> io::Result<()> {
    if let SmallWrite::Rest(rest) = started {
        return sink.write_parts(&[&rest]).await;
    }
    let mut head = Vec::with_capacity(estimate(pong.as_ref(), batch));
    let mut segments = Vec::new();
    let mut from = 0;
    if let Some(pong) = &pong {
        frame_header(&mut head, OP_PONG, pong.len());
        head.extend_from_slice(pong);
    }
    for frame in batch {
        match frame {
            Outbound::Text(text) => {
                frame_header(&mut head, OP_TEXT, text.len());
                if text.len() <= INLINE_PAYLOAD {
                    head.extend_from_slice(text.as_bytes());
                } else {
                    segments.push(Segment::Head(from..head.len()));
                    segments.push(Segment::Body(text.as_bytes()));
                    from = head.len();
                }
            }
            Outbound::Rest(rest_head, rest_payload) => {
                head.extend_from_slice(rest_head);
                if !rest_payload.is_empty() {
                    segments.push(Segment::Head(from..head.len()));
                    segments.push(Segment::Body(rest_payload));
                    from = head.len();
                }
            }
            Outbound::Ping => frame_header(&mut head, OP_PING, 0),
            Outbound::Close(code, reason) => {
                frame_header(&mut head, OP_CLOSE, 2 + reason.len());
                head.extend_from_slice(&code.as_u16().to_be_bytes());
                head.extend_from_slice(reason.as_bytes());
            }
        }
    }
    if segments.is_empty() {
        // Everything is inline: one contiguous write.
        return sink.write_parts(&[&head]).await;
    }
    if from < head.len() {
        segments.push(Segment::Head(from..head.len()));
    }
    let parts: Vec<&[u8]> = segments
        .iter()
        .map(|segment| match segment {
            Segment::Head(range) => &head[range.clone()],
            Segment::Body(bytes) => *bytes,
        })
        .collect();
    sink.write_parts(&parts).await
}

/// The size of the contiguous part of a batch.
fn estimate(pong: Option<&Bytes>, batch: &[Outbound]) -> usize {
    let pong = pong.map_or(0, |pong| 2 + pong.len());
    batch.iter().fold(pong, |total, frame| {
        total
            + 10
            + match frame {
                Outbound::Text(text) if text.len() <= INLINE_PAYLOAD => text.len(),
                Outbound::Text(_) | Outbound::Ping => 0,
                Outbound::Rest(head, _) => head.len(),
                Outbound::Close(_, reason) => 2 + reason.len(),
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::CloseCode;
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    fn spawn_writer(
        io: Sink,
        outbox: &Arc<Outbox>,
        timeout: Duration,
    ) -> (
        tokio::task::JoinHandle<()>,
        Arc<crate::connection::flag::Flag>,
    ) {
        let failed = Arc::new(crate::connection::flag::Flag::default());
        let writer = tokio::spawn(write_loop(
            io,
            Arc::clone(outbox),
            WriteSettings {
                write_buffer: 4096,
                write_timeout: timeout,
            },
            Arc::clone(&failed),
        ));
        (writer, failed)
    }

    /// Server frames: final, unmasked.
    fn parse(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            assert_eq!(bytes[0] & 0xF0, 0x80, "final, no reserved bits");
            let opcode = bytes[0] & 0x0F;
            let (len, header) = match bytes[1] {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                127 => (
                    usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().unwrap())).unwrap(),
                    10,
                ),
                short => (usize::from(short), 2),
            };
            out.push((opcode, bytes[header..header + len].to_vec()));
            bytes = &bytes[header + len..];
        }
        out
    }

    #[tokio::test]
    async fn frames_as_a_client_reads_them() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let outbox = Arc::new(Outbox::new(1 << 20));
        let (writer, failed) =
            spawn_writer(Sink::Io(Box::new(server)), &outbox, Duration::from_secs(5));
        let big = "b".repeat(70_000);
        outbox.try_push(Outbound::Text("hi".into())).unwrap();
        outbox
            .try_push(Outbound::Text(Utf8Bytes::from(big.clone())))
            .unwrap();
        outbox.try_push(Outbound::Ping).unwrap();
        outbox.set_pong(Bytes::from_static(b"p"));
        outbox.push_close(CloseCode::GOING_AWAY, "bye".into());
        writer.await.unwrap();
        assert!(!failed.is_raised());
        let mut bytes = Vec::new();
        let mut client = client;
        client.read_to_end(&mut bytes).await.unwrap();
        let frames = parse(&bytes);
        let texts: Vec<usize> = frames
            .iter()
            .filter(|(opcode, _)| *opcode == OP_TEXT)
            .map(|(_, payload)| payload.len())
            .collect();
        assert_eq!(texts, vec![2, 70_000]);
        assert!(
            frames
                .iter()
                .any(|(opcode, payload)| *opcode == OP_PING && payload.is_empty())
        );
        assert!(
            frames
                .iter()
                .any(|(opcode, payload)| *opcode == OP_PONG && payload == b"p")
        );
        let (opcode, close) = frames.last().unwrap();
        assert_eq!(*opcode, OP_CLOSE);
        assert_eq!(close, &[0x03, 0xE9, b'b', b'y', b'e']);
    }

    /// Over TCP, with frames written at once by senders and queued ones
    /// written by the task, in any mix: the client reads every frame whole
    /// and in order.
    #[tokio::test]
    async fn tcp_frames_arrive_whole_and_in_order_whoever_writes_them() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read, write) = server.into_split();
        let socket = Arc::new(write);
        let outbox = Arc::new(Outbox::with_socket(64 << 20, Arc::clone(&socket)));
        let (writer, failed) = spawn_writer(Sink::Tcp(socket), &outbox, Duration::from_secs(20));
        let reader = tokio::spawn(async move {
            let mut bytes = Vec::new();
            // Read slowly at first, so the socket fills and frames queue.
            tokio::time::sleep(Duration::from_millis(200)).await;
            client.read_to_end(&mut bytes).await.unwrap();
            bytes
        });
        let sizes: Vec<usize> = (0..400)
            .map(|index| [8, 600, 70_000, 200_000][index % 4])
            .collect();
        for (index, size) in sizes.iter().enumerate() {
            let text = Outbound::Text(Utf8Bytes::from(format!(
                "{index:08}{}",
                "z".repeat(size - 8)
            )));
            // Alternate the two ways in: a fan-out's write-at-once, and the
            // queue.
            if index % 2 == 0 {
                let mut text = Some(text);
                loop {
                    let Some(frame) = text.take() else { break };
                    match outbox.try_push_deferred(frame) {
                        Ok(Some(waker)) => waker.wake(),
                        Ok(None) => {}
                        Err(super::super::outbox::PushError::Full) => {
                            // Not queued: rebuild it and try again later.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            text = Some(Outbound::Text(Utf8Bytes::from(format!(
                                "{index:08}{}",
                                "z".repeat(sizes[index] - 8)
                            ))));
                            continue;
                        }
                        Err(error) => panic!("{error:?}"),
                    }
                }
            } else {
                outbox.push(text).await.unwrap();
            }
        }
        outbox.push_close(CloseCode::NORMAL, Utf8Bytes::from_static(""));
        writer.await.unwrap();
        assert!(!failed.is_raised());
        let frames = parse(&reader.await.unwrap());
        assert_eq!(frames.len(), sizes.len() + 1);
        for (index, ((opcode, payload), size)) in frames.iter().zip(&sizes).enumerate() {
            assert_eq!(*opcode, OP_TEXT);
            assert_eq!(payload.len(), *size);
            assert_eq!(&payload[..8], format!("{index:08}").as_bytes());
        }
        assert_eq!(frames.last().unwrap().0, OP_CLOSE);
    }

    #[tokio::test]
    async fn a_stalled_reader_fails_the_writer_after_the_timeout() {
        let (mut client, server) = tokio::io::duplex(1024);
        let outbox = Arc::new(Outbox::new(1 << 20));
        let (writer, failed) = spawn_writer(
            Sink::Io(Box::new(server)),
            &outbox,
            Duration::from_millis(100),
        );
        outbox
            .try_push(Outbound::Text(Utf8Bytes::from("x".repeat(10_000))))
            .unwrap();
        writer.await.unwrap();
        assert!(failed.is_raised());
        assert_eq!(
            outbox.try_push(Outbound::Ping),
            Err(super::super::outbox::PushError::Closed)
        );
        let mut buf = vec![0; 2048];
        let _ = client.read(&mut buf).await;
    }
}
