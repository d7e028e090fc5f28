#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

struct C;

impl C {
    #[chanx_core::ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn main() {}
