//! Typed, documented WebSocket services over tokio, modelled on the Python
//! library [Chanx](https://chanx.readthedocs.io/) and compatible with its
//! clients. This is the crate to depend on: it re-exports the runtime
//! (`chanx-core`) and the macros (`chanx-macros`).
//!
//! You derive messages, write an `impl` block of async handlers, route it,
//! and serve it:
//!
//! ```no_run
//! use chanx::messages::{Ping, Pong};
//! use chanx::{Context, Message, Router, Server, channel};
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
//! - **Serving** ([`Router`], [`Server`], [`ChanxService`]): routes with
//!   `{param}` segments (typed with [`Context::param_as`]), [`Router::nest`]
//!   and [`Router::merge`]; one tower service ([`Router::into_service`])
//!   performs the whole edge on every way in: the standalone [`Server`],
//!   axum (`Router::into_axum`, feature `axum`), any hyper or tower stack,
//!   and [`ChanxService::serve_connection`] for TLS or Unix streams. A
//!   [`ShutdownHandle`] closes clients with 1001 (the standalone server
//!   takes Ctrl-C and SIGTERM). [`Router::http`] adds plain HTTP routes
//!   ([`http`]).
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
//! | `axum` | no | `Router::into_axum`: a chanx router merged into an axum app, with axum's `ConnectInfo` as the peer address |
//!
//! # Depending on chanx under another name
//!
//! Code generated by `#[channel]` and `#[derive(Message)]` names this crate
//! `::chanx`. When it is renamed in `Cargo.toml` (or re-exported by another
//! crate), say where it is, as with serde:
//!
//! ```
//! # extern crate chanx as my_chanx;
//! use my_chanx::{Message, channel, messages::{Ping, Pong}};
//!
//! #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, Message)]
//! #[message(action = "hello", crate = "my_chanx")]
//! struct Hello;
//!
//! #[derive(Default)]
//! struct Greeter;
//!
//! #[channel(crate = "my_chanx")]
//! impl Greeter {
//!     #[ws_handler]
//!     async fn ping(&mut self, _: Ping) -> Pong {
//!         Pong
//!     }
//! }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use chanx_core::*;

/// Derives [`Message`](trait@Message) for a struct (one action) or an enum of
/// messages (a union).
///
/// See [the crate documentation](crate#concepts) and `chanx-macros` for
/// the attributes: `#[message(action = "…", crate = "…")]`.
pub use chanx_macros::ChanxMessage as Message;
/// Makes an `impl` block a consumer: see [the crate documentation](crate#concepts).
pub use chanx_macros::chanx_channel as channel;
/// Makes an `impl` block a topic: see [`topic`](mod@crate::topic).
pub use chanx_macros::chanx_topic as topic;
pub use chanx_macros::{
    authorize, build_groups, event_handler, on_connect, on_subscribe, on_unsubscribe,
    post_authentication, presence_meta, ws_handler,
};

/// The typed async client, on the same message types (feature `client`):
/// see [`chanx_client`].
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use chanx_client as client;

/// The `schemars` this crate was built with, for
/// `#[schemars(crate = "chanx::schemars")]` when you do not depend on it
/// yourself.
pub use schemars;
/// The `serde` this crate was built with, for
/// `#[serde(crate = "chanx::serde")]` when you do not depend on it yourself.
pub use serde;
/// The `serde_json` this crate was built with.
pub use serde_json;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
