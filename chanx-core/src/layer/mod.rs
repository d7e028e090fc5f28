//! Channel layers: groups, broadcast and events across connections.
//!
//! A [`ChannelLayer`] moves *serialised* messages between connections: a
//! broadcast is encoded once, and every receiver gets the same shared bytes.
//! The in-memory layer ([`MemoryLayer`]) is the default and joins the
//! connections of one process; the Redis layer (feature `redis`) joins
//! processes.
//!
//! Users reach a layer through a [`Layer`] handle: from a handler with
//! [`Context::layer`](crate::Context::layer), from the router with
//! [`Router::layer`](crate::Router::layer), or by keeping a clone in an HTTP
//! handler or a background task.
//!
//! # Order
//!
//! A connection receives the broadcasts of one sender to one group in the
//! order they were sent, interleaved with its own replies in the order both
//! were queued. The `authentication` frame always comes first; the declared
//! groups are joined right after it, so a broadcast can arrive before what
//! the `#[post_authentication]` hook sends. Events are handled by the
//! connection loop between client frames.
//!
//! # Slow receivers
//!
//! Each connection has queues bounded in bytes: broadcasts go straight to
//! its outbound queue (default 256 KiB,
//! [`ServerConfig::outbound_queue_bytes`](crate::ServerConfig::outbound_queue_bytes)),
//! events to its inbox (default 128 KiB,
//! [`ServerConfig::inbox_bytes`](crate::ServerConfig::inbox_bytes)). A
//! shared frame counts in each receiver's budget but is held once. A layer
//! never waits for a receiver: when a connection's queue is full, that
//! connection alone is closed with **1008** (reason `"too slow: inbox
//! full"`), the event is logged at `warn`, and [`LayerStats::slow_disconnects`]
//! counts it. Other receivers of the same broadcast are not delayed, memory
//! stays bounded, and no message is dropped silently: a client that misses a
//! message also loses its connection and knows to resynchronise.
//!
//! # Fan-out is charged to the sender
//!
//! A broadcast from a connection costs it the frame's bytes times the
//! receivers it reached ([`ServerConfig::fanout_limit`](crate::ServerConfig::fanout_limit),
//! default 32 MiB/s with a burst of 128 KiB). A connection over its budget
//! is not read until it is back within it: a member flooding a room slows
//! itself down, instead of filling the queues of members that keep up.
//!
//! # Group names
//!
//! A group name is 1 to 99 ASCII letters, digits, `-`, `_` or `.` (as in
//! Django Channels). Groups come from three places:
//!
//! - **templates** in `#[channel(groups = ["chat_{room}"])]`, filled in with
//!   route parameters at connect. Any value is accepted (`room_1`,
//!   `my-room`, a UUID, `café`) and none can make one template spell
//!   another's group: letters and digits are kept, every other byte becomes
//!   `.` and two hex digits (`room_1` → `chat_room.5f1`). So that this
//!   holds, a template with placeholders has no `.`, and each placeholder
//!   stands alone between `_`, `-` or the ends (compile errors otherwise);
//!   [`Router::validate`](crate::Router::validate) refuses two templates
//!   where a value of one could spell the other's literal text
//!   (`chat_{room}` and `chat_admin`). A name over 99 bytes keeps its first
//!   82 and ends with `.` and 16 hex digits of its BLAKE2s digest;
//! - a **`#[build_groups]`** hook, which computes names at connect from the
//!   identity, state and path (Chanx's `build_groups`); build them with
//!   [`safe_group_name`] or [`GroupName::new`];
//! - [`Context::join`](crate::Context::join) at run time.

use std::borrow::Borrow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::message::{Message, encode};
use crate::presence::{Presence, PresenceConfig, PresenceError, PresenceState};

mod hub;
mod memory;
#[cfg(feature = "redis")]
mod redis;

pub use crate::group::GroupTemplateError;
pub use hub::{Hub, Inbox, InboxClosed, LayerStats};
pub use memory::MemoryLayer;
#[cfg(feature = "redis")]
pub use redis::{RedisLayer, RedisLayerConfig, RedisUnavailable};

/// Chanx's `safe_group_name(*parts, namespace=...)`, for group names you
/// build yourself (in a `#[build_groups]` hook, or for `ctx.join`): each
/// part with runs of characters outside `A-Z a-z 0-9 . _ -` replaced by one
/// `-` and hyphens trimmed, empty parts dropped, joined with `.` after the
/// namespace; a name over 99 bytes keeps its first 86 and ends with `.` and
/// 12 hex digits of its 6-byte BLAKE2s digest.
///
/// It is lossy (`"a b"` and `"a-b"` give the same name). `{param}`
/// templates in `#[channel(groups = …)]` use an encoding that is not (see
/// the [module documentation](self#group-names)).
///
/// ```
/// use chanx_core::layer::safe_group_name;
/// assert_eq!(safe_group_name(["user", "42"], Some("notification")).unwrap().as_str(), "notification.user.42");
/// assert_eq!(safe_group_name(["room", "Weekly Sync!"], None).unwrap().as_str(), "room.Weekly-Sync");
/// assert!(safe_group_name(["!!!"], None).is_none());
/// ```
#[must_use]
pub fn safe_group_name<'a>(
    parts: impl IntoIterator<Item = &'a str>,
    namespace: Option<&str>,
) -> Option<GroupName> {
    let parts: Vec<&str> = parts.into_iter().collect();
    let name = crate::group::safe_group_name(&parts, namespace)?;
    GroupName::new(&name).ok()
}

/// The longest group name, as in Django Channels.
pub const MAX_GROUP_NAME_LEN: usize = 99;

/// A validated group name: 1 to 99 ASCII letters, digits, `-`, `_` or `.`.
///
/// ```
/// use chanx_core::layer::GroupName;
/// assert!(GroupName::new("chat_lobby").is_ok());
/// assert!(GroupName::new("chat lobby").is_err());
/// assert!(GroupName::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupName(Arc<str>);

impl GroupName {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`InvalidGroupName`] when it is empty, too long, or has a character
    /// outside `A-Z a-z 0-9 - _ .`.
    pub fn new(name: &str) -> Result<Self, InvalidGroupName> {
        let valid = !name.is_empty()
            && name.len() <= MAX_GROUP_NAME_LEN
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
        if valid {
            Ok(Self(Arc::from(name)))
        } else {
            Err(InvalidGroupName {
                name: name.chars().take(MAX_GROUP_NAME_LEN + 1).collect(),
            })
        }
    }

    /// The group of `template` (`"chat_{room}"`) with `params` filled in,
    /// encoded as `#[channel(groups = …)]` encodes route values (see
    /// [Group names](self#group-names)): the name a connection of that
    /// template joined, to reach it from an HTTP route or a background task.
    ///
    /// ```
    /// use chanx_core::layer::GroupName;
    /// let lobby = GroupName::from_template("chat_{room}", [("room", "lobby")]).unwrap();
    /// assert_eq!(lobby.as_str(), "chat_lobby");
    /// let mine = GroupName::from_template("chat_{room}", [("room", "my room")]).unwrap();
    /// assert_eq!(mine.as_str(), "chat_my.20room");
    /// ```
    ///
    /// # Errors
    ///
    /// [`GroupTemplateError`] when a placeholder has no value (or an empty
    /// one), or the template is malformed.
    pub fn from_template<'a>(
        template: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, GroupTemplateError> {
        let params: Vec<(&str, &str)> = params.into_iter().collect();
        crate::group::expand(template, |name| {
            params
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| *value)
        })
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for GroupName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for GroupName {
    type Error = InvalidGroupName;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        Self::new(name)
    }
}

/// A group name that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid group name {name:?}: use 1 to 99 ASCII letters, digits, '-', '_' or '.'")]
pub struct InvalidGroupName {
    name: String,
}

impl InvalidGroupName {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.chars().take(MAX_GROUP_NAME_LEN + 1).collect(),
        }
    }
}

/// The address of one connection, unique across processes:
/// `<process>.<connection>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    pub(crate) fn new(process: &str, connection: u64) -> Self {
        Self(Arc::from(format!("{process}.{connection}")))
    }

    /// Parses a channel name received from another process.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        let (process, connection) = name.rsplit_once('.')?;
        (!process.is_empty() && connection.parse::<u64>().is_ok()).then(|| Self(Arc::from(name)))
    }

    /// The process part.
    #[must_use]
    pub fn process(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(process, _)| process)
    }

    /// The whole name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a layer message asks the receiving connection to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageKind {
    /// Forward the frame to the client as it is.
    Broadcast,
    /// Dispatch the frame to the consumer's `#[event_handler]`s.
    Event,
}

/// One message crossing a layer: an encoded frame plus routing data.
///
/// Cloning is one reference-count increment: every receiver of a broadcast
/// shares the same encoded bytes, and an inbox slot is one pointer.
#[derive(Clone)]
pub struct LayerMessage(Arc<MessageInner>);

#[derive(Clone)]
struct MessageInner {
    kind: MessageKind,
    frame: Utf8Bytes,
    exclude: Option<ChannelName>,
}

impl LayerMessage {
    /// A broadcast of `message`, encoded once.
    pub fn broadcast<M: Message>(message: &M) -> Self {
        Self::from_text(
            MessageKind::Broadcast,
            encode(message, crate::wire::Echo::NONE),
        )
    }

    /// An event carrying `event`, encoded once.
    pub fn event<M: Message>(event: &M) -> Self {
        Self::from_text(MessageKind::Event, encode(event, crate::wire::Echo::NONE))
    }

    /// A message from already encoded JSON text (a wire frame).
    #[must_use]
    pub fn from_text(kind: MessageKind, frame: String) -> Self {
        Self::from_shared(kind, Utf8Bytes::from(frame), None)
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn from_shared(
        kind: MessageKind,
        frame: Utf8Bytes,
        exclude: Option<ChannelName>,
    ) -> Self {
        Self(Arc::new(MessageInner {
            kind,
            frame,
            exclude,
        }))
    }

    /// Skips `channel` when delivering (used to exclude the sender).
    #[must_use]
    pub fn excluding(mut self, channel: ChannelName) -> Self {
        Arc::make_mut(&mut self.0).exclude = Some(channel);
        self
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> MessageKind {
        self.0.kind
    }

    /// The encoded frame.
    #[must_use]
    pub fn text(&self) -> &str {
        self.0.frame.as_str()
    }

    /// The channel this message skips, if any.
    #[must_use]
    pub fn excluded(&self) -> Option<&ChannelName> {
        self.0.exclude.as_ref()
    }

    pub(crate) fn frame(&self) -> &Utf8Bytes {
        &self.0.frame
    }
}

impl fmt::Debug for LayerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerMessage")
            .field("kind", &self.0.kind)
            .field("frame", &self.0.frame.as_str())
            .field("exclude", &self.0.exclude)
            .finish()
    }
}

/// A layer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A group name was not allowed.
    #[error(transparent)]
    InvalidGroup(#[from] InvalidGroupName),
    /// The backend (for example Redis) could not be reached or did not
    /// answer in time; the layer keeps reconnecting, so a later send may
    /// succeed. The source is the backend's error (for Redis, a
    /// `redis::RedisError` or a `RedisUnavailable`).
    #[error("channel layer backend unavailable: {0}")]
    Unavailable(#[source] crate::BoxError),
    /// A send to several groups failed for these groups (the others got
    /// it); each with its own error.
    #[error("the send failed for {}", describe_failures(.0))]
    Groups(Vec<(GroupName, LayerError)>),
}

fn describe_failures(failed: &[(GroupName, LayerError)]) -> String {
    let mut out = String::new();
    for (index, (group, error)) in failed.iter().enumerate() {
        if index > 0 {
            out.push_str("; ");
        }
        out.push_str(&format!("group {group}: {error}"));
    }
    out
}

/// Moves messages between connections: groups, broadcasts and events.
///
/// Implement it to bring another backend; [`Hub`] does the local half
/// (membership and delivery to this process's connections) for you.
pub trait ChannelLayer: Send + Sync + 'static {
    /// This process's id, the first part of every local [`ChannelName`].
    fn process_id(&self) -> &str;

    /// Registers a connection; the returned inbox, bounded to `budget`
    /// bytes, receives its messages.
    fn register(&self, channel: &ChannelName, budget: usize) -> Inbox;

    /// Removes a connection from every group and drops its inbox.
    fn unregister(&self, channel: &ChannelName) -> BoxFuture<'_, ()>;

    /// Adds a connection to a group.
    fn join<'a>(
        &'a self,
        group: &'a GroupName,
        channel: &'a ChannelName,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Removes a connection from a group.
    fn leave<'a>(
        &'a self,
        group: &'a GroupName,
        channel: &'a ChannelName,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Delivers `message` to every member of `group`, on every process;
    /// returns how many connections of this process got it.
    ///
    /// # Errors
    ///
    /// The message could not reach the other processes (the local members
    /// got it).
    fn send_group<'a>(
        &'a self,
        group: &'a GroupName,
        message: LayerMessage,
    ) -> BoxFuture<'a, Result<usize, LayerError>>;

    /// Delivers `message` to one connection, on whichever process holds it.
    fn send_to<'a>(
        &'a self,
        channel: &'a ChannelName,
        message: LayerMessage,
    ) -> BoxFuture<'a, Result<(), LayerError>>;

    /// Counters for monitoring.
    fn stats(&self) -> LayerStats;

    /// The local half of this layer, when it keeps one: presence delivers
    /// its frames through it. `None` (the default) leaves a custom layer
    /// without presence.
    fn hub(&self) -> Option<&Hub> {
        None
    }

    /// Whether other processes share this layer (presence then publishes
    /// and heartbeats; the in-memory layer says no).
    fn spans_processes(&self) -> bool {
        true
    }
}

/// A cheap-to-clone handle to the application's channel layer, with typed
/// helpers.
///
/// ```
/// use chanx_core::Router;
/// use chanx_core::messages::Pong;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let router = Router::new(); // in-memory layer by default
/// let layer = router.layer();
/// layer.broadcast("lobby", &Pong).await?; // no member yet: delivered to nobody
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Layer {
    inner: Arc<dyn ChannelLayer>,
    presence: Arc<OnceLock<Arc<Presence>>>,
    presence_config: PresenceConfig,
}

impl Layer {
    /// Wraps a layer implementation.
    pub fn new(layer: impl ChannelLayer) -> Self {
        Self {
            inner: Arc::new(layer),
            presence: Arc::default(),
            presence_config: PresenceConfig::default(),
        }
    }

    /// Sets how presence keeps processes in step (heartbeat interval,
    /// timeout); see [`presence`](crate::presence).
    #[must_use]
    pub fn with_presence_config(mut self, config: PresenceConfig) -> Self {
        self.presence_config = config;
        self.presence = Arc::default();
        self
    }

    /// This process's presence, started on first use.
    pub(crate) fn presence_state(&self) -> &Arc<Presence> {
        self.presence
            .get_or_init(|| Arc::new(Presence::new(Arc::clone(&self.inner), self.presence_config)))
    }

    /// This process's presence, if anything has been tracked or listed.
    pub(crate) fn presence_if_started(&self) -> Option<&Arc<Presence>> {
        self.presence.get()
    }

    /// Everyone present in `group`, as this process sees it (see
    /// [`presence`](crate::presence)): for HTTP routes and tasks; in a
    /// handler, [`Context::presence`](crate::Context::presence).
    ///
    /// # Errors
    ///
    /// An invalid group name, a layer without presence, or an unreachable
    /// backend.
    pub async fn presence(&self, group: &str) -> Result<PresenceState, PresenceError> {
        let group = GroupName::new(group).map_err(LayerError::from)?;
        self.presence_state().list(&group).await
    }

    /// A new in-memory layer.
    #[must_use]
    pub fn memory() -> Self {
        Self::new(MemoryLayer::new())
    }

    /// The layer implementation.
    #[must_use]
    pub fn inner(&self) -> &dyn ChannelLayer {
        &*self.inner
    }

    /// Sends `message` to the clients in `group`, encoded once.
    ///
    /// # Errors
    ///
    /// An invalid group name, or an unreachable backend.
    pub async fn broadcast<M: Message>(&self, group: &str, message: &M) -> Result<(), LayerError> {
        let group = GroupName::new(group)?;
        self.inner
            .send_group(&group, LayerMessage::broadcast(message))
            .await
            .map(drop)
    }

    /// Sends `message` to the clients in each of `groups`, encoded once. Every
    /// group is tried, even after one fails; a connection in several of them
    /// gets one copy per group.
    ///
    /// # Errors
    ///
    /// An invalid group name (nothing is sent), or
    /// [`LayerError::Groups`] naming the groups that could not be reached
    /// (the others got it).
    pub async fn broadcast_to<I, S, M>(&self, groups: I, message: &M) -> Result<(), LayerError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        M: Message,
    {
        let groups = groups
            .into_iter()
            .map(|group| GroupName::new(group.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        send_to_groups(&*self.inner, &groups, &LayerMessage::broadcast(message))
            .await
            .1
    }

    /// Sends `event` to the `#[event_handler]`s of the connections in `group`.
    ///
    /// # Errors
    ///
    /// An invalid group name, or an unreachable backend.
    pub async fn send_event<M: Message>(&self, group: &str, event: &M) -> Result<(), LayerError> {
        let group = GroupName::new(group)?;
        self.inner
            .send_group(&group, LayerMessage::event(event))
            .await
            .map(drop)
    }

    /// Sends `event` to the `#[event_handler]`s of one connection.
    ///
    /// # Errors
    ///
    /// An unreachable backend.
    pub async fn send_event_to<M: Message>(
        &self,
        channel: &ChannelName,
        event: &M,
    ) -> Result<(), LayerError> {
        self.inner
            .send_to(channel, LayerMessage::event(event))
            .await
    }

    /// Counters for monitoring.
    #[must_use]
    pub fn stats(&self) -> LayerStats {
        self.inner.stats()
    }
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("process", &self.inner.process_id())
            .finish_non_exhaustive()
    }
}

impl Default for Layer {
    fn default() -> Self {
        Self::memory()
    }
}

/// Sends `message` to every group in `groups`, trying them all; returns how
/// many local receivers got it (at least one per group, counting what went
/// to other processes) and the groups that failed.
pub(crate) async fn send_to_groups(
    layer: &dyn ChannelLayer,
    groups: &[GroupName],
    message: &LayerMessage,
) -> (usize, Result<(), LayerError>) {
    let mut failed = Vec::new();
    let mut receivers = 0;
    for group in groups {
        match layer.send_group(group, message.clone()).await {
            Ok(local) => receivers += local.max(1),
            Err(error) => {
                receivers += 1;
                failed.push((group.clone(), error));
            }
        }
    }
    let result = match failed.len() {
        0 => Ok(()),
        1 if groups.len() == 1 => Err(failed.remove(0).1),
        _ => Err(LayerError::Groups(failed)),
    };
    (receivers, result)
}

/// A random id for this process, so channel names are unique across
/// processes sharing a backend.
pub(crate) fn random_process_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(elapsed.as_nanos());
    }
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_follow_channels_rules() {
        for good in ["a", "chat_lobby", "user-1.events", &"x".repeat(99)] {
            assert!(GroupName::new(good).is_ok(), "{good}");
        }
        for bad in ["", "with space", "é", "a/b", "a:b", &"x".repeat(100)] {
            assert!(GroupName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_names_round_trip() {
        let name = ChannelName::new("abc123", 42);
        assert_eq!(name.as_str(), "abc123.42");
        assert_eq!(name.process(), "abc123");
        assert_eq!(ChannelName::parse("abc123.42"), Some(name));
        assert_eq!(ChannelName::parse("abc123"), None);
        assert_eq!(ChannelName::parse(".42"), None);
        assert_eq!(ChannelName::parse("a.b"), None);
    }

    #[test]
    fn process_ids_differ() {
        assert_ne!(random_process_id(), random_process_id());
    }
}
