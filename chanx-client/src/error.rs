//! What can go wrong, typed: connecting, and using a connection.

use std::fmt;
use std::time::Duration;

use chanx_core::DecodeError;
use chanx_core::protocol::{Authentication, ErrorItem, ErrorPayload};

/// A boxed error from below (the WebSocket library, a connector).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not `ws://host[:port]/path[?query]` (or `wss://` with a
    /// connector that speaks TLS, see
    /// [`ClientBuilder::connector`](crate::ClientBuilder::connector)).
    #[error(
        "invalid URL {url:?}: give ws://host[:port]/path (wss:// needs a TLS connector: ClientBuilder::connector)"
    )]
    InvalidUrl {
        /// The URL as given.
        url: String,
    },
    /// A header given to the builder has an invalid name or value.
    #[error("invalid header {name:?}; header names are tokens and values visible ASCII")]
    InvalidHeader {
        /// The name as given.
        name: String,
    },
    /// The server answered the upgrade with an HTTP error (404 for an
    /// unknown path, 403 for a refused origin, 503 when full…).
    #[error("the server refused the WebSocket upgrade with HTTP {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The response body, if any.
        body: String,
    },
    /// The TCP connection (or the connector) failed.
    #[error("cannot connect: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting took longer than the connect timeout.
    #[error("no connection within {0:?}")]
    Timeout(Duration),
    /// The WebSocket handshake failed (not an HTTP refusal).
    #[error("the WebSocket handshake failed")]
    Handshake(#[source] BoxError),
}

/// How a connection ended: the close code and reason the server sent (or
/// none when the connection was lost without a close frame).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CloseInfo {
    /// The close code, when a close frame arrived.
    pub code: Option<u16>,
    /// The close reason.
    pub reason: String,
}

impl fmt::Display for CloseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.reason.is_empty()) {
            (Some(code), true) => write!(f, "closed with {code}"),
            (Some(code), false) => write!(f, "closed with {code} {:?}", self.reason),
            (None, _) => f.write_str("connection lost without a close frame"),
        }
    }
}

/// An `error` frame from the server, typed: validation errors with their
/// pydantic `type`, `loc` and `msg`, a refusal with its status, or a
/// handler failure's detail.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError(pub ErrorPayload);

impl ServerError {
    /// The validation errors, when the server rejected the frame's shape.
    #[must_use]
    pub fn items(&self) -> &[ErrorItem] {
        match &self.0 {
            ErrorPayload::Validation(items) => items,
            _ => &[],
        }
    }

    /// The HTTP-like status of a refusal (403 for a denied permission, 429
    /// for the rate limit).
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match &self.0 {
            ErrorPayload::Denied(denied) => Some(denied.status_code),
            _ => None,
        }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ErrorPayload::Validation(items) => {
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str("; ")?;
                    }
                    let loc: Vec<String> = item
                        .loc
                        .iter()
                        .map(|segment| match segment {
                            chanx_core::wire::LocSegment::Key(key) => key.clone(),
                            chanx_core::wire::LocSegment::Index(index) => index.to_string(),
                        })
                        .collect();
                    write!(f, "{} at [{}]: {}", item.kind, loc.join(", "), item.msg)?;
                }
                Ok(())
            }
            ErrorPayload::Denied(denied) => write!(f, "{} {}", denied.status_code, denied.detail),
            ErrorPayload::Topic(topic) => f.write_str(&topic.detail),
            ErrorPayload::Detail(detail) => f.write_str(&detail.detail),
            _ => f.write_str("error"),
        }
    }
}

/// Using a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an `error` frame.
    #[error("the server answered with an error: {0}")]
    Server(ServerError),
    /// No reply within the request timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection ended (or dropped, while reconnecting) before the
    /// frame could be sent or answered.
    #[error("not connected: {0}")]
    Disconnected(CloseInfo),
    /// A frame did not decode as the message type asked for.
    #[error("a frame did not decode as the expected message: {error}")]
    Decode {
        /// The frame.
        frame: String,
        /// Why.
        #[source]
        error: DecodeError,
    },
    /// The server refused the connection's credentials (the
    /// `authentication` frame with a status other than 200).
    #[error("authentication refused: {} {}", .0.status_code, .0.status_text)]
    Unauthenticated(Authentication),
    /// [`Client::messages`](crate::Client::messages) was already called:
    /// one stream reads the server's pushes.
    #[error("messages() was already called on this client; one stream reads the server's pushes")]
    StreamTaken,
}
