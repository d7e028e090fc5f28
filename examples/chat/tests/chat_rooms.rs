//! The chat example: rooms in one process, and rooms across two server
//! processes sharing Redis (`--layer redis`), with who is in each room
//! (presence), also after a server process is killed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx::CloseCode;
use std::time::Duration;

use chanx_example_chat::{ChatMessage, JoinedRoom, NewChatMessage, app};
use chanx_testing::{Communicator, RedisServer, ServerProcess, TestServer};

async fn join(
    connect: impl std::future::Future<Output = Communicator>,
    room: &str,
) -> Communicator {
    let (client, _) = join_with_state(connect, room).await;
    client
}

/// Joins and returns who was already in the room (`presence_state`, by
/// user); checks the member's own join (`presence_diff`) follows it.
async fn join_with_state(
    connect: impl std::future::Future<Output = Communicator>,
    room: &str,
) -> (Communicator, Vec<String>) {
    let mut client = connect.await;
    let auth = client.receive_json().await.unwrap();
    assert_eq!(auth["payload"]["status_code"], 200, "{auth}");
    let joined: JoinedRoom = client.receive_message().await.unwrap();
    assert_eq!(joined.room, room);
    let state = client.receive_json().await.unwrap();
    assert_eq!(state["action"], "presence_state", "{state}");
    let present = state["payload"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let own = client.receive_json().await.unwrap();
    assert_eq!(own["action"], "presence_diff", "{own}");
    (client, present)
}

/// The next frame is a `presence_diff`: the users that joined and left.
async fn diff(client: &mut Communicator) -> (Vec<String>, Vec<String>) {
    let frame = client.receive_json().await.unwrap();
    assert_eq!(frame["action"], "presence_diff", "{frame}");
    let users = |side: &str| {
        frame["payload"][side]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    (users("joins"), users("leaves"))
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
    let (mut bob, present) =
        join_with_state(connect("/ws/chat/lobby?token=bob-token"), "lobby").await;
    assert_eq!(present, ["alice"]);
    assert_eq!(diff(&mut alice).await, (vec!["bob".to_owned()], vec![]));
    let (mut carol, present) =
        join_with_state(connect("/ws/chat/kitchen?token=carol-token"), "kitchen").await;
    assert!(present.is_empty(), "the kitchen was empty: {present:?}");

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
    // Bob leaves: alice sees it, carol (another room) does not.
    bob.disconnect().await.unwrap();
    assert_eq!(diff(&mut alice).await, (vec![], vec!["bob".to_owned()]));
    carol
        .receive_nothing(Duration::from_millis(100))
        .await
        .unwrap();
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
    let (mut bob, present) = join_with_state(
        async {
            Communicator::connect_tcp(second.addr(), "/ws/chat/lobby?token=bob-token")
                .await
                .unwrap()
        },
        "lobby",
    )
    .await;
    // Alice, on the other process, is already in bob's view, and bob in hers.
    assert_eq!(present, ["alice"]);
    assert_eq!(diff(&mut alice).await, (vec!["bob".to_owned()], vec![]));
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

/// Presence across two processes on Redis: each member sees the other, a
/// second connection of one user is one presence, and when a process is
/// killed (SIGKILL: no goodbye) its members leave the other's view within
/// the default bound of 10 s.
#[tokio::test]
async fn presence_spans_processes_and_survives_a_crash() {
    let redis = RedisServer::start().unwrap();
    let args = ["--layer", "redis", "--redis-url", &redis.url()];
    let first = ServerProcess::spawn(env!("CARGO_BIN_EXE_chat"), args).unwrap();
    let second = ServerProcess::spawn(env!("CARGO_BIN_EXE_chat"), args).unwrap();
    let on = |server: &ServerProcess, token: &str| {
        let (addr, path) = (server.addr(), format!("/ws/chat/lobby?token={token}"));
        // Long enough to wait out a dead process's timeout.
        async move {
            Communicator::builder(path)
                .timeout(Duration::from_secs(15))
                .connect_tcp(addr)
                .await
                .unwrap()
        }
    };

    let (mut alice, present) = join_with_state(on(&first, "alice-token"), "lobby").await;
    assert!(present.is_empty());
    let (mut bob, present) = join_with_state(on(&second, "bob-token"), "lobby").await;
    assert_eq!(present, ["alice"]);
    assert_eq!(diff(&mut alice).await, (vec!["bob".to_owned()], vec![]));
    // Alice again, on the second process: still one presence for bob.
    let (_alice_again, present) = join_with_state(on(&second, "alice-token"), "lobby").await;
    assert_eq!(present, ["alice", "bob"]);
    assert_eq!(diff(&mut alice).await, (vec!["alice".to_owned()], vec![]));
    assert_eq!(diff(&mut bob).await, (vec!["alice".to_owned()], vec![]));

    // The second process dies without a word.
    second.signal("-KILL").unwrap();
    let killed = std::time::Instant::now();
    let frame = alice.receive_json().await.unwrap();
    let gone = killed.elapsed();
    assert_eq!(frame["action"], "presence_diff", "{frame}");
    let leaves = frame["payload"]["leaves"].as_object().unwrap();
    assert_eq!(
        leaves.keys().collect::<Vec<_>>(),
        ["alice", "bob"],
        "{frame}"
    );
    // Bob's meta and alice's second one: alice's first stays.
    assert_eq!(leaves["alice"]["metas"].as_array().unwrap().len(), 1);
    assert!(
        gone <= Duration::from_secs(10),
        "the members left after {gone:?}"
    );
    let _ = bob.receive_json().await;
    let _ = first;
}
