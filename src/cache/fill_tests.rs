//! Unit tests of what the cache does with another node's fill, with a scripted filler and a
//! stand-in for Docker Hub, in tokio's paused virtual time: what it refuses without asking
//! the hub, what it checks before serving, how long a fill lives, and how a check waits for
//! room in the budget's reserve.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use super::*;
use crate::fill::{FillFuture, Supplied};
use crate::hub::repository::{RepoName, RepositoryInfo};

/// A repository resource in front of a stand-in hub that counts its calls, and those made
/// inside a check.
#[derive(Debug)]
struct Hub {
    answer: Mutex<Fetched<RepositoryInfo>>,
    calls: AtomicUsize,
    checks: AtomicUsize,
    room: AtomicBool,
}

impl Hub {
    fn new(pulls: u64, pushed: &str) -> Arc<Hub> {
        Arc::new(Hub {
            answer: Mutex::new(Ok(repo(pulls, pushed))),
            calls: AtomicUsize::new(0),
            checks: AtomicUsize::new(0),
            room: AtomicBool::new(true),
        })
    }
    fn set(&self, answer: Fetched<RepositoryInfo>) {
        *self.answer.lock().unwrap() = answer;
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

fn repo(pulls: u64, pushed: &str) -> RepositoryInfo {
    RepositoryInfo {
        pull_count: pulls,
        star_count: 1,
        is_automated: false,
        last_updated: Some(pushed.to_owned()),
    }
}

/// An RFC 3339 time `ago` before now.
fn ago(ago: Duration) -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::from(clock::wall()) - ago).to_string()
}

impl Resource for Arc<Hub> {
    type Key = RepoName;
    type Value = RepositoryInfo;
    const KIND: &'static str = "repository";
    const MAX_FILL_BYTES: usize = 2048;
    fn key_of(key: &RepoName) -> Box<str> {
        key.key()
    }
    fn owner_key(key: &RepoName) -> String {
        format!("v2/repositories/{key}")
    }
    fn parse_key(_text: &str) -> Option<RepoName> {
        None
    }
    async fn get(
        &self,
        _key: &RepoName,
        _client: Option<ClientKey>,
    ) -> Result<RepositoryInfo, HubError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if crate::hub::budget::checking() {
            self.checks.fetch_add(1, Ordering::SeqCst);
        }
        self.answer.lock().unwrap().clone()
    }
    fn has_room(&self) -> bool {
        self.room.load(Ordering::SeqCst)
    }
    fn write_value(value: &RepositoryInfo) -> String {
        serde_json::to_string(value).unwrap()
    }
    fn read_value(_key: &RepoName, json: &str) -> Result<RepositoryInfo, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }
    fn pushed(value: &RepositoryInfo) -> Option<std::time::SystemTime> {
        value
            .last_updated
            .as_deref()
            .and_then(crate::hub::parse_time)
    }
    fn explains(
        filled: &Fetched<RepositoryInfo>,
        hub: &Fetched<RepositoryInfo>,
        filled_at: std::time::SystemTime,
        now: std::time::SystemTime,
    ) -> verify::Verdict {
        verify::repository(filled, hub, filled_at, now)
    }
}

/// A filler that answers what the test says, and writes down what the cache tells it.
#[derive(Debug)]
struct Script {
    /// The next fill: the value and its claimed age; `None` asks the hub.
    next: Mutex<Option<(RepositoryInfo, Duration)>>,
    take: Mutex<Use>,
    share: (u32, u32),
    judged: Mutex<Vec<(CheckKind, Judged)>>,
    refused: Mutex<Vec<String>>,
}

impl Script {
    fn new(share: (u32, u32)) -> Arc<Script> {
        Arc::new(Script {
            next: Mutex::new(None),
            take: Mutex::new(Use::Take(None)),
            share,
            judged: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
        })
    }
    fn answer(&self, value: RepositoryInfo, age: Duration) {
        *self.next.lock().unwrap() = Some((value, age));
    }
    fn judged(&self) -> Vec<(CheckKind, Judged)> {
        self.judged.lock().unwrap().clone()
    }
    fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }
}

const SUPPLIER: SupplierId = SupplierId(3);

impl Filler for Script {
    fn fill<'a>(&'a self, _ask: FillAsk<'a>) -> FillFuture<'a> {
        let next = self.next.lock().unwrap().take();
        Box::pin(async move {
            let (value, age) = next?;
            let raw =
                serde_json::value::RawValue::from_string(serde_json::to_string(&value).unwrap())
                    .unwrap();
            Some(Filled {
                supplied: Supplied::Found(raw),
                age,
                supplier: SUPPLIER,
            })
        })
    }
    fn asks_others(&self, _owner_key: &str) -> bool {
        true
    }
    fn trusted(&self, _supplier: SupplierId) -> bool {
        true
    }
    fn take(&self, _supplier: SupplierId, _news: News) -> Use {
        *self.take.lock().unwrap()
    }
    fn life_share(&self, _supplier: SupplierId) -> (u32, u32) {
        self.share
    }
    fn refused(&self, _supplier: SupplierId, reason: &str) {
        self.refused.lock().unwrap().push(reason.to_owned());
    }
    fn judged(&self, _supplier: SupplierId, _ask: FillAsk<'_>, check: CheckKind, judged: Judged) {
        self.judged.lock().unwrap().push((check, judged));
    }
}

const TTL: Duration = Duration::from_secs(3600);

fn cache(hub: &Arc<Hub>, script: &Arc<Script>) -> ResourceCache<Arc<Hub>> {
    let settings = CacheSettings {
        ttl: TTL,
        max_stale: Duration::from_secs(86_400),
        capacity: 100,
    };
    ResourceCache::for_resource(Arc::clone(hub), settings, Metrics::new().unwrap())
        .filled_by(Arc::clone(script) as Arc<dyn Filler>)
}

fn name() -> RepoName {
    RepoName::parse("library", "alpine").unwrap()
}

/// Lets spawned tasks run to completion in paused time.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_copy_older_than_the_push_it_shows_is_refused_unasked() {
    let pushed = ago(Duration::from_secs(600));
    let hub = Hub::new(7000, &pushed);
    let script = Script::new((1, 1));
    let cache = cache(&hub, &script);
    // Fetched half an hour ago, yet showing a push of ten minutes ago: no such copy exists.
    script.answer(repo(9999, &pushed), Duration::from_secs(1800));
    let lookup = cache.get(&name()).await;
    assert_eq!(lookup.result.unwrap().pull_count, 7000);
    assert_eq!(
        script.refused(),
        vec!["a copy older than the push it shows"]
    );
    assert_eq!(hub.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stale_copy_is_used_only_when_the_hub_refuses_this_node_too() {
    let pushed = ago(Duration::from_secs(86_400 * 3));
    let hub = Hub::new(7000, &pushed);
    let script = Script::new((1, 1));
    let cache = cache(&hub, &script);
    // Two hours old, past the hour a repository lives: the hub is asked, and answers.
    script.answer(repo(9999, &pushed), Duration::from_secs(7200));
    let lookup = cache.get(&name()).await;
    assert_eq!(lookup.result.unwrap().pull_count, 7000);
    assert!(!lookup.stale);
    // The hub refuses: then the stale copy is better than nothing.
    let other = RepoName::parse("library", "ubuntu").unwrap();
    hub.set(Err(HubError::RateLimited {
        retry_in: Duration::from_secs(30),
    }));
    script.answer(repo(9999, &pushed), Duration::from_secs(7200));
    let lookup = cache.get(&other).await;
    assert_eq!(lookup.result.unwrap().pull_count, 9999);
    assert!(lookup.stale);
    assert_eq!(hub.checks(), 0);
}

#[tokio::test(start_paused = true)]
async fn pulls_below_what_this_node_saw_are_checked_before_they_are_served() {
    let pushed = ago(Duration::from_secs(86_400 * 3));
    let hub = Hub::new(7000, &pushed);
    let script = Script::new((1, 1));
    let cache = cache(&hub, &script);
    // This node fetched it itself: 7,000 pulls.
    assert_eq!(cache.get(&name()).await.result.unwrap().pull_count, 7000);
    tokio::time::advance(TTL + Duration::from_secs(1)).await;
    // Stale: served while a refresh runs, which a fill answers with 6,990, fewer than this
    // node saw. Not stored as it is: checked first, and the hub's count kept (a few pulls
    // fewer are within what time explains, so no distrust).
    let hub_calls = hub.calls();
    script.answer(repo(6990, &pushed), Duration::ZERO);
    assert!(cache.get(&name()).await.stale);
    settle().await;
    assert_eq!(hub.checks(), 1);
    assert_eq!(hub.calls(), hub_calls + 1);
    assert_eq!(script.judged(), vec![(CheckKind::Extra, Judged::Agreed)]);
    let lookup = cache.get(&name()).await;
    assert_eq!(lookup.result.unwrap().pull_count, 7000);
    assert!(!lookup.stale);
    // 7,000 shown as 0: the check disagrees.
    tokio::time::advance(TTL + Duration::from_secs(1)).await;
    script.answer(repo(0, &pushed), Duration::ZERO);
    cache.get(&name()).await;
    settle().await;
    assert!(matches!(
        script.judged().last(),
        Some((CheckKind::Extra, Judged::Disagreed(_)))
    ));
    assert_eq!(cache.get(&name()).await.result.unwrap().pull_count, 7000);
    // More pulls than before is what time explains: used as it is, unchecked.
    tokio::time::advance(TTL + Duration::from_secs(1)).await;
    script.answer(repo(7100, &pushed), Duration::ZERO);
    cache.get(&name()).await;
    settle().await;
    assert_eq!(cache.get(&name()).await.result.unwrap().pull_count, 7100);
    assert_eq!(hub.checks(), 2);
}

#[test]
fn the_check_of_a_lowered_count_fails_however_low_the_count() {
    // What the hub's count explains, with no earlier count known to this node.
    let pushed = ago(Duration::from_secs(86_400 * 3));
    let at = std::time::SystemTime::from(clock::wall());
    let hub = Ok(repo(7000, &pushed));
    assert!(verify::repository(&Ok(repo(0, &pushed)), &hub, at, at).is_err());
    assert!(verify::repository(&Ok(repo(6500, &pushed)), &hub, at, at).is_ok());
}

#[tokio::test(start_paused = true)]
async fn what_a_supplier_with_little_history_fills_lives_shorter() {
    let pushed = ago(Duration::from_secs(86_400 * 3));
    let hub = Hub::new(7000, &pushed);
    let script = Script::new((1, 4));
    let cache = cache(&hub, &script);
    script.answer(repo(7000, &pushed), Duration::ZERO);
    let lookup = cache.get(&name()).await;
    assert_eq!(lookup.fresh_for, TTL / 4, "the first waiter is told so too");
    tokio::time::advance(TTL / 4 - Duration::from_secs(1)).await;
    assert!(!cache.get(&name()).await.stale);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(cache.get(&name()).await.stale, "a quarter of the hour");
    // What this node fetched itself lives the whole hour.
    let own = RepoName::parse("library", "ubuntu").unwrap();
    let lookup = cache.get(&own).await;
    assert_eq!(lookup.fresh_for, TTL);
}

#[tokio::test(start_paused = true)]
async fn a_fill_is_not_used_while_its_supplier_owes_a_check() {
    let pushed = ago(Duration::from_secs(86_400 * 3));
    let hub = Hub::new(7000, &pushed);
    let script = Script::new((1, 1));
    let cache = cache(&hub, &script);
    *script.take.lock().unwrap() = Use::Wait;
    script.answer(repo(9999, &pushed), Duration::ZERO);
    assert_eq!(cache.get(&name()).await.result.unwrap().pull_count, 7000);
    assert_eq!(hub.calls(), 1);
    assert!(
        script.refused().is_empty(),
        "waiting costs the supplier nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_check_waits_for_room_and_another_does_not() {
    let pushed = ago(Duration::from_secs(86_400 * 3));
    let hub = Hub::new(7000, &pushed);
    let script = Script::new((1, 1));
    let cache = cache(&hub, &script);
    hub.room.store(false, Ordering::SeqCst);
    *script.take.lock().unwrap() = Use::Take(Some(CheckKind::Scheduled));
    script.answer(repo(7000, &pushed), Duration::ZERO);
    // Served at once; the check waits.
    assert_eq!(cache.get(&name()).await.result.unwrap().pull_count, 7000);
    tokio::time::advance(Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(hub.calls(), 0);
    assert!(script.judged().is_empty());
    hub.room.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(hub.checks(), 1);
    assert_eq!(
        script.judged(),
        vec![(CheckKind::Scheduled, Judged::Agreed)]
    );
    // Without room for long enough, a scheduled check is given up; an extra one at once.
    hub.room.store(false, Ordering::SeqCst);
    let other = RepoName::parse("library", "ubuntu").unwrap();
    script.answer(repo(7000, &pushed), Duration::ZERO);
    cache.get(&other).await;
    tokio::time::advance(CHECK_WAIT + Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(
        script.judged().last(),
        Some(&(CheckKind::Scheduled, Judged::NotMade))
    );
    *script.take.lock().unwrap() = Use::Take(Some(CheckKind::Extra));
    let third = RepoName::parse("library", "debian").unwrap();
    script.answer(repo(7000, &pushed), Duration::ZERO);
    cache.get(&third).await;
    settle().await;
    assert_eq!(
        script.judged().last(),
        Some(&(CheckKind::Extra, Judged::NotMade))
    );
    assert_eq!(hub.checks(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_disagreeing_check_replaces_the_fill_with_the_hubs_answer() {
    let pushed = ago(Duration::from_secs(86_400 * 3));
    let hub = Hub::new(7000, &pushed);
    let script = Script::new((1, 1));
    let cache = cache(&hub, &script);
    *script.take.lock().unwrap() = Use::Take(Some(CheckKind::Scheduled));
    script.answer(repo(1_007_000, &pushed), Duration::ZERO);
    assert_eq!(
        cache.get(&name()).await.result.unwrap().pull_count,
        1_007_000
    );
    settle().await;
    assert!(matches!(
        script.judged().last(),
        Some((CheckKind::Scheduled, Judged::Disagreed(_)))
    ));
    assert_eq!(cache.get(&name()).await.result.unwrap().pull_count, 7000);
}

#[tokio::test(start_paused = true)]
async fn an_owner_refreshes_a_stale_copy_before_it_fills_another_node() {
    let pushed = ago(Duration::from_secs(86_400 * 3));
    let hub = Hub::new(7000, &pushed);
    let settings = CacheSettings {
        ttl: TTL,
        max_stale: Duration::from_secs(86_400),
        capacity: 100,
    };
    let cache = ResourceCache::for_resource(Arc::clone(&hub), settings, Metrics::new().unwrap());
    assert_eq!(cache.get(&name()).await.result.unwrap().pull_count, 7000);
    tokio::time::advance(TTL + Duration::from_secs(1)).await;
    hub.set(Ok(repo(7100, &pushed)));
    // A client is served the stale copy at once; another node's fill waits for the refresh.
    let fill = cache.get_local(&name(), None).await;
    assert_eq!(fill.result.unwrap().pull_count, 7100);
    assert!(!fill.stale);
    // When the hub refuses, the stale copy is sent, marked stale.
    tokio::time::advance(TTL + Duration::from_secs(1)).await;
    hub.set(Err(HubError::RateLimited {
        retry_in: Duration::from_secs(30),
    }));
    let fill = cache.get_local(&name(), None).await;
    assert_eq!(fill.result.unwrap().pull_count, 7100);
    assert!(fill.stale);
    assert_eq!(hub.calls(), 3);
}
