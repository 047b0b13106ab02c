//! The asker's side of a fill: this node asking the owner of a resource for its copy
//! before Docker Hub, and what it makes of the answer.
//!
//! The owner is the first of the listed nodes in weighted rendezvous order of the
//! resource's owner key, the function status.js uses. When that is this node, the cache asks
//! Docker Hub. Otherwise the owner is asked, and if it has not answered within
//! [`HEDGE_DELAY`] the next node in order too; the first good answer wins, and when neither
//! gives one within [`FILL_TIMEOUT`] the cache asks Docker Hub itself. Nodes whose answers
//! were unusable are passed over for a while; fills are checked against Docker Hub on each
//! supplier's schedule ([`super::trust`]), a supplier whose owed check is not made yet is not
//! asked, and a node whose fills disagreed with Docker Hub is not asked for
//! [`DISTRUST_FOR`], and every entry it supplied is dropped.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng as _, RngExt as _, SeedableRng as _};

use super::filler::{
    CheckKind, FillAsk, FillFuture, Filled, Filler, Judged, News, Supplied, SupplierId, Use,
};
use super::trust::{Distrusted, Suppliers, Take};
use super::wire::{FillAnswer, FillOutcome, FillRequest, NONCE_LEN};
use crate::driver::Driver;
use crate::driver::transport::TransportError;
use crate::federation::{PeerUrl, PublicKey, rendezvous};
use crate::logging::WarnThrottle;
use crate::metrics::Metrics;
use crate::tools::clock;

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

/// One node to ask.
#[derive(Debug, Clone)]
struct Candidate {
    url: PeerUrl,
    key: PublicKey,
    id: SupplierId,
}

/// The asking side of the node: the [`Filler`] every cache of the node holds.
pub struct Asker {
    enabled: bool,
    driver: Arc<Driver>,
    metrics: Metrics,
    /// Shared with the owner, which counts the requests it served.
    suppliers: Arc<Mutex<Suppliers>>,
    distrusted: Arc<Distrusted>,
    purgers: Mutex<Vec<Purger>>,
    warned: WarnThrottle,
    /// Draws which fills are checked: a generator of this node's own, seeded from the
    /// operating system, so no supplier can work out the draws.
    rng: Mutex<StdRng>,
}

type Purger = Box<dyn Fn(SupplierId) + Send + Sync>;

impl fmt::Debug for Asker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Asker")
            .field("enabled", &self.enabled)
            .field("suppliers", &self.suppliers.lock().len())
            .finish_non_exhaustive()
    }
}

impl Asker {
    pub(super) fn new(
        enabled: bool,
        driver: Arc<Driver>,
        metrics: Metrics,
        suppliers: Arc<Mutex<Suppliers>>,
        distrusted: Arc<Distrusted>,
    ) -> Asker {
        Asker {
            enabled,
            driver,
            metrics,
            suppliers,
            distrusted,
            purgers: Mutex::new(Vec::new()),
            warned: WarnThrottle::default(),
            rng: Mutex::new(StdRng::from_rng(&mut rand::rng())),
        }
    }

    /// Draws the checks from a generator seeded with `seed`, so that a test can repeat a run.
    #[cfg(any(test, feature = "testkit"))]
    pub(super) fn seed_checks(&self, seed: u64) {
        *self.rng.lock() = StdRng::seed_from_u64(seed);
    }

    /// Registers a cache's purger: called with a supplier that lost this node's trust.
    pub(super) fn on_distrust(&self, purge: impl Fn(SupplierId) + Send + Sync + 'static) {
        self.purgers.lock().push(Box::new(purge));
    }

    /// Up to two nodes to ask for `owner_key`, in rendezvous order, stopping at this node
    /// (from there on Docker Hub is asked), passing over distrusted and passed-over nodes.
    fn candidates(&self, owner_key: &str) -> Vec<Candidate> {
        let servers = self.driver.listed();
        let own = self.driver.key();
        let ranked = rendezvous::rank(&servers, owner_key, |s| s.url.as_str(), |s| s.weight);
        let now = clock::now();
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
            node.passed_over_until = Some(clock::now() + PASS_OVER_FOR);
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
            clock::wall(),
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
}

impl Filler for Asker {
    fn fill<'a>(&'a self, ask: FillAsk<'a>) -> FillFuture<'a> {
        Box::pin(self.ask_owners(ask))
    }

    fn asks_others(&self, owner_key: &str) -> bool {
        self.enabled && !self.candidates(owner_key).is_empty()
    }

    fn trusted(&self, supplier: SupplierId) -> bool {
        self.distrusted.trusted(supplier, clock::wall())
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
        let now = clock::wall();
        let Some(was_trusted) =
            self.distrusted
                .distrust(supplier, now, now.saturating_add(DISTRUST_FOR))
        else {
            return;
        };
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
        if was_trusted {
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
