//! Recording what consumers send through the channel layer.

use std::sync::{Arc, Mutex, PoisonError};

use chanx_core::Layer;
use chanx_core::layer::{
    ChannelLayer, ChannelName, GroupName, Inbox, LayerError, LayerMessage, LayerStats, MessageKind,
};
use futures_util::future::BoxFuture;
use serde_json::Value;

/// One message sent through the layer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Captured {
    /// A broadcast (to clients) or an event (to event handlers).
    pub kind: MessageKind,
    /// The group it was sent to, or `None` for a send to one connection.
    pub group: Option<String>,
    /// The frame, parsed.
    pub frame: Value,
}

/// A layer that records every group send and direct send, then passes it on
/// to the wrapped layer. Like Chanx's `capture_broadcast_events`.
///
/// ```
/// use chanx_core::Router;
/// use chanx_core::messages::Pong;
/// use chanx_testing::CaptureLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let capture = CaptureLayer::in_memory();
/// let app = Router::new().with_layer(capture.layer());
/// app.layer().broadcast("lobby", &Pong).await?;
/// let sent = capture.take();
/// assert_eq!(sent[0].group.as_deref(), Some("lobby"));
/// assert_eq!(sent[0].frame["action"], "pong");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CaptureLayer {
    inner: Layer,
    log: Arc<Mutex<Vec<Captured>>>,
}

impl std::fmt::Debug for CaptureLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureLayer").finish_non_exhaustive()
    }
}

impl CaptureLayer {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Layer) -> Self {
        Self {
            inner,
            log: Arc::default(),
        }
    }

    /// Wraps a new in-memory layer.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::new(Layer::memory())
    }

    /// The layer to give to [`Router::with_layer`](chanx_core::Router::with_layer).
    #[must_use]
    pub fn layer(&self) -> Layer {
        Layer::new(self.clone())
    }

    /// Everything recorded so far, clearing the record.
    #[must_use]
    pub fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The recorded broadcasts' frames, clearing the whole record.
    #[must_use]
    pub fn broadcasts(&self) -> Vec<Value> {
        self.frames(MessageKind::Broadcast)
    }

    /// The recorded events' frames, clearing the whole record.
    #[must_use]
    pub fn events(&self) -> Vec<Value> {
        self.frames(MessageKind::Event)
    }

    fn frames(&self, kind: MessageKind) -> Vec<Value> {
        self.take()
            .into_iter()
            .filter(|captured| captured.kind == kind)
            .map(|captured| captured.frame)
            .collect()
    }

    fn record(&self, group: Option<&GroupName>, message: &LayerMessage) {
        let frame = serde_json::from_str(message.text()).unwrap_or(Value::Null);
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Captured {
                kind: message.kind(),
                group: group.map(|group| group.as_str().to_owned()),
                frame,
            });
    }
}

impl ChannelLayer for CaptureLayer {
    fn process_id(&self) -> &str {
        self.inner.inner().process_id()
    }

    fn register(&self, channel: &ChannelName, capacity: usize) -> Inbox {
        self.inner.inner().register(channel, capacity)
    }

    fn unregister(&self, channel: &ChannelName) -> BoxFuture<'_, ()> {
        self.inner.inner().unregister(channel)
    }

    fn join<'a>(
        &'a self,
        group: &'a GroupName,
        channel: &'a ChannelName,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.inner.inner().join(group, channel)
    }

    fn leave<'a>(
        &'a self,
        group: &'a GroupName,
        channel: &'a ChannelName,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.inner.inner().leave(group, channel)
    }

    fn send_group<'a>(
        &'a self,
        group: &'a GroupName,
        message: LayerMessage,
    ) -> BoxFuture<'a, Result<usize, LayerError>> {
        self.record(Some(group), &message);
        self.inner.inner().send_group(group, message)
    }

    fn send_to<'a>(
        &'a self,
        channel: &'a ChannelName,
        message: LayerMessage,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.record(None, &message);
        self.inner.inner().send_to(channel, message)
    }

    fn stats(&self) -> LayerStats {
        self.inner.inner().stats()
    }
}
