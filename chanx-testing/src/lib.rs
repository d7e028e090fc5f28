//! Test clients for chanx consumers.
//!
//! A [`Communicator`] talks to a [`Router`] either in-process, running the
//! real connection loop over an in-memory byte stream (no TCP, no port), or
//! over a real TCP socket to a running server. Both speak the same WebSocket
//! protocol and offer the same methods.
//!
//! ```
//! use chanx_core::messages::{Ping, Pong};
//! use chanx_core::{Router, channel};
//! use chanx_testing::Communicator;
//!
//! #[derive(Default)]
//! struct Health;
//!
//! #[channel(send_completion)]
//! impl Health {
//!     #[ws_handler]
//!     async fn ping(&mut self, _: Ping) -> Pong {
//!         Pong
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = Router::new().route::<Health>("/ws/health");
//! let mut client = Communicator::connect(&app, "/ws/health").await?;
//! client.send_message(&Ping).await?;
//! let replies = client.receive_all_messages().await?;
//! assert_eq!(replies, vec![serde_json::json!({"action": "pong", "payload": null})]);
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

mod asyncapi;
mod capture;
mod http_client;
mod process;
pub mod raw;
mod redis_server;

pub use asyncapi::{assert_asyncapi_current, assert_asyncapi_served};
pub use capture::{CaptureLayer, Captured};
pub use http_client::{http_get, http_request};
pub use process::{ServerProcess, is_listening};
pub use redis_server::{RedisServer, RedisServerError};

use chanx_core::{BoxError, CloseCode, DecodeError, Message, Router, Server, ServerConfig};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
#[cfg(feature = "axum")]
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WireCloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

/// The default time a `receive_*` call waits before failing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A WebSocket test client.
pub struct Communicator {
    socket: WebSocketStream<Box<dyn Io>>,
    timeout: Duration,
    in_process: bool,
    close: Option<Option<(CloseCode, String)>>,
}

impl std::fmt::Debug for Communicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communicator")
            .field("timeout", &self.timeout)
            .field("in_process", &self.in_process)
            .field("close", &self.close)
            .finish_non_exhaustive()
    }
}

/// Options for a connection: query, headers and receive timeout.
#[derive(Debug, Clone)]
#[must_use]
pub struct CommunicatorBuilder {
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    cookies: Vec<String>,
    timeout: Duration,
    /// The name of a header that was invalid.
    invalid: Option<String>,
    config: Option<ServerConfig>,
    peer: Option<SocketAddr>,
}

/// Connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server answered the upgrade with this HTTP status (404 for an
    /// unknown path, 403 for a refused origin, 503 when full…).
    #[error("the server refused the WebSocket upgrade with HTTP {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The response body, if any.
        body: String,
    },
    /// A header given to [`CommunicatorBuilder::header`] has an invalid name
    /// or value.
    #[error("invalid header {name:?}; header names are tokens and values visible ASCII")]
    InvalidHeader {
        /// The name as given.
        name: String,
    },
    /// The path does not start with `/` or is not a valid URI path.
    #[error("invalid path {path:?}; give an absolute path such as \"/ws/chat\"")]
    InvalidPath {
        /// The path as given.
        path: String,
    },
    /// The TCP connection failed.
    #[error("cannot connect: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket handshake failed (not an HTTP refusal).
    #[error("the WebSocket handshake failed")]
    Handshake(#[source] BoxError),
}

/// Sending or receiving failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// Nothing arrived within the timeout.
    #[error("no frame within {0:?}")]
    Timeout(Duration),
    /// The server closed the connection.
    #[error("the connection closed (code {code:?}, reason {reason:?})")]
    Closed {
        /// The close code, if the server sent one.
        code: Option<CloseCode>,
        /// The close reason.
        reason: String,
    },
    /// A text frame was not JSON.
    #[error("a frame was not JSON")]
    NotJson(#[from] serde_json::Error),
    /// A frame did not decode into the requested message type.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A binary frame arrived; chanx servers send text only.
    #[error("unexpected binary frame of {0} bytes")]
    Binary(usize),
    /// A frame arrived when none was expected.
    #[error("unexpected frame: {0}")]
    Unexpected(String),
    /// The WebSocket failed (I/O error, protocol violation by the server).
    #[error("the WebSocket failed")]
    Transport(#[source] BoxError),
}

/// A transport failure, without tungstenite's type in the public API.
fn transport(error: tungstenite::Error) -> ReceiveError {
    ReceiveError::Transport(Box::new(error))
}

impl CommunicatorBuilder {
    /// Adds a query parameter (form-encoded).
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Adds a request header.
    ///
    /// # Errors
    ///
    /// Reported by `connect` when the name or value is invalid.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => self.headers.push((name, value)),
            _ => {
                self.invalid = Some(name.to_owned());
            }
        }
        self
    }

    /// Sends `Authorization: Bearer <token>`, as a client of a
    /// [`BearerToken`](chanx_core::auth::BearerToken) channel does. (For
    /// DRF's keyword, `.header("Authorization", "Token …")`.)
    pub fn token(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Adds a cookie (all cookies travel in one `Cookie` header), as a
    /// browser of a [`SessionCookie`](chanx_core::auth::SessionCookie)
    /// channel sends its session.
    ///
    /// ```
    /// # use chanx_testing::Communicator;
    /// let builder = Communicator::builder("/ws/chat")
    ///     .cookie("sessionid", "abc")
    ///     .cookie("theme", "dark");
    /// # drop(builder);
    /// ```
    pub fn cookie(mut self, name: &str, value: &str) -> Self {
        self.cookies.push(format!("{name}={value}"));
        self
    }

    /// How long each `receive_*` call waits (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server settings of an in-process connection (limits, retained
    /// headers…), in place of the router's own
    /// ([`Router::with_config`]). Over TCP the server's settings apply.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The client address an in-process connection comes from (what
    /// [`Context::peer_addr`](chanx_core::Context::peer_addr) returns, and
    /// what the per-address limits count); none by default. Over TCP the
    /// socket's address applies.
    pub fn peer(mut self, addr: SocketAddr) -> Self {
        self.peer = Some(addr);
        self
    }

    fn path_and_query(&mut self) -> Result<String, ConnectError> {
        if let Some(name) = self.invalid.take() {
            return Err(ConnectError::InvalidHeader { name });
        }
        if !self.path.starts_with('/') || self.path.parse::<http::Uri>().is_err() {
            return Err(ConnectError::InvalidPath {
                path: self.path.clone(),
            });
        }
        if self.query.is_empty() {
            return Ok(self.path.clone());
        }
        let query = form_encode(&self.query);
        Ok(format!("{}?{query}", self.path))
    }

    /// The handshake request for `uri` on `host`, with the given headers.
    fn request(
        &self,
        host: &str,
        uri: &str,
    ) -> Result<tungstenite::handshake::client::Request, ConnectError> {
        let mut request = format!("ws://{host}{uri}")
            .into_client_request()
            .map_err(|_| ConnectError::InvalidPath {
                path: uri.to_owned(),
            })?;
        for (name, value) in &self.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        if !self.cookies.is_empty() {
            let cookies = HeaderValue::try_from(self.cookies.join("; ")).map_err(|_| {
                ConnectError::InvalidHeader {
                    name: "Cookie".to_owned(),
                }
            })?;
            request.headers_mut().append(http::header::COOKIE, cookies);
        }
        Ok(request)
    }

    /// Connects in-process: serves `router` (through the same service,
    /// checks and connection loop as a real server, see
    /// [`Router::into_service`]) over an in-memory stream, on spawned tasks.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Refused`] when the router refuses the upgrade (404
    /// when no route matches), as a server would.
    pub async fn connect(mut self, router: &Router) -> Result<Communicator, ConnectError> {
        let uri = self.path_and_query()?;
        let request = self.request("localhost", &uri)?;
        let router = match self.config.take() {
            Some(config) => router.clone().with_config(config),
            None => router.clone(),
        };
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        tokio::spawn(router.into_service().serve_connection(server_io, self.peer));
        let socket = handshake(request, Box::new(client_io)).await?;
        Ok(Communicator {
            socket,
            timeout: self.timeout,
            in_process: true,
            close: None,
        })
    }

    /// Connects over TCP to a server listening on `addr`.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Refused`] when the server answers with an HTTP error
    /// (404 for an unknown path, for example), [`ConnectError::Io`] when the
    /// connection fails.
    pub async fn connect_tcp(mut self, addr: SocketAddr) -> Result<Communicator, ConnectError> {
        let uri = self.path_and_query()?;
        let request = self.request(&addr.to_string(), &uri)?;
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let socket = handshake(request, Box::new(stream)).await?;
        Ok(Communicator {
            socket,
            timeout: self.timeout,
            in_process: false,
            close: None,
        })
    }
}

/// The client side of the WebSocket handshake.
async fn handshake(
    request: tungstenite::handshake::client::Request,
    io: Box<dyn Io>,
) -> Result<WebSocketStream<Box<dyn Io>>, ConnectError> {
    match tokio_tungstenite::client_async(request, io).await {
        Ok((socket, _response)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(ConnectError::Refused {
            status: response.status().as_u16(),
            body: response
                .body()
                .as_ref()
                .map(|body| String::from_utf8_lossy(body).into_owned())
                .unwrap_or_default(),
        }),
        Err(tungstenite::Error::Io(error)) => Err(ConnectError::Io(error)),
        Err(other) => Err(ConnectError::Handshake(Box::new(other))),
    }
}

fn form_encode(pairs: &[(String, String)]) -> String {
    fn encode(text: &str, out: &mut String) {
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(char::from(byte))
                }
                b' ' => out.push('+'),
                other => out.push_str(&format!("%{other:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        encode(key, &mut out);
        out.push('=');
        encode(value, &mut out);
    }
    out
}

impl Communicator {
    /// Options for connecting to `path`.
    pub fn builder(path: impl Into<String>) -> CommunicatorBuilder {
        CommunicatorBuilder {
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            cookies: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            invalid: None,
            config: None,
            peer: None,
        }
    }

    /// Connects in-process to `path` on `router`.
    ///
    /// # Errors
    ///
    /// See [`CommunicatorBuilder::connect`].
    pub async fn connect(router: &Router, path: &str) -> Result<Self, ConnectError> {
        Self::builder(path).connect(router).await
    }

    /// Connects over TCP to `path` on the server at `addr`.
    ///
    /// # Errors
    ///
    /// See [`CommunicatorBuilder::connect_tcp`].
    pub async fn connect_tcp(addr: SocketAddr, path: &str) -> Result<Self, ConnectError> {
        Self::builder(path).connect_tcp(addr).await
    }

    /// Sends a typed message.
    ///
    /// # Errors
    ///
    /// The connection is closed.
    pub async fn send_message<M: Message>(&mut self, message: &M) -> Result<(), ReceiveError> {
        self.send_text(message.to_json()).await
    }

    /// Sends a JSON value as a text frame.
    ///
    /// # Errors
    ///
    /// The connection is closed.
    pub async fn send_json(&mut self, value: &Value) -> Result<(), ReceiveError> {
        self.send_text(value.to_string()).await
    }

    /// Subscribes to `topic` as a Chanx client does
    /// (`{"version":1,"topic":…,"ref":…,"action":"subscribe"}`) and returns
    /// the reply: `subscribed`, or an `error` frame with the reason.
    ///
    /// # Errors
    ///
    /// The connection is closed, or no reply arrives in time.
    pub async fn subscribe(&mut self, topic: &str, reference: &str) -> Result<Value, ReceiveError> {
        self.topic_request(topic, reference, "subscribe").await
    }

    /// Unsubscribes from `topic` and returns the reply (`unsubscribed`).
    ///
    /// # Errors
    ///
    /// The connection is closed, or no reply arrives in time.
    pub async fn unsubscribe(
        &mut self,
        topic: &str,
        reference: &str,
    ) -> Result<Value, ReceiveError> {
        self.topic_request(topic, reference, "unsubscribe").await
    }

    /// Sends `message` to `topic` with `reference` as its `ref`, stamped as
    /// a Chanx topic client stamps it; the reply comes back with the same
    /// topic and ref.
    ///
    /// # Errors
    ///
    /// The connection is closed.
    pub async fn send_to_topic<M: Message>(
        &mut self,
        topic: &str,
        reference: &str,
        message: &M,
    ) -> Result<(), ReceiveError> {
        let mut frame: Value = serde_json::from_str(&message.to_json())?;
        if let Value::Object(object) = &mut frame {
            object.insert("version".into(), Value::from(1));
            object.insert("topic".into(), Value::from(topic));
            object.insert("ref".into(), Value::from(reference));
        }
        self.send_json(&frame).await
    }

    async fn topic_request(
        &mut self,
        topic: &str,
        reference: &str,
        action: &str,
    ) -> Result<Value, ReceiveError> {
        let frame = serde_json::json!({
            "version": 1,
            "topic": topic,
            "ref": reference,
            "action": action,
        });
        self.send_json(&frame).await?;
        self.receive_json().await
    }

    /// Sends a raw text frame.
    ///
    /// # Errors
    ///
    /// The connection is closed.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ReceiveError> {
        self.socket
            .send(WsMessage::text(text.into()))
            .await
            .map_err(transport)
    }

    /// Sends a binary frame.
    ///
    /// # Errors
    ///
    /// The connection is closed.
    pub async fn send_binary(&mut self, bytes: impl Into<Vec<u8>>) -> Result<(), ReceiveError> {
        self.socket
            .send(WsMessage::binary(bytes.into()))
            .await
            .map_err(transport)
    }

    /// Receives the next text frame, skipping control frames.
    ///
    /// # Errors
    ///
    /// [`ReceiveError::Timeout`], [`ReceiveError::Closed`], or a transport
    /// error.
    pub async fn receive_text(&mut self) -> Result<String, ReceiveError> {
        if let Some(close) = &self.close {
            return Err(closed_error(close.as_ref()));
        }
        let timeout = self.timeout;
        let next = tokio::time::timeout(timeout, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(WsMessage::Text(text))) => return Ok(text.as_str().to_owned()),
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        return Err(ReceiveError::Binary(bytes.len()));
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        let close = frame.and_then(|frame| {
                            let code = CloseCode::try_from(u16::from(frame.code)).ok()?;
                            Some((code, frame.reason.as_str().to_owned()))
                        });
                        let error = closed_error(close.as_ref());
                        self.close = Some(close);
                        return Err(error);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(transport(error)),
                    None => {
                        self.close = Some(None);
                        return Err(closed_error(None));
                    }
                }
            }
        })
        .await;
        next.unwrap_or(Err(ReceiveError::Timeout(timeout)))
    }

    /// Receives the next frame as JSON.
    ///
    /// # Errors
    ///
    /// As [`Communicator::receive_text`], or [`ReceiveError::NotJson`].
    pub async fn receive_json(&mut self) -> Result<Value, ReceiveError> {
        Ok(serde_json::from_str(&self.receive_text().await?)?)
    }

    /// Receives the next frame as message type `M`.
    ///
    /// # Errors
    ///
    /// As [`Communicator::receive_text`], or [`ReceiveError::Decode`] when the
    /// frame is not an `M`.
    pub async fn receive_message<M: Message>(&mut self) -> Result<M, ReceiveError> {
        Ok(M::from_json(&self.receive_text().await?)?)
    }

    /// Receives frames until one with action `complete` (not included),
    /// skipping `group_complete` and `event_complete` frames, as Chanx's
    /// `receive_all_json` does: everything one client frame caused.
    ///
    /// Needs a consumer with `send_completion` on (the channel's key or
    /// the router's [`Settings`](chanx_core::Settings)).
    ///
    /// # Errors
    ///
    /// As [`Communicator::receive_json`]; a timeout means no `complete`
    /// frame arrived.
    pub async fn receive_all_json(&mut self) -> Result<Vec<Value>, ReceiveError> {
        let mut frames = Vec::new();
        loop {
            let frame = self.receive_json().await?;
            match frame.get("action").and_then(Value::as_str) {
                Some("complete") => return Ok(frames),
                Some("group_complete" | "event_complete") => {}
                _ => frames.push(frame),
            }
        }
    }

    /// Chanx's other name for [`Communicator::receive_all_json`].
    ///
    /// # Errors
    ///
    /// As [`Communicator::receive_all_json`].
    pub async fn receive_all_messages(&mut self) -> Result<Vec<Value>, ReceiveError> {
        self.receive_all_json().await
    }

    /// Receives the `authentication` frame and checks that it reports
    /// success (`status_code` 200), as Chanx's
    /// `assert_authenticated_status_ok`. Returns its `data`.
    ///
    /// # Panics
    ///
    /// When the next frame is not a successful `authentication` frame, or
    /// none arrives: the panic message shows what came instead.
    pub async fn assert_authenticated_status_ok(&mut self) -> Value {
        let frame = match self.receive_json().await {
            Ok(frame) => frame,
            Err(error) => panic!("expected the authentication frame, got {error}"),
        };
        assert_eq!(
            frame.get("action").and_then(Value::as_str),
            Some("authentication"),
            "expected the authentication frame, got {frame}"
        );
        // `statusCode` on a camelCase channel.
        let status = frame
            .pointer("/payload/status_code")
            .or_else(|| frame.pointer("/payload/statusCode"))
            .and_then(Value::as_u64);
        assert_eq!(status, Some(200), "authentication did not succeed: {frame}");
        frame
            .pointer("/payload/data")
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Receives frames until one with action `stop_action` (not included).
    ///
    /// # Errors
    ///
    /// As [`Communicator::receive_json`].
    pub async fn receive_until(&mut self, stop_action: &str) -> Result<Vec<Value>, ReceiveError> {
        let mut frames = Vec::new();
        loop {
            let frame = self.receive_json().await?;
            if frame.get("action").and_then(Value::as_str) == Some(stop_action) {
                return Ok(frames);
            }
            frames.push(frame);
        }
    }

    /// Succeeds when no frame arrives within `wait`.
    ///
    /// # Errors
    ///
    /// [`ReceiveError::Unexpected`] with the frame that did arrive, or
    /// [`ReceiveError::Closed`].
    pub async fn receive_nothing(&mut self, wait: Duration) -> Result<(), ReceiveError> {
        let saved = std::mem::replace(&mut self.timeout, wait);
        let result = self.receive_text().await;
        self.timeout = saved;
        match result {
            Err(ReceiveError::Timeout(_)) => Ok(()),
            Ok(frame) => Err(ReceiveError::Unexpected(frame)),
            Err(other) => Err(other),
        }
    }

    /// Receives (and returns) frames until none arrives for `quiet`; gives
    /// up after the receive timeout in all.
    ///
    /// # Errors
    ///
    /// [`ReceiveError::Closed`] when the connection closes meanwhile,
    /// [`ReceiveError::Timeout`] when frames keep coming past the timeout.
    pub async fn drain(&mut self, quiet: Duration) -> Result<Vec<String>, ReceiveError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut frames = Vec::new();
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Err(ReceiveError::Timeout(self.timeout));
            }
            match self.receive_nothing(quiet).await {
                Ok(()) => return Ok(frames),
                Err(ReceiveError::Unexpected(frame)) => frames.push(frame),
                Err(other) => return Err(other),
            }
        }
    }

    /// Waits for the server to close the connection and returns the close
    /// code (`None` when it closed without one). Frames before the close are
    /// discarded.
    ///
    /// # Errors
    ///
    /// [`ReceiveError::Timeout`] when the connection stays open.
    pub async fn wait_closed(&mut self) -> Result<Option<CloseCode>, ReceiveError> {
        loop {
            match self.receive_text().await {
                Ok(_) => {}
                Err(ReceiveError::Closed { code, .. }) => return Ok(code),
                Err(other) => return Err(other),
            }
        }
    }

    /// Asserts that the server closes the connection with `code`.
    ///
    /// # Panics
    ///
    /// When the connection closes with another code, stays open past the
    /// timeout, or fails.
    pub async fn assert_closed(&mut self, code: CloseCode) {
        match self.wait_closed().await {
            Ok(Some(actual)) => assert_eq!(
                actual, code,
                "connection closed with {actual}, expected {code}"
            ),
            Ok(None) => panic!("connection closed without a close code, expected {code}"),
            Err(error) => panic!("expected the connection to close with {code}: {error}"),
        }
    }

    /// Closes the connection with 1000, waits for the server's answer, and
    /// then for the server to drop the connection (so its disconnect hooks
    /// have run when this returns).
    ///
    /// # Errors
    ///
    /// The closing handshake failed.
    pub async fn disconnect(self) -> Result<(), ReceiveError> {
        self.disconnect_with(1000).await
    }

    /// [`Communicator::disconnect`] with close code `code` (a client may
    /// send 1000–1003, 1007–1011 and 3000–4999).
    ///
    /// # Errors
    ///
    /// The closing handshake failed.
    pub async fn disconnect_with(mut self, code: u16) -> Result<(), ReceiveError> {
        let timeout = self.timeout;
        if self.close.is_none() {
            let frame = CloseFrame {
                code: WireCloseCode::from(code),
                reason: "".into(),
            };
            match self.socket.close(Some(frame)).await {
                Ok(())
                | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                }
                Err(error) => return Err(transport(error)),
            }
            let _ = tokio::time::timeout(timeout, async {
                while let Some(Ok(_)) = self.socket.next().await {}
            })
            .await;
        }
        // The server drops its end when its connection task is over.
        let _ = tokio::time::timeout(timeout, async {
            let mut scratch = [0u8; 256];
            while let Ok(1..) = self.socket.get_mut().read(&mut scratch).await {}
        })
        .await;
        Ok(())
    }
}

/// A real server on a free loopback port, for tests over TCP.
///
/// ```
/// # use chanx_core::{Router, channel, messages::{Ping, Pong}};
/// # #[derive(Default)] struct Health;
/// # #[channel] impl Health { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
/// use chanx_testing::TestServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = TestServer::start(Router::new().route::<Health>("/ws/health")).await?;
/// let mut client = server.connect("/ws/health").await?;
/// client.send_message(&Ping).await?;
/// assert_eq!(client.receive_message::<Pong>().await?, Pong);
/// server.stop().await?; // graceful: open clients get 1001
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    layer: chanx_core::Layer,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and serves `router` on a spawned task.
    ///
    /// # Errors
    ///
    /// The listener cannot be bound.
    pub async fn start(router: Router) -> std::io::Result<Self> {
        Self::start_with(Server::bind("127.0.0.1:0").await?, router)
    }

    /// Serves `router` on an already configured `server`.
    ///
    /// # Errors
    ///
    /// The server's address cannot be read.
    pub fn start_with(server: Server, router: Router) -> std::io::Result<Self> {
        let addr = server.local_addr()?;
        let layer = router.layer().clone();
        Ok(Self::spawn(addr, layer, |stopped| {
            server.serve_with_shutdown(router, stopped)
        }))
    }

    /// Spawns `serve`, which runs until the future it is given (fired by
    /// [`TestServer::stop`]) completes.
    fn spawn<F>(
        addr: SocketAddr,
        layer: chanx_core::Layer,
        serve: impl FnOnce(futures_util::future::BoxFuture<'static, ()>) -> F,
    ) -> Self
    where
        F: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(Box::pin(async move {
            let _ = stopped.await;
        })));
        Self {
            addr,
            layer,
            stop,
            task,
        }
    }

    /// Binds `127.0.0.1:0` and serves `router` through `axum::serve`, as
    /// an axum app would ([`Router::into_axum`], with the client address
    /// from `ConnectInfo`); [`TestServer::stop`] shuts it down as the
    /// axum documentation of chanx shows (chanx's sockets close with
    /// 1001, then axum stops).
    ///
    /// # Errors
    ///
    /// The listener cannot be bound.
    #[cfg(feature = "axum")]
    pub async fn start_axum(router: Router) -> std::io::Result<Self> {
        let shutdown = router.shutdown_handle();
        let layer = router.layer().clone();
        Self::start_axum_app(router.into_axum(), shutdown, layer).await
    }

    /// Binds `127.0.0.1:0` and serves `router` as an axum app through
    /// chanx's [`Server::serve_axum`](chanx_core::Server::serve_axum) (the
    /// accept-time protections `axum::serve` lacks).
    ///
    /// # Errors
    ///
    /// The listener cannot be bound.
    #[cfg(feature = "axum")]
    pub async fn start_serve_axum(router: Router) -> std::io::Result<Self> {
        let shutdown = router.shutdown_handle();
        let layer = router.layer().clone();
        let server = Server::bind("127.0.0.1:0").await?;
        let addr = server.local_addr()?;
        Ok(Self::spawn(addr, layer, |stopped| {
            server.serve_axum_with_shutdown(router.into_axum(), shutdown, stopped)
        }))
    }

    /// Binds `127.0.0.1:0` and serves an axum `app` (with a chanx router
    /// merged in) through `axum::serve`. `shutdown` is the chanx router's
    /// handle, run when the server stops; `layer` is its channel layer
    /// (what [`TestServer::layer`] returns).
    ///
    /// # Errors
    ///
    /// The listener cannot be bound.
    #[cfg(feature = "axum")]
    pub async fn start_axum_app(
        app: axum::Router,
        shutdown: chanx_core::ShutdownHandle,
        layer: chanx_core::Layer,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(Self::spawn(addr, layer, |stopped| {
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                stopped.await;
                shutdown.shutdown().await;
            });
            std::future::IntoFuture::into_future(serve)
        }))
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The served router's channel layer, to broadcast or send events from
    /// the test.
    #[must_use]
    pub fn layer(&self) -> &chanx_core::Layer {
        &self.layer
    }

    /// Connects a client over TCP to `path`.
    ///
    /// # Errors
    ///
    /// See [`CommunicatorBuilder::connect_tcp`].
    pub async fn connect(&self, path: &str) -> Result<Communicator, ConnectError> {
        Communicator::connect_tcp(self.addr, path).await
    }

    /// Connects `count` clients over TCP to `path`, in order.
    ///
    /// # Errors
    ///
    /// The first connection that fails.
    pub async fn connect_many(
        &self,
        path: &str,
        count: usize,
    ) -> Result<Vec<Communicator>, ConnectError> {
        let mut clients = Vec::with_capacity(count);
        for _ in 0..count {
            clients.push(self.connect(path).await?);
        }
        Ok(clients)
    }

    /// Shuts the server down gracefully and waits for it.
    ///
    /// # Errors
    ///
    /// The server failed, or its task panicked.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}

fn closed_error(close: Option<&(CloseCode, String)>) -> ReceiveError {
    ReceiveError::Closed {
        code: close.map(|(code, _)| *code),
        reason: close.map(|(_, reason)| reason.clone()).unwrap_or_default(),
    }
}
