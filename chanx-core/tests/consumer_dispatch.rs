//! Dispatch, reply glue, hooks and failure isolation, through the real
//! connection loop (in-process) and a real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chanx_core::messages::{Ping, Pong};
use chanx_core::{CloseCode, Context, Message, Reject, Router, ServerConfig, channel};
use chanx_testing::{Communicator, TestServer};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "add")]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "sum")]
struct Sum(i64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "fail")]
struct Fail {
    #[serde(default)]
    how: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "maybe")]
struct Maybe(bool);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "info")]
struct Info {
    room: Option<String>,
    token: Option<String>,
    agent: Option<String>,
    greeting: Option<String>,
    connections: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "whoami")]
struct WhoAmI;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "bye")]
struct Bye;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "later")]
struct Later;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "notice")]
struct Notice(String);

/// A union used as an output type.
#[derive(Debug, Clone, PartialEq, Message)]
enum Answer {
    Sum(Sum),
    Notice(Notice),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "either")]
struct Either(i64);

#[derive(Clone)]
struct Greeting(&'static str);

#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

#[derive(Debug)]
struct Calculator {
    room: Option<String>,
    handled: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("the calculator refuses")]
struct Refusal;

/// A calculator used to test dispatch.
#[channel(name = "calc", send_completion, tags = ["test"])]
impl Calculator {
    #[on_connect]
    async fn new(ctx: &Context) -> Result<Self, Reject> {
        if ctx.query_param("deny").is_some() {
            return Err(Reject::new(
                CloseCode::application(4403).unwrap(),
                "denied by query",
            ));
        }
        if let Some(counter) = ctx.state::<Counter>() {
            counter.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Self {
            room: ctx.param("room").map(str::to_owned),
            handled: 0,
        })
    }

    #[post_authentication]
    async fn hello(&mut self, ctx: &Context) -> Notice {
        let _ = ctx.send(&Notice("first".into())).await;
        Notice(format!("joined {}", self.room.as_deref().unwrap_or("-")))
    }

    /// Adds two numbers.
    #[ws_handler(summary = "Add", output = Notice)]
    async fn add(&mut self, ctx: &Context, message: Add) -> Sum {
        self.handled += 1;
        if message.a < 0 {
            let _ = ctx.send(&Notice("negative".into())).await;
        }
        Sum(message.a + message.b)
    }

    #[ws_handler]
    async fn fail(&mut self, message: Fail) -> Result<Sum, Refusal> {
        match message.how.as_str() {
            "panic" => panic!("handler panicked on purpose"),
            "string" => Ok(Sum(1)),
            _ => Err(Refusal),
        }
    }

    #[ws_handler]
    async fn maybe(&self, message: Maybe) -> Option<Sum> {
        message.0.then_some(Sum(self.handled as i64))
    }

    #[ws_handler]
    async fn either(&mut self, message: Either) -> Answer {
        if message.0 % 2 == 0 {
            Answer::Sum(Sum(message.0))
        } else {
            Notice("odd".into()).into()
        }
    }

    #[ws_handler]
    async fn whoami(&mut self, ctx: &Context, _message: WhoAmI) -> Info {
        Info {
            room: ctx.param("room").map(str::to_owned),
            token: ctx.query_param("token").map(|token| token.into_owned()),
            agent: ctx
                .headers()
                .get("x-agent")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            greeting: ctx
                .state::<Greeting>()
                .map(|greeting| greeting.0.to_owned()),
            connections: ctx
                .state::<Counter>()
                .map_or(0, |counter| counter.0.load(Ordering::SeqCst)),
        }
    }

    #[ws_handler]
    async fn bye(&mut self, ctx: &Context, _message: Bye) -> Notice {
        ctx.close(CloseCode::application(4000).unwrap(), "bye");
        Notice("closing".into())
    }

    /// Pushes from a background task, then closes from there.
    #[ws_handler]
    async fn later(&mut self, ctx: &Context, _message: Later) {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _ = ctx.send(&Notice("from a task".into())).await;
            ctx.close(CloseCode::application(4001).unwrap(), "task done");
        });
    }

    #[ws_handler]
    async fn ping(&mut self, _message: Ping) -> Pong {
        Pong
    }
}

fn app(counter: &Counter) -> Router {
    Router::new()
        .route::<Calculator>("/calc/{room}")
        .with_state(Greeting("hi"))
        .with_state(counter.clone())
}

async fn connect(router: &Router, path: &str) -> Communicator {
    let mut client = Communicator::connect(router, path).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"notice","payload":"first"})
    );
    client
}

#[tokio::test]
async fn hooks_reply_and_completion() {
    let app = app(&Counter::default());
    let mut client = connect(&app, "/calc/blue").await;
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"notice","payload":"joined blue"})
    );

    client.send_message(&Add { a: 2, b: 3 }).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![json!({"action":"sum","payload":5})]
    );

    // Extra sends from the handler arrive before the reply, then `complete`.
    client.send_message(&Add { a: -1, b: 3 }).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![
            json!({"action":"notice","payload":"negative"}),
            json!({"action":"sum","payload":2})
        ]
    );

    // As in Chanx: a frame that reached a handler's validation is
    // completed even when it fails it; a frame rejected before (not JSON,
    // binary, no action) gets its error frame and no `complete`.
    client
        .send_json(&json!({"action": "add", "payload": {"a": "x", "b": 1}}))
        .await
        .unwrap();
    let frames = client.receive_all_messages().await.unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["payload"][0]["type"], "int_parsing");
    client.send_text("{").await.unwrap();
    let frame = client.receive_json().await.unwrap();
    assert_eq!(frame["payload"][0]["type"], "json_invalid");
    client.send_binary(vec![1, 2, 3]).await.unwrap();
    let frame = client.receive_json().await.unwrap();
    assert_eq!(frame["payload"][0]["type"], "json_invalid");
    client.send_json(&json!({"payload": 1})).await.unwrap();
    let frame = client.receive_json().await.unwrap();
    assert_eq!(frame["payload"][0]["type"], "union_tag_not_found");
    client
        .receive_nothing(Duration::from_millis(100))
        .await
        .unwrap();
}

#[tokio::test]
async fn option_result_and_enum_replies() {
    let app = app(&Counter::default());
    let mut client = connect(&app, "/calc/x").await;
    client.receive_json().await.unwrap();

    client.send_message(&Maybe(false)).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        Vec::<serde_json::Value>::new()
    );
    client.send_message(&Maybe(true)).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![json!({"action":"sum","payload":0})]
    );

    client.send_message(&Either(4)).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![json!({"action":"sum","payload":4})]
    );
    client.send_message(&Either(3)).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![json!({"action":"notice","payload":"odd"})]
    );

    client
        .send_text(r#"{"action":"fail","payload":{"how":"string"}}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![json!({"action":"sum","payload":1})]
    );
}

#[tokio::test]
async fn handler_errors_and_panics_keep_the_connection() {
    let app = app(&Counter::default());
    let mut client = connect(&app, "/calc/x").await;
    client.receive_json().await.unwrap();
    let failed =
        json!({"action":"error","payload":{"detail":"Failed to process message for fail"}});

    client
        .send_message(&Fail {
            how: "error".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![failed.clone()]
    );

    client
        .send_message(&Fail {
            how: "panic".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![failed.clone()]
    );

    // The consumer survived the panic with its state.
    client.send_message(&Add { a: 1, b: 1 }).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![json!({"action":"sum","payload":2})]
    );
    client.send_message(&Maybe(true)).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![json!({"action":"sum","payload":1})]
    );
}

#[tokio::test]
async fn error_replies_echo_the_ref() {
    let app = app(&Counter::default());
    let mut client = connect(&app, "/calc/x").await;
    client.receive_json().await.unwrap();
    client
        .send_text(r#"{"action":"fail","payload":{"how":"error"},"ref":"f1"}"#)
        .await
        .unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        vec![
            json!({"action":"error","payload":{"detail":"Failed to process message for fail"},"version":1,"ref":"f1"})
        ]
    );
    client
        .send_text(r#"{"action":"add","payload":{},"ref":7}"#)
        .await
        .unwrap();
    let frames = client.receive_all_messages().await.unwrap();
    assert_eq!(frames[0]["ref"], 7);
    assert_eq!(frames[0]["payload"][0]["type"], "missing");
    client
        .send_text(r#"{"action":"nope","ref":"u"}"#)
        .await
        .unwrap();
    assert_eq!(client.receive_all_messages().await.unwrap()[0]["ref"], "u");
}

#[tokio::test]
async fn context_exposes_params_query_headers_and_state() {
    let counter = Counter::default();
    let app = app(&counter);
    let mut client = Communicator::builder("/calc/caf%C3%A9")
        .query("token", "a b&c")
        .header("x-agent", "tester")
        .config(ServerConfig::new().retain_headers([http::HeaderName::from_static("x-agent")]))
        .connect(&app)
        .await
        .unwrap();
    client.receive_json().await.unwrap();
    client.receive_json().await.unwrap();
    client.send_message(&WhoAmI).await.unwrap();
    let info: Info = Info::from_json(&client.receive_text().await.unwrap()).unwrap();
    assert_eq!(
        info,
        Info {
            room: Some("café".into()),
            token: Some("a b&c".into()),
            agent: Some("tester".into()),
            greeting: Some("hi".into()),
            connections: 1,
        }
    );
}

/// Headers are there while connecting; afterwards only the retained ones.
#[tokio::test]
async fn headers_not_retained_are_dropped_once_connected() {
    let counter = Counter::default();
    let app = app(&counter);
    let mut client = Communicator::builder("/calc/lobby")
        .header("x-agent", "tester")
        .header("cookie", "big=")
        .connect(&app)
        .await
        .unwrap();
    client.receive_json().await.unwrap();
    client.receive_json().await.unwrap();
    client.send_message(&WhoAmI).await.unwrap();
    let info: Info = Info::from_json(&client.receive_text().await.unwrap()).unwrap();
    assert_eq!(info.agent, None);
    assert_eq!(info.room.as_deref(), Some("lobby"));
}

#[tokio::test]
async fn connect_hook_can_refuse() {
    let counter = Counter::default();
    let app = app(&counter);
    let mut client = Communicator::builder("/calc/x")
        .query("deny", "1")
        .connect(&app)
        .await
        .unwrap();
    client.assert_closed(CloseCode::FORBIDDEN).await;
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        0,
        "a refused connection never built a consumer"
    );
}

#[tokio::test]
async fn handler_can_close_after_its_reply() {
    let app = app(&Counter::default());
    let mut client = connect(&app, "/calc/x").await;
    client.receive_json().await.unwrap();
    client.send_message(&Bye).await.unwrap();
    client.send_message(&Ping).await.unwrap();
    // The reply queued before the close is delivered, nothing after it.
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"notice","payload":"closing"})
    );
    client
        .assert_closed(CloseCode::application(4000).unwrap())
        .await;
}

#[tokio::test]
async fn a_background_task_can_push_and_close_an_idle_connection() {
    let app = app(&Counter::default());
    let mut client = connect(&app, "/calc/x").await;
    client.receive_json().await.unwrap();
    client.send_message(&Later).await.unwrap();
    assert_eq!(
        client.receive_all_messages().await.unwrap(),
        Vec::<serde_json::Value>::new()
    );
    // Nothing more is sent by the client: the task's push and close arrive.
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"notice","payload":"from a task"})
    );
    client
        .assert_closed(CloseCode::application(4001).unwrap())
        .await;
}

#[tokio::test]
async fn frames_are_handled_in_order_over_tcp() {
    let server = TestServer::start(app(&Counter::default())).await.unwrap();
    let mut client = server.connect("/calc/ordered").await.unwrap();
    client.receive_json().await.unwrap();
    client.receive_json().await.unwrap();
    for a in 0..200 {
        client.send_message(&Add { a, b: 0 }).await.unwrap();
        if a % 50 == 0 {
            client
                .send_message(&Fail {
                    how: "panic".into(),
                })
                .await
                .unwrap();
        }
    }
    for a in 0..200 {
        let frames = client.receive_all_messages().await.unwrap();
        assert_eq!(frames, vec![json!({"action":"sum","payload":a})]);
        if a % 50 == 0 {
            let frames = client.receive_all_messages().await.unwrap();
            assert_eq!(
                frames[0]["payload"]["detail"],
                "Failed to process message for fail"
            );
        }
    }
    client
        .receive_nothing(Duration::from_millis(50))
        .await
        .unwrap();
    let stopping = tokio::spawn(server.stop());
    client.assert_closed(CloseCode::GOING_AWAY).await;
    stopping.await.unwrap().unwrap();
}

#[test]
fn metadata_describes_every_handler() {
    use chanx_core::Consumer;
    let channel = Calculator::CHANNEL;
    assert_eq!(channel.name, "calc");
    assert_eq!(channel.type_name, "Calculator");
    assert_eq!(
        channel.description,
        Some("A calculator used to test dispatch.")
    );
    assert_eq!(channel.tags, ["test"]);
    assert_eq!(Calculator::CONFIG.send_completion, Some(true));
    let actions: Vec<&str> = channel.client_actions().collect();
    assert_eq!(
        actions,
        [
            "add", "fail", "maybe", "either", "whoami", "bye", "later", "ping"
        ]
    );

    let add = &channel.handlers[0];
    assert_eq!(add.method, "add");
    assert_eq!(add.summary, Some("Add"));
    assert_eq!(add.description, Some("Adds two numbers."));
    assert_eq!(add.input_type, "Add");
    let outputs: Vec<&str> = add.outputs().iter().map(|meta| meta.action).collect();
    assert_eq!(outputs, ["sum", "notice"], "return type then `output = …`");

    let either = &channel.handlers[3];
    let outputs: Vec<&str> = either.outputs().iter().map(|meta| meta.name).collect();
    assert_eq!(outputs, ["Sum", "Notice"]);
    let fail = &channel.handlers[1];
    let outputs: Vec<&str> = fail.outputs().iter().map(|meta| meta.action).collect();
    assert_eq!(outputs, ["sum"]);
    assert!(
        channel.handlers[5]
            .outputs()
            .iter()
            .any(|meta| meta.action == "notice")
    );
}
