//! The bench protocol (see `examples/bench`) as a Rust user would write it
//! on axum's WebSocket support, without chanx: `echo` → `echo_result`,
//! `join` → `joined`, `broadcast` → `broadcast_result` to every connection
//! (all join `lobby`), serialised once. Tuned as the other baseline is: a
//! 1 KiB read buffer like chanx's, writes batched until the queue is empty.
//!
//! `cargo run --release --manifest-path bench/axum-baseline/Cargo.toml -- --addr 127.0.0.1:9001`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

#[derive(Deserialize)]
#[serde(tag = "action", content = "payload")]
enum Incoming<'a> {
    #[serde(rename = "echo")]
    Echo(EchoPayload),
    #[serde(rename = "join")]
    Join,
    #[serde(rename = "broadcast", borrow)]
    Broadcast(&'a RawValue),
}

#[derive(Serialize, Deserialize)]
struct EchoPayload {
    text: String,
    seq: i64,
}

#[derive(Serialize)]
#[serde(tag = "action", content = "payload")]
enum Outgoing<'a> {
    #[serde(rename = "echo_result")]
    EchoResult(&'a EchoPayload),
    #[serde(rename = "joined")]
    Joined,
    #[serde(rename = "broadcast_result")]
    BroadcastResult(&'a RawValue),
}

#[derive(Clone, Default)]
struct Lobby {
    members: Arc<Mutex<HashMap<u64, mpsc::Sender<Utf8Bytes>>>>,
    ids: Arc<AtomicU64>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = ([127, 0, 0, 1], 9001).into();
    while let Some(arg) = args.next() {
        if arg == "--addr" {
            addr = args
                .next()
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| std::io::Error::other("--addr needs HOST:PORT"))?;
        }
    }
    let app = Router::new()
        .route("/ws/bench", get(upgrade))
        .with_state(Lobby::default());
    let listener = tokio::net::TcpListener::bind(addr)
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, app).await
}

async fn upgrade(ws: WebSocketUpgrade, State(lobby): State<Lobby>) -> Response {
    ws.read_buffer_size(1024)
        .write_buffer_size(4096)
        .on_upgrade(move |socket| connection(socket, lobby))
}

async fn connection(socket: WebSocket, lobby: Lobby) {
    let id = lobby.ids.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut source) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(256);
    lobby
        .members
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.feed(Message::Text(text)).await.is_err() {
                break;
            }
            if rx.is_empty() && sink.flush().await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = source.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(incoming) = serde_json::from_str::<Incoming<'_>>(text.as_str()) else {
            continue;
        };
        let reply = match incoming {
            Incoming::Echo(payload) => serde_json::to_string(&Outgoing::EchoResult(&payload)),
            Incoming::Join => serde_json::to_string(&Outgoing::Joined),
            Incoming::Broadcast(payload) => {
                let Ok(frame) = serde_json::to_string(&Outgoing::BroadcastResult(payload)) else {
                    continue;
                };
                let frame = Utf8Bytes::from(frame);
                let members: Vec<mpsc::Sender<Utf8Bytes>> = lobby
                    .members
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .cloned()
                    .collect();
                for member in members {
                    let _ = member.try_send(frame.clone());
                }
                continue;
            }
        };
        let Ok(reply) = reply else { continue };
        if tx.send(Utf8Bytes::from(reply)).await.is_err() {
            break;
        }
    }
    lobby
        .members
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
    drop(tx);
    let _ = writer.await;
}
