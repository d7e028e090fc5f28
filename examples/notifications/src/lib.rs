//! Events pushed to connected clients from outside the WebSocket: an HTTP
//! `POST /notify` on the same server sends a typed event through the channel
//! layer to everyone (`notifications`) or to one user (`user_{user}`), and
//! each connection's `#[event_handler]` turns it into a frame for its client.
//! With `--layer redis`, a POST to any server process reaches clients on all
//! of them.
//!
//! Run with `cargo run -p chanx-example-notifications -- --addr 127.0.0.1:8000`,
//! connect to `ws://127.0.0.1:8000/ws/notifications/alice`, then
//! `curl -X POST localhost:8000/notify -d '{"title":"Hi","body":"Deployed","user":"alice"}'`.

use chanx_core::http::{HttpRequest, HttpResponse};
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Message, Router, channel};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

/// The event other server parts send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "notify")]
pub struct NotifyEvent {
    /// A short title.
    pub title: String,
    /// The text.
    pub body: String,
}

/// What the client receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "notification")]
pub struct Notification {
    /// A short title.
    pub title: String,
    /// The text.
    pub body: String,
    /// How many notifications this connection has received.
    pub count: u64,
}

/// The body of `POST /notify`.
#[derive(Debug, Clone, Deserialize)]
pub struct NotifyRequest {
    /// A short title.
    pub title: String,
    /// The text.
    pub body: String,
    /// One user, or everyone when absent.
    #[serde(default)]
    pub user: Option<String>,
}

/// One user's notification feed.
#[derive(Debug, Default)]
pub struct NotificationConsumer {
    received: u64,
}

/// Notifications pushed by the server.
#[channel(name = "notifications", groups = ["notifications", "user_{user}"], tags = ["notifications"])]
impl NotificationConsumer {
    /// Relay a notification to this client.
    #[event_handler(summary = "Deliver a notification")]
    async fn notify(&mut self, event: NotifyEvent) -> Notification {
        self.received += 1;
        Notification {
            title: event.title,
            body: event.body,
            count: self.received,
        }
    }

    /// Connectivity check.
    #[ws_handler(summary = "Handle ping requests")]
    async fn ping(&mut self, _message: Ping) -> Pong {
        Pong
    }
}

/// `POST /notify`: `{"title", "body", "user"?}` → 202, or 400 for a bad body.
pub async fn notify(request: HttpRequest) -> HttpResponse {
    let notify: NotifyRequest = match request.json() {
        Ok(notify) => notify,
        Err(error) => {
            return HttpResponse::text(StatusCode::BAD_REQUEST, format!("bad body: {error}"));
        }
    };
    let group = match &notify.user {
        Some(user) => format!("user_{user}"),
        None => "notifications".to_owned(),
    };
    let event = NotifyEvent {
        title: notify.title,
        body: notify.body,
    };
    match request.layer().send_event(&group, &event).await {
        Ok(()) => HttpResponse::json(StatusCode::ACCEPTED, &serde_json::json!({"sent_to": group})),
        Err(error @ chanx_core::layer::LayerError::InvalidGroup(_)) => {
            HttpResponse::text(StatusCode::BAD_REQUEST, error.to_string())
        }
        Err(error) => HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

/// The application: `/ws/notifications/{user}` and `POST /notify`.
pub fn app() -> Router {
    Router::new()
        .route::<NotificationConsumer>("/ws/notifications/{user}")
        .http(Method::POST, "/notify", notify)
        .with_asyncapi(
            chanx_core::asyncapi::AsyncApi::new("Notifications", env!("CARGO_PKG_VERSION"))
                .description("Events pushed to clients from outside the WebSocket.")
                .server("local", "localhost:8000", "ws"),
        )
}
