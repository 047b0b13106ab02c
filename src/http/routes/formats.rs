//! How the Docker badges write numbers, sizes, versions and dates, and colour them, after
//! shields.io's text, version and date formatters (the behaviour, not their code). Which
//! version is the latest is [`super::version`]'s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::badge::Color;

const METRIC_PREFIXES: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];

/// A count with an SI prefix, as shields.io's `metric`: `999`, `1k`, `1.5k`, `10k`,
/// `765M`; one decimal below 10 unless it is 0; `1000k` becomes `1M`.
pub fn metric(n: u64) -> String {
    let n = n as f64;
    for (i, prefix) in METRIC_PREFIXES.iter().enumerate().rev() {
        let limit = 1000f64.powi(i as i32 + 1);
        if n >= limit {
            let scaled = n / limit;
            if scaled < 10.0 {
                let one = format!("{:.1}", round_half_up(scaled, 1));
                if !one.ends_with('0') {
                    return format!("{one}{prefix}");
                }
            }
            let rounded = scaled.round();
            return if rounded < 1000.0 {
                format!("{rounded}{prefix}")
            } else {
                format!("1{}", METRIC_PREFIXES.get(i + 1).unwrap_or(prefix))
            };
        }
    }
    format!("{n}")
}

/// `toFixed`'s rounding of positive values, half away from zero at `digits` decimals.
fn round_half_up(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale + 1e-9).round() / scale
}

/// A size in IEC units as shields.io writes image sizes (pretty-bytes, binary): three
/// significant digits, `0 B`, `512 B`, `1.18 MiB`, `74.7 MiB`, `1 GiB`.
pub fn iec_bytes(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let bytes = bytes as f64;
    let exponent = ((bytes.ln() / 1024f64.ln()).floor() as usize).min(UNITS.len() - 1);
    let value = bytes / 1024f64.powi(exponent as i32);
    format!("{} {}", three_significant(value), UNITS[exponent])
}

/// `Number(x.toPrecision(3))` written as JavaScript writes a number (no trailing zeros).
fn three_significant(x: f64) -> String {
    let digits = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{:.*}", digits, x);
    // toPrecision can carry into another digit (999.5 → "1.00e+3"): parse back.
    let value: f64 = text.parse().unwrap_or(x);
    let mut text = format!("{value}");
    if text.contains('.') {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text
}

/// A version as shields.io writes it: `v` added unless it starts with `v` or a non-digit,
/// holds a date, or is a commit hash.
pub fn addv(version: &str) -> String {
    let first_is_digit = version.bytes().next().is_some_and(|b| b.is_ascii_digit());
    let is_hash = (7..=40).contains(&version.len())
        && version
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if version.starts_with('v') || !first_is_digit || has_date(version) || is_hash {
        version.to_owned()
    } else {
        format!("v{version}")
    }
}

/// Whether `s` contains `dddd-dd-dd`.
fn has_date(s: &str) -> bool {
    let pattern = b"dddd-dd-dd";
    s.as_bytes().windows(pattern.len()).any(|w| {
        w.iter().zip(pattern).all(|(&c, &p)| match p {
            b'd' => c.is_ascii_digit(),
            _ => c == p,
        })
    })
}

/// shields.io's version colour: orange for `0.x` and pre-releases, blue otherwise.
pub fn version_color(version: &str) -> Color {
    let mut chars = version.chars();
    let mut first = chars.next();
    if first == Some('v') {
        first = chars.next();
    }
    let lower = version.to_ascii_lowercase();
    let pre = ["alpha", "beta", "snapshot", "dev", "pre", "rc"]
        .iter()
        .any(|w| lower.contains(w));
    if first == Some('0') || pre {
        Color::Orange
    } else {
        Color::Blue
    }
}

/// How many dots a tag has (shields.io prefers the most exact name of one digest).
pub fn dots(tag: &str) -> usize {
    tag.bytes().filter(|&b| b == b'.').count()
}

/// A date badge's message and colour, as shields.io's `renderDateBadge`: the month and
/// year in lower case (`november 2026`), coloured by age (under 7 days bright green, 30
/// green, 180 yellow-green, 365 yellow, 730 orange, older red). `None` when `text` is no
/// RFC 3339 date.
pub fn date_badge(text: &str, now: SystemTime) -> Option<(String, Color)> {
    let at = crate::hub::parse_time(text)?;
    let secs = at.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let (year, month) = civil(secs / 86_400);
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let days = now.duration_since(at).unwrap_or(Duration::ZERO).as_secs() / 86_400;
    let color = match days {
        0..7 => Color::BrightGreen,
        7..30 => Color::Green,
        30..180 => Color::YellowGreen,
        180..365 => Color::Yellow,
        365..730 => Color::Orange,
        _ => Color::Red,
    };
    Some((format!("{} {year}", MONTHS[month - 1]), color))
}

/// Year and month (1–12) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: u64) -> (i64, usize) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_follows_shields() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1k"),
            (1049, "1k"),
            (1050, "1.1k"),
            (1500, "1.5k"),
            (9949, "9.9k"),
            (9950, "10k"),
            (12_345, "12k"),
            (999_499, "999k"),
            (999_500, "1M"),
            (765_400_000, "765M"),
            (1_234_567_890, "1.2G"),
        ] {
            assert_eq!(metric(n), text, "{n}");
        }
    }

    #[test]
    fn sizes_are_iec_with_three_digits() {
        for (n, text) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1 KiB"),
            (1_234_567, "1.18 MiB"),
            (74_661_264, "71.2 MiB"),
            (219_939_484, "210 MiB"),
            (1 << 30, "1 GiB"),
        ] {
            assert_eq!(iec_bytes(n), text, "{n}");
        }
    }

    #[test]
    fn versions_get_a_v_and_a_colour() {
        assert_eq!(addv("1.2.3"), "v1.2.3");
        assert_eq!(addv("v1.2.3"), "v1.2.3");
        assert_eq!(addv("latest"), "latest");
        assert_eq!(addv("2021-10-31"), "2021-10-31");
        assert_eq!(addv("abcdef1"), "abcdef1");
        assert_eq!(version_color("1.2.3"), Color::Blue);
        assert_eq!(version_color("v0.9"), Color::Orange);
        assert_eq!(version_color("2.0-rc1"), Color::Orange);
    }

    #[test]
    fn dates_show_month_and_year_coloured_by_age() {
        let now = humantime::parse_rfc3339("2026-12-01T10:00:00Z").unwrap();
        assert_eq!(
            date_badge("2026-11-28T08:00:00.000000Z", now),
            Some(("november 2026".into(), Color::BrightGreen))
        );
        assert_eq!(
            date_badge("2024-02-29T00:00:00Z", now),
            Some(("february 2024".into(), Color::Red))
        );
        assert_eq!(date_badge("yesterday", now), None);
    }
}
