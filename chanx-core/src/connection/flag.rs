//! A one-way signal that is cheap to poll: an atomic flag and one waker.
//!
//! The connection loop checks its stop, writer-failure and inbox-overflow
//! signals on every wake; a `CancellationToken` takes a lock for each
//! check, this takes an atomic load (and a waker registration while it
//! waits).

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

/// Raised once, never lowered. One task waits on it.
#[derive(Debug, Default)]
pub(crate) struct Flag {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl Flag {
    /// Raises the flag and wakes its waiter; returns whether this call
    /// raised it (it was not raised before).
    pub(crate) fn raise(&self) -> bool {
        let first = !self.raised.swap(true, Ordering::AcqRel);
        self.waker.wake();
        first
    }

    /// Whether the flag is raised.
    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Resolves once the flag is raised.
    pub(crate) async fn raised(&self) {
        std::future::poll_fn(|cx| {
            if self.is_raised() {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.is_raised() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_raise_wakes_the_waiter() {
        let flag = Arc::new(Flag::default());
        let waiter = tokio::spawn({
            let flag = Arc::clone(&flag);
            async move { flag.raised().await }
        });
        tokio::task::yield_now().await;
        assert!(!flag.is_raised());
        assert!(flag.raise());
        assert!(!flag.raise());
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(flag.is_raised());
    }
}
