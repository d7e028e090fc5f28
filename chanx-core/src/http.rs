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
//! For a full web framework, put chanx behind it and hand upgraded
//! connections to [`Router::serve_io`](crate::Router::serve_io).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::layer::Layer;

/// The largest request body an HTTP route reads (1 MiB); larger requests get
/// 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// A request to an HTTP route, with its body read.
pub struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) uri: http::Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) params: Vec<(String, String)>,
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

    /// The body parsed as JSON.
    ///
    /// # Errors
    ///
    /// The body is not JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
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

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
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

    pub(crate) fn into_hyper(self) -> http::Response<http_body_util::Full<Bytes>> {
        let mut response = http::Response::new(http_body_util::Full::new(self.body));
        *response.status_mut() = self.status;
        if let Some(content_type) = self.content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        response
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
