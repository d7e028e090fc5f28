//! The fixed protocol used to compare chanx with other implementations.
//! Keep it exactly as it is:
//!
//! | client sends | server answers |
//! |---|---|
//! | `{"action":"echo","payload":{"text":<string>,"seq":<int>}}` | `{"action":"echo_result","payload":<same object>}` |
//! | `{"action":"join"}` | `{"action":"joined","payload":null}` |
//! | `{"action":"broadcast","payload":<object>}` | `{"action":"broadcast_result","payload":<same object>}` to every member of group `lobby` (the sender included) |
//!
//! Every connection joins `lobby` on connect.
//!
//! Run with `cargo run --release -p chanx-example-bench -- --addr 127.0.0.1:8000`,
//! then connect to `ws://127.0.0.1:8000/ws/bench`.

use chanx::layer::LayerError;
use chanx::{Context, Message, Router, channel};
use serde::{Deserialize, Serialize};

/// The echo payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EchoPayload {
    /// Any text.
    pub text: String,
    /// The client's sequence number.
    pub seq: i64,
}

/// Echo request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "echo")]
pub struct Echo(pub EchoPayload);

/// Echo reply: the same payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "echo_result")]
pub struct EchoResult(pub EchoPayload);

/// Join request.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message,
)]
#[message(action = "join")]
pub struct Join;

/// Join acknowledgement.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message,
)]
#[message(action = "joined")]
pub struct Joined;

/// Broadcast request: any JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "broadcast")]
pub struct Broadcast(pub serde_json::Map<String, serde_json::Value>);

/// Broadcast delivery: the same object, to every member of `lobby`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "broadcast_result")]
pub struct BroadcastResult(pub serde_json::Map<String, serde_json::Value>);

/// The bench consumer.
#[derive(Debug, Default)]
pub struct BenchConsumer;

/// Benchmark protocol: echo, join and broadcast.
#[channel(name = "bench", groups = ["lobby"], tags = ["bench"])]
impl BenchConsumer {
    /// Echo the payload back to the sender.
    #[ws_handler]
    async fn echo(&mut self, message: Echo) -> EchoResult {
        EchoResult(message.0)
    }

    /// Send the object to every member of `lobby`, encoded once.
    #[ws_handler(output = BroadcastResult)]
    async fn broadcast(&mut self, ctx: &Context, message: Broadcast) -> Result<(), LayerError> {
        ctx.broadcast(&BroadcastResult(message.0)).await
    }

    /// Acknowledge a join.
    #[ws_handler]
    async fn join(&mut self, _message: Join) -> Joined {
        Joined
    }
}

/// The application: `/ws/bench` served by [`BenchConsumer`].
pub fn app() -> Router {
    Router::new()
        .route::<BenchConsumer>("/ws/bench")
        .with_asyncapi(
            chanx::asyncapi::AsyncApi::new("Bench", env!("CARGO_PKG_VERSION"))
                .description("The fixed protocol used to compare chanx with other implementations.")
                .server("local", "localhost:8000", "ws"),
        )
        .with_playground()
}
