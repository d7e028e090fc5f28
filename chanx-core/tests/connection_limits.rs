//! Transport-level faults close only the faulty connection, with the right
//! code: 1009 for an oversized message, 1007 for a text frame that is not
//! UTF-8.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_core::CloseCode;
use std::time::{Duration, Instant};

use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, Router, ServerConfig, channel};
use chanx_testing::TestServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "big")]
struct Big(String);

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "flood")]
struct Flood(usize);

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "slow")]
struct Slow(u64);

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "done")]
struct Done(u64);

#[derive(Default)]
struct Echo;

#[channel]
impl Echo {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }

    /// Replies with `n` KiB, whatever the inbound limit.
    #[ws_handler]
    async fn big(&mut self, message: Big) -> Big {
        Big("z".repeat(message.0.len() * 1024))
    }

    /// Takes `n` milliseconds.
    #[ws_handler]
    async fn slow(&mut self, message: Slow) -> Done {
        tokio::time::sleep(Duration::from_millis(message.0)).await;
        Done(message.0)
    }

    /// Sends `n` frames of 64 KiB.
    #[ws_handler]
    async fn flood(&mut self, ctx: &Context, message: Flood) {
        let chunk = Big("f".repeat(64 * 1024));
        for _ in 0..message.0 {
            if ctx.send(&chunk).await.is_err() {
                return;
            }
        }
    }
}

#[tokio::test]
async fn oversized_message_closes_with_1009_over_tcp() {
    let server = TestServer::start(
        Router::new().route::<Echo>("/echo").with_config(
            ServerConfig::new()
                .max_message_size(16 * 1024)
                .max_frame_size(16 * 1024),
        ),
    )
    .await
    .unwrap();
    let mut bystander = server.connect("/echo").await.unwrap();
    let mut client = server.connect("/echo").await.unwrap();

    // Just under the limit is fine.
    let padding = "x".repeat(15 * 1024);
    client
        .send_text(format!(
            r#"{{"action":"ping","payload":null,"pad":"{padding}"}}"#
        ))
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null}"#
    );

    let _ = client.send_text("y".repeat(64 * 1024)).await;
    client.assert_closed(CloseCode::TOO_BIG).await;

    // Another client is untouched.
    bystander.send_message(&Ping).await.unwrap();
    assert_eq!(bystander.receive_message::<Pong>().await.unwrap(), Pong);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(Router::new().route::<Echo>("/echo"))
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut response = vec![0u8; 1024];
    let n = stream.read(&mut response).await.unwrap();
    let head = String::from_utf8_lossy(&response[..n]);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    // A masked text frame whose payload is not UTF-8.
    let payload = [0xff_u8, 0xfe, 0xfd];
    let mask = [1_u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).await.unwrap();
    let n = stream.read(&mut response).await.unwrap();
    // An unmasked close frame: 0x88, length, then the code.
    assert_eq!(response[0], 0x88, "{:?}", &response[..n]);
    assert_eq!(u16::from_be_bytes([response[2], response[3]]), 1007);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn replies_larger_than_the_inbound_limit_are_delivered() {
    let server = TestServer::start(
        Router::new().route::<Echo>("/echo").with_config(
            ServerConfig::new()
                .max_message_size(4096)
                .max_frame_size(4096),
        ),
    )
    .await
    .unwrap();
    let mut client = server.connect("/echo").await.unwrap();
    client.send_message(&Big("x".repeat(40))).await.unwrap();
    let reply: Big = client.receive_message().await.unwrap();
    assert_eq!(reply.0.len(), 40 * 1024);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_does_not_block_shutdown() {
    let server = TestServer::start(
        Router::new().route::<Echo>("/echo").with_config(
            ServerConfig::new()
                .write_timeout(Duration::from_millis(300))
                .outbound_queue_bytes(4 * 1024)
                .shutdown_timeout(Duration::from_secs(30)),
        ),
    )
    .await
    .unwrap();
    let mut reader = server.connect("/echo").await.unwrap();
    let mut stuck = server.connect("/echo").await.unwrap();
    // 64 MiB: far more than the loopback socket buffers hold.
    stuck.send_message(&Flood(1024)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Others are served meanwhile.
    reader.send_message(&Ping).await.unwrap();
    assert_eq!(reader.receive_message::<Pong>().await.unwrap(), Pong);
    let started = Instant::now();
    let stopping = tokio::spawn(server.stop());
    reader.assert_closed(CloseCode::GOING_AWAY).await;
    stopping.await.unwrap().unwrap();
    // The stuck connection was already gone: shutdown did not wait for it.
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "shutdown took {elapsed:?}"
    );
    drop(stuck);
}

async fn server_with(config: ServerConfig) -> TestServer {
    TestServer::start(Router::new().route::<Echo>("/echo").with_config(config))
        .await
        .unwrap()
}

#[tokio::test]
async fn upgrades_over_max_connections_get_503() {
    let server = server_with(ServerConfig::new().max_connections(2)).await;
    let first = server.connect("/echo").await.unwrap();
    let mut second = server.connect("/echo").await.unwrap();
    match server.connect("/echo").await {
        Err(chanx_testing::ConnectError::Refused { status, .. }) => assert_eq!(status, 503),
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    // The others are unaffected, and a freed place is reusable.
    second.send_message(&Ping).await.unwrap();
    assert_eq!(second.receive_message::<Pong>().await.unwrap(), Pong);
    first.disconnect().await.unwrap();
    let mut again = None;
    for _ in 0..50 {
        if let Ok(client) = server.connect("/echo").await {
            again = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = again.expect("a place frees up after a disconnect");
    again.send_message(&Ping).await.unwrap();
    assert_eq!(again.receive_message::<Pong>().await.unwrap(), Pong);
    server.stop().await.unwrap();
}

/// A peer that completes the handshake and then never reads nor answers.
async fn silent_peer(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    // Read exactly the response head, so what follows is WebSocket frames.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

#[tokio::test]
async fn dead_peers_are_pinged_then_closed_and_live_ones_stay() {
    use tokio::io::AsyncReadExt;
    let config = ServerConfig::new()
        .ping_interval(Duration::from_millis(100))
        .idle_timeout(Duration::from_millis(400));
    let server = server_with(config).await;
    let mut live = server.connect("/echo").await.unwrap();
    let mut silent = silent_peer(server.addr()).await;

    // The silent peer gets pings, then a 1001 close, then EOF; meanwhile the
    // live client keeps reading, which answers the pings.
    let mut received = Vec::new();
    let (read_all, live_quiet) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut received)),
        live.receive_nothing(Duration::from_millis(1200)),
    );
    assert!(read_all.is_ok(), "the server must drop a dead peer");
    live_quiet.unwrap();
    assert_eq!(
        received.first(),
        Some(&0x89),
        "a ping comes first: {received:?}"
    );
    let close = received
        .iter()
        .position(|byte| *byte == 0x88)
        .expect("a close frame");
    assert_eq!(
        u16::from_be_bytes([received[close + 2], received[close + 3]]),
        1001
    );
    assert!(String::from_utf8_lossy(&received[close + 4..]).contains("idle timeout"));

    // The live client answered every ping (its reads send the pongs).
    live.receive_nothing(Duration::from_millis(1200))
        .await
        .unwrap();
    live.send_message(&Ping).await.unwrap();
    assert_eq!(live.receive_message::<Pong>().await.unwrap(), Pong);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn over_the_rate_limit_frames_are_refused_then_the_connection_closes() {
    use chanx_core::RateLimit;
    let server = server_with(ServerConfig::new().rate_limit(Some(RateLimit::new(0.001, 5)))).await;
    let mut client = server.connect("/echo").await.unwrap();
    for _ in 0..5 {
        client.send_message(&Ping).await.unwrap();
    }
    for _ in 0..5 {
        assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    }
    client.send_message(&Ping).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        serde_json::json!({"action":"error","payload":{"status_code":429,"detail":"Rate limit exceeded: slow down."}})
    );
    // It goes on: after `burst` refusals in a row, 1008.
    for _ in 0..10 {
        let _ = client.send_message(&Ping).await;
    }
    let mut refusals = 1;
    loop {
        match client.receive_json().await {
            Ok(frame) => {
                assert_eq!(frame["payload"]["status_code"], 429);
                refusals += 1;
            }
            Err(chanx_testing::ReceiveError::Closed { code, reason }) => {
                assert_eq!(code, Some(CloseCode::POLICY));
                assert_eq!(reason, "rate limit exceeded");
                break;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refusals, 5);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_a_handler_in_progress_finish_then_closes_with_1001() {
    let server = server_with(ServerConfig::new().shutdown_timeout(Duration::from_secs(5))).await;
    let mut client = server.connect("/echo").await.unwrap();
    client.send_message(&Slow(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(client.receive_message::<Done>().await.unwrap().0, 300);
    client.assert_closed(CloseCode::GOING_AWAY).await;
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_cuts_a_handler_that_overruns_the_bound() {
    let server =
        server_with(ServerConfig::new().shutdown_timeout(Duration::from_millis(300))).await;
    let mut client = server.connect("/echo").await.unwrap();
    client.send_message(&Slow(60_000)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let stopping = tokio::spawn(server.stop());
    client.assert_closed(CloseCode::GOING_AWAY).await;
    stopping.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn idle_http_connections_are_capped_too() {
    use tokio::io::AsyncReadExt;
    let server = server_with(ServerConfig::new().max_connections(2)).await;
    // Two sockets that never send a request hold both HTTP places.
    let _first = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let _second = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the third connection is closed at once");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // Once a place frees up, connections are served again.
    drop(_first);
    let mut served = false;
    for _ in 0..50 {
        if let Ok(mut client) = server.connect("/echo").await {
            client.send_message(&Ping).await.unwrap();
            assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served);
    server.stop().await.unwrap();
}
