//! Typed messages and their wire shape `{"action": …, "payload": …}`.
//!
//! A [`Message`] is usually derived with [`#[derive(Message)]`](crate::Message):
//! the type itself (with its own `serde` and `schemars` derives) is the
//! *payload*, and the derive adds the `action` discriminator around it.

use std::fmt;

use schemars::{Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserializer, Serialize};

use crate::wire::{self, FrameError};

/// A value that travels on the wire as `{"action": …, "payload": …}`.
///
/// Derive it with [`#[derive(Message)]`](crate::Message) rather than by hand:
///
/// ```
/// use chanx_core::Message;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
/// #[message(action = "chat")]
/// struct Chat {
///     room: String,
///     text: String,
/// }
///
/// let msg = Chat { room: "lobby".into(), text: "hi".into() };
/// let json = msg.to_json();
/// assert_eq!(json, r#"{"action":"chat","payload":{"room":"lobby","text":"hi"}}"#);
/// assert_eq!(Chat::from_json(&json).unwrap(), msg);
/// ```
///
/// A struct carries one action; an enum whose variants each wrap a
/// single-action message is a union of messages and carries one action per
/// variant.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a chanx message",
    label = "not a message",
    note = "add `#[derive(Message)]` with `#[message(action = \"…\")]` to `{Self}`"
)]
pub trait Message: Sized + Send + 'static {
    /// Every action this type can carry, in declaration order.
    const ACTIONS: &'static [&'static str];

    /// The action of this value.
    fn action(&self) -> &'static str;

    /// Whether `action` is one of [`Self::ACTIONS`].
    fn has_action(action: &str) -> bool {
        Self::ACTIONS.contains(&action)
    }

    /// Serialises the payload (not the envelope) of this value.
    ///
    /// # Errors
    ///
    /// Whatever the payload's `Serialize` implementation returns.
    fn serialize_payload<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>;

    /// Deserialises the payload of a frame whose action is `action`.
    ///
    /// # Errors
    ///
    /// The payload does not match the type, or `action` is not one of
    /// [`Self::ACTIONS`].
    fn deserialize_payload<'de, D: Deserializer<'de>>(
        action: &str,
        deserializer: D,
    ) -> Result<Self, D::Error>;

    /// Appends the metadata of every single-action message this type covers.
    fn describe(out: &mut Vec<MessageMeta>);

    /// Encodes this message as a wire frame.
    fn to_json(&self) -> String {
        encode(self, crate::wire::Echo::NONE)
    }

    /// Encodes this message as a wire frame carrying `reference` as its
    /// `ref` (a client's request, answered with the same `ref`).
    fn to_json_with_ref(&self, reference: &serde_json::value::RawValue) -> String {
        encode(self, crate::wire::Echo::reference(Some(reference)))
    }

    /// Decodes a wire frame into this type.
    ///
    /// # Errors
    ///
    /// The same errors a consumer reports for a bad frame: not JSON, not an
    /// object, no or an unknown action, or a payload that does not match.
    fn from_json(text: &str) -> Result<Self, DecodeError> {
        let envelope = wire::Envelope::parse(text).map_err(DecodeError)?;
        if !Self::has_action(&envelope.action) {
            return Err(DecodeError(FrameError::UnknownAction {
                tag: envelope.action.into_owned(),
            }));
        }
        wire::decode_payload::<Self>(&envelope.action, envelope.payload).map_err(DecodeError)
    }
}

/// A message with exactly one action, such as a derived struct.
///
/// Enum messages are unions of these; each variant wraps one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a single-action chanx message",
    label = "not a message with one action",
    note = "each variant of a message enum wraps a type with `#[derive(Message)]` and `#[message(action = \"…\")]`"
)]
pub trait SingleMessage: Message + Serialize + DeserializeOwned + schemars::JsonSchema {
    /// The action that identifies this message on the wire.
    const ACTION: &'static str;
}

/// Static description of one single-action message, for documentation.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct MessageMeta {
    /// The `action` discriminator.
    pub action: &'static str,
    /// The Rust type name (last path segment).
    pub name: &'static str,
    /// The message's doc comment, if any.
    pub description: Option<&'static str>,
    /// JSON Schema of the payload.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    /// Decodes a whole frame as this message (to check documented examples).
    pub decode: fn(&str) -> Result<(), DecodeError>,
}

impl MessageMeta {
    /// The metadata of `M`.
    #[must_use]
    pub fn of<M: SingleMessage>(name: &'static str, description: Option<&'static str>) -> Self {
        Self {
            action: M::ACTION,
            name,
            description,
            schema: |generator| generator.subschema_for::<M>(),
            decode: |text| M::from_json(text).map(drop),
        }
    }
}

impl fmt::Debug for MessageMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageMeta")
            .field("action", &self.action)
            .field("name", &self.name)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// A frame could not be decoded into the requested message type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot decode message: {0}")]
pub struct DecodeError(pub FrameError);

/// Encodes `message` as a wire frame, with what it echoes of the frame it
/// answers (`"version"`, `"ref"`).
pub(crate) fn encode<M: Message>(message: &M, echo: crate::wire::Echo<'_>) -> String {
    // Serialising into a `Vec` cannot fail for JSON keys we write ourselves;
    // a payload whose `Serialize` fails (a map with non-string keys, a custom
    // impl returning an error) is a programming error in that type, reported
    // as an error frame rather than a panic.
    match serde_json::to_string(&Envelope { message, echo }) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(action = message.action(), %error, "message payload failed to serialise");
            crate::protocol::serialize_failed(message.action())
        }
    }
}

struct Envelope<'a, M> {
    message: &'a M,
    echo: crate::wire::Echo<'a>,
}

struct Payload<'a, M>(&'a M);

impl<M: Message> Serialize for Payload<'_, M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_payload(serializer)
    }
}

impl<M: Message> Serialize for Envelope<'_, M> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let echo = &self.echo;
        let len = 2
            + usize::from(echo.version)
            + usize::from(echo.topic.is_some())
            + usize::from(echo.reference.is_some())
            + usize::from(echo.seq.is_some());
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("action", self.message.action())?;
        map.serialize_entry("payload", &Payload(self.message))?;
        if echo.version {
            map.serialize_entry("version", &crate::wire::ENVELOPE_VERSION)?;
        }
        if let Some(topic) = echo.topic {
            map.serialize_entry("topic", topic)?;
        }
        if let Some(reference) = echo.reference {
            map.serialize_entry("ref", reference)?;
        }
        if let Some(seq) = echo.seq {
            map.serialize_entry("seq", &seq)?;
        }
        map.end()
    }
}
