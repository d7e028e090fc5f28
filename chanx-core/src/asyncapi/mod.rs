//! AsyncAPI 3.0 documents, built from the same metadata the macros generate
//! for dispatch, so the document cannot drift from the code.
//!
//! ```
//! use chanx_core::asyncapi::AsyncApi;
//! use chanx_core::messages::{Ping, Pong};
//! use chanx_core::{Router, channel};
//!
//! #[derive(Default)]
//! struct Health;
//!
//! /// Liveness checks.
//! #[channel(name = "health")]
//! impl Health {
//!     #[ws_handler(summary = "Ping the server")]
//!     async fn ping(&mut self, _: Ping) -> Pong {
//!         Pong
//!     }
//! }
//!
//! let api = AsyncApi::new("Health API", "1.0.0").server("local", "localhost:8000", "ws");
//! let router = Router::new().route::<Health>("/ws/health").with_asyncapi(api.clone());
//! let document = api.document(&router);
//! assert_eq!(document["asyncapi"], "3.0.0");
//! assert_eq!(document["channels"]["health"]["address"], "/ws/health");
//! assert_eq!(document["operations"]["health_ping"]["action"], "receive");
//! ```
//!
//! What the document holds:
//!
//! - one **channel** per route: the address with its `{param}` placeholders
//!   and their `parameters`, title, description, tags, the messages, and
//!   `bindings.ws` for query and header credentials;
//! - **operations**: every `#[ws_handler]` as `receive` with a `reply`
//!   listing what it returns and what it declares with `output = …`; every
//!   `#[event_handler]` and every message the consumer sends on its own as
//!   `send`; the protocol frames (`error`, `authentication`, completion) as
//!   one `send` operation per channel; `security` where the consumer has an
//!   authenticator;
//! - **components**, in the shape of Chanx's own documents so its tooling
//!   (`chanx generate-client`) reads them: each message once under the
//!   snake_case of its type name (`components.messages.user_message`), its
//!   `payload` a `$ref` to a schema titled as the type
//!   (`components.schemas.UserMessage`) that holds the `action` constant,
//!   the payload and `ref`, with a `correlationId` for `ref` and an example.
//!   The payload's own schema is `<Type>Payload` when it would take the
//!   message's name; a newtype's payload is its inner type; a unit
//!   message's payload is `{"type": "null"}` and optional. Schemas come from
//!   schemars in the draft-07 form, every definition titled and under
//!   `components.schemas`; on a `camelize` channel property names are
//!   camelCase, as on the wire (a definition that plain channels use too is
//!   copied as `<Name>Camel`). `securitySchemes` come from the
//!   authenticators' declared credentials.
//!
//! The output is deterministic: the same code gives byte-identical JSON.
//!
//! Naming: a channel is named by `#[channel(name = …)]` (characters other
//! than letters, digits, `.` and `-` become `_`; its `title` is the name as
//! an identifier); a second route of the same name gets `_2`, `_3`… in
//! route order. An operation is `<channel>_<method>`, then
//! `<channel>_sends` and `<channel>_protocol`; a key already taken gets
//! `_2`, `_3`…, so nothing is ever overwritten. A message is titled by its
//! type; a different message with the same type name (or the same type on
//! a channel with the other `camelize` setting) gets `_<channel>` appended
//! (then `_2`…).

use std::collections::BTreeMap;

use schemars::SchemaGenerator;
use serde_json::{Map, Value, json};

mod schemas;

use crate::auth::{Credential, CredentialLocation};
use crate::case;
use crate::consumer::{ChannelMeta, HandlerKind};
use crate::message::{Message, MessageMeta};
use crate::messages;
use crate::router::Router;
use crate::topic::TopicMeta;

const SCHEMAS_PATH: &str = "/components/schemas";

/// Settings of a document: `info` and `servers`.
#[derive(Debug, Clone)]
#[must_use]
pub struct AsyncApi {
    title: String,
    version: String,
    description: Option<String>,
    servers: Vec<ServerSpec>,
}

#[derive(Debug, Clone)]
struct ServerSpec {
    name: String,
    host: String,
    protocol: String,
    description: Option<String>,
}

/// What one document channel describes: a consumer, or a topic (mounted
/// on a consumer, or standalone).
struct Source {
    /// The channel's key and title: the consumer's name, the topic's, or
    /// `<host>_<topic>` for a topic mounted on a host.
    name: String,
    description: Option<&'static str>,
    tags: &'static [&'static str],
    handlers: &'static [crate::consumer::HandlerMeta],
    sent: Vec<MessageMeta>,
    topic: Option<&'static TopicMeta>,
}

impl Source {
    fn channel(meta: &'static ChannelMeta) -> Self {
        Self {
            name: meta.name.to_owned(),
            description: meta.description,
            tags: meta.tags,
            handlers: meta.handlers,
            sent: meta.sent_messages(),
            topic: None,
        }
    }

    fn topic(meta: &'static TopicMeta, host: Option<&str>) -> Self {
        Self {
            name: match host {
                Some(host) => format!("{host}_{}", meta.name),
                None => meta.name.to_owned(),
            },
            description: meta.description,
            tags: meta.tags,
            handlers: meta.handlers,
            sent: meta.sent_messages(),
            topic: Some(meta),
        }
    }
}

/// One routed consumer, as the document sees it.
#[derive(Debug)]
pub(crate) struct RouteDoc {
    pub(crate) path: String,
    pub(crate) channel: &'static ChannelMeta,
    pub(crate) send_completion: bool,
    pub(crate) send_authentication: bool,
    pub(crate) camelize: bool,
    pub(crate) credentials: Vec<Credential>,
}

impl AsyncApi {
    /// A document titled `title` at API version `version`.
    pub fn new(title: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            version: version.into(),
            description: None,
            servers: Vec::new(),
        }
    }

    /// The `info.description`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a server: `host` such as `localhost:8000`, `protocol` `ws` or
    /// `wss`. Without servers, a served document names the request's host.
    pub fn server(
        mut self,
        name: impl Into<String>,
        host: impl Into<String>,
        protocol: impl Into<String>,
    ) -> Self {
        self.servers.push(ServerSpec {
            name: name.into(),
            host: host.into(),
            protocol: protocol.into(),
            description: None,
        });
        self
    }

    /// Whether servers are configured.
    #[must_use]
    pub fn has_servers(&self) -> bool {
        !self.servers.is_empty()
    }

    /// The document for every consumer `router` serves.
    #[must_use]
    pub fn document(&self, router: &Router) -> Value {
        Builder::new(router.route_docs()).build(self).0
    }

    /// The document as pretty JSON with a final newline: what the emit
    /// command writes and the server serves.
    #[must_use]
    pub fn to_json(&self, router: &Router) -> String {
        render(&self.document(router))
    }

    /// `servers` naming `host` with `protocol`, for a document served without
    /// configured servers.
    pub(crate) fn servers_for_host(host: &str, protocol: &str) -> Value {
        json!({"default": {"host": host, "protocol": protocol}})
    }

    fn servers_value(&self) -> Option<Value> {
        if self.servers.is_empty() {
            return None;
        }
        let mut servers = Map::new();
        for server in &self.servers {
            let mut entry = Map::new();
            entry.insert("host".into(), json!(server.host));
            entry.insert("protocol".into(), json!(server.protocol));
            if let Some(description) = &server.description {
                entry.insert("description".into(), json!(description));
            }
            servers.insert(server.name.clone(), Value::Object(entry));
        }
        Some(Value::Object(servers))
    }
}

/// Pretty JSON with a final newline.
pub(crate) fn render(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// Decodes a whole frame as one Rust message type.
type DecodeFn = fn(&str) -> Result<(), crate::DecodeError>;

/// One message registered in `components.messages`.
struct RegisteredMessage {
    /// Its key in `components.messages` (the snake_case of `title`).
    key: String,
    action: &'static str,
    description: Option<&'static str>,
    /// The payload's schema as schemars gave it.
    schema: Value,
    /// Whether its channel camelizes keys on the wire.
    camelize: bool,
    decode: DecodeFn,
}

/// A documented message's decoder, for [`check_examples`].
struct Decoder {
    key: String,
    camelize: bool,
    decode: DecodeFn,
}

struct Builder {
    routes: Vec<RouteDoc>,
    generator: SchemaGenerator,
    /// By title: the envelope schema's name and the message's class name in
    /// generated clients.
    registered: BTreeMap<String, RegisteredMessage>,
    schemes: BTreeMap<String, Value>,
    channels: Map<String, Value>,
    operations: Map<String, Value>,
}

impl Builder {
    fn new(routes: Vec<RouteDoc>) -> Self {
        let mut settings = schemars::generate::SchemaSettings::draft07();
        settings.definitions_path = SCHEMAS_PATH.into();
        settings.meta_schema = None;
        Self {
            routes,
            generator: settings.into_generator(),
            registered: BTreeMap::new(),
            schemes: BTreeMap::new(),
            channels: Map::new(),
            operations: Map::new(),
        }
    }

    /// The document, and each component message's decoder.
    fn build(mut self, api: &AsyncApi) -> (Value, Vec<Decoder>) {
        let routes = std::mem::take(&mut self.routes);
        for route in &routes {
            let channel = route.channel;
            let mut sources = Vec::new();
            if let Some(topic) = channel.default_topic {
                // A route dedicated to one topic is that topic.
                sources.push(Source::topic(topic, None));
            } else {
                // As Chanx: a host with no handlers of its own is only the
                // connection its topics share.
                if channel.topics.is_empty() || !channel.handlers.is_empty() {
                    sources.push(Source::channel(channel));
                }
                for topic in channel.topics {
                    sources.push(Source::topic(topic, Some(channel.name)));
                }
            }
            for source in &sources {
                let id = unique_key(&self.channels, sanitize(&source.name));
                // Reserve the id before the channel is filled in.
                self.channels.insert(id.clone(), Value::Null);
                self.add_route(&id, route, source);
            }
        }
        let mut definitions = self.generator.take_definitions(true);
        let (messages, decoders) = shape_messages(&self.registered, &mut definitions);

        let mut info = Map::new();
        info.insert("title".into(), json!(api.title));
        info.insert("version".into(), json!(api.version));
        if let Some(description) = &api.description {
            info.insert("description".into(), json!(description));
        }
        let mut components = Map::new();
        components.insert("messages".into(), Value::Object(messages));
        components.insert("schemas".into(), Value::Object(definitions));
        if !self.schemes.is_empty() {
            components.insert(
                "securitySchemes".into(),
                Value::Object(self.schemes.into_iter().collect()),
            );
        }
        let mut document = Map::new();
        document.insert("asyncapi".into(), json!("3.0.0"));
        document.insert("info".into(), Value::Object(info));
        if let Some(servers) = api.servers_value() {
            document.insert("servers".into(), servers);
        }
        document.insert("defaultContentType".into(), json!("application/json"));
        document.insert("channels".into(), Value::Object(self.channels));
        document.insert("operations".into(), Value::Object(self.operations));
        document.insert("components".into(), Value::Object(components));
        (Value::Object(document), decoders)
    }

    fn add_route(&mut self, id: &str, route: &RouteDoc, meta: &Source) {
        let mut channel_messages = Map::new();
        let channel_ref = json!({"$ref": format!("#/channels/{id}")});
        let security = self.security(&route.credentials);

        let mut error_meta = Vec::new();
        describe::<messages::ErrorMessage>(&mut error_meta);
        for handler in meta.handlers {
            let operation_id = unique_key(&self.operations, format!("{id}_{}", handler.method));
            let outputs = self.refs(
                id,
                route.camelize,
                &mut channel_messages,
                &handler.outputs(),
            );
            let mut operation = Map::new();
            match handler.kind {
                HandlerKind::Ws => {
                    let inputs =
                        self.refs(id, route.camelize, &mut channel_messages, &handler.inputs());
                    operation.insert("action".into(), json!("receive"));
                    operation.insert("channel".into(), channel_ref.clone());
                    operation.insert("messages".into(), Value::Array(inputs));
                    // Any frame can also be answered with an error frame.
                    let mut replies = outputs;
                    replies.extend(self.refs(
                        id,
                        route.camelize,
                        &mut channel_messages,
                        &error_meta,
                    ));
                    operation.insert(
                        "reply".into(),
                        json!({"channel": channel_ref.clone(), "messages": replies}),
                    );
                }
                HandlerKind::Event => {
                    if outputs.is_empty() {
                        continue; // an event that sends the client nothing
                    }
                    operation.insert("action".into(), json!("send"));
                    operation.insert("channel".into(), channel_ref.clone());
                    operation.insert("messages".into(), Value::Array(outputs));
                }
            }
            let summary = handler
                .summary
                .map(str::to_owned)
                .or_else(|| match handler.kind {
                    HandlerKind::Ws => Some(format!("Handle {}", handler.actions.join(", "))),
                    HandlerKind::Event => {
                        Some(format!("Relay the {} event", handler.actions.join(", ")))
                    }
                });
            if let Some(summary) = summary {
                operation.insert("summary".into(), json!(summary));
            }
            if let Some(description) = handler.description {
                operation.insert("description".into(), json!(description));
            }
            if !handler.tags.is_empty() {
                operation.insert("tags".into(), tags(handler.tags));
            }
            if !security.is_empty() {
                operation.insert("security".into(), Value::Array(security.clone()));
            }
            self.operations
                .insert(operation_id, Value::Object(operation));
        }

        if meta.topic.is_some() {
            let mut error = Vec::new();
            describe::<messages::ErrorMessage>(&mut error);
            let mut subscribe = Vec::new();
            describe::<messages::Subscribe>(&mut subscribe);
            let mut subscribed = Vec::new();
            describe::<messages::Subscribed>(&mut subscribed);
            let mut unsubscribe = Vec::new();
            describe::<messages::Unsubscribe>(&mut unsubscribe);
            let mut unsubscribed = Vec::new();
            describe::<messages::Unsubscribed>(&mut unsubscribed);
            for (suffix, summary, request, answer) in [
                (
                    "subscribe",
                    "Subscribe to the topic",
                    &subscribe,
                    &subscribed,
                ),
                (
                    "unsubscribe",
                    "Unsubscribe from the topic",
                    &unsubscribe,
                    &unsubscribed,
                ),
            ] {
                let requests = self.refs(id, route.camelize, &mut channel_messages, request);
                let mut answers = self.refs(id, route.camelize, &mut channel_messages, answer);
                answers.extend(self.refs(id, route.camelize, &mut channel_messages, &error));
                self.operations.insert(
                    unique_key(&self.operations, format!("{id}_{suffix}")),
                    json!({
                        "action": "receive",
                        "channel": channel_ref.clone(),
                        "summary": summary,
                        "messages": requests,
                        "reply": {"channel": channel_ref.clone(), "messages": answers},
                    }),
                );
            }
        }

        let sent = &meta.sent;
        if !sent.is_empty() {
            let refs = self.refs(id, route.camelize, &mut channel_messages, sent);
            self.operations.insert(
                unique_key(&self.operations, format!("{id}_sends")),
                json!({
                    "action": "send",
                    "channel": channel_ref.clone(),
                    "summary": "Messages the server sends on its own",
                    "messages": refs,
                }),
            );
        }

        let mut protocol = Vec::new();
        describe::<messages::ErrorMessage>(&mut protocol);
        if route.send_authentication && meta.topic.is_none() {
            describe::<messages::Authentication>(&mut protocol);
        }
        if route.send_completion {
            describe::<messages::Complete>(&mut protocol);
            describe::<messages::GroupComplete>(&mut protocol);
            describe::<messages::EventComplete>(&mut protocol);
        }
        let refs = self.refs(id, route.camelize, &mut channel_messages, &protocol);
        self.operations.insert(
            unique_key(&self.operations, format!("{id}_protocol")),
            json!({
                "action": "send",
                "channel": channel_ref,
                "summary": "Protocol frames: errors, authentication and completion",
                "messages": refs,
            }),
        );

        let mut channel = Map::new();
        channel.insert("address".into(), json!(route.path));
        // Code generators name a module after the title: an identifier.
        channel.insert("title".into(), json!(identifier(&meta.name)));
        if let Some(description) = meta.description {
            channel.insert("description".into(), json!(description));
        }
        let parameters = route_parameters(&route.path);
        if !parameters.is_empty() {
            let parameters: Map<String, Value> = parameters
                .into_iter()
                .map(|name| {
                    let description = format!("The `{name}` segment of the path");
                    (name, json!({ "description": description }))
                })
                .collect();
            channel.insert("parameters".into(), Value::Object(parameters));
        }
        if !meta.tags.is_empty() {
            channel.insert("tags".into(), tags(meta.tags));
        }
        channel.insert("messages".into(), Value::Object(channel_messages));
        if let Some(bindings) = ws_bindings(&route.credentials) {
            channel.insert("bindings".into(), json!({ "ws": bindings }));
        }
        if let Some(topic) = meta.topic {
            // Topics share their connection's address; the extension is what
            // tells a client which stream a channel is and how to address it
            // (Chanx's `x-topic`).
            channel.insert(
                "x-topic".into(),
                json!({
                    "name": topic.name,
                    "pattern": topic.pattern,
                    "parameters": topic.parameters,
                }),
            );
        }
        self.channels.insert(id.to_owned(), Value::Object(channel));
    }

    /// Registers `metas` and returns operation references to them through
    /// the channel.
    fn refs(
        &mut self,
        channel: &str,
        camelize: bool,
        channel_messages: &mut Map<String, Value>,
        metas: &[MessageMeta],
    ) -> Vec<Value> {
        let mut refs = Vec::new();
        for meta in metas {
            let id = self.register(channel, meta, camelize);
            channel_messages.insert(
                id.clone(),
                json!({"$ref": format!("#/components/messages/{id}")}),
            );
            let reference = json!({"$ref": format!("#/channels/{channel}/messages/{id}")});
            if !refs.contains(&reference) {
                refs.push(reference);
            }
        }
        refs
    }

    /// Adds `meta` to `components.messages` once; returns its key there.
    fn register(&mut self, channel: &str, meta: &MessageMeta, camelize: bool) -> String {
        let mut payload = (meta.schema)(&mut self.generator);
        for transform in self.generator.transforms_mut() {
            transform.transform(&mut payload);
        }
        let payload = payload.to_value();
        let mut title = meta.name.to_owned();
        let mut attempt = 1;
        loop {
            match self.registered.get(&title) {
                None if !self
                    .registered
                    .values()
                    .any(|registered| registered.key == case::decamelize(&title)) =>
                {
                    break;
                }
                Some(existing)
                    if existing.action == meta.action
                        && existing.schema == payload
                        && existing.camelize == camelize =>
                {
                    return existing.key.clone();
                }
                _ => {
                    attempt += 1;
                    title = if attempt == 2 {
                        format!("{}_{channel}", meta.name)
                    } else {
                        format!("{}_{channel}_{attempt}", meta.name)
                    };
                }
            }
        }
        let key = case::decamelize(&title);
        self.registered.insert(
            title,
            RegisteredMessage {
                key: key.clone(),
                action: meta.action,
                description: meta.description,
                schema: payload,
                camelize,
                decode: meta.decode,
            },
        );
        key
    }

    /// Registers the security schemes of `credentials`; returns references.
    fn security(&mut self, credentials: &[Credential]) -> Vec<Value> {
        let mut refs = Vec::new();
        for credential in credentials {
            let (id, scheme) = match (&credential.location, &credential.http_scheme) {
                (CredentialLocation::Header, Some(scheme)) => (
                    format!("{scheme}Auth"),
                    json!({"type": "http", "scheme": scheme, "description": credential.description}),
                ),
                (location, _) => {
                    let (suffix, place) = match location {
                        CredentialLocation::Query => ("Query", "query"),
                        CredentialLocation::Header => ("Header", "header"),
                        CredentialLocation::Cookie => ("Cookie", "cookie"),
                    };
                    (
                        format!("{}{suffix}", sanitize(&credential.name)),
                        json!({
                            "type": "httpApiKey",
                            "name": credential.name,
                            "in": place,
                            "description": credential.description,
                        }),
                    )
                }
            };
            self.schemes.insert(id.clone(), scheme);
            refs.push(json!({"$ref": format!("#/components/securitySchemes/{id}")}));
        }
        refs
    }
}

/// The registered messages in the shape of Chanx's documents: each
/// message's `payload` is a `$ref` to a schema titled as the message that
/// holds the `action` constant and the payload (`components.schemas.<Title>`),
/// under the snake_case key Chanx uses (`components.messages.<key>`). The
/// definitions are reshaped to suit (see [`schemas`]).
fn shape_messages(
    registered: &BTreeMap<String, RegisteredMessage>,
    definitions: &mut Map<String, Value>,
) -> (Map<String, Value>, Vec<Decoder>) {
    for schema in definitions.values_mut() {
        strip_schema_keyword(schema);
        schemas::unwrap_single_all_of(schema);
    }
    let mut payloads: BTreeMap<&str, Value> = registered
        .iter()
        .map(|(title, message)| {
            let mut payload = message.schema.clone();
            schemas::unwrap_single_all_of(&mut payload);
            if schemas::is_null(&payload, definitions) {
                payload = json!({"type": "null"});
            }
            (title.as_str(), payload)
        })
        .collect();

    // A definition that only names another (a newtype) is skipped over.
    let aliases = schemas::aliases(definitions);
    for schema in definitions.values_mut().chain(payloads.values_mut()) {
        schemas::rename_refs(schema, &aliases);
    }

    // A definition named as a message (its payload, for a struct message)
    // moves aside for the envelope: `UserMessage` → `UserMessagePayload`.
    let mut renames = BTreeMap::new();
    for title in registered.keys() {
        if definitions.contains_key(title) {
            let new = schemas::fresh_name(&format!("{title}Payload"), |name| {
                definitions.contains_key(name)
                    || registered.contains_key(name)
                    || renames.values().any(|taken: &String| taken == name)
            });
            renames.insert(title.clone(), new);
        }
    }
    for (old, new) in &renames {
        if let Some(definition) = definitions.remove(old) {
            definitions.insert(new.clone(), definition);
        }
    }
    for schema in definitions.values_mut().chain(payloads.values_mut()) {
        schemas::rename_refs(schema, &renames);
    }

    // camelCase channels: their definitions get camelized property names;
    // one that plain channels use too is copied as `<Name>Camel`.
    let camel = schemas::reachable(
        payloads
            .iter()
            .filter(|(title, _)| registered[**title].camelize)
            .map(|(_, payload)| payload),
        definitions,
    );
    if !camel.is_empty() {
        let plain = schemas::reachable(
            payloads
                .iter()
                .filter(|(title, _)| !registered[**title].camelize)
                .map(|(_, payload)| payload),
            definitions,
        );
        let mut copies = BTreeMap::new();
        for name in camel.intersection(&plain) {
            let copy = schemas::fresh_name(&format!("{name}Camel"), |candidate| {
                definitions.contains_key(candidate)
                    || registered.contains_key(candidate)
                    || copies.values().any(|taken: &String| taken == candidate)
            });
            copies.insert(name.clone(), copy);
        }
        for name in &camel {
            let Some(definition) = definitions.get_mut(name) else {
                continue;
            };
            let target = match copies.get(name) {
                Some(copy) => {
                    let mut clone = definition.clone();
                    schemas::rename_refs(&mut clone, &copies);
                    schemas::camelize_properties(&mut clone);
                    definitions.insert(copy.clone(), clone);
                    continue;
                }
                None => definition,
            };
            schemas::rename_refs(target, &copies);
            schemas::camelize_properties(target);
        }
        for (title, payload) in &mut payloads {
            if registered[*title].camelize {
                schemas::rename_refs(payload, &copies);
                schemas::camelize_properties(payload);
            }
        }
    }

    // Only what a message uses, each definition titled (its class name in
    // generated clients).
    let used = schemas::reachable(payloads.values(), definitions);
    definitions.retain(|name, _| used.contains(name));
    for (name, definition) in definitions.iter_mut() {
        if let Value::Object(map) = definition {
            map.entry("title").or_insert_with(|| json!(name));
        }
    }

    let mut messages = Map::new();
    let mut decoders = Vec::new();
    for (title, message) in registered {
        let payload = payloads.remove(title.as_str()).unwrap_or(Value::Bool(true));
        let unit = payload == json!({"type": "null"});
        let example = json!({
            "action": message.action,
            "payload": example_for(&payload, definitions, 0),
        });
        let mut envelope = Map::new();
        envelope.insert("title".into(), json!(title));
        if let Some(description) = message.description {
            envelope.insert("description".into(), json!(description));
        }
        envelope.insert("type".into(), json!("object"));
        envelope.insert(
            "properties".into(),
            json!({
                "action": {
                    "title": "Action",
                    "type": "string",
                    "const": message.action,
                    "default": message.action,
                },
                "payload": payload,
                "ref": {
                    "title": "Ref",
                    "description": "Correlation id; the direct reply to a client frame echoes it",
                },
            }),
        );
        envelope.insert(
            "required".into(),
            if unit {
                json!(["action"])
            } else {
                json!(["action", "payload"])
            },
        );
        definitions.insert(title.clone(), Value::Object(envelope));

        let mut document = Map::new();
        document.insert("name".into(), json!(message.action));
        document.insert("title".into(), json!(title));
        if let Some(description) = message.description {
            document.insert("summary".into(), json!(first_line(description)));
            document.insert("description".into(), json!(description));
        }
        document.insert("contentType".into(), json!("application/json"));
        document.insert(
            "payload".into(),
            json!({"$ref": format!("{}{title}", schemas::REF_PREFIX)}),
        );
        document.insert(
            "correlationId".into(),
            json!({"location": "$message.payload#/ref"}),
        );
        document.insert(
            "examples".into(),
            json!([{"name": "example", "payload": example}]),
        );
        messages.insert(message.key.clone(), Value::Object(document));
        decoders.push(Decoder {
            key: message.key.clone(),
            camelize: message.camelize,
            decode: message.decode,
        });
    }
    (messages, decoders)
}

fn describe<M: Message>(out: &mut Vec<MessageMeta>) {
    M::describe(out);
}

fn tags(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|name| json!({ "name": name })).collect())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// `base`, or `base_2`, `base_3`… when taken, so nothing is overwritten.
fn unique_key(map: &Map<String, Value>, base: String) -> String {
    if !map.contains_key(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}_{n}"))
        .find(|candidate| !map.contains_key(candidate))
        .unwrap_or(base)
}

/// A name usable as a key and inside a `$ref` JSON pointer.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `name` with every character that cannot be in an identifier as `_`.
fn identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn route_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|segment| {
            let inner = segment.strip_prefix('{')?.strip_suffix('}')?;
            Some(inner.strip_prefix('*').unwrap_or(inner))
        })
        .map(str::to_owned)
        .collect()
}

/// `bindings.ws` for credentials in the query or headers.
fn ws_bindings(credentials: &[Credential]) -> Option<Value> {
    let mut query = Map::new();
    let mut headers = Map::new();
    for credential in credentials {
        let schema = json!({"type": "string", "description": credential.description});
        match credential.location {
            CredentialLocation::Query => {
                query.insert(credential.name.clone(), schema);
            }
            CredentialLocation::Header => {
                headers.insert(credential.name.clone(), schema);
            }
            CredentialLocation::Cookie => {
                headers.insert("Cookie".to_owned(), json!({"type": "string", "description": "Cookies, including the session cookie"}));
            }
        }
    }
    if query.is_empty() && headers.is_empty() {
        return None;
    }
    let mut bindings = Map::new();
    bindings.insert("method".into(), json!("GET"));
    if !query.is_empty() {
        bindings.insert(
            "query".into(),
            json!({"type": "object", "properties": query}),
        );
    }
    if !headers.is_empty() {
        bindings.insert(
            "headers".into(),
            json!({"type": "object", "properties": headers}),
        );
    }
    bindings.insert("bindingVersion".into(), json!("0.1.0"));
    Some(Value::Object(bindings))
}

fn strip_schema_keyword(schema: &mut Value) {
    if let Value::Object(map) = schema {
        map.remove("$schema");
    }
}

/// A value matching `schema`, for a message's example.
fn example_for(schema: &Value, definitions: &Map<String, Value>, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    let Value::Object(schema) = schema else {
        // `true` accepts anything.
        return json!({});
    };
    if let Some(example) = schema.get("examples").and_then(|examples| examples.get(0)) {
        return example.clone();
    }
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(value) = schema.get("default") {
        return value.clone();
    }
    if let Some(first) = schema.get("enum").and_then(|values| values.get(0)) {
        return first.clone();
    }
    if let Some(Value::String(reference)) = schema.get("$ref") {
        let name = reference.rsplit('/').next().unwrap_or_default();
        return definitions.get(name).map_or(Value::Null, |definition| {
            example_for(definition, definitions, depth + 1)
        });
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = schema.get(key).and_then(|options| options.get(0)) {
            return example_for(first, definitions, depth + 1);
        }
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(object) = example_for(part, definitions, depth + 1) {
                merged.extend(object);
            }
        }
        return Value::Object(merged);
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        // `["string", "null"]` (an Option): the first non-null type.
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        _ if schema.contains_key("properties") => "object",
        _ => return json!({}),
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (name, property) in properties {
                    object.insert(name.clone(), example_for(property, definitions, depth + 1));
                }
            }
            Value::Object(object)
        }
        "array" => match schema.get("items") {
            Some(items @ Value::Object(_)) => json!([example_for(items, definitions, depth + 1)]),
            Some(Value::Array(tuple)) => Value::Array(
                tuple
                    .iter()
                    .map(|item| example_for(item, definitions, depth + 1))
                    .collect(),
            ),
            _ => json!([]),
        },
        "string" => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => json!("2026-01-01T00:00:00Z"),
            Some("uuid") => json!("00000000-0000-0000-0000-000000000000"),
            _ => {
                let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
                json!("x".repeat(usize::try_from(min.max(6)).unwrap_or(6)))
            }
        },
        "integer" => schema
            .get("minimum")
            .cloned()
            .filter(Value::is_number)
            .unwrap_or_else(|| json!(0)),
        "number" => schema
            .get("minimum")
            .cloned()
            .filter(Value::is_number)
            .unwrap_or_else(|| json!(0.5)),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

/// Checks every documented example: each must decode into its Rust message
/// type. Returns the failures as readable lines.
///
/// # Errors
///
/// One line per example that does not decode.
pub fn check_examples(api: &AsyncApi, router: &Router) -> Result<usize, Vec<String>> {
    let (document, decoders) = Builder::new(router.route_docs()).build(api);
    let mut failures = Vec::new();
    let mut checked = 0;
    for Decoder {
        key,
        camelize,
        decode,
    } in decoders
    {
        let Some(example) =
            document.pointer(&format!("/components/messages/{key}/examples/0/payload"))
        else {
            failures.push(format!("{key}: no example"));
            continue;
        };
        checked += 1;
        // A camelCase channel's example is what its clients send; the
        // server decamelizes it before decoding.
        let example = if camelize {
            case::convert_keys(example.clone(), case::decamelize)
        } else {
            example.clone()
        };
        if let Err(error) = decode(&example.to_string()) {
            failures.push(format!(
                "{key}: the example {example} does not decode: {error}"
            ));
        }
    }
    if failures.is_empty() {
        Ok(checked)
    } else {
        Err(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_follow_the_schema() {
        let definitions = Map::new();
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer", "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string"}},
                "maybe": {"type": ["number", "null"]},
                "kind": {"enum": ["a", "b"]},
            }
        });
        assert_eq!(
            example_for(&schema, &definitions, 0),
            json!({"name": "xxxxxx", "age": 1, "tags": ["xxxxxx"], "maybe": 0.5, "kind": "a"})
        );
    }

    #[test]
    fn route_parameters_in_order() {
        assert_eq!(route_parameters("/ws/{org}/rooms/{room}"), ["org", "room"]);
        assert!(route_parameters("/ws/system").is_empty());
    }
}
