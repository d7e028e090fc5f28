//! A connection's outbound queue, bounded in bytes.
//!
//! Everything sent to one client goes through its [`Outbox`]: replies and
//! `ctx.send` (which wait for room), broadcasts delivered by the channel
//! layer (which never wait: a full outbox means the client is too slow), the
//! server's pings, and the close frame.
//!
//! On a TCP socket, a text frame pushed while nothing is queued and the
//! writer is idle is written at once by the pushing task, with a
//! non-blocking write: a reply costs the connection no wake-up of its
//! writer task, and a fan-out to receivers that keep up costs no task
//! wake-up per receiver. Whatever does not go out at once (a full socket,
//! a backlog, a frame pushed while the writer holds a batch) is queued, in
//! order, for the writer task, which takes frames in batches and gives
//! their bytes back once they are on the socket, so the budget covers both
//! the queue and the batch being written.
//!
//! A frame is [`Utf8Bytes`], shared: a broadcast to a thousand receivers is
//! one allocation, counted in each receiver's budget but held once.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::CloseCode;
use super::encode::{MAX_HEADER, OP_TEXT, SMALL_FRAME, header_into, small_frame};

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
    /// The rest of a frame whose start was written at once: raw bytes (the
    /// rest of its header, the rest of its payload).
    Rest(Bytes, Bytes),
}

impl Outbound {
    /// The bytes this frame counts for in the budget.
    pub(crate) fn cost(&self) -> usize {
        FRAME_OVERHEAD
            + match self {
                Self::Text(text) => text.len(),
                Self::Ping => 0,
                Self::Close(_, reason) => reason.len(),
                Self::Rest(head, payload) => head.len() + payload.len(),
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
    /// Where accepted text frames are counted.
    metrics: Option<Arc<crate::metrics::ChannelMetrics>>,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Outbound>,
    /// Bytes of queued frames and of the batch being written.
    bytes: usize,
    /// The latest ping payload to answer (RFC 6455 allows answering only
    /// the most recent ping).
    pong: Option<Bytes>,
    /// The writer holds a batch.
    writing: bool,
    /// The socket, for writes made at once (TCP only).
    direct: Option<Arc<OwnedWriteHalf>>,
    /// A close frame is queued: nothing more is accepted.
    closing: bool,
    /// The writer is gone: nothing is accepted, waiters give up.
    closed: bool,
}

/// What a write made at once achieved.
enum Immediate {
    /// The whole frame is on the socket.
    Written,
    /// Part of it: the rest must be queued.
    Partly(Outbound),
    /// Nothing (the socket is full, or not writable at once).
    Not,
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
            metrics: None,
        }
    }

    /// Counts every text frame this outbox accepts in `metrics`.
    pub(crate) fn counted(mut self, metrics: Arc<crate::metrics::ChannelMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// An outbox that may write at once to `socket`, which the writer task
    /// shares.
    pub(crate) fn with_socket(budget: usize, socket: Arc<OwnedWriteHalf>) -> Self {
        let outbox = Self::new(budget);
        outbox.lock().direct = Some(socket);
        outbox
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
        if self.enqueue(frame)? {
            self.writer.wake();
        }
        Ok(())
    }

    /// For a fan-out: writes `frame` at once if the socket takes it and the
    /// writer is idle; otherwise queues it if it fits, without waking the
    /// writer, and returns its waker, to wake every writer once all are
    /// queued (so the runtime sees the whole batch of work at once). `None`
    /// when the frame went out at once, or the writer needs no waking.
    pub(crate) fn try_push_deferred(&self, frame: Outbound) -> Result<Option<Waker>, PushError> {
        if self.enqueue(frame).map_err(|(error, _)| error)? {
            Ok(self.writer.take())
        } else {
            Ok(None)
        }
    }

    /// Writes `frame` at once if it can (TCP, nothing queued, the writer
    /// idle), queues it (or its rest) otherwise; returns whether the writer
    /// has work.
    fn enqueue(&self, frame: Outbound) -> Result<bool, (PushError, Outbound)> {
        let cost = frame.cost();
        let mut state = self.lock();
        if state.closed || state.closing {
            return Err((PushError::Closed, frame));
        }
        if state.bytes > 0 && state.bytes + cost > self.budget {
            return Err((PushError::Full, frame));
        }
        if let (Some(metrics), Outbound::Text(text)) = (&self.metrics, &frame) {
            metrics.sent(text.len());
        }
        let frame = if state.frames.is_empty() && !state.writing && state.pong.is_none() {
            match state
                .direct
                .as_deref()
                .map(|socket| write_now(socket, &frame))
            {
                Some(Immediate::Written) => return Ok(false),
                Some(Immediate::Partly(rest)) => rest,
                Some(Immediate::Not) | None => frame,
            }
        } else {
            frame
        };
        state.bytes += frame.cost();
        state.frames.push_back(frame);
        Ok(true)
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
    /// what is queued. Returns the shared socket, so the writer can close
    /// it.
    pub(crate) fn shut(&self) -> Option<Arc<OwnedWriteHalf>> {
        let mut state = self.lock();
        state.closed = true;
        state.frames = VecDeque::new();
        state.pong = None;
        let socket = state.direct.take();
        drop(state);
        self.wake_senders();
        socket
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
            state.writing = false;
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
        state.writing = true;
        // The rest of a frame started at once goes first and alone: a pong
        // written before it would land inside that frame. (A rest is only
        // ever queued into an empty queue, so it can only be at the front.)
        if !matches!(state.frames.front(), Some(Outbound::Rest(..))) {
            *pong = state.pong.take();
        }
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

/// Writes a text frame to `socket` without waiting: all of it, part of it,
/// or nothing. Anything but a text frame waits for the writer.
fn write_now(socket: &OwnedWriteHalf, frame: &Outbound) -> Immediate {
    let Outbound::Text(text) = frame else {
        return Immediate::Not;
    };
    let stream = socket.as_ref();
    let payload = text.as_bytes();
    let mut small = [0u8; SMALL_FRAME];
    let mut header = [0u8; MAX_HEADER];
    let small_len = small_frame(&mut small, OP_TEXT, payload);
    let header_len = header_into(&mut header, OP_TEXT, payload.len());
    let total = header_len + payload.len();
    let written = match small_len {
        Some(len) => stream.try_write(&small[..len]),
        None => {
            let slices = [IoSlice::new(&header[..header_len]), IoSlice::new(payload)];
            stream.try_write_vectored(&slices)
        }
    };
    match written {
        Ok(count) if count >= total => Immediate::Written,
        Ok(0) => Immediate::Not,
        Ok(count) => {
            // Part of the frame is out: the rest goes next, raw.
            let rest = match small_len {
                Some(len) => {
                    Outbound::Rest(Bytes::copy_from_slice(&small[count..len]), Bytes::new())
                }
                None => Outbound::Rest(
                    Bytes::copy_from_slice(&header[count.min(header_len)..header_len]),
                    Bytes::from(text.clone()).slice(count.saturating_sub(header_len)..),
                ),
            };
            Immediate::Partly(rest)
        }
        // The socket is full, or failed: the writer's own write will wait
        // for it, or meet the error.
        Err(_) => Immediate::Not,
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

    /// A TCP pair: (the server's write half, the client's stream).
    async fn tcp_pair() -> (Arc<OwnedWriteHalf>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read, write) = server.into_split();
        std::mem::forget(_read);
        (Arc::new(write), client)
    }

    #[tokio::test]
    async fn an_idle_socket_is_written_at_once_and_a_busy_one_queues_in_order() {
        use tokio::io::AsyncReadExt;
        let (socket, mut client) = tcp_pair().await;
        let outbox = Outbox::with_socket(1 << 20, Arc::clone(&socket));
        // Idle: written at once, nothing queued.
        assert!(outbox.try_push_deferred(text(3)).unwrap().is_none());
        assert_eq!(outbox.queued_bytes(), 0);
        let mut first = [0u8; 5];
        client.read_exact(&mut first).await.unwrap();
        assert_eq!(first, [0x81, 3, b'x', b'x', b'x']);
        // A reply too: written by the pushing task, the writer not woken.
        outbox.push(text(2)).await.unwrap();
        assert_eq!(outbox.queued_bytes(), 0);
        let mut second = [0u8; 4];
        client.read_exact(&mut second).await.unwrap();
        assert_eq!(second, [0x81, 2, b'x', b'x']);
        // The writer holds a batch: later frames queue behind it, replies
        // and broadcasts alike.
        outbox.try_push(Outbound::Ping).unwrap();
        let (frames, _, _) = batch(&outbox, 10_000).await;
        assert_eq!(frames.len(), 1);
        let _ = outbox.try_push_deferred(text(2)).unwrap();
        let queued = outbox.queued_bytes();
        assert!(queued > 0);
        outbox.push(text(1)).await.unwrap();
        assert!(outbox.queued_bytes() > queued);
    }

    #[tokio::test]
    async fn a_pong_never_lands_inside_the_rest_of_a_frame() {
        let outbox = Outbox::new(1 << 20);
        // What a write made at once left of a frame (the socket took its
        // start), then a client's ping before the writer runs.
        outbox
            .try_push(Outbound::Rest(
                Bytes::from_static(b"\x05"),
                Bytes::from_static(b"hello"),
            ))
            .unwrap();
        outbox.try_push(text(2)).unwrap();
        outbox.set_pong(Bytes::from_static(b"p"));
        let (frames, pong, taken) = batch(&outbox, 1 << 30).await;
        assert!(matches!(frames.first(), Some(Outbound::Rest(..))));
        assert_eq!(frames.len(), 2);
        assert!(pong.is_none(), "a pong would be written inside the frame");
        outbox.release(taken);
        // The next batch answers the ping.
        let (frames, pong, _) = batch(&outbox, 1 << 30).await;
        assert!(frames.is_empty());
        assert_eq!(pong.as_deref(), Some(&b"p"[..]));
    }

    #[tokio::test]
    async fn a_full_socket_keeps_the_rest_of_a_frame_in_order() {
        let (socket, client) = tcp_pair().await;
        let outbox = Outbox::with_socket(64 << 20, Arc::clone(&socket));
        // Large frames until the socket buffers are full; each one is
        // written at once, partly, or queued.
        let mut pushed = 0;
        while outbox.queued_bytes() == 0 && pushed < 1000 {
            let _ = outbox.try_push_deferred(text(256 * 1024)).unwrap();
            pushed += 1;
        }
        assert!(pushed < 1000, "the socket never filled");
        let (frames, _, _) = batch(&outbox, 1 << 30).await;
        // What the socket refused comes first: the rest of a frame, or a
        // whole frame.
        assert!(matches!(
            frames.first(),
            Some(Outbound::Rest(..) | Outbound::Text(_))
        ));
        drop(client);
    }
}
