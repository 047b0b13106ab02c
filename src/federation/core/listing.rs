//! Listing: which members are healthy enough for `/servers`, within the per-address and
//! per-subnet limits, and the views of them that `/servers` and the DNS pool show.

use super::*;

/// The most weight a node other than a `peers.toml` node with an operator's weight counts
/// with before it has been listed here for [`WEIGHT_HISTORY`]: a weight is a signed claim
/// that costs nothing to make, and a node claiming 100 would otherwise draw almost all of
/// the fills and DNS answers that rank by weight.
pub const NEW_NODE_WEIGHT: f64 = 1.0;
/// The most weight any node counts with, itself included, once it has the history.
pub const WEIGHT_CAP: f64 = 2.0;
/// How long a node must have been listed by this node's own probes, without a break,
/// before it may count with more than [`NEW_NODE_WEIGHT`].
pub const WEIGHT_HISTORY: Duration = Duration::from_secs(24 * 3600);

/// The weight a node counts with in `/servers` (and so in status.js), in the choice of a
/// resource's owner for fills, and in DNS answers: what it claims, but at most
/// [`NEW_NODE_WEIGHT`] until it has been listed for [`WEIGHT_HISTORY`] (`listed_for`;
/// `None` when it is not listed now), then at most [`WEIGHT_CAP`]. A claim below 1 (a
/// node asking for less traffic) is taken as it is.
pub fn bounded_weight(claimed: f64, listed_for: Option<Duration>) -> f64 {
    let cap = match listed_for {
        Some(listed) if listed >= WEIGHT_HISTORY => WEIGHT_CAP,
        _ => NEW_NODE_WEIGHT,
    };
    if claimed.is_nan() {
        return 0.0;
    }
    claimed.min(cap)
}

/// A node the DNS pool may answer with ([`Core::pool_nodes`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolNode {
    pub key: PublicKey,
    /// Its public URL, as `/servers` shows it.
    pub url: String,
    pub weight: f64,
    /// The pool addresses it signed that this node's own probes reached it at (all of
    /// them for this node itself).
    pub addresses: Vec<IpAddr>,
}

impl Core {
    /// Keys of the listed nodes (self not included): healthy by this node's own probes,
    /// at most `max_listed_per_ip` per public address and `max_listed_per_subnet` per /24
    /// (/56), one per URL; the best scored and longest known win those limits.
    pub fn listed_keys(&self, now: Timestamp) -> BTreeSet<PublicKey> {
        let mut candidates: Vec<(&PublicKey, &Member)> = self
            .members
            .iter()
            .filter(|(_, m)| m.is_listable())
            .filter(|(_, m)| check_freshness(m.desc.issued_at(), now, &self.freshness).is_ok())
            .collect();
        if !self.limits_bind(&candidates) {
            return candidates.into_iter().map(|(key, _)| *key).collect();
        }
        candidates.sort_by(|(ka, a), (kb, b)| {
            b.score
                .value()
                .total_cmp(&a.score.value())
                .then(a.first_seen.cmp(&b.first_seen))
                .then(ka.cmp(kb))
        });
        let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
        let mut per_subnet: HashMap<IpAddr, usize> = HashMap::new();
        let mut urls: HashSet<&PeerUrl> = HashSet::new();
        let mut listed = BTreeSet::new();
        for (key, member) in candidates {
            if member.last_verdict != Some(ProbeVerdict::Good) && self.url_has_good_other(member) {
                continue;
            }
            if urls.contains(member.desc.url()) {
                continue;
            }
            // Private addresses only appear with --allow-private-peers (local clusters),
            // where many nodes on one address are the point.
            if let Some(ip) = member
                .resolved_ip
                .filter(|ip| !is_forbidden_probe_target(*ip))
            {
                let subnet = subnet_of(ip);
                if per_ip.get(&ip).copied().unwrap_or(0) >= self.settings.max_listed_per_ip
                    || per_subnet.get(&subnet).copied().unwrap_or(0)
                        >= self.settings.max_listed_per_subnet
                {
                    continue;
                }
                *per_ip.entry(ip).or_default() += 1;
                *per_subnet.entry(subnet).or_default() += 1;
            }
            urls.insert(member.desc.url());
            listed.insert(*key);
        }
        listed
    }

    /// Whether any per-address limit or URL clash applies to `candidates`; usually none
    /// does, and every candidate is listed without sorting.
    pub(super) fn limits_bind(&self, candidates: &[(&PublicKey, &Member)]) -> bool {
        let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
        let mut per_subnet: HashMap<IpAddr, usize> = HashMap::new();
        let mut urls: HashSet<&PeerUrl> = HashSet::with_capacity(candidates.len());
        for (_, member) in candidates {
            if !urls.insert(member.desc.url()) {
                return true;
            }
            if let Some(ip) = member
                .resolved_ip
                .filter(|ip| !is_forbidden_probe_target(*ip))
            {
                let on_ip = per_ip.entry(ip).or_default();
                *on_ip += 1;
                let over_ip = *on_ip > self.settings.max_listed_per_ip;
                let in_subnet = per_subnet.entry(subnet_of(ip)).or_default();
                *in_subnet += 1;
                if over_ip || *in_subnet > self.settings.max_listed_per_subnet {
                    return true;
                }
            }
        }
        false
    }

    /// Another key at the same URL passed its last probe (so this one is the stale one).
    pub(super) fn url_has_good_other(&self, member: &Member) -> bool {
        self.by_url.get(member.desc.url()).is_some_and(|slot| {
            slot.keys
                .as_slice()
                .iter()
                .filter(|k| **k != member.desc.key())
                .filter_map(|k| self.members.get(k))
                .any(|m| m.last_verdict == Some(ProbeVerdict::Good))
        })
    }

    /// The nodes the DNS pool may answer with: this node if it serves the pool, then every
    /// listed node that serves it and whose last probe was good, each with only those of
    /// its signed pool addresses whose latest probe at the pool port, by this node, was
    /// good and recent. This node itself too: it answers with its own address only while
    /// its own probe of it, made as a client would connect, succeeds, so a node whose HTTP
    /// is dead (or whose port 80 is not served) does not send the pool's traffic there.
    /// What another node claims is never enough: an address at which no probe of this
    /// node found that node's key is not answered, so no descriptor can point the pool's
    /// traffic at someone else's server, and a node whose last probe failed leaves the
    /// answers at once (listing waits for the score to fall).
    pub fn pool_nodes(&self, now: Timestamp) -> Vec<PoolNode> {
        let mut out = Vec::new();
        if !self.own.leaving() {
            let addresses = self.reached(self.own.pool(), &self.own_pool_good, now);
            if !addresses.is_empty() {
                out.push(PoolNode {
                    key: self.own.key(),
                    url: self.own.url().to_string(),
                    weight: self.own_weight(),
                    addresses,
                });
            }
        }
        for key in self.listed_keys(now) {
            let Some(member) = self.members.get(&key) else {
                continue;
            };
            if member.last_verdict != Some(ProbeVerdict::Good) {
                continue;
            }
            let addresses = self.reached(member.desc.pool(), &member.pool_good, now);
            if addresses.is_empty() {
                continue;
            }
            out.push(PoolNode {
                key,
                url: member.desc.url().to_string(),
                weight: self.effective_weight(member, now),
                addresses,
            });
        }
        out
    }

    /// Those of `signed` whose good probe in `good` is recent: within two probe intervals
    /// and a timeout, so a node whose probes stopped (its driver ended) drops out too.
    fn reached(
        &self,
        signed: &[IpAddr],
        good: &[(IpAddr, Timestamp)],
        now: Timestamp,
    ) -> Vec<IpAddr> {
        let fresh = self
            .settings
            .probe_interval
            .saturating_mul(2)
            .saturating_add(self.settings.probe_timeout);
        signed
            .iter()
            .copied()
            .filter(|ip| {
                good.iter()
                    .any(|(at_ip, at)| at_ip == ip && now.duration_since(*at) <= fresh)
            })
            .collect()
    }

    /// `/servers`: the listed nodes, this node first (unless it has left), then by URL.
    pub fn servers(&self, now: Timestamp) -> Vec<ServerView> {
        let mut out = Vec::new();
        if !self.own.leaving() {
            out.push(ServerView {
                url: self.own.url().to_string(),
                key: self.own.key().to_base64(),
                weight: self.own_weight(),
                score: score::MAX,
                latency_ms: 0,
                version: self.own.version().to_owned(),
            });
        }
        let mut listed: Vec<ServerView> = self
            .listed_keys(now)
            .iter()
            .filter_map(|key| self.members.get(key))
            .map(|m| ServerView {
                url: m.desc.url().to_string(),
                key: m.desc.key().to_base64(),
                weight: self.effective_weight(m, now),
                score: round2(m.score.value()),
                latency_ms: m.latency.map_or(0, millis),
                version: m.desc.version().to_owned(),
            })
            .collect();
        listed.sort_by(|a, b| a.url.cmp(&b.url).then(a.key.cmp(&b.key)));
        out.extend(listed);
        out
    }

    /// `/servers?all=true`: every known node with its state, this node first.
    pub fn members(&self, now: Timestamp) -> Vec<MemberView> {
        let listed = self.listed_keys(now);
        let mut out = vec![MemberView {
            url: self.own.url().to_string(),
            key: self.own.key().to_base64(),
            state: if self.own.leaving() {
                MemberState::Left
            } else {
                MemberState::Listed
            },
            score: score::MAX,
            weight: self.own_weight(),
            version: self.own.version().to_owned(),
            latency_ms: Some(0),
            issued_at: self.own.issued_at().as_unix_ms(),
            last_probe: None,
            last_probe_at: None,
            seed: false,
            is_self: true,
        }];
        let mut rest: Vec<MemberView> = self
            .members
            .iter()
            .map(|(key, m)| MemberView {
                url: m.desc.url().to_string(),
                key: key.to_base64(),
                state: member_state(m, listed.contains(key)),
                score: round2(m.score.value()),
                weight: self.effective_weight(m, now),
                version: m.desc.version().to_owned(),
                latency_ms: m.latency.map(millis),
                issued_at: m.desc.issued_at().as_unix_ms(),
                last_probe: m.last_verdict,
                last_probe_at: m.last_probe_at.map(Timestamp::as_unix_ms),
                seed: m.seed,
                is_self: false,
            })
            .collect();
        rest.sort_by(|a, b| a.url.cmp(&b.url).then(a.key.cmp(&b.key)));
        out.extend(rest);
        out
    }

    /// How many known nodes are in each state (self not counted): what `members` would
    /// show, without building it.
    pub fn member_counts(&self, now: Timestamp) -> MemberCounts {
        let listed = self.listed_keys(now);
        let mut counts = MemberCounts::default();
        for (key, member) in &self.members {
            *match member_state(member, listed.contains(key)) {
                MemberState::Listed => &mut counts.listed,
                MemberState::Probation => &mut counts.probation,
                MemberState::Failing => &mut counts.failing,
                MemberState::Left => &mut counts.left,
            } += 1;
        }
        counts
    }

    /// Whether a node at `url` is named in `peers.toml` or has shown itself healthy (a
    /// score above zero takes good probes: gossip-learned nodes start at 0). A driver
    /// that rations probes lets these through first: a flood of made-up nodes must not
    /// delay the probes of the real ones.
    pub fn is_proven(&self, url: &PeerUrl) -> bool {
        self.by_url.get(url).is_some_and(|slot| {
            slot.keys
                .as_slice()
                .iter()
                .filter_map(|key| self.members.get(key))
                .any(|m| {
                    m.seed || m.score.value() > 0.0 || m.last_verdict == Some(ProbeVerdict::Good)
                })
        })
    }

    /// The weight `member` counts with: the operator's weight from `peers.toml` wins over
    /// the node's own claim; a claim is bounded by the node's history here
    /// ([`bounded_weight`]).
    pub(super) fn effective_weight(&self, member: &Member, now: Timestamp) -> f64 {
        match self.seeds.get(member.desc.url()) {
            Some(Peer {
                weight: Some(w), ..
            }) if member.seed => *w,
            _ => bounded_weight(
                member.desc.weight(),
                member.listed_since.map(|since| now.duration_since(since)),
            ),
        }
    }

    /// The weight this node counts itself with: its own claim within [`WEIGHT_CAP`] (its
    /// history with itself is complete), as every other node counts it once it is known.
    pub(super) fn own_weight(&self) -> f64 {
        bounded_weight(self.own.weight(), Some(WEIGHT_HISTORY))
    }
}
