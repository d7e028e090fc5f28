//! The edge: what every request goes through before anything of the
//! application runs. Admission (per-address connection caps and HTTP rate
//! limits), the origin policy, HTTP routes with their body limit,
//! `/asyncapi.json`, and the WebSocket upgrade with its global cap.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::ServerConfig;
use crate::connection::Socket;
use crate::connection::limits::TokenBucket;
use crate::http::HttpHandler;
use crate::router::{HttpMatch, Router};

/// What the server shares between its connections.
pub(crate) struct Shared {
    pub(crate) router: Router,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) addresses: Arc<Addresses>,
    /// Connections open: speaking HTTP, or upgraded to WebSocket.
    pub(crate) connections: AtomicUsize,
    pub(crate) asyncapi: OnceLock<serde_json::Value>,
    /// Cancelled first at shutdown: HTTP routes answer 503, upgrades too.
    pub(crate) http_closing: CancellationToken,
    /// Cancelled once HTTP routes in progress are done: sockets close.
    pub(crate) shutdown: CancellationToken,
    /// HTTP route handlers in progress.
    pub(crate) http_requests: TaskTracker,
    /// Every connection task.
    pub(crate) tracker: TaskTracker,
}

impl Shared {
    pub(crate) fn new(router: Router, config: ServerConfig) -> Self {
        Self {
            router,
            addresses: Arc::new(Addresses::new(&config)),
            config: Arc::new(config),
            connections: AtomicUsize::new(0),
            asyncapi: OnceLock::new(),
            http_closing: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            http_requests: TaskTracker::new(),
            tracker: TaskTracker::new(),
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

/// The places one connection holds: one of `max_connections`, and one of
/// its address's.
pub(crate) type Slots = (Slot, AddressSlot);

/// What the edge knows about the connection a request came on.
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    /// The connection's places, handed to the WebSocket at the upgrade.
    pub(crate) slots: Mutex<Option<Slots>>,
}

/// The response for one request.
pub(crate) async fn handle(
    request: Request<Incoming>,
    shared: &Arc<Shared>,
    peer: &Peer,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let is_ws_route = shared.router.has_route(path);
    let wants_upgrade = request.headers().contains_key(header::UPGRADE);
    let upgrading = wants_upgrade && is_ws_route;
    if !upgrading && !shared.addresses.allow_http(peer.addr.ip()) {
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
    if !wants_upgrade || !is_ws_route {
        match shared.router.find_http(request.method(), path) {
            HttpMatch::Found(handler, params) => {
                return serve_http_route(request, shared, handler, params).await;
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

/// Whether `method` changes state (and so is subject to the origin policy).
fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The origin policy: 403 for a browser origin that is neither the
/// request's host nor allowed.
#[allow(clippy::result_large_err)]
fn check_origin(request: &Request<Incoming>, shared: &Shared) -> Result<(), Response<Full<Bytes>>> {
    let (origin, host) = origin_and_host(request);
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

fn origin_and_host(request: &Request<Incoming>) -> (Option<&str>, Option<&str>) {
    let headers = request.headers();
    // A header that is not visible ASCII matches nothing.
    let origin = headers
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or("\u{0}"));
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(http::uri::Authority::as_str));
    (origin, host)
}

async fn serve_http_route(
    request: Request<Incoming>,
    shared: &Arc<Shared>,
    handler: Arc<dyn HttpHandler>,
    params: Vec<(String, String)>,
) -> Response<Full<Bytes>> {
    if shared.http_closing.is_cancelled() {
        return text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        );
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
    let request = shared.router.http_request(parts, body, params);
    // Tracked, so shutdown waits for routes in progress (an event sent here
    // reaches its sockets before they close).
    let call = handler.call(request);
    match shared.http_requests.spawn(call).await {
        Ok(response) => response.into_hyper(),
        Err(error) => {
            tracing::error!(%error, "HTTP route handler failed");
            text_response(StatusCode::INTERNAL_SERVER_ERROR, "the handler failed")
        }
    }
}

fn upgrade(
    mut request: Request<Incoming>,
    shared: &Arc<Shared>,
    peer: &Peer,
) -> Response<Full<Bytes>> {
    if shared.router.has_route(request.uri().path())
        && let Err(refused) = check_origin(&request, shared)
    {
        return refused;
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
    if shared.http_closing.is_cancelled() {
        return text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        );
    }
    // The connection's places go with it (taken at accept, so the cap
    // counts every socket once).
    let slots = peer
        .slots
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    let on_upgrade = hyper::upgrade::on(&mut request);
    let tracker = shared.tracker.clone();
    let span = tracing::Span::current();
    shared.tracker.spawn(
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
                    let connection = pending.run(socket);
                    tracker.spawn(async move {
                        let _slots = slots;
                        connection.await;
                    });
                }
                Err(error) => tracing::debug!(%error, "upgrade failed"),
            }
        }
        .instrument(span),
    );
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, key);
    response
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

pub(crate) fn text_response(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
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
