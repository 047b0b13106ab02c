//! Per-source token buckets for `POST /gossip`, with time passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::address::rate_limit_key;
use super::time::Timestamp;

/// One bucket per source address (IPv6: per /64), refilled continuously.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    buckets: HashMap<IpAddr, Bucket>,
    capacity: f64,
    refill_per_ms: f64,
    max_sources: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Timestamp,
}

impl RateLimiter {
    /// `burst` requests at once, then `per_period` requests per `period`, for each source;
    /// at most `max_sources` sources are tracked at a time.
    pub fn new(burst: u32, per_period: u32, period: Duration, max_sources: usize) -> Self {
        let period_ms = period.as_millis().max(1) as f64;
        Self {
            buckets: HashMap::new(),
            capacity: f64::from(burst.max(1)),
            refill_per_ms: f64::from(per_period.max(1)) / period_ms,
            max_sources: max_sources.max(1),
        }
    }

    /// Takes one token for a request from `ip`, or says how long until one is available.
    pub fn check(&mut self, ip: IpAddr, now: Timestamp) -> Result<(), Duration> {
        let key = rate_limit_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_sources {
            self.prune(now);
            if self.buckets.len() >= self.max_sources {
                // Every tracked source is still throttled: taking on more would let a
                // source with many addresses wipe the history of the others.
                return Err(self.retry_after(0.0));
            }
        }
        let capacity = self.capacity;
        let refill = self.refill_per_ms;
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        bucket.refill(now, capacity, refill);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let tokens = bucket.tokens;
            Err(self.retry_after(tokens))
        }
    }

    /// Empties the bucket of a source that sent something only a hostile or broken peer
    /// sends (a forged signature), so it waits a full burst before it is heard again.
    pub fn penalize(&mut self, ip: IpAddr, now: Timestamp) {
        let key = rate_limit_key(ip);
        if let Some(bucket) = self.buckets.get_mut(&key) {
            bucket.tokens = 0.0;
            bucket.updated = now;
        }
    }

    /// Takes `tokens` more from a source's bucket (down to empty) for work its request
    /// caused beyond the request itself.
    pub fn charge(&mut self, ip: IpAddr, tokens: usize, now: Timestamp) {
        if tokens == 0 {
            return;
        }
        let (capacity, refill) = (self.capacity, self.refill_per_ms);
        if let Some(bucket) = self.buckets.get_mut(&rate_limit_key(ip)) {
            bucket.refill(now, capacity, refill);
            bucket.tokens = (bucket.tokens - tokens as f64).max(0.0);
        }
    }

    /// Forgets full buckets: they hold no information.
    pub fn prune(&mut self, now: Timestamp) {
        let (capacity, refill) = (self.capacity, self.refill_per_ms);
        self.buckets.retain(|_, bucket| {
            bucket.refill(now, capacity, refill);
            bucket.tokens < capacity
        });
    }

    pub fn tracked_sources(&self) -> usize {
        self.buckets.len()
    }

    fn retry_after(&self, tokens: f64) -> Duration {
        let ms = ((1.0 - tokens).max(0.0) / self.refill_per_ms).ceil();
        Duration::from_millis(ms.min(u64::MAX as f64) as u64)
    }
}

impl Bucket {
    fn refill(&mut self, now: Timestamp, capacity: f64, per_ms: f64) {
        let elapsed = now.duration_since(self.updated).as_millis() as f64;
        self.tokens = (self.tokens + elapsed * per_ms).min(capacity);
        // Only move forward: a clock stepping back must not mint tokens later.
        if now > self.updated {
            self.updated = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect(s)
    }

    #[test]
    fn bursts_then_refills_per_source() {
        let mut limiter = RateLimiter::new(3, 1, Duration::from_secs(1), 100);
        let t0 = Timestamp::from_unix_ms(1_000_000);
        for _ in 0..3 {
            assert!(limiter.check(ip("1.2.3.4"), t0).is_ok());
        }
        let wait = limiter.check(ip("1.2.3.4"), t0).expect_err("burst spent");
        assert_eq!(wait, Duration::from_secs(1));
        // Another source is not affected.
        assert!(limiter.check(ip("1.2.3.5"), t0).is_ok());
        // One token back after a second.
        let t1 = t0.saturating_add(Duration::from_secs(1));
        assert!(limiter.check(ip("1.2.3.4"), t1).is_ok());
        assert!(limiter.check(ip("1.2.3.4"), t1).is_err());
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_64() {
        let mut limiter = RateLimiter::new(2, 1, Duration::from_secs(60), 100);
        let t0 = Timestamp::from_unix_ms(5);
        assert!(limiter.check(ip("2a00:1:2:3::1"), t0).is_ok());
        assert!(limiter.check(ip("2a00:1:2:3::2"), t0).is_ok());
        assert!(limiter.check(ip("2a00:1:2:3:ffff::9"), t0).is_err());
        assert!(limiter.check(ip("2a00:1:2:4::1"), t0).is_ok());
    }

    #[test]
    fn penalty_and_source_cap() {
        let mut limiter = RateLimiter::new(5, 1, Duration::from_secs(1), 2);
        let t0 = Timestamp::from_unix_ms(0);
        assert!(limiter.check(ip("1.1.1.1"), t0).is_ok());
        limiter.penalize(ip("1.1.1.1"), t0);
        assert!(limiter.check(ip("1.1.1.1"), t0).is_err());
        assert!(limiter.check(ip("2.2.2.2"), t0).is_ok());
        // Both tracked sources are throttled, so a third is refused rather than tracked.
        assert!(limiter.check(ip("3.3.3.3"), t0).is_err());
        assert_eq!(limiter.tracked_sources(), 2);
        // Once the others have refilled they are forgotten and the newcomer is heard.
        let later = t0.saturating_add(Duration::from_secs(10));
        assert!(limiter.check(ip("3.3.3.3"), later).is_ok());
    }
}
