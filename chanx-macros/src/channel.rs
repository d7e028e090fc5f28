//! `#[channel]` on an impl block: parse the block into a small description,
//! check it, then render the `Consumer` impl.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr, ReceiverKind, ReturnType, Type};

use crate::attr::{self, Errors, Once};

const CHANNEL_KEYS: &[&str] = &[
    "name",
    "description",
    "tags",
    "groups",
    "send_completion",
    "send_authentication_message",
    "camelize",
    "log_websocket_message",
    "log_ignored_actions",
    "authenticator",
    "authenticators",
    "permissions",
    "sends",
    "topics",
    "presence",
    "crate",
];
const HANDLER_KEYS: &[&str] = &["summary", "description", "tags", "output", "permission"];
const MARKERS: &[&str] = &[
    "ws_handler",
    "event_handler",
    "on_connect",
    "build_groups",
    "post_authentication",
    "authorize",
    "on_subscribe",
    "on_unsubscribe",
    "presence_meta",
];

/// Which block the markers are collected from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    Channel,
    Topic,
}

impl Block {
    fn attribute(self) -> &'static str {
        match self {
            Self::Channel => "#[channel]",
            Self::Topic => "#[topic]",
        }
    }

    /// Whether `marker` belongs in this block.
    fn allows(self, marker: &str) -> bool {
        match marker {
            "ws_handler" | "event_handler" => true,
            "on_connect" | "build_groups" | "post_authentication" | "presence_meta" => {
                self == Self::Channel
            }
            _ => self == Self::Topic,
        }
    }
}

#[derive(Default)]
struct ChannelArgs {
    name: Option<LitStr>,
    description: Option<LitStr>,
    tags: Vec<LitStr>,
    groups: Vec<LitStr>,
    send_completion: Option<bool>,
    send_authentication_message: Option<bool>,
    camelize: Option<bool>,
    log_websocket_message: Option<bool>,
    log_ignored_actions: Option<Vec<LitStr>>,
    authenticators: Vec<Type>,
    permissions: Option<Vec<Type>>,
    sends: Vec<Type>,
    topics: Vec<Type>,
    presence: Option<LitStr>,
    krate: Option<syn::Path>,
}

fn parse_channel_args(tokens: TokenStream, errors: &mut Errors) -> ChannelArgs {
    let mut name = Once::default();
    let mut description = Once::default();
    let mut tags = Once::default();
    let mut groups = Once::default();
    let mut send_completion = Once::default();
    let mut send_authentication_message = Once::default();
    let mut camelize = Once::default();
    let mut log_websocket_message = Once::default();
    let mut log_ignored_actions = Once::default();
    let mut authenticators = Once::default();
    let mut permissions = Once::default();
    let mut sends = Once::default();
    let mut topics = Once::default();
    let mut presence = Once::default();
    let mut krate = Once::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate.set(&meta, attr::parse_crate(&meta)?)
        } else if meta.path.is_ident("topics") {
            topics.set(&meta, parse_type_list(&meta)?)
        } else if meta.path.is_ident("presence") {
            let template = attr::parse_str(&meta)?;
            check_group_template(&template)?;
            presence.set(&meta, template)
        } else if meta.path.is_ident("name") {
            name.set(&meta, attr::parse_str(&meta)?)
        } else if meta.path.is_ident("description") {
            description.set(&meta, attr::parse_str(&meta)?)
        } else if meta.path.is_ident("tags") {
            tags.set(&meta, attr::parse_str_list(&meta)?)
        } else if meta.path.is_ident("groups") {
            let list = attr::parse_str_list(&meta)?;
            for template in &list {
                check_group_template(template)?;
            }
            groups.set(&meta, list)
        } else if meta.path.is_ident("send_completion") {
            send_completion.set(&meta, attr::parse_flag(&meta)?)
        } else if meta.path.is_ident("send_authentication_message") {
            send_authentication_message.set(&meta, attr::parse_flag(&meta)?)
        } else if meta.path.is_ident("camelize") {
            camelize.set(&meta, attr::parse_flag(&meta)?)
        } else if meta.path.is_ident("log_websocket_message") {
            log_websocket_message.set(&meta, attr::parse_flag(&meta)?)
        } else if meta.path.is_ident("log_ignored_actions") {
            log_ignored_actions.set(&meta, attr::parse_str_list(&meta)?)
        } else if meta.path.is_ident("authenticator") {
            authenticators.set(&meta, vec![meta.value()?.parse::<Type>()?])
        } else if meta.path.is_ident("authenticators") {
            authenticators.set(&meta, parse_type_list(&meta)?)
        } else if meta.path.is_ident("permissions") {
            permissions.set(&meta, parse_type_list(&meta)?)
        } else if meta.path.is_ident("sends") {
            sends.set(&meta, parse_type_list(&meta)?)
        } else if meta.path.is_ident("send_group_complete")
            || meta.path.is_ident("send_event_complete")
        {
            Err(meta.error(
                "`send_completion` now drives `complete`, `group_complete` and `event_complete` together, as in Chanx 2",
            ))
        } else if meta.path.is_ident("send_authentication") {
            Err(meta.error("renamed `send_authentication_message`, as Chanx's setting"))
        } else {
            Err(attr::unknown_key(&meta, "#[channel]", CHANNEL_KEYS))
        }
    });
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    let authenticators = authenticators.value.unwrap_or_default();
    if authenticators.len() > 4 {
        errors.spanned(
            &authenticators[4],
            "a channel takes at most four authenticators",
        );
    }
    ChannelArgs {
        name: name.value,
        description: description.value,
        tags: tags.value.unwrap_or_default(),
        groups: groups.value.unwrap_or_default(),
        send_completion: send_completion.value,
        send_authentication_message: send_authentication_message.value,
        camelize: camelize.value,
        log_websocket_message: log_websocket_message.value,
        log_ignored_actions: log_ignored_actions.value,
        krate: krate.value,
        authenticators,
        permissions: permissions.value,
        sends: sends.value.unwrap_or_default(),
        topics: topics.value.unwrap_or_default(),
        presence: presence.value,
    }
}

/// `T` or `[T, U, …]`.
pub(crate) fn parse_type_list(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Vec<Type>> {
    let input = meta.value()?;
    if input.peek(syn::token::Bracket) {
        let content;
        syn::bracketed!(content in input);
        Ok(
            syn::punctuated::Punctuated::<Type, syn::Token![,]>::parse_terminated(&content)?
                .into_iter()
                .collect(),
        )
    } else {
        Ok(vec![input.parse::<Type>()?])
    }
}

/// A group template: group-name characters, with `{param}` placeholders
/// that each stand alone between `_`, `-` or the ends, and no `.` when
/// there are placeholders (values are encoded with `.`; see `chanx::layer`).
fn check_group_template(template: &LitStr) -> syn::Result<()> {
    let value = template.value();
    let mut literal = String::new();
    let mut rest = value.as_str();
    while let Some(start) = rest.find('{') {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            return Err(syn::Error::new(
                template.span(),
                "unclosed `{` in a group template",
            ));
        };
        let param = &after[..end];
        if param.is_empty() || !param.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(syn::Error::new(
                template.span(),
                "a group template placeholder names a route parameter, as in `chat_{room}`",
            ));
        }
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if value.is_empty()
        || !literal
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
    {
        return Err(syn::Error::new(
            template.span(),
            "a group name uses ASCII letters, digits, `-`, `_` and `.` (with `{param}` placeholders)",
        ));
    }
    if value.contains('{') {
        if literal.contains('.') {
            return Err(syn::Error::new(
                template.span(),
                "a group template with placeholders cannot contain `.` (it is reserved for encoded values); separate with `_` or `-`",
            ));
        }
        for run in value.split(['_', '-']) {
            if run.contains('{')
                && !(run.starts_with('{') && run.ends_with('}') && run.matches('{').count() == 1)
            {
                return Err(syn::Error::new(
                    template.span(),
                    "a placeholder stands alone between `_`, `-` or the ends of the template, as in `chat_{room}` or `room-{id}-log`",
                ));
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct HandlerArgs {
    summary: Option<LitStr>,
    description: Option<LitStr>,
    tags: Vec<LitStr>,
    outputs: Vec<Type>,
    permissions: Vec<Type>,
}

fn parse_handler_args(attribute: &syn::Attribute, kind: Kind, errors: &mut Errors) -> HandlerArgs {
    if matches!(attribute.meta, syn::Meta::Path(_)) {
        return HandlerArgs::default();
    }
    let mut summary = Once::default();
    let mut description = Once::default();
    let mut tags = Once::default();
    let mut outputs = Once::default();
    let mut permissions = Once::default();
    let result = attribute.parse_nested_meta(|meta| {
        if meta.path.is_ident("summary") {
            summary.set(&meta, attr::parse_str(&meta)?)
        } else if meta.path.is_ident("description") {
            description.set(&meta, attr::parse_str(&meta)?)
        } else if meta.path.is_ident("tags") {
            tags.set(&meta, attr::parse_str_list(&meta)?)
        } else if meta.path.is_ident("output") {
            outputs.set(&meta, parse_type_list(&meta)?)
        } else if meta.path.is_ident("permission") {
            permissions.set(&meta, parse_type_list(&meta)?)
        } else {
            Err(attr::unknown_key(
                &meta,
                &format!("#[{}]", kind.marker()),
                HANDLER_KEYS,
            ))
        }
    });
    if let Err(error) = result {
        errors.push(error);
    }
    HandlerArgs {
        summary: summary.value,
        description: description.value,
        tags: tags.value.unwrap_or_default(),
        outputs: outputs.value.unwrap_or_default(),
        permissions: permissions.value.unwrap_or_default(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ws,
    Event,
}

impl Kind {
    fn marker(self) -> &'static str {
        match self {
            Self::Ws => "ws_handler",
            Self::Event => "event_handler",
        }
    }
}

/// One `#[ws_handler]` or `#[event_handler]` method, checked.
struct Handler {
    kind: Kind,
    method: syn::Ident,
    takes_ctx: bool,
    input: Type,
    output: Type,
    args: HandlerArgs,
    doc: Option<String>,
}

/// A lifecycle hook, checked.
pub(crate) struct Hook {
    pub(crate) method: syn::Ident,
    pub(crate) takes_ctx: bool,
    pub(crate) output: Type,
}

#[derive(Default)]
pub(crate) struct Model {
    handlers: Vec<Handler>,
    on_connect: Option<Hook>,
    build_groups: Option<Hook>,
    post_authentication: Option<Hook>,
    pub(crate) authorize: Option<Hook>,
    pub(crate) on_subscribe: Option<Hook>,
    pub(crate) on_unsubscribe: Option<Hook>,
    presence_meta: Option<Hook>,
}

/// Parses the block under `attribute`: an inherent, non-generic impl
/// block (`example` shows one). A block that does not parse is returned
/// with the error; the other mistakes are pushed to `errors`.
pub(crate) fn inherent_impl(
    item: &TokenStream,
    attribute: &str,
    example: &str,
    errors: &mut Errors,
) -> Result<ItemImpl, TokenStream> {
    let Ok(item_impl) = syn::parse2::<ItemImpl>(item.clone()) else {
        let error = syn::Error::new(
            Span::call_site(),
            format!("{attribute} goes on an inherent impl block: {example}"),
        );
        let compile_error = error.to_compile_error();
        return Err(quote!(#compile_error #item));
    };
    if let Some((path, _)) = &item_impl.trait_ {
        errors.spanned(
            path,
            format!("{attribute} goes on an inherent impl block, not a trait impl"),
        );
    }
    if !item_impl.generics.params.is_empty() {
        errors.spanned(
            &item_impl.generics,
            format!("{attribute} blocks cannot be generic"),
        );
    }
    Ok(item_impl)
}

/// Expands `#[channel]`; generated code names the runtime `default_crate`
/// (`::chanx` or `::chanx_core`, by the macro's entry point) unless the
/// attribute says `crate = "…"`.
pub(crate) fn expand(
    attr_tokens: TokenStream,
    item: TokenStream,
    default_crate: &TokenStream,
) -> TokenStream {
    let mut errors = Errors::default();
    let mut item_impl = match inherent_impl(
        &item,
        "#[channel]",
        "`#[channel] impl MyConsumer { … }`",
        &mut errors,
    ) {
        Ok(item_impl) => item_impl,
        Err(compile_error) => return compile_error,
    };
    let args = parse_channel_args(attr_tokens, &mut errors);
    let model = collect(&mut item_impl, Block::Channel, &mut errors);
    if let Some(hook) = &model.presence_meta
        && args.presence.is_none()
    {
        errors.spanned(
            &hook.method,
            "a #[presence_meta] hook adds to the channel's presence: declare it with `#[channel(presence = \"room_{room}\")]`",
        );
    }
    emit(
        &item_impl,
        errors,
        args.krate.as_ref(),
        default_crate,
        |krate| render(&item_impl, &args, &model, krate),
    )
}

/// The end of `#[channel]` and `#[topic]`: the user's impl (markers
/// stripped) always, so one mistake does not cascade into unresolved-method
/// errors elsewhere; then the errors, or the rendered impl naming the
/// runtime `krate` (`crate = "…"`, or the entry point's default).
pub(crate) fn emit(
    item_impl: &ItemImpl,
    errors: Errors,
    krate: Option<&syn::Path>,
    default_crate: &TokenStream,
    render: impl FnOnce(&TokenStream) -> TokenStream,
) -> TokenStream {
    let rendered = if errors.is_empty() {
        let krate = krate.map_or_else(|| default_crate.clone(), ToTokens::to_token_stream);
        render(&krate)
    } else {
        TokenStream::new()
    };
    let compile_errors = errors.into_compile_errors();
    quote! {
        #item_impl
        #compile_errors
        #rendered
    }
}

pub(crate) fn collect(item_impl: &mut ItemImpl, block: Block, errors: &mut Errors) -> Model {
    let mut model = Model::default();
    for item in &mut item_impl.items {
        let ImplItem::Fn(function) = item else {
            continue;
        };
        let markers: Vec<(usize, &'static str)> = function
            .attrs
            .iter()
            .enumerate()
            .filter_map(|(index, attribute)| {
                MARKERS
                    .iter()
                    .find(|marker| attr::is_marker(attribute, marker))
                    .map(|marker| (index, *marker))
            })
            .collect();
        if markers.is_empty() {
            continue;
        }
        if markers.len() > 1 {
            errors.spanned(
                &function.attrs[markers[1].0],
                format!(
                    "a method carries one marker (#[ws_handler], #[event_handler] or a hook); `{}` already has #[{}]",
                    function.sig.ident, markers[0].1
                ),
            );
        }
        let (index, marker) = markers[0];
        let attribute = function.attrs[index].clone();
        function.attrs.retain(|attribute| {
            !MARKERS
                .iter()
                .any(|marker| attr::is_marker(attribute, marker))
        });
        if !block.allows(marker) {
            let home = if block == Block::Channel {
                "#[topic]"
            } else {
                "#[channel]"
            };
            errors.spanned(
                &attribute,
                format!(
                    "#[{marker}] is a {home} hook; it does not belong in a {} impl block",
                    block.attribute()
                ),
            );
            continue;
        }
        match marker {
            "ws_handler" | "event_handler" => {
                let kind = if marker == "ws_handler" {
                    Kind::Ws
                } else {
                    Kind::Event
                };
                let args = parse_handler_args(&attribute, kind, errors);
                if let Some(handler) = check_handler(function, kind, args, errors) {
                    if let Some(first) = model.handlers.iter().find(|existing| {
                        existing.kind == kind
                            && type_key(&existing.input) == type_key(&handler.input)
                    }) {
                        errors.spanned(
                            &handler.input,
                            format!(
                                "two handlers take `{}`: `{}` already handles its action",
                                type_key(&handler.input),
                                first.method
                            ),
                        );
                    } else {
                        model.handlers.push(handler);
                    }
                }
            }
            "on_connect" => {
                reject_args(&attribute, errors);
                if let Some(hook) = check_on_connect(function, errors) {
                    set_hook(&mut model.on_connect, hook, "on_connect", errors);
                }
            }
            "build_groups" => {
                reject_args(&attribute, errors);
                if let Some(hook) = check_method_hook(function, "build_groups", errors) {
                    set_hook(&mut model.build_groups, hook, "build_groups", errors);
                }
            }
            "presence_meta" => {
                reject_args(&attribute, errors);
                if let Some(hook) = check_method_hook(function, "presence_meta", errors) {
                    set_hook(&mut model.presence_meta, hook, "presence_meta", errors);
                }
            }
            "authorize" => {
                reject_args(&attribute, errors);
                if let Some(hook) = check_authorize(function, errors) {
                    set_hook(&mut model.authorize, hook, "authorize", errors);
                }
            }
            "on_subscribe" | "on_unsubscribe" => {
                reject_args(&attribute, errors);
                if let Some(hook) = check_method_hook(function, marker, errors) {
                    let slot = if marker == "on_subscribe" {
                        &mut model.on_subscribe
                    } else {
                        &mut model.on_unsubscribe
                    };
                    set_hook(slot, hook, marker, errors);
                }
            }
            _ => {
                reject_args(&attribute, errors);
                if let Some(hook) = check_method_hook(function, "post_authentication", errors) {
                    set_hook(
                        &mut model.post_authentication,
                        hook,
                        "post_authentication",
                        errors,
                    );
                }
            }
        }
    }
    model
}

/// `#[authorize] async fn may(ctx: &TopicContext) -> bool`: no `self` (it
/// runs before the subscription's value exists).
fn check_authorize(function: &ImplItemFn, errors: &mut Errors) -> Option<Hook> {
    check_fn_hook(
        function,
        &FnHook {
            what: "authorize",
            no_self: "an #[authorize] hook runs before the subscription exists, so it takes no `self`: `async fn authorize(ctx: &TopicContext) -> bool`",
            arguments: "an #[authorize] hook takes `()` or `(ctx: &TopicContext)`",
            returns: "an #[authorize] hook returns whether the subscription is allowed: `-> bool`",
        },
        errors,
    )
}

fn set_hook(slot: &mut Option<Hook>, hook: Hook, name: &str, errors: &mut Errors) {
    if let Some(first) = slot {
        errors.spanned(
            &hook.method,
            format!(
                "only one #[{name}] hook per impl block; `{}` is already one",
                first.method
            ),
        );
    } else {
        *slot = Some(hook);
    }
}

fn reject_args(attribute: &syn::Attribute, errors: &mut Errors) {
    if !matches!(attribute.meta, syn::Meta::Path(_)) {
        errors.spanned(attribute, "this attribute takes no arguments");
    }
}

pub(crate) fn type_key(ty: &Type) -> String {
    ty.to_token_stream().to_string()
}

fn require_async(function: &ImplItemFn, what: &str, errors: &mut Errors) -> bool {
    if function.sig.asyncness.is_none() {
        errors.spanned(
            function.sig.fn_token,
            format!("a #[{what}] must be an `async fn`"),
        );
        return false;
    }
    if !function.sig.generics.params.is_empty() {
        errors.spanned(
            &function.sig.generics,
            format!("a #[{what}] cannot be generic"),
        );
        return false;
    }
    true
}

/// Checks for `&self` / `&mut self`; returns whether it was found.
fn require_ref_receiver(function: &ImplItemFn, what: &str, errors: &mut Errors) -> bool {
    match function.sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => {
            if matches!(receiver.kind, ReceiverKind::Reference(..)) {
                true
            } else {
                errors.spanned(
                    receiver,
                    format!("a #[{what}] takes `&mut self` or `&self`, not `self` by value"),
                );
                false
            }
        }
        _ => {
            errors.spanned(
                &function.sig.ident,
                format!(
                    "a #[{what}] is a method: its first argument must be `&mut self` or `&self`"
                ),
            );
            false
        }
    }
}

fn typed_args(function: &ImplItemFn) -> Vec<&syn::PatType> {
    function
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(pat_type) => Some(pat_type),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

fn returned_type(function: &ImplItemFn, errors: &mut Errors) -> Option<Type> {
    match &function.sig.output {
        ReturnType::Default => Some(syn::parse_quote!(())),
        ReturnType::Type(_, ty) => {
            if matches!(**ty, Type::ImplTrait(_)) {
                errors.spanned(
                    ty,
                    "a handler must return a concrete type, not `impl Trait`",
                );
                None
            } else {
                Some((**ty).clone())
            }
        }
    }
}

fn check_handler(
    function: &ImplItemFn,
    kind: Kind,
    args: HandlerArgs,
    errors: &mut Errors,
) -> Option<Handler> {
    let what = kind.marker();
    let is_async = require_async(function, what, errors);
    let has_receiver = require_ref_receiver(function, what, errors);
    let typed = typed_args(function);
    let (takes_ctx, input) = match typed.as_slice() {
        [message] => (false, (*message.ty).clone()),
        [ctx, message] => {
            if !matches!(*ctx.ty, Type::Reference(_)) {
                errors.spanned(
                    &ctx.ty,
                    "the context comes first, by reference: `(&mut self, ctx: &Context, message: M)`",
                );
                return None;
            }
            (true, (*message.ty).clone())
        }
        _ => {
            errors.spanned(
                &function.sig.inputs,
                format!("a #[{what}] takes `(&mut self, message: M)` or `(&mut self, ctx: &Context, message: M)`"),
            );
            return None;
        }
    };
    if matches!(input, Type::Reference(_)) {
        errors.spanned(
            &input,
            format!(
                "a #[{what}] takes its message by value, last: `(&mut self, message: M)` or `(&mut self, ctx: &Context, message: M)`"
            ),
        );
        return None;
    }
    let output = returned_type(function, errors)?;
    (is_async && has_receiver).then(|| Handler {
        kind,
        method: function.sig.ident.clone(),
        takes_ctx,
        input,
        output,
        args,
        doc: attr::doc_comment(&function.attrs),
    })
}

/// The words of an associated-function hook's errors.
struct FnHook {
    what: &'static str,
    no_self: &'static str,
    arguments: &'static str,
    returns: &'static str,
}

/// A hook that is an associated function (no `self`), taking `()` or
/// `(ctx: &…)` and returning something: `#[on_connect]`, `#[authorize]`.
fn check_fn_hook(function: &ImplItemFn, hook: &FnHook, errors: &mut Errors) -> Option<Hook> {
    let is_async = require_async(function, hook.what, errors);
    if let Some(FnArg::Receiver(receiver)) = function.sig.inputs.first() {
        errors.spanned(receiver, hook.no_self);
        return None;
    }
    let takes_ctx = match typed_args(function).len() {
        0 => false,
        1 => true,
        _ => {
            errors.spanned(&function.sig.inputs, hook.arguments);
            return None;
        }
    };
    if matches!(function.sig.output, ReturnType::Default) {
        errors.spanned(&function.sig.ident, hook.returns);
        return None;
    }
    let output = returned_type(function, errors)?;
    is_async.then(|| Hook {
        method: function.sig.ident.clone(),
        takes_ctx,
        output,
    })
}

fn check_on_connect(function: &ImplItemFn, errors: &mut Errors) -> Option<Hook> {
    check_fn_hook(
        function,
        &FnHook {
            what: "on_connect",
            no_self: "an #[on_connect] hook builds the consumer, so it takes no `self`: `async fn new(ctx: &Context) -> Self`",
            arguments: "an #[on_connect] hook takes `()` or `(ctx: &Context)`",
            returns: "an #[on_connect] hook returns `Self` or `Result<Self, impl Into<Reject>>`",
        },
        errors,
    )
}

/// A hook that is a method: `#[post_authentication]` or `#[build_groups]`,
/// taking `(&self)` or `(&self, ctx: &Context)` (`&mut self` too).
fn check_method_hook(function: &ImplItemFn, what: &str, errors: &mut Errors) -> Option<Hook> {
    let is_async = require_async(function, what, errors);
    let has_receiver = require_ref_receiver(function, what, errors);
    let takes_ctx = match typed_args(function).len() {
        0 => false,
        1 => true,
        _ => {
            errors.spanned(
                &function.sig.inputs,
                format!("a #[{what}] hook takes `(&mut self)` or `(&mut self, ctx: &Context)`"),
            );
            return None;
        }
    };
    if what == "presence_meta" {
        if let Some(FnArg::Receiver(receiver)) = function.sig.inputs.first()
            && matches!(receiver.kind, ReceiverKind::Reference(_, _, Some(_)))
        {
            errors.spanned(
                receiver,
                "a #[presence_meta] hook reads the consumer: it takes `&self`",
            );
            return None;
        }
        if matches!(function.sig.output, ReturnType::Default) {
            errors.spanned(
                &function.sig.ident,
                "a #[presence_meta] hook returns the metadata to add, as an object: `-> serde_json::Map<String, Value>` or a `Serialize` struct",
            );
            return None;
        }
    }
    if what == "build_groups" {
        if let Some(FnArg::Receiver(receiver)) = function.sig.inputs.first()
            && matches!(receiver.kind, ReceiverKind::Reference(_, _, Some(_)))
        {
            errors.spanned(
                receiver,
                "a #[build_groups] hook reads the consumer: it takes `&self`",
            );
            return None;
        }
        if matches!(function.sig.output, ReturnType::Default) {
            errors.spanned(
                &function.sig.ident,
                "a #[build_groups] hook returns the group names: `-> Vec<String>`",
            );
            return None;
        }
    }
    let output = returned_type(function, errors)?;
    (is_async && has_receiver).then(|| Hook {
        method: function.sig.ident.clone(),
        takes_ctx,
        output,
    })
}

/// The last segment of a type's path: `DiscussionTopic`.
pub(crate) fn type_name(self_ty: &Type) -> String {
    match self_ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .map_or_else(|| type_key(self_ty), |segment| segment.ident.to_string()),
        other => type_key(other),
    }
}

pub(crate) fn lit_list(items: &[LitStr]) -> TokenStream {
    quote!(&[#(#items),*])
}

fn render(
    item_impl: &ItemImpl,
    args: &ChannelArgs,
    model: &Model,
    krate: &TokenStream,
) -> TokenStream {
    let self_ty = &item_impl.self_ty;
    let type_name = type_name(self_ty);
    // As Chanx: the type name without `Consumer`, in snake_case.
    let name = args.name.as_ref().map_or_else(
        || decamelize(type_name.strip_suffix("Consumer").unwrap_or(&type_name)),
        LitStr::value,
    );
    let description = args
        .description
        .as_ref()
        .map(LitStr::value)
        .or_else(|| attr::doc_comment(&item_impl.attrs));
    let description = attr::option_str(description.as_deref());
    let tags = lit_list(&args.tags);
    let groups = lit_list(&args.groups);
    let option = |value: Option<bool>| match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    };
    let send_completion = option(args.send_completion);
    let send_authentication_message = option(args.send_authentication_message);
    let camelize = option(args.camelize);
    let log_websocket_message = option(args.log_websocket_message);
    let log_ignored_actions = match &args.log_ignored_actions {
        Some(list) => quote!(::core::option::Option::Some(&[#(#list),*])),
        None => quote!(::core::option::Option::None),
    };
    let authenticates = !args.authenticators.is_empty()
        || args
            .permissions
            .as_ref()
            .is_some_and(|list| !list.is_empty());
    let authenticator_types = &args.authenticators;
    // Authenticators without `permissions`: authentication is required.
    let channel_permissions: Vec<Type> = match &args.permissions {
        Some(list) => list.clone(),
        None if !args.authenticators.is_empty() => {
            vec![syn::parse_quote!(#krate::auth::IsAuthenticated)]
        }
        None => Vec::new(),
    };
    let sends = &args.sends;
    let hook_output = model.post_authentication.as_ref().map(|hook| {
        let output = &hook.output;
        quote!(<#output as #krate::__private::IntoReply>::describe(out);)
    });

    let Shared {
        metas,
        dispatch,
        dispatch_event,
        unique,
    } = shared(model, self_ty, krate, &quote!(#krate::Context));
    let connect = match &model.on_connect {
        Some(hook) => {
            let method = &hook.method;
            let ctx_arg = hook.takes_ctx.then(|| quote!(ctx));
            quote!(#krate::__private::connected::<Self, _>(Self::#method(#ctx_arg).await))
        }
        None => {
            let krate = attr::respan(krate, self_ty.span());
            quote_spanned! {self_ty.span()=>
                #krate::__private::default_consumer::<Self>()
            }
        }
    };
    let build_groups = match &model.build_groups {
        Some(hook) => {
            let method = &hook.method;
            let ctx_arg = hook.takes_ctx.then(|| quote!(ctx));
            let output = &hook.output;
            let krate_here = attr::respan(krate, output.span());
            quote_spanned! {output.span()=>
                #krate_here::__private::GroupsOutcome::new(Self::#method(self, #ctx_arg).await)
            }
        }
        None => {
            quote!(#krate::__private::GroupsOutcome::new(::std::vec::Vec::<::std::string::String>::new()))
        }
    };
    let post_authentication = match &model.post_authentication {
        Some(hook) => {
            let method = &hook.method;
            let ctx_arg = hook.takes_ctx.then(|| quote!(ctx));
            quote!(#krate::__private::HookOutcome::new(Self::#method(self, #ctx_arg).await))
        }
        None => quote!(#krate::__private::HookOutcome::new(())),
    };

    let topics = &args.topics;
    let presence_meta_const = args
        .presence
        .as_ref()
        .map(|template| quote!(.with_presence(#template)));
    let presence_sends = args.presence.as_ref().map(|_| {
        quote! {
            <#krate::presence::PresenceState as #krate::Message>::describe(out);
            <#krate::presence::PresenceDiff as #krate::Message>::describe(out);
        }
    });
    let presence_key = args.presence.as_ref().map(|template| {
        let krate_here = attr::respan(krate, template.span());
        quote_spanned! {template.span()=>
            fn presence_key(ctx: &#krate::Context) -> ::core::option::Option<::std::string::String> {
                #krate_here::__private::presence_key::<#krate_here::auth::Identity<Self>>(ctx)
            }
        }
    });
    let presence_meta = model.presence_meta.as_ref().map(|hook| {
        let method = &hook.method;
        let ctx_arg = hook.takes_ctx.then(|| quote!(ctx));
        quote! {
            async fn presence_meta(
                &self,
                ctx: &#krate::Context,
            ) -> #krate::__private::serde_json::Map<::std::string::String, #krate::__private::serde_json::Value> {
                let _ = ctx;
                #krate::__private::presence_meta(Self::#method(self, #ctx_arg).await)
            }
        }
    });
    quote! {
        #unique

        #[automatically_derived]
        impl #krate::Consumer for #self_ty {
            const CHANNEL: &'static #krate::__private::ChannelMeta =
                &#krate::__private::ChannelMeta::new(
                    #name,
                    #type_name,
                    #description,
                    #tags,
                    #groups,
                    &[#(#metas),*],
                    |out| {
                        let _ = &out;
                        #hook_output
                        #(<#sends as #krate::Message>::describe(out);)*
                        #presence_sends
                    },
                )
                .with_topics(&[#(<#topics as #krate::__private::Topic>::TOPIC),*])
                #presence_meta_const;

            const CONFIG: #krate::ConsumerConfig = #krate::ConsumerConfig::new()
                .send_completion(#send_completion)
                .send_authentication_message(#send_authentication_message)
                .camelize(#camelize)
                .log_websocket_message(#log_websocket_message)
                .log_ignored_actions(#log_ignored_actions)
                .authenticates(#authenticates);

            type Authenticators = (#(#authenticator_types,)*);

            async fn check_permissions(
                ctx: &#krate::Context,
            ) -> ::core::result::Result<(), #krate::__private::Denied> {
                let _ = ctx;
                #(#krate::__private::check_permission::<#channel_permissions>(ctx).await?;)*
                ::core::result::Result::Ok(())
            }

            async fn connect(
                ctx: &#krate::Context,
            ) -> ::core::result::Result<Self, #krate::Reject> {
                let _ = ctx;
                #connect
            }

            async fn build_groups(
                &self,
                ctx: &#krate::Context,
            ) -> #krate::__private::GroupsOutcome {
                let _ = ctx;
                #build_groups
            }

            async fn post_authentication(
                &mut self,
                ctx: &#krate::Context,
            ) -> #krate::__private::HookOutcome {
                let _ = ctx;
                #post_authentication
            }

            #presence_key
            #presence_meta

            #dispatch
            #dispatch_event
        }
    }
}

/// What `#[channel]` and `#[topic]` generate alike: handler metadata, the
/// two dispatch functions (their context of type `ctx_ty`) and the checks
/// that no action is taken twice.
pub(crate) struct Shared {
    pub(crate) metas: Vec<TokenStream>,
    pub(crate) dispatch: TokenStream,
    pub(crate) dispatch_event: TokenStream,
    pub(crate) unique: TokenStream,
}

pub(crate) fn shared(
    model: &Model,
    self_ty: &Type,
    krate: &TokenStream,
    ctx_ty: &TokenStream,
) -> Shared {
    let metas = model.handlers.iter().map(|handler| {
        let method = handler.method.to_string();
        let input = &handler.input;
        let output = &handler.output;
        let extra_outputs = &handler.args.outputs;
        let input_name = type_key(input).replace(' ', "");
        let summary = attr::option_str(handler.args.summary.as_ref().map(LitStr::value).as_deref());
        let description = handler
            .args
            .description
            .as_ref()
            .map(LitStr::value)
            .or_else(|| handler.doc.clone());
        let description = attr::option_str(description.as_deref());
        let tags = lit_list(&handler.args.tags);
        let kind = match handler.kind {
            Kind::Ws => quote!(#krate::__private::HandlerKind::Ws),
            Kind::Event => quote!(#krate::__private::HandlerKind::Event),
        };
        quote! {
            #krate::__private::HandlerMeta::new(
                #method,
                #kind,
                <#input as #krate::Message>::ACTIONS,
                #input_name,
                <#input as #krate::Message>::describe,
                |out| {
                    <#output as #krate::__private::IntoReply>::describe(out);
                    #(<#extra_outputs as #krate::Message>::describe(out);)*
                },
                #summary,
                #description,
                #tags,
            )
        }
    });

    let arms = |kind: Kind| {
        model
            .handlers
            .iter()
            .filter(|handler| handler.kind == kind)
            .map(|handler| {
        let method = &handler.method;
        let input = &handler.input;
        let ctx_arg = handler.takes_ctx.then(|| quote!(ctx,));
        // Spanned on the return type, so a type that cannot be a reply is
        // reported there.
        let krate_here = attr::respan(krate, handler.output.span());
        let reply = quote_spanned! {handler.output.span()=>
            #krate_here::__private::reply(Self::#method(self, #ctx_arg message).await, ctx, envelope)
        };
        let permissions = &handler.args.permissions;
        quote! {
            if <#input as #krate::Message>::has_action(action) {
                #(
                    if let ::core::result::Result::Err(denied) =
                        #krate::__private::check_permission::<#permissions>(ctx).await
                    {
                        return #krate::__private::Outcome::Denied(denied);
                    }
                )*
                let message = match #krate::__private::decode::<#input>(envelope) {
                    ::core::result::Result::Ok(message) => message,
                    ::core::result::Result::Err(outcome) => return outcome,
                };
                return #reply;
            }
        }
            })
            .collect::<Vec<_>>()
    };
    // `dispatch` and `dispatch_event` differ only in their handlers.
    let dispatch_fn = |name: &str, arms: Vec<TokenStream>| {
        let name = syn::Ident::new(name, Span::call_site());
        quote! {
            fn #name<'a>(
                &'a mut self,
                ctx: &'a #ctx_ty,
                envelope: &'a #krate::__private::Envelope<'a>,
            ) -> impl ::core::future::Future<Output = #krate::__private::Outcome> + ::core::marker::Send + 'a {
                async move {
                    let _ = ctx;
                    let action: &str = &envelope.action;
                    #(#arms)*
                    #krate::__private::Outcome::Unknown
                }
            }
        }
    };
    let dispatch = dispatch_fn("dispatch", arms(Kind::Ws));
    let dispatch_event = dispatch_fn("dispatch_event", arms(Kind::Event));

    let unique = |kind: Kind| {
        let inputs = model
            .handlers
            .iter()
            .filter(|handler| handler.kind == kind)
            .map(|handler| &handler.input);
        let krate = attr::respan(krate, self_ty.span());
        quote_spanned! {self_ty.span()=>
            const _: () = #krate::__private::assert_unique_actions(
                &[#(<#inputs as #krate::Message>::ACTIONS),*],
            );
        }
    };
    let unique_ws = unique(Kind::Ws);
    let unique_events = unique(Kind::Event);
    Shared {
        metas: metas.collect(),
        dispatch,
        dispatch_event,
        unique: quote!(#unique_ws #unique_events),
    }
}

/// `#[ws_handler]` and friends used outside a `#[channel]` impl block.
pub(crate) fn outside_channel(name: &str, item: TokenStream) -> TokenStream {
    let error = syn::Error::new(
        Span::call_site(),
        format!("#[{name}] only works on a method inside a `#[channel]` or `#[topic]` impl block"),
    )
    .to_compile_error();
    quote!(#error #item)
}

/// `RoomChat` → `room_chat`, as `humps.decamelize` (Chanx's default channel
/// names): runs of capitals before a capitalised word are one word
/// (`MyHTTPThing` → `my_http_thing`), and an all-capital name is kept.
pub(crate) fn decamelize(name: &str) -> String {
    if name.chars().any(char::is_lowercase) || !name.chars().any(char::is_uppercase) {
        let chars: Vec<char> = name.chars().collect();
        let mut out = String::with_capacity(name.len() + 4);
        for (index, &c) in chars.iter().enumerate() {
            if c.is_uppercase() && index > 0 {
                let previous = chars[index - 1];
                let next_lower = chars.get(index + 1).is_some_and(|next| next.is_lowercase());
                let boundary = previous.is_lowercase()
                    || (previous.is_ascii_digit() && next_lower)
                    || (previous.is_uppercase() && next_lower);
                if boundary && !out.ends_with('_') {
                    out.push('_');
                }
            }
            out.extend(c.to_lowercase());
        }
        out
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::decamelize;

    #[test]
    fn default_names_follow_chanx() {
        for (name, expected) in [
            ("RoomChat", "room_chat"),
            ("SystemMessage", "system_message"),
            ("MyHTTPThing", "my_http_thing"),
            ("AIAssistant", "ai_assistant"),
            ("Emit", "emit"),
            ("V2Chat", "v2_chat"),
            ("JSON", "JSON"),
            ("ChatConsumerV2", "chat_consumer_v2"),
            ("Health", "health"),
        ] {
            assert_eq!(decamelize(name), expected, "{name}");
        }
    }
}
