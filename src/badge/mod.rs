//! Badge rendering: a label, a message and colours in, the SVG document that
//! `/status.svg` answers with out, byte for byte as shields.io's badge-maker
//! (6.0) draws it.
//!
//! # Why the markup is ours and the width tables are the `shields` crate's
//!
//! A badge sits next to shields.io badges in a README, so it must be theirs to
//! the pixel, and a node's SVG and its endpoint JSON (drawn by shields.io from
//! the colour's name) must show the same colours. badge-maker measures text
//! with Verdana and Helvetica width tables (anafanafo); `shields` 1.8 carries
//! the same tables compiled into statics, and [`text_width`] is theirs.
//!
//! The crate's markup is not used. Held byte for byte against badge-maker 6.0
//! (`tests/badge_maker.rs`, which runs badge-maker itself), it differs in three
//! ways no parameter of the crate reaches:
//! - its named colours are the pre-6.0 palette (`brightgreen` `#4c1`, not
//!   `#4b0`); passing hex around it works only for colours we name;
//! - it picks dark or white text on an unrounded brightness, badge-maker on one
//!   rounded to two decimals: on `#b1b1b1` (0.694) the crate writes `#333`,
//!   badge-maker white; and it makes text on a translucent fill white;
//! - it takes CSS colours badge-maker rejects (`RED`, `hwb(…)`,
//!   `transparent`), which badge-maker replaces with its default.
//!
//! So `badge/svg.rs` writes the five styles the way badge-maker writes them,
//! and `badge/css.rs` reads colours the way badge-maker reads them. Rendering
//! stays under a microsecond or two per badge, without locks or I/O
//! (`benches/badge_render.rs`).
//!
//! What badge-maker does not do, and this module adds, follows from what a
//! hostile `text=` could do:
//! - badge-maker escapes the five XML special characters but passes control
//!   characters through, and XML 1.0 forbids most of them even as character
//!   references: one `%01` in a URL would make the whole image unreadable.
//!   They are removed here, with the bidirectional overrides that could
//!   reorder the accessible name around them and the two non-characters XML
//!   rejects.
//! - badge-maker lays out text of any length; a label of a few kilobytes would
//!   be copied five times into every answer. Text is capped at
//!   [`MAX_TEXT_CHARS`].
//!
//! The Docker logo is our own copy of the Simple Icons glyph
//! (`src/badge/docker.svg`, CC0), coloured as shields.io colours named logos.
//!
//! docs/BADGES.md shows the result and says how to regenerate the examples.

use std::borrow::Cow;
use std::sync::OnceLock;

use base64::Engine as _;
use shields::Font;

mod css;
mod svg;
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

/// Docker's brand colour in Simple Icons. shields.io draws a named logo in its
/// brand colour unless that is too dark for the grey label (brightness at most
/// 0.4) or, in `social`, too light for its white (at least 0.6); this one's is
/// 0.49, so every style keeps it.
const DOCKER_HEX: &str = "#2496ED";

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
    /// 20 px high, GitHub's button look: a capitalised label and the message
    /// in a speech bubble, dark bold Helvetica; colours do not apply.
    Social,
}

impl Style {
    /// Every style, default first.
    pub const ALL: [Style; 5] = [
        Style::Flat,
        Style::FlatSquare,
        Style::Plastic,
        Style::ForTheBadge,
        Style::Social,
    ];

    /// Reads a `style=` value. ASCII case does not matter; an unknown name is
    /// `None`, so the caller decides the fallback.
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
            Style::Social => "social",
        }
    }
}

/// shields.io's named colours, with badge-maker 6.0's fills, so our badges
/// match theirs and the endpoint JSON's `color` names the colour we draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Color {
    /// `ok`.
    BrightGreen,
    Green,
    YellowGreen,
    Yellow,
    Orange,
    /// `error`.
    Red,
    /// `building`.
    Blue,
    /// The default label colour.
    Grey,
    /// `unknown`, `not found` and other answers that say nothing about the build.
    LightGrey,
}

impl Color {
    /// Every colour, in badge-maker's order.
    pub const ALL: [Color; 9] = [
        Color::BrightGreen,
        Color::Green,
        Color::Yellow,
        Color::YellowGreen,
        Color::Orange,
        Color::Red,
        Color::Blue,
        Color::Grey,
        Color::LightGrey,
    ];

    /// The fill badge-maker 6.0 uses for this colour, e.g. `#4b0`.
    pub fn hex(self) -> &'static str {
        match self {
            Color::BrightGreen => "#4b0",
            Color::Green => "#67ac09",
            Color::Yellow => "#d8b800",
            Color::YellowGreen => "#95991a",
            Color::Orange => "#ea7233",
            Color::Red => "#dd4343",
            Color::Blue => "#007ec6",
            Color::Grey => "#555",
            Color::LightGrey => "#939393",
        }
    }

    /// shields.io's name for this colour, for the `color` field of the
    /// endpoint-badge JSON, e.g. `brightgreen`.
    pub fn name(self) -> &'static str {
        match self {
            Color::BrightGreen => "brightgreen",
            Color::Green => "green",
            Color::Yellow => "yellow",
            Color::YellowGreen => "yellowgreen",
            Color::Orange => "orange",
            Color::Red => "red",
            Color::Blue => "blue",
            Color::Grey => "grey",
            Color::LightGrey => "lightgrey",
        }
    }

    /// A colour by its shields.io name or alias (`success`, `critical`,
    /// `gray`, …). Case matters, as it does to badge-maker.
    pub fn from_name(s: &str) -> Option<Color> {
        Some(match s {
            "brightgreen" | "success" => Color::BrightGreen,
            "green" => Color::Green,
            "yellow" => Color::Yellow,
            "yellowgreen" => Color::YellowGreen,
            "orange" | "important" => Color::Orange,
            "red" | "critical" => Color::Red,
            "blue" | "informational" => Color::Blue,
            "grey" | "gray" => Color::Grey,
            "lightgrey" | "lightgray" | "inactive" => Color::LightGrey,
            _ => return None,
        })
    }
}

/// Whether badge-maker takes `s` as a colour (a name or alias, three or six hex
/// digits, or a CSS colour it parses). A `color=` it does not take still
/// replaces the badge's colour on shields.io, with badge-maker's default
/// `brightgreen`; see [`Badge::color_override`].
pub fn is_color(s: &str) -> bool {
    css::to_svg_color(s).is_some()
}

/// Logos a badge can carry left of its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Logo {
    /// Docker's whale, in Docker blue unless `logoColor` says otherwise.
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

    /// The data URI a badge embeds: the glyph filled with `logo_color` when
    /// badge-maker takes it as a colour, else with the logo's default, written
    /// as shields.io writes it (`fill` added to the root, base64 of the text).
    pub fn data_uri(self, logo_color: Option<&str>) -> Cow<'static, str> {
        static DOCKER_DEFAULT: OnceLock<String> = OnceLock::new();
        match logo_color.and_then(css::to_svg_color) {
            Some(fill) => Cow::Owned(coloured_data_uri(self.svg(), &fill)),
            None => Cow::Borrowed(
                DOCKER_DEFAULT.get_or_init(|| coloured_data_uri(DOCKER_SVG, DOCKER_HEX)),
            ),
        }
    }
}

fn coloured_data_uri(svg: &str, fill: &str) -> String {
    let coloured = svg
        .trim()
        .replacen("<svg", &format!("<svg fill=\"{fill}\""), 1);
    let mut uri = String::from("data:image/svg+xml;base64,");
    base64::engine::general_purpose::STANDARD.encode_string(coloured, &mut uri);
    uri
}

/// What one badge shows. Text is taken as the user wrote it: rendering
/// cleans, caps and escapes it. Colours given as text are read as badge-maker
/// reads them (see [`is_color`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Badge<'a> {
    /// Left side, on grey; an empty label gives a message-only badge.
    pub label: &'a str,
    /// Right side, on `color`.
    pub message: &'a str,
    /// The colour the badge's kind gives its message side.
    pub color: Color,
    pub style: Style,
    pub logo: Option<Logo>,
    /// The request's `color=`, which replaces `color`: as shields.io does, a
    /// value badge-maker does not take as a colour gives its default
    /// `brightgreen`. shields.io ignores it on error badges; so should callers.
    pub color_override: Option<&'a str>,
    /// The request's `labelColor=`; ignored unless badge-maker takes it. Set,
    /// it also gives an empty label its own (empty) side.
    pub label_color: Option<&'a str>,
    /// The request's `logoColor=`, for the logo's fill.
    pub logo_color: Option<&'a str>,
}

impl<'a> Badge<'a> {
    /// A flat badge without logo or colour overrides.
    pub fn new(label: &'a str, message: &'a str, color: Color) -> Self {
        Badge {
            label,
            message,
            color,
            style: Style::Flat,
            logo: None,
            color_override: None,
            label_color: None,
            logo_color: None,
        }
    }
}

/// Renders `badge` as a complete, standalone SVG document.
///
/// The root carries `role="img"`, an `aria-label` of `label: message` (just
/// `message` when the label is empty) and the same text as `<title>`;
/// for-the-badge upper-cases both and social capitalises the label, as
/// shields.io does.
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
    let color = match badge.color_override {
        Some(color) => css::to_svg_color(color).unwrap_or(Cow::Borrowed(Color::BrightGreen.hex())),
        None => Cow::Borrowed(badge.color.hex()),
    };
    let label_color = badge.label_color.and_then(css::to_svg_color);
    let logo = badge.logo.map(|logo| logo.data_uri(badge.logo_color));
    let parts = svg::Parts {
        label: &label,
        message: &message,
        color: &color,
        label_color: label_color.as_deref(),
        logo: logo.as_deref(),
    };
    svg::write(out, badge.style, &parts);
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

/// The fill the SVG writes for a colour given as text, or `None` when badge-maker takes it
/// for no colour at all: what decides the picture, as [`drawn_text`] does for text.
pub fn drawn_color(color: &str) -> Option<Cow<'_, str>> {
    css::to_svg_color(color)
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
