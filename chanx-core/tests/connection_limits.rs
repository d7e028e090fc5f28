//! Transport-level faults close only the faulty connection, with the right
//! code: 1009 for an oversized message, 1007 for a text frame that is not
//! UTF-8.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, Router, Server, ServerConfig, channel};
use chanx_testing::TestServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "big")]
struct Big(String);

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "flood")]
struct Flood(usize);

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
    let server = Server::bind("127.0.0.1:0").await.unwrap().with_config(
        ServerConfig::new()
            .max_message_size(16 * 1024)
            .max_frame_size(16 * 1024),
    );
    let server = TestServer::start_with(server, Router::new().route::<Echo>("/echo")).unwrap();
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
    client.assert_closed(1009).await;

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
    let server = Server::bind("127.0.0.1:0").await.unwrap().with_config(
        ServerConfig::new()
            .max_message_size(4096)
            .max_frame_size(4096),
    );
    let server = TestServer::start_with(server, Router::new().route::<Echo>("/echo")).unwrap();
    let mut client = server.connect("/echo").await.unwrap();
    client.send_message(&Big("x".repeat(40))).await.unwrap();
    let reply: Big = client.receive_message().await.unwrap();
    assert_eq!(reply.0.len(), 40 * 1024);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_does_not_block_shutdown() {
    let server = Server::bind("127.0.0.1:0").await.unwrap().with_config(
        ServerConfig::new()
            .write_timeout(Duration::from_millis(300))
            .outbound_queue(4)
            .shutdown_timeout(Duration::from_secs(30)),
    );
    let server = TestServer::start_with(server, Router::new().route::<Echo>("/echo")).unwrap();
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
    reader.assert_closed(1001).await;
    stopping.await.unwrap().unwrap();
    // The stuck connection was already gone: shutdown did not wait for it.
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "shutdown took {elapsed:?}"
    );
    drop(stuck);
}
