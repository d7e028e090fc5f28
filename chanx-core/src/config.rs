//! [`ServerConfig`]: every limit of the server, with safe defaults.
//!
//! # What one connection can make the server hold
//!
//! Every byte a client can make the server keep has a bound. For one
//! WebSocket connection, at worst:
//!
//! | what | bound | default |
//! |---|---|---:|
//! | read buffer | [`read_buffer_size`](ServerConfig::read_buffer_size) + 14 | 1 KiB |
//! | the message being handled, and the next one being read or held | 2 × [`max_message_size`](ServerConfig::max_message_size) | 128 KiB |
//! | outbound queue and the batch being written | [`outbound_queue_bytes`](ServerConfig::outbound_queue_bytes), or one larger frame a handler sends | 256 KiB |
//! | inbox (events waiting for the consumer) | [`inbox_bytes`](ServerConfig::inbox_bytes) | 128 KiB |
//! | upgrade request headers, while connecting | [`max_header_bytes`](ServerConfig::max_header_bytes) | 16 KiB |
//! | headers kept after connecting | those named in [`retain_headers`](ServerConfig::retain_headers) | none |
//! | topic subscriptions (each: its topic name of at most 256 bytes, its parameters, its group name and the topic value) | [`max_subscriptions`](ServerConfig::max_subscriptions) | 64, about 1 KiB each plus the topic type's own size |
//! | the connection itself (tasks, context, timers) | fixed | about 10 KiB |
//!
//! So about 600 KiB per connection with the defaults, and
//! [`max_connections_per_address`](ServerConfig::max_connections_per_address)
//! × that per client address. Frames shared by several receivers (a
//! broadcast, an event) are counted in each receiver's budget but held once.
//! A message still arriving after
//! [`message_timeout`](ServerConfig::message_timeout) closes the connection
//! (1008), so its bytes are not held for longer. An HTTP route's request
//! body is bounded by [`max_body_size`](ServerConfig::max_body_size) (64 KiB)
//! and its headers by `max_header_bytes`.

use std::time::Duration;

use http::HeaderName;

/// Connection settings of a [`Server`](crate::Server), with safe defaults.
///
/// ```
/// use std::time::Duration;
/// use chanx_core::ServerConfig;
///
/// let config = ServerConfig::new()
///     .max_message_size(256 * 1024)
///     .outbound_queue_bytes(1024 * 1024)
///     .allowed_origins(["https://app.example.com"])
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
    pub(crate) outbound_queue_bytes: usize,
    pub(crate) inbox_bytes: usize,
    pub(crate) max_subscriptions: usize,
    pub(crate) message_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) max_body_size: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) allowed_origins: Option<Vec<String>>,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) require_origin: bool,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_address: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) fanout_limit: Option<FanoutLimit>,
    pub(crate) http_rate_limit: Option<RateLimit>,
    pub(crate) retain_headers: Vec<HeaderName>,
}

/// A rate limit: a token bucket refilled at `per_second` with room for
/// `burst`.
///
/// On a WebSocket connection ([`ServerConfig::rate_limit`]) every frame the
/// client sends takes a token: each message (a fragmented one, one per
/// fragment), each ping and each pong. A data message over the limit is not
/// dispatched; the client gets
/// `{"action":"error","payload":{"status_code":429,"detail":"Rate limit exceeded: slow down."}}`.
/// A ping over the limit gets no pong. A connection that stays over its
/// limit for a second, or has more than `burst` frames refused since it
/// went over, is closed with 1008.
///
/// For HTTP routes ([`ServerConfig::http_rate_limit`]) each request takes a
/// token from its client address's bucket; a request over the limit gets
/// HTTP 429.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Tokens per second, sustained.
    pub per_second: f64,
    /// Tokens available at once.
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` a second with a burst of `burst`.
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

/// The fan-out budget of each connection: what its broadcasts make the
/// server queue, counted as frame bytes (plus the 64 bytes each queued
/// frame costs) × local receivers, refilled at `bytes_per_second` with room
/// for `burst`.
///
/// A connection whose broadcasts overspend is not read again until the
/// debt is repaid: its own sending slows down (nothing is dropped), and one
/// member's burst cannot fill the queues of readers that keep up. Keep
/// `burst` at most [`ServerConfig::outbound_queue_bytes`], so one sender can
/// never fill a receiver's queue by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FanoutLimit {
    /// Bytes × receivers a second, sustained.
    pub bytes_per_second: u64,
    /// Bytes × receivers at once.
    pub burst: u64,
}

impl FanoutLimit {
    /// `bytes_per_second` with a burst of `burst` (both at least 1).
    #[must_use]
    pub fn new(bytes_per_second: u64, burst: u64) -> Self {
        Self {
            bytes_per_second: bytes_per_second.max(1),
            burst: burst.max(1),
        }
    }
}

const KIB: usize = 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_message_size: 64 * KIB,
            max_frame_size: 64 * KIB,
            // Most frames of this protocol are far below 1 KiB; a larger frame
            // is read straight into an allocation of its own size.
            read_buffer_size: KIB,
            write_buffer_size: 4 * KIB,
            outbound_queue_bytes: 256 * KIB,
            inbox_bytes: 128 * KIB,
            max_subscriptions: 64,
            message_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * KIB,
            max_body_size: 64 * KIB,
            allowed_origins: None,
            subprotocols: Vec::new(),
            require_origin: false,
            max_connections: 16 * KIB,
            max_connections_per_address: 256,
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(20),
            rate_limit: Some(RateLimit::new(1000.0, 2000)),
            fanout_limit: Some(FanoutLimit::new(32 << 20, 128 << 10)),
            http_rate_limit: Some(RateLimit::new(50.0, 100)),
            retain_headers: Vec::new(),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// The defaults: 64 KiB messages and frames, finished within 10 s; a
    /// 1 KiB read buffer; 256 KiB of outbound queue and 128 KiB of inbox per
    /// connection; 1000 frames a second per connection (burst 2000) and a
    /// fan-out of 32 MiB a second (burst 128 KiB); pings after 20 s of
    /// silence and a close after 60 s; 30 s write and header timeouts;
    /// 16 KiB of request headers; 16 384 connections, 256 per client
    /// address; HTTP routes with 64 KiB bodies and 50 requests a second per
    /// address (burst 100); browser origins must match the request's host;
    /// 10 s for handlers in progress at shutdown.
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest message a client may send, in bytes (over it: close
    /// 1009). Raise [`outbound_queue_bytes`](Self::outbound_queue_bytes)
    /// with it if such messages are broadcast.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The largest single frame a client may send, in bytes.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// How long a client may take to send one message, from its first
    /// byte to its last (over it: close 1008).
    pub fn message_timeout(mut self, timeout: Duration) -> Self {
        self.message_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The read buffer of each connection, in bytes.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(1);
        self
    }

    /// How many payload bytes the writer gathers into one write.
    pub fn write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes.max(1);
        self
    }

    /// The bytes that may wait for one client: replies and `ctx.send` wait
    /// for room; a broadcast that does not fit closes that client with 1008
    /// (it is too slow, see [the layer documentation](crate::layer#slow-receivers)).
    /// A frame larger than the whole budget is sent when the queue is empty.
    pub fn outbound_queue_bytes(mut self, bytes: usize) -> Self {
        self.outbound_queue_bytes = bytes.max(1);
        self
    }

    /// The bytes of channel-layer events that may wait for one connection's
    /// consumer. A connection whose inbox fills up is closed with 1008.
    pub fn inbox_bytes(mut self, bytes: usize) -> Self {
        self.inbox_bytes = bytes.max(1);
        self
    }

    /// How many topics one connection may subscribe to at once (default
    /// 64). One more `subscribe` is refused with an `error` frame whose
    /// payload is `{"reason":"too_many_subscriptions","detail":…}`,
    /// stamped with the topic and the request's `ref`.
    pub fn max_subscriptions(mut self, subscriptions: usize) -> Self {
        self.max_subscriptions = subscriptions;
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

    /// The most bytes of request line and headers a request may carry;
    /// larger requests get HTTP 431. At least 8 KiB.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(8 * KIB);
        self
    }

    /// The largest request body an HTTP route reads; larger bodies get HTTP
    /// 413.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Accepts browser origins from this list (like Channels'
    /// `OriginValidator`); any other `Origin` gets HTTP 403, on WebSocket
    /// upgrades and on HTTP routes that change state (any method but GET,
    /// HEAD and OPTIONS). Entries are exact origins
    /// (`https://app.example.com`, `http://localhost:8000`), subdomain
    /// wildcards (`https://*.example.com`), or `*` for any.
    ///
    /// Without this call a browser origin must match the request's `Host`
    /// (same-origin), which is what protects sockets authenticated by a
    /// cookie from cross-site WebSocket hijacking.
    ///
    /// A request without an `Origin` header (a non-browser client) is
    /// accepted unless [`ServerConfig::require_origin`] is set: only
    /// browsers send `Origin`, and browsers are what the check protects
    /// against.
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

    /// The WebSocket subprotocols this server speaks (none by default). A
    /// client that offers some (`Sec-WebSocket-Protocol`) gets the first of
    /// its offers that is listed here; browsers and most clients refuse a
    /// handshake that selects none of the protocols they offered.
    ///
    /// ```
    /// use chanx_core::ServerConfig;
    /// let config = ServerConfig::new().subprotocols(["chanx.v1"]);
    /// # drop(config);
    /// ```
    pub fn subprotocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Refuses upgrades without an `Origin` header (HTTP 403).
    pub fn require_origin(mut self, on: bool) -> Self {
        self.require_origin = on;
        self
    }

    /// The most connections served at once, speaking HTTP or upgraded to
    /// WebSocket. Past it, a new TCP connection gets HTTP 503 and is closed
    /// at once. The server raises its open-file limit to fit, and warns when
    /// it cannot.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// The most connections one client address may hold at once (IPv6
    /// addresses are grouped by their /64 prefix, which one client usually
    /// owns whole). Past it, a new TCP connection from that address gets
    /// HTTP 503 and is closed at once.
    pub fn max_connections_per_address(mut self, connections: usize) -> Self {
        self.max_connections_per_address = connections.max(1);
        self
    }

    /// Closes a connection that has sent nothing the server counts as life
    /// (a message or a pong; the client's own pings do not count) for this
    /// long. The server pings a quiet client every
    /// [`ping_interval`](ServerConfig::ping_interval), so a live client
    /// always answers in time. Time a handler spends, or the server spends
    /// not reading, does not count.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a connection may stay quiet before the server pings it.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The per-connection frame rate limit; `None` turns it off.
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// The per-connection fan-out budget; `None` turns it off.
    pub fn fanout_limit(mut self, limit: Option<FanoutLimit>) -> Self {
        self.fanout_limit = limit;
        self
    }

    /// The per-address rate limit of HTTP routes (`/asyncapi.json`
    /// included); `None` turns it off.
    pub fn http_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.http_rate_limit = limit;
        self
    }

    /// The upgrade request headers a connection keeps once it is
    /// established, for handlers to read with
    /// [`Context::header_str`](crate::Context::header_str). Every header is
    /// available while the connection is being established (authenticator,
    /// permissions, connect hooks); by default none is kept after that.
    pub fn retain_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.retain_headers = names.into_iter().collect();
        self
    }

    /// How long shutdown lets handlers in progress (and events already
    /// delivered) finish before their connections are closed.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Whether a browser `Origin` may open a socket or change state:
    /// absent (not a browser), listed in `allowed_origins`, or, without a
    /// list, the same host as the request's `Host`.
    pub(crate) fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return !self.require_origin;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        match &self.allowed_origins {
            Some(allowed) => allowed
                .iter()
                .any(|pattern| origin_matches(pattern, &origin)),
            None => host.is_some_and(|host| same_host(&origin, host)),
        }
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

/// Whether `origin` (`scheme://host[:port]`, lowercase) names the same
/// host and port as the request's `Host` header.
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" | "ws" => "80",
        "https" | "wss" => "443",
        _ => return false,
    };
    let normalise = |authority: &str| -> String {
        let authority = authority.trim().to_ascii_lowercase();
        // `[v6]:port`, `host:port`, or no port.
        let has_port = match authority.rfind(':') {
            Some(colon) => !authority[colon..].contains(']'),
            None => false,
        };
        if has_port {
            authority
        } else {
            format!("{authority}:{default_port}")
        }
    };
    normalise(authority) == normalise(host)
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
        let allowed = |origin| config.origin_allowed(Some(origin), Some("irrelevant"));
        assert!(allowed("https://app.example.com"));
        assert!(allowed("HTTPS://APP.EXAMPLE.COM"));
        assert!(allowed("http://localhost:8000"));
        assert!(allowed("https://a.trusted.org"));
        assert!(allowed("https://a.b.trusted.org"));
        assert!(!allowed("https://trusted.org"));
        assert!(!allowed("https://eviltrusted.org"));
        assert!(!allowed("http://a.trusted.org"));
        assert!(!allowed("https://evil.com"));
        assert!(!allowed("null"));
        assert!(config.origin_allowed(None, None));
        assert!(
            !config
                .clone()
                .require_origin(true)
                .origin_allowed(None, None)
        );
        assert!(
            ServerConfig::new()
                .allowed_origins(["*"])
                .origin_allowed(Some("https://x"), None)
        );
    }

    #[test]
    fn without_a_list_only_the_same_host_is_allowed() {
        let config = ServerConfig::new();
        let allowed = |origin, host| config.origin_allowed(Some(origin), Some(host));
        assert!(allowed("http://localhost:8000", "localhost:8000"));
        assert!(allowed("https://chat.example.com", "chat.example.com"));
        assert!(allowed("https://chat.example.com", "CHAT.example.com:443"));
        assert!(allowed("http://chat.example.com:80", "chat.example.com"));
        assert!(allowed("http://[::1]:8000", "[::1]:8000"));
        assert!(!allowed("http://evil.example", "localhost:8000"));
        assert!(!allowed("http://localhost:9000", "localhost:8000"));
        assert!(!allowed("https://chat.example.com", "chat.example.com:80"));
        assert!(!allowed("null", "localhost:8000"));
        assert!(!config.origin_allowed(Some("http://localhost:8000"), None));
        assert!(config.origin_allowed(None, Some("localhost:8000")));
    }
}
