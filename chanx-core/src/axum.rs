//! axum integration (feature `axum`): a chanx [`Router`] as an
//! [`axum::Router`], through the same service and checks as every other
//! way in.

use std::collections::BTreeSet;

use crate::router::Router;

impl Router {
    /// This router as an [`axum::Router`], to `merge` into an axum app (or
    /// `nest` under a prefix): each WebSocket route, each HTTP route and,
    /// with [`Router::with_asyncapi`], `/asyncapi.json` is routed to one
    /// [`ChanxService`](crate::ChanxService) (see
    /// [`Router::into_service`]), so the origin policy, the caps, the
    /// header limit, authentication and graceful shutdown apply as under
    /// the standalone [`Server`](crate::Server).
    ///
    /// Paths are registered with and without a trailing slash (except
    /// catch-all routes and `/`), as chanx matches both. A path the axum
    /// app already routes is an overlap, which axum reports by panicking
    /// when the routers are merged.
    ///
    /// Serve the app with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so the client
    /// address reaches [`Context::peer_addr`](crate::Context::peer_addr)
    /// and the per-address limits. axum's graceful shutdown does not wait
    /// for upgraded connections: give chanx's [`ShutdownHandle`] to it, as
    /// below, and open clients are closed with 1001.
    ///
    /// ```no_run
    /// use std::net::SocketAddr;
    /// # use chanx_core::{Router, channel, messages::{Ping, Pong}};
    /// # #[derive(Default)] struct ChatConsumer;
    /// # #[channel] impl ChatConsumer { #[ws_handler] async fn ping(&mut self, _: Ping) -> Pong { Pong } }
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let chat = Router::new().route::<ChatConsumer>("/ws/chat/{room}");
    /// let shutdown = chat.shutdown_handle();
    /// let app = axum::Router::new()
    ///     .route("/health", axum::routing::get(|| async { "ok" }))
    ///     .merge(chat.into_axum());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
    /// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
    ///     .with_graceful_shutdown(async move {
    ///         chanx_core::shutdown_signal().await; // Ctrl-C or SIGTERM
    ///         shutdown.shutdown().await; // chanx clients get 1001
    ///     })
    ///     .await
    /// # }
    /// ```
    ///
    /// [`ShutdownHandle`]: crate::ShutdownHandle
    pub fn into_axum<S>(self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let mut paths: BTreeSet<String> = self
            .routes()
            .map(|(path, _)| path.to_owned())
            .chain(self.http_routes().map(|(_, path)| path.to_owned()))
            .collect();
        if self.asyncapi().is_some() {
            paths.insert(crate::edge::ASYNCAPI_PATH.to_owned());
        }
        if let Some(playground) = self.playground() {
            paths.extend(playground.paths());
        }
        let service = self.into_service();
        let mut router = axum::Router::new();
        for path in &paths {
            router = router.route_service(path, service.clone());
            let catch_all = path
                .rsplit('/')
                .next()
                .is_some_and(|last| last.starts_with("{*"));
            if path != "/" && !catch_all {
                router = router.route_service(&format!("{path}/"), service.clone());
            }
        }
        router
    }
}
