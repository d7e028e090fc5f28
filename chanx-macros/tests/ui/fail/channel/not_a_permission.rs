#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, channel};

struct Nope;

#[derive(Default)]
struct C;

#[channel(permissions = [Nope])]
impl C {
    #[ws_handler(permission = String)]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn main() {}
