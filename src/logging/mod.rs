//! Log set-up: `tracing` events as text or JSON lines, filtered by `RUST_LOG` (default
//! `info`), written by a thread of their own so that no request waits on the log.
//!
//! Lines go to [`tracing_appender::non_blocking()`]: a request only formats its line and hands
//! it to a bounded queue; the writer thread empties the queue into a buffer, writes it out
//! whenever the queue runs dry (one write for a whole batch of lines) and rests a moment
//! before it looks again. When the output cannot
//! keep up (a stalled journal, a full pipe, a slow disk), new lines are dropped rather than
//! held or waited for: [`dropped_lines`] counts them for `dbs_log_lines_dropped_total`, and
//! the writer says how many in a line of its own as soon as it has caught up. Dropping the
//! [`LogGuard`] writes out what is still queued.
//!
//! Text lines without colour (a journal, `docker logs`, a file) come from [`TextLines`], a
//! formatter of our own that writes what tracing-subscriber's default format writes in about
//! a third of the time (0.25 µs against 0.8 µs for a request line), since formatting through
//! `core::fmt` (padding, colour-code styles) was the largest single cost of a logged cached
//! badge (docs/PERFORMANCE.md). The default access log writes no line for a cached badge, so
//! the difference is paid per request only under `--access-log all`, whose throughput rows
//! are at the goal already; `benches/log_line.rs` measures the two side by side, and the
//! formatter goes when that difference no longer shows. A person at a terminal gets the
//! default format with colours; JSON is tracing-subscriber's own.

use std::fmt::{self, Write as _};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Level, Subscriber};
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;
use crate::tools::clock::{self, Instant};
use crate::tools::limiter::{KeyedLimiter, Rate};

/// Lines the queue holds while the output is slower than the node: about 2.5 MB of request
/// lines, 0.1 s of `--access-log all` at 150,000 requests a second. Past that a stall costs
/// lines, never memory or a request's time.
pub const BUFFERED_LINES: usize = 16_384;

/// The writer thread's buffer: lines gathered between two writes to the output.
const OUTPUT_BUFFER: usize = 64 * 1024;

/// How long the writer thread rests after each write. Lines queue up meanwhile and go out
/// together, and a thread that is not waiting on the queue needs no waking: without the rest,
/// `--access-log all` woke it every few lines, a system call on the request's side each time,
/// and took the server 1.4–1.8 times the baseline's CPU per request instead of 1.1–1.3
/// (docs/PERFORMANCE.md). A line waits about this long at most; the queue holds 0.2 s of
/// lines at 80,000 a second.
const WRITE_PAUSE: Duration = Duration::from_millis(20);

/// How the log is written: the format, the level when `RUST_LOG` says none, colour codes,
/// and how many lines may wait for the output.
#[derive(Debug, Clone, Copy)]
pub struct LogSettings<'a> {
    pub format: LogFormat,
    pub default_level: &'a str,
    pub ansi: bool,
    pub buffered_lines: usize,
}

/// Keeps the writer thread: dropping it writes out every line still queued (waiting at
/// most about a second for a stalled output), and ends the thread.
#[derive(Debug)]
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    watch: Arc<OnceLock<Watch>>,
    worker: Option<WorkerGuard>,
}

impl LogGuard {
    /// Lines this writer has dropped so far.
    pub fn dropped_lines(&self) -> u64 {
        self.watch.get().map_or(0, |watch| {
            u64::try_from(watch.counter.dropped_lines()).unwrap_or(u64::MAX)
        })
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // The writer thread tells of drops when it catches up; lines dropped since then
        // would go untold once it stops, so they are told here, ahead of the final flush.
        if let Some(watch) = self.watch.get() {
            watch.tell_of_drops();
        }
        drop(self.worker.take());
    }
}

/// Every writer's count of dropped lines, for [`dropped_lines`].
static DROP_COUNTERS: Mutex<Vec<ErrorCounter>> = Mutex::new(Vec::new());

/// Log lines this process has dropped because the output fell behind, over all its writers.
pub fn dropped_lines() -> u64 {
    let counters = DROP_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    counters
        .iter()
        .map(|c| u64::try_from(c.dropped_lines()).unwrap_or(u64::MAX))
        .fold(0, u64::saturating_add)
}

/// A subscriber writing `settings.format` lines to `output` on a thread of its own, with the
/// guard that keeps that thread. Nothing is installed: [`install`] does that, tests use the
/// dispatch in a scope of their own.
pub fn dispatch<W>(settings: LogSettings<'_>, output: W) -> (Dispatch, LogGuard)
where
    W: io::Write + Send + 'static,
{
    let watch = Arc::new(OnceLock::new());
    let output = Output {
        out: io::BufWriter::with_capacity(OUTPUT_BUFFER, output),
        watch: Arc::clone(&watch),
    };
    let (writer, worker) = NonBlockingBuilder::default()
        .buffered_lines_limit(settings.buffered_lines.max(1))
        .lossy(true)
        .thread_name("log-writer")
        .finish(output);
    let counter = writer.error_counter();
    DROP_COUNTERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(counter.clone());
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(settings.default_level));
    // hickory-server logs every DNS query at INFO: at the node's default level a flood of
    // queries would be a flood of log lines. Its warnings stay; RUST_LOG naming hickory
    // decides for itself.
    let names_hickory = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("hickory"));
    if !names_hickory {
        for directive in [
            "hickory_server=warn",
            "hickory_proto=warn",
            "hickory_net=warn",
            "hickory_resolver=warn",
        ] {
            if let Ok(directive) = directive.parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(settings.ansi);
    let dispatch = match settings.format {
        LogFormat::Json => Dispatch::new(builder.json().flatten_event(true).finish()),
        LogFormat::Text if settings.ansi => Dispatch::new(builder.finish()),
        LogFormat::Text => Dispatch::new(builder.event_format(TextLines).finish()),
    };
    // A weak handle: the subscriber owns the writer thread's queue, so a strong one here
    // would keep the thread alive for ever.
    let _ = watch.set(Watch {
        counter,
        dispatch: dispatch.downgrade(),
        noted: AtomicUsize::new(0),
    });
    let guard = LogGuard {
        watch,
        worker: Some(worker),
    };
    (dispatch, guard)
}

/// Installs the process-wide subscriber of [`dispatch`], and the bridge for records of the
/// `log` crate. Returns the guard to keep until the last line is logged, or `None` if a
/// subscriber is installed already (tests, benchmarks): the first one stays.
pub fn install<W>(settings: LogSettings<'_>, output: W) -> Option<LogGuard>
where
    W: io::Write + Send + 'static,
{
    let (dispatch, guard) = dispatch(settings, output);
    tracing::dispatcher::set_global_default(dispatch).ok()?;
    let _ = tracing_log::LogTracer::builder()
        .with_max_level(tracing_log::AsLog::as_log(
            &tracing::level_filters::LevelFilter::current(),
        ))
        .init();
    Some(guard)
}

/// Installs the binary's subscriber on stderr, with colours only for a person at a
/// terminal, never into journald or `docker logs`.
pub fn install_stderr(format: LogFormat, default_level: &str) -> Option<LogGuard> {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let settings = LogSettings {
        format,
        default_level,
        ansi,
        buffered_lines: BUFFERED_LINES,
    };
    install(settings, io::stderr())
}

/// The writer thread's side: a buffer in front of the real output, which also notices lines
/// dropped since it last looked.
struct Output<W: io::Write> {
    out: io::BufWriter<W>,
    watch: Arc<OnceLock<Watch>>,
}

/// What [`Output`] and [`LogGuard`] learn once the subscriber exists: the count of dropped
/// lines, the subscriber to tell of them through, and how many were told of already.
#[derive(Debug)]
struct Watch {
    counter: ErrorCounter,
    dispatch: WeakDispatch,
    noted: AtomicUsize,
}

impl Watch {
    /// Logs one line saying how many lines were dropped since the last such line, if any.
    fn tell_of_drops(&self) {
        let noted = self.noted.load(Ordering::Acquire);
        let dropped = self.counter.dropped_lines();
        if dropped <= noted
            || self
                .noted
                .compare_exchange(noted, dropped, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        let Some(dispatch) = self.dispatch.upgrade() else {
            return;
        };
        // Logged like any line, so it has the operator's format.
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::warn!(
                dropped = u64::try_from(dropped - noted).unwrap_or(u64::MAX),
                "log lines dropped: the log output fell behind"
            );
        });
        if self.counter.dropped_lines() != dropped {
            // This line may have been dropped too (or another one was): the next look
            // tells of the whole range again, this line counted among the dropped.
            let _ =
                self.noted
                    .compare_exchange(dropped, noted, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

impl<W: io::Write> io::Write for Output<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.out.write(bytes)
    }

    /// Called by the writer thread each time it has emptied the queue: the log has caught
    /// up, and the queue has room for the line that says what it lost on the way, which is
    /// queued before the batch goes out (the write may take long, and the queue fill up).
    fn flush(&mut self) -> io::Result<()> {
        if let Some(watch) = self.watch.get() {
            watch.tell_of_drops();
        }
        let flushed = self.out.flush();
        std::thread::sleep(WRITE_PAUSE);
        flushed
    }
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
/// once a minute, not once per request or gossip round. A rate limit per cause, a burst of
/// one.
#[derive(Debug)]
pub struct WarnThrottle {
    causes: parking_lot::Mutex<KeyedLimiter<String, Instant>>,
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
            causes: parking_lot::Mutex::new(KeyedLimiter::new(Rate::new(1, 1, every), MAX_CAUSES)),
        }
    }

    /// Whether a warning about `cause` may be logged now (and if so, the next one about it
    /// waits a full period).
    pub fn allow(&self, cause: &str) -> bool {
        self.allow_at(cause, clock::now())
    }

    fn allow_at(&self, cause: &str, now: Instant) -> bool {
        self.causes.lock().take(cause.to_owned(), 1, now).is_ok()
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
    // humantime writes the years 1970 to 9999 and panics before them: a clock set that far
    // off still gets its line, with the nearest time it can write.
    let now = now.clamp(UNIX_EPOCH, UNIX_EPOCH + LAST_WRITABLE);
    write!(writer, "{}", humantime::format_rfc3339_micros(now))
}

/// The last microsecond of the year 9999, as time since the epoch.
const LAST_WRITABLE: Duration = Duration::new(253_402_300_799, 999_999_000);

#[cfg(test)]
mod tests;
