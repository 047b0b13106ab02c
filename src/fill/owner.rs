//! The owner's side of a fill: another node's `POST /fill`, checked before it is served,
//! and the signed answer.
//!
//! Answering only for nodes this node lists, once per signed request naming this node, each
//! source address, asking node and source network within its share of requests, each source
//! network within its share of this node's Docker Hub budget (as a client's requests would
//! be; the route charges it), a bounded number at once.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::trust::Suppliers;
use super::wire::{
    FillAnswer, FillError, FillOutcome, FillRequest, MAX_FILL_REQUEST_BYTES, NonceCache,
};
use crate::driver::Driver;
use crate::federation::PublicKey;
use crate::federation::address::{rate_limit_key, subnet_of};
use crate::hub::HubError;
use crate::metrics::Metrics;
use crate::tools::clock::{self, Instant};
use crate::tools::limiter::{KeyedLimiter, Limited, Rate};

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
/// Sources (addresses, asking nodes, networks) tracked by each rate limit at once.
const MAX_SOURCES: usize = 16_384;
/// Nonces of served requests kept, for a window of two minutes.
const NONCES: usize = 1 << 16;

/// Why a fill request was not served. Its HTTP answer is the one error-to-answer mapping's
/// (`http::error`); its outcome label is [`FillRefusal::outcome`].
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
    /// Admitted, for a resource no cache here holds.
    #[error("no such resource")]
    NoSuchResource,
    /// Admitted, for a key that is no Docker Hub name.
    #[error("not a valid Docker Hub name")]
    NotAName,
    /// The asking network's share of this node's Docker Hub budget is spent: the asker is
    /// told when to come back, as a client would be.
    #[error(transparent)]
    ShareSpent(HubError),
    /// Nothing cached and Docker Hub refused or failed: the asker goes on to the next node
    /// or to Docker Hub.
    #[error(transparent)]
    Unavailable(HubError),
    /// The cached value could not be written as JSON.
    #[error("cannot write the answer")]
    Unwritable,
}

impl FillRefusal {
    /// The outcome label in `dbs_fills_total{role="served"}`.
    pub fn outcome(&self) -> &'static str {
        match self {
            FillRefusal::Off => "off",
            FillRefusal::Busy => "busy",
            FillRefusal::RateLimited(_) | FillRefusal::ShareSpent(_) => "rate_limited",
            FillRefusal::Malformed(_) | FillRefusal::NoSuchResource | FillRefusal::NotAName => {
                "malformed"
            }
            FillRefusal::Unlisted => "unlisted",
            FillRefusal::Refused(err) => err.outcome(),
            FillRefusal::Unavailable(_) | FillRefusal::Unwritable => "unavailable",
        }
    }

    /// The refusal of a lookup that found no answer to send: the asking network's share
    /// spent, or Docker Hub unavailable.
    pub fn of_lookup(err: &HubError) -> FillRefusal {
        match err {
            HubError::ClientShare { .. } => FillRefusal::ShareSpent(err.clone()),
            _ => FillRefusal::Unavailable(err.clone()),
        }
    }
}

/// The owning side of the node: other nodes' requests, their limits (per source address,
/// per asking node, per source network), the nonces already served, and the slots for
/// fills answered at once.
pub struct Owner {
    enabled: bool,
    driver: Arc<Driver>,
    metrics: Metrics,
    /// Shared with the asker; the owner counts the requests it served.
    suppliers: Arc<Mutex<Suppliers>>,
    per_address: Mutex<KeyedLimiter<IpAddr, Instant>>,
    per_asker: Mutex<KeyedLimiter<PublicKey, Instant>>,
    per_network: Mutex<KeyedLimiter<IpAddr, Instant>>,
    nonces: Mutex<NonceCache>,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("enabled", &self.enabled)
            .field("slots", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

impl Owner {
    pub(super) fn new(
        enabled: bool,
        driver: Arc<Driver>,
        metrics: Metrics,
        suppliers: Arc<Mutex<Suppliers>>,
    ) -> Owner {
        Owner {
            enabled,
            driver,
            metrics,
            suppliers,
            per_address: per_minute(REQUESTS_PER_ADDRESS),
            per_asker: per_minute(REQUESTS_PER_ASKER),
            per_network: per_minute(REQUESTS_PER_NETWORK),
            nonces: Mutex::new(NonceCache::new(NONCES)),
            slots: Arc::new(Semaphore::new(FILL_SLOTS)),
        }
    }
}

/// A limit of `n` requests a minute for each of [`MAX_SOURCES`] sources.
fn per_minute<K: std::hash::Hash + Eq>(n: u32) -> Mutex<KeyedLimiter<K, Instant>> {
    Mutex::new(KeyedLimiter::new(
        Rate::new(n, n, Duration::from_secs(60)),
        MAX_SOURCES,
    ))
}

/// One request of `key` against `limiter`, refused with when to come back.
fn spend<K: std::hash::Hash + Eq>(
    limiter: &Mutex<KeyedLimiter<K, Instant>>,
    key: K,
    now: Instant,
) -> Result<(), FillRefusal> {
    limiter
        .lock()
        .take(key, 1, now)
        .map_err(|limited| FillRefusal::RateLimited(Limited::retry_in(limited)))
}

impl Owner {
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
        if let Err(refusal) = &result {
            if !matches!(
                refusal,
                FillRefusal::RateLimited(_) | FillRefusal::Busy | FillRefusal::Off
            ) {
                // What no honest node sends costs its source twenty requests' worth.
                self.per_address
                    .lock()
                    .drain(&rate_limit_key(from), REFUSED_COST, clock::now());
            }
            self.not_served(refusal);
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
        let limits = self;
        let now = clock::now();
        spend(&limits.per_address, rate_limit_key(from), now)?;
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
        let wall = clock::wall();
        let nonce = request.verify(&me, wall)?;
        if !limits.nonces.lock().first_use(nonce, wall) {
            return Err(FillError::Replayed.into());
        }
        spend(&limits.per_asker, request.from, now)?;
        spend(&limits.per_network, subnet_of(from), now)?;
        let permit = Arc::clone(&limits.slots)
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

    /// Counts a fill request this node did not serve, by why.
    pub fn not_served(&self, refusal: &FillRefusal) {
        self.metrics.fill("served", refusal.outcome());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_their_outcome_labels() {
        let label = |refusal: FillRefusal| refusal.outcome();
        assert_eq!(label(FillRefusal::Refused(FillError::Replayed)), "replayed");
        assert_eq!(
            label(FillRefusal::Refused(FillError::BadSignature)),
            "bad_signature"
        );
        assert_eq!(label(FillRefusal::NotAName), "malformed");
        let share = HubError::ClientShare {
            retry_in: Duration::from_secs(3),
        };
        assert_eq!(label(FillRefusal::of_lookup(&share)), "rate_limited");
        assert_eq!(
            label(FillRefusal::of_lookup(&HubError::Timeout)),
            "unavailable"
        );
        assert_eq!(label(FillRefusal::Unwritable), "unavailable");
    }
}
