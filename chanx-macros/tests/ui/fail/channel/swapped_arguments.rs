#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, channel};

#[derive(Default)]
struct C;

#[channel]
impl C {
    #[ws_handler]
    async fn swapped(&mut self, message: Ping, ctx: &Context) -> Pong {
        let _ = (message, ctx);
        Pong
    }

    #[ws_handler]
    async fn borrowed(&mut self, message: &Pong) -> Pong {
        let _ = message;
        Pong
    }
}

fn main() {}
