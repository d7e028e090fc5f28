//! Chanx tutorial part 2, "Room Chat": chat rooms addressed by the path,
//! `/ws/chat/{room}`. A message goes to every member of that room (the
//! sender included, so every client renders messages from the server's echo)
//! and to nobody else. With `--layer redis`, rooms span server processes.
//!
//! Users authenticate with a token (`?token=…` or `Authorization: Bearer`).
//! Rooms are public unless listed in [`Rooms`]; a private room is open only
//! to its members, checked when they connect (an object-level permission,
//! [`IsRoomMember`]): a non-member is refused with 4403 before it can read
//! or post anything.
//!
//! Who is in the room is shown with presence (`presence = "chat_{room}"`):
//! after `joined_room`, a member gets `presence_state` (everyone already
//! there, by user, one meta per connection) and then `presence_diff` as
//! members come and go, across processes with `--layer redis`.
//!
//! Run with `cargo run -p chanx-example-chat -- --addr 127.0.0.1:8000`, then
//! connect to `ws://127.0.0.1:8000/ws/chat/lobby?token=alice-token`. The demo
//! users are in [`demo_users`]; `kitchen` is private to alice and carol.

use std::collections::HashMap;
use std::sync::Arc;

use chanx::auth::{BearerToken, Denied, IsAuthenticated, Permission, TokenVerifier};
use chanx::layer::LayerError;
use chanx::messages::{Ping, Pong};
use chanx::{Context, Message, Router, channel};
use serde::{Deserialize, Serialize};

/// What a member sends: `{"action":"new_chat_message","payload":{"message":"hi"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "new_chat_message")]
pub struct NewChatMessage {
    /// The text.
    pub message: String,
}

/// What every member of the room receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "chat_message")]
pub struct ChatMessage {
    /// Who sent it (the authenticated user).
    pub sender: String,
    /// The room.
    pub room: String,
    /// The text.
    pub message: String,
}

/// Told to a member when it joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "joined_room")]
pub struct JoinedRoom {
    /// The room.
    pub room: String,
}

/// Token → user name.
#[derive(Debug, Clone)]
pub struct DemoUsers(HashMap<String, String>);

/// The demo users: `alice-token`, `bob-token` and `carol-token`.
#[must_use]
pub fn demo_users() -> DemoUsers {
    DemoUsers(
        ["alice", "bob", "carol"]
            .into_iter()
            .map(|name| (format!("{name}-token"), name.to_owned()))
            .collect(),
    )
}

impl TokenVerifier for DemoUsers {
    type Identity = String;

    async fn verify(&self, token: &str, _ctx: &Context) -> Option<String> {
        self.0.get(token).cloned()
    }
}

/// The private rooms and their members (shared state); other rooms are
/// public.
#[derive(Debug, Clone)]
pub struct Rooms(Arc<HashMap<String, Vec<String>>>);

impl Rooms {
    /// `kitchen`, private to alice and carol.
    #[must_use]
    pub fn demo() -> Self {
        Self(Arc::new(HashMap::from([(
            "kitchen".to_owned(),
            vec!["alice".to_owned(), "carol".to_owned()],
        )])))
    }

    /// Whether `user` may enter `room`.
    #[must_use]
    pub fn may_enter(&self, room: &str, user: &str) -> bool {
        self.0
            .get(room)
            .is_none_or(|members| members.iter().any(|member| member == user))
    }
}

/// Object-level permission: loads the room named in the path and checks the
/// user against its members.
#[derive(Debug)]
pub struct IsRoomMember;

impl Permission for IsRoomMember {
    async fn check(ctx: &Context) -> Result<(), Denied> {
        let user = ctx
            .identity_as::<String>()
            .ok_or_else(|| Denied::unauthorized("Authentication credentials were not provided."))?;
        let rooms = ctx
            .state::<Rooms>()
            .ok_or_else(|| Denied::forbidden("No rooms are configured."))?;
        let room = ctx.param("room").unwrap_or_default();
        if rooms.may_enter(room, user) {
            Ok(())
        } else {
            Err(Denied::forbidden(format!(
                "{room} is open to its members only."
            )))
        }
    }
}

/// One member of one room.
#[derive(Debug)]
pub struct ChatConsumer {
    name: String,
    room: String,
}

/// Room chat: messages go to the members of the room in the path.
#[channel(
    name = "chat",
    groups = ["chat_{room}"],
    presence = "chat_{room}",
    authenticator = BearerToken<DemoUsers>,
    permissions = [IsAuthenticated, IsRoomMember],
    tags = ["chat"]
)]
impl ChatConsumer {
    #[on_connect]
    async fn new(ctx: &Context) -> Self {
        Self {
            name: ctx.identity::<Self>().cloned().unwrap_or_default(),
            room: ctx.param("room").unwrap_or_default().to_owned(),
        }
    }

    /// Confirm the room to the new member.
    #[post_authentication]
    async fn joined(&mut self) -> JoinedRoom {
        JoinedRoom {
            room: self.room.clone(),
        }
    }

    /// Send a message to everyone in the room.
    #[ws_handler(summary = "Post a message to the room", output = ChatMessage)]
    async fn new_chat_message(
        &mut self,
        ctx: &Context,
        message: NewChatMessage,
    ) -> Result<(), LayerError> {
        let chat = ChatMessage {
            sender: self.name.clone(),
            room: self.room.clone(),
            message: message.message,
        };
        ctx.broadcast(&chat).await
    }

    /// Connectivity check.
    #[ws_handler(summary = "Handle ping requests")]
    async fn ping(&mut self, _message: Ping) -> Pong {
        Pong
    }
}

/// The application: `/ws/chat/{room}` served by [`ChatConsumer`], with the
/// demo users and rooms.
pub fn app() -> Router {
    Router::new()
        .route::<ChatConsumer>("/ws/chat/{room}")
        .with_authenticator(BearerToken::new(demo_users()))
        .with_state(Rooms::demo())
        .with_asyncapi(
            chanx::asyncapi::AsyncApi::new("Room Chat", env!("CARGO_PKG_VERSION"))
                .description("Chanx tutorial part 2: room chat over channel layers, with token authentication.")
                .server("local", "localhost:8000", "ws"),
        )
        .with_playground()
}
