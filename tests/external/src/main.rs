//! The Chanx tutorial's system consumer, merged into an axum app and served
//! by `axum::serve`, from a crate that depends on `chanx` alone.
//!
//! Usage: `chanx-external-check HOST:PORT`.

use chanx::messages::{Ping, Pong};
use chanx::serde::{Deserialize, Serialize};
use chanx::{Context, Message, channel};

#[derive(Serialize, Deserialize, chanx::schemars::JsonSchema)]
#[serde(crate = "chanx::serde")]
#[schemars(crate = "chanx::schemars")]
struct MessagePayload {
    message: String,
}

#[derive(Serialize, Deserialize, chanx::schemars::JsonSchema, Message)]
#[serde(crate = "chanx::serde")]
#[schemars(crate = "chanx::schemars")]
#[message(action = "user_message")]
struct UserMessage(MessagePayload);

#[derive(Serialize, Deserialize, chanx::schemars::JsonSchema, Message)]
#[serde(crate = "chanx::serde")]
#[schemars(crate = "chanx::schemars")]
#[message(action = "system_echo")]
struct SystemEcho(MessagePayload);

#[derive(Default)]
struct SystemConsumer;

#[channel(name = "system")]
impl SystemConsumer {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }

    #[ws_handler]
    async fn user_message(&mut self, message: UserMessage) -> SystemEcho {
        SystemEcho(MessagePayload {
            message: format!("🔧 System Echo: {}", message.0.message),
        })
    }

    #[post_authentication]
    async fn welcome(&mut self, ctx: &Context) {
        let message = "🔧 System: Connection established!".to_owned();
        let _ = ctx.send(&SystemEcho(MessagePayload { message })).await;
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    // The shape of the issue and the README: a chanx router merged into an
    // axum app, served by axum::serve with graceful shutdown.
    let system = chanx::Router::new().route::<SystemConsumer>("/ws/system");
    let shutdown = system.shutdown_handle();
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .merge(system.into_axum());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let signal = async move {
        chanx::shutdown_signal().await;
        shutdown.shutdown().await;
    };
    axum::serve(listener, app).with_graceful_shutdown(signal).await
}
