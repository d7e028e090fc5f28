//! Topics: many subscriptions over one connection, wire-compatible with
//! Chanx 2.10+ topics.
//!
//! A topic is a pattern (`discussion:{pk}`) with its own handlers and an
//! authorization hook, declared with [`#[topic]`](macro@crate::topic) on an `impl`
//! block and mounted on a channel with `#[channel(topics = [DiscussionTopic])]`.
//! A client addresses it per frame with the envelope keys that travel on
//! the flat frame (`version`, `topic`, `ref`, `seq`):
//!
//! | client sends | server answers |
//! |---|---|
//! | `{"version":1,"topic":"discussion:5","ref":"1","action":"subscribe"}` | `{"action":"subscribed","payload":null,"version":1,"topic":"discussion:5","ref":"1"}` |
//! | `{"version":1,"topic":"discussion:5","ref":"2","action":"reply","payload":"hi"}` | the topic handler's reply, stamped `"version":1,"topic":"discussion:5","ref":"2"` |
//! | `{"version":1,"topic":"discussion:5","ref":"3","action":"unsubscribe"}` | `{"action":"unsubscribed","payload":null,"version":1,"topic":"discussion:5","ref":"3"}` |
//!
//! Refusals are `error` frames whose payload is
//! `{"reason": "unknown_topic" | "unauthorized" | "not_subscribed" | "too_many_subscriptions", "detail": …}`,
//! stamped with the topic and the `ref` (see [`TopicErrorReason`]).
//! Events pushed to a topic from anywhere that holds the layer
//! ([`Layer::topic`]) run the topic's `#[event_handler]`s on every
//! subscribed connection, in every process, and what they return reaches
//! the client stamped with the topic and the event's `seq`.
//!
//! A topic subscribes to the channel-layer group
//! `safe_group_name([topic], namespace = <TopicType>)` (as Chanx names it),
//! so subscribers on every process sharing a Redis layer receive its events.
//!
//! [`Standalone<T>`] serves one topic on its own route, as Chanx's
//! `Topic.as_consumer()`: connecting subscribes to the topic named by the
//! route's parameters, and frames without a `topic` belong to it.
//!
//! ```
//! use chanx_core::{Message, Router, channel, topic, ws_handler, event_handler};
//! use chanx_core::topic::{Standalone, TopicContext};
//! use chanx_core::messages::{Ping, Pong};
//! use serde::{Deserialize, Serialize};
//! use schemars::JsonSchema;
//!
//! #[derive(Serialize, Deserialize, JsonSchema, Message)]
//! #[message(action = "reply")]
//! struct Reply(String);
//!
//! #[derive(Serialize, Deserialize, JsonSchema, Message)]
//! #[message(action = "reply_created")]
//! struct ReplyCreated(String);
//!
//! #[derive(Serialize, Deserialize, JsonSchema, Message)]
//! #[message(action = "new_reply")]
//! struct NewReply(String);
//!
//! /// One discussion's replies.
//! #[derive(Default)]
//! struct DiscussionTopic;
//!
//! #[topic(pattern = "discussion:{pk}")]
//! impl DiscussionTopic {
//!     #[authorize]
//!     async fn authorize(ctx: &TopicContext) -> bool {
//!         ctx.topic_param("pk") != Some("403")
//!     }
//!
//!     #[ws_handler]
//!     async fn reply(&mut self, ctx: &TopicContext, message: Reply) -> ReplyCreated {
//!         ReplyCreated(format!("{} on {}", message.0, ctx.topic_param("pk").unwrap_or("?")))
//!     }
//!
//!     #[event_handler]
//!     async fn new_reply(&mut self, event: NewReply) -> NewReply {
//!         event
//!     }
//! }
//!
//! #[derive(Default)]
//! struct Hub;
//!
//! #[channel(topics = [DiscussionTopic])]
//! impl Hub {
//!     #[ws_handler]
//!     async fn ping(&mut self, _: Ping) -> Pong {
//!         Pong
//!     }
//! }
//!
//! # async fn push(router: &Router) -> Result<(), chanx_core::layer::LayerError> {
//! let router = Router::new()
//!     .route::<Hub>("/ws/hub")
//!     .route::<Standalone<DiscussionTopic>>("/ws/discussion/{pk}");
//! // From an HTTP route or a task: every subscriber of discussion:5.
//! router.layer().topic::<DiscussionTopic>("discussion:5").send(&NewReply("hi".into())).seq(1).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::value::RawValue;

use crate::consumer::{
    ChannelMeta, Consumer, ConsumerConfig, GroupsOutcome, HandlerKind, HandlerMeta, HookOutcome,
    IntoReply, Outcome, Reject,
};
use crate::context::{Context, SendError};
use crate::layer::{GroupName, Layer, LayerError, LayerMessage, MessageKind};
use crate::message::{Message, MessageMeta, encode};
pub use crate::protocol::TopicErrorReason;
use crate::wire::{Echo, Envelope};

/// A topic: a pattern with its own handlers and authorization.
///
/// Implemented by [`#[topic]`](macro@crate::topic) on an `impl` block; not meant
/// to be implemented by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a chanx topic",
    note = "put `#[topic(pattern = \"name:{{param}}\")]` on an `impl {Self}` block"
)]
pub trait Topic: Sized + Send + 'static {
    /// Static metadata: pattern, name and every handler.
    const TOPIC: &'static TopicMeta;

    /// Whether this connection may subscribe (the `#[authorize]` hook, or
    /// yes).
    fn authorize(ctx: &TopicContext) -> impl Future<Output = bool> + Send;

    /// Builds the value held for one subscription (`Default::default()`).
    fn create(ctx: &TopicContext) -> Self;

    /// Runs once the subscription is confirmed (the `#[on_subscribe]`
    /// hook); what it returns is sent stamped with the topic, without the
    /// request's `ref` (it is state, not the reply).
    fn on_subscribe(&mut self, ctx: &TopicContext) -> impl Future<Output = HookOutcome> + Send;

    /// Runs before the subscription ends, on `unsubscribe` or when the
    /// connection ends (the `#[on_unsubscribe]` hook).
    fn on_unsubscribe(&mut self, ctx: &TopicContext) -> impl Future<Output = HookOutcome> + Send;

    /// Dispatches one client frame addressed to this topic.
    #[doc(hidden)]
    fn dispatch<'a>(
        &'a mut self,
        ctx: &'a TopicContext,
        envelope: &'a Envelope<'a>,
    ) -> impl Future<Output = Outcome> + Send + 'a;

    /// Dispatches one event pushed to this topic.
    #[doc(hidden)]
    fn dispatch_event<'a>(
        &'a mut self,
        ctx: &'a TopicContext,
        envelope: &'a Envelope<'a>,
    ) -> impl Future<Output = Outcome> + Send + 'a;
}

/// Static description of a topic, read by the router and documentation
/// generators.
#[non_exhaustive]
pub struct TopicMeta {
    /// The topic's name in documents: the type name in snake_case
    /// (`DiscussionTopic` → `discussion_topic`), or `name = …`.
    pub name: &'static str,
    /// The Rust type name; also the namespace of its group names.
    pub type_name: &'static str,
    /// The pattern, such as `discussion:{pk}`.
    pub pattern: &'static str,
    /// The pattern's parameters, in order.
    pub parameters: &'static [&'static str],
    /// A description (`description = …`, or the impl block's doc comment).
    pub description: Option<&'static str>,
    /// Tags for grouping in documentation.
    pub tags: &'static [&'static str],
    /// Every handler, in declaration order.
    pub handlers: &'static [HandlerMeta],
    /// Appends the messages the topic sends on its own (`sends = […]` and
    /// the `#[on_subscribe]` hook's return type).
    pub sends: fn(&mut Vec<MessageMeta>),
    open: Open,
}

/// Authorizes and builds one subscription of a topic type.
type Open = for<'a> fn(&'a TopicContext) -> BoxFuture<'a, Option<Box<dyn ErasedTopic>>>;

impl fmt::Debug for TopicMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicMeta")
            .field("name", &self.name)
            .field("type_name", &self.type_name)
            .field("pattern", &self.pattern)
            .field("parameters", &self.parameters)
            .field("handlers", &self.handlers)
            .finish_non_exhaustive()
    }
}

impl TopicMeta {
    #[doc(hidden)]
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub const fn new<T: Topic>(
        name: &'static str,
        type_name: &'static str,
        pattern: &'static str,
        parameters: &'static [&'static str],
        description: Option<&'static str>,
        tags: &'static [&'static str],
        handlers: &'static [HandlerMeta],
        sends: fn(&mut Vec<MessageMeta>),
    ) -> Self {
        Self {
            name,
            type_name,
            pattern,
            parameters,
            description,
            tags,
            handlers,
            sends,
            open: open::<T>,
        }
    }

    /// The pattern's parameters for `topic`, or `None` when it does not
    /// match. A parameter matches one or more characters other than `:`;
    /// when a pattern could split a topic two ways, earlier parameters take
    /// as much as they can (as Chanx's regular expression does).
    ///
    /// ```
    /// # use chanx_core::topic::TopicMeta;
    /// # fn check(meta: &TopicMeta) {
    /// // For `#[topic(pattern = "discussion:{pk}")]`:
    /// assert_eq!(meta.parse("discussion:5"), Some(vec![("pk".to_owned(), "5".to_owned())]));
    /// assert_eq!(meta.parse("discussion:5:x"), None);
    /// # }
    /// ```
    #[must_use]
    pub fn parse(&self, topic: &str) -> Option<Vec<(String, String)>> {
        parse_pattern(self.pattern, topic)
    }

    /// The channel-layer group of `topic`: Chanx's
    /// `safe_group_name(topic, namespace=<type name>)`.
    #[must_use]
    pub fn group_name(&self, topic: &str) -> Option<GroupName> {
        crate::layer::safe_group_name([topic], Some(self.type_name))
    }

    /// The messages the topic sends on its own, collected.
    #[must_use]
    pub fn sent_messages(&self) -> Vec<MessageMeta> {
        crate::consumer::collect(self.sends)
    }

    /// The actions clients may send to this topic, in declaration order.
    pub fn client_actions(&self) -> impl Iterator<Item = &'static str> + '_ {
        crate::consumer::actions_of(self.handlers, HandlerKind::Ws)
    }
}

/// One piece of a topic pattern.
enum Piece<'p> {
    Literal(&'p str),
    Param(&'p str),
}

/// Splits `discussion:{pk}` into its literals and parameters. Patterns are
/// checked at compile time by `#[topic]`; a malformed one simply matches
/// nothing.
fn pieces(pattern: &str) -> Option<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        if start > 0 {
            out.push(Piece::Literal(&rest[..start]));
        }
        let after = &rest[start + 1..];
        let end = after.find('}')?;
        out.push(Piece::Param(&after[..end]));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Literal(rest));
    }
    Some(out)
}

/// Matches `topic` against `pattern`: parameters are runs of one or more
/// characters other than `:`, earlier ones as long as possible. Failed
/// (piece, position) pairs are remembered, so a hostile topic costs at most
/// pieces × length² steps (topics are at most
/// [`MAX_TOPIC_LEN`](crate::wire::MAX_TOPIC_LEN) bytes).
pub(crate) fn parse_pattern(pattern: &str, topic: &str) -> Option<Vec<(String, String)>> {
    let pieces = pieces(pattern)?;
    let mut failed = vec![false; (pieces.len() + 1) * (topic.len() + 1)];
    let mut params = Vec::new();
    if match_from(&pieces, 0, topic, 0, &mut failed, &mut params) {
        params.reverse();
        Some(params)
    } else {
        None
    }
}

fn match_from(
    pieces: &[Piece<'_>],
    index: usize,
    topic: &str,
    at: usize,
    failed: &mut [bool],
    params: &mut Vec<(String, String)>,
) -> bool {
    let slot = index * (topic.len() + 1) + at;
    if failed[slot] {
        return false;
    }
    let matched = match pieces.get(index) {
        None => at == topic.len(),
        Some(Piece::Literal(literal)) => {
            topic[at..].starts_with(literal)
                && match_from(pieces, index + 1, topic, at + literal.len(), failed, params)
        }
        Some(Piece::Param(name)) => {
            let run = topic[at..]
                .find(':')
                .map_or(topic.len(), |colon| at + colon);
            let mut end = run;
            let mut found = false;
            while end > at {
                if topic.is_char_boundary(end)
                    && match_from(pieces, index + 1, topic, end, failed, params)
                {
                    params.push(((*name).to_owned(), topic[at..end].to_owned()));
                    found = true;
                    break;
                }
                end -= 1;
            }
            found
        }
    };
    if !matched {
        failed[slot] = true;
    }
    matched
}

/// Fills `pattern`'s parameters from `lookup` (a standalone route's
/// parameters); `None` names the first missing one.
pub(crate) fn fill_pattern<'a>(
    pattern: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, String> {
    let pieces = pieces(pattern).ok_or_else(|| pattern.to_owned())?;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(literal) => out.push_str(literal),
            Piece::Param(name) => out.push_str(lookup(name).ok_or_else(|| name.to_owned())?),
        }
    }
    Ok(out)
}

/// What a topic's handlers and hooks get: the connection's [`Context`]
/// (through `Deref`) plus the topic being served, its parameters, and the
/// stamp of the frame being handled.
///
/// A handler may declare `ctx: &Context` instead: a `&TopicContext` coerces
/// to it.
#[derive(Clone)]
pub struct TopicContext {
    ctx: Context,
    subscription: Arc<SubscriptionInfo>,
    reference: Option<Box<RawValue>>,
    seq: Option<i64>,
}

/// What one subscription is: its topic, parameters and group.
#[derive(Debug)]
struct SubscriptionInfo {
    topic: Box<str>,
    params: Vec<(String, String)>,
    group: GroupName,
    meta: &'static TopicMeta,
}

impl fmt::Debug for TopicContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicContext")
            .field("topic", &self.subscription.topic)
            .field("params", &self.subscription.params)
            .field("connection", &self.ctx.id())
            .finish_non_exhaustive()
    }
}

impl Deref for TopicContext {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl TopicContext {
    fn new(ctx: &Context, subscription: &Arc<SubscriptionInfo>) -> Self {
        Self {
            ctx: ctx.clone(),
            subscription: Arc::clone(subscription),
            reference: None,
            seq: None,
        }
    }

    fn with_reference(mut self, reference: Option<&RawValue>) -> Self {
        self.reference = reference.map(ToOwned::to_owned);
        self
    }

    fn with_seq(mut self, seq: Option<i64>) -> Self {
        self.seq = seq;
        self
    }

    /// The connection's context.
    #[must_use]
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The topic being served, such as `discussion:5`.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.subscription.topic
    }

    /// A parameter of the topic's pattern, such as `pk` for
    /// `discussion:{pk}` (`"5"` for `discussion:5`).
    #[must_use]
    pub fn topic_param(&self, name: &str) -> Option<&str> {
        self.subscription
            .params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A parameter of the topic's pattern parsed as `T`.
    ///
    /// # Errors
    ///
    /// [`ParamError`](crate::ParamError) when the pattern has no such
    /// parameter or the value does not parse.
    pub fn topic_param_as<T: std::str::FromStr>(&self, name: &str) -> Result<T, crate::ParamError>
    where
        T::Err: fmt::Display,
    {
        crate::router::parse_param(&self.subscription.params, name)
    }

    /// Every parameter of the topic's pattern, in pattern order.
    pub fn topic_params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.subscription
            .params
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// The topic's channel-layer group.
    #[must_use]
    pub fn topic_group(&self) -> &GroupName {
        &self.subscription.group
    }

    /// Queues `message` for this client, stamped with the topic (and the
    /// `ref` of the frame being handled, or the `seq` of the event being
    /// handled, as Chanx stamps a topic's sends).
    ///
    /// # Errors
    ///
    /// [`SendError`] when the connection has ended.
    pub async fn send<M: Message>(&self, message: &M) -> Result<(), SendError> {
        self.ctx.send_text(encode(message, self.echo())).await
    }

    /// What a frame of this topic carries: version, topic, and the current
    /// `ref` or `seq`.
    pub(crate) fn echo(&self) -> Echo<'_> {
        Echo::topic(
            &self.subscription.topic,
            self.reference.as_deref(),
            self.seq,
        )
    }
}

/// Where a reply's envelope stamp comes from: the frame for a channel's
/// handlers, the topic for a topic's.
#[doc(hidden)]
pub trait Stamp {
    /// The stamp of a reply to `envelope`.
    fn stamp<'a>(&'a self, envelope: &'a Envelope<'a>) -> Echo<'a>;
}

impl Stamp for Context {
    fn stamp<'a>(&'a self, envelope: &'a Envelope<'a>) -> Echo<'a> {
        envelope.echo()
    }
}

impl Stamp for TopicContext {
    fn stamp<'a>(&'a self, _: &'a Envelope<'a>) -> Echo<'a> {
        self.echo()
    }
}

/// A topic value behind a pointer, for a connection's subscriptions.
#[doc(hidden)]
pub trait ErasedTopic: Send {
    fn dispatch<'a>(
        &'a mut self,
        ctx: &'a TopicContext,
        envelope: &'a Envelope<'a>,
    ) -> BoxFuture<'a, Outcome>;
    fn dispatch_event<'a>(
        &'a mut self,
        ctx: &'a TopicContext,
        envelope: &'a Envelope<'a>,
    ) -> BoxFuture<'a, Outcome>;
    fn on_subscribe<'a>(&'a mut self, ctx: &'a TopicContext) -> BoxFuture<'a, HookOutcome>;
    fn on_unsubscribe<'a>(&'a mut self, ctx: &'a TopicContext) -> BoxFuture<'a, HookOutcome>;
}

impl<T: Topic> ErasedTopic for T {
    fn dispatch<'a>(
        &'a mut self,
        ctx: &'a TopicContext,
        envelope: &'a Envelope<'a>,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(Topic::dispatch(self, ctx, envelope))
    }

    fn dispatch_event<'a>(
        &'a mut self,
        ctx: &'a TopicContext,
        envelope: &'a Envelope<'a>,
    ) -> BoxFuture<'a, Outcome> {
        Box::pin(Topic::dispatch_event(self, ctx, envelope))
    }

    fn on_subscribe<'a>(&'a mut self, ctx: &'a TopicContext) -> BoxFuture<'a, HookOutcome> {
        Box::pin(Topic::on_subscribe(self, ctx))
    }

    fn on_unsubscribe<'a>(&'a mut self, ctx: &'a TopicContext) -> BoxFuture<'a, HookOutcome> {
        Box::pin(Topic::on_unsubscribe(self, ctx))
    }
}

fn open<T: Topic>(ctx: &TopicContext) -> BoxFuture<'_, Option<Box<dyn ErasedTopic>>> {
    Box::pin(async move {
        if T::authorize(ctx).await {
            Some(Box::new(T::create(ctx)) as Box<dyn ErasedTopic>)
        } else {
            None
        }
    })
}

/// What an `#[authorize]` hook may return: `bool`, or a `Result` of it
/// (an error is logged and refuses the subscription).
#[diagnostic::on_unimplemented(
    message = "an `#[authorize]` hook must return `bool` or `Result<bool, E>`"
)]
pub trait IntoAuthorized: Send {
    /// Whether the subscription is allowed.
    fn into_authorized(self) -> bool;
}

impl IntoAuthorized for bool {
    fn into_authorized(self) -> bool {
        self
    }
}

impl<E: fmt::Display + Send> IntoAuthorized for Result<bool, E> {
    fn into_authorized(self) -> bool {
        self.unwrap_or_else(|error| {
            tracing::error!(%error, "#[authorize] hook failed; refusing the subscription");
            false
        })
    }
}

/// One connection's subscriptions.
#[derive(Default)]
pub(crate) struct Subscriptions {
    live: HashMap<Box<str>, Subscription>,
}

struct Subscription {
    info: Arc<SubscriptionInfo>,
    value: Box<dyn ErasedTopic>,
}

/// What routing a topic-addressed frame produced.
pub(crate) enum Routed {
    /// A protocol frame (subscribe, unsubscribe) or a refusal, answered.
    Answered,
    /// A topic handler ran: its outcome, and the topic's actions for an
    /// unknown-action error.
    Dispatched(Outcome, &'static TopicMeta),
}

impl Subscriptions {
    /// Routes a client frame addressed to `topic` (its envelope's, or the
    /// standalone route's).
    pub(crate) async fn route(
        &mut self,
        ctx: &Context,
        topics: &[&'static TopicMeta],
        limit: usize,
        topic: &str,
        envelope: &Envelope<'_>,
    ) -> Routed {
        let echo = Echo::topic(topic, envelope.reference, None);
        match &*envelope.action {
            "subscribe" => {
                self.subscribe(ctx, topics, limit, topic, echo).await;
                Routed::Answered
            }
            "unsubscribe" => {
                self.unsubscribe(ctx, topic).await;
                send(ctx, encode(&crate::protocol::Unsubscribed, echo)).await;
                Routed::Answered
            }
            _ => {
                let Some(subscription) = self.live.get_mut(topic) else {
                    refuse(
                        ctx,
                        TopicErrorReason::NotSubscribed,
                        format!("Not subscribed to '{topic}'"),
                        echo,
                    )
                    .await;
                    return Routed::Answered;
                };
                let topic_ctx =
                    TopicContext::new(ctx, &subscription.info).with_reference(envelope.reference);
                let meta = subscription.info.meta;
                let outcome = guarded(subscription.value.dispatch(&topic_ctx, envelope)).await;
                Routed::Dispatched(outcome, meta)
            }
        }
    }

    /// Subscribes to `topic`: finds its type, authorizes, joins its group,
    /// confirms, then runs the `#[on_subscribe]` hook. Returns whether the
    /// connection is subscribed.
    pub(crate) async fn subscribe(
        &mut self,
        ctx: &Context,
        topics: &[&'static TopicMeta],
        limit: usize,
        topic: &str,
        echo: Echo<'_>,
    ) -> bool {
        if self.live.contains_key(topic) {
            send(ctx, encode(&crate::protocol::Subscribed, echo)).await;
            return true;
        }
        // A topic whose name keeps no group-name character has no group:
        // unknown as well.
        let found = topics.iter().find_map(|meta| {
            let params = meta.parse(topic)?;
            Some((*meta, params, meta.group_name(topic)?))
        });
        let Some((meta, params, group)) = found else {
            refuse(
                ctx,
                TopicErrorReason::UnknownTopic,
                format!("Unknown topic '{topic}'"),
                echo,
            )
            .await;
            return false;
        };
        if self.live.len() >= limit {
            refuse(
                ctx,
                TopicErrorReason::TooManySubscriptions,
                format!("Too many subscriptions: at most {limit} per connection"),
                echo,
            )
            .await;
            return false;
        }
        let info = Arc::new(SubscriptionInfo {
            topic: topic.into(),
            params,
            group,
            meta,
        });
        let topic_ctx = TopicContext::new(ctx, &info);
        let opened = std::panic::AssertUnwindSafe((meta.open)(&topic_ctx))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!(
                    topic,
                    "#[authorize] hook panicked; refusing the subscription"
                );
                None
            });
        let Some(value) = opened else {
            refuse(
                ctx,
                TopicErrorReason::Unauthorized,
                format!("Not allowed to subscribe to '{topic}'"),
                echo,
            )
            .await;
            return false;
        };
        if let Err(error) = ctx.join_group(info.group.clone()).await {
            tracing::error!(topic, %error, "cannot join a topic's group");
            send(ctx, crate::protocol::handler_failed("subscribe", echo)).await;
            return false;
        }
        let subscription = self.live.entry(topic.into()).or_insert(Subscription {
            info: Arc::clone(&info),
            value,
        });
        send(ctx, encode(&crate::protocol::Subscribed, echo)).await;
        let outcome = std::panic::AssertUnwindSafe(subscription.value.on_subscribe(&topic_ctx))
            .catch_unwind()
            .await;
        hook_done(ctx, topic, "#[on_subscribe]", outcome).await;
        true
    }

    /// Ends the subscription to `topic`, if any: the `#[on_unsubscribe]`
    /// hook, then the group is left.
    async fn unsubscribe(&mut self, ctx: &Context, topic: &str) {
        if let Some(mut subscription) = self.live.remove(topic) {
            end(ctx, &mut subscription).await;
        }
    }

    /// Ends every subscription (the connection is ending): each
    /// `#[on_unsubscribe]` hook runs. The layer forgets the groups with the
    /// connection.
    pub(crate) async fn end_all(&mut self, ctx: &Context) {
        for (_, mut subscription) in self.live.drain() {
            run_unsubscribe_hook(ctx, &mut subscription).await;
        }
    }

    /// Routes an event pushed to `topic` to its subscription; an event for
    /// a topic this connection left meanwhile is dropped.
    pub(crate) async fn event(
        &mut self,
        ctx: &Context,
        topic: &str,
        envelope: &Envelope<'_>,
    ) -> Option<Outcome> {
        let subscription = self.live.get_mut(topic)?;
        let topic_ctx = TopicContext::new(ctx, &subscription.info).with_seq(envelope.seq);
        Some(guarded(subscription.value.dispatch_event(&topic_ctx, envelope)).await)
    }
}

async fn end(ctx: &Context, subscription: &mut Subscription) {
    run_unsubscribe_hook(ctx, subscription).await;
    if let Err(error) = ctx.leave(subscription.info.group.as_str()).await {
        tracing::warn!(topic = &*subscription.info.topic, %error, "cannot leave a topic's group");
    }
}

async fn run_unsubscribe_hook(ctx: &Context, subscription: &mut Subscription) {
    let topic_ctx = TopicContext::new(ctx, &subscription.info);
    let outcome = std::panic::AssertUnwindSafe(subscription.value.on_unsubscribe(&topic_ctx))
        .catch_unwind()
        .await;
    hook_done(ctx, topic_ctx.topic(), "#[on_unsubscribe]", outcome).await;
}

/// Sends what a topic hook returned, or logs its failure.
async fn hook_done(
    ctx: &Context,
    topic: &str,
    hook: &str,
    outcome: Result<HookOutcome, Box<dyn std::any::Any + Send>>,
) {
    match outcome {
        Ok(HookOutcome(Ok(Some(frame)))) => send(ctx, frame).await,
        Ok(HookOutcome(Ok(None))) => {}
        Ok(HookOutcome(Err(error))) => tracing::error!(topic, hook, %error, "topic hook failed"),
        Err(_) => tracing::error!(topic, hook, "topic hook panicked"),
    }
}

async fn refuse(ctx: &Context, reason: TopicErrorReason, detail: String, echo: Echo<'_>) {
    tracing::debug!(topic = echo.topic, ?reason, "topic frame refused");
    send(ctx, crate::protocol::topic_refused(reason, detail, echo)).await;
}

async fn send(ctx: &Context, frame: String) {
    let _ = ctx.send_text(frame).await;
}

async fn guarded(dispatch: impl Future<Output = Outcome>) -> Outcome {
    match std::panic::AssertUnwindSafe(dispatch).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failed("a topic handler panicked".into()),
    }
}

/// Serves topic `T` on its own route, as Chanx's `Topic.as_consumer()`:
/// connecting subscribes to the topic named by the route's parameters
/// (`/ws/discussion/{pk}` → `discussion:{pk}`), the client gets
/// `subscribed` unprompted, and frames without a `topic` belong to it. It
/// joins the same group as the topic on a multiplexed connection, so
/// [`Layer::topic`] reaches both.
///
/// [`Router::validate`](crate::Router::validate) refuses a route that lacks
/// one of the pattern's parameters. A connection the `#[authorize]` hook
/// refuses gets the `unauthorized` error frame and is closed with 1008.
pub struct Standalone<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for Standalone<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Standalone")
    }
}

impl<T: Topic> Consumer for Standalone<T> {
    const CHANNEL: &'static ChannelMeta = &ChannelMeta::new(
        T::TOPIC.name,
        T::TOPIC.type_name,
        T::TOPIC.description,
        T::TOPIC.tags,
        &[],
        &[],
        |_| {},
    )
    .with_topics(&[T::TOPIC])
    .with_default_topic(T::TOPIC);

    const CONFIG: ConsumerConfig = ConsumerConfig::new();

    type Authenticators = ();

    async fn check_permissions(_: &Context) -> Result<(), crate::auth::Denied> {
        Ok(())
    }

    async fn connect(_: &Context) -> Result<Self, Reject> {
        Ok(Self(PhantomData))
    }

    async fn build_groups(&self, _: &Context) -> GroupsOutcome {
        GroupsOutcome::new(Vec::<String>::new())
    }

    async fn post_authentication(&mut self, _: &Context) -> HookOutcome {
        HookOutcome::new(())
    }

    async fn dispatch<'a>(&'a mut self, _: &'a Context, _: &'a Envelope<'a>) -> Outcome {
        Outcome::Unknown
    }

    async fn dispatch_event<'a>(&'a mut self, _: &'a Context, _: &'a Envelope<'a>) -> Outcome {
        Outcome::Unknown
    }
}

impl Layer {
    /// Addresses topic `topic` of type `T` (such as `discussion:5` of
    /// `DiscussionTopic`), to push events to its subscribers on every
    /// process: `layer.topic::<DiscussionTopic>("discussion:5").send(&event).seq(142).await`.
    #[must_use]
    pub fn topic<T: Topic>(&self, topic: &str) -> TopicHandle<'_> {
        TopicHandle {
            layer: self,
            meta: T::TOPIC,
            topic: topic.to_owned(),
        }
    }
}

/// One topic, addressed through the layer ([`Layer::topic`]).
#[derive(Debug)]
pub struct TopicHandle<'a> {
    layer: &'a Layer,
    meta: &'static TopicMeta,
    topic: String,
}

impl<'a> TopicHandle<'a> {
    /// Pushes `event` to the topic's subscribers: their `#[event_handler]`
    /// for its action runs, and what it returns reaches each client stamped
    /// with the topic (and the `seq`, when one is set). Await the returned
    /// builder to send.
    pub fn send<M: Message + Sync>(&'a self, event: &'a M) -> TopicSend<'a, M> {
        TopicSend {
            handle: self,
            event,
            seq: None,
        }
    }

    /// The topic's channel-layer group.
    ///
    /// # Errors
    ///
    /// The topic has no character a group name can keep.
    pub fn group(&self) -> Result<GroupName, LayerError> {
        self.meta.group_name(&self.topic).ok_or_else(|| {
            LayerError::InvalidGroup(crate::layer::InvalidGroupName::new(&self.topic))
        })
    }
}

/// A topic event being prepared; `.await` it to send.
#[must_use = "a topic event does nothing until it is awaited"]
pub struct TopicSend<'a, M> {
    handle: &'a TopicHandle<'a>,
    event: &'a M,
    seq: Option<i64>,
}

impl<M> fmt::Debug for TopicSend<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicSend")
            .field("topic", &self.handle.topic)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl<'a, M: Message + Sync> TopicSend<'a, M> {
    /// Stamps the event with `seq`, for clients to detect gaps. Chanx
    /// leaves it to the caller: a topic with one writer can number its
    /// events; a topic with several should leave it unset.
    pub fn seq(mut self, seq: i64) -> Self {
        self.seq = Some(seq);
        self
    }

    async fn send(self) -> Result<(), LayerError> {
        let group = self.handle.group()?;
        let frame = encode(self.event, Echo::topic(&self.handle.topic, None, self.seq));
        self.handle
            .layer
            .inner()
            .send_group(&group, LayerMessage::from_text(MessageKind::Event, frame))
            .await
            .map(drop)
    }
}

impl<'a, M: Message + Sync> IntoFuture for TopicSend<'a, M> {
    type Output = Result<(), LayerError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// Support for generated code: a topic's reply, stamped.
#[doc(hidden)]
pub fn reply<R: IntoReply, S: Stamp>(value: R, ctx: &S, envelope: &Envelope<'_>) -> Outcome {
    match value.into_reply(ctx.stamp(envelope)) {
        Ok(reply) => Outcome::Reply(reply),
        Err(error) => Outcome::Failed(error),
    }
}

/// Support for generated code: a topic hook's message, stamped with the
/// topic.
#[doc(hidden)]
pub fn hook<R: IntoReply>(value: R, ctx: &TopicContext) -> HookOutcome {
    HookOutcome(value.into_reply(ctx.echo()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pattern: &str, topic: &str) -> Option<Vec<(String, String)>> {
        parse_pattern(pattern, topic)
    }

    #[test]
    fn patterns_match_as_chanx_does() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            params("discussion:{pk}", "discussion:5"),
            Some(vec![pair("pk", "5")])
        );
        assert_eq!(params("discussion:{pk}", "discussion:"), None);
        assert_eq!(params("discussion:{pk}", "discussion:5:6"), None);
        assert_eq!(params("discussion:{pk}", "room:5"), None);
        assert_eq!(params("plain", "plain"), Some(vec![]));
        assert_eq!(
            params("org:{org}:run:{run}", "org:acme:run:01HX"),
            Some(vec![pair("org", "acme"), pair("run", "01HX")])
        );
        // Greedy, as a regular expression: the first parameter takes most.
        assert_eq!(
            params("{a}-{b}", "x-y-z"),
            Some(vec![pair("a", "x-y"), pair("b", "z")])
        );
        assert_eq!(
            params("café:{id}", "café:ünï"),
            Some(vec![pair("id", "ünï")])
        );
    }

    #[test]
    fn a_hostile_topic_costs_bounded_work() {
        let pattern = "{a}-{b}-{c}-{d}-{e}-{f}-{g}-{h}!";
        let topic = "x-".repeat(128);
        assert_eq!(params(pattern, &topic[..256]), None);
    }

    #[test]
    fn patterns_fill_from_route_parameters() {
        let filled = fill_pattern("discussion:{pk}", |name| (name == "pk").then_some("5"));
        assert_eq!(filled.as_deref(), Ok("discussion:5"));
        assert_eq!(
            fill_pattern("discussion:{pk}", |_| None),
            Err("pk".to_owned())
        );
    }
}
