//! The chat example: rooms in one process, and rooms across two server
//! processes sharing Redis (`--layer redis`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx::CloseCode;
use std::time::Duration;

use chanx_example_chat::{ChatMessage, JoinedRoom, NewChatMessage, app};
use chanx_testing::{Communicator, RedisServer, ServerProcess, TestServer};

async fn join(
    connect: impl std::future::Future<Output = Communicator>,
    room: &str,
) -> Communicator {
    let mut client = connect.await;
    let auth = client.receive_json().await.unwrap();
    assert_eq!(auth["payload"]["status_code"], 200, "{auth}");
    let joined: JoinedRoom = client.receive_message().await.unwrap();
    assert_eq!(joined.room, room);
    client
}

fn said(sender: &str, room: &str, message: &str) -> ChatMessage {
    ChatMessage {
        sender: sender.into(),
        room: room.into(),
        message: message.into(),
    }
}

#[tokio::test]
async fn a_message_reaches_its_room_only() {
    let server = TestServer::start(app()).await.unwrap();
    let connect = |path: &'static str| {
        let server = &server;
        async move { server.connect(path).await.unwrap() }
    };
    let mut alice = join(connect("/ws/chat/lobby?token=alice-token"), "lobby").await;
    let mut bob = join(connect("/ws/chat/lobby?token=bob-token"), "lobby").await;
    let mut carol = join(connect("/ws/chat/kitchen?token=carol-token"), "kitchen").await;

    alice
        .send_message(&NewChatMessage {
            message: "hi all".into(),
        })
        .await
        .unwrap();
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            client.receive_message::<ChatMessage>().await.unwrap(),
            said("alice", "lobby", "hi all")
        );
    }
    carol
        .send_message(&NewChatMessage {
            message: "anyone?".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        carol.receive_message::<ChatMessage>().await.unwrap(),
        said("carol", "kitchen", "anyone?")
    );
    for client in [&mut alice, &mut bob, &mut carol] {
        client
            .receive_nothing(Duration::from_millis(100))
            .await
            .unwrap();
    }
    server.stop().await.unwrap();
}

/// A private room is closed to non-members at connect: bob is refused
/// with 4403 and never reads what members say.
#[tokio::test]
async fn non_members_are_kept_out_of_a_private_room() {
    let server = TestServer::start(app()).await.unwrap();
    let mut alice = join(
        async {
            server
                .connect("/ws/chat/kitchen?token=alice-token")
                .await
                .unwrap()
        },
        "kitchen",
    )
    .await;
    let mut bob = server
        .connect("/ws/chat/kitchen?token=bob-token")
        .await
        .unwrap();
    assert_eq!(
        bob.receive_json().await.unwrap(),
        serde_json::json!({"action":"authentication","payload":{"status_code":403,"status_text":"Forbidden","data":{"detail":"kitchen is open to its members only."}}})
    );
    alice
        .send_message(&NewChatMessage {
            message: "dinner at 8".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        alice.receive_message::<ChatMessage>().await.unwrap(),
        said("alice", "kitchen", "dinner at 8")
    );
    // Bob gets the close, and nothing of the room before it.
    match bob.receive_json().await {
        Err(chanx_testing::ReceiveError::Closed { code, .. }) => {
            assert_eq!(code, Some(CloseCode::FORBIDDEN))
        }
        other => panic!("bob must be closed out, got {other:?}"),
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_without_a_token_is_refused() {
    let server = TestServer::start(app()).await.unwrap();
    let mut client = server.connect("/ws/chat/lobby").await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap()["payload"]["status_code"],
        401
    );
    client.assert_closed(CloseCode::UNAUTHORIZED).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn rooms_span_two_processes_with_redis() {
    let redis = RedisServer::start().unwrap();
    let args = ["--layer", "redis", "--redis-url", &redis.url()];
    let mut first = ServerProcess::spawn(env!("CARGO_BIN_EXE_chat"), args).unwrap();
    let mut second = ServerProcess::spawn(env!("CARGO_BIN_EXE_chat"), args).unwrap();

    let mut alice = join(
        async {
            Communicator::connect_tcp(first.addr(), "/ws/chat/lobby?token=alice-token")
                .await
                .unwrap()
        },
        "lobby",
    )
    .await;
    let mut bob = join(
        async {
            Communicator::connect_tcp(second.addr(), "/ws/chat/lobby?token=bob-token")
                .await
                .unwrap()
        },
        "lobby",
    )
    .await;
    let mut carol = join(
        async {
            Communicator::connect_tcp(second.addr(), "/ws/chat/kitchen?token=carol-token")
                .await
                .unwrap()
        },
        "kitchen",
    )
    .await;

    alice
        .send_message(&NewChatMessage {
            message: "across".into(),
        })
        .await
        .unwrap();
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            client.receive_message::<ChatMessage>().await.unwrap(),
            said("alice", "lobby", "across")
        );
    }
    bob.send_message(&NewChatMessage {
        message: "and back".into(),
    })
    .await
    .unwrap();
    for client in [&mut bob, &mut alice] {
        assert_eq!(
            client.receive_message::<ChatMessage>().await.unwrap(),
            said("bob", "lobby", "and back")
        );
    }
    carol
        .receive_nothing(Duration::from_millis(200))
        .await
        .unwrap();

    // Ctrl-C: clients get 1001 and the process exits cleanly.
    let status = first.interrupt().unwrap();
    assert!(status.success(), "{status}");
    alice.assert_closed(CloseCode::GOING_AWAY).await;
    assert!(second.interrupt().unwrap().success());
}
