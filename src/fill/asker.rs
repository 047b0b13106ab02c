//! The network as one cache, over HTTP: this node asking the owner of a resource for its copy
//! before Docker Hub, and answering other nodes' fills from its own cache.
//!
//! Asking: the owner is the first of the listed nodes in weighted rendezvous order of the
//! resource's owner key, the function status.js uses. When that is this node, the cache asks
//! Docker Hub. Otherwise the owner is asked, and if it has not answered within
//! [`HEDGE_DELAY`] the next node in order too; the first good answer wins, and when neither
//! gives one within [`FILL_TIMEOUT`] the cache asks Docker Hub itself. Nodes whose answers
//! were unusable are passed over for a while; fills are checked against Docker Hub on each
//! supplier's schedule ([`super::trust`]), a supplier whose owed check is not made yet is not
//! asked, and a node whose fills disagreed with Docker Hub is not asked for
//! [`DISTRUST_FOR`], and every entry it supplied is dropped.
//!
//! Answering: only for nodes this node lists, once per signed request naming this node, each
//! asking node and each source network within its share of requests, each source network
//! within its share of this node's Docker Hub budget (as a client's requests would be), a
//! bounded number at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::trust::{Schedule, Take};
use super::wire::{
    FillAnswer, FillError, FillOutcome, FillRequest, MAX_FILL_REQUEST_BYTES, NONCE_LEN, NonceCache,
};
use super::{
    CheckKind, FillAsk, FillFuture, Filled, Filler, Judged, News, Supplied, SupplierId, Use,
};
use crate::driver::Driver;
use crate::driver::transport::TransportError;
use crate::federation::address::rate_limit_key;
use crate::federation::{PeerUrl, PublicKey, rendezvous};
use crate::hub::{ClientKey, ClientShares};
use crate::logging::WarnThrottle;
use crate::metrics::Metrics;

/// How long the owner has before the next node in order is asked too. Above a cold Docker
/// Hub answer (a few hundred milliseconds), so an owner busy fetching is not doubled by a
/// second fetch elsewhere, which would cost the hub twice.
pub const HEDGE_DELAY: Duration = Duration::from_millis(1500);
/// The longest a miss waits for fills before it asks Docker Hub itself.
pub const FILL_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a node whose fills disagreed with Docker Hub is not asked.
pub const DISTRUST_FOR: Duration = Duration::from_secs(6 * 3600);
/// How long a node whose answer was unusable (malformed, unsigned, for another request,
/// too old), or that did not answer, is passed over.
pub const PASS_OVER_FOR: Duration = Duration::from_secs(60);
/// Of the fills whose answer changed from what this node knew (in a way time explains: more
/// pulls, a later push), one in this many is checked besides the schedule's. Changes are
/// where a supplier that was honest so far would begin to lie; one that time does not
/// explain is always checked, before it is used.
pub const CHANGED_CHECK_ONE_IN: u32 = 8;
/// Fill requests one asking node may make of this one a minute, hits included: each costs a
/// signature check and a signature.
pub const REQUESTS_PER_ASKER: u32 = 1200;
/// Valid fill requests one source network (an IPv4 /24, an IPv6 network as
/// [`crate::federation::address::subnet_of`] groups it) may send a minute, whichever listed
/// nodes it holds.
pub const REQUESTS_PER_NETWORK: u32 = 2400;
/// Fill requests one source address (IPv6: /64) may send a minute before any check; a
/// refused one costs [`REFUSED_COST`] of it. Per address and not per network, so that what
/// others in a listed node's network send cannot spend that node's own requests: forgeries
/// from a whole /24 still cost at most 256 × 2,400 / 20 signature checks a minute.
pub const REQUESTS_PER_ADDRESS: u32 = 2400;
/// What a refused fill request costs its source address, in requests.
pub const REFUSED_COST: u32 = 20;
/// Fills answered at once; more get a 503 and the asker goes on.
pub const FILL_SLOTS: usize = 64;
/// Nodes remembered as suppliers (an index each); beyond this, new nodes are not asked.
const MAX_SUPPLIERS: usize = 4096;
/// Nonces of served requests kept, for a window of two minutes.
const NONCES: usize = 1 << 16;

/// Why a fill request was not served, with the HTTP status that says so.
#[derive(Debug, thiserror::Error)]
pub enum FillRefusal {
    #[error("fills are turned off on this node")]
    Off,
    #[error("too many fills at once; ask another node")]
    Busy,
    #[error("too many fill requests from this network or node; retry in {}s", .0.as_secs().max(1))]
    RateLimited(Duration),
    #[error("not a fill request: {0}")]
    Malformed(String),
    #[error("this node does not list the asking node")]
    Unlisted,
    #[error(transparent)]
    Refused(#[from] FillError),
}

impl FillRefusal {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> u16 {
        match self {
            FillRefusal::Off | FillRefusal::Busy => 503,
            FillRefusal::RateLimited(_) => 429,
            FillRefusal::Malformed(_) => 400,
            FillRefusal::Unlisted | FillRefusal::Refused(_) => 403,
        }
    }

    /// The outcome label in `dbs_fills_total{role="served"}`.
    pub fn outcome(&self) -> &'static str {
        match self {
            FillRefusal::Off => "off",
            FillRefusal::Busy => "busy",
            FillRefusal::RateLimited(_) => "rate_limited",
            FillRefusal::Malformed(_) => "malformed",
            FillRefusal::Unlisted => "unlisted",
            FillRefusal::Refused(err) => err.outcome(),
        }
    }
}

/// What this node knows of one node as a supplier and an asker of fills.
#[derive(Debug)]
struct Supplier {
    url: String,
    /// Fills it supplied that this node used.
    supplied: u64,
    /// Fill requests of its that this node admitted.
    served: u64,
    /// Which of its fills are checked, and what the checks found.
    schedule: Schedule,
    passed_over_until: Option<Instant>,
}

/// The fill side of the node: asker and owner. Shared behind the node's `Arc`.
pub struct Fills {
    enabled: bool,
    driver: Arc<Driver>,
    metrics: Metrics,
    suppliers: Mutex<Suppliers>,
    /// Until when (Unix milliseconds) each supplier is distrusted, 0 if it is not: read on
    /// every cache hit of an entry another node supplied, so an atomic load, no lock.
    distrusted_until: Box<[AtomicU64]>,
    purgers: Mutex<Vec<Purger>>,
    nonces: Mutex<NonceCache>,
    per_address: ClientShares,
    per_asker: ClientShares,
    per_network: ClientShares,
    slots: Arc<Semaphore>,
    warned: WarnThrottle,
    /// Draws which fills are checked: a generator of this node's own, seeded from the
    /// operating system, so no supplier can work out the draws.
    rng: Mutex<StdRng>,
}

type Purger = Box<dyn Fn(SupplierId) + Send + Sync>;

impl std::fmt::Debug for Fills {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fills")
            .field("enabled", &self.enabled)
            .field("suppliers", &self.suppliers.lock().nodes.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Suppliers {
    ids: HashMap<PublicKey, SupplierId>,
    nodes: Vec<Supplier>,
}

impl Suppliers {
    fn id_of(&mut self, key: PublicKey, url: &str) -> Option<SupplierId> {
        if let Some(&id) = self.ids.get(&key) {
            if let Some(node) = self.nodes.get_mut(usize::from(id.0)) {
                // A node may move; its key is what it is.
                url.clone_into(&mut node.url);
            }
            return Some(id);
        }
        if self.nodes.len() >= MAX_SUPPLIERS {
            return None;
        }
        let id = SupplierId(u16::try_from(self.nodes.len()).ok()?);
        self.nodes.push(Supplier {
            url: url.to_owned(),
            supplied: 0,
            served: 0,
            schedule: Schedule::new(),
            passed_over_until: None,
        });
        self.ids.insert(key, id);
        Some(id)
    }

    fn get(&mut self, id: SupplierId) -> Option<&mut Supplier> {
        self.nodes.get_mut(usize::from(id.0))
    }
}

/// One node to ask.
#[derive(Debug, Clone)]
struct Candidate {
    url: PeerUrl,
    key: PublicKey,
    id: SupplierId,
}

/// One entry of `/servers?all=true`'s `fills`: what this node and that one filled for each
/// other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FillView {
    pub url: String,
    /// Fills it supplied to this node.
    pub supplied: u64,
    /// Fill requests of its that this node admitted (and answered, or found nothing for).
    pub served: u64,
    /// Whether this node uses its fills (false for the hours after they disagreed with
    /// Docker Hub).
    pub trusted: bool,
}

/// The wall clock in Unix milliseconds, as the distrust times are kept.
fn unix_ms() -> u64 {
    crate::driver::now().as_unix_ms()
}

impl Fills {
    /// The fill side of a node; `enabled` is `--fill`.
    pub fn new(enabled: bool, driver: Arc<Driver>, metrics: Metrics) -> Fills {
        Fills {
            enabled,
            driver,
            metrics,
            suppliers: Mutex::new(Suppliers::default()),
            distrusted_until: (0..MAX_SUPPLIERS).map(|_| AtomicU64::new(0)).collect(),
            purgers: Mutex::new(Vec::new()),
            nonces: Mutex::new(NonceCache::new(NONCES)),
            per_address: ClientShares::new(REQUESTS_PER_ADDRESS, Duration::from_secs(60), 16_384),
            per_asker: ClientShares::new(REQUESTS_PER_ASKER, Duration::from_secs(60), 16_384),
            per_network: ClientShares::new(REQUESTS_PER_NETWORK, Duration::from_secs(60), 16_384),
            slots: Arc::new(Semaphore::new(FILL_SLOTS)),
            warned: WarnThrottle::default(),
            rng: Mutex::new(StdRng::from_rng(&mut rand::rng())),
        }
    }

    /// Draws the checks from a generator seeded with `seed`, so that a test can repeat a run.
    #[cfg(any(test, feature = "testkit"))]
    pub fn seed_checks(&self, seed: u64) {
        *self.rng.lock() = StdRng::seed_from_u64(seed);
    }

    /// Whether `--fill` is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Registers a cache's purger: called with a supplier that lost this node's trust.
    pub fn on_distrust(&self, purge: impl Fn(SupplierId) + Send + Sync + 'static) {
        self.purgers.lock().push(Box::new(purge));
    }

    /// What `/servers?all=true` shows of fills, one entry per node that filled or asked.
    pub fn view(&self) -> Vec<FillView> {
        let suppliers = self.suppliers.lock();
        suppliers
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.supplied > 0 || n.served > 0)
            .map(|(i, n)| FillView {
                url: n.url.clone(),
                supplied: n.supplied,
                served: n.served,
                trusted: self.trusted(SupplierId(u16::try_from(i).unwrap_or(u16::MAX))),
            })
            .collect()
    }

    /// Up to two nodes to ask for `owner_key`, in rendezvous order, stopping at this node
    /// (from there on Docker Hub is asked), passing over distrusted and passed-over nodes.
    fn candidates(&self, owner_key: &str) -> Vec<Candidate> {
        let servers = self.driver.listed();
        let own = self.driver.key();
        let ranked = rendezvous::rank(&servers, owner_key, |s| s.url.as_str(), |s| s.weight);
        let now = Instant::now();
        let mut suppliers = self.suppliers.lock();
        let mut out = Vec::with_capacity(2);
        for server in ranked {
            if server.key == own {
                break;
            }
            let (Ok(key), Ok(url)) = (
                PublicKey::from_base64(&server.key),
                PeerUrl::parse_canonical(&server.url),
            ) else {
                continue;
            };
            let Some(id) = suppliers.id_of(key, &server.url) else {
                continue;
            };
            if !self.trusted(id) {
                continue;
            }
            if let Some(node) = suppliers.get(id)
                && (node.passed_over_until.is_some_and(|until| now < until)
                    || node.schedule.waiting())
            {
                continue;
            }
            out.push(Candidate { url, key, id });
            if out.len() == 2 {
                break;
            }
        }
        out
    }

    fn pass_over(&self, id: SupplierId) {
        if let Some(node) = self.suppliers.lock().get(id) {
            node.passed_over_until = Some(Instant::now() + PASS_OVER_FOR);
        }
    }

    /// Asks the owner, hedged to the next node, within [`FILL_TIMEOUT`].
    async fn ask_owners(&self, ask: FillAsk<'_>) -> Option<Filled> {
        if !self.enabled {
            return None;
        }
        let candidates = self.candidates(ask.owner_key);
        let first = candidates.first()?;
        let deadline = tokio::time::sleep(FILL_TIMEOUT);
        tokio::pin!(deadline);
        let owner = self.ask_one(first, ask);
        tokio::pin!(owner);
        let hedge = tokio::time::sleep(HEDGE_DELAY);
        tokio::pin!(hedge);
        // Phase one: the owner alone, until it answers, fails or the hedge delay passes.
        let owner_done = tokio::select! {
            answer = &mut owner => match answer {
                Some(filled) => return Some(filled),
                None => true,
            },
            () = &mut hedge => false,
            () = &mut deadline => return None,
        };
        let next = candidates.get(1)?;
        let second = self.ask_one(next, ask);
        tokio::pin!(second);
        if owner_done {
            return tokio::select! {
                answer = &mut second => answer,
                () = &mut deadline => None,
            };
        }
        // Phase two: both; the first good answer wins.
        let (mut owner_failed, mut second_failed) = (false, false);
        loop {
            tokio::select! {
                answer = &mut owner, if !owner_failed => match answer {
                    Some(filled) => return Some(filled),
                    None => owner_failed = true,
                },
                answer = &mut second, if !second_failed => match answer {
                    Some(filled) => return Some(filled),
                    None => second_failed = true,
                },
                () = &mut deadline => return None,
            }
            if owner_failed && second_failed {
                return None;
            }
        }
    }

    /// One fill request to one node; `None` when it gave no usable answer.
    async fn ask_one(&self, to: &Candidate, ask: FillAsk<'_>) -> Option<Filled> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let request = FillRequest::new(
            self.driver.identity(),
            to.key,
            ask.kind,
            ask.key,
            crate::driver::now(),
            nonce,
        );
        let body = serde_json::to_vec(&request).unwrap_or_default();
        let outcome = match self
            .driver
            .peer_client()
            .fill(&to.url, body, ask.max_answer_bytes, FILL_TIMEOUT)
            .await
        {
            Ok(bytes) => match serde_json::from_slice::<FillAnswer>(&bytes) {
                Ok(answer) => match answer.check(&request, &to.key) {
                    Ok(()) => Ok(answer),
                    Err(err) => Err(("bad_answer", err.to_string())),
                },
                Err(_) => Err(("bad_answer", "not a fill answer".to_owned())),
            },
            Err(failure) => match failure.error {
                TransportError::Refused(status) => Err(("refused", status)),
                TransportError::Timeout => Err(("timeout", String::new())),
                TransportError::TooLarge => Err(("bad_answer", "an answer too large".to_owned())),
                other => Err(("unreachable", other.to_string())),
            },
        };
        match outcome {
            Ok(answer) => {
                self.metrics.fill("asked", "filled");
                let supplied = match (answer.outcome, answer.value) {
                    (FillOutcome::Found, Some(value)) => Supplied::Found(value),
                    (FillOutcome::NotFound, _) => Supplied::NotFound,
                    (FillOutcome::RepositoryNotFound, _) => Supplied::RepositoryNotFound,
                    // `check` refuses a found answer without a value.
                    (FillOutcome::Found, None) => return None,
                };
                Some(Filled {
                    supplied,
                    age: Duration::from_millis(answer.age_ms),
                    supplier: to.id,
                })
            }
            Err((outcome, reason)) => {
                self.metrics.fill("asked", outcome);
                // A refusal (the owner's budget or share is spent, it is busy) says nothing
                // bad of the node; anything else passes it over for a while.
                if outcome != "refused" {
                    self.pass_over(to.id);
                }
                if self.warned.allow(outcome) {
                    tracing::warn!(node = %to.url, outcome, reason = %reason, "a fill from another node failed; asking the next node or Docker Hub (said at most once a minute per kind)");
                }
                None
            }
        }
    }

    /// The owner's checks of one `POST /fill` body from `from`, in order of cost: the
    /// source address's rate, the body, whether the asker is listed, the time, that it names
    /// this node, its signature, its nonce, then the asking node's and the source network's
    /// rates. A refused request costs its source address more of its rate, and only that
    /// address: what others in a listed node's network send never spends the node's own.
    pub fn admit(
        &self,
        body: &[u8],
        from: IpAddr,
    ) -> Result<(FillRequest, OwnedSemaphorePermit), FillRefusal> {
        let result = self.admit_inner(body, from);
        match &result {
            Ok(_) => {}
            Err(FillRefusal::RateLimited(_) | FillRefusal::Busy | FillRefusal::Off) => {}
            Err(_) => {
                // What no honest node sends costs its source twenty requests' worth.
                let _ = self.per_address.spend(
                    ClientKey::Network(rate_limit_key(from)),
                    REFUSED_COST,
                    std::time::Instant::now(),
                );
            }
        }
        if let Err(refusal) = &result {
            self.metrics.fill("served", refusal.outcome());
        }
        result
    }

    fn admit_inner(
        &self,
        body: &[u8],
        from: IpAddr,
    ) -> Result<(FillRequest, OwnedSemaphorePermit), FillRefusal> {
        if !self.enabled {
            return Err(FillRefusal::Off);
        }
        let now = Instant::now();
        self.per_address
            .spend(ClientKey::Network(rate_limit_key(from)), 1, now)
            .map_err(FillRefusal::RateLimited)?;
        if body.len() > MAX_FILL_REQUEST_BYTES {
            return Err(FillRefusal::Malformed(format!(
                "larger than {MAX_FILL_REQUEST_BYTES} bytes"
            )));
        }
        let request: FillRequest = serde_json::from_slice(body).map_err(|e| {
            FillRefusal::Malformed(e.to_string().chars().take(160).collect::<String>())
        })?;
        let asker = request.from.to_base64();
        let listed = self.driver.listed();
        let Some(asker_url) = listed
            .iter()
            .find(|s| s.key == asker && asker != self.driver.key())
            .map(|s| s.url.as_str())
        else {
            return Err(FillRefusal::Unlisted);
        };
        let me = self.driver.identity().public_key();
        let nonce = request.verify(&me, crate::driver::now())?;
        if !self.nonces.lock().first_use(nonce, crate::driver::now()) {
            return Err(FillError::Replayed.into());
        }
        self.per_asker
            .spend(ClientKey::node(*request.from.as_bytes()), 1, now)
            .map_err(FillRefusal::RateLimited)?;
        self.per_network
            .spend(ClientKey::of(from), 1, now)
            .map_err(FillRefusal::RateLimited)?;
        let permit = Arc::clone(&self.slots)
            .try_acquire_owned()
            .map_err(|_| FillRefusal::Busy)?;
        let mut suppliers = self.suppliers.lock();
        if let Some(id) = suppliers.id_of(request.from, asker_url)
            && let Some(node) = suppliers.get(id)
        {
            node.served += 1;
        }
        drop(suppliers);
        Ok((request, permit))
    }

    /// The signed answer to an admitted `request`.
    pub fn answer(
        &self,
        request: &FillRequest,
        age: Duration,
        outcome: FillOutcome,
        value: Option<Box<RawValue>>,
    ) -> FillAnswer {
        self.metrics.fill(
            "served",
            match outcome {
                FillOutcome::Found => "ok",
                _ => "not_found",
            },
        );
        FillAnswer::sign(self.driver.identity(), request, age, outcome, value)
    }

    /// Counts a fill the owner could not answer (its budget is spent, the hub failed): the
    /// asker goes on to the next node or to Docker Hub.
    pub fn unavailable(&self) {
        self.metrics.fill("served", "unavailable");
    }

    /// Counts a fill refused because the asking network's share of this node's Docker Hub
    /// budget is spent: the asker is told when to come back.
    pub fn share_spent(&self) {
        self.metrics.fill("served", "rate_limited");
    }
}

impl Filler for Fills {
    fn fill<'a>(&'a self, ask: FillAsk<'a>) -> FillFuture<'a> {
        Box::pin(self.ask_owners(ask))
    }

    fn asks_others(&self, owner_key: &str) -> bool {
        self.enabled && !self.candidates(owner_key).is_empty()
    }

    fn trusted(&self, supplier: SupplierId) -> bool {
        let until = self
            .distrusted_until
            .get(usize::from(supplier.0))
            .map_or(0, |at| at.load(Ordering::Relaxed));
        until == 0 || unix_ms() >= until
    }

    fn take(&self, supplier: SupplierId, news: News) -> Use {
        let mut suppliers = self.suppliers.lock();
        let Some(node) = suppliers.get(supplier) else {
            return Use::Wait;
        };
        let mut rng = self.rng.lock();
        let check = match node.schedule.take(&mut *rng) {
            Take::Wait => return Use::Wait,
            Take::Check => Some(CheckKind::Scheduled),
            Take::Use => (news == News::Changed && rng.random_ratio(1, CHANGED_CHECK_ONE_IN))
                .then_some(CheckKind::Extra),
        };
        node.supplied += 1;
        Use::Take(check)
    }

    fn life_share(&self, supplier: SupplierId) -> (u32, u32) {
        self.suppliers
            .lock()
            .get(supplier)
            .map_or((1, 4), |node| node.schedule.life_share())
    }

    fn refused(&self, supplier: SupplierId, reason: &str) {
        self.metrics.fill("asked", "unusable");
        self.pass_over(supplier);
        if self.warned.allow("unusable") {
            tracing::warn!(
                reason,
                "another node's fill could not be used; asking Docker Hub (said at most once a minute)"
            );
        }
    }

    fn judged(&self, supplier: SupplierId, ask: FillAsk<'_>, check: CheckKind, judged: Judged) {
        let scheduled = check == CheckKind::Scheduled;
        let evidence = match judged {
            Judged::Agreed => {
                if let Some(node) = self.suppliers.lock().get(supplier) {
                    node.schedule.agreed_with(scheduled);
                }
                return;
            }
            Judged::NotMade => {
                if scheduled && let Some(node) = self.suppliers.lock().get(supplier) {
                    node.schedule.not_made();
                }
                return;
            }
            Judged::Disagreed(evidence) => evidence,
        };
        let Some(slot) = self.distrusted_until.get(usize::from(supplier.0)) else {
            return;
        };
        let until =
            unix_ms().saturating_add(u64::try_from(DISTRUST_FOR.as_millis()).unwrap_or(u64::MAX));
        let before = slot.swap(until, Ordering::Relaxed);
        let url = {
            let mut suppliers = self.suppliers.lock();
            match suppliers.get(supplier) {
                Some(node) => {
                    // When trust returns, it starts afresh: its first fill is checked.
                    node.schedule.reset();
                    node.url.clone()
                }
                None => String::new(),
            }
        };
        // Logged once per distrust, with the evidence.
        if before == 0 || unix_ms() >= before {
            tracing::warn!(
                node = %url,
                resource = ask.kind,
                key = ask.key,
                evidence = %evidence,
                hours = DISTRUST_FOR.as_secs() / 3600,
                "a fill from this node disagrees with Docker Hub; its fills are not used and every entry it supplied is dropped"
            );
        }
        for purge in self.purgers.lock().iter() {
            purge(supplier);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_statuses_and_labels() {
        assert_eq!(FillRefusal::Busy.status(), 503);
        assert_eq!(
            FillRefusal::RateLimited(Duration::from_secs(3)).status(),
            429
        );
        assert_eq!(FillRefusal::Malformed("x".into()).status(), 400);
        assert_eq!(FillRefusal::Unlisted.status(), 403);
        assert_eq!(
            FillRefusal::Refused(FillError::Replayed).outcome(),
            "replayed"
        );
        assert_eq!(
            FillRefusal::Refused(FillError::BadSignature).outcome(),
            "bad_signature"
        );
    }

    #[test]
    fn suppliers_get_one_id_per_key_and_follow_a_moved_url() {
        let mut suppliers = Suppliers::default();
        let a = crate::federation::Identity::from_seed([1; 32]).public_key();
        let b = crate::federation::Identity::from_seed([2; 32]).public_key();
        let id_a = suppliers.id_of(a, "http://a").expect("an id");
        assert_eq!(suppliers.id_of(a, "http://a2"), Some(id_a));
        assert_ne!(suppliers.id_of(b, "http://b"), Some(id_a));
        assert_eq!(
            suppliers.get(id_a).map(|n| n.url.clone()),
            Some("http://a2".into())
        );
    }
}
