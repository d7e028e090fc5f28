#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "ping")]
struct MyPing;

#[derive(Default)]
struct C;

#[channel]
impl C {
    #[ws_handler]
    async fn first(&mut self, _: Ping) -> Pong {
        Pong
    }

    #[ws_handler]
    async fn second(&mut self, _: MyPing) -> Pong {
        Pong
    }
}

fn main() {}
