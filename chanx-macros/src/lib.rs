//! Procedural macros of chanx for Rust. Use them through `chanx` (or
//! `chanx-core`), which re-exports them next to the traits they implement.
//!
//! Each macro has two entry points that differ only in where the generated
//! code finds the runtime: `chanx-core` re-exports the plain ones (code names
//! `::chanx_core`), and `chanx` re-exports the `chanx_*` ones under the same
//! names (code names `::chanx`). A renamed dependency says where it is with
//! `#[channel(crate = "…")]` or `#[message(crate = "…")]`, as serde does.

use proc_macro::TokenStream;
use quote::quote;

mod attr;
mod channel;
mod message;
mod topic;

/// Derives `chanx_core::Message`: the wire shape `{"action": …, "payload": …}`.
///
/// On a struct, `#[message(action = "…")]` names its action and the struct
/// itself is the payload, through its own `Serialize`, `Deserialize` and
/// `JsonSchema` derives (so `#[serde(...)]` attributes keep working): named
/// fields give an object, a newtype gives the inner value, a unit struct gives
/// `null` (and a frame without `payload` is accepted).
///
/// On an enum, each variant wraps one single-action message, and the enum is
/// the union of their actions; `From` is implemented for each variant.
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    message::expand(&input, &quote!(::chanx_core)).into()
}

/// `#[derive(Message)]` as `chanx` re-exports it: generated code names
/// `::chanx`.
#[doc(hidden)]
#[proc_macro_derive(ChanxMessage, attributes(message))]
pub fn derive_chanx_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    message::expand(&input, &quote!(::chanx)).into()
}

/// Turns an `impl` block into a consumer: a dispatch table keyed on
/// `action`, reply glue, and metadata for documentation.
///
/// Keys: `name = "…"`, `description = "…"`, `tags = ["…", …]`,
/// `groups = ["lobby", "chat_{room}"]` (joined at connect; `{param}` is a
/// route parameter), the flags `send_completion`, `send_group_complete`,
/// `send_event_complete` (bare, or `= true`), and `crate = "…"` for a
/// renamed dependency.
///
/// Methods marked `#[ws_handler]` take `(&mut self, message: M)` or
/// `(&mut self, ctx: &Context, message: M)`; one `#[on_connect]` associated
/// function builds the consumer from `&Context`; one `#[post_authentication]`
/// method runs after connect.
#[proc_macro_attribute]
pub fn channel(attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::expand(attr.into(), item.into(), &quote!(::chanx_core)).into()
}

/// `#[channel]` as `chanx` re-exports it: generated code names `::chanx`.
#[doc(hidden)]
#[proc_macro_attribute]
pub fn chanx_channel(attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::expand(attr.into(), item.into(), &quote!(::chanx)).into()
}

/// Turns an `impl` block into a topic (Chanx 2.10+ topics): a pattern such
/// as `discussion:{pk}` with its own `#[ws_handler]`s and
/// `#[event_handler]`s, mounted on a channel with
/// `#[channel(topics = [DiscussionTopic])]` or served on its own route with
/// `chanx::topic::Standalone<DiscussionTopic>`.
///
/// Keys: `pattern = "…"` (required; `{param}` placeholders match one or
/// more characters other than `:`), `name`, `description`, `tags`,
/// `sends = […]`, `crate = "…"`. The type implements `Default`: one value
/// is built per subscription. Handlers take `ctx: &TopicContext` (or
/// `&Context`). Hooks: `#[authorize] async fn f(ctx: &TopicContext) -> bool`,
/// `#[on_subscribe]` and `#[on_unsubscribe]` methods, which may return a
/// message for the client.
#[proc_macro_attribute]
pub fn topic(attr: TokenStream, item: TokenStream) -> TokenStream {
    topic::expand(attr.into(), item.into(), &quote!(::chanx_core)).into()
}

/// `#[topic]` as `chanx` re-exports it: generated code names `::chanx`.
#[doc(hidden)]
#[proc_macro_attribute]
pub fn chanx_topic(attr: TokenStream, item: TokenStream) -> TokenStream {
    topic::expand(attr.into(), item.into(), &quote!(::chanx)).into()
}

/// Marks the associated function of a `#[topic]` impl block that decides
/// whether a connection may subscribe:
/// `async fn authorize(ctx: &TopicContext) -> bool` (or `Result<bool, E>`;
/// an error refuses and is logged). A refusal is the `unauthorized` error
/// frame.
#[proc_macro_attribute]
pub fn authorize(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("authorize", item.into()).into()
}

/// Marks the method of a `#[topic]` impl block that runs once a
/// subscription is confirmed; a message it returns is sent stamped with
/// the topic (state, not a reply: without the request's `ref`).
#[proc_macro_attribute]
pub fn on_subscribe(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("on_subscribe", item.into()).into()
}

/// Marks the method of a `#[topic]` impl block that runs before a
/// subscription ends, on `unsubscribe` or when the connection ends.
#[proc_macro_attribute]
pub fn on_unsubscribe(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("on_unsubscribe", item.into()).into()
}

/// Marks the method of a `#[channel(presence = …)]` impl block that adds
/// metadata to the connection's presence:
/// `async fn meta(&self, ctx: &Context) -> serde_json::Map<String, Value>`
/// (or any `Serialize` type that serialises to an object). Its fields sit
/// beside `user`, `online_at` and `phx_ref` in the connection's meta.
#[proc_macro_attribute]
pub fn presence_meta(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("presence_meta", item.into()).into()
}

/// Marks a method of a `#[channel]` impl block as the handler of its input
/// message's action. Keys: `summary`, `description`, `tags`, `output`.
#[proc_macro_attribute]
pub fn ws_handler(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("ws_handler", item.into()).into()
}

/// Marks a method of a `#[channel]` impl block as the handler of events
/// (sent through the channel layer) with its input message's action. A
/// returned message goes to that connection's client. Keys: `summary`,
/// `description`, `tags`, `output`.
#[proc_macro_attribute]
pub fn event_handler(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("event_handler", item.into()).into()
}

/// Marks the associated function of a `#[channel]` impl block that builds
/// the consumer for each connection, from `&Context` (route parameters,
/// query, headers, state, identity). It returns `Self`, or
/// `Result<Self, E>` with `E: Into<Reject>` to refuse the connection.
///
/// It runs before the `authentication` frame is sent and before the
/// channel's groups are joined: send messages and join groups in the
/// `#[post_authentication]` hook, so that the client sees them after the
/// authentication frame.
#[proc_macro_attribute]
pub fn on_connect(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("on_connect", item.into()).into()
}

/// Marks the method of a `#[channel]` impl block that runs once a
/// connection is established and authenticated.
#[proc_macro_attribute]
pub fn post_authentication(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("post_authentication", item.into()).into()
}

/// Marks the method of a `#[channel]` impl block that computes a
/// connection's groups at connect (Chanx's `build_groups`), from the
/// consumer the `#[on_connect]` hook built, the identity, state and path:
/// `async fn groups(&self, ctx: &Context) -> Vec<String>` (or a `Result`
/// of it). They are joined with the declared `groups`, right after the
/// `authentication` frame; a name that is not a valid group name closes
/// the connection with 1011 (build names with `chanx::layer::safe_group_name`).
#[proc_macro_attribute]
pub fn build_groups(_attr: TokenStream, item: TokenStream) -> TokenStream {
    channel::outside_channel("build_groups", item.into()).into()
}
