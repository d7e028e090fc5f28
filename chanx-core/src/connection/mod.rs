//! The per-connection loop, independent of how the socket was accepted.
//!
//! One task reads frames and dispatches them in order. A frame sent to the
//! client goes out at once from its sender when the socket takes it (TCP);
//! what does not is drained from the connection's byte-bounded [`Outbox`]
//! by a second task, the writer ([`crate::ws::write`]).
//!
//! While a handler runs, the loop keeps reading control frames (answering
//! pings, hearing pongs) and keeps the heartbeat, so a long handler never
//! makes a live client look idle; the next data message is held (one
//! message at most) until the handler is done.
//!
//! Shutdown, a client close, a transport error, a limit or a server-side
//! close ends the loop; [`EndReason`] records which.

pub(crate) mod flag;
pub(crate) mod limits;

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http::Extensions;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use tracing::Instrument;

pub(crate) use limits::{FanoutBudget, MessageLimiter, Verdict};

use crate::auth::{AuthError, Authenticators as _};
use crate::config::ServerConfig;
use crate::consumer::{Consumer, GroupsOutcome, Outcome};
use crate::context::{ConnectionId, Context, RequestInfo};
use crate::layer::{ChannelName, GroupName, Inbox, Layer, LayerMessage, MessageKind};
use crate::message::encode;
use crate::metrics::ChannelMetrics;
use crate::protocol;
use crate::settings::{Effective, Settings};
use crate::topic::{Routed, Subscriptions};
use crate::wire::Echo;
use crate::wire::{Envelope, FrameError};
use crate::ws::CloseCode;
use crate::ws::outbox::{Outbound, Outbox};
use crate::ws::read::{FrameReader, Incoming, ReadError, ReadLimits};
use crate::ws::write::{Sink, WriteSettings, write_loop};

/// The read direction of an upgraded connection.
pub(crate) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;

/// A connection on which the WebSocket upgrade has completed, split into
/// its two directions (the reader loop and the writer task each own one).
pub(crate) struct Socket {
    read: BoxRead,
    write: Sink,
    /// Bytes the HTTP server read past the upgrade request.
    initial: Bytes,
}

impl Socket {
    /// Any byte stream (an in-memory one in tests, an embedding server's).
    pub(crate) fn new<I: AsyncRead + AsyncWrite + Send + Unpin + 'static>(io: I) -> Self {
        let (read, write) = tokio::io::split(io);
        Self {
            read: Box::new(read),
            write: Sink::Io(Box::new(write)),
            initial: Bytes::new(),
        }
    }

    /// A TCP stream, split without a lock between its directions; frames
    /// can be written at once by their senders while the writer is idle.
    pub(crate) fn tcp(stream: tokio::net::TcpStream, initial: Bytes) -> Self {
        let (read, write) = stream.into_split();
        Self {
            read: Box::new(read),
            write: Sink::Tcp(Arc::new(write)),
            initial,
        }
    }
}

type Reader = FrameReader<BoxRead>;

/// Settings for one connection.
#[derive(Debug)]
pub(crate) struct ConnectionParams {
    pub(crate) id: ConnectionId,
    pub(crate) request: RequestInfo,
    pub(crate) state: Arc<Extensions>,
    pub(crate) authenticators: Arc<Extensions>,
    pub(crate) layer: Layer,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) ignored_actions: Arc<[String]>,
    /// Raised when the server shuts down.
    pub(crate) shutdown: crate::router::StopFlag,
}

/// Why a connection loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// The client sent a close frame (with this code, if any).
    ClientClosed(Option<u16>),
    /// The stream ended without a close frame.
    Eof,
    /// The client sent a message or frame over the size limit.
    TooBig,
    /// The client did not finish a message within the message timeout.
    SlowMessage,
    /// The client broke the WebSocket protocol.
    Protocol,
    /// The client sent text that is not UTF-8.
    InvalidUtf8,
    /// The socket failed (reset, I/O error, write timeout).
    Transport,
    /// A hook or handler closed the connection, or connect was refused.
    ServerClosed,
    /// The connection's queues overflowed: it could not keep up.
    TooSlow,
    /// The client sent nothing, not even a pong, for the idle timeout.
    Idle,
    /// The client kept sending over its rate limit.
    RateLimited,
    /// The server is shutting down.
    Shutdown,
}

impl EndReason {
    /// The close frame the server sends when nothing else was asked for.
    fn close_frame(self) -> (CloseCode, &'static str) {
        match self {
            Self::Shutdown => (CloseCode::GOING_AWAY, "server shutting down"),
            Self::TooBig => (CloseCode::TOO_BIG, "message too big"),
            Self::SlowMessage => (CloseCode::POLICY, "message not completed in time"),
            Self::Protocol => (CloseCode::PROTOCOL_ERROR, "protocol error"),
            Self::InvalidUtf8 => (CloseCode::INVALID_DATA, "text frame is not UTF-8"),
            Self::TooSlow => (CloseCode::POLICY, "too slow: inbox full"),
            Self::Idle => (CloseCode::GOING_AWAY, "idle timeout"),
            Self::RateLimited => (CloseCode::POLICY, "rate limit exceeded"),
            Self::ClientClosed(_) | Self::Eof | Self::ServerClosed | Self::Transport => {
                (CloseCode::NORMAL, "")
            }
        }
    }

    fn from_read(error: &ReadError) -> Self {
        match error {
            ReadError::Eof => Self::Eof,
            ReadError::Io(_) => Self::Transport,
            ReadError::TooBig => Self::TooBig,
            ReadError::Protocol(_) => Self::Protocol,
            ReadError::InvalidUtf8 => Self::InvalidUtf8,
            ReadError::TimedOut => Self::SlowMessage,
        }
    }
}

/// How long the writer may take to drain after the loop ends.
pub(crate) const WRITER_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server waits for the client's answer to its close frame
/// before dropping the socket.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Runs one connection of consumer `C` to its end.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice in the future"
)]
pub(crate) fn run<C: Consumer>(
    socket: Socket,
    mut params: ConnectionParams,
    metrics: Arc<ChannelMetrics>,
) -> impl Future<Output = EndReason> {
    // An `async move` block rather than an `async fn`: an async fn's future
    // keeps its arguments twice, as arguments and as the locals they are
    // moved into (424 bytes per connection here); a block uses what it
    // captured in place.
    async move {
        crate::metrics::connection_opened();
        let config = Arc::clone(&params.config);
        let outbox = Arc::new(
            match &socket.write {
                Sink::Tcp(socket) => {
                    Outbox::with_socket(config.outbound_queue_bytes, Arc::clone(socket))
                }
                Sink::Io(_) => Outbox::new(config.outbound_queue_bytes),
            }
            .counted(Arc::clone(&metrics)),
        );
        let writer_failed = Arc::new(flag::Flag::default());
        let writer = tokio::spawn(write_loop(
            socket.write,
            Arc::clone(&outbox),
            WriteSettings {
                write_buffer: config.write_buffer_size,
                write_timeout: config.write_timeout,
            },
            Arc::clone(&writer_failed),
        ));
        let effective = Effective::resolve::<C>(&params.settings, &params.ignored_actions);
        let direct_broadcasts = !effective.send_completion && effective.frames.is_none();
        let ctx = Context::new(
            params.id,
            params.layer.clone(),
            std::mem::take(&mut params.request),
            Arc::clone(&params.state),
            Arc::clone(&outbox),
            config.fanout_limit,
            &effective,
        );
        let mut inbox = params
            .layer
            .inner()
            .register(ctx.channel_name(), config.inbox_bytes);
        // If this future is dropped before the end (an embedding server cancels
        // it, a test times out), the guard still leaves the layer and stops the
        // writer.
        let mut guard = Cleanup {
            layer: params.layer.clone(),
            channel: ctx.channel_name().clone(),
            outbox: Arc::clone(&outbox),
            writer: Some(writer),
        };
        if direct_broadcasts {
            // Broadcasts need nothing from this loop (no completion frame, no
            // camelCase, no logging): they go straight to the writer, in order
            // with this connection's own replies.
            inbox.deliver_broadcasts_to(Arc::clone(&outbox));
        }
        let mut reader = FrameReader::new(
            socket.read,
            ReadLimits {
                max_frame: config.max_frame_size,
                max_message: config.max_message_size,
                read_buffer: config.read_buffer_size,
                message_timeout: config.message_timeout,
            },
        );
        reader.prepend(&socket.initial);
        drop(socket.initial);

        let mut hosted: Option<Hosted<C>> = None;
        let end = tokio::select! {
            end = drive::<C>(&ctx, &mut reader, &mut inbox, &params, &effective, &mut hosted, &metrics) => end,
            // The writer is gone (dead peer, write timeout): stop reading too,
            // even in the middle of a handler.
            () = writer_failed.raised() => EndReason::Transport,
            // Shutting down: give the frame in hand a bounded time to finish.
            () = async {
                params.shutdown.raised().await;
                tokio::time::sleep(config.shutdown_timeout).await;
            } => EndReason::Shutdown,
        };
        tracing::debug!(?end, "connection loop ended");
        if let Some(hosted) = &mut hosted {
            // Each subscription's `#[on_unsubscribe]` hook, bounded as a
            // handler in progress at shutdown is.
            // Boxed, as every topic and presence path here: a connection that
            // never uses them does not carry their futures' size.
            let ended = tokio::time::timeout(
                config.shutdown_timeout,
                Box::pin(hosted.topics.end_all(&ctx)),
            )
            .await;
            if ended.is_err() {
                tracing::warn!("#[on_unsubscribe] hooks did not finish in time");
            }
        }
        drop(hosted);
        if let Some(presence) = params.layer.presence_if_started() {
            Box::pin(presence.untrack_all(ctx.channel_name())).await;
        }
        params.layer.inner().unregister(ctx.channel_name()).await;
        drop(inbox);
        let Some(mut writer) = guard.disarm() else {
            return end;
        };

        // Always queue a close so the writer ends even when clones of the context
        // live on in user tasks. A client's close is answered with its own code.
        let (code, reason) = match end {
            EndReason::ClientClosed(code) => (
                code.and_then(CloseCode::from_wire)
                    .unwrap_or(CloseCode::NORMAL),
                Utf8Bytes::from_static(""),
            ),
            _ => ctx.requested_close().unwrap_or_else(|| {
                let (code, reason) = end.close_frame();
                (code, Utf8Bytes::from_static(reason))
            }),
        };
        crate::metrics::connection_closed(
            code.into(),
            matches!(end, EndReason::ClientClosed(_)),
            end == EndReason::TooSlow,
        );
        outbox.push_close(code, reason);
        drop(ctx);
        // While the writer drains, read (and drop) what the client still sends
        // until its answering close, so the socket is not reset under our close
        // frame.
        let linger = async {
            if matches!(
                end,
                EndReason::ClientClosed(_) | EndReason::Eof | EndReason::Transport
            ) {
                return;
            }
            let _ = tokio::time::timeout(CLOSE_LINGER, async {
                while let Ok(incoming) = reader.next().await {
                    if let Incoming::Close(_) = incoming {
                        break;
                    }
                }
            })
            .await;
        };
        let drained = tokio::time::timeout(WRITER_DRAIN_TIMEOUT, async {
            let (written, ()) = tokio::join!(&mut writer, linger);
            written
        })
        .await;
        if drained.is_err() {
            tracing::debug!("writer did not drain in time; aborting it");
            writer.abort();
        }
        end
    }
}

/// Leaves the layer and stops the writer when a connection future is dropped
/// before its normal end.
struct Cleanup {
    layer: Layer,
    channel: ChannelName,
    outbox: Arc<Outbox>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

impl Cleanup {
    /// The normal end has been reached: hand the writer back, clean nothing.
    fn disarm(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        self.writer.take()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        writer.abort();
        drop(self.outbox.shut());
        let (layer, channel) = (self.layer.clone(), self.channel.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Some(presence) = layer.presence_if_started() {
                    presence.untrack_all(&channel).await;
                }
                layer.inner().unregister(&channel).await;
            });
        }
    }
}

/// Liveness: when to ping, when the client counts as idle. One timer
/// serves both; it is re-armed lazily (a frame only moves `last_heard`), so
/// a busy connection costs no timer work per frame. (A message's own
/// deadline is the frame reader's.)
struct Heartbeat {
    last_heard: Instant,
    pinged: bool,
    ping_interval: Duration,
    idle_timeout: Duration,
}

impl Heartbeat {
    fn new(config: &ServerConfig, now: Instant) -> Self {
        Self {
            last_heard: now,
            pinged: false,
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
        }
    }

    /// The client proved it is alive (a data message, a pong).
    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.pinged = false;
    }

    fn deadline(&self) -> Instant {
        if self.pinged {
            self.last_heard + self.idle_timeout
        } else {
            self.last_heard + self.ping_interval.min(self.idle_timeout)
        }
    }

    /// The timer fired: ping, or end the connection. `paused` means the
    /// server itself is not reading (a held message, fan-out debt), so
    /// silence is not the client's fault.
    fn fire(
        &mut self,
        timer: &mut Pin<&mut Sleep>,
        ctx: &Context,
        paused: bool,
    ) -> Option<EndReason> {
        let now = Instant::now();
        if paused {
            self.heard(now);
        }
        let quiet = now.saturating_duration_since(self.last_heard);
        if quiet >= self.idle_timeout {
            tracing::debug!(?quiet, "closing an idle connection");
            return Some(EndReason::Idle);
        }
        if quiet >= self.ping_interval && !self.pinged {
            ctx.try_ping();
            self.pinged = true;
        }
        timer.as_mut().reset(self.deadline().into());
        None
    }
}

/// What the loop keeps between frames.
struct LoopState {
    heartbeat: Heartbeat,
    limiter: Option<MessageLimiter>,
    /// A data message read while a handler ran, handled next.
    pending: Option<Incoming>,
    /// Not reading until then: the connection's broadcasts are over its
    /// fan-out budget.
    throttled_until: Option<Instant>,
}

impl LoopState {
    /// Applies the rate limit to a frame.
    fn verdict(&mut self, frames: u32) -> Verdict {
        match &mut self.limiter {
            Some(limiter) => limiter.check(Instant::now(), frames),
            None => Verdict::Allow,
        }
    }

    /// Handles a control frame; `Some` ends the connection.
    fn control(&mut self, ctx: &Context, frame: Incoming) -> Result<Option<Incoming>, EndReason> {
        match frame {
            Incoming::Ping(payload) => match self.verdict(1) {
                Verdict::Allow => ctx.outbox().set_pong(payload),
                Verdict::Refuse => {}
                Verdict::Close => return Err(rate_limited()),
            },
            Incoming::Pong(_) => {
                self.heartbeat.heard(Instant::now());
                if self.verdict(1) == Verdict::Close {
                    return Err(rate_limited());
                }
            }
            Incoming::Close(close) => {
                return Err(EndReason::ClientClosed(close.map(|(code, _)| code)));
            }
            data => return Ok(Some(data)),
        }
        Ok(None)
    }
}

fn rate_limited() -> EndReason {
    tracing::info!("closing a connection that keeps exceeding its rate limit");
    EndReason::RateLimited
}

/// A connection's consumer and its topic subscriptions.
struct Hosted<C> {
    consumer: C,
    topics: Subscriptions,
    /// The topic of a standalone route, for frames without one.
    default_topic: Option<Box<str>>,
    max_subscriptions: usize,
    metrics: Arc<ChannelMetrics>,
}

async fn drive<C: Consumer>(
    ctx: &Context,
    reader: &mut Reader,
    inbox: &mut Inbox,
    params: &ConnectionParams,
    effective: &Effective,
    hosted: &mut Option<Hosted<C>>,
    metrics: &Arc<ChannelMetrics>,
) -> EndReason {
    let consumer = match establish::<C>(ctx, params, effective).await {
        Ok(consumer) => consumer,
        Err(end) => return end,
    };
    let config = &params.config;
    let consumer = hosted.insert(Hosted {
        consumer,
        topics: Subscriptions::default(),
        default_topic: None,
        max_subscriptions: config.max_subscriptions,
        metrics: Arc::clone(metrics),
    });
    if let Some(meta) = C::CHANNEL.default_topic {
        let topic = match crate::topic::fill_pattern(meta.pattern, |name| ctx.param(name)) {
            Ok(topic) => topic,
            Err(missing) => {
                tracing::error!(
                    pattern = meta.pattern,
                    missing,
                    "the route has no parameter for the topic's pattern"
                );
                ctx.close(CloseCode::INTERNAL_ERROR, "route lacks a topic parameter");
                return EndReason::ServerClosed;
            }
        };
        let echo = Echo::topic(&topic, None, None);
        let subscribed = Box::pin(consumer.topics.subscribe(
            ctx,
            C::CHANNEL.topics,
            config.max_subscriptions,
            &topic,
            echo,
        ))
        .await;
        if !subscribed {
            ctx.close(CloseCode::POLICY, "subscription refused");
            return EndReason::ServerClosed;
        }
        consumer.default_topic = Some(topic.into());
    }
    ctx.retain_headers(&config.retain_headers);

    let now = Instant::now();
    let mut state = LoopState {
        heartbeat: Heartbeat::new(config, now),
        limiter: config
            .rate_limit
            .map(|limit| MessageLimiter::new(limit, now)),
        pending: None,
        throttled_until: None,
    };
    let shutdown = &params.shutdown;
    // One-shot signals and the timer, created once: polling them again costs
    // no new registration.
    let shutdown_signal = shutdown.raised();
    let close_signal = ctx.close_requested();
    let overflow_signal = inbox.overflow_signal();
    let timer = tokio::time::sleep_until(state.heartbeat.deadline().into());
    tokio::pin!(shutdown_signal, close_signal, overflow_signal, timer);
    loop {
        if ctx.is_closing() {
            return EndReason::ServerClosed;
        }
        if shutdown.is_raised() {
            return finish_inbox(consumer, ctx, inbox).await;
        }
        let frame = match state.pending.take() {
            Some(frame) => frame,
            None => {
                let throttled = state.throttled_until;
                tokio::select! {
                    biased;
                    // The socket first: a frame that is ready costs one poll.
                    // Layer messages cannot starve behind a busy client: they
                    // are drained after every client frame, below.
                    frame = reader.next(), if throttled.is_none() => match frame {
                        Ok(frame) => frame,
                        Err(error) => {
                            tracing::debug!(%error, "read ended");
                            return EndReason::from_read(&error);
                        }
                    },
                    () = &mut overflow_signal => return EndReason::TooSlow,
                    message = inbox.next_message() => {
                        let Some(message) = message else { return EndReason::ServerClosed };
                        let work = handle_layer_message(consumer, ctx, message);
                        tokio::pin!(work);
                        if let Some(end) = while_reading(work, ctx, reader, &mut state, &mut timer).await {
                            return end;
                        }
                        throttle(ctx, &mut state);
                        continue;
                    }
                    () = &mut shutdown_signal => return finish_inbox(consumer, ctx, inbox).await,
                    () = &mut close_signal => return EndReason::ServerClosed,
                    () = &mut timer => {
                        if let Some(end) = state.heartbeat.fire(&mut timer, ctx, throttled.is_some()) {
                            return end;
                        }
                        continue;
                    }
                    () = until(throttled) => {
                        state.throttled_until = None;
                        state.heartbeat.heard(Instant::now());
                        continue;
                    }
                }
            }
        };
        let frame = match state.control(ctx, frame) {
            Ok(Some(data)) => data,
            Ok(None) => continue,
            Err(end) => return end,
        };
        state.heartbeat.heard(Instant::now());
        match state.verdict(reader.last_frames()) {
            Verdict::Allow => {}
            Verdict::Refuse => {
                crate::metrics::rejected("rate_limited");
                // Never waits: a flooding client that does not read must not
                // stall the loop that is about to close it.
                let frame =
                    Outbound::Text(ctx.outgoing(Utf8Bytes::from_static(protocol::rate_limited())));
                let _ = ctx.outbox().try_push(frame);
                continue;
            }
            Verdict::Close => return rate_limited(),
        }
        let end = match frame {
            Incoming::Text(text) => {
                metrics.received(text.len());
                let work = handle_text(consumer, ctx, &text);
                tokio::pin!(work);
                while_reading(work, ctx, reader, &mut state, &mut timer).await
            }
            Incoming::Binary(bytes) => {
                metrics.received(bytes.len());
                crate::metrics::rejected("json_invalid");
                // Like Chanx: an error frame, and no `complete` (the frame
                // never reached a handler's validation).
                send(ctx, FrameError::binary_frame().to_frame(&[])).await;
                None
            }
            // Control frames were handled above.
            Incoming::Ping(_) | Incoming::Pong(_) | Incoming::Close(_) => None,
        };
        if let Some(end) = end {
            return end;
        }
        throttle(ctx, &mut state);
        // Events that arrived meanwhile, so a client that keeps sending
        // cannot starve them.
        if let Some(end) = drain_inbox(consumer, ctx, inbox).await {
            return end;
        }
    }
}

/// Resolves at `deadline`, or never.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Stops reading the client while its broadcasts are over its fan-out
/// budget.
fn throttle(ctx: &Context, state: &mut LoopState) {
    if let Some(wait) = ctx.fanout_wait() {
        tracing::trace!(?wait, "fan-out budget spent; pausing reads");
        state.throttled_until = Some(Instant::now() + wait);
    }
}

/// Runs `work` (a handler) to its end while reading control frames and
/// keeping the heartbeat. A data message read meanwhile is held in
/// `state.pending` (reading stops until it is handled). Returns why the
/// connection must end, if something ended it meanwhile; the handler still
/// finishes first.
///
/// `work` is pinned by the caller, so the connection's future holds it once.
async fn while_reading<F: Future<Output = ()>>(
    mut work: Pin<&mut F>,
    ctx: &Context,
    reader: &mut Reader,
    state: &mut LoopState,
    timer: &mut Pin<&mut Sleep>,
) -> Option<EndReason> {
    let mut end = None;
    loop {
        let paused = state.pending.is_some() || state.throttled_until.is_some();
        let reading = !paused && end.is_none();
        tokio::select! {
            biased;
            () = &mut work => break,
            frame = reader.next(), if reading => match frame {
                Ok(frame) => match state.control(ctx, frame) {
                    Ok(Some(data)) => state.pending = Some(data),
                    Ok(None) => {}
                    Err(ended) => end = Some(ended),
                },
                Err(error) => {
                    tracing::debug!(%error, "read ended during a handler");
                    end = Some(EndReason::from_read(&error));
                }
            },
            () = timer.as_mut(), if end.is_none() => {
                end = state.heartbeat.fire(timer, ctx, paused);
            }
        }
    }
    if state.pending.is_some() {
        // Reading was paused for the held message: not the client's silence.
        state.heartbeat.heard(Instant::now());
    }
    end
}

/// Layer messages handled between two client frames at most, so a client
/// that keeps sending cannot starve its broadcasts and events.
const INBOX_BURST: usize = 32;

/// Handles the layer messages that have already arrived (up to
/// [`INBOX_BURST`]).
async fn drain_inbox<C: Consumer>(
    consumer: &mut Hosted<C>,
    ctx: &Context,
    inbox: &mut Inbox,
) -> Option<EndReason> {
    for _ in 0..INBOX_BURST {
        if inbox.is_overflowed() {
            return Some(EndReason::TooSlow);
        }
        let message = inbox.try_next()?;
        handle_layer_message(consumer, ctx, message).await;
    }
    None
}

/// At shutdown: every event already delivered is handled (and its reply
/// queued) before the 1001 close. The shutdown timeout bounds this.
async fn finish_inbox<C: Consumer>(
    consumer: &mut Hosted<C>,
    ctx: &Context,
    inbox: &mut Inbox,
) -> EndReason {
    while !inbox.is_overflowed() {
        let Some(message) = inbox.try_next() else {
            break;
        };
        handle_layer_message(consumer, ctx, message).await;
    }
    EndReason::Shutdown
}

/// Refuses a connection that did not authenticate: the `authentication`
/// frame with the status (unless it is a server error, as in Chanx), then a
/// close with `4000 + status`.
async fn refuse(ctx: &Context, error: &AuthError, send_frame: bool) {
    tracing::info!(
        status = error.status(),
        detail = error.detail(),
        "connection not authorised"
    );
    if send_frame && error.status() < 500 {
        let data = serde_json::json!({ "detail": error.detail() });
        send(ctx, protocol::authentication(error.status(), Some(data))).await;
    }
    match CloseCode::application(4000 + error.status()) {
        Ok(code) => ctx.close(code, error.status_text()),
        Err(_) => ctx.close(CloseCode::POLICY, error.status_text()),
    }
}

/// Authentication, the consumer's connect hook, the authentication frame,
/// the declared and built groups and the `post_authentication` hook.
async fn establish<C: Consumer>(
    ctx: &Context,
    params: &ConnectionParams,
    effective: &Effective,
) -> Result<C, EndReason> {
    let auth_data = match authenticate::<C>(ctx, &params.authenticators).await {
        Ok(data) => data,
        Err(error) => {
            refuse(ctx, &error, effective.send_authentication).await;
            return Err(EndReason::ServerClosed);
        }
    };

    let connected = AssertUnwindSafe(C::connect(ctx)).catch_unwind().await;
    let consumer = match connected {
        Ok(Ok(consumer)) => consumer,
        Ok(Err(reject)) => {
            if let Some(error) = reject.auth_error() {
                refuse(ctx, error, true).await;
            } else {
                tracing::info!(code = %reject.code(), reason = reject.reason(), "connection refused");
                ctx.close(reject.code(), reject.reason());
            }
            return Err(EndReason::ServerClosed);
        }
        Err(panic) => {
            tracing::error!(panic = panic_message(&*panic), "connect hook panicked");
            ctx.close(CloseCode::INTERNAL_ERROR, "connect failed");
            return Err(EndReason::ServerClosed);
        }
    };
    let mut consumer = consumer;

    // The authentication frame comes first: broadcasts reach the client as
    // soon as it is in its groups.
    if effective.send_authentication {
        send(ctx, protocol::authentication(200, Some(auth_data))).await;
    }

    let mut groups = Vec::new();
    for template in C::CHANNEL.groups {
        match crate::group::expand(template, |name| ctx.param(name)) {
            Ok(group) => groups.push(group),
            Err(problem) => {
                tracing::info!(template, %problem, "refusing connection: bad group name");
                ctx.close(CloseCode::POLICY, "invalid group name");
                return Err(EndReason::ServerClosed);
            }
        }
    }
    let built = AssertUnwindSafe(consumer.build_groups(ctx))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            GroupsOutcome(Err(format!("panicked: {}", panic_message(&*panic)).into()))
        });
    match built.0 {
        Ok(names) => {
            for name in names {
                match GroupName::new(&name) {
                    Ok(group) => groups.push(group),
                    Err(error) => {
                        tracing::error!(%error, "#[build_groups] returned an invalid group name");
                        ctx.close(CloseCode::INTERNAL_ERROR, "invalid group name");
                        return Err(EndReason::ServerClosed);
                    }
                }
            }
        }
        Err(error) => {
            tracing::error!(%error, "#[build_groups] hook failed");
            ctx.close(CloseCode::INTERNAL_ERROR, "cannot build groups");
            return Err(EndReason::ServerClosed);
        }
    }
    for group in groups {
        if let Err(error) = ctx.join_group(group).await {
            tracing::error!(%error, "cannot join the channel's groups");
            ctx.close(CloseCode::INTERNAL_ERROR, "channel layer unavailable");
            return Err(EndReason::ServerClosed);
        }
    }

    match AssertUnwindSafe(consumer.post_authentication(ctx))
        .catch_unwind()
        .await
    {
        Ok(outcome) => match outcome.0 {
            Ok(Some(reply)) => send(ctx, reply).await,
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "post_authentication hook failed"),
        },
        Err(panic) => tracing::error!(
            panic = panic_message(&*panic),
            "post_authentication hook panicked"
        ),
    }
    if let Some(template) = C::CHANNEL.presence {
        let group = match crate::group::expand(template, |name| ctx.param(name)) {
            Ok(group) => group,
            Err(problem) => {
                tracing::info!(template, %problem, "refusing connection: bad presence group");
                ctx.close(CloseCode::POLICY, "invalid group name");
                return Err(EndReason::ServerClosed);
            }
        };
        let key = C::presence_key(ctx);
        let meta = AssertUnwindSafe(Box::pin(consumer.presence_meta(ctx)))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                tracing::error!(
                    panic = panic_message(&*panic),
                    "presence_meta hook panicked"
                );
                serde_json::Map::new()
            });
        if let Err(error) = Box::pin(ctx.track(group.as_str(), key.as_deref(), meta)).await {
            tracing::error!(%error, "cannot track the connection's presence");
            ctx.close(CloseCode::INTERNAL_ERROR, "presence unavailable");
            return Err(EndReason::ServerClosed);
        }
    }
    Ok(consumer)
}

async fn handle_text<C: Consumer>(hosted: &mut Hosted<C>, ctx: &Context, text: &str) {
    let text = ctx.incoming(text);
    let envelope = match Envelope::parse(&text) {
        Ok(envelope) => envelope,
        Err(error) => {
            ctx.log_received("", text.len());
            // Not followed by `complete`, as in Chanx: the frame never
            // reached a handler's validation.
            tracing::debug!(kind = error.kind(), "rejected frame");
            crate::metrics::rejected(error.kind());
            send(
                ctx,
                rejection(&error, C::CHANNEL.client_actions(), Echo::NONE),
            )
            .await;
            return;
        }
    };
    ctx.log_received(&envelope.action, text.len());
    tracing::trace!(action = &*envelope.action, "frame");
    let topic = envelope
        .topic
        .as_deref()
        .or(hosted.default_topic.as_deref());
    let Some(topic) = topic else {
        let span = tracing::debug_span!(
            "message",
            channel = C::CHANNEL.name,
            action = &*envelope.action
        );
        let started = Instant::now();
        let outcome = guarded(hosted.consumer.dispatch(ctx, &envelope))
            .instrument(span)
            .await;
        hosted.metrics.handled(&envelope.action, started.elapsed());
        let answer = response(
            outcome,
            &envelope,
            envelope.echo(),
            C::CHANNEL.client_actions(),
        );
        if let Some(answer) = answer {
            send(ctx, answer).await;
        }
        if ctx.completion() {
            send_static(ctx, protocol::complete()).await;
        }
        return;
    };
    let routed = Box::pin(hosted.topics.route(
        ctx,
        C::CHANNEL.topics,
        hosted.max_subscriptions,
        topic,
        &envelope,
    ))
    .await;
    if let Routed::Dispatched(outcome, meta) = routed {
        let echo = Echo::topic(topic, envelope.reference, None);
        let answer = response(outcome, &envelope, echo, meta.client_actions());
        let complete = ctx.completion().then(|| encode(&protocol::Complete, echo));
        for frame in answer.into_iter().chain(complete) {
            send(ctx, frame).await;
        }
    }
}

/// The answer to a dispatched client frame: its reply, or the error frame
/// for what went wrong, stamped with `echo`. Not async, so the caller's
/// future holds one `send` for every outcome.
fn response<'e>(
    outcome: Outcome,
    envelope: &Envelope<'_>,
    echo: Echo<'_>,
    actions: impl Iterator<Item = &'e str>,
) -> Option<String> {
    match outcome {
        Outcome::Reply(reply) => reply,
        Outcome::Failed(error) => {
            tracing::error!(action = &*envelope.action, %error, "handler failed");
            Some(protocol::handler_failed(&envelope.action, echo))
        }
        Outcome::Invalid(error) => {
            tracing::debug!(
                action = &*envelope.action,
                kind = error.kind(),
                "invalid payload"
            );
            crate::metrics::rejected(error.kind());
            Some(rejection(&error, actions, echo))
        }
        Outcome::Denied(denied) => {
            tracing::debug!(
                action = &*envelope.action,
                status = denied.status(),
                "permission denied"
            );
            crate::metrics::rejected("permission_denied");
            Some(protocol::denied(denied.status(), denied.detail(), echo))
        }
        Outcome::Unknown => {
            crate::metrics::rejected("union_tag_invalid");
            let error = FrameError::UnknownAction {
                tag: envelope.action.to_string(),
            };
            Some(rejection(&error, actions, echo))
        }
    }
}

/// The error frame for a rejected client frame; an unknown action lists the
/// `actions` the consumer (or topic) takes, however it was found unknown.
fn rejection<'e>(
    error: &FrameError,
    actions: impl Iterator<Item = &'e str>,
    echo: Echo<'_>,
) -> String {
    let expected: Vec<&str> = match error {
        FrameError::UnknownAction { .. } => actions.collect(),
        _ => Vec::new(),
    };
    error.to_frame_with_echo(&expected, echo)
}

async fn handle_layer_message<C: Consumer>(
    hosted: &mut Hosted<C>,
    ctx: &Context,
    message: LayerMessage,
) {
    match message.kind() {
        MessageKind::Broadcast => {
            let _ = ctx.send_frame(message.frame().clone()).await;
            if ctx.completion() {
                send_static(ctx, protocol::group_complete()).await;
            }
        }
        MessageKind::Event => {
            let envelope = match Envelope::parse(message.text()) {
                Ok(envelope) => envelope,
                Err(error) => {
                    tracing::warn!(%error, "dropping a malformed event");
                    return;
                }
            };
            let outcome = match envelope.topic.as_deref() {
                None => guarded(hosted.consumer.dispatch_event(ctx, &envelope)).await,
                Some(topic) => match Box::pin(hosted.topics.event(ctx, topic, &envelope)).await {
                    Some(outcome) => outcome,
                    // Left meanwhile: as in Chanx, nothing to relay.
                    None => return,
                },
            };
            match outcome {
                Outcome::Reply(Some(reply)) => send(ctx, reply).await,
                Outcome::Reply(None) => {}
                Outcome::Failed(error) => {
                    tracing::error!(event = &*envelope.action, %error, "event handler failed");
                }
                Outcome::Invalid(error) => {
                    tracing::warn!(event = &*envelope.action, %error, "event payload does not match its handler");
                }
                Outcome::Denied(denied) => {
                    tracing::debug!(event = &*envelope.action, %denied, "event denied");
                }
                Outcome::Unknown => {
                    tracing::debug!(
                        event = &*envelope.action,
                        "no event handler for this action"
                    );
                }
            }
            if ctx.completion() {
                match envelope.topic.as_deref() {
                    None => send_static(ctx, protocol::event_complete()).await,
                    Some(topic) => {
                        let echo = Echo::topic(topic, None, envelope.seq);
                        send(ctx, encode(&protocol::EventComplete, echo)).await;
                    }
                }
            }
        }
    }
}

/// Runs the consumer's authenticators and channel permissions; returns the
/// `data` for the authentication frame. A "not authenticated" refusal is
/// 403 rather than 401 when the first authenticator has no
/// `WWW-Authenticate` scheme, as in DRF.
async fn authenticate<C: Consumer>(
    ctx: &Context,
    registry: &Extensions,
) -> Result<serde_json::Value, AuthError> {
    let challenges = C::Authenticators::challenges(registry);
    let adjust = |error: AuthError| {
        if error.status() == 401 && !challenges {
            AuthError::new(403, error.detail())
        } else {
            error
        }
    };
    let authenticated = AssertUnwindSafe(C::Authenticators::authenticate(registry, ctx))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("authenticator panicked");
            Err(AuthError::new(500, "Authentication failed."))
        })
        .map_err(adjust)?;
    let mut data = None;
    if let Some(authenticated) = authenticated {
        ctx.set_identity(authenticated.identity);
        data = authenticated.data;
    }
    AssertUnwindSafe(C::check_permissions(ctx))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("permission check panicked");
            Err(AuthError::new(500, "Permission check failed."))
        })
        .map_err(adjust)?;
    Ok(data.unwrap_or_else(|| serde_json::json!({ "detail": "OK" })))
}

async fn send(ctx: &Context, frame: String) {
    // A failed send means the writer is gone: the loop notices on its next
    // read, so there is nothing more to do here.
    let _ = ctx.send_frame(Utf8Bytes::from(frame)).await;
}

async fn send_static(ctx: &Context, frame: &'static str) {
    let _ = ctx.send_frame(Utf8Bytes::from_static(frame)).await;
}

/// Runs a dispatch, turning a panic into [`Outcome::Failed`]: the client gets
/// the same error frame, and the connection and the consumer live on.
async fn guarded(dispatch: impl Future<Output = Outcome>) -> Outcome {
    match AssertUnwindSafe(dispatch).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => Outcome::Failed(format!("panicked: {}", panic_message(&*panic)).into()),
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "non-string panic payload"
    }
}
