//! The edge: one tower [`Service`] that every request goes through, on
//! every way in (the standalone [`Server`](crate::Server), axum, any tower
//! or hyper stack). It routes; serves HTTP routes with their body limit and
//! `/asyncapi.json`; applies the origin policy, the header limit, the
//! connection caps (in all and per client address) and the HTTP rate
//! limit; performs the WebSocket upgrade; and registers every connection
//! for graceful shutdown. Authentication runs on the connection, before any
//! of its frames is dispatched.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tracing::Instrument;

use crate::config::ServerConfig;
use crate::connection::Socket;
use crate::connection::limits::TokenBucket;
use crate::http::{HttpHandler, ResponseBody};
use crate::router::{HttpMatch, Router};

/// A [`Router`] as a tower `Service`: what [`Router::into_service`] returns.
///
/// It accepts `http::Request<B>` for any body type hyper and axum use, and
/// answers `http::Response<ResponseBody>`; it never fails (`Infallible`).
/// Clones share everything (caps, counters, the shutdown of the router
/// they came from).
///
/// To give it the client's address (for the per-address limits and
/// [`Context::peer_addr`](crate::Context::peer_addr)), serve it with axum's
/// `into_make_service_with_connect_info::<SocketAddr>()`, or insert a
/// [`PeerAddr`] in each request's extensions. Without one, per-address
/// limits do not apply.
///
/// ```
/// use chanx_core::Router;
/// # use chanx_core::{channel, messages::{Ping, Pong}};
/// # #[derive(Default)] struct System;
/// # #[channel] impl System { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
///
/// let service = Router::new().route::<System>("/ws/system").into_service();
/// fn is_a_service<S: tower_service::Service<http::Request<String>>>(_: &S) {}
/// is_a_service(&service);
/// ```
#[derive(Clone)]
pub struct ChanxService {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ChanxService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChanxService")
            .field("router", &self.shared.router)
            .finish_non_exhaustive()
    }
}

/// The client's address, for a request served by a stack that does not
/// tell chanx (plain hyper, tower): insert it in the request's extensions.
/// axum's `ConnectInfo<SocketAddr>` is read as well (feature `axum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Router {
    /// This router as a tower `Service` (see [`ChanxService`]): the whole
    /// edge, to serve with hyper, axum (`route_service`, `nest_service`, or
    /// [`Router::into_axum`] with the `axum` feature) or any tower stack.
    pub fn into_service(self) -> ChanxService {
        ChanxService {
            shared: Arc::new(Shared::new(self)),
        }
    }
}

impl ChanxService {
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves one accepted connection (a TLS stream, a Unix socket, an
    /// in-memory pipe…) as the standalone [`Server`](crate::Server) serves
    /// each TCP socket: HTTP/1.1 with upgrades, the header size and read
    /// time limits, the connection caps counted from now (a connection
    /// over them gets a 503 and is closed), and graceful shutdown. `peer`
    /// is the client's address, if there is one.
    ///
    /// The future ends when the connection does (an upgraded WebSocket
    /// runs on a task of its own, tracked for shutdown). Connection errors
    /// are logged at debug level.
    ///
    /// ```no_run
    /// # use chanx_core::{Router, channel, messages::{Ping, Pong}};
    /// # #[derive(Default)] struct System;
    /// # #[channel] impl System { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
    /// # async fn run(listener: tokio::net::UnixListener) -> std::io::Result<()> {
    /// let service = Router::new().route::<System>("/ws/system").into_service();
    /// loop {
    ///     let (stream, _) = listener.accept().await?;
    ///     tokio::spawn(service.serve_connection(stream, None));
    /// }
    /// # }
    /// ```
    pub fn serve_connection<I>(
        &self,
        io: I,
        peer: Option<SocketAddr>,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::clone(&self.shared);
        async move {
            let address = match peer {
                Some(peer) => match shared.addresses.connect(peer.ip()) {
                    Some(address) => Some(address),
                    None => {
                        tracing::warn!(%peer, "connection refused: too many connections from this address");
                        return refuse(io).await;
                    }
                },
                None => None,
            };
            let Some(slot) = Slot::take(&shared) else {
                tracing::warn!(
                    max = shared.config.max_connections,
                    "connection refused: too many connections"
                );
                return refuse(io).await;
            };
            let admitted = Arc::new(Admitted {
                peer,
                slots: Mutex::new(Some((slot, address))),
            });
            serve_admitted(io, shared, admitted).await;
        }
    }

    /// The router this service serves.
    pub fn router(&self) -> &Router {
        &self.shared.router
    }
}

impl<B> tower_service::Service<Request<B>> for ChanxService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(handle(request, &shared).await) })
    }
}

/// What the edge shares between the requests it serves.
pub(crate) struct Shared {
    pub(crate) router: Router,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) addresses: Arc<Addresses>,
    /// Connections counted against `max_connections`: every socket the
    /// standalone server accepted, or, elsewhere, every WebSocket.
    pub(crate) connections: AtomicUsize,
    asyncapi: OnceLock<serde_json::Value>,
}

impl Shared {
    fn new(router: Router) -> Self {
        let config = router.shared_config();
        Self {
            addresses: Arc::new(Addresses::new(&config)),
            config,
            router,
            connections: AtomicUsize::new(0),
            asyncapi: OnceLock::new(),
        }
    }
}

/// A client address as the per-address limits see it: IPv4 whole, IPv6 by
/// its /64 prefix (what one subscriber usually gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddressKey {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl AddressKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => {
                    let octets = v6.octets();
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&octets[..8]);
                    Self::V6(prefix)
                }
            },
        }
    }
}

/// Per-address state: open connections and the HTTP rate bucket.
#[derive(Debug)]
struct AddressEntry {
    connections: usize,
    http: Option<TokenBucket>,
    touched: Instant,
}

/// The per-address table. An entry lives while its address has
/// connections, and a little after (until its HTTP bucket would be full
/// again), so reconnecting does not reset a rate limit.
pub(crate) struct Addresses {
    map: Mutex<HashMap<AddressKey, AddressEntry>>,
    cap: usize,
    http_limit: Option<crate::config::RateLimit>,
    sweep_above: usize,
}

impl Addresses {
    fn new(config: &ServerConfig) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            cap: config.max_connections_per_address,
            http_limit: config.http_rate_limit,
            sweep_above: config.max_connections.max(1024),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<AddressKey, AddressEntry>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one of `ip`'s connection places, if it has one left.
    pub(crate) fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = AddressKey::of(ip);
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() > self.sweep_above {
            self.sweep(&mut map, now);
        }
        let entry = map.entry(key).or_insert_with(|| AddressEntry {
            connections: 0,
            http: None,
            touched: now,
        });
        if entry.connections >= self.cap {
            return None;
        }
        entry.connections += 1;
        entry.touched = now;
        Some(AddressSlot {
            table: Arc::clone(self),
            key,
        })
    }

    /// Takes an HTTP request token for `ip`.
    fn allow_http(&self, ip: IpAddr) -> bool {
        let Some(limit) = self.http_limit else {
            return true;
        };
        let now = Instant::now();
        let mut map = self.lock();
        let entry = map
            .entry(AddressKey::of(ip))
            .or_insert_with(|| AddressEntry {
                connections: 0,
                http: None,
                touched: now,
            });
        entry.touched = now;
        entry
            .http
            .get_or_insert_with(|| TokenBucket::new(limit.per_second, f64::from(limit.burst), now))
            .take(now, 1.0)
    }

    /// Drops entries without connections whose bucket has refilled.
    fn sweep(&self, map: &mut HashMap<AddressKey, AddressEntry>, now: Instant) {
        let refill = self
            .http_limit
            .map_or(0.0, |limit| f64::from(limit.burst) / limit.per_second);
        map.retain(|_, entry| {
            entry.connections > 0
                || now.saturating_duration_since(entry.touched).as_secs_f64() < refill
        });
    }

    fn release(&self, key: AddressKey) {
        let mut map = self.lock();
        if let Some(entry) = map.get_mut(&key) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 && entry.http.is_none() {
                map.remove(&key);
            }
        }
    }

    /// Connections `ip` holds now.
    #[cfg(test)]
    fn connections(&self, ip: IpAddr) -> usize {
        self.lock()
            .get(&AddressKey::of(ip))
            .map_or(0, |entry| entry.connections)
    }
}

/// One connection place of one client address, given back on drop. It
/// moves from the HTTP connection to the WebSocket connection at the
/// upgrade, so a socket counts once.
pub(crate) struct AddressSlot {
    table: Arc<Addresses>,
    key: AddressKey,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.table.release(self.key);
    }
}

/// One of the `max_connections` places, given back on drop. Like an
/// [`AddressSlot`], it moves to the WebSocket connection at the upgrade.
pub(crate) struct Slot {
    shared: Arc<Shared>,
}

impl Slot {
    pub(crate) fn take(shared: &Arc<Shared>) -> Option<Self> {
        shared
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < shared.config.max_connections).then_some(active + 1)
            })
            .is_ok()
            .then(|| Self {
                shared: Arc::clone(shared),
            })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The places one connection holds: one of `max_connections`, and, when
/// its address is known, one of its address's.
pub(crate) type Slots = (Slot, Option<AddressSlot>);

/// A connection admitted when it was accepted (by the standalone server or
/// [`ChanxService::serve_connection`]): its address, and its places,
/// handed to the WebSocket at the upgrade.
pub(crate) struct Admitted {
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) slots: Mutex<Option<Slots>>,
}

/// The 503 a connection over the caps gets before it is closed.
pub(crate) const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
    content-length: 28\r\nconnection: close\r\n\r\ntoo many connections; retry\n";

/// Tells a refused client why (waiting a moment at most) and closes.
async fn refuse<I: AsyncWrite + Unpin>(mut io: I) {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        io.write_all(BUSY).await?;
        io.shutdown().await
    })
    .await;
}

/// Serves HTTP/1.1 with upgrades on an admitted connection, until it ends
/// or, once shutdown begins, until its request in progress is answered.
pub(crate) async fn serve_admitted<I>(io: I, shared: Arc<Shared>, admitted: Arc<Admitted>)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let service_shared = Arc::clone(&shared);
    serve_http(io, &shared, admitted, move |request| {
        let shared = Arc::clone(&service_shared);
        async move { handle(request, &shared).await }
    })
    .await;
}

/// Serves an axum app (which may merge chanx routers) on an admitted
/// connection: the same accept-time protections as chanx's own routes, and
/// `ConnectInfo<SocketAddr>` for axum's extractors.
#[cfg(feature = "axum")]
pub(crate) async fn serve_admitted_axum<I>(
    io: I,
    shared: Arc<Shared>,
    admitted: Arc<Admitted>,
    app: axum::Router,
) where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let peer = admitted.peer;
    serve_http(io, &shared, admitted, move |mut request| {
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        let mut app = app.clone();
        async move {
            match tower_service::Service::call(&mut app, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    })
    .await;
}

/// hyper's HTTP/1.1 with upgrades, heads bounded in bytes and time, the
/// admission in every request's extensions, and graceful shutdown.
async fn serve_http<I, F, Fut, B>(io: I, shared: &Arc<Shared>, admitted: Arc<Admitted>, respond: F)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: Fn(Request<hyper::body::Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(Arc::clone(&admitted));
        let response = respond(request);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .max_buf_size(shared.config.max_header_bytes)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let closing = shared.router.lifecycle().http_closing.clone();
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = closing.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

/// The client's address, from whatever served the request.
fn peer_of<B>(request: &Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    if let Some(peer) = extensions
        .get::<Arc<Admitted>>()
        .and_then(|admitted| admitted.peer)
    {
        return Some(peer);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    extensions.get::<PeerAddr>().map(|PeerAddr(addr)| *addr)
}

/// The bytes of a request's head, as the header limit counts them.
fn head_size<B>(request: &Request<B>) -> usize {
    let line = request.method().as_str().len() + request.uri().to_string().len() + 12;
    request.headers().iter().fold(line, |total, (name, value)| {
        total + name.as_str().len() + value.len() + 4
    })
}

/// The response for one request.
pub(crate) async fn handle<B>(request: Request<B>, shared: &Arc<Shared>) -> Response<ResponseBody>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if head_size(&request) > shared.config.max_header_bytes {
        return text_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        );
    }
    let peer = peer_of(&request);
    let path = request.uri().path();
    let is_ws_route = shared.router.has_route(path);
    let wants_upgrade = request.headers().contains_key(header::UPGRADE);
    let upgrading = wants_upgrade && is_ws_route;
    if !upgrading
        && let Some(peer) = peer
        && !shared.addresses.allow_http(peer.ip())
    {
        return text_response(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests from this address; slow down",
        );
    }
    if path == ASYNCAPI_PATH
        && request.method() == Method::GET
        && let Some(response) = serve_asyncapi(&request, shared)
    {
        return response;
    }
    if !upgrading
        && let Some(playground) = shared.router.playground()
        && let Some(response) = playground.serve(request.method(), path)
    {
        return response;
    }
    if !upgrading {
        match shared.router.find_http(request.method(), path) {
            HttpMatch::Found(handler, params) => {
                return serve_http_route(request, shared, handler, params, peer).await;
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
    upgrade(request, shared, peer)
}

pub(crate) const ASYNCAPI_PATH: &str = "/asyncapi.json";

/// The router's AsyncAPI document, built once; without configured servers
/// the request's host is named.
fn serve_asyncapi<B>(request: &Request<B>, shared: &Arc<Shared>) -> Option<Response<ResponseBody>> {
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
    let mut response = Response::new(ResponseBody::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Some(response)
}

/// Whether `method` changes state (and so is subject to the origin policy).
fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The origin policy: 403 for a browser origin that is neither the
/// request's host nor allowed.
#[allow(clippy::result_large_err)]
fn check_origin<B>(request: &Request<B>, shared: &Shared) -> Result<(), Response<ResponseBody>> {
    let headers = request.headers();
    // A header that is not visible ASCII matches nothing.
    let origin = headers
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or("\u{0}"));
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(http::uri::Authority::as_str));
    if shared.config.origin_allowed(origin, host) {
        return Ok(());
    }
    tracing::info!(
        origin = origin.unwrap_or("<none>"),
        method = %request.method(),
        path = request.uri().path(),
        "request refused: origin not allowed"
    );
    Err(text_response(StatusCode::FORBIDDEN, "origin not allowed"))
}

fn shutting_down() -> Response<ResponseBody> {
    text_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is shutting down",
    )
}

async fn serve_http_route<B>(
    request: Request<B>,
    shared: &Arc<Shared>,
    handler: Arc<dyn HttpHandler>,
    params: Vec<(String, String)>,
    peer: Option<SocketAddr>,
) -> Response<ResponseBody>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let lifecycle = shared.router.lifecycle();
    if lifecycle.http_closing.is_cancelled() {
        return shutting_down();
    }
    if is_unsafe(request.method())
        && let Err(refused) = check_origin(&request, shared)
    {
        return refused;
    }
    let (parts, body) = request.into_parts();
    let max = shared.config.max_body_size;
    let collected = tokio::time::timeout(
        shared.config.header_read_timeout,
        Limited::new(body, max).collect(),
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
                return text_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("request body over {max} bytes"),
                );
            }
            return text_response(StatusCode::BAD_REQUEST, "cannot read the request body");
        }
    };
    let request = shared.router.http_request(parts, body, params, peer);
    // Tracked, so shutdown waits for routes in progress (an event sent here
    // reaches its sockets before they close).
    let call = handler.call(request);
    match lifecycle.http_requests.spawn(call).await {
        Ok(response) => response.into_response(),
        Err(error) => {
            tracing::error!(%error, "HTTP route handler failed");
            text_response(StatusCode::INTERNAL_SERVER_ERROR, "the handler failed")
        }
    }
}

fn too_many() -> Response<ResponseBody> {
    text_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many connections; try again later",
    )
}

fn upgrade<B>(
    mut request: Request<B>,
    shared: &Arc<Shared>,
    peer: Option<SocketAddr>,
) -> Response<ResponseBody> {
    if shared.router.has_route(request.uri().path())
        && let Err(refused) = check_origin(&request, shared)
    {
        return refused;
    }
    let pending = match shared.router.connection(
        request.uri(),
        owned_headers(request.headers()),
        peer,
        &shared.config,
    ) {
        Ok(pending) => pending,
        Err(error) => return text_response(StatusCode::NOT_FOUND, &error.to_string()),
    };
    let key = match check_upgrade(&request) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let selected_protocol = select_subprotocol(&request, &shared.config.subprotocols);
    let lifecycle = Arc::clone(shared.router.lifecycle());
    if lifecycle.http_closing.is_cancelled() {
        return shutting_down();
    }
    // A socket the standalone server admitted brings its places (taken at
    // accept, so each socket counts once); elsewhere the WebSocket takes
    // its own.
    let slots = match request.extensions().get::<Arc<Admitted>>() {
        Some(admitted) => admitted
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
        None => {
            let Some(slot) = Slot::take(shared) else {
                tracing::warn!(
                    max = shared.config.max_connections,
                    "upgrade refused: too many connections"
                );
                return too_many();
            };
            let address = match peer {
                Some(peer) => match shared.addresses.connect(peer.ip()) {
                    Some(address) => Some(address),
                    None => {
                        tracing::warn!(%peer, "upgrade refused: too many connections from this address");
                        return too_many();
                    }
                },
                None => None,
            };
            Some((slot, address))
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let tracker = lifecycle.connections.clone();
    let span = tracing::Span::current();
    lifecycle.connections.spawn(
        async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    // A TCP stream is split without a lock between its
                    // directions; anything else through a shared one.
                    let socket = match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
                        Ok(parts) => Socket::tcp(parts.io.into_inner(), parts.read_buf),
                        Err(upgraded) => Socket::new(TokioIo::new(upgraded)),
                    };
                    // The connection gets a task of its own, so this one (and
                    // the room its upgrade futures took) is freed now rather
                    // than living as long as the connection.
                    pending.spawn(socket, slots, &tracker);
                }
                Err(error) => tracing::debug!(%error, "upgrade failed"),
            }
        }
        .instrument(span),
    );
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, key);
    if let Some(protocol) = selected_protocol {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    response
}

/// The first subprotocol the client offers that the server speaks.
fn select_subprotocol<B>(request: &Request<B>, spoken: &[String]) -> Option<HeaderValue> {
    if spoken.is_empty() {
        return None;
    }
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .find(|offered| spoken.iter().any(|protocol| protocol == offered))
        .and_then(|offered| HeaderValue::from_str(offered).ok())
}

/// A copy of `headers` that owns its values, without the handshake's own.
///
/// hyper's header values are slices of its read buffer; keeping them for
/// the life of a connection would keep that whole buffer alive.
fn owned_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let mut owned = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if matches!(
            *name,
            header::SEC_WEBSOCKET_KEY
                | header::SEC_WEBSOCKET_VERSION
                | header::SEC_WEBSOCKET_EXTENSIONS
                | header::UPGRADE
                | header::CONNECTION
        ) {
            continue;
        }
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            owned.append(name.clone(), copy);
        }
    }
    owned
}

/// Validates a WebSocket upgrade request and returns its accept key.
#[allow(clippy::result_large_err)]
fn check_upgrade<B>(request: &Request<B>) -> Result<HeaderValue, Response<ResponseBody>> {
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

pub(crate) fn text_response(status: StatusCode, body: &str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(format!("{body}\n")));
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
    fn ipv6_clients_are_grouped_by_prefix_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddressKey::of(a), AddressKey::of(b));
        assert_ne!(AddressKey::of(a), AddressKey::of(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(AddressKey::of(mapped), AddressKey::of(v4));
    }

    #[test]
    fn per_address_places_are_capped_and_given_back() {
        let table = Arc::new(Addresses::new(
            &ServerConfig::new().max_connections_per_address(2),
        ));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let first = table.connect(ip).unwrap();
        let _second = table.connect(ip).unwrap();
        assert!(table.connect(ip).is_none());
        assert!(table.connect(other).is_some());
        drop(first);
        assert_eq!(table.connections(ip), 1);
        assert!(table.connect(ip).is_some());
    }

    #[test]
    fn http_requests_are_rate_limited_per_address_across_reconnects() {
        let table = Arc::new(Addresses::new(
            &ServerConfig::new().http_rate_limit(Some(crate::config::RateLimit::new(0.001, 3))),
        ));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            let slot = table.connect(ip).unwrap();
            assert!(table.allow_http(ip));
            drop(slot);
        }
        let _slot = table.connect(ip).unwrap();
        assert!(!table.allow_http(ip));
        assert!(table.allow_http("10.0.0.9".parse().unwrap()));
    }
}
