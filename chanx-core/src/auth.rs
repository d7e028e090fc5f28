//! Authentication and permissions for consumers, as Django REST
//! framework users know them.
//!
//! A consumer names its authenticators with
//! `#[channel(authenticator = A)]` or `#[channel(authenticators = [A, B])]`,
//! and the application registers one instance of each with
//! [`Router::with_authenticator`](crate::Router::with_authenticator). When a
//! client connects, before any of its frames is read:
//!
//! 1. the authenticators are tried in order: the first that finds its
//!    credentials and accepts them gives the identity; one that finds none
//!    ([`Ok(None)`](Authenticator::authenticate)) passes to the next; one
//!    that refuses them stops the chain. With no credentials at all the
//!    connection is anonymous, and the permissions decide;
//! 2. the channel's permissions (`#[channel(permissions = [IsAuthenticated])]`)
//!    run in order. A consumer with authenticators and no `permissions`
//!    requires [`IsAuthenticated`] (say `permissions = [AllowAny]` to let
//!    anonymous clients in);
//! 3. on success the client gets
//!    `{"action":"authentication","payload":{"status_code":200,"status_text":"OK","data":{"detail":"OK"}}}`
//!    (Chanx's frame; [`Settings::send_authentication_message`](crate::Settings::send_authentication_message)),
//!    the identity is available to every hook and handler through
//!    [`Context::identity`](crate::Context::identity), and the hooks run;
//! 4. on failure it gets the same frame with the status and
//!    `{"detail": …}`, and the connection closes with `4000 + status`
//!    (4401, 4403), as Chanx does. As in DRF, "not authenticated" is 401
//!    when the first authenticator has a `WWW-Authenticate` scheme
//!    ([`Authenticator::www_authenticate`]: bearer and token
//!    authentication do) and 403 otherwise (session cookies).
//!
//! Frames a client sends meanwhile wait: nothing is dispatched before the
//! checks pass. A `#[ws_handler(permission = P)]` is checked before each
//! frame it would handle; a denial answers with an error frame (status 403
//! or the permission's own) and the connection stays open.
//!
//! Object-level permissions load the object a connection is about (a room
//! named by a path parameter, from shared state) and check the identity
//! against it; see [`Permission`].

use std::future::Future;
use std::sync::Arc;

use http::{Extensions, header};
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
    /// What to tell the client in the authentication frame's `data`
    /// (`{"detail": "OK"}` when `None`, as Chanx sends).
    pub data: Option<Value>,
}

impl<I> Authenticated<I> {
    /// Authenticated as `identity`; the client gets `{"detail": "OK"}`.
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
///     async fn authenticate(&self, ctx: &Context) -> Result<Option<Authenticated<String>>, AuthError> {
///         match ctx.query_param("key").as_deref() {
///             Some("let-me-in") => Ok(Some(Authenticated::new("demo".to_owned()))),
///             Some(_) => Err(AuthError::unauthorized("Invalid key.")),
///             None => Ok(None), // no key: the next authenticator, or anonymous
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
    /// `Ok(Some(_))`: authenticated. `Ok(None)`: the request carries no
    /// credentials of this kind (the next authenticator is tried; with none
    /// left the connection is anonymous and the permissions decide).
    ///
    /// # Errors
    ///
    /// [`AuthError`] when credentials are present but wrong (401), or the
    /// client may not connect at all (403): the chain stops there.
    fn authenticate(
        &self,
        ctx: &Context,
    ) -> impl Future<Output = Result<Option<Authenticated<Self::Identity>>, AuthError>> + Send;

    /// The `WWW-Authenticate` scheme this authenticator answers a missing
    /// login with (DRF's `authenticate_header`), if any. When the first
    /// authenticator of a consumer has none, a "not authenticated" refusal
    /// is reported as 403 rather than 401, as DRF does.
    fn www_authenticate(&self) -> Option<&str> {
        None
    }

    /// The credentials this authenticator reads, for documentation.
    fn credentials(&self) -> Vec<Credential> {
        Vec::new()
    }
}

/// The authenticators of a consumer, tried in order: `()`, `(A,)`,
/// `(A, B)`, up to four, all with the same identity type (a mismatch is a
/// compile error). Generated by `#[channel]`; not implemented by hand.
#[diagnostic::on_unimplemented(
    message = "the authenticators of a channel must share one identity type",
    note = "each authenticator in `authenticators = [...]` must have the same `Identity`"
)]
pub trait Authenticators: Send + Sync + 'static {
    /// The identity the chain yields.
    type Identity: Send + Sync + 'static;

    /// How many authenticators there are.
    const COUNT: usize;

    /// The authenticators that are not registered on the router.
    fn missing(registry: &Extensions) -> Vec<&'static str>;

    /// Runs the chain: the first authenticator that authenticates wins; one
    /// that refuses stops it; `Ok(None)` when none found credentials.
    fn authenticate<'a>(
        registry: &'a Extensions,
        ctx: &'a Context,
    ) -> impl Future<Output = Result<Option<Authenticated<Self::Identity>>, AuthError>> + Send + 'a;

    /// Whether the first authenticator has a `WWW-Authenticate` scheme.
    fn challenges(registry: &Extensions) -> bool;

    /// Every authenticator's credentials, for documentation.
    fn credentials(registry: &Extensions) -> Vec<Credential>;
}

/// The identity type of consumer `C`'s authenticators.
pub type Identity<C> = <<C as crate::Consumer>::Authenticators as Authenticators>::Identity;

impl Authenticators for () {
    type Identity = ();

    const COUNT: usize = 0;

    fn missing(_: &Extensions) -> Vec<&'static str> {
        Vec::new()
    }

    async fn authenticate(
        _: &Extensions,
        _: &Context,
    ) -> Result<Option<Authenticated<()>>, AuthError> {
        Ok(None)
    }

    fn challenges(_: &Extensions) -> bool {
        false
    }

    fn credentials(_: &Extensions) -> Vec<Credential> {
        Vec::new()
    }
}

fn registered<A: Authenticator>(registry: &Extensions) -> Result<&A, AuthError> {
    registry.get::<Arc<A>>().map(|a| &**a).ok_or_else(|| {
        tracing::error!(
            authenticator = std::any::type_name::<A>(),
            "authenticator not registered: call Router::with_authenticator"
        );
        AuthError::new(500, "Server misconfigured.")
    })
}

macro_rules! authenticators {
    ($count:expr; $first:ident $(, $rest:ident)*) => {
        impl<$first: Authenticator $(, $rest: Authenticator<Identity = $first::Identity>)*>
            Authenticators for ($first, $($rest,)*)
        {
            type Identity = $first::Identity;

            const COUNT: usize = $count;

            fn missing(registry: &Extensions) -> Vec<&'static str> {
                let mut missing = Vec::new();
                if registry.get::<Arc<$first>>().is_none() {
                    missing.push(std::any::type_name::<$first>());
                }
                $(
                    if registry.get::<Arc<$rest>>().is_none() {
                        missing.push(std::any::type_name::<$rest>());
                    }
                )*
                missing
            }

            async fn authenticate(
                registry: &Extensions,
                ctx: &Context,
            ) -> Result<Option<Authenticated<Self::Identity>>, AuthError> {
                if let Some(found) = registered::<$first>(registry)?.authenticate(ctx).await? {
                    return Ok(Some(found));
                }
                $(
                    if let Some(found) = registered::<$rest>(registry)?.authenticate(ctx).await? {
                        return Ok(Some(found));
                    }
                )*
                Ok(None)
            }

            fn challenges(registry: &Extensions) -> bool {
                registry
                    .get::<Arc<$first>>()
                    .is_some_and(|first| first.www_authenticate().is_some())
            }

            fn credentials(registry: &Extensions) -> Vec<Credential> {
                let mut out = Vec::new();
                if let Some(a) = registry.get::<Arc<$first>>() {
                    out.extend(a.credentials());
                }
                $(
                    if let Some(a) = registry.get::<Arc<$rest>>() {
                        out.extend(a.credentials());
                    }
                )*
                out
            }
        }
    };
}

authenticators!(1; A);
authenticators!(2; A, B);
authenticators!(3; A, B, C);
authenticators!(4; A, B, C, D);

/// The authenticator of consumers that name none: everyone is anonymous.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuthenticator;

impl Authenticator for NoAuthenticator {
    type Identity = ();

    async fn authenticate(&self, _ctx: &Context) -> Result<Option<Authenticated<()>>, AuthError> {
        Ok(None)
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
///         let user = ctx.identity_as::<String>().ok_or_else(|| Denied::unauthorized("Not authenticated."))?;
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

/// Allows every connection, anonymous ones included (DRF's `AllowAny`):
/// `#[channel(authenticator = A, permissions = [AllowAny])]` lets clients
/// without credentials in.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAny;

impl Permission for AllowAny {
    async fn check(_ctx: &Context) -> Result<(), Denied> {
        Ok(())
    }
}

/// Allows authenticated connections only; implied for a consumer that names
/// authenticators and no permissions.
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

/// Token authentication: `Authorization: Bearer <token>` or
/// `Authorization: Token <token>` (DRF's `TokenAuthentication`), or
/// `?token=<token>` for browsers, checked by a [`TokenVerifier`].
///
/// No token, or an `Authorization` header with another scheme, is "no
/// credentials" (the next authenticator is tried); a wrong token is 401
/// `Invalid token.`, with DRF's messages for malformed headers.
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
/// // DRF's header only: `Authorization: Token secret`.
/// let app = Router::new().with_authenticator(BearerToken::new(tokens).keyword("Token"));
/// # let _ = app;
/// ```
#[derive(Debug)]
pub struct BearerToken<V> {
    verifier: V,
    keywords: Vec<String>,
    query_param: Option<String>,
}

impl<V: TokenVerifier> BearerToken<V> {
    /// Reads the token from `Authorization: Bearer …` or
    /// `Authorization: Token …`, or `?token=`.
    pub fn new(verifier: V) -> Self {
        Self {
            verifier,
            keywords: vec!["Bearer".to_owned(), "Token".to_owned()],
            query_param: Some("token".to_owned()),
        }
    }

    /// Accepts only the scheme `keyword` in `Authorization` (compared
    /// without case), as DRF's `TokenAuthentication.keyword`.
    #[must_use]
    pub fn keyword(mut self, keyword: impl Into<String>) -> Self {
        self.keywords = vec![keyword.into()];
        self
    }

    /// Reads the query parameter `name` instead of `token`.
    #[must_use]
    pub fn query_param(mut self, name: impl Into<String>) -> Self {
        self.query_param = Some(name.into());
        self
    }

    /// Reads the `Authorization` header only, never the query string.
    #[must_use]
    pub fn header_only(mut self) -> Self {
        self.query_param = None;
        self
    }

    /// The verifier.
    pub fn verifier(&self) -> &V {
        &self.verifier
    }

    /// The token, `None` when there is none of ours; an error for a
    /// malformed header of our scheme.
    fn token(&self, ctx: &Context) -> Result<Option<String>, AuthError> {
        if let Some(value) = ctx.header(header::AUTHORIZATION) {
            let Ok(value) = value.to_str() else {
                return Err(AuthError::unauthorized(
                    "Invalid token header. Token string should not contain invalid characters.",
                ));
            };
            let mut words = value.split_whitespace();
            let scheme = words.next().unwrap_or_default();
            if self
                .keywords
                .iter()
                .any(|keyword| keyword.eq_ignore_ascii_case(scheme))
            {
                let token = words.next();
                if words.next().is_some() {
                    return Err(AuthError::unauthorized(
                        "Invalid token header. Token string should not contain spaces.",
                    ));
                }
                return match token {
                    Some(token) => Ok(Some(token.to_owned())),
                    None => Err(AuthError::unauthorized(
                        "Invalid token header. No credentials provided.",
                    )),
                };
            }
        }
        Ok(self.query_param.as_ref().and_then(|name| {
            ctx.query_param(name)
                .filter(|token| !token.is_empty())
                .map(std::borrow::Cow::into_owned)
        }))
    }
}

impl<V: TokenVerifier> Authenticator for BearerToken<V> {
    type Identity = V::Identity;

    async fn authenticate(
        &self,
        ctx: &Context,
    ) -> Result<Option<Authenticated<V::Identity>>, AuthError> {
        let Some(token) = self.token(ctx)? else {
            return Ok(None);
        };
        match self.verifier.verify(&token, ctx).await {
            Some(identity) => Ok(Some(Authenticated::new(identity))),
            None => Err(AuthError::unauthorized("Invalid token.")),
        }
    }

    fn www_authenticate(&self) -> Option<&str> {
        self.keywords.first().map(String::as_str)
    }

    fn credentials(&self) -> Vec<Credential> {
        let schemes = self.keywords.join(" or ");
        let mut credentials = vec![Credential::http(
            "bearer",
            format!("A token in the Authorization header: {schemes} <token>"),
        )];
        if let Some(name) = &self.query_param {
            credentials.push(Credential::new(
                name.clone(),
                CredentialLocation::Query,
                "The same token as a query parameter, for browsers",
            ));
        }
        credentials
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

    /// No cookie, or an unknown or expired session, is anonymous (as
    /// Django's session authentication does); the permissions decide.
    async fn authenticate(
        &self,
        ctx: &Context,
    ) -> Result<Option<Authenticated<L::Identity>>, AuthError> {
        let Some(id) = ctx.cookie(&self.cookie) else {
            return Ok(None);
        };
        Ok(self.lookup.lookup(&id, ctx).await.map(Authenticated::new))
    }

    fn credentials(&self) -> Vec<Credential> {
        vec![Credential::new(
            self.cookie.clone(),
            CredentialLocation::Cookie,
            "The session cookie",
        )]
    }
}
