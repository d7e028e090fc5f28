//! Routing by path: WebSocket routes to consumers, HTTP routes to handlers,
//! with `{param}` segments, on `matchit` (the matcher axum uses).

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use futures_util::FutureExt as _;
use http::Extensions;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::asyncapi::{AsyncApi, RouteDoc};
use crate::auth::{Authenticator, Authenticators};
use crate::config::ServerConfig;
use crate::connection::flag::Flag;
use crate::connection::{self, ConnectionParams, Socket};
use crate::consumer::{ChannelMeta, Consumer};
use crate::context::{ConnectionId, RequestInfo};
use crate::edge::Slots;
use crate::http::{HttpHandler, HttpRequest};
use crate::layer::Layer;
use crate::metrics::ChannelMetrics;
use crate::playground::Playground;
use crate::settings::{Effective, Settings};

/// Maps request paths to consumers (WebSocket routes) and handlers (HTTP
/// routes), and holds what they share: state, authenticators, the channel
/// layer, the AsyncAPI settings and the [`ServerConfig`].
///
/// ```
/// use chanx_core::Router;
/// # use chanx_core::{channel, Message, messages::{Ping, Pong}};
/// # #[derive(Default)] struct Chat;
/// # #[channel] impl Chat { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
///
/// let app = Router::new()
///     .route::<Chat>("/ws/chat/{room}")
///     .with_state(String::from("shared configuration"));
/// assert_eq!(app.routes().count(), 1);
/// ```
///
/// # Paths
///
/// A segment written `{name}` matches one segment and is available as
/// [`Context::param`](crate::Context::param) (percent-decoded); `{*name}` at
/// the end matches the rest of the path. A trailing slash is ignored, in
/// routes and in requests: `/ws/system` and `/ws/system/` are the same
/// route. Two routes that could match the same path are a programming
/// error, reported when the router is built.
///
/// # Clones
///
/// A clone shares routes, state, authenticators, layer and configuration,
/// but not the shutdown: each clone served is stopped by its own
/// [`ShutdownHandle`] (or [`Server`](crate::Server)), so two servers built
/// from clones of one router stop independently.
#[derive(Default)]
#[must_use]
pub struct Router {
    routes: Arc<Routes>,
    state: Arc<Extensions>,
    authenticators: Arc<Extensions>,
    layer: Layer,
    asyncapi: Option<Arc<AsyncApi>>,
    playground: Option<Arc<Playground>>,
    config: Arc<ServerConfig>,
    settings: Arc<Settings>,
    ignored_actions: Arc<[String]>,
    lifecycle: Arc<Lifecycle>,
}

impl Clone for Router {
    fn clone(&self) -> Self {
        Self {
            routes: Arc::clone(&self.routes),
            state: Arc::clone(&self.state),
            authenticators: Arc::clone(&self.authenticators),
            layer: self.layer.clone(),
            asyncapi: self.asyncapi.clone(),
            playground: self.playground.clone(),
            config: Arc::clone(&self.config),
            settings: Arc::clone(&self.settings),
            ignored_actions: Arc::clone(&self.ignored_actions),
            lifecycle: Arc::default(),
        }
    }
}

#[derive(Clone, Default)]
struct Routes {
    ws: Vec<WsRoute>,
    ws_matcher: matchit::Router<usize>,
    http: Vec<HttpPath>,
    http_matcher: matchit::Router<usize>,
}

#[derive(Clone)]
struct WsRoute {
    source: String,
    runner: Arc<dyn Runner>,
}

#[derive(Clone)]
struct HttpPath {
    source: String,
    methods: Vec<(http::Method, Arc<dyn HttpHandler>)>,
}

/// The result of matching an HTTP request against the HTTP routes.
pub(crate) enum HttpMatch {
    Found(Arc<dyn HttpHandler>, Vec<(String, String)>),
    MethodNotAllowed,
    NotFound,
}

/// What every connection and HTTP request served from one router shares
/// for shutdown: the signals and the trackers to wait on.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// Cancelled first: HTTP routes and upgrades answer 503.
    pub(crate) http_closing: CancellationToken,
    /// HTTP route handlers in progress.
    pub(crate) http_requests: TaskTracker,
    /// WebSocket connections (and the standalone server's HTTP
    /// connections).
    pub(crate) connections: TaskTracker,
    /// Each live connection's stop flag, raised once HTTP routes in
    /// progress are done: sockets close. (A flag, not a token: the
    /// connection loop checks it on every wake.)
    stops: Mutex<HashMap<u64, Arc<Flag>>>,
    /// The flags have been raised: a new one starts raised.
    stopping: AtomicBool,
    next_stop: AtomicU64,
}

impl Lifecycle {
    /// A stop flag for a new connection, raised at shutdown (at once when
    /// shutdown has begun).
    pub(crate) fn stop_flag(self: &Arc<Self>) -> StopFlag {
        let flag = Arc::new(Flag::default());
        let id = self.next_stop.fetch_add(1, Ordering::Relaxed);
        self.stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&flag));
        if self.stopping.load(Ordering::Acquire) {
            flag.raise();
        }
        StopFlag {
            flag,
            id,
            lifecycle: Arc::clone(self),
        }
    }

    /// Raises every connection's stop flag.
    fn stop_all(&self) {
        self.stopping.store(true, Ordering::Release);
        for flag in self
            .stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            flag.raise();
        }
    }
}

/// A connection's stop flag; unregistered when dropped.
#[derive(Debug)]
pub(crate) struct StopFlag {
    flag: Arc<Flag>,
    id: u64,
    lifecycle: Arc<Lifecycle>,
}

impl std::ops::Deref for StopFlag {
    type Target = Flag;

    fn deref(&self) -> &Flag {
        &self.flag
    }
}

impl Drop for StopFlag {
    fn drop(&mut self) {
        self.lifecycle
            .stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Shuts down what a [`Router`] serves, wherever it is served (the
/// standalone [`Server`](crate::Server), axum, any tower stack): HTTP routes
/// in progress finish and new ones get 503; then every WebSocket connection
/// handles the events it already has, is closed with 1001, and is waited
/// for, within [`ServerConfig::shutdown_timeout`] (plus a few seconds for
/// the close frames to go out).
///
/// Take it before the router is served, and call it when the host server
/// shuts down (under axum, in `with_graceful_shutdown`: see
/// `Router::into_axum`):
///
/// ```no_run
/// # use chanx_core::{Router, channel, messages::{Ping, Pong}};
/// # #[derive(Default)] struct System;
/// # #[channel] impl System { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
/// # async fn run(listener: tokio::net::TcpListener) -> std::io::Result<()> {
/// let router = Router::new().route::<System>("/ws/system");
/// let shutdown = router.shutdown_handle();
/// let service = router.into_service();
/// let mut stop = std::pin::pin!(chanx_core::shutdown_signal()); // Ctrl-C or SIGTERM
/// loop {
///     tokio::select! {
///         accepted = listener.accept() => {
///             let (stream, peer) = accepted?;
///             tokio::spawn(service.serve_connection(stream, Some(peer)));
///         }
///         () = &mut stop => break,
///     }
/// }
/// shutdown.shutdown().await; // open clients get 1001
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    lifecycle: Arc<Lifecycle>,
    grace: Duration,
    /// The router's config, for a server that serves it through another
    /// host ([`Server::serve_axum`](crate::Server::serve_axum)).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    config: Arc<ServerConfig>,
}

impl ShutdownHandle {
    /// Begins the shutdown and waits until it is done (or the bound has
    /// passed). Calling it again waits again; the shutdown happens once.
    pub async fn shutdown(&self) {
        let lifecycle = &self.lifecycle;
        lifecycle.http_closing.cancel();
        lifecycle.http_requests.close();
        if tokio::time::timeout(self.grace, lifecycle.http_requests.wait())
            .await
            .is_err()
        {
            tracing::warn!("HTTP routes still running after the shutdown timeout");
        }
        lifecycle.stop_all();
        lifecycle.connections.close();
        let drain = self.grace + connection::WRITER_DRAIN_TIMEOUT;
        if tokio::time::timeout(drain, lifecycle.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = lifecycle.connections.len(),
                "connections still open after the shutdown timeout"
            );
        }
    }

    /// Whether the shutdown has begun.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.lifecycle.http_closing.is_cancelled()
    }

    /// An empty router with this handle's config and lifecycle: what a
    /// server hosting the router elsewhere counts and shuts down with.
    #[cfg(feature = "axum")]
    pub(crate) fn host_router(&self) -> Router {
        Router {
            config: Arc::clone(&self.config),
            lifecycle: Arc::clone(&self.lifecycle),
            ..Router::default()
        }
    }
}

/// A route that cannot be added.
fn route_error(path: &str, error: &matchit::InsertError) -> String {
    match error {
        matchit::InsertError::Conflict { with } => {
            format!("route {path:?} conflicts with route {with:?}: both could match the same path")
        }
        other => format!("invalid route {path:?}: {other}"),
    }
}

/// A route as given, normalised: it starts with `/`, and a trailing slash
/// (except the root's) is dropped.
fn normalise(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "invalid route {path:?}: a route must start with '/'"
        ));
    }
    let trimmed = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    if trimmed.contains("//") {
        return Err(format!(
            "invalid route {path:?}: a route cannot have an empty segment"
        ));
    }
    let names: Vec<&str> = route_params(trimmed).collect();
    if let Some((_, name)) = names
        .iter()
        .enumerate()
        .find(|(index, name)| names[..*index].contains(name))
    {
        return Err(format!(
            "invalid route {path:?}: parameter {{{name}}} appears twice"
        ));
    }
    Ok(trimmed.to_owned())
}

/// The request path to match: one trailing slash (except the root's)
/// dropped.
fn request_path(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

/// Route parameters from a match, percent-decoded; `None` when a value is
/// not UTF-8 once decoded.
fn decoded(params: &matchit::Params<'_, '_>) -> Option<Vec<(String, String)>> {
    params
        .iter()
        .map(|(name, value)| {
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .ok()?;
            Some((name.to_owned(), value.into_owned()))
        })
        .collect()
}

impl Router {
    /// An empty router with the default [`ServerConfig`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves consumer `C` at `path` (see [Paths](Router#paths)).
    ///
    /// # Panics
    ///
    /// When `path` is not a valid route, or conflicts with a WebSocket route
    /// already added (the message names both). These are programming
    /// errors, reported when the router is built.
    pub fn route<C: Consumer>(self, path: &str) -> Self {
        self.add_ws(
            path,
            Arc::new(ConsumerRunner::<C> {
                consumer: PhantomData,
                metrics: OnceLock::new(),
            }),
        )
    }

    fn add_ws(mut self, path: &str, runner: Arc<dyn Runner>) -> Self {
        let source = normalise(path).unwrap_or_else(|problem| panic!("{problem}"));
        let routes = Arc::make_mut(&mut self.routes);
        if let Err(error) = routes.ws_matcher.insert(source.clone(), routes.ws.len()) {
            panic!("{}", route_error(&source, &error));
        }
        routes.ws.push(WsRoute { source, runner });
        self
    }

    /// Serves `handler` for `method` requests to `path` (see
    /// [`crate::http`] and [Paths](Router#paths)).
    ///
    /// # Panics
    ///
    /// When `path` is not a valid route, the same method and path are
    /// already routed, or `path` conflicts with another HTTP path.
    pub fn http(mut self, method: http::Method, path: &str, handler: impl HttpHandler) -> Self {
        self = self.add_http(method, path, Arc::new(handler));
        self
    }

    fn add_http(mut self, method: http::Method, path: &str, handler: Arc<dyn HttpHandler>) -> Self {
        let source = normalise(path).unwrap_or_else(|problem| panic!("{problem}"));
        let routes = Arc::make_mut(&mut self.routes);
        match routes.http.iter_mut().find(|route| route.source == source) {
            Some(existing) => {
                if existing.methods.iter().any(|(known, _)| *known == method) {
                    panic!("HTTP route {method} {source:?} is already registered");
                }
                existing.methods.push((method, handler));
            }
            None => {
                if let Err(error) = routes
                    .http_matcher
                    .insert(source.clone(), routes.http.len())
                {
                    panic!("{}", route_error(&source, &error));
                }
                routes.http.push(HttpPath {
                    source,
                    methods: vec![(method, handler)],
                });
            }
        }
        self
    }

    /// Adds every route of `other` under `prefix` (as in `nest("/api",
    /// other)`: `other`'s `/rooms` becomes `/api/rooms`), with its state
    /// and authenticators. `self`'s channel layer, AsyncAPI settings and
    /// configuration apply to all routes.
    ///
    /// # Panics
    ///
    /// When `prefix` is not `/` followed by segments, or a nested route
    /// conflicts with one already added.
    pub fn nest(self, prefix: &str, other: Router) -> Self {
        let prefix = normalise(prefix).unwrap_or_else(|problem| panic!("{problem}"));
        let prefix = if prefix == "/" { String::new() } else { prefix };
        self.absorb(&prefix, other)
    }

    /// Adds every route of `other`, with its state and authenticators (as
    /// Chanx's `include()`). `self`'s channel layer, AsyncAPI settings and
    /// configuration apply to all routes.
    ///
    /// # Panics
    ///
    /// When a route of `other` conflicts with one already added.
    pub fn merge(self, other: Router) -> Self {
        self.absorb("", other)
    }

    fn absorb(mut self, prefix: &str, other: Router) -> Self {
        let join = |path: &str| {
            if path == "/" && !prefix.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}{path}")
            }
        };
        for route in &other.routes.ws {
            self = self.add_ws(&join(&route.source), Arc::clone(&route.runner));
        }
        for route in &other.routes.http {
            for (method, handler) in &route.methods {
                self = self.add_http(method.clone(), &join(&route.source), Arc::clone(handler));
            }
        }
        Arc::make_mut(&mut self.state).extend((*other.state).clone());
        Arc::make_mut(&mut self.authenticators).extend((*other.authenticators).clone());
        self
    }

    pub(crate) fn find_http(&self, method: &http::Method, path: &str) -> HttpMatch {
        let Ok(found) = self.routes.http_matcher.at(request_path(path)) else {
            return HttpMatch::NotFound;
        };
        let Some(route) = self.routes.http.get(*found.value) else {
            return HttpMatch::NotFound;
        };
        let Some(params) = decoded(&found.params) else {
            return HttpMatch::NotFound;
        };
        match route.methods.iter().find(|(known, _)| known == method) {
            Some((_, handler)) => HttpMatch::Found(Arc::clone(handler), params),
            None => HttpMatch::MethodNotAllowed,
        }
    }

    pub(crate) fn http_request(
        &self,
        parts: http::request::Parts,
        body: bytes::Bytes,
        params: Vec<(String, String)>,
        peer: Option<SocketAddr>,
    ) -> HttpRequest {
        HttpRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            params,
            peer,
            layer: self.layer.clone(),
            state: Arc::clone(&self.state),
        }
    }

    /// Makes `state` available to every connection through
    /// [`Context::state`](crate::Context::state). One value per type.
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        Arc::make_mut(&mut self.state).insert(state);
        self
    }

    /// Replaces the connection settings (limits, budgets, timeouts, origin
    /// policy) of everything this router serves.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// The connection settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Sets the app-wide defaults of Chanx's settings (completion frames,
    /// the authentication frame, camelCase, frame logging) for every
    /// channel that does not set its own (see [`Settings`]).
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.ignored_actions = settings.log_ignored_actions.iter().cloned().collect();
        self.settings = Arc::new(settings);
        self
    }

    /// The app-wide defaults of Chanx's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn shared_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    pub(crate) fn lifecycle(&self) -> &Arc<Lifecycle> {
        &self.lifecycle
    }

    /// A handle that shuts down what this router serves, wherever it is
    /// served (see [`ShutdownHandle`]); its bound is the
    /// [`shutdown_timeout`](ServerConfig::shutdown_timeout) configured
    /// now, so take it after [`Router::with_config`].
    #[must_use]
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            lifecycle: Arc::clone(&self.lifecycle),
            grace: self.config.shutdown_timeout,
            config: Arc::clone(&self.config),
        }
    }

    /// Serves the AsyncAPI document of this router at `GET /asyncapi.json`
    /// (see [`crate::asyncapi`]). Only `servers` may differ from what
    /// [`AsyncApi::to_json`] writes: without configured servers, the served
    /// document names the request's host.
    pub fn with_asyncapi(mut self, api: AsyncApi) -> Self {
        self.asyncapi = Some(Arc::new(api));
        self
    }

    /// Serves the WebSocket playground at `GET /playground` and the docs
    /// page at `GET /asyncapi`, both built in the browser from this
    /// router's AsyncAPI document (so call [`Router::with_asyncapi`] too).
    /// Off unless asked. See [`crate::playground`].
    ///
    /// ```
    /// use chanx_core::Router;
    /// use chanx_core::asyncapi::AsyncApi;
    ///
    /// let app = Router::new()
    ///     .with_asyncapi(AsyncApi::new("Chat", "1.0.0"))
    ///     .with_playground();
    /// assert_eq!(app.playground_path(), Some("/playground"));
    /// ```
    pub fn with_playground(self) -> Self {
        self.with_playground_at("/playground")
    }

    /// Installs the [`metrics`](crate::metrics) Prometheus recorder
    /// (`metrics-exporter-prometheus`, once per process) and serves it at
    /// `GET /metrics` in Prometheus's text format, on the app's own port.
    /// The page says how busy the server is: expose it to your monitoring,
    /// not to the internet (serve it from a router behind a private
    /// listener, or filter the path at the proxy).
    ///
    /// ```
    /// # fn main() -> Result<(), chanx_core::metrics::PrometheusError> {
    /// let app = chanx_core::Router::new().with_prometheus()?;
    /// # let _ = app;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`PrometheusError::RecorderTaken`](crate::metrics::PrometheusError::RecorderTaken)
    /// when another recorder is installed in this process.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn with_prometheus(self) -> Result<Self, crate::metrics::PrometheusError> {
        let handle = crate::metrics::prometheus::handle()?;
        Ok(self.http(http::Method::GET, "/metrics", move |_request| {
            let handle = handle.clone();
            async move {
                // Histograms are drained into their buckets on a scrape.
                handle.run_upkeep();
                crate::http::HttpResponse::bytes(
                    http::StatusCode::OK,
                    http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    handle.render(),
                )
            }
        }))
    }

    /// [`Router::with_playground`] at `path` (its assets under
    /// `path/…`); the docs page stays at `/asyncapi`.
    ///
    /// # Panics
    ///
    /// When `path` is not an absolute path of letters, digits, `/`, `_`,
    /// `-` and `.` that does not end in `/`
    /// ([`InvalidPlaygroundPath`](crate::playground::InvalidPlaygroundPath)):
    /// a mistake in the code, reported when the router is built, as a
    /// conflicting route is.
    pub fn with_playground_at(mut self, path: &str) -> Self {
        match Playground::new(path, crate::edge::ASYNCAPI_PATH) {
            Ok(playground) => self.playground = Some(Arc::new(playground)),
            Err(error) => panic!("{error}"),
        }
        self
    }

    /// Where the playground is served, if it is.
    #[must_use]
    pub fn playground_path(&self) -> Option<&str> {
        self.playground.as_deref().map(Playground::path)
    }

    pub(crate) fn playground(&self) -> Option<&Playground> {
        self.playground.as_deref()
    }

    /// The AsyncAPI settings given to [`Router::with_asyncapi`].
    #[must_use]
    pub fn asyncapi(&self) -> Option<&AsyncApi> {
        self.asyncapi.as_deref()
    }

    /// The AsyncAPI document as pretty JSON, if [`Router::with_asyncapi`] was
    /// called: what the emit command writes.
    #[must_use]
    pub fn asyncapi_json(&self) -> Option<String> {
        Some(self.asyncapi.as_deref()?.to_json(self))
    }

    pub(crate) fn route_docs(&self) -> Vec<RouteDoc> {
        self.routes
            .ws
            .iter()
            .map(|route| route.runner.doc(route.source.clone(), self))
            .collect()
    }

    /// Registers the authenticator instance used by every consumer that names
    /// type `A` in `#[channel(authenticator = A)]`. One instance per type.
    pub fn with_authenticator<A: Authenticator>(mut self, authenticator: A) -> Self {
        Arc::make_mut(&mut self.authenticators).insert(Arc::new(authenticator));
        self
    }

    /// The registered authenticator of type `A`.
    #[must_use]
    pub fn authenticator<A: Authenticator>(&self) -> Option<&A> {
        self.authenticators
            .get::<Arc<A>>()
            .map(|authenticator| &**authenticator)
    }

    /// Checks every route: each consumer's authenticator is registered,
    /// each group template names parameters its route has, and a
    /// standalone topic route has every parameter of the topic's pattern.
    ///
    /// # Errors
    ///
    /// A [`ValidationError`] listing every problem found.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut problems = Vec::new();
        for route in &self.routes.ws {
            problems.extend(route.runner.missing_authenticators(self));
            let channel = route.runner.channel();
            if let Some(topic) = channel.default_topic {
                for parameter in topic.parameters {
                    if !route_params(&route.source).any(|param| param == *parameter) {
                        problems.push(Problem::UnknownTopicParameter {
                            topic: topic.type_name,
                            pattern: topic.pattern,
                            route: route.source.clone(),
                            parameter: (*parameter).to_owned(),
                        });
                    }
                }
            }
            for template in channel.groups.iter().chain(channel.presence.iter()) {
                for placeholder in crate::group::placeholders(template) {
                    if !route_params(&route.source).any(|param| param == placeholder) {
                        problems.push(Problem::UnknownGroupParameter {
                            consumer: channel.type_name,
                            template,
                            route: route.source.clone(),
                            parameter: placeholder.to_owned(),
                        });
                    }
                }
            }
        }
        // Group templates: their grammar, and no two that could spell the
        // same group (a value of one where the other has literal text).
        let mut templates: Vec<(&'static str, &'static str)> = Vec::new();
        for route in &self.routes.ws {
            let channel = route.runner.channel();
            for template in channel.groups {
                if let Err(reason) = crate::group::check_template(template) {
                    problems.push(Problem::InvalidGroupTemplate {
                        consumer: channel.type_name,
                        reason,
                    });
                }
                templates.push((channel.type_name, template));
            }
        }
        for (index, (consumer, template)) in templates.iter().enumerate() {
            for (other_consumer, other) in &templates[index + 1..] {
                if crate::group::ambiguous(template, other) {
                    problems.push(Problem::AmbiguousGroups {
                        first: ((*consumer), (*template)),
                        second: ((*other_consumer), (*other)),
                    });
                }
            }
        }
        if self.playground.is_some() && self.asyncapi.is_none() {
            problems.push(Problem::PlaygroundWithoutAsyncApi);
        }
        if let Some(playground) = &self.playground {
            for route in &self.routes.http {
                if playground.owns(&route.source) {
                    problems.push(Problem::PlaygroundPathTaken {
                        route: route.source.clone(),
                    });
                }
            }
            for route in &self.routes.ws {
                if playground.owns(&route.source) {
                    problems.push(Problem::PlaygroundPathTaken {
                        route: route.source.clone(),
                    });
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ValidationError { problems })
        }
    }

    /// Uses `layer` for groups, broadcasts and events (the default is a new
    /// in-memory layer).
    pub fn with_layer(mut self, layer: Layer) -> Self {
        self.layer = layer;
        self
    }

    /// The channel layer, to send broadcasts and events from outside a
    /// connection (an HTTP handler, a background task).
    #[must_use]
    pub fn layer(&self) -> &Layer {
        &self.layer
    }

    /// Every WebSocket route: its path pattern and its consumer's metadata.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &'static ChannelMeta)> + '_ {
        self.routes
            .ws
            .iter()
            .map(|route| (route.source.as_str(), route.runner.channel()))
    }

    /// Every HTTP route: its method and path pattern.
    pub fn http_routes(&self) -> impl Iterator<Item = (&http::Method, &str)> + '_ {
        self.routes.http.iter().flat_map(|route| {
            route
                .methods
                .iter()
                .map(move |(method, _)| (method, route.source.as_str()))
        })
    }

    /// Whether a WebSocket route matches `path`.
    #[must_use]
    pub fn has_route(&self, path: &str) -> bool {
        self.routes.ws_matcher.at(request_path(path)).is_ok()
    }

    fn find(&self, path: &str) -> Option<(&WsRoute, Vec<(String, String)>)> {
        let found = self.routes.ws_matcher.at(request_path(path)).ok()?;
        let route = self.routes.ws.get(*found.value)?;
        Some((route, decoded(&found.params)?))
    }

    /// Prepares a connection for an upgrade request: finds the route and
    /// captures the request data. Runs nothing yet.
    pub(crate) fn connection(
        &self,
        uri: &http::Uri,
        headers: http::HeaderMap,
        peer: Option<SocketAddr>,
        config: &Arc<ServerConfig>,
    ) -> Result<PendingConnection, NoRoute> {
        let path = uri.path();
        let (route, params) = self.find(path).ok_or_else(|| NoRoute {
            path: path.to_owned(),
        })?;
        Ok(PendingConnection {
            runner: Arc::clone(&route.runner),
            params: ConnectionParams {
                id: ConnectionId::next(),
                request: RequestInfo {
                    path: path.to_owned(),
                    params,
                    query: uri.query().map(str::to_owned),
                    headers,
                    peer,
                },
                state: Arc::clone(&self.state),
                authenticators: Arc::clone(&self.authenticators),
                layer: self.layer.clone(),
                config: Arc::clone(config),
                settings: Arc::clone(&self.settings),
                ignored_actions: Arc::clone(&self.ignored_actions),
                shutdown: self.lifecycle.stop_flag(),
            },
        })
    }
}

/// The parameter names of a route pattern, in order.
fn route_params(source: &str) -> impl Iterator<Item = &str> {
    source.split('/').filter_map(|segment| {
        let inner = segment.strip_prefix('{')?.strip_suffix('}')?;
        Some(inner.strip_prefix('*').unwrap_or(inner))
    })
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field(
                "routes",
                &self.routes().map(|(path, _)| path).collect::<Vec<_>>(),
            )
            .field(
                "http_routes",
                &self
                    .http_routes()
                    .map(|(method, path)| format!("{method} {path}"))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// No route matches the request path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no WebSocket route matches {path:?}")]
pub struct NoRoute {
    path: String,
}

impl NoRoute {
    /// The path that matched nothing.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// What [`Router::validate`] found wrong: every problem, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the router is not ready to serve: {}", describe(.problems))]
pub struct ValidationError {
    problems: Vec<Problem>,
}

fn describe(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationError {
    /// Every problem found.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

/// One problem found by [`Router::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A consumer names an authenticator that is not registered.
    #[error(
        "consumer `{consumer}` names authenticator `{authenticator}`, which is not registered: call Router::with_authenticator"
    )]
    MissingAuthenticator {
        /// The consumer's type name.
        consumer: &'static str,
        /// The authenticator's type name.
        authenticator: &'static str,
    },
    /// A group template breaks the template grammar (see
    /// [`layer`](crate::layer#group-names)).
    #[error("consumer `{consumer}`: {reason}")]
    InvalidGroupTemplate {
        /// The consumer's type name.
        consumer: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Two group templates could name the same group: a value of one would
    /// stand where the other has literal text (`chat_{room}` with room
    /// `admin` against `chat_admin`).
    #[error(
        "group templates {:?} (consumer `{}`) and {:?} (consumer `{}`) could name the same group; make their literal parts differ",
        .first.1, .first.0, .second.1, .second.0
    )]
    AmbiguousGroups {
        /// One consumer and its template.
        first: (&'static str, &'static str),
        /// The other.
        second: (&'static str, &'static str),
    },
    /// The playground is on, but there is no AsyncAPI document for it to
    /// read.
    #[error("the playground reads the AsyncAPI document: call Router::with_asyncapi too")]
    PlaygroundWithoutAsyncApi,
    /// A route has the path of a playground page or asset, which would
    /// hide it.
    #[error(
        "route {route:?} is a path of the playground or the docs page; move one of them (Router::with_playground_at)"
    )]
    PlaygroundPathTaken {
        /// The route.
        route: String,
    },
    /// A standalone topic route lacks a parameter of the topic's pattern.
    #[error(
        "route {route:?} serves topic `{topic}` ({pattern:?}) on its own, but has no {{{parameter}}} parameter"
    )]
    UnknownTopicParameter {
        /// The topic's type name.
        topic: &'static str,
        /// The topic's pattern.
        pattern: &'static str,
        /// The route.
        route: String,
        /// The missing parameter.
        parameter: String,
    },
    /// A group template names a parameter its route does not have.
    #[error(
        "consumer `{consumer}` joins group {template:?}, but route {route:?} has no {{{parameter}}} parameter"
    )]
    UnknownGroupParameter {
        /// The consumer's type name.
        consumer: &'static str,
        /// The group template.
        template: &'static str,
        /// The route.
        route: String,
        /// The missing parameter.
        parameter: String,
    },
}

/// A route parameter that is missing or does not parse as the type asked
/// for. Converts into a [`Reject`](crate::Reject) (close 1008 with the
/// reason) in a connect hook, and into an HTTP 400 in an HTTP route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// The route has no such parameter.
    #[error("the route has no parameter {name:?}")]
    Missing {
        /// The parameter's name.
        name: String,
    },
    /// The value does not parse.
    #[error("path parameter {name} = {value:?} is not a valid {expected}: {reason}")]
    Invalid {
        /// The parameter's name.
        name: String,
        /// The value (at most 64 characters of it).
        value: String,
        /// The type asked for.
        expected: &'static str,
        /// Why it does not parse.
        reason: String,
    },
}

/// Parses route parameter `name` (from `params`) as `T`.
pub(crate) fn parse_param<T: FromStr>(
    params: &[(String, String)],
    name: &str,
) -> Result<T, ParamError>
where
    T::Err: fmt::Display,
{
    let value = params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| ParamError::Missing {
            name: name.to_owned(),
        })?;
    value.parse().map_err(|error: T::Err| ParamError::Invalid {
        name: name.to_owned(),
        value: value.chars().take(64).collect(),
        expected: short_type_name::<T>(),
        reason: error.to_string(),
    })
}

fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

/// A routed connection waiting for its socket.
pub(crate) struct PendingConnection {
    runner: Arc<dyn Runner>,
    params: ConnectionParams,
}

impl PendingConnection {
    /// Spawns the connection on `tracker`: one task, whose future is the
    /// connection loop itself (no box, no second task), holding `slots`
    /// until it ends.
    pub(crate) fn spawn(self, socket: Socket, slots: Option<Slots>, tracker: &TaskTracker) {
        let peer = self.params.request.peer;
        let span = tracing::info_span!(
            "ws",
            id = self.params.id.get(),
            path = %self.params.request.path,
            channel = self.runner.channel().name,
            peer = peer.map(tracing::field::display),
        );
        self.runner.spawn(socket, self.params, span, slots, tracker);
    }
}

trait Runner: Send + Sync + 'static {
    /// Spawns the connection on `tracker`, in `span`, holding `slots` (its
    /// places in the caps) until it ends.
    fn spawn(
        &self,
        socket: Socket,
        params: ConnectionParams,
        span: tracing::Span,
        slots: Option<Slots>,
        tracker: &TaskTracker,
    );
    fn channel(&self) -> &'static ChannelMeta;
    fn missing_authenticators(&self, router: &Router) -> Vec<Problem>;
    fn doc(&self, path: String, router: &Router) -> RouteDoc;
}

struct ConsumerRunner<C> {
    consumer: PhantomData<fn() -> C>,
    /// The channel's metric handles, registered with its first connection.
    metrics: OnceLock<Arc<ChannelMetrics>>,
}

impl<C: Consumer> Runner for ConsumerRunner<C> {
    fn spawn(
        &self,
        socket: Socket,
        params: ConnectionParams,
        span: tracing::Span,
        slots: Option<Slots>,
        tracker: &TaskTracker,
    ) {
        let metrics = Arc::clone(
            self.metrics
                .get_or_init(|| Arc::new(ChannelMetrics::new(C::CHANNEL))),
        );
        span.in_scope(|| tracing::debug!("connected"));
        // A combinator rather than an async block: a block would keep the
        // loop's arguments (captured) beside the loop's future (which holds
        // them too), about 500 bytes per connection.
        let connection = connection::run::<C>(socket, params, metrics).map(move |end| {
            drop(slots);
            tracing::debug!(?end, "disconnected");
        });
        tracker.spawn(connection.instrument(span));
    }

    fn channel(&self) -> &'static ChannelMeta {
        C::CHANNEL
    }

    fn missing_authenticators(&self, router: &Router) -> Vec<Problem> {
        <C::Authenticators as Authenticators>::missing(&router.authenticators)
            .into_iter()
            .map(|authenticator| Problem::MissingAuthenticator {
                consumer: C::CHANNEL.type_name,
                authenticator,
            })
            .collect()
    }

    fn doc(&self, path: String, router: &Router) -> RouteDoc {
        let effective = Effective::of(&C::CONFIG, &router.settings, &router.ignored_actions);
        RouteDoc {
            path,
            channel: C::CHANNEL,
            send_completion: effective.send_completion,
            send_authentication: effective.send_authentication,
            camelize: effective.camelize(),
            credentials: <C::Authenticators as Authenticators>::credentials(&router.authenticators),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(routes: &[&str]) -> matchit::Router<usize> {
        let mut matcher = matchit::Router::new();
        for (index, route) in routes.iter().enumerate() {
            matcher.insert(normalise(route).unwrap(), index).unwrap();
        }
        matcher
    }

    fn params_at(matcher: &matchit::Router<usize>, path: &str) -> Option<Vec<(String, String)>> {
        let found = matcher.at(request_path(path)).ok()?;
        decoded(&found.params)
    }

    #[test]
    fn matches_literals_and_params() {
        let matcher = matcher(&["/ws/chat/{room}"]);
        assert_eq!(
            params_at(&matcher, "/ws/chat/lobby"),
            Some(vec![("room".to_owned(), "lobby".to_owned())])
        );
        assert_eq!(
            params_at(&matcher, "/ws/chat/caf%C3%A9/"),
            Some(vec![("room".to_owned(), "café".to_owned())])
        );
        assert_eq!(params_at(&matcher, "/ws/chat"), None);
        assert_eq!(params_at(&matcher, "/ws/chat/"), None);
        assert_eq!(params_at(&matcher, "/ws/chat/a/b"), None);
        assert_eq!(params_at(&matcher, "/ws/other/a"), None);
        assert_eq!(params_at(&matcher, "/ws/chat//"), None);
        assert_eq!(params_at(&matcher, "/ws/chat/%FF"), None);
    }

    #[test]
    fn root_and_trailing_slash() {
        let root = matcher(&["/"]);
        assert_eq!(params_at(&root, "/"), Some(vec![]));
        assert_eq!(params_at(&root, "/x"), None);
        let system = matcher(&["/ws/system/"]);
        assert_eq!(params_at(&system, "/ws/system"), Some(vec![]));
        assert_eq!(params_at(&system, "/ws/system/"), Some(vec![]));
        assert_eq!(params_at(&system, "/ws/system//"), None);
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(normalise("ws").is_err());
        assert!(normalise("/a//b").is_err());
        assert!(normalise("/{a}/{a}").is_err());
        assert!(normalise("/{a}/{*a}").is_err());
        for bad in ["/a/{", "/a/{}"] {
            let mut matcher = matchit::Router::new();
            assert!(
                matcher.insert(normalise(bad).unwrap(), 0).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn typed_params() {
        let params = vec![
            ("id".to_owned(), "42".to_owned()),
            ("name".to_owned(), "x".to_owned()),
        ];
        assert_eq!(parse_param::<u64>(&params, "id"), Ok(42));
        assert_eq!(
            parse_param::<u64>(&params, "name"),
            Err(ParamError::Invalid {
                name: "name".into(),
                value: "x".into(),
                expected: "u64",
                reason: "invalid digit found in string".into(),
            })
        );
        assert_eq!(
            parse_param::<u64>(&params, "nope"),
            Err(ParamError::Missing {
                name: "nope".into()
            })
        );
    }

    #[test]
    fn route_params_are_listed() {
        assert_eq!(
            route_params("/ws/{room}/x/{*rest}").collect::<Vec<_>>(),
            vec!["room", "rest"]
        );
    }
}
