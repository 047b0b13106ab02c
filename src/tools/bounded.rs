//! A map that holds at most so many entries and forgets the oldest first: for what the
//! node remembers of what others send (checked signatures, forgotten members, repositories
//! without build history, the nonces of served fill requests), so that no sender can grow
//! it, and what is forgotten is what was learnt longest ago.
//!
//! The order is hashlink's linked hash map; keys are hashed with the standard library's
//! keyed SipHash, as in a `HashMap`, since they come from outside. Not `quick_cache` or
//! `moka`, the memos' kind of map: they choose themselves what to evict (S3-FIFO, TinyLFU,
//! which may even refuse a new entry), where a window of nonces or a record of refusals must
//! lose its oldest entry and nothing else, the same way on every run of a seeded
//! simulation; and their expiry reads a clock of their own, where these maps are pruned by
//! the time their callers pass in.

use std::borrow::Borrow;
use std::hash::{Hash, RandomState};

use hashlink::LinkedHashMap;

/// At most `capacity` entries, in the order they were last inserted.
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    map: LinkedHashMap<K, V, RandomState>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Clone for BoundedMap<K, V> {
    fn clone(&self) -> Self {
        BoundedMap {
            map: self.map.clone(),
            capacity: self.capacity,
        }
    }
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    /// An empty map that will hold at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            map: LinkedHashMap::with_hasher(RandomState::new()),
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`, if it is held.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    /// Whether `key` is held.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// Holds `value` for `key` as the newest entry (a key already held moves there), and
    /// forgets the oldest entries past the capacity. Returns the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let replaced = self.map.insert(key, value);
        while self.map.len() > self.capacity {
            self.map.pop_front();
        }
        replaced
    }

    /// Forgets `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(key)
    }

    /// Forgets entries from the oldest on, for as long as `expired` says so of them.
    pub fn forget_oldest_while(&mut self, mut expired: impl FnMut(&V) -> bool) {
        while self.map.front().is_some_and(|(_, value)| expired(value)) {
            self.map.pop_front();
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_its_capacity_it_forgets_the_oldest_first() {
        let mut map = BoundedMap::new(3);
        for i in 0..3 {
            map.insert(i, i * 10);
        }
        // Inserted again, 0 becomes the newest: 1 is now the oldest.
        assert_eq!(map.insert(0, 1), Some(0));
        map.insert(3, 30);
        assert_eq!(map.len(), 3);
        assert!(!map.contains_key(&1));
        assert_eq!(map.get(&0), Some(&1));
        // A flood of new keys keeps only the newest.
        for i in 100..10_000 {
            map.insert(i, i);
        }
        assert_eq!(map.len(), 3);
        assert!([9_997, 9_998, 9_999].iter().all(|k| map.contains_key(k)));
    }

    #[test]
    fn forgets_from_the_oldest_while_they_are_expired() {
        let mut map = BoundedMap::new(10);
        // Values are times; 7 comes last with an early one.
        for (key, at) in [(1, 100), (2, 200), (3, 300), (7, 50)] {
            map.insert(key, at);
        }
        map.forget_oldest_while(|&at| at < 250);
        // 1 and 2 go; forgetting stops at 3, so 7 stays until 3 has gone.
        assert_eq!(map.len(), 2);
        assert_eq!(map.remove(&3), Some(300));
        map.forget_oldest_while(|&at| at < 250);
        assert!(map.is_empty());
    }
}
