//! The WebSocket playground and the docs page, served by the app from its
//! own AsyncAPI document ([`Router::with_playground`](crate::Router::with_playground)).
//!
//! Both pages and their scripts and stylesheet are embedded in the binary
//! (about 60 KiB): they work offline, load nothing from another host, and
//! are served with a Content-Security-Policy that forbids it. Paths, with
//! the default `/playground`:
//!
//! | path | what |
//! |---|---|
//! | `GET /playground` | the playground: every channel, connections side by side, messages checked against their schema, a live log |
//! | `GET /asyncapi` | the docs page: channels, operations, every message with its schema table and example, "try it" links |
//! | `GET /playground/{style.css, common.js, playground.js, docs.js}` | their assets |
//!
//! The pages read `GET /asyncapi.json`, so the router needs
//! [`Router::with_asyncapi`](crate::Router::with_asyncapi) too
//! ([`Router::validate`](crate::Router::validate) says so otherwise). They
//! show nothing the document does not already publish; a browser's
//! connections from the playground are ordinary clients, subject to the
//! origin policy, authentication and every limit.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

use crate::http::ResponseBody;

/// Where the docs page is served: beside `/asyncapi.json`.
pub(crate) const DOCS_PATH: &str = "/asyncapi";

const PLAYGROUND_HTML: &str = include_str!("assets/playground.html");
const DOCS_HTML: &str = include_str!("assets/docs.html");
const ASSETS: [(&str, &str, &str); 4] = [
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "playground.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/playground.js"),
    ),
    (
        "docs.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/docs.js"),
    ),
];

/// Nothing from another host; connections to this host only; no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The pages, rendered once for the router's paths.
#[derive(Debug)]
pub(crate) struct Playground {
    path: String,
    playground: Bytes,
    docs: Bytes,
}

/// Why a playground path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "playground path {0:?}: give an absolute path of letters, digits, `/`, `_`, `-` and `.`, not ending in `/` (such as \"/playground\")"
)]
pub struct InvalidPlaygroundPath(pub(crate) String);

impl Playground {
    /// The pages for a playground at `path`, reading the document at
    /// `asyncapi`.
    pub(crate) fn new(path: &str, asyncapi: &str) -> Result<Self, InvalidPlaygroundPath> {
        let valid = path.len() > 1
            && path.starts_with('/')
            && !path.ends_with('/')
            && !path.contains("//")
            && path.bytes().all(|byte| {
                byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'_' | b'-' | b'.')
            });
        if !valid || path == DOCS_PATH || path == asyncapi {
            return Err(InvalidPlaygroundPath(path.to_owned()));
        }
        let fill = |page: &str| {
            Bytes::from(
                page.replace("{{PLAYGROUND}}", path)
                    .replace("{{ASYNCAPI}}", asyncapi)
                    .replace("{{DOCS}}", DOCS_PATH),
            )
        };
        Ok(Self {
            path: path.to_owned(),
            playground: fill(PLAYGROUND_HTML),
            docs: fill(DOCS_HTML),
        })
    }

    /// The playground's path.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Every path served: the pages and the assets.
    #[cfg(feature = "axum")]
    pub(crate) fn paths(&self) -> impl Iterator<Item = String> + '_ {
        [DOCS_PATH.to_owned(), self.path.clone()].into_iter().chain(
            ASSETS
                .iter()
                .map(|(name, ..)| format!("{}/{name}", self.path)),
        )
    }

    /// Whether `path` is one of the pages or assets.
    pub(crate) fn owns(&self, path: &str) -> bool {
        path == DOCS_PATH
            || path == self.path
            || path
                .strip_prefix(self.path.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| {
                    rest.is_empty() || ASSETS.iter().any(|(name, ..)| *name == rest)
                })
    }

    /// The response for `GET`/`HEAD` of one of the pages or assets, or
    /// `None` when `path` is not one.
    pub(crate) fn serve(&self, method: &Method, path: &str) -> Option<Response<ResponseBody>> {
        if !self.owns(path) {
            return None;
        }
        if method != Method::GET && method != Method::HEAD {
            let mut response =
                Response::new(ResponseBody::from("method not allowed on this path\n"));
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Some(response);
        }
        let (content_type, body) = if path == DOCS_PATH {
            ("text/html; charset=utf-8", self.docs.clone())
        } else if path == self.path || path.len() == self.path.len() + 1 {
            ("text/html; charset=utf-8", self.playground.clone())
        } else {
            let name = &path[self.path.len() + 1..];
            let (_, content_type, text) = ASSETS.iter().find(|(asset, ..)| *asset == name)?;
            (*content_type, Bytes::from_static(text.as_bytes()))
        };
        let body = if method == Method::HEAD {
            Bytes::new()
        } else {
            body
        };
        let mut response = Response::new(ResponseBody::from(body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        for bad in [
            "",
            "/",
            "playground",
            "/a/",
            "/a//b",
            "/a b",
            "/asyncapi",
            "/asyncapi.json",
            "/é",
        ] {
            assert!(Playground::new(bad, "/asyncapi.json").is_err(), "{bad:?}");
        }
        assert!(Playground::new("/tools/play-ground_1.0", "/asyncapi.json").is_ok());
    }

    #[test]
    fn pages_name_the_paths_and_assets_are_found() {
        let playground = Playground::new("/play", "/asyncapi.json").unwrap();
        let page = playground.serve(&Method::GET, "/play").unwrap();
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            page.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        let html = std::str::from_utf8(&playground.playground).unwrap();
        assert!(html.contains(r#"data-asyncapi="/asyncapi.json""#));
        assert!(html.contains(r#"src="/play/playground.js""#));
        assert!(!html.contains("{{"));
        let docs = std::str::from_utf8(&playground.docs).unwrap();
        assert!(docs.contains(r#"src="/play/docs.js""#) && !docs.contains("{{"));
        for asset in ["style.css", "common.js", "playground.js", "docs.js"] {
            assert!(
                playground
                    .serve(&Method::GET, &format!("/play/{asset}"))
                    .is_some()
            );
        }
        assert!(playground.serve(&Method::GET, "/play/other.js").is_none());
        assert!(playground.serve(&Method::GET, "/player").is_none());
        assert_eq!(
            playground.serve(&Method::POST, "/play").unwrap().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert!(playground.serve(&Method::GET, "/asyncapi").is_some());
    }
}
