//! Rendered badges and their ETags, by everything that decides them: the static badge
//! memo, which saves rendering and hashing the few badges almost every request asks for.

use std::sync::LazyLock;

use bytes::Bytes;
use dashmap::DashMap;
use hyper::header::HeaderValue;

use super::response::etag_of;
use crate::badge::{self, Badge, Color, Logo, Style};

/// Rendered badges and their ETags, by everything that decides them. Almost every request
/// asks for one of a few badges (the default label, a handful of messages), and rendering
/// and hashing one was about half of a cached badge's handler time (docs/PERFORMANCE.md).
/// Labels are client text, so the memo stops taking new badges at [`BADGE_MEMO_CAPACITY`];
/// past that a badge is rendered per request, as before. One memo serves every node in the
/// process: it only remembers what a pure function returned.
static BADGE_MEMO: LazyLock<DashMap<BadgeKey, RenderedBadge>> = LazyLock::new(DashMap::new);

/// About 1.3 KB each: at most a megabyte or two.
const BADGE_MEMO_CAPACITY: usize = 1024;

#[derive(Debug, PartialEq, Eq, Hash)]
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

/// The badge's SVG and `ETag`, from the memo or rendered now.
pub fn rendered_badge(
    label: &str,
    message: &'static str,
    color: Color,
    style: Style,
    logo: Option<Logo>,
) -> RenderedBadge {
    let key = BadgeKey {
        label: label.into(),
        message,
        color,
        style,
        logo,
    };
    if let Some(rendered) = BADGE_MEMO.get(&key) {
        return rendered.clone();
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
    if BADGE_MEMO.len() < BADGE_MEMO_CAPACITY {
        BADGE_MEMO.insert(key, rendered.clone());
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memoized_badges_match_fresh_renders_and_stay_bounded() {
        for i in 0..BADGE_MEMO_CAPACITY + 100 {
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
        // Other tests render badges at the same time; the check before inserting may let a
        // few more in, never many.
        assert!(BADGE_MEMO.len() <= BADGE_MEMO_CAPACITY + 16);
    }
}
