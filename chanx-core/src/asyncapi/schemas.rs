//! Shaping the schemars definitions into the form Chanx's documents have,
//! so Chanx's own tooling (`chanx generate-client`) reads them: every
//! definition titled, newtype wrappers (`allOf` with one `$ref`) unwrapped,
//! definitions renamed out of the way of the message envelopes, keys
//! camelized for camelCase channels, and nothing left that no message uses.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::case;

/// Where definitions live, as `$ref` prefixes.
pub(super) const REF_PREFIX: &str = "#/components/schemas/";

/// The definition name a `$ref` points at, if it is one of ours.
pub(super) fn ref_target(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(REF_PREFIX)
}

/// Replaces `{"allOf": [{"$ref": X}], …}` by `{"$ref": X, …}` everywhere in
/// `schema`: schemars' draft-07 form of a newtype, which code generators
/// otherwise read as "any".
pub(super) fn unwrap_single_all_of(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let single_ref = match map.get("allOf") {
                Some(Value::Array(parts)) if parts.len() == 1 && !map.contains_key("$ref") => parts
                    [0]
                .get("$ref")
                .filter(|_| parts[0].as_object().is_some_and(|part| part.len() == 1))
                .cloned(),
                _ => None,
            };
            if let Some(reference) = single_ref {
                map.remove("allOf");
                map.insert("$ref".into(), reference);
            }
            map.values_mut().for_each(unwrap_single_all_of);
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_single_all_of),
        _ => {}
    }
}

/// Definitions that are only a `$ref` to another (with annotations), each
/// mapped to the definition it finally names.
pub(super) fn aliases(definitions: &Map<String, Value>) -> BTreeMap<String, String> {
    let target = |name: &str| {
        let definition = definitions.get(name)?.as_object()?;
        let only_ref = definition
            .keys()
            .all(|key| matches!(key.as_str(), "$ref" | "description" | "title"));
        only_ref
            .then(|| ref_target(&definitions[name]))
            .flatten()
            .map(str::to_owned)
    };
    let mut aliases = BTreeMap::new();
    for name in definitions.keys() {
        let Some(mut last) = target(name) else {
            continue;
        };
        // Follow a chain, bounded so a cycle cannot loop.
        for _ in 0..definitions.len() {
            match target(&last) {
                Some(next) if next != *name => last = next,
                _ => break,
            }
        }
        if last != *name {
            aliases.insert(name.clone(), last);
        }
    }
    aliases
}

/// Rewrites `$ref`s to renamed definitions.
pub(super) fn rename_refs(schema: &mut Value, renames: &BTreeMap<String, String>) {
    if renames.is_empty() {
        return;
    }
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(new) = reference
                    .strip_prefix(REF_PREFIX)
                    .and_then(|name| renames.get(name))
            {
                *reference = format!("{REF_PREFIX}{new}");
            }
            map.values_mut()
                .for_each(|value| rename_refs(value, renames));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|value| rename_refs(value, renames)),
        _ => {}
    }
}

/// Every definition `schema` reaches, directly or through other definitions.
pub(super) fn reachable<'a>(
    roots: impl IntoIterator<Item = &'a Value>,
    definitions: &Map<String, Value>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&Value> = roots.into_iter().collect();
    while let Some(schema) = stack.pop() {
        match schema {
            Value::Object(map) => {
                if let Some(name) = ref_target(schema)
                    && seen.insert(name.to_owned())
                    && let Some(definition) = definitions.get(name)
                {
                    stack.push(definition);
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    seen
}

/// Camelizes the property names (and `required` entries) of `schema` and
/// its inline subschemas, as `camelize` does to the frames on the wire.
pub(super) fn camelize_properties(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get_mut("properties") {
                let renamed: Map<String, Value> = std::mem::take(properties)
                    .into_iter()
                    .map(|(name, value)| (case::camelize(&name), value))
                    .collect();
                *properties = renamed;
            }
            if let Some(Value::Array(required)) = map.get_mut("required") {
                for name in required.iter_mut() {
                    if let Value::String(text) = name {
                        *text = case::camelize(text);
                    }
                }
            }
            for (key, value) in map.iter_mut() {
                // `enum`, `const`, `default` and `examples` are values, which
                // camelize leaves alone.
                if !matches!(key.as_str(), "enum" | "const" | "default" | "examples") {
                    camelize_properties(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(camelize_properties),
        _ => {}
    }
}

/// Whether `schema` (or the definition it points at) only admits `null`:
/// the payload of a unit message.
pub(super) fn is_null(schema: &Value, definitions: &Map<String, Value>) -> bool {
    let schema = ref_target(schema)
        .and_then(|name| definitions.get(name))
        .unwrap_or(schema);
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// A name not yet in `taken`: `base`, or `base2`, `base3`…
pub(super) fn fresh_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}{n}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn newtype_wrappers_become_refs() {
        let mut schema = json!({"allOf": [{"$ref": "#/components/schemas/A"}], "description": "d"});
        unwrap_single_all_of(&mut schema);
        assert_eq!(
            schema,
            json!({"$ref": "#/components/schemas/A", "description": "d"})
        );
        let mut two = json!({"allOf": [{"$ref": "#/components/schemas/A"}, {"type": "object"}]});
        let before = two.clone();
        unwrap_single_all_of(&mut two);
        assert_eq!(two, before);
    }

    #[test]
    fn camelize_renames_properties_not_values() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "user_name": {"type": "string", "enum": ["snake_value"]},
                "nested_thing": {"properties": {"inner_key": {"const": "a_b"}}, "required": ["inner_key"]}
            },
            "required": ["user_name"]
        });
        camelize_properties(&mut schema);
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "properties": {
                    "userName": {"type": "string", "enum": ["snake_value"]},
                    "nestedThing": {"properties": {"innerKey": {"const": "a_b"}}, "required": ["innerKey"]}
                },
                "required": ["userName"]
            })
        );
    }

    #[test]
    fn reachability_follows_definitions() {
        let definitions: Map<String, Value> = serde_json::from_value(json!({
            "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}}},
            "B": {"items": {"$ref": "#/components/schemas/C"}},
            "C": {"type": "string"},
            "D": {"type": "string"}
        }))
        .unwrap();
        let root = json!({"$ref": "#/components/schemas/A"});
        assert_eq!(
            reachable([&root], &definitions),
            ["A", "B", "C"].map(String::from).into_iter().collect()
        );
    }
}
