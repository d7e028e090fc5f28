//! The wire protocol: parsing a client frame into an [`Envelope`] and
//! rendering the error frames of the Chanx 2.x protocol.
//!
//! A frame is parsed once: the `action` is borrowed from the frame text when
//! it has no escapes, and the `payload` stays raw JSON until the matched
//! handler deserialises it straight into its input type.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::message::Message;

/// One client frame, parsed just enough to dispatch it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Envelope<'a> {
    /// The `action` discriminator.
    pub action: Cow<'a, str>,
    /// The raw `payload`, if the key was present.
    pub payload: Option<&'a RawValue>,
    /// The raw `ref` correlation id, echoed on the direct reply.
    pub reference: Option<&'a RawValue>,
    /// The topic the frame is addressed to (Chanx 2.10+'s envelope).
    pub topic: Option<Cow<'a, str>>,
    /// The envelope `version` the client sent, if any.
    pub version: Option<i64>,
    /// The envelope `seq` the client sent, if any.
    pub seq: Option<i64>,
    /// Whether the frame carried any envelope key (`version`, `topic`,
    /// `ref`, `seq`): Chanx answers such frames with `version` echoed.
    pub enveloped: bool,
}

impl<'a> Envelope<'a> {
    /// Parses a text frame.
    ///
    /// # Errors
    ///
    /// [`FrameError::InvalidJson`], [`FrameError::NotAnObject`],
    /// [`FrameError::MissingAction`], or [`FrameError::UnknownAction`] for an
    /// action that is not a string.
    pub fn parse(text: &'a str) -> Result<Self, FrameError> {
        if !text.trim_start().starts_with('{') {
            // Only the error path pays for a second look at the text.
            return Err(match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => FrameError::NotAnObject,
                Err(error) => FrameError::invalid_json(&error),
            });
        }
        let raw: RawEnvelope<'a> =
            serde_json::from_str(text).map_err(|error| FrameError::invalid_json(&error))?;
        // The envelope is validated before the action, as Chanx does.
        let version = envelope_int(raw.version, "version", false)?;
        let seq = envelope_int(raw.seq, "seq", true)?;
        let topic = envelope_topic(raw.topic)?;
        let enveloped = raw.version.is_some()
            || raw.topic.is_some()
            || raw.reference.is_some()
            || raw.seq.is_some();
        let action = match raw.action {
            None => return Err(FrameError::MissingAction),
            Some(value) if value.get() == "null" => return Err(FrameError::MissingAction),
            Some(value) => match plain_string(value.get()) {
                // The common case: a string without escapes, sliced out of
                // the frame as it is.
                Some(action) => Cow::Borrowed(action),
                None => match serde_json::from_str::<CowStr<'a>>(value.get()) {
                    Ok(CowStr(action)) => action,
                    Err(_) => {
                        return Err(FrameError::UnknownAction {
                            tag: truncate(value.get(), MAX_ECHOED_TAG).to_owned(),
                        });
                    }
                },
            },
        };
        Ok(Self {
            action,
            payload: raw.payload,
            reference: raw.reference,
            topic,
            version,
            seq,
            enveloped,
        })
    }
}

/// What a frame the server sends carries of the envelope: `"version":1`
/// when it answers a frame that carried envelope keys (as Chanx 2.13
/// answers) or belongs to a topic, the `topic`, the client's `ref`, and the
/// `seq` of a topic event. Written after `action` and `payload`, in
/// Chanx's order: `version`, `topic`, `ref`, `seq`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo<'a> {
    pub(crate) reference: Option<&'a RawValue>,
    pub(crate) version: bool,
    pub(crate) topic: Option<&'a str>,
    pub(crate) seq: Option<i64>,
}

impl<'a> Echo<'a> {
    /// Nothing to echo: a frame the server sends on its own.
    pub const NONE: Echo<'static> = Echo {
        reference: None,
        version: false,
        topic: None,
        seq: None,
    };

    /// Echoes `reference` only.
    #[must_use]
    pub fn reference(reference: Option<&'a RawValue>) -> Self {
        Self {
            reference,
            ..Echo::NONE
        }
    }

    /// A frame of `topic`: `"version":1` and the topic, plus `reference`
    /// when it answers a client frame and `seq` when it relays a topic
    /// event that carried one.
    #[must_use]
    pub fn topic(topic: &'a str, reference: Option<&'a RawValue>, seq: Option<i64>) -> Self {
        Self {
            reference,
            version: true,
            topic: Some(topic),
            seq,
        }
    }
}

impl Envelope<'_> {
    /// What a reply to this frame echoes (its topic included).
    #[must_use]
    pub fn echo(&self) -> Echo<'_> {
        Echo {
            reference: self.reference,
            version: self.enveloped,
            topic: self.topic.as_deref(),
            seq: None,
        }
    }
}

/// The longest `topic` a client frame may carry, in bytes. A longer one is
/// refused with pydantic's `string_too_long` at `loc: ["topic"]`, before
/// any handler or topic pattern sees it.
pub const MAX_TOPIC_LEN: usize = 256;

/// The envelope version chanx speaks (Chanx's `ENVELOPE_VERSION`).
pub const ENVELOPE_VERSION: i64 = 1;

/// An integer envelope key (`version`, or `seq` when `nullable`), checked
/// as pydantic checks Chanx's `Envelope` model (strictly: no coercion).
fn envelope_int(
    raw: Option<&RawValue>,
    key: &str,
    nullable: bool,
) -> Result<Option<i64>, FrameError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let text = raw.get();
    if text == "null" && nullable {
        return Ok(None);
    }
    if let Ok(value) = text.parse::<i64>() {
        return Ok(Some(value));
    }
    let (kind, msg) = if text.starts_with('"') {
        (
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        )
    } else if text.parse::<f64>().is_ok() {
        (
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
        )
    } else {
        ("int_type", "Input should be a valid integer")
    };
    Err(FrameError::InvalidEnvelope {
        loc: vec![LocSegment::Key(key.to_owned())],
        kind,
        msg: msg.to_owned(),
    })
}

/// The `topic` envelope key: a string, or null.
fn envelope_topic(raw: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, FrameError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if raw.get() == "null" {
        return Ok(None);
    }
    let topic = if let Some(plain) = plain_string(raw.get()) {
        Cow::Borrowed(plain)
    } else {
        match serde_json::from_str::<String>(raw.get()) {
            Ok(topic) => Cow::Owned(topic),
            Err(_) => {
                return Err(FrameError::InvalidEnvelope {
                    loc: vec![LocSegment::Key("topic".to_owned())],
                    kind: "string_type",
                    msg: "Input should be a valid string".to_owned(),
                });
            }
        }
    };
    if topic.chars().count() > MAX_TOPIC_LEN {
        return Err(FrameError::InvalidEnvelope {
            loc: vec![LocSegment::Key("topic".to_owned())],
            kind: "string_too_long",
            msg: format!("String should have at most {MAX_TOPIC_LEN} characters"),
        });
    }
    Ok(Some(topic))
}

/// The contents of a JSON string literal that has no escapes. `raw` is
/// valid JSON (a `RawValue`), so between its quotes there is nothing to
/// decode unless a backslash appears.
fn plain_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

/// How much of an unknown tag an error frame echoes back.
const MAX_ECHOED_TAG: usize = 100;

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Deserialises the raw payload of a frame whose action is `action` into `M`.
///
/// A missing payload is read as `null`, so unit messages accept
/// `{"action":"ping"}`; for any other message it is pydantic's `missing`
/// at `[action, "payload"]`.
pub(crate) fn decode_payload<M: Message>(
    action: &str,
    payload: Option<&RawValue>,
) -> Result<M, FrameError> {
    let text = payload.map_or("null", RawValue::get);
    let mut json = serde_json::Deserializer::from_str(text);
    match M::deserialize_payload(action, &mut json) {
        Ok(message) => Ok(message),
        Err(_) if payload.is_none() => Err(FrameError::InvalidPayload {
            loc: vec![
                LocSegment::Key(action.to_owned()),
                LocSegment::Key("payload".to_owned()),
            ],
            kind: "missing",
            msg: "Field required".to_owned(),
        }),
        // The fast path does not track where it is; on failure, decode again
        // with path tracking to build the error's `loc`.
        Err(_) => Err(payload_error::<M>(action, text)),
    }
}

fn payload_error<M: Message>(action: &str, text: &str) -> FrameError {
    let mut json = serde_json::Deserializer::from_str(text);
    let mut track = serde_path_to_error::Track::new();
    let result = M::deserialize_payload(
        action,
        serde_path_to_error::Deserializer::new(&mut json, &mut track),
    );
    let mut loc = vec![
        LocSegment::Key(action.to_owned()),
        LocSegment::Key("payload".to_owned()),
    ];
    for segment in track.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => loc.push(LocSegment::Index(*index)),
            serde_path_to_error::Segment::Map { key } => loc.push(LocSegment::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => {
                loc.push(LocSegment::Key(variant.clone()));
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    let Err(error) = result else {
        // Decoding is deterministic; reaching this means the first attempt
        // failed for a reason the second did not see.
        return FrameError::InvalidPayload {
            loc,
            kind: "value_error",
            msg: "Invalid payload".to_owned(),
        };
    };
    let full = error.to_string();
    let message = strip_position(&full);
    let (kind, msg) = classify(message, &mut loc);
    FrameError::InvalidPayload { loc, kind, msg }
}

/// serde_json appends " at line L column C"; the `loc` already says where.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(index) if message[index..].contains(" column ") => &message[..index],
        _ => message,
    }
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(&message[start..end])
}

/// What serde expected, by the words of its `expected …` clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected<'a> {
    Integer(&'a str),
    Float,
    String,
    Bool,
    List,
    Dict,
    Model(&'a str),
    Null,
    Other,
}

fn expected(text: &str) -> Expected<'_> {
    let text = text.trim();
    match text {
        "a string" | "a borrowed string" | "a character" | "a string or bytes" => Expected::String,
        "a boolean" => Expected::Bool,
        "f32" | "f64" => Expected::Float,
        "a sequence" | "an array" => Expected::List,
        "a map" => Expected::Dict,
        "unit" | "null" => Expected::Null,
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => Expected::Integer(text),
        _ => {
            if text.starts_with("a tuple") || text.starts_with("tuple ") {
                Expected::List
            } else if let Some(name) = text.strip_prefix("struct ") {
                Expected::Model(name)
            } else {
                Expected::Other
            }
        }
    }
}

/// The bounds of a Rust integer type, as text.
fn integer_bounds(ty: &str) -> (&'static str, &'static str) {
    match ty {
        "u8" => ("0", "255"),
        "u16" => ("0", "65535"),
        "u32" => ("0", "4294967295"),
        "u64" | "usize" => ("0", "18446744073709551615"),
        "u128" => ("0", "340282366920938463463374607431768211455"),
        "i8" => ("-128", "127"),
        "i16" => ("-32768", "32767"),
        "i32" => ("-2147483648", "2147483647"),
        "i128" => (
            "-170141183460469231731687303715884105728",
            "170141183460469231731687303715884105727",
        ),
        _ => ("-9223372036854775808", "9223372036854775807"),
    }
}

/// Maps a serde error message to pydantic's error `type` and `msg` (see
/// [`crate::protocol`] for the table), adding the field to `loc` where
/// serde names it.
fn classify(message: &str, loc: &mut Vec<LocSegment>) -> (&'static str, String) {
    let push_field = |loc: &mut Vec<LocSegment>| {
        if let Some(field) = backticked(message)
            && !matches!(loc.last(), Some(LocSegment::Key(last)) if last == field)
        {
            loc.push(LocSegment::Key(field.to_owned()));
        }
    };
    if message.starts_with("missing field") {
        push_field(loc);
        return ("missing", "Field required".to_owned());
    }
    if message.starts_with("unknown field") {
        push_field(loc);
        return (
            "extra_forbidden",
            "Extra inputs are not permitted".to_owned(),
        );
    }
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((unexpected, wanted)) = rest.split_once(", expected ")
    {
        return invalid_type(unexpected, expected(wanted));
    }
    if let Some(rest) = message.strip_prefix("invalid value: ")
        && let Some((unexpected, wanted)) = rest.split_once(", expected ")
    {
        if let Expected::Integer(ty) = expected(wanted)
            && let Some(number) = backticked(unexpected)
        {
            let (min, max) = integer_bounds(ty);
            return if number.starts_with('-') {
                (
                    "greater_than_equal",
                    format!("Input should be greater than or equal to {min}"),
                )
            } else {
                (
                    "less_than_equal",
                    format!("Input should be less than or equal to {max}"),
                )
            };
        }
        return invalid_type(unexpected, expected(wanted));
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((_, variants)) = rest.split_once(", expected ")
    {
        // serde writes "`a`", "`a` or `b`", or "one of `a`, `b`, `c`".
        let names: Vec<&str> = variants
            .trim_start_matches("one of ")
            .split(", ")
            .flat_map(|part| part.split(" or "))
            .map(|variant| variant.trim_matches('`'))
            .collect();
        return ("enum", format!("Input should be {}", or_list(&names)));
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((actual, wanted)) = rest.split_once(", expected ")
    {
        let size = wanted
            .rsplit(' ')
            .next()
            .and_then(|size| size.parse::<usize>().ok());
        if let (Ok(actual), Some(size)) = (actual.trim().parse::<usize>(), size) {
            return if actual < size {
                (
                    "too_short",
                    format!(
                        "Tuple should have at least {size} items after validation, not {actual}"
                    ),
                )
            } else {
                (
                    "too_long",
                    format!(
                        "Tuple should have at most {size} items after validation, not {actual}"
                    ),
                )
            };
        }
    }
    if message.starts_with("trailing characters") {
        return ("json_invalid", format!("Invalid JSON: {message}"));
    }
    ("value_error", format!("Value error, {message}"))
}

/// A value of the wrong type: `unexpected` is serde's description of what
/// arrived (`string "x"`, `integer `5``, `floating point `1.5``, `null`…).
fn invalid_type(unexpected: &str, wanted: Expected<'_>) -> (&'static str, String) {
    let is_string = unexpected.starts_with("string ");
    match wanted {
        Expected::String => ("string_type", "Input should be a valid string".to_owned()),
        Expected::Integer(_) => {
            if is_string {
                (
                    "int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer"
                        .to_owned(),
                )
            } else if unexpected.starts_with("floating point") {
                (
                    "int_from_float",
                    "Input should be a valid integer, got a number with a fractional part"
                        .to_owned(),
                )
            } else {
                ("int_type", "Input should be a valid integer".to_owned())
            }
        }
        Expected::Float => {
            if is_string {
                (
                    "float_parsing",
                    "Input should be a valid number, unable to parse string as a number".to_owned(),
                )
            } else {
                ("float_type", "Input should be a valid number".to_owned())
            }
        }
        Expected::Bool => {
            if is_string || unexpected.starts_with("integer") {
                (
                    "bool_parsing",
                    "Input should be a valid boolean, unable to interpret input".to_owned(),
                )
            } else {
                ("bool_type", "Input should be a valid boolean".to_owned())
            }
        }
        Expected::List => ("list_type", "Input should be a valid list".to_owned()),
        Expected::Dict => ("dict_type", "Input should be a valid dictionary".to_owned()),
        Expected::Model(name) => (
            "model_type",
            format!("Input should be a valid dictionary or instance of {name}"),
        ),
        Expected::Null => ("none_required", "Input should be None".to_owned()),
        Expected::Other => (
            "value_error",
            format!("Value error, invalid type: {unexpected}"),
        ),
    }
}

/// `'a'`, `'a' or 'b'`, `'a', 'b' or 'c'`, as pydantic lists choices.
fn or_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// One element of an error's `loc`: an object key or an array index.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(untagged)]
pub enum LocSegment {
    /// An object key (or the action, or `"payload"`).
    Key(String),
    /// An array index.
    Index(usize),
}

/// Why a client frame was rejected before it reached a handler.
///
/// Each variant renders as the Chanx 2.x error frame of the same name; see
/// [`FrameError::to_frame`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame is not JSON, or is a binary frame (`json_invalid`).
    #[error("Invalid JSON: {detail}")]
    InvalidJson {
        /// What the JSON parser reported.
        detail: String,
    },
    /// The frame is JSON but not an object (`model_type`).
    #[error("Input should be an object")]
    NotAnObject,
    /// The object has no `action` key (`union_tag_not_found`).
    #[error("Unable to extract tag using discriminator 'action'")]
    MissingAction,
    /// The action matches no handler (`union_tag_invalid`).
    #[error("Input tag '{tag}' found using 'action' does not match any of the expected tags")]
    UnknownAction {
        /// The action the client sent.
        tag: String,
    },
    /// An envelope key (`version`, `topic`, `seq`) has the wrong type;
    /// reported before the action is looked at, as Chanx does.
    #[error("{msg}")]
    InvalidEnvelope {
        /// `[key]`.
        loc: Vec<LocSegment>,
        /// The pydantic error type (`int_parsing`, `string_type`…).
        kind: &'static str,
        /// A readable description.
        msg: String,
    },
    /// The payload does not deserialise into the handler's input type.
    #[error("{msg}")]
    InvalidPayload {
        /// `[action, "payload", field…]`.
        loc: Vec<LocSegment>,
        /// A pydantic-style error type such as `missing` or `invalid_type`.
        kind: &'static str,
        /// A readable description.
        msg: String,
    },
}

impl FrameError {
    fn invalid_json(error: &serde_json::Error) -> Self {
        Self::InvalidJson {
            detail: error.to_string(),
        }
    }

    /// The error for a binary frame: the protocol is JSON text only.
    #[must_use]
    pub fn binary_frame() -> Self {
        Self::InvalidJson {
            detail: "binary frames are not accepted, send JSON as a text frame".to_owned(),
        }
    }

    /// The pydantic error type this error is reported as.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidJson { .. } => "json_invalid",
            Self::NotAnObject => "model_type",
            Self::MissingAction => "union_tag_not_found",
            Self::UnknownAction { .. } => "union_tag_invalid",
            Self::InvalidPayload { kind, .. } | Self::InvalidEnvelope { kind, .. } => kind,
        }
    }

    /// Renders the error frame, listing `expected` actions for an unknown one.
    #[must_use]
    pub fn to_frame(&self, expected: &[&str]) -> String {
        self.to_frame_with_ref(expected, None)
    }

    /// Renders the error frame with the client's `ref` echoed, for errors
    /// found after the envelope was read.
    #[must_use]
    pub fn to_frame_with_ref(&self, expected: &[&str], reference: Option<&RawValue>) -> String {
        crate::protocol::rejection(self, expected, Echo::reference(reference))
    }

    /// Renders the error frame with what the reply echoes of the client's
    /// frame ([`Envelope::echo`]).
    #[must_use]
    pub fn to_frame_with_echo(&self, expected: &[&str], echo: Echo<'_>) -> String {
        crate::protocol::rejection(self, expected, echo)
    }

    /// The error as one item of an error frame's payload.
    #[must_use]
    pub fn to_item(&self, expected: &[&str]) -> crate::protocol::ErrorItem {
        let (loc, msg) = match self {
            Self::UnknownAction { tag } => (
                Vec::new(),
                format!(
                    "Input tag '{}' found using 'action' does not match any of the expected tags: {}",
                    truncate(tag, MAX_ECHOED_TAG),
                    ExpectedTags(expected)
                ),
            ),
            Self::InvalidPayload { loc, msg, .. } | Self::InvalidEnvelope { loc, msg, .. } => {
                (loc.clone(), msg.clone())
            }
            other => (Vec::new(), other.to_string()),
        };
        crate::protocol::ErrorItem {
            kind: Cow::Borrowed(self.kind()),
            loc,
            msg,
        }
    }
}

struct ExpectedTags<'a>(&'a [&'a str]);

impl fmt::Display for ExpectedTags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, tag) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "'{tag}'")?;
        }
        Ok(())
    }
}

struct RawEnvelope<'a> {
    action: Option<&'a RawValue>,
    payload: Option<&'a RawValue>,
    reference: Option<&'a RawValue>,
    topic: Option<&'a RawValue>,
    version: Option<&'a RawValue>,
    seq: Option<&'a RawValue>,
}

impl<'de> Deserialize<'de> for RawEnvelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;

        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = RawEnvelope<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut envelope = RawEnvelope {
                    action: None,
                    payload: None,
                    reference: None,
                    topic: None,
                    version: None,
                    seq: None,
                };
                while let Some(CowStr(key)) = map.next_key()? {
                    match &*key {
                        "action" => envelope.action = Some(map.next_value()?),
                        "payload" => envelope.payload = Some(map.next_value()?),
                        "ref" => envelope.reference = Some(map.next_value()?),
                        "topic" => envelope.topic = Some(map.next_value()?),
                        "version" => envelope.version = Some(map.next_value()?),
                        "seq" => envelope.seq = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(envelope)
            }
        }

        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

/// A string borrowed from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CowVisitor;

        impl<'de> Visitor<'de> for CowVisitor {
            type Value = CowStr<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(value)))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(value)))
            }
        }

        deserializer.deserialize_str(CowVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_borrowed_action_and_raw_payload() {
        let text = r#"{"payload":{"a":[1,2]},"action":"chat","ref":"r1","topic":"x"}"#;
        let envelope = Envelope::parse(text).unwrap();
        assert!(matches!(envelope.action, Cow::Borrowed("chat")));
        assert_eq!(envelope.payload.unwrap().get(), r#"{"a":[1,2]}"#);
        assert_eq!(envelope.reference.unwrap().get(), r#""r1""#);
    }

    #[test]
    fn plain_strings_are_sliced_and_escapes_decoded() {
        assert_eq!(plain_string("\"chat\""), Some("chat"));
        assert_eq!(plain_string("\"\""), Some(""));
        assert_eq!(plain_string(r#""a\"b""#), None);
        assert_eq!(plain_string("5"), None);
        let envelope = Envelope::parse(r#"{"action":"a\"b"}"#).unwrap();
        assert_eq!(envelope.action, "a\"b");
    }

    #[test]
    fn escaped_action_is_owned() {
        let envelope = Envelope::parse(r#"{"action":"ch\u0061t"}"#).unwrap();
        assert_eq!(envelope.action, "chat");
        assert!(envelope.payload.is_none());
    }

    #[test]
    fn envelope_keys_are_read_and_checked_before_the_action() {
        let envelope = Envelope::parse(
            r#"{"version":1,"topic":"discussion:5","ref":"1","action":"subscribe"}"#,
        )
        .unwrap();
        assert_eq!(envelope.action, "subscribe");
        assert_eq!(envelope.topic.as_deref(), Some("discussion:5"));
        assert_eq!((envelope.version, envelope.seq), (Some(1), None));
        assert!(envelope.enveloped);
        let plain = Envelope::parse(r#"{"action":"ping"}"#).unwrap();
        assert!(!plain.enveloped && plain.topic.is_none());
        assert!(
            Envelope::parse(r#"{"ref":"6","action":"ping"}"#)
                .unwrap()
                .enveloped
        );
        // Chanx answers `"version":"x"` with int_parsing at ["version"],
        // even when the action is missing too.
        for (frame, kind, key) in [
            (
                r#"{"action":"ping","version":"x"}"#,
                "int_parsing",
                "version",
            ),
            (r#"{"version":"x"}"#, "int_parsing", "version"),
            (
                r#"{"action":"ping","version":1.5}"#,
                "int_from_float",
                "version",
            ),
            (r#"{"action":"ping","version":null}"#, "int_type", "version"),
            (r#"{"action":"ping","seq":true}"#, "int_type", "seq"),
            (r#"{"action":"ping","topic":5}"#, "string_type", "topic"),
        ] {
            let error = Envelope::parse(frame).unwrap_err();
            assert_eq!(error.kind(), kind, "{frame}");
            let item = error.to_item(&["ping"]);
            assert_eq!(item.loc, [LocSegment::Key(key.to_owned())], "{frame}");
        }
        assert_eq!(
            Envelope::parse(r#"{"action":"ping","seq":null,"topic":null}"#)
                .unwrap()
                .seq,
            None
        );
    }

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(Envelope::parse("nope").unwrap_err().kind(), "json_invalid");
        assert_eq!(
            Envelope::parse("{\"action\":").unwrap_err().kind(),
            "json_invalid"
        );
        assert_eq!(Envelope::parse("[1, }").unwrap_err().kind(), "json_invalid");
        assert_eq!(Envelope::parse("[1,2]").unwrap_err().kind(), "model_type");
        assert_eq!(Envelope::parse(" 42").unwrap_err().kind(), "model_type");
        assert_eq!(
            Envelope::parse("{}").unwrap_err().kind(),
            "union_tag_not_found"
        );
        assert_eq!(
            Envelope::parse(r#"{"action":null}"#).unwrap_err().kind(),
            "union_tag_not_found"
        );
        assert_eq!(
            Envelope::parse(r#"{"action":5}"#).unwrap_err(),
            FrameError::UnknownAction { tag: "5".into() }
        );
    }

    #[test]
    fn unknown_action_frame_lists_expected_tags() {
        let error = FrameError::UnknownAction { tag: "nope".into() };
        let frame: serde_json::Value =
            serde_json::from_str(&error.to_frame(&["ping", "echo"])).unwrap();
        assert_eq!(
            frame,
            serde_json::json!({"action":"error","payload":[{
                "type":"union_tag_invalid","loc":[],
                "msg":"Input tag 'nope' found using 'action' does not match any of the expected tags: 'ping', 'echo'"
            }]})
        );
    }

    #[test]
    fn strips_serde_positions() {
        assert_eq!(
            strip_position("missing field `a` at line 1 column 2"),
            "missing field `a`"
        );
        assert_eq!(strip_position("no position here"), "no position here");
    }
}
