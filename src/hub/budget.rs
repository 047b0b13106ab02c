//! The upstream budget, what keeps a node (and so the network) polite to Docker Hub, how
//! long a 429 silences us, and each client's share of it.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{DATE, HeaderMap};
use tokio::sync::Semaphore;

use super::HubError;
use crate::federation::address::subnet_of;
use crate::tools::clock::Instant;

/// Longest silence a hub may ask of us; a hostile or broken answer cannot mute a node for
/// longer than this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Silence after a 429 that names no time.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The shortest silence after a 429, also when the time it names has passed: a hub whose
/// window has just reset is asked again a second later, not in a tight loop.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
/// A silence longer than this is logged with the headers that asked for it: Docker Hub's
/// API windows are a minute long, and a node muted for longer stops serving cold badges.
pub const LONG_RETRY_AFTER: Duration = Duration::from_secs(180);
/// A number in `Retry-After` from this on is a Unix time, not seconds: no delay is 31
/// years long, and Docker Hub sent its `X-RateLimit-Reset` (a Unix time, about 1.7e9)
/// there in May 2025. Smaller numbers are seconds, capped at [`MAX_RETRY_AFTER`].
const UNIX_TIME_FROM: u64 = 1_000_000_000;
/// Failures in a row after which the client stops asking for a while.
pub(crate) const FAILURES_BEFORE_BACKOFF: u32 = 3;

/// How long a 429 asks us to wait, and which header said so (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    pub wait: Duration,
    /// `retry-after`, `x-retry-after`, `x-ratelimit-reset`, or `default`.
    pub said_by: &'static str,
}

/// How long a 429 asks us to wait: `Retry-After` (or, without it, `X-Retry-After`, the
/// name Docker's documentation once gave it), never longer than `X-RateLimit-Reset` says
/// the hub's window lasts; each in seconds, as a Unix time, or as an HTTP-date. Times are
/// read against the answer's own `Date` when it has one, so a node whose clock is off
/// still waits what the hub meant. At least a second, at most an hour, a minute when no
/// header names a time.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> RetryAfter {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let hub_now = header(DATE.as_str())
        .and_then(|date| httpdate::parse_http_date(date).ok())
        .unwrap_or(now);
    let read = |name: &'static str| {
        header(name)
            .and_then(|v| delay_in(v, hub_now))
            .map(|wait| (wait, name))
    };
    let asked = read("retry-after").or_else(|| read("x-retry-after"));
    let reset = read("x-ratelimit-reset");
    let (wait, said_by) = match (asked, reset) {
        (Some(asked), Some(reset)) => asked.min(reset),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => (DEFAULT_RETRY_AFTER, "default"),
    };
    RetryAfter {
        wait: wait.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER),
        said_by,
    }
}

/// One header's delay from `now` (the hub's clock): seconds, a Unix time, or an HTTP-date.
fn delay_in(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let at = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is no delay either: a time far ahead (capped).
        let number = value.parse::<u64>().unwrap_or(u64::MAX);
        if number < UNIX_TIME_FROM {
            return Some(Duration::from_secs(number));
        }
        match UNIX_EPOCH.checked_add(Duration::from_secs(number)) {
            Some(at) => at,
            None => return Some(Duration::MAX),
        }
    } else {
        httpdate::parse_http_date(value).ok()?
    };
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The window of `--hub-rate`.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// The part of a window's requests kept for checking other nodes' fills: a tenth (at least
/// one, and none of a budget of one request). A node that checks only while its budget is
/// idle lets anyone who keeps the budget busy (a few client networks, or the liar's own
/// fill requests) lie unchecked.
///
/// The reserve is lent while no check waits, as the client shares are work-conserving
/// (`super::fair`): a client alone may spend the whole budget. A check that finds no room
/// says so ([`Budget::has_room`]), and from then until it goes out, no client, refresh or
/// fill served may take the reserve, here or in Docker Hub's own count: the first room that
/// comes back in the window is the check's, within a minute at worst, and the supplier it
/// checks is not asked meanwhile.
fn check_reserve(rate: usize) -> usize {
    (rate / 10).max(1).min(rate.saturating_sub(1))
}

/// How long a check that found no room is taken to be waiting: the waiting check asks again
/// every second.
const CHECK_WAITS_FOR: Duration = Duration::from_secs(3);

tokio::task_local! {
    /// Set while a request checks another node's fill: the budget then admits it from the
    /// reserve. A task-local and not a parameter because the very same resource requests
    /// serve clients, refreshes and checks; threading a purpose through every resource's
    /// fetch would change each signature the cache and the hub client share, for one bit
    /// that only the budget reads.
    static CHECKING: ();
}

/// Runs `request` (requests to the hub that check another node's fill) with the budget's
/// reserve for checks.
pub async fn as_check<F: std::future::Future>(request: F) -> F::Output {
    CHECKING.scope((), request).await
}

/// Whether the running task is checking a fill ([`as_check`]).
pub(crate) fn checking() -> bool {
    CHECKING.try_with(|()| ()).is_ok()
}

/// The upstream budget: what keeps a node (and so the network) polite to Docker Hub.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) in_flight: Semaphore,
    state: parking_lot::Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    rate_per_minute: usize,
    /// Requests of the window only checks may use ([`check_reserve`]); none on a node that
    /// checks no fills.
    reserve: usize,
    /// When the requests of the last minute went out, oldest first: at most
    /// `rate_per_minute` of them, so no 60 s window ever holds more (a token bucket that
    /// starts full lets up to twice the rate through in the first minute).
    sent: VecDeque<Instant>,
    /// When those of them that checked a fill went out, oldest first.
    checks: VecDeque<Instant>,
    /// Until when a check that found no room is waiting: meanwhile the reserve is kept.
    check_waits_until: Option<Instant>,
    /// Nothing goes out before this instant; `muted_by` says why.
    muted_until: Option<Instant>,
    muted_by_rate_limit: bool,
    failures_in_a_row: u32,
    /// What Docker Hub last said of its own limit for this node's address (requests left,
    /// of how many, until when), from its `X-RateLimit-*` headers.
    hub_limit: Option<(u64, u64, Instant)>,
    /// When the current backoff began: failures of requests sent before it say nothing new
    /// and must not lengthen it.
    paused_at: Option<Instant>,
    /// After a backoff, one trial request tests whether the hub is back; the rest wait.
    trial_in_flight: bool,
}

impl Budget {
    /// A budget of `rate_per_minute` requests, `concurrency` at once; `checks` keeps its
    /// reserve for checking other nodes' fills (a node with fills off makes no checks).
    pub(crate) fn new(concurrency: u32, rate_per_minute: u32, checks: bool) -> Budget {
        let rate = rate_per_minute.max(1) as usize;
        Budget {
            in_flight: Semaphore::new(concurrency.max(1) as usize),
            state: parking_lot::Mutex::new(BudgetState {
                rate_per_minute: rate,
                reserve: if checks { check_reserve(rate) } else { 0 },
                sent: VecDeque::with_capacity(rate.min(4096)),
                checks: VecDeque::new(),
                check_waits_until: None,
                muted_until: None,
                muted_by_rate_limit: false,
                failures_in_a_row: 0,
                hub_limit: None,
                paused_at: None,
                trial_in_flight: false,
            }),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, BudgetState> {
        self.state.lock()
    }

    /// Takes one request's worth of budget for a client's miss, a refresh or a fill served
    /// to another node, or says why not and for how long: never the part reserved for
    /// checks while a check waits, in this node's window or in what Docker Hub last said is
    /// left for its address.
    pub(crate) fn admit(&self, now: Instant) -> Result<(), HubError> {
        self.admit_as(now, false)
    }

    /// Takes one request's worth of budget for checking another node's fill: from the
    /// reserve, or beyond it while the budget is half idle ([`Budget::has_room`]).
    pub(crate) fn admit_check(&self, now: Instant) -> Result<(), HubError> {
        self.admit_as(now, true)
    }

    fn admit_as(&self, now: Instant, check: bool) -> Result<(), HubError> {
        let mut state = self.lock();
        if let Some(until) = state.muted_until {
            if now < until {
                let retry_in = until - now;
                return Err(if state.muted_by_rate_limit {
                    HubError::RateLimited { retry_in }
                } else {
                    HubError::Backoff { retry_in }
                });
            }
            state.muted_until = None;
        }
        // Backing off and the pause is over: one trial request finds out whether the hub is
        // back, instead of a burst that would all fail (and all count) if it is not.
        let backing_off = state.failures_in_a_row >= FAILURES_BEFORE_BACKOFF;
        if backing_off && state.trial_in_flight {
            return Err(HubError::Backoff {
                retry_in: Duration::from_secs(1),
            });
        }
        state.forget_before(now);
        let room = if check {
            state.room_for_check(now)
        } else {
            state.room_for_ordinary(now)
        };
        if let Err(retry_in) = room {
            if check {
                state.check_waits_until = Some(now + CHECK_WAITS_FOR);
            }
            return Err(HubError::Budget { retry_in });
        }
        state.sent.push_back(now);
        if check {
            state.checks.push_back(now);
            state.check_waits_until = None;
        }
        state.trial_in_flight = backing_off;
        Ok(())
    }

    /// Remembers what Docker Hub's `X-RateLimit-Limit`, `-Remaining` and `-Reset` (a Unix
    /// time) say of the limit on this node's address; answers without them change nothing.
    pub(crate) fn learn_hub_limit(&self, headers: &HeaderMap, now: Instant, wall: SystemTime) {
        let number = |name: &str| -> Option<u64> {
            headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok()
        };
        let (Some(limit), Some(remaining)) =
            (number("x-ratelimit-limit"), number("x-ratelimit-remaining"))
        else {
            return;
        };
        let wall_now = wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let reset_in = number("x-ratelimit-reset")
            .map_or(RATE_WINDOW, |reset| {
                Duration::from_secs(reset.saturating_sub(wall_now))
            })
            .min(MAX_RETRY_AFTER);
        self.lock().hub_limit = Some((remaining, limit, now + reset_in));
    }

    /// Whether a check of another node's fill may go now: nothing silences us, and the
    /// window has room for it, from the reserve ([`check_reserve`], here and in what Docker
    /// Hub last said is left for this address) or, beyond it, while at most half of the
    /// window is spent and Docker Hub's count is at least half left (then a check takes
    /// nothing the clients' cold misses would need). When it has none, the check waits, and
    /// the reserve is kept for it from then on.
    pub(crate) fn has_room(&self, now: Instant) -> bool {
        let mut state = self.lock();
        if state.muted_until.is_some_and(|until| now < until)
            || state.failures_in_a_row >= FAILURES_BEFORE_BACKOFF
        {
            return false;
        }
        state.forget_before(now);
        let room = state.room_for_check(now).is_ok();
        if !room {
            state.check_waits_until = Some(now + CHECK_WAITS_FOR);
        }
        room
    }

    /// Requests the window has room for now, besides what checks may still take of their
    /// reserve, and how long until its oldest leaves it.
    pub(crate) fn room(&self, now: Instant) -> (usize, Duration) {
        let mut state = self.lock();
        state.forget_before(now);
        let ordinary = state.sent.len().saturating_sub(state.checks.len());
        let room = state
            .rate_per_minute
            .saturating_sub(ordinary + state.kept_for_checks(now));
        (room, state.oldest_leaves_in(now))
    }

    /// Gives back the request [`Budget::admit`] just took: it did not go out after all.
    /// (A check is never given back: nothing stops one after it was admitted.)
    pub(crate) fn refund(&self) {
        let mut state = self.lock();
        state.sent.pop_back();
        state.trial_in_flight = false;
    }

    /// Learns from the outcome of one request sent at `started`.
    pub(crate) fn record<T>(&self, result: &Result<T, HubError>, started: Instant, now: Instant) {
        let mut state = self.lock();
        state.trial_in_flight = false;
        match result {
            Ok(_) | Err(HubError::NotFound) => {
                state.failures_in_a_row = 0;
                state.paused_at = None;
            }
            Err(HubError::RateLimited { retry_in }) => {
                let until = now + *retry_in;
                if state.muted_until.is_none_or(|current| current < until) {
                    state.muted_until = Some(until);
                    state.muted_by_rate_limit = true;
                }
            }
            Err(err) if err.is_hub_failure() => {
                if state.paused_at.is_some_and(|paused| started < paused) {
                    // Already on its way when the pause began: the pause accounts for it.
                    return;
                }
                state.failures_in_a_row += 1;
                if state.failures_in_a_row >= FAILURES_BEFORE_BACKOFF {
                    // 2s, 4s, 8s … up to 5 minutes, one step per failed trial: long enough
                    // to spare a struggling hub, short enough to notice it is back.
                    let exponent = (state.failures_in_a_row - FAILURES_BEFORE_BACKOFF).min(8);
                    let pause = Duration::from_secs(2u64 << exponent).min(Duration::from_secs(300));
                    state.muted_until = Some(now + pause);
                    state.muted_by_rate_limit = false;
                    state.paused_at = Some(now);
                }
            }
            Err(_) => {}
        }
    }
}

impl BudgetState {
    /// Forgets the requests that left the window.
    fn forget_before(&mut self, now: Instant) {
        let gone = |sent: &Instant| now.saturating_duration_since(*sent) >= RATE_WINDOW;
        while self.sent.front().is_some_and(gone) {
            self.sent.pop_front();
        }
        while self.checks.front().is_some_and(gone) {
            self.checks.pop_front();
        }
    }

    /// When the oldest request of the window leaves it (at once when it holds none).
    fn oldest_leaves_in(&self, now: Instant) -> Duration {
        self.sent.front().map_or(Duration::ZERO, |oldest| {
            RATE_WINDOW.saturating_sub(now.saturating_duration_since(*oldest))
        })
    }

    /// What Docker Hub last said is left for this address, and of how many, while that
    /// still holds.
    fn hub_left(&self, now: Instant) -> Option<(u64, u64, Duration)> {
        self.hub_limit
            .filter(|&(_, _, until)| now < until)
            .map(|(remaining, limit, until)| (remaining, limit, until - now))
    }

    /// Whether a check that found no room is waiting.
    fn check_waits(&self, now: Instant) -> bool {
        self.reserve > 0 && self.check_waits_until.is_some_and(|until| now < until)
    }

    /// The window's requests checks have taken, or may still take while one waits.
    fn kept_for_checks(&self, now: Instant) -> usize {
        let checks = self.checks.len();
        if self.check_waits(now) {
            self.reserve.max(checks)
        } else {
            checks
        }
    }

    /// Room for a client's miss, a refresh or a fill served: the window less what checks
    /// took, and while a check waits, less what is left of their reserve, here and in
    /// Docker Hub's count.
    fn room_for_ordinary(&self, now: Instant) -> Result<(), Duration> {
        let checks = self.checks.len();
        let ordinary = self.sent.len().saturating_sub(checks);
        if ordinary + self.kept_for_checks(now) >= self.rate_per_minute {
            return Err(self.oldest_leaves_in(now));
        }
        if let Some((remaining, limit, reset_in)) = self.hub_left(now)
            && self.check_waits(now)
        {
            let kept = hub_reserve(limit).saturating_sub(checks as u64);
            if remaining <= kept {
                return Err(reset_in);
            }
        }
        Ok(())
    }

    /// Room for a check: from the reserve, or beyond it while half the window is idle.
    fn room_for_check(&self, now: Instant) -> Result<(), Duration> {
        let checks = self.checks.len();
        let total = self.sent.len();
        let mine = total < self.rate_per_minute
            && (checks < self.reserve || total * 2 < self.rate_per_minute);
        if !mine {
            return Err(self.oldest_leaves_in(now));
        }
        if let Some((remaining, limit, reset_in)) = self.hub_left(now) {
            let hubs = remaining > 0
                && (checks < hub_reserve(limit) as usize || remaining.saturating_mul(2) >= limit);
            if !hubs {
                return Err(reset_in);
            }
        }
        Ok(())
    }
}

/// The part of Docker Hub's own count for this address kept for checks, as
/// [`check_reserve`] keeps it of this node's window.
fn hub_reserve(limit: u64) -> u64 {
    (limit / 10).max(1).min(limit.saturating_sub(1))
}

/// Who a share of a budget belongs to: a client's network, an IPv4 /24 or IPv6 /56
/// ([`subnet_of`]).
///
/// A network rather than the address: the share is what protects everyone else's cold
/// badges from one client's stream of unique names, and a single cloud machine or a small
/// allocation gives its owner a whole range of addresses in one /24 (and an IPv6 customer
/// a /56 or more) for nothing. The cost falls on honest neighbours who ask for cold badges
/// in the same minute from the same network while others wait for the budget: they share
/// one share; warm badges are never charged.
///
/// Another node asking this one to fill its cache is a client of its network like any other:
/// the misses its fills cause share that network's share, however many listed nodes the
/// network holds (four keys on one network once spent four quarters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The client a request from `ip` belongs to: its network.
    pub fn of(ip: IpAddr) -> ClientKey {
        ClientKey(subnet_of(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_waiting_check_gets_the_first_room_that_comes_back() {
        let budget = Budget::new(8, 100, true);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // While no check waits, clients may spend the whole window, reserve and all.
        for i in 0..100 {
            assert!(budget.admit(at(i * 100)).is_ok(), "request {i}");
        }
        // A check finds no room and waits, asking again every second.
        assert!(!budget.has_room(at(10_000)));
        for second in 11..60 {
            assert!(!budget.has_room(at(second * 1000)));
        }
        // The first request leaves the window: its room is the check's, not a client's.
        assert!(budget.admit(at(60_050)).is_err());
        assert!(budget.has_room(at(60_050)));
        assert!(budget.admit_check(at(60_050)).is_ok());
        // The check went out: the reserve is lent again.
        assert!(budget.admit(at(60_150)).is_ok());
    }

    #[test]
    fn while_a_check_waits_no_client_takes_the_reserve() {
        let budget = Budget::new(8, 100, true);
        let t0 = Instant::now();
        // Clients spend 80; a check made at once is the reserve's first.
        assert_eq!((0..80).filter(|_| budget.admit(t0).is_ok()).count(), 80);
        assert!(budget.admit_check(t0).is_ok());
        // Over half spent: a second check may take only the reserve, which it does.
        assert!(budget.has_room(t0));
        // A check that waited keeps the reserve: clients stop at 90 of the window.
        let waiting = Budget::new(8, 100, true);
        assert_eq!((0..100).filter(|_| waiting.admit(t0).is_ok()).count(), 100);
        let later = t0 + RATE_WINDOW;
        // (It asks again every second, the last time just before the window frees.)
        assert!(!waiting.has_room(later - Duration::from_secs(1)));
        assert_eq!(
            (0..200).filter(|_| waiting.admit(later).is_ok()).count(),
            90
        );
        assert_eq!(
            (0..200)
                .filter(|_| waiting.admit_check(later).is_ok())
                .count(),
            10
        );
        assert!(!waiting.has_room(later));
    }

    #[test]
    fn beyond_the_reserve_checks_take_only_an_idle_half() {
        let budget = Budget::new(8, 100, true);
        let t0 = Instant::now();
        let checks = (0..200).filter(|_| budget.admit_check(t0).is_ok()).count();
        assert_eq!(checks, 50, "the reserve and then up to half the window");
        // The other half stays for everything else.
        let ordinary = (0..200).filter(|_| budget.admit(t0).is_ok()).count();
        assert_eq!(ordinary, 50);
        // A budget of one request keeps no reserve, nor one of a node that checks no fills.
        let tiny = Budget::new(1, 1, true);
        assert!(tiny.admit(t0).is_ok());
        let unchecking = Budget::new(8, 100, false);
        let ordinary = (0..200).filter(|_| unchecking.admit(t0).is_ok()).count();
        assert_eq!(ordinary, 100);
    }

    fn hub_headers(remaining: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("60"));
        h.insert(
            "x-ratelimit-remaining",
            HeaderValue::from_str(remaining).expect("ascii"),
        );
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1800000030"));
        h
    }

    #[test]
    fn beyond_their_reserve_checks_need_half_of_the_hubs_own_count() {
        let budget = Budget::new(8, 1000, true);
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(budget.has_room(t0));
        budget.learn_hub_limit(&hub_headers("40"), t0, wall);
        assert!(budget.has_room(t0), "40 of 60 left");
        // Below half, checks take only the hub's reserve (6 of its 60).
        budget.learn_hub_limit(&hub_headers("29"), t0, wall);
        for _ in 0..6 {
            assert!(budget.admit_check(t0).is_ok());
        }
        assert!(!budget.has_room(t0), "six checks made, 29 of 60 left");
        // The checks took their reserve: clients are not held back.
        assert!(budget.admit(t0).is_ok());
        assert!(
            budget.has_room(t0 + Duration::from_secs(31)),
            "after the reset"
        );
        // Nothing left: not even a check goes.
        budget.learn_hub_limit(&hub_headers("0"), t0, wall);
        assert!(!budget.has_room(t0));
        // An answer without the headers says nothing new.
        budget.learn_hub_limit(&HeaderMap::new(), t0, wall);
        assert!(!budget.has_room(t0));
    }

    #[test]
    fn while_a_check_waits_the_hubs_own_count_keeps_its_reserve() {
        let budget = Budget::new(8, 20, true);
        let t0 = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // This node's window is full: a check waits.
        assert_eq!((0..20).filter(|_| budget.admit(t0).is_ok()).count(), 20);
        let later = t0 + RATE_WINDOW;
        assert!(!budget.has_room(later - Duration::from_secs(1)));
        // The window is free again, but Docker Hub says 4 of its 60 are left: kept for the
        // check, which goes first.
        budget.learn_hub_limit(&hub_headers("4"), later, wall);
        assert!(matches!(budget.admit(later), Err(HubError::Budget { .. })));
        assert!(budget.admit_check(later).is_ok());
        assert!(budget.admit(later).is_ok());
    }

    #[tokio::test]
    async fn a_check_is_marked_for_the_budget_only_inside_as_check() {
        assert!(!checking());
        assert!(as_check(async { checking() }).await);
        assert!(!checking());
    }

    #[test]
    fn a_client_is_a_network() {
        let key = |s: &str| ClientKey::of(s.parse().expect(s));
        assert_eq!(
            key("192.0.2.7"),
            key("192.0.2.200"),
            "one /24 is one client"
        );
        assert_ne!(key("192.0.2.7"), key("198.51.100.1"));
        // IPv6 by /56, so that one customer's allocation is one client, as an IPv4 /24 is.
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:ff::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:100::1"));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).expect("ascii"));
        }
        headers
    }

    fn wait(pairs: &[(&'static str, &str)], now: SystemTime) -> (u64, &'static str) {
        let asked = retry_after(&headers(pairs), now);
        (asked.wait.as_secs(), asked.said_by)
    }

    #[test]
    fn retry_after_reads_seconds_unix_times_and_http_dates() {
        // 2025-05-01T22:02:18Z, the time Docker Hub's answer named in May 2025.
        let reset = 1_746_136_938u64;
        let now = UNIX_EPOCH + Duration::from_secs(reset - 60);
        assert_eq!(wait(&[], now), (60, "default"));
        assert_eq!(wait(&[("retry-after", "7")], now), (7, "retry-after"));
        // A Unix time, as Docker Hub sent it: what remains until then, not an hour.
        let unix = reset.to_string();
        assert_eq!(wait(&[("retry-after", &unix)], now), (60, "retry-after"));
        assert_eq!(
            wait(&[("retry-after", "Thu, 01 May 2025 22:02:18 GMT")], now),
            (60, "retry-after")
        );
        assert_eq!(
            wait(&[("x-retry-after", &unix)], now),
            (60, "x-retry-after")
        );
        assert_eq!(
            wait(&[("x-ratelimit-reset", &unix)], now),
            (60, "x-ratelimit-reset")
        );
        // Never longer than the hub's own reset says.
        assert_eq!(
            wait(
                &[("retry-after", "3600"), ("x-ratelimit-reset", &unix)],
                now
            ),
            (60, "x-ratelimit-reset")
        );
        assert_eq!(
            wait(&[("retry-after", "7"), ("x-ratelimit-reset", &unix)], now),
            (7, "retry-after")
        );
        // A time already past: a second, not a tight loop; garbage: the default.
        let past = (reset - 600).to_string();
        assert_eq!(wait(&[("retry-after", &past)], now), (1, "retry-after"));
        assert_eq!(wait(&[("retry-after", "soon")], now), (60, "default"));
        // Seconds beyond reason are capped; so is a time far ahead.
        assert_eq!(wait(&[("retry-after", "999999999")], now).0, 3600);
        assert_eq!(
            wait(&[("retry-after", "99999999999999999999999")], now).0,
            3600
        );
    }

    /// The headers of a recorded answer, pasted as `"name": "value",` lines.
    fn recorded_headers(pasted: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in pasted.lines() {
            let mut parts = line.trim().trim_end_matches(',').splitn(2, ": ");
            if let (Some(name), Some(value)) = (parts.next(), parts.next()) {
                let (name, value) = (name.trim_matches('"'), value.trim_matches('"'));
                if let (Ok(name), Ok(value)) = (
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    headers.insert(name, value);
                }
            }
        }
        headers
    }

    /// Docker Hub's 429 of May 2025 (docker/hub-feedback#2459): `retry-after` and
    /// `x-ratelimit-reset` both 1746136938, a minute after the answer's `date`. Read by a
    /// node whose clock says anything at all (here: today), it means a minute.
    #[test]
    fn the_recorded_429_with_a_unix_time_means_a_minute() {
        let headers = recorded_headers(include_str!(
            "../../tests/fixtures/hub/429-unix-time-2025.headers.txt"
        ));
        assert_eq!(headers["retry-after"], "1746136938");
        let asked = retry_after(&headers, SystemTime::now());
        assert_eq!(asked.wait, Duration::from_secs(60));
        let hap = include_str!("../../tests/fixtures/hub/429-hap429-2020.http.txt");
        let hap = recorded_headers(&hap.replace("\\n", "\n"));
        assert_eq!(
            retry_after(&hap, SystemTime::now()).wait,
            Duration::from_secs(60)
        );
        assert_eq!(retry_after(&hap, SystemTime::now()).said_by, "retry-after");
    }

    #[test]
    fn times_are_read_against_the_answers_own_date() {
        // The node's clock is ten minutes behind the hub's: the hub's Date tells what it meant.
        let reset = 1_746_136_938u64;
        let slow_clock = UNIX_EPOCH + Duration::from_secs(reset - 660);
        let unix = reset.to_string();
        assert_eq!(
            wait(
                &[
                    ("retry-after", &unix),
                    ("date", "Thu, 01 May 2025 22:01:18 GMT")
                ],
                slow_clock
            ),
            (60, "retry-after")
        );
        assert_eq!(wait(&[("retry-after", &unix)], slow_clock).0, 660);
    }

    /// A 429 whose `Retry-After` and `X-RateLimit-Reset` name a Unix time a minute ahead:
    /// the node asks again within two minutes, not an hour later.
    #[test]
    fn a_429_with_a_unix_time_mutes_for_what_the_reset_says() {
        let budget = Budget::new(1, 600, true);
        let reset = 1_746_136_938u64;
        let wall = UNIX_EPOCH + Duration::from_secs(reset - 60);
        let unix = reset.to_string();
        let asked = retry_after(
            &headers(&[("retry-after", &unix), ("x-ratelimit-reset", &unix)]),
            wall,
        );
        let t0 = Instant::now();
        budget.record::<()>(
            &Err(HubError::RateLimited {
                retry_in: asked.wait,
            }),
            t0,
            t0,
        );
        assert!(matches!(
            budget.admit(t0 + Duration::from_secs(59)),
            Err(HubError::RateLimited { .. })
        ));
        assert!(budget.admit(t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn budget_spends_and_comes_back_a_minute_later() {
        let budget = Budget::new(1, 60, true);
        let start = Instant::now();
        for i in 0..60 {
            assert!(budget.admit(start + Duration::from_millis(i * 10)).is_ok());
        }
        match budget.admit(start + Duration::from_secs(1)) {
            Err(HubError::Budget { retry_in }) => assert_eq!(retry_in, Duration::from_secs(59)),
            other => panic!("{other:?}"),
        }
        assert!(budget.admit(start + Duration::from_millis(59_999)).is_err());
        // The first request leaves the window, and with it one request's worth comes back.
        assert!(budget.admit(start + RATE_WINDOW).is_ok());
        assert!(budget.admit(start + RATE_WINDOW).is_err());
        assert!(
            budget
                .admit(start + RATE_WINDOW + Duration::from_millis(10))
                .is_ok()
        );
    }

    #[test]
    fn no_minute_ever_holds_more_than_the_rate() {
        let rate = 120;
        let budget = Budget::new(1, rate, true);
        let start = Instant::now();
        // Asks in uneven bursts for five minutes, as a busy node would.
        let mut sent = Vec::new();
        let mut at = Duration::ZERO;
        let mut step = 7u64;
        while at < Duration::from_secs(300) {
            step = (step * 48_271) % 2_147_483_647;
            at += Duration::from_millis(step % 900);
            for _ in 0..step % 7 {
                if budget.admit(start + at).is_ok() {
                    sent.push(at);
                }
            }
        }
        assert!(sent.len() > 4 * rate as usize, "only {} sent", sent.len());
        for (i, &first) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|&&t| t - first < RATE_WINDOW)
                .count();
            assert!(
                in_window <= rate as usize,
                "{in_window} in the minute from {first:?}"
            );
        }
    }

    #[test]
    fn a_429_mutes_until_it_elapses() {
        let budget = Budget::new(1, 600, true);
        let now = Instant::now();
        budget.record::<()>(
            &Err(HubError::RateLimited {
                retry_in: Duration::from_secs(5),
            }),
            now,
            now,
        );
        assert!(matches!(
            budget.admit(now + Duration::from_secs(4)),
            Err(HubError::RateLimited { .. })
        ));
        assert!(budget.admit(now + Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn repeated_failures_back_off_and_success_resets() {
        let budget = Budget::new(1, 600, true);
        let now = Instant::now();
        for _ in 0..FAILURES_BEFORE_BACKOFF - 1 {
            budget.record::<()>(&Err(HubError::Timeout), now, now);
        }
        assert!(
            budget.admit(now).is_ok(),
            "two failures are not yet a pattern"
        );
        budget.record::<()>(&Err(HubError::Status { status: 500 }), now, now);
        assert!(matches!(
            budget.admit(now + Duration::from_secs(1)),
            Err(HubError::Backoff { .. })
        ));
        assert!(budget.admit(now + Duration::from_secs(3)).is_ok());
        budget.record(&Ok(()), now, now);
        budget.record::<()>(&Err(HubError::Timeout), now, now);
        assert!(budget.admit(now + Duration::from_secs(3)).is_ok());
    }

    /// A 405 for a day (docker/hub-feedback#2257), 401s, odd bodies: answers about the
    /// request, which never make the node stop asking about every other image.
    #[test]
    fn answers_about_the_request_never_back_off() {
        let budget = Budget::new(1, 600, true);
        let now = Instant::now();
        for status in [405, 401, 410, 400, 405, 405] {
            budget.record::<()>(&Err(HubError::Status { status }), now, now);
        }
        let odd = HubError::BadAnswer {
            reason: "JSON of another shape".into(),
        };
        for _ in 0..3 {
            budget.record::<()>(&Err(odd.clone()), now, now);
        }
        assert!(budget.admit(now).is_ok());
        for _ in 0..3 {
            budget.record::<()>(&Err(HubError::Status { status: 502 }), now, now);
        }
        assert!(matches!(budget.admit(now), Err(HubError::Backoff { .. })));
    }

    #[test]
    fn requests_in_flight_do_not_lengthen_a_pause_and_one_trial_tests_recovery() {
        let budget = Budget::new(8, 600, true);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Eight requests were on their way when the hub began to fail.
        for _ in 0..8 {
            budget.record::<()>(&Err(HubError::Timeout), t0, at(100));
        }
        assert!(matches!(
            budget.admit(at(1_000)),
            Err(HubError::Backoff { .. })
        ));
        // The first pause (2 s), not 2^5 times that.
        assert!(budget.admit(at(2_200)).is_ok(), "the trial goes out");
        assert!(
            matches!(budget.admit(at(2_200)), Err(HubError::Backoff { .. })),
            "one trial at a time"
        );
        // The trial fails: the next pause is one step longer (4 s).
        budget.record::<()>(&Err(HubError::Status { status: 500 }), at(2_200), at(2_300));
        assert!(budget.admit(at(6_000)).is_err());
        assert!(budget.admit(at(6_400)).is_ok(), "the next trial");
        // It succeeds: everything flows again.
        budget.record(&Ok(()), at(6_400), at(6_500));
        for _ in 0..5 {
            assert!(budget.admit(at(6_500)).is_ok());
        }
    }
}
