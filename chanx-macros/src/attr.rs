//! Attribute parsing shared by the macros: known keys only, duplicates
//! flagged at the second key, every error collected.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::{Attribute, LitBool, LitStr, Token};

/// Collects errors so a user sees every problem at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn into_compile_errors(self) -> Option<TokenStream> {
        self.0.map(|error| error.to_compile_error())
    }
}

/// One optional attribute value that may be given only once.
pub(crate) struct Once<T> {
    pub(crate) value: Option<T>,
}

impl<T> Default for Once<T> {
    fn default() -> Self {
        Self { value: None }
    }
}

impl<T> Once<T> {
    pub(crate) fn set(&mut self, meta: &ParseNestedMeta<'_>, value: T) -> syn::Result<()> {
        if self.value.is_some() {
            let name = meta.path.to_token_stream().to_string();
            return Err(meta.error(format!("duplicate key `{name}`")));
        }
        self.value = Some(value);
        Ok(())
    }
}

pub(crate) fn parse_str(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

/// `key = true`, `key = false`, or a bare `key`.
pub(crate) fn parse_flag(meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
    if meta.input.peek(Token![=]) {
        Ok(meta.value()?.parse::<LitBool>()?.value)
    } else {
        Ok(true)
    }
}

/// `tokens` with every token's span set to `span`, so an interpolated path
/// in `quote_spanned!` points where the rest of the expansion does.
pub(crate) fn respan(tokens: &TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(&group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// `crate = "path"`: where generated code finds the runtime, for a renamed
/// dependency.
pub(crate) fn parse_crate(meta: &ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    let literal: LitStr = meta.value()?.parse()?;
    literal.parse::<syn::Path>().map_err(|_| {
        syn::Error::new(
            literal.span(),
            "expected a path to the chanx crate, such as `crate = \"my_chanx\"`",
        )
    })
}

/// `key = ["a", "b"]`.
pub(crate) fn parse_str_list(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<LitStr>> {
    let input = meta.value()?;
    let content;
    syn::bracketed!(content in input);
    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    Ok(list.into_iter().collect())
}

pub(crate) fn unknown_key(
    meta: &ParseNestedMeta<'_>,
    owner: &str,
    expected: &[&str],
) -> syn::Error {
    let name = meta.path.to_token_stream().to_string().replace(' ', "");
    let expected = expected
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    meta.error(format!(
        "unknown {owner} key `{name}`; expected one of {expected}"
    ))
}

/// The doc comment of an item, lines joined, trimmed; `None` when empty.
pub(crate) fn doc_comment(attrs: &[Attribute]) -> Option<String> {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(name_value) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) = &name_value.value
        {
            lines.push(text.value().trim().to_owned());
        }
    }
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Whether `attr`'s path ends in `name` (`#[name]` or `#[chanx_core::name]`).
pub(crate) fn is_marker(attr: &Attribute, name: &str) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == name)
}

pub(crate) fn option_str(value: Option<&str>) -> TokenStream {
    match value {
        Some(text) => quote::quote!(::core::option::Option::Some(#text)),
        None => quote::quote!(::core::option::Option::None),
    }
}
