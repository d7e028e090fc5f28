#![allow(unused_imports)]
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, channel};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "wrap")]
struct Wrap<T> {
    inner: T,
}

fn main() {
    let _ = (Ping, Pong);
}
