//! Hostile callers against the real `notifications` binary, over TCP, with
//! its default limits: the server's memory is read from
//! `/proc/<pid>/status`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use chanx_testing::raw::{RawClient, peak_rss_kib};
use chanx_testing::{RedisServer, ServerProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) before the whole body is sent.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

const PUBLISHER: [(&str, &str); 2] = [
    ("Authorization", "Bearer publisher-token"),
    ("Content-Type", "application/json"),
];

/// Subscribers that never read, and publishers posting as much as they can:
/// 1 MB bodies are refused (413); 60 KB ones are delivered, and what waits
/// for the subscribers is bounded per connection, so the server does not
/// grow by the bytes × subscribers it was sent.
#[tokio::test]
async fn event_amplification_is_bounded() {
    let server =
        ServerProcess::spawn(env!("CARGO_BIN_EXE_notifications"), ["--layer", "memory"]).unwrap();
    let addr = server.addr();
    let mut subscribers = Vec::new();
    for _ in 0..20 {
        let mut client = RawClient::connect(addr, "/ws/notifications/alice?token=alice-token", &[])
            .await
            .unwrap();
        let auth = client
            .read_frame(Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert!(
            auth.text().contains("\"status_code\":200"),
            "{}",
            auth.text()
        );
        subscribers.push(client);
    }
    let before = peak_rss_kib(server.pid()).unwrap();
    let huge = format!(r#"{{"title":"t","body":"{}"}}"#, "b".repeat(1_000_000));
    for _ in 0..50 {
        assert_eq!(
            post(addr, "/notify", &PUBLISHER, huge.as_bytes()).await,
            413
        );
    }
    let large = format!(
        r#"{{"title":"t","body":"{}","user":"alice"}}"#,
        "b".repeat(60_000)
    );
    let mut accepted = 0;
    for _ in 0..50 {
        if post(addr, "/notify", &PUBLISHER, large.as_bytes()).await == 202 {
            accepted += 1;
        }
    }
    assert!(accepted >= 40, "{accepted} of 50 accepted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let growth = peak_rss_kib(server.pid()).unwrap().saturating_sub(before);
    // 50 × 60 KB to 20 subscribers would be 60 MB; each holds at most its
    // inbox and outbound budgets (128 + 256 KiB).
    assert!(growth < 24 * 1024, "server grew by {growth} KiB");
    drop(subscribers);
}

/// A page on another site cannot post (its `Origin`), nor can a form
/// (`text/plain`), nor anyone without the publisher's token.
#[tokio::test]
async fn only_the_publisher_can_post_and_not_from_another_site() {
    let server =
        ServerProcess::spawn(env!("CARGO_BIN_EXE_notifications"), ["--layer", "memory"]).unwrap();
    let addr = server.addr();
    let body = br#"{"title":"t","body":"b"}"#;
    assert_eq!(
        post(
            addr,
            "/notify",
            &[("Content-Type", "application/json")],
            body
        )
        .await,
        401
    );
    assert_eq!(
        post(
            addr,
            "/notify",
            &[
                ("Authorization", "Bearer publisher-token"),
                ("Content-Type", "text/plain")
            ],
            body
        )
        .await,
        415
    );
    let mut from_page = PUBLISHER.to_vec();
    from_page.push(("Origin", "https://evil.example"));
    assert_eq!(post(addr, "/notify", &from_page, body).await, 403);
    assert_eq!(post(addr, "/notify", &PUBLISHER, body).await, 202);
}

/// Tokens in query strings and headers, and the Redis password, never
/// reach a log line, even at `trace`.
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let redis = RedisServer::start_with_password("redis-s3cret-pw").unwrap();
    let server = ServerProcess::spawn_logged(
        env!("CARGO_BIN_EXE_notifications"),
        ["--layer", "redis", "--redis-url", &redis.url()],
        "trace",
    )
    .unwrap();
    let addr = server.addr();
    let mut alice = RawClient::connect(addr, "/ws/notifications/alice?token=alice-token", &[])
        .await
        .unwrap();
    alice
        .read_frame(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    // Frames are dispatched once the groups are joined: after a ping round
    // trip, alice gets every later notification.
    alice.send_text(r#"{"action":"ping"}"#).await.unwrap();
    let pong = alice
        .read_frame(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong.text(), r#"{"action":"pong","payload":null}"#);
    let mut refused =
        RawClient::connect(addr, "/ws/notifications/alice?token=wrong-token-123", &[])
            .await
            .unwrap();
    let _ = refused.read_until_close(Duration::from_secs(5)).await;
    let body = br#"{"title":"t","body":"b","user":"alice"}"#;
    assert_eq!(
        post(addr, "/notify?token=query-secret-456", &PUBLISHER, body).await,
        202
    );
    assert_eq!(
        post(
            addr,
            "/notify",
            &[
                ("Authorization", "Bearer guessed-secret-789"),
                ("Content-Type", "application/json")
            ],
            body
        )
        .await,
        401
    );
    let notified = alice
        .read_frame(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(notified.text().contains("notification"));
    let logs = server.logs();
    assert!(logs.contains("Redis at redis://***@127.0.0.1"), "{logs}");
    for secret in [
        "redis-s3cret-pw",
        "alice-token",
        "wrong-token-123",
        "publisher-token",
        "query-secret-456",
        "guessed-secret-789",
    ] {
        assert!(!logs.contains(secret), "{secret} reached the logs:\n{logs}");
    }
}
