//! The notifications example: an HTTP POST pushes a typed event to a group.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx::CloseCode;
use std::net::SocketAddr;
use std::time::Duration;

use chanx::messages::{Ping, Pong};
use chanx_example_notifications::{Notification, app};
use chanx_testing::{Communicator, RedisServer, ServerProcess, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A POST as the publisher, with a JSON body.
async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    post_with(
        addr,
        path,
        &[
            ("Authorization", "Bearer publisher-token"),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await
}

async fn post_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut head = String::new();
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Frames are dispatched after the groups are joined: a ping round-trip
/// means the client will get every later notification.
async fn ready(addr: SocketAddr, user: &str) -> Communicator {
    let mut client = Communicator::connect_tcp(
        addr,
        &format!("/ws/notifications/{user}?token={user}-token"),
    )
    .await
    .unwrap();
    let auth = client.receive_json().await.unwrap();
    assert_eq!(auth["payload"]["status_code"], 200, "{auth}");
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    client
}

fn notification(title: &str, body: &str, count: u64) -> Notification {
    Notification {
        title: title.into(),
        body: body.into(),
        count,
    }
}

#[tokio::test]
async fn http_post_notifies_everyone_or_one_user() {
    let server = TestServer::start(app()).await.unwrap();
    let mut alice = ready(server.addr(), "alice").await;
    let mut bob = ready(server.addr(), "bob").await;

    let (status, body) = post(
        server.addr(),
        "/notify",
        r#"{"title":"Hi","body":"to all"}"#,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(body, r#"{"sent_to":"notifications"}"#);
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            client.receive_message::<Notification>().await.unwrap(),
            notification("Hi", "to all", 1)
        );
    }

    let (status, _) = post(
        server.addr(),
        "/notify",
        r#"{"title":"Psst","body":"bob only","user":"bob"}"#,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(
        bob.receive_message::<Notification>().await.unwrap(),
        notification("Psst", "bob only", 2)
    );
    alice
        .receive_nothing(Duration::from_millis(100))
        .await
        .unwrap();

    // Bad input is refused before anything is sent.
    assert_eq!(post(server.addr(), "/notify", "not json").await.0, 400);
    let body = r#"{"title":"x","body":"y"}"#;
    let no_token = post_with(
        server.addr(),
        "/notify",
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(no_token.await.0, 401);
    let user_token = post_with(
        server.addr(),
        "/notify",
        &[
            ("Authorization", "Bearer alice-token"),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert_eq!(user_token.await.0, 401);
    // A plain form post (what a page on another site can send) is refused.
    let text_plain = post_with(
        server.addr(),
        "/notify",
        &[
            ("Authorization", "Bearer publisher-token"),
            ("Content-Type", "text/plain"),
        ],
        body,
    );
    assert_eq!(text_plain.await.0, 415);
    assert_eq!(
        post(
            server.addr(),
            "/notify",
            r#"{"title":"x","body":"y","user":"no spaces"}"#
        )
        .await
        .0,
        400
    );
    alice
        .receive_nothing(Duration::from_millis(100))
        .await
        .unwrap();
    bob.receive_nothing(Duration::from_millis(10))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

/// A socket opens only its own user's feed.
#[tokio::test]
async fn a_feed_needs_its_own_users_token() {
    let server = TestServer::start(app()).await.unwrap();
    let mut anonymous = server.connect("/ws/notifications/alice").await.unwrap();
    assert_eq!(
        anonymous.receive_json().await.unwrap()["payload"]["status_code"],
        401
    );
    anonymous.assert_closed(CloseCode::UNAUTHORIZED).await;
    let mut bob_as_alice = server
        .connect("/ws/notifications/alice?token=bob-token")
        .await
        .unwrap();
    assert_eq!(
        bob_as_alice.receive_json().await.unwrap(),
        serde_json::json!({"action":"authentication","payload":{"status_code":403,"status_text":"Forbidden","data":{"detail":"You may only open your own feed."}}})
    );
    bob_as_alice.assert_closed(CloseCode::FORBIDDEN).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_post_to_one_process_reaches_clients_on_another_with_redis() {
    let redis = RedisServer::start().unwrap();
    let args = ["--layer", "redis", "--redis-url", &redis.url()];
    let first = ServerProcess::spawn(env!("CARGO_BIN_EXE_notifications"), args).unwrap();
    let second = ServerProcess::spawn(env!("CARGO_BIN_EXE_notifications"), args).unwrap();
    let mut on_first = ready(first.addr(), "alice").await;
    let mut on_second = ready(second.addr(), "alice").await;
    let (status, _) = post(
        first.addr(),
        "/notify",
        r#"{"title":"T","body":"B","user":"alice"}"#,
    )
    .await;
    assert_eq!(status, 202);
    for client in [&mut on_first, &mut on_second] {
        assert_eq!(
            client.receive_message::<Notification>().await.unwrap(),
            notification("T", "B", 1)
        );
    }
}
