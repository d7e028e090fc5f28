//! Group templates such as `chat_{room}`: the one definition of their
//! grammar, used to check them against routes and to fill them in at
//! connect.

use crate::layer::{GroupName, InvalidGroupName};

/// Why a group template could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum TemplateError {
    /// A `{` without its `}`.
    #[error("unclosed '{{' in group template {template:?}")]
    Unclosed { template: String },
    /// The route has no such parameter.
    #[error("group template {template:?} names {{{param}}}, which the route does not have")]
    UnknownParam { template: String, param: String },
    /// A value that could forge another group's name.
    #[error("route parameter {param} = {value:?} is not only letters and digits")]
    UnsafeValue { param: String, value: String },
    /// The result is not a valid group name.
    #[error(transparent)]
    InvalidName(#[from] InvalidGroupName),
}

/// The `{name}` placeholders of `template`, in order.
pub(crate) fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// Fills `template` in with `lookup(name)` for each placeholder.
pub(crate) fn expand<'a>(
    template: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<GroupName, TemplateError> {
    let mut name = String::with_capacity(template.len());
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
        // Only letters and digits: a value holding the template's own
        // separators (`_`, `.`, `-`) could forge another group's name.
        if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
            return Err(TemplateError::UnsafeValue {
                param: param.to_owned(),
                value: value.chars().take(64).collect(),
            });
        }
        name.push_str(value);
        rest = &after[end + 1..];
    }
    name.push_str(rest);
    Ok(GroupName::new(&name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_expansion() {
        assert_eq!(
            placeholders("chat_{room}_{lang}").collect::<Vec<_>>(),
            ["room", "lang"]
        );
        let lookup = |name: &str| match name {
            "room" => Some("lobby"),
            "bad" => Some("a_b"),
            _ => None,
        };
        assert_eq!(
            expand("chat_{room}", lookup).unwrap().as_str(),
            "chat_lobby"
        );
        assert!(matches!(
            expand("chat_{bad}", lookup),
            Err(TemplateError::UnsafeValue { .. })
        ));
        assert!(matches!(
            expand("chat_{nope}", lookup),
            Err(TemplateError::UnknownParam { .. })
        ));
        assert!(matches!(
            expand("chat_{room", lookup),
            Err(TemplateError::Unclosed { .. })
        ));
    }
}
