//! The Redis layer against a real `redis-server`: two servers, each with its
//! own Redis connections, share groups; Redis is killed and restarted.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_core::CloseCode;
use std::time::Duration;

use chanx_core::http::{HttpRequest, HttpResponse};
use chanx_core::layer::{ChannelName, LayerError, RedisLayer, RedisLayerConfig};
use chanx_core::{Context, Layer, Message, Router, channel};
use chanx_testing::{Communicator, RedisServer, TestServer};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "say")]
struct Say(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "shout")]
struct Shout(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "said")]
struct Said(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "whoami")]
struct WhoAmI;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "me")]
struct Me(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "notify")]
struct Notify {
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "notice")]
struct Notice(String);

#[derive(Default)]
struct Room;

#[channel(groups = ["room_{room}", "everyone"])]
impl Room {
    #[ws_handler(output = Said)]
    async fn say(&mut self, ctx: &Context, message: Say) -> Result<(), LayerError> {
        let room = format!("room_{}", ctx.param("room").unwrap_or_default());
        ctx.broadcast(&Said(message.0)).to(&room).await
    }

    #[ws_handler(output = Said)]
    async fn shout(&mut self, ctx: &Context, message: Shout) -> Result<(), LayerError> {
        ctx.broadcast(&Said(message.0))
            .to("everyone")
            .exclude_sender()
            .await
    }

    #[ws_handler]
    async fn whoami(&mut self, ctx: &Context, _: WhoAmI) -> Me {
        Me(ctx.channel_name().to_string())
    }

    #[event_handler]
    async fn notify(&mut self, event: Notify) -> Notice {
        Notice(event.text)
    }
}

async fn notify_room(request: HttpRequest) -> HttpResponse {
    let Ok(body) = request.json::<serde_json::Value>() else {
        return HttpResponse::text(StatusCode::BAD_REQUEST, "expected JSON");
    };
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    let group = format!("room_{}", request.param("room").unwrap_or_default());
    match request.layer().send_event(&group, &Notify { text }).await {
        Ok(()) => HttpResponse::status(StatusCode::ACCEPTED),
        Err(error) => HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

async fn server(redis: &RedisServer) -> TestServer {
    let config = RedisLayerConfig::new(redis.url())
        .prefix("test")
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let layer = Layer::new(RedisLayer::connect_with(config).await.unwrap());
    let app = Router::new()
        .route::<Room>("/room/{room}")
        .http(Method::POST, "/notify/{room}", notify_room)
        .with_layer(layer);
    TestServer::start(app).await.unwrap()
}

async fn ready_client(server: &TestServer, room: &str) -> (Communicator, ChannelName) {
    let mut client = server.connect(&format!("/room/{room}")).await.unwrap();
    client.send_message(&WhoAmI).await.unwrap();
    let Me(name) = client.receive_message().await.unwrap();
    (client, ChannelName::parse(&name).unwrap())
}

async fn quiet(clients: &mut [&mut Communicator]) {
    for client in clients {
        client
            .receive_nothing(Duration::from_millis(100))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn groups_span_two_servers() {
    let redis = RedisServer::start().unwrap();
    let (a, b) = (server(&redis).await, server(&redis).await);
    let (mut a1, _) = ready_client(&a, "x").await;
    let (mut b1, _) = ready_client(&b, "x").await;
    let (mut b2, _) = ready_client(&b, "x").await;
    let (mut b3, _) = ready_client(&b, "y").await;

    a1.send_message(&Say("to room x".into())).await.unwrap();
    for client in [&mut a1, &mut b1, &mut b2] {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"said","payload":"to room x"})
        );
    }
    quiet(&mut [&mut a1, &mut b1, &mut b2, &mut b3]).await;

    // Exclude the sender, across processes.
    b2.send_message(&Shout("everyone but b2".into()))
        .await
        .unwrap();
    for client in [&mut a1, &mut b1, &mut b3] {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"said","payload":"everyone but b2"})
        );
    }
    quiet(&mut [&mut a1, &mut b1, &mut b2, &mut b3]).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn an_event_from_an_http_request_reaches_its_group_on_both_servers() {
    let redis = RedisServer::start().unwrap();
    let (a, b) = (server(&redis).await, server(&redis).await);
    let (mut a1, _) = ready_client(&a, "ops").await;
    let (mut b1, _) = ready_client(&b, "ops").await;
    let (mut other, _) = ready_client(&b, "dev").await;

    let body = r#"{"text":"deploy finished"}"#;
    let request = format!(
        "POST /notify/ops HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(a.addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");

    for client in [&mut a1, &mut b1] {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"notice","payload":"deploy finished"})
        );
    }
    quiet(&mut [&mut a1, &mut b1, &mut other]).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn an_event_to_one_connection_on_another_server() {
    let redis = RedisServer::start().unwrap();
    let (a, b) = (server(&redis).await, server(&redis).await);
    let (mut b1, b1_name) = ready_client(&b, "r").await;
    let (mut b2, _) = ready_client(&b, "r").await;
    a.layer()
        .send_event_to(
            &b1_name,
            &Notify {
                text: "for b1".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        b1.receive_json().await.unwrap(),
        json!({"action":"notice","payload":"for b1"})
    );
    quiet(&mut [&mut b1, &mut b2]).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Drains what a client has received until it stays quiet; fails (rather
/// than looping) if the connection closes.
async fn settle(client: &mut Communicator) {
    client
        .drain(Duration::from_millis(100))
        .await
        .expect("the connection must stay open");
}

#[tokio::test]
async fn survives_redis_restarting() {
    let mut redis = RedisServer::start().unwrap();
    let (a, b) = (server(&redis).await, server(&redis).await);
    let (mut a1, _) = ready_client(&a, "z").await;
    let (mut b1, _) = ready_client(&b, "z").await;

    redis.kill();
    // While Redis is down a send reports it and counts it; local members
    // still get it.
    let mut failed = false;
    for _ in 0..50 {
        if a.layer()
            .broadcast("room_z", &Said("during outage".into()))
            .await
            .is_err()
        {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed, "a send with Redis down must fail, not vanish");
    assert!(a.layer().stats().publish_failures >= 1);
    settle(&mut a1).await;
    b1.receive_nothing(Duration::from_millis(100))
        .await
        .unwrap();
    // The subscriptions that dropped are gaps, per group.
    let gaps = wait_for(|| {
        let stats = b.layer().stats();
        (stats.subscription_gaps >= 1).then_some(stats)
    })
    .await;
    assert!(
        gaps.gaps_by_group
            .iter()
            .any(|(group, count)| group.as_str() == "room_z" && *count >= 1),
        "{gaps:?}"
    );

    redis.restart().unwrap();
    // Wait (bounded) until the layers have reconnected and re-subscribed.
    let mut delivered = false;
    for attempt in 0..100 {
        if a.layer()
            .broadcast("room_z", &Said(format!("probe {attempt}")))
            .await
            .is_ok()
            && b1.receive_json().await.is_ok()
        {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        delivered,
        "broadcasts must arrive again after Redis restarts"
    );
    settle(&mut a1).await;
    settle(&mut b1).await;

    // Every later broadcast arrives, both ways.
    for seq in 0..20 {
        a1.send_message(&Say(format!("after {seq}"))).await.unwrap();
        for client in [&mut a1, &mut b1] {
            assert_eq!(
                client.receive_json().await.unwrap(),
                json!({"action":"said","payload":format!("after {seq}")})
            );
        }
    }
    b1.send_message(&Say("from b".into())).await.unwrap();
    assert_eq!(
        a1.receive_json().await.unwrap(),
        json!({"action":"said","payload":"from b"})
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Polls `check` every 20 ms until it gives a value; fails after 10 s.
async fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the condition did not hold within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn server_on(url: &str) -> TestServer {
    let layer = Layer::new(
        RedisLayer::connect_with(RedisLayerConfig::new(url).prefix("test"))
            .await
            .unwrap(),
    );
    TestServer::start(
        Router::new()
            .route::<Room>("/room/{room}")
            .with_layer(layer),
    )
    .await
    .unwrap()
}

/// Pub/sub ignores the database index; the channel names do not.
#[tokio::test]
async fn two_databases_do_not_cross() {
    let redis = RedisServer::start().unwrap();
    let base = redis.url();
    let base = base.trim_end_matches('/');
    let (zero, one) = (
        server_on(&format!("{base}/0")).await,
        server_on(&format!("{base}/1")).await,
    );
    let (zero_again, _) = (server_on(&format!("{base}/0")).await, ());
    let (mut a, _) = ready_client(&zero, "same").await;
    let (mut b, _) = ready_client(&one, "same").await;
    let (mut c, _) = ready_client(&zero_again, "same").await;
    a.send_message(&Say("db 0 only".into())).await.unwrap();
    for client in [&mut a, &mut c] {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"said","payload":"db 0 only"})
        );
    }
    b.receive_nothing(Duration::from_millis(300)).await.unwrap();
    for server in [zero, one, zero_again] {
        server.stop().await.unwrap();
    }
}

/// A join is confirmed by Redis or fails: with Redis gone, a connection
/// whose groups cannot be subscribed is refused with 1011, not left deaf.
#[tokio::test]
async fn a_join_that_redis_cannot_confirm_fails() {
    let mut redis = RedisServer::start().unwrap();
    let a = server(&redis).await;
    let (mut a1, _) = ready_client(&a, "k").await;
    redis.kill();
    let mut refused = a.connect("/room/new").await.unwrap();
    refused.assert_closed(CloseCode::INTERNAL_ERROR).await;
    // The local member of an existing group is untouched.
    a1.send_message(&WhoAmI).await.unwrap();
    let _: Me = a1.receive_message().await.unwrap();
    a.stop().await.unwrap();
}

/// A broadcast to several groups tries every one and names those that
/// failed; local members of each got it.
#[tokio::test]
async fn a_multi_group_broadcast_tries_every_group() {
    let mut redis = RedisServer::start().unwrap();
    let a = server(&redis).await;
    let (mut x, _) = ready_client(&a, "x").await;
    let (mut y, _) = ready_client(&a, "y").await;
    redis.kill();
    let mut outcome = Ok(());
    for _ in 0..50 {
        outcome = a
            .layer()
            .broadcast_to(["room_x", "room_y"], &Said("both".into()))
            .await;
        if outcome.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match outcome {
        Err(LayerError::Groups(failed)) => {
            let names: Vec<&str> = failed.iter().map(|(group, _)| group.as_str()).collect();
            assert_eq!(names, ["room_x", "room_y"]);
        }
        other => panic!("expected both groups to be reported, got {other:?}"),
    }
    for client in [&mut x, &mut y] {
        let frames = client.drain(Duration::from_millis(100)).await.unwrap();
        assert!(
            frames.iter().any(|frame| frame.contains("both")),
            "{frames:?}"
        );
    }
    a.stop().await.unwrap();
}
