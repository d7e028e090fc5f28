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
//! - **components**: each message once (its whole frame as the payload, a
//!   `correlationId` for `ref`, an example), schemas from schemars in the
//!   draft-07 form with every nested definition under `components.schemas`,
//!   and `securitySchemes` from the authenticators' declared credentials.
//!
//! The output is deterministic: the same code gives byte-identical JSON.
//!
//! Naming: a channel is named by `#[channel(name = …)]` (characters other
//! than letters, digits, `.` and `-` become `_`); a second route of the same
//! name gets `_2`, `_3`… in route order. An operation is
//! `<channel>_<method>`, then `<channel>_sends` and `<channel>_protocol`;
//! a key already taken gets `_2`, `_3`…, so nothing is ever overwritten. A
//! message is named by its type; a different message with the same type name
//! gets `_<channel>` appended (then `_2`…).

use std::collections::BTreeMap;

use schemars::SchemaGenerator;
use serde_json::{Map, Value, json};

use crate::auth::{Credential, CredentialLocation};
use crate::consumer::{ChannelMeta, ConsumerConfig, HandlerKind};
use crate::message::{Message, MessageMeta};
use crate::messages;
use crate::router::Router;

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

/// One routed consumer, as the document sees it.
#[derive(Debug)]
pub(crate) struct RouteDoc {
    pub(crate) path: String,
    pub(crate) channel: &'static ChannelMeta,
    pub(crate) config: ConsumerConfig,
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
    action: &'static str,
    schema: Value,
    decode: DecodeFn,
}

struct Builder {
    routes: Vec<RouteDoc>,
    generator: SchemaGenerator,
    messages: BTreeMap<String, Value>,
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
            messages: BTreeMap::new(),
            registered: BTreeMap::new(),
            schemes: BTreeMap::new(),
            channels: Map::new(),
            operations: Map::new(),
        }
    }

    /// The document, and each component message's decoder.
    fn build(mut self, api: &AsyncApi) -> (Value, Vec<(String, DecodeFn)>) {
        let routes = std::mem::take(&mut self.routes);
        for route in &routes {
            let id = unique_key(&self.channels, sanitize(route.channel.name));
            // Reserve the id before the channel is filled in.
            self.channels.insert(id.clone(), Value::Null);
            self.add_route(&id, route);
        }
        let mut schemas = self.generator.take_definitions(true);
        for schema in schemas.values_mut() {
            strip_schema_keyword(schema);
        }
        let examples: Vec<(String, Value)> = self
            .messages
            .iter()
            .filter_map(|(id, message)| {
                // A frame: the action and an example payload (no `ref`).
                let frame = message.pointer("/payload/properties")?;
                let example = json!({
                    "action": frame.pointer("/action/const")?,
                    "payload": example_for(frame.get("payload")?, &schemas, 0),
                });
                Some((id.clone(), example))
            })
            .collect();
        for (id, example) in examples {
            if let Some(Value::Object(message)) = self.messages.get_mut(&id) {
                message.insert(
                    "examples".into(),
                    json!([{"name": "example", "payload": example}]),
                );
            }
        }

        let mut info = Map::new();
        info.insert("title".into(), json!(api.title));
        info.insert("version".into(), json!(api.version));
        if let Some(description) = &api.description {
            info.insert("description".into(), json!(description));
        }
        let mut components = Map::new();
        components.insert(
            "messages".into(),
            Value::Object(self.messages.into_iter().collect()),
        );
        components.insert("schemas".into(), Value::Object(schemas));
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
        let decoders = self
            .registered
            .into_iter()
            .map(|(id, registered)| (id, registered.decode))
            .collect();
        (Value::Object(document), decoders)
    }

    fn add_route(&mut self, id: &str, route: &RouteDoc) {
        let meta = route.channel;
        let mut channel_messages = Map::new();
        let channel_ref = json!({"$ref": format!("#/channels/{id}")});
        let security = self.security(&route.credentials);

        let mut error_meta = Vec::new();
        describe::<messages::ErrorMessage>(&mut error_meta);
        for handler in meta.handlers {
            let operation_id = unique_key(&self.operations, format!("{id}_{}", handler.method));
            let outputs = self.refs(id, &mut channel_messages, &handler.outputs());
            let mut operation = Map::new();
            match handler.kind {
                HandlerKind::Ws => {
                    let inputs = self.refs(id, &mut channel_messages, &handler.inputs());
                    operation.insert("action".into(), json!("receive"));
                    operation.insert("channel".into(), channel_ref.clone());
                    operation.insert("messages".into(), Value::Array(inputs));
                    // Any frame can also be answered with an error frame.
                    let mut replies = outputs;
                    replies.extend(self.refs(id, &mut channel_messages, &error_meta));
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

        let sent = meta.sent_messages();
        if !sent.is_empty() {
            let refs = self.refs(id, &mut channel_messages, &sent);
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
        if route.config.send_authentication {
            describe::<messages::Authentication>(&mut protocol);
        }
        if route.config.send_completion {
            describe::<messages::Complete>(&mut protocol);
        }
        if route.config.send_group_complete {
            describe::<messages::GroupComplete>(&mut protocol);
        }
        if route.config.send_event_complete {
            describe::<messages::EventComplete>(&mut protocol);
        }
        let refs = self.refs(id, &mut channel_messages, &protocol);
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
        channel.insert("title".into(), json!(meta.name));
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
        self.channels.insert(id.to_owned(), Value::Object(channel));
    }

    /// Registers `metas` and returns operation references to them through
    /// the channel.
    fn refs(
        &mut self,
        channel: &str,
        channel_messages: &mut Map<String, Value>,
        metas: &[MessageMeta],
    ) -> Vec<Value> {
        let mut refs = Vec::new();
        for meta in metas {
            let id = self.register(channel, meta);
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

    /// Adds `meta` to `components.messages` once; returns its id.
    fn register(&mut self, channel: &str, meta: &MessageMeta) -> String {
        let mut payload = (meta.schema)(&mut self.generator);
        for transform in self.generator.transforms_mut() {
            transform.transform(&mut payload);
        }
        let payload = payload.to_value();
        let mut id = meta.name.to_owned();
        let mut attempt = 1;
        loop {
            match self.registered.get(&id) {
                None => break,
                Some(existing) if existing.action == meta.action && existing.schema == payload => {
                    return id;
                }
                Some(_) => {
                    attempt += 1;
                    id = if attempt == 2 {
                        format!("{}_{channel}", meta.name)
                    } else {
                        format!("{}_{channel}_{attempt}", meta.name)
                    };
                }
            }
        }
        let frame = json!({
            "type": "object",
            "properties": {
                "action": {"type": "string", "const": meta.action},
                "payload": payload,
                "ref": {"description": "Correlation id; the direct reply to a client frame echoes it"},
            },
            "required": ["action"],
        });
        let mut message = Map::new();
        message.insert("name".into(), json!(meta.action));
        message.insert("title".into(), json!(meta.name));
        if let Some(description) = meta.description {
            message.insert("summary".into(), json!(first_line(description)));
            message.insert("description".into(), json!(description));
        }
        message.insert("contentType".into(), json!("application/json"));
        message.insert("payload".into(), frame);
        message.insert(
            "correlationId".into(),
            json!({"location": "$message.payload#/ref"}),
        );
        self.messages.insert(id.clone(), Value::Object(message));
        self.registered.insert(
            id.clone(),
            RegisteredMessage {
                action: meta.action,
                schema: payload,
                decode: meta.decode,
            },
        );
        id
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
    for (id, decode) in decoders {
        let Some(example) =
            document.pointer(&format!("/components/messages/{id}/examples/0/payload"))
        else {
            failures.push(format!("{id}: no example"));
            continue;
        };
        checked += 1;
        if let Err(error) = decode(&example.to_string()) {
            failures.push(format!(
                "{id}: the example {example} does not decode: {error}"
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
