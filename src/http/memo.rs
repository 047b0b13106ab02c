//! The one memo of rendered answers: [`Memo`], bounded by bytes and evicting by
//! quick_cache's S3-FIFO policy, holds both the rendered badges (`badge_memo`) and the
//! finished answers by request target ([`ResponseMemo`]), so a popular badge or answer skips
//! rendering, hashing, parsing and looking up again.
//!
//! Keys are client text, so every entry is weighed by the bytes it holds and the memo never
//! holds more than its budget. A new entry is always taken in (on probation); one asked for
//! again while there is promoted, and one asked for once is the first to go: a stream of
//! distinct junk cannot displace the popular entries, nor stop the memo taking in new ones.

use std::hash::Hash;
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::{Equivalent, OptionsBuilder, Weighter};

use crate::tools::clock::Instant;

/// The longest request target kept; badge URLs are far shorter.
pub const MAX_KEY_BYTES: usize = 512;
/// What an entry costs besides what its key and value say: quick_cache's slot for it (key,
/// value, hash, links) and the allocator's rounding.
const ENTRY_OVERHEAD: usize = 64;
/// Shards of a memo: enough that two workers seldom wait on one lock, few enough that a
/// shard's part of the budget (a sixteenth) still holds entries of tens of kilobytes.
const SHARDS: usize = 16;

/// What a key or value costs the memo, in bytes: what it holds in place and on the heap.
pub trait Weigh {
    fn bytes(&self) -> usize;
}

impl Weigh for Box<str> {
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.len()
    }
}

impl<T: Weigh> Weigh for Arc<T> {
    fn bytes(&self) -> usize {
        (**self).bytes()
    }
}

/// Weighs an entry as its key and value say, plus the memo's own cost of it.
#[derive(Debug, Clone, Copy)]
struct ByBytes;

impl<K: Weigh, V: Weigh> Weighter<K, V> for ByBytes {
    fn weight(&self, key: &K, value: &V) -> u64 {
        // Never 0: quick_cache never evicts an entry of weight 0.
        (key.bytes() + value.bytes() + ENTRY_OVERHEAD) as u64
    }
}

/// A concurrent memo holding at most a budget of bytes.
pub struct Memo<K, V> {
    cache: Cache<K, V, ByBytes>,
}

impl<K, V> std::fmt::Debug for Memo<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo").finish_non_exhaustive()
    }
}

impl<K: Eq + Hash + Weigh, V: Clone + Weigh> Memo<K, V> {
    /// An empty memo of at most `budget` bytes, sized for entries of about `entry_bytes`.
    pub fn new(budget: usize, entry_bytes: usize) -> Memo<K, V> {
        let options = OptionsBuilder::new()
            .estimated_items_capacity(budget / entry_bytes.max(1))
            .weight_capacity(budget as u64)
            .shards(SHARDS)
            .build();
        // Only a missing capacity makes the builder fail, and both are set above.
        let options = options.unwrap_or_else(|_| unreachable!("both capacities are set"));
        Memo {
            cache: Cache::with_options(options, ByBytes, Default::default(), Default::default()),
        }
    }

    /// The value kept for `key`, if any.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.cache.get(key)
    }

    /// Keeps `value` for `key`, making room by evicting what was asked for least. An entry
    /// heavier than a shard's part of the budget is not kept.
    pub fn insert(&self, key: K, value: V) {
        self.cache.insert(key, value);
    }

    /// Entries kept now.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Bytes kept now, as entries are weighed.
    pub fn bytes(&self) -> usize {
        usize::try_from(self.cache.weight()).unwrap_or(usize::MAX)
    }

    /// The most bytes kept at once.
    pub fn budget(&self) -> usize {
        usize::try_from(self.cache.capacity()).unwrap_or(usize::MAX)
    }
}

/// An answer valid until a deadline.
#[derive(Debug, Clone)]
pub struct Until<V> {
    until: Instant,
    value: V,
}

impl<V: Weigh> Weigh for Until<V> {
    fn bytes(&self) -> usize {
        std::mem::size_of::<Instant>() + self.value.bytes()
    }
}

/// Finished answers by request target, each kept only while the cache would give the very
/// same answer (see `cache::Lookup::unchanged_until`: about a second). An expired answer
/// keeps its place until the next answer for its target replaces it or eviction takes it.
#[derive(Debug)]
pub struct ResponseMemo<V> {
    memo: Memo<Box<str>, Until<V>>,
}

impl<V: Clone + Weigh> ResponseMemo<V> {
    /// An empty memo of at most `budget` bytes, sized for answers of about `answer_bytes`.
    pub fn new(budget: usize, answer_bytes: usize) -> ResponseMemo<V> {
        ResponseMemo {
            memo: Memo::new(budget, answer_bytes),
        }
    }

    /// The answer kept for `target`, if it is still valid at `now`.
    pub fn get(&self, target: &str, now: Instant) -> Option<V> {
        self.with(target, now, V::clone)
    }

    /// `read` of the answer kept for `target`, if it is still valid at `now`.
    pub fn with<R>(&self, target: &str, now: Instant, read: impl FnOnce(&V) -> R) -> Option<R> {
        let kept = self.memo.get(target)?;
        (now < kept.until).then(|| read(&kept.value))
    }

    /// Keeps `value` for `target` until `until`, if the target is short enough and the
    /// answer still valid.
    pub fn insert(&self, target: &str, value: V, until: Instant, now: Instant) {
        if target.len() > MAX_KEY_BYTES || until <= now {
            return;
        }
        self.memo.insert(target.into(), Until { until, value });
    }

    /// Answers kept now, expired or not.
    pub fn len(&self) -> usize {
        self.memo.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.memo.is_empty()
    }

    /// Bytes kept now.
    pub fn bytes(&self) -> usize {
        self.memo.bytes()
    }

    /// The most bytes kept at once.
    pub fn budget(&self) -> usize {
        self.memo.budget()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tools::clock;

    /// A test answer of a given size.
    #[derive(Debug, Clone, PartialEq)]
    struct Answer(usize);

    impl Weigh for Answer {
        fn bytes(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn answers_only_until_their_deadline() {
        let memo = ResponseMemo::new(64 * 1024, 1024);
        let now = clock::now();
        memo.insert("/a", Answer(1), now + Duration::from_millis(500), now);
        assert_eq!(memo.get("/a", now), Some(Answer(1)));
        assert_eq!(
            memo.get("/a", now + Duration::from_millis(499)),
            Some(Answer(1))
        );
        assert_eq!(memo.get("/a", now + Duration::from_millis(500)), None);
        assert_eq!(memo.get("/b", now), None);
        // Already expired: not kept at all.
        memo.insert("/c", Answer(3), now, now);
        assert_eq!(memo.get("/c", now), None);
        assert_eq!(memo.len(), 1);
        // A new answer for a target replaces the expired one.
        let later = now + Duration::from_secs(1);
        memo.insert("/a", Answer(2), later + Duration::from_secs(1), later);
        assert_eq!(memo.get("/a", later), Some(Answer(2)));
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn long_targets_are_never_kept() {
        let memo = ResponseMemo::new(64 * 1024, 1024);
        let now = clock::now();
        let long = format!("/status.svg?text={}", "x".repeat(MAX_KEY_BYTES));
        memo.insert(&long, Answer(1), now + Duration::from_secs(1), now);
        assert!(memo.is_empty());
    }

    #[test]
    fn junk_targets_stay_within_the_budget_and_neither_displace_popular_answers_nor_stop_new_ones()
    {
        let budget = 256 * 1024;
        let memo = ResponseMemo::new(budget, 1024);
        let now = clock::now();
        let until = now + Duration::from_secs(60);
        memo.insert("/popular", Answer(1300), until, now);
        for _ in 0..3 {
            assert!(memo.get("/popular", now).is_some());
        }
        // Valid answers for 20,000 distinct targets, each asked for once: ten times what the
        // budget holds.
        for i in 0..20_000 {
            let target = format!("/status.svg?organization=library&repository=nginx&text={i}");
            memo.insert(&target, Answer(1300), until, now);
            assert!(memo.bytes() <= budget, "{} bytes kept", memo.bytes());
            if i % 100 == 0 {
                assert!(
                    memo.get("/popular", now).is_some(),
                    "after {i} junk targets"
                );
            }
        }
        assert!(memo.len() > 100, "the memo holds answers ({})", memo.len());
        // Full of valid answers, it still takes in a new one.
        memo.insert("/new", Answer(1300), until, now);
        assert_eq!(memo.get("/new", now), Some(Answer(1300)));
        assert!(memo.get("/popular", now).is_some());
        assert!(memo.bytes() <= memo.budget());
    }
}
