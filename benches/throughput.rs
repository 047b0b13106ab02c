//! Throughput benchmark (issue 3): the node answering from a warm cache, against a bare hyper
//! server answering a fixed 1 KB SVG (`support/baseline.rs`), both loaded the same way by wrk
//! at 64 connections in one run, so the ratio means something on a shared machine.
//!
//! `cargo bench --bench throughput`. Each server gets its own 2-worker tokio runtime and is
//! loaded alone, one after the other; the baseline runs first and last and its mean is the
//! reference, so drift on the machine during the run shows and is shared out. The node is
//! measured with its per-request log line off (no subscriber) and on (the binary's text
//! subscriber at `info`, writing to `io::sink`), since production logs every request.
//!
//! Without `--bench` (as `cargo test --benches` runs it) it only checks that both servers
//! answer and that the wrk report parser reads a sample report; it needs no wrk then.

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/wrk.rs"]
mod wrk;

use std::time::Duration;

use dockerhub_build_status::config::Config;
use dockerhub_build_status::fakehub::{FakeHub, FakeRepo};
use dockerhub_build_status::node::Node;
use dockerhub_build_status::server;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// wrk's settings: two threads (one per core) and the 64 connections.
const WRK_THREADS: u32 = 2;
const CONNECTIONS: u32 = 64;
const SECONDS: u64 = 10;
/// A short unmeasured run first, so connection setup and first-touch costs fall outside.
const WARMUP_SECONDS: u64 = 1;

/// The repository the node serves; the fake hub knows it with a finished build.
const ORG: &str = "bench";
const REPO: &str = "throughput";

/// The goals.
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
        }
    }

    /// The node in front of a fake hub, with the benchmark's key in its cache.
    fn node() -> Server {
        let runtime = runtime();
        let (stop, stopped) = oneshot::channel::<()>();
        let (origin, task, hub) = runtime.block_on(async {
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
            let node = Node::new(config).expect("node starts");
            let task = tokio::spawn(server::run(listener, node, async {
                let _ = stopped.await;
            }));
            (format!("http://{addr}"), task, hub)
        });
        let server = Server {
            origin,
            runtime,
            stop,
            task,
            _hub: Some(hub),
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

/// Loads `url` with wrk: a warm-up, then the measured run. Warns about dirty runs.
fn load(url: &str) -> wrk::Figures {
    wrk::run(url, WRK_THREADS, CONNECTIONS, WARMUP_SECONDS).unwrap_or_else(|e| panic!("{e}"));
    let figures =
        wrk::run(url, WRK_THREADS, CONNECTIONS, SECONDS).unwrap_or_else(|e| panic!("{e}"));
    if figures.non_2xx > 0 || figures.socket_errors > 0 {
        println!(
            "  warning: {url}: {} non-2xx answers, {} socket errors",
            figures.non_2xx, figures.socket_errors
        );
    }
    figures
}

/// The subscriber `main.rs` installs (text, `info`), writing to a sink instead of stderr:
/// formatting every line is measured, the terminal or journal behind stderr is not.
fn install_log_subscriber() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::sink)
        // As in a journal or `docker logs`, where the binary writes no colour codes.
        .with_ansi(false)
        .init();
}

fn ms(duration: Duration) -> String {
    format!("{:.3}ms", duration.as_secs_f64() * 1e3)
}

fn row(name: &str, figures: &wrk::Figures, reference: Option<&wrk::Figures>) {
    let ratios = match reference {
        None => String::new(),
        Some(base) => {
            let ratio = figures.requests_per_second / base.requests_per_second;
            let p99_ratio = figures.p99.as_secs_f64() / base.p99.as_secs_f64();
            let met = ratio >= GOAL_RATIO && p99_ratio <= GOAL_P99_RATIO;
            format!(
                "{ratio:>8.2}x {p99_ratio:>8.2}x  {}",
                if met { "met" } else { "MISSED" }
            )
        }
    };
    println!(
        "{name:<30} {:>10.0} {:>10} {:>10}  {ratios}",
        figures.requests_per_second,
        ms(figures.p50),
        ms(figures.p99),
    );
}

/// The mean of two baseline runs, as one reference.
fn mean(a: &wrk::Figures, b: &wrk::Figures) -> wrk::Figures {
    wrk::Figures {
        requests_per_second: (a.requests_per_second + b.requests_per_second) / 2.0,
        p50: (a.p50 + b.p50) / 2,
        p99: (a.p99 + b.p99) / 2,
        requests: a.requests + b.requests,
        non_2xx: a.non_2xx + b.non_2xx,
        socket_errors: a.socket_errors + b.socket_errors,
    }
}

fn smoke() {
    wrk::check_parser();
    let baseline = Server::baseline();
    assert_eq!(
        baseline.check("/", "image/svg+xml", "</svg>"),
        baseline::SVG_BYTES
    );
    baseline.stop();
    let node = Server::node();
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
    println!(
        "{:<30} {:>10} {:>10} {:>10}  {:>9} {:>9}",
        "server", "req/s", "p50", "p99", "req/s", "p99"
    );
    println!(
        "{:<30} {:>10} {:>10} {:>10}  {:>9} {:>9}",
        "", "", "", "", "ratio", "ratio"
    );

    let base = Server::baseline();
    let first = load(&format!("{}/", base.origin));
    base.stop();
    row("baseline 1 KB SVG (1st)", &first, None);

    // The node's rows are printed once the second baseline run gives the reference.
    let mut rows = Vec::new();
    let node = Server::node();
    let svg_bytes = node.check(&svg_path(), "image/svg+xml", "ok");
    let json_bytes = node.check(&build_path(), "application/json", "\"status\":10");
    rows.push((
        "node /status.svg, log off",
        load(&format!("{}{}", node.origin, svg_path())),
    ));
    rows.push((
        "node /build, log off",
        load(&format!("{}{}", node.origin, build_path())),
    ));
    node.stop();

    install_log_subscriber();
    let node = Server::node();
    rows.push((
        "node /status.svg, log on",
        load(&format!("{}{}", node.origin, svg_path())),
    ));
    rows.push((
        "node /build, log on",
        load(&format!("{}{}", node.origin, build_path())),
    ));
    node.stop();

    let base = Server::baseline();
    let second = load(&format!("{}/", base.origin));
    base.stop();
    row("baseline 1 KB SVG (2nd)", &second, None);
    let reference = mean(&first, &second);
    row("baseline (mean: reference)", &reference, None);
    for (name, figures) in &rows {
        row(name, figures, Some(&reference));
    }
    println!(
        "bodies: baseline {} B, node badge {svg_bytes} B, node JSON {json_bytes} B",
        baseline::SVG_BYTES
    );
    println!(
        "goals: req/s ratio >= {GOAL_RATIO:.2}x, p99 ratio <= {GOAL_P99_RATIO:.2}x (node over baseline)"
    );
}
