//! Run with `cargo run -p chanx-example-axum -- --addr 127.0.0.1:8000 [--layer redis]`.

use std::process::ExitCode;

use chanx::Server;
use chanx_example_axum::{DEMO_ADMIN_TOKEN, Rooms, app, chat};

#[tokio::main]
async fn main() -> ExitCode {
    let rooms = Rooms::demo();
    // Command line, logging, --emit-asyncapi and the channel layer, as in
    // every example.
    let (addr, chat) = match chanx_example_support::setup("axum-chat", chat(rooms.clone())).await {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let (app, shutdown) = app(chat, rooms, DEMO_ADMIN_TOKEN);
    let server = match Server::bind(addr).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("axum-chat: cannot listen on {addr}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("axum-chat: http://{addr}/api/rooms, ws://{addr}/ws/chat/{{room}}");
    // chanx's server for the whole axum app: heads bounded, every socket
    // counted in the caps (`axum::serve` has neither), ConnectInfo for the
    // handlers; Ctrl-C or SIGTERM closes chat sockets with 1001.
    match server.serve_axum(app, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("axum-chat: server failed: {error}");
            ExitCode::FAILURE
        }
    }
}
