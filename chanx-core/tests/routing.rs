//! Routing over real TCP, on both ways in (the standalone server and
//! axum): nested and merged routers, typed path parameters with their
//! close code and HTTP status, trailing slashes, conflicts reported when
//! the router is built, and every validation problem at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use chanx_core::auth::{BearerToken, IsAuthenticated, TokenVerifier};
use chanx_core::http::{HttpRequest, HttpResponse};
use chanx_core::messages::{Ping, Pong};
use chanx_core::{CloseCode, Context, Message, Problem, Reject, Router, channel};
use chanx_testing::raw::{RawClient, upgrade_request};
use chanx_testing::{Communicator, ConnectError, TestServer};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "item")]
struct Item {
    id: u64,
    peer: bool,
}

/// Opens `/items/{id}` with a numeric id only.
struct ItemConsumer {
    id: u64,
}

#[channel]
impl ItemConsumer {
    #[on_connect]
    async fn new(ctx: &Context) -> Result<Self, Reject> {
        Ok(Self {
            id: ctx.param_as::<u64>("id")?,
        })
    }

    #[ws_handler]
    async fn ping(&mut self, ctx: &Context, _: Ping) -> Item {
        Item {
            id: self.id,
            peer: ctx.peer_addr().is_some(),
        }
    }
}

#[derive(Default)]
struct Echo;

#[channel]
impl Echo {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[derive(Clone)]
struct Tokens;

impl TokenVerifier for Tokens {
    type Identity = String;

    async fn verify(&self, token: &str, _ctx: &Context) -> Option<String> {
        (token == "ok").then(|| "user".to_owned())
    }
}

#[derive(Default)]
struct Private;

#[channel(authenticator = BearerToken<Tokens>, permissions = [IsAuthenticated])]
impl Private {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

/// `GET /orders/{n}`: the number doubled, or 400 when it is not one.
async fn order(request: HttpRequest) -> HttpResponse {
    match request.param_as::<i64>("n") {
        Ok(n) => HttpResponse::text(StatusCode::OK, (n * 2).to_string()),
        Err(error) => error.into(),
    }
}

/// An API router nested under `/api`, merged with a second router that
/// brings its own authenticator.
fn app() -> Router {
    let api =
        Router::new()
            .route::<ItemConsumer>("/items/{id}")
            .http(Method::GET, "/orders/{n}", order);
    let private = Router::new()
        .route::<Private>("/private")
        .with_authenticator(BearerToken::new(Tokens));
    Router::new()
        .route::<Echo>("/echo/")
        .nest("/api", api)
        .merge(private)
}

#[derive(Debug, Clone, Copy)]
enum Host {
    Standalone,
    Axum,
}

async fn serve(host: Host) -> TestServer {
    let router = app();
    router.validate().unwrap();
    match host {
        Host::Standalone => TestServer::start(router).await.unwrap(),
        Host::Axum => TestServer::start_axum(router).await.unwrap(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

macro_rules! on_both_paths {
    ($($name:ident),* $(,)?) => {
        mod standalone {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Host::Standalone).await;
                }
            )*
        }
        mod axum {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Host::Axum).await;
                }
            )*
        }
    };
}

on_both_paths!(
    nested_routes_answer_under_their_prefix,
    a_parameter_that_does_not_parse_is_refused,
    trailing_slashes_are_ignored_both_ways,
    a_merged_router_keeps_its_authenticator,
);

async fn nested_routes_answer_under_their_prefix(host: Host) {
    let server = serve(host).await;
    let mut client = server.connect("/api/items/42").await.unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(
        client.receive_message::<Item>().await.unwrap(),
        Item { id: 42, peer: true }
    );
    client.disconnect().await.unwrap();
    assert_eq!(
        get(server.addr(), "/api/orders/21").await,
        (200, "42".into())
    );
    // The nested router's own paths do not exist outside the prefix.
    match server.connect("/items/42").await {
        Err(ConnectError::Refused { status, .. }) => assert_eq!(status, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    assert_eq!(get(server.addr(), "/orders/21").await.0, 404);
    server.stop().await.unwrap();
}

async fn a_parameter_that_does_not_parse_is_refused(host: Host) {
    let server = serve(host).await;
    let mut client = server.connect("/api/items/forty-two").await.unwrap();
    match client.receive_text().await {
        Err(chanx_testing::ReceiveError::Closed { code, reason }) => {
            assert_eq!(code, Some(CloseCode::POLICY));
            assert!(
                reason.starts_with("path parameter id = \"forty-two\" is not a valid u64"),
                "{reason}"
            );
            assert!(reason.len() <= 123);
        }
        other => panic!("expected a 1008 close, got {other:?}"),
    }
    // A long value still makes a close reason that fits a frame.
    let long = "9".repeat(200);
    let mut client = server.connect(&format!("/api/items/{long}")).await.unwrap();
    client.assert_closed(CloseCode::POLICY).await;
    let (status, body) = get(server.addr(), "/api/orders/x").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("path parameter n = \"x\" is not a valid i64"),
        "{body}"
    );
    server.stop().await.unwrap();
}

async fn trailing_slashes_are_ignored_both_ways(host: Host) {
    let server = serve(host).await;
    // Routed as "/echo/", requested with and without the slash.
    for path in ["/echo", "/echo/"] {
        let mut client = server.connect(path).await.unwrap();
        client.send_message(&Ping).await.unwrap();
        assert_eq!(
            client.receive_message::<Pong>().await.unwrap(),
            Pong,
            "{path}"
        );
        client.disconnect().await.unwrap();
    }
    // Routed without, requested with.
    let mut client = server.connect("/api/items/7/").await.unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Item>().await.unwrap().id, 7);
    client.disconnect().await.unwrap();
    assert_eq!(
        get(server.addr(), "/api/orders/1/").await,
        (200, "2".into())
    );
    // One slash only: "//" is another path.
    match RawClient::upgrade(server.addr(), &upgrade_request("/echo//", &[]))
        .await
        .unwrap()
    {
        Err(refused) => assert_eq!(refused.status, 404),
        Ok(_) => panic!("/echo// was routed"),
    }
    server.stop().await.unwrap();
}

async fn a_merged_router_keeps_its_authenticator(host: Host) {
    let server = serve(host).await;
    let mut client = server.connect("/private?token=ok").await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap()["payload"]["status_code"],
        200
    );
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    let mut refused = server.connect("/private?token=no").await.unwrap();
    refused.assert_closed(CloseCode::UNAUTHORIZED).await;
    server.stop().await.unwrap();
}

fn panic_message(run: impl FnOnce()) -> String {
    let error = std::panic::catch_unwind(AssertUnwindSafe(run)).expect_err("expected a panic");
    error
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| error.downcast_ref::<&str>().map(|text| (*text).to_owned()))
        .unwrap_or_default()
}

#[test]
fn conflicting_routes_are_reported_naming_both() {
    let message = panic_message(|| {
        let _ = Router::new()
            .route::<Echo>("/ws/{room}")
            .route::<Echo>("/ws/{name}");
    });
    assert!(message.contains("\"/ws/{name}\""), "{message}");
    assert!(message.contains("\"/ws/{room}\""), "{message}");
    // Through nest too, with the nested path in full.
    let message = panic_message(|| {
        let _ = Router::new()
            .route::<Echo>("/api/echo")
            .nest("/api", Router::new().route::<Echo>("/echo/"));
    });
    assert!(message.contains("\"/api/echo\""), "{message}");
    // The same HTTP method and path twice.
    let message = panic_message(|| {
        let _ = Router::new()
            .http(Method::GET, "/a", order)
            .merge(Router::new().http(Method::GET, "/a/", order));
    });
    assert!(
        message.contains("GET \"/a\" is already registered"),
        "{message}"
    );
    // Bad patterns.
    let message = panic_message(|| {
        let _ = Router::new().route::<Echo>("/ws/{id}/{id}");
    });
    assert!(message.contains("appears twice"), "{message}");
    let message = panic_message(|| {
        let _ = Router::new().route::<Echo>("ws");
    });
    assert!(message.contains("must start with '/'"), "{message}");
}

/// A consumer whose group names a parameter its route lacks.
#[derive(Default)]
struct Grouped;

#[channel(groups = ["room_{room}"])]
impl Grouped {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[test]
fn validate_reports_every_problem() {
    let app = Router::new()
        .route::<Private>("/private")
        .route::<Grouped>("/grouped/{name}");
    let error = app.validate().unwrap_err();
    assert_eq!(error.problems().len(), 2, "{error}");
    assert!(matches!(
        error.problems()[0],
        Problem::MissingAuthenticator { consumer, .. } if consumer.ends_with("Private")
    ));
    assert!(matches!(
        &error.problems()[1],
        Problem::UnknownGroupParameter { template: "room_{room}", parameter, route, .. }
            if parameter == "room" && route == "/grouped/{name}"
    ));
    let text = error.to_string();
    assert!(
        text.contains("with_authenticator") && text.contains("{room}"),
        "{text}"
    );
}

/// The in-process client goes through the same service: a parameter that
/// does not parse is refused the same way, and an unknown path is a 404.
#[tokio::test]
async fn in_process_connections_take_the_same_path() {
    let app = app();
    let mut client = Communicator::connect(&app, "/api/items/x").await.unwrap();
    client.assert_closed(CloseCode::POLICY).await;
    match Communicator::connect(&app, "/nowhere").await {
        Err(ConnectError::Refused { status, .. }) => assert_eq!(status, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    let peer: SocketAddr = "203.0.113.9:4000".parse().unwrap();
    let mut client = Communicator::builder("/api/items/1")
        .peer(peer)
        .connect(&app)
        .await
        .unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(
        client.receive_message::<Item>().await.unwrap(),
        Item { id: 1, peer: true }
    );
}

/// `into_service()` mounted by hand: `route_service` at the path chanx
/// routes, and `nest_service` under a prefix (axum strips it, so the chanx
/// router routes the inner path).
#[tokio::test]
async fn the_service_mounts_with_route_service_and_nest_service() {
    let echo = Router::new().route::<Echo>("/echo").into_service();
    let nested = Router::new().route::<Echo>("/inner/{n}").into_service();
    let app = ::axum::Router::new()
        .route_service("/echo", echo)
        .nest_service("/nested", nested);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { ::axum::serve(listener, app).await });
    for path in ["/echo", "/nested/inner/3"] {
        let mut client = Communicator::connect_tcp(addr, path).await.unwrap();
        client.send_message(&Ping).await.unwrap();
        assert_eq!(
            client.receive_message::<Pong>().await.unwrap(),
            Pong,
            "{path}"
        );
        client.disconnect().await.unwrap();
    }
    match Communicator::connect_tcp(addr, "/nested/elsewhere").await {
        Err(ConnectError::Refused { status, .. }) => assert_eq!(status, 404),
        other => panic!("expected 404, got {other:?}"),
    }
}
