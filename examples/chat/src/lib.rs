//! Chanx tutorial part 2, "Room Chat": chat rooms addressed by the path,
//! `/ws/chat/{room}`. A message goes to every member of that room (the
//! sender included, so every client renders messages from the server's echo)
//! and to nobody else. With `--layer redis`, rooms span server processes.
//!
//! Run with `cargo run -p chanx-example-chat -- --addr 127.0.0.1:8000`, then
//! connect to `ws://127.0.0.1:8000/ws/chat/lobby?name=alice`.

use chanx_core::layer::LayerError;
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, Router, channel};
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
    /// Who sent it (the `name` query parameter, or `anonymous`).
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

/// One member of one room.
#[derive(Debug)]
pub struct ChatConsumer {
    name: String,
    room: String,
}

/// Room chat: messages go to the members of the room in the path.
#[channel(name = "chat", groups = ["chat_{room}"], tags = ["chat"])]
impl ChatConsumer {
    #[on_connect]
    async fn new(ctx: &Context) -> Self {
        let name = ctx
            .query_param("name")
            .map(|name| name.chars().take(32).collect::<String>())
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| "anonymous".to_owned());
        Self {
            name,
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

/// The application: `/ws/chat/{room}` served by [`ChatConsumer`].
pub fn app() -> Router {
    Router::new().route::<ChatConsumer>("/ws/chat/{room}")
}
