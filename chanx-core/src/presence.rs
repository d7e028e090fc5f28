//! Presence: who is connected to a group, across processes (Phoenix
//! Presence's model, adapted).
//!
//! A connection is *tracked* in a presence group with a key (its user) and
//! metadata: declaratively with `#[channel(presence = "chat_{room}")]`
//! (the key is the connection's identity, through [`PresenceKey`]; extra
//! metadata comes from a `#[presence_meta]` hook), or at run time with
//! [`Context::track`](crate::Context::track). Each meta holds `user`,
//! `online_at` (Unix seconds), `phx_ref` (the connection's unique
//! reference, as Phoenix's clients expect) and what the consumer adds.
//! Several connections of one user are one presence with several metas.
//!
//! A tracked connection receives:
//!
//! - `{"action":"presence_state","payload":{"alice":{"metas":[…]},…}}`:
//!   everyone present when it was tracked (itself excluded);
//! - `{"action":"presence_diff","payload":{"joins":{…},"leaves":{…}}}` as
//!   metas come and go, its own join first.
//!
//! Both are shaped as Phoenix's, so `Presence.syncState` /
//! `Presence.syncDiff` of `phoenix.js` apply them as they are.
//!
//! # Across processes
//!
//! There is no coordinator. Each process keeps the members it tracks and
//! a view of the others', kept up to date through the channel layer: it
//! publishes each join and leave at once, and every
//! [`heartbeat_interval`](PresenceConfig::heartbeat_interval) (default 2 s)
//! the full list of its members of each group. A process that stops
//! heartbeating (killed, cut off from Redis) has its members leave every
//! other process's view once [`timeout`](PresenceConfig::timeout) (default
//! 6 s) has passed since its last heartbeat: within 6.5 s of its death
//! with the defaults. A process that starts tracking a group asks the
//! others for their members and waits up to
//! [`sync_wait`](PresenceConfig::sync_wait) (200 ms) for them, so its
//! first `presence_state` is complete; anything later arrives as a diff.
//!
//! With the in-memory layer there is one process: presence is exact and
//! immediate, and nothing is published.
//!
//! # Bounds
//!
//! A process holds one meta per tracked connection (bounded by
//! [`ServerConfig::max_connections`](crate::ServerConfig::max_connections)
//! on every process) and its view of the others' members. Clients cannot
//! add to it beyond their own connection; metadata comes from the server's
//! own code.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Message;
use crate::layer::{
    ChannelLayer, ChannelName, GroupName, Hub, LayerError, LayerMessage, MessageKind,
};
use crate::message::encode;
use crate::wire::Echo;

/// How presence keeps processes in step, set with
/// [`Layer::with_presence_config`](crate::Layer::with_presence_config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceConfig {
    /// How often a process publishes the full list of its members of each
    /// group (default 2 s).
    pub heartbeat_interval: Duration,
    /// How long after its last heartbeat a silent process's members leave
    /// (default 6 s). Keep it at least twice the heartbeat interval.
    pub timeout: Duration,
    /// How long a process that starts watching a group waits for the
    /// others' members before the first `presence_state` (default 200 ms).
    pub sync_wait: Duration,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(2),
            timeout: Duration::from_secs(6),
            sync_wait: Duration::from_millis(200),
        }
    }
}

impl PresenceConfig {
    /// The defaults: heartbeats every 2 s, silent processes gone after 6 s.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`PresenceConfig::heartbeat_interval`] (at least 10 ms).
    #[must_use]
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets [`PresenceConfig::timeout`] (at least 20 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(20));
        self
    }

    /// Sets [`PresenceConfig::sync_wait`].
    #[must_use]
    pub fn sync_wait(mut self, wait: Duration) -> Self {
        self.sync_wait = wait;
        self
    }
}

/// How an identity names its presence: the `user` of its metas, and the
/// key several connections of one user share.
///
/// Implemented for strings and integers, and for `()` (no authenticator:
/// each connection is its own presence, keyed by its `phx_ref`).
/// Implement it for your identity type to use
/// `#[channel(presence = …)]` with it.
#[diagnostic::on_unimplemented(
    message = "the identity `{Self}` has no presence key",
    note = "implement `chanx::presence::PresenceKey` for `{Self}`: the user name its presence is listed under"
)]
pub trait PresenceKey {
    /// The key, or `None` to key the connection by its `phx_ref`.
    fn presence_key(&self) -> Option<String>;
}

impl PresenceKey for () {
    fn presence_key(&self) -> Option<String> {
        None
    }
}

impl PresenceKey for String {
    fn presence_key(&self) -> Option<String> {
        Some(self.clone())
    }
}

macro_rules! integer_keys {
    ($($t:ty),*) => {$(
        impl PresenceKey for $t {
            fn presence_key(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
integer_keys!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

/// Everyone present in a group: each key with its metas, one per
/// connection. The payload of `presence_state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, Message)]
#[message(action = "presence_state")]
pub struct PresenceState(pub BTreeMap<String, PresenceEntry>);

/// The metas of one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PresenceEntry {
    /// One per connection: `user`, `online_at`, `phx_ref` and what the
    /// consumer added.
    pub metas: Vec<Map<String, Value>>,
}

/// Who came and went: the payload of `presence_diff`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, Message)]
#[message(action = "presence_diff")]
pub struct PresenceDiff {
    /// Metas that joined, by key.
    pub joins: BTreeMap<String, PresenceEntry>,
    /// Metas that left, by key.
    pub leaves: BTreeMap<String, PresenceEntry>,
}

impl PresenceDiff {
    fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }
}

/// A presence operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The group name is not allowed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The channel layer keeps no local hub ([`ChannelLayer::hub`]), which
    /// presence delivers through.
    #[error("this channel layer does not support presence: it has no local hub")]
    Unsupported,
}

/// One meta, shared by the views that hold it.
#[derive(Debug, Clone)]
struct Meta {
    key: String,
    phx_ref: String,
    value: Arc<Map<String, Value>>,
}

impl Meta {
    fn new(key: Option<&str>, phx_ref: &str, extra: Map<String, Value>) -> Self {
        let key = key.map_or_else(|| phx_ref.to_owned(), str::to_owned);
        let mut value = extra;
        value.insert("user".into(), Value::from(key.as_str()));
        value.insert("online_at".into(), Value::from(unix_now()));
        value.insert("phx_ref".into(), Value::from(phx_ref));
        Self {
            key,
            phx_ref: phx_ref.to_owned(),
            value: Arc::new(value),
        }
    }

    /// A meta received from another process.
    fn from_value(value: Map<String, Value>) -> Option<Self> {
        let key = value.get("user")?.as_str()?.to_owned();
        let phx_ref = value.get("phx_ref")?.as_str()?.to_owned();
        Some(Self {
            key,
            phx_ref,
            value: Arc::new(value),
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The members of one process in one group, as another process last
/// heard of them.
#[derive(Debug)]
struct Remote {
    metas: BTreeMap<String, Meta>,
    last_seen: Instant,
}

#[derive(Debug, Default)]
struct GroupState {
    /// The members this process tracks, by `phx_ref`.
    local: BTreeMap<String, (ChannelName, Meta)>,
    /// Everyone else's, by process.
    remote: HashMap<String, Remote>,
    /// Whether this process listens to the group's presence messages.
    subscribed: bool,
    /// Listed recently without local members: kept watched until then.
    watched_until: Option<Instant>,
}

impl GroupState {
    fn all(&self) -> impl Iterator<Item = &Meta> {
        self.local.values().map(|(_, meta)| meta).chain(
            self.remote
                .values()
                .flat_map(|remote| remote.metas.values()),
        )
    }

    fn list(&self) -> PresenceState {
        let mut state = PresenceState::default();
        for meta in self.all() {
            add(&mut state.0, meta);
        }
        for entry in state.0.values_mut() {
            entry.metas.sort_by(|a, b| {
                let order = |meta: &Map<String, Value>| {
                    (
                        meta.get("online_at").and_then(Value::as_u64).unwrap_or(0),
                        meta.get("phx_ref")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    )
                };
                order(a).cmp(&order(b))
            });
        }
        state
    }

    fn is_idle(&self, now: Instant) -> bool {
        self.local.is_empty() && self.watched_until.is_none_or(|until| until <= now)
    }
}

fn add(map: &mut BTreeMap<String, PresenceEntry>, meta: &Meta) {
    map.entry(meta.key.clone())
        .or_default()
        .metas
        .push((*meta.value).clone());
}

#[derive(Debug, Default)]
struct State {
    groups: HashMap<GroupName, GroupState>,
    /// The groups each local connection is tracked in.
    by_channel: HashMap<ChannelName, Vec<GroupName>>,
}

/// A process's presence: its members, its view of the others', and the
/// task that keeps them in step. One per [`Layer`](crate::Layer).
pub(crate) struct Presence {
    layer: Arc<dyn ChannelLayer>,
    config: PresenceConfig,
    /// This process's address for presence messages: connection number 0,
    /// which no connection gets.
    channel: ChannelName,
    state: Mutex<State>,
    daemon: OnceLock<()>,
    /// Serialises joining and leaving the control groups.
    subscriptions: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("channel", &self.channel)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A presence message between processes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    /// The full list of a process's members of a group.
    Heartbeat {
        p: String,
        g: String,
        m: Vec<Map<String, Value>>,
    },
    /// Members that joined.
    Join {
        p: String,
        g: String,
        m: Vec<Map<String, Value>>,
    },
    /// Members that left, by `phx_ref`.
    Leave {
        p: String,
        g: String,
        r: Vec<String>,
    },
    /// A process started watching the group: send a heartbeat now.
    Sync { p: String, g: String },
}

/// The inbox budget of a process's presence address.
const DAEMON_INBOX_BYTES: usize = 64 << 20;

/// The layer group that carries `group`'s presence messages between
/// processes.
fn control_group(group: &GroupName) -> Option<GroupName> {
    crate::layer::safe_group_name([group.as_str()], Some("chanx-presence"))
}

/// The hub group of `group`'s local members, for delivering frames to them.
fn members_group(group: &GroupName) -> Option<GroupName> {
    crate::layer::safe_group_name([group.as_str()], Some("chanx-presence-members"))
}

impl Presence {
    pub(crate) fn new(layer: Arc<dyn ChannelLayer>, config: PresenceConfig) -> Self {
        let channel = ChannelName::new(layer.process_id(), 0);
        Self {
            layer,
            config,
            channel,
            state: Mutex::new(State::default()),
            daemon: OnceLock::new(),
            subscriptions: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hub(&self) -> Result<&Hub, PresenceError> {
        self.layer.hub().ok_or(PresenceError::Unsupported)
    }

    fn process(&self) -> &str {
        self.layer.process_id()
    }

    /// Starts the task that hears the other processes, once.
    fn start(self: &Arc<Self>) {
        if !self.layer.spans_processes() {
            return;
        }
        self.daemon.get_or_init(|| {
            let inbox = self.layer.register(&self.channel, DAEMON_INBOX_BYTES);
            tokio::spawn(daemon(Arc::downgrade(self), inbox));
        });
    }

    /// Makes this process listen to `group`'s presence messages; when it
    /// starts to, asks the others for their members and waits for them.
    async fn subscribe(self: &Arc<Self>, group: &GroupName) -> Result<(), PresenceError> {
        if !self.layer.spans_processes() {
            return Ok(());
        }
        self.start();
        let serial = self.subscriptions.lock().await;
        {
            // Kept watched while the caller goes on to track or list it,
            // even before it has a local member.
            let mut state = self.lock();
            let group_state = state.groups.entry(group.clone()).or_default();
            group_state.watched_until =
                Some(Instant::now() + self.config.sync_wait + self.config.timeout);
            if group_state.subscribed {
                return Ok(());
            }
        }
        let control = control_group(group).ok_or(PresenceError::Unsupported)?;
        self.layer.join(&control, &self.channel).await?;
        self.lock()
            .groups
            .entry(group.clone())
            .or_default()
            .subscribed = true;
        self.publish(
            group,
            &Wire::Sync {
                p: self.process().to_owned(),
                g: group.to_string(),
            },
        )
        .await;
        // Not holding the lock: the daemon takes it to release idle groups,
        // and must go on hearing the answers meanwhile.
        drop(serial);
        tokio::time::sleep(self.config.sync_wait).await;
        Ok(())
    }

    async fn publish(&self, group: &GroupName, wire: &Wire) {
        let Some(control) = control_group(group) else {
            return;
        };
        let Ok(text) = serde_json::to_string(wire) else {
            return;
        };
        let message = LayerMessage::from_text(MessageKind::Event, text);
        if let Err(error) = self.layer.send_group(&control, message).await {
            tracing::warn!(%group, %error, "cannot publish presence to the other processes");
        }
    }

    /// Tracks `channel` in `group` under `key` with `extra` metadata.
    pub(crate) async fn track(
        self: &Arc<Self>,
        group: &GroupName,
        channel: &ChannelName,
        key: Option<&str>,
        extra: Map<String, Value>,
    ) -> Result<(), PresenceError> {
        let hub = self.hub()?;
        let members = members_group(group).ok_or(PresenceError::Unsupported)?;
        self.subscribe(group).await?;
        let meta = Meta::new(key, channel.as_str(), extra);
        {
            let mut state = self.lock();
            let State { groups, by_channel } = &mut *state;
            let group_state = groups.entry(group.clone()).or_default();
            let mut diff = PresenceDiff::default();
            let previous = group_state.local.remove(&meta.phx_ref);
            if let Some((_, previous)) = &previous {
                // Tracked again: the old meta leaves, the new one joins.
                add(&mut diff.leaves, previous);
            }
            // A connection tracked again already has the state.
            let snapshot = previous.is_none().then(|| group_state.list());
            group_state
                .local
                .insert(meta.phx_ref.clone(), (channel.clone(), meta.clone()));
            add(&mut diff.joins, &meta);
            let tracked = by_channel.entry(channel.clone()).or_default();
            if !tracked.contains(group) {
                tracked.push(group.clone());
            }
            hub.join(&members, channel);
            if let Some(snapshot) = snapshot {
                hub.deliver_to(channel, frame(&snapshot));
            }
            hub.deliver_group(&members, &frame(&diff));
        }
        if self.layer.spans_processes() {
            self.publish(
                group,
                &Wire::Join {
                    p: self.process().to_owned(),
                    g: group.to_string(),
                    m: vec![(*meta.value).clone()],
                },
            )
            .await;
        }
        Ok(())
    }

    /// Stops tracking `channel` in `group`.
    pub(crate) async fn untrack(self: &Arc<Self>, group: &GroupName, channel: &ChannelName) {
        let left = self.remove_local(group, channel);
        self.after_leave(group, left).await;
    }

    /// Stops tracking `channel` everywhere (its connection ended).
    pub(crate) async fn untrack_all(self: &Arc<Self>, channel: &ChannelName) {
        let groups = self.lock().by_channel.remove(channel).unwrap_or_default();
        for group in groups {
            let left = self.remove_local(&group, channel);
            self.after_leave(&group, left).await;
        }
    }

    fn remove_local(&self, group: &GroupName, channel: &ChannelName) -> Option<Meta> {
        let hub = self.layer.hub()?;
        let members = members_group(group)?;
        let mut state = self.lock();
        let State { groups, by_channel } = &mut *state;
        if let Some(tracked) = by_channel.get_mut(channel) {
            tracked.retain(|other| other != group);
            if tracked.is_empty() {
                by_channel.remove(channel);
            }
        }
        let group_state = groups.get_mut(group)?;
        let (_, meta) = group_state.local.remove(channel.as_str())?;
        hub.leave(&members, channel);
        let mut diff = PresenceDiff::default();
        add(&mut diff.leaves, &meta);
        hub.deliver_group(&members, &frame(&diff));
        Some(meta)
    }

    async fn after_leave(self: &Arc<Self>, group: &GroupName, left: Option<Meta>) {
        let Some(meta) = left else {
            return;
        };
        if !self.layer.spans_processes() {
            let mut state = self.lock();
            if state
                .groups
                .get(group)
                .is_some_and(|group_state| group_state.local.is_empty())
            {
                state.groups.remove(group);
            }
            return;
        }
        self.publish(
            group,
            &Wire::Leave {
                p: self.process().to_owned(),
                g: group.to_string(),
                r: vec![meta.phx_ref],
            },
        )
        .await;
        self.release_idle(Instant::now()).await;
    }

    /// Stops watching groups that have no local member and were not
    /// listed lately: their views are dropped.
    async fn release_idle(self: &Arc<Self>, now: Instant) {
        let _serial = self.subscriptions.lock().await;
        let idle: Vec<GroupName> = {
            let mut state = self.lock();
            let idle: Vec<GroupName> = state
                .groups
                .iter()
                .filter(|(_, group_state)| group_state.is_idle(now))
                .map(|(group, _)| group.clone())
                .collect();
            for group in &idle {
                state.groups.remove(group);
            }
            idle
        };
        for group in idle {
            if let Some(control) = control_group(&group)
                && let Err(error) = self.layer.leave(&control, &self.channel).await
            {
                tracing::debug!(%group, %error, "cannot stop watching a presence group");
            }
        }
    }

    /// Everyone present in `group`, as this process sees it. A group this
    /// process does not watch yet is watched from now on (for a while), so
    /// the first listing waits for the others' members.
    pub(crate) async fn list(
        self: &Arc<Self>,
        group: &GroupName,
    ) -> Result<PresenceState, PresenceError> {
        self.hub()?;
        if self.layer.spans_processes() {
            self.subscribe(group).await?;
            let mut state = self.lock();
            let group_state = state.groups.entry(group.clone()).or_default();
            group_state.watched_until = Some(Instant::now() + self.config.timeout);
            return Ok(group_state.list());
        }
        Ok(self
            .lock()
            .groups
            .get(group)
            .map(GroupState::list)
            .unwrap_or_default())
    }

    /// Applies a message from another process.
    /// Returns the group to heartbeat at once (another process asked).
    fn receive(&self, wire: Wire, now: Instant) -> Option<GroupName> {
        let (process, group) = match &wire {
            Wire::Heartbeat { p, g, .. }
            | Wire::Join { p, g, .. }
            | Wire::Leave { p, g, .. }
            | Wire::Sync { p, g } => (p.clone(), g.clone()),
        };
        if process == self.process() {
            return None;
        }
        let group = GroupName::new(&group).ok()?;
        let hub = self.layer.hub()?;
        let members = members_group(&group)?;
        let mut state = self.lock();
        let group_state = state.groups.get_mut(&group)?;
        let mut diff = PresenceDiff::default();
        let mut answer = false;
        match wire {
            Wire::Sync { .. } => answer = !group_state.local.is_empty(),
            Wire::Heartbeat { m, .. } => {
                let fresh: BTreeMap<String, Meta> = m
                    .into_iter()
                    .filter_map(Meta::from_value)
                    .map(|meta| (meta.phx_ref.clone(), meta))
                    .collect();
                let remote = group_state.remote.entry(process).or_insert_with(|| Remote {
                    metas: BTreeMap::new(),
                    last_seen: now,
                });
                remote.last_seen = now;
                for (phx_ref, meta) in &remote.metas {
                    if !fresh.contains_key(phx_ref) {
                        add(&mut diff.leaves, meta);
                    }
                }
                for (phx_ref, meta) in &fresh {
                    if !remote.metas.contains_key(phx_ref) {
                        add(&mut diff.joins, meta);
                    }
                }
                remote.metas = fresh;
            }
            Wire::Join { m, .. } => {
                let remote = group_state.remote.entry(process).or_insert_with(|| Remote {
                    metas: BTreeMap::new(),
                    last_seen: now,
                });
                remote.last_seen = now;
                for meta in m.into_iter().filter_map(Meta::from_value) {
                    if !remote.metas.contains_key(&meta.phx_ref) {
                        add(&mut diff.joins, &meta);
                    }
                    remote.metas.insert(meta.phx_ref.clone(), meta);
                }
            }
            Wire::Leave { r, .. } => {
                if let Some(remote) = group_state.remote.get_mut(&process) {
                    remote.last_seen = now;
                    for phx_ref in r {
                        if let Some(meta) = remote.metas.remove(&phx_ref) {
                            add(&mut diff.leaves, &meta);
                        }
                    }
                }
            }
        }
        if !diff.is_empty() {
            hub.deliver_group(&members, &frame(&diff));
        }
        answer.then_some(group)
    }

    /// Drops the members of processes silent for longer than the timeout.
    fn expire(&self, now: Instant) {
        let Some(hub) = self.layer.hub() else {
            return;
        };
        let mut state = self.lock();
        for (group, group_state) in &mut state.groups {
            let mut diff = PresenceDiff::default();
            group_state.remote.retain(|process, remote| {
                let alive = now.duration_since(remote.last_seen) <= self.config.timeout;
                if !alive {
                    tracing::info!(%group, process, members = remote.metas.len(), "a silent process's members left");
                    for meta in remote.metas.values() {
                        add(&mut diff.leaves, meta);
                    }
                }
                alive
            });
            if !diff.is_empty()
                && let Some(members) = members_group(group)
            {
                hub.deliver_group(&members, &frame(&diff));
            }
        }
    }

    /// The heartbeats of this process: its members of each group.
    fn heartbeats(&self) -> Vec<(GroupName, Wire)> {
        let groups: Vec<GroupName> = self
            .lock()
            .groups
            .iter()
            .filter(|(_, group_state)| !group_state.local.is_empty())
            .map(|(group, _)| group.clone())
            .collect();
        groups
            .into_iter()
            .filter_map(|group| Some((group.clone(), self.heartbeat_of(&group)?)))
            .collect()
    }

    /// This process's heartbeat for `group`: the full list of its members.
    fn heartbeat_of(&self, group: &GroupName) -> Option<Wire> {
        let state = self.lock();
        let group_state = state.groups.get(group)?;
        Some(Wire::Heartbeat {
            p: self.process().to_owned(),
            g: group.to_string(),
            m: group_state
                .local
                .values()
                .map(|(_, meta)| (*meta.value).clone())
                .collect(),
        })
    }

    fn subscribed_groups(&self) -> Vec<GroupName> {
        self.lock()
            .groups
            .iter()
            .filter(|(_, group_state)| group_state.subscribed)
            .map(|(group, _)| group.clone())
            .collect()
    }
}

fn frame<M: Message>(message: &M) -> LayerMessage {
    LayerMessage::from_text(MessageKind::Broadcast, encode(message, Echo::NONE))
}

/// The task that hears the other processes, heartbeats and expires: it
/// ends with its layer.
async fn daemon(presence: Weak<Presence>, mut inbox: crate::layer::Inbox) {
    let (interval, sweep) = match presence.upgrade() {
        Some(presence) => (
            presence.config.heartbeat_interval,
            (presence.config.timeout / 8).max(Duration::from_millis(10)),
        ),
        None => return,
    };
    let mut heartbeat = tokio::time::interval(interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut expiry = tokio::time::interval(sweep);
    expiry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = inbox.next_message() => {
                let Some(presence) = presence.upgrade() else { return };
                let Some(message) = message else { return };
                let wire = match serde_json::from_str::<Wire>(message.text()) {
                    Ok(wire) => wire,
                    Err(error) => {
                        tracing::warn!(%error, "dropping a malformed presence message");
                        continue;
                    }
                };
                if let Some(group) = presence.receive(wire, Instant::now())
                    && let Some(wire) = presence.heartbeat_of(&group)
                {
                    presence.publish(&group, &wire).await;
                }
                if inbox.is_overflowed() {
                    tracing::error!("presence inbox overflowed; re-registering and resynchronising");
                    presence.layer.unregister(&presence.channel).await;
                    inbox = presence.layer.register(&presence.channel, DAEMON_INBOX_BYTES);
                    for group in presence.subscribed_groups() {
                        if let Some(control) = control_group(&group) {
                            let _ = presence.layer.join(&control, &presence.channel).await;
                        }
                        presence.publish(&group, &Wire::Sync { p: presence.process().to_owned(), g: group.to_string() }).await;
                    }
                }
            }
            _ = heartbeat.tick() => {
                let Some(presence) = presence.upgrade() else { return };
                for (group, wire) in presence.heartbeats() {
                    presence.publish(&group, &wire).await;
                }
            }
            _ = expiry.tick() => {
                let Some(presence) = presence.upgrade() else { return };
                let now = Instant::now();
                presence.expire(now);
                presence.release_idle(now).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_carry_user_online_at_and_phx_ref() {
        let mut extra = Map::new();
        extra.insert("status".into(), Value::from("away"));
        let meta = Meta::new(Some("alice"), "p.1", extra);
        assert_eq!(meta.key, "alice");
        assert_eq!(meta.value["user"], "alice");
        assert_eq!(meta.value["phx_ref"], "p.1");
        assert_eq!(meta.value["status"], "away");
        assert!(meta.value["online_at"].as_u64().unwrap() > 1_700_000_000);
        // Anonymous: keyed by its reference.
        assert_eq!(Meta::new(None, "p.2", Map::new()).key, "p.2");
    }

    #[test]
    fn the_wire_round_trips() {
        let wire = Wire::Leave {
            p: "a".into(),
            g: "room".into(),
            r: vec!["a.1".into()],
        };
        let text = serde_json::to_string(&wire).unwrap();
        assert_eq!(text, r#"{"t":"leave","p":"a","g":"room","r":["a.1"]}"#);
        assert!(matches!(
            serde_json::from_str::<Wire>(&text).unwrap(),
            Wire::Leave { .. }
        ));
    }
}
