//! What a Chanx 2.13 user relies on when porting: the authenticator chain
//! and DRF's 401/403 rule, the `authentication` frame, typed identities,
//! `#[build_groups]`, camelCase frames, frame logging, settings on the
//! router with per-channel overrides, default channel names and group
//! template checks. Over real sockets unless said otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use chanx_core::auth::{
    AllowAny, AuthError, Authenticated, Authenticator, BearerToken, Credential, CredentialLocation,
    SessionCookie, SessionLookup, TokenVerifier,
};
use chanx_core::consumer::Consumer;
use chanx_core::layer::safe_group_name;
use chanx_core::messages::{Ping, Pong};
use chanx_core::{CloseCode, Context, Message, Problem, Router, Settings, channel};
use chanx_testing::{Communicator, TestServer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `<name>-token` → name.
struct Tokens;

impl TokenVerifier for Tokens {
    type Identity = String;

    async fn verify(&self, token: &str, _: &Context) -> Option<String> {
        token.strip_suffix("-token").map(str::to_owned)
    }
}

/// Session `s-<name>` → name.
struct Sessions;

impl SessionLookup for Sessions {
    type Identity = String;

    async fn lookup(&self, id: &str, _: &Context) -> Option<String> {
        id.strip_prefix("s-").map(str::to_owned)
    }
}

/// Who the connection is, from its typed identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "whoami")]
struct WhoAmI;

/// The answer to [`WhoAmI`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "you_are")]
struct YouAre {
    name: Option<String>,
}

#[derive(Default)]
struct TokenFirst;

/// Token, then session; the implied `IsAuthenticated` decides.
#[channel(authenticators = [BearerToken<Tokens>, SessionCookie<Sessions>])]
impl TokenFirst {
    #[ws_handler]
    async fn whoami(&mut self, ctx: &Context, _: WhoAmI) -> YouAre {
        // Typed through the channel's authenticators: `Option<&String>`.
        YouAre {
            name: ctx.identity::<Self>().cloned(),
        }
    }
}

#[derive(Default)]
struct SessionFirst;

/// Session first: it has no `WWW-Authenticate` challenge, so DRF answers
/// an anonymous client 403.
#[channel(authenticators = [SessionCookie<Sessions>, BearerToken<Tokens>])]
impl SessionFirst {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[derive(Default)]
struct Open;

/// Authenticators, but anyone may connect.
#[channel(authenticators = [BearerToken<Tokens>], permissions = [AllowAny])]
impl Open {
    #[ws_handler]
    async fn whoami(&mut self, ctx: &Context, _: WhoAmI) -> YouAre {
        YouAre {
            name: ctx.identity::<Self>().cloned(),
        }
    }
}

/// An authenticator whose backing store is down.
struct Broken;

impl Authenticator for Broken {
    type Identity = String;

    async fn authenticate(&self, _: &Context) -> Result<Option<Authenticated<String>>, AuthError> {
        Err(AuthError::new(500, "session store unreachable"))
    }

    fn credentials(&self) -> Vec<Credential> {
        vec![Credential::new(
            "Authorization",
            CredentialLocation::Header,
            "Anything",
        )]
    }
}

#[derive(Default)]
struct Fragile;

#[channel(authenticator = Broken)]
impl Fragile {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn auth_app() -> Router {
    Router::new()
        .route::<TokenFirst>("/token-first")
        .route::<SessionFirst>("/session-first")
        .route::<Open>("/open")
        .route::<Fragile>("/fragile")
        .with_authenticator(BearerToken::new(Tokens))
        .with_authenticator(SessionCookie::new(Sessions))
        .with_authenticator(Broken)
}

fn auth_frame(status: u16, text: &str, data: Value) -> Value {
    json!({"action":"authentication","payload":{"status_code":status,"status_text":text,"data":data}})
}

async fn whoami(client: &mut Communicator) -> Value {
    client.send_message(&WhoAmI).await.unwrap();
    client.receive_json().await.unwrap()
}

#[tokio::test]
async fn authenticators_are_tried_in_order_and_the_first_success_wins() {
    let server = TestServer::start(auth_app()).await.unwrap();
    let addr = server.addr();

    // Bearer, DRF's `Token` keyword, and the session: each authenticates,
    // the success frame carries Chanx's data, the identity is typed.
    for (builder, name) in [
        (
            Communicator::builder("/token-first").token("ann-token"),
            "ann",
        ),
        (
            Communicator::builder("/token-first").header("Authorization", "Token bob-token"),
            "bob",
        ),
        (
            Communicator::builder("/token-first").cookie("sessionid", "s-cat"),
            "cat",
        ),
        // Both: the token (first in the chain) wins.
        (
            Communicator::builder("/token-first")
                .token("dan-token")
                .cookie("sessionid", "s-eve"),
            "dan",
        ),
    ] {
        let mut client = builder.connect_tcp(addr).await.unwrap();
        assert_eq!(
            client.assert_authenticated_status_ok().await,
            json!({"detail": "OK"})
        );
        assert_eq!(
            whoami(&mut client).await,
            json!({"action":"you_are","payload":{"name":name}})
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_refusing_authenticator_stops_the_chain() {
    let server = TestServer::start(auth_app()).await.unwrap();
    // A bad token is a refusal (as DRF's TokenAuthentication raises): the
    // valid session behind it is not tried.
    let mut client = Communicator::builder("/token-first")
        .token("nope")
        .cookie("sessionid", "s-eve")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        auth_frame(401, "Unauthorized", json!({"detail": "Invalid token."}))
    );
    client
        .assert_closed(CloseCode::application(4401).unwrap())
        .await;
    // A malformed header is refused with DRF's message.
    let mut client = Communicator::builder("/token-first")
        .header("Authorization", "Token two words")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        auth_frame(
            401,
            "Unauthorized",
            json!({"detail": "Invalid token header. Token string should not contain spaces."})
        )
    );
    client
        .assert_closed(CloseCode::application(4401).unwrap())
        .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn anonymous_is_401_or_403_as_drf_decides() {
    let server = TestServer::start(auth_app()).await.unwrap();
    let not_provided = json!({"detail": "Authentication credentials were not provided."});
    // The first authenticator has a challenge (`Bearer`): 401, close 4401.
    let mut client = server.connect("/token-first").await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        auth_frame(401, "Unauthorized", not_provided.clone())
    );
    client
        .assert_closed(CloseCode::application(4401).unwrap())
        .await;
    // An unknown session is anonymous too.
    let mut client = Communicator::builder("/token-first")
        .cookie("sessionid", "expired")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        auth_frame(401, "Unauthorized", not_provided.clone())
    );
    client
        .assert_closed(CloseCode::application(4401).unwrap())
        .await;
    // The first has none (a session cookie): 403, close 4403.
    let mut client = server.connect("/session-first").await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        auth_frame(403, "Forbidden", not_provided)
    );
    client
        .assert_closed(CloseCode::application(4403).unwrap())
        .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn allow_any_lets_anonymous_clients_in_with_no_identity() {
    let server = TestServer::start(auth_app()).await.unwrap();
    let mut client = server.connect("/open").await.unwrap();
    assert_eq!(
        client.assert_authenticated_status_ok().await,
        json!({"detail": "OK"})
    );
    assert_eq!(
        whoami(&mut client).await,
        json!({"action":"you_are","payload":{"name":null}})
    );
    let mut client = server.connect("/open?token=fay-token").await.unwrap();
    client.assert_authenticated_status_ok().await;
    assert_eq!(
        whoami(&mut client).await,
        json!({"action":"you_are","payload":{"name":"fay"}})
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_authenticator_failure_closes_with_4500_and_no_frame() {
    let server = TestServer::start(auth_app()).await.unwrap();
    let mut client = server.connect("/fragile").await.unwrap();
    // Chanx sends no authentication frame for a server error.
    assert_eq!(
        client.wait_closed().await.unwrap(),
        Some(CloseCode::application(4500).unwrap())
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_custom_token_keyword_and_header_only_tokens() {
    let app = Router::new()
        .route::<TokenFirst>("/token-first")
        .with_authenticator(BearerToken::new(Tokens).keyword("Key").header_only())
        .with_authenticator(SessionCookie::new(Sessions));
    let server = TestServer::start(app).await.unwrap();
    let mut client = Communicator::builder("/token-first")
        .header("Authorization", "Key gus-token")
        .connect_tcp(server.addr())
        .await
        .unwrap();
    client.assert_authenticated_status_ok().await;
    assert_eq!(
        whoami(&mut client).await,
        json!({"action":"you_are","payload":{"name":"gus"}})
    );
    // The query parameter is off, so `?token=` is no credential at all.
    let mut client = server
        .connect("/token-first?token=gus-token")
        .await
        .unwrap();
    assert_eq!(
        client.receive_json().await.unwrap()["payload"]["status_code"],
        401
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------
// `#[build_groups]`

/// A note for one team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "note")]
struct Note(String);

#[derive(Default)]
struct TeamConsumer;

/// Groups computed at connect from the identity, the path and the state.
#[channel(authenticator = BearerToken<Tokens>, groups = ["org_{org}"])]
impl TeamConsumer {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }

    #[build_groups]
    async fn groups(&self, ctx: &Context) -> Result<Vec<String>, String> {
        let user = ctx.identity::<Self>().ok_or("anonymous")?;
        let team = ctx
            .state::<Teams>()
            .and_then(|teams| teams.0.iter().find(|(member, _)| member == user))
            .map(|(_, team)| team.clone())
            .ok_or("no team")?;
        let org = ctx.param("org").unwrap_or_default();
        Ok(vec![
            safe_group_name([org, team.as_str()], Some("team"))
                .ok_or("empty team")?
                .to_string(),
        ])
    }
}

/// Who is in which team.
#[derive(Clone)]
struct Teams(Vec<(String, String)>);

#[tokio::test]
async fn build_groups_joins_the_groups_it_computes() {
    let teams = Teams(vec![
        ("ann".into(), "Red Team".into()),
        ("bob".into(), "Blue Team".into()),
    ]);
    let app = Router::new()
        .route::<TeamConsumer>("/ws/{org}")
        .with_authenticator(BearerToken::new(Tokens))
        .with_state(teams);
    let server = TestServer::start(app).await.unwrap();
    let mut ann = server.connect("/ws/acme?token=ann-token").await.unwrap();
    let mut bob = server.connect("/ws/acme?token=bob-token").await.unwrap();
    ann.assert_authenticated_status_ok().await;
    bob.assert_authenticated_status_ok().await;
    // Joined before the connection serves frames.
    ann.send_message(&Ping).await.unwrap();
    ann.receive_json().await.unwrap();
    bob.send_message(&Ping).await.unwrap();
    bob.receive_json().await.unwrap();

    server
        .layer()
        .broadcast("team.acme.Red-Team", &Note("red only".into()))
        .await
        .unwrap();
    assert_eq!(
        ann.receive_json().await.unwrap(),
        json!({"action":"note","payload":"red only"})
    );
    bob.receive_nothing(std::time::Duration::from_millis(100))
        .await
        .unwrap();
    // The declared template's group is joined as well.
    server
        .layer()
        .broadcast("org_acme", &Note("everyone".into()))
        .await
        .unwrap();
    for client in [&mut ann, &mut bob] {
        assert_eq!(
            client.receive_json().await.unwrap(),
            json!({"action":"note","payload":"everyone"})
        );
    }

    // A hook that fails refuses the connection with 1011, after the
    // authentication frame.
    let mut stranger = server.connect("/ws/acme?token=zed-token").await.unwrap();
    stranger.assert_authenticated_status_ok().await;
    stranger.assert_closed(CloseCode::INTERNAL_ERROR).await;
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------
// camelCase, settings, logging

/// A profile change, snake_case in Rust.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "set_profile")]
struct SetProfile {
    display_name: String,
    home_town: Option<String>,
}

/// The profile as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema, Message)]
#[message(action = "profile_saved")]
struct ProfileSaved {
    display_name: String,
    home_town: Option<String>,
}

#[derive(Default)]
struct Profile;

/// Follows the router's settings.
#[channel]
impl Profile {
    #[ws_handler]
    async fn set_profile(&mut self, update: SetProfile) -> ProfileSaved {
        ProfileSaved {
            display_name: update.display_name,
            home_town: update.home_town,
        }
    }

    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[derive(Default)]
struct SnakeProfileConsumer;

/// Overrides the router: never camelCase, never completion.
#[channel(camelize = false, send_completion = false)]
impl SnakeProfileConsumer {
    #[ws_handler]
    async fn set_profile(&mut self, update: SetProfile) -> ProfileSaved {
        ProfileSaved {
            display_name: update.display_name,
            home_town: update.home_town,
        }
    }
}

fn camel_app() -> Router {
    Router::new()
        .route::<Profile>("/profile")
        .route::<SnakeProfileConsumer>("/snake")
        .with_settings(Settings::new().camelize(true).send_completion(true))
}

#[tokio::test]
async fn camelize_converts_keys_both_ways_and_channels_can_opt_out() {
    let server = TestServer::start(camel_app()).await.unwrap();
    let mut client = server.connect("/profile").await.unwrap();
    client
        .send_json(
            &json!({"action":"set_profile","payload":{"displayName":"Ann","homeTown":"Oslo"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        client.receive_all_json().await.unwrap(),
        [json!({"action":"profile_saved","payload":{"displayName":"Ann","homeTown":"Oslo"}})]
    );
    // The error `loc` names the Rust field (values are not converted);
    // the keys of the error frame are single words.
    client
        .send_json(&json!({"action":"set_profile","payload":{"homeTown":"Oslo"}}))
        .await
        .unwrap();
    assert_eq!(
        client.receive_all_json().await.unwrap(),
        [
            json!({"action":"error","payload":[{"type":"missing","loc":["set_profile","payload","display_name"],"msg":"Field required"}]})
        ]
    );

    let mut snake = server.connect("/snake").await.unwrap();
    snake
        .send_json(
            &json!({"action":"set_profile","payload":{"display_name":"Bob","home_town":null}}),
        )
        .await
        .unwrap();
    assert_eq!(
        snake.receive_json().await.unwrap(),
        json!({"action":"profile_saved","payload":{"display_name":"Bob","home_town":null}})
    );
    // No `complete` on the channel that turned it off.
    snake
        .receive_nothing(std::time::Duration::from_millis(100))
        .await
        .unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn completion_follows_the_router_settings() {
    // Chanx's defaults: no completion frames.
    let app = Router::new().route::<Profile>("/profile");
    assert_eq!(app.settings(), &Settings::new());
    let mut client = Communicator::connect(&app, "/profile").await.unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"pong","payload":null})
    );
    client
        .receive_nothing(std::time::Duration::from_millis(100))
        .await
        .unwrap();

    let app = Router::new()
        .route::<Profile>("/profile")
        .with_settings(Settings::new().send_completion(true));
    let mut client = Communicator::connect(&app, "/profile").await.unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"pong","payload":null})
    );
    assert_eq!(
        client.receive_json().await.unwrap(),
        json!({"action":"complete","payload":null})
    );
}

/// Collects what the `chanx::frames` target logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn frames_are_logged_with_action_size_and_connection_but_no_payload() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_env_filter("chanx::frames=info")
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = Router::new().route::<Profile>("/profile").with_settings(
        Settings::new()
            .log_websocket_message(true)
            .send_completion(true)
            .log_ignored_actions(["ping", "pong"]),
    );
    let mut client = Communicator::connect(&app, "/profile").await.unwrap();
    client.send_message(&Ping).await.unwrap();
    client.receive_all_json().await.unwrap();
    client
        .send_message(&SetProfile {
            display_name: "secret-name".into(),
            home_town: None,
        })
        .await
        .unwrap();
    client.receive_all_json().await.unwrap();
    client.disconnect().await.unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("websocket received")
            && lines[0].contains("action=\"set_profile\"")
            && lines[0].contains("bytes=")
            && lines[0].contains("connection="),
        "{text}"
    );
    assert!(
        lines[1].contains("websocket sent") && lines[1].contains("action=\"profile_saved\""),
        "{text}"
    );
    // Ignored actions and the completion frames are not logged; payloads
    // never are.
    assert!(
        !text.contains("ping") && !text.contains("complete"),
        "{text}"
    );
    assert!(!text.contains("secret-name"), "{text}");
}

// ---------------------------------------------------------------------------
// Names

#[derive(Default)]
struct RoomChatConsumer;

#[channel]
impl RoomChatConsumer {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[derive(Default)]
struct MyHTTPThing;

#[channel]
impl MyHTTPThing {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[test]
fn channel_names_default_as_chanx_derives_them() {
    assert_eq!(RoomChatConsumer::CHANNEL.name, "room_chat");
    assert_eq!(MyHTTPThing::CHANNEL.name, "my_http_thing");
    assert_eq!(Profile::CHANNEL.name, "profile");
    assert_eq!(SnakeProfileConsumer::CHANNEL.name, "snake_profile");
}

#[derive(Default)]
struct ChatRoom;

#[channel(groups = ["chat_{room}"])]
impl ChatRoom {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[derive(Default)]
struct ChatAdmin;

#[channel(groups = ["chat_admin"])]
impl ChatAdmin {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[derive(Default)]
struct ChatRoomAdmins;

#[channel(groups = ["chat_{room}_admin"])]
impl ChatRoomAdmins {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[test]
fn templates_that_could_name_the_same_group_are_refused() {
    // `chat_{room}` with room `admin` would be `chat_admin`.
    let problems = Router::new()
        .route::<ChatRoom>("/chat/{room}")
        .route::<ChatAdmin>("/admin")
        .validate()
        .unwrap_err();
    assert!(
        problems
            .problems()
            .iter()
            .any(|problem| matches!(problem, Problem::AmbiguousGroups { .. })),
        "{problems}"
    );
    // `chat_{room}` and `chat_{room}_admin` cannot meet: the value's `_`
    // is encoded (`lobby_admin` → `chat_lobby.5fadmin`).
    Router::new()
        .route::<ChatRoom>("/chat/{room}")
        .route::<ChatRoomAdmins>("/admins/{room}")
        .validate()
        .unwrap();
}
