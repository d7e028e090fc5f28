//! An existing axum app with a chanx chat channel merged in.
//!
//! The axum side is what such an app already has: REST endpoints with
//! axum's extractors (`State`, `Path`, `Json`, `TypedHeader`-style header
//! checks) over shared state. The chanx side is a room chat at
//! `/ws/chat/{room}`. They share two things: the list of rooms (axum lists
//! them, the chat refuses rooms that are not on it) and the channel layer
//! (a REST call announces into a room's sockets):
//!
//! - `GET /api/rooms`: the rooms, as JSON;
//! - `POST /api/rooms/{room}/announce` with `Authorization: Bearer
//!   admin-token` and `{"text": "…"}`: every socket in that room gets an
//!   `announcement` frame (202; 401 without the token, 404 for an unknown
//!   room, axum's 4xx for a bad body);
//! - `GET /health`;
//! - `ws://…/ws/chat/{room}?name=alice`: `new_chat_message` → `chat_message`
//!   to everyone in the room; unknown rooms are closed with 4404;
//! - `GET /asyncapi.json`: the chat's AsyncAPI document.
//!
//! Run with `cargo run -p chanx-example-axum -- --addr 127.0.0.1:8000`,
//! connect to `ws://127.0.0.1:8000/ws/chat/lobby?name=alice`, then
//! `curl -X POST localhost:8000/api/rooms/lobby/announce -H 'Authorization: Bearer admin-token' -H 'Content-Type: application/json' -d '{"text":"Deploy at noon"}'`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router as AxumRouter};
use chanx::layer::{GroupName, GroupTemplateError, LayerError};
use chanx::messages::{Ping, Pong};
use chanx::{CloseCode, Context, Layer, Message, Reject, Router, ShutdownHandle, channel};
use serde::{Deserialize, Serialize};

/// The chat rooms: name → description. Shared by the REST API and the
/// chat channel.
#[derive(Debug, Clone)]
pub struct Rooms(Arc<BTreeMap<String, String>>);

impl Rooms {
    /// Rooms from `(name, description)` pairs.
    pub fn new<'a>(rooms: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(Arc::new(
            rooms
                .into_iter()
                .map(|(name, description)| (name.to_owned(), description.to_owned()))
                .collect(),
        ))
    }

    /// `lobby`, `rust` and `random`.
    #[must_use]
    pub fn demo() -> Self {
        Self::new([
            ("lobby", "Everyone starts here"),
            ("random", "Anything goes"),
            ("rust", "Talk about Rust"),
            ("show_and_tell", "Show what you built"),
        ])
    }

    /// Whether `name` is a room.
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// The group of a room's sockets: the channel's `chat_{room}` template
/// filled in as the connections fill it (values are encoded, so a room
/// named `my_room` has its own group).
fn room_group(room: &str) -> Result<GroupName, GroupTemplateError> {
    GroupName::from_template("chat_{room}", [("room", room)])
}

/// `{"action":"new_chat_message","payload":{"message":"…"}}` from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "new_chat_message")]
pub struct NewChatMessage {
    /// The text.
    pub message: String,
}

/// A message in a room, to every member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "chat_message")]
pub struct ChatMessage {
    /// Who sent it (the `name` query parameter).
    pub sender: String,
    /// The room.
    pub room: String,
    /// The text.
    pub message: String,
}

/// Sent to a new member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "joined_room")]
pub struct JoinedRoom {
    /// The room.
    pub room: String,
    /// The name the member goes by.
    pub name: String,
}

/// The event the REST API sends into a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "announce")]
pub struct Announce {
    /// The text.
    pub text: String,
}

/// An announcement, as each member receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "announcement")]
pub struct Announcement {
    /// The room.
    pub room: String,
    /// The text.
    pub text: String,
}

/// One member of one room.
#[derive(Debug)]
pub struct ChatConsumer {
    room: String,
    name: String,
}

/// Room chat: messages go to everyone in the room; announcements arrive
/// from the REST API.
#[channel(name = "chat", groups = ["chat_{room}"], tags = ["chat"])]
impl ChatConsumer {
    /// Takes the room from the path (it must exist) and the name from
    /// `?name=` (default `anonymous`).
    #[on_connect]
    async fn new(ctx: &Context) -> Result<Self, Reject> {
        let room = ctx.param("room").unwrap_or_default();
        if !ctx
            .state::<Rooms>()
            .is_some_and(|rooms| rooms.contains(room))
        {
            let code = CloseCode::application(4404).unwrap_or(CloseCode::POLICY);
            return Err(Reject::new(code, "no such room"));
        }
        let name = ctx
            .query_param("name")
            .filter(|name| !name.is_empty() && name.len() <= 32)
            .map_or_else(|| "anonymous".to_owned(), |name| name.into_owned());
        Ok(Self {
            room: room.to_owned(),
            name,
        })
    }

    /// Confirm the room to the new member.
    #[post_authentication]
    async fn joined(&mut self) -> JoinedRoom {
        JoinedRoom {
            room: self.room.clone(),
            name: self.name.clone(),
        }
    }

    /// Send a message to everyone in the room.
    #[ws_handler(summary = "Post a chat message", output = ChatMessage)]
    async fn new_chat_message(
        &mut self,
        ctx: &Context,
        message: NewChatMessage,
    ) -> Result<(), LayerError> {
        let message = ChatMessage {
            sender: self.name.clone(),
            room: self.room.clone(),
            message: message.message,
        };
        ctx.broadcast(&message).await
    }

    /// An announcement from the REST API.
    #[event_handler(summary = "Deliver an announcement")]
    async fn announce(&mut self, event: Announce) -> Announcement {
        Announcement {
            room: self.room.clone(),
            text: event.text,
        }
    }

    /// Connectivity check.
    #[ws_handler(summary = "Handle ping requests")]
    async fn ping(&mut self, _message: Ping) -> Pong {
        Pong
    }
}

/// The chanx part: the chat channel with its rooms and AsyncAPI document.
pub fn chat(rooms: Rooms) -> Router {
    Router::new()
        .route::<ChatConsumer>("/ws/chat/{room}")
        .with_state(rooms)
        .with_asyncapi(
            chanx::asyncapi::AsyncApi::new("Axum Chat", env!("CARGO_PKG_VERSION"))
                .description(
                    "A chanx room chat inside an axum app; REST announcements reach the rooms.",
                )
                .server("local", "localhost:8000", "ws"),
        )
        .with_playground()
}

/// What the axum handlers share.
#[derive(Clone)]
pub struct AppState {
    rooms: Rooms,
    layer: Layer,
    admin_token: Arc<str>,
}

/// A room as `GET /api/rooms` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomView {
    /// The name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Where to connect.
    pub socket: String,
}

/// The body of `POST /api/rooms/{room}/announce`.
#[derive(Debug, Clone, Deserialize)]
pub struct AnnounceRequest {
    /// The text.
    pub text: String,
}

async fn list_rooms(State(state): State<AppState>) -> Json<Vec<RoomView>> {
    Json(
        state
            .rooms
            .0
            .iter()
            .map(|(name, description)| RoomView {
                name: name.clone(),
                description: description.clone(),
                socket: format!("/ws/chat/{name}"),
            })
            .collect(),
    )
}

fn error(status: StatusCode, detail: &str) -> Response {
    (status, Json(serde_json::json!({ "detail": detail }))).into_response()
}

fn is_admin(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    // Constant time in the token's length.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

async fn announce(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    Json(request): Json<AnnounceRequest>,
) -> Response {
    if !is_admin(&headers, &state.admin_token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "send the admin token: Authorization: Bearer <token>",
        );
    }
    if !state.rooms.contains(&room) {
        return error(StatusCode::NOT_FOUND, "no such room");
    }
    let event = Announce { text: request.text };
    let Ok(group) = room_group(&room) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    match state.layer.send_event(group.as_str(), &event).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "room": room, "text": event.text })),
        )
            .into_response(),
        Err(failure) => {
            tracing::warn!(%failure, room, "announcement not sent");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the channel layer is unavailable",
            )
        }
    }
}

/// The whole app: the REST API and `/health` (axum), with `chat` (chanx)
/// merged in. Returns the handle that closes chat sockets with 1001, to
/// run in axum's graceful shutdown.
pub fn app(chat: Router, rooms: Rooms, admin_token: &str) -> (AxumRouter, ShutdownHandle) {
    let shutdown = chat.shutdown_handle();
    let state = AppState {
        rooms,
        layer: chat.layer().clone(),
        admin_token: admin_token.into(),
    };
    let api = AxumRouter::new()
        .route("/api/rooms", get(list_rooms))
        .route("/api/rooms/{room}/announce", post(announce))
        .route("/health", get(|| async { "ok" }))
        .with_state(state);
    (api.merge(chat.into_axum()), shutdown)
}

/// The demo admin token for `POST /api/rooms/{room}/announce`.
pub const DEMO_ADMIN_TOKEN: &str = "admin-token";
