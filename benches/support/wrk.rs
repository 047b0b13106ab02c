//! Running Debian's `wrk` against a URL and reading its figures: requests per second, the
//! 50th and 99th latency percentiles, and anything that says the run was not clean (non-2xx
//! answers, socket errors), since a fast server that answers errors proves nothing.

use std::process::Command;
use std::time::Duration;

/// The figures of one wrk run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub requests_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub requests: u64,
    /// Answers outside 2xx and 3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors added up.
    pub socket_errors: u64,
}

/// Whether `wrk` is on PATH.
pub fn available() -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join("wrk").is_file()))
        .unwrap_or(false)
}

/// Runs `wrk -t<threads> -c<connections> -d<seconds>s --latency <url>` and parses its report.
pub fn run(url: &str, threads: u32, connections: u32, seconds: u64) -> Result<Figures, String> {
    let output = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("cannot read wrk's report:\n{text}"))
}

/// Reads wrk's `--latency` report.
pub fn parse(report: &str) -> Option<Figures> {
    let mut figures = Figures {
        requests_per_second: f64::NAN,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
        requests: 0,
        non_2xx: 0,
        socket_errors: 0,
    };
    let (mut p50, mut p99, mut rps) = (None, None, None);
    for line in report.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(value)) => p50 = latency(value),
            (Some("99%"), Some(value)) => p99 = latency(value),
            (Some("Requests/sec:"), Some(value)) => rps = value.parse().ok(),
            (Some(count), Some("requests")) => figures.requests = count.parse().ok()?,
            _ => {}
        }
        if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            figures.non_2xx = count.trim().parse().ok()?;
        }
        if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            figures.socket_errors = errors
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        }
    }
    figures.p50 = p50?;
    figures.p99 = p99?;
    figures.requests_per_second = rps?;
    Some(figures)
}

/// Reads wrk's latency notation: `635.91us`, `1.22ms`, `2.00s`, `1.50m`.
fn latency(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// A report as wrk 4.2 prints it, for the smoke run's check of [`parse`].
pub const SAMPLE_REPORT: &str = "\
Running 10s test @ http://127.0.0.1:8080/status.svg
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   712.24us  410.92us  12.66ms   91.02%
    Req/Sec    45.12k     2.31k   50.10k    70.00%
  Latency Distribution
     50%  635.91us
     75%  712.34us
     90%  1.22ms
     99%  2.74ms
  898123 requests in 10.00s, 1.02GB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  89800.12
Transfer/sec:    104.31MB
";

/// Checks [`parse`] against [`SAMPLE_REPORT`]; the smoke run calls it, so a wrk format the
/// parser misreads shows up under `cargo test --benches`, not in a figure.
pub fn check_parser() {
    let figures = parse(SAMPLE_REPORT).expect("the sample report parses");
    assert_eq!(figures.requests, 898_123);
    assert_eq!(figures.non_2xx, 5);
    assert_eq!(figures.socket_errors, 3);
    assert!((figures.requests_per_second - 89_800.12).abs() < 1e-6);
    // Decimal fractions do not survive f64 exactly; a nanosecond either way is the same figure.
    let near = |d: Duration, ns: u128| d.as_nanos().abs_diff(ns) <= 1;
    assert!(near(figures.p50, 635_910), "{:?}", figures.p50);
    assert!(near(figures.p99, 2_740_000), "{:?}", figures.p99);
    assert!(near(latency("1.50m").expect("minutes"), 90_000_000_000));
    assert_eq!(latency("12"), None);
}
