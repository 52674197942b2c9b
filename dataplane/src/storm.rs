//! BUM storm control: a token bucket per bridge domain that limits how many
//! frames per second a worker floods in it.
//!
//! A bridge domain's `storm_pps` is the limit for the whole node; each of
//! the `workers` workers admits its share, `ceil(storm_pps / workers)`
//! frames per second, so the node as a whole floods at most `storm_pps`
//! (plus at most one frame per second per worker from rounding up) however
//! the NIC spreads the storm over its queues. The bucket holds a tenth of
//! a second's worth of the share, at least 10 frames (or the share, when it
//! is smaller): short bursts (a host ARPing for its neighbours after boot)
//! pass, a sustained storm is cut to the rate.
//!
//! The buckets are per worker, so checking one never touches shared memory,
//! and per bridge domain, so a storm in one domain never spends another's
//! tokens. Time is the caller's [`Tick`] (milliseconds); nothing here reads
//! a clock. Tokens are kept in thousandths of a frame so that a rate below
//! 1000 per second still refills every millisecond, in integers, and every
//! product saturates: a bucket idle for years is simply full.

use crate::fdb::Tick;
use crate::types::BdId;

/// Thousandths of a token per frame.
const MILLI: u64 = 1000;
/// Fewest frames a bucket holds (unless the rate itself is lower).
const MIN_BURST: u64 = 10;

/// One token bucket: `rate` frames per second, bursts up to
/// [`burst`](TokenBucket::burst) frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens in thousandths of a frame.
    milli_tokens: u64,
    /// When the bucket was last refilled; `None` before its first use (a
    /// fresh bucket starts full).
    last: Option<Tick>,
}

impl TokenBucket {
    /// How many frames a bucket of `rate` frames per second holds.
    pub fn burst(rate: u32) -> u64 {
        let rate = u64::from(rate);
        (rate / 10).max(MIN_BURST.min(rate)).max(1)
    }

    /// Takes one frame's token at time `now` if there is one; refills first
    /// by the time passed since the last call. Time that goes backwards
    /// refills nothing.
    #[inline]
    pub fn admit(&mut self, rate: u32, now: Tick) -> bool {
        let cap = Self::burst(rate).saturating_mul(MILLI);
        let tokens = match self.last {
            None => cap,
            Some(last) => {
                // `rate` frames per second is `rate` thousandths of a frame
                // per millisecond.
                let add = now.millis_since(last).saturating_mul(u64::from(rate));
                self.milli_tokens.saturating_add(add).min(cap)
            }
        };
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
        if tokens >= MILLI {
            self.milli_tokens = tokens - MILLI;
            true
        } else {
            self.milli_tokens = tokens;
            false
        }
    }
}

/// One worker's storm buckets, one per bridge domain, indexed by [`BdId`].
#[derive(Clone, Debug)]
pub struct StormControl {
    buckets: Vec<TokenBucket>,
    workers: u32,
}

impl Default for StormControl {
    fn default() -> Self {
        StormControl::new(1)
    }
}

impl StormControl {
    /// The buckets of one of `workers` workers (0 is taken as 1).
    pub fn new(workers: u32) -> StormControl {
        StormControl {
            buckets: Vec::new(),
            workers: workers.max(1),
        }
    }

    /// Sets how many workers share each limit.
    pub fn set_workers(&mut self, workers: u32) {
        self.workers = workers.max(1);
    }

    /// This worker's share of a node-wide limit of `pps` frames per second:
    /// `ceil(pps / workers)`, at least 1.
    #[inline]
    pub fn share(&self, pps: u32) -> u32 {
        pps.div_ceil(self.workers).max(1)
    }

    /// Makes room for bridge domains up to `bd` (so the first frame of a
    /// domain does not allocate).
    pub fn reserve(&mut self, bd: BdId) {
        let n = usize::from(bd.0) + 1;
        if self.buckets.len() < n {
            self.buckets.resize(n, TokenBucket::default());
        }
    }

    /// Whether bridge domain `bd`, limited to `pps` frames per second
    /// node-wide, may flood one more frame at `now`.
    #[inline]
    pub fn admit(&mut self, bd: BdId, pps: u32, now: Tick) -> bool {
        let rate = self.share(pps);
        let i = usize::from(bd.0);
        if i >= self.buckets.len() {
            self.reserve(bd);
        }
        self.buckets[i].admit(rate, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames admitted when offering one every `step_ms` from `from` for
    /// `ms` milliseconds (and `per_step` frames each time).
    fn offer(b: &mut TokenBucket, rate: u32, from: u64, ms: u64, step: u64, per_step: u32) -> u64 {
        let mut n = 0;
        let mut t = from;
        while t < from + ms {
            for _ in 0..per_step {
                n += u64::from(b.admit(rate, Tick(t)));
            }
            t += step;
        }
        n
    }

    #[test]
    fn a_fresh_bucket_admits_its_burst_then_nothing_at_the_same_instant() {
        let mut b = TokenBucket::default();
        let rate = 10_000;
        assert_eq!(TokenBucket::burst(rate), 1000);
        let n = (0..5000).filter(|_| b.admit(rate, Tick(7))).count();
        assert_eq!(n, 1000);
    }

    #[test]
    fn a_storm_is_cut_to_the_rate() {
        let mut b = TokenBucket::default();
        // 1000 pps, offered 10 frames every millisecond (10 000 pps) for 5 s.
        let n = offer(&mut b, 1000, 0, 5000, 1, 10);
        let burst = TokenBucket::burst(1000);
        assert_eq!(burst, 100);
        // The burst, then one frame per millisecond.
        assert!((5000..=5000 + burst).contains(&n), "admitted {n}");
    }

    #[test]
    fn low_rates_refill_in_thousandths() {
        let mut b = TokenBucket::default();
        // 3 pps: burst 3, then one frame every 333.3 ms.
        assert_eq!(TokenBucket::burst(3), 3);
        let n = offer(&mut b, 3, 0, 10_000, 1, 1);
        assert!((30..=33).contains(&n), "admitted {n}");
    }

    #[test]
    fn below_the_rate_everything_passes() {
        let mut b = TokenBucket::default();
        // 100 pps offered one frame every 20 ms (50 pps).
        let n = offer(&mut b, 100, 0, 10_000, 20, 1);
        assert_eq!(n, 500);
    }

    #[test]
    fn a_long_idle_bucket_is_full_not_overflowed() {
        let mut b = TokenBucket::default();
        assert!(b.admit(u32::MAX, Tick(0)));
        let n = offer(&mut b, u32::MAX, u64::MAX - 1, 1, 1, 10);
        assert_eq!(n, 10);
        let mut b = TokenBucket::default();
        assert!(b.admit(5, Tick(0)));
        // Years later: exactly one burst, no wrap-around.
        let n = (0..100).filter(|_| b.admit(5, Tick(u64::MAX))).count();
        assert_eq!(n as u64, TokenBucket::burst(5));
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut b = TokenBucket::default();
        let burst = TokenBucket::burst(50);
        let n = (0..100).filter(|_| b.admit(50, Tick(10_000))).count();
        assert_eq!(n as u64, burst);
        assert!(!b.admit(50, Tick(0)));
        assert!(!b.admit(50, Tick(9_999)));
        // Back at 10 000 ms: still nothing, 20 ms later one frame (50 pps).
        assert!(!b.admit(50, Tick(10_000)));
        assert!(b.admit(50, Tick(10_020)));
    }

    #[test]
    fn bridge_domains_do_not_share_tokens() {
        let mut s = StormControl::new(1);
        let now = Tick(5);
        let spent = (0..10_000).filter(|_| s.admit(BdId(1), 100, now)).count();
        assert_eq!(spent, 10);
        assert!(!s.admit(BdId(1), 100, now));
        // BD 2 (and a far-away BD 300) still have their whole bursts.
        assert_eq!((0..100).filter(|_| s.admit(BdId(2), 100, now)).count(), 10);
        assert_eq!(
            (0..100).filter(|_| s.admit(BdId(300), 1000, now)).count(),
            100
        );
    }

    #[test]
    fn workers_share_the_limit() {
        let s = StormControl::new(4);
        assert_eq!(s.share(10_000), 2500);
        assert_eq!(s.share(10), 3);
        assert_eq!(s.share(1), 1);
        let mut s = StormControl::new(0);
        assert_eq!(s.share(7), 7);
        s.set_workers(2);
        assert_eq!(s.share(7), 4);
        // Four workers each flooding their share for 10 s stay within the
        // node-wide limit plus their bursts.
        let mut total = 0;
        for _ in 0..4 {
            let mut w = StormControl::new(4);
            let mut t = 0;
            while t < 10_000 {
                for _ in 0..5 {
                    total += u64::from(w.admit(BdId(1), 1000, Tick(t)));
                }
                t += 1;
            }
        }
        assert!(total <= 10_000 + 4 * TokenBucket::burst(250), "{total}");
        assert!(total >= 10_000, "{total}");
    }
}
