//! `Server::serve_axum`: an axum app served with chanx's protections at
//! accept, which `axum::serve` does not have: heads bounded in bytes, every
//! socket counted in the caps, `ConnectInfo` for axum's extractors, and the
//! chanx router's graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use chanx_core::messages::{Ping, Pong};
use chanx_core::{CloseCode, Router, Server, ServerConfig, ShutdownHandle, channel};
use chanx_testing::{Communicator, TestServer, http_get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Health;

#[channel(name = "health")]
impl Health {
    #[ws_handler]
    async fn ping(&mut self, _: Ping) -> Pong {
        Pong
    }
}

fn chanx(config: ServerConfig) -> Router {
    Router::new()
        .route::<Health>("/ws/health")
        .with_config(config)
}

fn app(chanx: Router) -> (axum::Router, ShutdownHandle) {
    chanx.validate().unwrap();
    let shutdown = chanx.shutdown_handle();
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route(
            "/whoami",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                peer.ip().to_string()
            }),
        )
        .merge(chanx.into_axum());
    (app, shutdown)
}

/// Serves `app` with `serve_axum` until the returned sender fires.
async fn serve(
    app: axum::Router,
    shutdown: ShutdownHandle,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let server = Server::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_axum_with_shutdown(app, shutdown, async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// The status of a GET with one header of `bytes` bytes.
async fn status_with_header(addr: SocketAddr, path: &str, bytes: usize) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(bytes)
    );
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = String::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn heads_are_bounded_on_every_route_where_axum_serve_has_no_bound() {
    let (served, shutdown) = app(chanx(ServerConfig::new()));
    let (addr, stop, task) = serve(served, shutdown).await;
    assert_eq!(status_with_header(addr, "/health", 100).await, 200);
    // Over the 16 KiB head limit: refused before any route, axum's too.
    assert_eq!(status_with_header(addr, "/health", 64 * 1024).await, 431);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    // The same head through axum::serve reaches axum's route.
    let router = chanx(ServerConfig::new());
    let layer = router.layer().clone();
    let (plain, shutdown) = app(router);
    let server = TestServer::start_axum_app(plain, shutdown, layer)
        .await
        .unwrap();
    assert_eq!(
        status_with_header(server.addr(), "/health", 64 * 1024).await,
        200
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn idle_sockets_count_in_the_caps_and_axum_sees_the_peer() {
    let (served, shutdown) = app(chanx(ServerConfig::new().max_connections_per_address(2)));
    let (addr, stop, task) = serve(served, shutdown).await;
    // Two sockets that never send a byte hold both places of the address.
    let idle_a = tokio::net::TcpStream::connect(addr).await.unwrap();
    let idle_b = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A third is told why at once, and closed.
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), third.read_to_string(&mut answer)).await;
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n")
            && answer.ends_with("too many connections; retry\n"),
        "{answer:?}"
    );
    drop((idle_a, idle_b));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = http_get(addr, "/whoami").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "127.0.0.1"));
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn chanx_sockets_work_and_close_with_1001_on_shutdown() {
    let (served, shutdown) = app(chanx(ServerConfig::new()));
    let (addr, stop, task) = serve(served, shutdown).await;
    let mut client = Communicator::connect_tcp(addr, "/ws/health").await.unwrap();
    client.send_message(&Ping).await.unwrap();
    assert_eq!(client.receive_message::<Pong>().await.unwrap(), Pong);
    stop.send(()).unwrap();
    client.assert_closed(CloseCode::GOING_AWAY).await;
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("the server stops within the grace bound")
        .unwrap()
        .unwrap();
}
