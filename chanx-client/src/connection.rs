//! The task that owns the socket: writes what the handles queue, routes
//! what arrives (replies to their request, pushes to the stream, the
//! authentication frame to its watch), and reopens a lost connection.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chanx_core::Message as _;
use chanx_core::protocol::Authentication;
use chanx_core::wire::Envelope;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderName, HeaderValue, Uri};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WireCloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as Frame};

use crate::{
    Client, ClientBuilder, CloseInfo, ConnectError, Connector, Hook, Io, Reconnect, Shared,
};

/// What the handles ask of the task.
pub(crate) enum Command {
    Send(String),
    Close(u16, String),
}

/// What the task hands to the stream.
pub(crate) enum Push {
    Frame(String),
    Reconnected { gap: Duration, attempts: u32 },
}

/// Where and how to connect, kept to reconnect.
pub(crate) struct Target {
    request: http::Request<()>,
    host: String,
    port: u16,
    connect_timeout: Duration,
    max_message_size: usize,
    connector: Option<Connector>,
}

impl Target {
    pub(crate) fn new(builder: &ClientBuilder) -> Result<Self, ConnectError> {
        let invalid = || ConnectError::InvalidUrl {
            url: builder.url.clone(),
        };
        let mut url = builder.url.clone();
        if !builder.query.is_empty() {
            let mut query = form_urlencoded(&builder.query);
            if url.contains('?') {
                query.insert(0, '&');
            } else {
                query.insert(0, '?');
            }
            url.push_str(&query);
        }
        let uri: Uri = url.parse().map_err(|_| invalid())?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") if builder.connector.is_some() => true,
            _ => return Err(invalid()),
        };
        let host = uri
            .host()
            .ok_or_else(invalid)?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let mut request = url.into_client_request().map_err(|_| invalid())?;
        for (name, value) in &builder.headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) else {
                return Err(ConnectError::InvalidHeader { name: name.clone() });
            };
            request.headers_mut().append(name, value);
        }
        if !builder.subprotocols.is_empty() {
            let protocols =
                HeaderValue::try_from(builder.subprotocols.join(", ")).map_err(|_| {
                    ConnectError::InvalidHeader {
                        name: "Sec-WebSocket-Protocol".to_owned(),
                    }
                })?;
            request
                .headers_mut()
                .insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocols);
        }
        Ok(Self {
            request,
            host,
            port,
            connect_timeout: builder.connect_timeout,
            max_message_size: builder.max_message_size,
            connector: builder.connector.clone(),
        })
    }
}

fn form_urlencoded(pairs: &[(String, String)]) -> String {
    fn encode(text: &str, out: &mut String) {
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    let mut out = String::new();
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        encode(key, &mut out);
        out.push('=');
        encode(value, &mut out);
    }
    out
}

pub(crate) type Socket = WebSocketStream<Box<dyn Io>>;

/// Opens the byte stream and does the handshake, within the timeout.
pub(crate) async fn open(target: &Target) -> Result<Socket, ConnectError> {
    let timeout = target.connect_timeout;
    tokio::time::timeout(timeout, async {
        let io: Box<dyn Io> = match &target.connector {
            Some(connect) => connect(target.host.clone(), target.port).await?,
            None => {
                let stream =
                    tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
        };
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(target.max_message_size);
        config.max_frame_size = Some(target.max_message_size);
        let request = clone_request(&target.request);
        match tokio_tungstenite::client_async_with_config(request, io, Some(config)).await {
            Ok((socket, _response)) => Ok(socket),
            Err(tungstenite::Error::Http(response)) => Err(ConnectError::Refused {
                status: response.status().as_u16(),
                body: response
                    .body()
                    .as_ref()
                    .map(|body| String::from_utf8_lossy(body).into_owned())
                    .unwrap_or_default(),
            }),
            Err(tungstenite::Error::Io(error)) => Err(ConnectError::Io(error)),
            Err(other) => Err(ConnectError::Handshake(Box::new(other))),
        }
    })
    .await
    .unwrap_or(Err(ConnectError::Timeout(timeout)))
}

fn clone_request(request: &http::Request<()>) -> http::Request<()> {
    let mut copy = http::Request::new(());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// What the task keeps besides the socket.
pub(crate) struct Settings {
    pub(crate) target: Target,
    pub(crate) reconnect: Option<Reconnect>,
    pub(crate) on_reconnect: Option<Hook>,
    /// `None`: pushes are discarded.
    pub(crate) pushes: Option<mpsc::Sender<Push>>,
}

/// How one connection ended.
enum End {
    /// Every handle is gone, or one asked to close.
    ByUs(CloseInfo),
    /// The server closed with a close frame.
    ByServer(CloseInfo),
    /// The connection broke without a close frame.
    Lost,
}

/// The action of a frame, cheaply (it is always the first key of frames a
/// chanx server writes; other servers' frames are parsed).
pub(crate) fn action_of(frame: &str) -> Option<&str> {
    if let Some(rest) = frame.strip_prefix(r#"{"action":""#) {
        return rest.split_once('"').map(|(action, _)| action);
    }
    None
}

pub(crate) async fn run(
    shared: Weak<Shared>,
    mut socket: Socket,
    mut commands: mpsc::Receiver<Command>,
    settings: Settings,
) {
    loop {
        let end = drive(&shared, &mut socket, &mut commands, &settings).await;
        let Some(strong) = shared.upgrade() else {
            return;
        };
        strong.connected.store(false, Ordering::Release);
        // Requests in flight get `Disconnected` (their sender is dropped).
        strong.pending().clear();
        let (retry, info) = match end {
            End::ByUs(info) => (false, info),
            End::ByServer(info) => (
                info.code
                    .is_some_and(|code| matches!(code, 1001 | 1006 | 1011 | 1012 | 1013 | 1014)),
                info,
            ),
            End::Lost => (true, CloseInfo::default()),
        };
        let Some(policy) = settings.reconnect.as_ref().filter(|_| retry) else {
            strong.closed.send_replace(Some(info));
            return;
        };
        drop(strong);
        let down_since = Instant::now();
        let Some((reopened, attempts)) = reopen(&settings.target, policy).await else {
            if let Some(strong) = shared.upgrade() {
                strong.closed.send_replace(Some(info));
            }
            return;
        };
        let Some(strong) = shared.upgrade() else {
            return;
        };
        socket = reopened;
        tracing::info!(attempts, "chanx client reconnected");
        strong.auth.send_replace(None);
        // Anything queued while down was for the old connection.
        while commands.try_recv().is_ok() {}
        strong.connected.store(true, Ordering::Release);
        if let Some(pushes) = &settings.pushes {
            let _ = pushes
                .send(Push::Reconnected {
                    gap: down_since.elapsed(),
                    attempts,
                })
                .await;
        }
        if let Some(hook) = &settings.on_reconnect {
            let client = Client {
                shared: Arc::clone(&strong),
            };
            // Its requests need this loop reading: it runs beside it.
            let hook = hook(client);
            tokio::spawn(async move {
                if let Err(error) = hook.await {
                    tracing::warn!(%error, "chanx client: the on_reconnect hook failed");
                }
            });
        }
    }
}

/// Reopens with backoff; `None` once the policy gives up.
async fn reopen(target: &Target, policy: &Reconnect) -> Option<(Socket, u32)> {
    let mut wait = policy.initial;
    let mut attempts = 0;
    loop {
        attempts += 1;
        // Full jitter between half the wait and the wait.
        let jittered = wait / 2 + wait.mul_f64(jitter() / 2.0);
        tokio::time::sleep(jittered).await;
        match open(target).await {
            Ok(socket) => return Some((socket, attempts)),
            Err(error) => {
                tracing::debug!(attempts, %error, "chanx client: reconnect failed");
                if policy.max_attempts.is_some_and(|max| attempts >= max) {
                    return None;
                }
                wait = (wait * 2).min(policy.max);
            }
        }
    }
}

/// A number in [0, 1) from the standard library's random hasher keys.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos().into()),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

async fn drive(
    shared: &Weak<Shared>,
    socket: &mut Socket,
    commands: &mut mpsc::Receiver<Command>,
    settings: &Settings,
) -> End {
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(Command::Send(text)) => {
                    if socket.send(Frame::text(text)).await.is_err() {
                        return End::Lost;
                    }
                }
                Some(Command::Close(code, reason)) => return close(socket, code, reason).await,
                None => return close(socket, 1000, String::new()).await,
            },
            frame = socket.next() => {
                match frame {
                    Some(Ok(Frame::Text(text))) => route(shared, settings, text.as_str()).await,
                    Some(Ok(Frame::Close(frame))) => {
                        let info = close_info(frame.as_ref());
                        // tungstenite answers the close; let it flush.
                        let _ = socket.close(None).await;
                        return End::ByServer(info);
                    }
                    Some(Ok(Frame::Ping(_))) => {
                        // The pong is queued by tungstenite; send it now.
                        if socket.flush().await.is_err() {
                            return End::Lost;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::debug!(%error, "chanx client: connection lost");
                        return End::Lost;
                    }
                    None => return End::Lost,
                }
            }
        }
    }
}

async fn close(socket: &mut Socket, code: u16, reason: String) -> End {
    let frame = CloseFrame {
        code: WireCloseCode::from(code),
        reason: reason.clone().into(),
    };
    let _ = socket.close(Some(frame)).await;
    // Read until the server's answer, briefly.
    let answer = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(frame)) = socket.next().await {
            if let Frame::Close(frame) = frame {
                return close_info(frame.as_ref());
            }
        }
        CloseInfo {
            code: Some(code),
            reason: reason.clone(),
        }
    })
    .await;
    End::ByUs(answer.unwrap_or(CloseInfo {
        code: Some(code),
        reason,
    }))
}

fn close_info(frame: Option<&CloseFrame>) -> CloseInfo {
    frame.map_or_else(CloseInfo::default, |frame| CloseInfo {
        code: Some(u16::from(frame.code)),
        reason: frame.reason.to_string(),
    })
}

/// Sends a frame where it belongs: the authentication watch, the request
/// that waits for its `ref`, or the stream.
async fn route(shared: &Weak<Shared>, settings: &Settings, text: &str) {
    let Some(strong) = shared.upgrade() else {
        return;
    };
    let (action, reference) = match Envelope::parse(text) {
        Ok(envelope) => (
            Some(envelope.action.into_owned()),
            envelope
                .reference
                .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
                .and_then(|reference| reference.parse::<u64>().ok()),
        ),
        Err(_) => (None, None),
    };
    match action.as_deref() {
        Some("authentication") => {
            if let Ok(frame) = Authentication::from_json(text) {
                strong.auth.send_replace(Some(frame));
            }
            return;
        }
        Some("complete" | "group_complete" | "event_complete") => return,
        _ => {}
    }
    if let Some(reference) = reference
        && let Some(waiter) = strong.pending().remove(&reference)
    {
        let _ = waiter.send(text.to_owned());
        return;
    }
    drop(strong);
    if let Some(pushes) = &settings.pushes {
        // Bounded: a reader that falls behind stops this loop, not memory.
        let _ = pushes.send(Push::Frame(text.to_owned())).await;
    }
}
