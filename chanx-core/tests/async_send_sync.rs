//! Compile-time checks that public handles and futures are `Send` and
//! `Sync` where users need them to be.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use chanx_core::messages::{Ping, Pong};
use chanx_core::{Context, Router, Server, channel};

fn require_send<T: Send>(_: &T) {}
fn require_send_sync<T: Send + Sync>() {}

#[derive(Default)]
struct Health;

#[channel]
impl Health {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

#[test]
fn handles_are_send_and_sync() {
    require_send_sync::<Context>();
    require_send_sync::<Router>();
    require_send_sync::<Server>();
    require_send_sync::<chanx_core::ServerConfig>();
    require_send_sync::<chanx_core::Reject>();
    require_send_sync::<chanx_core::SendError>();
    require_send_sync::<chanx_core::ChanxService>();
    require_send_sync::<chanx_core::ShutdownHandle>();
    require_send_sync::<chanx_core::ValidationError>();
}

#[tokio::test]
async fn futures_are_send() {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let app = Router::new().route::<Health>("/health");
    let mut service = app.clone().into_service();
    let request = http::Request::builder()
        .uri("/health")
        .body(String::new())
        .unwrap();
    let response = tower_service::Service::call(&mut service, request);
    require_send(&response);
    let shutdown = app.shutdown_handle();
    require_send(&shutdown.shutdown());
    let serving = server.serve_with_shutdown(app, async {});
    require_send(&serving);
    serving.await.unwrap();
}

async fn send_from_a_task(ctx: Context) {
    // A context clone can be moved into a spawned task.
    tokio::spawn(async move {
        let _ = ctx.send(&Pong).await;
    });
}
