#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
struct NoAction {
    text: String,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "a", kind = "b")]
struct UnknownKey;

#[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "")]
struct EmptyAction;

fn main() {
    let _ = (Ping, Pong);
}
