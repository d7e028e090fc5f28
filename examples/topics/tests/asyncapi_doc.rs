//! The committed `asyncapi.json` is this app's current document, every
//! example in it decodes, and the server serves the same document.

chanx_testing::asyncapi_tests!(
    chanx_example_topics::app(),
    committed = concat!(env!("CARGO_MANIFEST_DIR"), "/asyncapi.json"),
    refresh = "cargo run -p chanx-example-topics -- --emit-asyncapi examples/topics/asyncapi.json",
);
