use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "echo")]
struct Echo(String);

#[derive(Message)]
enum Reply {
    Echo(Echo),
    Pong(Pong),
}

struct Room {
    name: String,
}

#[channel(name = "room", description = "Rooms", tags = ["a", "b"], send_completion = false)]
impl Room {
    #[on_connect]
    async fn new(ctx: &Context) -> Self {
        Self { name: ctx.param("room").unwrap_or("lobby").to_owned() }
    }

    #[post_authentication]
    async fn welcome(&mut self) -> Echo {
        Echo(self.name.clone())
    }

    #[ws_handler(summary = "Echo", description = "Echoes", tags = ["x"], output = [Echo, Pong])]
    async fn echo(&self, message: Echo) -> Reply {
        Reply::Echo(message)
    }

    #[chanx_core::ws_handler]
    async fn ping(&mut self, ctx: &Context, _: Ping) -> Result<Option<Reply>, std::io::Error> {
        let _ = ctx.id();
        Ok(Some(Pong.into()))
    }

    fn helper(&self) -> usize {
        self.name.len()
    }
}

fn main() {
    let _ = chanx_core::Router::new().route::<Room>("/ws/{room}");
}
