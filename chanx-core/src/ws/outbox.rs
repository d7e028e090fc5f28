//! A connection's outbound queue, bounded in bytes.
//!
//! Everything sent to one client goes through its [`Outbox`]: replies and
//! `ctx.send` (which wait for room), broadcasts delivered by the channel
//! layer (which never wait: a full outbox means the client is too slow), the
//! server's pings, and the close frame. The writer task takes frames in
//! batches and gives their bytes back once they are on the socket, so the
//! budget covers both the queue and the batch being written.
//!
//! A frame is [`Utf8Bytes`], shared: a broadcast to a thousand receivers is
//! one allocation, counted in each receiver's budget but held once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::CloseCode;

/// What each queued frame costs beyond its payload: its queue slot, its
/// header, its share of the batch. Keeps a flood of empty frames bounded too.
pub(crate) const FRAME_OVERHEAD: usize = 64;

/// A frame queued for the writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A text frame.
    Text(Utf8Bytes),
    /// A server ping.
    Ping,
    /// The close frame; nothing is queued after it.
    Close(CloseCode, Utf8Bytes),
}

impl Outbound {
    /// The bytes this frame counts for in the budget.
    pub(crate) fn cost(&self) -> usize {
        FRAME_OVERHEAD
            + match self {
                Self::Text(text) => text.len(),
                Self::Ping => 0,
                Self::Close(_, reason) => reason.len(),
            }
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The budget is used up (only from [`Outbox::try_push`]).
    Full,
    /// The connection is closing or gone.
    Closed,
}

/// The outbound queue of one connection.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// The writer, waiting for frames.
    writer: AtomicWaker,
    /// Senders waiting for room.
    space: Notify,
    /// How many senders wait for room (so releasing bytes notifies only
    /// when someone listens).
    waiting: AtomicUsize,
    budget: usize,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Outbound>,
    /// Bytes of queued frames and of the batch being written.
    bytes: usize,
    /// The latest ping payload to answer (RFC 6455 allows answering only
    /// the most recent ping).
    pong: Option<Bytes>,
    /// A close frame is queued: nothing more is accepted.
    closing: bool,
    /// The writer is gone: nothing is accepted, waiters give up.
    closed: bool,
}

impl Outbox {
    /// An empty outbox with a budget of `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            writer: AtomicWaker::new(),
            space: Notify::new(),
            waiting: AtomicUsize::new(0),
            budget: budget.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes queued or being written.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Queues `frame` if it fits (a frame larger than the whole budget fits
    /// an empty outbox).
    pub(crate) fn try_push(&self, frame: Outbound) -> Result<(), PushError> {
        self.try_push_or_return(frame).map_err(|(error, _)| error)
    }

    /// Queues `frame`, waiting while the outbox is full.
    pub(crate) async fn push(&self, frame: Outbound) -> Result<(), PushError> {
        let mut frame = match self.try_push_or_return(frame) {
            Ok(()) => return Ok(()),
            Err((PushError::Closed, _)) => return Err(PushError::Closed),
            Err((PushError::Full, frame)) => frame,
        };
        // Counted before checking again, so a release in between notifies
        // us; uncounted on drop, so a cancelled send leaves no trace.
        let _waiting = Waiting::new(&self.waiting);
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_push_or_return(frame) {
                Ok(()) => return Ok(()),
                Err((PushError::Closed, _)) => return Err(PushError::Closed),
                Err((PushError::Full, back)) => frame = back,
            }
            notified.await;
        }
    }

    fn try_push_or_return(&self, frame: Outbound) -> Result<(), (PushError, Outbound)> {
        self.enqueue(frame)?;
        self.writer.wake();
        Ok(())
    }

    /// Queues `frame` if it fits, without waking the writer: returns its
    /// waker, for a fan-out to wake every writer once all are queued (so the
    /// runtime sees the whole batch of work at once).
    pub(crate) fn try_push_deferred(&self, frame: Outbound) -> Result<Option<Waker>, PushError> {
        self.enqueue(frame).map_err(|(error, _)| error)?;
        Ok(self.writer.take())
    }

    fn enqueue(&self, frame: Outbound) -> Result<(), (PushError, Outbound)> {
        let cost = frame.cost();
        let mut state = self.lock();
        if state.closed || state.closing {
            return Err((PushError::Closed, frame));
        }
        if state.bytes > 0 && state.bytes + cost > self.budget {
            return Err((PushError::Full, frame));
        }
        state.bytes += cost;
        state.frames.push_back(frame);
        Ok(())
    }

    /// Queues the close frame after everything queued before it, whatever
    /// the budget; later frames are refused. Only the first close counts.
    pub(crate) fn push_close(&self, code: CloseCode, reason: Utf8Bytes) {
        let mut state = self.lock();
        if state.closed || state.closing {
            return;
        }
        let frame = Outbound::Close(code, reason);
        state.bytes += frame.cost();
        state.frames.push_back(frame);
        state.closing = true;
        drop(state);
        self.writer.wake();
        self.wake_senders();
    }

    /// Asks the writer to answer a ping with `payload` (replacing an
    /// unanswered one).
    pub(crate) fn set_pong(&self, payload: Bytes) {
        let mut state = self.lock();
        if state.closed || state.closing {
            return;
        }
        state.pong = Some(payload);
        drop(state);
        self.writer.wake();
    }

    /// The writer is gone: refuse everything, release waiting senders, drop
    /// what is queued.
    pub(crate) fn shut(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.frames = VecDeque::new();
        state.pong = None;
        drop(state);
        self.wake_senders();
    }

    /// For the writer: gives back `written` bytes (the previous batch, now
    /// on the socket), then moves queued frames into `batch` until their
    /// payloads reach `max_bytes` (at least one frame), and takes the pending
    /// pong. Returns the bytes taken, to give back with the next call (or
    /// [`release`](Outbox::release)). `Ready(None)` when nothing more will
    /// come.
    pub(crate) fn poll_batch(
        &self,
        cx: &mut Context<'_>,
        written: &mut usize,
        batch: &mut Vec<Outbound>,
        pong: &mut Option<Bytes>,
        max_bytes: usize,
    ) -> Poll<Option<usize>> {
        let mut state = self.lock();
        if *written > 0 {
            state.bytes = state.bytes.saturating_sub(std::mem::take(written));
            self.wake_senders();
        }
        if state.frames.is_empty() && state.pong.is_none() {
            if state.closed || state.closing {
                return Poll::Ready(None);
            }
            self.writer.register(cx.waker());
            // A push between the check and the registration woke nobody:
            // look again.
            if state.frames.is_empty() && state.pong.is_none() {
                return Poll::Pending;
            }
        }
        *pong = state.pong.take();
        let mut taken = 0;
        let mut payload = 0;
        while let Some(frame) = state.frames.pop_front() {
            let cost = frame.cost();
            let stop = matches!(frame, Outbound::Close(..));
            taken += cost;
            payload += cost;
            batch.push(frame);
            if stop || payload >= max_bytes {
                break;
            }
            if state
                .frames
                .front()
                .is_some_and(|next| payload + next.cost() > max_bytes)
            {
                break;
            }
        }
        if state.frames.is_empty() && state.frames.capacity() > 64 {
            // A burst grew the queue; give the room back.
            state.frames = VecDeque::new();
        }
        Poll::Ready(Some(taken))
    }

    /// For the writer: `bytes` taken by a batch are on the socket.
    pub(crate) fn release(&self, bytes: usize) {
        let mut state = self.lock();
        state.bytes = state.bytes.saturating_sub(bytes);
        drop(state);
        self.wake_senders();
    }

    fn wake_senders(&self) {
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.space.notify_waiters();
        }
    }
}

/// One sender waiting for room, counted while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn text(len: usize) -> Outbound {
        Outbound::Text(Utf8Bytes::from("x".repeat(len)))
    }

    async fn batch(outbox: &Outbox, max: usize) -> (Vec<Outbound>, Option<Bytes>, usize) {
        let mut frames = Vec::new();
        let mut pong = None;
        let taken =
            std::future::poll_fn(|cx| outbox.poll_batch(cx, &mut 0, &mut frames, &mut pong, max))
                .await
                .unwrap_or(0);
        (frames, pong, taken)
    }

    #[tokio::test]
    async fn bounded_in_bytes_with_room_for_one_large_frame() {
        let outbox = Outbox::new(1000);
        outbox.try_push(text(500)).unwrap();
        outbox.try_push(text(300)).unwrap();
        assert_eq!(outbox.try_push(text(100)), Err(PushError::Full));
        let (frames, _, taken) = batch(&outbox, 10_000).await;
        assert_eq!(frames.len(), 2);
        // Still counted until written.
        assert_eq!(outbox.try_push(text(100)), Err(PushError::Full));
        outbox.release(taken);
        assert_eq!(outbox.queued_bytes(), 0);
        // Larger than the budget: fits only an empty outbox.
        outbox.try_push(text(5000)).unwrap();
        assert_eq!(outbox.try_push(text(1)), Err(PushError::Full));
    }

    #[tokio::test]
    async fn senders_wait_for_room_and_close_releases_them() {
        let outbox = Arc::new(Outbox::new(200));
        outbox.try_push(text(100)).unwrap();
        let waiting = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { outbox.push(text(100)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        let (_, _, taken) = batch(&outbox, 10_000).await;
        outbox.release(taken);
        assert_eq!(waiting.await.unwrap(), Ok(()));
        let (_, _, taken) = batch(&outbox, 10_000).await;
        outbox.release(taken);

        outbox.try_push(text(100)).unwrap();
        let refused = tokio::spawn({
            let outbox = Arc::clone(&outbox);
            async move { outbox.push(text(150)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        outbox.shut();
        assert_eq!(refused.await.unwrap(), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn close_goes_last_and_pongs_coalesce() {
        let outbox = Outbox::new(10_000);
        outbox.try_push(text(1)).unwrap();
        outbox.set_pong(Bytes::from_static(b"1"));
        outbox.set_pong(Bytes::from_static(b"2"));
        outbox.push_close(CloseCode::NORMAL, Utf8Bytes::from_static("bye"));
        assert_eq!(outbox.try_push(text(1)), Err(PushError::Closed));
        let (frames, pong, _) = batch(&outbox, 10_000).await;
        assert_eq!(pong.as_deref(), Some(&b"2"[..]));
        assert!(matches!(
            frames.as_slice(),
            [Outbound::Text(_), Outbound::Close(..)]
        ));
        let mut rest = Vec::new();
        let mut pong = None;
        let done =
            std::future::poll_fn(|cx| outbox.poll_batch(cx, &mut 0, &mut rest, &mut pong, 10))
                .await;
        assert_eq!(done, None);
    }

    #[tokio::test]
    async fn batches_stop_at_the_write_budget() {
        let outbox = Outbox::new(100_000);
        for _ in 0..10 {
            outbox.try_push(text(1000)).unwrap();
        }
        let (frames, _, _) = batch(&outbox, 4096).await;
        assert_eq!(frames.len(), 3);
    }
}
