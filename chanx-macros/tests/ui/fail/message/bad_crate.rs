use chanx_core::Message;

#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, Message)]
#[message(action = "a", crate = "not a path")]
struct BadCrate;

fn main() {}
