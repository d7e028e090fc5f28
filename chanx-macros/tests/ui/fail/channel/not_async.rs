#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct C;

#[channel]
impl C {
    #[ws_handler]
    fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn main() {}
