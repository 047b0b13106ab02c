//! Colours as shields.io's badge-maker reads them: which `color=` values it
//! accepts, the fill it writes for each, and whether text on that fill is
//! dark or white.
//!
//! badge-maker accepts a palette name or alias (case-sensitive), three or six
//! hex digits without `#`, or a CSS colour as its css-color-converter parses
//! it: the 148 CSS colour keywords, `#rgb[a]`, `#rrggbb[aa]`, `rgb()`/`rgba()`
//! with integers or percentages, and `hsl()`/`hsla()` with integer angles.
//! Anything else (`hwb()`, `transparent`, upper-case `RED`) is no colour at
//! all, and the badge falls back to its default. A CSS colour is written as
//! given, lower-cased, untrimmed. The text on a fill is `#333` when the fill's
//! brightness, rounded to two decimals, is above 0.69, and white otherwise.
//!
//! The `shields` crate parses colours with `csscolorparser`, which accepts far
//! more, and compares brightness unrounded; `#b1b1b1` (brightness 0.694) then
//! gets dark text where badge-maker writes white. Hence this module: the
//! comparison with badge-maker (`tests/badge_maker.rs`) covers each rule.

use std::borrow::Cow;

use super::Color;

/// The CSS colour keywords, sorted for binary search, with their RGB values.
const CSS_NAMES: [(&str, [u8; 3]); 148] = [
    ("aliceblue", [240, 248, 255]),
    ("antiquewhite", [250, 235, 215]),
    ("aqua", [0, 255, 255]),
    ("aquamarine", [127, 255, 212]),
    ("azure", [240, 255, 255]),
    ("beige", [245, 245, 220]),
    ("bisque", [255, 228, 196]),
    ("black", [0, 0, 0]),
    ("blanchedalmond", [255, 235, 205]),
    ("blue", [0, 0, 255]),
    ("blueviolet", [138, 43, 226]),
    ("brown", [165, 42, 42]),
    ("burlywood", [222, 184, 135]),
    ("cadetblue", [95, 158, 160]),
    ("chartreuse", [127, 255, 0]),
    ("chocolate", [210, 105, 30]),
    ("coral", [255, 127, 80]),
    ("cornflowerblue", [100, 149, 237]),
    ("cornsilk", [255, 248, 220]),
    ("crimson", [220, 20, 60]),
    ("cyan", [0, 255, 255]),
    ("darkblue", [0, 0, 139]),
    ("darkcyan", [0, 139, 139]),
    ("darkgoldenrod", [184, 134, 11]),
    ("darkgray", [169, 169, 169]),
    ("darkgreen", [0, 100, 0]),
    ("darkgrey", [169, 169, 169]),
    ("darkkhaki", [189, 183, 107]),
    ("darkmagenta", [139, 0, 139]),
    ("darkolivegreen", [85, 107, 47]),
    ("darkorange", [255, 140, 0]),
    ("darkorchid", [153, 50, 204]),
    ("darkred", [139, 0, 0]),
    ("darksalmon", [233, 150, 122]),
    ("darkseagreen", [143, 188, 143]),
    ("darkslateblue", [72, 61, 139]),
    ("darkslategray", [47, 79, 79]),
    ("darkslategrey", [47, 79, 79]),
    ("darkturquoise", [0, 206, 209]),
    ("darkviolet", [148, 0, 211]),
    ("deeppink", [255, 20, 147]),
    ("deepskyblue", [0, 191, 255]),
    ("dimgray", [105, 105, 105]),
    ("dimgrey", [105, 105, 105]),
    ("dodgerblue", [30, 144, 255]),
    ("firebrick", [178, 34, 34]),
    ("floralwhite", [255, 250, 240]),
    ("forestgreen", [34, 139, 34]),
    ("fuchsia", [255, 0, 255]),
    ("gainsboro", [220, 220, 220]),
    ("ghostwhite", [248, 248, 255]),
    ("gold", [255, 215, 0]),
    ("goldenrod", [218, 165, 32]),
    ("gray", [128, 128, 128]),
    ("green", [0, 128, 0]),
    ("greenyellow", [173, 255, 47]),
    ("grey", [128, 128, 128]),
    ("honeydew", [240, 255, 240]),
    ("hotpink", [255, 105, 180]),
    ("indianred", [205, 92, 92]),
    ("indigo", [75, 0, 130]),
    ("ivory", [255, 255, 240]),
    ("khaki", [240, 230, 140]),
    ("lavender", [230, 230, 250]),
    ("lavenderblush", [255, 240, 245]),
    ("lawngreen", [124, 252, 0]),
    ("lemonchiffon", [255, 250, 205]),
    ("lightblue", [173, 216, 230]),
    ("lightcoral", [240, 128, 128]),
    ("lightcyan", [224, 255, 255]),
    ("lightgoldenrodyellow", [250, 250, 210]),
    ("lightgray", [211, 211, 211]),
    ("lightgreen", [144, 238, 144]),
    ("lightgrey", [211, 211, 211]),
    ("lightpink", [255, 182, 193]),
    ("lightsalmon", [255, 160, 122]),
    ("lightseagreen", [32, 178, 170]),
    ("lightskyblue", [135, 206, 250]),
    ("lightslategray", [119, 136, 153]),
    ("lightslategrey", [119, 136, 153]),
    ("lightsteelblue", [176, 196, 222]),
    ("lightyellow", [255, 255, 224]),
    ("lime", [0, 255, 0]),
    ("limegreen", [50, 205, 50]),
    ("linen", [250, 240, 230]),
    ("magenta", [255, 0, 255]),
    ("maroon", [128, 0, 0]),
    ("mediumaquamarine", [102, 205, 170]),
    ("mediumblue", [0, 0, 205]),
    ("mediumorchid", [186, 85, 211]),
    ("mediumpurple", [147, 112, 219]),
    ("mediumseagreen", [60, 179, 113]),
    ("mediumslateblue", [123, 104, 238]),
    ("mediumspringgreen", [0, 250, 154]),
    ("mediumturquoise", [72, 209, 204]),
    ("mediumvioletred", [199, 21, 133]),
    ("midnightblue", [25, 25, 112]),
    ("mintcream", [245, 255, 250]),
    ("mistyrose", [255, 228, 225]),
    ("moccasin", [255, 228, 181]),
    ("navajowhite", [255, 222, 173]),
    ("navy", [0, 0, 128]),
    ("oldlace", [253, 245, 230]),
    ("olive", [128, 128, 0]),
    ("olivedrab", [107, 142, 35]),
    ("orange", [255, 165, 0]),
    ("orangered", [255, 69, 0]),
    ("orchid", [218, 112, 214]),
    ("palegoldenrod", [238, 232, 170]),
    ("palegreen", [152, 251, 152]),
    ("paleturquoise", [175, 238, 238]),
    ("palevioletred", [219, 112, 147]),
    ("papayawhip", [255, 239, 213]),
    ("peachpuff", [255, 218, 185]),
    ("peru", [205, 133, 63]),
    ("pink", [255, 192, 203]),
    ("plum", [221, 160, 221]),
    ("powderblue", [176, 224, 230]),
    ("purple", [128, 0, 128]),
    ("rebeccapurple", [102, 51, 153]),
    ("red", [255, 0, 0]),
    ("rosybrown", [188, 143, 143]),
    ("royalblue", [65, 105, 225]),
    ("saddlebrown", [139, 69, 19]),
    ("salmon", [250, 128, 114]),
    ("sandybrown", [244, 164, 96]),
    ("seagreen", [46, 139, 87]),
    ("seashell", [255, 245, 238]),
    ("sienna", [160, 82, 45]),
    ("silver", [192, 192, 192]),
    ("skyblue", [135, 206, 235]),
    ("slateblue", [106, 90, 205]),
    ("slategray", [112, 128, 144]),
    ("slategrey", [112, 128, 144]),
    ("snow", [255, 250, 250]),
    ("springgreen", [0, 255, 127]),
    ("steelblue", [70, 130, 180]),
    ("tan", [210, 180, 140]),
    ("teal", [0, 128, 128]),
    ("thistle", [216, 191, 216]),
    ("tomato", [255, 99, 71]),
    ("turquoise", [64, 224, 208]),
    ("violet", [238, 130, 238]),
    ("wheat", [245, 222, 179]),
    ("white", [255, 255, 255]),
    ("whitesmoke", [245, 245, 245]),
    ("yellow", [255, 255, 0]),
    ("yellowgreen", [154, 205, 50]),
];

/// Whether JavaScript's `trim()` and regular-expression `\s` count `c` as white
/// space (WhiteSpace and LineTerminator; unlike Rust's set, U+FEFF is in and
/// U+0085 is out).
pub(crate) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | ' '
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
            | '\u{feff}'
    )
}

/// JavaScript's `String.prototype.trim`.
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// The fill badge-maker writes for a user's colour, or `None` when it takes the
/// value for no colour at all.
pub(crate) fn to_svg_color(s: &str) -> Option<Cow<'_, str>> {
    if let Some(color) = Color::from_name(s) {
        return Some(Cow::Borrowed(color.hex()));
    }
    if matches!(s.len(), 3 | 6) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(Cow::Owned(format!("#{}", s.to_ascii_lowercase())));
    }
    // Validated trimmed, written untrimmed: badge-maker does exactly that.
    parse_css(js_trim(s))?;
    if s.chars().any(char::is_uppercase) {
        Some(Cow::Owned(s.to_lowercase()))
    } else {
        Some(Cow::Borrowed(s))
    }
}

/// Whether badge-maker draws text on `fill` (a value [`to_svg_color`] gave) in
/// `#333` rather than white.
///
/// Its brightness is `(299 r + 587 g + 114 b) / 255000` rounded to two
/// decimals, dark above 0.69. The channels are integers, so that is the
/// integer sum above 177,225 (0.695 exactly, which JavaScript rounds to 0.69).
/// A fill it cannot parse counts as black.
pub(crate) fn dark_text(fill: &str) -> bool {
    parse_css(fill).is_some_and(|[r, g, b]| 299 * r + 587 * g + 114 * b > 177_225)
}

/// RGB of a CSS colour as css-color-converter reads it, or `None`.
fn parse_css(s: &str) -> Option<[u32; 3]> {
    // Fills are mostly hex; no other form starts with `#`.
    if s.starts_with('#') {
        return parse_hash_hex(s);
    }
    if let Ok(i) = CSS_NAMES.binary_search_by(|(name, _)| name.cmp(&s)) {
        let [r, g, b] = CSS_NAMES[i].1;
        return Some([r.into(), g.into(), b.into()]);
    }
    parse_hash_hex(s)
        .or_else(|| parse_rgb(s))
        .or_else(|| parse_hsl(s))
}

/// `#rgb`, `#rgba`, `#rrggbb` or `#rrggbbaa`.
fn parse_hash_hex(s: &str) -> Option<[u32; 3]> {
    let d = s.strip_prefix('#')?.as_bytes();
    if !d.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let v = |i: usize| hex_value(d[i]);
    match d.len() {
        3 | 4 => Some([v(0) * 17, v(1) * 17, v(2) * 17]),
        6 | 8 => Some([v(0) * 16 + v(1), v(2) * 16 + v(3), v(4) * 16 + v(5)]),
        _ => None,
    }
}

fn hex_value(b: u8) -> u32 {
    match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        b'a'..=b'f' => u32::from(b - b'a') + 10,
        b'A'..=b'F' => u32::from(b - b'A') + 10,
        _ => 0,
    }
}

/// A tiny matcher for the converter's regular expressions.
struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    fn lit(&mut self, prefix: &str) -> bool {
        match self.0.strip_prefix(prefix) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    /// `\s*`; true when it took at least one character (`\s+`).
    fn spaces(&mut self) -> bool {
        let rest = self.0.trim_start_matches(is_js_space);
        let took = rest.len() < self.0.len();
        self.0 = rest;
        took
    }

    /// `\d+`.
    fn digits(&mut self) -> Option<&'a str> {
        let end = self
            .0
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.0.len());
        if end == 0 {
            return None;
        }
        let (digits, rest) = self.0.split_at(end);
        self.0 = rest;
        Some(digits)
    }

    /// `\s*\)$`.
    fn close(&mut self) -> bool {
        self.spaces();
        self.0 == ")"
    }

    /// `(0|1|0?\.\d+|\d+%)` followed by `\s*\)$`, the alpha the converter
    /// accepts (its value never matters here: brightness ignores it).
    fn alpha_then_close(&mut self) -> bool {
        let s = self.0;
        let rest_ok = |rest: &'a str| Cursor(rest).close();
        if let Some(rest) = s.strip_prefix('0').or_else(|| s.strip_prefix('1'))
            && rest_ok(rest)
        {
            return true;
        }
        let fraction = s.strip_prefix('0').unwrap_or(s);
        if let Some(rest) = fraction.strip_prefix('.') {
            let mut c = Cursor(rest);
            if c.digits().is_some() && c.close() {
                return true;
            }
        }
        let mut c = Cursor(s);
        c.digits().is_some() && c.lit("%") && c.close()
    }
}

/// `rgb()`/`rgba()`, comma- or space-separated, integers or percentages.
fn parse_rgb(s: &str) -> Option<[u32; 3]> {
    let body = s.strip_prefix("rgba(").or_else(|| s.strip_prefix("rgb("))?;
    for percent in [false, true] {
        for commas in [true, false] {
            if let Some(rgb) = rgb_body(body, percent, commas) {
                return Some(rgb);
            }
        }
    }
    None
}

fn rgb_body(body: &str, percent: bool, commas: bool) -> Option<[u32; 3]> {
    let mut c = Cursor(body);
    c.spaces();
    let mut channels = [0u32; 3];
    for (i, channel) in channels.iter_mut().enumerate() {
        if i > 0 {
            if commas {
                c.spaces();
                if !c.lit(",") {
                    return None;
                }
                c.spaces();
            } else if !c.spaces() {
                return None;
            }
        }
        let digits = c.digits()?;
        if percent && !c.lit("%") {
            return None;
        }
        let value: f64 = digits.parse().ok()?;
        let value = if percent {
            value * 255.0 / 100.0
        } else {
            value
        };
        *channel = channel_of(value);
    }
    let mut end = Cursor(c.0);
    if end.close() {
        return Some(channels);
    }
    c.spaces();
    if !c.lit(if commas { "," } else { "/" }) {
        return None;
    }
    c.spaces();
    c.alpha_then_close().then_some(channels)
}

/// `hsl()`/`hsla()` with an integer hue (`deg`, `rad`, `grad` or `turn`) and
/// integer percentages.
fn parse_hsl(s: &str) -> Option<[u32; 3]> {
    let body = s.strip_prefix("hsla(").or_else(|| s.strip_prefix("hsl("))?;
    let mut c = Cursor(body);
    c.spaces();
    let hue: f64 = c.digits()?.parse().ok()?;
    // The unit's factor to degrees, as css-unit-converter has it.
    let factor = if c.lit("deg") {
        1.0
    } else if c.lit("rad") {
        180.0 / std::f64::consts::PI
    } else if c.lit("grad") {
        0.9
    } else if c.lit("turn") {
        360.0
    } else {
        1.0
    };
    let mut percent = || -> Option<f64> {
        c.spaces();
        if !c.lit(",") {
            return None;
        }
        c.spaces();
        let value = c.digits()?.parse().ok()?;
        c.lit("%").then_some(value)
    };
    let saturation = percent()?;
    let lightness = percent()?;
    let mut end = Cursor(c.0);
    if !end.close() {
        c.spaces();
        if !c.lit(",") {
            return None;
        }
        c.spaces();
        if !c.alpha_then_close() {
            return None;
        }
    }
    // The converter rounds to five decimals, halves up.
    let hue = js_round(factor * hue * 1e5) / 1e5;
    Some(hsl_to_rgb(hue, saturation, lightness).map(channel_of))
}

/// The converter's HSL to RGB, operation for operation, so the channels round
/// the same way.
fn hsl_to_rgb(h: f64, s: f64, l: f64) -> [f64; 3] {
    let hprim = h / 60.0;
    let sprim = s / 100.0;
    let lprim = l / 100.0;
    let c = (1.0 - (2.0 * lprim - 1.0).abs()) * sprim;
    let x = c * (1.0 - (hprim % 2.0 - 1.0).abs());
    let m = lprim - c / 2.0;
    let [r, g, b] = if hprim < 1.0 {
        [c, x, 0.0]
    } else if hprim < 2.0 {
        [x, c, 0.0]
    } else if hprim < 3.0 {
        [0.0, c, x]
    } else if hprim < 4.0 {
        [0.0, x, c]
    } else if hprim < 5.0 {
        [x, 0.0, c]
    } else {
        [c, 0.0, x]
    };
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

/// `Math.round`: to the nearest integer, halves towards positive infinity.
fn js_round(x: f64) -> f64 {
    let floor = x.floor();
    if x - floor >= 0.5 { floor + 1.0 } else { floor }
}

/// A channel as the converter stores it: `parseInt(value, 10)` clamped to
/// 0..=255. `parseInt` reads the number's string form, so a value JavaScript
/// prints in exponent form (below 1e-6, such as a rounding residue of
/// 2.8e-14) reads as its first digit.
fn channel_of(value: f64) -> u32 {
    let int = if value == 0.0 || !value.is_finite() {
        0.0
    } else if value.abs() < 1e-6 || value.abs() >= 1e21 {
        let repr = format!("{:e}", value.abs());
        let first = repr.bytes().next().map_or(0, |b| b.wrapping_sub(b'0'));
        f64::from(first).copysign(value)
    } else {
        value.trunc()
    };
    // In range after the clamp, so the cast is exact.
    int.clamp(0.0, 255.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_read_as_parse_int_reads_numbers() {
        // Rounding residues JavaScript prints in exponent form read as their
        // first digit; everything else truncates, then clamps.
        assert_eq!(channel_of(2.842_170_943_040_4e-14), 2);
        assert_eq!(channel_of(-2.8e-14), 0);
        assert_eq!(channel_of(127.5), 127);
        assert_eq!(channel_of(300.0), 255);
        assert_eq!(channel_of(1e21), 1);
        assert_eq!(channel_of(0.0), 0);
    }

    #[test]
    fn colours_are_taken_and_written_as_badge_maker_does() {
        let cases = [
            ("brightgreen", Some("#4b0")),
            ("success", Some("#4b0")),
            ("4B0", Some("#4b0")),
            ("#4B0", Some("#4b0")),
            ("ABCDEF", Some("#abcdef")),
            ("abcd", None),
            (" red", Some(" red")),
            ("Red", None),
            ("rgb(1,2,3)", Some("rgb(1,2,3)")),
            ("rgba(1, 2, 3, 1)", Some("rgba(1, 2, 3, 1)")),
            ("rgba(1, 2, 3, 10%)", Some("rgba(1, 2, 3, 10%)")),
            ("rgba(1, 2, 3, 2)", None),
            ("rgb(1 2 3 / .5)", Some("rgb(1 2 3 / .5)")),
            ("rgb(1,2 3)", None),
            ("hsl(10turn, 5%, 5%)", Some("hsl(10turn, 5%, 5%)")),
            ("hsl(1.5, 5%, 5%)", None),
            ("transparent", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(to_svg_color(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn text_turns_dark_above_a_rounded_brightness_of_0_69() {
        // 299 r + 587 g + 114 b = 177,225 is 0.695 exactly, which JavaScript's
        // toFixed(2) rounds to 0.69: still white.
        assert_eq!(299 * 12 + 587 * 249 + 114 * 241, 177_225);
        assert!(!dark_text("#0cf9f1"));
        assert!(!dark_text("#b1b1b1"));
        assert!(dark_text("#b2b2b2"));
        assert!(dark_text("white"));
        assert!(!dark_text("#4b0"));
        assert!(
            !dark_text(" white"),
            "an untrimmed fill parses as nothing: black"
        );
    }
}
