//! `#[derive(Message)]`: parse, check, render.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{Data, DeriveInput, Fields, LitStr, Type};

use crate::attr::{self, Errors, Once};

struct MessageAttrs {
    action: Option<LitStr>,
    krate: Option<syn::Path>,
}

fn parse_attrs(attrs: &[syn::Attribute], errors: &mut Errors) -> MessageAttrs {
    let mut action = Once::default();
    let mut krate = Once::default();
    let mut errors_in_attr = Vec::new();
    for attribute in attrs.iter().filter(|a| a.path().is_ident("message")) {
        let result = attribute.parse_nested_meta(|meta| {
            if meta.path.is_ident("action") {
                let value = attr::parse_str(&meta)?;
                if value.value().is_empty() {
                    errors_in_attr.push(syn::Error::new(value.span(), "an action cannot be empty"));
                }
                action.set(&meta, value)
            } else if meta.path.is_ident("crate") {
                krate.set(&meta, attr::parse_crate(&meta)?)
            } else {
                Err(attr::unknown_key(&meta, "#[message]", &["action", "crate"]))
            }
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    for error in errors_in_attr {
        errors.push(error);
    }
    MessageAttrs {
        action: action.value,
        krate: krate.value,
    }
}

/// Expands `#[derive(Message)]`; generated code names the runtime
/// `default_crate` unless `#[message(crate = "…")]` says otherwise.
pub(crate) fn expand(input: &DeriveInput, default_crate: &TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !input.generics.params.is_empty() {
        errors.spanned(
            &input.generics,
            "chanx messages cannot be generic; define a concrete type",
        );
    }
    let attrs = parse_attrs(&input.attrs, &mut errors);
    let krate = attrs
        .krate
        .as_ref()
        .map_or_else(|| default_crate.clone(), quote::ToTokens::to_token_stream);
    let body = match &input.data {
        Data::Struct(_) => match &attrs.action {
            Some(action) => expand_struct(input, action, &krate),
            None => {
                errors.spanned(
                    &input.ident,
                    "missing `#[message(action = \"…\")]`: a message struct needs an action",
                );
                TokenStream::new()
            }
        },
        Data::Enum(data) => {
            if let Some(action) = &attrs.action {
                errors.spanned(
                    action,
                    "an enum message takes its actions from its variants; remove `action` here",
                );
            }
            expand_enum(input, data, &mut errors, &krate)
        }
        Data::Union(data) => {
            errors.spanned(
                data.union_token,
                "unions cannot be messages; use a struct or an enum",
            );
            TokenStream::new()
        }
    };
    match errors.into_compile_errors() {
        Some(compile_errors) => compile_errors,
        None => body,
    }
}

fn expand_struct(input: &DeriveInput, action: &LitStr, krate: &TokenStream) -> TokenStream {
    let ident = &input.ident;
    let name = ident.to_string();
    let description = attr::option_str(attr::doc_comment(&input.attrs).as_deref());
    quote! {
        #[automatically_derived]
        impl #krate::Message for #ident {
            const ACTIONS: &'static [&'static str] = &[#action];

            fn action(&self) -> &'static str {
                #action
            }

            fn has_action(action: &str) -> bool {
                action == #action
            }

            fn serialize_payload<__S: #krate::__private::serde::Serializer>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                #krate::__private::serde::Serialize::serialize(self, serializer)
            }

            fn deserialize_payload<'de, __D: #krate::__private::serde::Deserializer<'de>>(
                _action: &str,
                deserializer: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                <Self as #krate::__private::serde::Deserialize<'de>>::deserialize(deserializer)
            }

            fn describe(out: &mut ::std::vec::Vec<#krate::__private::MessageMeta>) {
                out.push(#krate::__private::MessageMeta::of::<Self>(#name, #description));
            }
        }

        #[automatically_derived]
        impl #krate::SingleMessage for #ident {
            const ACTION: &'static str = #action;
        }
    }
}

fn expand_enum(
    input: &DeriveInput,
    data: &syn::DataEnum,
    errors: &mut Errors,
    krate: &TokenStream,
) -> TokenStream {
    let ident = &input.ident;
    if data.variants.is_empty() {
        errors.spanned(ident, "an enum message needs at least one variant");
        return TokenStream::new();
    }
    let mut variants: Vec<(&syn::Ident, &Type)> = Vec::new();
    for variant in &data.variants {
        if let Some(attribute) = variant.attrs.iter().find(|a| a.path().is_ident("message")) {
            errors.spanned(
                attribute,
                "variants take their action from the message they wrap; remove this attribute",
            );
        }
        match &variant.fields {
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => {
                if let Some(field) = fields.unnamed.first() {
                    variants.push((&variant.ident, &field.ty));
                }
            }
            _ => errors.spanned(
                variant,
                format!(
                    "each variant of a message enum wraps one message, as in `{}(SomeMessage)`",
                    variant.ident
                ),
            ),
        }
    }
    let names: Vec<_> = variants.iter().map(|(name, _)| *name).collect();
    let types: Vec<_> = variants.iter().map(|(_, ty)| *ty).collect();
    // `From` for each variant whose type appears once.
    let froms = variants.iter().filter_map(|(name, ty)| {
        let key = quote!(#ty).to_string();
        let count = types
            .iter()
            .filter(|other| quote!(#other).to_string() == key)
            .count();
        (count == 1).then(|| {
            quote! {
                #[automatically_derived]
                impl ::core::convert::From<#ty> for #ident {
                    fn from(message: #ty) -> Self {
                        Self::#name(message)
                    }
                }
            }
        })
    });
    let krate_here = crate::attr::respan(krate, input.ident.span());
    let unique = quote_spanned! {input.ident.span()=>
        const _: () = #krate_here::__private::assert_unique_actions(
            &[<#ident as #krate_here::Message>::ACTIONS],
        );
    };
    quote! {
        #[automatically_derived]
        impl #krate::Message for #ident {
            const ACTIONS: &'static [&'static str] = &[
                #(<#types as #krate::SingleMessage>::ACTION),*
            ];

            fn action(&self) -> &'static str {
                match self {
                    #(Self::#names(message) => #krate::Message::action(message),)*
                }
            }

            fn serialize_payload<__S: #krate::__private::serde::Serializer>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                match self {
                    #(Self::#names(message) => #krate::Message::serialize_payload(message, serializer),)*
                }
            }

            fn deserialize_payload<'de, __D: #krate::__private::serde::Deserializer<'de>>(
                action: &str,
                deserializer: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                #(
                    if action == <#types as #krate::SingleMessage>::ACTION {
                        return <#types as #krate::Message>::deserialize_payload(action, deserializer)
                            .map(Self::#names);
                    }
                )*
                ::core::result::Result::Err(<__D::Error as #krate::__private::serde::de::Error>::custom(
                    ::core::format_args!("unknown action `{}`", action),
                ))
            }

            fn describe(out: &mut ::std::vec::Vec<#krate::__private::MessageMeta>) {
                #(<#types as #krate::Message>::describe(out);)*
            }
        }

        #(#froms)*

        #unique
    }
}
