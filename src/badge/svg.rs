//! The SVG of each badge style, laid out and written as badge-maker 6 writes
//! it, byte for byte: the same elements, attributes in the same order, and
//! every coordinate computed with the same floating-point operations so it
//! prints the same digits.
//!
//! Only the text widths come from the `shields` crate (badge-maker's Verdana
//! and Helvetica tables). The crate's own markup could not be kept: it decides
//! text colour on an unrounded brightness and parses colours badge-maker
//! rejects (see `css.rs`), and `tests/badge_maker.rs` compares every style
//! here with badge-maker itself.

use std::fmt::Write as _;

use shields::Font;

use super::Style;
use super::css::{dark_text, js_trim};

const FONT_FAMILY: &str = "Verdana,Geneva,DejaVu Sans,sans-serif";
const SOCIAL_FONT_FAMILY: &str = "Helvetica Neue,Helvetica,Arial,sans-serif";
/// Text is laid out ten times larger and scaled down, for sub-pixel placement.
const SCALE: f64 = 10.0;
const SCALE_DOWN: &str = "scale(.1)";
const LOGO_HEIGHT: f64 = 14.0;
const DEFAULT_LABEL_COLOR: &str = "#555";
const WHITE: &str = "#fff";

/// What the renderer draws, colours already resolved to fills.
#[derive(Debug)]
pub(super) struct Parts<'a> {
    /// Cleaned and capped, upper-cased for for-the-badge; trimmed here.
    pub label: &'a str,
    pub message: &'a str,
    /// The message side's fill.
    pub color: &'a str,
    /// `labelColor`, when the request gave one badge-maker accepts.
    pub label_color: Option<&'a str>,
    /// The logo as a data URI.
    pub logo: Option<&'a str>,
}

/// Appends the SVG document of `parts` in `style` to `out`.
pub(super) fn write(out: &mut String, style: Style, parts: &Parts<'_>) {
    // badge-maker trims both texts before anything else.
    let parts = Parts {
        label: js_trim(parts.label),
        message: js_trim(parts.message),
        ..*parts
    };
    out.reserve(
        1200 + parts.logo.map_or(0, str::len) + 6 * (parts.label.len() + parts.message.len()),
    );
    let w = &mut W(out);
    match style {
        Style::Flat | Style::FlatSquare | Style::Plastic => flat(w, style, &parts),
        Style::ForTheBadge => for_the_badge(w, &parts),
        Style::Social => social(w, &parts),
    }
}

/// Width of `text` in `font`, rounded down (`| 0`) and then up to an odd
/// number of pixels, which lines text up with the pixel grid more often.
fn preferred_width(text: &str, font: Font) -> f64 {
    let width = shields::get_text_width(text, font).trunc();
    if width % 2.0 == 0.0 {
        width + 1.0
    } else {
        width
    }
}

/// The text colour and its shadow's on `fill`.
fn text_colors(fill: &str) -> (&'static str, &'static str) {
    if dark_text(fill) {
        ("#333", "#ccc")
    } else {
        (WHITE, "#010101")
    }
}

/// The output, with the few writing primitives the templates need.
struct W<'o>(&'o mut String);

impl W<'_> {
    fn raw(&mut self, s: &str) -> &mut Self {
        self.0.push_str(s);
        self
    }

    /// Text and attribute values, escaped as badge-maker's `escapeXml`. Runs
    /// without special characters are copied whole.
    fn text(&mut self, s: &str) -> &mut Self {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&apos;",
                _ => continue,
            };
            self.0.push_str(&s[start..i]);
            self.0.push_str(entity);
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        self
    }

    /// A number as JavaScript prints it (shortest round-trip form; the
    /// values here never need an exponent). Badge coordinates are nearly
    /// always whole, or whole and a half or quarter, which are written
    /// without the float formatter. Adding zero turns -0 into 0.
    fn num(&mut self, v: f64) -> &mut Self {
        let v = v + 0.0;
        let quarters = v * 4.0;
        if quarters == quarters.trunc() && quarters.abs() < 1e15 {
            // Exact: |v| < 2^53 / 4, and v is a multiple of 0.25.
            let quarters = quarters as i64;
            let whole = quarters / 4;
            if quarters < 0 && whole == 0 {
                self.0.push('-');
            }
            self.0.push_str(itoa::Buffer::new().format(whole));
            self.0.push_str(match (quarters % 4).abs() {
                1 => ".25",
                2 => ".5",
                3 => ".75",
                _ => "",
            });
        } else {
            let _ = write!(self.0, "{v}");
        }
        self
    }

    /// `label: message`, or the message alone, escaped.
    fn accessible(&mut self, label: &str, message: &str) -> &mut Self {
        if !label.is_empty() {
            self.text(label).raw(": ");
        }
        self.text(message)
    }

    fn attr(&mut self, name: &str, value: &str) -> &mut Self {
        self.raw(" ").raw(name).raw("=\"").text(value).raw("\"")
    }

    fn nattr(&mut self, name: &str, value: f64) -> &mut Self {
        self.raw(" ").raw(name).raw("=\"").num(value).raw("\"")
    }

    /// `fill` only when it is not the white every text group inherits.
    fn fill_unless_white(&mut self, fill: &str) -> &mut Self {
        if fill != WHITE {
            self.attr("fill", fill);
        }
        self
    }

    /// The root element and title; the caller writes the body and `</svg>`.
    fn open_svg(&mut self, width: f64, height: f64, label: &str, message: &str) -> &mut Self {
        self.raw(r#"<svg xmlns="http://www.w3.org/2000/svg""#)
            .nattr("width", width)
            .nattr("height", height)
            .raw(r#" role="img" aria-label=""#)
            .accessible(label, message)
            .raw("\"><title>")
            .accessible(label, message)
            .raw("</title>")
    }

    fn logo(&mut self, logo: Option<&str>, x: f64, badge_height: f64, width: f64) -> &mut Self {
        if let Some(logo) = logo {
            self.raw("<image")
                .nattr("x", x)
                .nattr("y", 0.5 * (badge_height - LOGO_HEIGHT))
                .nattr("width", width)
                .nattr("height", LOGO_HEIGHT)
                // base64 and the `data:` prefix hold nothing escapeXml changes.
                .raw(r#" href=""#)
                .raw(logo)
                .raw("\"")
                .raw("/>");
        }
        self
    }

    fn blur(&mut self) -> &mut Self {
        self.raw(r#"<filter id="blur"><feGaussianBlur stdDeviation="16"/></filter>"#)
    }
}

/// flat, flat-square and plastic: one geometry, different chrome.
fn flat(w: &mut W<'_>, style: Style, p: &Parts<'_>) {
    let (height, vertical_margin, shadow) = match style {
        Style::Plastic => (18.0, -10.0, true),
        Style::FlatSquare => (20.0, 0.0, false),
        _ => (20.0, 0.0, true),
    };
    let horiz_padding = 5.0;
    let has_logo = p.logo.is_some();
    let logo_width = if has_logo { LOGO_HEIGHT } else { 0.0 };
    let logo_padding = if has_logo && !p.label.is_empty() {
        3.0
    } else {
        0.0
    };
    let total_logo_width = logo_width + logo_padding;

    let has_label = !p.label.is_empty() || p.label_color.is_some();
    let label_color = if has_label || has_logo {
        p.label_color.unwrap_or(DEFAULT_LABEL_COLOR)
    } else {
        p.color
    };
    let label_margin = total_logo_width + 1.0;
    let label_width = if p.label.is_empty() {
        0.0
    } else {
        preferred_width(p.label, Font::VerdanaNormal11)
    };
    let left_width = if has_label {
        label_width + 2.0 * horiz_padding + total_logo_width
    } else {
        0.0
    };
    let message_width = preferred_width(p.message, Font::VerdanaNormal11);
    let mut message_margin = left_width - if p.message.is_empty() { 0.0 } else { 1.0 };
    if !has_label {
        if has_logo {
            message_margin = message_margin + total_logo_width + horiz_padding;
        } else {
            message_margin += 1.0;
        }
    }
    let mut right_width = message_width + 2.0 * horiz_padding;
    if has_logo && !has_label {
        right_width += total_logo_width
            + if p.message.is_empty() {
                0.0
            } else {
                horiz_padding - 1.0
            };
    }
    let width = left_width + right_width;

    w.open_svg(left_width + right_width, height, p.label, p.message);
    if style != Style::FlatSquare {
        w.blur();
        if style == Style::Plastic {
            w.raw(concat!(
                r#"<linearGradient id="s" x2="0" y2="100%">"#,
                r##"<stop offset="0" stop-color="#fff" stop-opacity=".7"/>"##,
                r##"<stop offset=".1" stop-color="#aaa" stop-opacity=".1"/>"##,
                r##"<stop offset=".9" stop-color="#000" stop-opacity=".3"/>"##,
                r##"<stop offset="1" stop-color="#000" stop-opacity=".5"/>"##,
                "</linearGradient>"
            ));
        } else {
            w.raw(concat!(
                r#"<linearGradient id="s" x2="0" y2="100%">"#,
                r##"<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>"##,
                r#"<stop offset="1" stop-opacity=".1"/>"#,
                "</linearGradient>"
            ));
        }
        w.raw(r#"<clipPath id="r"><rect"#)
            .nattr("width", width)
            .nattr("height", height)
            .nattr("rx", if style == Style::Plastic { 4.0 } else { 3.0 })
            .raw(r#"/></clipPath><g clip-path="url(#r)">"#);
    } else {
        w.raw(r#"<g shape-rendering="crispEdges">"#);
    }
    w.raw("<rect")
        .nattr("width", left_width)
        .nattr("height", height)
        .attr("fill", label_color)
        .raw("/><rect")
        .nattr("x", left_width)
        .nattr("width", right_width)
        .nattr("height", height)
        .attr("fill", p.color)
        .raw("/>");
    if shadow {
        w.raw("<rect")
            .nattr("width", width)
            .nattr("height", height)
            .raw(r#" fill="url(#s)"/>"#);
    }
    w.raw("</g><g")
        .attr("fill", WHITE)
        .raw(r#" text-anchor="middle""#)
        .attr("font-family", FONT_FAMILY)
        .raw(r#" text-rendering="geometricPrecision" font-size="110">"#)
        .logo(p.logo, horiz_padding, height, logo_width);
    let text = |w: &mut W<'_>, left_margin: f64, content: &str, fill: &str, text_width: f64| {
        if content.is_empty() {
            return;
        }
        let (color, shadow_color) = text_colors(fill);
        let x = SCALE * (left_margin + 0.5 * text_width + horiz_padding);
        let y = 140.0 + vertical_margin;
        let text_length = SCALE * text_width;
        if shadow {
            let shadow_y = y + 10.0;
            w.raw(r#"<g transform="scale(.1)"><g aria-hidden="true""#)
                .attr("fill", shadow_color)
                .raw("><text")
                .nattr("x", x)
                .nattr("y", shadow_y)
                .raw(r#" fill-opacity=".8" filter="url(#blur)""#)
                .nattr("textLength", text_length)
                .raw(">")
                .text(content)
                .raw("</text><text")
                .nattr("x", x)
                .nattr("y", shadow_y)
                .raw(r#" fill-opacity=".3""#)
                .nattr("textLength", text_length)
                .raw(">")
                .text(content)
                .raw("</text></g><text")
                .nattr("x", x)
                .nattr("y", y)
                .nattr("textLength", text_length)
                .fill_unless_white(color)
                .raw(">")
                .text(content)
                .raw("</text></g>");
        } else {
            w.raw("<text")
                .nattr("x", x)
                .nattr("y", y)
                .nattr("textLength", text_length)
                .attr("transform", SCALE_DOWN)
                .fill_unless_white(color)
                .raw(">")
                .text(content)
                .raw("</text>");
        }
    };
    text(w, label_margin, p.label, label_color, label_width);
    text(w, message_margin, p.message, p.color, message_width);
    w.raw("</g></svg>");
}

/// for-the-badge: 28 px, upper case, letter-spaced, bold message.
fn for_the_badge(w: &mut W<'_>, p: &Parts<'_>) {
    const HEIGHT: f64 = 28.0;
    const TEXT_MARGIN: f64 = 12.0;
    const LOGO_MARGIN: f64 = 9.0;
    const LOGO_TEXT_GUTTER: f64 = 6.0;
    const LETTER_SPACING: f64 = 1.25;
    // Upper-cased after trimming, as badge-maker does (the caller upper-cased
    // only to count the cap, and skips text that needs no cleaning).
    let (label, message) = (p.label.to_uppercase(), p.message.to_uppercase());
    let (label, message) = (label.as_str(), message.as_str());
    let logo_width = LOGO_HEIGHT;
    let has_logo = p.logo.is_some();
    let out_label_color = p.label_color.unwrap_or(DEFAULT_LABEL_COLOR);

    // badge-maker counts UTF-16 code units here (`.length`), so an emoji
    // gets two letter spacings.
    let spaced = |text: &str, font: Font| {
        if text.is_empty() {
            0.0
        } else {
            shields::get_text_width(text, font).trunc()
                + LETTER_SPACING * text.encode_utf16().count() as f64
        }
    };
    let label_text_width = spaced(label, Font::VerdanaNormal10);
    let message_text_width = spaced(message, Font::VerdanaBold10);

    let has_label = !label.is_empty();
    let no_text = !has_label && message.is_empty();
    let needs_label_rect = has_label || (has_logo && p.label_color.is_some());
    let gutter = if no_text {
        LOGO_TEXT_GUTTER - LOGO_MARGIN
    } else {
        LOGO_TEXT_GUTTER
    };
    let label_text_min_x = if has_logo {
        LOGO_MARGIN + logo_width + gutter
    } else {
        TEXT_MARGIN
    };
    let (label_rect_width, message_text_min_x, message_rect_width) = if needs_label_rect {
        let label_rect_width = if has_label {
            label_text_min_x + label_text_width + TEXT_MARGIN
        } else {
            2.0 * LOGO_MARGIN + logo_width
        };
        (
            label_rect_width,
            label_rect_width + TEXT_MARGIN,
            2.0 * TEXT_MARGIN + message_text_width,
        )
    } else if has_logo {
        (
            0.0,
            TEXT_MARGIN + logo_width + gutter,
            2.0 * TEXT_MARGIN + logo_width + gutter + message_text_width,
        )
    } else {
        (0.0, TEXT_MARGIN, 2.0 * TEXT_MARGIN + message_text_width)
    };

    w.open_svg(
        label_rect_width + message_rect_width,
        HEIGHT,
        label,
        message,
    )
    .raw(r#"<g shape-rendering="crispEdges">"#);
    if needs_label_rect {
        w.raw("<rect")
            .nattr("width", label_rect_width)
            .nattr("height", HEIGHT)
            .attr("fill", out_label_color)
            .raw("/><rect")
            .nattr("x", label_rect_width);
    } else {
        w.raw("<rect");
    }
    w.nattr("width", message_rect_width)
        .nattr("height", HEIGHT)
        .attr("fill", p.color)
        .raw("/></g><g")
        .attr("fill", WHITE)
        .raw(r#" text-anchor="middle""#)
        .attr("font-family", FONT_FAMILY)
        .raw(r#" text-rendering="geometricPrecision" font-size="100">"#)
        .logo(p.logo, LOGO_MARGIN, HEIGHT, logo_width);
    if has_label {
        let (color, _) = text_colors(out_label_color);
        w.raw("<text")
            .attr("transform", SCALE_DOWN)
            .nattr("x", SCALE * (label_text_min_x + 0.5 * label_text_width))
            .raw(r#" y="175""#)
            .nattr("textLength", SCALE * label_text_width)
            .fill_unless_white(color)
            .raw(">")
            .text(label)
            .raw("</text>");
    }
    let (color, _) = text_colors(p.color);
    w.raw("<text")
        .attr("transform", SCALE_DOWN)
        .nattr("x", SCALE * (message_text_min_x + 0.5 * message_text_width))
        .raw(r#" y="175""#)
        .nattr("textLength", SCALE * message_text_width)
        .raw(r#" font-weight="bold""#)
        .fill_unless_white(color)
        .raw(">")
        .text(message)
        .raw("</text></g></svg>");
}

/// social: GitHub's button look, dark bold Helvetica on light grey with the
/// message in a speech bubble; colours do not apply.
fn social(w: &mut W<'_>, p: &Parts<'_>) {
    const EXTERNAL_HEIGHT: f64 = 20.0;
    const INTERNAL_HEIGHT: f64 = 19.0;
    const LABEL_HORIZ_PADDING: f64 = 5.0;
    const MESSAGE_HORIZ_PADDING: f64 = 4.0;
    const HORIZ_GUTTER: f64 = 6.0;
    let logo_width = if p.logo.is_some() { LOGO_HEIGHT } else { 0.0 };
    let logo_padding = if p.logo.is_some() && !p.label.is_empty() {
        3.0
    } else {
        0.0
    };
    let total_logo_width = logo_width + logo_padding;
    let label = capitalize(p.label);
    let message = p.message;
    let has_message = !message.is_empty();

    let label_text_width = preferred_width(&label, Font::HelveticaBold11);
    let message_text_width = preferred_width(message, Font::HelveticaBold11);
    let label_rect_width = label_text_width + total_logo_width + 2.0 * LABEL_HORIZ_PADDING;
    let message_rect_width = message_text_width + 2.0 * MESSAGE_HORIZ_PADDING;
    let right_width = if has_message {
        HORIZ_GUTTER + message_rect_width
    } else {
        0.0
    };

    w.open_svg(
        label_rect_width + 1.0 + right_width,
        EXTERNAL_HEIGHT,
        &label,
        message,
    )
    .raw(concat!(
        "<style>a:hover #llink{fill:url(#b);stroke:#ccc}a:hover #rlink{fill:#4183c4}</style>",
        r#"<linearGradient id="a" x2="0" y2="100%">"#,
        r##"<stop offset="0" stop-color="#fcfcfc" stop-opacity="0"/>"##,
        r#"<stop offset="1" stop-opacity=".1"/></linearGradient>"#,
        r#"<linearGradient id="b" x2="0" y2="100%">"#,
        r##"<stop offset="0" stop-color="#ccc" stop-opacity=".1"/>"##,
        r#"<stop offset="1" stop-opacity=".1"/></linearGradient>"#,
        r##"<g stroke="#d5d5d5"><rect stroke="none" fill="#fcfcfc" x=".5" y=".5""##,
    ))
    .nattr("width", label_rect_width)
    .raw(r#" height="19" rx="2"/>"#);
    if has_message {
        let main_x = label_rect_width + HORIZ_GUTTER + 0.5;
        let notch_x = label_rect_width + HORIZ_GUTTER;
        w.raw("<rect")
            .nattr("x", main_x)
            .raw(r#" y=".5""#)
            .nattr("width", message_rect_width)
            .nattr("height", INTERNAL_HEIGHT)
            .raw(r##" rx="2" fill="#fafafa"/><rect"##)
            .nattr("x", notch_x)
            .raw(r##" y="7.5" width=".5" height="5" stroke="#fafafa"/><path d="M"##)
            .num(main_x)
            .raw(r##" 6.5 l-3 3v1 l3 3" fill="#fafafa"/>"##);
    }
    w.raw("</g>")
        .logo(p.logo, LABEL_HORIZ_PADDING, EXTERNAL_HEIGHT, logo_width)
        .raw(r##"<g aria-hidden="true" fill="#333" text-anchor="middle""##)
        .attr("font-family", SOCIAL_FONT_FAMILY)
        .raw(concat!(
            r#" text-rendering="geometricPrecision" font-weight="700""#,
            r#" font-size="110px" line-height="14px">"#,
            r##"<rect id="llink" stroke="#d5d5d5" fill="url(#a)" x=".5" y=".5""##
        ))
        .nattr("width", label_rect_width)
        .nattr("height", INTERNAL_HEIGHT)
        .raw(r#" rx="2"/>"#);
    let pair = |w: &mut W<'_>, x: f64, length: f64, content: &str, id: Option<&str>| {
        w.raw(r#"<text aria-hidden="true""#)
            .nattr("x", x)
            .raw(r##" y="150" fill="#fff""##)
            .attr("transform", SCALE_DOWN)
            .nattr("textLength", length)
            .raw(">")
            .text(content)
            .raw("</text><text");
        if let Some(id) = id {
            w.attr("id", id);
        }
        w.nattr("x", x)
            .raw(r#" y="140""#)
            .attr("transform", SCALE_DOWN)
            .nattr("textLength", length)
            .raw(">")
            .text(content)
            .raw("</text>");
    };
    pair(
        w,
        SCALE * (total_logo_width + label_text_width / 2.0 + LABEL_HORIZ_PADDING),
        SCALE * label_text_width,
        &label,
        None,
    );
    if has_message {
        pair(
            w,
            SCALE * (label_rect_width + HORIZ_GUTTER + message_rect_width / 2.0),
            SCALE * message_text_width,
            message,
            Some("rlink"),
        );
    }
    w.raw("</g></svg>");
}

/// badge-maker's `capitalize`: the first UTF-16 unit upper-cased. A character
/// outside the BMP is half a surrogate pair there, which has no upper case.
fn capitalize(s: &str) -> std::borrow::Cow<'_, str> {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) if first.len_utf16() == 1 && !first.is_uppercase() => {
            let upper: String = first.to_uppercase().collect();
            if upper.chars().eq([first]) {
                std::borrow::Cow::Borrowed(s)
            } else {
                std::borrow::Cow::Owned(upper + chars.as_str())
            }
        }
        _ => std::borrow::Cow::Borrowed(s),
    }
}
