//! The assistant example over real sockets: refused without a good token,
//! answering with one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx::CloseCode;
use chanx::messages::{Ping, Pong};
use chanx_example_assistant::{MessagePayload, NewMessage, ReplyMessage, app};
use chanx_testing::{Communicator, TestServer};
use serde_json::json;

#[tokio::test]
async fn refuses_missing_and_bad_tokens_with_4401() {
    let server = TestServer::start(app()).await.unwrap();
    for (path, detail) in [
        (
            "/ws/assistants",
            "Authentication credentials were not provided.",
        ),
        ("/ws/assistants?token=nope", "Invalid token."),
    ] {
        let mut client = server.connect(path).await.unwrap();
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"authentication","payload":{"status_code":401,"status_text":"Unauthorized","data":{"detail":detail}}})
        );
        client.assert_closed(CloseCode::UNAUTHORIZED).await;
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn answers_with_a_query_or_bearer_token() {
    let server = TestServer::start(app()).await.unwrap();
    let by_query = server
        .connect("/ws/assistants?token=alice-token")
        .await
        .unwrap();
    let by_header = Communicator::builder("/ws/assistants")
        .header("Authorization", "Bearer bob-token")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    for mut client in [by_query, by_header] {
        assert_eq!(
            client.receive_text().await.unwrap(),
            r#"{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"detail":"OK"}}}"#
        );
        client
            .send_message(&NewMessage(MessagePayload {
                content: "Hello assistant!".into(),
            }))
            .await
            .unwrap();
        assert_eq!(
            client.receive_message::<ReplyMessage>().await.unwrap(),
            ReplyMessage(MessagePayload {
                content: "Reply: Hello assistant!".into()
            })
        );
        client.send_message(&Ping).await.unwrap();
        assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    }
    server.stop().await.unwrap();
}
