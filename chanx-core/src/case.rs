//! camelCase on the wire: object keys converted as Chanx converts them
//! (with `pyhumps`), values untouched, so `action` values stay snake_case.

use serde_json::{Map, Value};

/// `room_id` → `roomId`, as `humps.camelize` does: leading underscores
/// kept, all-uppercase and numeric keys unchanged, the first letter
/// lowercased unless the first two are uppercase.
#[must_use]
pub(crate) fn camelize(key: &str) -> String {
    if is_upper(key) || is_numeric(key) {
        return key.to_owned();
    }
    let mut out = String::with_capacity(key.len());
    let chars: Vec<char> = key.chars().collect();
    let mut index = 0;
    // Leading separators stay as they are.
    while index < chars.len() && matches!(chars[index], '_' | '-') {
        out.push(chars[index]);
        index += 1;
    }
    let first_two_upper =
        chars.len() >= index + 2 && chars[index].is_uppercase() && chars[index + 1].is_uppercase();
    let mut first = true;
    while index < chars.len() {
        let c = chars[index];
        if matches!(c, '_' | '-') {
            let run_start = index;
            while index < chars.len() && matches!(chars[index], '_' | '-') {
                index += 1;
            }
            match chars.get(index) {
                // A separator run before a character: dropped, and the
                // character uppercased.
                Some(next) => {
                    out.extend(next.to_uppercase());
                    index += 1;
                }
                // Trailing separators stay.
                None => out.extend(&chars[run_start..]),
            }
            first = false;
            continue;
        }
        if first && !first_two_upper {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        first = false;
        index += 1;
    }
    out
}

/// `roomId` → `room_id`, `HTTPCode` → `http_code`, `someURL` → `some_url`,
/// as `humps.decamelize` does; all-uppercase and numeric keys unchanged.
#[must_use]
pub(crate) fn decamelize(key: &str) -> String {
    if is_upper(key) || is_numeric(key) {
        return key.to_owned();
    }
    let fixed = fix_abbreviations(key);
    // Split before each uppercase letter (keeping separators attached to
    // their word), join with `_`, lowercase.
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in fixed.chars() {
        if c.is_uppercase() && !current.is_empty() && !current.ends_with(['_', '-']) {
            words.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words.join("_").to_lowercase()
}

/// Runs of uppercase letters and digits that end before another uppercase
/// letter or digit, or at the end, are title-cased: `HTTPCode` →
/// `HttpCode`, `someURL` → `someUrl`.
fn fix_abbreviations(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let is_run = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
    let mut out = String::with_capacity(key.len());
    let mut index = 0;
    while index < chars.len() {
        if !is_run(chars[index]) {
            out.push(chars[index]);
            index += 1;
            continue;
        }
        let start = index;
        while index < chars.len() && is_run(chars[index]) {
            index += 1;
        }
        // The regex `([A-Z\d]+)(?=[A-Z\d]|$)` matches the run minus its last
        // character when a lowercase letter follows, or the whole run at
        // the end of the string.
        let end = if index == chars.len() {
            index
        } else {
            index - 1
        };
        if end > start {
            out.push_str(&title(&chars[start..end]));
        }
        out.extend(&chars[end..index]);
    }
    out
}

/// Python's `str.title()` for ASCII: a letter after a non-letter is
/// uppercased, other letters lowercased.
fn title(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut after_letter = false;
    for &c in chars {
        if c.is_alphabetic() {
            if after_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            after_letter = true;
        } else {
            out.push(c);
            after_letter = false;
        }
    }
    out
}

/// Python's `str.isupper()`: at least one cased character, all uppercase.
fn is_upper(text: &str) -> bool {
    let mut cased = false;
    for c in text.chars() {
        if c.is_lowercase() {
            return false;
        }
        cased |= c.is_uppercase();
    }
    cased
}

fn is_numeric(text: &str) -> bool {
    !text.is_empty() && text.chars().all(char::is_numeric)
}

/// Converts every object key of `value`, at every depth, with `convert`.
pub(crate) fn convert_keys(value: Value, convert: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (convert(&key), convert_keys(value, convert)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| convert_keys(item, convert))
                .collect(),
        ),
        other => other,
    }
}

/// A JSON frame with its keys camelized; `None` when it is not JSON.
pub(crate) fn camelize_frame(frame: &str) -> Option<String> {
    let value: Value = serde_json::from_str(frame).ok()?;
    serde_json::to_string(&convert_keys(value, camelize)).ok()
}

/// A JSON frame with its keys decamelized; `None` when it is not JSON.
pub(crate) fn decamelize_frame(frame: &str) -> Option<String> {
    let value: Value = serde_json::from_str(frame).ok()?;
    serde_json::to_string(&convert_keys(value, decamelize)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camelizes_as_pyhumps() {
        for (snake, camel) in [
            ("room_id", "roomId"),
            ("_private", "_private"),
            ("x1_y", "x1Y"),
            ("HTTP_code", "HTTPCode"),
            ("status_code", "statusCode"),
            ("already", "already"),
            ("JSON", "JSON"),
            ("a__b", "aB"),
            ("trailing_", "trailing_"),
            ("42", "42"),
        ] {
            assert_eq!(camelize(snake), camel, "{snake}");
        }
    }

    #[test]
    fn decamelizes_as_pyhumps() {
        for (camel, snake) in [
            ("roomId", "room_id"),
            ("HTTPCode", "http_code"),
            ("someURL", "some_url"),
            ("iOS", "i_os"),
            ("a2b", "a2b"),
            ("room_id", "room_id"),
            ("JSON", "JSON"),
            ("statusCode", "status_code"),
            ("RoomChat", "room_chat"),
            ("MyHTTPThing", "my_http_thing"),
            ("AIAssistant", "ai_assistant"),
            ("V2Chat", "v2_chat"),
        ] {
            assert_eq!(decamelize(camel), snake, "{camel}");
        }
    }

    #[test]
    fn frames_convert_keys_not_values() {
        let frame =
            r#"{"action":"chat_reply","payload":{"room_id":1,"tags":[{"tag_name":"a_b"}]}}"#;
        assert_eq!(
            camelize_frame(frame).unwrap(),
            r#"{"action":"chat_reply","payload":{"roomId":1,"tags":[{"tagName":"a_b"}]}}"#
        );
        assert_eq!(
            decamelize_frame(r#"{"action":"nestMsg","payload":{"roomId":1}}"#).unwrap(),
            r#"{"action":"nestMsg","payload":{"room_id":1}}"#
        );
    }
}
