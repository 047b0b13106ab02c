//! Each client's share of a budget, work-conserving: a client may spend what nobody else
//! needs, at the budget's own pace, and the last part of every window is kept for the
//! clients that have spent little.
//!
//! A fixed share per client (a token bucket each) binds even when nobody else is waiting:
//! an image proxy, which fetches every README image from a few addresses, is one client to
//! a node, and got a quarter of an otherwise idle budget. Here nothing binds a client while
//! it is alone (no other client spent in the window, and none was refused in it): then it
//! may spend the whole budget, at once. As soon as another client is there, two rules bind:
//!
//! - **The pace.** A client spends at most a quarter of the window's budget in any quarter
//!   of the window: over a minute it may still spend the whole budget, but never most of it
//!   at once.
//! - **The reserve.** While the window has no more than a fifth of its budget left, a
//!   client may spend from it only while it has spent (in the window) no more than what
//!   would be left: the last requests go to the lightest clients.
//!
//! Other clients, arriving while one floods, find what the flood's pace
//! has not reached yet; once it has reached the reserve, they find the reserve, and every
//! request that comes free while the budget is down to it goes to them, not to the flood
//! (it may only spend above the reserve). Each further network of a flood takes at most
//! half of the reserve that is left, so draining it takes five more networks (with the
//! fixed quarter share four networks took everything). The node's own requests
//! (refreshes, checks) are no client: they only need room.
//!
//! What being work-conserving costs: a client alone may have spent the whole window at
//! once when a newcomer arrives. The newcomer is then refused (and noted), and from that
//! moment the rules bind the heavy client, so the first requests to leave the window go to
//! the newcomer: it waits at most until the oldest request leaves the window (a minute at
//! worst, once), and never again while the two compete. Cached badges are not affected.
//!
//! Why the pace binds even alone: the window is Docker Hub's limit, so it cannot stretch,
//! and room comes back only as the requests of a minute ago leave it. A client that spent
//! the whole window in its first second would leave everyone arriving in that minute the
//! reserve alone, whatever was decided afterwards. Why the reserve: a client at its pace
//! fills the window within the minute, and a newcomer then would find nothing until the
//! oldest request leaves. The sizes are measured by the test
//! `others_arriving_during_a_flood_find_room`: a flood beside readers asking 45 times a
//! minute, a new reader every 2 s and the node's own refresh every 4 s, the budget 120.
//! With the reserve alone (an eighth) 31 of their 225 requests in five minutes were refused
//! (all between the 30th and the 60th second, the flood having spent its 105 at once);
//! with a quarter's pace and an eighth kept, 5; with a fifth kept, none. A finer pace
//! (an eighth per 7.5 s) needs a smaller reserve, but halves the burst a reader's page of
//! cold badges gets at once, which a quarter keeps as the fixed share gave it.
//!
//! Why a ledger here and not a keyed limiter crate (`governor`): the reserve depends on
//! each client's spending inside the very window the budget keeps, so the ledger is that
//! window's entries tagged with their client, at most one per request the window holds:
//! bounded by the rate, with no separate cap on the clients tracked, and the pace is read
//! from the same entries.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::budget::{ClientKey, RATE_WINDOW};
use crate::tools::clock::Instant;

/// The reserve is this fraction of the window's budget: a fifth, 24 requests with the
/// default `--hub-rate` of 120, what readers' pages of two dozen cold badges cost (build
/// history once per repository, then one tag each).
const RESERVE_DIVISOR: usize = 5;
/// The pace: at most this fraction of the budget in this fraction of the window, a quarter
/// (30 requests in 15 s with the default 120): a page of two dozen cold badges at once.
const PACE_DIVISOR: u32 = 4;

/// Why a request was not admitted, and how long until asking again makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The budget itself is spent (only where the shares keep the window themselves).
    Spent(Duration),
    /// This client is past its pace, or the budget is down to its reserve and this client
    /// has spent its part already.
    Share(Duration),
}

/// The clients' spending in one window of a budget.
#[derive(Debug)]
pub struct FairShares {
    /// The window's budget, when these shares keep the window themselves; `None` when the
    /// caller's budget keeps it and says how much room is left.
    capacity: Option<usize>,
    reserve: usize,
    pace: usize,
    pace_window: Duration,
    ledger: parking_lot::Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    /// Who spent in the window and when, oldest first.
    entries: VecDeque<(Instant, ClientKey)>,
    /// The same entries by client, each client's oldest first.
    by_client: HashMap<ClientKey, VecDeque<Instant>>,
    /// Clients refused in the window (by these shares or by the budget itself), newest
    /// last, at most [`REFUSED_KEPT`]: a client that found no room is waiting too.
    refused: VecDeque<(Instant, ClientKey)>,
}

/// Refused clients remembered: enough to know whether anyone but the asking client waits.
const REFUSED_KEPT: usize = 64;

impl Ledger {
    fn forget_before(&mut self, now: Instant) {
        while let Some(&(at, client)) = self.entries.front() {
            if now.saturating_duration_since(at) < RATE_WINDOW {
                break;
            }
            self.entries.pop_front();
            if let Some(times) = self.by_client.get_mut(&client) {
                times.pop_front();
                if times.is_empty() {
                    self.by_client.remove(&client);
                }
            }
        }
        while self
            .refused
            .front()
            .is_some_and(|&(at, _)| now.saturating_duration_since(at) >= RATE_WINDOW)
        {
            self.refused.pop_front();
        }
    }

    /// Whether anyone but `client` spent in the window or was refused in it: then the
    /// pace and the reserve bind.
    fn contended(&self, client: ClientKey) -> bool {
        self.by_client.keys().any(|&other| other != client)
            || self.refused.iter().any(|&(_, other)| other != client)
    }

    fn note_refused(&mut self, client: ClientKey, now: Instant) {
        if self.refused.len() == REFUSED_KEPT {
            self.refused.pop_front();
        }
        self.refused.push_back((now, client));
    }

    /// How long until the oldest entry leaves the window.
    fn next_free_in(&self, now: Instant) -> Duration {
        self.entries.front().map_or(Duration::ZERO, |&(at, _)| {
            RATE_WINDOW.saturating_sub(now.saturating_duration_since(at))
        })
    }
}

impl FairShares {
    /// Shares of a budget of `rate` requests per window that the caller keeps (the hub
    /// budget): [`FairShares::admit`] is told the room left.
    pub fn of_budget(rate: u32) -> FairShares {
        FairShares::build(None, rate)
    }

    /// Shares of a budget of `rate` per window that these shares keep themselves (fills
    /// for clients' misses, which cost the hub nothing but cost other nodes' budgets).
    pub fn with_window(rate: u32) -> FairShares {
        FairShares::build(Some(rate.max(1) as usize), rate)
    }

    fn build(capacity: Option<usize>, rate: u32) -> FairShares {
        FairShares {
            capacity,
            reserve: rate as usize / RESERVE_DIVISOR,
            pace: rate.div_ceil(PACE_DIVISOR).max(1) as usize,
            pace_window: RATE_WINDOW / PACE_DIVISOR,
            ledger: parking_lot::Mutex::new(Ledger::default()),
        }
    }

    /// Requests of each window kept for clients that have spent less than this.
    pub fn reserve(&self) -> usize {
        self.reserve
    }

    /// Requests one client may spend in a quarter of the window.
    pub fn pace(&self) -> usize {
        self.pace
    }

    /// Notes that the budget itself refused `client` at `now` (the window was spent): it
    /// waits, so the others are no longer alone.
    pub fn refused(&self, client: ClientKey, now: Instant) {
        let mut ledger = self.ledger.lock();
        ledger.forget_before(now);
        ledger.note_refused(client, now);
    }

    /// What `client` spent in the window that ends at `now`.
    pub fn spent(&self, client: ClientKey, now: Instant) -> usize {
        let mut ledger = self.ledger.lock();
        ledger.forget_before(now);
        ledger.by_client.get(&client).map_or(0, VecDeque::len)
    }

    /// Admits one request of `client`, or says why not. `room` is what the caller's budget
    /// has left in the window once this request is counted, and `free_in` how long until
    /// it has more; both are ignored when these shares keep the window themselves.
    pub fn admit(
        &self,
        client: ClientKey,
        room: usize,
        free_in: Duration,
        now: Instant,
    ) -> Result<(), Refusal> {
        let mut ledger = self.ledger.lock();
        ledger.forget_before(now);
        let (room, free_in) = match self.capacity {
            Some(capacity) => {
                let free_in = ledger.next_free_in(now);
                if ledger.entries.len() >= capacity {
                    ledger.note_refused(client, now);
                    return Err(Refusal::Spent(free_in));
                }
                (capacity - ledger.entries.len() - 1, free_in)
            }
            None => (room, free_in),
        };
        if !ledger.contended(client) {
            // Alone, a client may spend whatever the budget has.
            ledger.entries.push_back((now, client));
            ledger.by_client.entry(client).or_default().push_back(now);
            return Ok(());
        }
        let times = ledger.by_client.get(&client);
        let spent = times.map_or(0, VecDeque::len);
        // The pace-th latest request of this client, if it is still within the pace.
        let pace_full = times.and_then(|times| {
            times
                .iter()
                .rev()
                .take_while(|&&at| now.saturating_duration_since(at) < self.pace_window)
                .nth(self.pace - 1)
        });
        if let Some(&oldest) = pace_full {
            let retry_in = self
                .pace_window
                .saturating_sub(now.saturating_duration_since(oldest));
            ledger.note_refused(client, now);
            return Err(Refusal::Share(retry_in.max(Duration::from_millis(100))));
        }
        if room < self.reserve && spent > room {
            // Within the reserve the lightest go first: a client may take one of the last
            // `room + 1` requests only if it has spent no more than that, so each further
            // network of a flood takes at most half of what is left, and a newcomer finds
            // the last request. Anyone's request leaving the window gives room back.
            ledger.note_refused(client, now);
            return Err(Refusal::Share(free_in.max(Duration::from_millis(100))));
        }
        ledger.entries.push_back((now, client));
        ledger.by_client.entry(client).or_default().push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> ClientKey {
        ClientKey::of(std::net::Ipv4Addr::new(198, 51, i, 1).into())
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A budget of `rate` that `shares` decide within, as the hub client runs it: the
    /// budget counts the request, then the shares may refuse it. `None` is the node's own.
    struct Window {
        rate: usize,
        sent: VecDeque<Instant>,
        shares: FairShares,
    }

    impl Window {
        fn new(rate: u32) -> Window {
            Window {
                rate: rate as usize,
                sent: VecDeque::new(),
                shares: FairShares::of_budget(rate),
            }
        }

        fn ask(&mut self, client: Option<ClientKey>, now: Instant) -> bool {
            while self
                .sent
                .front()
                .is_some_and(|&at| now.saturating_duration_since(at) >= RATE_WINDOW)
            {
                self.sent.pop_front();
            }
            if self.sent.len() == self.rate {
                if let Some(client) = client {
                    self.shares.refused(client, now);
                }
                return false;
            }
            let room = self.rate - self.sent.len() - 1;
            let admitted = client.is_none_or(|c| self.shares.admit(c, room, secs(1), now).is_ok());
            if admitted {
                self.sent.push_back(now);
            }
            admitted
        }
    }

    #[test]
    fn alone_a_client_spends_the_whole_budget_at_once() {
        let mut window = Window::new(600);
        let t0 = Instant::now();
        let me = Some(key(1));
        assert_eq!((0..1_000).filter(|_| window.ask(me, t0)).count(), 600);
        assert_eq!(window.shares.spent(key(1), t0), 600);
        // The window comes back whole a minute later.
        let later = t0 + RATE_WINDOW;
        assert_eq!((0..1_000).filter(|_| window.ask(me, later)).count(), 600);
    }

    #[test]
    fn a_newcomer_after_a_lone_burst_gets_the_first_room_that_comes_back() {
        let mut window = Window::new(120);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Alone, the flood spends everything over its first ten seconds.
        for ms in (0..10_000).step_by(10) {
            window.ask(Some(key(1)), at(ms));
        }
        assert_eq!(window.shares.spent(key(1), at(10_000)), 120);
        // A newcomer finds the window spent; the budget notes it as waiting.
        assert!(!window.ask(Some(key(2)), at(20_000)));
        // From then on the flood is bound: as its requests leave the window, it may take
        // them only at its pace and never the reserve, so the newcomer, asking once a
        // second, finds room within a second of the first request leaving.
        let mut served = Vec::new();
        for ms in (60_000..120_000).step_by(10) {
            window.ask(Some(key(1)), at(ms));
            if ms % 1000 == 0 && window.ask(Some(key(2)), at(ms)) {
                served.push(ms);
            }
        }
        assert!(served.first().is_some_and(|&ms| ms <= 61_000), "{served:?}");
        // Within the minute it gets at least the reserve (a fifth), the flood its pace.
        assert!(served.len() >= 24, "served {} of 60", served.len());
    }

    #[test]
    fn others_arriving_during_a_flood_find_room() {
        let mut window = Window::new(120);
        let t0 = Instant::now();
        let flooder = Some(key(1));
        let mut asked = 0;
        let mut refused = Vec::new();
        // For five minutes the flooder asks every 100 ms; a new reader (a network of its
        // own) every 2 s, and the node refreshes a popular badge every 4 s: 45 a minute.
        for ms in (0..300_000u64).step_by(100) {
            let now = t0 + Duration::from_millis(ms);
            window.ask(flooder, now);
            if ms % 2000 == 0 {
                asked += 1;
                if !window.ask(Some(key(2 + (ms / 2000 % 200) as u8)), now) {
                    refused.push(ms);
                }
            }
            if ms % 4000 == 0 {
                asked += 1;
                if !window.ask(None, now) {
                    refused.push(ms);
                }
            }
        }
        assert_eq!(asked, 225);
        assert!(refused.is_empty(), "refused at {refused:?} ms");
        // The flood got what the others left, less the reserve.
        let flood = window.shares.spent(key(1), t0 + secs(300));
        assert!((45..=80).contains(&flood), "{flood} in the last minute");
    }

    #[test]
    fn newcomers_find_the_reserve_however_many_networks_flood() {
        let mut window = Window::new(120);
        let t0 = Instant::now();
        let flood =
            |window: &mut Window, now, networks: std::ops::RangeInclusive<u8>| -> Vec<usize> {
                networks
                    .map(|i| (0..100).filter(|_| window.ask(Some(key(i)), now)).count())
                    .collect()
            };
        // The second network of the flood has asked once already, so the first is not
        // alone and the rules bind from the start.
        assert!(window.ask(Some(key(2)), t0));
        assert_eq!(flood(&mut window, t0, 1..=2), [30, 29], "a pace each");
        assert_eq!(
            flood(&mut window, t0 + secs(15), 1..=2),
            [30, 6],
            "then up to the reserve"
        );
        // Each further network takes at most half of what is left of the reserve.
        let more = flood(&mut window, t0 + secs(16), 3..=6);
        assert_eq!(more, [12, 6, 3, 2]);
        assert!(window.ask(Some(key(20)), t0 + secs(16)), "a newcomer");
        assert!(
            !window.ask(Some(key(21)), t0 + secs(16)),
            "the window is spent"
        );
    }

    #[test]
    fn the_window_forgets_and_a_heavy_client_becomes_light_again() {
        let shares = FairShares::of_budget(100);
        let t0 = Instant::now();
        // Someone else spent too, so the rules bind.
        assert!(shares.admit(key(99), 70, Duration::ZERO, t0).is_ok());
        for _ in 0..20 {
            assert!(shares.admit(key(1), 70, Duration::ZERO, t0).is_ok());
        }
        assert!(matches!(
            shares.admit(key(1), 5, secs(3), t0 + secs(20)),
            Err(Refusal::Share(d)) if d == secs(3)
        ));
        assert!(shares.admit(key(2), 5, Duration::ZERO, t0).is_ok());
        let later = t0 + RATE_WINDOW;
        assert_eq!(shares.spent(key(1), later), 0);
        assert!(shares.admit(key(1), 5, Duration::ZERO, later).is_ok());
    }

    #[test]
    fn past_its_pace_a_client_is_told_when_it_may_go_on() {
        let shares = FairShares::of_budget(40);
        let t0 = Instant::now();
        assert!(shares.admit(key(99), 30, Duration::ZERO, t0).is_ok());
        for s in 0..10 {
            assert!(
                shares
                    .admit(key(1), 30, Duration::ZERO, t0 + secs(s))
                    .is_ok()
            );
        }
        assert!(matches!(
            shares.admit(key(1), 30, Duration::ZERO, t0 + secs(10)),
            Err(Refusal::Share(d)) if d == secs(5)
        ));
        assert!(
            shares
                .admit(key(1), 30, Duration::ZERO, t0 + secs(15))
                .is_ok()
        );
    }

    #[test]
    fn shares_that_keep_their_own_window_refuse_when_it_is_spent() {
        let shares = FairShares::with_window(20);
        let t0 = Instant::now();
        assert!(shares.admit(key(99), 0, Duration::ZERO, t0).is_ok());
        let admitted: usize = (0..4)
            .map(|quarter| {
                (0..10)
                    .filter(|_| {
                        let now = t0 + secs(15 * quarter);
                        shares.admit(key(1), 0, Duration::ZERO, now).is_ok()
                    })
                    .count()
            })
            .sum();
        assert_eq!(
            admitted, 15,
            "all but the bystander's one and the reserve of 4"
        );
        for i in 10..14 {
            assert!(
                shares
                    .admit(key(i), 0, Duration::ZERO, t0 + secs(45))
                    .is_ok()
            );
        }
        assert!(matches!(
            shares.admit(key(20), 0, Duration::ZERO, t0 + secs(46)),
            Err(Refusal::Spent(d)) if d == secs(14)
        ));
    }

    #[test]
    fn one_ipv6_56_is_one_client() {
        let shares = FairShares::of_budget(8);
        let t0 = Instant::now();
        let v6 = |s: &str| ClientKey::of(s.parse().expect(s));
        assert!(shares.admit(key(99), 7, Duration::ZERO, t0).is_ok());
        assert!(
            shares
                .admit(v6("2001:db8:7:100::1"), 7, Duration::ZERO, t0)
                .is_ok()
        );
        assert!(
            shares
                .admit(v6("2001:db8:7:1ff::1"), 7, Duration::ZERO, t0)
                .is_ok()
        );
        assert!(
            shares
                .admit(v6("2001:db8:7:180::1"), 7, Duration::ZERO, t0)
                .is_err(),
            "a third /64 of the same /56 is past the pace of 2"
        );
        assert!(
            shares
                .admit(v6("2001:db8:7:200::1"), 7, Duration::ZERO, t0)
                .is_ok()
        );
    }
}
