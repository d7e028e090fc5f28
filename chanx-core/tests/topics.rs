//! Topics (Chanx 2.10+), frame by frame over real TCP: subscribe,
//! unsubscribe, refusals, topic handlers, events pushed with `seq`, the
//! standalone route, hooks and limits. Every case runs on the in-memory
//! layer and, with feature `redis`, on a real Redis shared by two servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::time::Duration;

use chanx_core::messages::{Ping, Pong};
use chanx_core::topic::{Standalone, TopicContext};
use chanx_core::{Layer, Message, Router, ServerConfig, Settings, channel, topic};
use chanx_testing::{Communicator, TestServer};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "cancel")]
struct Cancel;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "cancelled")]
struct Cancelled(String);

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "reply")]
struct Reply(String);

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "reply_created")]
struct ReplyCreated(String);

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "new_reply")]
struct NewReply(String);

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "state")]
struct State(String);

/// One discussion's replies.
#[derive(Default)]
struct DiscussionTopic;

#[topic(pattern = "discussion:{pk}")]
impl DiscussionTopic {
    #[ws_handler]
    async fn cancel(&mut self, ctx: &TopicContext, _: Cancel) -> Cancelled {
        Cancelled(format!("discussion-{}", ctx.topic_param("pk").unwrap()))
    }

    #[ws_handler]
    async fn reply(&mut self, ctx: &TopicContext, message: Reply) -> ReplyCreated {
        ReplyCreated(format!(
            "{} on {}",
            message.0,
            ctx.topic_param("pk").unwrap()
        ))
    }

    #[event_handler]
    async fn new_reply(&mut self, event: NewReply) -> ReplyCreated {
        ReplyCreated(event.0)
    }
}

#[derive(Default)]
struct RoomTopic;

#[topic(pattern = "room:{room_id}")]
impl RoomTopic {
    /// The same action as `DiscussionTopic`'s: topics scope their actions.
    #[ws_handler]
    async fn cancel(&mut self, ctx: &TopicContext, _: Cancel) -> Cancelled {
        Cancelled(format!("room-{}", ctx.topic_param("room_id").unwrap()))
    }
}

#[derive(Default)]
struct PrivateTopic;

#[topic(pattern = "private:{pk}")]
impl PrivateTopic {
    #[authorize]
    async fn authorize(ctx: &TopicContext) -> bool {
        ctx.topic_param("pk") == Some("allowed")
    }

    #[event_handler]
    async fn new_reply(&mut self, event: NewReply) -> ReplyCreated {
        ReplyCreated(event.0)
    }
}

static LIFECYCLE: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[derive(Default)]
struct LifecycleTopic {
    name: String,
}

#[topic(pattern = "lifecycle:{name}")]
impl LifecycleTopic {
    #[on_subscribe]
    async fn subscribed(&mut self, ctx: &TopicContext) -> State {
        self.name = ctx.topic_param("name").unwrap().to_owned();
        LIFECYCLE
            .lock()
            .unwrap()
            .push(format!("subscribe:{}", self.name));
        State("state".to_owned())
    }

    #[on_unsubscribe]
    async fn unsubscribed(&mut self) {
        LIFECYCLE
            .lock()
            .unwrap()
            .push(format!("unsubscribe:{}", self.name));
    }
}

#[derive(Default)]
struct Main;

#[channel(topics = [DiscussionTopic, RoomTopic, PrivateTopic, LifecycleTopic])]
impl Main {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn app(layer: Layer) -> Router {
    Router::new()
        .with_layer(layer)
        .route::<Main>("/ws/hub")
        .route::<Standalone<DiscussionTopic>>("/ws/discussion/{pk}")
}

/// Two servers on one layer kind: the same server twice in memory, two
/// servers with their own Redis connections on Redis.
struct Servers {
    a: TestServer,
    b: TestServer,
    #[cfg(feature = "redis")]
    _redis: Option<chanx_testing::RedisServer>,
}

async fn memory() -> Servers {
    let layer = Layer::memory();
    let a = TestServer::start(app(layer.clone())).await.unwrap();
    let b = TestServer::start(app(layer)).await.unwrap();
    Servers {
        a,
        b,
        #[cfg(feature = "redis")]
        _redis: None,
    }
}

#[cfg(feature = "redis")]
async fn redis() -> Servers {
    use chanx_core::layer::{RedisLayer, RedisLayerConfig};
    let redis = chanx_testing::RedisServer::start().unwrap();
    let layer = || async {
        Layer::new(
            RedisLayer::connect_with(RedisLayerConfig::new(redis.url()).prefix("topics"))
                .await
                .unwrap(),
        )
    };
    let a = TestServer::start(app(layer().await)).await.unwrap();
    let b = TestServer::start(app(layer().await)).await.unwrap();
    Servers {
        a,
        b,
        _redis: Some(redis),
    }
}

/// Runs `case` on each layer.
macro_rules! on_both_layers {
    ($($name:ident),* $(,)?) => {
        mod memory_layer {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::memory().await).await;
                }
            )*
        }
        #[cfg(feature = "redis")]
        mod redis_layer {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::redis().await).await;
                }
            )*
        }
    };
}

on_both_layers!(
    subscribe_confirms_with_the_topic_and_ref,
    topics_share_an_action_name_and_replies_carry_topic_and_ref,
    authorize_refuses_per_topic,
    unknown_and_unsubscribed_topics_are_refused,
    events_reach_subscribers_on_every_server_with_their_seq,
    unsubscribe_stops_delivery,
    a_standalone_route_subscribes_on_connect_and_shares_the_group,
);

async fn subscribe_confirms_with_the_topic_and_ref(servers: Servers) {
    let mut client = servers.a.connect("/ws/hub").await.unwrap();
    client
        .send_text(r#"{"version":1,"topic":"discussion:5","ref":"1","action":"subscribe"}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"subscribed","payload":null,"version":1,"topic":"discussion:5","ref":"1"}"#
    );
    // Subscribing again confirms again, once.
    assert_eq!(
        client.subscribe("discussion:5", "2").await.unwrap(),
        json!({"action":"subscribed","payload":null,"version":1,"topic":"discussion:5","ref":"2"})
    );
    client
        .receive_nothing(Duration::from_millis(100))
        .await
        .unwrap();
}

async fn topics_share_an_action_name_and_replies_carry_topic_and_ref(servers: Servers) {
    let mut client = servers.a.connect("/ws/hub").await.unwrap();
    client.subscribe("discussion:5", "1").await.unwrap();
    client.subscribe("room:9", "2").await.unwrap();
    client
        .send_to_topic("discussion:5", "3", &Cancel)
        .await
        .unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"cancelled","payload":"discussion-5","version":1,"topic":"discussion:5","ref":"3"}"#
    );
    client.send_to_topic("room:9", "4", &Cancel).await.unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"cancelled","payload":"room-9","version":1,"topic":"room:9","ref":"4"}"#
    );
    client
        .send_to_topic("discussion:5", "5", &Reply("hello".into()))
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"reply_created","payload":"hello on 5","version":1,"topic":"discussion:5","ref":"5"})
    );
    // A frame without a topic is the channel's own.
    client.send_text(r#"{"action":"ping"}"#).await.unwrap();
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"pong","payload":null}"#
    );
}

async fn authorize_refuses_per_topic(servers: Servers) {
    let mut client = servers.a.connect("/ws/hub").await.unwrap();
    assert_eq!(
        client.subscribe("private:secret", "1").await.unwrap(),
        json!({
            "action": "error",
            "payload": {"reason": "unauthorized", "detail": "Not allowed to subscribe to 'private:secret'"},
            "version": 1, "topic": "private:secret", "ref": "1",
        })
    );
    // Refused means not subscribed: its events do not arrive.
    servers
        .b
        .layer()
        .topic::<PrivateTopic>("private:secret")
        .send(&NewReply("leak".into()))
        .await
        .unwrap();
    client
        .receive_nothing(Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(
        client.subscribe("private:allowed", "2").await.unwrap()["action"],
        "subscribed"
    );
}

async fn unknown_and_unsubscribed_topics_are_refused(servers: Servers) {
    let mut client = servers.a.connect("/ws/hub").await.unwrap();
    assert_eq!(
        client.subscribe("nope:1", "1").await.unwrap(),
        json!({
            "action": "error",
            "payload": {"reason": "unknown_topic", "detail": "Unknown topic 'nope:1'"},
            "version": 1, "topic": "nope:1", "ref": "1",
        })
    );
    // A parameter never spans a `:`.
    assert_eq!(
        client.subscribe("discussion:5:6", "2").await.unwrap()["payload"]["reason"],
        "unknown_topic"
    );
    client
        .send_to_topic("discussion:5", "3", &Cancel)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({
            "action": "error",
            "payload": {"reason": "not_subscribed", "detail": "Not subscribed to 'discussion:5'"},
            "version": 1, "topic": "discussion:5", "ref": "3",
        })
    );
    // An action the topic does not take lists the topic's own actions.
    client.subscribe("discussion:5", "4").await.unwrap();
    client
        .send_text(r#"{"version":1,"topic":"discussion:5","ref":"5","action":"ping"}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({
            "action": "error",
            "payload": [{
                "type": "union_tag_invalid", "loc": [],
                "msg": "Input tag 'ping' found using 'action' does not match any of the expected tags: 'cancel', 'reply'",
            }],
            "version": 1, "topic": "discussion:5", "ref": "5",
        })
    );
    // A payload that does not validate: the error is stamped too.
    client
        .send_text(r#"{"version":1,"topic":"discussion:5","ref":"6","action":"reply","payload":5}"#)
        .await
        .unwrap();
    let error = client.receive_json().await.unwrap();
    assert_eq!(error["payload"][0]["type"], "string_type");
    assert_eq!(
        (error["topic"].as_str(), error["ref"].as_str()),
        (Some("discussion:5"), Some("6"))
    );
}

async fn events_reach_subscribers_on_every_server_with_their_seq(servers: Servers) {
    let mut on_a = servers.a.connect("/ws/hub").await.unwrap();
    let mut on_b = servers.b.connect("/ws/hub").await.unwrap();
    let mut elsewhere = servers.b.connect("/ws/hub").await.unwrap();
    on_a.subscribe("discussion:5", "1").await.unwrap();
    on_b.subscribe("discussion:5", "1").await.unwrap();
    elsewhere.subscribe("discussion:6", "1").await.unwrap();
    let layer = servers.a.layer();
    layer
        .topic::<DiscussionTopic>("discussion:5")
        .send(&NewReply("a".into()))
        .seq(142)
        .await
        .unwrap();
    for client in [&mut on_a, &mut on_b] {
        assert_eq!(
            client.receive_text().await.unwrap(),
            r#"{"action":"reply_created","payload":"a","version":1,"topic":"discussion:5","seq":142}"#
        );
    }
    // Unset by default: a topic with several writers promises no order.
    layer
        .topic::<DiscussionTopic>("discussion:5")
        .send(&NewReply("b".into()))
        .await
        .unwrap();
    for client in [&mut on_a, &mut on_b] {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"reply_created","payload":"b","version":1,"topic":"discussion:5"})
        );
    }
    // Another topic of the same type, and the same topic string of another
    // type, are other groups.
    layer
        .topic::<RoomTopic>("discussion:6")
        .send(&NewReply("c".into()))
        .await
        .unwrap();
    elsewhere
        .receive_nothing(Duration::from_millis(200))
        .await
        .unwrap();
}

async fn unsubscribe_stops_delivery(servers: Servers) {
    let mut client = servers.a.connect("/ws/hub").await.unwrap();
    client.subscribe("discussion:5", "1").await.unwrap();
    assert_eq!(
        client.unsubscribe("discussion:5", "2").await.unwrap(),
        json!({"action":"unsubscribed","payload":null,"version":1,"topic":"discussion:5","ref":"2"})
    );
    servers
        .b
        .layer()
        .topic::<DiscussionTopic>("discussion:5")
        .send(&NewReply("gone".into()))
        .await
        .unwrap();
    client
        .receive_nothing(Duration::from_millis(300))
        .await
        .unwrap();
    // Frames to it are refused again.
    client
        .send_to_topic("discussion:5", "3", &Cancel)
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap()["payload"]["reason"],
        "not_subscribed"
    );
}

async fn a_standalone_route_subscribes_on_connect_and_shares_the_group(servers: Servers) {
    let mut standalone = servers.a.connect("/ws/discussion/5").await.unwrap();
    assert_eq!(
        standalone.receive_text().await.unwrap(),
        r#"{"action":"subscribed","payload":null,"version":1,"topic":"discussion:5"}"#
    );
    // No topic on the frame: the route serves exactly one.
    standalone
        .send_text(r#"{"action":"cancel","ref":"1"}"#)
        .await
        .unwrap();
    assert_eq!(
        standalone.receive_text().await.unwrap(),
        r#"{"action":"cancelled","payload":"discussion-5","version":1,"topic":"discussion:5","ref":"1"}"#
    );
    // The same group as on the hub.
    let mut hub = servers.b.connect("/ws/hub").await.unwrap();
    hub.subscribe("discussion:5", "1").await.unwrap();
    servers
        .b
        .layer()
        .topic::<DiscussionTopic>("discussion:5")
        .send(&NewReply("hi".into()))
        .seq(1)
        .await
        .unwrap();
    for client in [&mut standalone, &mut hub] {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"reply_created","payload":"hi","version":1,"topic":"discussion:5","seq":1})
        );
    }
}

#[tokio::test]
async fn hooks_run_and_state_is_not_a_reply() {
    let server = TestServer::start(app(Layer::memory())).await.unwrap();
    LIFECYCLE
        .lock()
        .unwrap()
        .retain(|event| !event.ends_with(":a") && !event.ends_with(":b"));
    let mut client = server.connect("/ws/hub").await.unwrap();
    assert_eq!(
        client.subscribe("lifecycle:a", "1").await.unwrap()["ref"],
        "1"
    );
    // Pushed by the hook: stamped with the topic, without the request's ref.
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"state","payload":"state","version":1,"topic":"lifecycle:a"}"#
    );
    client.unsubscribe("lifecycle:a", "2").await.unwrap();
    client.subscribe("lifecycle:b", "3").await.unwrap();
    client.receive_json().await.unwrap();
    // Disconnecting ends the subscription too.
    client.disconnect().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let events: Vec<String> = LIFECYCLE
            .lock()
            .unwrap()
            .iter()
            .filter(|event| event.ends_with(":a") || event.ends_with(":b"))
            .cloned()
            .collect();
        if events.len() == 4 || tokio::time::Instant::now() > deadline {
            assert_eq!(
                events,
                [
                    "subscribe:a",
                    "unsubscribe:a",
                    "subscribe:b",
                    "unsubscribe:b"
                ]
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_bad_envelope_never_reaches_a_topic() {
    let server = TestServer::start(app(Layer::memory())).await.unwrap();
    let mut client = server.connect("/ws/hub").await.unwrap();
    for (frame, kind, msg) in [
        (
            r#"{"version":"x","topic":"discussion:5","action":"subscribe"}"#,
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            r#"{"topic":5,"action":"subscribe"}"#,
            "string_type",
            "Input should be a valid string",
        ),
    ] {
        client.send_text(frame).await.unwrap();
        let error = client.receive_json().await.unwrap();
        assert_eq!(error["payload"][0]["type"], kind, "{frame}");
        assert_eq!(error["payload"][0]["msg"], msg, "{frame}");
        assert_eq!(error.get("topic"), None, "{frame}");
    }
    let long = format!(
        r#"{{"topic":"discussion:{}","action":"subscribe"}}"#,
        "9".repeat(300)
    );
    client.send_text(long).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"error","payload":[{"type":"string_too_long","loc":["topic"],"msg":"String should have at most 256 characters"}]})
    );
}

#[tokio::test]
async fn subscriptions_are_bounded_per_connection() {
    let router = app(Layer::memory()).with_config(ServerConfig::new().max_subscriptions(2));
    let server = TestServer::start(router).await.unwrap();
    let mut client = server.connect("/ws/hub").await.unwrap();
    client.subscribe("discussion:1", "1").await.unwrap();
    client.subscribe("discussion:2", "2").await.unwrap();
    assert_eq!(
        client.subscribe("discussion:3", "3").await.unwrap(),
        json!({
            "action": "error",
            "payload": {"reason": "too_many_subscriptions", "detail": "Too many subscriptions: at most 2 per connection"},
            "version": 1, "topic": "discussion:3", "ref": "3",
        })
    );
    // Leaving one makes room.
    client.unsubscribe("discussion:1", "4").await.unwrap();
    assert_eq!(
        client.subscribe("discussion:3", "5").await.unwrap()["action"],
        "subscribed"
    );
}

#[tokio::test]
async fn completion_frames_are_stamped_with_the_topic() {
    let router = app(Layer::memory()).with_settings(Settings::new().send_completion(true));
    let server = TestServer::start(router).await.unwrap();
    let mut client = server.connect("/ws/hub").await.unwrap();
    client.subscribe("discussion:5", "1").await.unwrap();
    client
        .send_to_topic("discussion:5", "2", &Cancel)
        .await
        .unwrap();
    assert_eq!(client.receive_json().await.unwrap()["action"], "cancelled");
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"complete","payload":null,"version":1,"topic":"discussion:5","ref":"2"}"#
    );
    server
        .layer()
        .topic::<DiscussionTopic>("discussion:5")
        .send(&NewReply("x".into()))
        .seq(7)
        .await
        .unwrap();
    assert_eq!(client.receive_json().await.unwrap()["seq"], 7);
    assert_eq!(
        client.receive_text().await.unwrap(),
        r#"{"action":"event_complete","payload":null,"version":1,"topic":"discussion:5","seq":7}"#
    );
}

#[tokio::test]
async fn a_standalone_route_without_the_patterns_parameter_fails_validation() {
    let router = Router::new().route::<Standalone<DiscussionTopic>>("/ws/misrouted");
    let error = router.validate().unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"the router is not ready to serve: route "/ws/misrouted" serves topic `DiscussionTopic` ("discussion:{pk}") on its own, but has no {pk} parameter"#
    );
    // Driven without the server's validation, it closes each connection
    // instead of guessing.
    let mut client = Communicator::connect(&router, "/ws/misrouted")
        .await
        .unwrap();
    client
        .assert_closed(chanx_core::CloseCode::INTERNAL_ERROR)
        .await;
}

#[tokio::test]
async fn a_refused_standalone_subscription_closes_with_1008() {
    let router = Router::new().route::<Standalone<PrivateTopic>>("/ws/private/{pk}");
    router.validate().unwrap();
    let server = TestServer::start(router).await.unwrap();
    let mut client = server.connect("/ws/private/secret").await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap()["payload"]["reason"],
        "unauthorized"
    );
    client.assert_closed(chanx_core::CloseCode::POLICY).await;
    let mut allowed = Communicator::connect(
        &Router::new().route::<Standalone<PrivateTopic>>("/ws/private/{pk}"),
        "/ws/private/allowed",
    )
    .await
    .unwrap();
    assert_eq!(
        allowed.receive_json().await.unwrap()["action"],
        "subscribed"
    );
}
