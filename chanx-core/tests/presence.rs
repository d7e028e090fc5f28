//! Presence over real TCP: `#[channel(presence = …)]` with the identity as
//! key and a `#[presence_meta]` hook, `presence_state` then
//! `presence_diff` frames, several connections of one user as one
//! presence, `ctx.presence` and `ctx.track` at run time; on the in-memory
//! layer (exact and immediate) and, with feature `redis`, across two
//! servers on a real Redis, including one whose heartbeats stop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chanx_core::auth::{BearerToken, TokenVerifier};
use chanx_core::{Context, Layer, Message, Router, channel};
use chanx_testing::{Communicator, TestServer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

struct Users;

impl TokenVerifier for Users {
    type Identity = String;

    async fn verify(&self, token: &str, _: &Context) -> Option<String> {
        token.strip_suffix("-token").map(str::to_owned)
    }
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "who")]
struct Who;

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "here")]
struct Here(BTreeMap<String, usize>);

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "status")]
struct Status(String);

#[derive(Default)]
struct Room;

#[derive(Serialize)]
struct Device {
    device: String,
}

#[channel(
    authenticator = BearerToken<Users>,
    presence = "room_{room}",
    send_authentication_message = false
)]
impl Room {
    #[presence_meta]
    async fn meta(&self, ctx: &Context) -> Device {
        Device {
            device: ctx.query_param("device").unwrap_or_default().into_owned(),
        }
    }

    /// Who is here, by key: how many connections each.
    #[ws_handler]
    async fn who(&mut self, ctx: &Context, _: Who) -> Here {
        let room = format!("room_{}", ctx.param("room").unwrap_or_default());
        let present = ctx.presence(&room).await.unwrap();
        Here(
            present
                .0
                .into_iter()
                .map(|(key, entry)| (key, entry.metas.len()))
                .collect(),
        )
    }

    /// Tracks again with a status: the meta is replaced.
    #[ws_handler]
    async fn status(&mut self, ctx: &Context, status: Status) {
        let room = format!("room_{}", ctx.param("room").unwrap_or_default());
        let user = ctx.identity::<Self>().cloned();
        let mut meta = serde_json::Map::new();
        meta.insert("status".into(), Value::from(status.0));
        ctx.track(&room, user.as_deref(), meta).await.unwrap();
    }
}

fn app(layer: Layer) -> Router {
    Router::new()
        .with_layer(layer)
        .with_authenticator(BearerToken::new(Users))
        .route::<Room>("/ws/room/{room}")
}

async fn join(server: &TestServer, user: &str, device: &str) -> Communicator {
    let path = format!("/ws/room/lobby?token={user}-token&device={device}");
    server.connect(&path).await.unwrap()
}

/// A frame with each meta's `online_at` checked and removed, so the rest
/// compares exactly.
fn masked(mut frame: Value) -> Value {
    fn mask(entries: &mut Value) {
        if let Some(entries) = entries.as_object_mut() {
            for entry in entries.values_mut() {
                for meta in entry["metas"].as_array_mut().unwrap() {
                    let online_at = meta.as_object_mut().unwrap().remove("online_at").unwrap();
                    assert!(online_at.as_u64().unwrap() > 1_700_000_000, "{online_at}");
                }
            }
        }
    }
    match frame["action"].as_str() {
        Some("presence_state") => mask(&mut frame["payload"]),
        Some("presence_diff") => {
            mask(&mut frame["payload"]["joins"]);
            mask(&mut frame["payload"]["leaves"]);
        }
        _ => {}
    }
    frame
}

async fn next(client: &mut Communicator) -> Value {
    masked(client.receive_json().await.unwrap())
}

/// The `phx_ref` of a client's own join.
fn own_ref(diff: &Value, user: &str) -> String {
    diff["payload"]["joins"][user]["metas"][0]["phx_ref"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn presence_is_exact_and_immediate_in_memory() {
    let server = TestServer::start(app(Layer::memory())).await.unwrap();

    let mut alice = join(&server, "alice", "laptop").await;
    assert_eq!(
        next(&mut alice).await,
        json!({"action":"presence_state","payload":{}})
    );
    let alice_join = next(&mut alice).await;
    let alice_ref = own_ref(&alice_join, "alice");
    assert_eq!(
        alice_join,
        json!({"action":"presence_diff","payload":{
            "joins":{"alice":{"metas":[{"device":"laptop","phx_ref":alice_ref,"user":"alice"}]}},
            "leaves":{}
        }})
    );

    let mut bob = join(&server, "bob", "phone").await;
    assert_eq!(
        next(&mut bob).await,
        json!({"action":"presence_state","payload":{
            "alice":{"metas":[{"device":"laptop","phx_ref":alice_ref,"user":"alice"}]}
        }})
    );
    let bob_join = next(&mut bob).await;
    let bob_ref = own_ref(&bob_join, "bob");
    assert_eq!(next(&mut alice).await, bob_join);

    // A second connection of alice: one presence, two metas.
    let mut alice2 = join(&server, "alice", "phone").await;
    let state = next(&mut alice2).await;
    assert_eq!(
        state["payload"]["alice"]["metas"].as_array().unwrap().len(),
        1
    );
    assert_eq!(state["payload"]["bob"]["metas"][0]["phx_ref"], bob_ref);
    let second = next(&mut alice2).await;
    assert_eq!(
        second["payload"]["joins"]["alice"]["metas"][0]["device"],
        "phone"
    );
    assert_eq!(next(&mut alice).await, second);
    assert_eq!(next(&mut bob).await, second);

    bob.send_message(&Who).await.unwrap();
    assert_eq!(
        bob.receive_json().await.unwrap(),
        json!({"action":"here","payload":{"alice":2,"bob":1}})
    );

    // Tracking again replaces the meta: its leave and join in one diff.
    bob.send_message(&Status("away".into())).await.unwrap();
    let changed = next(&mut alice).await;
    assert_eq!(
        changed["payload"]["leaves"]["bob"]["metas"][0]["device"],
        "phone"
    );
    assert_eq!(
        changed["payload"]["joins"]["bob"]["metas"][0]["status"],
        "away"
    );
    assert_eq!(
        changed["payload"]["joins"]["bob"]["metas"][0]["phx_ref"],
        bob_ref
    );

    // Bob's own change reaches him too.
    assert_eq!(next(&mut bob).await, changed);

    // Alice's first connection leaves: one meta goes, alice stays.
    alice.disconnect().await.unwrap();
    let left = next(&mut bob).await;
    assert_eq!(
        left,
        json!({"action":"presence_diff","payload":{
            "joins":{},
            "leaves":{"alice":{"metas":[{"device":"laptop","phx_ref":alice_ref,"user":"alice"}]}}
        }})
    );
    bob.send_message(&Who).await.unwrap();
    assert_eq!(
        bob.receive_json().await.unwrap(),
        json!({"action":"here","payload":{"alice":1,"bob":1}})
    );
    // Another room sees none of it.
    let mut elsewhere = server
        .connect("/ws/room/kitchen?token=carol-token")
        .await
        .unwrap();
    assert_eq!(
        next(&mut elsewhere).await,
        json!({"action":"presence_state","payload":{}})
    );
}

#[tokio::test]
async fn the_layer_lists_presence_for_http_routes_and_tasks() {
    let layer = Layer::memory();
    let server = TestServer::start(app(layer.clone())).await.unwrap();
    assert!(layer.presence("room_lobby").await.unwrap().0.is_empty());
    let mut carol = join(&server, "carol", "desk").await;
    next(&mut carol).await;
    next(&mut carol).await;
    let present = layer.presence("room_lobby").await.unwrap();
    assert_eq!(present.0.keys().collect::<Vec<_>>(), ["carol"]);
    carol.disconnect().await.unwrap();
    // Untracked as the connection ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !layer.presence("room_lobby").await.unwrap().0.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "carol never left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(feature = "redis")]
mod across_processes {
    use super::*;
    use chanx_core::layer::{RedisLayer, RedisLayerConfig};
    use chanx_core::presence::PresenceConfig;

    async fn layer(redis: &chanx_testing::RedisServer, config: PresenceConfig) -> Layer {
        Layer::new(
            RedisLayer::connect_with(RedisLayerConfig::new(redis.url()).prefix("presence"))
                .await
                .unwrap(),
        )
        .with_presence_config(config)
    }

    #[tokio::test]
    async fn two_servers_share_one_view() {
        let redis = chanx_testing::RedisServer::start().unwrap();
        let config = PresenceConfig::new();
        let a = TestServer::start(app(layer(&redis, config).await))
            .await
            .unwrap();
        let b = TestServer::start(app(layer(&redis, config).await))
            .await
            .unwrap();

        let mut alice = join(&a, "alice", "laptop").await;
        assert_eq!(
            next(&mut alice).await,
            json!({"action":"presence_state","payload":{}})
        );
        let alice_ref = own_ref(&next(&mut alice).await, "alice");

        // Bob, on the other server, is told alice is here.
        let mut bob = join(&b, "bob", "phone").await;
        let state = next(&mut bob).await;
        assert_eq!(
            state,
            json!({"action":"presence_state","payload":{
                "alice":{"metas":[{"device":"laptop","phx_ref":alice_ref,"user":"alice"}]}
            }})
        );
        let bob_join = next(&mut bob).await;
        assert_eq!(next(&mut alice).await, bob_join);

        // Alice on server b too: one presence, a meta from each server.
        let mut alice_b = join(&b, "alice", "phone").await;
        let state = next(&mut alice_b).await;
        assert_eq!(
            state["payload"]["alice"]["metas"].as_array().unwrap().len(),
            1
        );
        let second = next(&mut alice_b).await;
        assert_eq!(next(&mut alice).await, second);
        assert_eq!(next(&mut bob).await, second);
        alice.send_message(&Who).await.unwrap();
        assert_eq!(
            alice.receive_json().await.unwrap(),
            json!({"action":"here","payload":{"alice":2,"bob":1}})
        );

        // A leave on b reaches a.
        bob.disconnect().await.unwrap();
        let left = next(&mut alice).await;
        assert_eq!(
            left["payload"]["leaves"]["bob"]["metas"][0]["device"],
            "phone"
        );
        // Heartbeats change nothing that is already known.
        alice
            .receive_nothing(Duration::from_millis(2500))
            .await
            .unwrap();
    }

    /// A process that heartbeats once and falls silent (as a killed one
    /// does: no leave is ever published): its member joins, is kept while
    /// heartbeats come, and leaves once the timeout has passed.
    #[tokio::test]
    async fn a_silent_processs_members_leave_after_the_timeout() {
        use chanx_core::layer::{GroupName, LayerMessage, MessageKind};
        let redis = chanx_testing::RedisServer::start().unwrap();
        let fast = PresenceConfig::new()
            .heartbeat_interval(Duration::from_millis(100))
            .timeout(Duration::from_millis(600));
        let a = TestServer::start(app(layer(&redis, fast).await))
            .await
            .unwrap();
        let mut alice = join(&a, "alice", "laptop").await;
        next(&mut alice).await;
        next(&mut alice).await;

        // The ghost process speaks the presence protocol on the same Redis.
        let ghost = layer(&redis, fast).await;
        let control = GroupName::new("chanx-presence.room_lobby").unwrap();
        let heartbeat = json!({
            "t": "heartbeat", "p": "ghost", "g": "room_lobby",
            "m": [{"user": "ghost", "phx_ref": "ghost.1", "online_at": 1_700_000_001_u64}],
        })
        .to_string();
        let started = std::time::Instant::now();
        for _ in 0..5 {
            ghost
                .inner()
                .send_group(
                    &control,
                    LayerMessage::from_text(MessageKind::Event, heartbeat.clone()),
                )
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let joined = alice.receive_json().await.unwrap();
        assert_eq!(
            joined["payload"]["joins"]["ghost"]["metas"][0]["phx_ref"],
            "ghost.1"
        );
        // Present for the whole second of heartbeats, then silent.
        let left = alice.receive_json().await.unwrap();
        let after = started.elapsed();
        assert_eq!(
            left["payload"]["leaves"]["ghost"]["metas"][0]["phx_ref"],
            "ghost.1"
        );
        assert!(
            after >= Duration::from_millis(1000),
            "left after {after:?}, while still heartbeating"
        );
    }
}

#[tokio::test]
async fn presence_frames_are_in_the_asyncapi_document() {
    let app = app(Layer::memory()).with_asyncapi(chanx_core::asyncapi::AsyncApi::new("p", "1"));
    let document: Value = serde_json::from_str(&app.asyncapi_json().unwrap()).unwrap();
    let messages = document["channels"]["room"]["messages"]
        .as_object()
        .unwrap();
    assert!(messages.contains_key("presence_state"), "{messages:?}");
    assert!(messages.contains_key("presence_diff"), "{messages:?}");
}
