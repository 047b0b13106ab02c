//! Unit tests of the cache against a counting stand-in for Docker Hub, in tokio's paused
//! virtual time so TTLs of minutes pass instantly and exactly.

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use super::*;
use crate::hub::StatusSource;

#[derive(Debug, Default)]
struct FakeHub {
    calls: AtomicUsize,
    delay: Duration,
    answer: Mutex<Option<Fetched>>,
}

impl FakeHub {
    fn answering(result: Fetched, delay: Duration) -> FakeHub {
        FakeHub {
            calls: AtomicUsize::new(0),
            delay,
            answer: Mutex::new(Some(result)),
        }
    }
    fn set(&self, result: Fetched) {
        *self.answer.lock().unwrap() = Some(result);
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Upstream for Arc<FakeHub> {
    async fn fetch(
        &self,
        _image: &ImageRef,
        _client: Option<ClientKey>,
    ) -> Result<HubStatus, HubError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.answer
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(Err(HubError::Unreachable))
    }
}

const OK: HubStatus = HubStatus {
    status: 10,
    source: StatusSource::BuildHistory,
};

fn image(repo: &str) -> ImageRef {
    ImageRef::parse("library", repo, "latest").unwrap()
}

fn cache(
    hub: &Arc<FakeHub>,
    ttl: u64,
    max_stale: u64,
    capacity: usize,
) -> StatusCache<Arc<FakeHub>> {
    let settings = CacheSettings {
        ttl: Duration::from_secs(ttl),
        max_stale: Duration::from_secs(max_stale),
        capacity,
    };
    StatusCache::new(Arc::clone(hub), settings, Metrics::new().unwrap())
}

/// Lets spawned tasks run to completion in paused time.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_cold_requests_share_one_upstream_call() {
    let hub = Arc::new(FakeHub::answering(Ok(OK), Duration::from_millis(200)));
    let cache = cache(&hub, 300, 3600, 100);
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&image("nginx")).await })
        })
        .collect();
    for task in tasks {
        let lookup = task.await.unwrap();
        assert_eq!(lookup.result, Ok(OK));
        assert!(!lookup.stale);
    }
    assert_eq!(hub.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_all_get_the_error_too() {
    let hub = Arc::new(FakeHub::answering(
        Err(HubError::Status { status: 500 }),
        Duration::from_millis(50),
    ));
    let cache = cache(&hub, 300, 3600, 100);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get(&image("nginx")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().result,
            Err(HubError::Status { status: 500 })
        );
    }
    assert_eq!(hub.calls(), 1);
    // A failed miss leaves nothing behind: the next request asks again.
    assert!(cache.is_empty());
    cache.get(&image("nginx")).await;
    assert_eq!(hub.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn after_the_ttl_stale_is_served_at_once_and_one_refresh_goes_out() {
    let hub = Arc::new(FakeHub::answering(Ok(OK), Duration::from_millis(500)));
    let cache = cache(&hub, 60, 3600, 100);
    cache.get(&image("nginx")).await;
    assert_eq!(hub.calls(), 1);
    let fresh = cache.get(&image("nginx")).await;
    assert!(!fresh.stale && fresh.fresh_for > Duration::ZERO);
    assert_eq!(hub.calls(), 1, "fresh answers come from the cache");

    tokio::time::advance(Duration::from_secs(61)).await;
    let building = HubStatus {
        status: 3,
        source: StatusSource::BuildHistory,
    };
    hub.set(Ok(building));
    let started = Instant::now();
    for _ in 0..20 {
        let lookup = cache.get(&image("nginx")).await;
        assert!(lookup.stale, "served stale while the refresh runs");
        assert_eq!(lookup.result, Ok(OK));
        assert!(lookup.age >= Duration::from_secs(61));
        assert_eq!(lookup.fresh_for, Duration::ZERO);
    }
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "stale answers do not wait for upstream"
    );
    settle().await;
    assert_eq!(hub.calls(), 2, "exactly one refresh");
    tokio::time::advance(Duration::from_millis(600)).await;
    settle().await;
    let refreshed = cache.get(&image("nginx")).await;
    assert_eq!(refreshed.result, Ok(building));
    assert!(!refreshed.stale);
    assert_eq!(hub.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn with_the_hub_failing_stale_lasts_until_max_stale_then_errors() {
    let hub = Arc::new(FakeHub::answering(Ok(OK), Duration::from_millis(10)));
    let cache = cache(&hub, 60, 600, 100);
    cache.get(&image("nginx")).await;
    hub.set(Err(HubError::Timeout));
    // Every 30 s for the whole stale window: always the old status, marked stale.
    let mut elapsed = 0;
    while elapsed + 30 < 60 + 600 {
        tokio::time::advance(Duration::from_secs(30)).await;
        elapsed += 30;
        let lookup = cache.get(&image("nginx")).await;
        settle().await;
        tokio::time::advance(Duration::from_millis(20)).await;
        settle().await;
        assert_eq!(lookup.result, Ok(OK), "at {elapsed}s");
        assert_eq!(lookup.stale, elapsed >= 60, "at {elapsed}s");
    }
    let refreshes = hub.calls() - 1;
    assert!(
        refreshes >= 10,
        "failed refreshes are retried ({refreshes})"
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    let lookup = cache.get(&image("nginx")).await;
    assert_eq!(
        lookup.result,
        Err(HubError::Timeout),
        "past max-stale the error shows"
    );
}

#[tokio::test(start_paused = true)]
async fn not_found_is_cached_briefly() {
    let hub = Arc::new(FakeHub::answering(
        Err(HubError::NotFound),
        Duration::from_millis(10),
    ));
    let cache = cache(&hub, 3600, 3600, 100);
    assert_eq!(
        cache.get(&image("gone")).await.result,
        Err(HubError::NotFound)
    );
    assert_eq!(
        cache.get(&image("gone")).await.result,
        Err(HubError::NotFound)
    );
    assert_eq!(hub.calls(), 1);
    tokio::time::advance(NOT_FOUND_TTL + Duration::from_secs(1)).await;
    hub.set(Ok(OK));
    assert_eq!(
        cache.get(&image("gone")).await.result,
        Ok(OK),
        "not-found is not kept for the whole TTL"
    );
    assert_eq!(hub.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn twice_the_capacity_leaves_at_most_capacity_entries() {
    let hub = Arc::new(FakeHub::answering(Ok(OK), Duration::ZERO));
    let cache = cache(&hub, 3600, 3600, 100);
    for i in 0..200 {
        cache.get(&image(&format!("repo{i}"))).await;
        assert!(cache.len() <= 101, "bounded at every step: {}", cache.len());
    }
    settle().await;
    assert!(cache.len() <= 100, "{} entries", cache.len());
    assert!(
        cache.len() >= 90,
        "eviction takes only what it must: {}",
        cache.len()
    );
    assert_eq!(hub.calls(), 200);
}

#[tokio::test(start_paused = true)]
async fn recently_used_keys_survive_eviction() {
    let hub = Arc::new(FakeHub::answering(Ok(OK), Duration::ZERO));
    let cache = cache(&hub, 36_000, 3600, 50);
    cache.get(&image("popular")).await;
    for i in 0..500 {
        tokio::time::advance(Duration::from_secs(2)).await;
        cache.get(&image("popular")).await;
        cache.get(&image(&format!("once{i}"))).await;
    }
    let calls = hub.calls();
    cache.get(&image("popular")).await;
    assert_eq!(
        hub.calls(),
        calls,
        "the key asked for all along is still cached"
    );
}

#[test]
fn keys_are_the_display_form() {
    let image = ImageRef::parse("my-org", "a.b_c-d", "1.27-alpine").unwrap();
    let key = key_of(&image);
    assert_eq!(&*key, image.to_string());
    assert_eq!(&*key, "my-org/a.b_c-d:1.27-alpine");
}

#[tokio::test(start_paused = true)]
async fn a_fresh_answer_says_until_when_it_stays_the_same_to_the_second() {
    let hub = Arc::new(FakeHub::answering(Ok(OK), Duration::ZERO));
    let cache = cache(&hub, 3, 3600, 10);
    let fetched = cache.get(&image("nginx")).await;
    // Straight from a fetch: not worth keeping (the next lookup gives the same anyway).
    assert_eq!(fetched.unchanged_until, None);
    tokio::time::advance(Duration::from_millis(1250)).await;
    let lookup = cache.get(&image("nginx")).await;
    assert_eq!(lookup.age.as_secs(), 1);
    assert_eq!(lookup.fresh_for.as_secs(), 1);
    // At 2 s of age both whole-second figures change.
    let until = lookup.unchanged_until.unwrap();
    assert_eq!(until - Instant::now(), Duration::from_millis(750));
    tokio::time::advance(Duration::from_millis(749)).await;
    let same = cache.get(&image("nginx")).await;
    assert_eq!((same.age.as_secs(), same.fresh_for.as_secs()), (1, 1));
    tokio::time::advance(Duration::from_millis(1)).await;
    let next = cache.get(&image("nginx")).await;
    assert_eq!(next.age.as_secs(), 2);
    // Exactly 1 s of freshness left is "1" only at this instant: nothing to keep.
    assert_eq!(next.fresh_for, Duration::from_secs(1));
    assert_eq!(next.unchanged_until, None);
    // The last fresh moment ends at the TTL, never later.
    tokio::time::advance(Duration::from_millis(400)).await;
    let last = cache.get(&image("nginx")).await;
    assert_eq!(
        last.unchanged_until.unwrap() - Instant::now(),
        Duration::from_millis(600)
    );
    tokio::time::advance(Duration::from_millis(600)).await;
    let stale = cache.get(&image("nginx")).await;
    assert!(stale.stale);
    assert_eq!(stale.unchanged_until, None);
}
