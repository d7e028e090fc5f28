//! The standalone HTTP/1.1 server: an accept loop, hyper, and the same
//! [`ChanxService`](crate::ChanxService) that serves a router anywhere else.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tracing::Instrument;

use crate::edge::{self, Admitted, Shared, Slot};
use crate::router::Router;

/// A WebSocket server bound to a TCP address.
///
/// It serves a [`Router`] through the router's own tower service
/// ([`Router::into_service`]), so every protection applies the same way as
/// under axum or any other stack. On top, it counts every socket at accept
/// (so idle sockets cannot pile up past the caps), sets TCP_NODELAY, limits
/// request heads to [`ServerConfig::max_header_bytes`](crate::ServerConfig::max_header_bytes)
/// while hyper reads them, and raises the open-file limit.
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
        Self { listener }
    }

    /// The bound address (useful after binding port 0).
    ///
    /// # Errors
    ///
    /// The socket's address cannot be read.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `router` until Ctrl-C or SIGTERM, then shuts down gracefully
    /// (see [`ShutdownHandle`](crate::ShutdownHandle)).
    ///
    /// # Errors
    ///
    /// The router does not validate ([`Router::validate`]), or the listening
    /// socket fails; per-connection errors are logged.
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
        self.run(router, Host::Chanx, signal).await
    }

    /// Serves an axum app with chanx's protections at accept, where
    /// `axum::serve` has none: every socket counted in the caps of
    /// `chanx`'s [`ServerConfig`](crate::ServerConfig) (in all and per
    /// address, idle keep-alive sockets too), request heads bounded to
    /// `max_header_bytes` (HTTP 431) and `header_read_timeout`,
    /// TCP_NODELAY, the open-file limit raised. `ConnectInfo<SocketAddr>`
    /// is set for axum's extractors. `chanx` is the shutdown handle of the
    /// router merged into `app` with [`Router::into_axum`]: its config sets
    /// the limits, and on Ctrl-C or SIGTERM its sockets close with 1001
    /// while HTTP connections finish their request in progress. (Validate
    /// the router, [`Router::validate`], before merging it.)
    ///
    /// ```no_run
    /// # use chanx_core::{Router, Server, channel, messages::{Ping, Pong}};
    /// # #[derive(Default)] struct Chat;
    /// # #[channel] impl Chat { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let chat = Router::new().route::<Chat>("/ws/chat");
    /// chat.validate()?;
    /// let shutdown = chat.shutdown_handle();
    /// let app = axum::Router::new()
    ///     .route("/health", axum::routing::get(|| async { "ok" }))
    ///     .merge(chat.into_axum());
    /// Server::bind("127.0.0.1:8000").await?.serve_axum(app, shutdown).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The listening socket fails.
    #[cfg(feature = "axum")]
    pub async fn serve_axum(
        self,
        app: axum::Router,
        chanx: crate::ShutdownHandle,
    ) -> io::Result<()> {
        self.serve_axum_with_shutdown(app, chanx, shutdown_signal())
            .await
    }

    /// [`Server::serve_axum`] until `signal` completes.
    ///
    /// # Errors
    ///
    /// As [`Server::serve_axum`].
    #[cfg(feature = "axum")]
    pub async fn serve_axum_with_shutdown(
        self,
        app: axum::Router,
        chanx: crate::ShutdownHandle,
        signal: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        self.run(chanx.host_router(), Host::Axum(app), signal).await
    }

    async fn run(
        self,
        router: Router,
        host: Host,
        signal: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        router
            .validate()
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        raise_open_file_limit(router.config().max_connections);
        let handle = router.shutdown_handle();
        let service = router.into_service();
        let shared = Arc::clone(service.shared());
        tracing::info!(addr = %self.listener.local_addr()?, "listening");
        let mut signal = std::pin::pin!(signal);
        loop {
            let accepted = tokio::select! {
                () = &mut signal => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => admit(stream, peer, &shared, &host),
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(self.listener);
        handle.shutdown().await;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// What answers the requests of admitted sockets.
enum Host {
    /// The chanx router itself.
    Chanx,
    /// An axum app (merging chanx routers).
    #[cfg(feature = "axum")]
    Axum(axum::Router),
}

/// Resolves on Ctrl-C, or SIGTERM (what container runtimes send) on Unix:
/// the signal [`Server::serve`] waits for, to use with other servers' own
/// graceful shutdown (axum's `with_graceful_shutdown`).
pub async fn shutdown_signal() {
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

/// Takes a new TCP connection in, if its address and the server have room.
fn admit(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>, host: &Host) {
    let Some(address_slot) = shared.addresses.connect(peer.ip()) else {
        tracing::warn!(%peer, "connection refused: too many connections from this address");
        refuse(&stream);
        return;
    };
    // Every socket counts, speaking HTTP or upgraded, so idle sockets
    // cannot pile up either.
    let Some(slot) = Slot::take(shared) else {
        tracing::warn!(%peer, max = shared.config.max_connections, "connection refused: too many connections");
        refuse(&stream);
        return;
    };
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let admitted = Arc::new(Admitted {
        peer: Some(peer),
        slots: Mutex::new(Some((slot, Some(address_slot)))),
    });
    let span = tracing::debug_span!("http", %peer);
    let connections = &shared.router.lifecycle().connections;
    match host {
        Host::Chanx => {
            connections
                .spawn(edge::serve_admitted(stream, Arc::clone(shared), admitted).instrument(span));
        }
        #[cfg(feature = "axum")]
        Host::Axum(app) => {
            connections.spawn(
                edge::serve_admitted_axum(stream, Arc::clone(shared), admitted, app.clone())
                    .instrument(span),
            );
        }
    }
}

/// Tells a refused client why, without waiting for it, and closes.
fn refuse(stream: &TcpStream) {
    let _ = stream.try_write(edge::BUSY);
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
