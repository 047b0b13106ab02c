//! The latest version among a repository's tags, exactly as shields.io's `latest` picks it
//! (services/version.js, read at badges/shields commit
//! 02ea3c4a2b937124680033039113ef36af14e6ac, with the `semver` package's loose parsing and
//! `compareBuild` that it calls), so `sort=semver` shows what img.shields.io shows:
//!
//! 1. Only tags with a dotted number (`\d+\.\d+` anywhere: `2.10.1`, `3.20-alpine`,
//!    `alpine3.20`) compete while there is one; single numbers (`20201122`) only when no tag
//!    has a dot.
//! 2. Tags with a digit, a dash and a word character (`1.0-rc1`, `3.20-alpine`) are
//!    pre-releases, left out unless nothing else is left.
//! 3. When every remaining tag reads as a loose semantic version (`v1.2.3`, `1.2.3beta`;
//!    three numbers), the highest by semver precedence wins (of equals, the last in Docker
//!    Hub's order); when any does not (`1.2`, `3.20.1.4`), the highest by dotted numbers
//!    and then the text after them (of equals, the first).
//! 4. No tag with a digit at all: the last in a case-insensitive, locale-aware order
//!    (`latest` over `edge`).

use std::cmp::Ordering;

/// The tag shields.io's `latest` returns for these tags (in Docker Hub's order), `None` for
/// none.
pub fn latest<'a>(tags: &[&'a str]) -> Option<&'a str> {
    let dotted: Vec<&str> = tags.iter().copied().filter(|t| has_dotted(t)).collect();
    let candidates = if dotted.is_empty() {
        tags.iter()
            .copied()
            .filter(|t| t.bytes().any(|b| b.is_ascii_digit()))
            .collect()
    } else {
        dotted
    };
    latest_maybe_semver(&candidates, false)
        .or_else(|| latest_maybe_semver(&candidates, true))
        .or_else(|| last_in_collation(tags))
}

/// `/\d+\.\d+/`: a digit, a dot and a digit somewhere.
fn has_dotted(tag: &str) -> bool {
    tag.as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && w[2].is_ascii_digit())
}

/// `/\d+-\w+/`: what shields.io takes for a pre-release.
fn looks_pre(tag: &str) -> bool {
    tag.as_bytes().windows(3).any(|w| {
        w[0].is_ascii_digit() && w[1] == b'-' && (w[2].is_ascii_alphanumeric() || w[2] == b'_')
    })
}

/// shields' `latestMaybeSemVer`: semver order when every tag parses (the sort of two or more
/// throws on the first that does not, and the array is left as it was), dotted order when
/// one does not.
fn latest_maybe_semver<'a>(versions: &[&'a str], pre: bool) -> Option<&'a str> {
    let versions: Vec<&str> = versions
        .iter()
        .copied()
        .filter(|v| pre || !looks_pre(v))
        .collect();
    match versions.as_slice() {
        [] => None,
        // A sort of one element compares nothing, so nothing is parsed either.
        [only] => Some(only),
        _ => {
            let parsed: Option<Vec<Semver>> = versions
                .iter()
                .map(|v| Semver::parse_loose(&v.to_lowercase()))
                .collect();
            match parsed {
                Some(parsed) => {
                    // A stable sort's last element: of equals, the one listed last.
                    let mut best = 0;
                    for i in 1..parsed.len() {
                        if parsed[i].compare_build(&parsed[best]) != Ordering::Less {
                            best = i;
                        }
                    }
                    Some(versions[best])
                }
                None => latest_dotted(&versions),
            }
        }
    }
}

/// shields' `latestDottedVersion`: the first of the highest by [`compare_dotted`].
fn latest_dotted<'a>(versions: &[&'a str]) -> Option<&'a str> {
    let (&first, rest) = versions.split_first()?;
    Some(rest.iter().fold(first, |best, &v| {
        if compare_dotted(best, v) == Ordering::Less {
            v
        } else {
            best
        }
    }))
}

/// shields' `compareDottedVersion`: the first run of digits and dots (`/([0-9.]+)(.*)$/`),
/// split at the dots into numbers (an empty part is 0), compared part by part (more parts
/// win a tie); then the text after the run. Without such a run, the whole texts.
fn compare_dotted(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> Option<(Vec<f64>, &str)> {
        let start = v.find(|c: char| c.is_ascii_digit() || c == '.')?;
        let run = &v[start..];
        let end = run
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(run.len());
        // `+e` of a run of digits: a JavaScript number, which `f64` parses alike.
        let numbers = run[..end]
            .split('.')
            .map(|part| part.parse::<f64>().unwrap_or(0.0))
            .collect();
        Some((numbers, &run[end..]))
    }
    match (split(a), split(b)) {
        (Some((na, da)), Some((nb, db))) => {
            for (i, x) in na.iter().enumerate() {
                // Past the end of `b` JavaScript compares with undefined: neither less nor
                // greater, so the longer list wins only at the end.
                if let Some(y) = nb.get(i) {
                    if x < y {
                        return Ordering::Less;
                    }
                    if x > y {
                        return Ordering::Greater;
                    }
                }
            }
            na.len().cmp(&nb.len()).then_with(|| da.cmp(db))
        }
        _ => a.cmp(b),
    }
}

/// The last of `tags` sorted by `a.toLowerCase().localeCompare(b.toLowerCase())`, stable.
/// Only tags without a digit get here; Docker tags hold letters, `_`, `-` and `.`, which
/// the Unicode collation orders `_` < `-` < `.` < letters (byte order puts `-` and `.`
/// before `_`), case aside.
fn last_in_collation<'a>(tags: &[&'a str]) -> Option<&'a str> {
    fn weight(c: char) -> (u8, char) {
        match c {
            '_' => (0, c),
            '-' => (1, c),
            '.' => (2, c),
            c => (3, c),
        }
    }
    let key = |t: &str| -> Vec<(u8, char)> { t.to_lowercase().chars().map(weight).collect() };
    let (&first, rest) = tags.split_first()?;
    Some(
        rest.iter()
            .fold(first, |best, &t| if key(t) >= key(best) { t } else { best }),
    )
}

/// The largest integer JavaScript holds exactly; semver refuses larger version numbers.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A version as the `semver` package reads it with `loose: true`.
#[derive(Debug, PartialEq)]
struct Semver {
    main: [u64; 3],
    pre: Vec<Identifier>,
    build: Vec<String>,
}

/// A pre-release identifier: a number when it is all digits and below 2^53 − 1, else text.
#[derive(Debug, Clone, PartialEq)]
enum Identifier {
    Number(u64),
    Text(String),
}

impl Semver {
    /// semver's `LOOSE` pattern: `[v=\s]*` then three dot-separated numbers, then an
    /// optional pre-release (`-` optional) and build (`+`), each dot-separated runs of
    /// `[0-9A-Za-z-]`. The pattern backtracks into the third number's digits when what
    /// follows does not fit, so `1.2.34.5` reads as `1.2.3-4.5`; the first reading that fits
    /// is taken, as the regular expression takes it.
    fn parse_loose(text: &str) -> Option<Semver> {
        let text = text.trim();
        if text.len() > 256 {
            return None;
        }
        let text = text.trim_start_matches(|c: char| c == 'v' || c == '=' || c.is_whitespace());
        let (major, rest) = digits(text)?;
        let rest = rest.strip_prefix('.')?;
        let (minor, rest) = digits(rest)?;
        let rest = rest.strip_prefix('.')?;
        let patch_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (patch, pre, build) = (1..=patch_len).rev().find_map(|len| {
            let (pre, build) = tail(&rest[len..])?;
            Some((&rest[..len], pre, build))
        })?;
        let number = |digits: &str| {
            digits
                .parse::<u64>()
                .ok()
                .filter(|&n| n <= MAX_SAFE_INTEGER)
        };
        let main = [number(major)?, number(minor)?, number(patch)?];
        let pre = pre
            .map(|pre| {
                pre.split('.')
                    .map(|id| match id.parse::<u64>() {
                        Ok(n) if id.bytes().all(|b| b.is_ascii_digit()) && n < MAX_SAFE_INTEGER => {
                            Identifier::Number(n)
                        }
                        _ => Identifier::Text(id.to_owned()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let build = build
            .map(|build| build.split('.').map(str::to_owned).collect())
            .unwrap_or_default();
        Some(Semver { main, pre, build })
    }

    /// `semver.compareBuild`: precedence, then build metadata.
    fn compare_build(&self, other: &Semver) -> Ordering {
        self.main
            .cmp(&other.main)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (false, true) => Ordering::Less,
                (true, false) => Ordering::Greater,
                (false, false) => compare_lists(&self.pre, &other.pre, Identifier::clone),
            })
            .then_with(|| {
                compare_lists(&self.build, &other.build, |s: &String| {
                    Identifier::Text(s.clone())
                })
            })
    }
}

impl Identifier {
    /// Whether `/^[0-9]+$/` holds, and the number JavaScript's `+id` makes of it.
    fn numeric(&self) -> Option<f64> {
        match self {
            Identifier::Number(n) => Some(*n as f64),
            Identifier::Text(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                t.parse().ok()
            }
            Identifier::Text(_) => None,
        }
    }
}

/// semver's loop over pre-release (or build) identifiers: equal ones are passed over, the
/// first that differ decide ([`compare_identifiers`]), a list that ends first is lower.
fn compare_lists<T>(a: &[T], b: &[T], id: impl Fn(&T) -> Identifier) -> Ordering {
    for i in 0.. {
        match (a.get(i).map(&id), b.get(i).map(&id)) {
            (None, None) => return Ordering::Equal,
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            // `a === b`: a number and a text are never identical.
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => return compare_identifiers(&x, &y),
        }
    }
    Ordering::Equal
}

/// semver's `compareIdentifiers`: numbers by value, below texts; texts by code units.
fn compare_identifiers(a: &Identifier, b: &Identifier) -> Ordering {
    match (a.numeric(), b.numeric()) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => match (a, b) {
            (Identifier::Text(x), Identifier::Text(y)) => x.cmp(y),
            // Unreachable: a number is numeric.
            _ => Ordering::Equal,
        },
    }
}

/// One run of digits at the start, and what follows.
fn digits(text: &str) -> Option<(&str, &str)> {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    (len > 0).then(|| text.split_at(len))
}

/// What may follow the three numbers: `(-?ids)?(\+ids)?`, each `ids` dot-separated
/// non-empty runs of `[0-9A-Za-z-]`. The pre-release's dash is taken when what follows it
/// fits, else the dash belongs to the first identifier.
fn tail(rest: &str) -> Option<(Option<&str>, Option<&str>)> {
    let ids = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let (pre, build) = match rest.split_once('+') {
        Some((pre, build)) => (pre, Some(build)),
        None => (rest, None),
    };
    if build.is_some_and(|b| !ids(b)) {
        return None;
    }
    let pre = if pre.is_empty() {
        None
    } else if let Some(after) = pre.strip_prefix('-').filter(|after| ids(after)) {
        Some(after)
    } else if ids(pre) {
        Some(pre)
    } else {
        return None;
    };
    Some((pre, build))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_like_tag_never_beats_a_dotted_version() {
        assert_eq!(latest(&["20201122", "2.10.1", "latest"]), Some("2.10.1"));
        // Single numbers count only when no tag has a dot.
        assert_eq!(
            latest(&["20201122", "20191001", "latest"]),
            Some("20201122")
        );
    }

    #[test]
    fn pre_releases_wait_until_nothing_else_is_left() {
        assert_eq!(latest(&["1.0", "1.1-rc1", "0.9"]), Some("1.0"));
        assert_eq!(latest(&["1.1-rc1", "1.1-rc2"]), Some("1.1-rc2"));
        // A flavour with a dash is a pre-release to shields.io as well.
        assert_eq!(latest(&["3.20-alpine", "3.19"]), Some("3.19"));
    }

    #[test]
    fn semver_order_when_every_tag_parses_and_dotted_order_when_one_does_not() {
        assert_eq!(latest(&["1.9.0", "1.10.0", "v1.2.3"]), Some("1.10.0"));
        assert_eq!(latest(&["1.2.3beta", "1.2.3"]), Some("1.2.3"));
        // `1.2` is no semantic version, so the dotted order decides for all.
        assert_eq!(latest(&["1.9", "1.10.0", "1.10"]), Some("1.10.0"));
        // Equal in semver order: the last listed; in dotted order: the first listed.
        assert_eq!(latest(&["v1.2.3", "1.2.3"]), Some("1.2.3"));
        assert_eq!(latest(&["v1.2", "1.2", "x"]), Some("v1.2"));
        // Text after the numbers breaks a tie in dotted order, by code unit.
        assert_eq!(latest(&["2.0-x", "2.0", "2.0b"]), Some("2.0b"));
    }

    #[test]
    fn loose_parsing_backtracks_into_the_third_number() {
        assert_eq!(
            Semver::parse_loose("1.2.34.5").map(|v| (v.main, v.pre)),
            Some((
                [1, 2, 3],
                vec![Identifier::Number(4), Identifier::Number(5)]
            ))
        );
        assert_eq!(Semver::parse_loose("1.2.3.4"), None);
        assert_eq!(
            Semver::parse_loose("v1.2.3-").map(|v| v.pre),
            Some(vec![Identifier::Text("-".into())])
        );
        assert_eq!(Semver::parse_loose("1.2"), None);
        assert_eq!(Semver::parse_loose("1.2.9007199254740992"), None);
    }

    fn names(page: &[u8]) -> Vec<String> {
        let page: serde_json::Value = serde_json::from_slice(page).unwrap();
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The recorded tag lists, and what shields.io's `latest` gives for them (its code run on
    /// the `semver` package, 7.8.6, with these names in this order).
    #[test]
    fn recorded_tag_lists_give_what_shields_gives() {
        for (page, expected) in [
            (
                &include_bytes!("../../../tests/fixtures/hub/tags-crazymax-diun-2023.json")[..],
                "4.24.0",
            ),
            (
                &include_bytes!("../../../tests/fixtures/hub/tags-crazymax-diun-page1-2023.json")[..],
                "4.24.0",
            ),
            // No tag has a dot: the dated ones compete, `-slim` flavours are pre-releases,
            // and of two equal dates the first listed stays.
            (
                &include_bytes!("../../../tests/fixtures/hub/tags-library-debian-page1-2019.json")
                    [..],
                "unstable-20191118",
            ),
        ] {
            let names = names(page);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            assert_eq!(latest(&names), Some(expected));
        }
    }

    #[test]
    fn without_digits_the_last_in_collation_order() {
        assert_eq!(latest(&["edge", "latest", "alpine"]), Some("latest"));
        assert_eq!(latest(&["a_b", "a-b", "a.b"]), Some("a.b"));
        assert_eq!(latest(&["Latest", "latest"]), Some("latest"));
        assert_eq!(latest(&[]), None);
    }
}
