//! The federation's async side: the thin loops that drive the sans-IO core
//! ([`crate::federation::Core`]) over HTTP. One loop ticks the core and runs what it asks
//! for (gossip exchanges, probes) as tasks; `POST /gossip` hands requests to the core; the
//! state is saved atomically now and then and on shutdown; SIGTERM sends a signed leave.
//!
//! The core sits behind a std `Mutex` that is only ever held while the core computes,
//! never across an `.await` (clippy's `await_holding_lock` refuses it).

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::watch;

use crate::federation::{
    self, Action, Core, GossipRequest, GossipResponse, Identity, MAX_GOSSIP_BODY_BYTES,
    MemberState, PeerUrl, ProbeOutcome, ProbeVerdict, PublicKey, Timestamp, Transport,
    TransportError,
};
use crate::metrics::Metrics;
use crate::peer_client::{PeerClient, PeerError};

/// Probes in flight at once of nodes never seen healthy (see `Network::unproven_probe_slots`).
const UNPROVEN_PROBE_SLOTS: usize = 16;
/// How often the state is saved while the node runs (and once more on shutdown).
const SAVE_EVERY: Duration = Duration::from_secs(30);
/// The longest the loop sleeps, so a changed clock or a new member is noticed soon.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How long a leave may take to reach the known nodes at shutdown.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);
/// `POST /gossip` requests handled at once. Handling checks up to 128 signatures under the
/// core's lock, so it runs on the blocking pool (a flood must not stall the async workers
/// that serve badges); this caps the threads and the bodies a flood can park there, and
/// more requests get a 503 to retry next round.
pub const GOSSIP_SLOTS: usize = 4;

/// Why the federation could not start. Each names the file and the problem.
#[derive(Debug, Error)]
pub enum NetworkError {
    #[error("{0}")]
    Peers(#[from] federation::PeersFileError),
    #[error("node identity: {0}")]
    Identity(#[from] federation::IdentityError),
    #[error("--public-url: {0}")]
    PublicUrl(#[from] federation::UrlError),
    #[error("federation settings: {0}")]
    Config(#[from] federation::ConfigError),
    #[error("cannot set up the peer client: {0}")]
    Client(#[from] reqwest::Error),
}

/// This node's part in the network. Shared by the routes and the loop.
#[derive(Debug)]
pub struct Network {
    core: Mutex<Core>,
    key: String,
    transport: HttpTransport,
    state_path: PathBuf,
    metrics: Metrics,
    gossip_slots: Arc<tokio::sync::Semaphore>,
    /// Probes in flight of nodes never seen healthy. A flood of descriptors pointing nowhere
    /// must not crowd out (and time out) the probes of the real nodes, which bypass this.
    unproven_probe_slots: Arc<tokio::sync::Semaphore>,
}

/// `/servers`.
#[derive(Serialize)]
struct ServersAnswer<'a> {
    node: &'a str,
    generated_at: String,
    servers: Vec<federation::ServerView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<federation::MemberView>>,
}

impl Network {
    /// Reads `peers.toml` and the state directory and sets up the core. A broken peers file
    /// or key file is an error (the node must not start on a misunderstanding); a damaged
    /// state file is reported and ignored.
    pub fn new(
        config: &crate::config::Config,
        public_url: &url::Url,
        metrics: Metrics,
    ) -> Result<Network, NetworkError> {
        let peers = match config.peers_file() {
            Some(path) => federation::load_peers(&path)?,
            None => {
                tracing::info!("no peers.toml: starting alone until other nodes make contact");
                Vec::new()
            }
        };
        let (identity, created) = Identity::load_or_create(&config.state_dir)?;
        let key = identity.public_key().to_base64();
        if created {
            tracing::info!(key = %key, dir = %config.state_dir.display(), "created a new node key");
        }
        let mut settings = federation::Config::new(
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
        let now = Timestamp::now();
        let mut core = Core::new(identity, settings, peers, now)?;
        let state_path = federation::state_path(&config.state_dir);
        match federation::load_state(&state_path) {
            federation::Loaded::Missing => {}
            federation::Loaded::Loaded(state) => {
                let report = core.restore(state, now);
                match &report.ignored {
                    Some(reason) => tracing::warn!(reason = %reason, "saved network state ignored"),
                    None => {
                        tracing::info!(restored = report.restored, rejected = ?report.rejected, "rejoining from saved network state")
                    }
                }
            }
            federation::Loaded::Damaged {
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
        Ok(Network {
            core: Mutex::new(core),
            key,
            transport,
            state_path,
            metrics,
            gossip_slots: Arc::new(tokio::sync::Semaphore::new(GOSSIP_SLOTS)),
            unproven_probe_slots: Arc::new(tokio::sync::Semaphore::new(UNPROVEN_PROBE_SLOTS)),
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // The core's methods leave it consistent at every return; a panic elsewhere while
        // holding the lock does not make it unusable.
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// This node's public key, base64.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `/servers` answer; with `all`, every known node with its state and score.
    pub fn servers_json(&self, node_url: &str, all: bool) -> Vec<u8> {
        let now = Timestamp::now();
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
        };
        serde_json::to_vec(&answer).unwrap_or_default()
    }

    /// One of the [`GOSSIP_SLOTS`], or `None` when all are taken.
    pub fn try_gossip_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.gossip_slots).try_acquire_owned().ok()
    }

    /// The server side of `POST /gossip`: the answer's HTTP status and JSON body. Blocking
    /// (signature checks): async callers run it with `spawn_blocking`.
    pub fn handle_gossip(&self, body: &[u8], from: IpAddr) -> (u16, Vec<u8>) {
        let request: GossipRequest = match serde_json::from_slice(body) {
            Ok(request) => request,
            Err(err) => {
                self.metrics.gossip_exchange("malformed", 0, body.len());
                return (400, error_body(&format!("not a gossip message: {err}")));
            }
        };
        let result = self.core().handle_gossip(request, from, Timestamp::now());
        match result {
            Ok(response) => {
                let bytes = serde_json::to_vec(&response).unwrap_or_default();
                self.metrics
                    .gossip_exchange("served", bytes.len(), body.len());
                (200, bytes)
            }
            Err(err) => {
                self.metrics.gossip_exchange(err.kind(), 0, body.len());
                tracing::debug!(from = %from, error = %err, "gossip refused");
                (err.http_status(), error_body(&err.to_string()))
            }
        }
    }

    /// Drives the core until `shutdown` turns true: ticks, runs the exchanges and probes it
    /// asks for, saves the state now and then.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut rng = StdRng::from_rng(&mut rand::rng());
        let mut next_save = tokio::time::Instant::now() + SAVE_EVERY;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = Timestamp::now();
            let (actions, wakeup) = {
                let mut core = self.core();
                (core.tick(now, &mut rng), core.next_wakeup())
            };
            let proven = if actions.iter().any(|a| matches!(a, Action::Probe { .. })) {
                self.proven_urls()
            } else {
                HashSet::new()
            };
            for action in actions {
                let network = Arc::clone(&self);
                let seed = StdRng::from_rng(&mut rng);
                let proven =
                    matches!(&action, Action::Probe { url } if proven.contains(url.as_str()));
                tokio::spawn(async move { network.perform(action, seed, proven).await });
            }
            self.update_peer_metrics();
            if tokio::time::Instant::now() >= next_save {
                self.save().await;
                next_save = tokio::time::Instant::now() + SAVE_EVERY;
            }
            let sleep = wakeup
                .duration_since(Timestamp::now())
                .clamp(Duration::from_millis(10), MAX_SLEEP);
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// URLs of nodes named in `peers.toml` or seen healthy: their probes never queue.
    fn proven_urls(&self) -> HashSet<String> {
        self.core()
            .members(Timestamp::now())
            .into_iter()
            // A score above zero takes good probes: gossip-learned nodes start at 0.
            .filter(|m| m.seed || m.score > 0.0 || m.last_probe == Some(ProbeVerdict::Good))
            .map(|m| m.url)
            .collect()
    }

    async fn perform(&self, action: Action, mut rng: StdRng, proven: bool) {
        match action {
            Action::Gossip { to, request } => {
                let result = federation::exchange(
                    &self.transport,
                    &self.core,
                    &to,
                    request,
                    Timestamp::now,
                    &mut rng,
                )
                .await;
                match result {
                    Ok(_) => {}
                    Err(err) => tracing::debug!(peer = %to, error = %err, "gossip exchange failed"),
                }
            }
            Action::Probe { url } => {
                // Taken before the probe's clock starts, so waiting is not counted as latency.
                let _slot = if proven {
                    None
                } else {
                    Some(Arc::clone(&self.unproven_probe_slots).acquire_owned().await)
                };
                let outcome = self.transport.probe(&url).await;
                let label = if outcome.forbidden {
                    "forbidden"
                } else if outcome.answered {
                    "answered"
                } else {
                    "failed"
                };
                self.metrics.probe(label);
                self.core().on_probe_result(&url, outcome, Timestamp::now());
            }
        }
    }

    fn update_peer_metrics(&self) {
        let members = self.core().members(Timestamp::now());
        let count = |state: MemberState| {
            members
                .iter()
                .filter(|m| m.state == state && !m.is_self)
                .count()
        };
        self.metrics.set_peers(&[
            ("listed", count(MemberState::Listed)),
            ("probation", count(MemberState::Probation)),
            ("failing", count(MemberState::Failing)),
            ("left", count(MemberState::Left)),
        ]);
    }

    /// Saves what the node knows of the network, atomically, off the async threads.
    pub async fn save(&self) {
        let state = self.core().snapshot();
        let path = self.state_path.clone();
        let result =
            tokio::task::spawn_blocking(move || federation::save_state(&path, &state)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot save network state"),
            Err(err) => tracing::warn!(error = %err, "state saving task failed"),
        }
    }

    /// Signs a leave and pushes it to every known node (for at most a few seconds), so each
    /// drops this node from its list at once; then saves the state.
    pub async fn leave(&self) {
        let actions = self.core().leave(Timestamp::now());
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

/// Three quarters of the probe interval, at most 5 s.
fn probe_timeout(interval: Duration) -> Duration {
    (interval * 3 / 4).min(Duration::from_secs(5))
}

fn error_body(description: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"request": "error", "description": description}))
        .unwrap_or_default()
}

/// The HTTP implementation of the federation's transport.
#[derive(Debug, Clone)]
struct HttpTransport {
    client: PeerClient,
    metrics: Metrics,
}

impl Transport for HttpTransport {
    async fn gossip(
        &self,
        to: &PeerUrl,
        request: GossipRequest,
    ) -> Result<GossipResponse, TransportError> {
        let body =
            serde_json::to_vec(&request).map_err(|e| TransportError::Decode(e.to_string()))?;
        let sent = body.len();
        let result = self.client.gossip(to, body, MAX_GOSSIP_BODY_BYTES).await;
        let answer = match result {
            Ok(bytes) => bytes,
            Err(err) => {
                self.metrics.gossip_exchange("failed", sent, 0);
                return Err(match err {
                    PeerError::Forbidden => TransportError::Forbidden(to.to_string()),
                    PeerError::Timeout => TransportError::Timeout,
                    PeerError::Status(status) => TransportError::Status { status },
                    PeerError::TooLarge => TransportError::TooLarge,
                    other => TransportError::Unreachable(other.to_string()),
                });
            }
        };
        self.metrics.gossip_exchange("ok", sent, answer.len());
        serde_json::from_slice(&answer).map_err(|e| TransportError::Decode(e.to_string()))
    }

    async fn probe(&self, url: &PeerUrl) -> ProbeOutcome {
        let report = self.client.probe(url).await;
        match report.error {
            None => ProbeOutcome {
                answered: true,
                latency: report.latency,
                key_seen: report
                    .key
                    .as_deref()
                    .and_then(|k| PublicKey::from_base64(k).ok()),
                cors: report.cors,
                resolved_ip: report.ip,
                forbidden: false,
            },
            Some(PeerError::Forbidden) => ProbeOutcome::forbidden(report.ip),
            Some(_) => ProbeOutcome::unreachable(report.ip),
        }
    }
}
