//! Thundering-herd benchmark: 1,000 concurrent requests for one cold key, over real
//! HTTP on loopback, against a fake hub that takes 200 ms to answer. Coalescing should turn
//! them into one upstream call, and every request should be answered in about the time the
//! hub itself takes: that time, measured in the same run, is the baseline.
//!
//! `cargo bench --bench herd`. Each request opens its own connection (as a burst of new
//! visitors does), so the latencies include the TCP handshake and the node's accept loop.
//! Without `--bench` (as `cargo test --benches` runs it) it sends a herd of 50 to a 50 ms hub.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dockerhub_build_status::config::Config;
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo, Fault};
use dockerhub_build_status::http::server;
use dockerhub_build_status::node::Node;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::{Barrier, oneshot};

const ORG: &str = "bench";
const REPO: &str = "herd";

/// The goals.
const GOAL_UPSTREAM_CALLS: usize = 1;
const GOAL_P99: Duration = Duration::from_millis(300);

/// A tokio runtime like the binary's: multi-threaded, one worker per core.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// One GET over a new connection, as a browser or an image proxy sends it; the answer's
/// text if it was a 200. A few syscalls per request, so this load generator leaves the two
/// cores to the node (a full HTTP client costs several times more per new connection).
async fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.ok()?;
    let mut answer = Vec::with_capacity(1024);
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8(answer).ok()?;
    answer.starts_with("HTTP/1.1 200 ").then_some(answer)
}

/// One visitor of the herd: waits for the common start, then asks. Returns when it sent,
/// when it had the whole answer, and whether that was the right status.
async fn visitor(
    addr: SocketAddr,
    path: Arc<str>,
    start: Arc<Barrier>,
) -> (Instant, Instant, bool) {
    start.wait().await;
    let sent = Instant::now();
    let ok = get(addr, &path).await.is_some_and(|answer| {
        answer.contains("\"request\":\"ok\"") && answer.contains("\"status\":10")
    });
    (sent, Instant::now(), ok)
}

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (herd, hub_delay) = if full {
        (1_000, Duration::from_millis(200))
    } else {
        (50, Duration::from_millis(50))
    };

    // The node and its hub in one runtime, the visitors in another, as two programs would be.
    let node_runtime = runtime();
    let (stop, stopped) = oneshot::channel::<()>();
    let (addr, hub, node, task) = node_runtime.block_on(async {
        let hub = FakeHub::start().await.expect("fake hub");
        // Build history answers in one request, so one status fetch is one hub request.
        hub.set_repo(
            &format!("{ORG}/{REPO}"),
            FakeRepo::with_builds(&[("latest", 10)]),
        );
        hub.set_fault(Some(Fault::Slow(hub_delay)));
        // Bound as the binary binds: the accept queue must hold the whole burst.
        let listener = server::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut config = Config::for_tests(hub.url().parse().expect("hub URL"));
        config.listen = addr;
        config.public_url = Some(format!("http://{addr}").parse().expect("public URL"));
        // Room for the whole herd at once, whatever the default becomes.
        config.max_connections = config.max_connections.max(2 * herd as u32);
        config.max_connections_per_client = config.max_connections;
        let node = Node::new(config).expect("node starts");
        let task = tokio::spawn(server::run(listener, node.clone(), async {
            let _ = stopped.await;
        }));
        (addr, hub, node, task)
    });

    let visitors = runtime();
    let path: Arc<str> = format!("/build/{ORG}/{REPO}").into();
    let results: Vec<(Instant, Instant, bool)> = visitors.block_on(async {
        let start = Arc::new(Barrier::new(herd));
        let tasks: Vec<_> = (0..herd)
            .map(|_| tokio::spawn(visitor(addr, Arc::clone(&path), Arc::clone(&start))))
            .collect();
        let mut results = Vec::with_capacity(herd);
        for task in tasks {
            results.push(task.await.expect("visitor task"));
        }
        results
    });
    let upstream_calls = hub.request_count();

    // The baseline: the hub asked directly, one request at a time, by the same client.
    let hub_addr: SocketAddr = hub
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("hub address");
    let hub_path = format!("/v2/repositories/{ORG}/{REPO}/buildhistory/?page_size=100");
    let mut direct: Vec<Duration> = visitors.block_on(async {
        let mut times = Vec::new();
        for _ in 0..5 {
            let sent = Instant::now();
            assert!(get(hub_addr, &hub_path).await.is_some(), "the hub answers");
            times.push(sent.elapsed());
        }
        times
    });
    direct.sort();
    let hub_time = percentile(&direct, 50.0);

    let lookups: Vec<String> = String::from_utf8_lossy(&node.metrics().encode())
        .lines()
        .filter(|line| line.starts_with("dbs_cache_lookups_total{"))
        .map(str::to_owned)
        .collect();
    let _ = stop.send(());
    node_runtime.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
    });
    drop(hub);

    let answered = results.iter().filter(|(_, _, ok)| *ok).count();
    // The herd starts when the first visitor sends; the last one sends a little later, since
    // the visitors share the machine with the node.
    let herd_start = results
        .iter()
        .map(|(sent, _, _)| *sent)
        .min()
        .expect("a herd");
    let mut latencies: Vec<Duration> = results
        .iter()
        .map(|(sent, done, _)| *done - *sent)
        .collect();
    let mut waits: Vec<Duration> = results
        .iter()
        .map(|(_, done, _)| *done - herd_start)
        .collect();
    let mut send_spread: Vec<Duration> = results
        .iter()
        .map(|(sent, _, _)| *sent - herd_start)
        .collect();
    latencies.sort();
    waits.sort();
    send_spread.sort();
    let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
    let verdict = |met: bool| if met { "met" } else { "MISSED" };

    if !full {
        assert_eq!(upstream_calls, GOAL_UPSTREAM_CALLS, "one upstream call");
        assert_eq!(answered, herd, "every request answered");
        println!(
            "herd: smoke run only ({herd} requests, {hub_delay:?} hub); `cargo bench --bench herd` measures"
        );
        return;
    }
    let over_hub = |d: Duration| d.as_secs_f64() / hub_time.as_secs_f64();
    println!(
        "herd: {herd} concurrent GET /build/{ORG}/{REPO} (one cold key, a new connection each) to a node on loopback; the hub answers after {hub_delay:?}"
    );
    println!(
        "upstream calls       {upstream_calls:>10}   goal {GOAL_UPSTREAM_CALLS}: {}",
        verdict(upstream_calls == GOAL_UPSTREAM_CALLS)
    );
    println!(
        "answered 200 OK      {answered:>10}   goal {herd}: {}",
        verdict(answered == herd)
    );
    println!(
        "hub alone            {:>10}   median of 5 direct requests: the baseline",
        ms(hub_time)
    );
    println!(
        "latency p50          {:>10}   {:.2}x the hub alone",
        ms(p50),
        over_hub(p50)
    );
    println!(
        "latency p99          {:>10}   {:.2}x the hub alone; goal < {}: {}",
        ms(p99),
        over_hub(p99),
        ms(GOAL_P99),
        verdict(p99 < GOAL_P99)
    );
    println!(
        "latency max          {:>10}   {:.2}x the hub alone",
        ms(*latencies.last().expect("a herd")),
        over_hub(*latencies.last().expect("a herd"))
    );
    println!(
        "from the herd's start: p99 {}, all answered after {}; the last visitor sent after {}",
        ms(percentile(&waits, 99.0)),
        ms(*waits.last().expect("a herd")),
        ms(*send_spread.last().expect("a herd")),
    );
    for line in lookups {
        println!("node metric: {line}");
    }
}
