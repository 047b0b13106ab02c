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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom as _;
use rand::{Rng, RngExt as _};
use serde::{Deserialize, Serialize};

use super::address::{canonical_ip, is_forbidden_probe_target, rate_limit_key, subnet_of};
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
use super::peers::{MAX_POOL_ADDRESSES_ASKED, Peer, PoolSeed};
use super::score::{self, Score};
use super::settings::{Settings, SettingsError};
use super::time::{Timestamp, millis};
use crate::tools::limiter::{KeyedLimiter, Rate};

/// Version of the persisted [`State`] format.
pub const STATE_FORMAT: u32 = 1;
/// After this many consecutive failed probes a node is probed less and less often (up to
/// 32 times the probe interval), so dead or fake URLs cost little.
const BACKOFF_AFTER_FAILURES: u32 = 2;
const MAX_BACKOFF_SHIFT: u32 = 5;
/// Retries of a failed probe of a listed node before it counts as failed: a reset
/// connection's successor can be refused, so one retry alone is not independent enough.
pub const PROBE_RETRIES: u32 = 2;
/// A node doubts itself (Lifeguard's local health) when more than this share of the listed
/// nodes failed their latest probe, and at least [`DOUBT_MIN_FAILING`] did: a link of its
/// own is down far more likely than three quarters of a healthy network at once.
const DOUBT_SHARE: f64 = 0.75;
const DOUBT_MIN_FAILING: usize = 2;
/// How long, in probe intervals, a node may doubt itself: past this its failed probes count
/// again, so a node that really lost most of its peers at once still unlists them.
const DOUBT_LIMIT_INTERVALS: u32 = 4;
/// Seeds that don't answer are asked every round for this many failures in a row, then
/// twice as rarely after each further failure, up to every 2^[`SEED_BACKOFF_MAX_SHIFT`]
/// rounds: never given up on.
const SEED_BACKOFF_AFTER_FAILURES: u32 = 3;
const SEED_BACKOFF_MAX_SHIFT: u32 = 5;
/// Records kept of nodes whose descriptors expired while they were down (see
/// `Core::records`), per member the cap allows.
const RECORDS_PER_MEMBER: usize = 1;
/// Refused and evicted keys are remembered (with their issue time) up to this many times
/// the member cap each, so the same descriptor is not fetched again and again.
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
    /// `GET {url}/health` where `url` is a pool address at the pool port, as the pool's
    /// clients reach it (this node's own addresses too); pass what happened to
    /// [`Core::on_pool_probe_result`].
    ProbePool { url: PeerUrl },
    /// Resolve the pool's name, send `request` to each address it resolves to as to a seed
    /// (the URLs are [`Core::pool_seed_urls`]'s), and pass whether any answered to
    /// [`Core::on_pool_result`]; until then the pool is not asked again.
    AskPool {
        pool: PoolSeed,
        request: GossipRequest,
    },
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
    /// Descriptor number `index` failed verification in another way no honest node's
    /// descriptor does (malformed, bad encoding, weight, from the future). Handled like
    /// [`GossipError::Forged`]: what came before it was merged, the sender loses its budget.
    #[error("descriptor {index} is invalid ({reason})")]
    Invalid { index: usize, reason: &'static str },
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
            Self::Invalid { .. } => "invalid",
        }
    }

    /// The refusal of a message whose descriptor `index` failed with `err`.
    pub(super) fn rejected(index: usize, err: &DescriptorError) -> Self {
        match err {
            DescriptorError::BadSignature => Self::Forged { index },
            other => Self::Invalid {
                index,
                reason: other.kind(),
            },
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
                // The merge stops the message there too.
                Err(err) if err.is_rejection() => break,
                // Expired: the merge refuses it with the same cheap check and goes on.
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
    /// Failed probes of listed nodes not counted because most listed nodes failed at once
    /// (this node doubted its own link).
    pub probes_doubted: u64,
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
    /// Was in this node's `/servers` at some point (checked once per gossip round): such a
    /// node is never evicted for a newcomer.
    ever_listed: bool,
    /// Since when it has been listed without a break (checked once per gossip round): what
    /// its weight may be follows from it ([`bounded_weight`]).
    listed_since: Option<Timestamp>,
    /// Its signed pool addresses whose latest probe at the pool port was good, and when.
    pool_good: Vec<(IpAddr, Timestamp)>,
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
    /// Some node at this URL has passed a probe or is named in `peers.toml`: it is probed
    /// every interval while it fails (no backoff), so it is seen again promptly however
    /// long it was down.
    proven: bool,
    /// Whether the latest probe of the URL got an answer at all (this node's own health).
    last_answered: Option<bool>,
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
    proven: bool,
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
        self.proven |= member.seed || member.good_probes > 0 || member.standing.is_some();
    }

    fn apply(self, slot: &mut UrlSlot) {
        slot.class = match self.failures {
            None => None,
            Some(_) if self.verified => Some(PartnerClass::Verified),
            Some(_) if self.unprobed => Some(PartnerClass::Unprobed),
            Some(_) => Some(PartnerClass::Failing),
        };
        slot.failures = self.failures.unwrap_or(0);
        slot.proven = self.proven;
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
    /// Evicted to make room: not fetched back from digests while the list is full.
    evicted: Forgotten,
    buckets: [[u8; BUCKET_HASH_LEN]; BUCKETS],
    dirty_buckets: u16,
    /// `POST /gossip` requests per source address (IPv6: per /64).
    limiter: KeyedLimiter<IpAddr, Timestamp>,
    next_gossip_at: Timestamp,
    next_prune_at: Timestamp,
    signature_cache: Option<Arc<SignatureCache>>,
    stats: Stats,
    /// Since when this node doubts its own link (most listed nodes fail at once).
    doubting_since: Option<Timestamp>,
    /// `peers.toml` nodes whose exchanges failed, and when to ask them again.
    seed_backoff: BTreeMap<PeerUrl, SeedBackoff>,
    /// The pools `peers.toml` names, and how asking each went.
    pools: Vec<pool_seeds::PoolSeedState>,
    /// This node's own pool addresses whose latest probe at the pool port (from this node,
    /// as a client would connect) was good, and when.
    own_pool_good: Vec<(IpAddr, Timestamp)>,
    /// When this node's own pool addresses are probed next.
    next_own_pool_probe: Timestamp,
    /// What nodes had earned (their standing) when their descriptors expired while they
    /// were down: a node back after more than a day signs a new descriptor and is treated
    /// as a restart, not as a stranger. Oldest first out; at most one per member slot.
    records: BTreeMap<PublicKey, (Score, Timestamp)>,
}

/// Why and until when a seed is not asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeedBackoff {
    failures: u32,
    retry_at: Timestamp,
}

impl SeedBackoff {
    /// One more failure at `now`: asked again next round for the first
    /// [`SEED_BACKOFF_AFTER_FAILURES`], then twice as rarely after each further failure, up
    /// to every 2^[`SEED_BACKOFF_MAX_SHIFT`] rounds of `interval`.
    fn failed(previous: Option<SeedBackoff>, now: Timestamp, interval: Duration) -> SeedBackoff {
        let failures = previous.map_or(0, |b| b.failures).saturating_add(1);
        let shift = failures
            .saturating_sub(SEED_BACKOFF_AFTER_FAILURES)
            .min(SEED_BACKOFF_MAX_SHIFT);
        SeedBackoff {
            failures,
            retry_at: now.saturating_add(interval.saturating_mul(1 << shift)),
        }
    }
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
            pool: settings.pool_addresses.clone(),
        }
        .sign(&identity)?;
        let seeds = peers
            .into_iter()
            .filter(|peer| peer.url != settings.public_url)
            .map(|peer| (peer.url.clone(), peer))
            .collect();
        let forgotten_cap = settings.max_members.saturating_mul(FORGOTTEN_PER_MEMBER);
        let limiter = KeyedLimiter::new(
            Rate::new(
                settings.gossip_burst,
                settings.gossip_requests_per_interval,
                settings.gossip_interval,
            ),
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
            forgotten: Forgotten::new(forgotten_cap),
            evicted: Forgotten::new(forgotten_cap),
            buckets: [[0; BUCKET_HASH_LEN]; BUCKETS],
            dirty_buckets: u16::MAX,
            limiter,
            next_gossip_at: now,
            next_prune_at: now.saturating_add(PRUNE_EVERY),
            signature_cache: None,
            stats: Stats::default(),
            doubting_since: None,
            seed_backoff: BTreeMap::new(),
            pools: Vec::new(),
            own_pool_good: Vec::new(),
            next_own_pool_probe: now,
            records: BTreeMap::new(),
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
        if self.settings.answers_pool_dns && !self.own.pool().is_empty() {
            at = at.min(self.next_own_pool_probe);
        }
        at
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
            self.mark_listed(now);
            let digest = self.digest();
            let request = GossipRequest::Digest {
                v: PROTOCOL_VERSION,
                buckets: digest,
            };
            for to in self.gossip_targets(now, rng) {
                actions.push(Action::Gossip {
                    to,
                    request: request.clone(),
                });
            }
            self.due_pools(now, &request, &mut actions);
        }
        actions
    }
}

impl Core {
    /// Remembers which members are listed now (once listed, never evicted for a
    /// newcomer) and since when without a break.
    fn mark_listed(&mut self, now: Timestamp) {
        let listed = self.listed_keys(now);
        for (key, member) in &mut self.members {
            if listed.contains(key) {
                member.ever_listed = true;
                member.listed_since.get_or_insert(now);
            } else {
                member.listed_since = None;
            }
        }
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

/// Up to `k` items chosen uniformly without replacement, in random order.
fn sample<R: Rng + ?Sized, T: Clone>(rng: &mut R, items: &mut [T], k: usize) -> Vec<T> {
    items.partial_shuffle(rng, k).0.to_vec()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

mod gossip;
mod listing;
mod merge;
mod pool_seeds;
mod probe;
mod snapshot;

pub use self::listing::{NEW_NODE_WEIGHT, PoolNode, WEIGHT_CAP, WEIGHT_HISTORY, bounded_weight};
use self::merge::{Forgotten, Victims};
pub use self::snapshot::{RestoreReport, SavedMember, State};

#[cfg(test)]
mod tests;
