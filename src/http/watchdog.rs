//! The header-read timeout without a timer per request: a connection must send each request
//! head within `--header-timeout` of starting to wait for it (after accept, or after its last
//! answer), and one sweep per tick closes those that did not.
//!
//! hyper's own `header_read_timeout` arms a tokio timer for every request head and cancels it
//! when the head arrives: a boxed sleep, a timer-wheel insert and a removal under the wheel's
//! lock, every request. In paired runs under wrk that was 1.2 us on average (0.1–1.8 us) of
//! the 6–8 us a cached badge costs the server (docs/PERFORMANCE.md). Here a request costs an
//! atomic swap and a store on its connection's own state, and the tick task does the rest:
//! a connection is closed at most a tick after its timeout, never before it (up to a clock
//! read racing the tick).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use slab::Slab;
use tokio::task::AbortHandle;

/// A connection's state while a request is being answered: not waiting for a head.
const BUSY: u64 = u64::MAX;
/// A connection the sweeper has claimed for closing; a request head that arrives now is
/// too late, as one would be after hyper's own timeout.
const EXPIRED: u64 = u64::MAX - 1;
/// The longest tick: timeouts of seconds are kept to within a second, which is all a
/// slowloris defence needs, with one sweep per second.
const MAX_TICK: Duration = Duration::from_secs(1);
/// The shortest tick: tokio's timers count whole milliseconds, and each sweep walks every
/// connection, so the smallest timeouts (10 ms is allowed) are kept more coarsely.
const MIN_TICK: Duration = Duration::from_millis(5);
/// Ticks per timeout (at least): how much later than the timeout a connection may be closed.
const TICKS_PER_TIMEOUT: u32 = 4;

/// Watches every open connection of one server. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Watchdog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Sweeps done so far: the coarse clock connections read when they start to wait.
    clock: Arc<AtomicU64>,
    tick: Duration,
    /// Whole ticks a connection may wait; it is closed when more than this many ticks have
    /// passed since the one it started waiting in, so it has waited at least the timeout.
    patience: u64,
    connections: Mutex<Connections>,
}

#[derive(Debug, Default)]
struct Connections {
    list: Slab<Watched>,
    /// Numbers each registration, so a stale key (its connection gone, the slot reused)
    /// is never mistaken for another connection's.
    registered: u64,
}

#[derive(Debug)]
struct Watched {
    state: Arc<Waiting>,
    /// Set once the connection's task is spawned; aborting it drops the connection.
    abort: Option<AbortHandle>,
}

/// One connection's clock: the tick it started waiting for a request head in, or [`BUSY`].
#[derive(Debug)]
pub struct Waiting {
    since: AtomicU64,
    clock: Arc<AtomicU64>,
    key: usize,
    number: u64,
}

impl Waiting {
    /// A request head has arrived: the connection is no longer waiting for one.
    pub fn busy(&self) {
        // A swap, not a store: the sweeper claims a connection by exchanging the value it
        // read for EXPIRED, which fails once this has run, so a connection is never closed
        // while its request is being answered.
        self.since.swap(BUSY, Ordering::Relaxed);
    }

    /// The answer is out of the handler: the connection waits for its next request head.
    pub fn idle(&self) {
        self.since
            .store(self.clock.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// A connection's place on the watch list. Its connection task owns it, so when the
/// connection ends, however it ends, dropping it takes the connection off the list.
#[derive(Debug)]
pub struct Registration {
    shared: Arc<Shared>,
    state: Arc<Waiting>,
}

impl Registration {
    /// The clock the connection's requests report to.
    pub fn waiting(&self) -> &Arc<Waiting> {
        &self.state
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.unlist(&self.state);
    }
}

impl Shared {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Connections> {
        self.connections.lock()
    }

    /// The entry of `state`'s connection, if it is still listed.
    fn find<'a>(connections: &'a mut Connections, state: &Waiting) -> Option<&'a mut Watched> {
        connections
            .list
            .get_mut(state.key)
            .filter(|watched| watched.state.number == state.number)
    }

    fn unlist(&self, state: &Waiting) {
        let mut connections = self.lock();
        if Shared::find(&mut connections, state).is_some() {
            connections.list.remove(state.key);
        }
    }
}

impl Watchdog {
    /// A watchdog closing connections that wait longer than `timeout` for a request head.
    pub fn new(timeout: Duration) -> Watchdog {
        let tick = (timeout / TICKS_PER_TIMEOUT).min(MAX_TICK).max(MIN_TICK);
        let patience = timeout.as_nanos().div_ceil(tick.as_nanos()).max(1);
        Watchdog {
            shared: Arc::new(Shared {
                clock: Arc::new(AtomicU64::new(0)),
                tick,
                patience: u64::try_from(patience).unwrap_or(u64::MAX),
                connections: Mutex::new(Connections::default()),
            }),
        }
    }

    /// Puts a new connection on the list, waiting for its first request head from now.
    pub fn register(&self) -> Registration {
        let mut connections = self.shared.lock();
        connections.registered += 1;
        let number = connections.registered;
        let entry = connections.list.vacant_entry();
        let state = Arc::new(Waiting {
            since: AtomicU64::new(self.shared.clock.load(Ordering::Relaxed)),
            clock: Arc::clone(&self.shared.clock),
            key: entry.key(),
            number,
        });
        entry.insert(Watched {
            state: Arc::clone(&state),
            abort: None,
        });
        Registration {
            shared: Arc::clone(&self.shared),
            state,
        }
    }

    /// Gives the watchdog the way to close `state`'s connection, once its task is spawned.
    /// A connection that has already ended is not listed any more, and nothing happens.
    pub fn arm(&self, state: &Waiting, abort: AbortHandle) {
        if let Some(watched) = Shared::find(&mut self.shared.lock(), state) {
            watched.abort = Some(abort);
        }
    }

    /// Connections on the list.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shared.lock().list.len()
    }

    /// Whether no connection is on the list.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sweeps once a tick, forever: run it in a task and abort that when the server stops.
    pub async fn run(self) {
        loop {
            // A sleep, not an interval: ticks must be at least a tick apart even after a late
            // one, or a connection could be closed before its timeout.
            tokio::time::sleep(self.shared.tick).await;
            let closed = self.sweep();
            if closed > 0 {
                tracing::debug!(
                    closed,
                    "closed connections that sent no request head in time"
                );
            }
        }
    }

    /// Advances the clock one tick and closes the connections that have waited too long;
    /// returns how many.
    fn sweep(&self) -> usize {
        // Only this task advances the clock, so a load and a store are enough.
        let now = self.shared.clock.load(Ordering::Relaxed) + 1;
        self.shared.clock.store(now, Ordering::Relaxed);
        let mut closed = 0;
        for (_, watched) in self.shared.lock().list.iter_mut() {
            let since = watched.state.since.load(Ordering::Relaxed);
            // A connection that read tick `since` started waiting before tick `since + 1`
            // began, so by now it has waited more than `now - since - 1` whole ticks.
            // Claimed with a compare-exchange: a head that came in since the load made the
            // connection busy, and it is left alone.
            if since < EXPIRED
                && now.saturating_sub(since) > self.shared.patience
                && watched
                    .state
                    .since
                    .compare_exchange(since, EXPIRED, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                && let Some(abort) = watched.abort.take()
            {
                abort.abort();
                closed += 1;
            }
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that stays pending until aborted, standing in for a connection: it owns its
    /// registration, as the server's connection tasks do.
    fn connection(watchdog: &Watchdog) -> (Arc<Waiting>, tokio::task::JoinHandle<()>) {
        let registration = watchdog.register();
        let waiting = Arc::clone(registration.waiting());
        let task = tokio::spawn(async move {
            let _registration = registration;
            std::future::pending::<()>().await
        });
        watchdog.arm(&waiting, task.abort_handle());
        (waiting, task)
    }

    #[test]
    fn ticks_are_a_quarter_of_the_timeout_and_at_most_a_second() {
        let tick = |timeout| Watchdog::new(timeout).shared.tick;
        assert_eq!(tick(Duration::from_secs(10)), Duration::from_secs(1));
        assert_eq!(tick(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(tick(Duration::from_millis(100)), Duration::from_millis(25));
        assert_eq!(tick(Duration::from_millis(10)), Duration::from_millis(5));
        assert_eq!(Watchdog::new(Duration::from_secs(10)).shared.patience, 10);
        assert_eq!(Watchdog::new(Duration::from_millis(10)).shared.patience, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_connection_is_closed_after_the_timeout_and_not_before() {
        let timeout = Duration::from_secs(4);
        let watchdog = Watchdog::new(timeout);
        let sweeper = tokio::spawn(watchdog.clone().run());
        // Registered part of the way into a tick, so the first tick counts for less than a
        // whole one.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let started = tokio::time::Instant::now();
        let (_waiting, task) = connection(&watchdog);
        assert!(task.await.expect_err("aborted").is_cancelled());
        let waited = started.elapsed();
        assert!(waited >= timeout, "closed after {waited:?}");
        assert!(
            waited <= timeout + Duration::from_secs(1),
            "closed after {waited:?}"
        );
        assert!(watchdog.is_empty());
        sweeper.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_left_alone_and_its_wait_starts_again_after_each_answer() {
        let watchdog = Watchdog::new(Duration::from_secs(2));
        let sweeper = tokio::spawn(watchdog.clone().run());
        let (waiting, mut task) = connection(&watchdog);
        // A request that takes 10 s to answer keeps its connection.
        waiting.busy();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!task.is_finished());
        // So do requests every 1.5 s, each answered at once.
        for _ in 0..5 {
            waiting.idle();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            waiting.busy();
        }
        assert!(!task.is_finished());
        // Silence after the last answer closes it.
        waiting.idle();
        let started = tokio::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(4), &mut task)
            .await
            .expect("closed within the timeout and a tick")
            .expect_err("aborted");
        assert!(started.elapsed() >= Duration::from_secs(2));
        sweeper.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn connections_leave_the_list_when_they_end_and_a_stale_arm_does_nothing() {
        let watchdog = Watchdog::new(Duration::from_secs(1));
        let (mut ending, mut running) = (Vec::new(), Vec::new());
        for n in 0..100 {
            let connection = connection(&watchdog);
            if n % 2 == 0 {
                ending.push(connection)
            } else {
                running.push(connection)
            }
        }
        assert_eq!(watchdog.len(), 100);
        // Half end by themselves; their slots are reused by new connections, which an arm
        // meant for an ended one must not touch.
        let mut ended = Vec::new();
        for (waiting, task) in ending.drain(..) {
            task.abort();
            assert!(task.await.expect_err("aborted").is_cancelled());
            ended.push(waiting);
        }
        assert_eq!(watchdog.len(), 50);
        let newcomers: Vec<_> = (0..50).map(|_| watchdog.register()).collect();
        let bystanders: Vec<_> = ended
            .iter()
            .map(|waiting| {
                let bystander = tokio::spawn(std::future::pending::<()>());
                watchdog.arm(waiting, bystander.abort_handle());
                bystander
            })
            .collect();
        // The newcomers were never armed, so the sweeps close only the 50 still running, once.
        let sweeper = tokio::spawn(watchdog.clone().run());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(watchdog.len(), 50, "only the newcomers are left");
        assert!(running.iter().all(|(_, task)| task.is_finished()));
        assert_eq!(watchdog.sweep(), 0, "nothing is closed twice");
        assert!(bystanders.iter().all(|task| !task.is_finished()));
        drop(newcomers);
        assert!(watchdog.is_empty());
        sweeper.abort();
    }
}
