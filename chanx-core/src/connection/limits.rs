//! Per-connection limiters: the message rate limit and the fan-out budget.

use std::time::{Duration, Instant};

use crate::config::{FanoutLimit, RateLimit};

/// A connection that stays over its rate limit this long is closed.
pub(crate) const SUSTAINED_EXCESS: Duration = Duration::from_secs(1);

/// A token bucket: `burst` tokens, refilled at `rate` a second.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Takes `n` tokens if there are that many.
    pub(crate) fn take(&mut self, now: Instant, n: f64) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens even if that leaves a debt.
    pub(crate) fn charge(&mut self, now: Instant, n: f64) {
        self.refill(now);
        self.tokens -= n;
    }

    /// How long until the bucket is out of debt, if it is in debt.
    pub(crate) fn debt(&mut self, now: Instant) -> Option<Duration> {
        self.refill(now);
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }
}

/// What to do with a frame, by the rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit.
    Allow,
    /// Over the limit: do not dispatch (a data message gets a 429 frame).
    Refuse,
    /// Over the limit for too long or too often: close with 1008.
    Close,
}

/// The message rate limit of one connection: every frame a client sends
/// (each message, fragment, ping and pong) takes a token. A refusal starts
/// an episode of excess, which lasts until [`SUSTAINED_EXCESS`] passes
/// without a refusal. A connection is closed once an episode has lasted
/// [`SUSTAINED_EXCESS`], or has had more than `burst` refusals: a client
/// that keeps sending over its limit is closed within a second, however the
/// tokens trickle in.
#[derive(Debug, Clone)]
pub(crate) struct MessageLimiter {
    bucket: TokenBucket,
    burst: u32,
    /// When the current episode of excess began, and its last refusal.
    episode: Option<(Instant, Instant)>,
    refused: u32,
}

impl MessageLimiter {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(limit.per_second, f64::from(limit.burst), now),
            burst: limit.burst,
            episode: None,
            refused: 0,
        }
    }

    /// Charges `frames` frames arriving at `now`.
    pub(crate) fn check(&mut self, now: Instant, frames: u32) -> Verdict {
        let frames = frames.clamp(1, self.burst);
        if self.bucket.take(now, f64::from(frames)) {
            return Verdict::Allow;
        }
        let began = match self.episode {
            Some((began, last)) if now.saturating_duration_since(last) < SUSTAINED_EXCESS => began,
            _ => {
                self.refused = 0;
                now
            }
        };
        self.episode = Some((began, now));
        self.refused = self.refused.saturating_add(1);
        if self.refused > self.burst || now.saturating_duration_since(began) >= SUSTAINED_EXCESS {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }
}

/// The fan-out budget of one connection: what its broadcasts make the
/// server queue (bytes × receivers), refilled at `bytes_per_second`. A
/// connection in debt is not read until the debt is repaid.
#[derive(Debug, Clone)]
pub(crate) struct FanoutBudget {
    bucket: TokenBucket,
}

impl FanoutBudget {
    pub(crate) fn new(limit: FanoutLimit, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(limit.bytes_per_second as f64, limit.burst as f64, now),
        }
    }

    /// Charges a broadcast of `bytes` to `receivers` connections.
    pub(crate) fn charge(&mut self, now: Instant, bytes: usize, receivers: usize) {
        self.bucket
            .charge(now, bytes as f64 * receivers.max(1) as f64);
    }

    /// How long the connection must wait before its next frame is read.
    pub(crate) fn wait(&mut self, now: Instant) -> Option<Duration> {
        self.bucket.debt(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn a_flood_is_refused_then_closed_even_as_tokens_trickle_in() {
        let start = Instant::now();
        let mut limiter = MessageLimiter::new(RateLimit::new(1000.0, 100), start);
        let mut verdicts = Vec::new();
        // 55 frames a millisecond: one token refills between frames now and
        // then, which used to reset the refusal count.
        for index in 0..5000u64 {
            let verdict = limiter.check(at(start, index / 55), 1);
            verdicts.push(verdict);
            if verdict == Verdict::Close {
                break;
            }
        }
        assert_eq!(verdicts.last(), Some(&Verdict::Close));
        assert!(
            verdicts.len() < 400,
            "closed after {} frames",
            verdicts.len()
        );
        assert!(verdicts.iter().filter(|v| **v == Verdict::Allow).count() >= 100);
    }

    #[test]
    fn slightly_over_the_rate_closes_within_a_second_of_going_over() {
        let start = Instant::now();
        let mut limiter = MessageLimiter::new(RateLimit::new(100.0, 10), start);
        // 110 a second: over the limit once the burst is spent.
        let mut closed_at = None;
        for index in 0..1000u64 {
            if limiter.check(at(start, index * 1000 / 110), 1) == Verdict::Close {
                closed_at = Some(index * 1000 / 110);
                break;
            }
        }
        let closed_at = closed_at.expect("closed");
        assert!(closed_at < 3000, "{closed_at} ms");
    }

    #[test]
    fn a_burst_then_calm_is_forgiven() {
        let start = Instant::now();
        let mut limiter = MessageLimiter::new(RateLimit::new(100.0, 10), start);
        let burst: Vec<_> = (0..15).map(|_| limiter.check(start, 1)).collect();
        assert_eq!(burst.iter().filter(|v| **v == Verdict::Allow).count(), 10);
        assert_eq!(burst.iter().filter(|v| **v == Verdict::Refuse).count(), 5);
        // Calm: one frame every 50 ms for three seconds.
        for index in 1..=60 {
            assert_eq!(limiter.check(at(start, index * 50), 1), Verdict::Allow);
        }
        // A new burst after the calm starts a new episode: refused, not
        // closed.
        let later = at(start, 3100);
        let burst: Vec<_> = (0..15).map(|_| limiter.check(later, 1)).collect();
        assert!(!burst.contains(&Verdict::Close));
        assert!(burst.contains(&Verdict::Refuse));
    }

    #[test]
    fn a_flood_the_server_reads_slowly_is_still_closed() {
        // The server sees the frames at its own pace: with two tokens
        // trickling in between two of them, the old limiter forgot the
        // excess every time.
        let start = Instant::now();
        let mut limiter = MessageLimiter::new(RateLimit::new(1000.0, 200), start);
        let mut closed = None;
        for index in 0..100_000u64 {
            // A burst of 30 frames every 3 ms, seen 0.1 ms apart.
            let time = start + Duration::from_micros((index / 30) * 3000 + (index % 30) * 100);
            if limiter.check(time, 1) == Verdict::Close {
                closed = Some(time - start);
                break;
            }
        }
        let closed = closed.expect("closed");
        assert!(closed <= Duration::from_millis(1100), "{closed:?}");
    }

    #[test]
    fn fanout_debt_is_repaid_at_the_rate() {
        let start = Instant::now();
        let mut budget = FanoutBudget::new(FanoutLimit::new(1000, 500), start);
        budget.charge(start, 100, 4);
        assert_eq!(budget.wait(start), None);
        budget.charge(start, 100, 4);
        let wait = budget.wait(start).unwrap();
        assert!((wait.as_secs_f64() - 0.3).abs() < 0.01, "{wait:?}");
        assert_eq!(budget.wait(at(start, 301)), None);
    }
}
