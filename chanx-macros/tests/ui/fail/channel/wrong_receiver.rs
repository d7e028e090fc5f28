#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct C;

#[channel]
impl C {
    #[ws_handler]
    async fn by_value(self, _: Ping) -> Pong {
        Pong
    }

    #[ws_handler]
    async fn no_self(_: Pong) -> Pong {
        Pong
    }
}

fn main() {}
