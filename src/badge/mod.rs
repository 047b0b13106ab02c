//! Badge rendering: a label, a message and a colour in, the SVG document that
//! `/status.svg` answers with out, laid out the way shields.io lays it out.
//!
//! # Why this wraps the `shields` crate instead of owning the width tables
//!
//! A badge sits next to shields.io badges in a README, so it must have their
//! geometry to the pixel. shields.io's badge-maker measures text with Verdana
//! 11px width tables (anafanafo) and rounds each side up to an odd number of
//! pixels; `shields` 1.8 carries the same tables, compiled into statics, and
//! emits markup its authors diff byte for byte against img.shields.io. Our
//! tests (`src/badge/tests.rs`) hold it to figures shields.io itself
//! produced, in every style, and it matches all of them. It renders a badge
//! in under a microsecond on one core (`benches/badge_render.rs`), with no
//! locks and no I/O. Owning the tables would mean copying the same data and
//! keeping it in step with upstream by hand, for no gain.
//!
//! What the crate does not do, and this module adds, follows from what a
//! hostile `text=` could do:
//! - The crate escapes the five XML special characters but passes control
//!   characters through, and XML 1.0 forbids most of them even as character
//!   references: one `%01` in a URL would make the whole image unreadable.
//!   They are removed here, with the bidirectional overrides that could
//!   reorder the accessible name around them and the two non-characters XML
//!   rejects.
//! - The crate lays out text of any length; a label of a few kilobytes would
//!   be copied five times into every answer. Text is capped at
//!   [`MAX_TEXT_CHARS`].
//!
//! The Docker logo is our own copy of the Simple Icons glyph
//! (`src/badge/docker.svg`, CC0), handed to the crate as raw SVG rather than
//! as the `docker` slug. The output is the same bytes (a test compares them
//! while the crate's `simple-icons` feature is on), and the node does not
//! need that feature, which embeds all ~3,300 icons: 5 MB of SVG, 12.7 MB of
//! release binary.
//!
//! docs/BADGES.md shows the result and says how to regenerate the examples.

use std::borrow::Cow;

use shields::{BadgeParams, BadgeStyle, Font, RenderOptions};

#[cfg(test)]
mod tests;

/// The label the old server showed when the request names none.
pub const DEFAULT_LABEL: &str = "Docker";

/// Longest label or message, in characters, that reaches the SVG. Longer text
/// keeps its first `MAX_TEXT_CHARS - 1` characters followed by `…`.
///
/// 64 leaves room for a label such as `organization/repository:tag` of
/// ordinary length, and keeps a badge without logo under 3 KB whatever the
/// query string holds.
pub const MAX_TEXT_CHARS: usize = 64;

/// The Simple Icons Docker glyph, as shields.io embeds it for `logo=docker`.
const DOCKER_SVG: &str = include_str!("docker.svg");

/// Badge styles, named as shields.io's `style=` parameter names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Style {
    /// 20 px high, rounded, with a soft gradient: shields.io's default.
    #[default]
    Flat,
    /// 20 px high, square corners, no gradient.
    FlatSquare,
    /// 18 px high (not 20: shields.io draws it so), rounded, glossy.
    Plastic,
    /// 28 px high, upper-case, letter-spaced, bold message.
    ForTheBadge,
}

impl Style {
    /// Every style, default first.
    pub const ALL: [Style; 4] = [
        Style::Flat,
        Style::FlatSquare,
        Style::Plastic,
        Style::ForTheBadge,
    ];

    /// Reads a `style=` value. ASCII case does not matter; styles shields.io
    /// has and we do not (`social`) are `None`, like any unknown name, so the
    /// caller decides the fallback.
    pub fn parse(s: &str) -> Option<Style> {
        Style::ALL
            .into_iter()
            .find(|style| style.as_str().eq_ignore_ascii_case(s))
    }

    /// The `style=` value that selects this style.
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Flat => "flat",
            Style::FlatSquare => "flat-square",
            Style::Plastic => "plastic",
            Style::ForTheBadge => "for-the-badge",
        }
    }

    fn to_shields(self) -> BadgeStyle {
        match self {
            Style::Flat => BadgeStyle::Flat,
            Style::FlatSquare => BadgeStyle::FlatSquare,
            Style::Plastic => BadgeStyle::Plastic,
            Style::ForTheBadge => BadgeStyle::ForTheBadge,
        }
    }
}

/// Message colours, from shields.io's palette so our badges match theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Color {
    /// `ok`.
    BrightGreen,
    /// `error`.
    Red,
    /// `building`.
    Blue,
    /// `unknown`, `not found` and other answers that say nothing about the build.
    LightGrey,
}

impl Color {
    /// Every colour.
    pub const ALL: [Color; 4] = [
        Color::BrightGreen,
        Color::Red,
        Color::Blue,
        Color::LightGrey,
    ];

    /// The fill shields.io uses for this colour, e.g. `#4c1`.
    pub fn hex(self) -> &'static str {
        match self {
            Color::BrightGreen => "#4c1",
            Color::Red => "#e05d44",
            Color::Blue => "#007ec6",
            Color::LightGrey => "#9f9f9f",
        }
    }

    /// shields.io's name for this colour, for the `color` field of the
    /// endpoint-badge JSON, e.g. `brightgreen`.
    pub fn name(self) -> &'static str {
        match self {
            Color::BrightGreen => "brightgreen",
            Color::Red => "red",
            Color::Blue => "blue",
            Color::LightGrey => "lightgrey",
        }
    }
}

/// Logos a badge can carry left of its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Logo {
    /// Docker's whale, drawn in whitesmoke as shields.io draws `logo=docker`.
    Docker,
}

impl Logo {
    /// Reads a `logo=` value (a Simple Icons slug; ASCII case does not matter).
    pub fn parse(s: &str) -> Option<Logo> {
        s.eq_ignore_ascii_case("docker").then_some(Logo::Docker)
    }

    /// The `logo=` value that selects this logo.
    pub fn as_str(self) -> &'static str {
        match self {
            Logo::Docker => "docker",
        }
    }

    /// The logo's SVG source, before it is coloured and embedded as a data URI.
    pub fn svg(self) -> &'static str {
        match self {
            Logo::Docker => DOCKER_SVG,
        }
    }
}

/// What one badge shows. Text is taken as the user wrote it: rendering
/// cleans, caps and escapes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Badge<'a> {
    /// Left side, on grey; an empty label gives a message-only badge.
    pub label: &'a str,
    /// Right side, on `color`.
    pub message: &'a str,
    pub color: Color,
    pub style: Style,
    pub logo: Option<Logo>,
}

impl<'a> Badge<'a> {
    /// A flat badge without logo.
    pub fn new(label: &'a str, message: &'a str, color: Color) -> Self {
        Badge {
            label,
            message,
            color,
            style: Style::Flat,
            logo: None,
        }
    }
}

/// Renders `badge` as a complete, standalone SVG document.
///
/// The root carries `role="img"`, an `aria-label` of `label: message` (just
/// `message` when the label is empty) and the same text as `<title>`;
/// for-the-badge upper-cases both, as shields.io does.
pub fn render(badge: &Badge<'_>) -> String {
    let mut svg = String::new();
    render_into(badge, &mut svg);
    svg
}

/// Appends the SVG of `badge` to `out`, so a caller rendering many badges can
/// reuse one buffer.
pub fn render_into(badge: &Badge<'_>, out: &mut String) {
    // for-the-badge upper-cases its text, which can lengthen it ("ß" is "SS");
    // doing it before the cap keeps the cap true of what is drawn.
    let upper = badge.style == Style::ForTheBadge;
    let label = clean_text(badge.label, upper);
    let message = clean_text(badge.message, upper);
    let params = BadgeParams {
        style: badge.style.to_shields(),
        label: Some(&label),
        message: Some(&message),
        // Left unset rather than "#555" (the same grey): badge-maker treats an
        // explicit label colour as a label, and would draw a stub for an empty one.
        label_color: None,
        message_color: Some(badge.color.hex()),
        link: None,
        extra_link: None,
        logo: badge.logo.map(Logo::svg),
        logo_color: None,
    };
    shields::render_badge_svg_into(&params, &RenderOptions::default(), out);
}

/// Width in pixels of `text` in Verdana 11px, as shields.io's badge-maker
/// measures label and message (characters missing from its tables count as
/// wide as `m`). The badge rounds it up to an odd number and pads it 5 px each side.
pub fn text_width(text: &str) -> f64 {
    shields::get_text_width(text, Font::VerdanaNormal11)
}

/// Characters that never reach the SVG.
fn is_removed(c: char) -> bool {
    // Cc: C0, DEL and C1. XML 1.0 allows only tab, LF and CR of these, and
    // those three would not show in a one-line badge anyway.
    c.is_control()
        // Bidi embeddings, overrides and isolates: text could reorder what
        // follows it in the accessible name "label: message".
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        // Not XML characters at all.
        || matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// The label or message text as `style` draws it: what decides the picture, so two
/// texts that clean to the same are the same badge.
pub fn drawn_text(text: &str, style: Style) -> Cow<'_, str> {
    clean_text(text, style == Style::ForTheBadge)
}

/// Removes what must not reach the SVG and caps the length; upper-cases for
/// for-the-badge. Escaping is left to the crate: it must measure the text
/// unescaped, or every `&` would be laid out five characters wide.
fn clean_text(text: &str, upper: bool) -> Cow<'_, str> {
    // Nearly every label and message is short printable ASCII; settle those
    // with one byte scan (a byte count is then a character count).
    if text.len() <= MAX_TEXT_CHARS && text.bytes().all(|b| matches!(b, b' '..=b'~')) {
        return Cow::Borrowed(text);
    }
    let mut chars = 0;
    let mut dirty = false;
    for c in text.chars() {
        chars += 1;
        dirty |= is_removed(c);
    }
    // ASCII upper-casing keeps the length, and the crate does it anyway.
    let lengthens = upper && !text.is_ascii();
    if !dirty && !lengthens && chars <= MAX_TEXT_CHARS {
        return Cow::Borrowed(text);
    }
    let mut kept: String = text.chars().filter(|&c| !is_removed(c)).collect();
    if upper {
        kept = kept.to_uppercase();
    }
    if kept.chars().count() > MAX_TEXT_CHARS {
        let cut = kept
            .char_indices()
            .nth(MAX_TEXT_CHARS - 1)
            .map_or(kept.len(), |(i, _)| i);
        kept.truncate(cut);
        // "build …" reads worse than "build…".
        let trimmed = kept.trim_end().len();
        kept.truncate(trimmed);
        kept.push('…');
    }
    Cow::Owned(kept)
}
