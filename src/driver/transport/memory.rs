//! An in-memory network over a shared map of cores, with a virtual clock, cut links and
//! lost messages (everywhere, per link or per node, for exchanges and probes alike): the
//! transport of simulations and of tests of the drivers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

use super::{Transport, TransportError};
use crate::federation::core::{Core, ProbeOutcome};
use crate::federation::exchange;
use crate::federation::key::PublicKey;
use crate::federation::message::{GossipRequest, GossipResponse};
use crate::federation::peer_url::PeerUrl;
use crate::federation::time::Timestamp;

/// A network of cores keyed by their URLs. Cloning gives another handle to the same network.
#[derive(Clone, Debug)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Net>>,
}

/// One node of the network.
#[derive(Debug)]
pub struct MemoryNode {
    /// Shared, so an async driver can hold its own node's core while the network reaches
    /// the others. Lock order: the network, then a core; never the other way round.
    pub core: Arc<Mutex<Core>>,
    /// The core's public key, what its `/health` names.
    pub key: PublicKey,
    /// The node's address: the source of its gossip and what probes of it resolve to.
    pub ip: IpAddr,
    /// A node that is down answers nothing (a crash, or after a leave).
    pub up: bool,
    /// Whether its `/health` carries the CORS header.
    pub cors: bool,
    /// How long its `/health` takes to answer.
    pub latency: Duration,
}

/// How messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Serialised to JSON and parsed back, as over HTTP; bytes are counted.
    Json,
    /// Handed over as values (faster); bytes are not counted.
    Direct,
}

/// Gossip traffic since the last [`MemoryNetwork::reset_traffic`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Request/response pairs delivered.
    pub round_trips: u64,
    /// Exchanges started (first round trips), delivered or not.
    pub exchanges: u64,
    /// Request plus response bytes (JSON wire only).
    pub bytes: u64,
    /// Requests lost to cuts, drops, down nodes or refusals.
    pub failed: u64,
}

#[derive(Debug)]
struct Net {
    // Looked up millions of times in a large simulation; never iterated for decisions.
    nodes: HashMap<PeerUrl, MemoryNode>,
    cut: BTreeSet<(PeerUrl, PeerUrl)>,
    groups: BTreeMap<PeerUrl, u32>,
    drop_probability: f64,
    probe_loss: f64,
    /// Loss on the link between two nodes, both ways (probes and exchanges).
    link_loss: BTreeMap<(PeerUrl, PeerUrl), f64>,
    /// Loss on everything to or from a node (its own link).
    node_loss: HashMap<PeerUrl, f64>,
    rng: StdRng,
    now: Timestamp,
    wire: Wire,
    traffic: Traffic,
}

impl MemoryNetwork {
    /// An empty network whose clock reads `now`; `seed` drives message drops.
    pub fn new(now: Timestamp, seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Net {
                nodes: HashMap::new(),
                cut: BTreeSet::new(),
                groups: BTreeMap::new(),
                drop_probability: 0.0,
                probe_loss: 0.0,
                link_loss: BTreeMap::new(),
                node_loss: HashMap::new(),
                rng: StdRng::seed_from_u64(seed),
                now,
                wire: Wire::Json,
                traffic: Traffic::default(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Net> {
        // A panic in another test thread must not hide this network's state.
        self.inner.lock()
    }

    /// Adds (or replaces) the node at `core.url()`, up, with CORS and 20 ms latency;
    /// returns its shared core.
    pub fn add(&self, core: Core, ip: IpAddr) -> Arc<Mutex<Core>> {
        let url = core.url().clone();
        let key = core.public_key();
        let core = Arc::new(Mutex::new(core));
        self.lock().nodes.insert(
            url,
            MemoryNode {
                core: core.clone(),
                key,
                ip,
                up: true,
                cors: true,
                latency: Duration::from_millis(20),
            },
        );
        core
    }

    /// The shared core of the node at `url`.
    pub fn core(&self, url: &PeerUrl) -> Option<Arc<Mutex<Core>>> {
        self.lock().nodes.get(url).map(|node| node.core.clone())
    }

    pub fn remove(&self, url: &PeerUrl) -> Option<MemoryNode> {
        self.lock().nodes.remove(url)
    }

    /// The URLs of all nodes, sorted.
    pub fn urls(&self) -> Vec<PeerUrl> {
        let mut urls: Vec<PeerUrl> = self.lock().nodes.keys().cloned().collect();
        urls.sort();
        urls
    }

    pub fn now(&self) -> Timestamp {
        self.lock().now
    }

    pub fn set_now(&self, now: Timestamp) {
        self.lock().now = now;
    }

    /// Moves the virtual clock forward and returns the new time.
    pub fn advance(&self, by: Duration) -> Timestamp {
        let mut net = self.lock();
        net.now = net.now.saturating_add(by);
        net.now
    }

    pub fn set_wire(&self, wire: Wire) {
        self.lock().wire = wire;
    }

    /// Each request is lost with this probability.
    pub fn set_drop_probability(&self, p: f64) {
        self.lock().drop_probability = p.clamp(0.0, 1.0);
    }

    /// Each probe (each attempt: a retry is another draw) is lost with this probability.
    pub fn set_probe_loss(&self, p: f64) {
        self.lock().probe_loss = p.clamp(0.0, 1.0);
    }

    /// Probes and exchanges between `a` and `b`, both ways, are lost with probability `p`
    /// (on top of any other loss); 0 removes it.
    pub fn set_link_loss(&self, a: &PeerUrl, b: &PeerUrl, p: f64) {
        let mut net = self.lock();
        for pair in [(a.clone(), b.clone()), (b.clone(), a.clone())] {
            if p > 0.0 {
                net.link_loss.insert(pair, p.clamp(0.0, 1.0));
            } else {
                net.link_loss.remove(&pair);
            }
        }
    }

    /// Everything to or from the node at `url` (its probes, the probes of it, exchanges
    /// either way) is lost with probability `p`: a lossy link of its own; 1 cuts the node
    /// off while it keeps running; 0 removes it.
    pub fn set_node_loss(&self, url: &PeerUrl, p: f64) {
        let mut net = self.lock();
        if p > 0.0 {
            net.node_loss.insert(url.clone(), p.clamp(0.0, 1.0));
        } else {
            net.node_loss.remove(url);
        }
    }

    /// Runs `f` on the core at `url`.
    pub fn with_core<T>(&self, url: &PeerUrl, f: impl FnOnce(&mut Core) -> T) -> Option<T> {
        let core = self.core(url)?;
        let mut core = core.lock();
        Some(f(&mut core))
    }

    /// Runs `f` on the node at `url` (to crash it, change its address...).
    pub fn with_node<T>(&self, url: &PeerUrl, f: impl FnOnce(&mut MemoryNode) -> T) -> Option<T> {
        self.lock().nodes.get_mut(url).map(f)
    }

    pub fn set_up(&self, url: &PeerUrl, up: bool) {
        self.with_node(url, |node| node.up = up);
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&self, a: &PeerUrl, b: &PeerUrl) {
        let mut net = self.lock();
        net.cut.insert((a.clone(), b.clone()));
        net.cut.insert((b.clone(), a.clone()));
    }

    pub fn heal(&self, a: &PeerUrl, b: &PeerUrl) {
        let mut net = self.lock();
        net.cut.remove(&(a.clone(), b.clone()));
        net.cut.remove(&(b.clone(), a.clone()));
    }

    /// Splits the network: nodes in different groups can't reach each other. Nodes not
    /// named are in group 0.
    pub fn partition(&self, groups: &[Vec<PeerUrl>]) {
        let mut net = self.lock();
        net.groups.clear();
        for (index, group) in groups.iter().enumerate() {
            for url in group {
                net.groups
                    .insert(url.clone(), u32::try_from(index).unwrap_or(u32::MAX));
            }
        }
    }

    /// Removes every partition and cut link.
    pub fn heal_all(&self) {
        let mut net = self.lock();
        net.groups.clear();
        net.cut.clear();
    }

    pub fn traffic(&self) -> Traffic {
        self.lock().traffic
    }

    pub fn reset_traffic(&self) {
        self.lock().traffic = Traffic::default();
    }

    /// One request/response between two nodes of the network.
    pub fn gossip(
        &self,
        from: &PeerUrl,
        to: &PeerUrl,
        request: &GossipRequest,
    ) -> Result<GossipResponse, TransportError> {
        let mut net = self.lock();
        if !net.linked(from, to) {
            net.traffic.failed += 1;
            return Err(TransportError::Unreachable(format!(
                "link {from} - {to} is cut"
            )));
        }
        if net.lost(from, to, 0.0) {
            net.traffic.failed += 1;
            return Err(TransportError::Timeout);
        }
        let ip = net
            .nodes
            .get(from)
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |n| n.ip);
        net.deliver(ip, to, request)
    }

    /// A request from any address, e.g. an attacker outside the network.
    pub fn send_from(
        &self,
        from_ip: IpAddr,
        to: &PeerUrl,
        request: &GossipRequest,
    ) -> Result<GossipResponse, TransportError> {
        self.lock().deliver(from_ip, to, request)
    }

    /// What a probe from `from` of `url` finds.
    pub fn probe(&self, from: &PeerUrl, url: &PeerUrl) -> ProbeOutcome {
        self.lock().probe(from, url)
    }

    /// What probes from `from` of each of `urls` find (one lock for all).
    pub fn probe_all<'a>(
        &self,
        from: &PeerUrl,
        urls: impl IntoIterator<Item = &'a PeerUrl>,
    ) -> Vec<ProbeOutcome> {
        let mut net = self.lock();
        urls.into_iter().map(|url| net.probe(from, url)).collect()
    }

    /// A [`Transport`] sending as the node at `from`.
    pub fn transport(&self, from: PeerUrl) -> MemoryTransport {
        MemoryTransport {
            net: self.clone(),
            from,
        }
    }
}

impl Net {
    fn linked(&self, a: &PeerUrl, b: &PeerUrl) -> bool {
        if self.groups.is_empty() && self.cut.is_empty() {
            return true;
        }
        let group = |url| self.groups.get(url).copied().unwrap_or(0);
        group(a) == group(b) && !self.cut.contains(&(a.clone(), b.clone()))
    }

    /// Whether a message from `from` to `to` is lost, with `base` the chance of any
    /// message of its kind; draws from the RNG only when some loss is set, so runs without
    /// loss are the same runs as before loss existed.
    fn lost(&mut self, from: &PeerUrl, to: &PeerUrl, base: f64) -> bool {
        if base <= 0.0 && self.link_loss.is_empty() && self.node_loss.is_empty() {
            return false;
        }
        let mut kept = 1.0 - base;
        if let Some(p) = self.link_loss.get(&(from.clone(), to.clone())) {
            kept *= 1.0 - p;
        }
        for url in [from, to] {
            if let Some(p) = self.node_loss.get(url) {
                kept *= 1.0 - p;
            }
        }
        kept < 1.0 && self.rng.random_bool((1.0 - kept).clamp(0.0, 1.0))
    }

    fn probe(&mut self, from: &PeerUrl, url: &PeerUrl) -> ProbeOutcome {
        let (ip, up) = match self.nodes.get(url) {
            Some(node) => (node.ip, node.up),
            None => return ProbeOutcome::unreachable(None),
        };
        if !up || !self.linked(from, url) || self.lost(from, url, self.probe_loss) {
            return ProbeOutcome::unreachable(Some(ip));
        }
        let Some(node) = self.nodes.get(url) else {
            return ProbeOutcome::unreachable(None);
        };
        let mut outcome = ProbeOutcome::healthy(node.key, node.latency, Some(node.ip));
        outcome.cors = node.cors;
        outcome
    }

    fn deliver(
        &mut self,
        from_ip: IpAddr,
        to: &PeerUrl,
        request: &GossipRequest,
    ) -> Result<GossipResponse, TransportError> {
        if matches!(request, GossipRequest::Digest { .. }) {
            self.traffic.exchanges += 1;
        }
        if self.drop_probability > 0.0 && self.rng.random_bool(self.drop_probability) {
            self.traffic.failed += 1;
            return Err(TransportError::Timeout);
        }
        let (now, wire) = (self.now, self.wire);
        let Some(node) = self.nodes.get_mut(to).filter(|n| n.up) else {
            self.traffic.failed += 1;
            return Err(TransportError::Unreachable(format!("{to} is down")));
        };
        let (request, request_bytes) = through_wire(wire, request)?;
        let answer = exchange::serve(&node.core, request, from_ip, || now);
        let response = match answer {
            Ok(response) => response,
            Err(err) => {
                self.traffic.failed += 1;
                return Err(TransportError::Refused(err.kind().to_owned()));
            }
        };
        let (response, response_bytes) = through_wire(wire, &response)?;
        self.traffic.round_trips += 1;
        self.traffic.bytes += (request_bytes + response_bytes) as u64;
        Ok(response)
    }
}

/// Sends a message over the chosen wire: through JSON (counting bytes) or as a clone.
fn through_wire<T>(wire: Wire, message: &T) -> Result<(T, usize), TransportError>
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    match wire {
        Wire::Direct => Ok((message.clone(), 0)),
        Wire::Json => {
            let bytes =
                serde_json::to_vec(message).map_err(|e| TransportError::Decode(e.to_string()))?;
            let back = serde_json::from_slice(&bytes)
                .map_err(|e| TransportError::Decode(e.to_string()))?;
            Ok((back, bytes.len()))
        }
    }
}

/// The in-memory [`Transport`] of one node.
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    net: MemoryNetwork,
    from: PeerUrl,
}

impl Transport for MemoryTransport {
    async fn gossip(
        &self,
        to: &PeerUrl,
        request: GossipRequest,
    ) -> Result<GossipResponse, TransportError> {
        self.net.gossip(&self.from, to, &request)
    }

    async fn probe(&self, url: &PeerUrl) -> ProbeOutcome {
        self.net.probe(&self.from, url)
    }
}
