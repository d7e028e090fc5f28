//! Built-in messages of the Chanx 2.x protocol: [`Ping`] and [`Pong`] for
//! handlers to use, and the frames the server sends on its own (defined in
//! [`crate::protocol`], re-exported here).
//!
//! | type | action | payload |
//! |---|---|---|
//! | [`Ping`] | `ping` | `null` |
//! | [`Pong`] | `pong` | `null` |
//! | [`ErrorMessage`] | `error` | see [`crate::protocol::ErrorPayload`] |
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

pub use crate::protocol::{
    Authentication, Complete, ErrorMessage, EventComplete, GroupComplete, Subscribe, Subscribed,
    Unsubscribe, Unsubscribed,
};
