//! The HTTP/1.1 server that upgrades requests to WebSocket connections.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tracing::Instrument;

use crate::config::ServerConfig;
use crate::edge::{self, Peer, Shared, Slot, Slots};
use crate::router::Router;

/// A WebSocket server bound to a TCP address.
///
/// ```no_run
/// use chanx_core::{Router, Server};
/// # use chanx_core::{channel, messages::{Ping, Pong}};
/// # #[derive(Default)] struct System;
/// # #[channel] impl System { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route::<System>("/ws/system");
/// Server::bind("127.0.0.1:8000").await?.serve(app).await
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds a TCP listener.
    ///
    /// # Errors
    ///
    /// The address cannot be bound (in use, no permission, bad address).
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(Self::from_listener(TcpListener::bind(addr).await?))
    }

    /// Serves on an already bound listener.
    pub fn from_listener(listener: TcpListener) -> Self {
        Self {
            listener,
            config: ServerConfig::default(),
        }
    }

    /// Replaces the connection settings.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The bound address (useful after binding port 0).
    ///
    /// # Errors
    ///
    /// The socket's address cannot be read.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `router` until Ctrl-C or SIGTERM, then shuts down gracefully:
    /// stops accepting, lets HTTP routes in progress finish, delivers the
    /// events already accepted, closes every client with 1001 and waits for
    /// them.
    ///
    /// # Errors
    ///
    /// Only errors of the listening socket itself; per-connection errors are
    /// logged.
    pub async fn serve(self, router: Router) -> io::Result<()> {
        self.serve_with_shutdown(router, shutdown_signal()).await
    }

    /// Serves `router` until `signal` completes, then shuts down gracefully.
    ///
    /// # Errors
    ///
    /// The router does not validate ([`Router::validate`]), or the listening
    /// socket fails.
    pub async fn serve_with_shutdown(
        self,
        router: Router,
        signal: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        if let Err(problem) = router.validate() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, problem));
        }
        raise_open_file_limit(self.config.max_connections);
        let shared = Arc::new(Shared::new(router, self.config));
        tracing::info!(addr = %self.listener.local_addr()?, "listening");
        let mut signal = std::pin::pin!(signal);
        loop {
            let accepted = tokio::select! {
                () = &mut signal => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => admit(stream, peer, &shared),
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(self.listener);
        shutdown(&shared).await;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Ctrl-C, or SIGTERM (what container runtimes send) on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Graceful shutdown: HTTP routes stop taking requests (503) and those in
/// progress finish, then the sockets deliver what their inboxes hold and
/// close with 1001.
async fn shutdown(shared: &Arc<Shared>) {
    let grace = shared.config.shutdown_timeout;
    shared.http_closing.cancel();
    shared.http_requests.close();
    if tokio::time::timeout(grace, shared.http_requests.wait())
        .await
        .is_err()
    {
        tracing::warn!("HTTP routes still running after the shutdown timeout");
    }
    shared.shutdown.cancel();
    shared.tracker.close();
    let drain = grace + crate::connection::WRITER_DRAIN_TIMEOUT;
    if tokio::time::timeout(drain, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = shared.tracker.len(),
            "connections still open after the shutdown timeout"
        );
    }
}

/// Takes a new TCP connection in, if its address and the server have room.
fn admit(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>) {
    let Some(address_slot) = shared.addresses.connect(peer.ip()) else {
        tracing::warn!(%peer, "connection refused: too many connections from this address");
        refuse(&stream);
        return;
    };
    // Connections still speaking HTTP (before or without an upgrade) are
    // capped too, so idle sockets cannot pile up.
    let Some(slot) = Slot::take(shared) else {
        tracing::warn!(%peer, "connection refused: too many HTTP connections");
        refuse(&stream);
        return;
    };
    let span = tracing::debug_span!("http", %peer);
    shared
        .tracker
        .spawn(serve_http(stream, peer, Arc::clone(shared), (slot, address_slot)).instrument(span));
}

/// Tells a refused client why, without waiting for it, and closes.
fn refuse(stream: &TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
        content-length: 28\r\nconnection: close\r\n\r\ntoo many connections; retry\n";
    let _ = stream.try_write(BUSY);
}

async fn serve_http(stream: TcpStream, addr: SocketAddr, shared: Arc<Shared>, slots: Slots) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let peer = Arc::new(Peer {
        addr,
        slots: Mutex::new(Some(slots)),
    });
    let service_shared = Arc::clone(&shared);
    let service = service_fn(move |request| {
        let shared = Arc::clone(&service_shared);
        let peer = Arc::clone(&peer);
        async move { Ok::<_, Infallible>(edge::handle(request, &shared, &peer).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .max_buf_size(shared.config.max_header_bytes)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shared.http_closing.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

/// Raises the open-file soft limit to the hard limit, and warns when even
/// that cannot hold `max_connections` sockets (one file descriptor each,
/// plus a few for the listener, Redis and the runtime).
fn raise_open_file_limit(max_connections: usize) {
    #[cfg(unix)]
    {
        let wanted = u64::try_from(max_connections)
            .unwrap_or(u64::MAX)
            .saturating_add(64);
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) if limit < wanted => tracing::warn!(
                open_file_limit = limit,
                max_connections,
                "the open-file limit is below what max_connections needs; \
                 connections past it fail to be accepted (raise `ulimit -n` or lower max_connections)"
            ),
            Ok(limit) => tracing::debug!(open_file_limit = limit, "open-file limit"),
            Err(error) => tracing::warn!(%error, "cannot read or raise the open-file limit"),
        }
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}
