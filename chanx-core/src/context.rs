//! The per-connection [`Context`] handed to hooks and handlers.

use std::any::Any;
use std::borrow::Cow;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use http::header::AsHeaderName;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::auth::Identity;
use crate::config::FanoutLimit;
use crate::connection::FanoutBudget;
use crate::consumer::Consumer;
use crate::layer::{ChannelName, GroupName, Layer, LayerError, LayerMessage};
use crate::message::{Message, encode};
use crate::presence::{PresenceError, PresenceState};
use crate::settings::FrameLog;
use crate::ws::CloseCode;
use crate::ws::outbox::{Outbound, Outbox};

/// A connection's identity, request data and outbound queue.
///
/// Cheap to clone: a clone can be moved into a spawned task to push messages
/// to this client later. Once the connection ends, sends fail with
/// [`SendError`].
#[derive(Clone, Debug)]
pub struct Context {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: ConnectionId,
    channel: ChannelName,
    layer: Layer,
    groups: Mutex<Vec<GroupName>>,
    identity: OnceLock<Arc<dyn Any + Send + Sync>>,
    request: RequestInfo,
    /// The upgrade request's headers: all of them while the connection is
    /// being established, then only the retained ones.
    headers: RwLock<Arc<HeaderMap>>,
    state: Arc<Extensions>,
    outbox: Arc<Outbox>,
    /// camelCase and logging of frames, when either is on.
    frames: Option<Arc<FrameLog>>,
    /// Whether completion frames are sent.
    completion: bool,
    fanout: Option<Mutex<FanoutBudget>>,
    close: Mutex<Option<(CloseCode, Utf8Bytes)>>,
    /// Set with `close`, so the per-frame check takes no lock.
    closing: AtomicBool,
    close_requested: AtomicWaker,
}

/// What the upgrade request said: path, route parameters, query and headers.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestInfo {
    pub(crate) path: String,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) peer: Option<std::net::SocketAddr>,
}

/// A process-unique connection number, shown in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl ConnectionId {
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The connection has ended; the message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the WebSocket connection is closed; the message was not sent")]
pub struct SendError;

impl Context {
    pub(crate) fn new(
        id: ConnectionId,
        layer: Layer,
        mut request: RequestInfo,
        state: Arc<Extensions>,
        outbox: Arc<Outbox>,
        fanout: Option<FanoutLimit>,
        settings: &crate::settings::Effective,
    ) -> Self {
        let headers = RwLock::new(Arc::new(std::mem::take(&mut request.headers)));
        Self {
            inner: Arc::new(Inner {
                id,
                channel: ChannelName::new(layer.inner().process_id(), id.get()),
                layer,
                groups: Mutex::new(Vec::new()),
                identity: OnceLock::new(),
                request,
                headers,
                state,
                outbox,
                frames: settings.frames.clone(),
                completion: settings.send_completion,
                fanout: fanout.map(|limit| Mutex::new(FanoutBudget::new(limit, Instant::now()))),
                close: Mutex::new(None),
                closing: AtomicBool::new(false),
                close_requested: AtomicWaker::new(),
            }),
        }
    }

    /// This connection's id.
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// This connection's address on the channel layer, for
    /// [`Layer::send_event_to`].
    #[must_use]
    pub fn channel_name(&self) -> &ChannelName {
        &self.inner.channel
    }

    /// The application's channel layer.
    #[must_use]
    pub fn layer(&self) -> &Layer {
        &self.inner.layer
    }

    /// The groups this connection is in, in the order it joined them.
    #[must_use]
    pub fn groups(&self) -> Vec<GroupName> {
        self.inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Joins `group`: broadcasts and events sent to it reach this connection
    /// until it leaves or disconnects.
    ///
    /// # Errors
    ///
    /// An invalid group name, or an unreachable layer backend.
    pub async fn join(&self, group: &str) -> Result<(), LayerError> {
        let group = GroupName::new(group)?;
        self.join_group(group).await
    }

    pub(crate) async fn join_group(&self, group: GroupName) -> Result<(), LayerError> {
        self.inner
            .layer
            .inner()
            .join(&group, &self.inner.channel)
            .await?;
        let mut groups = self
            .inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !groups.contains(&group) {
            groups.push(group);
        }
        Ok(())
    }

    /// Leaves `group`.
    ///
    /// # Errors
    ///
    /// An invalid group name, or an unreachable layer backend.
    pub async fn leave(&self, group: &str) -> Result<(), LayerError> {
        let group = GroupName::new(group)?;
        self.inner
            .layer
            .inner()
            .leave(&group, &self.inner.channel)
            .await?;
        self.inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|joined| *joined != group);
        Ok(())
    }

    /// Tracks this connection in presence group `group` under `key` (the
    /// user; `None` keys it by its `phx_ref`), with `meta` added to its
    /// `user`, `online_at` and `phx_ref` (see [`presence`](crate::presence)).
    /// It receives `presence_state` (everyone present) and then every
    /// `presence_diff` of the group, its own join first. Tracking again
    /// replaces the meta. The connection is untracked when it ends.
    ///
    /// ```
    /// # use chanx_core::{Context, presence::PresenceError};
    /// # async fn handler(ctx: &Context) -> Result<(), PresenceError> {
    /// let mut meta = serde_json::Map::new();
    /// meta.insert("status".into(), "typing".into());
    /// ctx.track("chat_lobby", Some("alice"), meta).await?;
    /// let everyone = ctx.presence("chat_lobby").await?;
    /// assert!(everyone.0.contains_key("alice"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// An invalid group name, a layer without presence, or an unreachable
    /// backend.
    pub async fn track(
        &self,
        group: &str,
        key: Option<&str>,
        meta: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), PresenceError> {
        let group = GroupName::new(group).map_err(LayerError::from)?;
        self.inner
            .layer
            .presence_state()
            .track(&group, &self.inner.channel, key, meta)
            .await
    }

    /// Stops tracking this connection in presence group `group`; the others
    /// get a `presence_diff` with its leave.
    ///
    /// # Errors
    ///
    /// An invalid group name.
    pub async fn untrack(&self, group: &str) -> Result<(), PresenceError> {
        let group = GroupName::new(group).map_err(LayerError::from)?;
        if let Some(presence) = self.inner.layer.presence_if_started() {
            presence.untrack(&group, &self.inner.channel).await;
        }
        Ok(())
    }

    /// Everyone present in presence group `group`, as this process sees it
    /// (every process, once their heartbeats have arrived).
    ///
    /// # Errors
    ///
    /// An invalid group name, a layer without presence, or an unreachable
    /// backend.
    pub async fn presence(&self, group: &str) -> Result<PresenceState, PresenceError> {
        self.inner.layer.presence(group).await
    }

    /// Broadcasts `message` to this connection's groups (or to the groups
    /// named with [`Broadcast::to`]), encoded once and shared by every
    /// receiver. Await the returned builder to send.
    ///
    /// ```
    /// # use chanx_core::{Context, layer::LayerError, messages::Pong};
    /// # async fn handler(ctx: &Context) -> Result<(), LayerError> {
    /// ctx.broadcast(&Pong).await?; // every group this connection is in
    /// ctx.broadcast(&Pong).to("lobby").exclude_sender().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn broadcast<'a, M: Message + Sync>(&'a self, message: &'a M) -> Broadcast<'a, M> {
        Broadcast {
            ctx: self,
            message,
            groups: Vec::new(),
            exclude_sender: false,
        }
    }

    /// The authenticated identity of consumer `C`'s connection, typed by
    /// its authenticators (`#[channel(authenticator = …)]`): `None` when
    /// the connection is anonymous. Asking for another type than the
    /// authenticator's identity is a compile error.
    ///
    /// ```
    /// # use chanx_core::{Context, channel, messages::{Ping, Pong}};
    /// # use chanx_core::auth::{BearerToken, TokenVerifier};
    /// # struct Tokens;
    /// # impl TokenVerifier for Tokens {
    /// #     type Identity = String;
    /// #     async fn verify(&self, token: &str, _: &Context) -> Option<String> { Some(token.into()) }
    /// # }
    /// #[derive(Default)]
    /// struct Greeter;
    ///
    /// #[channel(authenticator = BearerToken<Tokens>)]
    /// impl Greeter {
    ///     #[ws_handler]
    ///     async fn ping(&mut self, ctx: &Context, _: Ping) -> Pong {
    ///         let user: Option<&String> = ctx.identity::<Self>();
    ///         println!("ping from {user:?}");
    ///         Pong
    ///     }
    /// }
    /// ```
    #[must_use]
    pub fn identity<C: Consumer>(&self) -> Option<&Identity<C>> {
        self.identity_as::<Identity<C>>()
    }

    /// The identity as type `T`, for code that serves several consumers
    /// (a [`Permission`](crate::auth::Permission)): `None` when the
    /// connection is anonymous or its identity is another type. Inside a
    /// consumer, prefer [`Context::identity`].
    #[must_use]
    pub fn identity_as<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.identity.get()?.downcast_ref::<T>()
    }

    /// Whether an authenticator accepted this connection.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.inner.identity.get().is_some()
    }

    pub(crate) fn set_identity<T: Send + Sync + 'static>(&self, identity: T) {
        let _ = self.inner.identity.set(Arc::new(identity));
    }

    /// The first value of header `name`, if it is visible ASCII.
    ///
    /// Every header of the upgrade request is here while the connection is
    /// being established (authenticator, permissions, `#[on_connect]`,
    /// `#[post_authentication]`); after that, only the headers listed in
    /// [`ServerConfig::retain_headers`](crate::ServerConfig::retain_headers).
    /// Keep what handlers need in the consumer instead.
    #[must_use]
    pub fn header_str(&self, name: impl AsHeaderName) -> Option<String> {
        self.header(name)?.to_str().ok().map(str::to_owned)
    }

    /// The first value of header `name` (see [`Context::header_str`] for
    /// which headers are kept).
    #[must_use]
    pub fn header(&self, name: impl AsHeaderName) -> Option<HeaderValue> {
        self.headers().get(name).cloned()
    }

    /// The value of cookie `name` from the upgrade request (see
    /// [`Context::header_str`] for how long headers are kept).
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.trim_matches('"').to_owned())
    }

    /// The request path, such as `/ws/chat/lobby`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.inner.request.path
    }

    /// A route parameter, such as `room` for the route `/ws/chat/{room}`,
    /// percent-decoded.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.inner
            .request
            .params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The group `template` names for this connection, its `{param}`s
    /// filled in with the route's parameters and encoded as the channel's
    /// declared groups are: `ctx.group("chat_{room}")` is the group the
    /// channel's `groups = ["chat_{room}"]` joined.
    ///
    /// # Errors
    ///
    /// [`GroupTemplateError`](crate::layer::GroupTemplateError) when the
    /// route has no such parameter, or the template is malformed.
    pub fn group(&self, template: &str) -> Result<GroupName, crate::layer::GroupTemplateError> {
        crate::group::expand(template, |name| self.param(name))
    }

    /// A route parameter parsed as `T`, as in `ctx.param_as::<u64>("id")`.
    ///
    /// ```
    /// # use chanx_core::{Context, Reject};
    /// # struct Room { id: u64 }
    /// // In an `#[on_connect]` hook: a bad value refuses the connection
    /// // (close 1008, with the reason).
    /// async fn connect(ctx: &Context) -> Result<Room, Reject> {
    ///     Ok(Room { id: ctx.param_as("id")? })
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ParamError`](crate::ParamError) when the route has no such
    /// parameter or the value does not parse.
    pub fn param_as<T: std::str::FromStr>(&self, name: &str) -> Result<T, crate::ParamError>
    where
        T::Err: std::fmt::Display,
    {
        crate::router::parse_param(&self.inner.request.params, name)
    }

    /// The client's address, when the server knows it (always with the
    /// standalone server; under axum with
    /// `into_make_service_with_connect_info::<SocketAddr>()`).
    #[must_use]
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.request.peer
    }

    /// Every route parameter, in route order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner
            .request
            .params
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// The raw query string, without the `?`.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.inner.request.query.as_deref()
    }

    /// The first value of a query parameter, form-decoded.
    #[must_use]
    pub fn query_param(&self, name: &str) -> Option<Cow<'_, str>> {
        let query = self.inner.request.query.as_deref()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The upgrade request's headers (see [`Context::header_str`] for which
    /// are kept after the connection is established).
    #[must_use]
    pub fn headers(&self) -> Arc<HeaderMap> {
        Arc::clone(
            &self
                .inner
                .headers
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Drops every header but `keep`, once the connection is established.
    pub(crate) fn retain_headers(&self, keep: &[HeaderName]) {
        let mut headers = self
            .inner
            .headers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if headers.is_empty() {
            return;
        }
        let mut retained = HeaderMap::new();
        for name in keep {
            for value in headers.get_all(name) {
                retained.append(name.clone(), value.clone());
            }
        }
        *headers = Arc::new(retained);
    }

    /// Shared application state registered with
    /// [`Router::with_state`](crate::Router::with_state).
    #[must_use]
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.state.get::<T>()
    }

    /// Queues `message` for this client, after everything queued before it.
    ///
    /// Waits while the connection's outbound queue is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the connection has ended.
    pub async fn send<M: Message>(&self, message: &M) -> Result<(), SendError> {
        self.send_text(encode(message, crate::wire::Echo::NONE))
            .await
    }

    /// Queues a raw text frame for this client.
    ///
    /// # Errors
    ///
    /// [`SendError`] when the connection has ended.
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), SendError> {
        self.send_frame(Utf8Bytes::from(text.into())).await
    }

    pub(crate) async fn send_frame(&self, frame: Utf8Bytes) -> Result<(), SendError> {
        let frame = self.outgoing(frame);
        self.inner
            .outbox
            .push(Outbound::Text(frame))
            .await
            .map_err(|_| SendError)
    }

    /// Whether completion frames are sent on this connection.
    pub(crate) fn completion(&self) -> bool {
        self.inner.completion
    }

    /// A frame on its way out: logged, and its keys camelized, when this
    /// consumer asks for it.
    pub(crate) fn outgoing(&self, frame: Utf8Bytes) -> Utf8Bytes {
        let Some(frames) = &self.inner.frames else {
            return frame;
        };
        let action = crate::settings::action_of(frame.as_str());
        if frames.logs(action) {
            tracing::info!(
                target: "chanx::frames",
                connection = self.inner.id.get(),
                action,
                bytes = frame.len(),
                "websocket sent"
            );
        }
        if frames.camelize {
            match crate::case::camelize_frame(frame.as_str()) {
                Some(camel) => Utf8Bytes::from(camel),
                None => frame,
            }
        } else {
            frame
        }
    }

    /// A client frame on its way in: its keys decamelized, when this
    /// consumer asks for it.
    pub(crate) fn incoming<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match &self.inner.frames {
            Some(frames) if frames.camelize => {
                crate::case::decamelize_frame(text).map_or(Cow::Borrowed(text), Cow::Owned)
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// Logs a received frame of `action` (empty when the frame has none),
    /// when this consumer asks for it. Called with the action the frame's
    /// one parse found.
    pub(crate) fn log_received(&self, action: &str, bytes: usize) {
        if let Some(frames) = &self.inner.frames
            && frames.log
            && frames.logs(action)
        {
            tracing::info!(
                target: "chanx::frames",
                connection = self.inner.id.get(),
                action,
                bytes,
                "websocket received"
            );
        }
    }

    /// Asks to close the connection with `code` and `reason` (at most 123
    /// bytes are sent). The frame being handled finishes first, with its
    /// reply; no later frame is read. The first request wins.
    ///
    /// Works from a clone of the context in another task too.
    pub fn close(&self, code: CloseCode, reason: &str) {
        let mut close = self
            .inner
            .close
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if close.is_none() {
            *close = Some((code, truncate_reason(reason)));
            drop(close);
            self.inner.closing.store(true, Ordering::Release);
            self.inner.close_requested.wake();
        }
    }

    /// Whether [`Context::close`] has been called.
    #[must_use]
    pub fn is_closing(&self) -> bool {
        self.inner.closing.load(Ordering::Acquire)
    }

    /// Resolves once [`Context::close`] has been called. Lock-free to poll:
    /// only the connection's own task waits on it.
    pub(crate) async fn close_requested(&self) {
        std::future::poll_fn(|cx| {
            if self.is_closing() {
                return std::task::Poll::Ready(());
            }
            self.inner.close_requested.register(cx.waker());
            if self.is_closing() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }

    pub(crate) fn requested_close(&self) -> Option<(CloseCode, Utf8Bytes)> {
        self.inner
            .close
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The connection's outbound queue.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.inner.outbox
    }

    /// Queues a ping unless the queue is full (a full queue means the peer is
    /// busy reading, or dead: the write timeout handles that).
    pub(crate) fn try_ping(&self) {
        let _ = self.inner.outbox.try_push(Outbound::Ping);
    }

    /// Charges a broadcast of `bytes` to `receivers` to this connection's
    /// fan-out budget.
    fn charge_fanout(&self, bytes: usize, receivers: usize) {
        if let Some(budget) = &self.inner.fanout {
            budget
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .charge(Instant::now(), bytes, receivers);
        }
    }

    /// How long this connection's next frame must wait for its fan-out
    /// budget, if it is spent.
    pub(crate) fn fanout_wait(&self) -> Option<Duration> {
        self.inner
            .fanout
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .wait(Instant::now())
    }
}

/// A broadcast being prepared; `.await` it to send.
#[must_use = "a broadcast does nothing until it is awaited"]
pub struct Broadcast<'a, M> {
    ctx: &'a Context,
    message: &'a M,
    groups: Vec<&'a str>,
    exclude_sender: bool,
}

impl<'a, M: Message + Sync> Broadcast<'a, M> {
    /// Sends to `group` instead of the connection's own groups; call again
    /// for more groups. A connection in several of them gets one copy per
    /// group.
    pub fn to(mut self, group: &'a str) -> Self {
        self.groups.push(group);
        self
    }

    /// Skips this connection.
    pub fn exclude_sender(mut self) -> Self {
        self.exclude_sender = true;
        self
    }

    async fn send(self) -> Result<(), LayerError> {
        let groups = if self.groups.is_empty() {
            self.ctx.groups()
        } else {
            self.groups
                .iter()
                .map(|group| GroupName::new(group))
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut message = LayerMessage::broadcast(self.message);
        if self.exclude_sender {
            message = message.excluding(self.ctx.inner.channel.clone());
        }
        // What each receiver's queue counts for it.
        let bytes = message.text().len() + crate::ws::outbox::FRAME_OVERHEAD;
        // Every group is tried, even after one fails; the sender is charged
        // for what reached the local receivers.
        let (receivers, result) =
            crate::layer::send_to_groups(self.ctx.inner.layer.inner(), &groups, &message).await;
        self.ctx.charge_fanout(bytes, receivers);
        result
    }
}

impl<'a, M: Message + Sync> IntoFuture for Broadcast<'a, M> {
    type Output = Result<(), LayerError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl<M> std::fmt::Debug for Broadcast<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcast")
            .field("groups", &self.groups)
            .field("exclude_sender", &self.exclude_sender)
            .finish_non_exhaustive()
    }
}

/// A close reason is at most 123 bytes; cut on a character boundary.
fn truncate_reason(reason: &str) -> Utf8Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Utf8Bytes::from(&reason[..end])
}
