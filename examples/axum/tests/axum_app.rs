//! The axum app with chanx merged in, over real TCP through `axum::serve`:
//! REST, WebSocket, an announcement crossing from REST into the sockets,
//! the AsyncAPI document, and graceful shutdown (in-process and of the
//! real binary on SIGTERM).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chanx::CloseCode;
use chanx::messages::{Ping, Pong};
use chanx_example_axum::{
    Announcement, ChatMessage, DEMO_ADMIN_TOKEN, JoinedRoom, NewChatMessage, Rooms, app, chat,
};
use chanx_testing::{
    Communicator, ServerProcess, TestServer, assert_asyncapi_current, http_get, http_request,
};
use serde_json::{Value, json};

async fn start() -> TestServer {
    let rooms = Rooms::demo();
    let chat = chat(rooms.clone());
    let layer = chat.layer().clone();
    let (app, shutdown) = app(chat, rooms, DEMO_ADMIN_TOKEN);
    TestServer::start_axum_app(app, shutdown, layer)
        .await
        .unwrap()
}

async fn join(server: &TestServer, room: &str, name: &str) -> Communicator {
    let mut client = server
        .connect(&format!("/ws/chat/{room}?name={name}"))
        .await
        .unwrap();
    assert_eq!(
        client.receive_message::<JoinedRoom>().await.unwrap(),
        JoinedRoom {
            room: room.into(),
            name: name.into()
        }
    );
    client
}

async fn announce(server: &TestServer, room: &str, token: &str, body: &str) -> (u16, Value) {
    let authorization = format!("Bearer {token}");
    let (status, body) = http_request(
        server.addr(),
        "POST",
        &format!("/api/rooms/{room}/announce"),
        &[
            ("Authorization", &authorization),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .await
    .unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn rest_endpoints_are_axum_handlers() {
    let server = start().await;
    let (status, body) = http_get(server.addr(), "/api/rooms").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([
            {"name": "lobby", "description": "Everyone starts here", "socket": "/ws/chat/lobby"},
            {"name": "random", "description": "Anything goes", "socket": "/ws/chat/random"},
            {"name": "rust", "description": "Talk about Rust", "socket": "/ws/chat/rust"},
            {"name": "show_and_tell", "description": "Show what you built", "socket": "/ws/chat/show_and_tell"},
        ])
    );
    assert_eq!(
        http_get(server.addr(), "/health").await.unwrap(),
        (200, "ok".into())
    );
    // axum's own 404 and 405 for what neither side routes.
    assert_eq!(
        http_get(server.addr(), "/api/nowhere").await.unwrap().0,
        404
    );
    assert_eq!(
        http_get(server.addr(), "/api/rooms/lobby/announce")
            .await
            .unwrap()
            .0,
        405
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn chat_messages_reach_the_room_only() {
    let server = start().await;
    let mut alice = join(&server, "lobby", "alice").await;
    let mut bob = join(&server, "lobby", "bob").await;
    let mut carol = join(&server, "rust", "carol").await;
    alice
        .send_message(&NewChatMessage {
            message: "hi bob".into(),
        })
        .await
        .unwrap();
    let expected = ChatMessage {
        sender: "alice".into(),
        room: "lobby".into(),
        message: "hi bob".into(),
    };
    assert_eq!(
        bob.receive_message::<ChatMessage>().await.unwrap(),
        expected
    );
    assert_eq!(
        alice.receive_message::<ChatMessage>().await.unwrap(),
        expected
    );
    carol
        .receive_nothing(Duration::from_millis(200))
        .await
        .unwrap();
    carol.send_message(&Ping).await.unwrap();
    assert_eq!(carol.receive_message::<Pong>().await.unwrap(), Pong);
    // A room that is not listed is refused at connect.
    let mut stray = server.connect("/ws/chat/attic").await.unwrap();
    stray
        .assert_closed(CloseCode::application(4404).unwrap())
        .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_announcement_crosses_from_rest_into_the_room() {
    let server = start().await;
    let mut alice = join(&server, "lobby", "alice").await;
    let mut carol = join(&server, "rust", "carol").await;
    let (status, body) = announce(
        &server,
        "lobby",
        DEMO_ADMIN_TOKEN,
        r#"{"text":"Deploy at noon"}"#,
    )
    .await;
    assert_eq!(
        (status, body),
        (202, json!({"room": "lobby", "text": "Deploy at noon"}))
    );
    assert_eq!(
        alice.receive_json().await.unwrap(),
        json!({"action": "announcement", "payload": {"room": "lobby", "text": "Deploy at noon"}})
    );
    carol
        .receive_nothing(Duration::from_millis(200))
        .await
        .unwrap();

    // Refusals send nothing.
    let (status, _) = announce(&server, "lobby", "guess", r#"{"text":"x"}"#).await;
    assert_eq!(status, 401);
    let (status, body) = announce(&server, "attic", DEMO_ADMIN_TOKEN, r#"{"text":"x"}"#).await;
    assert_eq!((status, body), (404, json!({"detail": "no such room"})));
    let (status, _) = announce(&server, "lobby", DEMO_ADMIN_TOKEN, r#"{"txt":"x"}"#).await;
    assert_eq!(status, 422, "axum's Json rejection");
    alice
        .receive_nothing(Duration::from_millis(200))
        .await
        .unwrap();
    // The room still works.
    let (status, _) = announce(&server, "lobby", DEMO_ADMIN_TOKEN, r#"{"text":"again"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(
        alice.receive_message::<Announcement>().await.unwrap().text,
        "again"
    );
    // A room name with `_` reaches its own group (the REST side names it
    // from the channel's template, as the sockets do).
    let mut dave = join(&server, "show_and_tell", "dave").await;
    let (status, _) = announce(
        &server,
        "show_and_tell",
        DEMO_ADMIN_TOKEN,
        r#"{"text":"demo"}"#,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(
        dave.receive_json().await.unwrap(),
        json!({"action": "announcement", "payload": {"room": "show_and_tell", "text": "demo"}})
    );
    alice
        .receive_nothing(Duration::from_millis(100))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_asyncapi_document_is_served_and_current() {
    let rooms = Rooms::demo();
    assert_asyncapi_current(
        &chat(rooms),
        concat!(env!("CARGO_MANIFEST_DIR"), "/asyncapi.json"),
        "cargo run -p chanx-example-axum -- --emit-asyncapi examples/axum/asyncapi.json",
    );
    let server = start().await;
    let (status, body) = http_get(server.addr(), "/asyncapi.json").await.unwrap();
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["channels"]["chat"]["address"], "/ws/chat/{room}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stopping_the_host_closes_sockets_with_1001() {
    let server = start().await;
    let mut alice = join(&server, "lobby", "alice").await;
    // An announcement accepted before shutdown is delivered before the close.
    let (status, _) = announce(&server, "lobby", DEMO_ADMIN_TOKEN, r#"{"text":"bye"}"#).await;
    assert_eq!(status, 202);
    let addr = server.addr();
    tokio::time::timeout(Duration::from_secs(15), server.stop())
        .await
        .expect("axum::serve returns once chanx has shut down")
        .unwrap();
    assert_eq!(
        alice.receive_message::<Announcement>().await.unwrap().text,
        "bye"
    );
    alice.assert_closed(CloseCode::GOING_AWAY).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
}

/// The real binary: SIGTERM closes the chat with 1001 and exits 0.
#[tokio::test]
async fn the_binary_shuts_down_gracefully_on_sigterm() {
    let mut server =
        ServerProcess::spawn(env!("CARGO_BIN_EXE_axum-chat"), ["--layer", "memory"]).unwrap();
    let (status, _) = http_get(server.addr(), "/health").await.unwrap();
    assert_eq!(status, 200);
    let mut client = Communicator::connect_tcp(server.addr(), "/ws/chat/lobby?name=dora")
        .await
        .unwrap();
    assert_eq!(
        client.receive_message::<JoinedRoom>().await.unwrap().name,
        "dora"
    );
    server.signal("-TERM").unwrap();
    client.assert_closed(CloseCode::GOING_AWAY).await;
    let status = server.wait(Duration::from_secs(15)).unwrap();
    assert!(status.success(), "{status:?}");
}
