//! Throughput benchmark: the node answering from a warm cache, against a bare hyper
//! server answering a fixed 1 KB SVG (`support/baseline.rs`), both loaded the same way by wrk
//! at 64 connections in one run, so the ratio means something on a shared machine.
//!
//! `cargo bench --bench throughput`. Each server gets its own 2-worker tokio runtime and is
//! loaded alone. The runs are interleaved in rounds (the baseline, then the node's badge, then
//! its JSON), and each node run is compared with the baseline run of its own round; a row's
//! ratio is the median over the rounds. On two cores shared with wrk one run can land in a
//! bad scheduling pattern (±15 % from run to run, for either server), and paired rounds keep
//! that and the machine's drift from deciding the result. The node runs as the binary ships:
//! the binary's log subscriber (text, `info`, the non-blocking writer) writing to a real file,
//! with each `--access-log` setting in turn, `errors` (the default), `off` and `all`; each row
//! prints the log bytes written per request. Besides wrk's figures it prints the server's own
//! CPU time per request, which moves far less than req/s when other programs share the
//! machine, and the CPU time of the node's handler alone, without sockets.
//!
//! Without `--bench` (as `cargo test --benches` runs it) it only checks that both servers
//! answer and that the wrk report parser reads a sample report; it needs no wrk then.

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/wrk.rs"]
mod wrk;

use std::time::Duration;

use dockerhub_build_status::config::{AccessLog, Config, LogFormat};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo};
use dockerhub_build_status::http::{routes, server};
use dockerhub_build_status::logging;
use dockerhub_build_status::node::Node;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// wrk's settings: two threads (one per core) and the issue's 64 connections.
const WRK_THREADS: u32 = 2;
const CONNECTIONS: u32 = 64;
const SECONDS: u64 = 5;
/// Rounds per access-log setting: each a baseline run and the node's two runs.
const ROUNDS: usize = 3;
/// A short unmeasured run first, so connection setup and first-touch costs fall outside.
const WARMUP_SECONDS: u64 = 1;

/// The repository the node serves; the fake hub knows it with a finished build.
const ORG: &str = "bench";
const REPO: &str = "throughput";

/// The issue's goals.
const GOAL_RATIO: f64 = 0.85;
const GOAL_P99_RATIO: f64 = 1.5;

/// A server running in its own runtime, stopped by [`Server::stop`].
struct Server {
    origin: String,
    runtime: Runtime,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    // Kept alive for as long as the node may ask it.
    _hub: Option<FakeHub>,
    /// The node served, for timing its handler alone.
    node: Option<Node>,
}

/// A tokio runtime like the binary's: multi-threaded, one worker per core.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

impl Server {
    fn baseline() -> Server {
        let runtime = runtime();
        let (stop, stopped) = oneshot::channel::<()>();
        let (origin, task) = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let origin = format!("http://{}", listener.local_addr().expect("address"));
            let task = tokio::spawn(baseline::serve(listener, async {
                let _ = stopped.await;
            }));
            (origin, task)
        });
        Server {
            origin,
            runtime,
            stop,
            task,
            _hub: None,
            node: None,
        }
    }

    /// The node in front of a fake hub, with the benchmark's key in its cache, writing
    /// request lines as `access_log` says.
    fn node(access_log: AccessLog) -> Server {
        let runtime = runtime();
        let (stop, stopped) = oneshot::channel::<()>();
        let (origin, task, hub, node) = runtime.block_on(async {
            let hub = FakeHub::start().await.expect("fake hub");
            hub.set_repo(
                &format!("{ORG}/{REPO}"),
                FakeRepo::with_builds(&[("latest", 10)]),
            );
            // Bound as the binary binds.
            let listener = server::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
            let addr = listener.local_addr().expect("address");
            let mut config = Config::for_tests(hub.url().parse().expect("hub URL"));
            config.listen = addr;
            config.public_url = Some(format!("http://{addr}").parse().expect("public URL"));
            config.access_log = access_log;
            let node = Node::new(config).expect("node starts");
            let task = tokio::spawn(server::run(listener, node.clone(), async {
                let _ = stopped.await;
            }));
            (format!("http://{addr}"), task, hub, node)
        });
        let server = Server {
            origin,
            runtime,
            stop,
            task,
            _hub: Some(hub),
            node: Some(node),
        };
        // Warm the cache: the first request fetches from the hub, the rest are hits.
        for _ in 0..3 {
            server.check(&svg_path(), "image/svg+xml", "ok");
            server.check(&build_path(), "application/json", "\"status\":10");
        }
        server
    }

    /// GETs `path` and checks the answer is a 200 of `content_type` containing `needle`;
    /// returns the body's length.
    fn check(&self, path: &str, content_type: &str, needle: &str) -> usize {
        let url = format!("{}{path}", self.origin);
        let (status, kind, body) = self.runtime.block_on(async {
            let response = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client")
                .get(&url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = response.status().as_u16();
            let kind = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            (status, kind, response.text().await.expect("body"))
        });
        assert_eq!(status, 200, "GET {url}: {body}");
        assert!(kind.starts_with(content_type), "GET {url}: {kind}");
        assert!(body.contains(needle), "GET {url}: {body}");
        body.len()
    }

    /// CPU time per call of `routes::handle` alone for `path` (routing, cache lookup, rendering,
    /// headers, metrics, the log line), called in a loop on this thread without sockets or
    /// hyper: the part of a request's cost that is the node's own code.
    fn handler_time(&self, path: &str) -> Duration {
        const CALLS: u32 = 200_000;
        let app = dockerhub_build_status::http::App::new(self.node.clone().expect("a node"));
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        let request = || {
            hyper::Request::get(path)
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .expect("a request")
        };
        self.runtime.block_on(async {
            for _ in 0..CALLS / 10 {
                std::hint::black_box(routes::handle(&app, request(), peer).await);
            }
            let started = thread_cpu();
            for _ in 0..CALLS {
                std::hint::black_box(routes::handle(&app, request(), peer).await);
            }
            (thread_cpu() - started) / CALLS
        })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let task = self.task;
        self.runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        });
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

fn svg_path() -> String {
    format!("/status.svg?organization={ORG}&repository={REPO}")
}

fn build_path() -> String {
    format!("/build/{ORG}/{REPO}")
}

/// One measured run: wrk's figures and the CPU time the server process spent per request.
#[derive(Debug, Clone, Copy)]
struct Run {
    wrk: wrk::Figures,
    /// User plus system time of this process (the server under load; wrk is another
    /// process) over the requests answered. Unlike req/s it barely moves when other work
    /// on the machine takes CPU away, so it says what a request costs the server itself.
    cpu_per_request: Duration,
    /// Context switches of this process's threads per request answered: how often the
    /// server gave up a core (or had it taken) to wrk, the other half of the machine.
    switches_per_request: f64,
    /// Bytes the log file grew by, per request answered.
    log_bytes_per_request: f64,
}

/// Context switches, voluntary and not, of every thread of this process so far.
fn context_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// CPU time this process has used, all threads, from `/proc/self/stat` (utime and stime,
/// in the kernel's fixed 100 Hz user ticks: 10 ms steps, fine over a 10 s run).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// CPU time the calling thread has used, in nanoseconds, from `/proc/thread-self/schedstat`:
/// unlike a wall clock it does not count the time other programs held the core.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("time on CPU");
    Duration::from_nanos(nanos)
}

/// Loads `url` with wrk: a warm-up, then the measured run. Warns about dirty runs.
fn load(url: &str, log: &Log) -> Run {
    wrk::run(url, WRK_THREADS, CONNECTIONS, WARMUP_SECONDS).unwrap_or_else(|e| panic!("{e}"));
    let cpu = process_cpu();
    let switches = context_switches();
    let log_bytes = log.bytes();
    let dropped = log.guard.dropped_lines();
    let figures =
        wrk::run(url, WRK_THREADS, CONNECTIONS, SECONDS).unwrap_or_else(|e| panic!("{e}"));
    let cpu = process_cpu() - cpu;
    let switches = context_switches().saturating_sub(switches);
    // The writer thread may still hold the run's last lines for a moment: a few out of
    // hundreds of thousands.
    let log_bytes = log.bytes().saturating_sub(log_bytes);
    let dropped = log.guard.dropped_lines() - dropped;
    if dropped > 0 {
        println!("  warning: {url}: {dropped} log lines dropped");
    }
    if figures.non_2xx > 0 || figures.socket_errors > 0 {
        println!(
            "  warning: {url}: {} non-2xx answers, {} socket errors",
            figures.non_2xx, figures.socket_errors
        );
    }
    Run {
        wrk: figures,
        cpu_per_request: cpu / u32::try_from(figures.requests.max(1)).unwrap_or(u32::MAX),
        switches_per_request: switches as f64 / figures.requests.max(1) as f64,
        log_bytes_per_request: log_bytes as f64 / figures.requests.max(1) as f64,
    }
}

/// The log as `main.rs` sets it up (text, `info`, no colour as in a journal or `docker logs`,
/// the non-blocking writer with the binary's queue), writing to a real file, as stderr does
/// when systemd, Docker or a shell redirect puts it in one.
struct Log {
    path: std::path::PathBuf,
    guard: logging::LogGuard,
}

impl Log {
    fn install() -> Log {
        let path = std::env::temp_dir().join(format!(
            "dockerhub-build-status-throughput-{}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&path).expect("create the log file");
        let settings = logging::LogSettings {
            format: LogFormat::Text,
            default_level: "info",
            ansi: false,
            buffered_lines: logging::BUFFERED_LINES,
        };
        let guard = logging::install(settings, file).expect("the only subscriber");
        Log { path, guard }
    }

    /// The log file's size now.
    fn bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn remove(self) {
        drop(self.guard);
        let _ = std::fs::remove_file(&self.path);
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.3}ms", duration.as_secs_f64() * 1e3)
}

fn us(duration: Duration) -> String {
    format!("{:.1}us", duration.as_secs_f64() * 1e6)
}

fn header() {
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}   {:>7} {:>7} {:>7}",
        "server", "req/s", "p50", "p99", "cpu/req", "cs/req", "log B/r", "req/s", "p99", "cpu/req"
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}   {:>7} {:>7} {:>7}",
        "", "", "", "", "", "", "", "ratio", "ratio", "ratio"
    );
}

/// Prints one run; with a reference, its ratios to it and whether the goals are met.
fn row(name: &str, run: &Run, reference: Option<&Run>) {
    let ratios = match reference {
        None => String::new(),
        Some(base) => {
            let ratio = run.wrk.requests_per_second / base.wrk.requests_per_second;
            let p99_ratio = run.wrk.p99.as_secs_f64() / base.wrk.p99.as_secs_f64();
            let cpu_ratio = run.cpu_per_request.as_secs_f64() / base.cpu_per_request.as_secs_f64();
            let met = ratio >= GOAL_RATIO && p99_ratio <= GOAL_P99_RATIO;
            format!(
                "{ratio:>6.2}x {p99_ratio:>6.2}x {cpu_ratio:>6.2}x  {}",
                if met { "met" } else { "MISSED" }
            )
        }
    };
    println!(
        "{name:<36} {:>9.0} {:>9} {:>9} {:>9} {:>7.3} {:>7.1}   {ratios}",
        run.wrk.requests_per_second,
        ms(run.wrk.p50),
        ms(run.wrk.p99),
        us(run.cpu_per_request),
        run.switches_per_request,
        run.log_bytes_per_request,
    );
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

/// One node row over all rounds: each run with the baseline run of its round.
struct Paired {
    name: String,
    runs: Vec<(Run, Run)>,
}

impl Paired {
    /// The median over the rounds of `figure(node run) / figure(its baseline run)`.
    fn ratio(&self, figure: impl Fn(&Run) -> f64) -> f64 {
        median(
            self.runs
                .iter()
                .map(|(node, base)| figure(node) / figure(base))
                .collect(),
        )
    }
}

/// Runs [`ROUNDS`] rounds against one node (started here with `access_log`, warm cache) and
/// one baseline, printing every run as it ends; returns the node's two rows, its handler
/// times and the sizes of its two bodies.
fn rounds(
    name: &str,
    access_log: AccessLog,
    log: &Log,
) -> (Vec<Paired>, (Duration, Duration), (usize, usize)) {
    let base = Server::baseline();
    let node = Server::node(access_log);
    let bodies = (
        node.check(&svg_path(), "image/svg+xml", "ok"),
        node.check(&build_path(), "application/json", "\"status\":10"),
    );
    let targets = [
        (format!("node /status.svg, log {name}"), svg_path()),
        (format!("node /build, log {name}"), build_path()),
    ];
    let mut rows: Vec<Paired> = targets
        .iter()
        .map(|(name, _)| Paired {
            name: name.clone(),
            runs: Vec::new(),
        })
        .collect();
    for round in 1..=ROUNDS {
        // The badge's target, though the baseline answers any: both servers parse the same
        // request line, so the ratio leaves out only what the node does with it.
        let reference = load(&format!("{}{}", base.origin, svg_path()), log);
        row(
            &format!("baseline 1 KB SVG (round {round})"),
            &reference,
            None,
        );
        for ((name, path), paired) in targets.iter().zip(&mut rows) {
            let run = load(&format!("{}{path}", node.origin), log);
            row(&format!("{name} ({round})"), &run, Some(&reference));
            paired.runs.push((run, reference));
        }
    }
    // One thread calling the handler in a loop logs far faster than any load that goes
    // through sockets, so `all` may overflow the log's queue here; those drops are not a
    // run's.
    let dropped = log.guard.dropped_lines();
    let handler = (
        node.handler_time(&svg_path()),
        node.handler_time(&build_path()),
    );
    let dropped = log.guard.dropped_lines() - dropped;
    if dropped > 0 {
        println!("  (the handler loop, log {name}: {dropped} log lines dropped)");
    }
    base.stop();
    node.stop();
    (rows, handler, bodies)
}

/// The load average, so a reader can tell a quiet machine from a busy one.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

fn smoke() {
    wrk::check_parser();
    let baseline = Server::baseline();
    assert_eq!(
        baseline.check(&svg_path(), "image/svg+xml", "</svg>"),
        baseline::SVG_BYTES
    );
    baseline.stop();
    let node = Server::node(AccessLog::Errors);
    node.stop();
    println!("throughput: smoke run only; `cargo bench --bench throughput` measures");
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        smoke();
        return;
    }
    if !wrk::available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            eprintln!("throughput: wrk is not on PATH; .ci/run installs it");
            std::process::exit(1);
        }
        println!("throughput: skipped: wrk is not on PATH (apt-get install wrk)");
        return;
    }

    println!(
        "throughput: wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{SECONDS}s --latency (after a {WARMUP_SECONDS}s warm-up); \
         each server alone in its own {}-worker tokio runtime",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("load average before: {}", load_average());
    let log = Log::install();
    println!(
        "log: text lines at info through the non-blocking writer ({} lines queued at most) to {}; \
         rows by --access-log (errors is the default)",
        logging::BUFFERED_LINES,
        log.path.display()
    );
    header();

    // The default first: the row that says what a node costs as shipped.
    let settings = [
        ("errors", AccessLog::Errors),
        ("off", AccessLog::Off),
        ("all", AccessLog::All),
    ];
    let mut rows = Vec::new();
    let mut handlers = Vec::new();
    let mut bodies = (0, 0);
    for (name, access_log) in settings {
        let (more, handler, sizes) = rounds(name, access_log, &log);
        rows.extend(more);
        handlers.push((name, handler));
        bodies = sizes;
    }
    let (svg_bytes, json_bytes) = bodies;

    println!();
    println!("median over {ROUNDS} rounds, each node run against the baseline run of its round:");
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9}",
        "server", "req/s", "p99", "cpu/req", "log B/r"
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9}",
        "", "ratio", "ratio", "ratio", "median"
    );
    for paired in &rows {
        let ratio = paired.ratio(|r| r.wrk.requests_per_second);
        let p99_ratio = paired.ratio(|r| r.wrk.p99.as_secs_f64());
        let cpu_ratio = paired.ratio(|r| r.cpu_per_request.as_secs_f64());
        let bytes = median(
            paired
                .runs
                .iter()
                .map(|(node, _)| node.log_bytes_per_request)
                .collect(),
        );
        let met = ratio >= GOAL_RATIO && p99_ratio <= GOAL_P99_RATIO;
        println!(
            "{:<36} {ratio:>8.2}x {p99_ratio:>8.2}x {cpu_ratio:>8.2}x {bytes:>9.1}  {}",
            paired.name,
            if met { "met" } else { "MISSED" }
        );
    }
    println!("load average after: {}", load_average());
    println!(
        "log: {} bytes written in all, {} lines dropped",
        log.bytes(),
        log.guard.dropped_lines()
    );
    for (name, (svg, build)) in handlers {
        println!(
            "node handler alone, log {name} (routes::handle in a loop, no sockets; CPU time per call): /status.svg {}, /build {}",
            us(svg),
            us(build),
        );
    }
    log.remove();
    println!(
        "bodies: baseline {} B, node badge {svg_bytes} B, node JSON {json_bytes} B",
        baseline::SVG_BYTES
    );
    println!(
        "goals: req/s ratio >= {GOAL_RATIO:.2}x, p99 ratio <= {GOAL_P99_RATIO:.2}x (node over baseline); \
         cpu/req: this process's CPU time per answered request (wrk not included); cs/req: its context switches per request"
    );
}
