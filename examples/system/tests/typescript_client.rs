//! The committed TypeScript client in `client/` is what `chanx typescript`
//! generates from this app's current AsyncAPI document: change a message
//! and this fails until the client is refreshed.

#[test]
fn committed_typescript_client_is_current() {
    let document = chanx_example_system::app()
        .asyncapi_json()
        .expect("the example has an AsyncAPI document");
    let document: serde_json::Value =
        serde_json::from_str(&document).expect("the document is JSON");
    chanx_cli::assert_current(
        &document,
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/client")),
        "cargo run -p chanx-cli -- typescript examples/system/asyncapi.json --out examples/system/client",
    );
}
