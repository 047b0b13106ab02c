//! A fault-injecting TCP proxy on loopback, for tests of nodes on a lossy network: it
//! forwards connections to one target and, at set rates, refuses a connection (reset at
//! once), resets one in the middle of a request, or delays a request. Decisions are drawn
//! from a seeded RNG; counters say what was done.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does to traffic, as probabilities.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// Per accepted connection: reset it before anything is forwarded.
    pub refuse: f64,
    /// Per chunk from the client (about one HTTP request): reset both sides instead of
    /// forwarding it.
    pub reset: f64,
    /// Per chunk from the client: forward it after `delay_by`.
    pub delay: f64,
    pub delay_by: Duration,
}

/// What the proxy did so far.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicU64,
    pub refused: AtomicU64,
    pub chunks: AtomicU64,
    pub resets: AtomicU64,
    pub delayed: AtomicU64,
}

impl ProxyStats {
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// One line for the test's output.
    pub fn summary(&self) -> String {
        format!(
            "{} connections ({} refused), {} requests ({} reset, {} delayed)",
            Self::get(&self.connections),
            Self::get(&self.refused),
            Self::get(&self.chunks),
            Self::get(&self.resets),
            Self::get(&self.delayed),
        )
    }

    /// Requests that failed (reset) or never got a connection (refused), per request.
    pub fn loss(&self) -> f64 {
        let failed = Self::get(&self.refused) + Self::get(&self.resets);
        failed as f64 / (Self::get(&self.chunks) + Self::get(&self.refused)).max(1) as f64
    }
}

/// A running proxy; stops (and drops its connections) when dropped.
#[derive(Debug)]
pub struct FaultyProxy {
    pub addr: SocketAddr,
    pub stats: Arc<ProxyStats>,
    task: JoinHandle<()>,
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    target: SocketAddr,
    faults: Faults,
    rng: Mutex<StdRng>,
    stats: Arc<ProxyStats>,
}

impl Shared {
    fn roll(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().random_bool(p.clamp(0.0, 1.0))
    }
}

impl FaultyProxy {
    /// Listens on `listen` (a loopback address) and forwards to `target`.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        faults: Faults,
        seed: u64,
    ) -> FaultyProxy {
        let listener = TcpListener::bind(listen)
            .await
            .unwrap_or_else(|e| panic!("bind the proxy on {listen}: {e}"));
        let addr = listener.local_addr().expect("proxy address");
        let stats = Arc::new(ProxyStats::default());
        let shared = Arc::new(Shared {
            target,
            faults,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            stats: Arc::clone(&stats),
        });
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        connections.spawn(forward(client, Arc::clone(&shared)));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        FaultyProxy { addr, stats, task }
    }
}

/// Ends a connection with a reset (RST), as a dropped or refused one looks to the client.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn forward(client: TcpStream, shared: Arc<Shared>) {
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    if shared.roll(shared.faults.refuse) {
        shared.stats.refused.fetch_add(1, Ordering::Relaxed);
        reset(client);
        return;
    }
    let Ok(server) = TcpStream::connect(shared.target).await else {
        reset(client);
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            shared.stats.chunks.fetch_add(1, Ordering::Relaxed);
            if shared.roll(shared.faults.reset) {
                shared.stats.resets.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            if shared.roll(shared.faults.delay) {
                shared.stats.delayed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(shared.faults.delay_by).await;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return false;
            }
        }
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        false
    };
    let must_reset = tokio::select! {
        r = upstream => r,
        r = downstream => r,
    };
    if must_reset
        && let (Ok(client), Ok(server)) = (
            client_read.reunite(client_write),
            server_read.reunite(server_write),
        )
    {
        reset(client);
        reset(server);
    }
}
