//! Local membership and delivery: the half of every layer that lives in this
//! process.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use super::{ChannelName, GroupName, LayerMessage, MessageKind};
use crate::connection::flag::Flag;
use crate::ws::outbox::{FRAME_OVERHEAD, Outbound, Outbox, PushError};

/// The local connections of one process and the groups they are in.
///
/// Delivery never waits: a full inbox marks its connection as overflowed, and
/// the connection closes itself with 1008 (see the module documentation).
#[derive(Debug)]
pub struct Hub {
    state: RwLock<State>,
    delivered: AtomicU64,
    slow_disconnects: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    connections: HashMap<ChannelName, Connection>,
    groups: HashMap<GroupName, HashMap<ChannelName, Mailbox>>,
}

#[derive(Debug)]
struct Connection {
    mailbox: Mailbox,
    groups: Vec<GroupName>,
}

/// The sending side of an inbox, one per place the hub lists the
/// connection (its entry, each of its groups). When the last one goes, the
/// inbox is closed.
#[derive(Debug)]
struct Mailbox {
    overflow: Arc<Overflow>,
}

impl Clone for Mailbox {
    fn clone(&self) -> Self {
        self.overflow.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            overflow: Arc::clone(&self.overflow),
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        if self.overflow.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            drop(self.overflow.close());
            self.overflow.arrived.wake();
        }
    }
}

/// What a connection and the hub share: the inbox's queue and byte count,
/// the overflow signal, and the connection's outbound queue once it
/// accepts broadcasts directly. One allocation per connection, and no
/// queue storage until a message waits.
#[derive(Debug)]
struct Overflow {
    /// Raised when the inbox overflows; the connection's task waits on it.
    flag: Flag,
    /// The connection's task, waiting for a message.
    arrived: AtomicWaker,
    /// Bytes waiting in the inbox (shared frames counted in full).
    bytes: AtomicUsize,
    budget: usize,
    direct: std::sync::OnceLock<Arc<Outbox>>,
    /// Mailboxes alive.
    senders: AtomicUsize,
    /// No mailbox is left, or the inbox is gone: nothing more is queued.
    closed: AtomicBool,
    queue: Mutex<VecDeque<LayerMessage>>,
}

impl Overflow {
    fn lock(&self) -> MutexGuard<'_, VecDeque<LayerMessage>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses later pushes (what is queued stays, to be read); returns
    /// the queue's lock.
    fn close(&self) -> MutexGuard<'_, VecDeque<LayerMessage>> {
        let queue = self.lock();
        // Set under the lock, so a push (which looks under it) either
        // lands before or is refused.
        self.closed.store(true, Ordering::Release);
        queue
    }

    /// Queues `message`; gives it back when the inbox is gone.
    fn push(&self, message: LayerMessage) -> Result<(), LayerMessage> {
        let mut queue = self.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(message);
        }
        queue.push_back(message);
        drop(queue);
        self.arrived.wake();
        Ok(())
    }

    fn pop(&self) -> Option<LayerMessage> {
        // A queued message counts at least `FRAME_OVERHEAD` bytes from
        // before it is pushed until after it is popped: nothing counted,
        // nothing queued, and the lock is not taken (the loop looks on
        // every turn).
        if self.bytes.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut queue = self.lock();
        let message = queue.pop_front();
        if queue.is_empty() && queue.capacity() > 16 {
            // A burst grew the queue; give the room back.
            *queue = VecDeque::new();
        }
        message
    }

    /// The next message; `None` once the inbox is closed and empty.
    fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<LayerMessage>> {
        if let Some(message) = self.pop() {
            return Poll::Ready(Some(message));
        }
        self.arrived.register(cx.waker());
        // A push between the first look and the registration woke nobody:
        // look again.
        if self.bytes.load(Ordering::Acquire) == 0 && !self.closed.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        let mut queue = self.lock();
        match queue.pop_front() {
            Some(message) => Poll::Ready(Some(message)),
            None if self.closed.load(Ordering::Acquire) => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// What an inbox message counts for in its budget.
fn cost(message: &LayerMessage) -> usize {
    message.text().len() + FRAME_OVERHEAD
}

/// Counters of a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// Messages placed in a local inbox or outbound queue.
    pub delivered: u64,
    /// Connections closed because their queues were full.
    pub slow_disconnects: u64,
    /// Sends that could not reach the other processes (the caller got the
    /// error; local members got the message).
    pub publish_failures: u64,
    /// Times a group's cross-process subscription was down: messages sent
    /// to the group from other processes meanwhile did not reach this one.
    pub subscription_gaps: u64,
    /// [`subscription_gaps`](LayerStats::subscription_gaps) by group.
    pub gaps_by_group: Vec<(GroupName, u64)>,
}

/// A connection's inbox: what layers deliver to it, bounded in bytes.
#[derive(Debug)]
pub struct Inbox {
    overflow: Arc<Overflow>,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // Nothing more is accepted; what waits is dropped now, and its
        // bytes given back.
        let waiting = std::mem::take(&mut *self.overflow.close());
        let bytes = waiting.iter().map(cost).sum();
        self.overflow.bytes.fetch_sub(bytes, Ordering::AcqRel);
        drop(waiting);
    }
}

/// Why an inbox yields no more messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InboxClosed {
    /// The inbox filled up: the connection was too slow and must close.
    #[error("inbox full: the connection is too slow")]
    Overflowed,
    /// The connection was unregistered.
    #[error("inbox closed")]
    Unregistered,
}

impl Inbox {
    /// Resolves once the inbox has overflowed. Independent of `self`, so it
    /// can be created once and polled beside [`Inbox::recv`].
    pub(crate) fn overflow_signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let overflow = Arc::clone(&self.overflow);
        async move { overflow.flag.raised().await }
    }

    /// Lets the hub put broadcasts straight into the connection's outbound
    /// queue, skipping a hop through the connection loop. A full queue counts
    /// as an overflow.
    pub(crate) fn deliver_broadcasts_to(&self, outbox: Arc<Outbox>) {
        let _ = self.overflow.direct.set(outbox);
    }

    fn received(&self, message: Option<LayerMessage>) -> Option<LayerMessage> {
        if let Some(message) = &message {
            self.overflow
                .bytes
                .fetch_sub(cost(message), Ordering::AcqRel);
        }
        message
    }

    /// Whether the inbox has overflowed.
    pub(crate) fn is_overflowed(&self) -> bool {
        self.overflow.flag.is_raised()
    }

    /// The next message, without looking at the overflow flag.
    pub(crate) async fn next_message(&mut self) -> Option<LayerMessage> {
        let message = std::future::poll_fn(|cx| self.overflow.poll_pop(cx)).await;
        self.received(message)
    }

    /// A message that has already arrived, if any.
    pub(crate) fn try_next(&mut self) -> Option<LayerMessage> {
        let message = self.overflow.pop();
        self.received(message)
    }

    /// The next message, in the order it was delivered.
    ///
    /// # Errors
    ///
    /// [`InboxClosed::Overflowed`] as soon as the inbox has overflowed (even
    /// if messages are still queued), or [`InboxClosed::Unregistered`].
    pub async fn recv(&mut self) -> Result<LayerMessage, InboxClosed> {
        if self.overflow.flag.is_raised() {
            return Err(InboxClosed::Overflowed);
        }
        let overflow = Arc::clone(&self.overflow);
        let message = tokio::select! {
            biased;
            () = overflow.flag.raised() => return Err(InboxClosed::Overflowed),
            message = std::future::poll_fn(|cx| self.overflow.poll_pop(cx)) => message,
        };
        self.received(message).ok_or(InboxClosed::Unregistered)
    }
}

impl Hub {
    /// An empty hub.
    #[must_use]
    pub fn new() -> Self {
        Self {
            state: RwLock::default(),
            delivered: AtomicU64::new(0),
            slow_disconnects: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection with an inbox of `budget` bytes (a message
    /// counts its frame's length plus a small overhead; one message larger
    /// than the budget fits an empty inbox).
    pub fn register(&self, channel: &ChannelName, budget: usize) -> Inbox {
        let overflow = Arc::new(Overflow {
            flag: Flag::default(),
            arrived: AtomicWaker::new(),
            bytes: AtomicUsize::new(0),
            budget: budget.max(1),
            direct: std::sync::OnceLock::new(),
            senders: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
            queue: Mutex::new(VecDeque::new()),
        });
        let mailbox = Mailbox {
            overflow: Arc::clone(&overflow),
        };
        self.write().connections.insert(
            channel.clone(),
            Connection {
                mailbox,
                groups: Vec::new(),
            },
        );
        Inbox { overflow }
    }

    /// Removes a connection; returns the groups that now have no local member.
    pub fn unregister(&self, channel: &ChannelName) -> Vec<GroupName> {
        let mut state = self.write();
        let Some(connection) = state.connections.remove(channel) else {
            return Vec::new();
        };
        let mut emptied = Vec::new();
        for group in connection.groups {
            if let Some(members) = state.groups.get_mut(&group) {
                members.remove(channel);
                if members.is_empty() {
                    state.groups.remove(&group);
                    emptied.push(group);
                }
            }
        }
        emptied
    }

    /// Adds a registered connection to `group`; returns whether it is the
    /// group's first local member. Unknown connections are ignored.
    pub fn join(&self, group: &GroupName, channel: &ChannelName) -> bool {
        let mut state = self.write();
        let State {
            connections,
            groups,
        } = &mut *state;
        let Some(connection) = connections.get_mut(channel) else {
            return false;
        };
        if !connection.groups.contains(group) {
            connection.groups.push(group.clone());
        }
        let members = groups.entry(group.clone()).or_default();
        let first = members.is_empty();
        members.insert(channel.clone(), connection.mailbox.clone());
        first
    }

    /// Removes a connection from `group`; returns whether the group has no
    /// local member left.
    pub fn leave(&self, group: &GroupName, channel: &ChannelName) -> bool {
        let mut state = self.write();
        if let Some(connection) = state.connections.get_mut(channel) {
            connection.groups.retain(|joined| joined != group);
        }
        let Some(members) = state.groups.get_mut(group) else {
            return false;
        };
        if members.remove(channel).is_none() {
            return false;
        }
        if members.is_empty() {
            state.groups.remove(group);
            return true;
        }
        false
    }

    /// Delivers to every local member of `group` except the excluded one;
    /// returns how many inboxes got it.
    pub fn deliver_group(&self, group: &GroupName, message: &LayerMessage) -> usize {
        let state = self.read();
        let Some(members) = state.groups.get(group) else {
            return 0;
        };
        let mut delivered = 0;
        let mut wakers = Vec::with_capacity(members.len());
        for (channel, mailbox) in members {
            if message.excluded() == Some(channel) {
                continue;
            }
            if self.offer(channel, mailbox, message.clone(), &mut wakers) {
                delivered += 1;
            }
        }
        drop(state);
        // Every writer is woken once all are queued: the runtime sees the
        // whole fan-out at once instead of a trickle its threads keep
        // parking between.
        for waker in wakers {
            waker.wake();
        }
        delivered
    }

    /// Delivers to one local connection; returns whether it got it.
    pub fn deliver_to(&self, channel: &ChannelName, message: LayerMessage) -> bool {
        let state = self.read();
        let mut wakers = Vec::new();
        let delivered = match state.connections.get(channel) {
            Some(connection) => self.offer(channel, &connection.mailbox, message, &mut wakers),
            None => false,
        };
        drop(state);
        for waker in wakers {
            waker.wake();
        }
        delivered
    }

    fn offer(
        &self,
        channel: &ChannelName,
        mailbox: &Mailbox,
        message: LayerMessage,
        wakers: &mut Vec<std::task::Waker>,
    ) -> bool {
        let overflow = &mailbox.overflow;
        let full = match overflow.direct.get() {
            Some(outbox) if message.kind() == MessageKind::Broadcast => {
                match outbox.try_push_deferred(Outbound::Text(message.frame().clone())) {
                    Ok(waker) => {
                        wakers.extend(waker);
                        false
                    }
                    Err(PushError::Full) => true,
                    Err(PushError::Closed) => return false,
                }
            }
            // A connection that is gone is not too slow: it takes nothing.
            _ if overflow.closed.load(Ordering::Acquire) => return false,
            _ => {
                let cost = cost(&message);
                let before = overflow.bytes.fetch_add(cost, Ordering::AcqRel);
                if before > 0 && before + cost > overflow.budget {
                    overflow.bytes.fetch_sub(cost, Ordering::AcqRel);
                    true
                } else if overflow.push(message).is_err() {
                    overflow.bytes.fetch_sub(cost, Ordering::AcqRel);
                    return false;
                } else {
                    false
                }
            }
        };
        if !full {
            self.delivered.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if mailbox.overflow.flag.raise() {
            self.slow_disconnects.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                channel = channel.as_str(),
                "queue full: closing the slow connection with 1008"
            );
        }
        false
    }

    /// The groups with at least one local member.
    #[must_use]
    pub fn groups(&self) -> Vec<GroupName> {
        self.read().groups.keys().cloned().collect()
    }

    /// The number of local members of `group`.
    #[must_use]
    pub fn member_count(&self, group: &GroupName) -> usize {
        self.read().groups.get(group).map_or(0, HashMap::len)
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> LayerStats {
        LayerStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            slow_disconnects: self.slow_disconnects.load(Ordering::Relaxed),
            ..LayerStats::default()
        }
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::MessageKind;

    fn message(text: &str) -> LayerMessage {
        LayerMessage::from_text(MessageKind::Broadcast, text.to_owned())
    }

    #[tokio::test]
    async fn delivers_to_members_except_the_excluded() {
        let hub = Hub::new();
        let (a, b, c) = (
            ChannelName::new("p", 1),
            ChannelName::new("p", 2),
            ChannelName::new("p", 3),
        );
        let mut inbox_a = hub.register(&a, 1024);
        let mut inbox_b = hub.register(&b, 1024);
        let _inbox_c = hub.register(&c, 1024);
        let lobby = GroupName::new("lobby").unwrap();
        assert!(hub.join(&lobby, &a));
        assert!(!hub.join(&lobby, &b));
        assert_eq!(
            hub.deliver_group(&lobby, &message("1").excluding(a.clone())),
            1
        );
        assert_eq!(inbox_b.recv().await.unwrap().text(), "1");
        assert_eq!(hub.deliver_group(&lobby, &message("2")), 2);
        assert_eq!(inbox_a.recv().await.unwrap().text(), "2");
        assert_eq!(inbox_b.recv().await.unwrap().text(), "2");
        assert!(!hub.leave(&lobby, &a));
        assert_eq!(hub.unregister(&b), vec![lobby.clone()]);
        assert_eq!(hub.deliver_group(&lobby, &message("3")), 0);
        assert!(hub.groups().is_empty());
    }

    #[tokio::test]
    async fn an_inbox_closes_with_its_last_mailbox_and_refuses_once_dropped() {
        let hub = Hub::new();
        let (a, b) = (ChannelName::new("p", 1), ChannelName::new("p", 2));
        let mut inbox_a = hub.register(&a, 1024);
        let group = GroupName::new("g").unwrap();
        hub.join(&group, &a);
        // A waiting receiver is woken by a delivery from another task.
        let waiting = tokio::spawn(async move {
            let first = inbox_a
                .recv()
                .await
                .map(|message| message.text().to_owned());
            (first, inbox_a)
        });
        tokio::task::yield_now().await;
        assert!(hub.deliver_to(&a, message("hello")));
        let (first, mut inbox_a) = waiting.await.unwrap();
        assert_eq!(first.as_deref(), Ok("hello"));
        // Queued messages are still read after the connection leaves the
        // hub (its entry and its group hold a mailbox each); then closed.
        assert_eq!(hub.deliver_group(&group, &message("last")), 1);
        hub.unregister(&a);
        assert_eq!(inbox_a.recv().await.unwrap().text(), "last");
        assert_eq!(inbox_a.recv().await.unwrap_err(), InboxClosed::Unregistered);
        // A dropped inbox takes nothing more, and frees what waited; a
        // full one that is gone is not counted as a slow connection.
        let inbox_b = hub.register(&b, FRAME_OVERHEAD + 6);
        assert!(hub.deliver_to(&b, message("queued")));
        drop(inbox_b);
        assert!(!hub.deliver_to(&b, message("refused")));
        assert_eq!(hub.stats().delivered, 3);
        assert_eq!(hub.stats().slow_disconnects, 0);
    }

    #[tokio::test]
    async fn a_full_inbox_overflows_without_blocking_others() {
        let hub = Hub::new();
        let (slow, fast) = (ChannelName::new("p", 1), ChannelName::new("p", 2));
        // Room for two one-byte messages.
        let mut slow_inbox = hub.register(&slow, 2 * (FRAME_OVERHEAD + 1));
        let mut fast_inbox = hub.register(&fast, 100 * (FRAME_OVERHEAD + 1));
        let group = GroupName::new("g").unwrap();
        hub.join(&group, &slow);
        hub.join(&group, &fast);
        for index in 0..10 {
            hub.deliver_group(&group, &message(&index.to_string()));
        }
        for index in 0..10 {
            assert_eq!(fast_inbox.recv().await.unwrap().text(), index.to_string());
        }
        assert_eq!(
            slow_inbox.recv().await.unwrap_err(),
            InboxClosed::Overflowed
        );
        assert_eq!(hub.stats().slow_disconnects, 1);
        assert_eq!(hub.stats().delivered, 12);
    }
}
