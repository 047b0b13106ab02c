//! A deterministic simulator: many cores on a [`MemoryNetwork`], virtual time in rounds of
//! one gossip interval, one seeded RNG. Used by the simulation tests and the benchmark.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{RngExt as _, SeedableRng};

use crate::driver::transport::memory::MemoryNetwork;
use crate::federation::core::{Action, Core, PROBE_RETRIES, ProbeOutcome, State};
use crate::federation::descriptor::SignatureCache;
use crate::federation::exchange;
use crate::federation::identity::Identity;
use crate::federation::key::PublicKey;
use crate::federation::message::GossipRequest;
use crate::federation::peer_url::PeerUrl;
use crate::federation::peers::Peer;
use crate::federation::settings::Settings;
use crate::federation::time::Timestamp;

/// Virtual start time: 2026-01-01T00:00:00Z.
pub const SIM_EPOCH: Timestamp = Timestamp::from_unix_ms(1_767_225_600_000);

/// Which seed node each new node is given in its `peers.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seeding {
    /// Every node names node 0 (as in the shipped `peers.toml`).
    First,
    /// Node `i` names one random node among `0..i`.
    RandomEarlier,
}

/// A node of the simulation.
#[derive(Clone, Debug)]
pub struct SimNode {
    pub url: PeerUrl,
    pub key: PublicKey,
    pub ip: IpAddr,
    /// Up (not crashed, not left).
    pub up: bool,
    seed: [u8; 32],
    peers: Vec<Peer>,
    saved: Option<State>,
}

type Configure = Box<dyn Fn(&mut Settings)>;

/// The simulator.
pub struct Simulation {
    net: MemoryNetwork,
    rng: StdRng,
    nodes: Vec<SimNode>,
    rounds: u64,
    step: Duration,
    cache: Arc<SignatureCache>,
    configure: Configure,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("nodes", &self.nodes.len())
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// `n` nodes with the simulation's defaults: gossip and probe every 10 s (one probe of
    /// each node per round), everything else as in [`Settings::new`].
    pub fn new(n: usize, seeding: Seeding, seed: u64) -> Self {
        Self::with_config(n, seeding, seed, |_| {})
    }

    /// Like [`Simulation::new`], with `configure` applied to every node's config.
    ///
    /// # Panics
    ///
    /// If `configure` makes the configuration invalid: a mistake in the test, not an input.
    pub fn with_config(
        n: usize,
        seeding: Seeding,
        seed: u64,
        configure: impl Fn(&mut Settings) + 'static,
    ) -> Self {
        let mut sim = Self {
            net: MemoryNetwork::new(SIM_EPOCH, seed ^ 0x5eed),
            rng: StdRng::seed_from_u64(seed),
            nodes: Vec::with_capacity(n),
            rounds: 0,
            step: Duration::from_secs(10),
            cache: Arc::new(SignatureCache::new()),
            configure: Box::new(configure),
        };
        for i in 0..n {
            let seeds = match seeding {
                _ if i == 0 => vec![],
                Seeding::First => vec![0],
                Seeding::RandomEarlier => vec![sim.rng.random_range(0..i)],
            };
            sim.add_node(&seeds);
        }
        sim
    }

    /// The URL of node `i`.
    pub fn node_url(i: usize) -> PeerUrl {
        // Canonical by construction; parse cannot fail for this shape.
        PeerUrl::parse(&format!("https://n{i}.sim.example"))
            .unwrap_or_else(|_| unreachable!("simulation URLs are valid"))
    }

    /// The address of node `i`: public-looking, unique, four nodes per /24 (so the
    /// per-network listing limit of 4 is reached but not exceeded).
    pub fn node_ip(i: usize) -> IpAddr {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        let quad = i >> 2;
        IpAddr::V4(Ipv4Addr::new(
            11,
            (quad >> 8) as u8,
            (quad & 0xff) as u8,
            (i & 3) as u8 + 1,
        ))
    }

    fn settings_for(&self, url: PeerUrl) -> Settings {
        let mut config = Settings::new(url, "0.3.0");
        config.gossip_interval = self.step;
        config.probe_interval = self.step;
        config.probe_timeout = Duration::from_secs(2);
        (self.configure)(&mut config);
        config
    }

    fn make_core(&self, node: &SimNode) -> Core {
        let config = self.settings_for(node.url.clone());
        let core = Core::new(
            Identity::from_seed(node.seed),
            config,
            node.peers.clone(),
            self.net.now(),
        );
        let mut core = core.unwrap_or_else(|err| panic!("simulation config is invalid: {err}"));
        core.set_signature_cache(self.cache.clone());
        core
    }

    /// Starts a new node whose `peers.toml` names the nodes `seeds`; returns its index.
    pub fn add_node(&mut self, seeds: &[usize]) -> usize {
        let i = self.nodes.len();
        let mut seed = [0u8; 32];
        self.rng.fill(&mut seed[..]);
        let peers = Self::seed_peers(seeds);
        let mut node = SimNode {
            url: Self::node_url(i),
            key: Identity::from_seed(seed).public_key(),
            ip: Self::node_ip(i),
            up: true,
            seed,
            peers,
            saved: None,
        };
        let core = self.make_core(&node);
        node.key = core.public_key();
        let _ = self.net.add(core, node.ip);
        self.nodes.push(node);
        i
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, i: usize) -> &SimNode {
        &self.nodes[i]
    }

    pub fn net(&self) -> &MemoryNetwork {
        &self.net
    }

    pub fn now(&self) -> Timestamp {
        self.net.now()
    }

    /// Rounds run so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Runs `f` on node `i`'s core.
    pub fn with_core<T>(&self, i: usize, f: impl FnOnce(&mut Core) -> T) -> Option<T> {
        self.net.with_core(&self.nodes[i].url, f)
    }

    /// One round: the clock moves one gossip interval, then every node that is up ticks,
    /// in a random order, and its exchanges and probes are carried out at once.
    pub fn round(&mut self) {
        let now = self.net.advance(self.step);
        let mut order: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up)
            .collect();
        order.shuffle(&mut self.rng);
        for i in order {
            let url = self.nodes[i].url.clone();
            let rng = &mut self.rng;
            let actions = self
                .net
                .with_core(&url, |core| core.tick(now, rng))
                .unwrap_or_default();
            self.execute(&url, actions, now);
        }
        self.rounds += 1;
    }

    /// Carries out the actions of the node at `from`.
    pub fn execute(&mut self, from: &PeerUrl, actions: Vec<Action>, now: Timestamp) {
        let mut probes = Vec::new();
        for action in actions {
            match action {
                Action::Gossip { to, request } => self.exchange(from, &to, request, now),
                Action::Probe { url } => probes.push(url),
                // The simulated network serves no pool's HTTP.
                Action::ProbePool { url } => {
                    self.net.with_core(from, |core| {
                        core.on_pool_probe_result(&url, ProbeOutcome::unreachable(None), now)
                    });
                }
                // The simulated network has no DNS: a pool resolves to nothing.
                Action::AskPool { pool, .. } => {
                    self.net
                        .with_core(from, |core| core.on_pool_result(&pool, false, now));
                }
            }
        }
        if probes.is_empty() {
            return;
        }
        // All of a node's probes in one go: a thousand-node run makes millions of them.
        let mut outcomes = self.net.probe_all(from, &probes);
        // The driver's prompt retries of a failed probe of a listed node, as the core asks:
        // virtual time does not move for them (they take a fraction of a round).
        for _ in 0..PROBE_RETRIES {
            let retries: Vec<usize> = self
                .net
                .with_core(from, |core| {
                    probes
                        .iter()
                        .zip(&outcomes)
                        .enumerate()
                        .filter(|(_, (url, outcome))| core.wants_retry(url, outcome))
                        .map(|(i, _)| i)
                        .collect()
                })
                .unwrap_or_default();
            if retries.is_empty() {
                break;
            }
            for i in retries {
                outcomes[i] = self.net.probe(from, &probes[i]);
            }
        }
        self.net.with_core(from, |core| {
            for (url, outcome) in probes.iter().zip(outcomes) {
                core.on_probe_result(url, outcome, now);
            }
        });
    }

    /// One exchange through the steps a node's driver runs ([`exchange`]): the server side
    /// in the network's delivery, the signature checks and the merge here.
    fn exchange(&mut self, from: &PeerUrl, to: &PeerUrl, request: GossipRequest, now: Timestamp) {
        let Some(core) = self.net.core(from) else {
            return;
        };
        let mut request = request;
        for round_trip in 0..exchange::MAX_ROUND_TRIPS {
            let response = self.net.gossip(from, to, &request);
            if round_trip == 0 {
                core.lock().on_gossip_result(to, response.is_ok(), now);
            }
            let Ok(response) = response else {
                return;
            };
            exchange::check_answer(&core, &response).run(now);
            match exchange::take_answer(&core, to, response, now, &mut self.rng) {
                Ok(Some(follow_up)) => request = follow_up,
                _ => return,
            }
        }
    }

    /// Runs rounds until `done` holds (checked before each round); returns the rounds run,
    /// or `None` if `max_rounds` passed first.
    pub fn run_until(
        &mut self,
        max_rounds: u64,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<u64> {
        let start = self.rounds;
        loop {
            if done(self) {
                return Some(self.rounds - start);
            }
            if self.rounds - start >= max_rounds {
                return None;
            }
            self.round();
        }
    }

    /// Every node that is up holds the current descriptor of every node (up or left).
    pub fn converged(&self) -> bool {
        let current: Vec<(PublicKey, Timestamp)> = self
            .nodes
            .iter()
            .filter_map(|n| {
                self.net
                    .with_core(&n.url, |c| (c.public_key(), c.own_descriptor().issued_at()))
                    .filter(|_| n.up || self.has_left(n))
            })
            .collect();
        self.nodes.iter().filter(|n| n.up).all(|n| {
            self.net
                .with_core(&n.url, |core| {
                    current.iter().all(|(key, t)| core.held(key) == Some(*t))
                })
                .unwrap_or(false)
        })
    }

    fn has_left(&self, node: &SimNode) -> bool {
        self.net
            .with_core(&node.url, |c| c.has_left())
            .unwrap_or(false)
    }

    /// Every node that is up lists every other node that is up.
    pub fn all_listed(&self) -> bool {
        let now = self.now();
        let up: Vec<PublicKey> = self.nodes.iter().filter(|n| n.up).map(|n| n.key).collect();
        self.nodes.iter().filter(|n| n.up).all(|n| {
            self.net
                .with_core(&n.url, |core| {
                    let listed = core.listed_keys(now);
                    up.iter().all(|k| *k == n.key || listed.contains(k))
                })
                .unwrap_or(false)
        })
    }

    /// How many nodes that are up list node `i`.
    pub fn listed_by(&self, i: usize) -> usize {
        let now = self.now();
        let key = self.nodes[i].key;
        self.nodes
            .iter()
            .enumerate()
            .filter(|(j, n)| *j != i && n.up)
            .filter(|(_, n)| {
                self.net
                    .with_core(&n.url, |c| c.listed_keys(now).contains(&key))
                    .unwrap_or(false)
            })
            .count()
    }

    /// Node `i` stops answering (kill -9). Its state is kept as if saved just before.
    pub fn crash(&mut self, i: usize) {
        let url = self.nodes[i].url.clone();
        self.nodes[i].saved = self.net.with_core(&url, |c| c.snapshot());
        self.nodes[i].up = false;
        self.net.set_up(&url, false);
    }

    /// Replaces the `peers.toml` node `i` will have at its next restart.
    pub fn set_peers(&mut self, i: usize, seeds: &[usize]) {
        self.nodes[i].peers = Self::seed_peers(seeds);
    }

    /// The `peers.toml` entries naming the nodes `seeds`.
    fn seed_peers(seeds: &[usize]) -> Vec<Peer> {
        seeds
            .iter()
            .map(|&s| Peer {
                url: Self::node_url(s),
                weight: None,
                key: None,
                line: 1,
            })
            .collect()
    }

    /// Node `i` starts again with its key and saved state.
    pub fn restart(&mut self, i: usize) {
        let mut core = self.make_core(&self.nodes[i]);
        if let Some(state) = self.nodes[i].saved.take() {
            core.restore(state, self.net.now());
        }
        let _ = self.net.add(core, self.nodes[i].ip);
        self.nodes[i].up = true;
    }

    /// Node `i` answers again after [`Simulation::crash`] without having restarted (a
    /// network outage, a hung process): the same core, the same descriptor.
    pub fn resume(&mut self, i: usize) {
        let url = self.nodes[i].url.clone();
        self.nodes[i].saved = None;
        self.nodes[i].up = true;
        self.net.set_up(&url, true);
    }

    /// Node `i` leaves (SIGTERM): its leave is pushed, then it stops.
    pub fn leave(&mut self, i: usize) {
        let url = self.nodes[i].url.clone();
        let now = self.now();
        let actions = self
            .net
            .with_core(&url, |c| c.leave(now))
            .unwrap_or_default();
        self.execute(&url, actions, now);
        self.nodes[i].up = false;
        self.net.set_up(&url, false);
    }
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
