//! The per-connection loop, independent of how the socket was accepted.
//!
//! One task reads frames and dispatches them in order; a second task owns the
//! socket's sink and drains the bounded outbound queue, flushing once per
//! burst. Shutdown, a client close, a transport error or a server-side close
//! ends the loop; [`EndReason`] records which.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use http::Extensions;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, Authenticator};
use crate::consumer::{Consumer, Outcome};
use crate::context::{ConnectionId, Context, Outbound, RequestInfo};
use crate::layer::{ChannelName, GroupName, Inbox, Layer, LayerMessage, MessageKind};
use crate::message::Message as _;
use crate::server::RateLimit;
use crate::wire::{self, Envelope, FrameError};
use crate::ws::CloseCode;
use serde_json::value::RawValue;

/// A WebSocket message stream and sink: a tokio-tungstenite socket over any
/// byte stream, or an adapter from another server's WebSocket type.
pub(crate) trait Transport:
    Stream<Item = Result<WsMessage, WsError>> + Sink<WsMessage, Error = WsError> + Send + 'static
{
}

impl<T> Transport for T where
    T: Stream<Item = Result<WsMessage, WsError>>
        + Sink<WsMessage, Error = WsError>
        + Send
        + 'static
{
}

pub(crate) type BoxTransport = Pin<Box<dyn Transport>>;

/// Settings for one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionParams {
    pub(crate) id: ConnectionId,
    pub(crate) request: RequestInfo,
    pub(crate) state: Arc<Extensions>,
    pub(crate) authenticators: Arc<Extensions>,
    pub(crate) layer: Layer,
    pub(crate) outbound_capacity: usize,
    pub(crate) inbox_capacity: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) handler_grace: Duration,
    pub(crate) shutdown: CancellationToken,
}

/// Why a connection loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// The client sent a close frame or the stream ended.
    ClientClosed,
    /// The client sent a message or frame over the size limit.
    TooBig,
    /// The client broke the WebSocket protocol.
    Protocol,
    /// The client sent a text frame that is not UTF-8.
    InvalidUtf8,
    /// The socket failed (reset, I/O error).
    Transport,
    /// A hook or handler closed the connection, or connect was refused.
    ServerClosed,
    /// The connection's inbox overflowed: it could not keep up with its
    /// groups.
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
            Self::Protocol => (CloseCode::PROTOCOL_ERROR, "protocol error"),
            Self::InvalidUtf8 => (CloseCode::INVALID_DATA, "text frame is not UTF-8"),
            Self::TooSlow => (CloseCode::POLICY, "too slow: inbox full"),
            Self::Idle => (CloseCode::GOING_AWAY, "idle timeout"),
            Self::RateLimited => (CloseCode::POLICY, "rate limit exceeded"),
            Self::ClientClosed | Self::ServerClosed | Self::Transport => (CloseCode::NORMAL, ""),
        }
    }
}

const COMPLETE_FRAME: &str = r#"{"action":"complete","payload":null}"#;
const GROUP_COMPLETE_FRAME: &str = r#"{"action":"group_complete","payload":null}"#;
const EVENT_COMPLETE_FRAME: &str = r#"{"action":"event_complete","payload":null}"#;
pub(crate) const WRITER_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const RATE_LIMITED_FRAME: &str = r#"{"action":"error","payload":{"status_code":429,"detail":"Rate limit exceeded: slow down."}}"#;

/// Runs one connection of consumer `C` to its end.
pub(crate) async fn run<C: Consumer>(
    transport: BoxTransport,
    mut params: ConnectionParams,
) -> EndReason {
    let (sink, mut stream) = transport.split();
    let (tx, rx) = mpsc::channel(params.outbound_capacity.max(1));
    let writer_failed = CancellationToken::new();
    let writer = tokio::spawn(write_loop(
        sink,
        rx,
        params.write_timeout,
        writer_failed.clone(),
    ));
    let ctx = Context::new(
        params.id,
        params.layer.clone(),
        std::mem::take(&mut params.request),
        Arc::clone(&params.state),
        tx,
    );
    let mut inbox = params
        .layer
        .inner()
        .register(ctx.channel_name(), params.inbox_capacity);
    // If this future is dropped before the end (an embedding server cancels
    // it, a test times out), the guard still leaves the layer and stops the
    // writer.
    let mut guard = Cleanup {
        layer: params.layer.clone(),
        channel: ctx.channel_name().clone(),
        writer: Some(writer),
    };
    if !C::CONFIG.send_group_complete {
        // Broadcasts need nothing from this loop: they go straight to the
        // writer, in order with this connection's own replies.
        inbox.deliver_broadcasts_to(ctx.outbound());
    }

    let end = tokio::select! {
        end = drive::<C>(&ctx, &mut stream, &mut inbox, &params) => end,
        // The writer is gone (dead peer, write timeout): stop reading too,
        // even in the middle of a handler.
        () = writer_failed.cancelled() => EndReason::Transport,
        // Shutting down: give the frame in hand a bounded time to finish.
        () = async {
            params.shutdown.cancelled().await;
            tokio::time::sleep(params.handler_grace).await;
        } => EndReason::Shutdown,
    };
    tracing::debug!(?end, "connection loop ended");
    params.layer.inner().unregister(ctx.channel_name()).await;
    drop(inbox);
    let Some(mut writer) = guard.disarm() else {
        return end;
    };

    // Always queue a close so the writer ends even when clones of the context
    // live on in user tasks. After a client close this only completes the
    // closing handshake tungstenite has already started.
    let (code, reason) = ctx.requested_close().unwrap_or_else(|| {
        let (code, reason) = end.close_frame();
        (code, Utf8Bytes::from_static(reason))
    });
    let _ = tokio::time::timeout(WRITER_DRAIN_TIMEOUT, ctx.send_close(code, reason)).await;
    drop(ctx);
    if tokio::time::timeout(WRITER_DRAIN_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        tracing::debug!("writer did not drain in time; aborting it");
        writer.abort();
    }
    end
}

/// Leaves the layer and stops the writer when a connection future is dropped
/// before its normal end.
struct Cleanup {
    layer: Layer,
    channel: ChannelName,
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
        let (layer, channel) = (self.layer.clone(), self.channel.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { layer.inner().unregister(&channel).await });
        }
    }
}

async fn drive<C: Consumer>(
    ctx: &Context,
    stream: &mut (impl Stream<Item = Result<WsMessage, WsError>> + Unpin),
    inbox: &mut Inbox,
    params: &ConnectionParams,
) -> EndReason {
    let shutdown = &params.shutdown;
    let auth_data = match authenticate::<C>(ctx, &params.authenticators).await {
        Ok(data) => data,
        Err(error) => {
            tracing::info!(
                status = error.status(),
                detail = error.detail(),
                "connection not authorised"
            );
            send(
                ctx,
                authentication_frame(error.status(), None, Some(error.detail())),
            )
            .await;
            match CloseCode::application(4000 + error.status()) {
                Ok(code) => ctx.close(code, error.status_text()),
                Err(_) => ctx.close(CloseCode::POLICY, error.status_text()),
            }
            return EndReason::ServerClosed;
        }
    };

    let connected = AssertUnwindSafe(C::connect(ctx)).catch_unwind().await;
    let mut consumer = match connected {
        Ok(Ok(consumer)) => consumer,
        Ok(Err(reject)) => {
            tracing::info!(code = %reject.code(), reason = reject.reason(), "connection refused");
            if let Some(error) = reject.auth_error() {
                send(
                    ctx,
                    authentication_frame(error.status(), None, Some(error.detail())),
                )
                .await;
            }
            ctx.close(reject.code(), reject.reason());
            return EndReason::ServerClosed;
        }
        Err(panic) => {
            tracing::error!(panic = panic_message(&*panic), "connect hook panicked");
            ctx.close(CloseCode::INTERNAL_ERROR, "connect failed");
            return EndReason::ServerClosed;
        }
    };

    // The authentication frame comes first: broadcasts reach the client as
    // soon as it is in its groups.
    if C::CONFIG.send_authentication {
        send(ctx, authentication_frame(200, auth_data, None)).await;
    }

    for template in C::CHANNEL.groups {
        let group = match expand_group(template, ctx) {
            Ok(group) => group,
            Err(problem) => {
                tracing::info!(template, %problem, "refusing connection: bad group name");
                ctx.close(CloseCode::POLICY, "invalid group name");
                return EndReason::ServerClosed;
            }
        };
        if let Err(error) = ctx.join_group(group).await {
            tracing::error!(%error, "cannot join the channel's groups");
            ctx.close(CloseCode::INTERNAL_ERROR, "channel layer unavailable");
            return EndReason::ServerClosed;
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

    let mut last_heard = Instant::now();
    let mut pinged = false;
    let mut heartbeat = tokio::time::interval(params.ping_interval.min(params.idle_timeout));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.reset();
    let mut bucket = params.rate_limit.map(TokenBucket::new);
    let mut over_limit: u32 = 0;
    // One-shot signals, created once: polling them again costs no new
    // waiter registration.
    let shutdown_signal = shutdown.cancelled();
    let close_signal = ctx.close_requested();
    let overflow_signal = inbox.overflow_signal();
    tokio::pin!(shutdown_signal, close_signal, overflow_signal);
    loop {
        if ctx.is_closing() {
            return EndReason::ServerClosed;
        }
        if shutdown.is_cancelled() {
            return EndReason::Shutdown;
        }
        // The socket first: a frame that is ready costs one poll. Layer
        // messages cannot starve behind a busy client: they are drained
        // after every client frame, below.
        let frame = tokio::select! {
            biased;
            frame = stream.next() => frame,
            () = &mut overflow_signal => return EndReason::TooSlow,
            message = inbox.next_message() => {
                match message {
                    Some(message) => handle_layer_message(&mut consumer, ctx, message).await,
                    None => return EndReason::ServerClosed,
                }
                continue;
            }
            () = &mut shutdown_signal => return EndReason::Shutdown,
            () = &mut close_signal => return EndReason::ServerClosed,
            _ = heartbeat.tick() => {
                let quiet = last_heard.elapsed();
                if quiet >= params.idle_timeout {
                    tracing::debug!(?quiet, "closing an idle connection");
                    return EndReason::Idle;
                }
                if quiet >= params.ping_interval && !pinged {
                    ctx.try_ping();
                    pinged = true;
                }
                continue;
            }
        };
        last_heard = Instant::now();
        pinged = false;
        if let Some(Ok(WsMessage::Text(_) | WsMessage::Binary(_))) = &frame
            && let Some(bucket) = &mut bucket
        {
            if bucket.take() {
                over_limit = 0;
            } else {
                over_limit += 1;
                if over_limit > bucket.limit.burst {
                    tracing::info!("closing a connection that keeps exceeding its rate limit");
                    return EndReason::RateLimited;
                }
                send_static(ctx, RATE_LIMITED_FRAME).await;
                continue;
            }
        }
        match frame {
            Some(Ok(WsMessage::Text(text))) => handle_text(&mut consumer, ctx, text.as_str()).await,
            Some(Ok(WsMessage::Binary(_))) => {
                send(ctx, FrameError::binary_frame().to_frame(&[])).await;
                if C::CONFIG.send_completion {
                    send_static(ctx, COMPLETE_FRAME).await;
                }
            }
            // tungstenite answers pings itself; pongs and raw frames carry nothing.
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
            Some(Ok(WsMessage::Close(_))) | None => return EndReason::ClientClosed,
            Some(Err(error)) => {
                tracing::debug!(%error, "read failed");
                return match error {
                    WsError::Capacity(_) => EndReason::TooBig,
                    WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                        EndReason::ClientClosed
                    }
                    WsError::Protocol(_) => EndReason::Protocol,
                    WsError::Utf8(_) => EndReason::InvalidUtf8,
                    _ => EndReason::Transport,
                };
            }
        }
        // Events that arrived meanwhile, so a client that keeps sending
        // cannot starve them.
        if let Some(end) = drain_inbox(&mut consumer, ctx, inbox).await {
            return end;
        }
    }
}

/// Layer messages handled between two client frames at most, so a client
/// that keeps sending cannot starve its broadcasts and events.
const INBOX_BURST: usize = 32;

/// Handles the layer messages that have already arrived (up to
/// [`INBOX_BURST`]).
async fn drain_inbox<C: Consumer>(
    consumer: &mut C,
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

/// A token bucket: `burst` tokens, refilled at `per_second`.
struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            tokens: f64::from(limit.burst),
            refilled: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

async fn handle_text<C: Consumer>(consumer: &mut C, ctx: &Context, text: &str) {
    match Envelope::parse(text) {
        Err(error) => {
            tracing::debug!(kind = error.kind(), "rejected frame");
            send(ctx, rejection::<C>(&error, None)).await;
        }
        Ok(envelope) => {
            tracing::trace!(action = &*envelope.action, "frame");
            match guarded(consumer.dispatch(ctx, &envelope)).await {
                Outcome::Reply(Some(reply)) => send(ctx, reply).await,
                Outcome::Reply(None) => {}
                Outcome::Failed(error) => {
                    tracing::error!(action = &*envelope.action, %error, "handler failed");
                    send(
                        ctx,
                        wire::handler_failed_frame(&envelope.action, envelope.reference),
                    )
                    .await;
                }
                Outcome::Invalid(error) => {
                    tracing::debug!(
                        action = &*envelope.action,
                        kind = error.kind(),
                        "invalid payload"
                    );
                    send(ctx, rejection::<C>(&error, envelope.reference)).await;
                }
                Outcome::Denied(denied) => {
                    tracing::debug!(
                        action = &*envelope.action,
                        status = denied.status(),
                        "permission denied"
                    );
                    let frame =
                        wire::denied_frame(denied.status(), denied.detail(), envelope.reference);
                    send(ctx, frame).await;
                }
                Outcome::Unknown => {
                    let error = FrameError::UnknownAction {
                        tag: envelope.action.to_string(),
                    };
                    send(ctx, rejection::<C>(&error, envelope.reference)).await;
                }
            }
        }
    }
    if C::CONFIG.send_completion {
        send_static(ctx, COMPLETE_FRAME).await;
    }
}

/// The error frame for a rejected client frame; an unknown action lists the
/// actions this consumer takes, however it was found unknown.
fn rejection<C: Consumer>(error: &FrameError, reference: Option<&RawValue>) -> String {
    let expected: Vec<&str> = match error {
        FrameError::UnknownAction { .. } => C::CHANNEL.client_actions().collect(),
        _ => Vec::new(),
    };
    error.to_frame_with_ref(&expected, reference)
}

async fn handle_layer_message<C: Consumer>(consumer: &mut C, ctx: &Context, message: LayerMessage) {
    match message.kind() {
        MessageKind::Broadcast => {
            let _ = ctx.send_frame(message.frame().clone()).await;
            if C::CONFIG.send_group_complete {
                send_static(ctx, GROUP_COMPLETE_FRAME).await;
            }
        }
        MessageKind::Event => {
            match Envelope::parse(message.text()) {
                Err(error) => tracing::warn!(%error, "dropping a malformed event"),
                Ok(envelope) => match guarded(consumer.dispatch_event(ctx, &envelope)).await {
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
                },
            }
            if C::CONFIG.send_event_complete {
                send_static(ctx, EVENT_COMPLETE_FRAME).await;
            }
        }
    }
}

/// Runs the consumer's authenticator and channel permissions; returns the
/// `data` for the authentication frame.
async fn authenticate<C: Consumer>(
    ctx: &Context,
    authenticators: &Extensions,
) -> Result<Option<serde_json::Value>, AuthError> {
    let mut data = None;
    if C::AUTHENTICATED {
        let Some(authenticator) = authenticators.get::<Arc<C::Authenticator>>() else {
            tracing::error!(
                authenticator = std::any::type_name::<C::Authenticator>(),
                "authenticator not registered: call Router::with_authenticator"
            );
            return Err(AuthError::new(500, "Server misconfigured."));
        };
        let authenticated = AssertUnwindSafe(authenticator.authenticate(ctx))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!("authenticator panicked");
                Err(AuthError::new(500, "Authentication failed."))
            })?;
        ctx.set_identity(authenticated.identity);
        data = authenticated.data;
    }
    AssertUnwindSafe(C::check_permissions(ctx))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("permission check panicked");
            Err(AuthError::new(500, "Permission check failed."))
        })?;
    Ok(data)
}

fn authentication_frame(
    status: u16,
    data: Option<serde_json::Value>,
    detail: Option<&str>,
) -> String {
    let data = match detail {
        Some(detail) => Some(serde_json::json!({ "detail": detail })),
        None => data,
    };
    crate::messages::Authentication {
        status_code: status,
        status_text: crate::auth::status_text(status).to_owned(),
        data,
    }
    .to_json()
}

/// Expands a group template such as `chat_{room}` with the route parameters.
fn expand_group(template: &str, ctx: &Context) -> Result<GroupName, String> {
    let mut name = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        name.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed '{{' in group template {template:?}"))?;
        let param = &after[..end];
        let value = ctx.param(param).ok_or_else(|| {
            format!("group template {template:?} names {{{param}}}, which the route does not have")
        })?;
        // Only letters and digits: a value holding the template's own
        // separators (`_`, `.`, `-`) could forge another group's name.
        if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return Err(format!(
                "route parameter {param} = {value:?} is not only letters and digits"
            ));
        }
        name.push_str(value);
        rest = &after[end + 1..];
    }
    name.push_str(rest);
    GroupName::new(&name).map_err(|error| error.to_string())
}

async fn send(ctx: &Context, frame: String) {
    // A failed send means the writer is gone: the loop notices on its next
    // read, so there is nothing more to do here.
    let _ = ctx.send_frame(Utf8Bytes::from(frame)).await;
}

async fn send_static(ctx: &Context, frame: &'static str) {
    let _ = ctx.send_frame(Utf8Bytes::from_static(frame)).await;
}

async fn write_loop(
    mut sink: impl Sink<WsMessage, Error = WsError> + Unpin,
    mut rx: mpsc::Receiver<Outbound>,
    write_timeout: Duration,
    failed: CancellationToken,
) {
    while let Some(outbound) = rx.recv().await {
        let write = async {
            match outbound {
                Outbound::Text(text) => {
                    sink.feed(WsMessage::Text(text)).await?;
                    // Flush once the queue is empty, so a burst costs one write.
                    if rx.is_empty() {
                        sink.flush().await?;
                    }
                    Ok(true)
                }
                Outbound::Ping => sink
                    .send(WsMessage::Ping(bytes::Bytes::new()))
                    .await
                    .map(|()| true),
                Outbound::Close(code, reason) => {
                    let frame = CloseFrame {
                        code: code.to_tungstenite(),
                        reason,
                    };
                    sink.send(WsMessage::Close(Some(frame)))
                        .await
                        .map(|()| false)
                }
            }
        };
        match tokio::time::timeout(write_timeout, write).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => break,
            Ok(Err(error)) => {
                tracing::debug!(%error, "write failed");
                failed.cancel();
                return;
            }
            Err(_) => {
                tracing::info!(
                    ?write_timeout,
                    "a write did not complete in time; dropping the connection"
                );
                failed.cancel();
                return;
            }
        }
    }
    let _ = tokio::time::timeout(write_timeout, sink.close()).await;
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
