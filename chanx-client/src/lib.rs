//! A typed async client for chanx servers (and Python Chanx servers: the
//! wire protocol is the same), on the same `#[derive(Message)]` types the
//! server uses.
//!
//! ```no_run
//! use chanx_client::{Client, Incoming};
//! use chanx_core::messages::{Ping, Pong};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("ws://127.0.0.1:8000/ws/chat/lobby")
//!     .bearer_token("alice-token")
//!     .connect()
//!     .await?;
//! client.authenticated().await?; // the `authentication` frame said 200
//! let pong: Pong = client.request(&Ping).await?; // matched by `ref`
//! let mut pushes = client.messages::<Pong>()?; // broadcasts and events, in order
//! while let Some(item) = pushes.next().await {
//!     match item? {
//!         Incoming::Message(pong) => println!("{pong:?}"),
//!         Incoming::Reconnected { gap, .. } => println!("missed up to {gap:?} of pushes"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! - [`Client::request`] sends a message with a fresh `ref` and waits for
//!   the frame that echoes it, decoded as the reply type (a union enum of
//!   messages works); many requests may be in flight on one socket. An
//!   `error` frame becomes [`ClientError::Server`] with the server's
//!   `type`/`loc`/`msg`; no reply within the timeout is
//!   [`ClientError::Timeout`].
//! - Frames without a `ref` of ours (broadcasts, events, greetings) go, in
//!   order, to the one stream [`Client::messages`] returns. Read it: when
//!   its buffer is full the connection stops reading (replies wait too), so
//!   memory stays bounded. [`ClientBuilder::discard_pushes`] drops them
//!   instead.
//! - The `authentication` frame is surfaced by [`Client::authenticated`];
//!   the completion frames (`complete`, `group_complete`,
//!   `event_complete`) are not passed on.
//! - How the connection ended is [`Client::closed`] (code and reason).
//! - With [`ClientBuilder::reconnect`], a lost connection (no close frame,
//!   or 1001/1006/1011/1012/1013/1014) is reopened with exponential
//!   backoff and jitter; [`ClientBuilder::on_reconnect`]'s hook runs on the
//!   new connection (re-join, re-subscribe), and the stream yields
//!   [`Incoming::Reconnected`] with how long it was down: what the server
//!   sent meanwhile is lost, and you are told. Requests in flight when it
//!   dropped fail with [`ClientError::Disconnected`].
//!
//! `ws://` is built in. For `wss://`, give a connector that returns your
//! TLS stream ([`ClientBuilder::connector`]).

mod connection;
mod error;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use chanx_core::Message;
use chanx_core::protocol::{Authentication, ErrorMessage};
use futures_util::Stream;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};

pub use error::{BoxError, ClientError, CloseInfo, ConnectError, ServerError};

/// A byte stream a WebSocket can run on.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

type Connector =
    Arc<dyn Fn(String, u16) -> BoxFuture<'static, io::Result<Box<dyn Io>>> + Send + Sync>;
type Hook = Arc<dyn Fn(Client) -> BoxFuture<'static, Result<(), ClientError>> + Send + Sync>;

/// When and how often to reconnect a lost connection: exponential backoff
/// from `initial` up to `max`, each wait drawn between half and all of it
/// (jitter), forever unless `max_attempts` is set.
#[derive(Debug, Clone)]
#[must_use]
pub struct Reconnect {
    initial: Duration,
    max: Duration,
    max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self::new()
    }
}

impl Reconnect {
    /// 250 ms, doubling up to 10 s, without end.
    pub fn new() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
            max_attempts: None,
        }
    }

    /// The first wait.
    pub fn initial(mut self, wait: Duration) -> Self {
        self.initial = wait;
        self
    }

    /// The longest wait.
    pub fn max(mut self, wait: Duration) -> Self {
        self.max = wait;
        self
    }

    /// Gives up after `attempts` failed attempts in a row.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }
}

/// Options for a connection.
#[must_use]
pub struct ClientBuilder {
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    subprotocols: Vec<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_message_size: usize,
    push_buffer: usize,
    discard_pushes: bool,
    reconnect: Option<Reconnect>,
    on_reconnect: Option<Hook>,
    connector: Option<Connector>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers and query may hold credentials: names only.
        f.debug_struct("ClientBuilder")
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("reconnect", &self.reconnect)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Adds a query parameter (form-encoded), as `?token=…`.
    pub fn query(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer_token(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`).
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocols.push(protocol.into());
        self
    }

    /// How long connecting may take, TCP and handshake (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`Client::request`] and [`Client::authenticated`] wait
    /// (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The largest message accepted from the server (default 16 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How many pushes wait for [`Client::messages`] before the connection
    /// stops reading (default 1024).
    pub fn push_buffer(mut self, frames: usize) -> Self {
        self.push_buffer = frames.max(1);
        self
    }

    /// Drops the server's pushes instead of keeping them for
    /// [`Client::messages`]: for clients that only make requests.
    pub fn discard_pushes(mut self) -> Self {
        self.discard_pushes = true;
        self
    }

    /// Reopens a lost connection with `policy`.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Runs `hook` on every reopened connection as soon as it is open
    /// (beside the reading, so its requests get their replies): re-join
    /// groups, re-subscribe. The stream's [`Incoming::Reconnected`] comes
    /// before anything the new connection receives. An error is logged and
    /// the connection kept.
    pub fn on_reconnect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ClientError>> + Send + 'static,
    {
        self.on_reconnect = Some(Arc::new(move |client| Box::pin(hook(client))));
        self
    }

    /// Opens the byte stream with `connect(host, port)` instead of a plain
    /// TCP connection: a TLS stream for `wss://`, a Unix socket, a proxy.
    pub fn connector<F, Fut, S>(mut self, connect: F) -> Self
    where
        F: Fn(String, u16) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<S>> + Send + 'static,
        S: Io,
    {
        self.connector = Some(Arc::new(move |host, port| {
            let opened = connect(host, port);
            Box::pin(async move { opened.await.map(|stream| Box::new(stream) as Box<dyn Io>) })
        }));
        self
    }

    /// Connects.
    ///
    /// # Errors
    ///
    /// [`ConnectError`]: a bad URL or header, the server's HTTP refusal,
    /// the network, the timeout.
    pub async fn connect(self) -> Result<Client, ConnectError> {
        let target = connection::Target::new(&self)?;
        let socket = connection::open(&target).await?;
        let (commands, receiver) = mpsc::channel(256);
        let (pushes_tx, pushes_rx) = mpsc::channel(self.push_buffer);
        let (auth, _) = watch::channel(None);
        let (closed, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            commands,
            pending: Mutex::new(HashMap::new()),
            next_ref: AtomicU64::new(1),
            connected: AtomicBool::new(true),
            auth,
            closed,
            pushes: Mutex::new(Some(pushes_rx)),
            request_timeout: self.request_timeout,
        });
        let settings = connection::Settings {
            target,
            reconnect: self.reconnect,
            on_reconnect: self.on_reconnect,
            pushes: (!self.discard_pushes).then_some(pushes_tx),
        };
        tokio::spawn(connection::run(
            Arc::downgrade(&shared),
            socket,
            receiver,
            settings,
        ));
        Ok(Client { shared })
    }
}

/// What the connection task and the handles share.
struct Shared {
    commands: mpsc::Sender<connection::Command>,
    pending: Mutex<HashMap<u64, oneshot::Sender<String>>>,
    next_ref: AtomicU64,
    connected: AtomicBool,
    auth: watch::Sender<Option<Authentication>>,
    closed: watch::Sender<Option<CloseInfo>>,
    pushes: Mutex<Option<mpsc::Receiver<connection::Push>>>,
    request_timeout: Duration,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<String>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close_info(&self) -> CloseInfo {
        self.closed.borrow().clone().unwrap_or_default()
    }
}

/// A connection to a chanx server. Cheap to clone: every clone talks on
/// the same socket; the connection closes (1000) when the last is dropped
/// or [`Client::close`] is called.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.shared.connected.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Removes a request from the pending table however its wait ends.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending().remove(&self.id);
    }
}

impl Client {
    /// Connects to `url` with the default options.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::builder(url).connect().await
    }

    /// Options for a connection to `url` (`ws://host[:port]/path[?query]`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            subprotocols: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_message_size: 16 * 1024 * 1024,
            push_buffer: 1024,
            discard_pushes: false,
            reconnect: None,
            on_reconnect: None,
            connector: None,
        }
    }

    /// Sends `message`; returns once it is queued on the socket.
    ///
    /// # Errors
    ///
    /// [`ClientError::Disconnected`] when the connection is closed or
    /// being reopened (the message is not sent).
    pub async fn send<M: Message>(&self, message: &M) -> Result<(), ClientError> {
        self.enqueue(message.to_json()).await
    }

    /// Sends `message` with a fresh `ref` and waits for the frame that
    /// echoes it, decoded as `R` (one message type, or a union enum of the
    /// replies the handler may give).
    ///
    /// # Errors
    ///
    /// [`ClientError::Server`] for an `error` frame (validation errors,
    /// a denied permission, a failed handler), [`ClientError::Timeout`],
    /// [`ClientError::Disconnected`], or [`ClientError::Decode`] when the
    /// reply is not an `R`.
    pub async fn request<M: Message, R: Message>(&self, message: &M) -> Result<R, ClientError> {
        let id = self.shared.next_ref.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        self.shared.pending().insert(id, reply_tx);
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        self.enqueue(with_ref(message, id)).await?;
        let timeout = self.shared.request_timeout;
        let frame = match tokio::time::timeout(timeout, reply_rx).await {
            Err(_) => return Err(ClientError::Timeout(timeout)),
            Ok(Err(_)) => return Err(ClientError::Disconnected(self.shared.close_info())),
            Ok(Ok(frame)) => frame,
        };
        decode::<R>(frame)
    }

    /// The stream of everything the server sends that is not a reply to a
    /// request: broadcasts, events, greetings, in the order they arrived,
    /// decoded as `M` (usually a union enum of the channel's messages). One
    /// per client.
    ///
    /// # Errors
    ///
    /// [`ClientError::StreamTaken`] on a second call.
    pub fn messages<M: Message>(&self) -> Result<Messages<M>, ClientError> {
        let receiver = self
            .shared
            .pushes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(ClientError::StreamTaken)?;
        Ok(Messages {
            receiver,
            _type: PhantomData,
        })
    }

    /// Waits for the server's `authentication` frame and returns it when
    /// it reports success (status 200).
    ///
    /// # Errors
    ///
    /// [`ClientError::Unauthenticated`] with the frame when the server
    /// refused; [`ClientError::Disconnected`] when the connection ended
    /// first; [`ClientError::Timeout`] when no frame came within the
    /// request timeout (a channel without authenticators sends none).
    pub async fn authenticated(&self) -> Result<Authentication, ClientError> {
        let mut auth = self.shared.auth.subscribe();
        let mut closed = self.shared.closed.subscribe();
        let wait = async {
            loop {
                if let Some(frame) = auth.borrow_and_update().clone() {
                    return if frame.status_code == 200 {
                        Ok(frame)
                    } else {
                        Err(ClientError::Unauthenticated(frame))
                    };
                }
                if let Some(info) = closed.borrow_and_update().clone() {
                    return Err(ClientError::Disconnected(info));
                }
                tokio::select! {
                    changed = auth.changed() => if changed.is_err() { return Err(ClientError::Disconnected(CloseInfo::default())) },
                    changed = closed.changed() => if changed.is_err() { return Err(ClientError::Disconnected(CloseInfo::default())) },
                }
            }
        };
        let timeout = self.shared.request_timeout;
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(ClientError::Timeout(timeout)))
    }

    /// Whether the socket is open now (not closed, not being reopened).
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Waits until the connection has ended for good (after reconnection,
    /// if it was asked for, gave up) and returns how.
    pub async fn closed(&self) -> CloseInfo {
        let mut closed = self.shared.closed.subscribe();
        loop {
            if let Some(info) = closed.borrow_and_update().clone() {
                return info;
            }
            if closed.changed().await.is_err() {
                return CloseInfo::default();
            }
        }
    }

    /// Closes the connection with 1000 and waits for it to end.
    pub async fn close(&self) -> CloseInfo {
        let _ = self
            .shared
            .commands
            .send(connection::Command::Close(1000, String::new()))
            .await;
        self.closed().await
    }

    async fn enqueue(&self, text: String) -> Result<(), ClientError> {
        if !self.is_connected() {
            return Err(ClientError::Disconnected(self.shared.close_info()));
        }
        self.shared
            .commands
            .send(connection::Command::Send(text))
            .await
            .map_err(|_| ClientError::Disconnected(self.shared.close_info()))
    }
}

/// `message` as a frame with `"ref":"<id>"`.
fn with_ref<M: Message>(message: &M, id: u64) -> String {
    match serde_json::value::RawValue::from_string(format!("\"{id}\"")) {
        Ok(reference) => message.to_json_with_ref(&reference),
        // A quoted number is always valid JSON.
        Err(_) => message.to_json(),
    }
}

/// A frame as `M`, or the server's error.
fn decode<M: Message>(frame: String) -> Result<M, ClientError> {
    if connection::action_of(&frame) == Some("error") && !M::has_action("error") {
        return match ErrorMessage::from_json(&frame) {
            Ok(ErrorMessage(payload)) => Err(ClientError::Server(ServerError(payload))),
            Err(error) => Err(ClientError::Decode { frame, error }),
        };
    }
    M::from_json(&frame).map_err(|error| ClientError::Decode { frame, error })
}

/// One item of [`Client::messages`].
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming<M> {
    /// A message from the server.
    Message(M),
    /// The connection dropped and was reopened: whatever the server sent in
    /// between is lost. `gap` is how long it was down; `attempts` how many
    /// tries reopening it took.
    Reconnected {
        /// How long the connection was down.
        gap: Duration,
        /// How many attempts reopening it took.
        attempts: u32,
    },
}

/// The server's pushes, in order ([`Client::messages`]). A
/// [`Stream`]; [`Messages::next`] reads one without `StreamExt`. Ends when
/// the connection has ended for good.
pub struct Messages<M> {
    receiver: mpsc::Receiver<connection::Push>,
    _type: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for Messages<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messages").finish_non_exhaustive()
    }
}

impl<M: Message> Messages<M> {
    /// The next push: `None` once the connection has ended for good.
    /// A push that is not an `M` is [`ClientError::Decode`] (with the
    /// frame), an `error` frame is [`ClientError::Server`]; the stream goes
    /// on after either.
    pub async fn next(&mut self) -> Option<Result<Incoming<M>, ClientError>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(
        &mut self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Incoming<M>, ClientError>>> {
        self.receiver.poll_recv(cx).map(|push| {
            push.map(|push| match push {
                connection::Push::Frame(frame) => decode::<M>(frame).map(Incoming::Message),
                connection::Push::Reconnected { gap, attempts } => {
                    Ok(Incoming::Reconnected { gap, attempts })
                }
            })
        })
    }
}

impl<M: Message> Stream for Messages<M> {
    type Item = Result<Incoming<M>, ClientError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_added_to_the_frame() {
        assert_eq!(
            with_ref(&chanx_core::messages::Ping, 7),
            r#"{"action":"ping","payload":null,"ref":"7"}"#
        );
    }
}
