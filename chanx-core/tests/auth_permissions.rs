//! Authentication, permissions and origin checks, over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chanx_core::auth::{
    BearerToken, Denied, IsAuthenticated, Permission, SessionCookie, SessionLookup, TokenVerifier,
};
use chanx_core::messages::{Ping, Pong};
use chanx_core::{CloseCode, Context, Message, Router, Server, ServerConfig, channel};
use chanx_testing::{Communicator, ConnectError, TestServer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    name: String,
    admin: bool,
}

/// Token → user; a slow lookup, to test frames sent while it runs.
struct Tokens {
    users: HashMap<String, User>,
    delay: Duration,
}

impl TokenVerifier for Tokens {
    type Identity = User;

    async fn verify(&self, token: &str, _ctx: &Context) -> Option<User> {
        tokio::time::sleep(self.delay).await;
        self.users.get(token).cloned()
    }
}

struct Sessions;

impl SessionLookup for Sessions {
    type Identity = User;

    async fn lookup(&self, id: &str, _ctx: &Context) -> Option<User> {
        (id == "s3ss10n").then(|| User {
            name: "cookie-user".into(),
            admin: false,
        })
    }
}

/// Banned users may authenticate but not connect.
struct NotBanned;

impl Permission for NotBanned {
    async fn check(ctx: &Context) -> Result<(), Denied> {
        match ctx.identity_as::<User>() {
            Some(user) if user.name == "mallory" => Err(Denied::forbidden("You are banned.")),
            _ => Ok(()),
        }
    }
}

struct IsAdmin;

impl Permission for IsAdmin {
    async fn check(ctx: &Context) -> Result<(), Denied> {
        if ctx.identity_as::<User>().is_some_and(|user| user.admin) {
            Ok(())
        } else {
            Err(Denied::forbidden(
                "You do not have permission to perform this action.",
            ))
        }
    }
}

/// Room name → members, in shared state.
#[derive(Clone)]
struct Rooms(Arc<HashMap<String, Vec<String>>>);

/// Object-level: the room named in the path must exist and list the user.
struct IsRoomMember;

impl Permission for IsRoomMember {
    async fn check(ctx: &Context) -> Result<(), Denied> {
        let rooms = ctx
            .state::<Rooms>()
            .ok_or_else(|| Denied::forbidden("No rooms."))?;
        let members = rooms
            .0
            .get(ctx.param("room").unwrap_or_default())
            .ok_or_else(|| Denied::not_found("No such room."))?;
        let user = ctx
            .identity_as::<User>()
            .ok_or_else(|| Denied::unauthorized("Not authenticated."))?;
        if members.contains(&user.name) {
            Ok(())
        } else {
            Err(Denied::forbidden("You are not a member of this room."))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "whoami")]
struct WhoAmI;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "me")]
struct Me(String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "admin_only")]
struct AdminOnly;

#[derive(Clone, Default)]
struct Handled(Arc<AtomicUsize>);

#[derive(Default)]
struct Secure;

#[channel(authenticator = BearerToken<Tokens>, permissions = [IsAuthenticated, NotBanned])]
impl Secure {
    #[ws_handler]
    async fn whoami(&mut self, ctx: &Context, _: WhoAmI) -> Me {
        if let Some(handled) = ctx.state::<Handled>() {
            handled.0.fetch_add(1, Ordering::SeqCst);
        }
        Me(ctx
            .identity::<Self>()
            .map_or_else(|| "anonymous".to_owned(), |user| user.name.clone()))
    }

    #[ws_handler(permission = IsAdmin)]
    async fn admin_only(&mut self, _: AdminOnly) -> Me {
        Me("admin stuff".into())
    }

    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[derive(Default)]
struct RoomConsumer;

#[channel(authenticator = BearerToken<Tokens>, permissions = [IsRoomMember])]
impl RoomConsumer {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[derive(Default)]
struct CookieConsumer;

#[channel(authenticator = SessionCookie<Sessions>)]
impl CookieConsumer {
    #[ws_handler]
    async fn whoami(&mut self, ctx: &Context, _: WhoAmI) -> Me {
        Me(ctx
            .identity::<Self>()
            .map(|user| user.name.clone())
            .unwrap_or_default())
    }
}

fn user(name: &str, admin: bool) -> User {
    User {
        name: name.into(),
        admin,
    }
}

fn app(delay: Duration, handled: &Handled) -> Router {
    let tokens = Tokens {
        users: HashMap::from([
            ("alice-token".to_owned(), user("alice", true)),
            ("bob-token".to_owned(), user("bob", false)),
            ("mallory-token".to_owned(), user("mallory", false)),
        ]),
        delay,
    };
    let rooms = Rooms(Arc::new(HashMap::from([(
        "kitchen".to_owned(),
        vec!["alice".to_owned()],
    )])));
    Router::new()
        .route::<Secure>("/secure")
        .route::<RoomConsumer>("/rooms/{room}")
        .route::<CookieConsumer>("/cookie")
        .with_authenticator(BearerToken::new(tokens))
        .with_authenticator(SessionCookie::new(Sessions))
        .with_state(rooms)
        .with_state(handled.clone())
}

async fn server() -> TestServer {
    TestServer::start(app(Duration::ZERO, &Handled::default()))
        .await
        .unwrap()
}

fn auth_frame(status: u16, text: &str, data: Value) -> Value {
    json!({"action":"authentication","payload":{"status_code":status,"status_text":text,"data":data}})
}

async fn refused(client: &mut Communicator, status: u16, text: &str, detail: &str) {
    assert_eq!(
        client.receive_json().await.unwrap(),
        auth_frame(status, text, json!({"detail": detail}))
    );
    client
        .assert_closed(CloseCode::application(4000 + status).unwrap())
        .await;
}

#[tokio::test]
async fn no_token_and_bad_token_close_with_4401() {
    let server = server().await;
    let mut client = server.connect("/secure").await.unwrap();
    refused(
        &mut client,
        401,
        "Unauthorized",
        "Authentication credentials were not provided.",
    )
    .await;

    let mut client = server.connect("/secure?token=wrong").await.unwrap();
    refused(&mut client, 401, "Unauthorized", "Invalid token.").await;

    let mut client = Communicator::builder("/secure")
        .header("Authorization", "Bearer wrong")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    refused(&mut client, 401, "Unauthorized", "Invalid token.").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_good_token_in_the_query_or_header_authenticates() {
    let server = server().await;
    for mut client in [
        server.connect("/secure?token=bob-token").await.unwrap(),
        Communicator::builder("/secure")
            .header("Authorization", "Bearer bob-token")
            .connect_tcp(server.addr())
            .await
            .unwrap(),
    ] {
        assert_eq!(
            client.receive_json().await.unwrap(),
            auth_frame(200, "OK", json!({"detail": "OK"}))
        );
        client.send_message(&WhoAmI).await.unwrap();
        assert_eq!(
            client.receive_message::<Me>().await.unwrap(),
            Me("bob".into())
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_denied_connection_closes_with_4403() {
    let server = server().await;
    let mut client = server.connect("/secure?token=mallory-token").await.unwrap();
    refused(&mut client, 403, "Forbidden", "You are banned.").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn handler_level_denial_keeps_the_connection() {
    let server = server().await;
    let mut bob = server.connect("/secure?token=bob-token").await.unwrap();
    bob.receive_json().await.unwrap();
    bob.send_message(&AdminOnly).await.unwrap();
    assert_eq!(
        bob.receive_json().await.unwrap(),
        json!({"action":"error","payload":{"status_code":403,"detail":"You do not have permission to perform this action."}})
    );
    bob.send_message(&Ping).await.unwrap();
    assert_eq!(bob.receive_message::<Pong>().await.unwrap(), Pong);

    let mut alice = server.connect("/secure?token=alice-token").await.unwrap();
    alice.receive_json().await.unwrap();
    alice.send_message(&AdminOnly).await.unwrap();
    assert_eq!(
        alice.receive_message::<Me>().await.unwrap(),
        Me("admin stuff".into())
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn object_level_permission_on_the_room_in_the_path() {
    let server = server().await;
    let mut member = server
        .connect("/rooms/kitchen?token=alice-token")
        .await
        .unwrap();
    assert_eq!(
        member.receive_json().await.unwrap(),
        auth_frame(200, "OK", json!({"detail": "OK"}))
    );
    member.send_message(&Ping).await.unwrap();
    assert_eq!(member.receive_message::<Pong>().await.unwrap(), Pong);

    let mut outsider = server
        .connect("/rooms/kitchen?token=bob-token")
        .await
        .unwrap();
    refused(
        &mut outsider,
        403,
        "Forbidden",
        "You are not a member of this room.",
    )
    .await;

    let mut lost = server
        .connect("/rooms/attic?token=alice-token")
        .await
        .unwrap();
    refused(&mut lost, 404, "Not Found", "No such room.").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn frames_sent_before_authentication_finishes_wait_for_it() {
    let handled = Handled::default();
    let server = TestServer::start(app(Duration::from_millis(300), &handled))
        .await
        .unwrap();

    // Good token: the early frame is handled after authentication, as bob.
    let mut client = server.connect("/secure?token=bob-token").await.unwrap();
    client.send_message(&WhoAmI).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        auth_frame(200, "OK", json!({"detail": "OK"}))
    );
    assert_eq!(
        client.receive_message::<Me>().await.unwrap(),
        Me("bob".into())
    );
    assert_eq!(handled.0.load(Ordering::SeqCst), 1);

    // Bad token: the early frames never reach a handler.
    let mut client = server.connect("/secure?token=wrong").await.unwrap();
    for _ in 0..5 {
        client.send_message(&WhoAmI).await.unwrap();
    }
    refused(&mut client, 401, "Unauthorized", "Invalid token.").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        handled.0.load(Ordering::SeqCst),
        1,
        "no frame was dispatched for the refused client"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn session_cookie_authentication() {
    let server = server().await;
    let mut client = Communicator::builder("/cookie")
        .header("Cookie", "theme=dark; sessionid=s3ss10n")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        auth_frame(200, "OK", json!({"detail": "OK"}))
    );
    client.send_message(&WhoAmI).await.unwrap();
    assert_eq!(
        client.receive_message::<Me>().await.unwrap(),
        Me("cookie-user".into())
    );

    let mut client = Communicator::builder("/cookie")
        .header("Cookie", "sessionid=expired")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    // As in DRF: an unknown session is anonymous, the implied
    // IsAuthenticated refuses it, and with session authentication first
    // (no WWW-Authenticate scheme) that is a 403.
    refused(
        &mut client,
        403,
        "Forbidden",
        "Authentication credentials were not provided.",
    )
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disallowed_origins_get_http_403() {
    let config = ServerConfig::new().allowed_origins(["https://app.example.com"]);
    let server = TestServer::start(app(Duration::ZERO, &Handled::default()).with_config(config))
        .await
        .unwrap();

    match Communicator::builder("/secure?token=bob-token")
        .header("Origin", "https://evil.example.net")
        .connect_tcp(server.addr())
        .await
    {
        Err(ConnectError::Refused { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected HTTP 403, got {other:?}"),
    }
    let mut allowed = Communicator::builder("/secure?token=bob-token")
        .header("Origin", "https://app.example.com")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    assert_eq!(
        allowed.receive_json().await.unwrap(),
        auth_frame(200, "OK", json!({"detail": "OK"}))
    );
    // Non-browser clients send no Origin and are accepted.
    let mut no_origin = server.connect("/secure?token=bob-token").await.unwrap();
    assert_eq!(
        no_origin.receive_json().await.unwrap(),
        auth_frame(200, "OK", json!({"detail": "OK"}))
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_authenticator_is_reported_when_the_server_starts() {
    let app = Router::new().route::<Secure>("/secure");
    let error = app.validate().unwrap_err().to_string();
    assert!(
        error.contains("Secure") && error.contains("with_authenticator"),
        "{error}"
    );
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let result = server.serve_with_shutdown(app, async {}).await;
    assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

/// Authenticates in its connect hook instead of with an authenticator.
struct HookAuth;

#[channel]
impl HookAuth {
    #[on_connect]
    async fn new(ctx: &Context) -> Result<Self, chanx_core::auth::AuthError> {
        match ctx.header_str("x-api-key").as_deref() {
            Some("k") => Ok(Self),
            _ => Err(chanx_core::auth::AuthError::forbidden("Bad API key.")),
        }
    }

    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[tokio::test]
async fn a_connect_hook_can_authenticate_too() {
    let server = TestServer::start(Router::new().route::<HookAuth>("/hook"))
        .await
        .unwrap();
    let mut refused_client = server.connect("/hook").await.unwrap();
    refused(&mut refused_client, 403, "Forbidden", "Bad API key.").await;
    let mut client = Communicator::builder("/hook")
        .header("x-api-key", "k")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    server.stop().await.unwrap();
}

#[derive(Default)]
struct Open;

#[channel]
impl Open {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[test]
fn the_authentication_frame_defaults_to_consumers_with_auth() {
    use chanx_core::Consumer;
    const { assert!(Secure::CONFIG.authenticates) };
    const { assert!(RoomConsumer::CONFIG.authenticates) };
    const { assert!(!Open::CONFIG.authenticates) };
    const { assert!(Open::CONFIG.send_authentication_message.is_none()) };
}
