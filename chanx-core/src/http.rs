//! Plain HTTP routes served beside the WebSocket routes, for the endpoints a
//! real-time app needs next to its sockets: a webhook that pushes an event
//! to a group, a health check, a document.
//!
//! ```
//! use chanx_core::Router;
//! use chanx_core::http::{HttpRequest, HttpResponse};
//! use chanx_core::messages::Pong;
//! use http::{Method, StatusCode};
//!
//! let app = Router::new().http(Method::POST, "/rooms/{room}/ping", |request: HttpRequest| async move {
//!     let room = request.param("room").unwrap_or_default().to_owned();
//!     match request.layer().broadcast(&format!("chat_{room}"), &Pong).await {
//!         Ok(()) => HttpResponse::status(StatusCode::ACCEPTED),
//!         Err(error) => HttpResponse::text(StatusCode::BAD_REQUEST, error.to_string()),
//!     }
//! });
//! # let _ = app;
//! ```
//!
//! Every route is behind the server's edge: bodies are limited to
//! [`ServerConfig::max_body_size`](crate::ServerConfig::max_body_size)
//! (64 KiB by default; over it, HTTP 413), each client address to
//! [`ServerConfig::http_rate_limit`](crate::ServerConfig::http_rate_limit)
//! requests (HTTP 429), a request that changes state (any method but GET,
//! HEAD, OPTIONS) must come from an allowed browser origin or none (HTTP
//! 403, see [`ServerConfig::allowed_origins`](crate::ServerConfig::allowed_origins)),
//! and once shutdown has begun routes answer HTTP 503. [`HttpRequest::json`]
//! accepts only `application/json` bodies, so a plain HTML form on another
//! site cannot post to a JSON route.
//!
//! Inside a web framework, serve the router as a tower service instead
//! ([`Router::into_service`](crate::Router::into_service), or
//! `Router::into_axum` with the `axum` feature): the same edge applies.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body::{Frame, SizeHint};
use http_body_util::Full;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::layer::Layer;
use crate::router::{ParamError, parse_param};

/// A request to an HTTP route, with its body read.
pub struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) uri: http::Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) layer: Layer,
    pub(crate) state: Arc<Extensions>,
}

impl HttpRequest {
    /// The method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request path.
    #[must_use]
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The raw query string.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// A route parameter, percent-decoded.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A route parameter parsed as `T`.
    ///
    /// # Errors
    ///
    /// [`ParamError`] when the route has no such parameter or the value does
    /// not parse; it converts into an HTTP 400 response.
    pub fn param_as<T: FromStr>(&self, name: &str) -> Result<T, ParamError>
    where
        T::Err: fmt::Display,
    {
        parse_param(&self.params, name)
    }

    /// The client's address, when the server knows it.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body parsed as JSON of type `T`; the request must say
    /// `Content-Type: application/json` (or a `+json` type).
    ///
    /// ```
    /// # use chanx_core::http::{HttpRequest, HttpResponse};
    /// # use http::StatusCode;
    /// # #[derive(serde::Deserialize)] struct Notify { title: String }
    /// async fn notify(request: HttpRequest) -> HttpResponse {
    ///     let notify: Notify = match request.json() {
    ///         Ok(notify) => notify,
    ///         Err(error) => return error.into(), // 415 or 400, with the reason
    ///     };
    ///     HttpResponse::text(StatusCode::ACCEPTED, notify.title)
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// [`JsonBodyError::UnsupportedMediaType`] for another content type,
    /// [`JsonBodyError::Invalid`] when the body is not JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JsonBodyError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        if !content_type.is_some_and(is_json) {
            return Err(JsonBodyError::UnsupportedMediaType);
        }
        serde_json::from_slice(&self.body).map_err(JsonBodyError::Invalid)
    }

    /// The application's channel layer.
    #[must_use]
    pub fn layer(&self) -> &Layer {
        &self.layer
    }

    /// Shared state registered with [`Router::with_state`](crate::Router::with_state).
    #[must_use]
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.state.get::<T>()
    }
}

/// Whether a `Content-Type` value is JSON.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Why [`HttpRequest::json`] refused a body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonBodyError {
    /// The request did not say `Content-Type: application/json`.
    #[error("send the body as JSON, with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body is not JSON of the expected shape.
    #[error("bad body: {0}")]
    Invalid(#[source] serde_json::Error),
}

impl JsonBodyError {
    /// The status to answer with: 415 or 400.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<JsonBodyError> for HttpResponse {
    fn from(error: JsonBodyError) -> Self {
        Self::text(error.status(), error.to_string())
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The query string may carry credentials: never printed.
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.uri.path())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A response from an HTTP route.
#[derive(Debug, Clone)]
#[must_use]
pub struct HttpResponse {
    pub(crate) status: StatusCode,
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) body: Bytes,
}

impl HttpResponse {
    /// An empty response.
    pub fn status(status: StatusCode) -> Self {
        Self {
            status,
            content_type: None,
            body: Bytes::new(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: Some(HeaderValue::from_static("text/plain; charset=utf-8")),
            body: Bytes::from(body.into()),
        }
    }

    /// An `application/json` response. A value that cannot be serialised
    /// gives a 500.
    pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self {
                status,
                content_type: Some(HeaderValue::from_static("application/json")),
                body: Bytes::from(body),
            },
            Err(error) => Self::text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    /// A response with a body of any content type.
    pub fn bytes(status: StatusCode, content_type: HeaderValue, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            content_type: Some(content_type),
            body: body.into(),
        }
    }

    /// The status.
    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        self.status
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn into_response(self) -> http::Response<ResponseBody> {
        let mut response = http::Response::new(ResponseBody::from(self.body));
        *response.status_mut() = self.status;
        if let Some(content_type) = self.content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        response
    }
}

impl From<ParamError> for HttpResponse {
    fn from(error: ParamError) -> Self {
        Self::text(StatusCode::BAD_REQUEST, error.to_string())
    }
}

/// The body of every response the chanx service sends: all of it at once.
#[derive(Debug, Clone, Default)]
pub struct ResponseBody(Full<Bytes>);

impl ResponseBody {
    /// An empty body.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }
}

impl<T: Into<Bytes>> From<T> for ResponseBody {
    fn from(bytes: T) -> Self {
        Self(Full::new(bytes.into()))
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// An async function from [`HttpRequest`] to [`HttpResponse`].
pub trait HttpHandler: Send + Sync + 'static {
    /// Handles one request.
    fn call(&self, request: HttpRequest) -> BoxFuture<'static, HttpResponse>;
}

impl<F, Fut> HttpHandler for F
where
    F: Fn(HttpRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    fn call(&self, request: HttpRequest) -> BoxFuture<'static, HttpResponse> {
        Box::pin(self(request))
    }
}
