//! Group templates such as `chat_{room}`: the one definition of their
//! grammar, used to check them against routes and each other, and to fill
//! them in at connect.
//!
//! # The encoding of values
//!
//! Any route value can name a group (`room_1`, `my-room`, a UUID, `café`),
//! and no value can make one template's group equal another's:
//!
//! - letters and digits are kept; every other byte of the value's UTF-8 is
//!   written `.` and two lowercase hex digits (`room_1` → `room.5f1`,
//!   `my-room` → `my.2droom`);
//! - a template's literal text may not contain `.`, and each placeholder
//!   stands between `_`, `-` or the ends of the template (checked when the
//!   channel is compiled), so a value never supplies a separator the
//!   template has: `chat_{room}` with `lobby_admin` is `chat_lobby.5fadmin`,
//!   never `chat_{room}_admin`'s `chat_lobby_admin`;
//! - [`Router::validate`](crate::Router::validate) refuses two templates
//!   where a value of one could spell a literal of the other
//!   (`chat_{room}` and `chat_admin`);
//! - a name over 99 bytes keeps its first 82 and ends with `.` and 16 hex
//!   digits of its BLAKE2s digest.

use blake2::Blake2s;
use blake2::Digest;
use blake2::digest::consts::{U6, U8};

use crate::layer::{GroupName, InvalidGroupName, MAX_GROUP_NAME_LEN};

/// Why a group template could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupTemplateError {
    /// A `{` without its `}`.
    #[error("unclosed '{{' in group template {template:?}")]
    Unclosed {
        /// The template.
        template: String,
    },
    /// No value for a placeholder.
    #[error("group template {template:?} names {{{param}}}, which has no value here")]
    UnknownParam {
        /// The template.
        template: String,
        /// The placeholder.
        param: String,
    },
    /// An empty value.
    #[error("the value of {{{param}}} is empty")]
    Empty {
        /// The placeholder.
        param: String,
    },
    /// The template's literal text is not valid in a group name.
    #[error(transparent)]
    InvalidName(#[from] InvalidGroupName),
}

pub(crate) type TemplateError = GroupTemplateError;

/// The `{name}` placeholders of `template`, in order.
pub(crate) fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// `value` as it appears in a group name (see the module docs).
pub(crate) fn encode_value(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            out.push('.');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Fills `template` in with `lookup(name)` for each placeholder.
pub(crate) fn expand<'a>(
    template: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<GroupName, TemplateError> {
    let mut name = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        name.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('}').ok_or_else(|| TemplateError::Unclosed {
            template: template.to_owned(),
        })?;
        let param = &after[..end];
        let value = lookup(param).ok_or_else(|| TemplateError::UnknownParam {
            template: template.to_owned(),
            param: param.to_owned(),
        })?;
        if value.is_empty() {
            return Err(TemplateError::Empty {
                param: param.to_owned(),
            });
        }
        encode_value(value, &mut name);
        rest = &after[end + 1..];
    }
    name.push_str(rest);
    Ok(GroupName::new(&shorten(name, 82, 8))?)
}

/// `name` itself when it fits in a group name; otherwise its first `keep`
/// bytes, `.`, and the hex of its BLAKE2s digest of `digest_bytes` bytes.
/// `name` is ASCII here, so any cut is a character boundary.
fn shorten(mut name: String, keep: usize, digest_bytes: usize) -> String {
    if name.len() <= MAX_GROUP_NAME_LEN {
        return name;
    }
    let digest = blake2s_hex(name.as_bytes(), digest_bytes);
    name.truncate(keep);
    name.push('.');
    name.push_str(&digest);
    name
}

fn blake2s_hex(bytes: &[u8], size: usize) -> String {
    // BLAKE2s with the digest size as its parameter (Python's
    // `blake2s(digest_size=n)`), not a truncated 32-byte digest.
    let digest: Vec<u8> = if size == 6 {
        Blake2s::<U6>::digest(bytes).to_vec()
    } else {
        Blake2s::<U8>::digest(bytes).to_vec()
    };
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Chanx's `safe_group_name(*parts, namespace=None)`: each part with runs
/// of characters outside `A-Z a-z 0-9 . _ -` replaced by one `-` and
/// hyphens trimmed, empty parts dropped, joined with `.` after the
/// namespace; over 99 bytes, the first 86, `.` and 12 hex digits of a
/// 6-byte BLAKE2s digest. `None` when nothing is left.
///
/// Unlike a `{param}` template it is lossy (`a b` and `a-b` give the same
/// name): use it where Chanx does, for names you build yourself.
pub(crate) fn safe_group_name(parts: &[&str], namespace: Option<&str>) -> Option<String> {
    let mut segments: Vec<String> = Vec::new();
    for part in namespace.into_iter().chain(parts.iter().copied()) {
        let mut slug = String::with_capacity(part.len());
        let mut in_run = false;
        for c in part.chars() {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                slug.push(c);
                in_run = false;
            } else if !in_run {
                slug.push('-');
                in_run = true;
            }
        }
        let slug = slug.trim_matches('-');
        if !slug.is_empty() {
            segments.push(slug.to_owned());
        }
    }
    if segments.is_empty() {
        return None;
    }
    Some(shorten(segments.join("."), 86, 6))
}

/// One run of a template between separators: literal text, or a
/// placeholder (which, by the template rules, is a whole run).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run<'a> {
    Literal(&'a str),
    Param,
}

/// A template as its separators and runs.
fn shape(template: &str) -> (Vec<char>, Vec<Run<'_>>) {
    let mut separators = Vec::new();
    let mut runs = Vec::new();
    for (index, run) in template.split(['_', '-']).enumerate() {
        if index > 0 {
            // The separator before this run.
            let offset: usize = template
                .split(['_', '-'])
                .take(index)
                .map(|run| run.len() + 1)
                .sum::<usize>()
                - 1;
            separators.push(char::from(template.as_bytes()[offset]));
        }
        runs.push(if run.starts_with('{') && run.ends_with('}') {
            Run::Param
        } else {
            Run::Literal(run)
        });
    }
    (separators, runs)
}

/// Whether some values make templates `a` and `b` spell the same group,
/// where they are not the same template (up to parameter names): a value
/// of one would stand where the other has literal text.
pub(crate) fn ambiguous(a: &str, b: &str) -> bool {
    let (separators_a, runs_a) = shape(a);
    let (separators_b, runs_b) = shape(b);
    if separators_a != separators_b || runs_a.len() != runs_b.len() {
        return false;
    }
    let mut literal_against_param = false;
    for (x, y) in runs_a.iter().zip(&runs_b) {
        match (x, y) {
            (Run::Literal(x), Run::Literal(y)) if x != y => return false,
            (Run::Literal(_), Run::Param) | (Run::Param, Run::Literal(_)) => {
                literal_against_param = true;
            }
            _ => {}
        }
    }
    literal_against_param
}

/// Checks a template's grammar (the macro checks the same at compile
/// time): placeholders are whole runs between `_`, `-` or the ends, and a
/// template with placeholders has no `.`.
pub(crate) fn check_template(template: &str) -> Result<(), String> {
    if !template.contains('{') {
        return Ok(());
    }
    if template.contains('.') {
        return Err(format!(
            "group template {template:?}: `.` is reserved for encoded values; separate with `_` or `-`"
        ));
    }
    for run in template.split(['_', '-']) {
        if run.contains('{')
            && !(run.starts_with('{') && run.ends_with('}') && run.matches('{').count() == 1)
        {
            return Err(format!(
                "group template {template:?}: a placeholder stands alone between `_` or `-`, as in `chat_{{room}}`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<&'static str> {
        match name {
            "room" => Some("lobby"),
            "underscored" => Some("lobby_admin"),
            "dashed" => Some("my-room"),
            "uuid" => Some("550e8400-e29b-41d4-a716-446655440000"),
            "accent" => Some("café"),
            "long" => {
                Some("x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z")
            }
            "empty" => Some(""),
            _ => None,
        }
    }

    #[test]
    fn values_are_kept_readable_and_escaped() {
        assert_eq!(
            expand("chat_{room}", lookup).unwrap().as_str(),
            "chat_lobby"
        );
        assert_eq!(
            expand("chat_{underscored}", lookup).unwrap().as_str(),
            "chat_lobby.5fadmin"
        );
        assert_eq!(
            expand("chat_{dashed}", lookup).unwrap().as_str(),
            "chat_my.2droom"
        );
        assert_eq!(
            expand("u-{uuid}", lookup).unwrap().as_str(),
            "u-550e8400.2de29b.2d41d4.2da716.2d446655440000"
        );
        assert_eq!(
            expand("c_{accent}", lookup).unwrap().as_str(),
            "c_caf.c3.a9"
        );
        assert!(matches!(
            expand("chat_{nope}", lookup),
            Err(TemplateError::UnknownParam { .. })
        ));
        assert!(matches!(
            expand("chat_{room", lookup),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            expand("chat_{empty}", lookup),
            Err(TemplateError::Empty { .. })
        ));
    }

    /// The collision of the issue: `chat_{room}` with `lobby_admin` against
    /// `chat_{room}_admin` with `lobby`.
    #[test]
    fn one_templates_value_never_spells_anothers_group() {
        let plain = expand("chat_{room}", |_| Some("lobby_admin")).unwrap();
        let admin = expand("chat_{room}_admin", |_| Some("lobby")).unwrap();
        assert_ne!(plain, admin);
        assert_eq!(admin.as_str(), "chat_lobby_admin");
        // Nor by dashes, dots or escapes spelled out by hand.
        for value in ["lobby-admin", "lobby.5fadmin", "lobby.admin"] {
            assert_ne!(
                expand("chat_{room}", |_| Some(value)).unwrap(),
                admin,
                "{value}"
            );
        }
        // Distinct values give distinct names.
        let a = expand("chat_{room}", |_| Some("a.5fb")).unwrap();
        let b = expand("chat_{room}", |_| Some("a_b")).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn long_names_are_shortened_with_a_digest() {
        let name = expand("chat_{long}", lookup).unwrap();
        assert_eq!(name.as_str().len(), 99);
        assert_eq!(&name.as_str()[82..83], ".");
        let other = expand("chat_{long}", |_| {
            Some("x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_z_x_y_w")
        })
        .unwrap();
        assert_ne!(name, other);
        assert_eq!(name.as_str()[..82], other.as_str()[..82]);
    }

    #[test]
    fn safe_group_name_is_chanxs() {
        assert_eq!(
            safe_group_name(&["user", "42"], Some("notification")).as_deref(),
            Some("notification.user.42")
        );
        assert_eq!(
            safe_group_name(&["room", "Weekly Sync!"], None).as_deref(),
            Some("room.Weekly-Sync")
        );
        assert_eq!(
            safe_group_name(&["a", "", "b"], None).as_deref(),
            Some("a.b")
        );
        assert_eq!(safe_group_name(&["!!!"], None), None);
        assert_eq!(
            safe_group_name(&["room:lobby"], Some("RoomTopic")).as_deref(),
            Some("RoomTopic.room-lobby")
        );
        let long = "x".repeat(120);
        let name = safe_group_name(&[long.as_str()], None).unwrap();
        // Chanx: 86 × x, ".", 12 hex digits of BLAKE2s(digest_size=6).
        assert_eq!(name, format!("{}.8d7dc2472c3f", "x".repeat(86)));
    }

    #[test]
    fn ambiguity_between_templates() {
        assert!(ambiguous("chat_{room}", "chat_admin"));
        assert!(ambiguous("chat_{room}_{x}", "chat_admin_{y}"));
        assert!(!ambiguous("chat_{room}", "chat_{name}"));
        assert!(!ambiguous("chat_{room}", "chat_{room}_admin"));
        assert!(!ambiguous("chat_{room}", "chat-{room}"));
        assert!(!ambiguous("chat_{room}", "news_{room}"));
        assert!(!ambiguous("notifications", "user_{user}"));
    }

    #[test]
    fn template_grammar() {
        assert!(check_template("chat_{room}").is_ok());
        assert!(check_template("chat-{room}-{lang}").is_ok());
        assert!(check_template("static.name").is_ok());
        assert!(check_template("chat.{room}").is_err());
        assert!(check_template("chat{room}").is_err());
        assert!(check_template("chat_{a}{b}").is_err());
    }
}
