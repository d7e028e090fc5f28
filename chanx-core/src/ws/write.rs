//! The writer task of a connection: drains its [`Outbox`] onto the socket.
//!
//! Frames are written in batches with one vectored write: headers and small
//! payloads are copied into one short buffer, larger payloads are written
//! from their shared bytes as they are (a broadcast is never copied per
//! receiver). A batch holds at most [`WriteSettings::write_buffer`] bytes of
//! payload beyond its first frame, and nothing is kept between batches.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::outbox::{Outbound, Outbox};

/// Payloads up to this size are copied next to their header, so a burst of
/// small frames is one contiguous write.
const INLINE_PAYLOAD: usize = 1024;

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Settings of the writer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteSettings {
    /// Payload bytes gathered into one write.
    pub(crate) write_buffer: usize,
    /// How long one batch may take to reach the socket.
    pub(crate) write_timeout: Duration,
}

/// Writes what `outbox` receives to `io` until the close frame is written,
/// the outbox is shut, or a write fails or times out (then `failed` is
/// cancelled).
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    mut io: W,
    outbox: Arc<Outbox>,
    settings: WriteSettings,
    failed: CancellationToken,
) {
    let vectored = io.is_write_vectored();
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
        let outcome = {
            let write = write_batch(&mut io, pong.take(), &batch, vectored);
            tokio::pin!(write);
            // Most writes complete at once: only one that has to wait for the
            // socket pays for a timer.
            tokio::select! {
                biased;
                written = &mut write => Ok(written),
                () = std::future::ready(()) => {
                    tokio::time::timeout(settings.write_timeout, write).await
                }
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
                outbox.shut();
                failed.cancel();
                return;
            }
            Err(_) => {
                tracing::info!(
                    write_timeout = ?settings.write_timeout,
                    "a write did not complete in time; dropping the connection"
                );
                outbox.shut();
                failed.cancel();
                return;
            }
        }
        if closing {
            break;
        }
    }
    outbox.release(written);
    outbox.shut();
    let _ = tokio::time::timeout(settings.write_timeout, io.shutdown()).await;
}

enum Segment<'a> {
    Head(Range<usize>),
    Body(&'a [u8]),
}

/// A single frame whose header and payload fit this buffer is written from
/// the stack.
const SMALL_FRAME: usize = 512;

/// Encodes and writes one batch.
async fn write_batch<W: AsyncWrite + Unpin>(
    io: &mut W,
    pong: Option<Bytes>,
    batch: &[Outbound],
    vectored: bool,
) -> io::Result<()> {
    if pong.is_none()
        && let [Outbound::Text(text)] = batch
        && text.len() + 10 <= SMALL_FRAME
    {
        // The common case under fan-out and echo: one small frame, one
        // write, no allocation.
        let mut buffer = [0u8; SMALL_FRAME];
        let len = small_frame(&mut buffer, OP_TEXT, text.as_bytes());
        io.write_all(&buffer[..len]).await?;
        return io.flush().await;
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
        io.write_all(&head).await?;
        return io.flush().await;
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
    if vectored && parts.len() > 1 {
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|part| IoSlice::new(part)).collect();
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

/// The size of the contiguous part of a batch.
fn estimate(pong: Option<&Bytes>, batch: &[Outbound]) -> usize {
    let pong = pong.map_or(0, |pong| 2 + pong.len());
    batch.iter().fold(pong, |total, frame| {
        total
            + 10
            + match frame {
                Outbound::Text(text) if text.len() <= INLINE_PAYLOAD => text.len(),
                Outbound::Text(_) | Outbound::Ping => 0,
                Outbound::Close(_, reason) => 2 + reason.len(),
            }
    })
}

/// Writes a final, unmasked frame into `buffer` (which must hold it);
/// returns its length.
fn small_frame(buffer: &mut [u8; SMALL_FRAME], opcode: u8, payload: &[u8]) -> usize {
    buffer[0] = 0x80 | opcode;
    let header = match u8::try_from(payload.len()) {
        Ok(short) if short < 126 => {
            buffer[1] = short;
            2
        }
        _ => {
            buffer[1] = 126;
            let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
            buffer[2..4].copy_from_slice(&len.to_be_bytes());
            4
        }
    };
    buffer[header..header + payload.len()].copy_from_slice(payload);
    header + payload.len()
}

/// A final, unmasked frame header (the server never masks).
fn frame_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if let Ok(short) = u8::try_from(len)
        && short < 126
    {
        out.push(short);
    } else if let Ok(medium) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&medium.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::CloseCode;
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    #[tokio::test]
    async fn frames_as_a_client_reads_them() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let outbox = Arc::new(Outbox::new(1 << 20));
        let failed = CancellationToken::new();
        let writer = tokio::spawn(write_loop(
            server,
            Arc::clone(&outbox),
            WriteSettings {
                write_buffer: 4096,
                write_timeout: Duration::from_secs(5),
            },
            failed.clone(),
        ));
        let big = "b".repeat(70_000);
        outbox.try_push(Outbound::Text("hi".into())).unwrap();
        outbox
            .try_push(Outbound::Text(Utf8Bytes::from(big.clone())))
            .unwrap();
        outbox.try_push(Outbound::Ping).unwrap();
        outbox.set_pong(Bytes::from_static(b"p"));
        outbox.push_close(CloseCode::GOING_AWAY, "bye".into());
        writer.await.unwrap();
        assert!(!failed.is_cancelled());

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

    #[test]
    fn small_frames_match_the_general_encoding() {
        for len in [0, 1, 125, 126, 300, SMALL_FRAME - 10] {
            let payload = vec![b'p'; len];
            let mut buffer = [0u8; SMALL_FRAME];
            let written = small_frame(&mut buffer, OP_TEXT, &payload);
            let mut expected = Vec::new();
            frame_header(&mut expected, OP_TEXT, len);
            expected.extend_from_slice(&payload);
            assert_eq!(&buffer[..written], &expected[..], "{len}");
        }
    }

    #[test]
    fn header_lengths() {
        for (len, expected) in [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let mut out = Vec::new();
            frame_header(&mut out, OP_TEXT, len);
            assert_eq!(out.len(), expected, "{len}");
        }
    }

    #[tokio::test]
    async fn a_stalled_reader_fails_the_writer_after_the_timeout() {
        let (mut client, server) = tokio::io::duplex(1024);
        let outbox = Arc::new(Outbox::new(1 << 20));
        let failed = CancellationToken::new();
        let writer = tokio::spawn(write_loop(
            server,
            Arc::clone(&outbox),
            WriteSettings {
                write_buffer: 4096,
                write_timeout: Duration::from_millis(100),
            },
            failed.clone(),
        ));
        outbox
            .try_push(Outbound::Text(Utf8Bytes::from("x".repeat(10_000))))
            .unwrap();
        writer.await.unwrap();
        assert!(failed.is_cancelled());
        assert_eq!(
            outbox.try_push(Outbound::Ping),
            Err(super::super::outbox::PushError::Closed)
        );
        let mut buf = vec![0; 2048];
        let _ = client.read(&mut buf).await;
    }
}
