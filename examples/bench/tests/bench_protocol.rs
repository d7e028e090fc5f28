//! The bench protocol, exactly as other implementations are compared on it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_example_bench::app;
use chanx_testing::{Communicator, TestServer};
use serde_json::json;

#[tokio::test]
async fn echo_and_join_over_tcp() {
    let server = TestServer::start(app()).await.unwrap();
    let mut client = server.connect("/ws/bench").await.unwrap();

    for seq in [0_i64, 1, -5, i64::MAX] {
        client
            .send_json(&json!({"action":"echo","payload":{"text":"héllo \"quoted\"","seq":seq}}))
            .await
            .unwrap();
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"echo_result","payload":{"text":"héllo \"quoted\"","seq":seq}})
        );
    }
    client.send_text(r#"{"action":"join"}"#).await.unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"joined","payload":null}"#
    );

    client
        .send_text(r#"{"action":"echo","payload":{"text":"x","seq":1.5}}"#)
        .await
        .unwrap();
    let error = client.receive_json().await.unwrap();
    assert_eq!(
        error["payload"][0]["loc"],
        json!(["echo", "payload", "seq"])
    );

    client.disconnect().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn echo_in_process_preserves_order() {
    let app = app();
    let mut client = Communicator::connect(&app, "/ws/bench").await.unwrap();
    for seq in 0..100 {
        client
            .send_json(&json!({"action":"echo","payload":{"text":"t","seq":seq}}))
            .await
            .unwrap();
    }
    for seq in 0..100 {
        assert_eq!(client.receive_json().await.unwrap()["payload"]["seq"], seq);
    }
}

#[tokio::test]
async fn broadcast_reaches_every_lobby_member() {
    let server = TestServer::start(app()).await.unwrap();
    let mut clients = server.connect_many("/ws/bench", 3).await.unwrap();
    // Frames are dispatched after the lobby is joined.
    for client in &mut clients {
        client.send_text(r#"{"action":"join"}"#).await.unwrap();
        assert_eq!(
            client.receive_text().await.unwrap(),
            r#"{"action":"joined","payload":null}"#
        );
    }
    clients[1]
        .send_json(
            &json!({"action":"broadcast","payload":{"seq":7,"from":"b","nested":{"a":[1,2]}}}),
        )
        .await
        .unwrap();
    for client in &mut clients {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"broadcast_result","payload":{"seq":7,"from":"b","nested":{"a":[1,2]}}})
        );
    }
    // Not an object: refused, nothing broadcast.
    clients[0]
        .send_text(r#"{"action":"broadcast","payload":[1]}"#)
        .await
        .unwrap();
    assert_eq!(
        clients[0].receive_json().await.unwrap()["payload"][0]["loc"],
        json!(["broadcast", "payload"])
    );
    for client in &mut clients {
        client
            .receive_nothing(std::time::Duration::from_millis(50))
            .await
            .unwrap();
    }
    server.stop().await.unwrap();
}
