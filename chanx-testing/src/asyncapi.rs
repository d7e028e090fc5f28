//! Checks for an app's AsyncAPI document.

use std::path::Path;

use chanx_core::Router;
use chanx_core::asyncapi::check_examples;

/// Asserts that the file at `committed` holds `router`'s current AsyncAPI
/// document, and that every documented example decodes into its Rust type.
///
/// # Panics
///
/// When the router has no [`with_asyncapi`](Router::with_asyncapi) settings,
/// when the file is missing or stale (the message names `refresh`, the
/// command that rewrites it), or when an example does not decode.
pub fn assert_asyncapi_current(router: &Router, committed: impl AsRef<Path>, refresh: &str) {
    let Some(current) = router.asyncapi_json() else {
        panic!("the router has no AsyncAPI settings: call Router::with_asyncapi");
    };
    let committed = committed.as_ref();
    let on_disk = std::fs::read_to_string(committed).unwrap_or_default();
    assert!(
        on_disk == current,
        "{} is stale (or missing): the code's AsyncAPI document has changed.\nRefresh it with:\n\n    {refresh}\n",
        committed.display()
    );
    if let Some(api) = router.asyncapi()
        && let Err(failures) = check_examples(api, router)
    {
        panic!(
            "AsyncAPI examples that do not decode:\n{}",
            failures.join("\n")
        );
    }
}

/// Asserts that a server running `router` serves, at `GET /asyncapi.json`,
/// the document [`Router::asyncapi_json`] gives (with configured servers,
/// byte for byte).
///
/// # Panics
///
/// When the server cannot start, the request fails, or the documents differ.
pub async fn assert_asyncapi_served(router: Router) {
    let expected = router.asyncapi_json();
    let server = crate::TestServer::start(router)
        .await
        .unwrap_or_else(|error| panic!("cannot start a test server: {error}"));
    let (status, body) = crate::http_get(server.addr(), "/asyncapi.json")
        .await
        .unwrap_or_else(|error| panic!("GET /asyncapi.json failed: {error}"));
    assert_eq!(status, 200, "GET /asyncapi.json");
    assert_eq!(
        Some(body),
        expected,
        "the served document differs from the emitted one"
    );
    if let Err(error) = server.stop().await {
        panic!("the test server failed: {error}");
    }
}

/// The two AsyncAPI tests an app with a committed `asyncapi.json` wants:
/// the file is current (and its examples decode), and the server serves the
/// same document. Needs `tokio` (feature `macros`) in dev-dependencies.
///
/// ```ignore
/// chanx_testing::asyncapi_tests!(
///     my_app::app(),
///     committed = concat!(env!("CARGO_MANIFEST_DIR"), "/asyncapi.json"),
///     refresh = "cargo run -p my-app -- --emit-asyncapi asyncapi.json",
/// );
/// ```
#[macro_export]
macro_rules! asyncapi_tests {
    ($app:expr, committed = $committed:expr, refresh = $refresh:expr $(,)?) => {
        #[test]
        fn committed_asyncapi_document_is_current() {
            $crate::assert_asyncapi_current(&$app, $committed, $refresh);
        }

        #[tokio::test]
        async fn the_server_serves_the_same_asyncapi_document() {
            $crate::assert_asyncapi_served($app).await;
        }
    };
}
