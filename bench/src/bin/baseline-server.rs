//! The baseline: the bench protocol written directly on tokio-tungstenite and
//! serde, with no chanx code, the way one would by hand, and tuned as chanx
//! is: a 1 KiB read buffer (chanx's), a 4 KiB write buffer, and writes
//! batched until the connection's queue is empty.
//!
//! `echo` → `echo_result`, `join` → `joined`, `broadcast` → `broadcast_result`
//! to every connection (all join `lobby` on connect), serialised once.
//!
//! Run with `cargo run --release -p chanx-bench --bin baseline-server -- --addr 127.0.0.1:9000`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

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

type Lobby = Arc<Mutex<HashMap<u64, mpsc::Sender<Utf8Bytes>>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = ([127, 0, 0, 1], 9000).into();
    while let Some(arg) = args.next() {
        if arg == "--addr" {
            addr = args
                .next()
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| std::io::Error::other("--addr needs HOST:PORT"))?;
        }
    }
    let listener = TcpListener::bind(addr).await?;
    let lobby: Lobby = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection(stream, id, Arc::clone(&lobby)));
    }
}

async fn connection(stream: TcpStream, id: u64, lobby: Lobby) {
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(4096);
    let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut source) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(256);
    lobby
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
        match incoming {
            Incoming::Echo(payload) => {
                let reply =
                    serde_json::to_string(&Outgoing::EchoResult(&payload)).unwrap_or_default();
                if tx.send(Utf8Bytes::from(reply)).await.is_err() {
                    break;
                }
            }
            Incoming::Join => {
                let reply = serde_json::to_string(&Outgoing::Joined).unwrap_or_default();
                if tx.send(Utf8Bytes::from(reply)).await.is_err() {
                    break;
                }
            }
            Incoming::Broadcast(payload) => {
                let frame = Utf8Bytes::from(
                    serde_json::to_string(&Outgoing::BroadcastResult(payload)).unwrap_or_default(),
                );
                let members: Vec<mpsc::Sender<Utf8Bytes>> = lobby
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .cloned()
                    .collect();
                for member in members {
                    let _ = member.try_send(frame.clone());
                }
            }
        }
    }
    lobby
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
    drop(tx);
    let _ = writer.await;
}
