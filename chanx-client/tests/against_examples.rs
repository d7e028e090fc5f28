//! The typed client against the real `system` and `chat` examples over
//! TCP: requests matched by `ref` (many at once), typed server errors,
//! timeouts, the push stream in order, authentication, close codes, and
//! reconnection with its hook and its reported gap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chanx_client::{Client, ClientError, ConnectError, Incoming, Reconnect};
use chanx_core::messages::{Ping, Pong};
use chanx_core::presence::{PresenceDiff, PresenceState};
use chanx_core::protocol::ErrorPayload;
use chanx_core::wire::LocSegment;
use chanx_core::{Message, Server};
use chanx_example_chat::{ChatMessage, JoinedRoom, NewChatMessage};
use chanx_example_system::{MessagePayload, SystemEchoMessage, UserMessage};
use chanx_testing::TestServer;
use serde::{Deserialize, Serialize};

/// What the chat channel pushes.
#[derive(Debug, Clone, PartialEq, Message)]
enum ChatPush {
    Chat(ChatMessage),
    Joined(JoinedRoom),
    Present(PresenceState),
    Changed(PresenceDiff),
}

/// What the system channel replies.
#[derive(Debug, Clone, PartialEq, Message)]
enum SystemReply {
    Echo(SystemEchoMessage),
    Pong(Pong),
}

/// A message the system channel does not know.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "launch_rockets")]
struct LaunchRockets;

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

fn echo(text: &str) -> UserMessage {
    UserMessage(MessagePayload {
        message: text.to_owned(),
    })
}

#[tokio::test]
async fn requests_get_their_own_typed_replies() {
    let server = TestServer::start(chanx_example_system::app())
        .await
        .unwrap();
    let client = Client::connect(&url(server.addr(), "/ws/system"))
        .await
        .unwrap();
    let mut pushes = client.messages::<SystemEchoMessage>().unwrap();
    // The greeting is a push: it answers no request.
    let Incoming::Message(greeting) = pushes.next().await.unwrap().unwrap() else {
        panic!("expected the greeting");
    };
    assert_eq!(greeting.0.message, "🔧 System: Connection established!");

    let pong: Pong = client.request(&Ping).await.unwrap();
    assert_eq!(pong, Pong);
    let reply: SystemEchoMessage = client.request(&echo("hi")).await.unwrap();
    assert_eq!(reply.0.message, "🔧 System Echo: hi");

    // Many in flight on one socket, each resolved to its own caller.
    let mut tasks = Vec::new();
    for index in 0..50 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            if index % 5 == 0 {
                let reply: SystemReply = client.request(&Ping).await.unwrap();
                assert_eq!(reply, SystemReply::Pong(Pong));
            } else {
                let reply: SystemReply = client.request(&echo(&format!("n{index}"))).await.unwrap();
                let SystemReply::Echo(echoed) = reply else {
                    panic!("{index}: {reply:?}");
                };
                assert_eq!(echoed.0.message, format!("🔧 System Echo: n{index}"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(client.close().await.code, Some(1000));
    assert!(matches!(
        client.request::<_, Pong>(&Ping).await,
        Err(ClientError::Disconnected(_))
    ));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn error_frames_are_typed_errors_and_silence_times_out() {
    let server = TestServer::start(chanx_example_system::app())
        .await
        .unwrap();
    let client = Client::builder(url(server.addr(), "/ws/system"))
        .request_timeout(Duration::from_millis(300))
        .discard_pushes()
        .connect()
        .await
        .unwrap();
    let error = client.request::<_, Pong>(&LaunchRockets).await.unwrap_err();
    let ClientError::Server(server_error) = error else {
        panic!("{error:?}");
    };
    let [item] = server_error.items() else {
        panic!("{server_error:?}");
    };
    assert_eq!(item.kind, "union_tag_invalid");
    assert!(item.loc.is_empty());
    assert!(item.msg.starts_with("Input tag 'launch_rockets' found"));
    assert!(matches!(server_error.0, ErrorPayload::Validation(_)));
    // A reply of the wrong type is a decode error, with the frame.
    let error = client
        .request::<_, SystemEchoMessage>(&Ping)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Decode { ref frame, .. } if frame.contains("pong")),
        "{error:?}"
    );
    server.stop().await.unwrap();

    // The chat's `new_chat_message` handler answers nothing directly.
    let server = TestServer::start(chanx_example_chat::app()).await.unwrap();
    let client = Client::builder(url(server.addr(), "/ws/chat/lobby"))
        .bearer_token("alice-token")
        .request_timeout(Duration::from_millis(300))
        .discard_pushes()
        .connect()
        .await
        .unwrap();
    let silent = client
        .request::<_, ChatMessage>(&NewChatMessage {
            message: "x".into(),
        })
        .await;
    assert!(matches!(silent, Err(ClientError::Timeout(_))), "{silent:?}");
    // A payload error names the field, as pydantic does.
    #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
    #[message(action = "new_chat_message")]
    struct Malformed {
        text: String,
    }
    let error = client
        .request::<_, ChatMessage>(&Malformed { text: "x".into() })
        .await
        .unwrap_err();
    let ClientError::Server(server_error) = error else {
        panic!("{error:?}");
    };
    assert_eq!(server_error.items()[0].kind, "missing");
    assert_eq!(
        server_error.items()[0].loc,
        [
            LocSegment::Key("new_chat_message".into()),
            LocSegment::Key("payload".into()),
            LocSegment::Key("message".into())
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn chat_members_get_pushes_in_order_and_authentication_is_surfaced() {
    let server = TestServer::start(chanx_example_chat::app()).await.unwrap();
    let lobby = url(server.addr(), "/ws/chat/lobby");
    let alice = Client::builder(&lobby)
        .bearer_token("alice-token")
        .connect()
        .await
        .unwrap();
    let bob = Client::builder(&lobby)
        .query("token", "bob-token")
        .connect()
        .await
        .unwrap();
    let auth = alice.authenticated().await.unwrap();
    assert_eq!((auth.status_code, auth.status_text.as_str()), (200, "OK"));
    bob.authenticated().await.unwrap();
    let mut bob_pushes = bob.messages::<ChatPush>().unwrap();
    assert_eq!(
        bob_pushes.next().await.unwrap().unwrap(),
        Incoming::Message(ChatPush::Joined(JoinedRoom {
            room: "lobby".into()
        }))
    );
    // Who is there (alice), then bob's own arrival, typed.
    let Incoming::Message(ChatPush::Present(present)) = bob_pushes.next().await.unwrap().unwrap()
    else {
        panic!("expected presence_state");
    };
    assert_eq!(present.0.keys().collect::<Vec<_>>(), ["alice"]);
    let Incoming::Message(ChatPush::Changed(own)) = bob_pushes.next().await.unwrap().unwrap()
    else {
        panic!("expected presence_diff");
    };
    assert_eq!(own.joins.keys().collect::<Vec<_>>(), ["bob"]);
    for index in 0..30 {
        alice
            .send(&NewChatMessage {
                message: format!("m{index}"),
            })
            .await
            .unwrap();
    }
    for index in 0..30 {
        let item = bob_pushes.next().await.unwrap().unwrap();
        assert_eq!(
            item,
            Incoming::Message(ChatPush::Chat(ChatMessage {
                sender: "alice".into(),
                room: "lobby".into(),
                message: format!("m{index}"),
            }))
        );
    }
    assert!(alice.messages::<ChatPush>().is_ok());
    assert!(matches!(
        alice.messages::<ChatPush>(),
        Err(ClientError::StreamTaken)
    ));

    // A refused token: the frame says why, and the close code is Chanx's.
    let mallory = Client::builder(&lobby)
        .bearer_token("wrong")
        .connect()
        .await
        .unwrap();
    let refused = mallory.authenticated().await.unwrap_err();
    let ClientError::Unauthenticated(frame) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(frame.status_code, 401);
    let closed = mallory.closed().await;
    assert_eq!(closed.code, Some(4401));
    assert_eq!(closed.reason, "Unauthorized");

    // An HTTP refusal of the upgrade is a connect error.
    let missing = Client::connect(&url(server.addr(), "/ws/nowhere")).await;
    assert!(
        matches!(missing, Err(ConnectError::Refused { status: 404, .. })),
        "{missing:?}"
    );
    assert!(matches!(
        Client::connect("http://example.com/").await,
        Err(ConnectError::InvalidUrl { .. })
    ));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_lost_connection_is_reopened_the_hook_rejoins_and_the_gap_is_reported() {
    let server = TestServer::start(chanx_example_chat::app()).await.unwrap();
    let addr = server.addr();
    let hooks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hooks);
    let client = Client::builder(url(addr, "/ws/chat/lobby"))
        .bearer_token("alice-token")
        .reconnect(
            Reconnect::new()
                .initial(Duration::from_millis(50))
                .max(Duration::from_millis(200)),
        )
        .on_reconnect(move |client| {
            let counted = Arc::clone(&counted);
            async move {
                // Re-announce ourselves on the new connection.
                let _: Pong = client.request(&Ping).await?;
                counted.fetch_add(1, Ordering::SeqCst);
                client
                    .send(&NewChatMessage {
                        message: "back".into(),
                    })
                    .await
            }
        })
        .connect()
        .await
        .unwrap();
    client.authenticated().await.unwrap();
    let mut pushes = client.messages::<ChatPush>().unwrap();
    assert!(matches!(
        pushes.next().await.unwrap().unwrap(),
        Incoming::Message(ChatPush::Joined(_))
    ));
    for _ in 0..2 {
        // presence_state, and its own join
        pushes.next().await.unwrap().unwrap();
    }

    // The server goes away (1001 on shutdown) and comes back on the same
    // address.
    server.stop().await.unwrap();
    assert!(
        !client.is_connected() || {
            tokio::time::sleep(Duration::from_millis(100)).await;
            !client.is_connected()
        }
    );
    let restarted =
        TestServer::start_with(Server::bind(addr).await.unwrap(), chanx_example_chat::app())
            .unwrap();
    let Incoming::Reconnected { gap, attempts } = pushes.next().await.unwrap().unwrap() else {
        panic!("expected the gap to be reported first");
    };
    assert!(attempts >= 1 && gap > Duration::ZERO, "{gap:?} {attempts}");
    assert!(matches!(
        pushes.next().await.unwrap().unwrap(),
        Incoming::Message(ChatPush::Joined(_))
    ));
    assert!(matches!(
        pushes.next().await.unwrap().unwrap(),
        Incoming::Message(ChatPush::Present(_))
    ));
    assert!(matches!(
        pushes.next().await.unwrap().unwrap(),
        Incoming::Message(ChatPush::Changed(_))
    ));
    // The hook's message reaches the room on the new connection.
    assert_eq!(
        pushes.next().await.unwrap().unwrap(),
        Incoming::Message(ChatPush::Chat(ChatMessage {
            sender: "alice".into(),
            room: "lobby".into(),
            message: "back".into(),
        }))
    );
    assert_eq!(hooks.load(Ordering::SeqCst), 1);
    assert!(client.is_connected());
    client.authenticated().await.unwrap();

    // A normal close by us is not reconnected.
    assert_eq!(client.close().await.code, Some(1000));
    assert!(pushes.next().await.is_none());
    restarted.stop().await.unwrap();
}

#[tokio::test]
async fn a_connector_opens_the_stream_and_subprotocols_are_offered() {
    let server = TestServer::start(chanx_example_system::app())
        .await
        .unwrap();
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&opened);
    let addr = server.addr();
    let result = Client::builder("ws://system.internal/ws/system")
        .connector(move |host, port| {
            let counter = Arc::clone(&counter);
            async move {
                // The URL's host and default port reach the connector; it
                // decides where the bytes go (here: the test server).
                assert_eq!((host.as_str(), port), ("system.internal", 80));
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::net::TcpStream::connect(addr).await
            }
        })
        .discard_pushes()
        .connect()
        .await;
    let client = result.unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    let pong: Pong = client.request(&Ping).await.unwrap();
    assert_eq!(pong, Pong);
    client.close().await;

    // A server that speaks no subprotocol cannot accept a client that
    // insists on one: the handshake fails, as in browsers.
    let refused = Client::builder(url(server.addr(), "/ws/system"))
        .subprotocol("chanx.v1")
        .connect()
        .await;
    assert!(
        matches!(refused, Err(ConnectError::Handshake(_))),
        "{refused:?}"
    );
    server.stop().await.unwrap();

    // One that speaks it selects the first of the client's offers it knows.
    let server = TestServer::start(
        chanx_example_system::app()
            .with_config(chanx_core::ServerConfig::new().subprotocols(["chanx.v1"])),
    )
    .await
    .unwrap();
    let client = Client::builder(url(server.addr(), "/ws/system"))
        .subprotocol("other.v9")
        .subprotocol("chanx.v1")
        .discard_pushes()
        .connect()
        .await
        .unwrap();
    let pong: Pong = client.request(&Ping).await.unwrap();
    assert_eq!(pong, Pong);
    server.stop().await.unwrap();
}
