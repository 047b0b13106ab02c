//! Rendering benchmark: badges per second on one core for `badge::render`,
//! against the `shields` crate's renderer for the same badge in the same run
//! (the renderer the node used before it wrote badge-maker 6's markup itself),
//! so the ratio means something on a shared machine. `cargo bench --bench badge_render`; without `--bench`
//! (as `cargo test --benches` runs it) it renders each case once and exits.

#[path = "support/rounds.rs"]
mod rounds;

use std::hint::black_box;
use std::time::Duration;

use dockerhub_build_status::badge::{self, Badge, Color, Logo, Style};
use shields::{BadgeParams, BadgeStyle, RenderOptions};

use self::rounds::{median, time};

/// Rounds per contender; the median is reported, so one noisy round on a
/// shared machine does not move the figure.
const ROUNDS: usize = 7;
/// Time one round aims for.
const ROUND_TIME: Duration = Duration::from_millis(150);

struct Case {
    name: &'static str,
    badge: Badge<'static>,
}

fn cases() -> Vec<Case> {
    let hostile = "<b>Docker & co</b>\u{1}";
    vec![
        Case {
            name: "flat Docker|ok",
            badge: Badge::new(badge::DEFAULT_LABEL, "ok", Color::BrightGreen),
        },
        Case {
            name: "for-the-badge + logo",
            badge: Badge {
                style: Style::ForTheBadge,
                logo: Some(Logo::Docker),
                ..Badge::new(badge::DEFAULT_LABEL, "building", Color::Blue)
            },
        },
        Case {
            name: "social + logo",
            badge: Badge {
                style: Style::Social,
                logo: Some(Logo::Docker),
                ..Badge::new("docker pulls", "1.2M", Color::Blue)
            },
        },
        Case {
            name: "flat, text to clean",
            badge: Badge::new(hostile, "not found", Color::LightGrey),
        },
    ]
}

/// The same badge drawn by the `shields` crate, without our cleaning.
fn bare(badge: &Badge<'_>, out: &mut String) {
    let style = match badge.style {
        Style::Flat => BadgeStyle::Flat,
        Style::FlatSquare => BadgeStyle::FlatSquare,
        Style::Plastic => BadgeStyle::Plastic,
        Style::ForTheBadge => BadgeStyle::ForTheBadge,
        Style::Social => BadgeStyle::Social,
    };
    let params = BadgeParams {
        style,
        message_color: Some(badge.color.hex()),
        logo: badge.logo.map(Logo::svg),
        ..BadgeParams::new(badge.label, badge.message)
    };
    shields::render_badge_svg_into(&params, &RenderOptions::default(), out);
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    if !full {
        for case in cases() {
            let mut out = String::new();
            bare(&case.badge, &mut out);
            assert!(!out.is_empty() && !badge::render(&case.badge).is_empty());
        }
        println!("badge_render: smoke run only; `cargo bench --bench badge_render` measures");
        return;
    }

    println!("badges per second on one core (median of {ROUNDS} rounds)");
    println!(
        "{:<24} {:>14} {:>14} {:>7}",
        "case", "render()", "shields crate", "ratio"
    );
    for case in cases() {
        let badge = case.badge;
        // Calibrate so each round lasts about ROUND_TIME.
        let probe = time(1_000, || _ = black_box(badge::render(black_box(&badge))));
        let iterations = (ROUND_TIME.as_nanos() as f64 / probe).max(1.0) as u64;

        // Alternate the contenders so drift on the machine hits both alike.
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(time(iterations, || {
                _ = black_box(badge::render(black_box(&badge)));
            }));
            theirs.push(time(iterations, || {
                // A fresh String each call, as render() makes one.
                let mut out = String::new();
                bare(black_box(&badge), &mut out);
                _ = black_box(out);
            }));
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "{:<24} {:>12.0}/s {:>12.0}/s {:>6.2}x",
            case.name,
            1e9 / ours,
            1e9 / theirs,
            ours / theirs
        );
    }
    println!("ratio: render() time over bare crate time (1.00x = no overhead)");
}
