//! Clients that break the rules, over real TCP against a real server with
//! tight limits: every limit answers with its close code or HTTP status,
//! and the wrong thing (an idle close of a live client, a lost event) does
//! not happen. Memory bounds are proven against the example binaries (see
//! `examples/*/tests/adversarial.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_core::CloseCode;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chanx_core::http::{HttpRequest, HttpResponse};
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, FanoutLimit, Message, RateLimit, Router, ServerConfig, channel};
use chanx_testing::raw::{RawClient, opcode, upgrade_request};
use chanx_testing::{Communicator, TestServer};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "slow")]
struct Slow(u64);

#[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "done")]
struct Done(u64);

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "shout")]
struct Shout(String);

#[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "heard")]
struct Heard(String);

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "alert")]
struct Alert(u64);

#[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "alerted")]
struct Alerted(u64);

#[derive(Default)]
struct Target;

#[channel(groups = ["all"])]
impl Target {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }

    /// Takes `n` milliseconds.
    #[ws_handler]
    async fn slow(&mut self, message: Slow) -> Done {
        tokio::time::sleep(Duration::from_millis(message.0)).await;
        Done(message.0)
    }

    /// To everyone else.
    #[ws_handler(output = Heard)]
    async fn shout(
        &mut self,
        ctx: &Context,
        message: Shout,
    ) -> Result<(), chanx_core::layer::LayerError> {
        ctx.broadcast(&Heard(message.0)).exclude_sender().await
    }

    #[event_handler]
    async fn alert(&mut self, event: Alert) -> Alerted {
        Alerted(event.0)
    }
}

async fn accept(request: HttpRequest) -> HttpResponse {
    match request.json::<serde_json::Value>() {
        Ok(_) => HttpResponse::status(StatusCode::ACCEPTED),
        Err(error) => error.into(),
    }
}

/// Takes 300 ms, then sends an event.
async fn slow_event(request: HttpRequest) -> HttpResponse {
    tokio::time::sleep(Duration::from_millis(300)).await;
    match request.layer().send_event("all", &Alert(99)).await {
        Ok(()) => HttpResponse::status(StatusCode::ACCEPTED),
        Err(error) => HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

fn app() -> Router {
    Router::new()
        .route::<Target>("/ws")
        .http(Method::POST, "/hook", accept)
        .http(Method::POST, "/slow-event", slow_event)
        .http(Method::GET, "/health", |_request: HttpRequest| async {
            HttpResponse::text(StatusCode::OK, "ok")
        })
}

/// The two ways in: chanx's own server, and a chanx router merged into an
/// axum app served by `axum::serve`. Every test here runs on both.
#[derive(Debug, Clone, Copy)]
enum Host {
    Standalone,
    Axum,
    /// An axum app served by chanx's `Server::serve_axum`.
    ServeAxum,
}

async fn serve(host: Host, config: ServerConfig) -> TestServer {
    let router = app().with_config(config);
    match host {
        Host::Standalone => TestServer::start(router).await.unwrap(),
        Host::Axum => TestServer::start_axum(router).await.unwrap(),
        Host::ServeAxum => TestServer::start_serve_axum(router).await.unwrap(),
    }
}

/// Runs each named test on every way in: `standalone::name`,
/// `axum::name` (`axum::serve`) and `serve_axum::name` (an axum app served
/// by chanx's `Server::serve_axum`).
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
        mod serve_axum {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Host::ServeAxum).await;
                }
            )*
        }
    };
}

on_both_paths!(
    a_ping_flood_is_closed_with_1008,
    a_message_flood_is_refused_then_closed,
    client_pings_do_not_keep_a_dead_reader_alive,
    a_long_handler_never_causes_an_idle_close,
    an_unfinished_message_is_closed_at_its_deadline,
    each_client_address_has_a_cap,
    oversized_headers_get_431,
    foreign_browser_origins_are_refused_by_default,
    http_routes_have_a_body_limit_a_media_type_and_a_rate_limit,
    events_sent_before_shutdown_are_delivered_before_1001,
    a_route_in_progress_at_shutdown_still_delivers_its_event,
    a_broadcast_burst_throttles_its_sender_not_the_readers,
);

async fn raw(server: &TestServer) -> RawClient {
    RawClient::connect(server.addr(), "/ws", &[]).await.unwrap()
}

async fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    (status, response)
}

fn post(path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut head = String::new();
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Pings flood: they count against the rate limit (no pong past it) and a
/// flood is closed with 1008, even from a client that never reads.
async fn a_ping_flood_is_closed_with_1008(host: Host) {
    let server = serve(
        host,
        ServerConfig::new().rate_limit(Some(RateLimit::new(1000.0, 200))),
    )
    .await;
    let mut client = raw(&server).await;
    let mut flood = Vec::new();
    for _ in 0..5000 {
        flood.extend_from_slice(&chanx_testing::raw::frame(true, opcode::PING, &[7; 125]));
    }
    // The server may close before reading it all; that is the point.
    let _ = client.write_raw(&flood).await;
    let closed = client
        .read_until_close(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(closed.code, Some(1008), "{closed:?}");
    assert_eq!(closed.reason, "rate limit exceeded");
    let pongs = closed
        .frames
        .iter()
        .filter(|frame| frame.opcode == opcode::PONG)
        .count();
    assert!(pongs <= 200, "pongs past the limit: {pongs}");
    server.stop().await.unwrap();
}

/// A sustained flood of messages gets 429 frames and then 1008, although
/// tokens keep trickling in (the old limiter reset on every refill).
async fn a_message_flood_is_refused_then_closed(host: Host) {
    let server = serve(
        host,
        ServerConfig::new().rate_limit(Some(RateLimit::new(1000.0, 200))),
    )
    .await;
    let mut client = raw(&server).await;
    let frame = chanx_testing::raw::frame(true, opcode::TEXT, br#"{"action":"ping"}"#);
    let started = Instant::now();
    let mut sent = 0;
    // Paced at roughly 20,000 a second for up to 3 s: far over 1000/s.
    while started.elapsed() < Duration::from_secs(3) {
        let mut burst = Vec::new();
        for _ in 0..20 {
            burst.extend_from_slice(&frame);
        }
        if client.write_raw(&burst).await.is_err() {
            break;
        }
        sent += 20;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let closed = client
        .read_until_close(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(closed.code, Some(1008), "after {sent} frames: {closed:?}");
    let refusals = closed
        .frames
        .iter()
        .filter(|frame| frame.text().contains("\"status_code\":429"))
        .count();
    assert!(refusals >= 1, "a 429 comes first");
    server.stop().await.unwrap();
}

/// A client's own pings are not life: one that pings but never answers the
/// server's pings is closed as idle.
async fn client_pings_do_not_keep_a_dead_reader_alive(host: Host) {
    let server = serve(
        host,
        ServerConfig::new()
            .ping_interval(Duration::from_millis(100))
            .idle_timeout(Duration::from_millis(400)),
    )
    .await;
    let mut client = raw(&server).await;
    let started = Instant::now();
    let closed = loop {
        let _ = client.send_frame(true, opcode::PING, b"still here").await;
        match client.read_frame(Duration::from_millis(50)).await {
            Ok(Some(frame)) if frame.opcode == opcode::CLOSE => {
                break u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
            }
            Ok(None) => panic!("dropped without a close frame"),
            _ => {}
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never closed");
    };
    assert_eq!(closed, 1001);
    server.stop().await.unwrap();
}

/// A handler longer than the idle timeout does not get a live client
/// closed: pings and pongs go on while it runs.
async fn a_long_handler_never_causes_an_idle_close(host: Host) {
    let server = serve(
        host,
        ServerConfig::new()
            .ping_interval(Duration::from_millis(100))
            .idle_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut client = server.connect("/ws").await.unwrap();
    client.send_message(&Slow(1200)).await.unwrap();
    // The client library answers the server's pings while it waits here.
    assert_eq!(client.receive_message::<Done>().await.unwrap(), Done(1200));
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    server.stop().await.unwrap();
}

/// A fragmented message kept open with pongs is closed at the message
/// deadline.
async fn an_unfinished_message_is_closed_at_its_deadline(host: Host) {
    let server = serve(
        host,
        ServerConfig::new().message_timeout(Duration::from_millis(500)),
    )
    .await;
    let mut client = raw(&server).await;
    client
        .send_frame(false, opcode::TEXT, br#"{"action":"ping","pad":""#)
        .await
        .unwrap();
    let started = Instant::now();
    let closed = loop {
        let _ = client.send_frame(true, opcode::PONG, b"").await;
        let _ = client
            .send_frame(false, opcode::CONTINUATION, b"xxxxxxxx")
            .await;
        if let Ok(Some(frame)) = client.read_frame(Duration::from_millis(50)).await
            && frame.opcode == opcode::CLOSE
        {
            break frame;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never closed");
    };
    assert_eq!(
        u16::from_be_bytes([closed.payload[0], closed.payload[1]]),
        1008
    );
    assert_eq!(&closed.payload[2..], b"message not completed in time");
    assert!(started.elapsed() >= Duration::from_millis(400));
    server.stop().await.unwrap();
}

/// Past the per-address cap a connection gets 503; another address is
/// still served.
async fn each_client_address_has_a_cap(host: Host) {
    let server = serve(host, ServerConfig::new().max_connections_per_address(3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(raw(&server).await);
    }
    match RawClient::upgrade(server.addr(), &upgrade_request("/ws", &[]))
        .await
        .unwrap()
    {
        Err(refused) => assert_eq!(refused.status, 503, "{}", refused.response),
        Ok(_) => panic!("a fourth connection from the same address was accepted"),
    }
    // 127.0.0.2 is another address on the loopback interface.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(server.addr()).await.unwrap();
    other
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    other.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // A freed place can be taken again.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        if let Ok(Ok(client)) =
            RawClient::upgrade(server.addr(), &upgrade_request("/ws", &[])).await
        {
            again = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some());
    server.stop().await.unwrap();
}

/// Request heads over the header limit get 431, upgrades included.
async fn oversized_headers_get_431(host: Host) {
    let server = serve(host, ServerConfig::new()).await;
    let filler = "f".repeat(8 * 1024);
    let request = upgrade_request(
        "/ws",
        &[
            ("x-a", filler.as_str()),
            ("x-b", filler.as_str()),
            ("x-c", filler.as_str()),
        ],
    );
    match RawClient::upgrade(server.addr(), &request).await.unwrap() {
        Err(refused) => assert_eq!(refused.status, 431, "{}", refused.response),
        Ok(_) => panic!("24 KiB of headers were accepted"),
    }
    // Just under the limit is fine.
    let request = upgrade_request("/ws", &[("x-a", &filler[..6 * 1024])]);
    assert!(
        RawClient::upgrade(server.addr(), &request)
            .await
            .unwrap()
            .is_ok()
    );
    server.stop().await.unwrap();
}

/// A browser origin must be the request's own host unless listed.
async fn foreign_browser_origins_are_refused_by_default(host: Host) {
    let server = serve(host, ServerConfig::new()).await;
    let addr = server.addr();
    let foreign = upgrade_request("/ws", &[("Origin", "https://evil.example")]);
    match RawClient::upgrade(addr, &foreign).await.unwrap() {
        Err(refused) => assert_eq!(refused.status, 403),
        Ok(_) => panic!("a foreign origin opened a socket"),
    }
    let same = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    assert!(RawClient::upgrade(addr, &same).await.unwrap().is_ok());
    // No Origin: not a browser, accepted.
    assert!(
        RawClient::upgrade(addr, &upgrade_request("/ws", &[]))
            .await
            .unwrap()
            .is_ok()
    );
    // The same policy covers HTTP routes that change state.
    let (status, _) = http(
        addr,
        &post(
            "/hook",
            &[
                ("Origin", "https://evil.example"),
                ("Content-Type", "application/json"),
            ],
            "{}",
        ),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(
        addr,
        &post("/hook", &[("Content-Type", "application/json")], "{}"),
    )
    .await;
    assert_eq!(status, 202);
    server.stop().await.unwrap();
}

/// HTTP routes: a body limit (413), JSON only where JSON is parsed (415),
/// and a per-address rate limit (429).
async fn http_routes_have_a_body_limit_a_media_type_and_a_rate_limit(host: Host) {
    let server = serve(
        host,
        ServerConfig::new()
            .max_body_size(1024)
            .http_rate_limit(Some(RateLimit::new(0.5, 6))),
    )
    .await;
    let addr = server.addr();
    let json = [("Content-Type", "application/json")];
    let big = format!("\"{}\"", "x".repeat(2000));
    assert_eq!(http(addr, &post("/hook", &json, &big)).await.0, 413);
    assert_eq!(
        http(
            addr,
            &post("/hook", &[("Content-Type", "text/plain")], "{}")
        )
        .await
        .0,
        415
    );
    assert_eq!(http(addr, &post("/hook", &json, "{")).await.0, 400);
    assert_eq!(http(addr, &post("/hook", &json, "{}")).await.0, 202);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            http(
                addr,
                "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    server.stop().await.unwrap();
}

/// Events sent before shutdown reach their sockets before the 1001 close;
/// once shutdown has begun, HTTP routes answer 503.
async fn events_sent_before_shutdown_are_delivered_before_1001(host: Host) {
    let server = serve(host, ServerConfig::new()).await;
    let layer = server.layer().clone();
    let mut client = server.connect("/ws").await.unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    for seq in 0..200 {
        layer.send_event("all", &Alert(seq)).await.unwrap();
    }
    server.stop().await.unwrap();
    for seq in 0..200 {
        assert_eq!(
            client.receive_message::<Alerted>().await.unwrap(),
            Alerted(seq)
        );
    }
    client.assert_closed(CloseCode::GOING_AWAY).await;
}

/// An HTTP route in progress when shutdown begins finishes, and the event
/// it sends reaches the socket before the 1001 close.
async fn a_route_in_progress_at_shutdown_still_delivers_its_event(host: Host) {
    let server = serve(host, ServerConfig::new()).await;
    let addr = server.addr();
    let mut client = server.connect("/ws").await.unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    let posting = tokio::spawn(async move {
        http(
            addr,
            &post("/slow-event", &[("Content-Type", "application/json")], "{}"),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await.unwrap();
    assert_eq!(posting.await.unwrap().0, 202);
    assert_eq!(
        client.receive_message::<Alerted>().await.unwrap(),
        Alerted(99)
    );
    client.assert_closed(CloseCode::GOING_AWAY).await;
}

/// One member's burst of broadcasts is charged to it: it is slowed down,
/// and a member reading as fast as it can is never closed as too slow.
async fn a_broadcast_burst_throttles_its_sender_not_the_readers(host: Host) {
    let server = serve(
        host,
        ServerConfig::new()
            .rate_limit(None)
            .outbound_queue_bytes(256 * 1024)
            .fanout_limit(Some(FanoutLimit::new(4 << 20, 128 << 10))),
    )
    .await;
    let layer = server.layer().clone();
    let mut reader = server.connect("/ws").await.unwrap();
    reader.send_message(&Ping).await.unwrap();
    assert_eq!(reader.receive_message::<Pong>().await.unwrap(), Pong);
    let mut sender = raw(&server).await;
    let text = "g".repeat(60 * 1024);
    let frame = chanx_testing::raw::frame(
        true,
        opcode::TEXT,
        format!(r#"{{"action":"shout","payload":"{text}"}}"#).as_bytes(),
    );
    let count = 150; // 150 × 60 KiB to one reader ≈ 9 MiB of fan-out
    let flood = tokio::spawn(async move {
        for _ in 0..count {
            if sender.write_raw(&frame).await.is_err() {
                break;
            }
        }
        sender
    });
    let mut first = None;
    let mut received = 0;
    while received < count {
        match reader.receive_json().await {
            Ok(frame) if frame["action"] == "heard" => {
                first.get_or_insert_with(Instant::now);
                received += 1;
            }
            Ok(other) => panic!("unexpected {other}"),
            Err(error) => panic!("the reader was cut off after {received}: {error}"),
        }
    }
    let spread = first.map(|first| first.elapsed()).unwrap_or_default();
    let _sender = flood.await.unwrap();
    // 9 MiB at 4 MiB/s after a 128 KiB burst: the sender was held to its
    // budget (a lower bound, which a slow machine only makes larger).
    assert!(spread >= Duration::from_millis(1500), "{spread:?}");
    assert_eq!(layer.stats().slow_disconnects, 0);
    server.stop().await.unwrap();
}

/// The open-file soft limit is raised to the hard limit at start.
#[test]
fn the_open_file_limit_is_raised() {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    if hard < 2048 {
        return; // nothing to prove on a machine this constrained
    }
    rlimit::setrlimit(rlimit::Resource::NOFILE, 1024, hard).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = serve(Host::Standalone, ServerConfig::new().max_connections(100)).await;
        // Started: the limit is raised before the first accept.
        let _client = Communicator::connect_tcp(server.addr(), "/ws")
            .await
            .unwrap();
        server.stop().await.unwrap();
    });
    let (raised, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert_eq!(raised, hard);
    rlimit::setrlimit(rlimit::Resource::NOFILE, soft.max(1024), hard).unwrap();
}
