//! The system example end to end: in-process and over a real TCP socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx::CloseCode;
use chanx::Message;
use chanx::messages::{Ping, Pong};
use chanx_example_system::{MessagePayload, SystemEchoMessage, UserMessage, app};
use chanx_testing::{Communicator, ConnectError, TestServer};
use serde_json::{Value, json};

const WELCOME: &str =
    r#"{"action":"system_echo","payload":{"message":"🔧 System: Connection established!"}}"#;

async fn start_server() -> TestServer {
    TestServer::start(app()).await.unwrap()
}

async fn expect_welcome(client: &mut Communicator) {
    assert_eq!(client.receive_text().await.unwrap(), WELCOME);
}

/// Asserts the connection still works after a bad frame.
async fn still_open(client: &mut Communicator) {
    client.send_text(r#"{"action":"ping"}"#).await.unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null}"#
    );
}

#[tokio::test]
async fn welcome_echo_and_pong_in_process() {
    let app = app();
    let mut client = Communicator::connect(&app, "/ws/system").await.unwrap();
    expect_welcome(&mut client).await;

    client
        .send_text(r#"{"action":"user_message","payload":{"message":"Hello"}}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"system_echo","payload":{"message":"🔧 System Echo: Hello"}}"#
    );

    client.send_text(r#"{"action":"ping"}"#).await.unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null}"#
    );

    // Typed send and receive.
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    client
        .send_message(&UserMessage(MessagePayload {
            message: "typed".into(),
        }))
        .await
        .unwrap();
    assert_eq!(
        client
            .receive_message::<SystemEchoMessage>()
            .await
            .unwrap()
            .0
            .message,
        "🔧 System Echo: typed"
    );
    client
        .receive_nothing(std::time::Duration::from_millis(100))
        .await
        .unwrap();
    client.disconnect().await.unwrap();
}

#[tokio::test]
async fn ref_is_echoed_on_the_direct_reply() {
    let app = app();
    let mut client = Communicator::connect(&app, "/ws/system").await.unwrap();
    expect_welcome(&mut client).await;
    client
        .send_text(r#"{"ref":"req-7","action":"user_message","payload":{"message":"x"}}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"system_echo","payload":{"message":"🔧 System Echo: x"},"version":1,"ref":"req-7"})
    );
    // A numeric ref is echoed verbatim too.
    client
        .send_text(r#"{"action":"ping","ref":42}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null,"version":1,"ref":42}"#
    );
}

fn error_frame(kind: &str, loc: Value, msg: &str) -> Value {
    json!({"action": "error", "payload": [{"type": kind, "loc": loc, "msg": msg}]})
}

/// Every bad-input row of the protocol table, with the exact frame, and the
/// connection still open afterwards.
async fn check_error_table(client: &mut Communicator) {
    client.send_text("not json").await.unwrap();
    let frame = client.receive_json().await.unwrap();
    assert_eq!(frame["action"], "error");
    assert_eq!(frame["payload"][0]["type"], "json_invalid");
    assert_eq!(frame["payload"][0]["loc"], json!([]));
    assert!(
        frame["payload"][0]["msg"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON: "),
        "{frame}"
    );
    still_open(client).await;

    client.send_text(r#"{"action":"ping""#).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap()["payload"][0]["type"],
        "json_invalid"
    );
    still_open(client).await;

    client.send_binary(vec![0, 159, 146, 150]).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        error_frame(
            "json_invalid",
            json!([]),
            "Invalid JSON: binary frames are not accepted, send JSON as a text frame"
        )
    );
    still_open(client).await;

    for not_object in ["[1,2]", "42", r#""ping""#, "null"] {
        client.send_text(not_object).await.unwrap();
        assert_eq!(
            client.receive_json().await.unwrap(),
            error_frame("model_type", json!([]), "Input should be an object"),
            "for {not_object}"
        );
    }
    still_open(client).await;

    client
        .send_text(r#"{"payload":{"message":"x"}}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        error_frame(
            "union_tag_not_found",
            json!([]),
            "Unable to extract tag using discriminator 'action'"
        )
    );
    still_open(client).await;

    client
        .send_text(r#"{"action":"launch_rockets","payload":null}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        error_frame(
            "union_tag_invalid",
            json!([]),
            "Input tag 'launch_rockets' found using 'action' does not match any of the expected tags: 'ping', 'user_message'"
        )
    );
    still_open(client).await;

    // A non-string action is an invalid tag too, and the expected tags are listed.
    client.send_text(r#"{"action":5}"#).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        error_frame(
            "union_tag_invalid",
            json!([]),
            "Input tag '5' found using 'action' does not match any of the expected tags: 'ping', 'user_message'"
        )
    );

    client
        .send_text(r#"{"action":"user_message","payload":{}}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        error_frame(
            "missing",
            json!(["user_message", "payload", "message"]),
            "Field required"
        )
    );
    client
        .send_text(r#"{"action":"user_message","payload":{"message":5}}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        error_frame(
            "string_type",
            json!(["user_message", "payload", "message"]),
            "Input should be a valid string"
        )
    );
    client
        .send_text(r#"{"action":"user_message"}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        error_frame(
            "missing",
            json!(["user_message", "payload"]),
            "Field required"
        )
    );
    still_open(client).await;
    client
        .receive_nothing(std::time::Duration::from_millis(100))
        .await
        .unwrap();
}

#[tokio::test]
async fn error_frames_in_process() {
    let app = app();
    let mut client = Communicator::connect(&app, "/ws/system").await.unwrap();
    expect_welcome(&mut client).await;
    check_error_table(&mut client).await;
}

#[tokio::test]
async fn everything_over_tcp() {
    let server = start_server().await;
    let addr = server.addr();
    let mut client = Communicator::connect_tcp(addr, "/ws/system").await.unwrap();
    expect_welcome(&mut client).await;
    client
        .send_text(r#"{"action":"user_message","payload":{"message":"Hello"}}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"system_echo","payload":{"message":"🔧 System Echo: Hello"}}"#
    );
    check_error_table(&mut client).await;
    client.disconnect().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn trailing_slash_and_unknown_paths_over_tcp() {
    let server = start_server().await;
    let addr = server.addr();
    let mut client = Communicator::connect_tcp(addr, "/ws/system/")
        .await
        .unwrap();
    expect_welcome(&mut client).await;
    match Communicator::connect_tcp(addr, "/ws/nowhere").await {
        Err(ConnectError::Refused { status, body }) => {
            assert_eq!(status, 404);
            assert!(body.contains("/ws/nowhere"), "{body}");
        }
        other => panic!("expected a 404 refusal, got {other:?}"),
    }
    // In-process, the same service answers the same way.
    match Communicator::connect(&app(), "/ws/nowhere").await {
        Err(ConnectError::Refused { status, body }) => {
            assert_eq!(status, 404);
            assert!(body.contains("/ws/nowhere"), "{body}");
        }
        other => panic!("expected a 404 refusal, got {other:?}"),
    }
    client.disconnect().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn plain_http_gets_426() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_server().await;
    let addr = server.addr();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /ws/system HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn clients_are_isolated_and_ordered() {
    let server = start_server().await;
    let addr = server.addr();
    let mut first = Communicator::connect_tcp(addr, "/ws/system").await.unwrap();
    let mut second = Communicator::connect_tcp(addr, "/ws/system").await.unwrap();
    expect_welcome(&mut first).await;
    expect_welcome(&mut second).await;
    for seq in 0..50 {
        first
            .send_message(&UserMessage(MessagePayload {
                message: format!("a{seq}"),
            }))
            .await
            .unwrap();
    }
    second.send_text("garbage").await.unwrap();
    for seq in 0..50 {
        let reply = first.receive_message::<SystemEchoMessage>().await.unwrap();
        assert_eq!(reply.0.message, format!("🔧 System Echo: a{seq}"));
    }
    assert_eq!(
        second.receive_json().await.unwrap()["payload"][0]["type"],
        "json_invalid"
    );
    // The second client's bad frame never reached the first.
    first
        .receive_nothing(std::time::Duration::from_millis(100))
        .await
        .unwrap();
    second
        .receive_nothing(std::time::Duration::from_millis(10))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001() {
    let server = start_server().await;
    let addr = server.addr();
    let mut first = Communicator::connect_tcp(addr, "/ws/system").await.unwrap();
    let mut second = Communicator::connect_tcp(addr, "/ws/system").await.unwrap();
    expect_welcome(&mut first).await;
    expect_welcome(&mut second).await;
    let stopping = tokio::spawn(server.stop());
    first.assert_closed(CloseCode::GOING_AWAY).await;
    second.assert_closed(CloseCode::GOING_AWAY).await;
    stopping.await.unwrap().unwrap();
    // The listener is gone.
    assert!(Communicator::connect_tcp(addr, "/ws/system").await.is_err());
}

#[test]
fn welcome_frame_matches_the_message_type() {
    let welcome = SystemEchoMessage(MessagePayload {
        message: "🔧 System: Connection established!".into(),
    });
    assert_eq!(welcome.to_json(), WELCOME);
}
