//! Typed, documented WebSocket consumers over tokio, modelled on the Python
//! library [Chanx](https://chanx.readthedocs.io/) and compatible with its
//! clients.
//!
//! You derive messages, write an `impl` block of async handlers, route it,
//! and serve it:
//!
//! ```no_run
//! use chanx_core::messages::{Ping, Pong};
//! use chanx_core::{Context, Message, Router, Server, channel};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
//! #[message(action = "user_message")]
//! struct UserMessage {
//!     message: String,
//! }
//!
//! #[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
//! #[message(action = "system_echo")]
//! struct SystemEcho {
//!     message: String,
//! }
//!
//! #[derive(Default)]
//! struct SystemConsumer;
//!
//! #[channel(name = "system", description = "Echo without channel layers", tags = ["system"])]
//! impl SystemConsumer {
//!     #[ws_handler(summary = "Handle ping requests")]
//!     async fn ping(&mut self, _: Ping) -> Pong {
//!         Pong
//!     }
//!
//!     #[ws_handler(summary = "Echo a user message")]
//!     async fn user_message(&mut self, msg: UserMessage) -> SystemEcho {
//!         SystemEcho { message: format!("🔧 System Echo: {}", msg.message) }
//!     }
//!
//!     #[post_authentication]
//!     async fn welcome(&mut self, ctx: &Context) {
//!         let hello = SystemEcho { message: "🔧 System: Connection established!".into() };
//!         let _ = ctx.send(&hello).await;
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = Router::new().route::<SystemConsumer>("/ws/system");
//! Server::bind("127.0.0.1:8000").await?.serve(app).await
//! # }
//! ```
//!
//! # Concepts
//!
//! - **Messages** ([`Message`]): the derive wraps a payload type (which keeps
//!   its own `serde` and `schemars` derives and attributes) in the wire shape
//!   `{"action": …, "payload": …}`. A struct has one action; an enum whose
//!   variants each wrap a message is a union, usable as a handler's output.
//! - **Consumers** ([`channel`]): one value per connection, built by an
//!   `#[on_connect]` hook (or `Default`), greeted by `#[post_authentication]`,
//!   with `#[ws_handler]` methods dispatched on `action`. A handler returns
//!   `()`, a message, or an `Option`/`Result` of one ([`IntoReply`]); a
//!   returned message goes to the sender with the request's `ref` echoed.
//! - **Context** ([`Context`]): route parameters, query, headers and shared
//!   state of the connection, plus `send` and `close`.
//! - **Wire protocol** ([`wire`]): bad frames get the Chanx 2.x error frames
//!   and never reach a handler or close the connection; a failing or panicking
//!   handler gets `{"detail": "Failed to process message for <action>"}`.
//!   Frames of one connection are handled in order.
//! - **Serving** ([`Router`], [`Server`]): routes with `{param}` segments,
//!   graceful shutdown on Ctrl-C or SIGTERM that closes clients with 1001,
//!   and [`Router::serve_io`] to run the same connection loop over any
//!   upgraded byte stream (that is how `chanx-testing` runs consumers
//!   in-process). [`Router::http`] adds plain HTTP routes ([`http`]).
//! - **Limits** ([`ServerConfig`]): every byte a client can make the server
//!   hold is bounded, with safe defaults: message size and deadline,
//!   outbound queue and inbox in bytes, frame rate (pings included),
//!   fan-out per sender, idle timeout, request headers, connections in all
//!   and per client address, HTTP bodies and rate; a browser origin must be
//!   the server's own unless allowed. The worst case per connection is a
//!   formula of the config (see [`ServerConfig`]).
//! - **Groups, broadcast, events** ([`layer`]): `#[channel(groups = …)]`,
//!   [`Context::join`], [`Context::broadcast`], `#[event_handler]` and
//!   [`Layer::send_event`], over the in-memory layer or Redis. A slow
//!   receiver is closed with 1008 rather than stalling anyone.
//! - **Authentication and permissions** ([`auth`]): `#[channel(authenticator
//!   = …, permissions = […])]`, `#[ws_handler(permission = …)]`, Chanx's
//!   `authentication` frame and 4401/4403 closes, origin allowlists.
//! - **AsyncAPI 3.0** ([`asyncapi`]): the document for a router, from the
//!   same metadata as dispatch; served at `/asyncapi.json`.
//!
//! # Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `redis` | no | [`layer::RedisLayer`]: groups and events across processes through Redis pub/sub |
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as chanx_core;

pub mod asyncapi;
pub mod auth;
mod config;
mod connection;
pub mod consumer;
mod context;
mod edge;
pub mod http;
pub mod layer;
pub mod message;
pub mod messages;
mod router;
mod server;
pub mod wire;
mod ws;

pub use chanx_macros::{
    Message, channel, event_handler, on_connect, post_authentication, ws_handler,
};
pub use config::{FanoutLimit, RateLimit, ServerConfig};
pub use consumer::{BoxError, Consumer, ConsumerConfig, IntoReply, Reject};
pub use context::{Broadcast, ConnectionId, Context, SendError};
pub use layer::Layer;
pub use message::{DecodeError, Message, SingleMessage};
pub use router::{NoRoute, Router};
pub use server::Server;
pub use ws::CloseCode;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// Support for generated code. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use schemars;
    pub use serde;
    pub use serde_json::value::RawValue;

    pub use crate::consumer::{
        ChannelMeta, HandlerKind, HandlerMeta, HookOutcome, IntoConnect, IntoReply, Outcome,
    };
    pub use crate::message::MessageMeta;
    pub use crate::wire::Envelope;
    use crate::{Consumer, Message, Reject};

    pub use crate::auth::{Denied, NoAuthenticator, Permission};

    /// Runs one permission.
    pub async fn check_permission<P: Permission>(ctx: &crate::Context) -> Result<(), Denied> {
        P::check(ctx).await
    }

    /// Decodes the payload for the handler of `M`.
    pub fn decode<M: Message>(envelope: &Envelope<'_>) -> Result<M, Outcome> {
        crate::wire::decode_payload::<M>(&envelope.action, envelope.payload)
            .map_err(Outcome::Invalid)
    }

    /// Turns a handler's return value into an outcome.
    pub fn reply<R: IntoReply>(value: R, envelope: &Envelope<'_>) -> Outcome {
        match value.into_reply(envelope.reference) {
            Ok(reply) => Outcome::Reply(reply),
            Err(error) => Outcome::Failed(error),
        }
    }

    /// Turns an `#[on_connect]` hook's return value into the consumer.
    pub fn connected<C: Consumer, R: IntoConnect<C>>(value: R) -> Result<C, Reject> {
        value.into_connect()
    }

    /// The default connect hook.
    pub fn default_consumer<C: Consumer + Default>() -> Result<C, Reject> {
        Ok(C::default())
    }

    /// Fails compilation (in a const) when two lists share an action.
    pub const fn assert_unique_actions(lists: &[&[&str]]) {
        let mut i = 0;
        while i < lists.len() {
            let mut j = 0;
            while j < lists[i].len() {
                let mut k = i;
                while k < lists.len() {
                    let mut l = if k == i { j + 1 } else { 0 };
                    while l < lists[k].len() {
                        if str_eq(lists[i][j], lists[k][l]) {
                            duplicate_action(lists[i][j]);
                        }
                        l += 1;
                    }
                    k += 1;
                }
                j += 1;
            }
            i += 1;
        }
    }

    const fn duplicate_action(action: &str) -> ! {
        let mut buffer = [0u8; 256];
        let mut len = 0;
        let parts = [
            "the action `",
            action,
            "` is taken twice (by two handlers of one channel, or two variants of one message enum); each action needs exactly one",
        ];
        let mut part = 0;
        while part < parts.len() {
            let bytes = parts[part].as_bytes();
            let mut index = 0;
            while index < bytes.len() && len < buffer.len() {
                buffer[len] = bytes[index];
                len += 1;
                index += 1;
            }
            part += 1;
        }
        let (message, _) = buffer.split_at(len);
        match core::str::from_utf8(message) {
            Ok(message) => panic!("{}", message),
            Err(_) => panic!("an action is taken twice; each action needs exactly one handler"),
        }
    }

    const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}
