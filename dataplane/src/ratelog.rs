//! Rate limiting for log lines about events that can come in floods (MAC
//! flaps, drops that should not happen): at most one line per reason per
//! interval, and the line that is let through says how many were held back
//! since the previous one. Counters keep the full story; the log only has to
//! tell an operator that something is wrong, without drowning the journal.
//!
//! Time is passed in as milliseconds on any monotonic clock the caller keeps
//! (an FDB [`Tick`](crate::fdb::Tick), or an `Instant` turned into
//! milliseconds), so the limiter is pure and tested without sleeping.

/// Default interval between two lines of one reason.
pub const DEFAULT_INTERVAL_MS: u64 = 5_000;

/// A limiter for one reason.
#[derive(Clone, Debug)]
pub struct RateLimit {
    interval_ms: u64,
    last: Option<u64>,
    suppressed: u64,
}

impl RateLimit {
    /// At most one line per `interval_ms`.
    pub const fn new(interval_ms: u64) -> RateLimit {
        RateLimit {
            interval_ms,
            last: None,
            suppressed: 0,
        }
    }

    /// An event happened at `now_ms`. `Some(n)` means "log it now", `n` being
    /// how many events were suppressed since the last line; `None` means
    /// "stay quiet" (the event is counted as suppressed).
    pub fn allow(&mut self, now_ms: u64) -> Option<u64> {
        self.allow_n(now_ms, 1)
    }

    /// Like [`allow`](Self::allow) for `events` events at once (e.g. a
    /// counter that moved by that much); `events = 0` is no event at all.
    pub fn allow_n(&mut self, now_ms: u64, events: u64) -> Option<u64> {
        if events == 0 {
            return None;
        }
        let due = self
            .last
            .is_none_or(|last| now_ms.saturating_sub(last) >= self.interval_ms);
        if due {
            self.last = Some(now_ms);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed = self.suppressed.saturating_add(events);
            None
        }
    }

    /// Events suppressed since the last line let through.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new(DEFAULT_INTERVAL_MS)
    }
}

/// Watches counters that should stay at zero (drops that mean a bug or an
/// undersized ring, not bad traffic) and logs a warning, rate-limited per
/// counter, whenever one of them moves.
#[derive(Clone, Debug)]
pub struct DropWatch {
    who: String,
    interval_ms: u64,
    seen: Vec<(&'static str, u64, RateLimit)>,
}

impl DropWatch {
    /// A watch whose lines name `who` (e.g. `worker 0`).
    pub fn new(who: impl Into<String>, interval_ms: u64) -> DropWatch {
        DropWatch {
            who: who.into(),
            interval_ms,
            seen: Vec::new(),
        }
    }

    /// Looks at the current values of the watched counters at `now_ms`;
    /// returns the lines it logged (`(counter, new drops, suppressed)`), for
    /// tests. The first look at a counter only records its value.
    pub fn observe(
        &mut self,
        now_ms: u64,
        counters: &[(&'static str, u64)],
    ) -> Vec<(&'static str, u64, u64)> {
        let mut logged = Vec::new();
        for &(name, value) in counters {
            let i = match self.seen.iter().position(|(n, _, _)| *n == name) {
                Some(i) => i,
                None => {
                    self.seen
                        .push((name, value, RateLimit::new(self.interval_ms)));
                    continue;
                }
            };
            let (_, last, limit) = &mut self.seen[i];
            let new = value.saturating_sub(*last);
            *last = value;
            if let Some(suppressed) = limit.allow_n(now_ms, new) {
                tracing::warn!(
                    who = %self.who,
                    counter = name,
                    new,
                    total = value,
                    suppressed,
                    "frames dropped for a reason that should not happen (rate-limited log)"
                );
                logged.push((name, new, suppressed));
            }
        }
        logged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_suppressed_count() {
        let mut r = RateLimit::new(1000);
        assert_eq!(r.allow(0), Some(0));
        assert_eq!(r.allow(10), None);
        assert_eq!(r.allow(999), None);
        assert_eq!(r.suppressed(), 2);
        assert_eq!(r.allow(1000), Some(2));
        assert_eq!(r.suppressed(), 0);
        assert_eq!(r.allow(1500), None);
        assert_eq!(r.allow_n(1600, 5), None);
        assert_eq!(r.allow_n(1700, 0), None, "no event, nothing to count");
        assert_eq!(r.allow(5000), Some(6));
        // A clock that goes backwards never panics and stays quiet.
        assert_eq!(r.allow(10), None);
    }

    #[test]
    fn drop_watch_logs_only_moves_and_only_once_per_interval() {
        let mut w = DropWatch::new("worker 0", 1000);
        // First look: a baseline, even if non-zero.
        assert!(w
            .observe(0, &[("drop_tx_full", 7), ("drop_bad_meta", 0)])
            .is_empty());
        assert!(w
            .observe(100, &[("drop_tx_full", 7), ("drop_bad_meta", 0)])
            .is_empty());
        assert_eq!(
            w.observe(200, &[("drop_tx_full", 10), ("drop_bad_meta", 0)]),
            vec![("drop_tx_full", 3, 0)]
        );
        // Within the interval: counted, not logged; another reason is
        // limited on its own.
        assert_eq!(
            w.observe(300, &[("drop_tx_full", 14), ("drop_bad_meta", 1)]),
            vec![("drop_bad_meta", 1, 0)]
        );
        assert!(w
            .observe(400, &[("drop_tx_full", 15), ("drop_bad_meta", 1)])
            .is_empty());
        assert_eq!(
            w.observe(1200, &[("drop_tx_full", 16), ("drop_bad_meta", 1)]),
            vec![("drop_tx_full", 1, 5)]
        );
    }
}
