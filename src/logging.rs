//! Log set-up: `tracing` events as text or JSON lines, one per request and one per notable
//! event, filtered by `RUST_LOG` (default `info`).
//!
//! Text lines without colour (a journal, `docker logs`, a file) come from [`TextLines`], a
//! formatter of our own that writes what tracing-subscriber's default format writes in about
//! a third of the time (0.25 µs against 0.8 µs for a request line): every request logs a
//! line, and formatting it through `core::fmt` (padding, colour-code styles, RFC 3339 dates)
//! had become the largest single cost of a cached badge (docs/PERFORMANCE.md). A person at a
//! terminal gets the default format with colours; JSON is tracing-subscriber's own.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Installs the process-wide subscriber: `format` lines on `writer`, at the level `RUST_LOG`
/// asks for or else `default_level`, with colours when `ansi` (a terminal). Does nothing if
/// one is installed already.
pub fn install<W>(format: LogFormat, default_level: &str, ansi: bool, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text if ansi => builder.try_init(),
        LogFormat::Text => builder.event_format(TextLines).try_init(),
    };
    // A second call (tests, benchmarks) keeps the first subscriber.
    drop(installed);
}

/// Installs the binary's subscriber on stderr, with colours only for a person at a
/// terminal, never into journald or `docker logs`.
pub fn install_stderr(format: LogFormat, default_level: &str) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install(format, default_level, ansi, io::stderr);
}

/// An error and its sources on one line, each cause once. Most errors here name their
/// source in their own message already, so a source is added only when the line does not
/// hold its text yet; reqwest's, which do not, get the reason at the end ("connection
/// refused").
pub fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause = Some(err);
    while let Some(err) = cause {
        let text = err.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        cause = err.source();
    }
    line
}

/// How often one cause of failure may be logged as a warning.
pub const WARN_EVERY: Duration = Duration::from_secs(60);
/// Causes remembered at most; a flood of new ones past this is not logged until old ones
/// have aged out, so the throttle's memory stays bounded.
const MAX_CAUSES: usize = 1024;

/// At most one warning per cause per [`WARN_EVERY`]: a hub or peer that stays down is said
/// once a minute, not once per request or gossip round.
#[derive(Debug)]
pub struct WarnThrottle {
    every: Duration,
    last: Mutex<HashMap<String, Instant>>,
}

impl Default for WarnThrottle {
    fn default() -> Self {
        WarnThrottle::new(WARN_EVERY)
    }
}

impl WarnThrottle {
    /// A throttle letting each cause through once per `every`.
    pub fn new(every: Duration) -> WarnThrottle {
        WarnThrottle {
            every,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a warning about `cause` may be logged now (and if so, the next one about it
    /// waits a full period).
    pub fn allow(&self, cause: &str) -> bool {
        self.allow_at(cause, Instant::now())
    }

    fn allow_at(&self, cause: &str, now: Instant) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recent = |at: &Instant| now.saturating_duration_since(*at) < self.every;
        if last.get(cause).is_some_and(recent) {
            return false;
        }
        if last.len() >= MAX_CAUSES && !last.contains_key(cause) {
            last.retain(|_, at| recent(at));
            if last.len() >= MAX_CAUSES {
                return false;
            }
        }
        last.insert(cause.to_owned(), now);
        true
    }
}

/// tracing-subscriber's default text line, without colour:
/// `2026-11-27T06:37:45.123456Z  INFO span{a=1}: target: message key=value key="text"`.
/// Records of the `log` crate go to the default format itself. One difference is left: a
/// field recorded as `&dyn Error` is written with its `Display` only, without the default
/// format's `.sources=[…]` list (the node logs errors with `%`, as text).
#[derive(Debug, Clone, Copy, Default)]
pub struct TextLines;

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.is_log() {
            // A `log` record (reqwest, hyper's client): its real target and place hide in
            // `log.*` fields that the default format knows how to unpack. Rare, so the
            // default format writes it.
            return Format::default()
                .with_ansi(false)
                .format_event(ctx, writer, event);
        }
        // The line is put together in a buffer of this thread and handed over in one write:
        // `writer` reaches its buffer through a `dyn fmt::Write`, a call per piece.
        thread_local! {
            static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        LINE.with(|line| {
            // A log call made while formatting (from a `Debug` impl) finds the buffer taken
            // and gets one of its own.
            let mut own = String::new();
            let mut taken = line.try_borrow_mut();
            let line = match taken.as_deref_mut() {
                Ok(line) => line,
                Err(_) => &mut own,
            };
            line.clear();
            write_line(ctx, line, event)?;
            writer.write_str(line)
        })
    }
}

/// One event as the default format writes it without colours, into `line`.
fn write_line<S, N>(ctx: &FmtContext<'_, S, N>, line: &mut String, event: &Event<'_>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    write_timestamp(line, SystemTime::now())?;
    line.push_str(match *event.metadata().level() {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    });
    if let Some(scope) = ctx.event_scope() {
        let mut any = false;
        for span in scope.from_root() {
            line.push_str(span.name());
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<N>>()
                && !fields.is_empty()
            {
                write!(line, "{{{fields}}}")?;
            }
            line.push(':');
            any = true;
        }
        if any {
            line.push(' ');
        }
    }
    line.push_str(event.metadata().target());
    line.push_str(": ");
    let mut fields = Fields {
        line,
        first: true,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    line.push('\n');
    Ok(())
}

/// Writes an event's fields as the default format does: the message bare, then `name=value`
/// with strings quoted and escaped, separated by spaces.
struct Fields<'l> {
    line: &'l mut String,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.line.push(' ');
        }
        if field.name() != "message" {
            // Raw identifiers (`r#type`) are written without their prefix.
            let name = field.name();
            self.line.push_str(name.strip_prefix("r#").unwrap_or(name));
            self.line.push('=');
        }
        Ok(())
    }

    fn number(&mut self, field: &Field, digits: &str) {
        if self.result.is_ok() {
            self.result = self.name(field).map(|()| self.line.push_str(digits));
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = self.name(field).and_then(|()| {
            if field.name() == "message" {
                Escaping(self.line).write_str(value)
            } else if value
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
            {
                // Nothing to escape: what `{:?}` would write, without going through it.
                self.line.push('"');
                self.line.push_str(value);
                self.line.push('"');
                Ok(())
            } else {
                write!(self.line, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|()| {
                if field.name() == "message" {
                    write!(Escaping(self.line), "{value:?}")
                } else {
                    write!(self.line, "{value:?}")
                }
            });
        }
    }
}

/// Writes messages as the default format does: terminal control characters that could move
/// a reader's cursor or change colours (ESC, BEL, BS, FF, DEL, the C1 codes) are written as
/// escapes, so a message quoting client text cannot drive the terminal it is read in.
struct Escaping<'l>(&'l mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let dangerous = |c: char| {
            matches!(
                c,
                '\x07' | '\x08' | '\x0c' | '\x1b' | '\x7f' | '\u{80}'..='\u{9f}'
            )
        };
        if !text.contains(dangerous) {
            self.0.push_str(text);
            return Ok(());
        }
        for c in text.chars() {
            match c {
                '\x07' | '\x08' | '\x0c' | '\x1b' | '\x7f' => {
                    write!(self.0, "\\x{:02x}", c as u32)?
                }
                c if dangerous(c) => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}

/// `2026-11-27T06:37:45.123456Z`: RFC 3339 in UTC with microseconds, as the default format
/// writes it.
fn write_timestamp(writer: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for slot in out[at..at + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    put(20, 6, u64::from(since_epoch.subsec_micros()));
    writer.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

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
        assert!(throttle.last.lock().unwrap().len() <= MAX_CAUSES);
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
        for seconds in [
            0,
            86_399,
            86_400,
            4_107_542_400,
            1_795_678_665,
            253_402_300_799,
        ] {
            let at = UNIX_EPOCH + Duration::new(seconds, 7_000);
            let mut ours = String::new();
            write_timestamp(&mut ours, at).unwrap();
            let theirs = format!("{}", SlowDate(at));
            assert_eq!(ours, theirs, "{seconds}");
        }
    }

    /// The same instant written the slow way, counting days from 1970 year by year and
    /// month by month: an independent reference for `civil_from_days`. (tracing-subscriber
    /// only formats the current time; the test below compares with that.)
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
}
