//! Hostile clients against the real `axum-chat` binary (chanx inside
//! `axum::serve`), over TCP, with the default limits: the server's memory
//! is read from `/proc/<pid>/status` and must stay within the documented
//! bounds, as for the standalone examples (generous margins: these are
//! bounds, not timings).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chanx_testing::raw::{RawClient, opcode, peak_rss_kib, upgrade_request};
use chanx_testing::{Communicator, ServerProcess, http_request};

fn start() -> ServerProcess {
    ServerProcess::spawn(env!("CARGO_BIN_EXE_axum-chat"), ["--layer", "memory"]).unwrap()
}

/// The server's peak memory once it has served a few connections, so that
/// what is measured afterwards is growth caused by the attack.
async fn warm_peak(server: &ServerProcess) -> u64 {
    for _ in 0..5 {
        let mut client = Communicator::connect_tcp(server.addr(), "/ws/chat/lobby")
            .await
            .unwrap();
        client.receive_json().await.unwrap();
        client.disconnect().await.unwrap();
    }
    peak_rss_kib(server.pid()).unwrap()
}

async fn joined(server: &ServerProcess, room: &str) -> RawClient {
    let mut client = RawClient::connect(server.addr(), &format!("/ws/chat/{room}"), &[])
        .await
        .unwrap();
    let joined = client
        .read_frame(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(joined.text().contains("joined_room"), "{}", joined.text());
    client
}

/// 256 MiB of pings from a client that never reads, through axum's
/// upgrade: rate-limited, closed with 1008, no pong pile-up in memory.
#[tokio::test]
async fn a_ping_flood_that_never_reads_is_closed_and_bounded() {
    let server = start();
    let before = warm_peak(&server).await;
    let mut client = joined(&server, "lobby").await;
    let chunk: Vec<u8> = (0..1024)
        .flat_map(|_| chanx_testing::raw::frame(true, opcode::PING, &[0x55; 125]))
        .collect();
    let mut sent = 0usize;
    let started = Instant::now();
    while sent < 256 << 20 && started.elapsed() < Duration::from_secs(20) {
        match tokio::time::timeout(Duration::from_secs(2), client.write_raw(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    let closed = client
        .read_until_close(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(closed.code, Some(1008), "after {sent} bytes: {closed:?}");
    let growth = peak_rss_kib(server.pid()).unwrap().saturating_sub(before);
    assert!(
        growth < 16 * 1024,
        "server grew by {growth} KiB during a ping flood"
    );
}

/// A member that never reads while the room is flooded with 60 KiB chat
/// messages: its queue and inbox are bounded in bytes, so it is closed
/// with 1008 (too slow) and the server's memory stays bounded; the
/// sender, reading as it should, keeps being served.
#[tokio::test]
async fn a_member_that_never_reads_is_dropped_not_buffered() {
    let server = start();
    let before = warm_peak(&server).await;
    let mut stalled = joined(&server, "rust").await;
    let mut sender = Communicator::connect_tcp(server.addr(), "/ws/chat/rust?name=loud")
        .await
        .unwrap();
    sender.receive_json().await.unwrap();
    let text = "m".repeat(60 * 1024);
    let frame = serde_json::json!({"action": "new_chat_message", "payload": {"message": text}});
    let mut received = 0;
    // 800 × 60 KiB ≈ 48 MiB for the stalled member; it holds at most its
    // 256 KiB queue and 128 KiB inbox.
    for _ in 0..800 {
        sender.send_json(&frame).await.unwrap();
        let echo = sender.receive_json().await.unwrap();
        assert_eq!(echo["action"], "chat_message");
        received += 1;
    }
    assert_eq!(received, 800);
    let closed = stalled
        .read_until_close(Duration::from_secs(10))
        .await
        .unwrap();
    // The 1008 close frame is written once the client's socket has room; a
    // client that still has not read when the writer's drain bound (5 s)
    // passes finds the connection dropped instead (a slow debug build
    // sending 800 frames takes that long). Either way it got a bounded
    // prefix of the room's messages, never all 800.
    assert!(
        closed.code == Some(1008) || closed.code.is_none(),
        "code {:?} after {} frames",
        closed.code,
        closed.frames.len()
    );
    assert!(
        closed.frames.len() < 400,
        "the stalled member was sent {} of 800 frames",
        closed.frames.len()
    );
    let growth = peak_rss_kib(server.pid()).unwrap().saturating_sub(before);
    assert!(
        growth < 24 * 1024,
        "server grew by {growth} KiB for one member that never reads"
    );
}

/// Upgrade requests over chanx's header limit (16 KiB) are refused with
/// 431 before anything is kept; REST requests are axum's to bound.
#[tokio::test]
async fn oversized_upgrade_headers_get_431() {
    let server = start();
    let filler = "h".repeat(6000);
    let request = upgrade_request(
        "/ws/chat/lobby",
        &[("x-a", &filler), ("x-b", &filler), ("x-c", &filler)],
    );
    match RawClient::upgrade(server.addr(), &request).await.unwrap() {
        Err(refused) => assert_eq!(refused.status, 431, "{}", refused.response),
        Ok(_) => panic!("18 KB of headers were accepted"),
    }
}

/// A page on another site can neither open a chat socket nor (without the
/// token it cannot read) announce.
#[tokio::test]
async fn another_sites_page_cannot_open_a_socket_or_announce() {
    let server = start();
    let foreign = upgrade_request("/ws/chat/lobby", &[("Origin", "https://evil.example")]);
    match RawClient::upgrade(server.addr(), &foreign).await.unwrap() {
        Err(refused) => assert_eq!(refused.status, 403),
        Ok(_) => panic!("a foreign origin opened a socket"),
    }
    let (status, _) = http_request(
        server.addr(),
        "POST",
        "/api/rooms/lobby/announce",
        &[
            ("Origin", "https://evil.example"),
            ("Content-Type", "application/json"),
        ],
        r#"{"text":"pwned"}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 401);
}
