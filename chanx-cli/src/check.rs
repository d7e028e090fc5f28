//! Checks of AsyncAPI documents: what a client generator relies on
//! ([`validate`]), and what changed between two versions ([`diff`]). (The
//! full specification check is the official `@asyncapi/parser`'s job; these
//! are the questions a chanx user asks before shipping a client.)

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// The problems of `document`, as readable lines (empty: usable).
///
/// It must be AsyncAPI 3.0 with `info.title` and `info.version`; every
/// local `$ref` must resolve; every operation must name a channel of the
/// document and list only that channel's messages; every message must
/// have a payload.
#[must_use]
pub fn validate(document: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match document.get("asyncapi").and_then(Value::as_str) {
        Some(version) if version.starts_with("3.") => {}
        Some(version) => problems.push(format!("asyncapi is {version:?}; 3.x is expected")),
        None => problems.push("no `asyncapi` version".to_owned()),
    }
    for key in ["title", "version"] {
        if document
            .pointer(&format!("/info/{key}"))
            .and_then(Value::as_str)
            .is_none()
        {
            problems.push(format!("no info.{key}"));
        }
    }
    let mut refs = Vec::new();
    collect_refs(document, "", &mut refs);
    for (at, reference) in refs {
        let resolves = reference
            .strip_prefix('#')
            .is_some_and(|pointer| document.pointer(pointer).is_some());
        if !resolves {
            problems.push(format!("{at}: $ref {reference:?} does not resolve"));
        }
    }
    let empty = Map::new();
    let channels = document
        .get("channels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (id, channel) in channels {
        if channel.get("address").and_then(Value::as_str).is_none() {
            problems.push(format!("channel {id:?} has no address"));
        }
        for (key, message) in channel
            .get("messages")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
        {
            let resolved = follow(document, message);
            if resolved
                .and_then(|message| message.get("payload"))
                .is_none()
            {
                problems.push(format!("channel {id:?}: message {key:?} has no payload"));
            }
        }
    }
    for (id, operation) in document
        .get("operations")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
    {
        let Some(channel) = operation
            .pointer("/channel/$ref")
            .and_then(Value::as_str)
            .and_then(|target| target.strip_prefix("#/channels/"))
        else {
            problems.push(format!("operation {id:?} names no channel"));
            continue;
        };
        if !matches!(
            operation.get("action").and_then(Value::as_str),
            Some("send" | "receive")
        ) {
            problems.push(format!(
                "operation {id:?}: action is neither send nor receive"
            ));
        }
        let listed = operation
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                operation
                    .pointer("/reply/messages")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            );
        for message in listed {
            let target = message
                .get("$ref")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !target.starts_with(&format!("#/channels/{channel}/messages/")) {
                problems.push(format!(
                    "operation {id:?}: message {target:?} is not one of channel {channel:?}'s"
                ));
            }
        }
    }
    problems
}

fn follow<'a>(document: &'a Value, mut value: &'a Value) -> Option<&'a Value> {
    for _ in 0..8 {
        let Some(target) = value.get("$ref").and_then(Value::as_str) else {
            return Some(value);
        };
        value = document.pointer(target.strip_prefix('#')?)?;
    }
    None
}

fn collect_refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{key}");
                if key == "$ref" {
                    if let Some(reference) = child.as_str() {
                        out.push((at.to_owned(), reference.to_owned()));
                    }
                } else {
                    collect_refs(child, &here, out);
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                collect_refs(child, &format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
}

/// What changed from `old` to `new`, one line each: `+` added, `-`
/// removed, `~` changed, for channels, operations, messages and schemas
/// (down to their properties and required fields). A `!` marks what can
/// break an existing client: something removed, or a field newly
/// required.
#[must_use]
pub fn diff(old: &Value, new: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for (section, pointer) in [
        ("channel", "/channels"),
        ("operation", "/operations"),
        ("message", "/components/messages"),
        ("schema", "/components/schemas"),
    ] {
        let empty = Map::new();
        let before = old
            .pointer(pointer)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let after = new
            .pointer(pointer)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            match (before.get(key), after.get(key)) {
                (None, Some(_)) => lines.push(format!("+ {section} {key}")),
                (Some(_), None) => lines.push(format!("- {section} {key} !")),
                (Some(was), Some(is)) if was != is => {
                    if section == "schema" {
                        lines.extend(schema_changes(key, was, is));
                    } else {
                        lines.push(format!("~ {section} {key}"));
                    }
                }
                _ => {}
            }
        }
    }
    lines
}

fn schema_changes(name: &str, was: &Value, is: &Value) -> Vec<String> {
    let empty = Map::new();
    let properties = |schema: &Value| {
        schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let required = |schema: &Value| -> BTreeSet<String> {
        schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let (before, after) = (properties(was), properties(is));
    let (required_before, required_after) = (required(was), required(is));
    let mut lines = Vec::new();
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        match (before.get(key), after.get(key)) {
            (None, Some(_)) => {
                let breaking = if required_after.contains(key) {
                    " (required) !"
                } else {
                    ""
                };
                lines.push(format!("+ schema {name}.{key}{breaking}"));
            }
            (Some(_), None) => lines.push(format!("- schema {name}.{key} !")),
            (Some(a), Some(b)) if a != b => lines.push(format!("~ schema {name}.{key}")),
            _ => {}
        }
    }
    for key in required_after.difference(&required_before) {
        if before.contains_key(key) {
            lines.push(format!("~ schema {name}.{key} is now required !"));
        }
    }
    if lines.is_empty() {
        lines.push(format!("~ schema {name}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(properties: Value, required: Value) -> Value {
        json!({
            "asyncapi": "3.0.0",
            "info": {"title": "T", "version": "1"},
            "channels": {"c": {"address": "/c", "messages": {"m": {"$ref": "#/components/messages/m"}}}},
            "operations": {"o": {"action": "receive", "channel": {"$ref": "#/channels/c"}, "messages": [{"$ref": "#/channels/c/messages/m"}]}},
            "components": {
                "messages": {"m": {"payload": {"$ref": "#/components/schemas/M"}}},
                "schemas": {"M": {"type": "object", "properties": properties, "required": required}}
            }
        })
    }

    #[test]
    fn a_valid_document_has_no_problems_and_a_broken_one_says_why() {
        let good = document(json!({"a": {"type": "string"}}), json!(["a"]));
        assert_eq!(validate(&good), Vec::<String>::new());
        let mut broken = good.clone();
        broken["operations"]["o"]["messages"] = json!([{"$ref": "#/channels/other/messages/m"}]);
        broken["components"]["messages"]["m"] =
            json!({"payload": {"$ref": "#/components/schemas/Gone"}});
        let problems = validate(&broken);
        assert!(
            problems
                .iter()
                .any(|line| line.contains("\"#/components/schemas/Gone\" does not resolve")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|line| line.contains("is not one of channel \"c\"'s")),
            "{problems:?}"
        );
    }

    #[test]
    fn diff_names_fields_and_marks_what_breaks() {
        let old = document(
            json!({"a": {"type": "string"}, "b": {"type": "string"}}),
            json!(["a"]),
        );
        let new = document(
            json!({"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}}),
            json!(["a", "b", "c"]),
        );
        assert_eq!(
            diff(&old, &new),
            [
                "~ schema M.a",
                "+ schema M.c (required) !",
                "~ schema M.b is now required !"
            ]
        );
        assert_eq!(diff(&old, &old), Vec::<String>::new());
    }
}
