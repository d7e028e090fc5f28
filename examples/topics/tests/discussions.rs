//! The topics example over real TCP, frame by frame: the hub multiplexes
//! discussions, discussion 403 is refused, replies are answered on their
//! topic, `POST /discussions/{pk}/replies` pushes `new_reply` with an
//! increasing `seq`, the standalone route serves one discussion, and two
//! server processes on one Redis share the discussions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chanx_testing::{RedisServer, ServerProcess, TestServer, http_request};
use serde_json::json;

async fn post(addr: std::net::SocketAddr, pk: &str, body: &str) -> (u16, String) {
    http_request(
        addr,
        "POST",
        &format!("/discussions/{pk}/replies"),
        &[("Content-Type", "application/json")],
        body,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_hub_serves_discussions_as_chanx_topics() {
    let server = TestServer::start(chanx_example_topics::app())
        .await
        .unwrap();
    let mut hub = server.connect("/ws/hub").await.unwrap();
    hub.send_text(r#"{"version":1,"topic":"discussion:5","ref":"1","action":"subscribe"}"#)
        .await
        .unwrap();
    assert_eq!(
        hub.receive_text().await.unwrap(),
        r#"{"action":"subscribed","payload":null,"version":1,"topic":"discussion:5","ref":"1"}"#
    );
    assert_eq!(
        hub.subscribe("discussion:403", "2").await.unwrap(),
        json!({
            "action": "error",
            "payload": {"reason": "unauthorized", "detail": "Not allowed to subscribe to 'discussion:403'"},
            "version": 1, "topic": "discussion:403", "ref": "2",
        })
    );
    hub.send_text(
        r#"{"version":1,"topic":"discussion:5","ref":"3","action":"reply","payload":"hello"}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        hub.receive_text().await.unwrap(),
        r#"{"action":"reply_created","payload":"hello on 5","version":1,"topic":"discussion:5","ref":"3"}"#
    );
    for seq in 1..=3 {
        let (status, body) = post(server.addr(), "5", &format!("\"reply {seq}\"")).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            json!({"topic": "discussion:5", "seq": seq})
        );
        assert_eq!(
            hub.receive_text().await.unwrap(),
            format!(
                r#"{{"action":"new_reply","payload":"reply {seq}","version":1,"topic":"discussion:5","seq":{seq}}}"#
            )
        );
    }
    // Another discussion has its own sequence, and this hub is not in it.
    let (status, body) = post(server.addr(), "6", "\"elsewhere\"").await;
    assert_eq!(
        (status, body.as_str()),
        (202, r#"{"seq":1,"topic":"discussion:6"}"#)
    );
    hub.receive_nothing(Duration::from_millis(200))
        .await
        .unwrap();
    // `ping` outside any topic.
    hub.send_text(r#"{"action":"ping"}"#).await.unwrap();
    assert_eq!(
        hub.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null}"#
    );
}

#[tokio::test]
async fn the_standalone_route_serves_one_discussion() {
    let server = TestServer::start(chanx_example_topics::app())
        .await
        .unwrap();
    let mut client = server.connect("/ws/discussion/7").await.unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"subscribed","payload":null,"version":1,"topic":"discussion:7"}"#
    );
    client
        .send_text(r#"{"action":"reply","payload":"hi","ref":"r"}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"reply_created","payload":"hi on 7","version":1,"topic":"discussion:7","ref":"r"}"#
    );
    post(server.addr(), "7", "\"pushed\"").await;
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"new_reply","payload":"pushed","version":1,"topic":"discussion:7","seq":1})
    );
    // The private discussion cannot be opened standalone either.
    let mut refused = server.connect("/ws/discussion/403").await.unwrap();
    assert_eq!(
        refused.receive_json().await.unwrap()["payload"]["reason"],
        "unauthorized"
    );
    refused.assert_closed(chanx::CloseCode::POLICY).await;
}

#[tokio::test]
async fn the_reply_route_refuses_what_it_cannot_number() {
    let server = TestServer::start(chanx_example_topics::app())
        .await
        .unwrap();
    let addr = server.addr();
    // Not a discussion number.
    assert_eq!(post(addr, "abc", "\"x\"").await.0, 400);
    // Not a JSON string.
    assert_eq!(post(addr, "5", "{\"text\":1}").await.0, 400);
    // Not JSON at all, by its content type.
    let (status, _) = http_request(addr, "POST", "/discussions/5/replies", &[], "\"x\"")
        .await
        .unwrap();
    assert_eq!(status, 415);
}

/// Two `topics` processes on one Redis: a subscriber on one receives the
/// replies posted to the other, numbered by the process that numbered them.
#[tokio::test]
async fn discussions_span_processes_on_redis() {
    let redis = RedisServer::start().unwrap();
    let args = ["--layer", "redis", "--redis-url", &redis.url()];
    let a = ServerProcess::spawn(env!("CARGO_BIN_EXE_topics"), args).unwrap();
    let b = ServerProcess::spawn(env!("CARGO_BIN_EXE_topics"), args).unwrap();
    let mut on_a = chanx_testing::Communicator::connect_tcp(a.addr(), "/ws/hub")
        .await
        .unwrap();
    let mut on_b = chanx_testing::Communicator::connect_tcp(b.addr(), "/ws/discussion/9")
        .await
        .unwrap();
    assert_eq!(
        on_a.subscribe("discussion:9", "1").await.unwrap()["action"],
        "subscribed"
    );
    assert_eq!(on_b.receive_json().await.unwrap()["action"], "subscribed");
    for seq in 1..=2 {
        let (status, body) = post(b.addr(), "9", &format!("\"from b {seq}\"")).await;
        assert_eq!(status, 202, "{body}");
        for client in [&mut on_a, &mut on_b] {
            assert_eq!(
                client.receive_json().await.unwrap(),
                json!({"action":"new_reply","payload":format!("from b {seq}"),"version":1,"topic":"discussion:9","seq":seq})
            );
        }
    }
}
