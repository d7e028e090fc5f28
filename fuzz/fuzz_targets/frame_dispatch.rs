//! Fuzzes frame decoding and dispatch into the `system` example consumer,
//! through the real connection loop.
//!
//! Each input is sent on one long-lived in-process connection: as a text
//! frame when it is UTF-8, as a binary frame otherwise. Every frame must get
//! exactly one reply that is a JSON object with a string `action`, and the
//! connection must stay open. The envelope parser and the error-frame
//! renderer are also called directly: an error frame must be valid JSON.
//!
//! Run with `cargo +nightly fuzz run frame_dispatch fuzz/corpus/frame_dispatch fuzz/seeds/frame_dispatch`
//! from the repository root (see BENCHMARKS.md and the README).

#![no_main]

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chanx_core::wire::Envelope;
use chanx_core::{ServerConfig, messages};
use futures_util::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Client = WebSocketStream<tokio::io::DuplexStream>;

struct Harness {
    runtime: Runtime,
    client: Client,
}

fn harness() -> &'static Mutex<Harness> {
    static HARNESS: OnceLock<Mutex<Harness>> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = runtime.block_on(async {
            let config = ServerConfig::new().rate_limit(None);
            let service = chanx_example_system::app().with_config(config).into_service();
            let (client_io, server_io) = tokio::io::duplex(1 << 20);
            tokio::spawn(service.serve_connection(server_io, None));
            let (mut client, _) = tokio_tungstenite::client_async("ws://localhost/ws/system", client_io)
                .await
                .expect("the upgrade succeeds");
            // The welcome frame.
            next_frame(&mut client).await;
            client
        });
        Mutex::new(Harness { runtime, client })
    })
}

async fn next_frame(client: &mut Client) -> serde_json::Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), client.next())
            .await
            .expect("the server must answer every frame")
            .expect("the connection must stay open")
            .expect("the connection must not fail");
        match message {
            WsMessage::Text(text) => {
                let value: serde_json::Value = serde_json::from_str(text.as_str()).expect("replies are JSON");
                assert!(value["action"].is_string(), "reply without an action: {value}");
                return value;
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The parser and the renderer alone.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(error) = Envelope::parse(text) {
            let frame = error.to_frame(&["ping", "user_message"]);
            let value: serde_json::Value = serde_json::from_str(&frame).expect("error frames are JSON");
            assert_eq!(value["action"], "error");
        }
        let _ = <messages::Ping as chanx_core::Message>::from_json(text);
    }

    // Through the real connection loop.
    let mut guard = harness().lock().unwrap();
    let Harness { runtime, client } = &mut *guard;
    runtime.block_on(async {
        let message = match std::str::from_utf8(data) {
            Ok(text) => WsMessage::text(text.to_owned()),
            Err(_) => WsMessage::binary(data.to_vec()),
        };
        client.send(message).await.expect("the connection must accept frames");
        next_frame(client).await;
    });
});
