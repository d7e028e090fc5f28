//! Groups, broadcasts and events over the in-memory layer, through real
//! connections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_core::CloseCode;
use std::time::Duration;

use chanx_core::layer::LayerError;
use chanx_core::{Context, Message, Router, ServerConfig, channel};
use chanx_testing::{CaptureLayer, Communicator, TestServer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
#[message(action = "subscribe")]
struct Subscribe(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "unsubscribe")]
struct Unsubscribe(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "topic_post")]
struct TopicPost {
    topic: String,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "ok")]
struct Ok_(Vec<String>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "whoami")]
struct WhoAmI;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "me")]
struct Me(String);

/// An event other server parts send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "notify")]
struct Notify {
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "notice")]
struct Notice(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "boom")]
struct Boom;

#[derive(Default)]
struct Room {
    notices: usize,
}

#[channel(groups = ["room_{room}", "everyone"])]
impl Room {
    #[ws_handler(output = Said)]
    async fn say(
        &mut self,
        ctx: &Context,
        message: Say,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let room = ctx.group("room_{room}")?;
        Ok(ctx.broadcast(&Said(message.0)).to(room.as_str()).await?)
    }

    #[ws_handler(output = Said)]
    async fn shout(&mut self, ctx: &Context, message: Shout) -> Result<(), LayerError> {
        ctx.broadcast(&Said(message.0))
            .to("everyone")
            .exclude_sender()
            .await
    }

    /// Only `topic_<name>` groups can be joined: the client picks a name, not
    /// a group.
    #[ws_handler]
    async fn subscribe(&mut self, ctx: &Context, message: Subscribe) -> Result<Ok_, LayerError> {
        ctx.join(&format!("topic_{}", message.0)).await?;
        Ok(Ok_(ctx
            .groups()
            .iter()
            .map(|group| group.to_string())
            .collect()))
    }

    #[ws_handler]
    async fn unsubscribe(
        &mut self,
        ctx: &Context,
        message: Unsubscribe,
    ) -> Result<Ok_, LayerError> {
        ctx.leave(&format!("topic_{}", message.0)).await?;
        Ok(Ok_(ctx
            .groups()
            .iter()
            .map(|group| group.to_string())
            .collect()))
    }

    #[ws_handler(output = Said)]
    async fn topic_post(&mut self, ctx: &Context, message: TopicPost) -> Result<(), LayerError> {
        ctx.broadcast(&Said(message.text))
            .to(&format!("topic_{}", message.topic))
            .await
    }

    #[ws_handler]
    async fn whoami(&mut self, ctx: &Context, _: WhoAmI) -> Me {
        Me(ctx.channel_name().to_string())
    }

    #[event_handler]
    async fn notify(&mut self, event: Notify) -> Notice {
        self.notices += 1;
        Notice(format!("{} #{}", event.text, self.notices))
    }

    #[event_handler]
    async fn boom(&mut self, _: Boom) -> Notice {
        panic!("event handler panicked on purpose")
    }
}

/// The same consumer shape with completion frames for relayed messages.
#[derive(Default)]
struct Completing;

#[channel(groups = ["room_{room}"], send_completion)]
impl Completing {
    #[event_handler]
    async fn notify(&mut self, event: Notify) -> Notice {
        Notice(event.text)
    }
}

fn app() -> Router {
    Router::new()
        .route::<Room>("/room/{room}")
        .route::<Completing>("/completing/{room}")
}

/// Frames are dispatched only once the connect hook has run and the
/// channel's groups are joined, so one request/reply proves the client is in
/// its groups.
async fn ready(client: &mut Communicator) {
    client.send_message(&WhoAmI).await.unwrap();
    let _: Me = client.receive_message().await.unwrap();
}

async fn clients(app: &Router, rooms: &[&str]) -> Vec<Communicator> {
    let mut clients = Vec::new();
    for room in rooms {
        let mut client = Communicator::connect(app, &format!("/room/{room}"))
            .await
            .unwrap();
        ready(&mut client).await;
        clients.push(client);
    }
    clients
}

async fn quiet(clients: &mut [Communicator]) {
    for client in clients {
        client
            .receive_nothing(Duration::from_millis(50))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn broadcast_reaches_the_room_only() {
    let app = app();
    let mut c = clients(&app, &["a", "a", "b"]).await;
    c[0].send_message(&Say("hi a".into())).await.unwrap();
    for index in [0, 1] {
        assert_eq!(
            c[index].receive_json().await.unwrap(),
            json!({"action":"said","payload":"hi a"})
        );
    }
    quiet(&mut c).await;
}

#[tokio::test]
async fn exclude_sender() {
    let app = app();
    let mut c = clients(&app, &["a", "b", "c"]).await;
    c[1].send_message(&Shout("all".into())).await.unwrap();
    assert_eq!(
        c[0].receive_json().await.unwrap(),
        json!({"action":"said","payload":"all"})
    );
    assert_eq!(
        c[2].receive_json().await.unwrap(),
        json!({"action":"said","payload":"all"})
    );
    quiet(&mut c).await;
}

#[tokio::test]
async fn runtime_join_and_leave() {
    let app = app();
    let mut c = clients(&app, &["a", "a"]).await;
    c[0].send_message(&Subscribe("rust".into())).await.unwrap();
    assert_eq!(
        c[0].receive_json().await.unwrap(),
        json!({"action":"ok","payload":["room_a","everyone","topic_rust"]})
    );
    c[1].send_message(&TopicPost {
        topic: "rust".into(),
        text: "news".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        c[0].receive_json().await.unwrap(),
        json!({"action":"said","payload":"news"})
    );
    quiet(&mut c).await;

    c[0].send_message(&Unsubscribe("rust".into()))
        .await
        .unwrap();
    assert_eq!(
        c[0].receive_json().await.unwrap(),
        json!({"action":"ok","payload":["room_a","everyone"]})
    );
    c[1].send_message(&TopicPost {
        topic: "rust".into(),
        text: "more".into(),
    })
    .await
    .unwrap();
    quiet(&mut c).await;

    // A name that does not make a valid group is refused, and nothing else happens.
    c[0].send_message(&Subscribe("no spaces allowed".into()))
        .await
        .unwrap();
    assert_eq!(
        c[0].receive_json().await.unwrap(),
        json!({"action":"error","payload":{"detail":"Failed to process message for subscribe"}})
    );
    quiet(&mut c).await;
}

#[tokio::test]
async fn events_from_outside_reach_the_group_and_handlers_keep_state() {
    let app = app();
    let mut c = clients(&app, &["a", "a", "b"]).await;
    let layer = app.layer().clone();
    layer
        .send_event(
            "room_a",
            &Notify {
                text: "deploy".into(),
            },
        )
        .await
        .unwrap();
    layer
        .send_event(
            "room_a",
            &Notify {
                text: "again".into(),
            },
        )
        .await
        .unwrap();
    for index in [0, 1] {
        assert_eq!(
            c[index].receive_json().await.unwrap(),
            json!({"action":"notice","payload":"deploy #1"})
        );
        assert_eq!(
            c[index].receive_json().await.unwrap(),
            json!({"action":"notice","payload":"again #2"})
        );
    }
    quiet(&mut c).await;

    // A panicking event handler is contained; the connection lives on.
    layer.send_event("room_b", &Boom).await.unwrap();
    layer
        .send_event(
            "room_b",
            &Notify {
                text: "after".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        c[2].receive_json().await.unwrap(),
        json!({"action":"notice","payload":"after #1"})
    );

    // Broadcasts from outside go straight to clients.
    layer
        .broadcast("everyone", &Said("hello all".into()))
        .await
        .unwrap();
    for client in &mut c {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"said","payload":"hello all"})
        );
    }
    assert!(matches!(
        layer.broadcast("bad group", &Said(String::new())).await,
        Err(LayerError::InvalidGroup(_))
    ));
}

#[tokio::test]
async fn an_event_to_one_connection() {
    let app = app();
    let mut c = clients(&app, &["a", "a"]).await;
    c[1].send_message(&WhoAmI).await.unwrap();
    let Me(name) = c[1].receive_message().await.unwrap();
    let channel = chanx_core::layer::ChannelName::parse(&name).unwrap();
    app.layer()
        .send_event_to(
            &channel,
            &Notify {
                text: "just you".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        c[1].receive_json().await.unwrap(),
        json!({"action":"notice","payload":"just you #1"})
    );
    quiet(&mut c).await;
}

#[tokio::test]
async fn completion_frames_for_relayed_messages() {
    let app = app();
    let mut client = Communicator::connect(&app, "/completing/x").await.unwrap();
    // Any frame, even one with no handler, is answered after the joins,
    // and completed (it reached validation, as in Chanx).
    client.send_message(&WhoAmI).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap()["payload"][0]["type"],
        "union_tag_invalid"
    );
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action": "complete", "payload": null})
    );
    app.layer()
        .broadcast("room_x", &Said("b".into()))
        .await
        .unwrap();
    assert_eq!(
        client.receive_until("group_complete").await.unwrap(),
        vec![json!({"action":"said","payload":"b"})]
    );
    app.layer()
        .send_event("room_x", &Notify { text: "e".into() })
        .await
        .unwrap();
    assert_eq!(
        client.receive_until("event_complete").await.unwrap(),
        vec![json!({"action":"notice","payload":"e"})]
    );
}

/// Route values of every kind name groups (no more 1008 for `room_1` or a
/// UUID), and a value holding the template's separator cannot reach
/// another template's group: `lobby_admin` in `room_{room}` is not the
/// group `room_lobby_admin`.
#[tokio::test]
async fn any_route_value_names_its_own_group() {
    let capture = CaptureLayer::in_memory();
    let app = app().with_layer(capture.layer());
    let rooms = [
        "room_1",
        "my-room",
        "550e8400-e29b-41d4-a716-446655440000",
        "caf%C3%A9",
        "not%20valid",
        "lobby_admin",
    ];
    let mut c = clients(&app, &rooms).await;
    for (index, client) in c.iter_mut().enumerate() {
        client
            .send_message(&Say(format!("to {index}")))
            .await
            .unwrap();
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"said","payload":format!("to {index}")})
        );
    }
    quiet(&mut c).await;
    let groups: Vec<String> = capture
        .take()
        .into_iter()
        .filter_map(|captured| captured.group)
        .collect();
    assert_eq!(
        groups,
        [
            "room_room.5f1",
            "room_my.2droom",
            "room_550e8400.2de29b.2d41d4.2da716.2d446655440000",
            "room_caf.c3.a9",
            "room_not.20valid",
            "room_lobby.5fadmin",
        ]
    );
    // The encoded group is what `GroupName::from_template` gives, to reach
    // it from outside a connection.
    let lobby_admin =
        chanx_core::layer::GroupName::from_template("room_{room}", [("room", "lobby_admin")])
            .unwrap();
    app.layer()
        .broadcast(lobby_admin.as_str(), &Said("admins".into()))
        .await
        .unwrap();
    assert_eq!(
        c[5].receive_json().await.unwrap(),
        json!({"action":"said","payload":"admins"})
    );
    // A broadcast to the name `room_lobby_admin` reaches nobody.
    app.layer()
        .broadcast("room_lobby_admin", &Said("forged".into()))
        .await
        .unwrap();
    quiet(&mut c).await;
}

#[tokio::test]
async fn disconnect_leaves_every_group() {
    let capture = CaptureLayer::in_memory();
    let app = app().with_layer(capture.layer());
    let c = clients(&app, &["a", "a"]).await;
    let mut c = c.into_iter();
    let (first, mut second) = (c.next().unwrap(), c.next().unwrap());
    first.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(app.layer().stats().slow_disconnects, 0);
    app.layer()
        .broadcast("room_a", &Said("left?".into()))
        .await
        .unwrap();
    assert_eq!(
        second.receive_json().await.unwrap(),
        json!({"action":"said","payload":"left?"})
    );
    second
        .send_message(&Say("via capture".into()))
        .await
        .unwrap();
    second.receive_json().await.unwrap();
    let captured = capture.take();
    let groups: Vec<Option<String>> = captured.iter().map(|c| c.group.clone()).collect();
    assert_eq!(
        groups,
        [Some("room_a".to_owned()), Some("room_a".to_owned())]
    );
    assert_eq!(
        captured[1].frame,
        json!({"action":"said","payload":"via capture"})
    );
}

/// A client that stops reading is closed with 1008 once its inbox fills;
/// fast clients in the same group receive every message, in order.
#[tokio::test]
async fn a_slow_client_is_closed_and_fast_clients_get_everything() {
    let server = TestServer::start(
        app().with_config(
            ServerConfig::new()
                .inbox_bytes(1024 * 1024)
                .outbound_queue_bytes(1024 * 1024),
        ),
    )
    .await
    .unwrap();
    let layer = server.layer().clone();
    let mut fast = server.connect_many("/room/slow", 2).await.unwrap();
    for client in &mut fast {
        ready(client).await;
    }
    let mut slow = server.connect("/room/slow").await.unwrap();
    ready(&mut slow).await;
    let payload = "p".repeat(64 * 1024);
    let count = 600; // 600 × 64 KiB: far beyond socket buffers and queues
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut readers = Vec::new();
    for mut client in fast {
        let progress = progress_tx.clone();
        let expected = payload.clone();
        readers.push(tokio::spawn(async move {
            for seq in 0..count {
                let frame: Value = client.receive_json().await.unwrap();
                assert_eq!(frame["payload"]["seq"], seq);
                assert_eq!(
                    frame["payload"]["data"].as_str().unwrap().len(),
                    expected.len()
                );
                let _ = progress.send(seq);
            }
            client
        }));
    }
    drop(progress_tx);
    for seq in 0..count {
        let message = Big {
            seq,
            data: payload.clone(),
        };
        layer.broadcast("room_slow", &message).await.unwrap();
        // Flow control on the fast readers only: both must have seen `seq`.
        for _ in 0..2 {
            assert!(progress_rx.recv().await.is_some());
        }
    }
    for reader in readers {
        reader.await.unwrap();
    }
    assert_eq!(layer.stats().slow_disconnects, 1);
    // The slow client, reading at last, finds a 1008 close after what had
    // been queued for it: it knows it missed messages.
    let mut received = 0;
    loop {
        match slow.receive_json().await {
            Ok(_) => received += 1,
            Err(chanx_testing::ReceiveError::Closed { code, reason }) => {
                assert_eq!(code, Some(CloseCode::POLICY));
                assert_eq!(reason, "too slow: inbox full");
                break;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(
        received < count,
        "the slow client cannot have received all {count}"
    );
    server.stop().await.unwrap();
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "big")]
struct Big {
    seq: usize,
    data: String,
}
