//! The Redis channel layer: groups and events across processes.
//!
//! Each process delivers to its own members directly, and publishes a group
//! send **once** on the group's Redis channel (`<prefix>:<db>:g:<group>`),
//! which every process with a member of that group subscribes to. Direct
//! sends to a connection on another process go to that process's channel
//! (`<prefix>:<db>:p:<process>`). Redis pub/sub ignores the database index,
//! so the names carry it: two applications on `redis://…/0` and
//! `redis://…/1` never see each other's messages.
//!
//! Nothing is lost silently:
//!
//! - `join` returns once Redis has confirmed the group's subscription, or
//!   fails (and the connection is not left half-joined);
//! - a send whose publish fails returns the error (local members got it),
//!   and [`LayerStats::publish_failures`] counts it;
//! - when the subscription connection drops, every group it carried has a
//!   gap: it is logged, and counted in [`LayerStats::subscription_gaps`] and
//!   [`LayerStats::gaps_by_group`]. The layer retries with exponential
//!   backoff and re-subscribes every group that still has local members;
//!   joins while Redis is unreachable fail at once.
//!
//! The Redis URL, which may carry a password, is never logged.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{
    ChannelLayer, ChannelName, GroupName, Hub, Inbox, LayerError, LayerMessage, LayerStats,
    MessageKind, random_process_id,
};

const WIRE_VERSION: u8 = 1;
/// How long `join` waits for Redis to confirm a subscription.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a [`RedisLayer`].
///
/// ```
/// use std::time::Duration;
/// use chanx_core::layer::RedisLayerConfig;
///
/// let config = RedisLayerConfig::new("redis://127.0.0.1:6379/")
///     .prefix("myapp")
///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(2));
/// # let _ = config;
/// ```
#[derive(Clone)]
#[must_use]
pub struct RedisLayerConfig {
    url: String,
    prefix: String,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl RedisLayerConfig {
    /// Connects to `url` (`redis://host:port/db`), prefix `chanx`, backoff
    /// from 100 ms to 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "chanx".to_owned(),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// The prefix of every Redis channel name, to share one Redis between
    /// applications.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The first and the longest wait between reconnection attempts.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min.max(Duration::from_millis(1));
        self.max_backoff = max.max(self.min_backoff);
        self
    }

    /// The URL with its password (and user name) masked, for logs and
    /// messages.
    ///
    /// ```
    /// use chanx_core::layer::RedisLayerConfig;
    ///
    /// let config = RedisLayerConfig::new("redis://app:s3cret@cache:6379/2");
    /// assert_eq!(config.redacted_url(), "redis://***@cache:6379/2");
    /// ```
    #[must_use]
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for RedisLayerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLayerConfig")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// `scheme://user:password@host…` → `scheme://***@host…`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Groups and events across processes through Redis pub/sub.
///
/// ```no_run
/// use chanx_core::{Layer, Router, layer::RedisLayer};
///
/// # async fn run() -> Result<(), chanx_core::layer::LayerError> {
/// let layer = RedisLayer::connect("redis://127.0.0.1:6379/").await?;
/// let app = Router::new().with_layer(Layer::new(layer));
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RedisLayer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    process: String,
    /// `<prefix>:<db>`: the start of every channel name.
    prefix: String,
    hub: Hub,
    publisher: ConnectionManager,
    control: mpsc::UnboundedSender<Control>,
    connected: AtomicBool,
    publish_failures: AtomicU64,
    gaps: Mutex<BTreeMap<GroupName, u64>>,
}

/// What the subscriber task is asked to do.
#[derive(Debug)]
enum Control {
    /// Subscribe (unless already subscribed); answer once Redis confirmed.
    Subscribe(GroupName, oneshot::Sender<Result<(), LayerError>>),
    /// Unsubscribe if the group has no local member any more.
    Unsubscribe(GroupName),
}

impl RedisLayer {
    /// Connects with the default settings.
    ///
    /// # Errors
    ///
    /// [`LayerError::Unavailable`] when the URL is invalid or Redis cannot be
    /// reached now.
    pub async fn connect(url: &str) -> Result<Self, LayerError> {
        Self::connect_with(RedisLayerConfig::new(url)).await
    }

    /// Connects with `config`.
    ///
    /// # Errors
    ///
    /// [`LayerError::Unavailable`] when the URL is invalid or Redis cannot be
    /// reached now.
    pub async fn connect_with(config: RedisLayerConfig) -> Result<Self, LayerError> {
        let client = redis::Client::open(config.url.as_str()).map_err(unavailable)?;
        let db = client.get_connection_info().redis_settings().db();
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(config.min_backoff)
            .set_max_delay(config.max_backoff)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let publisher = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(unavailable)?;
        let (control, control_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            process: random_process_id(),
            prefix: format!("{}:{db}", config.prefix),
            hub: Hub::new(),
            publisher,
            control,
            connected: AtomicBool::new(false),
            publish_failures: AtomicU64::new(0),
            gaps: Mutex::new(BTreeMap::new()),
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(subscriber(
            client,
            Arc::downgrade(&inner),
            control_rx,
            config,
            ready_tx,
        ));
        // Wait for the first subscription so that sends to this process work
        // as soon as `connect` returns.
        let _ = tokio::time::timeout(SUBSCRIBE_WAIT, ready_rx).await;
        Ok(Self { inner })
    }

    /// Whether the subscription connection is up.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }
}

/// Why the Redis layer could not do what was asked, when Redis itself
/// reported no error: the source of [`LayerError::Unavailable`] in those
/// cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisUnavailable {
    /// The layer's subscriber task has stopped (the layer is being dropped).
    #[error("the Redis subscriber has stopped")]
    SubscriberStopped,
    /// Redis did not confirm a subscription in time.
    #[error("Redis did not confirm the subscription within {0:?}")]
    NotConfirmed(Duration),
    /// Redis is unreachable and the layer is reconnecting.
    #[error("Redis is unreachable; the layer is reconnecting")]
    Reconnecting,
}

impl From<RedisUnavailable> for LayerError {
    fn from(reason: RedisUnavailable) -> Self {
        Self::Unavailable(Box::new(reason))
    }
}

fn unavailable(error: redis::RedisError) -> LayerError {
    LayerError::Unavailable(Box::new(error))
}

impl Inner {
    fn group_channel(&self, group: &str) -> String {
        format!("{}:g:{group}", self.prefix)
    }

    fn process_channel(&self, process: &str) -> String {
        format!("{}:p:{process}", self.prefix)
    }

    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), LayerError> {
        let mut publisher = self.publisher.clone();
        let mut command = redis::cmd("PUBLISH");
        command.arg(channel).arg(payload);
        let result = match command.query_async::<i64>(&mut publisher).await {
            Ok(_) => Ok(()),
            // The first use of a connection that died while idle fails and
            // makes the manager reconnect; one retry goes through it.
            Err(error) if error.is_connection_dropped() || error.is_io_error() => {
                tracing::debug!(%error, "publish failed on a dropped connection; retrying once");
                command
                    .query_async::<i64>(&mut publisher)
                    .await
                    .map(drop)
                    .map_err(unavailable)
            }
            Err(error) => Err(unavailable(error)),
        };
        if let Err(error) = &result {
            self.publish_failures.fetch_add(1, Ordering::Relaxed);
            ::metrics::counter!(crate::metrics::LAYER_PUBLISH_FAILURES).increment(1);
            tracing::warn!(%error, "a publish to Redis failed; other processes did not get the message");
        }
        result
    }

    /// Asks the subscriber for `group` and waits for Redis's confirmation.
    async fn subscribe(&self, group: &GroupName) -> Result<(), LayerError> {
        let (ack, acked) = oneshot::channel();
        if self
            .control
            .send(Control::Subscribe(group.clone(), ack))
            .is_err()
        {
            return Err(RedisUnavailable::SubscriberStopped.into());
        }
        match tokio::time::timeout(SUBSCRIBE_WAIT, acked).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(RedisUnavailable::SubscriberStopped.into()),
            Err(_) => Err(RedisUnavailable::NotConfirmed(SUBSCRIBE_WAIT).into()),
        }
    }

    /// Records a subscription gap for every group in `groups`.
    fn record_gaps(&self, groups: &HashSet<GroupName>) {
        if groups.is_empty() {
            return;
        }
        let mut gaps = self.gaps.lock().unwrap_or_else(PoisonError::into_inner);
        for group in groups {
            *gaps.entry(group.clone()).or_default() += 1;
        }
        let mut names: Vec<&str> = groups.iter().map(GroupName::as_str).collect();
        names.sort_unstable();
        names.truncate(20);
        tracing::warn!(
            groups = groups.len(),
            first = ?names,
            "the Redis subscription was lost: messages sent to these groups from other processes until it is back are missed here"
        );
    }

    fn unsubscribe(&self, group: GroupName) {
        let _ = self.control.send(Control::Unsubscribe(group));
    }

    /// Handles one message from Redis.
    fn receive(&self, channel: &str, payload: &[u8]) {
        let Some(decoded) = decode(payload) else {
            tracing::warn!(channel, "dropping a malformed message from Redis");
            return;
        };
        if decoded.origin == self.process.as_bytes() {
            return; // delivered locally when it was sent
        }
        let Ok(frame) = Utf8Bytes::try_from(Bytes::copy_from_slice(decoded.frame)) else {
            tracing::warn!(channel, "dropping a message from Redis that is not UTF-8");
            return;
        };
        let exclude = std::str::from_utf8(decoded.exclude)
            .ok()
            .and_then(ChannelName::parse);
        let message = LayerMessage::from_shared(decoded.kind, frame, exclude);
        let group_prefix = self.group_channel("");
        if let Some(group) = channel.strip_prefix(&group_prefix) {
            if let Ok(group) = GroupName::new(group) {
                self.hub.deliver_group(&group, &message);
            }
        } else if let Some(target) = std::str::from_utf8(decoded.target)
            .ok()
            .and_then(ChannelName::parse)
        {
            self.hub.deliver_to(&target, message);
        }
    }
}

struct Decoded<'a> {
    kind: MessageKind,
    origin: &'a [u8],
    exclude: &'a [u8],
    target: &'a [u8],
    frame: &'a [u8],
}

/// `[version][kind][origin len][origin][exclude len][exclude][target len][target][frame…]`
fn encode(
    kind: MessageKind,
    origin: &str,
    exclude: Option<&ChannelName>,
    target: Option<&ChannelName>,
    frame: &str,
) -> Vec<u8> {
    let exclude = exclude.map_or("", ChannelName::as_str);
    let target = target.map_or("", ChannelName::as_str);
    let mut out = Vec::with_capacity(5 + origin.len() + exclude.len() + target.len() + frame.len());
    out.push(WIRE_VERSION);
    out.push(match kind {
        MessageKind::Broadcast => 0,
        MessageKind::Event => 1,
    });
    for part in [origin, exclude, target] {
        // Process ids and channel names are short ASCII; longer ones are cut
        // to keep the header well-formed.
        let bytes = &part.as_bytes()[..part.len().min(255)];
        out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(frame.as_bytes());
    out
}

fn decode(payload: &[u8]) -> Option<Decoded<'_>> {
    let (&version, rest) = payload.split_first()?;
    if version != WIRE_VERSION {
        return None;
    }
    let (&kind, mut rest) = rest.split_first()?;
    let kind = match kind {
        0 => MessageKind::Broadcast,
        1 => MessageKind::Event,
        _ => return None,
    };
    let mut parts = [&[][..]; 3];
    for part in &mut parts {
        let (&len, after) = rest.split_first()?;
        let len = usize::from(len);
        if after.len() < len {
            return None;
        }
        let (value, after) = after.split_at(len);
        *part = value;
        rest = after;
    }
    Some(Decoded {
        kind,
        origin: parts[0],
        exclude: parts[1],
        target: parts[2],
        frame: rest,
    })
}

/// Answers every queued `Subscribe` with an error (Redis is unreachable),
/// for `wait`; returns early with `false` if the layer is gone.
async fn refuse_joins_for(control: &mut mpsc::UnboundedReceiver<Control>, wait: Duration) -> bool {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            request = control.recv() => match request {
                Some(Control::Subscribe(_, ack)) => {
                    let _ = ack.send(Err(RedisUnavailable::Reconnecting.into()));
                }
                Some(Control::Unsubscribe(_)) => {}
                None => return false,
            },
        }
    }
}

fn timed_out(what: &str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what} timed out"),
    ))
}

async fn subscriber(
    client: redis::Client,
    inner: Weak<Inner>,
    mut control: mpsc::UnboundedReceiver<Control>,
    config: RedisLayerConfig,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = config.min_backoff;
    let mut failures: u32 = 0;
    loop {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await;
        let pubsub = match connected.unwrap_or_else(|_| Err(timed_out("connecting to Redis"))) {
            Ok(pubsub) => pubsub,
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(%error, "cannot reach Redis; retrying with backoff");
                }
                failures = failures.saturating_add(1);
                if !refuse_joins_for(&mut control, backoff).await || inner.strong_count() == 0 {
                    return;
                }
                backoff = (backoff * 2).min(config.max_backoff);
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let (groups, process_channel) = {
            let Some(strong) = inner.upgrade() else {
                return;
            };
            (strong.hub.groups(), strong.process_channel(&strong.process))
        };
        let mut channels = vec![process_channel];
        if let Some(strong) = inner.upgrade() {
            channels.extend(
                groups
                    .iter()
                    .map(|group| strong.group_channel(group.as_str())),
            );
        }
        let subscribed = tokio::time::timeout(CONNECT_TIMEOUT, sink.subscribe(&channels)).await;
        if let Err(error) = subscribed.unwrap_or_else(|_| Err(timed_out("subscribing on Redis"))) {
            tracing::warn!(%error, "subscribing on Redis failed; retrying");
            if !refuse_joins_for(&mut control, backoff).await {
                return;
            }
            continue;
        }
        let mut subscribed: HashSet<GroupName> = groups.into_iter().collect();
        if let Some(strong) = inner.upgrade() {
            strong.connected.store(true, Ordering::Release);
        }
        if ready.is_none() {
            // Not the first subscription: it came back after a loss.
            ::metrics::counter!(crate::metrics::REDIS_RECONNECTS).increment(1);
        }
        if failures > 0 {
            tracing::info!(
                groups = subscribed.len(),
                "reconnected to Redis and re-subscribed"
            );
        }
        backoff = config.min_backoff;
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        loop {
            tokio::select! {
                request = control.recv() => {
                    let Some(request) = request else { return };
                    let Some(strong) = inner.upgrade() else { return };
                    let failed = match request {
                        Control::Subscribe(group, ack) => {
                            // Already subscribed, or the group emptied since
                            // the join (a leave racing it): nothing to do.
                            if subscribed.contains(&group) || strong.hub.member_count(&group) == 0 {
                                let _ = ack.send(Ok(()));
                                None
                            } else {
                                let channel = strong.group_channel(group.as_str());
                                drop(strong);
                                match sink.subscribe(&channel).await {
                                    Ok(()) => {
                                        subscribed.insert(group);
                                        let _ = ack.send(Ok(()));
                                        None
                                    }
                                    Err(error) => {
                                        let _ = ack.send(Err(unavailable_ref(&error)));
                                        Some(error)
                                    }
                                }
                            }
                        }
                        Control::Unsubscribe(group) => {
                            // A member may have joined since the group emptied.
                            if strong.hub.member_count(&group) > 0 || !subscribed.remove(&group) {
                                None
                            } else {
                                let channel = strong.group_channel(group.as_str());
                                drop(strong);
                                sink.unsubscribe(&channel).await.err()
                            }
                        }
                    };
                    if let Some(error) = failed {
                        tracing::warn!(%error, "Redis subscription command failed");
                        break;
                    }
                }
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Some(strong) = inner.upgrade() else { return };
                    strong.receive(message.get_channel_name(), message.get_payload_bytes());
                }
            }
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        strong.connected.store(false, Ordering::Release);
        strong.record_gaps(&subscribed);
        drop(strong);
        tracing::warn!("lost the Redis subscription; reconnecting");
        failures = 1;
    }
}

fn unavailable_ref(error: &redis::RedisError) -> LayerError {
    LayerError::Unavailable(Box::new(error.clone()))
}

impl ChannelLayer for RedisLayer {
    fn process_id(&self) -> &str {
        &self.inner.process
    }

    fn register(&self, channel: &ChannelName, capacity: usize) -> Inbox {
        self.inner.hub.register(channel, capacity)
    }

    fn unregister(&self, channel: &ChannelName) -> BoxFuture<'_, ()> {
        for group in self.inner.hub.unregister(channel) {
            self.inner.unsubscribe(group);
        }
        Box::pin(async {})
    }

    fn join<'a>(
        &'a self,
        group: &'a GroupName,
        channel: &'a ChannelName,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            // Local membership first, so local sends reach the connection at
            // once; then the cross-process subscription, confirmed.
            self.inner.hub.join(group, channel);
            match self.inner.subscribe(group).await {
                Ok(()) => Ok(()),
                Err(error) => {
                    if self.inner.hub.leave(group, channel) {
                        self.inner.unsubscribe(group.clone());
                    }
                    Err(error)
                }
            }
        })
    }

    fn leave<'a>(
        &'a self,
        group: &'a GroupName,
        channel: &'a ChannelName,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        if self.inner.hub.leave(group, channel) {
            self.inner.unsubscribe(group.clone());
        }
        Box::pin(async { Ok(()) })
    }

    fn send_group<'a>(
        &'a self,
        group: &'a GroupName,
        message: LayerMessage,
    ) -> BoxFuture<'a, Result<usize, LayerError>> {
        Box::pin(async move {
            let delivered = self.inner.hub.deliver_group(group, &message);
            let payload = encode(
                message.kind(),
                &self.inner.process,
                message.excluded(),
                None,
                message.text(),
            );
            self.inner
                .publish(self.inner.group_channel(group.as_str()), payload)
                .await
                .map(|()| delivered)
        })
    }

    fn send_to<'a>(
        &'a self,
        channel: &'a ChannelName,
        message: LayerMessage,
    ) -> BoxFuture<'a, Result<(), LayerError>> {
        Box::pin(async move {
            if channel.process() == self.inner.process {
                self.inner.hub.deliver_to(channel, message);
                return Ok(());
            }
            let payload = encode(
                message.kind(),
                &self.inner.process,
                None,
                Some(channel),
                message.text(),
            );
            self.inner
                .publish(self.inner.process_channel(channel.process()), payload)
                .await
        })
    }

    fn hub(&self) -> Option<&Hub> {
        Some(&self.inner.hub)
    }

    fn stats(&self) -> LayerStats {
        let mut stats = self.inner.hub.stats();
        stats.publish_failures = self.inner.publish_failures.load(Ordering::Relaxed);
        let gaps = self
            .inner
            .gaps
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        stats.subscription_gaps = gaps.values().sum();
        stats.gaps_by_group = gaps
            .iter()
            .map(|(group, count)| (group.clone(), *count))
            .collect();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
        assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://***@h:1/0");
        assert_eq!(
            redact_url("rediss://user:p@ss@h/3?x=y"),
            "rediss://***@h/3?x=y"
        );
        assert_eq!(
            redact_url("redis://h/0?password=@"),
            "redis://h/0?password=@"
        );
        let config = RedisLayerConfig::new("redis://u:hunter2@h:6379/1");
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn wire_format_round_trips() {
        let exclude = ChannelName::new("abc", 7);
        let bytes = encode(
            MessageKind::Event,
            "proc1",
            Some(&exclude),
            None,
            r#"{"action":"x"}"#,
        );
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.kind, MessageKind::Event);
        assert_eq!(decoded.origin, b"proc1");
        assert_eq!(decoded.exclude, b"abc.7");
        assert_eq!(decoded.target, b"");
        assert_eq!(decoded.frame, br#"{"action":"x"}"#);
        assert!(decode(&bytes[..4]).is_none());
        assert!(decode(&[9, 0]).is_none());
        assert!(decode(&[]).is_none());
    }
}
