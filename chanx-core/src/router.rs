//! Routing of upgrade requests to consumers by path, with `{param}` segments.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::Extensions;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::asyncapi::{AsyncApi, RouteDoc};
use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::connection::{self, ConnectionParams, Socket};
use crate::consumer::{ChannelMeta, Consumer};
use crate::context::{ConnectionId, RequestInfo};
use crate::http::{HttpHandler, HttpRequest};
use crate::layer::Layer;

/// Maps request paths to consumers.
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
#[derive(Clone, Default)]
#[must_use]
pub struct Router {
    routes: Arc<Vec<Route>>,
    http_routes: Arc<Vec<HttpRoute>>,
    state: Arc<Extensions>,
    authenticators: Arc<Extensions>,
    layer: Layer,
    asyncapi: Option<Arc<AsyncApi>>,
}

#[derive(Clone)]
struct Route {
    pattern: PathPattern,
    runner: Arc<dyn Runner>,
}

#[derive(Clone)]
struct HttpRoute {
    method: http::Method,
    pattern: PathPattern,
    handler: Arc<dyn HttpHandler>,
}

/// The result of matching an HTTP request against the HTTP routes.
pub(crate) enum HttpMatch {
    Found(Arc<dyn HttpHandler>, Vec<(String, String)>),
    MethodNotAllowed,
    NotFound,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves consumer `C` at `path`. A segment written `{name}` matches any
    /// one segment and is available as [`Context::param`](crate::Context::param).
    /// A trailing slash is ignored when matching.
    ///
    /// # Panics
    ///
    /// When `path` does not start with `/`, has an empty or unclosed `{…}`
    /// segment, repeats a parameter name, or is already routed. These are
    /// programming errors, reported when the router is built.
    pub fn route<C: Consumer>(mut self, path: &str) -> Self {
        let pattern = match PathPattern::parse(path) {
            Ok(pattern) => pattern,
            Err(error) => panic!("invalid route {path:?}: {error}"),
        };
        if self
            .routes
            .iter()
            .any(|route| route.pattern.source == pattern.source)
        {
            panic!("route {path:?} is already registered");
        }
        Arc::make_mut(&mut self.routes).push(Route {
            pattern,
            runner: Arc::new(ConsumerRunner::<C>(PhantomData)),
        });
        self
    }

    /// Serves `handler` for `method` requests to `path` (with `{param}`
    /// segments, as for WebSocket routes). See [`crate::http`].
    ///
    /// # Panics
    ///
    /// When `path` is not a valid route, or the same method and path are
    /// already routed.
    pub fn http(mut self, method: http::Method, path: &str, handler: impl HttpHandler) -> Self {
        let pattern = match PathPattern::parse(path) {
            Ok(pattern) => pattern,
            Err(error) => panic!("invalid route {path:?}: {error}"),
        };
        if self
            .http_routes
            .iter()
            .any(|route| route.method == method && route.pattern.source == pattern.source)
        {
            panic!("HTTP route {method} {path:?} is already registered");
        }
        Arc::make_mut(&mut self.http_routes).push(HttpRoute {
            method,
            pattern,
            handler: Arc::new(handler),
        });
        self
    }

    pub(crate) fn find_http(&self, method: &http::Method, path: &str) -> HttpMatch {
        let mut path_matched = false;
        for route in self.http_routes.iter() {
            if let Some(params) = route.pattern.matches(path) {
                if route.method == method {
                    return HttpMatch::Found(Arc::clone(&route.handler), params);
                }
                path_matched = true;
            }
        }
        if path_matched {
            HttpMatch::MethodNotAllowed
        } else {
            HttpMatch::NotFound
        }
    }

    pub(crate) fn http_request(
        &self,
        parts: http::request::Parts,
        body: bytes::Bytes,
        params: Vec<(String, String)>,
    ) -> HttpRequest {
        HttpRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            params,
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

    /// Serves the AsyncAPI document of this router at `GET /asyncapi.json`
    /// (see [`crate::asyncapi`]). Only `servers` may differ from what
    /// [`AsyncApi::to_json`] writes: without configured servers, the served
    /// document names the request's host.
    pub fn with_asyncapi(mut self, api: AsyncApi) -> Self {
        self.asyncapi = Some(Arc::new(api));
        self
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
            .iter()
            .map(|route| route.runner.doc(route.pattern.source.clone(), self))
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

    /// Checks that every routed consumer's authenticator is registered and
    /// that its group templates name parameters of its route.
    ///
    /// # Errors
    ///
    /// A message naming the consumer and the missing authenticator type.
    pub fn validate(&self) -> Result<(), String> {
        for route in self.routes.iter() {
            route.runner.validate(self)?;
            let params: Vec<&str> = route
                .pattern
                .segments
                .iter()
                .filter_map(|segment| match segment {
                    Segment::Param(name) => Some(name.as_str()),
                    Segment::Literal(_) => None,
                })
                .collect();
            for template in route.runner.channel().groups {
                for placeholder in template
                    .split('{')
                    .skip(1)
                    .filter_map(|part| part.split_once('}'))
                {
                    if !params.contains(&placeholder.0) {
                        return Err(format!(
                            "consumer `{}` joins group {template:?}, but route {:?} has no {{{}}} parameter",
                            route.runner.channel().type_name,
                            route.pattern.source,
                            placeholder.0
                        ));
                    }
                }
            }
        }
        Ok(())
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

    /// Every route: its path pattern and its consumer's metadata.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &'static ChannelMeta)> + '_ {
        self.routes
            .iter()
            .map(|route| (route.pattern.source.as_str(), route.runner.channel()))
    }

    /// Whether a route matches `path`.
    #[must_use]
    pub fn has_route(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    fn find(&self, path: &str) -> Option<(&Route, Vec<(String, String)>)> {
        self.routes
            .iter()
            .find_map(|route| route.pattern.matches(path).map(|params| (route, params)))
    }

    /// Serves one WebSocket connection over `io`, a byte stream on which the
    /// HTTP upgrade has already completed, as if `request` had been the
    /// upgrade request. The returned future runs the same connection loop as
    /// the server, until the connection ends.
    ///
    /// This is how `chanx-testing` runs consumers in-process, and how another
    /// HTTP server can hand an upgraded connection to chanx.
    ///
    /// # Errors
    ///
    /// [`NoRoute`] when no route matches the request's path.
    pub fn serve_io<I>(
        &self,
        io: I,
        request: &http::Request<()>,
    ) -> Result<impl Future<Output = ()> + Send + 'static + use<I>, NoRoute>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_io_with(io, request, &ServerConfig::default())
    }

    /// [`Router::serve_io`] with the connection settings of `config` (limits,
    /// buffers, timeouts).
    ///
    /// # Errors
    ///
    /// [`NoRoute`] when no route matches the request's path.
    pub fn serve_io_with<I>(
        &self,
        io: I,
        request: &http::Request<()>,
        config: &ServerConfig,
    ) -> Result<impl Future<Output = ()> + Send + 'static + use<I>, NoRoute>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let connection = self.connection(request, config, CancellationToken::new())?;
        Ok(connection.run(Socket::new(io)))
    }

    /// Prepares a connection for `request`: finds the route and captures the
    /// request data. Runs nothing yet.
    pub(crate) fn connection(
        &self,
        request: &http::Request<()>,
        config: &ServerConfig,
        shutdown: CancellationToken,
    ) -> Result<PendingConnection, NoRoute> {
        self.connection_from_parts(
            request.uri(),
            request.headers().clone(),
            &Arc::new(config.clone()),
            shutdown,
        )
    }

    pub(crate) fn connection_from_parts(
        &self,
        uri: &http::Uri,
        headers: http::HeaderMap,
        config: &Arc<ServerConfig>,
        shutdown: CancellationToken,
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
                },
                state: Arc::clone(&self.state),
                authenticators: Arc::clone(&self.authenticators),
                layer: self.layer.clone(),
                config: Arc::clone(config),
                shutdown,
            },
        })
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.routes().map(|(path, _)| path))
            .finish()
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

/// A routed connection waiting for its socket.
pub(crate) struct PendingConnection {
    runner: Arc<dyn Runner>,
    params: ConnectionParams,
}

impl PendingConnection {
    pub(crate) fn run(self, socket: Socket) -> BoxFuture<'static, ()> {
        let span = tracing::info_span!(
            "ws",
            id = self.params.id.get(),
            path = %self.params.request.path,
            channel = self.runner.channel().name,
        );
        let future = self.runner.run(socket, self.params);
        Box::pin(future.instrument(span))
    }
}

trait Runner: Send + Sync + 'static {
    fn run(&self, socket: Socket, params: ConnectionParams) -> BoxFuture<'static, ()>;
    fn channel(&self) -> &'static ChannelMeta;
    fn validate(&self, router: &Router) -> Result<(), String>;
    fn doc(&self, path: String, router: &Router) -> RouteDoc;
}

struct ConsumerRunner<C>(PhantomData<fn() -> C>);

impl<C: Consumer> Runner for ConsumerRunner<C> {
    fn run(&self, socket: Socket, params: ConnectionParams) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            tracing::debug!("connected");
            let end = connection::run::<C>(socket, params).await;
            tracing::debug!(?end, "disconnected");
        })
    }

    fn channel(&self) -> &'static ChannelMeta {
        C::CHANNEL
    }

    fn validate(&self, router: &Router) -> Result<(), String> {
        if C::AUTHENTICATED && router.authenticator::<C::Authenticator>().is_none() {
            return Err(format!(
                "consumer `{}` names authenticator `{}`, which is not registered: call Router::with_authenticator",
                C::CHANNEL.type_name,
                std::any::type_name::<C::Authenticator>()
            ));
        }
        Ok(())
    }

    fn doc(&self, path: String, router: &Router) -> RouteDoc {
        let credentials = if C::AUTHENTICATED {
            router
                .authenticator::<C::Authenticator>()
                .map(Authenticator::credentials)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        RouteDoc {
            path,
            channel: C::CHANNEL,
            config: C::CONFIG,
            credentials,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone)]
struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    fn parse(source: &str) -> Result<Self, &'static str> {
        let rest = source
            .strip_prefix('/')
            .ok_or("a route must start with '/'")?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut segments = Vec::new();
        if !rest.is_empty() {
            for part in rest.split('/') {
                if let Some(inner) = part.strip_prefix('{') {
                    let name = inner
                        .strip_suffix('}')
                        .ok_or("a '{' segment must end with '}'")?;
                    if name.is_empty() || name.contains(['{', '}']) {
                        return Err("a parameter needs a name, as in {room}");
                    }
                    if segments.contains(&Segment::Param(name.to_owned())) {
                        return Err("a parameter name appears twice");
                    }
                    segments.push(Segment::Param(name.to_owned()));
                } else if part.contains(['{', '}']) {
                    return Err("a parameter must be a whole segment, as in /rooms/{room}");
                } else if part.is_empty() {
                    return Err("a route cannot have an empty segment");
                } else {
                    segments.push(Segment::Literal(part.to_owned()));
                }
            }
        }
        Ok(Self {
            source: source.to_owned(),
            segments,
        })
    }

    fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut params = Vec::new();
        let mut parts = if rest.is_empty() {
            None
        } else {
            Some(rest.split('/'))
        }
        .into_iter()
        .flatten();
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(_) if part.is_empty() => return None,
                Segment::Param(name) => {
                    let value = percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .ok()?;
                    params.push((name.clone(), value.into_owned()));
                }
            }
        }
        parts.next().is_none().then_some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_literals_and_params() {
        let pattern = PathPattern::parse("/ws/chat/{room}").unwrap();
        assert_eq!(
            pattern.matches("/ws/chat/lobby"),
            Some(vec![("room".to_owned(), "lobby".to_owned())])
        );
        assert_eq!(
            pattern.matches("/ws/chat/caf%C3%A9/"),
            Some(vec![("room".to_owned(), "café".to_owned())])
        );
        assert_eq!(pattern.matches("/ws/chat"), None);
        assert_eq!(pattern.matches("/ws/chat/"), None);
        assert_eq!(pattern.matches("/ws/chat/a/b"), None);
        assert_eq!(pattern.matches("/ws/other/a"), None);
        assert_eq!(pattern.matches("/ws/chat//"), None);
    }

    #[test]
    fn root_and_trailing_slash() {
        let root = PathPattern::parse("/").unwrap();
        assert_eq!(root.matches("/"), Some(vec![]));
        assert_eq!(root.matches("/x"), None);
        let system = PathPattern::parse("/ws/system/").unwrap();
        assert_eq!(system.matches("/ws/system"), Some(vec![]));
        assert_eq!(system.matches("/ws/system/"), Some(vec![]));
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in ["ws", "/a/{", "/a/{}", "/a/x{y}", "/a//b", "/{a}/{a}"] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
