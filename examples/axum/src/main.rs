//! Run with `cargo run -p chanx-example-axum -- --addr 127.0.0.1:8000 [--layer redis]`.

use std::net::SocketAddr;
use std::process::ExitCode;

use chanx_example_axum::{DEMO_ADMIN_TOKEN, Rooms, app, chat};

#[tokio::main]
async fn main() -> ExitCode {
    let rooms = Rooms::demo();
    // Command line, logging, --emit-asyncapi and the channel layer, as in
    // every example; then serving is axum's.
    let (addr, chat) = match chanx_example_support::setup("axum-chat", chat(rooms.clone())).await {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let (app, shutdown) = app(chat, rooms, DEMO_ADMIN_TOKEN);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("axum-chat: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("axum-chat: http://{addr}/api/rooms, ws://{addr}/ws/chat/{{room}}");
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        chanx::shutdown_signal().await; // Ctrl-C or SIGTERM
        shutdown.shutdown().await; // chat sockets get 1001
    })
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("axum-chat: server failed: {error}");
            ExitCode::FAILURE
        }
    }
}
