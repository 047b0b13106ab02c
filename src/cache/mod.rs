//! The resource cache: one upstream call per key, stale-while-revalidate, stale-if-error.
//!
//! Generic over the upstream resource ([`Resource`]): the build status of a tag (the
//! [`StatusCache`], keyed by `organization/repository:tag`), and the repository, tag list
//! and tag resources the Docker badges derive from, each its own cache with its own TTL. A status is fresh for the TTL; after that it is
//! still served at once while exactly one background refresh runs, and on upstream errors
//! it keeps being served for up to `max_stale` (answers say they are stale, and how old).
//! Concurrent misses for one key wait on the one fetch in flight (coalescing). Not-found
//! answers are kept briefly. The map holds at most `capacity` entries; beyond that the
//! least recently used of a sample are evicted, so growth is bounded whatever clients ask.
//!
//! With a [`Filler`], a miss first asks the resource's owner among the network's nodes for
//! its copy (kept for what remains of its lifetime, and marked with who supplied it), and
//! only then Docker Hub; a sample of fills is checked against the hub ([`verify`]). The
//! network side of that, over the federation's driver, is [`crate::fill`].
//!
//! Every dashmap guard here is dropped before any `.await` (clippy enforces it): a guard
//! held across an await would block the shard for every other request.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::federation::time::millis;
use crate::fill::verify;
use crate::fill::wire::ANSWER_ENVELOPE_BYTES;
use crate::fill::{CheckKind, FillAsk, Filled, Filler, Judged, News, SupplierId, Use};
use crate::hub::names::ImageRef;
use crate::hub::{ClientKey, HubError, HubStatus};
use crate::metrics::Metrics;
use crate::tools::clock;

pub mod resources;

/// Where statuses come from: Docker Hub in the node, a stand-in in unit tests.
pub trait Upstream: Send + Sync + 'static {
    /// Asks upstream for the status of one image tag, on behalf of `client` (a cold miss
    /// it caused), whose share of the upstream budget pays for it; `None` is the cache's own
    /// refresh. One method, so no implementation can drop the client by accident.
    fn fetch(
        &self,
        image: &ImageRef,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<HubStatus, HubError>> + Send;

    /// Whether checking another node's fill fits the budget now (the requests of a check
    /// go out inside [`crate::hub::budget::as_check`]). Stand-ins have no budget to spare.
    fn has_room(&self) -> bool {
        false
    }

    /// Charges `client` for a cold miss another node's fill answers.
    fn charge(&self, _client: ClientKey) -> Result<(), HubError> {
        Ok(())
    }
}

/// One upstream resource the cache keeps: how to name a key in the map, how to fetch it,
/// and how it travels in fills between nodes. Every [`Upstream`] is the build-status
/// resource.
pub trait Resource: Send + Sync + 'static {
    /// What names one resource (an image tag, a repository).
    type Key: Clone + Send + Sync + 'static;
    /// What upstream answers; cloned to every waiter, so large values sit behind an `Arc`.
    type Value: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static;
    /// The resource's name in fills.
    const KIND: &'static str;
    /// The largest fill answer read for it: what its real answers need, so that a lying
    /// owner's answer costs this node kilobytes, not a megabyte.
    const MAX_FILL_BYTES: usize;
    /// The map key of `key`, in one allocation.
    fn key_of(key: &Self::Key) -> Box<str>;
    /// The key the resource's owner is chosen by (weighted rendezvous over listed nodes).
    fn owner_key(key: &Self::Key) -> String;
    /// The key a fill request names, as [`Resource::key_of`] writes it; `None` when it is no
    /// valid name (nothing is asked of Docker Hub for it).
    fn parse_key(text: &str) -> Option<Self::Key>;
    /// Asks upstream for the resource, on behalf of `client` when a client's miss caused it.
    fn get(
        &self,
        key: &Self::Key,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<Self::Value, HubError>> + Send;
    /// [`Upstream::has_room`].
    fn has_room(&self) -> bool {
        false
    }
    /// [`Upstream::charge`].
    fn charge(&self, _client: ClientKey) -> Result<(), HubError> {
        Ok(())
    }
    /// The value as a fill carries it (JSON).
    fn write_value(value: &Self::Value) -> String;
    /// A value another node supplied for `key`, checked as the hub's answer would be, and
    /// refused when no answer of the hub could hold it.
    fn read_value(key: &Self::Key, json: &str) -> Result<Self::Value, String>;
    /// The latest push the value names (a tag's, a repository's last update): a copy can
    /// be no older than that.
    fn pushed(_value: &Self::Value) -> Option<std::time::SystemTime> {
        None
    }
    /// Whether Docker Hub's answer at `now` explains a fill fetched at `filled_at`
    /// ([`verify`]).
    fn explains(
        filled: &Result<Self::Value, HubError>,
        hub: &Result<Self::Value, HubError>,
        filled_at: std::time::SystemTime,
        now: std::time::SystemTime,
    ) -> verify::Verdict;
}

impl<U: Upstream> Resource for U {
    type Key = ImageRef;
    type Value = HubStatus;
    const KIND: &'static str = "status";
    /// A status is a few dozen bytes.
    const MAX_FILL_BYTES: usize = ANSWER_ENVELOPE_BYTES + 512;
    fn key_of(image: &ImageRef) -> Box<str> {
        key_of(image)
    }
    /// status.js's item key, so that a browser's `/build` lands on the owner and costs no
    /// fill.
    fn owner_key(image: &ImageRef) -> String {
        crate::federation::rendezvous::item_key(
            image.organization.as_str(),
            image.repository.as_str(),
            image.tag.as_str(),
        )
    }
    fn parse_key(text: &str) -> Option<ImageRef> {
        parse_image_key(text)
    }
    fn get(
        &self,
        image: &ImageRef,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<HubStatus, HubError>> + Send {
        self.fetch(image, client)
    }
    fn has_room(&self) -> bool {
        Upstream::has_room(self)
    }
    fn charge(&self, client: ClientKey) -> Result<(), HubError> {
        Upstream::charge(self, client)
    }
    fn write_value(value: &HubStatus) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }
    fn read_value(_image: &ImageRef, json: &str) -> Result<HubStatus, String> {
        let status: HubStatus = serde_json::from_str(json).map_err(|e| e.to_string())?;
        // The tag endpoint says only that a tag exists: success, never building or failed.
        if status.source == crate::hub::StatusSource::Tag && status.status != 10 {
            return Err(format!(
                "a status {} from the tag endpoint, which only ever says 10",
                status.status
            ));
        }
        Ok(status)
    }
    fn explains(
        filled: &Result<HubStatus, HubError>,
        hub: &Result<HubStatus, HubError>,
        filled_at: std::time::SystemTime,
        _now: std::time::SystemTime,
    ) -> verify::Verdict {
        verify::status(filled, hub, filled_at)
    }
}

/// `organization/repository:tag` back into a checked image name.
pub fn parse_image_key(text: &str) -> Option<ImageRef> {
    let (name, tag) = text.split_once(':')?;
    let (organization, repository) = name.split_once('/')?;
    ImageRef::parse(organization, repository, tag).ok()
}

/// How long a "not found" is kept at most: a repository pushed a minute after someone
/// looked for it should not stay missing for the whole TTL.
const NOT_FOUND_TTL: Duration = Duration::from_secs(60);
/// After a failed background refresh, the wait before the next one; the hub client's own
/// backoff keeps the hub safe, this keeps one key from retrying on every request.
const REFRESH_RETRY: Duration = Duration::from_secs(10);
/// How many entries are looked at to choose the ones to evict.
const EVICTION_SAMPLE: usize = 64;

/// Cache settings, from the command line (and, for the badge resources, their TTLs).
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub ttl: Duration,
    pub max_stale: Duration,
    pub capacity: usize,
}

/// What a lookup found, with what a response needs to describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<V = HubStatus> {
    /// The status, or why there is none.
    pub result: Result<V, HubError>,
    /// How old the answer is.
    pub age: Duration,
    /// How long it stays fresh (zero once stale).
    pub fresh_for: Duration,
    /// Served past its freshness (while refreshing, or because upstream fails).
    pub stale: bool,
    /// For a fresh answer: until when every lookup of this key gives the same answer to the
    /// second (status, whole seconds of age and of freshness left), so a response built
    /// from it may be reused until then. `None` when it must be asked again every time.
    pub unchanged_until: Option<Instant>,
}

/// The cache of one resource. Cloning shares it.
#[derive(Debug)]
pub struct ResourceCache<U: Resource> {
    inner: Arc<Inner<U>>,
}

/// The build-status cache: the resource cache of [`Upstream`]s.
pub type StatusCache<U> = ResourceCache<U>;

impl<U: Resource> Clone for ResourceCache<U> {
    fn clone(&self) -> Self {
        ResourceCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
struct Inner<U: Resource> {
    map: DashMap<Box<str>, Entry<U::Value>>,
    upstream: U,
    settings: CacheSettings,
    epoch: Instant,
    /// Added to the time since `epoch`, so that an entry another node fetched before this
    /// cache existed still has a time of its own (`fetched_ms` = now − its age).
    offset_ms: u64,
    metrics: Metrics,
    /// The network's other caches, asked on a miss before upstream.
    filler: Option<Arc<dyn Filler>>,
    /// Whether this cache reports its size as `dbs_cache_entries` (the status cache does;
    /// one gauge cannot carry several caches' sizes).
    reports_entries: bool,
}

/// One cached key. Kept small: a node may hold a million of them.
#[derive(Debug)]
struct Entry<V> {
    slot: Slot<V>,
    /// Seconds since the cache's epoch when this key was last asked for (for eviction).
    last_used: AtomicU32,
}

#[derive(Debug)]
enum Slot<V> {
    /// A fetch is in flight; waiters subscribe to its outcome.
    Loading(Waiting<V>),
    Ready(Ready<V>),
}

#[derive(Debug, Clone)]
struct Ready<V> {
    answer: Answer<V>,
    /// Milliseconds since the cache's epoch when upstream answered.
    fetched_ms: u64,
    /// How long it stays fresh, in milliseconds: the resource's lifetime, less for what a
    /// supplier with little history supplied.
    life_ms: u64,
    /// Whether a background refresh is running.
    refreshing: bool,
    /// The node that supplied the answer, if another node did.
    supplier: Option<SupplierId>,
    /// No background refresh before this (milliseconds since the epoch).
    retry_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer<V> {
    Found(V),
    NotFound,
    RepositoryNotFound,
}

/// The outcome of one fetch, as sent to the requests waiting on it.
type Fetched<V = HubStatus> = Result<V, HubError>;

/// Where the requests waiting on one fetch learn its outcome.
type Waiting<V> = watch::Receiver<Option<Delivered<V>>>;

/// The outcome with how old it already was when it came (a fill's age) and how long it
/// stays fresh from when it was fetched.
type Delivered<V> = (Fetched<V>, Duration, Duration);

/// What the cache knew of a key before a fetch replaced it.
#[derive(Debug, Clone)]
struct Known<V> {
    answer: Answer<V>,
    fetched_ms: u64,
}

/// A fetch's outcome: how old it is, who supplied it if another node did, and which check
/// it gets.
struct Got<V> {
    result: Fetched<V>,
    age: Duration,
    supplier: Option<SupplierId>,
    check: Option<CheckKind>,
}

impl<V> Got<V> {
    /// Docker Hub's answer, asked now.
    fn hub(result: Fetched<V>) -> Got<V> {
        Got {
            result,
            age: Duration::ZERO,
            supplier: None,
            check: None,
        }
    }
}

impl<V: Clone> Answer<V> {
    fn to_result(&self) -> Fetched<V> {
        match self {
            Answer::Found(value) => Ok(value.clone()),
            Answer::NotFound => Err(HubError::NotFound),
            Answer::RepositoryNotFound => Err(HubError::RepositoryNotFound),
        }
    }
}

/// Whether Docker Hub answered: found, or found missing.
fn answered<V>(result: &Fetched<V>) -> bool {
    matches!(
        result,
        Ok(_) | Err(HubError::NotFound | HubError::RepositoryNotFound)
    )
}

/// How long a scheduled check of a fill may wait for room in the budget's reserve (its
/// supplier is not asked meanwhile); after that it is given up, and the supplier's next
/// fill is checked instead.
pub const CHECK_WAIT: Duration = Duration::from_secs(300);
/// How often a check waiting for room looks again.
const CHECK_POLL: Duration = Duration::from_secs(1);

impl<U: Resource> ResourceCache<U> {
    /// An empty cache in front of `upstream`, reporting its size as `dbs_cache_entries`.
    pub fn new(upstream: U, settings: CacheSettings, metrics: Metrics) -> ResourceCache<U> {
        Self::build(upstream, settings, metrics, true)
    }

    /// An empty cache of a badge resource: counted in the lookup metrics, but not in
    /// `dbs_cache_entries`, which stays the status cache's size.
    pub fn for_resource(
        upstream: U,
        settings: CacheSettings,
        metrics: Metrics,
    ) -> ResourceCache<U> {
        Self::build(upstream, settings, metrics, false)
    }

    fn build(
        upstream: U,
        settings: CacheSettings,
        metrics: Metrics,
        reports_entries: bool,
    ) -> ResourceCache<U> {
        ResourceCache {
            inner: Arc::new(Inner {
                map: DashMap::new(),
                upstream,
                settings: CacheSettings {
                    capacity: settings.capacity.max(1),
                    ..settings
                },
                epoch: Instant::now(),
                offset_ms: millis(settings.ttl.saturating_add(settings.max_stale)),
                metrics,
                filler: None,
                reports_entries,
            }),
        }
    }

    /// This cache, asking `filler` on a miss before upstream. Made right after the cache,
    /// before it is shared: a cache already shared is returned unchanged, and says so.
    pub fn filled_by(self, filler: Arc<dyn Filler>) -> ResourceCache<U> {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.filler = Some(filler);
                ResourceCache {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => {
                tracing::error!(
                    resource = U::KIND,
                    "a shared cache cannot be given a filler; it keeps asking upstream alone"
                );
                ResourceCache { inner }
            }
        }
    }

    /// Drops every entry `supplier` supplied; see [`ResourceCache::purger`].
    pub fn drop_supplied_by(&self, supplier: SupplierId) -> usize {
        let before = self.inner.map.len();
        self.inner.map.retain(|_, entry| {
            !matches!(&entry.slot, Slot::Ready(ready) if ready.supplier == Some(supplier))
        });
        before.saturating_sub(self.inner.map.len())
    }

    /// A function that drops what a supplier supplied from this cache, for as long as the
    /// cache lives (it holds the cache weakly, so a filler keeping it keeps no cache alive).
    pub fn purger(&self) -> impl Fn(SupplierId) + Send + Sync + 'static {
        let weak: Weak<Inner<U>> = Arc::downgrade(&self.inner);
        move |supplier| {
            if let Some(inner) = weak.upgrade() {
                ResourceCache { inner }.drop_supplied_by(supplier);
            }
        }
    }

    /// The upstream this cache asks.
    pub fn upstream(&self) -> &U {
        &self.inner.upstream
    }

    /// Statuses held now (including fetches in flight).
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    fn now_ms(&self) -> u64 {
        millis(self.inner.epoch.elapsed()).saturating_add(self.inner.offset_ms)
    }

    /// The instant of a time in this cache's milliseconds.
    fn instant_at(&self, ms: u64) -> Instant {
        self.inner.epoch + Duration::from_millis(ms.saturating_sub(self.inner.offset_ms))
    }

    fn ttl_of(&self, answer: &Answer<U::Value>) -> Duration {
        match answer {
            Answer::Found(_) => self.inner.settings.ttl,
            Answer::NotFound | Answer::RepositoryNotFound => {
                self.inner.settings.ttl.min(NOT_FOUND_TTL)
            }
        }
    }

    /// The status of `image`: from the cache when fresh, stale while one refresh runs, or
    /// from the one upstream call that all concurrent misses share.
    pub async fn get(&self, image: &U::Key) -> Lookup<U::Value> {
        self.get_for(image, None).await
    }

    /// [`StatusCache::get`] for `client`: a miss it causes is paid from its share of the
    /// upstream budget ([`Upstream::fetch`]); hits, stale answers, joined fetches and
    /// background refreshes cost it nothing.
    pub async fn get_for(&self, image: &U::Key, client: Option<ClientKey>) -> Lookup<U::Value> {
        self.lookup(image, client, true, None).await
    }

    /// [`StatusCache::get_for`] that waits at most `patience` for a fetch: when nothing
    /// servable is cached and the fetch has not ended by then, it answers
    /// [`HubError::Pending`] and the fetch goes on, its outcome cached for the next request.
    /// Hits and stale answers never wait, so they never meet the deadline.
    pub async fn get_within(
        &self,
        image: &U::Key,
        client: Option<ClientKey>,
        patience: Duration,
    ) -> Lookup<U::Value> {
        self.lookup(image, client, true, Some(patience)).await
    }

    /// [`ResourceCache::get_for`] for another node's fill: a miss goes to upstream, never
    /// to a third node (a fill is never forwarded).
    pub async fn get_local(&self, image: &U::Key, client: Option<ClientKey>) -> Lookup<U::Value> {
        self.lookup(image, client, false, None).await
    }

    async fn lookup(
        &self,
        image: &U::Key,
        client: Option<ClientKey>,
        may_fill: bool,
        patience: Option<Duration>,
    ) -> Lookup<U::Value> {
        let key = U::key_of(image);
        let now = self.now_ms();
        let mut start_refresh = false;
        let mut refreshing = None;
        // Fast path under the shard's read lock: fresh and stale answers, or a fetch to join.
        let waiting = match self.inner.map.get(&key) {
            Some(entry) => {
                // Written only when the second changes: a store on every hit would move the
                // entry's cache line between cores on every request for a popular key.
                let used = seconds(now);
                if entry.last_used.load(Ordering::Relaxed) != used {
                    entry.last_used.store(used, Ordering::Relaxed);
                }
                match &entry.slot {
                    Slot::Loading(rx) => Some(rx.clone()),
                    Slot::Ready(ready) => match self.classify(ready, now) {
                        Class::Fresh(lookup) => {
                            self.inner.metrics.cache_lookup("hit");
                            return lookup;
                        }
                        Class::Stale(lookup, wants_refresh) => {
                            let known = wants_refresh.then(|| self.known(ready)).flatten();
                            drop(entry);
                            if wants_refresh {
                                start_refresh = self.claim_refresh(&key, now);
                            }
                            self.inner.metrics.cache_lookup("stale");
                            if start_refresh && !may_fill {
                                // Another node's fill: what it asks for is a miss there, so a
                                // copy already stale is refreshed first, and sent stale only
                                // when the hub refuses (an asker takes a stale copy only when
                                // its own hub refuses too).
                                let (tx, rx) = watch::channel(None);
                                self.spawn_fetch(
                                    key.clone(),
                                    image.clone(),
                                    Some(tx),
                                    client,
                                    false,
                                    known,
                                );
                                refreshing = Some((rx, lookup));
                                None
                            } else {
                                if start_refresh {
                                    self.spawn_fetch(
                                        key,
                                        image.clone(),
                                        None,
                                        None,
                                        may_fill,
                                        known,
                                    );
                                }
                                return lookup;
                            }
                        }
                        Class::Expired => None,
                    },
                }
            }
            None => None,
        };
        if let Some((rx, stale)) = refreshing {
            let fresh = self.wait(rx).await;
            return if answered(&fresh.result) {
                fresh
            } else {
                stale
            };
        }
        let rx = match waiting {
            Some(rx) => {
                self.inner.metrics.cache_lookup("coalesced");
                rx
            }
            None => match self.begin_miss(key, image, now, client, may_fill) {
                Ok(lookup) => return lookup,
                Err(rx) => rx,
            },
        };
        match patience {
            None => self.wait(rx).await,
            // The fetch runs in a task of its own: giving up waiting leaves it running.
            Some(patience) => tokio::time::timeout(patience, self.wait(rx))
                .await
                .unwrap_or_else(|_| Lookup {
                    result: Err(HubError::Pending),
                    age: Duration::ZERO,
                    fresh_for: Duration::ZERO,
                    stale: false,
                    unchanged_until: None,
                }),
        }
    }

    /// Under the entry lock: start a fetch for a missing or expired key, or join the one
    /// another request started a moment ago.
    fn begin_miss(
        &self,
        key: Box<str>,
        image: &U::Key,
        now: u64,
        client: Option<ClientKey>,
        may_fill: bool,
    ) -> Result<Lookup<U::Value>, Waiting<U::Value>> {
        let (tx, rx) = watch::channel(None);
        let loading = Entry {
            slot: Slot::Loading(rx.clone()),
            last_used: AtomicU32::new(seconds(now)),
        };
        let mut known = None;
        let inserted = match self.inner.map.entry(key.clone()) {
            MapEntry::Occupied(mut occupied) => match &occupied.get().slot {
                Slot::Loading(other) => {
                    self.inner.metrics.cache_lookup("coalesced");
                    return Err(other.clone());
                }
                Slot::Ready(ready) => match self.classify(ready, now) {
                    Class::Fresh(lookup) | Class::Stale(lookup, _) => {
                        self.inner.metrics.cache_lookup("hit");
                        return Ok(lookup);
                    }
                    Class::Expired => {
                        known = self.known(ready);
                        occupied.insert(loading);
                        false
                    }
                },
            },
            MapEntry::Vacant(vacant) => {
                vacant.insert(loading);
                true
            }
        };
        self.inner.metrics.cache_lookup("miss");
        self.spawn_fetch(key, image.clone(), Some(tx), client, may_fill, known);
        if inserted {
            self.evict_if_full();
        }
        Err(rx)
    }

    /// Waits for the fetch behind `rx`.
    async fn wait(&self, mut rx: Waiting<U::Value>) -> Lookup<U::Value> {
        let (result, age, life) = match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or((
                Err(HubError::Unreachable),
                Duration::ZERO,
                Duration::ZERO,
            )),
            // The fetch task ended without an answer (it cannot, short of a panic): report
            // it rather than wait forever.
            Err(_) => (Err(HubError::Unreachable), Duration::ZERO, Duration::ZERO),
        };
        Lookup {
            stale: result.is_ok() && age >= life,
            result,
            age,
            fresh_for: life.saturating_sub(age),
            unchanged_until: None,
        }
    }

    /// What an entry tells of its key, for judging what replaces it: nothing when it came
    /// from a node no longer trusted.
    fn known(&self, ready: &Ready<U::Value>) -> Option<Known<U::Value>> {
        if let (Some(supplier), Some(filler)) = (ready.supplier, &self.inner.filler)
            && !filler.trusted(supplier)
        {
            return None;
        }
        Some(Known {
            answer: ready.answer.clone(),
            fetched_ms: ready.fetched_ms,
        })
    }

    fn classify(&self, ready: &Ready<U::Value>, now: u64) -> Class<U::Value> {
        if let (Some(supplier), Some(filler)) = (ready.supplier, &self.inner.filler)
            && !filler.trusted(supplier)
        {
            return Class::Expired;
        }
        let age = Duration::from_millis(now.saturating_sub(ready.fetched_ms));
        let ttl = Duration::from_millis(ready.life_ms);
        let result = match &ready.answer {
            Answer::Found(status) => Ok(status.clone()),
            Answer::NotFound => Err(HubError::NotFound),
            Answer::RepositoryNotFound => Err(HubError::RepositoryNotFound),
        };
        if age < ttl {
            let fresh_for = ttl - age;
            // The whole seconds of age go up, and those of freshness left go down, at the
            // next of these moments; a freshness of exactly N seconds is N only right now.
            let age_steps = Duration::from_secs(age.as_secs() + 1) - age;
            let fresh_steps = fresh_for - Duration::from_secs(fresh_for.as_secs());
            let unchanged_until =
                (!fresh_steps.is_zero()).then(|| self.instant_at(now) + age_steps.min(fresh_steps));
            return Class::Fresh(Lookup {
                result,
                age,
                fresh_for,
                stale: false,
                unchanged_until,
            });
        }
        if matches!(ready.answer, Answer::Found(_)) && age < ttl + self.inner.settings.max_stale {
            let wants_refresh = !ready.refreshing && now >= ready.retry_at_ms;
            return Class::Stale(
                Lookup {
                    result,
                    age,
                    fresh_for: Duration::ZERO,
                    stale: true,
                    unchanged_until: None,
                },
                wants_refresh,
            );
        }
        Class::Expired
    }

    /// Marks a stale entry as refreshing; true for exactly one caller.
    fn claim_refresh(&self, key: &str, now: u64) -> bool {
        match self.inner.map.get_mut(key) {
            Some(mut entry) => match &mut entry.slot {
                Slot::Ready(ready) if !ready.refreshing && now >= ready.retry_at_ms => {
                    ready.refreshing = true;
                    true
                }
                _ => false,
            },
            None => false,
        }
    }

    /// Runs one fetch in its own task, so it completes (and fills the cache for everyone
    /// waiting) even if the request that started it goes away. `known` is what the cache held
    /// for the key before.
    fn spawn_fetch(
        &self,
        key: Box<str>,
        image: U::Key,
        tx: Option<watch::Sender<Option<Delivered<U::Value>>>>,
        client: Option<ClientKey>,
        may_fill: bool,
        known: Option<Known<U::Value>>,
    ) {
        let cache = self.clone();
        tokio::spawn(async move {
            let got = cache
                .fetch(&key, &image, client, may_fill, known.as_ref())
                .await;
            let life = cache.complete(key.clone(), &got.result, got.age, got.supplier);
            if let Some(tx) = tx {
                // Nobody waiting is fine: the answer is in the cache for the next request.
                let _ = tx.send(Some((got.result.clone(), got.age, life)));
            }
            if let (Some(supplier), Some(check)) = (got.supplier, got.check) {
                cache
                    .check_fill(key, image, got.result, got.age, supplier, check)
                    .await;
            }
        });
    }

    /// The answer for a miss: from the owner's cache when another node owns the resource
    /// and answers well, else from upstream; with how old it is, who supplied it if another
    /// node did, and which check it gets.
    async fn fetch(
        &self,
        key: &str,
        image: &U::Key,
        client: Option<ClientKey>,
        may_fill: bool,
        known: Option<&Known<U::Value>>,
    ) -> Got<U::Value> {
        let owner_key = U::owner_key(image);
        let filler = match &self.inner.filler {
            Some(filler) if may_fill && filler.asks_others(&owner_key) => filler,
            // This node owns it: Docker Hub, each request charged as always.
            _ => return Got::hub(self.inner.upstream.get(image, client).await),
        };
        // A fill answers a cold miss the client caused: it pays from the client's share here
        // as a request to the hub would, so no client spends this node's fills (and its
        // share at every owner) beyond its own share.
        if let Some(client) = client
            && let Err(err) = self.inner.upstream.charge(client)
        {
            return Got::hub(Err(err));
        }
        let ask = FillAsk {
            kind: U::KIND,
            owner_key: &owner_key,
            key,
            max_answer_bytes: U::MAX_FILL_BYTES,
        };
        if let Some(filled) = filler.fill(ask).await
            && let Some(got) = self.use_fill(filler, ask, image, filled, known).await
        {
            return got;
        }
        // Already charged above.
        Got::hub(self.inner.upstream.get(image, None).await)
    }

    /// What one fill is worth, by everything this node can tell without asking the hub, and
    /// by the supplier's check schedule; `None` when the hub is to be asked instead.
    async fn use_fill(
        &self,
        filler: &Arc<dyn Filler>,
        ask: FillAsk<'_>,
        image: &U::Key,
        filled: Filled,
        known: Option<&Known<U::Value>>,
    ) -> Option<Got<U::Value>> {
        let (supplier, age) = (filled.supplier, filled.age);
        let result =
            match crate::fill::outcome_of(filled.supplied, |json| U::read_value(image, json)) {
                Ok(result) => result,
                Err(reason) => {
                    filler.refused(supplier, &reason);
                    return None;
                }
            };
        if age >= self.servable_for(&result) {
            filler.refused(supplier, "an answer older than its lifetime");
            return None;
        }
        if let Ok(value) = &result
            && let Some(pushed) = U::pushed(value)
            && crate::fill::fetched_at(age) + verify::SLACK < pushed
        {
            filler.refused(supplier, "a copy older than the push it shows");
            return None;
        }
        // A copy already stale says the owner's hub refuses it. The hub is asked here too,
        // and the copy used only when it refuses this node as well: so no claimed age makes
        // a check excuse more than one lifetime of change.
        if age >= self.ttl_of_result(&result) {
            let hub = self.inner.upstream.get(image, None).await;
            if answered(&hub) {
                return Some(Got::hub(hub));
            }
        }
        let unexplained = known.is_some_and(|known| {
            let before = known.answer.to_result();
            before != result
                && U::explains(
                    &before,
                    &result,
                    self.wall_time(known.fetched_ms),
                    clock::wall().into(),
                )
                .is_err()
        });
        let news = match known {
            Some(known) if !unexplained && known.answer.to_result() != result => News::Changed,
            _ => News::Nothing,
        };
        match filler.take(supplier, news) {
            Use::Wait => None,
            // A change time does not explain (fewer pulls than this node saw, another status,
            // another image under the same push): checked before it is used, and the hub's
            // answer served.
            Use::Take(check) if unexplained => Some(
                self.check_now(
                    filler,
                    ask,
                    image,
                    result,
                    age,
                    supplier,
                    check.unwrap_or(CheckKind::Extra),
                )
                .await,
            ),
            Use::Take(check) => Some(Got {
                result,
                age,
                supplier: Some(supplier),
                check,
            }),
        }
    }

    /// Checks a fill before it is used, and answers with what the hub said (or, without room
    /// for the check, asks the hub as any miss would).
    #[allow(clippy::too_many_arguments)]
    async fn check_now(
        &self,
        filler: &Arc<dyn Filler>,
        ask: FillAsk<'_>,
        image: &U::Key,
        filled: Fetched<U::Value>,
        age: Duration,
        supplier: SupplierId,
        check: CheckKind,
    ) -> Got<U::Value> {
        if !self.inner.upstream.has_room() {
            filler.judged(supplier, ask, check, Judged::NotMade);
            return Got::hub(self.inner.upstream.get(image, None).await);
        }
        let hub = crate::hub::budget::as_check(self.inner.upstream.get(image, None)).await;
        self.judge(filler, ask, &filled, &hub, age, supplier, check);
        Got::hub(hub)
    }

    /// Judges a fill by the hub's answer `hub`, counts and reports it; true when they
    /// disagree.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        filler: &Arc<dyn Filler>,
        ask: FillAsk<'_>,
        filled: &Fetched<U::Value>,
        hub: &Fetched<U::Value>,
        age: Duration,
        supplier: SupplierId,
        check: CheckKind,
    ) -> bool {
        if !answered(hub) {
            self.inner.metrics.fill_verification("failed");
            filler.judged(supplier, ask, check, Judged::NotMade);
            return false;
        }
        let now = clock::wall();
        match U::explains(filled, hub, now.saturating_sub(age).into(), now.into()) {
            Ok(()) => {
                self.inner.metrics.fill_verification("agreed");
                filler.judged(supplier, ask, check, Judged::Agreed);
                false
            }
            Err(evidence) => {
                self.inner.metrics.fill_verification("disagreed");
                filler.judged(supplier, ask, check, Judged::Disagreed(evidence));
                true
            }
        }
    }

    /// The wall-clock time of a moment in this cache's milliseconds.
    fn wall_time(&self, ms: u64) -> std::time::SystemTime {
        crate::fill::fetched_at(Duration::from_millis(self.now_ms().saturating_sub(ms)))
    }

    /// How long a result stays fresh.
    fn ttl_of_result(&self, result: &Fetched<U::Value>) -> Duration {
        match result {
            Ok(_) => self.inner.settings.ttl,
            Err(_) => self.ttl_of(&Answer::NotFound),
        }
    }

    /// How long an answer may be served at most, stale included.
    fn servable_for(&self, result: &Fetched<U::Value>) -> Duration {
        match result {
            Ok(_) => self
                .inner
                .settings
                .ttl
                .saturating_add(self.inner.settings.max_stale),
            Err(_) => self.ttl_of(&Answer::NotFound),
        }
    }

    /// Checks a fill against upstream in the background, after it was stored and served.
    /// The check a supplier's schedule owes waits for room in the budget's reserve (its
    /// supplier is not asked meanwhile); another is made only when there is room now. On a
    /// disagreement the supplier loses every entry it supplied, and upstream's answer takes
    /// this one's place.
    async fn check_fill(
        &self,
        key: Box<str>,
        image: U::Key,
        filled: Fetched<U::Value>,
        age: Duration,
        supplier: SupplierId,
        check: CheckKind,
    ) {
        let Some(filler) = &self.inner.filler else {
            return;
        };
        let owner_key = U::owner_key(&image);
        let ask = FillAsk {
            kind: U::KIND,
            owner_key: &owner_key,
            key: &key,
            max_answer_bytes: U::MAX_FILL_BYTES,
        };
        let give_up = Instant::now()
            + match check {
                CheckKind::Scheduled => CHECK_WAIT,
                CheckKind::Extra => Duration::ZERO,
            };
        while !self.inner.upstream.has_room() {
            if Instant::now() >= give_up {
                if check == CheckKind::Scheduled {
                    self.inner.metrics.fill_verification("failed");
                }
                filler.judged(supplier, ask, check, Judged::NotMade);
                return;
            }
            tokio::time::sleep(CHECK_POLL).await;
        }
        let hub = crate::hub::budget::as_check(self.inner.upstream.get(&image, None)).await;
        if self.judge(filler, ask, &filled, &hub, age, supplier, check) {
            self.complete(key, &hub, Duration::ZERO, None);
        }
    }

    /// Stores a fetch's outcome: a status or a not-found replaces the entry; an error keeps
    /// a servable stale status (stale-if-error) and drops anything else. `age` is how old
    /// the answer already was (a fill's), `supplier` who supplied it. Returns how long the
    /// stored answer stays fresh from when it was fetched (zero when nothing was stored): the
    /// resource's lifetime, shortened by the supplier's share ([`Filler::life_share`]).
    fn complete(
        &self,
        key: Box<str>,
        result: &Fetched<U::Value>,
        age: Duration,
        supplier: Option<SupplierId>,
    ) -> Duration {
        let now = self.now_ms();
        let answer = match result {
            Ok(status) => Some(Answer::Found(status.clone())),
            Err(HubError::NotFound) => Some(Answer::NotFound),
            Err(HubError::RepositoryNotFound) => Some(Answer::RepositoryNotFound),
            Err(_) => None,
        };
        let retry_later = now.saturating_add(millis(REFRESH_RETRY));
        let mut stored = Duration::ZERO;
        match answer {
            Some(answer) => {
                let ttl = self.ttl_of(&answer);
                let life = match (supplier, &self.inner.filler) {
                    (Some(supplier), Some(filler)) => {
                        let (part, whole) = filler.life_share(supplier);
                        let left = ttl.saturating_sub(age);
                        ttl - left + left * part / whole.max(1)
                    }
                    _ => ttl,
                };
                stored = life;
                // A copy already stale when it arrived (an owner that could not refresh)
                // waits before the next refresh, as after a failed one.
                let retry_at_ms = if age >= life { retry_later } else { 0 };
                let ready = Ready {
                    answer,
                    fetched_ms: now.saturating_sub(millis(age)),
                    life_ms: millis(life),
                    refreshing: false,
                    supplier,
                    retry_at_ms,
                };
                match self.inner.map.get_mut(&key) {
                    Some(mut entry) => entry.slot = Slot::Ready(ready),
                    // Evicted while in flight: the answer is still worth keeping.
                    None => {
                        let entry = Entry {
                            slot: Slot::Ready(ready),
                            last_used: AtomicU32::new(seconds(now)),
                        };
                        self.inner.map.insert(key, entry);
                        self.evict_if_full();
                    }
                }
            }
            None => {
                self.inner
                    .map
                    .remove_if_mut(&key, |_, entry| match &mut entry.slot {
                        Slot::Ready(ready) => {
                            ready.refreshing = false;
                            ready.retry_at_ms = retry_later;
                            false
                        }
                        // A miss that failed: nothing to serve, so nothing to keep.
                        Slot::Loading(_) => true,
                    });
            }
        }
        if self.inner.reports_entries {
            self.inner.metrics.set_cache_entries(self.inner.map.len());
        }
        stored
    }

    /// Keeps the map within capacity: evicts the least recently used entries among a sample,
    /// a few at a time so the cost is spread over inserts.
    fn evict_if_full(&self) {
        let capacity = self.inner.settings.capacity;
        let len = self.inner.map.len();
        if len <= capacity {
            return;
        }
        let excess = len - capacity;
        let mut sample: Vec<(u32, Box<str>)> = self
            .inner
            .map
            .iter()
            .filter(|entry| matches!(entry.slot, Slot::Ready(_)))
            .take(EVICTION_SAMPLE.max(excess * 2))
            .map(|entry| (entry.last_used.load(Ordering::Relaxed), entry.key().clone()))
            .collect();
        sample.sort_unstable_by_key(|(used, _)| *used);
        for (_, key) in sample.into_iter().take(excess) {
            // Never evict a fetch in flight: requests are waiting on it.
            self.inner
                .map
                .remove_if(&key, |_, entry| matches!(entry.slot, Slot::Ready(_)));
        }
    }
}

enum Class<V> {
    Fresh(Lookup<V>),
    /// Servable past its freshness; true if a refresh should start.
    Stale(Lookup<V>, bool),
    Expired,
}

/// The map key of `image`, `organization/repository:tag` as its `Display` writes it, in one
/// allocation of the exact size: `to_string` grows its buffer three or four times on the
/// way, and this runs on every request, hits included.
fn key_of(image: &ImageRef) -> Box<str> {
    [
        image.organization.as_str(),
        "/",
        image.repository.as_str(),
        ":",
        image.tag.as_str(),
    ]
    .concat()
    .into_boxed_str()
}

fn seconds(ms: u64) -> u32 {
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod fill_tests;
#[cfg(test)]
mod tests;
