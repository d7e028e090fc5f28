//! The Chanx "assistant" example behind token authentication: a chatbot at
//! `/ws/assistants` that answers `new_message` with `reply`, and `ping` with
//! `pong`. The token travels as `?token=…` (browsers) or
//! `Authorization: Bearer …`.
//!
//! Run with `cargo run -p chanx-example-assistant`, then connect to
//! `ws://127.0.0.1:8000/ws/assistants?token=alice-token`. The demo users are
//! in [`demo_tokens`].

use std::collections::HashMap;

use chanx::auth::{BearerToken, IsAuthenticated, TokenVerifier};
use chanx::messages::{Ping, Pong};
use chanx::{Context, Message, Router, channel};
use serde::{Deserialize, Serialize};

/// A message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessagePayload {
    /// The text.
    pub content: String,
}

/// New message for the assistant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "new_message")]
pub struct NewMessage(pub MessagePayload);

/// The assistant's reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "reply")]
pub struct ReplyMessage(pub MessagePayload);

/// Token → user name.
#[derive(Debug, Clone)]
pub struct DemoTokens(HashMap<String, String>);

/// The demo users: `alice-token` → alice, `bob-token` → bob.
#[must_use]
pub fn demo_tokens() -> DemoTokens {
    DemoTokens(HashMap::from([
        ("alice-token".to_owned(), "alice".to_owned()),
        ("bob-token".to_owned(), "bob".to_owned()),
    ]))
}

impl TokenVerifier for DemoTokens {
    type Identity = String;

    async fn verify(&self, token: &str, _ctx: &Context) -> Option<String> {
        self.0.get(token).cloned()
    }
}

/// Websocket to chat with the server, like chatting with a chatbot.
#[derive(Debug, Default)]
pub struct AssistantConsumer;

/// Chat with the assistant; authenticated users only.
#[channel(
    name = "assistants",
    authenticator = BearerToken<DemoTokens>,
    permissions = [IsAuthenticated],
    tags = ["assistant"]
)]
impl AssistantConsumer {
    /// Reply with a prefix.
    #[ws_handler(summary = "Send a message to the assistant")]
    async fn new_message(&mut self, message: NewMessage) -> ReplyMessage {
        ReplyMessage(MessagePayload {
            content: format!("Reply: {}", message.0.content),
        })
    }

    /// Connectivity check.
    #[ws_handler(summary = "Handle ping requests")]
    async fn ping(&mut self, _message: Ping) -> Pong {
        Pong
    }
}

/// The application: `/ws/assistants`, token-authenticated.
pub fn app() -> Router {
    Router::new()
        .route::<AssistantConsumer>("/ws/assistants")
        .with_authenticator(BearerToken::new(demo_tokens()))
        .with_asyncapi(
            chanx::asyncapi::AsyncApi::new("Assistant", env!("CARGO_PKG_VERSION"))
                .description("The Chanx assistant behind token authentication.")
                .server("local", "localhost:8000", "ws"),
        )
        .with_playground()
}
