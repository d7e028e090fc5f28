//! The committed `asyncapi.json` is this app's current document, every
//! example in it decodes, and the server serves the same document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_example_system::app;
use chanx_testing::{TestServer, assert_asyncapi_current, http_get};

const REFRESH: &str =
    "cargo run -p chanx-example-system -- --emit-asyncapi examples/system/asyncapi.json";

#[test]
fn committed_document_is_current() {
    assert_asyncapi_current(
        &app(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/asyncapi.json"),
        REFRESH,
    );
}

#[tokio::test]
async fn the_server_serves_the_same_document() {
    let server = TestServer::start(app()).await.unwrap();
    let (status, body) = http_get(server.addr(), "/asyncapi.json").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(Some(body), app().asyncapi_json());
    server.stop().await.unwrap();
}
