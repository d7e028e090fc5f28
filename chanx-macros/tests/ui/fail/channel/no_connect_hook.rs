#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

struct NoDefault {
    name: String,
}

#[channel]
impl NoDefault {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        let _ = &self.name;
        Pong
    }
}

fn main() {}
