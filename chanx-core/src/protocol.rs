//! Every frame the server sends on its own, typed: errors, the
//! authentication result, completion frames. They are rendered here and
//! nowhere else, from the same types the AsyncAPI document describes, so a
//! generated client can parse every frame it may receive.
//!
//! | type | action | payload |
//! |---|---|---|
//! | [`ErrorMessage`] | `error` | [`ErrorPayload`]: a list of [`ErrorItem`]s, `{"status_code", "detail"}`, or `{"detail"}` |
//! | [`Authentication`] | `authentication` | `{"status_code", "status_text", "data"}` |
//! | [`Complete`] | `complete` | `null` |
//! | [`GroupComplete`] | `group_complete` | `null` |
//! | [`EventComplete`] | `event_complete` | `null` |
//! | [`Subscribed`], [`Unsubscribed`] | `subscribed`, `unsubscribed` | `null`, stamped with the topic and `ref` (answering [`Subscribe`], [`Unsubscribe`]) |
//! | [`ErrorMessage`] with [`TopicError`] | `error` | `{"reason", "detail"}`, stamped with the topic and `ref` |
//! | [`PresenceState`](crate::presence::PresenceState), [`PresenceDiff`](crate::presence::PresenceDiff) | `presence_state`, `presence_diff` | see [`presence`](crate::presence) |
//!
//! Frames of a topic carry the envelope after `payload`, in Chanx's order:
//! `"version":1`, `"topic"`, then `"ref"` (a reply) or `"seq"` (a pushed
//! event that has one).
//!
//! The error kinds of a rejected client frame (the `type` of an
//! [`ErrorItem`]) use pydantic's names, as Chanx reports them:
//!
//! | `type` | when | `msg` |
//! |---|---|---|
//! | `json_invalid` | the frame is not JSON, or is binary | `Invalid JSON: …` |
//! | `model_type` | the frame is not an object; a nested object expected | `Input should be an object`; `Input should be a valid dictionary or instance of <Type>` |
//! | `union_tag_not_found` | no `action` | `Unable to extract tag using discriminator 'action'` |
//! | `union_tag_invalid` | an action no handler takes | `Input tag '<a>' found using 'action' does not match any of the expected tags: '<x>', '<y>'` |
//! | `missing` | a required field is absent | `Field required` |
//! | `extra_forbidden` | a field the type does not have (`#[serde(deny_unknown_fields)]`) | `Extra inputs are not permitted` |
//! | `string_type` | a string expected | `Input should be a valid string` |
//! | `int_type`, `int_parsing`, `int_from_float` | an integer expected: got another type, a string, a fraction | `Input should be a valid integer` (`, unable to parse string as an integer`, `, got a number with a fractional part`) |
//! | `greater_than_equal`, `less_than_equal` | an integer outside its Rust type's range | `Input should be greater than or equal to 0`, `… less than or equal to 255` |
//! | `float_type`, `float_parsing` | a number expected | `Input should be a valid number` (`, unable to parse string as a number`) |
//! | `bool_type`, `bool_parsing` | a boolean expected | `Input should be a valid boolean` (`, unable to interpret input`) |
//! | `list_type` | an array expected | `Input should be a valid list` |
//! | `dict_type` | a map expected | `Input should be a valid dictionary` |
//! | `none_required` | `null` expected | `Input should be None` |
//! | `enum` | an unknown enum variant | `Input should be 'a' or 'b'` |
//! | `too_short`, `too_long` | a tuple of the wrong length | `Tuple should have at least N items after validation, not M` |
//! | `value_error` | a custom deserialiser refused the value | `Value error, <its message>` |
//!
//! `loc` is `[action, "payload", field or index…]`, and `[]` for the
//! errors about the frame itself. Unlike pydantic, chanx does not coerce:
//! `"5"` is not an integer and `1` is not a boolean.

use std::borrow::Cow;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Message;
use crate::message::encode;
use crate::wire::{Echo, FrameError, LocSegment};

/// An error frame: why a client frame was rejected or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Message)]
#[message(action = "error")]
pub struct ErrorMessage(pub ErrorPayload);

/// The payload of an [`ErrorMessage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ErrorPayload {
    /// The frame did not validate: one item per problem.
    Validation(Vec<ErrorItem>),
    /// A permission denied the frame, or the rate limit refused it.
    Denied(DeniedError),
    /// A topic-addressed frame could not be served (Chanx's topic errors).
    Topic(TopicError),
    /// The handler failed: `Failed to process message for <action>`.
    Detail(ErrorDetail),
}

/// One validation problem, as pydantic reports it (see the [module
/// documentation](self) for the kinds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorItem {
    /// The pydantic error type, such as `missing` or `string_type`.
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// Where: `[action, "payload", field…]`, or `[]` for the frame itself.
    pub loc: Vec<LocSegment>,
    /// A readable description.
    pub msg: String,
}

/// A refusal with an HTTP-like status: a denied permission (403…) or the
/// rate limit (429).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeniedError {
    /// The status.
    pub status_code: u16,
    /// Why.
    pub detail: String,
}

/// Why a frame addressed to a topic was refused: the `payload` of an
/// `error` frame stamped with the topic and the client's `ref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TopicError {
    /// What to branch on.
    pub reason: TopicErrorReason,
    /// A readable sentence naming the topic.
    pub detail: String,
}

/// The reasons of a [`TopicError`], as Chanx names them (plus chanx's own
/// subscription limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TopicErrorReason {
    /// No topic mounted on this channel matches the name.
    UnknownTopic,
    /// The topic's `#[authorize]` hook refused the subscription.
    Unauthorized,
    /// A frame for a topic this connection has not subscribed to.
    NotSubscribed,
    /// The connection already holds
    /// [`ServerConfig::max_subscriptions`](crate::ServerConfig::max_subscriptions)
    /// subscriptions.
    TooManySubscriptions,
}

/// A failure described in one sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// What failed.
    pub detail: String,
}

/// The result of authenticating a connection, sent before anything else
/// when the consumer authenticates (Chanx's `authentication` frame).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Message)]
#[message(action = "authentication")]
pub struct Authentication {
    /// An HTTP status code: 200 on success, 401 or 403 on refusal.
    pub status_code: u16,
    /// The status code's reason phrase, such as `OK` or `Unauthorized`.
    pub status_text: String,
    /// `{"detail": "OK"}` on success unless the authenticator says more;
    /// `{"detail": "<why>"}` on refusal.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// Sent after each client frame that reached a handler's validation, when
/// completion is on (`send_completion`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "complete")]
pub struct Complete;

/// Sent after each broadcast relayed to the client, when completion is on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "group_complete")]
pub struct GroupComplete;

/// Sent after each event handled for the client, when completion is on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "event_complete")]
pub struct EventComplete;

/// Asks to subscribe to the topic named by the frame's `topic`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "subscribe")]
pub struct Subscribe;

/// Confirms a subscription, stamped with the topic and the request's `ref`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "subscribed")]
pub struct Subscribed;

/// Asks to unsubscribe from the topic named by the frame's `topic`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "unsubscribe")]
pub struct Unsubscribe;

/// Confirms an unsubscription, stamped with the topic and the request's
/// `ref`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, Message,
)]
#[message(action = "unsubscribed")]
pub struct Unsubscribed;

/// The frame refusing a topic-addressed frame, stamped by `echo`.
pub(crate) fn topic_refused(reason: TopicErrorReason, detail: String, echo: Echo<'_>) -> String {
    encode(
        &ErrorMessage(ErrorPayload::Topic(TopicError { reason, detail })),
        echo,
    )
}

/// The error frame for a rejected client frame, listing `expected` actions
/// for an unknown one, with the client's `ref` echoed.
pub(crate) fn rejection(error: &FrameError, expected: &[&str], echo: Echo<'_>) -> String {
    let item = error.to_item(expected);
    encode(&ErrorMessage(ErrorPayload::Validation(vec![item])), echo)
}

/// The frame for a handler that returned an error or panicked.
pub(crate) fn handler_failed(action: &str, echo: Echo<'_>) -> String {
    encode(
        &ErrorMessage(ErrorPayload::Detail(ErrorDetail {
            detail: format!("Failed to process message for {action}"),
        })),
        echo,
    )
}

/// The frame for a message whose payload failed to serialise.
pub(crate) fn serialize_failed(action: &str) -> String {
    // Rendered by hand only because `encode` is what failed; the shape is
    // `ErrorPayload::Detail`.
    let payload = ErrorMessage(ErrorPayload::Detail(ErrorDetail {
        detail: format!("Failed to serialise message {action}"),
    }));
    serde_json::to_string(&Frame {
        action: "error",
        payload: &payload.0,
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct Frame<'a, T> {
    action: &'static str,
    payload: &'a T,
}

/// The frame for a permission that denied a client frame.
pub(crate) fn denied(status: u16, detail: &str, echo: Echo<'_>) -> String {
    encode(
        &ErrorMessage(ErrorPayload::Denied(DeniedError {
            status_code: status,
            detail: detail.to_owned(),
        })),
        echo,
    )
}

/// The frame for a message refused by the rate limit.
pub(crate) fn rate_limited() -> &'static str {
    static FRAME: OnceLock<String> = OnceLock::new();
    FRAME.get_or_init(|| {
        ErrorMessage(ErrorPayload::Denied(DeniedError {
            status_code: 429,
            detail: "Rate limit exceeded: slow down.".to_owned(),
        }))
        .to_json()
    })
}

/// The `authentication` frame.
pub(crate) fn authentication(status: u16, data: Option<serde_json::Value>) -> String {
    Authentication {
        status_code: status,
        status_text: crate::auth::status_text(status).to_owned(),
        data,
    }
    .to_json()
}

/// The `complete` frame.
pub(crate) fn complete() -> &'static str {
    static FRAME: OnceLock<String> = OnceLock::new();
    FRAME.get_or_init(|| Complete.to_json())
}

/// The `group_complete` frame.
pub(crate) fn group_complete() -> &'static str {
    static FRAME: OnceLock<String> = OnceLock::new();
    FRAME.get_or_init(|| GroupComplete.to_json())
}

/// The `event_complete` frame.
pub(crate) fn event_complete() -> &'static str {
    static FRAME: OnceLock<String> = OnceLock::new();
    FRAME.get_or_init(|| EventComplete.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(frame: &str) -> serde_json::Value {
        serde_json::from_str(frame).unwrap()
    }

    #[test]
    fn frames_have_chanx_shapes() {
        assert_eq!(
            value(complete()),
            json!({"action": "complete", "payload": null})
        );
        assert_eq!(
            value(group_complete()),
            json!({"action": "group_complete", "payload": null})
        );
        assert_eq!(
            value(event_complete()),
            json!({"action": "event_complete", "payload": null})
        );
        assert_eq!(
            value(rate_limited()),
            json!({"action": "error", "payload": {"status_code": 429, "detail": "Rate limit exceeded: slow down."}})
        );
        let reference = serde_json::value::RawValue::from_string("\"r1\"".to_owned()).unwrap();
        assert_eq!(
            value(&handler_failed("chat", Echo::reference(Some(&reference)))),
            json!({"action": "error", "payload": {"detail": "Failed to process message for chat"}, "ref": "r1"})
        );
        assert_eq!(
            value(&denied(403, "No.", Echo::NONE)),
            json!({"action": "error", "payload": {"status_code": 403, "detail": "No."}})
        );
        assert_eq!(
            value(&authentication(200, Some(json!({"detail": "OK"})))),
            json!({"action": "authentication", "payload": {"status_code": 200, "status_text": "OK", "data": {"detail": "OK"}}})
        );
        assert_eq!(
            value(&serialize_failed("x")),
            json!({"action": "error", "payload": {"detail": "Failed to serialise message x"}})
        );
    }

    #[test]
    fn error_frames_decode_into_their_types() {
        let frame = rejection(&FrameError::MissingAction, &[], Echo::NONE);
        let ErrorMessage(ErrorPayload::Validation(items)) =
            ErrorMessage::from_json(&frame).unwrap()
        else {
            panic!("not a validation payload: {frame}");
        };
        assert_eq!(items[0].kind, "union_tag_not_found");
        assert!(items[0].loc.is_empty());
        let ErrorMessage(payload) = ErrorMessage::from_json(rate_limited()).unwrap();
        assert!(matches!(
            payload,
            ErrorPayload::Denied(DeniedError {
                status_code: 429,
                ..
            })
        ));
        let ErrorMessage(payload) =
            ErrorMessage::from_json(&handler_failed("a", Echo::NONE)).unwrap();
        assert!(matches!(payload, ErrorPayload::Detail(_)));
    }
}
