//! Authentication and permissions for consumers.
//!
//! A consumer names its [`Authenticator`] with
//! `#[channel(authenticator = MyAuth)]`, and the application registers one
//! instance with [`Router::with_authenticator`](crate::Router::with_authenticator).
//! When a client connects, before any of its frames is read:
//!
//! 1. the authenticator checks the upgrade request (path parameters, query,
//!    headers, cookies, shared state) and yields an identity or an
//!    [`AuthError`];
//! 2. the channel's permissions (`#[channel(permissions = [IsAuthenticated])]`)
//!    run in order;
//! 3. on success the client gets
//!    `{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":…}}`,
//!    the identity is available to every hook and handler through
//!    [`Context::identity`](crate::Context::identity), and the hooks run;
//! 4. on failure it gets the same frame with the status (401, 403…) and the
//!    connection closes with `4000 + status` (4401, 4403), as Chanx does.
//!
//! Frames a client sends meanwhile wait: nothing is dispatched as an
//! anonymous user. A `#[ws_handler(permission = P)]` is checked before each
//! frame it would handle; a denial answers with an error frame (status 403 or
//! the permission's own) and the connection stays open.
//!
//! Object-level permissions load the object a connection is about (a room
//! named by a path parameter, from shared state) and check the identity
//! against it; see [`Permission`].

use std::future::Future;

use http::header;
use serde_json::Value;

use crate::context::Context;

/// Where a credential travels in the upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialLocation {
    /// A query parameter, as in `?token=…`.
    Query,
    /// A request header, as in `Authorization: Bearer …`.
    Header,
    /// A cookie.
    Cookie,
}

/// A credential an authenticator reads, declared for documentation
/// (AsyncAPI `securitySchemes`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credential {
    /// The query parameter, header or cookie name.
    pub name: String,
    /// Where it travels.
    pub location: CredentialLocation,
    /// What it is.
    pub description: String,
    /// For an `Authorization` header: the HTTP scheme, such as `bearer`.
    pub http_scheme: Option<String>,
}

impl Credential {
    /// A credential named `name` at `location`.
    pub fn new(
        name: impl Into<String>,
        location: CredentialLocation,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            location,
            description: description.into(),
            http_scheme: None,
        }
    }

    /// An `Authorization: <scheme> …` header.
    pub fn http(scheme: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: "Authorization".to_owned(),
            location: CredentialLocation::Header,
            description: description.into(),
            http_scheme: Some(scheme.into()),
        }
    }
}

/// A successful authentication.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authenticated<I> {
    /// Who the client is.
    pub identity: I,
    /// What to tell the client in the authentication frame's `data`.
    pub data: Option<Value>,
}

impl<I> Authenticated<I> {
    /// Authenticated as `identity`, with no `data` for the client.
    pub fn new(identity: I) -> Self {
        Self {
            identity,
            data: None,
        }
    }

    /// Adds `data` for the authentication frame.
    #[must_use]
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// A refused authentication or a denied permission: an HTTP-like status and
/// a detail for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {detail}")]
pub struct AuthError {
    status: u16,
    detail: String,
}

/// A denied permission; the same shape as [`AuthError`].
pub type Denied = AuthError;

impl AuthError {
    /// 401 with `detail`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, detail)
    }

    /// 403 with `detail`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, detail)
    }

    /// 404 with `detail`: the object the connection is about does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, detail)
    }

    /// Any status in 400..=999 (a status outside that range becomes 403) and
    /// `detail`.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status: if (400..=999).contains(&status) {
                status
            } else {
                403
            },
            detail: detail.into(),
        }
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The detail.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The reason phrase of the status (`Unauthorized`, `Forbidden`…).
    #[must_use]
    pub fn status_text(&self) -> &'static str {
        status_text(self.status)
    }
}

pub(crate) fn status_text(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Error")
}

/// Checks a connection's credentials.
///
/// ```
/// use chanx_core::Context;
/// use chanx_core::auth::{AuthError, Authenticated, Authenticator, Credential, CredentialLocation};
///
/// /// Accepts `?key=let-me-in`.
/// struct DemoKey;
///
/// impl Authenticator for DemoKey {
///     type Identity = String;
///
///     async fn authenticate(&self, ctx: &Context) -> Result<Authenticated<String>, AuthError> {
///         match ctx.query_param("key").as_deref() {
///             Some("let-me-in") => Ok(Authenticated::new("demo".to_owned())),
///             Some(_) => Err(AuthError::unauthorized("Invalid key.")),
///             None => Err(AuthError::unauthorized("Authentication credentials were not provided.")),
///         }
///     }
///
///     fn credentials(&self) -> Vec<Credential> {
///         vec![Credential::new("key", CredentialLocation::Query, "The demo key")]
///     }
/// }
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// Who an authenticated client is; read it with
    /// [`Context::identity`](crate::Context::identity).
    type Identity: Send + Sync + 'static;

    /// Checks the upgrade request behind `ctx`.
    ///
    /// # Errors
    ///
    /// [`AuthError`] with the status to report (401 for missing or bad
    /// credentials, 403 for a known client that may not connect).
    fn authenticate(
        &self,
        ctx: &Context,
    ) -> impl Future<Output = Result<Authenticated<Self::Identity>, AuthError>> + Send;

    /// The credentials this authenticator reads, for documentation.
    fn credentials(&self) -> Vec<Credential> {
        Vec::new()
    }
}

/// The authenticator of consumers that name none: everyone is anonymous.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuthenticator;

impl Authenticator for NoAuthenticator {
    type Identity = ();

    async fn authenticate(&self, _ctx: &Context) -> Result<Authenticated<()>, AuthError> {
        Ok(Authenticated::new(()))
    }
}

/// A check of a connection (at connect) or of one handler (before each
/// frame).
///
/// Permissions are types, named in `#[channel(permissions = [A, B])]` and
/// `#[ws_handler(permission = P)]`; they read what they need from the
/// [`Context`]: the identity, route parameters, shared state.
///
/// An object-level permission loads the object the connection is about and
/// checks the identity against it:
///
/// ```
/// use std::collections::HashMap;
/// use chanx_core::Context;
/// use chanx_core::auth::{Denied, Permission};
///
/// /// Room name → member names, shared with `Router::with_state`.
/// #[derive(Clone, Default)]
/// struct Rooms(std::sync::Arc<HashMap<String, Vec<String>>>);
///
/// /// Only members of the room in the path.
/// struct IsRoomMember;
///
/// impl Permission for IsRoomMember {
///     async fn check(ctx: &Context) -> Result<(), Denied> {
///         let rooms = ctx.state::<Rooms>().ok_or_else(|| Denied::forbidden("no rooms"))?;
///         let room = ctx.param("room").unwrap_or_default();
///         let members = rooms.0.get(room).ok_or_else(|| Denied::not_found("No such room."))?;
///         let user = ctx.identity::<String>().ok_or_else(|| Denied::unauthorized("Not authenticated."))?;
///         if members.contains(user) { Ok(()) } else { Err(Denied::forbidden("You are not a member of this room.")) }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a chanx permission",
    note = "implement `chanx_core::auth::Permission` for `{Self}`"
)]
pub trait Permission: 'static {
    /// Allows or denies.
    ///
    /// # Errors
    ///
    /// [`Denied`] with the status and detail to report.
    fn check(ctx: &Context) -> impl Future<Output = Result<(), Denied>> + Send;
}

/// Allows authenticated connections only.
#[derive(Debug, Clone, Copy, Default)]
pub struct IsAuthenticated;

impl Permission for IsAuthenticated {
    async fn check(ctx: &Context) -> Result<(), Denied> {
        if ctx.is_authenticated() {
            Ok(())
        } else {
            Err(Denied::unauthorized(
                "Authentication credentials were not provided.",
            ))
        }
    }
}

/// Checks a bearer token for [`BearerToken`].
pub trait TokenVerifier: Send + Sync + 'static {
    /// Who a valid token belongs to.
    type Identity: Send + Sync + 'static;

    /// The identity behind `token`, or `None` for an invalid token.
    fn verify(
        &self,
        token: &str,
        ctx: &Context,
    ) -> impl Future<Output = Option<Self::Identity>> + Send;
}

/// Token authentication: `Authorization: Bearer <token>` or `?token=<token>`,
/// checked by a [`TokenVerifier`].
///
/// ```
/// use std::collections::HashMap;
/// use chanx_core::{Context, Router};
/// use chanx_core::auth::{BearerToken, TokenVerifier};
///
/// struct Tokens(HashMap<String, String>);
///
/// impl TokenVerifier for Tokens {
///     type Identity = String;
///
///     async fn verify(&self, token: &str, _ctx: &Context) -> Option<String> {
///         self.0.get(token).cloned()
///     }
/// }
///
/// let tokens = Tokens(HashMap::from([("secret".to_owned(), "alice".to_owned())]));
/// let app = Router::new().with_authenticator(BearerToken::new(tokens));
/// # let _ = app;
/// ```
#[derive(Debug)]
pub struct BearerToken<V> {
    verifier: V,
    query_param: String,
}

impl<V: TokenVerifier> BearerToken<V> {
    /// Reads the token from `Authorization: Bearer` or `?token=`.
    pub fn new(verifier: V) -> Self {
        Self {
            verifier,
            query_param: "token".to_owned(),
        }
    }

    /// Reads the query parameter `name` instead of `token`.
    #[must_use]
    pub fn query_param(mut self, name: impl Into<String>) -> Self {
        self.query_param = name.into();
        self
    }

    /// The verifier.
    pub fn verifier(&self) -> &V {
        &self.verifier
    }

    fn token(&self, ctx: &Context) -> Option<String> {
        let header = ctx
            .header(header::AUTHORIZATION)
            .and_then(|value| {
                let value = value.to_str().ok()?;
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            })
            .filter(|token| !token.is_empty());
        match header {
            Some(token) => Some(token),
            None => ctx
                .query_param(&self.query_param)
                .filter(|token| !token.is_empty())
                .map(std::borrow::Cow::into_owned),
        }
    }
}

impl<V: TokenVerifier> Authenticator for BearerToken<V> {
    type Identity = V::Identity;

    async fn authenticate(&self, ctx: &Context) -> Result<Authenticated<V::Identity>, AuthError> {
        let Some(token) = self.token(ctx) else {
            return Err(AuthError::unauthorized(
                "Authentication credentials were not provided.",
            ));
        };
        match self.verifier.verify(&token, ctx).await {
            Some(identity) => Ok(Authenticated::new(identity)),
            None => Err(AuthError::unauthorized("Invalid token.")),
        }
    }

    fn credentials(&self) -> Vec<Credential> {
        vec![
            Credential::http("bearer", "A bearer token in the Authorization header"),
            Credential::new(
                self.query_param.clone(),
                CredentialLocation::Query,
                "The same token as a query parameter, for browsers",
            ),
        ]
    }
}

/// Finds the session behind a cookie for [`SessionCookie`].
pub trait SessionLookup: Send + Sync + 'static {
    /// Who the session belongs to.
    type Identity: Send + Sync + 'static;

    /// The identity of session `id`, or `None` for an unknown or expired
    /// session. Verify the cookie's signature here if it is signed.
    fn lookup(
        &self,
        id: &str,
        ctx: &Context,
    ) -> impl Future<Output = Option<Self::Identity>> + Send;
}

/// Session authentication: a cookie (default `sessionid`) looked up by a
/// [`SessionLookup`], as Django's session middleware does.
#[derive(Debug)]
pub struct SessionCookie<L> {
    lookup: L,
    cookie: String,
}

impl<L: SessionLookup> SessionCookie<L> {
    /// Reads the `sessionid` cookie.
    pub fn new(lookup: L) -> Self {
        Self {
            lookup,
            cookie: "sessionid".to_owned(),
        }
    }

    /// Reads the cookie `name` instead.
    #[must_use]
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie = name.into();
        self
    }
}

impl<L: SessionLookup> Authenticator for SessionCookie<L> {
    type Identity = L::Identity;

    async fn authenticate(&self, ctx: &Context) -> Result<Authenticated<L::Identity>, AuthError> {
        let Some(id) = ctx.cookie(&self.cookie) else {
            return Err(AuthError::unauthorized(
                "Authentication credentials were not provided.",
            ));
        };
        match self.lookup.lookup(&id, ctx).await {
            Some(identity) => Ok(Authenticated::new(identity)),
            None => Err(AuthError::unauthorized("Invalid or expired session.")),
        }
    }

    fn credentials(&self) -> Vec<Credential> {
        vec![Credential::new(
            self.cookie.clone(),
            CredentialLocation::Cookie,
            "The session cookie",
        )]
    }
}
