//! The HTTP/1.1 server that upgrades requests to WebSocket connections.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::http::{HttpHandler, MAX_BODY};
use crate::router::{HttpMatch, Router};

/// Connection settings of a [`Server`], with safe defaults.
///
/// ```
/// use std::time::Duration;
/// use chanx_core::ServerConfig;
///
/// let config = ServerConfig::new()
///     .max_message_size(256 * 1024)
///     .outbound_queue(64)
///     .shutdown_timeout(Duration::from_secs(5));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
pub struct ServerConfig {
    pub(crate) max_message_size: usize,
    pub(crate) max_frame_size: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) write_buffer_size: usize,
    pub(crate) outbound_queue: usize,
    pub(crate) inbox_capacity: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) allowed_origins: Option<Vec<String>>,
    pub(crate) require_origin: bool,
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) rate_limit: Option<RateLimit>,
}

/// A per-connection message rate limit: a token bucket refilled at
/// `per_second` with room for `burst` messages.
///
/// A frame over the limit is not dispatched; the client gets
/// `{"action":"error","payload":{"status_code":429,"detail":"Rate limit exceeded: slow down."}}`.
/// After `burst` such frames in a row the connection is closed with 1008.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Messages per second, sustained.
    pub per_second: f64,
    /// Messages allowed at once, and over-limit frames tolerated in a row.
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` messages a second with a burst of `burst`.
    #[must_use]
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second: if per_second.is_finite() && per_second > 0.0 {
                per_second
            } else {
                1.0
            },
            burst: burst.max(1),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_message_size: 1024 * 1024,
            max_frame_size: 1024 * 1024,
            // tungstenite allocates this up front for every connection (its
            // default is 128 KiB); most frames of this protocol are far below
            // 1 KiB, and a larger frame is read in several chunks.
            read_buffer_size: 1024,
            write_buffer_size: 4 * 1024,
            outbound_queue: 1024,
            inbox_capacity: 1024,
            write_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            allowed_origins: None,
            require_origin: false,
            max_connections: 16 * 1024,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            rate_limit: Some(RateLimit::new(1000.0, 2000)),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// The defaults: 1 MiB messages and frames, 1 KiB socket buffers, 1024
    /// queued outbound frames and 1024 inbox messages per connection, 30 s
    /// write and header-read timeouts, 16 384 connections, pings after 20 s
    /// of silence and a close after 60 s, 1000 messages a second per
    /// connection (burst 2000), and 10 s for handlers in progress at
    /// shutdown.
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest message a client may send, in bytes.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The largest single frame a client may send, in bytes.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// The initial read buffer of each connection, in bytes.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(1);
        self
    }

    /// How many outbound frames may wait for a slow client before senders to
    /// that client wait.
    pub fn outbound_queue(mut self, frames: usize) -> Self {
        self.outbound_queue = frames.max(1);
        self
    }

    /// How many channel-layer messages (broadcasts, events) may wait for one
    /// connection. A connection whose inbox fills up is closed with 1008: see
    /// [the layer documentation](crate::layer#slow-receivers).
    pub fn inbox_capacity(mut self, messages: usize) -> Self {
        self.inbox_capacity = messages.max(1);
        self
    }

    /// How long one write to a client may block before the connection is
    /// dropped as dead (a client that stopped reading).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long a client may take to send its request's headers (and an
    /// HTTP route's request body).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Accepts WebSocket upgrades only from these browser origins (like
    /// Channels' `OriginValidator`); any other `Origin` gets HTTP 403.
    /// Entries are exact origins (`https://app.example.com`,
    /// `http://localhost:8000`), subdomain wildcards
    /// (`https://*.example.com`), or `*` for any. Without this call every
    /// origin is accepted.
    ///
    /// A request without an `Origin` header (a non-browser client) is
    /// accepted unless [`ServerConfig::require_origin`] is set: only
    /// browsers send `Origin`, and browsers are what the check protects
    /// against cross-site WebSocket hijacking.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = Some(
            origins
                .into_iter()
                .map(|origin| origin.into().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        );
        self
    }

    /// The most WebSocket connections served at once; further upgrades get
    /// HTTP 503. The same number caps connections still speaking HTTP
    /// (before or without an upgrade): past it, new TCP connections are
    /// closed at once.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Closes a connection that has sent nothing (not even a pong) for this
    /// long. The server pings a quiet client every
    /// [`ping_interval`](ServerConfig::ping_interval), so a live client
    /// always answers in time.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a connection may stay quiet before the server pings it.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The per-connection message rate limit; `None` turns it off.
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Refuses upgrades without an `Origin` header (HTTP 403).
    pub fn require_origin(mut self, on: bool) -> Self {
        self.require_origin = on;
        self
    }

    pub(crate) fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return !self.require_origin;
        };
        let Some(allowed) = &self.allowed_origins else {
            return true;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        allowed
            .iter()
            .any(|pattern| origin_matches(pattern, &origin))
    }

    /// How long shutdown lets handlers in progress finish before their
    /// connections are closed.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size)
            .write_buffer_size(self.write_buffer_size)
            // Outbound size is bounded by what handlers send, not by the
            // inbound limit; backpressure comes from the outbound queue.
            .max_write_buffer_size(usize::MAX)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
    }
}

fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" || pattern == origin {
        return true;
    }
    // `scheme://*.domain[:port]` matches any subdomain of `domain`.
    let (Some((pattern_scheme, pattern_rest)), Some((scheme, rest))) =
        (pattern.split_once("://"), origin.split_once("://"))
    else {
        return false;
    };
    let Some(suffix) = pattern_rest.strip_prefix("*.") else {
        return false;
    };
    pattern_scheme == scheme
        && rest.len() > suffix.len() + 1
        && rest.ends_with(suffix)
        && rest.as_bytes()[rest.len() - suffix.len() - 1] == b'.'
}

/// A WebSocket server bound to a TCP address.
///
/// ```no_run
/// use chanx_core::{Router, Server};
/// # use chanx_core::{channel, messages::{Ping, Pong}};
/// # #[derive(Default)] struct System;
/// # #[channel] impl System { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route::<System>("/ws/system");
/// Server::bind("127.0.0.1:8000").await?.serve(app).await
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds a TCP listener.
    ///
    /// # Errors
    ///
    /// The address cannot be bound (in use, no permission, bad address).
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(Self::from_listener(TcpListener::bind(addr).await?))
    }

    /// Serves on an already bound listener.
    pub fn from_listener(listener: TcpListener) -> Self {
        Self {
            listener,
            config: ServerConfig::default(),
        }
    }

    /// Replaces the connection settings.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The bound address (useful after binding port 0).
    ///
    /// # Errors
    ///
    /// The socket's address cannot be read.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `router` until Ctrl-C, then shuts down gracefully: stops
    /// accepting, closes every client with 1001 and waits for them.
    ///
    /// # Errors
    ///
    /// Only errors of the listening socket itself; per-connection errors are
    /// logged.
    pub async fn serve(self, router: Router) -> io::Result<()> {
        self.serve_with_shutdown(router, async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "cannot listen for Ctrl-C; serving until the process ends");
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C received, shutting down");
        })
        .await
    }

    /// Serves `router` until `signal` completes, then shuts down gracefully.
    ///
    /// # Errors
    ///
    /// Only errors of the listening socket itself.
    pub async fn serve_with_shutdown(
        self,
        router: Router,
        signal: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        if let Err(problem) = router.validate() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, problem));
        }
        let shared = Arc::new(Shared {
            connections: AtomicUsize::new(0),
            http_connections: AtomicUsize::new(0),
            asyncapi: std::sync::OnceLock::new(),
            router,
            config: self.config,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        tracing::info!(addr = %self.listener.local_addr()?, "listening");
        let mut signal = std::pin::pin!(signal);
        loop {
            let accepted = tokio::select! {
                () = &mut signal => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    // Connections still speaking HTTP (before or without an
                    // upgrade) are capped too, so idle sockets cannot pile up.
                    let Some(slot) = HttpSlot::take(&shared) else {
                        tracing::warn!(%peer, "connection refused: too many HTTP connections");
                        drop(stream);
                        continue;
                    };
                    let shared_for_task = Arc::clone(&shared);
                    let span = tracing::debug_span!("http", %peer);
                    shared
                        .tracker
                        .spawn(serve_http(stream, shared_for_task, slot).instrument(span));
                }
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(self.listener);
        shared.shutdown.cancel();
        shared.tracker.close();
        let drain = shared.config.shutdown_timeout + super::connection::WRITER_DRAIN_TIMEOUT;
        if tokio::time::timeout(drain, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = shared.tracker.len(),
                "connections still open after the shutdown timeout"
            );
        }
        tracing::info!("server stopped");
        Ok(())
    }
}

/// One of the `max_connections` places for connections still speaking
/// HTTP, given back when the HTTP connection ends (after an upgrade, the
/// WebSocket holds a [`ConnectionSlot`] instead).
struct HttpSlot(Arc<Shared>);

impl HttpSlot {
    fn take(shared: &Arc<Shared>) -> Option<Self> {
        shared
            .http_connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < shared.config.max_connections).then_some(active + 1)
            })
            .is_ok()
            .then(|| Self(Arc::clone(shared)))
    }
}

impl Drop for HttpSlot {
    fn drop(&mut self) {
        self.0.http_connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One of the `max_connections` places, given back on drop.
struct ConnectionSlot(Arc<Shared>);

impl ConnectionSlot {
    fn take(shared: &Arc<Shared>) -> Option<Self> {
        let taken = shared
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < shared.config.max_connections).then_some(active + 1)
            })
            .is_ok();
        taken.then(|| Self(Arc::clone(shared)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Shared {
    connections: AtomicUsize,
    http_connections: AtomicUsize,
    asyncapi: std::sync::OnceLock<serde_json::Value>,
    router: Router,
    config: ServerConfig,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

async fn serve_http(stream: TcpStream, shared: Arc<Shared>, _slot: HttpSlot) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let service_shared = Arc::clone(&shared);
    let service = service_fn(move |request| {
        let shared = Arc::clone(&service_shared);
        async move { Ok::<_, Infallible>(handle(request, &shared).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shared.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

async fn handle(request: Request<Incoming>, shared: &Arc<Shared>) -> Response<Full<Bytes>> {
    if request.uri().path() == ASYNCAPI_PATH
        && request.method() == Method::GET
        && let Some(response) = serve_asyncapi(&request, shared)
    {
        return response;
    }
    let wants_upgrade = request.headers().contains_key(header::UPGRADE);
    if !wants_upgrade || !shared.router.has_route(request.uri().path()) {
        match shared
            .router
            .find_http(request.method(), request.uri().path())
        {
            HttpMatch::Found(handler, params) => {
                return serve_http_route(request, shared, &*handler, params).await;
            }
            HttpMatch::MethodNotAllowed => {
                return text_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method not allowed on this path",
                );
            }
            HttpMatch::NotFound => {}
        }
    }
    upgrade(request, shared)
}

const ASYNCAPI_PATH: &str = "/asyncapi.json";

/// The router's AsyncAPI document, built once; without configured servers
/// the request's host is named.
fn serve_asyncapi(
    request: &Request<Incoming>,
    shared: &Arc<Shared>,
) -> Option<Response<Full<Bytes>>> {
    let api = shared.router.asyncapi()?;
    let document = shared.asyncapi.get_or_init(|| api.document(&shared.router));
    let body = if api.has_servers() {
        crate::asyncapi::render(document)
    } else {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or("localhost");
        let mut document = document.clone();
        if let serde_json::Value::Object(map) = &mut document {
            map.insert(
                "servers".into(),
                crate::asyncapi::AsyncApi::servers_for_host(host, "ws"),
            );
        }
        crate::asyncapi::render(&document)
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Some(response)
}

async fn serve_http_route(
    request: Request<Incoming>,
    shared: &Arc<Shared>,
    handler: &dyn HttpHandler,
    params: Vec<(String, String)>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let collected = tokio::time::timeout(
        shared.config.header_read_timeout,
        Limited::new(body, MAX_BODY).collect(),
    )
    .await;
    let Ok(collected) = collected else {
        return text_response(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        );
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            if error.downcast_ref::<LengthLimitError>().is_some() {
                return text_response(StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MiB");
            }
            return text_response(StatusCode::BAD_REQUEST, "cannot read the request body");
        }
    };
    let request = shared.router.http_request(parts, body, params);
    handler.call(request).await.into_hyper()
}

fn upgrade(mut request: Request<Incoming>, shared: &Arc<Shared>) -> Response<Full<Bytes>> {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or("\u{0}"));
    if shared.router.has_route(request.uri().path()) && !shared.config.origin_allowed(origin) {
        tracing::info!(
            origin = origin.unwrap_or("<none>"),
            "upgrade refused: origin not allowed"
        );
        return text_response(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let pending = match shared.router.connection_from_parts(
        request.uri(),
        owned_headers(request.headers()),
        &shared.config,
        shared.shutdown.child_token(),
    ) {
        Ok(pending) => pending,
        Err(error) => return text_response(StatusCode::NOT_FOUND, &error.to_string()),
    };
    let key = match check_upgrade(&request) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let Some(slot) = ConnectionSlot::take(shared) else {
        tracing::warn!(
            max = shared.config.max_connections,
            "upgrade refused: too many connections"
        );
        return text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; try again later",
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let ws_config = shared.config.websocket_config();
    let tracker = shared.tracker.clone();
    shared.tracker.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(ws_config),
                )
                .await;
                // The connection gets a task of its own, so this one (and the
                // room its upgrade futures took) is freed now rather than
                // living as long as the connection.
                let connection = pending.run(Box::pin(socket));
                tracker.spawn(async move {
                    let _slot = slot;
                    connection.await;
                });
            }
            Err(error) => tracing::debug!(%error, "upgrade failed"),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, key);
    response
}

/// A copy of `headers` that owns its values.
///
/// hyper's header values are slices of its 8 KiB read buffer; keeping them
/// for the life of a connection would keep that whole buffer alive.
fn owned_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut owned = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            owned.append(name.clone(), copy);
        }
    }
    owned
}

/// Validates a WebSocket upgrade request and returns its accept key.
#[allow(clippy::result_large_err)]
fn check_upgrade(request: &Request<Incoming>) -> Result<HeaderValue, Response<Full<Bytes>>> {
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .map(|value| {
                    value
                        .split(',')
                        .any(|part| part.trim().eq_ignore_ascii_case(token))
                })
                .unwrap_or(false)
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        let mut response = text_response(
            StatusCode::UPGRADE_REQUIRED,
            "this path serves WebSocket connections; connect with a WebSocket client",
        );
        response
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return Err(response);
    }
    if request.method() != Method::GET {
        return Err(text_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade must use GET",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        let mut response = text_response(
            StatusCode::BAD_REQUEST,
            "unsupported Sec-WebSocket-Version; use 13",
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return Err(response);
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(text_response(
            StatusCode::BAD_REQUEST,
            "missing Sec-WebSocket-Key header",
        ));
    };
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| text_response(StatusCode::BAD_REQUEST, "invalid Sec-WebSocket-Key header"))
}

fn text_response(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns() {
        let config = ServerConfig::new().allowed_origins([
            "https://app.example.com",
            "http://localhost:8000/",
            "https://*.trusted.org",
        ]);
        assert!(config.origin_allowed(Some("https://app.example.com")));
        assert!(config.origin_allowed(Some("HTTPS://APP.EXAMPLE.COM")));
        assert!(config.origin_allowed(Some("http://localhost:8000")));
        assert!(config.origin_allowed(Some("https://a.trusted.org")));
        assert!(config.origin_allowed(Some("https://a.b.trusted.org")));
        assert!(!config.origin_allowed(Some("https://trusted.org")));
        assert!(!config.origin_allowed(Some("https://eviltrusted.org")));
        assert!(!config.origin_allowed(Some("http://a.trusted.org")));
        assert!(!config.origin_allowed(Some("https://evil.com")));
        assert!(!config.origin_allowed(Some("null")));
        assert!(config.origin_allowed(None));
        assert!(!config.clone().require_origin(true).origin_allowed(None));
        assert!(ServerConfig::new().origin_allowed(Some("https://anything")));
        assert!(
            ServerConfig::new()
                .allowed_origins(["*"])
                .origin_allowed(Some("https://x"))
        );
    }
}
