#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "ping")]
struct OtherPing;

#[derive(Message)]
enum Twice {
    Ping(Ping),
    Other(OtherPing),
}

fn main() {
    let _ = Pong;
}
