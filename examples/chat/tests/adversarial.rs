//! Hostile members against the real `chat` binary, over TCP, with its
//! default limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chanx_testing::ServerProcess;
use chanx_testing::raw::{RawClient, upgrade_request};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn start() -> ServerProcess {
    ServerProcess::spawn(env!("CARGO_BIN_EXE_chat"), ["--layer", "memory"]).unwrap()
}

/// One member floods the room with large messages as fast as it can send
/// them (and reads its own echoes, so it stays connected). Its fan-out is
/// charged to it: it is held to 32 MiB/s in all, 16 MiB/s to each of the
/// two members. A member reading at 20 MiB/s keeps up, is never closed as
/// too slow, and gets every message in order.
#[tokio::test]
async fn one_members_burst_does_not_push_a_reader_off_the_room() {
    let server = start();
    let addr = server.addr();
    let mut reader = RawClient::connect(addr, "/ws/chat/lobby?token=alice-token", &[])
        .await
        .unwrap();
    for _ in 0..4 {
        // authentication, joined_room, presence_state, presence_diff
        reader
            .read_frame(Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
    }

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (flooder, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/ws/chat/lobby?token=bob-token"),
        stream,
    )
    .await
    .unwrap();
    let (mut sink, mut stream) = flooder.split();
    // Bob reads everything he is sent, as fast as he can.
    let drained = tokio::spawn(async move {
        let mut frames = 0usize;
        while let Some(Ok(message)) = stream.next().await {
            if message.is_text() {
                frames += 1;
            }
        }
        frames
    });
    let text = "m".repeat(60 * 1024);
    let count = 3000; // 3000 × 60 KiB × 2 members ≈ 350 MiB of fan-out
    let frame = format!(r#"{{"action":"new_chat_message","payload":{{"message":"{text}"}}}}"#);
    let flood = tokio::spawn(async move {
        for index in 0..count {
            if sink.feed(WsMessage::text(frame.clone())).await.is_err() {
                break;
            }
            if index % 16 == 15 && sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.flush().await;
        sink
    });
    // Alice reads at 20 MiB/s: more than her share, less than the server
    // could push without the budget.
    let rate = 20.0 * 1024.0 * 1024.0;
    let started = Instant::now();
    let mut bytes = 0usize;
    let mut seq = 0;
    while seq < count {
        let frame = match reader.read_frame(Duration::from_secs(10)).await {
            Ok(Some(frame)) => frame,
            other => panic!("alice was cut off after {seq} messages: {other:?}"),
        };
        if frame.text().starts_with(r#"{"action":"presence_diff""#) {
            continue; // bob joining the room
        }
        seq += 1;
        assert_eq!(
            frame.opcode,
            chanx_testing::raw::opcode::TEXT,
            "message {seq}: {}",
            frame.text()
        );
        assert!(
            frame
                .text()
                .starts_with(r#"{"action":"chat_message","payload":{"sender":"bob""#)
        );
        bytes += frame.payload.len();
        let due = Duration::from_secs_f64(bytes as f64 / rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    // Still connected and served.
    reader.send_text(r#"{"action":"ping"}"#).await.unwrap();
    let pong = reader
        .read_frame(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong.text(), r#"{"action":"pong","payload":null}"#);
    let sink = flood.await.unwrap();
    drop(sink);
    drop(drained);
}

/// A page on another site cannot open a socket with a stolen token.
#[tokio::test]
async fn another_sites_page_cannot_join_a_room() {
    let server = start();
    let request = upgrade_request(
        "/ws/chat/lobby?token=alice-token",
        &[("Origin", "https://evil.example")],
    );
    match RawClient::upgrade(server.addr(), &request).await.unwrap() {
        Err(refused) => assert_eq!(refused.status, 403),
        Ok(_) => panic!("a foreign origin opened a socket"),
    }
}
