//! A renamed dependency: generated code finds the runtime through
//! `crate = "…"`.

extern crate chanx_core as my_chanx;

use my_chanx::messages::{Ping, Pong};
use my_chanx::{Message, channel};

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, Message)]
#[message(action = "hello", crate = "my_chanx")]
struct Hello {
    name: String,
}

#[derive(Default)]
struct Greeter;

#[channel(crate = "my_chanx")]
impl Greeter {
    #[ws_handler]
    async fn hello(&mut self, message: Hello) -> Hello {
        message
    }

    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn main() {
    let _ = <Greeter as my_chanx::Consumer>::CHANNEL;
}
