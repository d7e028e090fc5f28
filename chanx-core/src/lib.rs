//! The runtime of [chanx](https://docs.rs/chanx): routing, the connection
//! loop, the WebSocket edge, channel layers, authentication and AsyncAPI.
//!
//! Depend on the `chanx` crate, which re-exports all of this together with
//! the macros; this crate is where the runtime lives. Its macros
//! ([`Message`], [`channel`]) generate code that names `::chanx_core`, so
//! code that depends on `chanx-core` alone works too.
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as chanx_core;

pub mod asyncapi;
pub mod auth;
#[cfg(feature = "axum")]
mod axum;
mod case;
mod config;
mod connection;
pub mod consumer;
mod context;
mod edge;
mod group;
pub mod http;
pub mod layer;
pub mod message;
pub mod messages;
pub mod metrics;
pub mod playground;
pub mod presence;
pub mod protocol;
mod router;
mod server;
mod settings;
pub mod topic;
pub mod wire;
mod ws;

pub use chanx_macros::{
    Message, authorize, build_groups, channel, event_handler, on_connect, on_subscribe,
    on_unsubscribe, post_authentication, presence_meta, topic, ws_handler,
};
pub use config::{FanoutLimit, RateLimit, ServerConfig};
pub use consumer::{BoxError, Consumer, ConsumerConfig, IntoReply, Reject};
pub use context::{Broadcast, ConnectionId, Context, SendError};
pub use edge::{ChanxService, PeerAddr};
pub use layer::Layer;
pub use message::{DecodeError, Message, SingleMessage};
pub use router::{NoRoute, ParamError, Problem, Router, ShutdownHandle, ValidationError};
pub use server::{Server, shutdown_signal};
pub use settings::Settings;
pub use ws::{CloseCode, InvalidCloseCode};

/// Support for generated code. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use schemars;
    pub use serde;
    pub use serde_json;
    pub use serde_json::value::RawValue;

    pub use crate::consumer::{
        ChannelMeta, HandlerKind, HandlerMeta, HookOutcome, IntoConnect, IntoReply, Outcome,
    };
    pub use crate::message::MessageMeta;
    pub use crate::wire::Envelope;
    use crate::{Consumer, Message, Reject};

    pub use crate::auth::{Denied, NoAuthenticator, Permission};
    pub use crate::consumer::GroupsOutcome;

    /// Runs one permission.
    pub async fn check_permission<P: Permission>(ctx: &crate::Context) -> Result<(), Denied> {
        P::check(ctx).await
    }

    /// Decodes the payload for the handler of `M`.
    pub fn decode<M: Message>(envelope: &Envelope<'_>) -> Result<M, Outcome> {
        crate::wire::decode_payload::<M>(&envelope.action, envelope.payload)
            .map_err(Outcome::Invalid)
    }

    pub use crate::topic::{IntoAuthorized, Topic, TopicContext, TopicMeta, hook, reply};

    /// Runs an `#[authorize]` hook's verdict.
    pub fn authorized<R: IntoAuthorized>(value: R) -> bool {
        value.into_authorized()
    }

    /// The presence key of a connection with identity `I`.
    pub fn presence_key<I: crate::presence::PresenceKey + Send + Sync + 'static>(
        ctx: &crate::Context,
    ) -> Option<String> {
        ctx.identity_as::<I>()?.presence_key()
    }

    /// What a `#[presence_meta]` hook returned, as an object.
    pub fn presence_meta<T: serde::Serialize>(
        value: T,
    ) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                tracing::error!("a #[presence_meta] hook must return an object; ignoring it");
                serde_json::Map::new()
            }
            Err(error) => {
                tracing::error!(%error, "a #[presence_meta] hook's value does not serialise");
                serde_json::Map::new()
            }
        }
    }

    /// The default topic value.
    pub fn default_topic<T: Topic + Default>() -> T {
        T::default()
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
