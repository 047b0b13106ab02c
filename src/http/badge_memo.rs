//! Rendered badges and their ETags, by everything that decides them: the static badge
//! memo, which saves rendering and hashing the few badges almost every request asks for.
//!
//! Labels are client text, so the memo is bounded by bytes and keyed by the label as it is
//! drawn (control characters removed, capped at `badge::MAX_TEXT_CHARS`), never by what the
//! client sent: a 16 KB label is the same badge as its first 64 characters. When the memo
//! is full, a badge is taken in only on its second request within the last
//! [`DOORKEEPER`] new badges (a stream of unique junk labels is asked once each and never
//! gets in), and it replaces the least asked-for of a sample of entries, so popular badges
//! displace junk, never the other way round.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use bytes::Bytes;
use dashmap::DashMap;
use hyper::header::HeaderValue;
use parking_lot::Mutex;

use super::response::etag_of;
use crate::badge::{self, Badge, Color, Logo, Style};

/// The memo every node of the process shares: it only remembers what a pure function
/// returned. Almost every request asks for one of a few badges (the default label, a
/// handful of messages), and rendering and hashing one was about half of a cached badge's
/// handler time (docs/PERFORMANCE.md).
static BADGE_MEMO: LazyLock<BadgeMemo> = LazyLock::new(|| BadgeMemo::new(BADGE_MEMO_BYTES));

/// Two megabytes: about 1,500 badges of 1.3 KB, far more than the few a node serves most.
const BADGE_MEMO_BYTES: usize = 2 * 1024 * 1024;
/// New badges whose first request the memo remembers while it is full (8 bytes each).
const DOORKEEPER: usize = 4096;
/// Entries looked at to choose the one a newcomer replaces.
const EVICTION_SAMPLE: usize = 16;
/// What an entry costs besides its text and SVG: the map slot, the key's other fields,
/// the ETag.
const ENTRY_OVERHEAD: usize = 160;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BadgeKey {
    label: Box<str>,
    message: &'static str,
    color: Color,
    style: Style,
    logo: Option<Logo>,
}

#[derive(Debug, Clone)]
pub struct RenderedBadge {
    pub svg: Bytes,
    pub etag: Option<HeaderValue>,
}

#[derive(Debug)]
struct Entry {
    rendered: RenderedBadge,
    /// Requests since it was taken in, aged by halving (see `BadgeMemo::evict_one`), and
    /// counted up to 255 only: past that a hit writes nothing, so a popular badge's
    /// entry is not moved between cores on every request.
    hits: AtomicU8,
    bytes: usize,
}

/// A byte-bounded memo of rendered badges.
#[derive(Debug)]
struct BadgeMemo {
    map: DashMap<BadgeKey, Entry>,
    bytes: AtomicUsize,
    budget: usize,
    doorkeeper: Mutex<Doorkeeper>,
    /// Evictions since counts were last halved.
    evictions: AtomicUsize,
}

/// Hashes of badges asked for once while the memo was full, oldest first.
#[derive(Debug, Default)]
struct Doorkeeper {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Doorkeeper {
    /// True on the second sighting of `hash` (which then leaves the doorkeeper).
    fn second_sighting(&mut self, hash: u64) -> bool {
        if self.seen.remove(&hash) {
            return true;
        }
        self.seen.insert(hash);
        self.order.push_back(hash);
        while self.order.len() > DOORKEEPER {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        false
    }
}

impl BadgeMemo {
    fn new(budget: usize) -> BadgeMemo {
        BadgeMemo {
            map: DashMap::new(),
            bytes: AtomicUsize::new(0),
            budget,
            doorkeeper: Mutex::new(Doorkeeper::default()),
            evictions: AtomicUsize::new(0),
        }
    }

    fn get(&self, key: &BadgeKey) -> Option<RenderedBadge> {
        let entry = self.map.get(key)?;
        let hits = entry.hits.load(Ordering::Relaxed);
        if hits < u8::MAX {
            entry.hits.store(hits + 1, Ordering::Relaxed);
        }
        Some(entry.rendered.clone())
    }

    fn offer(&self, key: BadgeKey, rendered: &RenderedBadge) {
        let bytes = key.label.len() + rendered.svg.len() + ENTRY_OVERHEAD;
        if bytes > self.budget {
            return;
        }
        if self.bytes.load(Ordering::Relaxed) + bytes > self.budget {
            let mut hasher = DefaultHasher::new();
            key.hash(&mut hasher);
            if !self.doorkeeper.lock().second_sighting(hasher.finish()) {
                return;
            }
            while self.bytes.load(Ordering::Relaxed) + bytes > self.budget {
                if !self.evict_one() {
                    return;
                }
            }
        }
        let entry = Entry {
            rendered: rendered.clone(),
            hits: AtomicU8::new(0),
            bytes,
        };
        if let Some(old) = self.map.insert(key, entry) {
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Removes the least asked-for entry of a sample; false when the memo is empty.
    fn evict_one(&self) -> bool {
        let mut victim: Option<(u8, BadgeKey)> = None;
        // Ageing: once per as many evictions as there are entries, every count is
        // halved, so what was popular long ago has to keep being asked for. Rounded up: a
        // badge asked for since stays ahead of one never asked for again.
        let evictions = self.evictions.fetch_add(1, Ordering::Relaxed) + 1;
        if evictions >= self.map.len().max(EVICTION_SAMPLE) {
            self.evictions.store(0, Ordering::Relaxed);
            for entry in self.map.iter() {
                let hits = entry.hits.load(Ordering::Relaxed);
                entry.hits.store(hits.div_ceil(2), Ordering::Relaxed);
            }
        }
        for entry in self.map.iter().take(EVICTION_SAMPLE) {
            let hits = entry.hits.load(Ordering::Relaxed);
            if victim.as_ref().is_none_or(|(least, _)| hits < *least) {
                victim = Some((hits, entry.key().clone()));
            }
        }
        let Some((_, key)) = victim else {
            return false;
        };
        if let Some((_, old)) = self.map.remove(&key) {
            self.bytes.fetch_sub(old.bytes, Ordering::Relaxed);
        }
        true
    }

    fn rendered(
        &self,
        label: &str,
        message: &'static str,
        color: Color,
        style: Style,
        logo: Option<Logo>,
    ) -> RenderedBadge {
        let key = BadgeKey {
            label: badge::drawn_text(label, style).into(),
            message,
            color,
            style,
            logo,
        };
        if let Some(rendered) = self.get(&key) {
            return rendered;
        }
        let svg = Bytes::from(badge::render(&Badge {
            style,
            logo,
            ..Badge::new(label, message, color)
        }));
        let rendered = RenderedBadge {
            etag: etag_of(&svg),
            svg,
        };
        self.offer(key, &rendered);
        rendered
    }
}

/// The badge's SVG and `ETag`, from the memo or rendered now.
pub fn rendered_badge(
    label: &str,
    message: &'static str,
    color: Color,
    style: Style,
    logo: Option<Logo>,
) -> RenderedBadge {
    BADGE_MEMO.rendered(label, message, color, style, logo)
}

/// Everything that decides a Docker badge, owned: its message is derived from upstream
/// data (`1.2M`, `v3.20.1`) rather than one of a few words.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AnyBadgeKey {
    label: Box<str>,
    message: Box<str>,
    color: Color,
    style: Style,
    logo: Option<Logo>,
    color_override: Option<Box<str>>,
    label_color: Option<Box<str>>,
    logo_color: Option<Box<str>>,
}

/// Rendered Docker badges, bounded like [`BADGE_MEMO`].
/// About 1.3 KB each (more with a logo): a few megabytes at most.
const ANY_BADGE_MEMO_CAPACITY: usize = 1024;

static ANY_BADGE_MEMO: LazyLock<DashMap<AnyBadgeKey, RenderedBadge>> = LazyLock::new(DashMap::new);

/// The SVG and `ETag` of any badge, from the memo or rendered now.
pub fn rendered(badge: &Badge<'_>) -> RenderedBadge {
    let key = AnyBadgeKey {
        label: badge.label.into(),
        message: badge.message.into(),
        color: badge.color,
        style: badge.style,
        logo: badge.logo,
        color_override: badge.color_override.map(Into::into),
        label_color: badge.label_color.map(Into::into),
        logo_color: badge.logo_color.map(Into::into),
    };
    if let Some(found) = ANY_BADGE_MEMO.get(&key) {
        return found.clone();
    }
    let svg = Bytes::from(badge::render(badge));
    let rendered = RenderedBadge {
        etag: etag_of(&svg),
        svg,
    };
    if ANY_BADGE_MEMO.len() < ANY_BADGE_MEMO_CAPACITY {
        ANY_BADGE_MEMO.insert(key, rendered.clone());
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(memo: &BadgeMemo, label: &str) -> RenderedBadge {
        memo.rendered(label, "ok", Color::BrightGreen, Style::Flat, None)
    }

    fn holds(memo: &BadgeMemo, label: &str) -> bool {
        memo.map.contains_key(&BadgeKey {
            label: badge::drawn_text(label, Style::Flat).into(),
            message: "ok",
            color: Color::BrightGreen,
            style: Style::Flat,
            logo: None,
        })
    }

    #[test]
    fn memoized_badges_match_fresh_renders() {
        for i in 0..50 {
            let label = format!("memo test {i}");
            let first = rendered_badge(&label, "ok", Color::BrightGreen, Style::Flat, None);
            let again = rendered_badge(&label, "ok", Color::BrightGreen, Style::Flat, None);
            let fresh = badge::render(&Badge::new(&label, "ok", Color::BrightGreen));
            assert_eq!(first.svg, fresh.as_bytes());
            assert_eq!(again.svg, first.svg);
            assert_eq!(again.etag, etag_of(fresh.as_bytes()));
        }
        let other = rendered_badge("memo test 0", "error", Color::Red, Style::Flat, None);
        assert!(std::str::from_utf8(&other.svg).unwrap().contains("error"));
    }

    #[test]
    fn junk_labels_are_bounded_by_bytes_and_keyed_as_drawn() {
        let memo = BadgeMemo::new(256 * 1024);
        // 1,100 unique labels of 16 KB, as a client may send them.
        for i in 0..1_100 {
            let label = format!("{i:05}{}", "x".repeat(16 * 1024));
            let rendered = ok(&memo, &label);
            let fresh = badge::render(&Badge::new(&label, "ok", Color::BrightGreen));
            assert_eq!(rendered.svg, fresh.as_bytes());
        }
        let held = memo.bytes.load(Ordering::Relaxed);
        assert!(held <= 256 * 1024, "{held} bytes held");
        let stored: usize = memo
            .map
            .iter()
            .map(|e| e.key().label.len())
            .max()
            .unwrap_or(0);
        assert!(
            stored <= 4 * badge::MAX_TEXT_CHARS,
            "a label of {stored} bytes kept"
        );
        // Two labels drawn alike are one entry.
        let long = "y".repeat(10_000);
        let longer = "y".repeat(20_000);
        let before = memo.map.len();
        let a = ok(&memo, &long);
        let b = ok(&memo, &longer);
        assert_eq!(a.svg, b.svg);
        assert!(memo.map.len() <= before + 1);
    }

    #[test]
    fn popular_badges_displace_junk_once_the_memo_is_full() {
        let memo = BadgeMemo::new(64 * 1024);
        for i in 0..2_000 {
            ok(&memo, &format!("junk {i}"));
        }
        assert!(memo.bytes.load(Ordering::Relaxed) > 60 * 1024, "full");
        // A badge readers keep asking for is taken in on its second request...
        ok(&memo, "popular");
        ok(&memo, "popular");
        assert!(holds(&memo, "popular"), "the popular badge is memoized");
        for _ in 0..10 {
            ok(&memo, "popular");
        }
        // ...and stays while junk keeps coming, each label asked once or twice.
        for i in 0..3_000 {
            let label = format!("more junk {i}");
            ok(&memo, &label);
            ok(&memo, &label);
            if i % 50 == 0 {
                for _ in 0..5 {
                    ok(&memo, "popular");
                }
            }
        }
        assert!(holds(&memo, "popular"), "junk displaced the popular badge");
        assert!(memo.bytes.load(Ordering::Relaxed) <= 64 * 1024);
    }
}
