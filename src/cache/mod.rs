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
//! Every dashmap guard here is dropped before any `.await` (clippy enforces it): a guard
//! held across an await would block the shard for every other request.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::hub::names::ImageRef;
use crate::hub::{ClientKey, HubClient, HubError, HubStatus};
use crate::metrics::Metrics;

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
}

/// One upstream resource the cache keeps: how to name a key in the map and how to fetch
/// it. Every [`Upstream`] is the build-status resource.
pub trait Resource: Send + Sync + 'static {
    /// What names one resource (an image tag, a repository).
    type Key: Clone + Send + Sync + 'static;
    /// What upstream answers; cloned to every waiter, so large values sit behind an `Arc`.
    type Value: Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static;
    /// The map key of `key`, in one allocation.
    fn key_of(key: &Self::Key) -> Box<str>;
    /// Asks upstream for the resource, on behalf of `client` when a client's miss caused it.
    fn get(
        &self,
        key: &Self::Key,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<Self::Value, HubError>> + Send;
}

impl<U: Upstream> Resource for U {
    type Key = ImageRef;
    type Value = HubStatus;
    fn key_of(image: &ImageRef) -> Box<str> {
        key_of(image)
    }
    fn get(
        &self,
        image: &ImageRef,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<HubStatus, HubError>> + Send {
        self.fetch(image, client)
    }
}

/// The node shares one client among the status cache and the resource caches.
impl Upstream for Arc<HubClient> {
    fn fetch(
        &self,
        image: &ImageRef,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<HubStatus, HubError>> + Send {
        self.status_for(image, client)
    }
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
    metrics: Metrics,
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
    Loading(watch::Receiver<Option<Fetched<V>>>),
    Ready(Ready<V>),
}

#[derive(Debug, Clone)]
struct Ready<V> {
    answer: Answer<V>,
    /// Milliseconds since the cache's epoch when upstream answered.
    fetched_ms: u64,
    /// Whether a background refresh is running.
    refreshing: bool,
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
type Waiting<V> = watch::Receiver<Option<Fetched<V>>>;

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
                metrics,
                reports_entries,
            }),
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
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
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
    /// upstream budget ([`Upstream::fetch_for`]); hits, stale answers, joined fetches and
    /// background refreshes cost it nothing.
    pub async fn get_for(&self, image: &U::Key, client: Option<ClientKey>) -> Lookup<U::Value> {
        let key = U::key_of(image);
        let now = self.now_ms();
        let mut start_refresh = false;
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
                            drop(entry);
                            if wants_refresh {
                                start_refresh = self.claim_refresh(&key, now);
                            }
                            if start_refresh {
                                self.spawn_fetch(key, image.clone(), None, None);
                            }
                            self.inner.metrics.cache_lookup("stale");
                            return lookup;
                        }
                        Class::Expired => None,
                    },
                }
            }
            None => None,
        };
        let rx = match waiting {
            Some(rx) => {
                self.inner.metrics.cache_lookup("coalesced");
                rx
            }
            None => match self.begin_miss(key, image, now, client) {
                Ok(lookup) => return lookup,
                Err(rx) => rx,
            },
        };
        self.wait(rx).await
    }

    /// Under the entry lock: start a fetch for a missing or expired key, or join the one
    /// another request started a moment ago.
    fn begin_miss(
        &self,
        key: Box<str>,
        image: &U::Key,
        now: u64,
        client: Option<ClientKey>,
    ) -> Result<Lookup<U::Value>, Waiting<U::Value>> {
        let (tx, rx) = watch::channel(None);
        let loading = Entry {
            slot: Slot::Loading(rx.clone()),
            last_used: AtomicU32::new(seconds(now)),
        };
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
        self.spawn_fetch(key, image.clone(), Some(tx), client);
        if inserted {
            self.evict_if_full();
        }
        Err(rx)
    }

    /// Waits for the fetch behind `rx`.
    async fn wait(&self, mut rx: watch::Receiver<Option<Fetched<U::Value>>>) -> Lookup<U::Value> {
        let result = match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Err(HubError::Unreachable)),
            // The fetch task ended without an answer (it cannot, short of a panic): report
            // it rather than wait forever.
            Err(_) => Err(HubError::Unreachable),
        };
        let fresh_for = match &result {
            Ok(_) => self.inner.settings.ttl,
            Err(HubError::NotFound | HubError::RepositoryNotFound) => {
                self.ttl_of(&Answer::NotFound)
            }
            Err(_) => Duration::ZERO,
        };
        Lookup {
            result,
            age: Duration::ZERO,
            fresh_for,
            stale: false,
            unchanged_until: None,
        }
    }

    fn classify(&self, ready: &Ready<U::Value>, now: u64) -> Class<U::Value> {
        let age = Duration::from_millis(now.saturating_sub(ready.fetched_ms));
        let ttl = self.ttl_of(&ready.answer);
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
            let unchanged_until = (!fresh_steps.is_zero()).then(|| {
                self.inner.epoch + Duration::from_millis(now) + age_steps.min(fresh_steps)
            });
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

    /// Runs one upstream fetch in its own task, so it completes (and fills the cache for
    /// everyone waiting) even if the request that started it goes away.
    fn spawn_fetch(
        &self,
        key: Box<str>,
        image: U::Key,
        tx: Option<watch::Sender<Option<Fetched<U::Value>>>>,
        client: Option<ClientKey>,
    ) {
        let cache = self.clone();
        tokio::spawn(async move {
            let result = cache.inner.upstream.get(&image, client).await;
            cache.complete(key, &result);
            if let Some(tx) = tx {
                // Nobody waiting is fine: the answer is in the cache for the next request.
                let _ = tx.send(Some(result));
            }
        });
    }

    /// Stores a fetch's outcome: a status or a not-found replaces the entry; an error keeps
    /// a servable stale status (stale-if-error) and drops anything else.
    fn complete(&self, key: Box<str>, result: &Fetched<U::Value>) {
        let now = self.now_ms();
        let answer = match result {
            Ok(status) => Some(Answer::Found(status.clone())),
            Err(HubError::NotFound) => Some(Answer::NotFound),
            Err(HubError::RepositoryNotFound) => Some(Answer::RepositoryNotFound),
            Err(_) => None,
        };
        match answer {
            Some(answer) => {
                let ready = Ready {
                    answer,
                    fetched_ms: now,
                    refreshing: false,
                    retry_at_ms: 0,
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
                let retry_at_ms =
                    now + u64::try_from(REFRESH_RETRY.as_millis()).unwrap_or(u64::MAX);
                self.inner
                    .map
                    .remove_if_mut(&key, |_, entry| match &mut entry.slot {
                        Slot::Ready(ready) => {
                            ready.refreshing = false;
                            ready.retry_at_ms = retry_at_ms;
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
mod tests;
