//! Response rate limiting per source network, so the node is no reflector: a UDP query's
//! source address can be forged, and without a limit anyone could aim the node's answers
//! at a victim. Time is passed in.
//!
//! As in BIND's response rate limiting, sources are grouped by network (IPv4 /24, IPv6
//! /56: what one customer or one resolver farm holds; the grouping of every per-network
//! limit, [`subnet_of`]), each network has a token bucket,
//! and of the queries over the limit every `slip`-th gets a truncated empty answer (TC
//! set, no records, never larger than the query) instead of silence: a real resolver
//! behind a busy network retries over TCP, which needs a handshake and so cannot be
//! forged; a victim receives at most what the forger sent.
//!
//! Besides the per-network buckets one bucket holds all answers together, so forged
//! sources spread over many networks cannot add up to more than the node's global rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::federation::address::subnet_of;

/// What to do with one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: answer it.
    Answer,
    /// Over the limit: a truncated, empty answer.
    Slip,
    /// Over the limit: no answer.
    Drop,
}

/// Token buckets per source network.
#[derive(Debug)]
pub struct ResponseLimiter {
    buckets: HashMap<IpAddr, Bucket>,
    /// Responses per second per network, in the long run.
    rate: f64,
    /// Responses a quiet network may get at once.
    burst: f64,
    /// Every `slip`-th limited query gets a truncated answer (0: none does).
    slip: u32,
    max_networks: usize,
    /// All answers together, whatever the network.
    global: Bucket,
    global_rate: f64,
    global_burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Duration,
    limited: u32,
}

impl ResponseLimiter {
    /// `rate` responses per second per network after a burst of `burst`; at most
    /// `max_networks` networks are tracked at a time. No global limit until
    /// [`ResponseLimiter::with_global`] sets one.
    pub fn new(rate: u32, burst: u32, slip: u32, max_networks: usize) -> Self {
        Self {
            buckets: HashMap::new(),
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            slip,
            max_networks: max_networks.max(1),
            global: Bucket {
                tokens: f64::INFINITY,
                updated: Duration::ZERO,
                limited: 0,
            },
            global_rate: f64::INFINITY,
            global_burst: f64::INFINITY,
        }
    }

    /// Also limits all responses together to `rate` a second after a burst of `burst`.
    /// A query within its network's limit but over the global one is limited as if its
    /// network were over (dropped, or every `slip`-th truncated).
    pub fn with_global(mut self, rate: u32, burst: u32) -> Self {
        self.global_rate = f64::from(rate.max(1));
        self.global_burst = f64::from(burst.max(1));
        self.global.tokens = self.global_burst;
        self
    }

    /// Decides for a query from `ip` at `now` (any monotonic clock's reading).
    pub fn check(&mut self, ip: IpAddr, now: Duration) -> Verdict {
        let key = subnet_of(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_networks {
            self.prune(now);
            if self.buckets.len() >= self.max_networks {
                // Every tracked network is still over its limit: a flood from forged
                // sources all over the address space. Newcomers get only the truncated
                // answer, which amplifies nothing and sends a real resolver to TCP.
                return Verdict::Slip;
            }
        }
        let (rate, burst, slip) = (self.rate, self.burst, self.slip);
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            updated: now,
            limited: 0,
        });
        bucket.refill(now, rate, burst);
        if bucket.tokens >= 1.0 {
            let global = &mut self.global;
            global.refill(now, self.global_rate, self.global_burst);
            if global.tokens >= 1.0 {
                global.tokens -= 1.0;
                bucket.tokens -= 1.0;
                return Verdict::Answer;
            }
            global.limited = global.limited.wrapping_add(1);
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if slip > 0 && bucket.limited.is_multiple_of(slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// Forgets full buckets: they hold no information.
    fn prune(&mut self, now: Duration) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, bucket| {
            let elapsed = now.saturating_sub(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * rate < burst
        });
    }

    /// Answers refused by the global limit alone so far.
    pub fn globally_limited(&self) -> u32 {
        self.global.limited
    }

    /// Networks tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

impl Bucket {
    fn refill(&mut self, now: Duration, rate: f64, burst: f64) {
        if self.tokens.is_finite() {
            let elapsed = now.saturating_sub(self.updated).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(burst);
        }
        self.updated = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_then_the_rate_with_every_second_limited_query_slipped() {
        let mut limiter = ResponseLimiter::new(10, 5, 2, 100);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let verdicts: Vec<Verdict> = (0..9).map(|_| limiter.check(ip, ms(0))).collect();
        assert_eq!(&verdicts[..5], &[Verdict::Answer; 5]);
        assert_eq!(
            &verdicts[5..],
            &[Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        // 10 per second: one more after 100 ms, not before.
        assert_eq!(limiter.check(ip, ms(50)), Verdict::Drop);
        assert_eq!(limiter.check(ip, ms(160)), Verdict::Answer);
        // Over a long run the answers stay within burst + rate * time.
        let mut answered = 0;
        for t in (1000..11_000).step_by(1) {
            if limiter.check(ip, ms(t)) == Verdict::Answer {
                answered += 1;
            }
        }
        assert!((95..=106).contains(&answered), "{answered} in 10 s");
    }

    #[test]
    fn sources_are_grouped_by_network() {
        let mut limiter = ResponseLimiter::new(1, 1, 0, 100);
        let check = |l: &mut ResponseLimiter, ip: &str| l.check(ip.parse().expect("ip"), ms(0));
        assert_eq!(check(&mut limiter, "192.0.2.1"), Verdict::Answer);
        assert_eq!(
            check(&mut limiter, "192.0.2.200"),
            Verdict::Drop,
            "same /24"
        );
        assert_eq!(
            check(&mut limiter, "::ffff:192.0.2.9"),
            Verdict::Drop,
            "mapped"
        );
        assert_eq!(check(&mut limiter, "192.0.3.1"), Verdict::Answer);
        assert_eq!(check(&mut limiter, "2001:db8:1:200::1"), Verdict::Answer);
        assert_eq!(
            check(&mut limiter, "2001:db8:1:2ff::9"),
            Verdict::Drop,
            "same /56"
        );
        assert_eq!(check(&mut limiter, "2001:db8:1:300::1"), Verdict::Answer);
    }

    #[test]
    fn the_global_limit_binds_over_many_networks_each_within_its_own() {
        // 1,000 networks, each asking 2 a second (well within its own 10), for 10 s:
        // 20,000 queries, of which the global limit of 100 a second answers about 1,200.
        let mut limiter = ResponseLimiter::new(10, 20, 2, 10_000).with_global(100, 200);
        let mut answered = 0;
        let mut slipped = 0;
        for tick in 0..20u64 {
            for n in 0..1000u32 {
                let ip = IpAddr::from([10, (n >> 8) as u8, n as u8, 1]);
                match limiter.check(ip, ms(tick * 500)) {
                    Verdict::Answer => answered += 1,
                    Verdict::Slip => slipped += 1,
                    Verdict::Drop => {}
                }
            }
        }
        assert!((1_100..=1_200).contains(&answered), "{answered} answered");
        assert!(slipped > 8_000, "{slipped} slipped");
        assert!(limiter.globally_limited() > 18_000);
        // Without the global limit every one of them is answered.
        let mut unlimited = ResponseLimiter::new(10, 20, 2, 10_000);
        let all = (0..1000u32)
            .filter(|n| {
                let ip = IpAddr::from([10, (n >> 8) as u8, *n as u8, 1]);
                unlimited.check(ip, ms(0)) == Verdict::Answer
            })
            .count();
        assert_eq!(all, 1000);
    }

    #[test]
    fn the_table_is_bounded_and_newcomers_slip_when_it_is_full_of_limited_networks() {
        let mut limiter = ResponseLimiter::new(1, 1, 0, 3);
        for i in 0..3u8 {
            let ip = IpAddr::from([10, i, 0, 1]);
            assert_eq!(limiter.check(ip, ms(0)), Verdict::Answer);
        }
        assert_eq!(limiter.len(), 3);
        assert_eq!(
            limiter.check(IpAddr::from([10, 9, 0, 1]), ms(0)),
            Verdict::Slip
        );
        assert_eq!(limiter.len(), 3);
        // Once the buckets are full again they are forgotten, and room is made.
        assert_eq!(
            limiter.check(IpAddr::from([10, 9, 0, 1]), ms(5000)),
            Verdict::Answer
        );
        assert_eq!(limiter.len(), 1);
    }
}
