//! `#[topic(pattern = "…")]` on an impl block: the same handlers as a
//! channel, plus the topic's hooks, rendered as a `Topic` impl.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{ItemImpl, LitStr, Type};

use crate::attr::{self, Errors, Once};
use crate::channel::{
    Block, Model, Shared, collect, decamelize, emit, inherent_impl, lit_list, parse_type_list,
    shared, type_name,
};

const TOPIC_KEYS: &[&str] = &["pattern", "name", "description", "tags", "sends", "crate"];

struct TopicArgs {
    pattern: Option<LitStr>,
    parameters: Vec<String>,
    name: Option<LitStr>,
    description: Option<LitStr>,
    tags: Vec<LitStr>,
    sends: Vec<Type>,
    krate: Option<syn::Path>,
}

fn parse_topic_args(tokens: TokenStream, errors: &mut Errors) -> TopicArgs {
    let mut pattern = Once::default();
    let mut name = Once::default();
    let mut description = Once::default();
    let mut tags = Once::default();
    let mut sends = Once::default();
    let mut krate = Once::default();
    let mut parameters = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("pattern") {
            let value = attr::parse_str(&meta)?;
            parameters = check_pattern(&value)?;
            pattern.set(&meta, value)
        } else if meta.path.is_ident("name") {
            name.set(&meta, attr::parse_str(&meta)?)
        } else if meta.path.is_ident("description") {
            description.set(&meta, attr::parse_str(&meta)?)
        } else if meta.path.is_ident("tags") {
            tags.set(&meta, attr::parse_str_list(&meta)?)
        } else if meta.path.is_ident("sends") {
            sends.set(&meta, parse_type_list(&meta)?)
        } else if meta.path.is_ident("crate") {
            krate.set(&meta, attr::parse_crate(&meta)?)
        } else {
            Err(attr::unknown_key(&meta, "#[topic]", TOPIC_KEYS))
        }
    });
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    TopicArgs {
        pattern: pattern.value,
        parameters,
        name: name.value,
        description: description.value,
        tags: tags.value.unwrap_or_default(),
        sends: sends.value.unwrap_or_default(),
        krate: krate.value,
    }
}

/// A topic pattern: literal text with `{param}` placeholders, each a Rust
/// identifier, used once, and separated from the next by literal text (so
/// a topic splits one way). Returns the parameters in order.
fn check_pattern(pattern: &LitStr) -> syn::Result<Vec<String>> {
    let value = pattern.value();
    let error = |message: &str| Err(syn::Error::new(pattern.span(), message));
    if value.is_empty() {
        return error("a topic pattern names the topics it serves, as in `discussion:{pk}`");
    }
    let mut parameters: Vec<String> = Vec::new();
    let mut rest = value.as_str();
    let mut literal_before = true;
    while let Some(start) = rest.find(['{', '}']) {
        if rest[start..].starts_with('}') {
            return error("unmatched `}` in a topic pattern");
        }
        if start > 0 {
            literal_before = true;
        }
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return error("unclosed `{` in a topic pattern");
        };
        let name = &after[..end];
        let identifier = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !identifier {
            return error("a topic pattern placeholder is an identifier, as in `discussion:{pk}`");
        }
        if !literal_before {
            return error(
                "two placeholders of a topic pattern need text between them, as in `{org}:{project}`",
            );
        }
        if parameters.iter().any(|existing| existing == name) {
            return error("a topic pattern names each placeholder once");
        }
        parameters.push(name.to_owned());
        literal_before = false;
        rest = &after[end + 1..];
    }
    Ok(parameters)
}

/// Expands `#[topic]`.
pub(crate) fn expand(
    attr_tokens: TokenStream,
    item: TokenStream,
    default_crate: &TokenStream,
) -> TokenStream {
    let mut errors = Errors::default();
    let mut item_impl = match inherent_impl(
        &item,
        "#[topic]",
        "`#[topic(pattern = \"discussion:{pk}\")] impl DiscussionTopic { … }`",
        &mut errors,
    ) {
        Ok(item_impl) => item_impl,
        Err(compile_error) => return compile_error,
    };
    let args = parse_topic_args(attr_tokens, &mut errors);
    if args.pattern.is_none() && errors.is_empty() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[topic] needs the topics it serves: `#[topic(pattern = \"discussion:{pk}\")]`",
        ));
    }
    let model = collect(&mut item_impl, Block::Topic, &mut errors);
    emit(
        &item_impl,
        errors,
        args.krate.as_ref(),
        default_crate,
        |krate| render(&item_impl, &args, &model, krate),
    )
}

fn render(
    item_impl: &ItemImpl,
    args: &TopicArgs,
    model: &Model,
    krate: &TokenStream,
) -> TokenStream {
    let self_ty = &item_impl.self_ty;
    let type_name = type_name(self_ty);
    let name = args.name.as_ref().map_or_else(
        || decamelize(type_name.strip_suffix("Consumer").unwrap_or(&type_name)),
        LitStr::value,
    );
    let pattern = args.pattern.as_ref().map(LitStr::value).unwrap_or_default();
    let parameters = &args.parameters;
    let description = args
        .description
        .as_ref()
        .map(LitStr::value)
        .or_else(|| attr::doc_comment(&item_impl.attrs));
    let description = attr::option_str(description.as_deref());
    let tags = lit_list(&args.tags);
    let sends = &args.sends;
    let Shared {
        metas,
        dispatch,
        dispatch_event,
        unique,
    } = shared(
        model,
        self_ty,
        krate,
        &quote!(#krate::__private::TopicContext),
    );

    let hook_output = model.on_subscribe.as_ref().map(|hook| {
        let output = &hook.output;
        quote!(<#output as #krate::__private::IntoReply>::describe(out);)
    });
    let authorize = match &model.authorize {
        Some(hook) => {
            let method = &hook.method;
            let ctx_arg = hook.takes_ctx.then(|| quote!(ctx));
            let output = &hook.output;
            let krate_here = attr::respan(krate, output.span());
            quote_spanned! {output.span()=>
                #krate_here::__private::authorized(Self::#method(#ctx_arg).await)
            }
        }
        None => quote!(true),
    };
    let method_hook = |hook: Option<&crate::channel::Hook>| match hook {
        Some(hook) => {
            let method = &hook.method;
            let ctx_arg = hook.takes_ctx.then(|| quote!(ctx));
            let output = &hook.output;
            let krate_here = attr::respan(krate, output.span());
            quote_spanned! {output.span()=>
                #krate_here::__private::hook(Self::#method(self, #ctx_arg).await, ctx)
            }
        }
        None => quote!(#krate::__private::hook((), ctx)),
    };
    let on_subscribe = method_hook(model.on_subscribe.as_ref());
    let on_unsubscribe = method_hook(model.on_unsubscribe.as_ref());
    let create = {
        let krate = attr::respan(krate, self_ty.span());
        quote_spanned! {self_ty.span()=>
            #krate::__private::default_topic::<Self>()
        }
    };

    quote! {
        #unique

        #[automatically_derived]
        impl #krate::__private::Topic for #self_ty {
            const TOPIC: &'static #krate::__private::TopicMeta =
                &#krate::__private::TopicMeta::new::<Self>(
                    #name,
                    #type_name,
                    #pattern,
                    &[#(#parameters),*],
                    #description,
                    #tags,
                    &[#(#metas),*],
                    |out| {
                        let _ = &out;
                        #hook_output
                        #(<#sends as #krate::Message>::describe(out);)*
                    },
                );

            async fn authorize(ctx: &#krate::__private::TopicContext) -> bool {
                let _ = ctx;
                #authorize
            }

            fn create(ctx: &#krate::__private::TopicContext) -> Self {
                let _ = ctx;
                #create
            }

            async fn on_subscribe(
                &mut self,
                ctx: &#krate::__private::TopicContext,
            ) -> #krate::__private::HookOutcome {
                #on_subscribe
            }

            async fn on_unsubscribe(
                &mut self,
                ctx: &#krate::__private::TopicContext,
            ) -> #krate::__private::HookOutcome {
                #on_unsubscribe
            }

            #dispatch
            #dispatch_event
        }
    }
}
