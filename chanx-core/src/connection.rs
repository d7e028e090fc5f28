//! The per-connection loop, independent of how the socket was accepted.
//!
//! One task reads frames and dispatches them in order; a second task owns the
//! socket's sink and drains the bounded outbound queue, flushing once per
//! burst. Shutdown, a client close, a transport error or a server-side close
//! ends the loop; [`EndReason`] records which.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use http::Extensions;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::consumer::{Consumer, Outcome};
use crate::context::{ConnectionId, Context, Outbound, RequestInfo};
use crate::wire::{self, Envelope, FrameError};
use crate::ws::CloseCode;

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
    pub(crate) outbound_capacity: usize,
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
            Self::ClientClosed | Self::ServerClosed | Self::Transport => (CloseCode::NORMAL, ""),
        }
    }
}

const COMPLETE_FRAME: &str = r#"{"action":"complete","payload":null}"#;
const WRITER_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one connection of consumer `C` to its end.
pub(crate) async fn run<C: Consumer>(
    transport: BoxTransport,
    params: ConnectionParams,
) -> EndReason {
    let (sink, mut stream) = transport.split();
    let (tx, rx) = mpsc::channel(params.outbound_capacity.max(1));
    let mut writer = tokio::spawn(write_loop(sink, rx));
    let ctx = Context::new(params.id, params.request, params.state, tx);

    let end = drive::<C>(&ctx, &mut stream, &params.shutdown).await;
    tracing::debug!(?end, "connection loop ended");

    // Always queue a close so the writer ends even when clones of the context
    // live on in user tasks. After a client close this only completes the
    // closing handshake tungstenite has already started.
    let (code, reason) = ctx.take_close().unwrap_or_else(|| {
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

async fn drive<C: Consumer>(
    ctx: &Context,
    stream: &mut (impl Stream<Item = Result<WsMessage, WsError>> + Unpin),
    shutdown: &CancellationToken,
) -> EndReason {
    let connected = AssertUnwindSafe(C::connect(ctx)).catch_unwind().await;
    let mut consumer = match connected {
        Ok(Ok(consumer)) => consumer,
        Ok(Err(reject)) => {
            tracing::info!(code = %reject.code(), reason = reject.reason(), "connection refused");
            ctx.close(reject.code(), reject.reason());
            return EndReason::ServerClosed;
        }
        Err(panic) => {
            tracing::error!(panic = panic_message(&*panic), "connect hook panicked");
            ctx.close(CloseCode::INTERNAL_ERROR, "connect failed");
            return EndReason::ServerClosed;
        }
    };

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

    loop {
        if ctx.is_closing() {
            return EndReason::ServerClosed;
        }
        let frame = tokio::select! {
            biased;
            () = shutdown.cancelled() => return EndReason::Shutdown,
            () = ctx.close_requested() => return EndReason::ServerClosed,
            frame = stream.next() => frame,
        };
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
                    WsError::Protocol(_) => EndReason::Protocol,
                    WsError::Utf8(_) => EndReason::InvalidUtf8,
                    _ => EndReason::Transport,
                };
            }
        }
    }
}

async fn handle_text<C: Consumer>(consumer: &mut C, ctx: &Context, text: &str) {
    match Envelope::parse(text) {
        Err(error) => {
            tracing::debug!(kind = error.kind(), "rejected frame");
            send(ctx, error.to_frame(&[])).await;
        }
        Ok(envelope) => {
            tracing::trace!(action = &*envelope.action, "frame");
            let outcome = AssertUnwindSafe(consumer.dispatch(ctx, &envelope))
                .catch_unwind()
                .await;
            match outcome {
                Ok(Outcome::Reply(Some(reply))) => send(ctx, reply).await,
                Ok(Outcome::Reply(None)) => {}
                Ok(Outcome::Failed(error)) => {
                    tracing::error!(action = &*envelope.action, %error, "handler failed");
                    send(ctx, wire::handler_failed_frame(&envelope.action)).await;
                }
                Ok(Outcome::Invalid(error)) => {
                    tracing::debug!(
                        action = &*envelope.action,
                        kind = error.kind(),
                        "invalid payload"
                    );
                    send(ctx, error.to_frame(&[])).await;
                }
                Ok(Outcome::Unknown) => {
                    let expected: Vec<&str> = C::CHANNEL.client_actions().collect();
                    let error = FrameError::UnknownAction {
                        tag: envelope.action.to_string(),
                    };
                    send(ctx, error.to_frame(&expected)).await;
                }
                Err(panic) => {
                    tracing::error!(
                        action = &*envelope.action,
                        panic = panic_message(&*panic),
                        "handler panicked"
                    );
                    send(ctx, wire::handler_failed_frame(&envelope.action)).await;
                }
            }
        }
    }
    if C::CONFIG.send_completion {
        send_static(ctx, COMPLETE_FRAME).await;
    }
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
) {
    while let Some(outbound) = rx.recv().await {
        let result = match outbound {
            Outbound::Text(text) => match sink.feed(WsMessage::Text(text)).await {
                // Flush once the queue is empty, so a burst costs one write.
                Ok(()) if rx.is_empty() => sink.flush().await,
                other => other,
            },
            Outbound::Close(code, reason) => {
                let frame = CloseFrame {
                    code: code.to_tungstenite(),
                    reason,
                };
                let _ = sink.send(WsMessage::Close(Some(frame))).await;
                break;
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "write failed");
            break;
        }
    }
    let _ = sink.close().await;
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
