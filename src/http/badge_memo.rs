//! Rendered badges and their ETags, by everything that decides the picture: rendering and
//! hashing a badge was about half of a cached badge's handler time (docs/PERFORMANCE.md),
//! and almost every request asks for one of a few badges.
//!
//! Labels, messages and colours are client text, so a badge is keyed by what is drawn
//! (text cleaned and capped at `badge::MAX_TEXT_CHARS`, colours as the SVG writes them),
//! never by what the client sent: a 16 KB label is the same badge as its first 64
//! characters, and every colour badge-maker refuses is the one default. The memo is a
//! [`Memo`]: bounded by bytes, popular badges kept while junk passes through.

use std::borrow::Cow;
use std::hash::Hash;
use std::sync::LazyLock;

use bytes::Bytes;
use hyper::header::HeaderValue;
use quick_cache::Equivalent;

use super::memo::{Memo, Weigh};
use super::response::etag_of;
use crate::badge::{self, Badge, Color, Logo, Style};

/// The memo every node of the process shares: it only remembers what a pure function
/// returned.
static BADGE_MEMO: LazyLock<Memo<DrawnKey, RenderedBadge>> =
    LazyLock::new(|| Memo::new(BADGE_MEMO_BYTES, TYPICAL_BADGE_BYTES));

/// Four megabytes: about 2,500 badges of 1.3 KB (a Docker logo adds 3 KB), far more than
/// the few a node serves most.
const BADGE_MEMO_BYTES: usize = 4 * 1024 * 1024;
/// A flat badge without logo, with its key and ETag.
const TYPICAL_BADGE_BYTES: usize = 1600;

/// Everything that decides a badge's SVG, as the renderer draws it. `S` is the text's
/// storage: owned in the memo, borrowed to look one up without copying.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Drawn<S> {
    label: S,
    message: S,
    /// The message side's fill.
    color: S,
    label_color: Option<S>,
    style: Style,
    logo: Option<Logo>,
    /// The logo's fill; `None` without a logo, whatever the request said.
    logo_color: Option<S>,
}

type DrawnKey = Drawn<Box<str>>;

impl<'a> Drawn<Cow<'a, str>> {
    fn of(badge: &Badge<'a>) -> Drawn<Cow<'a, str>> {
        let fill = |color: Option<&'a str>| color.and_then(badge::drawn_color);
        Drawn {
            label: badge::drawn_text(badge.label, badge.style),
            message: badge::drawn_text(badge.message, badge.style),
            color: match badge.color_override {
                Some(color) => {
                    badge::drawn_color(color).unwrap_or(Cow::Borrowed(Color::BrightGreen.hex()))
                }
                None => Cow::Borrowed(badge.color.hex()),
            },
            label_color: fill(badge.label_color),
            style: badge.style,
            logo: badge.logo,
            logo_color: badge.logo.and(fill(badge.logo_color)),
        }
    }

    fn owned(&self) -> DrawnKey {
        let own = |text: &Cow<'_, str>| Box::<str>::from(&**text);
        Drawn {
            label: own(&self.label),
            message: own(&self.message),
            color: own(&self.color),
            label_color: self.label_color.as_ref().map(own),
            style: self.style,
            logo: self.logo,
            logo_color: self.logo_color.as_ref().map(own),
        }
    }
}

/// A borrowed key finds its owned twin: both hash their text as `str`.
impl Equivalent<DrawnKey> for Drawn<Cow<'_, str>> {
    fn equivalent(&self, key: &DrawnKey) -> bool {
        let same = |a: &Option<Cow<'_, str>>, b: &Option<Box<str>>| a.as_deref() == b.as_deref();
        *self.label == *key.label
            && *self.message == *key.message
            && *self.color == *key.color
            && same(&self.label_color, &key.label_color)
            && self.style == key.style
            && self.logo == key.logo
            && same(&self.logo_color, &key.logo_color)
    }
}

impl Weigh for DrawnKey {
    fn bytes(&self) -> usize {
        let text = |t: &Option<Box<str>>| t.as_deref().map_or(0, str::len);
        std::mem::size_of::<Self>()
            + self.label.len()
            + self.message.len()
            + self.color.len()
            + text(&self.label_color)
            + text(&self.logo_color)
    }
}

#[derive(Debug, Clone)]
pub struct RenderedBadge {
    pub svg: Bytes,
    pub etag: Option<HeaderValue>,
}

impl Weigh for RenderedBadge {
    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.svg.len()
            + self.etag.as_ref().map_or(0, HeaderValue::len)
    }
}

/// The SVG and `ETag` of `badge`, from the memo or rendered now.
pub fn rendered(badge: &Badge<'_>) -> RenderedBadge {
    rendered_in(&BADGE_MEMO, badge)
}

/// The SVG and `ETag` of a badge without colour overrides, from the memo or rendered now.
pub fn rendered_badge(
    label: &str,
    message: &str,
    color: Color,
    style: Style,
    logo: Option<Logo>,
) -> RenderedBadge {
    rendered(&Badge {
        style,
        logo,
        ..Badge::new(label, message, color)
    })
}

fn rendered_in(memo: &Memo<DrawnKey, RenderedBadge>, badge: &Badge<'_>) -> RenderedBadge {
    let key = Drawn::of(badge);
    if let Some(found) = memo.get(&key) {
        return found;
    }
    let svg = Bytes::from(badge::render(badge));
    let rendered = RenderedBadge {
        etag: etag_of(&svg),
        svg,
    };
    memo.insert(key.owned(), rendered.clone());
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memo(budget: usize) -> Memo<DrawnKey, RenderedBadge> {
        Memo::new(budget, TYPICAL_BADGE_BYTES)
    }

    /// A Docker badge as `/docker/pulls/…?label=` asks for it, with a logo and colours.
    fn docker(label: &str) -> Badge<'_> {
        Badge {
            logo: Some(Logo::Docker),
            color_override: Some("blue"),
            label_color: Some("555"),
            ..Badge::new(label, "1.2M", Color::Blue)
        }
    }

    /// Whether two answers share one buffer: the second came from the memo.
    fn same_buffer(a: &RenderedBadge, b: &RenderedBadge) -> bool {
        a.svg.as_ptr() == b.svg.as_ptr()
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
        // Every field that changes the picture is in the key.
        let base = docker("pulls");
        let variants = [
            base,
            Badge {
                color_override: Some("red"),
                ..base
            },
            Badge {
                color_override: None,
                ..base
            },
            Badge {
                label_color: Some("abc"),
                ..base
            },
            Badge {
                label_color: None,
                ..base
            },
            Badge { logo: None, ..base },
            Badge {
                logo_color: Some("white"),
                ..base
            },
            Badge {
                style: Style::ForTheBadge,
                ..base
            },
            Badge {
                message: "1.3M",
                ..base
            },
        ];
        for badge in variants {
            assert_eq!(
                rendered(&badge).svg,
                badge::render(&badge).as_bytes(),
                "{badge:?}"
            );
        }
    }

    #[test]
    fn badges_drawn_alike_are_one_entry() {
        let memo = memo(256 * 1024);
        let long = "y".repeat(10_000);
        let longer = "y".repeat(20_000);
        let a = rendered_in(&memo, &docker(&long));
        let b = rendered_in(&memo, &docker(&longer));
        assert!(same_buffer(&a, &b), "two labels drawn alike");
        // Colours badge-maker refuses all give its default, and are one badge.
        let junk = |color| Badge {
            color_override: Some(color),
            ..docker("pulls")
        };
        let a = rendered_in(&memo, &junk("not a colour"));
        let b = rendered_in(&memo, &junk("neither is this"));
        assert!(same_buffer(&a, &b), "two refused colours");
        assert_eq!(memo.len(), 2);
    }

    #[test]
    fn junk_docker_labels_stay_within_the_budget_and_the_memo_keeps_memoizing() {
        let budget = 256 * 1024;
        let memo = memo(budget);
        let popular = docker("docker pulls");
        rendered_in(&memo, &popular);
        rendered_in(&memo, &popular);
        // 2,000 distinct long labels, as clients may send them in `label=`: each entry is
        // about 4.5 KB (the logo), so forty times what the budget holds.
        for i in 0..2_000 {
            let label = format!("{i:05}{}", "x".repeat(2048));
            let junk = docker(&label);
            let answer = rendered_in(&memo, &junk);
            if i % 100 == 0 {
                assert_eq!(answer.svg, badge::render(&junk).as_bytes());
            }
            assert!(memo.bytes() <= budget, "{} bytes held", memo.bytes());
            if i % 50 == 0 {
                rendered_in(&memo, &popular);
            }
        }
        // The popular badge is still memoized, and so is a badge first asked for now.
        let a = rendered_in(&memo, &popular);
        assert!(
            same_buffer(&a, &rendered_in(&memo, &popular)),
            "popular badge"
        );
        let new = docker("a new label");
        let a = rendered_in(&memo, &new);
        assert!(same_buffer(&a, &rendered_in(&memo, &new)), "new badge");
    }

    #[test]
    fn the_process_memo_keeps_memoizing_after_many_junk_labels() {
        // Through the public function and the memo every node shares: more distinct
        // labels than any count bound would hold, then a badge never seen before.
        for i in 0..3_000 {
            let label = format!("process junk {i:05}{}", "z".repeat(2_000));
            rendered(&docker(&label));
        }
        assert!(BADGE_MEMO.bytes() <= BADGE_MEMO_BYTES);
        let new = docker("asked after the junk");
        let first = rendered(&new);
        assert!(same_buffer(&first, &rendered(&new)), "memoized");
    }
}
