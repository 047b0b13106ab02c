//! The node's badges against badge-maker itself: the same label, message,
//! colours, style and logo rendered by badge-maker 6.0.0 (the npm package
//! shields.io draws with, which `.ci/run` installs into
//! `target/badge-maker`) must give the same SVG, byte for byte.
//!
//! One `node` process renders every case with `tests/badge_maker/render.mjs`;
//! each case is then its own test here. Where the node differs on purpose
//! (text it cleans or caps, colour names badge-maker mistakes for its own
//! internals), the case says so and badge-maker is given what the node draws.
//!
//! Without node or the package, every case is reported ignored, with the
//! reason; under `CI=true` that is a failure instead.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dockerhub_build_status::badge::{self, Badge, Color, Logo, MAX_TEXT_CHARS, Style};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};

/// The badge-maker release the node follows; `.ci/run` installs exactly this.
const BADGE_MAKER_VERSION: &str = "6.0.0";

/// One comparison.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    label: String,
    message: String,
    color: Color,
    style: Style,
    logo: bool,
    color_override: Option<String>,
    label_color: Option<String>,
    logo_color: Option<String>,
    /// What badge-maker is given instead of the node's input, and why, where
    /// the node differs on purpose.
    reference: Option<Reference>,
}

#[derive(Debug, Clone)]
struct Reference {
    label: Option<String>,
    message: Option<String>,
    color: Option<String>,
    why: &'static str,
}

impl Case {
    fn new(name: &str, label: &str, message: &str, color: Color, style: Style) -> Case {
        Case {
            name: format!("{}/{name}", style.as_str()),
            label: label.to_owned(),
            message: message.to_owned(),
            color,
            style,
            logo: false,
            color_override: None,
            label_color: None,
            logo_color: None,
            reference: None,
        }
    }

    fn badge(&self) -> Badge<'_> {
        Badge {
            label: &self.label,
            message: &self.message,
            color: self.color,
            style: self.style,
            logo: self.logo.then_some(Logo::Docker),
            color_override: self.color_override.as_deref(),
            label_color: self.label_color.as_deref(),
            logo_color: self.logo_color.as_deref(),
        }
    }

    /// badge-maker's `makeBadge()` argument for the same badge. A colour we
    /// name goes by its name, so badge-maker's own palette decides the fill.
    fn reference_format(&self) -> Value {
        let r = self.reference.as_ref();
        let label = r
            .and_then(|r| r.label.clone())
            .unwrap_or(self.label.clone());
        let message = r
            .and_then(|r| r.message.clone())
            .unwrap_or(self.message.clone());
        let color = r
            .and_then(|r| r.color.clone())
            .or(self.color_override.clone())
            .unwrap_or(self.color.name().to_owned());
        let mut format = json!({
            "label": label,
            "message": message,
            "color": color,
            "style": self.style.as_str(),
        });
        if let Some(label_color) = &self.label_color {
            format["labelColor"] = json!(label_color);
        }
        if self.logo {
            // Colouring a named logo is shields.io's server's work, not
            // badge-maker's (a unit test holds ours to it); badge-maker lays
            // out whatever data URI it is given.
            format["logoBase64"] = json!(Logo::Docker.data_uri(self.logo_color.as_deref()));
        }
        format
    }
}

/// Texts in every style, with and without the logo.
fn texts() -> Vec<(&'static str, String, String, Option<Reference>)> {
    let long_ascii = "organization/a-rather-long-repository-name:and-a-long-tag-1.2.3-alpine3.20";
    assert!(long_ascii.chars().count() > MAX_TEXT_CHARS);
    let capped: String = long_ascii
        .chars()
        .take(MAX_TEXT_CHARS - 1)
        .collect::<String>()
        + "…";
    let long_cjk = "构建".repeat(40);
    let capped_cjk: String = long_cjk
        .chars()
        .take(MAX_TEXT_CHARS - 1)
        .collect::<String>()
        + "…";
    let exactly_max = "x".repeat(MAX_TEXT_CHARS);
    let owned = |s: &str| s.to_owned();
    vec![
        ("plain", owned("Docker"), owned("ok"), None),
        ("two-words", owned("build status"), owned("not found"), None),
        ("empty-label", owned(""), owned("ok"), None),
        ("empty-message", owned("Docker"), owned(""), None),
        ("both-empty", owned(""), owned(""), None),
        ("white-space-label", owned("   "), owned("ok"), None),
        (
            "padded",
            owned("  padded label\u{a0}"),
            owned("\u{feff}ok "),
            None,
        ),
        ("inner-spaces", owned("a  b"), owned("c   d"), None),
        ("accents", owned("Café crème"), owned("déjà vu"), None),
        ("german", owned("straße"), owned("größe ß"), None),
        ("cyrillic", owned("сборка"), owned("успешно"), None),
        ("cjk", owned("构建"), owned("成功"), None),
        ("arabic", owned("بناء"), owned("ناجح"), None),
        ("emoji", owned("🐳 docker"), owned("🚀 ok ✅"), None),
        ("emoji-first", owned("🐳"), owned("𝒳 math"), None),
        ("lower-first", owned("docker pulls"), owned("1.2M"), None),
        ("digits", owned("v1.2.3"), owned("12,345"), None),
        (
            "markup",
            owned("<script>alert(\"x\")</script>"),
            owned("a & b 'c' ]]> <!-- d -->"),
            None,
        ),
        ("entities", owned("&amp; &lt;"), owned("&#x41;"), None),
        ("exactly-max", exactly_max.clone(), exactly_max, None),
        (
            "long-capped",
            owned(long_ascii),
            owned(long_ascii),
            Some(Reference {
                label: Some(capped.clone()),
                message: Some(capped),
                color: None,
                why: "text is capped at MAX_TEXT_CHARS characters, the last one `…`",
            }),
        ),
        (
            "long-cjk-capped",
            long_cjk.clone(),
            long_cjk,
            Some(Reference {
                label: Some(capped_cjk.clone()),
                message: Some(capped_cjk),
                color: None,
                why: "the cap counts characters, not bytes",
            }),
        ),
        (
            "control-characters",
            owned("a\u{1}b\u{7f}c\u{202e}d"),
            owned("o\tk\u{85}\r\n"),
            Some(Reference {
                label: Some(owned("abcd")),
                message: Some(owned("ok")),
                color: None,
                why: "control characters and bidi overrides are removed: XML cannot carry most of them",
            }),
        ),
    ]
}

/// Colours as a request's `color=` or `labelColor=` could give them.
const COLORS: [&str; 34] = [
    "brightgreen",
    "green",
    "yellow",
    "yellowgreen",
    "orange",
    "red",
    "blue",
    "grey",
    "lightgrey",
    "success",
    "critical",
    "inactive",
    "gray",
    "4b0",
    "ABCDEF",
    "#ABCDEF",
    "#abcd",
    "#11223344",
    "b1b1b1",
    "b2b2b2",
    "#0cf9f1",
    "white",
    "rebeccapurple",
    "rgb(255,255,255)",
    "rgba(12, 249, 241, 0.5)",
    "rgb(100% 100% 100%)",
    "rgb(200 200 200 / 50%)",
    "hsl(120, 100%, 50%)",
    "hsl(2rad,50%,90%)",
    "hsla(400grad, 100%, 95%, .3)",
    "RED",
    "hwb(0 0% 0%)",
    "transparent",
    " white ",
];

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for style in Style::ALL {
        for (name, label, message, reference) in texts() {
            for logo in [false, true] {
                let mut case = Case::new(name, &label, &message, Color::BrightGreen, style);
                case.logo = logo;
                if logo {
                    case.name.push_str("/logo");
                }
                case.reference = reference.clone();
                cases.push(case);
            }
        }
        for color in Color::ALL {
            cases.push(Case::new(
                &format!("named-{}", color.name()),
                "Docker",
                "ok",
                color,
                style,
            ));
        }
        for color in COLORS {
            let mut case = Case::new(
                &format!("color={color:?}"),
                "Docker",
                "ok",
                Color::Red,
                style,
            );
            case.color_override = Some(color.to_owned());
            cases.push(case);

            let mut case = Case::new(
                &format!("labelColor={color:?}"),
                "Docker",
                "ok",
                Color::Blue,
                style,
            );
            case.label_color = Some(color.to_owned());
            cases.push(case);

            // A label colour gives an empty label its own side.
            let mut case = Case::new(
                &format!("empty-label/labelColor={color:?}"),
                "",
                "ok",
                Color::Blue,
                style,
            );
            case.label_color = Some(color.to_owned());
            cases.push(case);

            let mut case = Case::new(
                &format!("logo/logoColor={color:?}"),
                "Docker",
                "ok",
                Color::Blue,
                style,
            );
            case.logo = true;
            case.logo_color = Some(color.to_owned());
            cases.push(case);
        }
        for (label, message) in [("", "ok"), ("", ""), ("Docker", "")] {
            let mut case = Case::new(
                &format!("logo-only/{label:?}/{message:?}/labelColor"),
                label,
                message,
                Color::Blue,
                style,
            );
            case.logo = true;
            case.label_color = Some("white".to_owned());
            cases.push(case);
        }
        // badge-maker looks colour names up with JavaScript's `in`, which also
        // finds an object's built-in properties: it writes `fill="undefined"`.
        let mut case = Case::new("color=\"constructor\"", "Docker", "ok", Color::Red, style);
        case.color_override = Some("constructor".to_owned());
        case.reference = Some(Reference {
            label: None,
            message: None,
            color: Some("not-a-colour".to_owned()),
            why: "a built-in property name is no colour: the node draws badge-maker's default",
        });
        cases.push(case);
    }
    cases
}

/// Where `.ci/run` installs the package; `DBS_BADGE_MAKER` may point elsewhere.
fn badge_maker_dir() -> PathBuf {
    match std::env::var_os("DBS_BADGE_MAKER") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/badge-maker/node_modules/badge-maker"),
    }
}

/// Why the reference cannot run here, if it cannot.
fn missing_reference(dir: &Path) -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => return Some(format!("`node --version` exited with {}", out.status)),
        Err(err) => return Some(format!("`node` could not be started: {err}")),
    }
    if !dir.join("package.json").is_file() {
        return Some(format!(
            "badge-maker is not installed at {} (`npm install --prefix target/badge-maker badge-maker@{BADGE_MAKER_VERSION}`)",
            dir.display()
        ));
    }
    None
}

/// badge-maker's SVG for every case, in order.
fn reference_svgs(dir: &Path, cases: &[Case]) -> Result<Vec<Value>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/badge_maker/render.mjs");
    let input: Vec<Value> = cases.iter().map(Case::reference_format).collect();
    let mut child = Command::new("node")
        .arg(&script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("start node {}: {err}", script.display()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin for node")?;
    let body = serde_json::to_vec(&input).map_err(|err| err.to_string())?;
    // A thread writes while this one reads, so neither pipe can fill and stall.
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().map_err(|err| err.to_string())?;
    writer
        .join()
        .map_err(|_| "writer thread panicked")?
        .map_err(|err| format!("write to node: {err}"))?;
    if !out.status.success() {
        return Err(format!(
            "node {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let answer: Value =
        serde_json::from_slice(&out.stdout).map_err(|err| format!("node's answer: {err}"))?;
    let version = answer["version"].as_str().unwrap_or("?");
    if version != BADGE_MAKER_VERSION {
        return Err(format!(
            "badge-maker {version} is installed, the comparison is pinned to {BADGE_MAKER_VERSION}"
        ));
    }
    let svgs = answer["svgs"].as_array().cloned().unwrap_or_default();
    if svgs.len() != cases.len() {
        return Err(format!("{} answers for {} cases", svgs.len(), cases.len()));
    }
    Ok(svgs)
}

fn compare(case: &Case, reference: &Value) -> Result<(), Failed> {
    let ours = badge::render(&case.badge());
    let theirs = reference
        .as_str()
        .ok_or_else(|| format!("badge-maker refused the case: {reference}"))?;
    if ours == theirs {
        return Ok(());
    }
    let at = ours
        .bytes()
        .zip(theirs.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(theirs.len()));
    let from = ours[..at]
        .char_indices()
        .rev()
        .nth(60)
        .map_or(0, |(i, _)| i);
    let window = |s: &str| {
        let end = s[at..]
            .char_indices()
            .nth(60)
            .map_or(s.len(), |(i, _)| at + i);
        s[from..end].to_owned()
    };
    let why = case
        .reference
        .as_ref()
        .map(|r| format!(" (badge-maker given other input on purpose: {})", r.why))
        .unwrap_or_default();
    Err(format!(
        "{case:?}{why}\nfirst difference at byte {at}:\n  node:        …{}…\n  badge-maker: …{}…",
        window(&ours),
        window(theirs),
    )
    .into())
}

fn main() {
    let args = Arguments::from_args();
    let cases = cases();
    let dir = badge_maker_dir();
    let trials: Vec<Trial> = match missing_reference(&dir) {
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            vec![Trial::test(
                "badge_maker_reference_is_installed",
                move || {
                    Err(format!("{reason}; .ci/run installs it, and CI=true requires it").into())
                },
            )]
        }
        Some(reason) => {
            eprintln!("badge_maker: every case ignored: {reason}");
            cases
                .iter()
                .map(|case| Trial::test(case.name.clone(), || Ok(())).with_ignored_flag(true))
                .collect()
        }
        None => match reference_svgs(&dir, &cases) {
            Err(err) => vec![Trial::test("badge_maker_reference_runs", move || {
                Err(err.into())
            })],
            Ok(svgs) => cases
                .into_iter()
                .zip(svgs)
                .map(|(case, svg)| Trial::test(case.name.clone(), move || compare(&case, &svg)))
                .collect(),
        },
    };
    libtest_mimic::run(&args, trials).exit();
}
