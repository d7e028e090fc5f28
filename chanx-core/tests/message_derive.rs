//! `#[derive(Message)]`: wire shapes, serde attributes, unions and schemas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chanx_core::message::MessageMeta;
use chanx_core::messages::{
    Authentication, Complete, ErrorMessage, EventComplete, GroupComplete, Ping, Pong,
};
use chanx_core::wire::{FrameError, LocSegment};
use chanx_core::{DecodeError, Message, SingleMessage};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Chat text for a room.
#[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "chat")]
struct Chat {
    room: String,
    #[serde(rename = "body")]
    text: String,
    #[serde(default)]
    urgent: bool,
    #[serde(skip)]
    local_only: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    reply_to: Option<u64>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "echo")]
struct Echo(String);

#[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "tick")]
struct Tick;

#[derive(Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[serde(rename_all = "camelCase")]
#[message(action = "user.renamed")]
struct UserRenamed {
    user_id: u64,
    new_name: String,
}

#[derive(Debug, PartialEq, Message)]
enum Outgoing {
    Chat(Chat),
    Echo(Echo),
    Tick(Tick),
}

#[test]
fn struct_payload_is_an_object_and_serde_attributes_apply() {
    let chat = Chat {
        room: "lobby".into(),
        text: "hi".into(),
        urgent: false,
        local_only: 7,
        reply_to: None,
    };
    assert_eq!(
        chat.to_json(),
        r#"{"action":"chat","payload":{"room":"lobby","body":"hi","urgent":false}}"#
    );
    let decoded =
        Chat::from_json(r#"{"action":"chat","payload":{"room":"r","body":"b","reply_to":3}}"#)
            .unwrap();
    assert_eq!(
        decoded,
        Chat {
            room: "r".into(),
            text: "b".into(),
            urgent: false,
            local_only: 0,
            reply_to: Some(3),
        }
    );
    let renamed = UserRenamed {
        user_id: 1,
        new_name: "x".into(),
    };
    assert_eq!(
        renamed.to_json(),
        r#"{"action":"user.renamed","payload":{"userId":1,"newName":"x"}}"#
    );
    assert_eq!(UserRenamed::from_json(&renamed.to_json()).unwrap(), renamed);
}

#[test]
fn newtype_payload_is_the_inner_value() {
    assert_eq!(
        Echo("hello".into()).to_json(),
        r#"{"action":"echo","payload":"hello"}"#
    );
    assert_eq!(
        Echo::from_json(r#"{"payload":"x","action":"echo"}"#).unwrap(),
        Echo("x".into())
    );
}

#[test]
fn unit_payload_is_null_and_may_be_omitted() {
    assert_eq!(Tick.to_json(), r#"{"action":"tick","payload":null}"#);
    assert_eq!(Tick::from_json(r#"{"action":"tick"}"#).unwrap(), Tick);
    assert_eq!(
        Tick::from_json(r#"{"action":"tick","payload":null}"#).unwrap(),
        Tick
    );
}

#[test]
fn actions_are_constants() {
    assert_eq!(Chat::ACTION, "chat");
    assert_eq!(<Chat as Message>::ACTIONS, ["chat"]);
    assert_eq!(Outgoing::ACTIONS, ["chat", "echo", "tick"]);
    assert!(Outgoing::has_action("tick"));
    assert!(!Outgoing::has_action("pong"));
    const FIRST: &str = <Outgoing as Message>::ACTIONS[0];
    assert_eq!(FIRST, "chat");
}

#[test]
fn enum_is_a_union_of_messages() {
    let tick: Outgoing = Tick.into();
    assert_eq!(tick.action(), "tick");
    assert_eq!(tick.to_json(), r#"{"action":"tick","payload":null}"#);
    assert_eq!(
        Outgoing::Echo(Echo("e".into())).to_json(),
        r#"{"action":"echo","payload":"e"}"#
    );
    assert_eq!(
        Outgoing::from_json(r#"{"action":"echo","payload":"z"}"#).unwrap(),
        Outgoing::Echo(Echo("z".into()))
    );
    assert_eq!(
        Outgoing::from_json(r#"{"action":"pong"}"#).unwrap_err(),
        DecodeError(FrameError::UnknownAction { tag: "pong".into() })
    );
    let mut metas: Vec<MessageMeta> = Vec::new();
    Outgoing::describe(&mut metas);
    let names: Vec<(&str, &str)> = metas.iter().map(|meta| (meta.name, meta.action)).collect();
    assert_eq!(
        names,
        [("Chat", "chat"), ("Echo", "echo"), ("Tick", "tick")]
    );
    assert_eq!(metas[0].description, Some("Chat text for a room."));
}

#[test]
fn decode_errors_locate_the_field() {
    let error = Chat::from_json(r#"{"action":"chat","payload":{"room":"r"}}"#).unwrap_err();
    assert_eq!(
        error.0,
        FrameError::InvalidPayload {
            loc: vec![
                LocSegment::Key("chat".into()),
                LocSegment::Key("payload".into()),
                LocSegment::Key("body".into())
            ],
            kind: "missing",
            msg: "Field required".into(),
        }
    );
    let error =
        Chat::from_json(r#"{"action":"chat","payload":{"room":"r","body":"b","reply_to":"x"}}"#)
            .unwrap_err();
    match error.0 {
        FrameError::InvalidPayload { loc, kind, msg } => {
            assert_eq!(kind, "int_parsing");
            assert_eq!(loc.last(), Some(&LocSegment::Key("reply_to".into())));
            assert_eq!(
                msg,
                "Input should be a valid integer, unable to parse string as an integer"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        Chat::from_json(r#"{"action":"echo","payload":"x"}"#)
            .unwrap_err()
            .0,
        FrameError::UnknownAction { .. }
    ));
    assert_eq!(
        Chat::from_json("[]").unwrap_err().0,
        FrameError::NotAnObject
    );
}

#[test]
fn nested_error_paths_include_indexes() {
    #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
    struct Point {
        x: i32,
    }
    #[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
    #[message(action = "path")]
    struct Path {
        points: Vec<Point>,
    }
    let error = Path::from_json(r#"{"action":"path","payload":{"points":[{"x":1},{"x":"no"}]}}"#)
        .unwrap_err();
    let FrameError::InvalidPayload { loc, .. } = error.0 else {
        panic!("expected a payload error");
    };
    assert_eq!(
        serde_json::to_value(&loc).unwrap(),
        json!(["path", "payload", "points", 1, "x"])
    );
}

#[test]
fn payload_schema_comes_from_schemars() {
    let mut metas = Vec::new();
    Chat::describe(&mut metas);
    let mut generator = schemars::SchemaGenerator::default();
    let schema = (metas[0].schema)(&mut generator);
    let schema = serde_json::to_value(&schema).unwrap();
    // A struct is referenced; its definition sits in the generator.
    let definitions = serde_json::to_value(generator.definitions()).unwrap();
    let name = schema["$ref"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let chat = &definitions[&name];
    assert_eq!(chat["type"], "object");
    assert!(chat["properties"]["body"].is_object());
    assert!(chat["properties"].get("local_only").is_none());
    assert_eq!(chat["required"], json!(["room", "body"]));
}

#[test]
fn built_in_messages_have_the_protocol_shapes() {
    assert_eq!(Ping.to_json(), r#"{"action":"ping","payload":null}"#);
    assert_eq!(Pong.to_json(), r#"{"action":"pong","payload":null}"#);
    assert_eq!(
        Complete.to_json(),
        r#"{"action":"complete","payload":null}"#
    );
    assert_eq!(
        GroupComplete.to_json(),
        r#"{"action":"group_complete","payload":null}"#
    );
    assert_eq!(
        EventComplete.to_json(),
        r#"{"action":"event_complete","payload":null}"#
    );
    assert_eq!(
        ErrorMessage(chanx_core::protocol::ErrorPayload::Detail(
            chanx_core::protocol::ErrorDetail { detail: "x".into() }
        ))
        .to_json(),
        r#"{"action":"error","payload":{"detail":"x"}}"#
    );
    let auth = Authentication {
        status_code: 200,
        status_text: "OK".into(),
        data: Some(json!({"user": 1})),
    };
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&auth.to_json()).unwrap(),
        json!({"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"user":1}}})
    );
}

/// A form with a field of each common type, to check the error table.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Kind {
    A,
    B,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct Spot {
    x: i32,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "form")]
#[serde(deny_unknown_fields)]
struct Form {
    name: String,
    age: u8,
    score: f64,
    active: bool,
    tags: Vec<String>,
    meta: std::collections::BTreeMap<String, String>,
    kind: Kind,
    spot: Spot,
}

/// The pydantic error types, `loc`s and messages of the documented table
/// (`chanx::protocol`), one case each.
#[test]
fn validation_errors_use_pydantic_names() {
    let valid = json!({
        "name": "n", "age": 1, "score": 1.5, "active": true, "tags": ["t"],
        "meta": {"k": "v"}, "kind": "a", "spot": {"x": 1}
    });
    assert!(Form::from_json(&json!({"action": "form", "payload": valid}).to_string()).is_ok());
    let cases: &[(&str, Value, &str, &[&str], &str)] = &[
        ("name", Value::Null, "missing", &["name"], "Field required"),
        (
            "name",
            json!(5),
            "string_type",
            &["name"],
            "Input should be a valid string",
        ),
        (
            "age",
            json!("x"),
            "int_parsing",
            &["age"],
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "age",
            json!(1.5),
            "int_from_float",
            &["age"],
            "Input should be a valid integer, got a number with a fractional part",
        ),
        (
            "age",
            json!(300),
            "less_than_equal",
            &["age"],
            "Input should be less than or equal to 255",
        ),
        (
            "age",
            json!(-1),
            "greater_than_equal",
            &["age"],
            "Input should be greater than or equal to 0",
        ),
        (
            "age",
            json!(true),
            "int_type",
            &["age"],
            "Input should be a valid integer",
        ),
        (
            "score",
            json!("x"),
            "float_parsing",
            &["score"],
            "Input should be a valid number, unable to parse string as a number",
        ),
        (
            "score",
            json!([]),
            "float_type",
            &["score"],
            "Input should be a valid number",
        ),
        (
            "active",
            json!("x"),
            "bool_parsing",
            &["active"],
            "Input should be a valid boolean, unable to interpret input",
        ),
        (
            "active",
            json!([]),
            "bool_type",
            &["active"],
            "Input should be a valid boolean",
        ),
        (
            "tags",
            json!("x"),
            "list_type",
            &["tags"],
            "Input should be a valid list",
        ),
        (
            "meta",
            json!([]),
            "dict_type",
            &["meta"],
            "Input should be a valid dictionary",
        ),
        (
            "kind",
            json!("c"),
            "enum",
            &["kind"],
            "Input should be 'a' or 'b'",
        ),
        (
            "spot",
            json!(5),
            "model_type",
            &["spot"],
            "Input should be a valid dictionary or instance of Spot",
        ),
        (
            "extra",
            json!(1),
            "extra_forbidden",
            &["extra"],
            "Extra inputs are not permitted",
        ),
    ];
    let mut failures = Vec::new();
    for (field, value, kind, loc, msg) in cases {
        let mut payload = valid.clone();
        if value.is_null() {
            payload.as_object_mut().unwrap().remove(*field);
        } else {
            payload[*field] = value.clone();
        }
        let frame = json!({"action": "form", "payload": payload}).to_string();
        let expected_loc: Vec<LocSegment> = ["form", "payload"]
            .iter()
            .chain(loc.iter())
            .map(|key| LocSegment::Key((*key).into()))
            .collect();
        match Form::from_json(&frame).unwrap_err().0 {
            FrameError::InvalidPayload {
                loc: got_loc,
                kind: got_kind,
                msg: got_msg,
            } if got_kind == *kind && got_loc == expected_loc && got_msg == *msg => {}
            other => failures.push(format!(
                "{field}={value}: expected {kind} {msg:?}, got {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // No payload at all is `missing`; `null` is the wrong type.
    assert_eq!(
        Form::from_json(r#"{"action":"form"}"#).unwrap_err().0,
        FrameError::InvalidPayload {
            loc: vec![
                LocSegment::Key("form".into()),
                LocSegment::Key("payload".into())
            ],
            kind: "missing",
            msg: "Field required".into(),
        }
    );
    assert_eq!(
        Form::from_json(r#"{"action":"form","payload":null}"#)
            .unwrap_err()
            .0,
        FrameError::InvalidPayload {
            loc: vec![
                LocSegment::Key("form".into()),
                LocSegment::Key("payload".into())
            ],
            kind: "model_type",
            msg: "Input should be a valid dictionary or instance of Form".into(),
        }
    );
    // An element of a list is located by its index.
    let mut payload = valid.clone();
    payload["tags"] = json!(["ok", 7]);
    let frame = json!({"action": "form", "payload": payload}).to_string();
    let FrameError::InvalidPayload { loc, kind, .. } = Form::from_json(&frame).unwrap_err().0
    else {
        panic!("not a payload error");
    };
    assert_eq!(kind, "string_type");
    assert_eq!(loc.last(), Some(&LocSegment::Index(1)));
}
