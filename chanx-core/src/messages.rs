//! Built-in messages of the Chanx 2.x protocol.
//!
//! | type | action | payload |
//! |---|---|---|
//! | [`Ping`] | `ping` | `null` |
//! | [`Pong`] | `pong` | `null` |
//! | [`ErrorMessage`] | `error` | a list of validation errors, or `{"detail": …}` |
//! | [`Authentication`] | `authentication` | `{"status_code", "status_text", "data"}` |
//! | [`Complete`] | `complete` | `null` |
//! | [`GroupComplete`] | `group_complete` | `null` |
//! | [`EventComplete`] | `event_complete` | `null` |

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Message;

/// A client's liveness check; answer it with [`Pong`].
///
/// ```
/// use chanx_core::{Message, messages::Ping};
/// assert_eq!(Ping.to_json(), r#"{"action":"ping","payload":null}"#);
/// // A frame without a payload is accepted for unit messages.
/// assert_eq!(Ping::from_json(r#"{"action":"ping"}"#).unwrap(), Ping);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "ping")]
pub struct Ping;

/// The answer to [`Ping`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "pong")]
pub struct Pong;

/// An error frame: a list of validation errors, or `{"detail": "…"}` when a
/// handler failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Message)]
#[message(action = "error")]
pub struct ErrorMessage(pub serde_json::Value);

/// The result of authenticating a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Message)]
#[message(action = "authentication")]
pub struct Authentication {
    /// An HTTP status code: 200 on success, 401 or 403 on refusal.
    pub status_code: u16,
    /// The status code's reason phrase, such as `OK` or `Unauthorized`.
    pub status_text: String,
    /// What the authenticator chose to tell the client.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// Sent after every client frame when the consumer enables completion.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "complete")]
pub struct Complete;

/// Sent after each relayed group message when the consumer enables it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "group_complete")]
pub struct GroupComplete;

/// Sent after each relayed event when the consumer enables it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "event_complete")]
pub struct EventComplete;
