//! Tests for badge rendering: every badge is well-formed XML with shields.io's
//! geometry, and hostile text stays text.

use std::path::PathBuf;

use roxmltree::{Document, Node};

use super::*;

const MESSAGES: [&str; 7] = [
    "ok",
    "error",
    "building",
    "unknown",
    "not found",
    "invalid",
    "rate limited",
];

/// Elements a badge may contain. Anything else (a `script`, a `foreignObject`)
/// means text escaped into markup.
const ELEMENTS: [&str; 13] = [
    "svg",
    "title",
    "filter",
    "feGaussianBlur",
    "linearGradient",
    "stop",
    "clipPath",
    "g",
    "rect",
    "text",
    "image",
    // social's hover rule and speech-bubble notch.
    "style",
    "path",
];

/// Height of each style in shields.io (badge-maker's snapshots: 20, 20, 18, 28, 20).
fn expected_height(style: Style) -> f64 {
    match style {
        Style::Flat | Style::FlatSquare | Style::Social => 20.0,
        Style::Plastic => 18.0,
        Style::ForTheBadge => 28.0,
    }
}

fn parse(svg: &str) -> Document<'_> {
    Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed XML ({e}): {svg:?}"))
}

fn number(node: Node, attribute: &str) -> f64 {
    node.attribute(attribute)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("<{}> has no numeric {attribute}", node.tag_name().name()))
}

fn size(doc: &Document) -> (f64, f64) {
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    (number(root, "width"), number(root, "height"))
}

fn title(doc: &Document) -> String {
    let root = doc.root_element();
    let first = root.first_element_child().expect("svg has children");
    assert!(
        first.has_tag_name("title"),
        "the title must be the first child, where assistive technology looks for it"
    );
    first.text().unwrap_or("").to_owned()
}

/// The `<text>` elements drawn in the foreground, in document order: flat and
/// plastic also draw each text twice more as a translucent shadow, social once
/// more as a white `aria-hidden` emboss.
fn visible_texts<'a>(doc: &'a Document) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("text")
                && n.attribute("aria-hidden").is_none()
                && !n.has_attribute("fill-opacity")
        })
        .collect()
}

fn visible_strings(doc: &Document) -> Vec<String> {
    visible_texts(doc)
        .iter()
        .map(|n| n.text().unwrap_or("").to_owned())
        .collect()
}

/// Checks that each visible text lies inside the badge and that label and
/// message do not overlap. Every style draws text at ten times the size under
/// `scale(.1)`, centred on `x`, squeezed or stretched to `textLength`.
fn assert_text_fits(doc: &Document, svg: &str) {
    let (width, _) = size(doc);
    let mut previous_end = 0.0;
    for text in visible_texts(doc) {
        let x = number(text, "x") / 10.0;
        let length = number(text, "textLength") / 10.0;
        let (start, end) = (x - length / 2.0, x + length / 2.0);
        assert!(
            start >= previous_end && end <= width,
            "text [{start}, {end}] outside its place in a {width} px badge: {svg}"
        );
        previous_end = end;
    }
}

/// Width of the drawn span of the visible text that reads `content`.
fn drawn_width(doc: &Document, content: &str) -> f64 {
    let text = visible_texts(doc)
        .into_iter()
        .find(|n| n.text() == Some(content))
        .unwrap_or_else(|| panic!("no visible text {content:?}"));
    number(text, "textLength") / 10.0
}

fn assert_only_badge_markup(doc: &Document, svg: &str) {
    for node in doc.descendants().filter(Node::is_element) {
        let name = node.tag_name().name();
        assert!(ELEMENTS.contains(&name), "unexpected <{name}> in {svg}");
        for attribute in node.attributes() {
            assert!(
                !attribute.name().to_ascii_lowercase().starts_with("on"),
                "event handler {} in {svg}",
                attribute.name()
            );
        }
    }
}

/// badge-maker's rule for flat, flat-square and plastic: each side is its text
/// width rounded down, then up to the next odd number, plus 5 px padding each
/// side; a logo adds 14 px plus a 3 px gap to the label side.
fn expected_flat_width(label: &str, message: &str, logo: bool) -> f64 {
    fn odd(width: f64) -> f64 {
        let n = width.floor();
        if n % 2.0 == 0.0 { n + 1.0 } else { n }
    }
    assert!(!label.is_empty(), "rule written for two-sided badges");
    let logo = if logo { 14.0 + 3.0 } else { 0.0 };
    (odd(text_width(label)) + 10.0 + logo) + (odd(text_width(message)) + 10.0)
}

/// badge-maker's rule for for-the-badge: upper-cased text in Verdana 10px
/// (bold for the message), truncated to whole pixels, plus 1.25 px letter
/// spacing per character and 12 px margins; a logo takes 9 + 14 + 6 px
/// instead of the label's left margin.
fn expected_for_the_badge_width(label: &str, message: &str, logo: bool) -> f64 {
    let spaced = |text: &str, font| {
        let text = text.to_uppercase();
        shields::get_text_width(&text, font).trunc() + 1.25 * text.chars().count() as f64
    };
    assert!(!label.is_empty(), "rule written for two-sided badges");
    let left_margin = if logo { 9.0 + 14.0 + 6.0 } else { 12.0 };
    (left_margin + spaced(label, Font::VerdanaNormal10) + 12.0)
        + (24.0 + spaced(message, Font::VerdanaBold10))
}

/// badge-maker's rule for social: the label capitalised, both texts in bold
/// Helvetica 11px rounded to odd, 5 px padding each side of the label, 4 each
/// side of the message, a 6 px gap between; a logo adds 14 + 3 px.
fn expected_social_width(label: &str, message: &str, logo: bool) -> f64 {
    let odd = |text: &str| {
        let n = shields::get_text_width(text, Font::HelveticaBold11).floor();
        if n % 2.0 == 0.0 { n + 1.0 } else { n }
    };
    assert!(!label.is_empty() && !message.is_empty());
    let logo = if logo { 14.0 + 3.0 } else { 0.0 };
    let mut capitalised = label.to_owned();
    capitalised[..1].make_ascii_uppercase();
    (odd(&capitalised) + logo + 10.0 + 1.0) + (6.0 + odd(message) + 8.0)
}

fn expected_width(style: Style, label: &str, message: &str, logo: bool) -> f64 {
    match style {
        Style::ForTheBadge => expected_for_the_badge_width(label, message, logo),
        Style::Social => expected_social_width(label, message, logo),
        _ => expected_flat_width(label, message, logo),
    }
}

/// A message as `style` shows it: only for-the-badge recases messages.
fn styled_message(message: &str, style: Style) -> String {
    match style {
        Style::Social => message.to_owned(),
        _ => styled(message, style),
    }
}

/// A label as `style` shows it.
fn styled(label: &str, style: Style) -> String {
    match style {
        Style::ForTheBadge => label.to_uppercase(),
        Style::Social => {
            let mut chars = label.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_uppercase().chain(chars).collect()
            })
        }
        _ => label.to_owned(),
    }
}

#[test]
fn every_style_colour_and_message_is_well_formed_with_the_expected_size() {
    for style in Style::ALL {
        for color in Color::ALL {
            for message in MESSAGES {
                for logo in [None, Some(Logo::Docker)] {
                    let badge = Badge {
                        style,
                        logo,
                        ..Badge::new(DEFAULT_LABEL, message, color)
                    };
                    let svg = render(&badge);
                    let doc = parse(&svg);
                    assert_only_badge_markup(&doc, &svg);
                    let (width, height) = size(&doc);
                    assert_eq!(height, expected_height(style), "{badge:?}");
                    let expected = expected_width(style, DEFAULT_LABEL, message, logo.is_some());
                    assert_eq!(width, expected, "{badge:?}");
                    assert_text_fits(&doc, &svg);
                    // social draws no colours, as shields.io's does not.
                    assert_eq!(
                        svg.contains(&format!("fill=\"{}\"", color.hex())),
                        style != Style::Social,
                        "{badge:?}: {svg}"
                    );
                    assert_eq!(
                        visible_strings(&doc),
                        [styled(DEFAULT_LABEL, style), styled_message(message, style)]
                    );
                    let images = doc.descendants().filter(|n| n.has_tag_name("image"));
                    assert_eq!(images.count(), usize::from(logo.is_some()), "{badge:?}");
                }
            }
        }
    }
}

/// Figures shields.io produced, each cited. Widths of a side are the width of
/// its background `<rect>`.
#[test]
fn widths_match_shields_io() {
    struct Case {
        style: Style,
        label: &'static str,
        message: &'static str,
        logo: bool,
        width: f64,
        height: f64,
        /// Width of the label's background, where the source gives it.
        label_width: Option<f64>,
    }
    let case = |style, label, message, logo, width, height, label_width| Case {
        style,
        label,
        message,
        logo,
        width,
        height,
        label_width,
    };
    // Style, label, message, logo, width, height, label side's width.
    #[rustfmt::skip]
    let cases = [
        // img.shields.io/badge/build-passing-brightgreen, as shields.io measured it.
        case(Style::Flat,        "build",    "passing", false,  88.0,   20.0, None),
        // badge-maker's own snapshots (badges/shields,
        // badge-maker/lib/__snapshots__/make-badge.spec.js), label "cactus",
        // message "grown", logo a 14 px data URI.
        case(Style::Flat,        "cactus",   "grown",   false,  90.0,   20.0, Some(45.0)),
        case(Style::FlatSquare,  "cactus",   "grown",   false,  90.0,   20.0, Some(45.0)),
        case(Style::Plastic,     "cactus",   "grown",   false,  90.0,   18.0, Some(45.0)),
        case(Style::ForTheBadge, "cactus",   "grown",   false, 146.75,  28.0, Some(72.5)),
        case(Style::Flat,        "cactus",   "grown",   true,  107.0,   20.0, Some(62.0)),
        case(Style::FlatSquare,  "cactus",   "grown",   true,  107.0,   20.0, Some(62.0)),
        case(Style::Plastic,     "cactus",   "grown",   true,  107.0,   18.0, Some(62.0)),
        case(Style::ForTheBadge, "cactus",   "grown",   true,  163.75,  28.0, Some(89.5)),
        case(Style::Flat,        "",         "grown",   false,  45.0,   20.0, None),
        case(Style::Flat,        "",         "grown",   true,   63.0,   20.0, None),
        case(Style::ForTheBadge, "",         "grown",   false,  74.25,  28.0, None),
        case(Style::ForTheBadge, "",         "grown",   true,   94.25,  28.0, None),
        // The shields crate's test_svg (src/lib.rs, v1.8.0), an img.shields.io
        // for-the-badge "building | pass" with a 14 px logo.
        case(Style::ForTheBadge, "building", "pass",    true,  160.0,   28.0, Some(102.0)),
    ];
    for c in cases {
        let badge = Badge {
            style: c.style,
            logo: c.logo.then_some(Logo::Docker),
            ..Badge::new(c.label, c.message, Color::BrightGreen)
        };
        let svg = render(&badge);
        let doc = parse(&svg);
        assert_eq!(size(&doc), (c.width, c.height), "{badge:?}: {svg}");
        if let Some(label_width) = c.label_width {
            // The first filled rect: flat and plastic clip to an unfilled one first.
            let first_rect = doc
                .descendants()
                .find(|n| n.has_tag_name("rect") && n.has_attribute("fill"))
                .expect("a background rect");
            assert_eq!(number(first_rect, "width"), label_width, "{badge:?}: {svg}");
        }
    }
}

#[test]
fn text_width_matches_shields_io_text_lengths() {
    // badge-maker's snapshots draw "cactus" and "grown" with textLength="350",
    // i.e. both measure 34.x or 35.x px, rounded to the odd 35.
    for text in ["cactus", "grown"] {
        let width = text_width(text);
        assert!((34.0..36.0).contains(&width), "{text}: {width}");
    }
    // "build | passing" is 88 px: 5 + build + 5 + 5 + passing + 5, each text
    // rounded up to odd, so the two odd widths add up to 68.
    let odd = |w: f64| {
        let n = w.floor();
        if n % 2.0 == 0.0 { n + 1.0 } else { n }
    };
    assert_eq!(odd(text_width("build")) + odd(text_width("passing")), 68.0);
    // Width is a property of the characters: more text is wider, and a
    // character missing from the tables still counts (as wide as "m").
    assert!(text_width("Docker Hub") > text_width("Docker"));
    assert_eq!(text_width("\u{1F433}"), text_width("m"));
    assert_eq!(text_width(""), 0.0);
}

#[test]
fn markup_in_text_stays_text() {
    let hostile = [
        "<script>alert(1)</script>",
        "a & b",
        "\"double\" 'single'",
        "]]>",
        "<![CDATA[x]]>",
        "<!-- comment -->",
        "&amp; &lt;",
        "\" onload=\"alert(1)",
        "<?xml-stylesheet href=\"x\"?>",
        "<svg onload=alert(1)>",
        "</text></g></svg><svg>",
    ];
    for style in Style::ALL {
        for label in hostile {
            for (label, message) in [(label, "ok"), ("Docker", label)] {
                let badge = Badge {
                    style,
                    ..Badge::new(label, message, Color::Red)
                };
                let svg = render(&badge);
                let doc = parse(&svg);
                assert_only_badge_markup(&doc, &svg);
                let shown = [styled(label, style), styled_message(message, style)];
                assert_eq!(visible_strings(&doc), shown, "{svg}");
                assert_eq!(title(&doc), format!("{}: {}", shown[0], shown[1]));
                assert!(!svg.contains("<script"), "{svg}");
                assert!(!svg.contains("onload=\""), "{svg}");
            }
        }
    }
}

#[test]
fn the_xml_parser_rejects_control_characters() {
    // Without this, the test below could pass on output no browser would draw.
    assert!(Document::parse("<svg>\u{1}</svg>").is_err());
    assert!(Document::parse("<svg a=\"\u{1b}\"/>").is_err());
}

#[test]
fn control_and_bidi_characters_are_removed() {
    let label = "a\u{0}b\u{1}c\u{1b}[31md\u{7f}e\u{85}f\n\tg\u{202e}h\u{2066}i\u{fffe}j\r";
    for style in Style::ALL {
        let svg = render(&Badge {
            style,
            ..Badge::new(label, "o\u{8}k", Color::BrightGreen)
        });
        let doc = parse(&svg);
        let shown = [styled("abc[31mdefghij", style), styled_message("ok", style)];
        assert_eq!(visible_strings(&doc), shown);
        assert_eq!(title(&doc), format!("{}: {}", shown[0], shown[1]));
    }
}

#[test]
fn text_is_capped_at_max_text_chars() {
    let at_cap = "x".repeat(MAX_TEXT_CHARS);
    let over_cap = "x".repeat(MAX_TEXT_CHARS + 1);
    let huge = "x".repeat(10_000);
    let capped = format!("{}…", "x".repeat(MAX_TEXT_CHARS - 1));
    for (input, shown) in [
        (at_cap.as_str(), at_cap.as_str()),
        (&over_cap, &capped),
        (&huge, &capped),
    ] {
        for style in Style::ALL {
            let svg = render(&Badge {
                style,
                ..Badge::new(input, input, Color::Blue)
            });
            let doc = parse(&svg);
            assert_eq!(
                visible_strings(&doc),
                [styled(shown, style), styled_message(shown, style)]
            );
            assert_text_fits(&doc, &svg);
            // Five copies of each text (three for the shadows, the title and
            // the aria-label) plus markup: the answer stays small.
            assert!(svg.len() < 3_000, "{} bytes", svg.len());
        }
    }
}

#[test]
fn capping_counts_characters_and_drops_the_space_before_the_ellipsis() {
    // Cut after the space: "a…" rather than "a …".
    let label = format!("{} {}", "a".repeat(MAX_TEXT_CHARS - 2), "b".repeat(10));
    let svg = render(&Badge::new(&label, "ok", Color::BrightGreen));
    let expected = format!("{}…", "a".repeat(MAX_TEXT_CHARS - 2));
    assert_eq!(visible_strings(&parse(&svg))[0], expected);

    // Removed characters do not count towards the cap.
    let label = "\u{1}".repeat(100) + &"y".repeat(MAX_TEXT_CHARS);
    let svg = render(&Badge::new(&label, "ok", Color::BrightGreen));
    assert_eq!(visible_strings(&parse(&svg))[0], "y".repeat(MAX_TEXT_CHARS));
}

#[test]
fn non_ascii_text_is_measured_wide_enough() {
    // A CJK ideograph or an emoji at 11px is about one em wide; a badge that
    // gave it less than 10 px would squeeze the glyphs into each other.
    for (label, message) in [
        ("构建状态", "通过"),
        ("Docker", "🐳🚀"),
        ("ビルド", "エラー"),
    ] {
        for style in [Style::Flat, Style::FlatSquare, Style::Plastic] {
            let svg = render(&Badge {
                style,
                ..Badge::new(label, message, Color::BrightGreen)
            });
            let doc = parse(&svg);
            assert_eq!(visible_strings(&doc), [label, message]);
            assert_text_fits(&doc, &svg);
            for text in [label, message].into_iter().filter(|t| !t.is_ascii()) {
                let min = 10.0 * text.chars().count() as f64;
                assert!(drawn_width(&doc, text) >= min, "{text}: {svg}");
            }
            assert_eq!(title(&doc), format!("{label}: {message}"));
        }
    }
}

#[test]
fn long_non_ascii_text_is_capped_by_characters() {
    let long = "漢".repeat(200);
    let svg = render(&Badge::new(&long, "ok", Color::BrightGreen));
    let doc = parse(&svg);
    let shown = format!("{}…", "漢".repeat(MAX_TEXT_CHARS - 1));
    assert_eq!(visible_strings(&doc)[0], shown);
    assert!(drawn_width(&doc, &shown) >= 10.0 * MAX_TEXT_CHARS as f64);
    assert_text_fits(&doc, &svg);

    // for-the-badge upper-cases before capping: 40 "ß" are 80 "S".
    let svg = render(&Badge {
        style: Style::ForTheBadge,
        ..Badge::new(&"ß".repeat(40), "ok", Color::BrightGreen)
    });
    let shown = format!("{}…", "S".repeat(MAX_TEXT_CHARS - 1));
    assert_eq!(visible_strings(&parse(&svg))[0], shown);
}

#[test]
fn badges_are_labelled_for_assistive_technology() {
    let cases = [
        (Style::Flat, "Docker", "ok", "Docker: ok"),
        (Style::Plastic, "Docker", "error", "Docker: error"),
        (Style::FlatSquare, "", "unknown", "unknown"),
        (Style::ForTheBadge, "Docker", "building", "DOCKER: BUILDING"),
        (Style::Flat, "a & <b> \"c\"", "ok", "a & <b> \"c\": ok"),
    ];
    for (style, label, message, name) in cases {
        let svg = render(&Badge {
            style,
            logo: Some(Logo::Docker),
            ..Badge::new(label, message, Color::BrightGreen)
        });
        let doc = parse(&svg);
        let root = doc.root_element();
        assert_eq!(root.attribute("role"), Some("img"), "{svg}");
        assert_eq!(root.attribute("aria-label"), Some(name), "{svg}");
        assert_eq!(title(&doc), name);
    }
    // The escaped form, as it is on the wire.
    let svg = render(&Badge::new("a & <b> \"c\"", "ok", Color::Red));
    assert!(
        svg.contains(r#"aria-label="a &amp; &lt;b&gt; &quot;c&quot;: ok""#),
        "{svg}"
    );
    assert!(
        svg.contains("<title>a &amp; &lt;b&gt; &quot;c&quot;: ok</title>"),
        "{svg}"
    );
}

#[test]
fn the_docker_logo_is_embedded_not_linked() {
    let svg = render(&Badge {
        logo: Some(Logo::Docker),
        ..Badge::new("Docker", "ok", Color::BrightGreen)
    });
    let doc = parse(&svg);
    let image = doc
        .descendants()
        .find(|n| n.has_tag_name("image"))
        .expect("an <image>");
    // An external URL would be fetched by every viewer, or blocked by GitHub's proxy.
    let href = image.attribute("href").unwrap_or("");
    assert!(href.starts_with("data:image/svg+xml;base64,"), "{href}");
    assert_eq!(
        (number(image, "width"), number(image, "height")),
        (14.0, 14.0)
    );
}

/// The logo's SVG inside a badge's data URI.
fn embedded_logo(svg: &str) -> String {
    use base64::Engine as _;
    let doc = parse(svg);
    let href = doc
        .descendants()
        .find(|n| n.has_tag_name("image"))
        .and_then(|n| n.attribute("href"))
        .expect("an <image href>");
    let data = href
        .strip_prefix("data:image/svg+xml;base64,")
        .expect("an SVG data URI");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    String::from_utf8(bytes).expect("UTF-8")
}

#[test]
fn the_docker_logo_is_coloured_as_shields_io_colours_it() {
    // shields.io adds `fill` to the Simple Icons glyph's root: the brand colour
    // by default (Docker's 0.49 brightness suits every style), or `logoColor`
    // read as badge-maker reads colours; a value it does not take is ignored.
    let glyph = |fill: &str| DOCKER_SVG.replacen("<svg", &format!("<svg fill=\"{fill}\""), 1);
    let cases = [
        (None, "#2496ED"),
        (Some("white"), "white"),
        (Some("brightgreen"), "#4b0"),
        (Some("success"), "#4b0"),
        (Some("ABC"), "#abc"),
        (Some("#FF0000"), "#ff0000"),
        (Some("not a colour"), "#2496ED"),
        (Some("RED"), "#2496ED"),
    ];
    for style in Style::ALL {
        for (logo_color, fill) in cases {
            let svg = render(&Badge {
                style,
                logo: Some(Logo::Docker),
                logo_color,
                ..Badge::new("Docker", "ok", Color::BrightGreen)
            });
            assert_eq!(embedded_logo(&svg), glyph(fill), "{style:?} {logo_color:?}");
        }
    }
    // Docker's brand colour and its brightness, from Simple Icons' `hex`.
    assert_eq!(DOCKER_HEX, "#2496ED");
    let brightness = (0x24 * 299 + 0x96 * 587 + 0xED * 114) as f64 / 255_000.0;
    assert!((0.4..0.6).contains(&brightness), "{brightness}");
}

#[test]
fn style_colour_and_logo_names() {
    for (name, style) in [
        ("flat", Style::Flat),
        ("flat-square", Style::FlatSquare),
        ("plastic", Style::Plastic),
        ("for-the-badge", Style::ForTheBadge),
        ("FOR-THE-BADGE", Style::ForTheBadge),
        ("social", Style::Social),
        ("Social", Style::Social),
    ] {
        assert_eq!(Style::parse(name), Some(style), "{name}");
        assert_eq!(style.as_str(), name.to_ascii_lowercase());
    }
    for name in ["", "popout", "flat ", "flat_square", "forthebadge"] {
        assert_eq!(Style::parse(name), None, "{name:?}");
    }
    assert_eq!(Style::default(), Style::Flat);

    // badge-maker 6.0's palette (badge-maker/lib/color.js); tests/badge_maker.rs
    // checks each against the package itself.
    let palette = [
        (Color::BrightGreen, "#4b0", "brightgreen"),
        (Color::Green, "#67ac09", "green"),
        (Color::Yellow, "#d8b800", "yellow"),
        (Color::YellowGreen, "#95991a", "yellowgreen"),
        (Color::Orange, "#ea7233", "orange"),
        (Color::Red, "#dd4343", "red"),
        (Color::Blue, "#007ec6", "blue"),
        (Color::Grey, "#555", "grey"),
        (Color::LightGrey, "#939393", "lightgrey"),
    ];
    assert_eq!(palette.map(|(color, ..)| color), Color::ALL);
    for (color, hex, name) in palette {
        assert_eq!((color.hex(), color.name()), (hex, name));
        assert_eq!(Color::from_name(name), Some(color));
    }
    for (alias, color) in [
        ("success", Color::BrightGreen),
        ("important", Color::Orange),
        ("critical", Color::Red),
        ("informational", Color::Blue),
        ("gray", Color::Grey),
        ("lightgray", Color::LightGrey),
        ("inactive", Color::LightGrey),
    ] {
        assert_eq!(Color::from_name(alias), Some(color), "{alias}");
    }
    // Case matters to badge-maker, and `constructor` is no colour to us.
    for name in ["Red", "BRIGHTGREEN", "", "constructor", "toString"] {
        assert_eq!(Color::from_name(name), None, "{name:?}");
        assert!(!is_color(name), "{name:?}");
    }

    assert_eq!(Logo::parse("docker"), Some(Logo::Docker));
    assert_eq!(Logo::parse("Docker"), Some(Logo::Docker));
    assert_eq!(Logo::parse("github"), None);
    assert_eq!(Logo::parse(""), None);
    assert_eq!(Logo::Docker.as_str(), "docker");
}

#[test]
fn render_into_appends() {
    let badge = Badge::new("Docker", "ok", Color::BrightGreen);
    let mut out = String::from("<!-- keep -->");
    render_into(&badge, &mut out);
    assert_eq!(out, format!("<!-- keep -->{}", render(&badge)));
}

/// The pictures in docs/badges/, shown by docs/BADGES.md.
fn examples() -> Vec<(String, Badge<'static>)> {
    let statuses = [
        ("ok", Color::BrightGreen),
        ("error", Color::Red),
        ("building", Color::Blue),
        ("unknown", Color::LightGrey),
    ];
    let mut examples = Vec::new();
    for style in Style::ALL {
        for (message, color) in statuses {
            let badge = Badge {
                style,
                ..Badge::new(DEFAULT_LABEL, message, color)
            };
            examples.push((format!("{}-{message}.svg", style.as_str()), badge));
        }
        let badge = Badge {
            style,
            logo: Some(Logo::Docker),
            ..Badge::new(DEFAULT_LABEL, "ok", Color::BrightGreen)
        };
        examples.push((format!("{}-ok-docker.svg", style.as_str()), badge));
    }
    examples.push((
        "flat-not-found.svg".to_owned(),
        Badge::new(DEFAULT_LABEL, "not found", Color::LightGrey),
    ));
    examples
}

/// Keeps docs/badges/ in step with the renderer. To regenerate after a change:
/// `DBS_WRITE_BADGE_EXAMPLES=1 cargo test --lib badge::`.
#[test]
fn example_badges_in_docs_are_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/badges");
    let write = std::env::var_os("DBS_WRITE_BADGE_EXAMPLES").is_some();
    for (file, badge) in examples() {
        let path = dir.join(&file);
        let svg = render(&badge);
        if write {
            std::fs::write(&path, &svg).expect("write example badge");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == svg,
            "{} is stale or missing; regenerate with \
             `DBS_WRITE_BADGE_EXAMPLES=1 cargo test --lib badge::`",
            path.display()
        );
    }
}

#[test]
fn status_js_draws_with_the_same_palette() {
    // The browser script recolours its own SVG; a badge must not change colour
    // depending on whether the node or status.js drew it.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("status.js");
    let script = std::fs::read_to_string(&path).expect("read status.js");
    for (key, color) in [
        ("green", Color::BrightGreen),
        ("blue", Color::Blue),
        ("red", Color::Red),
        ("grey", Color::LightGrey),
    ] {
        let line = format!("    {key}: \"{}\",", color.hex());
        assert!(
            script.lines().any(|l| l == line),
            "status.js's COLORS.{key} is not {} ({color:?})",
            color.hex()
        );
    }
}
