//! Token buckets, one per key (a source address, a network, a node), in a table of bounded
//! size, with time passed in: every per-source rate limit of the node (gossip per address,
//! DNS answers and DNS-over-TCP queries per network, fill requests per address, per node
//! and per network). The hub budget is not one of them: it is a sliding window the hub
//! imposes, shared fairly ([`crate::hub::fair`] says why that is a ledger and not a bucket).
//!
//! Each bucket holds up to `burst` tokens and refills continuously at the rate; a request
//! takes its tokens or, when there are too few, takes none and is told when there will be.
//! Full buckets hold no information and are forgotten when room is needed. When the table
//! is full of keys still spending, a newcomer is refused rather than tracked
//! ([`Limited::Full`]): taking it on would let one source with many addresses wipe the
//! record of the others.
//!
//! Why not `governor`'s keyed limiter: its key store has no bound (every new key is stored;
//! `retain_recent` drops only keys that are full again, so a flood of sources each spending
//! once grows it until then) and it cannot say whether a key is tracked, so a cap on it
//! could only refuse every key at once, not just newcomers; it keeps no per-key count of
//! refusals (the DNS limit truncates every `slip`-th), cannot empty a key's bucket (the
//! penalty for a forged gossip signature), and reads a clock object of its own where the
//! federation core has none and the simulator runs on virtual time.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use super::clock::Moment;

/// How fast buckets fill and how much they hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    burst: f64,
    /// Seconds per token: time divided by this counts whole periods exactly (a period's
    /// worth of time is exactly its tokens, where multiplying by a rate may fall short).
    seconds_per_token: f64,
}

impl Rate {
    /// `burst` tokens at once, then `per_period` tokens per `period` (each at least one, and
    /// the period at least a millisecond).
    pub fn new(burst: u32, per_period: u32, period: Duration) -> Rate {
        Rate {
            burst: f64::from(burst.max(1)),
            seconds_per_token: period.max(Duration::from_millis(1)).as_secs_f64()
                / f64::from(per_period.max(1)),
        }
    }

    /// `per_second` tokens a second after a burst of `burst`.
    pub fn per_second(per_second: u32, burst: u32) -> Rate {
        Rate::new(burst, per_second, Duration::from_secs(1))
    }

    /// How long until `missing` more tokens are there, in whole milliseconds rounded up.
    fn wait_for(&self, missing: f64) -> Duration {
        let ms = (missing.max(0.0) * self.seconds_per_token * 1000.0).ceil();
        Duration::from_millis(ms.min(u64::MAX as f64) as u64)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// The key's bucket is short of tokens; there will be enough after `retry_in`.
    /// `refusals` counts the key's refused requests, this one included (wrapping), for
    /// limits that treat every so-many-th refusal differently.
    Over { retry_in: Duration, refusals: u32 },
    /// The key is not tracked and the table is full of keys still spending.
    Full { retry_in: Duration },
}

impl Limited {
    /// When asking again makes sense.
    pub fn retry_in(self) -> Duration {
        match self {
            Limited::Over { retry_in, .. } | Limited::Full { retry_in } => retry_in,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket<T> {
    tokens: f64,
    updated: T,
    refusals: u32,
}

impl<T: Moment> Bucket<T> {
    /// The tokens `now`, by the time since the last update. Time only moves forward: a
    /// clock stepping back must not mint tokens later.
    fn refill(&mut self, now: T, rate: Rate) {
        let elapsed = now.since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed / rate.seconds_per_token).min(rate.burst);
        self.updated = self.updated.max(now);
    }
}

/// Token buckets by key, at most `max_keys` of them.
#[derive(Debug, Clone)]
pub struct KeyedLimiter<K, T> {
    rate: Rate,
    max_keys: usize,
    buckets: HashMap<K, Bucket<T>>,
}

impl<K: Hash + Eq, T: Moment> KeyedLimiter<K, T> {
    /// Buckets filling at `rate`, for at most `max_keys` keys at a time (at least one).
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        KeyedLimiter {
            rate,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes `n` tokens of `key`'s bucket at `now`, or none and says why.
    pub fn take(&mut self, key: K, n: u32, now: T) -> Result<(), Limited> {
        self.take_if(key, n, now, || true)
    }

    /// As [`KeyedLimiter::take`], and only if `also` agrees once the key has the tokens (a
    /// limit over all keys together): refused by `also`, the request takes nothing and
    /// counts as a refusal of the key.
    pub fn take_if(
        &mut self,
        key: K,
        n: u32,
        now: T,
        also: impl FnOnce() -> bool,
    ) -> Result<(), Limited> {
        let rate = self.rate;
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_keys {
            self.prune(now);
            if self.buckets.len() >= self.max_keys {
                return Err(Limited::Full {
                    retry_in: rate.wait_for(f64::from(n)),
                });
            }
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            updated: now,
            refusals: 0,
        });
        bucket.refill(now, rate);
        let n = f64::from(n);
        if bucket.tokens >= n && also() {
            bucket.tokens -= n;
            return Ok(());
        }
        bucket.refusals = bucket.refusals.wrapping_add(1);
        Err(Limited::Over {
            retry_in: rate.wait_for(n - bucket.tokens),
            refusals: bucket.refusals,
        })
    }

    /// Takes up to `n` more tokens from a tracked key's bucket, down to empty: for work its
    /// request caused beyond itself, or (`u32::MAX`) to make a key that sent what only a
    /// hostile or broken source sends wait a whole burst before it is heard again.
    pub fn drain(&mut self, key: &K, n: u32, now: T) {
        let rate = self.rate;
        if let Some(bucket) = self.buckets.get_mut(key) {
            bucket.refill(now, rate);
            bucket.tokens = (bucket.tokens - f64::from(n)).max(0.0);
        }
    }

    /// Forgets the keys whose buckets are full again: they hold no information.
    pub fn prune(&mut self, now: T) {
        let rate = self.rate;
        self.buckets.retain(|_, bucket| {
            bucket.refill(now, rate);
            bucket.tokens < rate.burst
        });
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::clock::{Instant, Timestamp};

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_burst_then_the_rate_per_key() {
        let mut limiter = KeyedLimiter::new(Rate::per_second(10, 5), 100);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.take("a", 1, t0), Ok(()));
        }
        assert_eq!(
            limiter.take("a", 1, t0),
            Err(Limited::Over {
                retry_in: Duration::from_millis(100),
                refusals: 1
            })
        );
        assert_eq!(
            limiter.take("b", 1, t0),
            Ok(()),
            "another key is not affected"
        );
        assert!(limiter.take("a", 1, at(t0, 50)).is_err());
        assert_eq!(limiter.take("a", 1, at(t0, 160)), Ok(()));
        // Over a long run: the burst plus the rate, and no more.
        let answered = (1_000..11_000)
            .filter(|&ms| limiter.take("a", 1, at(t0, ms)).is_ok())
            .count();
        assert!((95..=106).contains(&answered), "{answered} in 10 s");
    }

    #[test]
    fn several_tokens_at_once_or_none() {
        let mut limiter = KeyedLimiter::new(Rate::new(30, 30, Duration::from_secs(60)), 4);
        let t0 = Timestamp::from_unix_ms(1_000);
        assert!(limiter.take(1, 20, t0).is_ok());
        let refused = limiter.take(1, 20, t0).expect_err("10 left");
        assert_eq!(refused.retry_in(), Duration::from_secs(20));
        assert!(limiter.take(1, 10, t0).is_ok(), "the refusal took nothing");
    }

    #[test]
    fn a_refusal_by_the_other_limit_takes_nothing_and_counts() {
        let mut limiter = KeyedLimiter::new(Rate::per_second(1, 2), 4);
        let t0 = Instant::now();
        assert!(matches!(
            limiter.take_if("a", 1, t0, || false),
            Err(Limited::Over { refusals: 1, .. })
        ));
        assert!(limiter.take("a", 1, t0).is_ok());
        assert!(limiter.take("a", 1, t0).is_ok());
        assert!(matches!(
            limiter.take("a", 1, t0),
            Err(Limited::Over { refusals: 2, .. })
        ));
    }

    #[test]
    fn drained_keys_wait_and_untracked_ones_are_not_taken_on() {
        let mut limiter = KeyedLimiter::new(Rate::per_second(1, 5), 4);
        let t0 = Timestamp::from_unix_ms(0);
        assert!(limiter.take("a", 1, t0).is_ok());
        limiter.drain(&"a", u32::MAX, t0);
        assert!(limiter.take("a", 1, t0).is_err());
        limiter.drain(&"b", 3, t0);
        assert_eq!(limiter.len(), 1, "draining an untracked key tracks nothing");
        assert!(
            limiter
                .take("a", 1, t0.saturating_add(Duration::from_secs(1)))
                .is_ok()
        );
    }

    #[test]
    fn a_full_table_refuses_newcomers_until_its_keys_are_full_again() {
        let mut limiter = KeyedLimiter::new(Rate::per_second(1, 5), 2);
        let t0 = Timestamp::from_unix_ms(0);
        assert!(limiter.take("a", 1, t0).is_ok());
        assert!(limiter.take("b", 1, t0).is_ok());
        assert_eq!(
            limiter.take("c", 1, t0),
            Err(Limited::Full {
                retry_in: Duration::from_secs(1)
            })
        );
        assert!(limiter.take("a", 1, t0).is_ok(), "tracked keys go on");
        assert_eq!(limiter.len(), 2);
        // Once the others have refilled they are forgotten and the newcomer is heard.
        let later = t0.saturating_add(Duration::from_secs(10));
        assert!(limiter.take("c", 1, later).is_ok());
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn a_clock_stepping_back_mints_no_tokens() {
        let mut limiter = KeyedLimiter::new(Rate::per_second(1, 1), 4);
        let t1 = Timestamp::from_unix_ms(10_000);
        assert!(limiter.take("a", 1, t1).is_ok());
        assert!(
            limiter
                .take("a", 1, Timestamp::from_unix_ms(5_000))
                .is_err()
        );
        assert!(
            limiter
                .take("a", 1, Timestamp::from_unix_ms(10_500))
                .is_err()
        );
        assert!(
            limiter
                .take("a", 1, Timestamp::from_unix_ms(11_000))
                .is_ok()
        );
    }
}
