//! The response memo: finished answers by request target (`/status.svg?…`, `/build/…`),
//! each kept only while the cache would give the very same answer, so the next request for
//! a popular badge skips parsing, validating, looking up and rendering it again.
//!
//! Request targets are client text, so the memo is bounded twice: long targets are never
//! kept, and at [`ResponseMemo::capacity`] entries it first drops the expired ones (at most
//! every [`PURGE_EVERY`], so a flood of distinct targets cannot make every request sweep
//! the map) and otherwise keeps nothing new. Entries live about a second (see
//! `cache::Lookup::unchanged_until`), so a full memo empties itself quickly.

use parking_lot::Mutex;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

/// The longest request target kept; badge URLs are far shorter.
pub const MAX_KEY_BYTES: usize = 512;
/// The shortest time between two sweeps for expired entries.
pub const PURGE_EVERY: Duration = Duration::from_millis(250);

/// A bounded map from request target to an answer valid until a deadline.
#[derive(Debug)]
pub struct ResponseMemo<V> {
    map: DashMap<Box<str>, (Instant, V)>,
    capacity: usize,
    /// When expired entries were last swept out.
    purged: Mutex<Instant>,
}

impl<V: Clone> ResponseMemo<V> {
    /// An empty memo holding at most `capacity` answers.
    pub fn new(capacity: usize) -> ResponseMemo<V> {
        ResponseMemo {
            map: DashMap::new(),
            capacity,
            purged: Mutex::new(Instant::now()),
        }
    }

    /// The answer kept for `target`, if it is still valid at `now`.
    pub fn get(&self, target: &str, now: Instant) -> Option<V> {
        self.with(target, now, V::clone)
    }

    /// `read` of the answer kept for `target`, if it is still valid at `now`, without a copy
    /// of it: every worker asks for the same popular answers, and a copy of a shared `Arc`
    /// is a write to a counter all of them share.
    pub fn with<R>(&self, target: &str, now: Instant, read: impl FnOnce(&V) -> R) -> Option<R> {
        let entry = self.map.get(target)?;
        let (until, value) = &*entry;
        (now < *until).then(|| read(value))
    }

    /// Keeps `value` for `target` until `until`, if the target is short enough and there is
    /// room (after dropping expired answers, when that was not done a moment ago).
    pub fn insert(&self, target: &str, value: V, until: Instant, now: Instant) {
        if target.len() > MAX_KEY_BYTES || until <= now {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(target) {
            self.purge(now);
            if self.map.len() >= self.capacity {
                return;
            }
        }
        self.map.insert(target.into(), (until, value));
    }

    /// Answers kept now, expired or not.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The most answers kept at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn purge(&self, now: Instant) {
        // One sweeper at a time; the others go on without inserting.
        let Some(mut purged) = self.purged.try_lock() else {
            return;
        };
        if now.saturating_duration_since(*purged) < PURGE_EVERY {
            return;
        }
        *purged = now;
        drop(purged);
        self.map.retain(|_, (until, _)| now < *until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_until_their_deadline() {
        let memo = ResponseMemo::new(4);
        let now = Instant::now();
        memo.insert("/a", 1, now + Duration::from_millis(500), now);
        assert_eq!(memo.get("/a", now), Some(1));
        assert_eq!(memo.get("/a", now + Duration::from_millis(499)), Some(1));
        assert_eq!(memo.get("/a", now + Duration::from_millis(500)), None);
        assert_eq!(memo.get("/b", now), None);
        // Already expired: not kept at all.
        memo.insert("/c", 3, now, now);
        assert_eq!(memo.get("/c", now), None);
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn long_targets_are_never_kept() {
        let memo = ResponseMemo::new(4);
        let now = Instant::now();
        let long = format!("/status.svg?text={}", "x".repeat(MAX_KEY_BYTES));
        memo.insert(&long, 1, now + Duration::from_secs(1), now);
        assert!(memo.is_empty());
    }

    #[test]
    fn a_full_memo_sweeps_expired_answers_at_most_every_purge_interval() {
        let memo = ResponseMemo::new(3);
        let start = Instant::now();
        let second = Duration::from_secs(1);
        for (i, target) in ["/1", "/2", "/3"].into_iter().enumerate() {
            memo.insert(target, i, start + second, start);
        }
        // Full of valid answers: a new target is not kept, the old ones stay.
        memo.insert("/4", 4, start + second, start + Duration::from_millis(300));
        assert_eq!(memo.get("/4", start), None);
        assert_eq!(memo.len(), 3);
        // Replacing a kept target needs no room.
        memo.insert(
            "/1",
            10,
            start + 2 * second,
            start + Duration::from_millis(300),
        );
        assert_eq!(memo.get("/1", start + second), Some(10));
        // Once two have expired, the next insert sweeps them and is kept…
        let later = start + second + PURGE_EVERY;
        memo.insert("/5", 5, later + second, later);
        assert_eq!(memo.get("/5", later), Some(5));
        assert_eq!(memo.len(), 2);
        // …but a sweep right after another one does not run: "/6" expires and still
        // holds its place until the interval has passed.
        memo.insert("/6", 6, later + PURGE_EVERY / 4, later);
        let soon = later + PURGE_EVERY / 2;
        memo.insert("/7", 7, soon + second, soon);
        assert_eq!(memo.get("/7", soon), None);
        assert_eq!(memo.len(), 3);
        let next = later + PURGE_EVERY;
        memo.insert("/8", 8, next + second, next);
        assert_eq!(memo.get("/8", next), Some(8));
        assert_eq!(memo.len(), 3);
        assert!(memo.len() <= memo.capacity());
    }
}
