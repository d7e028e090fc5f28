#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(schemars::JsonSchema, Message)]
#[message(action = "plain")]
struct Plain {
    text: String,
}

fn main() {
    let _ = (Ping, Pong);
}
