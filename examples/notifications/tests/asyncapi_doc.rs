//! The committed `asyncapi.json` is this app's current document, every
//! example in it decodes, and the server serves the same document.

chanx_testing::asyncapi_tests!(
    chanx_example_notifications::app(),
    committed = concat!(env!("CARGO_MANIFEST_DIR"), "/asyncapi.json"),
    refresh = "cargo run -p chanx-example-notifications -- --emit-asyncapi examples/notifications/asyncapi.json",
);
