//! The in-memory channel layer: groups within one process.

use futures_util::future::BoxFuture;

use super::{
    ChannelLayer, ChannelName, GroupName, Hub, Inbox, LayerError, LayerMessage, LayerStats,
    random_process_id,
};

/// Groups and events between the connections of one process. The default
/// layer of every [`Router`](crate::Router); nothing to set up.
#[derive(Debug)]
pub struct MemoryLayer {
    process: String,
    hub: Hub,
}

impl MemoryLayer {
    /// A new, empty layer.
    #[must_use]
    pub fn new() -> Self {
        Self {
            process: random_process_id(),
            hub: Hub::new(),
        }
    }
}

impl Default for MemoryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ChannelLayer for MemoryLayer {
    fn process_id(&self) -> &str {
        &self.process
    }

    fn register(&self, channel: &ChannelName, capacity: usize) -> Inbox {
        self.hub.register(channel, capacity)
    }

    fn unregister(&self, channel: &ChannelName) -> BoxFuture<'_, ()> {
        self.hub.unregister(channel);
        Box::pin(async {})
    }

    fn join<'a>(
        &'a self,
        group: &'a GroupName,
        channel: &'a ChannelName,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.hub.join(group, channel);
        Box::pin(async { Ok(()) })
    }

    fn leave<'a>(
        &'a self,
        group: &'a GroupName,
        channel: &'a ChannelName,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.hub.leave(group, channel);
        Box::pin(async { Ok(()) })
    }

    fn send_group<'a>(
        &'a self,
        group: &'a GroupName,
        message: LayerMessage,
    ) -> BoxFuture<'a, Result<usize, LayerError>> {
        let delivered = self.hub.deliver_group(group, &message);
        Box::pin(async move { Ok(delivered) })
    }

    fn send_to<'a>(
        &'a self,
        channel: &'a ChannelName,
        message: LayerMessage,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        self.hub.deliver_to(channel, message);
        Box::pin(async { Ok(()) })
    }

    fn stats(&self) -> LayerStats {
        self.hub.stats()
    }

    fn hub(&self) -> Option<&Hub> {
        Some(&self.hub)
    }

    fn spans_processes(&self) -> bool {
        false
    }
}
