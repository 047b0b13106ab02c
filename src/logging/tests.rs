//! Tests of the log set-up: the text format against tracing-subscriber's, the writer under
//! bursts and stalls, the access-log choice and the warning throttle.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tracing_subscriber::fmt::time::SystemTime as DefaultClock;

use super::*;

/// Collects what a subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Logs the same events through `TextLines` and through the default format, and gives
/// both outputs with the timestamps cut off.
fn both(log: impl Fn()) -> (String, String) {
    // `log` records reach tracing through the bridge `install` sets up.
    let _ = tracing_log::LogTracer::init();
    let ours = Captured::default();
    let theirs = Captured::default();
    let writer = ours.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .event_format(TextLines)
        .finish();
    tracing::subscriber::with_default(subscriber, &log);
    let writer = theirs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, &log);
    let cut = |text: String| {
        text.lines()
            .map(|line| line.get(27..).unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    };
    (cut(ours.text()), cut(theirs.text()))
}

#[test]
fn a_cause_is_let_through_once_a_period() {
    let throttle = WarnThrottle::new(Duration::from_secs(60));
    let t0 = Instant::now();
    assert!(throttle.allow_at("hub: timeout", t0));
    assert!(!throttle.allow_at("hub: timeout", t0 + Duration::from_secs(59)));
    assert!(throttle.allow_at("peer a: refused", t0 + Duration::from_secs(1)));
    assert!(throttle.allow_at("hub: timeout", t0 + Duration::from_secs(60)));
}

#[test]
fn the_throttle_remembers_a_bounded_number_of_causes() {
    let throttle = WarnThrottle::new(Duration::from_secs(60));
    let t0 = Instant::now();
    for n in 0..MAX_CAUSES {
        assert!(throttle.allow_at(&format!("peer {n}"), t0));
    }
    assert!(!throttle.allow_at("one more", t0), "full of recent causes");
    let later = t0 + Duration::from_secs(61);
    assert!(throttle.allow_at("one more", later), "old causes age out");
    assert!(throttle.causes.lock().len() <= MAX_CAUSES);
}

#[test]
fn a_cause_chain_says_each_cause_once() {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot read p.toml: {0}")]
    struct Naming(#[source] std::io::Error);
    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Silent(#[source] std::io::Error);
    let io = || std::io::Error::other("connection refused");
    assert_eq!(
        cause_chain(&Naming(io())),
        "cannot read p.toml: connection refused"
    );
    assert_eq!(
        cause_chain(&Silent(io())),
        "request failed: connection refused"
    );
}

#[test]
fn lines_match_the_default_format() {
    let (ours, theirs) = both(|| {
        let method = hyper::Method::GET;
        tracing::info!(
            message = "request",
            method = method.as_str(),
            route = "build",
            status = 200u16,
            latency_us = 17u64,
        );
        tracing::info!(%method, "displayed");
        tracing::info!(
            method = method.as_str(),
            route = "build",
            status = 200u16,
            "request, message last"
        );
        tracing::warn!(error = %"no \"such\" peer", attempt = -3i64, ok = true, "gossip failed");
        tracing::error!(text = "tab\there, ünïcode", r#type = "x", "odd strings");
        tracing::debug!(ratio = 0.5f64, list = ?[1, 2], "debug values");
        tracing::trace!("message only");
        tracing::info!(peer = "\x1b[31mred", "quoted \x1b[2J\x07\u{9b}clear");
        tracing_log::log::warn!(target: "reqwest::connect", "a log record {}", 7);
        let span = tracing::info_span!("outer", peer = "a");
        let _entered = span.enter();
        let inner = tracing::debug_span!("inner");
        let _inner = inner.enter();
        tracing::info!(n = 1u64, "inside spans");
    });
    assert_eq!(ours.lines().count(), 10, "{ours}");
    assert!(ours.contains(r"quoted \x1b[2J\x07\u{9b}clear"), "{ours}");
    assert!(
        ours.contains("WARN reqwest::connect: a log record 7"),
        "{ours}"
    );
    assert_eq!(ours, theirs);
    assert!(ours.contains(r#"INFO dockerhub_build_status::logging::tests: request method="GET" route="build" status=200 latency_us=17"#), "{ours}");
}

#[test]
fn timestamps_are_rfc3339_utc_with_microseconds() {
    let mut ours = String::new();
    let at = UNIX_EPOCH + Duration::new(951_868_799, 123_456_789);
    write_timestamp(&mut ours, at).unwrap();
    assert_eq!(ours, "2000-02-29T23:59:59.123456Z");
    // Day, month, leap-year and century edges, then instants spread over every year
    // that can be written.
    let edges = [
        0,
        86_399,
        86_400,
        4_107_542_400,
        1_795_678_665,
        253_402_300_799,
    ];
    let spread = (0..1_000u64).map(|i| i * 253_400_000 + i * 7_919 % 86_400);
    for seconds in edges.into_iter().chain(spread) {
        for nanos in [0, 7_000, 999_999_999] {
            let at = UNIX_EPOCH + Duration::new(seconds, nanos);
            let mut ours = String::new();
            write_timestamp(&mut ours, at).unwrap();
            let theirs = format!("{}", SlowDate(at));
            assert_eq!(ours, theirs, "{seconds}.{nanos:09}");
        }
    }
}

#[test]
fn a_clock_outside_the_writable_years_still_gets_a_timestamp() {
    let mut before = String::new();
    write_timestamp(&mut before, UNIX_EPOCH - Duration::from_secs(5)).unwrap();
    assert_eq!(before, "1970-01-01T00:00:00.000000Z");
    let mut after = String::new();
    write_timestamp(
        &mut after,
        UNIX_EPOCH + Duration::from_secs(300_000_000_000),
    )
    .unwrap();
    assert_eq!(after, "9999-12-31T23:59:59.999999Z");
}

/// The same instant written the slow way, counting days from 1970 year by year and
/// month by month: an independent reference for the timestamps, which the line format
/// must keep. (tracing-subscriber only formats the current time; a test below compares
/// with that.)
struct SlowDate(SystemTime);

impl fmt::Display for SlowDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap();
        let mut days = since.as_secs() / 86_400;
        let mut year = 1970;
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        loop {
            let length = if leap(year) { 366 } else { 365 };
            if days < length {
                break;
            }
            days -= length;
            year += 1;
        }
        let lengths = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut month = 0;
        while days >= lengths[month] {
            days -= lengths[month];
            month += 1;
        }
        let of_day = since.as_secs() % 86_400;
        write!(
            f,
            "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            month + 1,
            days + 1,
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60,
            since.subsec_micros()
        )
    }
}

#[test]
fn the_current_time_is_written_like_the_default_clock() {
    use tracing_subscriber::fmt::time::FormatTime;
    let theirs = || {
        let mut text = String::new();
        DefaultClock
            .format_time(&mut Writer::new(&mut text))
            .unwrap();
        text
    };
    let before = theirs();
    let mut ours = String::new();
    write_timestamp(&mut ours, SystemTime::now()).unwrap();
    let after = theirs();
    assert_eq!(ours.len(), before.len(), "{ours} vs {before}");
    // Same to the second as one of the default clock's readings around it (the second
    // may turn between them).
    assert!(
        ours[..19] == before[..19] || ours[..19] == after[..19],
        "{ours} vs {before} / {after}"
    );
}

/// An output that takes nothing until it is opened: a stalled journal, a full pipe.
#[derive(Clone, Default)]
struct Stalled {
    /// (open, a write is waiting), and the condition both change under.
    state: Arc<(Mutex<(bool, bool)>, Condvar)>,
    taken: Captured,
}

impl Stalled {
    fn open(&self) {
        let (state, changed) = &*self.state;
        state.lock().unwrap().0 = true;
        changed.notify_all();
    }

    /// Waits until a write is blocked here, up to `deadline`.
    fn wait_for_a_writer(&self, deadline: Duration) -> bool {
        let (state, changed) = &*self.state;
        let state = state.lock().unwrap();
        let (state, _) = changed
            .wait_timeout_while(state, deadline, |(_, waiting)| !*waiting)
            .unwrap();
        state.1
    }
}

impl io::Write for Stalled {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let (state, changed) = &*self.state;
        let mut state = state.lock().unwrap();
        state.1 = true;
        changed.notify_all();
        while !state.0 {
            state = changed.wait(state).unwrap();
        }
        drop(state);
        self.taken.write(bytes)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The value of `dbs_log_lines_dropped_total` in a node registry's exposition.
fn dropped_metric(metrics: &crate::metrics::Metrics) -> u64 {
    let text = String::from_utf8(metrics.encode()).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("dbs_log_lines_dropped_total "))
        .unwrap_or_else(|| panic!("no dbs_log_lines_dropped_total in\n{text}"))
        .parse()
        .unwrap()
}

/// Waits for `condition`, checking every few milliseconds, up to `deadline`.
fn wait_until(deadline: Duration, what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn text_settings(buffered_lines: usize) -> LogSettings<'static> {
    LogSettings {
        format: LogFormat::Text,
        default_level: "info",
        ansi: false,
        buffered_lines,
    }
}

#[test]
fn a_stalled_output_costs_lines_not_waiting_and_the_metric_and_the_log_say_so() {
    const QUEUE: usize = 8;
    const BURST: u64 = 1_000;
    let output = Stalled::default();
    let metrics = crate::metrics::Metrics::new().unwrap();
    let shown_before = dropped_metric(&metrics);
    let (dispatch, guard) = super::dispatch(text_settings(QUEUE), output.clone());
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("first"));
    // The writer thread has the first line and is stuck writing it; the queue is empty.
    assert!(
        output.wait_for_a_writer(Duration::from_secs(10)),
        "the writer thread reaches the output"
    );
    // On a thread of its own, so a writer that made its callers wait fails this test at
    // a deadline instead of hanging it.
    let (done, finished) = mpsc::channel();
    let burst = dispatch.clone();
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&burst, || {
            for n in 1..=BURST {
                tracing::info!(n, "burst");
            }
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("logging never waits for a stalled output");
    // The queue took as many as it holds; the rest were dropped and counted.
    let dropped = BURST - QUEUE as u64;
    assert_eq!(guard.dropped_lines(), dropped);
    let shown = dropped_metric(&metrics);
    assert!(
        shown >= shown_before + dropped,
        "the metric moved by {dropped}: {shown_before} -> {shown}"
    );

    // Once the output takes lines again, the queued ones go out, then the line telling
    // of the drops; a line logged after that has room again.
    output.open();
    let text = || output.taken.text();
    wait_until(Duration::from_secs(10), "the log to catch up", || {
        text().contains("log lines dropped")
    });
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("after the stall"));
    wait_until(Duration::from_secs(10), "a line after the stall", || {
        text().contains("after the stall")
    });
    drop(guard);
    let text = text();
    let lines: Vec<&str> = text.lines().collect();
    let note = format!(
        "WARN dockerhub_build_status::logging: log lines dropped: the log output fell behind dropped={dropped}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(&note)).count(),
        1,
        "one line tells of the drops: {text}"
    );
    let kept: Vec<String> = (1..=QUEUE).map(|n| format!("burst n={n}")).collect();
    for wanted in ["first", "after the stall"]
        .into_iter()
        .chain(kept.iter().map(String::as_str))
    {
        assert_eq!(
            lines.iter().filter(|l| l.ends_with(wanted)).count(),
            1,
            "{wanted} in {text}"
        );
    }
    assert_eq!(lines.len(), 2 + QUEUE + 1, "{text}");
}

#[test]
fn a_line_still_reaches_the_file_after_a_burst() {
    const THREADS: u64 = 2;
    // Each thread alone logs more than the queue holds.
    const LINES: u64 = 2 * BUFFERED_LINES as u64;
    let path = std::env::temp_dir().join(format!(
        "dockerhub-build-status-burst-{}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&path).unwrap();
    let settings = LogSettings {
        format: LogFormat::Json,
        ..text_settings(BUFFERED_LINES)
    };
    let (dispatch, guard) = super::dispatch(settings, file);
    let burst: Vec<_> = (0..THREADS)
        .map(|_| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for n in 0..LINES {
                        tracing::info!(
                            message = "request",
                            method = "GET",
                            route = "status_svg",
                            status = 200u16,
                            latency_us = n,
                        );
                    }
                });
            })
        })
        .collect();
    for thread in burst {
        thread.join().unwrap();
    }
    // Once the writer has caught up, lines reach the file again; a marker is logged until
    // one is there.
    let read = || std::fs::read_to_string(&path).unwrap();
    wait_until(Duration::from_secs(20), "a line after the burst", || {
        tracing::dispatcher::with_default(&dispatch, || tracing::info!("after the burst"));
        read().contains("after the burst")
    });
    let dropped = guard.dropped_lines();
    drop(guard);
    let text = read();
    let _ = std::fs::remove_file(&path);
    assert!(text.ends_with('\n'), "the last line is whole");
    let (mut requests, mut notes) = (0, 0);
    for line in text.lines() {
        // Whole lines, never torn or run together, with the fields of the format.
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for field in ["timestamp", "level", "message", "target"] {
            assert!(json.get(field).is_some(), "no {field}: {line}");
        }
        match json["message"].as_str() {
            Some("request") => {
                assert_eq!(json["route"], "status_svg", "{line}");
                assert_eq!(json["status"], 200, "{line}");
                requests += 1;
            }
            Some(m) if m.starts_with("log lines dropped") => notes += 1,
            _ => {}
        }
    }
    // Every request line was written or counted as dropped (a dropped marker counts too).
    assert!(requests <= THREADS * LINES);
    assert!(
        requests + dropped >= THREADS * LINES,
        "{requests} written, {dropped} dropped"
    );
    assert_eq!(dropped > 0, notes > 0, "{dropped} dropped, {notes} notes");
}
