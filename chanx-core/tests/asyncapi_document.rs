//! The AsyncAPI document: structure, naming rules, determinism, `$ref`s,
//! security schemes and examples. Every document built here is also written
//! to `target/tmp/asyncapi/` for the official parser (run by scripts/test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_core::asyncapi::{AsyncApi, check_examples};
use chanx_core::auth::{BearerToken, SessionCookie, SessionLookup, TokenVerifier};
use chanx_core::layer::LayerError;
use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Message, Router, channel};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod first {
    use super::*;

    /// A notice from the first consumer.
    #[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
    #[message(action = "notice")]
    pub(super) struct Notice {
        pub(super) text: String,
    }
}

mod second {
    use super::*;

    /// A notice from the second consumer: same type name, other shape.
    #[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
    #[message(action = "notice")]
    pub(super) struct Notice {
        pub(super) level: u8,
        pub(super) tags: Vec<String>,
    }
}

/// A point inside a shape: lifted into `components.schemas`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
struct Point {
    x: f64,
    y: f64,
}

/// Draw a shape.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "draw")]
struct Draw {
    points: Vec<Point>,
    color: Option<String>,
    #[serde(rename = "zIndex")]
    z_index: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "drawn")]
struct Drawn(Point);

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "refresh")]
struct Refresh;

struct Tokens;

impl TokenVerifier for Tokens {
    type Identity = String;
    async fn verify(&self, _token: &str, _ctx: &Context) -> Option<String> {
        None
    }
}

struct Sessions;

impl SessionLookup for Sessions {
    type Identity = String;
    async fn lookup(&self, _id: &str, _ctx: &Context) -> Option<String> {
        None
    }
}

#[derive(Default)]
struct Canvas;

/// A shared canvas.
#[channel(
    name = "canvas",
    tags = ["drawing"],
    groups = ["canvas_{board}"],
    authenticator = BearerToken<Tokens>,
    send_completion,
    sends = [first::Notice]
)]
impl Canvas {
    /// Draws and tells everyone.
    #[ws_handler(summary = "Draw a shape", tags = ["write"], output = Drawn)]
    async fn draw(&mut self, ctx: &Context, message: Draw) -> Result<(), LayerError> {
        let first = message
            .points
            .first()
            .cloned()
            .unwrap_or(Point { x: 0.0, y: 0.0 });
        ctx.broadcast(&Drawn(first)).await
    }

    #[event_handler(summary = "Redraw on request")]
    async fn refresh(&mut self, _: Refresh) -> first::Notice {
        first::Notice {
            text: "redraw".into(),
        }
    }
}

#[derive(Default)]
struct Alerts;

#[channel(name = "alerts", authenticator = SessionCookie<Sessions>)]
impl Alerts {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }

    #[event_handler]
    async fn alert(&mut self, notice: second::Notice) -> second::Notice {
        notice
    }
}

fn api() -> AsyncApi {
    AsyncApi::new("Test API", "1.2.3")
        .description("Documents built by the tests")
        .server("local", "localhost:9000", "ws")
}

fn router() -> Router {
    Router::new()
        .route::<Canvas>("/ws/boards/{board}")
        .route::<Alerts>("/ws/alerts")
        .route::<Canvas>("/ws/other/{board}")
        .with_authenticator(BearerToken::new(Tokens))
        .with_authenticator(SessionCookie::new(Sessions))
}

fn write_for_parser(name: &str, text: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("asyncapi");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.json")), text).unwrap();
}

#[test]
fn structure_of_a_document() {
    let document = api().document(&router());
    write_for_parser("canvas", &api().to_json(&router()));
    assert_eq!(document["asyncapi"], "3.0.0");
    assert_eq!(
        document["info"],
        json!({"title":"Test API","version":"1.2.3","description":"Documents built by the tests"})
    );
    assert_eq!(
        document["servers"],
        json!({"local": {"host": "localhost:9000", "protocol": "ws"}})
    );

    let canvas = &document["channels"]["canvas"];
    assert_eq!(canvas["address"], "/ws/boards/{board}");
    assert_eq!(canvas["description"], "A shared canvas.");
    assert_eq!(canvas["tags"], json!([{"name": "drawing"}]));
    assert!(canvas["parameters"]["board"]["description"].is_string());
    assert_eq!(
        canvas["bindings"]["ws"]["query"]["properties"]["token"]["type"],
        "string"
    );
    assert!(canvas["bindings"]["ws"]["headers"]["properties"]["Authorization"].is_object());
    let messages: Vec<&str> = canvas["messages"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        messages,
        [
            "authentication",
            "complete",
            "draw",
            "drawn",
            "error_message",
            "event_complete",
            "group_complete",
            "notice"
        ]
    );

    let draw = &document["operations"]["canvas_draw"];
    assert_eq!(draw["action"], "receive");
    assert_eq!(draw["summary"], "Draw a shape");
    assert_eq!(draw["description"], "Draws and tells everyone.");
    assert_eq!(draw["tags"], json!([{"name": "write"}]));
    assert_eq!(
        draw["messages"],
        json!([{"$ref": "#/channels/canvas/messages/draw"}])
    );
    assert_eq!(
        draw["reply"]["messages"],
        json!([{"$ref": "#/channels/canvas/messages/drawn"}, {"$ref": "#/channels/canvas/messages/error_message"}])
    );
    assert_eq!(
        draw["security"],
        json!([{"$ref": "#/components/securitySchemes/bearerAuth"}, {"$ref": "#/components/securitySchemes/tokenQuery"}])
    );
    let refresh = &document["operations"]["canvas_refresh"];
    assert_eq!(refresh["action"], "send");
    assert_eq!(
        refresh["messages"],
        json!([{"$ref": "#/channels/canvas/messages/notice"}])
    );
    assert_eq!(document["operations"]["canvas_sends"]["action"], "send");
    let protocol = &document["operations"]["canvas_protocol"]["messages"];
    assert_eq!(
        protocol,
        &json!([
            {"$ref": "#/channels/canvas/messages/error_message"},
            {"$ref": "#/channels/canvas/messages/authentication"},
            {"$ref": "#/channels/canvas/messages/complete"},
            {"$ref": "#/channels/canvas/messages/group_complete"},
            {"$ref": "#/channels/canvas/messages/event_complete"}
        ])
    );

    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(
        schemes["tokenQuery"],
        json!({"type":"httpApiKey","in":"query","name":"token","description":"The same token as a query parameter, for browsers"})
    );
    assert_eq!(schemes["sessionidCookie"]["in"], "cookie");

    // Chanx's shape: the message's payload is a `$ref` to a schema titled
    // as the message, holding the action constant and the payload.
    let draw_message = &document["components"]["messages"]["draw"];
    assert_eq!(draw_message["name"], "draw");
    assert_eq!(draw_message["title"], "Draw");
    assert_eq!(
        draw_message["correlationId"]["location"],
        "$message.payload#/ref"
    );
    assert_eq!(
        draw_message["payload"],
        json!({"$ref": "#/components/schemas/Draw"})
    );
    let schemas = &document["components"]["schemas"];
    assert_eq!(schemas["Draw"]["title"], "Draw");
    assert_eq!(schemas["Draw"]["required"], json!(["action", "payload"]));
    assert_eq!(
        schemas["Draw"]["properties"]["action"],
        json!({"title": "Action", "type": "string", "const": "draw", "default": "draw"})
    );
    assert_eq!(
        schemas["Draw"]["properties"]["payload"],
        json!({"$ref": "#/components/schemas/DrawPayload"})
    );
    assert_eq!(schemas["DrawPayload"]["title"], "DrawPayload");
    // A newtype's payload is its inner type, not an `allOf` wrapper.
    assert_eq!(
        schemas["Drawn"]["properties"]["payload"],
        json!({"$ref": "#/components/schemas/Point"})
    );
    // A unit message's payload is `null`, and may be left out.
    assert_eq!(
        schemas["Complete"]["properties"]["payload"],
        json!({"type": "null"})
    );
    assert_eq!(schemas["Complete"]["required"], json!(["action"]));
    // The protocol frames have real schemas.
    assert_eq!(
        schemas["Authentication"]["properties"]["payload"]["$ref"],
        "#/components/schemas/AuthenticationPayload"
    );
    assert_eq!(
        schemas["AuthenticationPayload"]["required"],
        json!(["status_code", "status_text"])
    );
    assert!(schemas["ErrorMessage"]["properties"]["payload"].is_object());
    // Nothing unused is left: the unit payload's definition is inlined.
    assert!(schemas.get("CompletePayload").is_none());
}

#[test]
fn nested_definitions_are_lifted_and_every_ref_resolves() {
    let document = api().document(&router());
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["DrawPayload"]["properties"]["points"]["items"]["$ref"],
        "#/components/schemas/Point"
    );
    assert_eq!(schemas["Point"]["required"], json!(["x", "y"]));
    assert_eq!(schemas["Point"]["title"], "Point");
    // A field change shows in the document: the serde rename is honoured.
    assert!(schemas["DrawPayload"]["properties"]["zIndex"].is_object());
    assert!(
        schemas["DrawPayload"]["properties"]
            .get("z_index")
            .is_none()
    );

    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(refs.len() > 20);
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap();
        assert!(
            document.pointer(pointer).is_some(),
            "dangling $ref {reference}"
        );
        assert!(
            !reference.contains("/definitions/"),
            "draft-07 definitions left behind: {reference}"
        );
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" {
                    out.push(value.as_str().unwrap().to_owned());
                } else {
                    collect_refs(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

#[test]
fn collisions_are_named_deterministically() {
    let document = api().document(&router());
    let channels: Vec<&str> = document["channels"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(channels, ["alerts", "canvas", "canvas_2"]);
    assert_eq!(
        document["channels"]["canvas_2"]["address"],
        "/ws/other/{board}"
    );
    assert!(document["operations"]["canvas_2_draw"].is_object());

    let messages = &document["components"]["messages"];
    // The first `Notice` (route order) keeps the plain name; the other shape
    // is qualified by its channel.
    assert_eq!(
        messages["notice"]["payload"]["$ref"],
        "#/components/schemas/Notice"
    );
    // Its title (the class name in generated clients) is unique too.
    assert_eq!(messages["notice_alerts"]["title"], "Notice_alerts");
    assert_eq!(
        messages["notice_alerts"]["payload"]["$ref"],
        "#/components/schemas/Notice_alerts"
    );
    let schemas = &document["components"]["schemas"];
    assert!(schemas["NoticePayload"]["properties"]["text"].is_object());
    // schemars names the second `Notice` type's payload `Notice2`.
    assert_eq!(
        schemas["Notice_alerts"]["properties"]["payload"]["$ref"],
        "#/components/schemas/Notice2"
    );
    assert!(schemas["Notice2"]["properties"]["level"].is_object());
    assert_eq!(
        document["channels"]["canvas_2"]["messages"]["notice"],
        json!({"$ref": "#/components/messages/notice"})
    );
    assert_eq!(
        document["channels"]["alerts"]["messages"]["notice_alerts"],
        json!({"$ref": "#/components/messages/notice_alerts"})
    );
}

#[test]
fn output_is_byte_identical() {
    let first = api().to_json(&router());
    let second = api().to_json(&router());
    assert_eq!(first, second);
    assert!(first.ends_with("}\n"));
}

#[test]
fn every_example_decodes_into_its_type() {
    let checked = check_examples(&api(), &router()).unwrap();
    assert!(checked >= 9, "checked {checked}");
    let document = api().document(&router());
    assert_eq!(
        document["components"]["messages"]["draw"]["examples"][0]["payload"],
        json!({"action":"draw","payload":{"color":"xxxxxx","points":[{"x":0.5,"y":0.5}],"zIndex":0}})
    );
}

#[tokio::test]
async fn a_router_without_servers_serves_the_request_host() {
    let api = AsyncApi::new("No servers", "0.1.0");
    let app = Router::new()
        .route::<Alerts>("/ws/alerts")
        .with_authenticator(SessionCookie::new(Sessions))
        .with_asyncapi(api);
    write_for_parser("no-servers", &app.asyncapi_json().unwrap());
    let server = chanx_testing::TestServer::start(app.clone()).await.unwrap();
    let (status, body) = chanx_testing::http_get(server.addr(), "/asyncapi.json")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let served: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        served["servers"],
        json!({"default": {"host": server.addr().to_string(), "protocol": "ws"}})
    );
    let mut expected: Value = serde_json::from_str(&app.asyncapi_json().unwrap()).unwrap();
    expected["servers"] = served["servers"].clone();
    assert_eq!(served, expected, "only servers differ");
    server.stop().await.unwrap();
}

/// The same consumer over two versions of its input type: the only
/// difference in the documents is the new field.
mod versions {
    use super::*;

    pub(super) mod v1 {
        use super::*;

        #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
        #[message(action = "post")]
        pub(crate) struct Post {
            pub(crate) text: String,
        }

        #[derive(Default)]
        pub(crate) struct Board;

        #[channel(name = "board")]
        impl Board {
            #[ws_handler]
            async fn post(&mut self, _: Post) {}
        }
    }

    pub(super) mod v2 {
        use super::*;

        #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
        #[message(action = "post")]
        pub(crate) struct Post {
            pub(crate) text: String,
            pub(crate) pinned: bool,
        }

        #[derive(Default)]
        pub(crate) struct Board;

        #[channel(name = "board")]
        impl Board {
            #[ws_handler]
            async fn post(&mut self, _: Post) {}
        }
    }
}

#[test]
fn a_new_field_shows_up_without_touching_anything_else() {
    let before = api().document(&Router::new().route::<versions::v1::Board>("/ws/board"));
    let after = api().document(&Router::new().route::<versions::v2::Board>("/ws/board"));
    assert_ne!(before, after);
    let mut patched = before.clone();
    patched["components"]["schemas"]["PostPayload"] =
        after["components"]["schemas"]["PostPayload"].clone();
    patched["components"]["messages"]["post"]["examples"] =
        after["components"]["messages"]["post"]["examples"].clone();
    assert_eq!(
        patched, after,
        "only the Post schema and its example change"
    );
    assert_eq!(
        after["components"]["schemas"]["PostPayload"]["properties"]["pinned"]["type"],
        "boolean"
    );
    assert!(
        before["components"]["schemas"]["PostPayload"]["properties"]
            .get("pinned")
            .is_none()
    );
}

#[derive(Default)]
struct Clash;

#[channel(name = "clash/x")]
impl Clash {
    /// A handler whose operation id is the protocol operation's.
    #[ws_handler]
    async fn protocol(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[test]
fn no_operation_or_channel_is_overwritten() {
    let document = api().document(&Router::new().route::<Clash>("/a").route::<Clash>("/b"));
    write_for_parser("clash", &serde_json::to_string_pretty(&document).unwrap());
    let channels: Vec<&str> = document["channels"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        channels,
        ["clash_x", "clash_x_2"],
        "`/` cannot appear in a $ref pointer"
    );
    assert_eq!(
        document["operations"]["clash_x_protocol"]["action"],
        "receive"
    );
    assert_eq!(
        document["operations"]["clash_x_protocol_2"]["action"],
        "send"
    );
    assert_eq!(
        document["operations"]["clash_x_2_protocol"]["action"],
        "receive"
    );
}

/// Where a profile lives.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
struct Address {
    street_name: String,
}

/// A profile update, its fields in snake_case in Rust.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "update_profile")]
struct UpdateProfile {
    display_name: String,
    home: Address,
}

#[derive(Default)]
struct CamelProfile;

#[channel(name = "profile", camelize)]
impl CamelProfile {
    #[ws_handler]
    async fn update_profile(&mut self, update: UpdateProfile) -> UpdateProfile {
        update
    }
}

#[derive(Default)]
struct PlainProfile;

#[channel(name = "plain_profile")]
impl PlainProfile {
    #[ws_handler]
    async fn update_profile(&mut self, update: UpdateProfile) -> UpdateProfile {
        update
    }
}

#[test]
fn camelcase_channels_document_camelcase_keys() {
    let router = Router::new().route::<CamelProfile>("/ws/profile");
    let document = api().document(&router);
    write_for_parser("camel", &api().to_json(&router));
    let schemas = &document["components"]["schemas"];
    let payload = &schemas["UpdateProfilePayload"];
    assert_eq!(payload["required"], json!(["displayName", "home"]));
    assert!(payload["properties"]["displayName"].is_object());
    assert!(payload["properties"].get("display_name").is_none());
    assert_eq!(schemas["Address"]["required"], json!(["streetName"]));
    assert_eq!(
        document["components"]["messages"]["update_profile"]["examples"][0]["payload"],
        json!({"action": "update_profile", "payload": {"displayName": "xxxxxx", "home": {"streetName": "xxxxxx"}}})
    );
    // The camelCase example decodes once decamelized, as the server does.
    assert!(check_examples(&api(), &router).unwrap() >= 2);

    // The same types on a plain channel too: the camelCase channel gets
    // copies, the plain one keeps the Rust names.
    let both = Router::new()
        .route::<CamelProfile>("/ws/profile")
        .route::<PlainProfile>("/ws/plain");
    let document = api().document(&both);
    write_for_parser("camel-and-plain", &api().to_json(&both));
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["UpdateProfile"]["properties"]["payload"]["$ref"],
        "#/components/schemas/UpdateProfilePayloadCamel"
    );
    assert_eq!(
        schemas["UpdateProfilePayloadCamel"]["properties"]["home"]["$ref"],
        "#/components/schemas/AddressCamel"
    );
    assert_eq!(schemas["AddressCamel"]["required"], json!(["streetName"]));
    assert_eq!(
        schemas["UpdateProfile_plain_profile"]["properties"]["payload"]["$ref"],
        "#/components/schemas/UpdateProfilePayload"
    );
    assert_eq!(schemas["Address"]["required"], json!(["street_name"]));
    assert!(check_examples(&api(), &both).unwrap() >= 4);
}
