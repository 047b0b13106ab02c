//! Fills: the network of nodes as one cache. On a miss, a node asks the resource's owner
//! among the listed nodes for its copy before Docker Hub; the owner answers from its cache,
//! or asks Docker Hub once; the asker checks some fills against Docker Hub, on a schedule
//! no owner can predict, and an owner caught lying loses every entry it supplied.
//!
//! # Layout
//!
//! - here: the node's one [`Fills`], which holds the asker and the owner and what both
//!   know of the other nodes, and what `/servers?all=true` shows of it.
//! - [`filler`]: what the caches call ([`Filler`]) and what it trades in.
//! - [`asker`]: whom to ask (rendezvous order, hedged to the next node) and what to make of
//!   the answer: the [`Filler`] the caches hold.
//! - [`owner`]: the checks of another node's `POST /fill` before it is served (listed,
//!   signed, fresh, within its shares, a bounded number at once), and the signed answer.
//! - [`trust`]: which suppliers are asked, which of their fills are checked, how long what
//!   they supplied lives, and until when a liar is distrusted. Plain state.
//! - [`verify`]: what time explains between a fill and Docker Hub's answer now. Pure.
//! - [`wire`]: the signed request and answer, the same on every node. Pure.
//!
//! The cache's side of a fill (taking it, checking it, dropping what a liar supplied) is in
//! [`crate::cache`], the route in `http::routes::fill`. Pure parts read no clock: time is
//! passed in, as in the federation core.

use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use self::asker::Asker;
use self::trust::{Distrusted, Suppliers};
use crate::driver::Driver;
use crate::metrics::Metrics;
use crate::tools::clock;

pub mod asker;
pub mod filler;
pub mod owner;
pub mod trust;
pub mod verify;
pub mod wire;

pub use self::filler::{
    CheckKind, FillAsk, FillFuture, Filled, Filler, Judged, News, Supplied, SupplierId, Use,
};
pub(crate) use self::filler::{fetched_at, outcome_of};
pub use self::owner::{FillRefusal, Owner};

/// The fill side of the node: the asker (the caches' [`Filler`]) and the owner, and what
/// both know of the other nodes. Shared behind the node's `Arc`.
#[derive(Debug)]
pub struct Fills {
    enabled: bool,
    asker: Arc<Asker>,
    owner: Owner,
    suppliers: Arc<Mutex<Suppliers>>,
    distrusted: Arc<Distrusted>,
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

impl Fills {
    /// The fill side of a node; `enabled` is `--fill`.
    pub fn new(enabled: bool, driver: Arc<Driver>, metrics: Metrics) -> Fills {
        let suppliers = Arc::new(Mutex::new(Suppliers::default()));
        let distrusted = Arc::new(Distrusted::default());
        Fills {
            enabled,
            asker: Arc::new(Asker::new(
                enabled,
                Arc::clone(&driver),
                metrics.clone(),
                Arc::clone(&suppliers),
                Arc::clone(&distrusted),
            )),
            owner: Owner::new(enabled, driver, metrics, Arc::clone(&suppliers)),
            suppliers,
            distrusted,
        }
    }

    /// The filler the caches ask on a miss.
    pub fn filler(&self) -> Arc<dyn Filler> {
        Arc::clone(&self.asker) as Arc<dyn Filler>
    }

    /// The owner's side: admitting and answering other nodes' requests.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// Draws the checks from a generator seeded with `seed`, so that a test can repeat a run.
    #[cfg(any(test, feature = "testkit"))]
    pub fn seed_checks(&self, seed: u64) {
        self.asker.seed_checks(seed);
    }

    /// Whether `--fill` is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Registers a cache's purger: called with a supplier that lost this node's trust.
    pub fn on_distrust(&self, purge: impl Fn(SupplierId) + Send + Sync + 'static) {
        self.asker.on_distrust(purge);
    }

    /// What `/servers?all=true` shows of fills, one entry per node that filled or asked.
    pub fn view(&self) -> Vec<FillView> {
        let now = clock::wall();
        let suppliers = self.suppliers.lock();
        suppliers
            .iter()
            .filter(|(_, n)| n.supplied > 0 || n.served > 0)
            .map(|(id, n)| FillView {
                url: n.url.clone(),
                supplied: n.supplied,
                served: n.served,
                trusted: self.distrusted.trusted(id, now),
            })
            .collect()
    }
}
