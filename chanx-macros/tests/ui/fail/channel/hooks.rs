#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct C;

#[channel]
impl C {
    #[on_connect]
    async fn new(&self) -> Self {
        C
    }

    #[post_authentication]
    async fn first(&mut self) {}

    #[post_authentication]
    async fn second(&mut self) {}

    #[ws_handler]
    async fn ping(&mut self, ctx: &Context, _: Ping) -> Pong {
        let _ = ctx;
        Pong
    }
}

fn main() {}
