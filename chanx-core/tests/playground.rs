//! The playground and the docs page as the server delivers them, over real
//! TCP, standalone and inside axum: the pages, their assets and headers,
//! off unless asked, and the router's checks. (The pages at work in a
//! browser: `tests/browser/pages.py`, run by scripts/test.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use chanx_core::asyncapi::AsyncApi;
use chanx_core::http::{HttpRequest, HttpResponse};
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Problem, Router, channel};
use chanx_testing::TestServer;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Health;

#[channel(name = "health")]
impl Health {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn app() -> Router {
    Router::new()
        .route::<Health>("/ws/health")
        .with_asyncapi(AsyncApi::new("Health", "1.0.0"))
        .with_playground()
}

/// The status line, the headers (lowercase names) and the body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

async fn pages_assets_and_headers(server: &TestServer) {
    let addr = server.addr();
    let (status, headers, body) = request(addr, "GET", "/playground").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&headers, "content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    assert!(body.contains(r#"data-asyncapi="/asyncapi.json""#));
    // Nothing from another host: every script and stylesheet is ours.
    let foreign: Vec<&str> = body
        .split(['"', '\''])
        .filter(|part| part.contains("://"))
        .collect();
    assert!(
        foreign.is_empty(),
        "the page names another host: {foreign:?}"
    );

    let (status, headers, body) = request(addr, "GET", "/asyncapi").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(body.contains(r#"src="/playground/docs.js""#));

    for (asset, kind) in [
        ("style.css", "text/css; charset=utf-8"),
        ("common.js", "text/javascript; charset=utf-8"),
        ("playground.js", "text/javascript; charset=utf-8"),
        ("docs.js", "text/javascript; charset=utf-8"),
    ] {
        let (status, headers, body) = request(addr, "GET", &format!("/playground/{asset}")).await;
        assert_eq!(
            (status, header(&headers, "content-type")),
            (200, Some(kind)),
            "{asset}"
        );
        assert!(body.len() > 1000, "{asset} is {} bytes", body.len());
    }
    let (status, _, body) = request(addr, "HEAD", "/playground").await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, headers, _) = request(addr, "POST", "/playground").await;
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
    assert_eq!(request(addr, "GET", "/playground/missing.js").await.0, 404);
    // The document the pages read is there too.
    assert_eq!(request(addr, "GET", "/asyncapi.json").await.0, 200);
}

#[tokio::test]
async fn standalone_serves_the_pages() {
    let server = TestServer::start(app()).await.unwrap();
    pages_assets_and_headers(&server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn axum_serves_the_pages() {
    let server = TestServer::start_axum(app()).await.unwrap();
    pages_assets_and_headers(&server).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_pages_are_off_unless_asked_and_can_move() {
    let plain = Router::new()
        .route::<Health>("/ws/health")
        .with_asyncapi(AsyncApi::new("Health", "1.0.0"));
    assert_eq!(plain.playground_path(), None);
    let server = TestServer::start(plain).await.unwrap();
    assert_eq!(request(server.addr(), "GET", "/playground").await.0, 404);
    assert_eq!(request(server.addr(), "GET", "/asyncapi").await.0, 404);
    server.stop().await.unwrap();

    let moved = Router::new()
        .route::<Health>("/ws/health")
        .with_asyncapi(AsyncApi::new("Health", "1.0.0"))
        .with_playground_at("/tools/ws");
    let server = TestServer::start(moved).await.unwrap();
    let (status, _, body) = request(server.addr(), "GET", "/tools/ws").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"src="/tools/ws/playground.js""#));
    assert_eq!(
        request(server.addr(), "GET", "/tools/ws/common.js").await.0,
        200
    );
    assert_eq!(request(server.addr(), "GET", "/playground").await.0, 404);
    assert_eq!(request(server.addr(), "GET", "/asyncapi").await.0, 200);
    server.stop().await.unwrap();
}

#[test]
#[should_panic(expected = "playground path \"playground\"")]
fn a_bad_path_is_refused_when_the_router_is_built() {
    let _ = Router::new().with_playground_at("playground");
}

async fn busy(_: HttpRequest) -> HttpResponse {
    HttpResponse::text(http::StatusCode::OK, "mine")
}

#[test]
fn validate_names_what_the_pages_need() {
    let problems = Router::new()
        .route::<Health>("/ws/health")
        .with_playground()
        .validate()
        .unwrap_err();
    assert_eq!(problems.problems(), [Problem::PlaygroundWithoutAsyncApi]);

    let problems = app()
        .http(Method::GET, "/asyncapi", busy)
        .validate()
        .unwrap_err();
    assert_eq!(
        problems.problems(),
        [Problem::PlaygroundPathTaken {
            route: "/asyncapi".into()
        }]
    );
    app().validate().unwrap();
}
