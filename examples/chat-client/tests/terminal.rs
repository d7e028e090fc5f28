//! The terminal client as a user runs it: a process with stdin and
//! stdout, against the chat example over TCP, talking with another member.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use chanx_client::{Client, Incoming};
use chanx_example_chat::{ChatMessage, NewChatMessage};
use chanx_testing::TestServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn line(reader: &mut (impl AsyncBufReadExt + Unpin)) -> String {
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut text))
        .await
        .expect("a line within 10 s")
        .unwrap();
    text.trim_end().to_owned()
}

#[tokio::test]
async fn typed_lines_reach_the_room_and_the_room_is_printed() {
    let server = TestServer::start(chanx_example_chat::app()).await.unwrap();
    let base = format!("ws://{}", server.addr());
    let bob = Client::builder(format!("{base}/ws/chat/lobby"))
        .bearer_token("bob-token")
        .connect()
        .await
        .unwrap();
    bob.authenticated().await.unwrap();
    let mut bob_hears = bob.messages::<ChatMessage>().unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-client"))
        .args(["--url", &base, "--room", "lobby", "--token", "alice-token"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(line(&mut stdout).await, "* joined lobby");
    // Who is in the room (bob), then alice's own arrival.
    assert_eq!(line(&mut stdout).await, "* here: bob");
    assert_eq!(line(&mut stdout).await, "* alice is here");

    stdin.write_all(b"hello from the terminal\n").await.unwrap();
    // Bob's joined_room came first; skip to the chat.
    let heard = loop {
        match bob_hears.next().await.unwrap() {
            Ok(Incoming::Message(message)) => break message,
            Ok(other) => panic!("{other:?}"),
            Err(_) => {} // joined_room and presence frames are not ChatMessages
        }
    };
    assert_eq!(
        heard,
        ChatMessage {
            sender: "alice".into(),
            room: "lobby".into(),
            message: "hello from the terminal".into()
        }
    );
    assert_eq!(
        line(&mut stdout).await,
        "[lobby] alice: hello from the terminal"
    );

    bob.send(&NewChatMessage {
        message: "hi alice".into(),
    })
    .await
    .unwrap();
    assert_eq!(line(&mut stdout).await, "[lobby] bob: hi alice");

    // End of input: the client leaves with 1000 and exits 0.
    drop(stdin);
    assert_eq!(line(&mut stdout).await, "* closed with 1000");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_token_is_reported_with_the_close_code() {
    let server = TestServer::start(chanx_example_chat::app()).await.unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-client"))
        .args([
            "--url",
            &format!("ws://{}", server.addr()),
            "--token",
            "nobody",
        ])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "chat-client: refused: 401 Unauthorized\nchat-client: closed with 4401 \"Unauthorized\""
    );
    server.stop().await.unwrap();
}
