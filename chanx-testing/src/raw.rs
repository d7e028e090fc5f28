//! A raw WebSocket client for adversarial tests: it writes whatever frames
//! it is told to (pings, fragments, floods, broken frames), over real TCP,
//! and reads only when asked. Frames are masked as a client's must be,
//! unless you write bytes yourself with [`RawClient::write_raw`].
//!
//! ```no_run
//! use chanx_testing::raw::{RawClient, opcode};
//! # async fn run(addr: std::net::SocketAddr) -> std::io::Result<()> {
//! let mut client = RawClient::connect(addr, "/ws/system", &[]).await?;
//! client.send_frame(true, opcode::PING, b"are you there").await?;
//! let closed = client.read_until_close(std::time::Duration::from_secs(5)).await?;
//! # let _ = closed;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// WebSocket opcodes.
pub mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// A close frame.
    pub const CLOSE: u8 = 0x8;
    /// A ping.
    pub const PING: u8 = 0x9;
    /// A pong.
    pub const PONG: u8 = 0xA;
}

/// One frame from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// The opcode.
    pub opcode: u8,
    /// Whether the FIN bit was set.
    pub fin: bool,
    /// The payload.
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The payload as text (lossy).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// How the server ended the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The close code, if the server sent a close frame with one.
    pub code: Option<u16>,
    /// The close reason.
    pub reason: String,
    /// The frames that came before the close.
    pub frames: Vec<ServerFrame>,
}

/// The server answered the upgrade with something other than 101.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// The whole response as read.
    pub response: String,
}

/// A client that writes raw frames.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// A masked client frame: FIN bit, opcode, payload.
#[must_use]
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(index, byte)| byte ^ mask[index % 4]),
    );
    out
}

/// The upgrade request for `path_and_query` with `headers` added.
#[must_use]
pub fn upgrade_request(path_and_query: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

impl RawClient {
    /// Opens a TCP connection and upgrades `path_and_query` with `headers`
    /// added to the request.
    ///
    /// # Errors
    ///
    /// The connection fails, or the server does not answer 101 (the error
    /// carries a [`Refused`] as its inner error).
    pub async fn connect(
        addr: SocketAddr,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> io::Result<Self> {
        Self::upgrade(addr, &upgrade_request(path_and_query, headers))
            .await?
            .map_err(|refused| {
                io::Error::other(format!("HTTP {}: {}", refused.status, refused.response))
            })
    }

    /// Sends `request` (a whole HTTP request head) and reads the response
    /// head: a client on 101, the refusal otherwise.
    ///
    /// # Errors
    ///
    /// The connection fails or the response is not HTTP.
    pub async fn upgrade(addr: SocketAddr, request: &str) -> io::Result<Result<Self, Refused>> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await {
                Ok(Ok(1)) => head.push(byte[0]),
                Ok(Ok(_)) => break,
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err(io::ErrorKind::TimedOut.into()),
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|status| status.parse::<u16>().ok())
            .ok_or_else(|| io::Error::other(format!("not an HTTP response: {text:?}")))?;
        if status != 101 {
            let mut rest = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
            return Ok(Err(Refused {
                status,
                response: format!("{text}{}", String::from_utf8_lossy(&rest)),
            }));
        }
        Ok(Ok(Self {
            stream,
            buffer: Vec::new(),
        }))
    }

    /// Writes one masked frame.
    ///
    /// # Errors
    ///
    /// The write fails (the server closed the connection, for example).
    pub async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&frame(fin, opcode, payload)).await
    }

    /// Writes a text message in one frame.
    ///
    /// # Errors
    ///
    /// The write fails.
    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send_frame(true, opcode::TEXT, text.as_bytes()).await
    }

    /// Writes bytes as they are.
    ///
    /// # Errors
    ///
    /// The write fails.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads the next frame from the server, waiting at most `wait`;
    /// `Ok(None)` when the stream ended.
    ///
    /// # Errors
    ///
    /// The read fails or `wait` passes ([`io::ErrorKind::TimedOut`]).
    pub async fn read_frame(&mut self, wait: Duration) -> io::Result<Option<ServerFrame>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.parse_frame() {
                return Ok(Some(frame));
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?;
            match read {
                Ok(0) => return Ok(None),
                Ok(count) => self.buffer.extend_from_slice(&chunk[..count]),
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => return Ok(None),
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads frames until the server's close frame (or the end of the
    /// stream), waiting at most `wait` in all.
    ///
    /// # Errors
    ///
    /// The read fails or `wait` passes.
    pub async fn read_until_close(&mut self, wait: Duration) -> io::Result<Closed> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read_frame(left).await? {
                None => {
                    return Ok(Closed {
                        code: None,
                        reason: String::new(),
                        frames,
                    });
                }
                Some(frame) if frame.opcode == opcode::CLOSE => {
                    let code = (frame.payload.len() >= 2)
                        .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                    let reason =
                        String::from_utf8_lossy(frame.payload.get(2..).unwrap_or_default())
                            .into_owned();
                    return Ok(Closed {
                        code,
                        reason,
                        frames,
                    });
                }
                Some(frame) => frames.push(frame),
            }
        }
    }

    /// The TCP stream, to write or read as you please.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    fn parse_frame(&mut self) -> Option<ServerFrame> {
        let bytes = &self.buffer;
        if bytes.len() < 2 {
            return None;
        }
        let fin = bytes[0] & 0x80 != 0;
        let opcode = bytes[0] & 0x0F;
        let (len, header) = match bytes[1] & 0x7F {
            126 => {
                if bytes.len() < 4 {
                    return None;
                }
                (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4)
            }
            127 => {
                if bytes.len() < 10 {
                    return None;
                }
                let mut length = [0u8; 8];
                length.copy_from_slice(&bytes[2..10]);
                (
                    usize::try_from(u64::from_be_bytes(length)).unwrap_or(usize::MAX),
                    10,
                )
            }
            short => (usize::from(short), 2),
        };
        if bytes.len() < header + len {
            return None;
        }
        let payload = bytes[header..header + len].to_vec();
        self.buffer.drain(..header + len);
        Some(ServerFrame {
            opcode,
            fin,
            payload,
        })
    }
}

/// The resident memory of process `pid` in KiB (`VmRSS` in
/// `/proc/<pid>/status`); `None` where that file does not exist.
#[must_use]
pub fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_field(pid, "VmRSS:")
}

/// The peak resident memory of process `pid` in KiB (`VmHWM`).
#[must_use]
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_field(pid, "VmHWM:")
}

fn proc_status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
