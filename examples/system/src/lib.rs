//! Chanx tutorial part 1, "Simple System Echo": a consumer that greets each
//! connection and echoes user messages back to the sender only.
//!
//! Run with `cargo run -p chanx-example-system -- --addr 127.0.0.1:8000`,
//! then connect to `ws://127.0.0.1:8000/ws/system`.

use chanx::messages::{Ping, Pong};
use chanx::{Context, Message, Router, channel};
use serde::{Deserialize, Serialize};

/// The payload shared by the system messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MessagePayload {
    /// The text.
    pub message: String,
}

/// A message a user sends to the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "user_message")]
pub struct UserMessage(pub MessagePayload);

/// The system's echo of a user message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "system_echo")]
pub struct SystemEchoMessage(pub MessagePayload);

impl SystemEchoMessage {
    fn new(message: String) -> Self {
        Self(MessagePayload { message })
    }
}

/// System messages without channel layers: direct replies only.
#[derive(Debug, Default)]
pub struct SystemMessageConsumer;

/// System Messages Consumer - Direct WebSocket without channel layers
#[channel(name = "system", tags = ["system", "direct"])]
impl SystemMessageConsumer {
    /// Simple ping-pong for connectivity testing
    #[ws_handler(summary = "Handle ping requests")]
    async fn handle_ping(&mut self, _message: Ping) -> Pong {
        Pong
    }

    /// Echo system messages back directly without using channel layers
    #[ws_handler(summary = "Handle message user send to system")]
    async fn handle_system(&mut self, message: UserMessage) -> SystemEchoMessage {
        SystemEchoMessage::new(format!("🔧 System Echo: {}", message.0.message))
    }

    /// Send the connection-established message directly to the client.
    #[post_authentication]
    async fn post_authentication(&mut self, ctx: &Context) {
        let welcome = SystemEchoMessage::new("🔧 System: Connection established!".to_owned());
        // The only failure is a connection that is already gone.
        let _ = ctx.send(&welcome).await;
    }
}

/// The application: `/ws/system` served by [`SystemMessageConsumer`].
pub fn app() -> Router {
    Router::new()
        .route::<SystemMessageConsumer>("/ws/system")
        .with_asyncapi(
            chanx::asyncapi::AsyncApi::new("System Messages", env!("CARGO_PKG_VERSION"))
                .description(
                    "Chanx tutorial part 1: a direct echo WebSocket without channel layers.",
                )
                .server("local", "localhost:8000", "ws"),
        )
        .with_playground()
}
