//! The federation's async side: the thin loops that drive the sans-IO core
//! ([`crate::federation::Core`]) over HTTP. One loop ticks the core and runs what it asks
//! for (gossip exchanges, probes) as tasks; `POST /gossip` hands requests to the core; the
//! state is saved atomically now and then and on shutdown; SIGTERM sends a signed leave.
//!
//! The core sits behind a mutex that is only ever held while the core computes, never
//! across an `.await` (clippy's `await_holding_lock` refuses it), and never while
//! signatures are checked: async tasks (probe results, `/servers`, this loop) block a
//! worker thread while they wait for the lock, and under a flood of validly signed
//! descriptors checks under the lock make them wait long enough for this node's own
//! `/health` answers to miss other nodes' probe timeouts (docs/RELIABILITY.md). Signatures are checked first, into the
//! core's [`SignatureCache`], and the merge under the lock finds them done.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::watch;

use super::key_file::{self, KeyFileError};
use super::peers_file::{self, PeersFileError};
use super::pool_dns;
use super::state;
use super::transport::http::{HttpTransport, PeerClient};
use super::transport::{self, Transport};
use crate::federation::{
    self, Action, Core, GossipRequest, MemberCounts, PeerUrl, PeersFile, PoolSeed, SignatureCache,
    exchange,
};
use crate::logging::WarnThrottle;
use crate::metrics::Metrics;

/// Probes in flight at once of nodes never seen healthy (see `Driver::unproven_probe_slots`).
const UNPROVEN_PROBE_SLOTS: usize = 16;
/// Probes of nodes never seen healthy that may wait for a slot or hold one. Beyond this a
/// due probe is skipped; the core asks for it again one probe interval later. Without the
/// bound, a flood that adds fakes faster than their probes complete left one waiting task
/// per fake (100,000 descriptors took a node from 18 to 100 MB).
const UNPROVEN_PROBE_BACKLOG: usize = 4 * UNPROVEN_PROBE_SLOTS;
/// How often the state is saved while the node runs (and once more on shutdown).
const SAVE_EVERY: Duration = Duration::from_secs(30);
/// How soon the state is saved after the number of known or listed nodes changed (at most
/// this often), so that a node killed in its first 30 s does not restart knowing only
/// `peers.toml` and learn everyone again from a score of 0 (14 probes each).
const SAVE_AFTER_CHANGE: Duration = Duration::from_secs(2);
/// The longest the loop sleeps, so a changed clock or a new member is noticed soon.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How long a leave may take to reach the known nodes at shutdown.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);
/// `POST /gossip` requests handled at once. Handling checks up to 128 signatures, so it
/// runs on the blocking pool (a flood must not stall the async workers that serve badges);
/// this caps the threads and the bodies a flood can park there, and more requests get a
/// 503 to retry next round.
pub const GOSSIP_SLOTS: usize = 4;
/// Verified descriptors kept between their signature check and their merge. Enough for
/// every message in flight at once (the gossip slots and this node's own exchanges, 128
/// descriptors each) with room to spare; when it is full the oldest entry goes, and a merge
/// that finds its descriptor gone checks it again under the lock, which is slower but right.
const SIGNATURE_CACHE_ENTRIES: usize = 4096;

/// Why the federation could not start. Each names the file and the problem.
#[derive(Debug, Error)]
pub enum DriverError {
    #[error("{0}")]
    Peers(#[from] PeersFileError),
    #[error("node identity: {0}")]
    Identity(#[from] KeyFileError),
    #[error("--public-url: {0}")]
    PublicUrl(#[from] federation::UrlError),
    #[error("federation settings: {0}")]
    Config(#[from] federation::SettingsError),
    #[error("cannot set up the peer client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The longest excerpt of a parser's message a refusal carries.
const MAX_REFUSAL_CHARS: usize = 160;

/// Why a `POST /gossip` got no answer.
#[derive(Debug, Error)]
pub enum GossipRefusal {
    /// The body is not a gossip message; nothing changed.
    #[error("not a gossip message: {0}")]
    Malformed(String),
    /// The core refused it (see [`federation::GossipError`] for what changed).
    #[error(transparent)]
    Refused(#[from] federation::GossipError),
}

/// This node's part in the network. Shared by the routes and the loop.
#[derive(Debug)]
pub struct Driver {
    core: Mutex<Core>,
    key: String,
    /// The node's key pair, for signing what is not gossip (fills).
    identity: federation::Identity,
    transport: HttpTransport,
    state_path: PathBuf,
    metrics: Metrics,
    gossip_slots: Arc<tokio::sync::Semaphore>,
    /// Probes in flight of nodes never seen healthy. A flood of descriptors pointing nowhere
    /// must not crowd out (and time out) the probes of the real nodes, which bypass this.
    unproven_probe_slots: Arc<tokio::sync::Semaphore>,
    /// Probes of nodes never seen healthy that wait for a slot or hold one.
    unproven_probe_backlog: Arc<AtomicUsize>,
    /// Failed exchanges reach the log once a minute per peer and cause.
    warned: WarnThrottle,
    /// Why each `peers.toml` node's exchanges fail, as last logged: a warning is written
    /// once per seed and cause, not once per attempt, and a line when it answers again.
    seed_trouble: Mutex<HashMap<PeerUrl, String>>,
    /// Why each `peers.toml` pool gave no seed that answers, as last logged: like
    /// `seed_trouble`, once per pool and cause.
    pool_trouble: Mutex<HashMap<PoolSeed, String>>,
    /// How long a pool's name may take to resolve.
    resolve_timeout: Duration,
    /// How long after a failed probe of a listed node it is retried.
    probe_retry_delay: Duration,
}

/// `/servers`.
#[derive(Serialize)]
struct ServersAnswer<'a, F: Serialize> {
    node: &'a str,
    generated_at: String,
    servers: Vec<federation::ServerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<federation::MemberView>>,
    /// With `?all=true`: the nodes that filled this one's cache or asked it to fill theirs.
    #[serde(skip_serializing_if = "Option::is_none")]
    fills: Option<F>,
}

impl Driver {
    /// Reads `peers.toml` and the state directory and sets up the core. A broken peers file
    /// or key file is an error (the node must not start on a misunderstanding); a damaged
    /// state file is reported and ignored.
    pub fn new(
        config: &crate::config::Config,
        public_url: &url::Url,
        metrics: Metrics,
    ) -> Result<Driver, DriverError> {
        let PeersFile { peers, pools } = match config.peers_file() {
            Some(path) => {
                let file = peers_file::load_peers(&path)?;
                tracing::info!(peers_file = %path.display(), peers = file.peers.len(), pools = file.pools.len(), "peers file read");
                file
            }
            None => {
                tracing::info!("no peers.toml: starting alone until other nodes make contact");
                PeersFile::default()
            }
        };
        let (identity, created) = key_file::load_or_create(&config.state_dir)?;
        let key = identity.public_key().to_base64();
        if created {
            tracing::info!(key = %key, dir = %config.state_dir.display(), "created a new node key");
        }
        let mut settings = federation::Settings::new(
            PeerUrl::parse(public_url.as_str())?,
            env!("CARGO_PKG_VERSION"),
        );
        settings.gossip_interval = config.gossip_interval;
        settings.probe_interval = config.probe_interval;
        // A healthy node answers /health in milliseconds; a slow answer is a bad probe. The
        // timeout must end before the next probe is due, but should not be so tight that a
        // busy machine's scheduling delay reads as a dead node.
        settings.probe_timeout = probe_timeout(config.probe_interval);
        settings.allow_private_peers = config.allow_private_peers;
        // Checked by Config::validate before a driver is made.
        settings.pool_addresses = config.pool_addresses().unwrap_or_default();
        settings.pool_port = config.pool_port;
        settings.answers_pool_dns = config.dns_listen.is_some();
        let now = super::now();
        let mut core = Core::new(identity.clone(), settings, peers, now)?;
        core.set_pool_seeds(pools);
        core.set_signature_cache(Arc::new(SignatureCache::with_capacity(
            SIGNATURE_CACHE_ENTRIES,
        )));
        let state_path = state::state_path(&config.state_dir);
        match state::load_state(&state_path) {
            state::Loaded::Missing => {}
            state::Loaded::Loaded(state) => {
                let report = core.restore(state, now);
                match &report.ignored {
                    Some(reason) => tracing::warn!(reason = %reason, "saved network state ignored"),
                    None => {
                        tracing::info!(restored = report.restored, rejected = ?report.rejected, "rejoining from saved network state")
                    }
                }
            }
            state::Loaded::Damaged {
                path,
                reason,
                moved_to,
            } => {
                tracing::warn!(path = %path.display(), reason = %reason, moved_to = ?moved_to, "damaged state file ignored");
            }
        }
        let transport = HttpTransport {
            client: PeerClient::new(
                probe_timeout(config.probe_interval),
                config.allow_private_peers,
            )?,
            metrics: metrics.clone(),
        };
        Ok(Driver {
            core: Mutex::new(core),
            key,
            identity,
            transport,
            state_path,
            metrics,
            gossip_slots: Arc::new(tokio::sync::Semaphore::new(GOSSIP_SLOTS)),
            unproven_probe_slots: Arc::new(tokio::sync::Semaphore::new(UNPROVEN_PROBE_SLOTS)),
            unproven_probe_backlog: Arc::new(AtomicUsize::new(0)),
            warned: WarnThrottle::default(),
            seed_trouble: Mutex::new(HashMap::new()),
            pool_trouble: Mutex::new(HashMap::new()),
            // The budget of a probe: a DNS server that answers at all answers in
            // milliseconds, and a round must end before the next one is due.
            resolve_timeout: probe_timeout(config.probe_interval),
            probe_retry_delay: probe_retry_delay(config.probe_interval),
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock()
    }

    /// This node's public key, base64.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The node's key pair.
    pub fn identity(&self) -> &federation::Identity {
        &self.identity
    }

    /// The client this node talks to other nodes with.
    pub fn peer_client(&self) -> &PeerClient {
        &self.transport.client
    }

    /// The listed nodes, this one first unless it is leaving: what `/servers` lists.
    pub fn listed(&self) -> Vec<federation::ServerView> {
        self.core().servers(super::now())
    }

    /// The `/servers` answer; with `all`, every known node with its state and score, and
    /// `fills` (what the fill side says of them).
    pub fn servers_json<F: Serialize>(
        &self,
        node_url: &str,
        all: bool,
        fills: Option<F>,
    ) -> Vec<u8> {
        let now = super::now();
        let (servers, members) = {
            let core = self.core();
            (core.servers(now), all.then(|| core.members(now)))
        };
        let answer = ServersAnswer {
            node: node_url,
            generated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            servers,
            members,
            fills: if all { fills } else { None },
        };
        serde_json::to_vec(&answer).unwrap_or_default()
    }

    /// The nodes the DNS pool may answer with now ([`Core::pool_nodes`]).
    pub fn pool_nodes(&self) -> Vec<federation::PoolNode> {
        self.core().pool_nodes(super::now())
    }

    /// One of the [`GOSSIP_SLOTS`], or `None` when all are taken.
    pub fn try_gossip_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.gossip_slots).try_acquire_owned().ok()
    }

    /// The server side of `POST /gossip`: the answer's JSON body, or why there is none
    /// (the HTTP layer turns that into a status). Blocking (signature checks): async callers
    /// run it with `spawn_blocking`.
    pub fn handle_gossip(&self, body: &[u8], from: IpAddr) -> Result<Vec<u8>, GossipRefusal> {
        let request: GossipRequest = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(err) => {
                self.metrics.gossip_exchange("malformed", 0, body.len());
                // serde's message quotes what it could not read (a whole unknown variant
                // of half a megabyte, say): only a short excerpt goes back.
                return Err(GossipRefusal::Malformed(crate::http::response::shorten(
                    &err.to_string(),
                    MAX_REFUSAL_CHARS,
                )));
            }
        };
        match exchange::serve(&self.core, request, from, super::now) {
            Ok(response) => {
                let bytes = serde_json::to_vec(&response).unwrap_or_default();
                self.metrics
                    .gossip_exchange("served", bytes.len(), body.len());
                Ok(bytes)
            }
            Err(err) => {
                self.metrics.gossip_exchange(err.kind(), 0, body.len());
                tracing::debug!(from = %from, error = %err, "gossip refused");
                Err(GossipRefusal::Refused(err))
            }
        }
    }

    /// Drives the core until `shutdown` turns true: ticks, runs the exchanges and probes it
    /// asks for, saves the state now and then.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut rng = StdRng::from_rng(&mut rand::rng());
        let mut last_save = tokio::time::Instant::now();
        // (known, listed) when last saved; `None` until the first save.
        let mut saved_shape = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = super::now();
            let (actions, proven, wakeup) = {
                let mut core = self.core();
                let actions = core.tick(now, &mut rng);
                let proven: Vec<bool> = actions
                    .iter()
                    .map(|a| matches!(a, Action::Probe { url } if core.is_proven(url)))
                    .collect();
                (actions, proven, core.next_wakeup())
            };
            for (action, proven) in actions.into_iter().zip(proven) {
                let network = Arc::clone(&self);
                match action {
                    Action::Gossip { to, request } => {
                        let seed = StdRng::from_rng(&mut rng);
                        tokio::spawn(async move { network.gossip(to, request, seed).await });
                    }
                    Action::AskPool { pool, request } => {
                        let seed = StdRng::from_rng(&mut rng);
                        tokio::spawn(async move { network.ask_pool(pool, request, seed).await });
                    }
                    Action::ProbePool { url } => {
                        tokio::spawn(async move { network.probe_pool(url).await });
                    }
                    Action::Probe { url } => {
                        let place = if proven {
                            Some(None)
                        } else {
                            BacklogPlace::take(&self.unproven_probe_backlog).map(Some)
                        };
                        match place {
                            Some(place) => {
                                tokio::spawn(async move { network.probe(url, place).await });
                            }
                            None => self.metrics.probe("skipped"),
                        }
                    }
                }
            }
            let counts = self.update_peer_metrics();
            let shape = Some((
                counts.listed + counts.probation + counts.failing + counts.left,
                counts.listed,
            ));
            let since_save = last_save.elapsed();
            if since_save >= SAVE_EVERY || (shape != saved_shape && since_save >= SAVE_AFTER_CHANGE)
            {
                self.save().await;
                last_save = tokio::time::Instant::now();
                saved_shape = shape;
            }
            let sleep = wakeup
                .duration_since(super::now())
                .clamp(Duration::from_millis(10), MAX_SLEEP);
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Runs one gossip exchange the core asked for.
    async fn gossip(&self, to: PeerUrl, request: GossipRequest, mut rng: StdRng) {
        let result = transport::exchange(
            &self.transport,
            &self.core,
            &to,
            request,
            super::now,
            &mut rng,
        )
        .await;
        let seed = self.core().is_seed(&to);
        match result {
            Err(err) if seed => self.seed_failed(&to, &err),
            Err(err) if self.warned.allow(&format!("{to} {err}")) => {
                tracing::warn!(peer = %to, error = %err, "gossip with a peer failed (said at most once a minute per peer and cause)");
            }
            Err(err) => tracing::debug!(peer = %to, error = %err, "gossip exchange failed"),
            Ok(_) if seed => self.seed_answered(&to),
            Ok(_) => {}
        }
    }

    /// Logs a seed's failed exchange: a warning the first time for each cause, then quiet
    /// (the core backs off and keeps trying).
    fn seed_failed(&self, to: &PeerUrl, err: &transport::ExchangeError) {
        let cause = err.to_string();
        let mut trouble = self.seed_trouble.lock();
        if trouble.get(to) == Some(&cause) {
            tracing::debug!(peer = %to, error = %cause, "seed still unreachable");
            return;
        }
        tracing::warn!(peer = %to, error = %cause, "seed from peers.toml unreachable; retrying with backoff");
        trouble.insert(to.clone(), cause);
    }

    fn seed_answered(&self, to: &PeerUrl) {
        if self.seed_trouble.lock().remove(to).is_some() {
            tracing::info!(peer = %to, "seed from peers.toml answers again");
        }
    }

    /// One round of asking a pool: resolves its name, runs an exchange with every address
    /// it gave at once, and tells the core whether any answered. Whatever happens, the
    /// core hears of it, so the pool is asked again.
    async fn ask_pool(self: Arc<Self>, pool: PoolSeed, request: GossipRequest, mut rng: StdRng) {
        let round = self.pool_round(&pool, request, &mut rng).await;
        match &round {
            Ok((answered, asked)) => self.pool_answered(&pool, *answered, *asked),
            Err(cause) => self.pool_failed(&pool, cause),
        }
        self.core()
            .on_pool_result(&pool, round.is_ok(), super::now());
    }

    /// `Ok((answered, asked))` when at least one address answered, else why none did.
    async fn pool_round(
        self: &Arc<Self>,
        pool: &PoolSeed,
        request: GossipRequest,
        rng: &mut StdRng,
    ) -> Result<(usize, usize), String> {
        let addresses = pool_dns::resolve_pool(pool, self.resolve_timeout)
            .await
            .map_err(|err| err.to_string())?;
        let urls = self.core().pool_seed_urls(pool, &addresses);
        if urls.is_empty() {
            return Err("resolves to no address but this node's own".into());
        }
        let mut exchanges = tokio::task::JoinSet::new();
        for url in urls {
            let network = Arc::clone(self);
            let request = request.clone();
            let mut rng = StdRng::from_rng(&mut *rng);
            exchanges.spawn(async move {
                let result = transport::exchange(
                    &network.transport,
                    &network.core,
                    &url,
                    request,
                    super::now,
                    &mut rng,
                )
                .await;
                (url, result)
            });
        }
        let (mut answered, mut asked, mut first_error) = (0, 0, None);
        while let Some(joined) = exchanges.join_next().await {
            asked += 1;
            let Ok((url, result)) = joined else {
                continue;
            };
            match result {
                Ok(_) => answered += 1,
                Err(err) if err.reached() => {
                    answered += 1;
                    tracing::debug!(pool = %pool, peer = %url, error = %err, "pool address answered with an error");
                }
                Err(err) => {
                    tracing::debug!(pool = %pool, peer = %url, error = %err, "pool address unreachable");
                    first_error.get_or_insert_with(|| err.to_string());
                }
            }
        }
        if answered == 0 {
            return Err(format!(
                "no address answered: {}",
                first_error
                    .as_deref()
                    .unwrap_or("the exchanges did not run")
            ));
        }
        Ok((answered, asked))
    }

    /// Logs a pool round that gave no seed: a warning the first time for each cause, then
    /// quiet (the core backs off and keeps asking).
    fn pool_failed(&self, pool: &PoolSeed, cause: &str) {
        let mut trouble = self.pool_trouble.lock();
        if trouble.get(pool).map(String::as_str) == Some(cause) {
            tracing::debug!(pool = %pool, error = %cause, "pool still gives no seed");
            return;
        }
        tracing::warn!(pool = %pool, error = %cause, "pool from peers.toml gives no seed that answers; retrying with backoff");
        trouble.insert(pool.clone(), cause.to_owned());
    }

    fn pool_answered(&self, pool: &PoolSeed, answered: usize, asked: usize) {
        if self.pool_trouble.lock().remove(pool).is_some() {
            tracing::info!(pool = %pool, answered, asked, "pool from peers.toml answers again");
        } else {
            tracing::debug!(pool = %pool, answered, asked, "pool asked");
        }
    }

    /// Probes `url` and tells the core. `backlog` is the place of a probe of a node never
    /// seen healthy (`None` for the others, which never wait).
    async fn probe(&self, url: PeerUrl, backlog: Option<BacklogPlace>) {
        // Taken before the probe's clock starts, so waiting is not counted as latency.
        let _slot = match &backlog {
            Some(_) => Some(Arc::clone(&self.unproven_probe_slots).acquire_owned().await),
            None => None,
        };
        let mut outcome = self.transport.probe(&url).await;
        for _ in 0..federation::PROBE_RETRIES {
            if !self.core().wants_retry(&url, &outcome) {
                break;
            }
            // One lost request must not cost a listed node its place: ask again at once,
            // and report what the retries found.
            self.metrics.probe("failed");
            tokio::time::sleep(self.probe_retry_delay).await;
            outcome = self.transport.probe(&url).await;
            self.metrics.probe_retry(if outcome.answered {
                "recovered"
            } else {
                "confirmed"
            });
        }
        let label = if outcome.forbidden {
            "forbidden"
        } else if outcome.answered {
            "answered"
        } else {
            "failed"
        };
        self.metrics.probe(label);
        self.core().on_probe_result(&url, outcome, super::now());
        drop(backlog);
    }

    /// Probes a pool address at the pool port and tells the core, retrying a lost probe as
    /// for a listed node: these are the addresses the DNS answers with.
    async fn probe_pool(&self, url: PeerUrl) {
        let mut outcome = self.transport.probe(&url).await;
        for _ in 0..federation::PROBE_RETRIES {
            if !self.core().wants_pool_retry(&outcome) {
                break;
            }
            tokio::time::sleep(self.probe_retry_delay).await;
            outcome = self.transport.probe(&url).await;
        }
        self.core()
            .on_pool_probe_result(&url, outcome, super::now());
    }

    fn update_peer_metrics(&self) -> MemberCounts {
        let counts = self.core().member_counts(super::now());
        self.metrics.set_peers(&[
            ("listed", counts.listed),
            ("probation", counts.probation),
            ("failing", counts.failing),
            ("left", counts.left),
        ]);
        counts
    }

    /// Saves what the node knows of the network, atomically, off the async threads.
    pub async fn save(&self) {
        let state = self.core().snapshot();
        let path = self.state_path.clone();
        let result = tokio::task::spawn_blocking(move || state::save_state(&path, &state)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot save network state"),
            Err(err) => tracing::warn!(error = %err, "state saving task failed"),
        }
    }

    /// Signs a leave and pushes it to every known node (for at most a few seconds), so each
    /// drops this node from its list at once; then saves the state.
    pub async fn leave(&self) {
        let actions = self.core().leave(super::now());
        let mut pushes = tokio::task::JoinSet::new();
        for action in actions {
            if let Action::Gossip { to, request } = action {
                let transport = self.transport.clone();
                pushes.spawn(async move {
                    if let Err(err) = transport.gossip(&to, request).await {
                        tracing::debug!(peer = %to, error = %err, "leave not delivered");
                    }
                });
            }
        }
        let delivered = tokio::time::timeout(LEAVE_TIMEOUT, async {
            while pushes.join_next().await.is_some() {}
        })
        .await;
        if delivered.is_err() {
            tracing::warn!("leave not delivered to every node in time");
        }
        self.save().await;
    }
}

/// A place in the backlog of probes of unproven nodes, given back when dropped (also when
/// the probe's task ends early).
#[derive(Debug)]
struct BacklogPlace(Arc<AtomicUsize>);

impl BacklogPlace {
    /// A place, or `None` when [`UNPROVEN_PROBE_BACKLOG`] are taken.
    fn take(backlog: &Arc<AtomicUsize>) -> Option<BacklogPlace> {
        backlog
            .fetch_update(AtomicOrdering::AcqRel, AtomicOrdering::Acquire, |taken| {
                (taken < UNPROVEN_PROBE_BACKLOG).then_some(taken + 1)
            })
            .ok()
            .map(|_| BacklogPlace(Arc::clone(backlog)))
    }
}

impl Drop for BacklogPlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AtomicOrdering::AcqRel);
    }
}

/// A tenth of the probe interval, between 50 ms and 2 s: soon enough to count within the
/// interval, late enough not to land in the same moment of trouble.
fn probe_retry_delay(interval: Duration) -> Duration {
    (interval / 10).clamp(Duration::from_millis(50), Duration::from_secs(2))
}

/// Three quarters of the probe interval, at most 5 s.
fn probe_timeout(interval: Duration) -> Duration {
    (interval * 3 / 4).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_of_unproven_probes_is_bounded_and_places_come_back() {
        let backlog = Arc::new(AtomicUsize::new(0));
        let mut places: Vec<BacklogPlace> = (0..UNPROVEN_PROBE_BACKLOG)
            .map(|_| BacklogPlace::take(&backlog).expect("a place"))
            .collect();
        assert!(BacklogPlace::take(&backlog).is_none(), "full: skipped");
        places.pop();
        assert!(BacklogPlace::take(&backlog).is_some(), "one given back");
        drop(places);
        assert_eq!(backlog.load(AtomicOrdering::Acquire), 0);
    }

    #[test]
    fn probe_timeouts_fit_the_interval() {
        assert_eq!(
            probe_timeout(Duration::from_secs(1)),
            Duration::from_millis(750)
        );
        assert_eq!(
            probe_timeout(Duration::from_secs(30)),
            Duration::from_secs(5)
        );
    }
}
