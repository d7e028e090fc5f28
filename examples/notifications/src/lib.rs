//! Events pushed to connected clients from outside the WebSocket: an HTTP
//! `POST /notify` on the same server sends a typed event through the channel
//! layer to everyone (`notifications`) or to one user (`user_{user}`), and
//! each connection's `#[event_handler]` turns it into a frame for its client.
//! With `--layer redis`, a POST to any server process reaches clients on all
//! of them.
//!
//! Both ways in are authenticated:
//!
//! - a socket presents a user's token (`?token=` or `Authorization: Bearer`)
//!   and may open only its own feed: `/ws/notifications/alice` is alice's
//!   (anyone else gets 4403);
//! - `POST /notify` needs the publisher's token in `Authorization: Bearer`
//!   and a JSON body (`Content-Type: application/json`); the server's edge
//!   also refuses bodies over 64 KiB and posts from other sites' pages
//!   (their `Origin`).
//!
//! Run with `cargo run -p chanx-example-notifications -- --addr 127.0.0.1:8000`,
//! connect to `ws://127.0.0.1:8000/ws/notifications/alice?token=alice-token`,
//! then
//! `curl -X POST localhost:8000/notify -H 'Authorization: Bearer publisher-token' -H 'Content-Type: application/json' -d '{"title":"Hi","body":"Deployed","user":"alice"}'`.

use std::collections::HashMap;

use chanx::auth::{BearerToken, Denied, IsAuthenticated, Permission, TokenVerifier};
use chanx::http::{HttpRequest, HttpResponse};
use chanx::messages::{Ping, Pong};
use chanx::{Context, Message, Router, channel};
use http::{Method, StatusCode, header};
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

/// The demo credentials: a token per user, and the publisher's token.
#[derive(Debug, Clone)]
pub struct DemoTokens {
    users: HashMap<String, String>,
    publisher: String,
}

/// `alice-token` and `bob-token` for the users, `publisher-token` for
/// `POST /notify`.
#[must_use]
pub fn demo_tokens() -> DemoTokens {
    DemoTokens {
        users: ["alice", "bob"]
            .into_iter()
            .map(|name| (format!("{name}-token"), name.to_owned()))
            .collect(),
        publisher: "publisher-token".to_owned(),
    }
}

impl DemoTokens {
    /// Whether `token` is the publisher's (compared in constant time).
    #[must_use]
    pub fn is_publisher(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.publisher.as_bytes())
    }
}

impl TokenVerifier for DemoTokens {
    type Identity = String;

    async fn verify(&self, token: &str, _ctx: &Context) -> Option<String> {
        self.users.get(token).cloned()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Only the user a feed belongs to may open it.
#[derive(Debug)]
pub struct IsFeedOwner;

impl Permission for IsFeedOwner {
    async fn check(ctx: &Context) -> Result<(), Denied> {
        let user = ctx
            .identity_as::<String>()
            .ok_or_else(|| Denied::unauthorized("Authentication credentials were not provided."))?;
        if ctx.param("user") == Some(user.as_str()) {
            Ok(())
        } else {
            Err(Denied::forbidden("You may only open your own feed."))
        }
    }
}

/// One user's notification feed.
#[derive(Debug, Default)]
pub struct NotificationConsumer {
    received: u64,
}

/// Notifications pushed by the server.
#[channel(
    name = "notifications",
    groups = ["notifications", "user_{user}"],
    authenticator = BearerToken<DemoTokens>,
    permissions = [IsAuthenticated, IsFeedOwner],
    tags = ["notifications"]
)]
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

/// `POST /notify` with the publisher's bearer token and a JSON body
/// `{"title", "body", "user"?}` → 202; 401 without the token, 415 for
/// another content type, 400 for a bad body.
pub async fn notify(request: HttpRequest) -> HttpResponse {
    let tokens = request.state::<DemoTokens>();
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let authorised = match (tokens, token) {
        (Some(tokens), Some(token)) => tokens.is_publisher(token.trim()),
        _ => false,
    };
    if !authorised {
        return HttpResponse::text(
            StatusCode::UNAUTHORIZED,
            "send the publisher's token: Authorization: Bearer <token>",
        );
    }
    let notify: NotifyRequest = match request.json() {
        Ok(notify) => notify,
        Err(error) => return error.into(),
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
        Err(error @ chanx::layer::LayerError::InvalidGroup(_)) => {
            HttpResponse::text(StatusCode::BAD_REQUEST, error.to_string())
        }
        Err(error) => HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

/// The application: `/ws/notifications/{user}` and `POST /notify`, with the
/// demo tokens.
pub fn app() -> Router {
    let tokens = demo_tokens();
    Router::new()
        .route::<NotificationConsumer>("/ws/notifications/{user}")
        .http(Method::POST, "/notify", notify)
        .with_authenticator(BearerToken::new(tokens.clone()))
        .with_state(tokens)
        .with_asyncapi(
            chanx::asyncapi::AsyncApi::new("Notifications", env!("CARGO_PKG_VERSION"))
                .description("Events pushed to clients from outside the WebSocket.")
                .server("local", "localhost:8000", "ws"),
        )
        .with_playground()
}
