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

use std::net::IpAddr;

use crate::federation::address::subnet_of;
use crate::tools::clock::Instant;
use crate::tools::limiter::{KeyedLimiter, Limited, Rate};

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

/// Token buckets per source network, and optionally one for all answers together.
#[derive(Debug)]
pub struct ResponseLimiter {
    networks: KeyedLimiter<IpAddr, Instant>,
    /// All answers together, whatever the network.
    global: Option<KeyedLimiter<(), Instant>>,
    /// Every `slip`-th limited query gets a truncated answer (0: none does).
    slip: u32,
    /// Answers refused by the global limit alone.
    globally_limited: u32,
}

impl ResponseLimiter {
    /// `rate` responses per second per network after a burst of `burst`; at most
    /// `max_networks` networks are tracked at a time. No global limit until
    /// [`ResponseLimiter::with_global`] sets one.
    pub fn new(rate: u32, burst: u32, slip: u32, max_networks: usize) -> Self {
        Self {
            networks: KeyedLimiter::new(Rate::per_second(rate, burst), max_networks),
            global: None,
            slip,
            globally_limited: 0,
        }
    }

    /// Also limits all responses together to `rate` a second after a burst of `burst`.
    /// A query within its network's limit but over the global one is limited as if its
    /// network were over (dropped, or every `slip`-th truncated).
    pub fn with_global(mut self, rate: u32, burst: u32) -> Self {
        self.global = Some(KeyedLimiter::new(Rate::per_second(rate, burst), 1));
        self
    }

    /// Decides for a query from `ip` at `now`.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        let global = &mut self.global;
        let mut by_global = false;
        let taken = self.networks.take_if(subnet_of(ip), 1, now, || {
            by_global = global
                .as_mut()
                .is_some_and(|global| global.take((), 1, now).is_err());
            !by_global
        });
        match taken {
            Ok(()) => Verdict::Answer,
            // Every tracked network is still over its limit: a flood from forged sources
            // all over the address space. Newcomers get only the truncated answer, which
            // amplifies nothing and sends a real resolver to TCP.
            Err(Limited::Full { .. }) => Verdict::Slip,
            Err(Limited::Over { refusals, .. }) => {
                if by_global {
                    self.globally_limited = self.globally_limited.wrapping_add(1);
                }
                if self.slip > 0 && refusals.is_multiple_of(self.slip) {
                    Verdict::Slip
                } else {
                    Verdict::Drop
                }
            }
        }
    }

    /// Answers refused by the global limit alone so far.
    pub fn globally_limited(&self) -> u32 {
        self.globally_limited
    }

    /// Networks tracked now.
    pub fn len(&self) -> usize {
        self.networks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;
    use std::time::Duration;

    /// One start for every reading of a test.
    static T0: LazyLock<Instant> = LazyLock::new(Instant::now);

    fn ms(n: u64) -> Instant {
        *T0 + Duration::from_millis(n)
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
