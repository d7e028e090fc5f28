//! The committed TypeScript client in `client/` is what `chanx typescript`
//! generates from this app's current AsyncAPI document: change a message
//! and this fails until the client is refreshed.

chanx_cli::typescript_client_test!(
    chanx_example_topics::app(),
    dir = concat!(env!("CARGO_MANIFEST_DIR"), "/client"),
    refresh = "cargo run -p chanx-cli -- typescript examples/topics/asyncapi.json --out examples/topics/client",
);
