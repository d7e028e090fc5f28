#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct C;

#[channel]
impl C {
    #[ws_handler]
    async fn too_many(&mut self, ctx: &Context, _: Ping, extra: u8) -> Pong {
        let _ = (ctx, extra);
        Pong
    }

    #[ws_handler]
    async fn none(&mut self) -> Pong {
        Pong
    }
}

fn main() {}
