//! The sans-IO federation core: messages, time and randomness in; what to send out.
//!
//! Nothing here touches a socket, a clock or global randomness, so a thousand cores can run
//! in one test process in virtual time (see `testkit::sim`). The async drivers call:
//!
//! - [`Core::tick`] when [`Core::next_wakeup`] has passed: it returns probes and gossip to send;
//! - [`super::exchange::serve`] for each `POST /gossip` the node receives;
//! - [`super::exchange::check_answer`] and [`super::exchange::take_answer`] for each answer
//!   to its own gossip, sending the follow-up request they may return to the same peer;
//! - [`Core::on_probe_result`] with what each probe found;
//! - [`Core::servers`] / [`Core::members`] for `/servers`, and [`Core::leave`] on SIGTERM.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, RngExt as _};
use serde::{Deserialize, Serialize};

use super::address::{canonical_ip, is_forbidden_probe_target, subnet_of};
use super::descriptor::{
    Descriptor, DescriptorError, Freshness, SignatureCache, SignedDescriptor, VerifiedDescriptor,
    check_freshness,
};
use super::digest::{BUCKET_HASH_LEN, BUCKETS, SetDigest, bucket_hash, bucket_of};
use super::identity::Identity;
use super::key::PublicKey;
use super::message::{
    Entry, GossipRequest, GossipResponse, MAX_DESCRIPTORS_PER_MESSAGE, MAX_ENTRIES_PER_MESSAGE,
    MAX_WANTS_PER_MESSAGE, PROTOCOL_VERSION,
};
use super::peer_url::PeerUrl;
use super::peers::Peer;
use super::ratelimit::RateLimiter;
use super::score::{self, Score};
use super::settings::{Settings, SettingsError};
use super::time::Timestamp;

/// Version of the persisted [`State`] format.
pub const STATE_FORMAT: u32 = 1;
/// After this many consecutive failed probes a node is probed less and less often (up to
/// 32 times the probe interval), so dead or fake URLs cost little.
const BACKOFF_AFTER_FAILURES: u32 = 2;
const MAX_BACKOFF_SHIFT: u32 = 5;
/// Keys forgotten on eviction are remembered (with their issue time) up to this many times
/// the member cap, so the same descriptor gossiped back is refused cheaply.
const FORGOTTEN_PER_MEMBER: usize = 4;
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Something the driver should do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `POST {to}/gossip` with `request`; pass the answer to [`Core::handle_gossip_response`]
    /// and send the follow-up request it returns, if any, to the same node.
    Gossip { to: PeerUrl, request: GossipRequest },
    /// `GET {url}/health`; pass what happened to [`Core::on_probe_result`].
    Probe { url: PeerUrl },
}

/// The facts a probe established; the core decides whether they make a good probe.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeOutcome {
    /// `/health` answered 200 with a body that parsed, within the driver's timeout.
    pub answered: bool,
    /// Time from sending the request to the end of the answer.
    pub latency: Duration,
    /// The `key` field of the `/health` answer.
    pub key_seen: Option<PublicKey>,
    /// The answer carried `Access-Control-Allow-Origin: *`, without which browsers can't
    /// use the node.
    pub cors: bool,
    /// The address the URL resolved to and the probe connected to.
    pub resolved_ip: Option<IpAddr>,
    /// The driver did not send the probe: the address is loopback, private or similar and
    /// `--allow-private-peers` is off.
    pub forbidden: bool,
}

impl ProbeOutcome {
    /// No answer (refused, timed out, DNS failure).
    pub fn unreachable(resolved_ip: Option<IpAddr>) -> Self {
        Self {
            answered: false,
            latency: Duration::ZERO,
            key_seen: None,
            cors: false,
            resolved_ip,
            forbidden: false,
        }
    }

    /// Not sent: the address is forbidden.
    pub fn forbidden(resolved_ip: Option<IpAddr>) -> Self {
        Self {
            forbidden: true,
            ..Self::unreachable(resolved_ip)
        }
    }

    /// A healthy answer naming `key`.
    pub fn healthy(key: PublicKey, latency: Duration, resolved_ip: Option<IpAddr>) -> Self {
        Self {
            answered: true,
            latency,
            key_seen: Some(key),
            cors: true,
            resolved_ip,
            forbidden: false,
        }
    }
}

/// What the core made of a probe, kept per node for `/servers?all=true`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeVerdict {
    Good,
    NoAnswer,
    TooSlow,
    WrongKey,
    NoCors,
    Forbidden,
}

/// A known node's standing, as `/servers?all=true` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Healthy: in `/servers`.
    Listed,
    /// Not (yet) listed, but its last probe did not fail: new, recovering, or held back by
    /// the per-address limits.
    Probation,
    /// Its last probe failed.
    Failing,
    /// Sent a signed leave.
    Left,
}

/// One entry of `/servers`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerView {
    pub url: String,
    pub key: String,
    pub weight: f64,
    pub score: f64,
    pub latency_ms: u64,
    pub version: String,
}

/// One entry of `/servers?all=true`'s `members`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemberView {
    pub url: String,
    pub key: String,
    pub state: MemberState,
    pub score: f64,
    pub weight: f64,
    pub version: String,
    pub latency_ms: Option<u64>,
    /// When the node issued the descriptor held, Unix milliseconds.
    pub issued_at: u64,
    pub last_probe: Option<ProbeVerdict>,
    /// When that probe came back, Unix milliseconds.
    pub last_probe_at: Option<u64>,
    /// Named in this node's `peers.toml`.
    pub seed: bool,
    /// This node itself.
    #[serde(rename = "self")]
    pub is_self: bool,
}

/// Why a descriptor was not taken. None of these changes the members, scores or digest;
/// two (noted) only remember the refused descriptor so it is not fetched again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// Failed verification (form, limits, freshness, signature).
    #[error(transparent)]
    Invalid(#[from] DescriptorError),
    /// Older than the descriptor held for its key: a replay or a slow path.
    #[error("older than the descriptor held for this key")]
    Stale,
    /// Same issue time as the descriptor held: already known (or a replay).
    #[error("same issue time as the descriptor held for this key")]
    Replayed,
    /// This key was evicted at this issue time or later; only a newer descriptor is taken.
    #[error("this node was forgotten at a later issue time")]
    Forgotten,
    /// `peers.toml` pins this URL to another key. Remembered like `ClaimsOwnUrl`.
    #[error("{url} is pinned to another key in peers.toml")]
    PinnedKeyMismatch { url: String },
    /// Claims this node's own URL under another key. Remembered (like an eviction) so it
    /// is not fetched again; a newer descriptor of that key is judged afresh.
    #[error("claims this node's own URL under another key")]
    ClaimsOwnUrl,
    /// The member list is full and no member may be evicted for a newcomer.
    #[error("member list is full")]
    Full,
}

impl MergeError {
    /// A short, stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid(err) => err.kind(),
            Self::Stale => "stale",
            Self::Replayed => "replayed",
            Self::Forgotten => "forgotten",
            Self::PinnedKeyMismatch { .. } => "pinned_key_mismatch",
            Self::ClaimsOwnUrl => "claims_own_url",
            Self::Full => "full",
        }
    }
}

/// What taking a descriptor changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// A node not known before.
    Added,
    /// A newer descriptor of a known node.
    Updated,
    /// A known or new node's leave.
    Left,
    /// Someone holds a descriptor signed with this node's key that is at least as new as
    /// its own (a restart after the clock went back, or a copied state directory): this
    /// node re-issued its descriptor with a later time so its own wins.
    OwnReissued,
}

/// Why a gossip message was refused as a whole. Each variant says what changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GossipError {
    /// The source sent too many requests. Nothing was read or changed.
    #[error("too many gossip requests; retry in {} ms", retry_after.as_millis())]
    RateLimited { retry_after: Duration },
    /// A protocol version this node does not speak. Nothing changed.
    #[error("unsupported gossip protocol version {0}")]
    UnsupportedVersion(u32),
    /// A list longer than the protocol allows. Nothing was read or changed.
    #[error("{what}: {count} items, more than the limit of {max}")]
    TooLarge {
        what: &'static str,
        count: usize,
        max: usize,
    },
    /// A bucket index outside the digest. Nothing changed.
    #[error("bucket {0} does not exist")]
    BadBucket(u8),
    /// Descriptor number `index` (0-based) of the message had a forged signature, which
    /// no honest node sends (each verifies before it forwards). The descriptors before it
    /// were merged; it and the rest were not; a request's source loses its rate budget.
    #[error("descriptor {index} has a forged signature")]
    Forged { index: usize },
}

impl GossipError {
    /// A short, stable name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::TooLarge { .. } => "too_large",
            Self::BadBucket(_) => "bad_bucket",
            Self::Forged { .. } => "forged",
        }
    }
}

/// A gossip request that passed the rate limit and the message limits
/// ([`Core::admit_gossip`]); [`Core::answer_gossip`] takes it from there.
#[derive(Debug)]
pub struct AdmittedGossip {
    request: GossipRequest,
    from_ip: IpAddr,
}

impl AdmittedGossip {
    /// The descriptors the request pushes (none for a digest).
    pub fn descriptors(&self) -> &[SignedDescriptor] {
        match &self.request {
            GossipRequest::Sync { push, .. } => push,
            GossipRequest::Digest { .. } => &[],
        }
    }
}

/// The signature checks merging a message would do, taken out of the core so that they can
/// run while nothing holds it ([`Core::signature_checks`]). Running them fills the core's
/// [`SignatureCache`]; the merge that follows finds each result there and does no
/// cryptography itself. Skipping them changes nothing but where the work is done.
#[derive(Debug, Default)]
pub struct SignatureChecks {
    pending: Vec<SignedDescriptor>,
    freshness: Option<Freshness>,
    cache: Option<Arc<SignatureCache>>,
}

impl SignatureChecks {
    /// Descriptors waiting to be checked.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Checks the descriptors in order, keeping the good ones in the cache. Stops at the
    /// first forged signature: the merge refuses the rest of the message there anyway, so
    /// a forger gets no more checks out of a node than before. Returns how many passed.
    pub fn run(&self, now: Timestamp) -> usize {
        let (Some(freshness), Some(cache)) = (&self.freshness, &self.cache) else {
            return 0;
        };
        let mut passed = 0;
        for descriptor in &self.pending {
            match descriptor.verify(now, freshness, Some(cache)) {
                Ok(_) => passed += 1,
                Err(DescriptorError::BadSignature) => break,
                // Expired, malformed and the like: the merge refuses them with the same
                // cheap checks that found them here, and goes on with the message.
                Err(_) => {}
            }
        }
        passed
    }
}

/// Counters for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Gossip requests answered.
    pub requests_served: u64,
    /// Gossip requests refused, by [`GossipError::kind`].
    pub requests_refused: BTreeMap<&'static str, u64>,
    /// Descriptors taken.
    pub descriptors_accepted: u64,
    /// Descriptors refused, by [`MergeError::kind`].
    pub descriptors_rejected: BTreeMap<&'static str, u64>,
    /// Members evicted to make room.
    pub evictions: u64,
    pub probes_good: u64,
    pub probes_failed: u64,
    /// Times a descriptor signed with this node's own key and at least as new as its own
    /// arrived.
    pub own_key_seen_elsewhere: u64,
    /// Nodes that came back from an outage with a newer descriptor (a restart) and were
    /// given back the score they had before it, less one failed probe.
    pub outages_forgiven: u64,
}

/// The persisted part of a core: known nodes and what the probes found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub format: u32,
    /// Whose state this is; a state saved under another key is not restored.
    pub key: PublicKey,
    /// Issue time of the node's last descriptor, so a restart issues a later one even if
    /// the clock went back.
    pub own_issued_at: Timestamp,
    pub members: Vec<SavedMember>,
}

/// One known node in a [`State`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedMember {
    pub descriptor: SignedDescriptor,
    pub score: f64,
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub resolved_ip: Option<IpAddr>,
    pub first_seen: Timestamp,
    /// The score before the current run of failed probes, if the node had passed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<f64>,
}

/// What [`Core::restore`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub restored: usize,
    /// Saved descriptors refused, by [`MergeError::kind`] (expired ones are the usual case).
    pub rejected: BTreeMap<&'static str, usize>,
    /// The state was saved by another key or in an unknown format, and was ignored.
    pub ignored: Option<String>,
}

#[derive(Clone, Debug)]
struct Member {
    desc: VerifiedDescriptor,
    score: Score,
    /// Named in `peers.toml` (URL, and key if pinned).
    seed: bool,
    probes: u32,
    good_probes: u32,
    consecutive_failures: u32,
    last_verdict: Option<ProbeVerdict>,
    last_probe_at: Option<Timestamp>,
    latency: Option<Duration>,
    resolved_ip: Option<IpAddr>,
    first_seen: Timestamp,
    /// The score this node had earned when its last run of failed probes began, kept until
    /// its score is back where a restart would put it (see `Core::replace`, which uses it
    /// up). `None` if it never passed a probe. Kept past the first good probe because the
    /// restarted process often answers a probe before its new descriptor arrives by gossip.
    standing: Option<Score>,
}

impl Member {
    fn is_listable(&self) -> bool {
        !self.desc.leaving() && self.good_probes > 0 && self.score.is_listable()
    }
}

/// The nodes claiming one URL, with what the probe schedule and the choice of gossip
/// partners need to know about them, kept up to date by [`Core::refresh_slot`] (both run
/// every round over every URL, so they must not look up members).
#[derive(Clone, Debug, Default)]
struct UrlSlot {
    keys: Keys,
    /// `None` while every node at the URL has left: they are not probed.
    next_probe: Option<Timestamp>,
    /// What the nodes at this URL are as gossip partners; `None` if all have left.
    class: Option<PartnerClass>,
    /// Fewest consecutive failed probes among them, for the probe backoff.
    failures: u32,
}

/// The keys at one URL: almost always one, kept inline so a probe result reaches its
/// member without another pointer to follow.
#[derive(Clone, Debug, Default)]
enum Keys {
    #[default]
    None,
    One(PublicKey),
    Many(Vec<PublicKey>),
}

impl Keys {
    fn as_slice(&self) -> &[PublicKey] {
        match self {
            Self::None => &[],
            Self::One(key) => std::slice::from_ref(key),
            Self::Many(keys) => keys,
        }
    }

    fn push(&mut self, key: PublicKey) {
        *self = match std::mem::take(self) {
            Self::None => Self::One(key),
            Self::One(first) => Self::Many(vec![first, key]),
            Self::Many(mut keys) => {
                keys.push(key);
                Self::Many(keys)
            }
        };
    }

    fn remove(&mut self, key: &PublicKey) {
        let mut rest: Vec<PublicKey> = self
            .as_slice()
            .iter()
            .filter(|k| *k != key)
            .copied()
            .collect();
        *self = match rest.len() {
            0 => Self::None,
            1 => Self::One(rest.remove(0)),
            _ => Self::Many(rest),
        };
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

/// Accumulates a [`UrlSlot`]'s summary over the nodes at its URL.
#[derive(Default)]
struct SlotSummary {
    failures: Option<u32>,
    verified: bool,
    unprobed: bool,
}

impl SlotSummary {
    fn add(&mut self, member: &Member) {
        if member.desc.leaving() {
            return;
        }
        let failures = member.consecutive_failures;
        self.failures = Some(self.failures.map_or(failures, |f| f.min(failures)));
        self.verified |= member.good_probes > 0 && failures == 0;
        self.unprobed |= member.probes == 0;
    }

    fn apply(self, slot: &mut UrlSlot) {
        slot.class = match self.failures {
            None => None,
            Some(_) if self.verified => Some(PartnerClass::Verified),
            Some(_) if self.unprobed => Some(PartnerClass::Unprobed),
            Some(_) => Some(PartnerClass::Failing),
        };
        slot.failures = self.failures.unwrap_or(0);
        if slot.class.is_none() {
            slot.next_probe = None;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PartnerClass {
    /// Its last probe was good.
    Verified,
    /// Not probed yet.
    Unprobed,
    /// Its probes fail.
    Failing,
}

/// Evicted keys with the issue time they were evicted at, oldest first.
#[derive(Clone, Debug, Default)]
struct Forgotten {
    at: HashMap<PublicKey, Timestamp>,
    order: VecDeque<(PublicKey, Timestamp)>,
}

impl Forgotten {
    fn blocks(&self, key: &PublicKey, issued_at: Timestamp) -> bool {
        self.at.get(key).is_some_and(|&t| issued_at <= t)
    }

    fn insert(&mut self, key: PublicKey, issued_at: Timestamp, cap: usize) {
        self.at.insert(key, issued_at);
        self.order.push_back((key, issued_at));
        while self.order.len() > cap {
            if let Some((old, t)) = self.order.pop_front()
                && self.at.get(&old) == Some(&t)
            {
                self.at.remove(&old);
            }
        }
    }

    /// Drops records of descriptors that have expired anyway.
    fn prune(&mut self, oldest: Timestamp) {
        while let Some(&(key, t)) = self.order.front() {
            if t >= oldest {
                break;
            }
            self.order.pop_front();
            if self.at.get(&key) == Some(&t) {
                self.at.remove(&key);
            }
        }
    }
}

/// How many known nodes are in each [`MemberState`] ([`Core::member_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberCounts {
    pub listed: usize,
    pub probation: usize,
    pub failing: usize,
    pub left: usize,
}

fn member_state(member: &Member, listed: bool) -> MemberState {
    if member.desc.leaving() {
        MemberState::Left
    } else if listed {
        MemberState::Listed
    } else if member.consecutive_failures > 0 {
        MemberState::Failing
    } else {
        MemberState::Probation
    }
}

/// Members a newcomer may replace, in the order they go (see `Core::next_victim`), worked
/// out when first needed.
#[derive(Debug, Default)]
struct Victims {
    /// Worst last.
    queue: Option<Vec<PublicKey>>,
}

impl Victims {
    fn invalidate(&mut self) {
        self.queue = None;
    }
}

/// Whether a newcomer may replace `member`: it left, or its probes fail and it is not listed.
fn is_evictable(member: &Member) -> bool {
    member.desc.leaving() || (member.consecutive_failures > 0 && !member.score.is_listable())
}

/// Eviction order: `Less` when `a` goes before `b` (left first, then the lowest score, then
/// the most recently learned; the key settles ties).
fn eviction_order(ka: &PublicKey, a: &Member, kb: &PublicKey, b: &Member) -> std::cmp::Ordering {
    (!a.desc.leaving())
        .cmp(&!b.desc.leaving())
        .then(a.score.value().total_cmp(&b.score.value()))
        .then(b.first_seen.cmp(&a.first_seen))
        .then(ka.cmp(kb))
}

/// One node's view of the federation. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Core {
    identity: Identity,
    settings: Settings,
    freshness: Freshness,
    own: VerifiedDescriptor,
    members: BTreeMap<PublicKey, Member>,
    /// Keys claiming each URL (usually one; more when someone impersonates a URL or a node
    /// was reinstalled under a new key) and when the URL is probed next: probes go per URL.
    by_url: BTreeMap<PeerUrl, UrlSlot>,
    seeds: BTreeMap<PeerUrl, Peer>,
    forgotten: Forgotten,
    buckets: [[u8; BUCKET_HASH_LEN]; BUCKETS],
    dirty_buckets: u16,
    limiter: RateLimiter,
    next_gossip_at: Timestamp,
    next_prune_at: Timestamp,
    signature_cache: Option<Arc<SignatureCache>>,
    stats: Stats,
}

impl Core {
    /// A core for `identity` with `config`, starting from the nodes of `peers.toml`
    /// (entries naming this node's own URL are skipped: a shared file lists everyone).
    pub fn new(
        identity: Identity,
        settings: Settings,
        peers: Vec<Peer>,
        now: Timestamp,
    ) -> Result<Self, SettingsError> {
        settings.validate()?;
        let own = Descriptor {
            url: settings.public_url.clone(),
            key: identity.public_key(),
            version: settings.version.clone(),
            weight: settings.weight,
            issued_at: now,
            leaving: false,
        }
        .sign(&identity)?;
        let seeds = peers
            .into_iter()
            .filter(|peer| peer.url != settings.public_url)
            .map(|peer| (peer.url.clone(), peer))
            .collect();
        let limiter = RateLimiter::new(
            settings.gossip_burst,
            settings.gossip_requests_per_interval,
            settings.gossip_interval,
            settings.max_rate_limited_sources,
        );
        Ok(Self {
            identity,
            freshness: settings.freshness(),
            settings,
            own,
            members: BTreeMap::new(),
            by_url: BTreeMap::new(),
            seeds,
            forgotten: Forgotten::default(),
            buckets: [[0; BUCKET_HASH_LEN]; BUCKETS],
            dirty_buckets: u16::MAX,
            limiter,
            next_gossip_at: now,
            next_prune_at: now.saturating_add(PRUNE_EVERY),
            signature_cache: None,
            stats: Stats::default(),
        })
    }

    /// Shares a cache of verified signatures with other cores of this process (simulations);
    /// each core still refuses every forged signature.
    pub fn set_signature_cache(&mut self, cache: Arc<SignatureCache>) {
        self.signature_cache = Some(cache);
    }

    pub fn public_key(&self) -> PublicKey {
        self.own.key()
    }

    pub fn url(&self) -> &PeerUrl {
        self.own.url()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// This node's current descriptor.
    pub fn own_descriptor(&self) -> &VerifiedDescriptor {
        &self.own
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether [`Core::leave`] was called.
    pub fn has_left(&self) -> bool {
        self.own.leaving()
    }

    /// Number of known nodes, self not counted.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Issue time of the descriptor held for `key` (self included).
    pub fn held(&self, key: &PublicKey) -> Option<Timestamp> {
        if *key == self.own.key() {
            return Some(self.own.issued_at());
        }
        self.members.get(key).map(|m| m.desc.issued_at())
    }

    /// The time by which [`Core::tick`] should be called next.
    pub fn next_wakeup(&self) -> Timestamp {
        let mut at = self.next_gossip_at.min(self.next_prune_at).min(
            self.own
                .issued_at()
                .saturating_add(self.settings.refresh_interval),
        );
        if let Some(due) = self
            .by_url
            .values()
            .filter_map(|slot| slot.next_probe)
            .min()
        {
            at = at.min(due);
        }
        at
    }

    /// Changes this node's weight, re-issuing its descriptor.
    pub fn set_weight(&mut self, weight: f64, now: Timestamp) -> Result<(), DescriptorError> {
        let mut descriptor = self.own.descriptor().clone();
        descriptor.weight = weight;
        descriptor.issued_at = now.max(
            self.own
                .issued_at()
                .saturating_add(Duration::from_millis(1)),
        );
        self.own = descriptor.sign(&self.identity)?;
        self.settings.weight = weight;
        self.mark_dirty(&self.own.key());
        Ok(())
    }

    /// Timers: refreshes the own descriptor, forgets expired ones, and returns the probes
    /// and gossip exchanges that are due. Returns nothing once the node has left.
    pub fn tick<R: Rng + ?Sized>(&mut self, now: Timestamp, rng: &mut R) -> Vec<Action> {
        if self.own.leaving() {
            return Vec::new();
        }
        let mut actions = Vec::new();
        if now
            >= self
                .own
                .issued_at()
                .saturating_add(self.settings.refresh_interval)
        {
            self.reissue(now, false);
        }
        if now >= self.next_prune_at {
            self.prune(now);
            self.next_prune_at = now.saturating_add(PRUNE_EVERY);
        }
        self.due_probes(now, &mut actions);
        if now >= self.next_gossip_at {
            // Never schedule into the past: a driver that fell behind gossips once, not in
            // a burst.
            self.next_gossip_at = self
                .next_gossip_at
                .saturating_add(self.settings.gossip_interval)
                .max(now.saturating_add(self.settings.gossip_interval / 2));
            let digest = self.digest();
            for to in self.gossip_targets(rng) {
                actions.push(Action::Gossip {
                    to,
                    request: GossipRequest::Digest {
                        v: PROTOCOL_VERSION,
                        buckets: digest,
                    },
                });
            }
        }
        actions
    }

    fn due_probes(&mut self, now: Timestamp, actions: &mut Vec<Action>) {
        // A scan rather than a timer queue: a few nanoseconds per known URL, and no second
        // structure to keep in step with the member map.
        let mut forbidden = Vec::new();
        for (url, slot) in self.by_url.iter_mut() {
            if slot.next_probe.is_none_or(|due| due > now) {
                continue;
            }
            let shift = slot
                .failures
                .saturating_sub(BACKOFF_AFTER_FAILURES)
                .min(MAX_BACKOFF_SHIFT);
            let interval = self.settings.probe_interval.saturating_mul(1 << shift);
            slot.next_probe = Some(now.saturating_add(interval));
            if !self.settings.allow_private_peers
                && (url.literal_ip().is_some_and(is_forbidden_probe_target)
                    || url.is_localhost_name())
            {
                // Decided without asking the driver: the URL names a forbidden address.
                forbidden.push(url.clone());
                continue;
            }
            actions.push(Action::Probe { url: url.clone() });
        }
        for url in forbidden {
            self.on_probe_result(&url, ProbeOutcome::forbidden(url.literal_ip()), now);
        }
    }

    /// Recomputes the summary of the nodes at `url` after any of them changed.
    fn refresh_slot(&mut self, url: &PeerUrl) {
        let Some(slot) = self.by_url.get_mut(url) else {
            return;
        };
        let mut summary = SlotSummary::default();
        for member in slot
            .keys
            .as_slice()
            .iter()
            .filter_map(|k| self.members.get(k))
        {
            summary.add(member);
        }
        summary.apply(slot);
    }

    /// Up to `fanout` nodes: mostly nodes whose last probe was good (and `peers.toml` nodes
    /// not heard of yet), one not yet probed (so newcomers are reached before their first
    /// probe), and now and then one whose probes fail (so a healed partition reconnects).
    fn gossip_targets<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<PeerUrl> {
        let mut verified = Vec::new();
        let mut unprobed = Vec::new();
        let mut failing = Vec::new();
        for (url, slot) in &self.by_url {
            match slot.class {
                Some(PartnerClass::Verified) => verified.push(url),
                Some(PartnerClass::Unprobed) => unprobed.push(url),
                Some(PartnerClass::Failing) => failing.push(url),
                None => {}
            }
        }
        for url in self.seeds.keys() {
            if !self.by_url.contains_key(url) {
                verified.push(url);
            }
        }
        let fanout = self.settings.fanout;
        let from_verified = fanout.saturating_sub(usize::from(!unprobed.is_empty()));
        let mut picks = sample(rng, &mut verified, from_verified);
        let rest = fanout.saturating_sub(picks.len());
        picks.extend(sample(rng, &mut unprobed, rest));
        if picks.is_empty() {
            picks.extend(sample(rng, &mut failing, fanout));
        } else if !failing.is_empty() && rng.random_bool(self.settings.failing_gossip_probability) {
            picks.extend(sample(rng, &mut failing, 1));
        }
        picks.into_iter().cloned().collect()
    }

    /// The server side of `POST /gossip`; `from_ip` is the connection's peer address.
    /// The same as [`Core::admit_gossip`] followed by [`Core::answer_gossip`].
    pub fn handle_gossip(
        &mut self,
        request: GossipRequest,
        from_ip: IpAddr,
        now: Timestamp,
    ) -> Result<GossipResponse, GossipError> {
        let admitted = self.admit_gossip(request, from_ip, now)?;
        self.answer_gossip(admitted, now)
    }

    /// The first half of [`Core::handle_gossip`]: the rate limit (one token is taken here)
    /// and the message's limits, which cost nothing to check. A driver that holds the core
    /// behind a lock checks the admitted message's signatures outside it
    /// ([`Core::signature_checks`]) and then calls [`Core::answer_gossip`].
    pub fn admit_gossip(
        &mut self,
        request: GossipRequest,
        from_ip: IpAddr,
        now: Timestamp,
    ) -> Result<AdmittedGossip, GossipError> {
        let result = self.admit(request, from_ip, now);
        if let Err(err) = &result {
            *self.stats.requests_refused.entry(err.kind()).or_default() += 1;
        }
        result
    }

    fn admit(
        &mut self,
        request: GossipRequest,
        from_ip: IpAddr,
        now: Timestamp,
    ) -> Result<AdmittedGossip, GossipError> {
        self.limiter
            .check(from_ip, now)
            .map_err(|retry_after| GossipError::RateLimited { retry_after })?;
        match &request {
            GossipRequest::Digest { v, .. } => {
                if *v != PROTOCOL_VERSION {
                    return Err(GossipError::UnsupportedVersion(*v));
                }
            }
            GossipRequest::Sync { push, want } => {
                check_len("push", push.len(), MAX_DESCRIPTORS_PER_MESSAGE)?;
                check_len("want", want.len(), MAX_WANTS_PER_MESSAGE)?;
            }
        }
        Ok(AdmittedGossip { request, from_ip })
    }

    /// The second half of [`Core::handle_gossip`]: merges what the admitted message
    /// pushes and answers it.
    pub fn answer_gossip(
        &mut self,
        admitted: AdmittedGossip,
        now: Timestamp,
    ) -> Result<GossipResponse, GossipError> {
        let result = self.answer(admitted, now);
        match &result {
            Ok(_) => self.stats.requests_served += 1,
            Err(err) => *self.stats.requests_refused.entry(err.kind()).or_default() += 1,
        }
        result
    }

    fn answer(
        &mut self,
        admitted: AdmittedGossip,
        now: Timestamp,
    ) -> Result<GossipResponse, GossipError> {
        let AdmittedGossip { request, from_ip } = admitted;
        match request {
            GossipRequest::Digest { buckets, .. } => {
                let differing = self.digest().differing(&buckets);
                if differing.is_empty() {
                    return Ok(GossipResponse::InSync);
                }
                let entries = self.entries_in(&bucket_mask(&differing));
                Ok(GossipResponse::Diff {
                    buckets: differing,
                    entries,
                })
            }
            GossipRequest::Sync { push, want } => {
                if let Err(index) = self.merge_all(&push, now) {
                    self.limiter.penalize(from_ip, now);
                    return Err(GossipError::Forged { index });
                }
                let mut seen = HashSet::new();
                let descriptors = want
                    .iter()
                    .filter(|key| seen.insert(**key))
                    .filter_map(|key| self.fresh_descriptor(key, now))
                    .collect();
                Ok(GossipResponse::Descriptors(descriptors))
            }
        }
    }

    /// The client side: takes `from`'s answer to this node's gossip and returns the
    /// follow-up request to send to `from`, if any.
    pub fn handle_gossip_response<R: Rng + ?Sized>(
        &mut self,
        from: &PeerUrl,
        response: GossipResponse,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Option<GossipRequest>, GossipError> {
        // `from` is not trusted for anything; it only names the exchange in logs.
        let _ = from;
        match response {
            GossipResponse::InSync => Ok(None),
            GossipResponse::Diff { buckets, entries } => {
                check_len("entries", entries.len(), MAX_ENTRIES_PER_MESSAGE)?;
                check_len("buckets", buckets.len(), BUCKETS)?;
                let mut mask = [false; BUCKETS];
                for &b in &buckets {
                    *mask
                        .get_mut(usize::from(b))
                        .ok_or(GossipError::BadBucket(b))? = true;
                }
                Ok(self.reconcile(&mask, &entries, now, rng))
            }
            GossipResponse::Descriptors(descriptors) => {
                check_len(
                    "descriptors",
                    descriptors.len(),
                    MAX_DESCRIPTORS_PER_MESSAGE,
                )?;
                self.merge_all(&descriptors, now)
                    .map_err(|index| GossipError::Forged { index })?;
                Ok(None)
            }
        }
    }

    /// Compares the peer's entries in the differing buckets with ours: push what it lacks
    /// or holds older, want what we lack or hold older.
    fn reconcile<R: Rng + ?Sized>(
        &mut self,
        mask: &[bool; BUCKETS],
        entries: &[Entry],
        now: Timestamp,
        rng: &mut R,
    ) -> Option<GossipRequest> {
        // A merge of two key-sorted lists; the peer's is sorted here rather than trusted,
        // which costs nothing when it already is.
        let mut theirs: Vec<(PublicKey, Timestamp)> = entries
            .iter()
            .filter(|Entry(key, _)| mask[bucket_of(key)])
            .map(|&Entry(key, t)| (key, t))
            .collect();
        theirs.sort_unstable();
        theirs.dedup_by_key(|(key, _)| *key);
        let ours = self.entries_in(mask);
        let own_key = self.own.key();
        let mut want: Vec<PublicKey> = Vec::new();
        let mut push: Vec<PublicKey> = Vec::new();
        let (mut a, mut b) = (0, 0);
        while a < ours.len() || b < theirs.len() {
            let mine = ours.get(a).map(|Entry(k, t)| (*k, *t));
            let other = theirs.get(b).copied();
            match (mine, other) {
                (Some((key, t)), Some((their_key, their_t))) if key == their_key => {
                    if their_t > t {
                        want.push(key);
                    } else if t > their_t {
                        push.push(key);
                    }
                    a += 1;
                    b += 1;
                }
                (Some((key, _)), Some((their_key, _))) if key < their_key => {
                    push.push(key);
                    a += 1;
                }
                (Some((key, _)), None) => {
                    push.push(key);
                    a += 1;
                }
                (_, Some((key, t))) => {
                    // A node we don't hold: worth fetching unless we forgot it on purpose
                    // or it is too old anyway.
                    if key != own_key
                        && !self.forgotten.blocks(&key, t)
                        && check_freshness(t, now, &self.freshness).is_ok()
                    {
                        want.push(key);
                    }
                    b += 1;
                }
                (None, None) => break,
            }
        }
        // Our own key wanted back only as proof of a newer copy: see MergeOutcome::OwnReissued.
        if self.own.leaving() {
            want.retain(|key| *key != own_key);
        }
        push.retain(|key| {
            self.held(key)
                .is_some_and(|t| check_freshness(t, now, &self.freshness).is_ok())
        });
        let want = sample(rng, &mut want, MAX_WANTS_PER_MESSAGE);
        let push: Vec<SignedDescriptor> = sample(rng, &mut push, MAX_DESCRIPTORS_PER_MESSAGE)
            .iter()
            .filter_map(|key| self.fresh_descriptor(key, now))
            .collect();
        if want.is_empty() && push.is_empty() {
            return None;
        }
        Some(GossipRequest::Sync { push, want })
    }

    fn fresh_descriptor(&self, key: &PublicKey, now: Timestamp) -> Option<SignedDescriptor> {
        let desc = if *key == self.own.key() {
            &self.own
        } else {
            &self.members.get(key)?.desc
        };
        check_freshness(desc.issued_at(), now, &self.freshness).ok()?;
        Some(desc.to_signed())
    }

    /// The signature checks that merging `descriptors` now would do: those of descriptors
    /// newer than the one held for their key and not forgotten at their issue time (older
    /// and replayed ones are refused without a check, so an attacker replaying them gets
    /// none). Empty when the core has no [`SignatureCache`] to carry the results in, or when
    /// the message is over the protocol's limit and will be refused whole.
    ///
    /// Cheap: no cryptography happens here. The driver runs the returned checks without
    /// holding the core, then merges as usual.
    pub fn signature_checks(&self, descriptors: &[SignedDescriptor]) -> SignatureChecks {
        let Some(cache) = &self.signature_cache else {
            return SignatureChecks::default();
        };
        if descriptors.len() > MAX_DESCRIPTORS_PER_MESSAGE {
            return SignatureChecks::default();
        }
        let pending = descriptors
            .iter()
            .filter(|descriptor| {
                let Ok(key) = descriptor.peek_key() else {
                    return false;
                };
                let issued_at = Timestamp::from_unix_ms(descriptor.issued_at);
                match self.held(&key) {
                    Some(held) => issued_at > held,
                    None => !self.forgotten.blocks(&key, issued_at),
                }
            })
            .cloned()
            .collect();
        SignatureChecks {
            pending,
            freshness: Some(self.freshness),
            cache: Some(Arc::clone(cache)),
        }
    }

    /// Merges descriptors in order; stops at the first forged signature and returns its index.
    fn merge_all(&mut self, descriptors: &[SignedDescriptor], now: Timestamp) -> Result<(), usize> {
        // One eviction order for the whole message: a full core takes up to 128 newcomers
        // here, and finding each one's victim by a scan of every member cost a thousand
        // comparisons apiece, under the lock the async side waits for.
        let mut victims = Victims::default();
        for (index, descriptor) in descriptors.iter().enumerate() {
            if let Err(MergeError::Invalid(DescriptorError::BadSignature)) =
                self.merge_counted(descriptor, now, &mut victims)
            {
                return Err(index);
            }
        }
        Ok(())
    }

    /// Takes one descriptor if it is valid and newer than what is held for its key.
    /// Cheap refusals (older or already held) come before the signature check.
    pub fn merge(
        &mut self,
        descriptor: &SignedDescriptor,
        now: Timestamp,
    ) -> Result<MergeOutcome, MergeError> {
        self.merge_counted(descriptor, now, &mut Victims::default())
    }

    fn merge_counted(
        &mut self,
        descriptor: &SignedDescriptor,
        now: Timestamp,
        victims: &mut Victims,
    ) -> Result<MergeOutcome, MergeError> {
        let result = self.merge_inner(descriptor, now, victims);
        match &result {
            Ok(_) => self.stats.descriptors_accepted += 1,
            Err(err) => {
                *self
                    .stats
                    .descriptors_rejected
                    .entry(err.kind())
                    .or_default() += 1
            }
        }
        result
    }

    fn merge_inner(
        &mut self,
        descriptor: &SignedDescriptor,
        now: Timestamp,
        victims: &mut Victims,
    ) -> Result<MergeOutcome, MergeError> {
        let key = descriptor.peek_key()?;
        let issued_at = Timestamp::from_unix_ms(descriptor.issued_at);
        let held = self.held(&key);
        match held {
            Some(t) if issued_at < t => return Err(MergeError::Stale),
            Some(t) if issued_at == t => return Err(MergeError::Replayed),
            None if self.forgotten.blocks(&key, issued_at) => return Err(MergeError::Forgotten),
            _ => {}
        }
        let verified = descriptor.verify(now, &self.freshness, self.signature_cache.as_deref())?;
        if key == self.own.key() {
            // Signed with our own key and newer than ours: make ours newer still.
            self.stats.own_key_seen_elsewhere += 1;
            let leaving = self.own.leaving();
            self.reissue(
                verified
                    .issued_at()
                    .saturating_add(Duration::from_millis(1))
                    .max(now),
                leaving,
            );
            return Ok(MergeOutcome::OwnReissued);
        }
        let refusal = if *verified.url() == self.settings.public_url {
            Some(MergeError::ClaimsOwnUrl)
        } else if let Some(Peer {
            key: Some(pinned), ..
        }) = self.seeds.get(verified.url())
            && *pinned != key
        {
            Some(MergeError::PinnedKeyMismatch {
                url: verified.url().to_string(),
            })
        } else {
            None
        };
        if let Some(err) = refusal {
            // Valid but unwanted here: remember it like an eviction, so peers holding it
            // are not asked for it again on every exchange.
            if held.is_none() {
                self.forget(key, issued_at);
            }
            return Err(err);
        }
        let leaving = verified.leaving();
        if held.is_some() {
            // A leave makes a member the first to go, and a new descriptor can reset its
            // probe history: the order worked out so far no longer holds.
            victims.invalidate();
            self.replace(key, verified, now);
            return Ok(if leaving {
                MergeOutcome::Left
            } else {
                MergeOutcome::Updated
            });
        }
        if self.members.len() >= self.settings.max_members {
            let victim = self.next_victim(victims).ok_or(MergeError::Full)?;
            self.evict(&victim);
        }
        if leaving {
            // A node first heard of by its leave is evictable at once, ahead of the rest.
            victims.invalidate();
        }
        let seed = self.seeds.contains_key(verified.url());
        let member = Member {
            desc: verified,
            score: Score::new(if seed {
                score::SEED_START
            } else {
                score::GOSSIP_START
            }),
            seed,
            probes: 0,
            good_probes: 0,
            consecutive_failures: 0,
            last_verdict: None,
            last_probe_at: None,
            latency: None,
            resolved_ip: None,
            first_seen: now,
            standing: None,
        };
        self.insert(key, member, now);
        Ok(if leaving {
            MergeOutcome::Left
        } else {
            MergeOutcome::Added
        })
    }

    /// The member a newcomer may replace: one that left, or one whose probes fail and that
    /// is not listed; never a listed node, never one still waiting for its first probe
    /// (it may be as good as the newcomer). Left first, then the lowest score, then the
    /// most recently learned.
    ///
    /// The order is worked out once per message (`victims`) and then taken from: within a
    /// message only merges happen, newcomers are never evictable (not probed yet) unless
    /// they are leaves, and a leave or an update invalidates the order, so each pick is the
    /// one a fresh scan would make.
    fn next_victim(&self, victims: &mut Victims) -> Option<PublicKey> {
        let queue = victims.queue.get_or_insert_with(|| {
            let mut candidates: Vec<(&PublicKey, &Member)> = self
                .members
                .iter()
                .filter(|(_, m)| is_evictable(m))
                .collect();
            // Sorted worst last, so taking from the end of the Vec takes the worst first.
            candidates.sort_by(|(ka, a), (kb, b)| eviction_order(kb, b, ka, a));
            candidates.into_iter().map(|(key, _)| *key).collect()
        });
        while let Some(key) = queue.pop() {
            if self.members.get(&key).is_some_and(is_evictable) {
                return Some(key);
            }
        }
        None
    }

    fn evict(&mut self, key: &PublicKey) {
        if let Some(member) = self.remove(key) {
            self.forget(*key, member.desc.issued_at());
            self.stats.evictions += 1;
        }
    }

    fn forget(&mut self, key: PublicKey, issued_at: Timestamp) {
        let cap = self
            .settings
            .max_members
            .saturating_mul(FORGOTTEN_PER_MEMBER);
        self.forgotten.insert(key, issued_at, cap);
    }

    fn insert(&mut self, key: PublicKey, member: Member, now: Timestamp) {
        let url = member.desc.url().clone();
        let leaving = member.desc.leaving();
        self.members.insert(key, member);
        let slot = self.by_url.entry(url.clone()).or_default();
        slot.keys.push(key);
        if !leaving {
            // Probe newcomers right away: listing and gossip both wait for it.
            slot.next_probe = Some(now);
        }
        self.refresh_slot(&url);
        self.mark_dirty(&key);
    }

    fn remove(&mut self, key: &PublicKey) -> Option<Member> {
        let member = self.members.remove(key)?;
        let url = member.desc.url().clone();
        if let Some(slot) = self.by_url.get_mut(&url) {
            slot.keys.remove(key);
            if slot.keys.is_empty() {
                self.by_url.remove(&url);
            } else {
                self.refresh_slot(&url);
            }
        }
        self.mark_dirty(key);
        Some(member)
    }

    /// Swaps in a newer descriptor of a known node, keeping its probe history unless what
    /// was probed changed (its URL) or it comes back after a leave.
    ///
    /// A node that sends a newer descriptor after a run of failed probes, before its score
    /// has climbed back, has restarted: its outage counts as one failed probe, not as all
    /// the probes that failed while it was down. It gets back the score it had when the
    /// failures began, less one failure, and is listed again only after a good probe that
    /// follows. Why this is safe against a node that re-signs on purpose: docs/GOSSIP.md
    /// section 4.
    fn replace(&mut self, key: PublicKey, verified: VerifiedDescriptor, now: Timestamp) {
        let Some(mut member) = self.remove(&key) else {
            return;
        };
        let moved = member.desc.url() != verified.url();
        let returned = member.desc.leaving() && !verified.leaving();
        if moved || returned {
            member.good_probes = 0;
            member.consecutive_failures = 0;
            member.probes = 0;
            member.standing = None;
        } else if !verified.leaving()
            && let Some(standing) = member.standing.take()
        {
            let forgiven = standing.after_probe(false);
            if forgiven.value() > member.score.value() {
                member.score = forgiven;
                // Listed again only once the restarted process has answered a probe.
                member.good_probes = 0;
                self.stats.outages_forgiven += 1;
            }
        }
        member.seed = self.seeds.contains_key(verified.url());
        member.desc = verified;
        self.insert(key, member, now);
    }

    /// Re-issues this node's descriptor (time strictly after the previous one).
    fn reissue(&mut self, now: Timestamp, leaving: bool) {
        let mut descriptor = self.own.descriptor().clone();
        descriptor.issued_at = now.max(
            self.own
                .issued_at()
                .saturating_add(Duration::from_millis(1)),
        );
        descriptor.leaving = leaving;
        // Signing only fails on fields that Settings::validate accepted; keep the old
        // descriptor in that impossible case rather than panic.
        if let Ok(signed) = descriptor.sign(&self.identity) {
            self.own = signed;
            self.mark_dirty(&self.own.key());
        }
    }

    /// A probe of `url` came back: scores every node claiming that URL.
    pub fn on_probe_result(&mut self, url: &PeerUrl, outcome: ProbeOutcome, now: Timestamp) {
        let Some(slot) = self.by_url.get_mut(url) else {
            return;
        };
        let timeout = self.settings.probe_timeout;
        let mut summary = SlotSummary::default();
        for key in slot.keys.as_slice() {
            let Some(member) = self.members.get_mut(key) else {
                continue;
            };
            if member.desc.leaving() {
                continue;
            }
            let verdict = if outcome.forbidden {
                ProbeVerdict::Forbidden
            } else if !outcome.answered {
                ProbeVerdict::NoAnswer
            } else if outcome.latency > timeout {
                ProbeVerdict::TooSlow
            } else if outcome.key_seen != Some(*key) {
                ProbeVerdict::WrongKey
            } else if !outcome.cors {
                ProbeVerdict::NoCors
            } else {
                ProbeVerdict::Good
            };
            let good = verdict == ProbeVerdict::Good;
            if !good && member.consecutive_failures == 0 && member.good_probes > 0 {
                // A run of failures begins: remember what the node had earned before it.
                member.standing = Some(member.score);
            }
            member.score = member.score.after_probe(good);
            if good
                && member
                    .standing
                    .is_some_and(|s| member.score.value() >= s.after_probe(false).value())
            {
                // Back where a restart would put it: nothing left to give back.
                member.standing = None;
            }
            member.probes = member.probes.saturating_add(1);
            member.last_verdict = Some(verdict);
            member.last_probe_at = Some(now);
            if let Some(ip) = outcome.resolved_ip {
                member.resolved_ip = Some(canonical_ip(ip));
            }
            if good {
                member.good_probes = member.good_probes.saturating_add(1);
                member.consecutive_failures = 0;
                member.latency = Some(outcome.latency);
                self.stats.probes_good += 1;
            } else {
                member.consecutive_failures = member.consecutive_failures.saturating_add(1);
                self.stats.probes_failed += 1;
            }
            summary.add(member);
        }
        summary.apply(slot);
    }

    /// Keys of the listed nodes (self not included): healthy by this node's own probes,
    /// at most `max_listed_per_ip` per public address and `max_listed_per_subnet` per /24
    /// (/64), one per URL; the best scored and longest known win those limits.
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
    fn limits_bind(&self, candidates: &[(&PublicKey, &Member)]) -> bool {
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
    fn url_has_good_other(&self, member: &Member) -> bool {
        self.by_url.get(member.desc.url()).is_some_and(|slot| {
            slot.keys
                .as_slice()
                .iter()
                .filter(|k| **k != member.desc.key())
                .filter_map(|k| self.members.get(k))
                .any(|m| m.last_verdict == Some(ProbeVerdict::Good))
        })
    }

    /// `/servers`: the listed nodes, this node first (unless it has left), then by URL.
    pub fn servers(&self, now: Timestamp) -> Vec<ServerView> {
        let mut out = Vec::new();
        if !self.own.leaving() {
            out.push(ServerView {
                url: self.own.url().to_string(),
                key: self.own.key().to_base64(),
                weight: self.own.weight(),
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
                weight: self.effective_weight(m),
                score: round2(m.score.value()),
                latency_ms: m.latency.map_or(0, duration_ms),
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
            weight: self.own.weight(),
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
                weight: self.effective_weight(m),
                version: m.desc.version().to_owned(),
                latency_ms: m.latency.map(duration_ms),
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

    /// The operator's weight from `peers.toml` wins over the node's own claim.
    fn effective_weight(&self, member: &Member) -> f64 {
        match self.seeds.get(member.desc.url()) {
            Some(Peer {
                weight: Some(w), ..
            }) if member.seed => *w,
            _ => member.desc.weight(),
        }
    }

    /// Signs a leave and returns it as a push to every known node, so each drops this node
    /// at once; gossip carries it to any that miss the push. After this, [`Core::tick`]
    /// returns nothing. Calling it again pushes the same leave again.
    pub fn leave(&mut self, now: Timestamp) -> Vec<Action> {
        if !self.own.leaving() {
            self.reissue(now, true);
        }
        let leave = self.own.to_signed();
        let mut targets: BTreeSet<&PeerUrl> = self
            .members
            .values()
            .filter(|m| !m.desc.leaving())
            .map(|m| m.desc.url())
            .collect();
        targets.extend(
            self.seeds
                .keys()
                .filter(|url| !self.by_url.contains_key(*url)),
        );
        targets
            .into_iter()
            .map(|url| Action::Gossip {
                to: url.clone(),
                request: GossipRequest::push(vec![leave.clone()]),
            })
            .collect()
    }

    /// Forgets descriptors past the maximum age, and old rate-limit state.
    fn prune(&mut self, now: Timestamp) {
        let expired: Vec<PublicKey> = self
            .members
            .iter()
            .filter(|(_, m)| check_freshness(m.desc.issued_at(), now, &self.freshness).is_err())
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.remove(&key);
        }
        self.forgotten
            .prune(now.saturating_sub(self.settings.descriptor_max_age));
        self.limiter.prune(now);
    }

    /// What to persist.
    pub fn snapshot(&self) -> State {
        State {
            format: STATE_FORMAT,
            key: self.own.key(),
            own_issued_at: self.own.issued_at(),
            members: self
                .members
                .values()
                .map(|m| SavedMember {
                    descriptor: m.desc.to_signed(),
                    // Six decimals parse back exactly with any JSON reader.
                    score: (m.score.value() * 1e6).round() / 1e6,
                    consecutive_failures: m.consecutive_failures,
                    latency_ms: m.latency.map(duration_ms),
                    resolved_ip: m.resolved_ip,
                    first_seen: m.first_seen,
                    standing: m.standing.map(|s| (s.value() * 1e6).round() / 1e6),
                })
                .collect(),
        }
    }

    /// Takes back a saved state after a restart. Every descriptor is verified again (the
    /// file is not trusted more than a peer); scores are kept, but a node is listed again
    /// only after a fresh good probe. This node's descriptor is re-issued later than the
    /// saved one.
    pub fn restore(&mut self, state: State, now: Timestamp) -> RestoreReport {
        let mut report = RestoreReport::default();
        if state.format != STATE_FORMAT {
            report.ignored = Some(format!("unknown state format {}", state.format));
            return report;
        }
        if state.key != self.own.key() {
            report.ignored = Some(format!("saved by another key ({})", state.key));
            return report;
        }
        if state.own_issued_at >= self.own.issued_at() {
            let leaving = self.own.leaving();
            self.reissue(
                state
                    .own_issued_at
                    .saturating_add(Duration::from_millis(1))
                    .max(now),
                leaving,
            );
        }
        let mut victims = Victims::default();
        for saved in state.members {
            // Restored scores change who may be evicted, so each pick is worked out afresh.
            victims.invalidate();
            match self.merge_inner(&saved.descriptor, now, &mut victims) {
                Ok(_) => {
                    report.restored += 1;
                    let key = saved.descriptor.peek_key().ok();
                    if let Some(member) = key.and_then(|k| self.members.get_mut(&k)) {
                        member.score = Score::new(saved.score);
                        member.consecutive_failures = saved.consecutive_failures;
                        member.latency = saved.latency_ms.map(Duration::from_millis);
                        member.resolved_ip = saved.resolved_ip;
                        member.first_seen = saved.first_seen.min(now);
                        member.standing = saved.standing.map(Score::new);
                        let url = member.desc.url().clone();
                        self.refresh_slot(&url);
                    }
                }
                Err(err) => *report.rejected.entry(err.kind()).or_default() += 1,
            }
        }
        report
    }

    /// The current set digest, recomputing only buckets changed since the last call.
    pub fn digest(&mut self) -> SetDigest {
        for bucket in 0..BUCKETS {
            if self.dirty_buckets & (1 << bucket) != 0 {
                let mut mask = [false; BUCKETS];
                mask[bucket] = true;
                let entries = self.entries_in(&mask);
                self.buckets[bucket] = bucket_hash(entries.into_iter().map(|Entry(k, t)| (k, t)));
            }
        }
        self.dirty_buckets = 0;
        SetDigest::from_buckets(self.buckets)
    }

    /// Everything held in the buckets of `mask` (self included), sorted by key.
    fn entries_in(&self, mask: &[bool; BUCKETS]) -> Vec<Entry> {
        let mut out = Vec::new();
        for (bucket, _) in mask.iter().enumerate().filter(|(_, on)| **on) {
            let mut low = [0u8; 32];
            low[0] = (bucket as u8) << 4;
            let range = self.members.range(PublicKey::from_bytes(low)..);
            out.extend(
                range
                    .take_while(|(key, _)| bucket_of(key) == bucket)
                    .map(|(key, m)| Entry(*key, m.desc.issued_at())),
            );
            if bucket_of(&self.own.key()) == bucket {
                // Buckets are key ranges in ascending order and the map is sorted, so only
                // our own entry needs placing.
                let own = Entry(self.own.key(), self.own.issued_at());
                let at = out.partition_point(|Entry(key, _)| *key < own.0);
                out.insert(at, own);
            }
        }
        out.truncate(MAX_ENTRIES_PER_MESSAGE);
        out
    }

    fn mark_dirty(&mut self, key: &PublicKey) {
        self.dirty_buckets |= 1 << bucket_of(key);
    }
}

fn check_len(what: &'static str, count: usize, max: usize) -> Result<(), GossipError> {
    if count > max {
        return Err(GossipError::TooLarge { what, count, max });
    }
    Ok(())
}

fn bucket_mask(buckets: &[u8]) -> [bool; BUCKETS] {
    let mut mask = [false; BUCKETS];
    for &b in buckets {
        if let Some(slot) = mask.get_mut(usize::from(b)) {
            *slot = true;
        }
    }
    mask
}

/// Up to `k` items chosen uniformly without replacement (a partial Fisher–Yates shuffle).
fn sample<R: Rng + ?Sized, T: Clone>(rng: &mut R, items: &mut [T], k: usize) -> Vec<T> {
    let k = k.min(items.len());
    for i in 0..k {
        let j = rng.random_range(i..items.len());
        items.swap(i, j);
    }
    items[..k].to_vec()
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
