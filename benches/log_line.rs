//! The request log line: the node's text formatter (`logging::TextLines`) against
//! tracing-subscriber's default format without colours, which writes the same bytes, in the
//! same run, on one core, into `io::sink`. What it weighs: the formatter exists only because
//! the default format cost a logged request more than the rest of a cached badge; with
//! `--access-log errors` (the default) a cached badge writes no line, so the difference
//! counts for error answers and for `--access-log all`, where it is paid on the request's
//! thread once per request. `cargo bench --bench log_line`; without `--bench` (as `cargo
//! test --benches` runs it) it logs one line through each and exits.

#[path = "support/rounds.rs"]
mod rounds;

use std::hint::black_box;
use std::io;
use std::time::Duration;

use dockerhub_build_status::logging::TextLines;
use tracing::Dispatch;

use self::rounds::{median, time};

/// Rounds per formatter; the median is reported, so one noisy round on a shared machine
/// does not move the figure.
const ROUNDS: usize = 9;
/// Time one round aims for.
const ROUND_TIME: Duration = Duration::from_millis(200);

/// The two subscribers, as the node builds its text log without colours, writing nowhere.
fn subscribers() -> (Dispatch, Dispatch) {
    let ours = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(io::sink)
        .event_format(TextLines)
        .finish();
    let default = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(io::sink)
        .finish();
    (Dispatch::new(ours), Dispatch::new(default))
}

/// One request line, as `http::routes` logs it.
fn request_line() {
    tracing::info!(
        target: "dockerhub_build_status::http::routes",
        message = "request",
        method = black_box("GET"),
        route = black_box("status_svg"),
        status = black_box(200u16),
        latency_us = black_box(412u64),
    );
}

/// Nanoseconds per line through `dispatch`, over `lines` lines.
fn per_line(dispatch: &Dispatch, lines: u64) -> f64 {
    tracing::dispatcher::with_default(dispatch, || time(lines, request_line))
}

fn main() {
    let (ours, default) = subscribers();
    let full = std::env::args().any(|arg| arg == "--bench");
    if !full {
        per_line(&ours, 1);
        per_line(&default, 1);
        println!("log_line: smoke run only; `cargo bench --bench log_line` measures");
        return;
    }
    let probe = per_line(&default, 10_000);
    let lines = (ROUND_TIME.as_nanos() as f64 / probe).max(1.0) as u64;
    // Alternate the two so drift on the machine hits both alike.
    let (mut node, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        node.push(per_line(&ours, lines));
        theirs.push(per_line(&default, lines));
    }
    let (node, theirs) = (median(node), median(theirs));
    println!("one request log line into io::sink, median of {ROUNDS} rounds of {lines} lines");
    println!("{:<28} {:>10}", "formatter", "ns/line");
    println!("{:<28} {:>10.0}", "logging::TextLines", node);
    println!("{:<28} {:>10.0}", "tracing-subscriber default", theirs);
    println!(
        "ratio: {:.2}x (TextLines over the default; it saves {:.0} ns per logged request)",
        node / theirs,
        theirs - node
    );
}
