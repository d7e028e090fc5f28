//! Hostile clients against the real `system` binary, over TCP, with its
//! default limits: the server's memory is read from `/proc/<pid>/status`
//! and must stay within the documented bounds (with generous margins: these
//! are bounds, not timings).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx::CloseCode;
use std::time::{Duration, Instant};

use chanx_testing::raw::{RawClient, opcode, peak_rss_kib, upgrade_request};
use chanx_testing::{Communicator, ServerProcess};

fn start() -> ServerProcess {
    ServerProcess::spawn(env!("CARGO_BIN_EXE_system"), ["--layer", "memory"]).unwrap()
}

/// The server's peak memory once it has served a few connections, so that
/// what is measured afterwards is growth caused by the attack.
async fn warm_peak(server: &ServerProcess) -> u64 {
    for _ in 0..5 {
        let mut client = Communicator::connect_tcp(server.addr(), "/ws/system")
            .await
            .unwrap();
        client.receive_json().await.unwrap();
        client.disconnect().await.unwrap();
    }
    peak_rss_kib(server.pid()).unwrap()
}

async fn welcomed(server: &ServerProcess) -> RawClient {
    let mut client = RawClient::connect(server.addr(), "/ws/system", &[])
        .await
        .unwrap();
    let welcome = client
        .read_frame(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(welcome.text().contains("Connection established"));
    client
}

/// 256 MiB of pings from a client that never reads: rate-limited (no pong
/// past the limit), closed with 1008, and no pong pile-up in memory.
#[tokio::test]
async fn a_ping_flood_that_never_reads_is_closed_and_bounded() {
    let server = start();
    let before = warm_peak(&server).await;
    let mut client = welcomed(&server).await;
    let chunk: Vec<u8> = (0..1024)
        .flat_map(|_| chanx_testing::raw::frame(true, opcode::PING, &[0x55; 125]))
        .collect();
    let mut sent = 0usize;
    let started = Instant::now();
    while sent < 256 << 20 && started.elapsed() < Duration::from_secs(20) {
        match tokio::time::timeout(Duration::from_secs(2), client.write_raw(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            // Closed by the server, or its reads stopped.
            _ => break,
        }
    }
    let closed = client
        .read_until_close(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        closed.code,
        Some(1008),
        "after {sent} bytes of pings: {closed:?}"
    );
    let growth = peak_rss_kib(server.pid()).unwrap().saturating_sub(before);
    assert!(
        growth < 16 * 1024,
        "server grew by {growth} KiB during a ping flood"
    );
}

/// Upgrade requests with 360 KB of headers are refused with 431 and pin
/// nothing.
#[tokio::test]
async fn huge_request_headers_get_431_and_pin_nothing() {
    let server = start();
    let before = warm_peak(&server).await;
    let filler = "h".repeat(4000);
    let headers: Vec<(String, String)> = (0..90)
        .map(|index| (format!("x-pad-{index}"), filler.clone()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let request = upgrade_request("/ws/system", &headers);
    assert!(request.len() > 350_000);
    let mut statuses = Vec::new();
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // The server answers as soon as the limit is crossed; writing the
        // rest may fail, which is fine.
        let _ = stream.write_all(request.as_bytes()).await;
        let mut response = vec![0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response)).await;
        let status = match read {
            Ok(Ok(count)) if count >= 12 => String::from_utf8_lossy(&response[9..12]).into_owned(),
            other => format!("{other:?}"),
        };
        statuses.push(status);
        held.push(stream);
    }
    assert!(
        statuses.iter().all(|status| status == "431"),
        "{statuses:?}"
    );
    let growth = peak_rss_kib(server.pid()).unwrap().saturating_sub(before);
    assert!(
        growth < 32 * 1024,
        "server grew by {growth} KiB for 200 refused requests"
    );
}

/// A client that asks for large replies and never reads them: the
/// outbound queue is bounded in bytes, so the server stops reading it
/// rather than buffering.
#[tokio::test]
async fn replies_to_a_client_that_never_reads_stay_bounded() {
    let server = start();
    let before = warm_peak(&server).await;
    let mut client = welcomed(&server).await;
    let message = format!(
        r#"{{"action":"user_message","payload":{{"message":"{}"}}}}"#,
        "r".repeat(60 * 1024)
    );
    let frame = chanx_testing::raw::frame(true, opcode::TEXT, message.as_bytes());
    // Up to 120 MB of requests; the server's reads stop long before.
    let started = Instant::now();
    let mut sent = 0;
    while sent < 2000 && started.elapsed() < Duration::from_secs(15) {
        match tokio::time::timeout(Duration::from_secs(1), client.write_raw(&frame)).await {
            Ok(Ok(())) => sent += 1,
            _ => break,
        }
    }
    assert!(sent < 2000, "the server kept reading: it must push back");
    let growth = peak_rss_kib(server.pid()).unwrap().saturating_sub(before);
    assert!(
        growth < 16 * 1024,
        "server grew by {growth} KiB holding replies for one client ({sent} requests)"
    );
}

/// SIGTERM (what container runtimes send) shuts down gracefully: clients
/// get 1001 and the process exits successfully.
#[tokio::test]
async fn sigterm_closes_clients_with_1001() {
    let mut server = start();
    let mut client = Communicator::connect_tcp(server.addr(), "/ws/system")
        .await
        .unwrap();
    client.receive_json().await.unwrap();
    server.signal("-TERM").unwrap();
    client.assert_closed(CloseCode::GOING_AWAY).await;
    let status = server.wait(Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{status}");
}

/// A page on another site cannot open a socket (cross-site WebSocket
/// hijacking): its `Origin` is not the server's host.
#[tokio::test]
async fn another_sites_page_cannot_open_a_socket() {
    let server = start();
    let foreign = upgrade_request("/ws/system", &[("Origin", "https://evil.example")]);
    match RawClient::upgrade(server.addr(), &foreign).await.unwrap() {
        Err(refused) => assert_eq!(refused.status, 403),
        Ok(_) => panic!("a foreign origin opened a socket"),
    }
}
