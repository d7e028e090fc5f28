#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Message)]
enum NotNewtypes {
    Ping(Ping),
    Named { pong: Pong },
    Unit,
}

#[derive(Message)]
enum NotMessages {
    Text(String),
}

#[derive(Message)]
#[message(action = "x")]
enum WithAction {
    Ping(Ping),
}

fn main() {}
