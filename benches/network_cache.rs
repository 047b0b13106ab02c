//! Network-cache benchmark: does the network behave like one cache in front of Docker Hub?
//! Five real node processes on 127.0.0.2 … 127.0.0.6, each asking the hub from its own
//! address (`--hub-source-address`), so the fake hub sees five clients; the hub, as Docker
//! Hub does, allows each source address [`LIMIT`] requests a minute and answers 429 with
//! `Retry-After` past that. Each phase runs once with `--fill off` (the baseline: every node
//! asks the hub for everything it is asked about) and once with `--fill on`, each time on a
//! fresh hub and five fresh nodes (so no limit window or cache carries over), in one run:
//!
//! - **One entry.** Distinct badges, `/docker/pulls/bench/repo-N` (one repository resource
//!   each, one hub request each), at 4 × [`LIMIT`] a minute for 60 s, all through the first
//!   node: the share of badges that say "rate limited". With fill off the entry node gets
//!   [`LIMIT`] through, then waits out the hub's `Retry-After`: about 75 %. Goal with fill
//!   on: at most 1 % (the five owners together may ask 5 × [`LIMIT`]).
//! - **Random entry.** Each of [`RANDOM_BADGES`] distinct badges asked [`ASKS`] times, each
//!   time through a node drawn at random (seeded): hub requests per distinct resource over
//!   the whole network, from the hub's per-path counts. With fill off that is the number of
//!   distinct nodes a badge came through (3.4 on average for 5 draws from 5). Goal ≤ 1.1.
//!   The load stays under every address's limit here, so only sharing can lower it. With
//!   fill on, a warm-up of twice as many other badges runs first and is printed apart: a
//!   fresh network checks the first fill of every pair of nodes against the hub and one of
//!   each pair's next four (40 checks for five nodes, once per pair for as long as the nodes
//!   run), and the goal's figure is the steady state after them, where one fill in 64 is
//!   checked.
//!
//! With fill on, the one-entry phase is preceded by such a warm-up too ([`ONE_ENTRY_WARMUP`]
//! badges through random nodes), and then waits out the hub's window, so that its minute
//! starts from a network past its first checks and from a full limit at every address.
//!
//! The nodes' own limits must not be what limits: `--hub-rate` is [`HUB_RATE`] a minute,
//! and with it a client's share of a node's budget (a quarter of `--hub-rate` per IPv4 /24,
//! and all of 127.0.0.x, the benchmark's client and every node, is one /24) is 2,500 a
//! minute, far above either phase's load. Gossip and probes run every few hundred
//! milliseconds, and the workload starts only once every node lists all five in `/servers`.
//!
//! `cargo bench --bench network_cache` (about 5 minutes). Traffic goes to loopback only;
//! the benchmark ends the node processes it started, by pid, however it ends. Without
//! `--bench` (as `cargo test --benches` runs it) it checks the measuring on two nodes and a
//! handful of badges with fill off, in a few seconds.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dockerhub_build_status::demo::sample_hub::FakeHub;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

/// The node binary cargo built for this benchmark.
const NODE_BIN: &str = env!("CARGO_BIN_EXE_dockerhub-build-status");

/// Requests per source address the fake hub allows in any [`WINDOW`] (L).
const LIMIT: usize = 60;
/// Docker Hub's window.
const WINDOW: Duration = Duration::from_secs(60);
const NODES: usize = 5;
/// How long the one-entry workload runs, and its rate: 4 × L a minute.
const ONE_ENTRY_TIME: Duration = Duration::from_secs(60);
const ONE_ENTRY_BADGES: usize = 4 * LIMIT;
/// Distinct badges of the random-entry phase, each asked [`ASKS`] times, [`RANDOM_PACE`]
/// requests a second: with fill off each node asks the hub for about two thirds of them,
/// 34 of its 60.
const RANDOM_BADGES: usize = 50;
const ASKS: usize = 5;
const RANDOM_PACE: u32 = 20;
/// The warm-up's badges (fill on only) start here, apart from the measured ones.
const WARMUP_FIRST: usize = 500;
/// Badges of the random-entry warm-up: enough for every pair of nodes to pass its first
/// checks (about five fills each; each badge is filled about 2.7 times, over 20 pairs).
const RANDOM_WARMUP: usize = 2 * RANDOM_BADGES;
/// Badges of the one-entry warm-up, asked [`ASKS`] times through random nodes.
const ONE_ENTRY_WARMUP: usize = 40;
/// `--hub-rate` of every node: high enough that neither its budget nor a client's quarter
/// of it is what limits.
const HUB_RATE: u32 = 10_000;
const GOSSIP: &str = "300ms";
const PROBE: &str = "400ms";
/// The organization whose `repo-N` the fake hub makes up.
const ORG: &str = "bench";

/// The goals.
const GOAL_RATE_LIMITED: f64 = 0.01;
const GOAL_PER_RESOURCE: f64 = 1.1;

/// The two settings of `--fill`, baseline first.
const FILLS: [&str; 2] = ["off", "on"];

/// One node process, killed (by its pid) and its folder removed on drop, so the benchmark
/// never leaves a server behind, whatever ends it.
struct NodeProcess {
    ip: IpAddr,
    url: String,
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    command_line: String,
}

impl NodeProcess {
    /// What the node wrote to stderr (its log), for a failure's message.
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fake hub and the nodes in front of it.
struct Network {
    hub: FakeHub,
    nodes: Vec<NodeProcess>,
}

/// A port that was free on `ip` a moment ago: the node must be told its public URL, so it
/// cannot pick its own port.
fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind {ip}: {e} (needs Linux's whole 127.0.0.0/8)"))
}

/// Starts `count` nodes on 127.0.0.2 onwards in front of a fresh hub limiting each address
/// to `limit` a minute, each node's peers file naming the others; returns once every node
/// lists all of them.
async fn start_network(label: &str, count: usize, fill: &str, limit: usize) -> Network {
    let hub = FakeHub::start()
        .await
        .expect("start the fake hub")
        .with_source_limit(limit, WINDOW);
    hub.generate_repos(ORG);
    let ips: Vec<IpAddr> = (0..count)
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(i).expect("few"))))
        .collect();
    let urls: Vec<String> = ips
        .iter()
        .map(|ip| format!("http://{ip}:{}", free_port(*ip)))
        .collect();
    let mut nodes = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let dir = std::env::temp_dir().join(format!(
            "dbs-network-cache-{}-{label}-{i}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the node's folder");
        let peers: String = urls
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, url)| format!("[[peer]]\nurl = \"{url}\"\n"))
            .collect();
        std::fs::write(dir.join("peers.toml"), peers).expect("write peers.toml");
        let listen = urls[i].trim_start_matches("http://").to_owned();
        let args: Vec<String> = [
            "--listen",
            &listen,
            "--public-url",
            &urls[i],
            "--peers",
            &dir.join("peers.toml").display().to_string(),
            "--state-dir",
            &dir.join("state").display().to_string(),
            "--hub-url",
            &hub.url(),
            "--hub-source-address",
            &ip.to_string(),
            "--hub-rate",
            &HUB_RATE.to_string(),
            "--fill",
            fill,
            "--allow-private-peers",
            "--gossip-interval",
            GOSSIP,
            "--probe-interval",
            PROBE,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let log = dir.join("node.log");
        let mut command = Command::new(NODE_BIN);
        command
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the node's log"));
        // The developer's own settings must not change what is measured.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("DBS_") {
                command.env_remove(name);
            }
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NODE_BIN}: {e}"));
        nodes.push(NodeProcess {
            ip: *ip,
            url: urls[i].clone(),
            child,
            dir,
            log,
            command_line: format!("RUST_LOG=warn dockerhub-build-status {}", args.join(" ")),
        });
    }
    let mut network = Network { hub, nodes };
    network.wait_listed().await;
    network
}

impl Network {
    /// Waits until every node lists every node in `/servers`, for at most a minute; fails
    /// with the node's log if one ends first.
    async fn wait_listed(&mut self) {
        let mut expected: Vec<String> = self.nodes.iter().map(|n| n.url.clone()).collect();
        expected.sort();
        let client = client();
        let started = Instant::now();
        loop {
            let mut all = true;
            for node in &mut self.nodes {
                if let Ok(Some(status)) = node.child.try_wait() {
                    panic!(
                        "node {} ended ({status}) before the network formed:\n{}",
                        node.url,
                        node.log_text()
                    );
                }
                if all && listed(&client, &node.url).await.as_ref() != Some(&expected) {
                    all = false;
                }
            }
            if all {
                println!(
                    "  {} nodes list all {} after {:.1} s",
                    self.nodes.len(),
                    self.nodes.len(),
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the nodes did not all list each other within a minute; first node's log:\n{}",
                self.nodes[0].log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The fill series of every node's `/metrics`, summed over the nodes: each
    /// `dbs_fills_total{role,outcome}` and `dbs_fill_verifications_total{result}` series
    /// by its labels. Empty with a build that has no fills.
    async fn fill_counts(&self) -> std::collections::BTreeMap<String, f64> {
        let client = client();
        let mut sums = std::collections::BTreeMap::new();
        for node in &self.nodes {
            let Ok(response) = client.get(format!("{}/metrics", node.url)).send().await else {
                continue;
            };
            let text = response.text().await.unwrap_or_default();
            for line in text.lines().filter(|l| l.starts_with("dbs_fill")) {
                if let Some((series, value)) = line.rsplit_once(' ')
                    && let Ok(value) = value.parse::<f64>()
                {
                    *sums.entry(series.to_owned()).or_default() += value;
                }
            }
        }
        sums
    }

    /// The hub requests that checked a fill, summed over the nodes.
    async fn verifications(&self) -> (f64, String) {
        let counts = self.fill_counts().await;
        let checks = counts
            .iter()
            .filter(|(series, _)| series.starts_with("dbs_fill_verifications_total"))
            .fold(0.0, |sum, (_, v)| sum + v);
        let shown = counts
            .iter()
            .map(|(series, v)| format!("{series} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        (checks, shown)
    }

    /// The hub's requests by source address, in the nodes' order.
    fn by_source(&self) -> String {
        let counts = self.hub.requests_by_source();
        self.nodes
            .iter()
            .map(|n| format!("{} {}", n.ip, counts.get(&n.ip).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A client for the nodes: no proxy, a timeout well above any answer's.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client")
}

/// The URLs a node lists in `/servers`, sorted.
async fn listed(client: &reqwest::Client, url: &str) -> Option<Vec<String>> {
    let response = client
        .get(format!("{url}/servers"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    let mut urls: Vec<String> = body["servers"]
        .as_array()?
        .iter()
        .filter_map(|s| s["url"].as_str().map(str::to_owned))
        .collect();
    urls.sort();
    Some(urls)
}

/// What one badge said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    /// The right pull count.
    Right,
    RateLimited,
    /// Anything else (another error, a wrong count, no answer), as said.
    Other(String),
}

/// Asks `node` for the pulls badge of `bench/repo-N` and reads its message, the SVG's
/// `aria-label` (`docker pulls: …`).
async fn pulls_badge(client: &reqwest::Client, node: &str, n: usize) -> Said {
    let url = format!("{node}/docker/pulls/{ORG}/repo-{n}");
    let body = match client.get(&url).send().await {
        Ok(response) => match response.text().await {
            Ok(body) => body,
            Err(e) => return Said::Other(format!("{url}: {e}")),
        },
        Err(e) => return Said::Other(format!("{url}: {e}")),
    };
    let label = body
        .split_once("aria-label=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(label, _)| label);
    // The counts asked for stay below 1,000, so the badge shows them whole.
    if label == format!("docker pulls: {n}") {
        Said::Right
    } else if label.contains("rate limited") {
        Said::RateLimited
    } else {
        Said::Other(format!("{url}: {label:?}"))
    }
}

/// Counts of what the badges said.
#[derive(Debug, Default)]
struct Tally {
    right: usize,
    rate_limited: usize,
    other: Vec<String>,
}

impl Tally {
    fn add(&mut self, said: Said) {
        match said {
            Said::Right => self.right += 1,
            Said::RateLimited => self.rate_limited += 1,
            Said::Other(what) => self.other.push(what),
        }
    }

    fn total(&self) -> usize {
        self.right + self.rate_limited + self.other.len()
    }

    fn rate_limited_share(&self) -> f64 {
        self.rate_limited as f64 / self.total().max(1) as f64
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "{} right, {} rate limited, {} other",
            self.right,
            self.rate_limited,
            self.other.len()
        );
        if let Some(first) = self.other.first() {
            text.push_str(&format!(" (first: {first})"));
        }
        text
    }
}

/// Sends `requests` (badge number, node index) paced evenly over `over`, each in its own
/// task so a slow answer delays no other, and tallies the answers.
async fn paced(
    network: &Network,
    requests: Vec<(usize, usize)>,
    over: Duration,
) -> (Tally, Duration) {
    let client = client();
    let step = over / u32::try_from(requests.len().max(1)).unwrap_or(u32::MAX);
    let started = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (n, node)) in requests.into_iter().enumerate() {
        let client = client.clone();
        let url = network.nodes[node].url.clone();
        let at = started + step * u32::try_from(i).unwrap_or(u32::MAX);
        tasks.spawn(async move {
            tokio::time::sleep_until(at).await;
            pulls_badge(&client, &url, n).await
        });
    }
    let mut tally = Tally::default();
    while let Some(said) = tasks.join_next().await {
        tally.add(said.unwrap_or_else(|e| Said::Other(format!("task failed: {e}"))));
    }
    (tally, started.elapsed())
}

/// The one-entry phase: `badges` distinct badges evenly over `over`, all through node 0.
async fn one_entry(network: &Network, first: usize, badges: usize, over: Duration) -> Tally {
    let requests = (first..first + badges).map(|n| (n, 0)).collect();
    let (tally, took) = paced(network, requests, over).await;
    let (_, fills) = network.verifications().await;
    println!(
        "  one entry: {badges} badges in {:.1} s through {}: {}; hub requests by source: {}; \
         hub requests in all: {}; fill metrics: [{fills}]",
        took.as_secs_f64(),
        network.nodes[0].url,
        tally.describe(),
        network.by_source(),
        network.hub.request_count()
    );
    tally
}

/// What the random-entry phase measured.
struct Spread {
    tally: Tally,
    /// Hub requests per distinct resource.
    per_resource: f64,
    /// Distinct entry nodes per badge: what fill off costs per resource.
    entries_per_badge: f64,
    /// Of the hub requests per resource, those that checked a fill against the hub (the
    /// first fill from each owner, then a sample).
    checks_per_resource: f64,
    /// Each (badge, node) pair that was asked at least once.
    entries: HashSet<(usize, usize)>,
}

/// The random-entry phase: each of `badges` badges `asks` times through random nodes, in a
/// shuffled order, `RANDOM_PACE` a second.
async fn random_entry(
    network: &Network,
    first: usize,
    badges: usize,
    asks: usize,
    seed: u64,
) -> Spread {
    let mut rng = StdRng::seed_from_u64(seed);
    let nodes = network.nodes.len();
    let (checks_before, _) = network.verifications().await;
    let mut requests: Vec<(usize, usize)> = (first..first + badges)
        .flat_map(|n| std::iter::repeat_n(n, asks))
        .map(|n| (n, rng.random_range(0..nodes)))
        .collect();
    // Fisher–Yates: the asks of one badge spread over the whole phase.
    for i in (1..requests.len()).rev() {
        let j = rng.random_range(0..=i);
        requests.swap(i, j);
    }
    let entries: HashSet<(usize, usize)> = requests.iter().copied().collect();
    let over = Duration::from_secs_f64(requests.len() as f64 / f64::from(RANDOM_PACE));
    let (tally, took) = paced(network, requests, over).await;
    let counts = network.hub.requests_by_path();
    // Checks run in the background after a fill: give the last ones time to be counted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let upstream: usize = (first..first + badges)
        .map(|n| {
            counts
                .get(&format!("/v2/namespaces/{ORG}/repositories/repo-{n}"))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    let (checks_after, fills) = network.verifications().await;
    let checks = checks_after - checks_before;
    let spread = Spread {
        per_resource: upstream as f64 / badges.max(1) as f64,
        checks_per_resource: checks / badges.max(1) as f64,
        entries_per_badge: entries.len() as f64 / badges.max(1) as f64,
        entries,
        tally,
    };
    println!(
        "  random entry: {badges} badges x {asks} asks in {:.1} s: {}; {upstream} hub requests \
         for them ({:.2} per resource, {:.2} distinct entry nodes per badge); hub requests by \
         source: {}; hub requests in all: {}; fill metrics: [{fills}]",
        took.as_secs_f64(),
        spread.tally.describe(),
        spread.per_resource,
        spread.entries_per_badge,
        network.by_source(),
        counts.values().sum::<usize>()
    );
    spread
}

fn met(yes: bool) -> &'static str {
    if yes { "goal met" } else { "goal not met" }
}

/// `on / off`, or `-` when the baseline is zero.
fn ratio(on: f64, off: f64) -> String {
    if off > 0.0 {
        format!("{:.2}x", on / off)
    } else {
        "-".into()
    }
}

async fn bench() {
    println!(
        "network_cache: {NODES} node processes on 127.0.0.2-127.0.0.{}, the hub allowing {LIMIT} \
         requests per {} s per source address, --hub-rate {HUB_RATE}",
        1 + NODES,
        WINDOW.as_secs()
    );
    let mut one = HashMap::new();
    for fill in FILLS {
        println!("one entry, --fill {fill}:");
        let network = start_network(&format!("one-{fill}"), NODES, fill, LIMIT).await;
        if fill == "on" {
            // The first checks of every pair of nodes, then a fresh window at every address.
            println!("  warm-up (not the goal's figure: a fresh network's first checks):");
            random_entry(&network, WARMUP_FIRST, ONE_ENTRY_WARMUP, ASKS, 3).await;
            tokio::time::sleep(WINDOW + Duration::from_secs(1)).await;
        }
        if fill == FILLS[0] {
            println!("  node command lines (DIR is each node's own folder):");
            for node in &network.nodes {
                let line = node
                    .command_line
                    .replace(&node.dir.display().to_string(), "DIR");
                println!("    {line}");
            }
        }
        one.insert(
            fill,
            one_entry(&network, 0, ONE_ENTRY_BADGES, ONE_ENTRY_TIME).await,
        );
    }
    let mut random = HashMap::new();
    let mut cold: Option<Spread> = None;
    for fill in FILLS {
        println!("random entry, --fill {fill}:");
        let network = start_network(&format!("random-{fill}"), NODES, fill, LIMIT).await;
        if fill == "on" {
            // A network that has run a while has made the first checks of every node pair
            // (40 for five nodes) long ago; a fresh one pays them now. They are counted
            // here, on badges of their own, and the figure of the goal is the network's
            // steady state after them. Fill off has nothing to warm up (no checks, no
            // trust), and warming it would push its nodes into the hub's limit.
            println!("  warm-up (not the goal's figure: a fresh network's first checks):");
            let warm = random_entry(&network, WARMUP_FIRST, RANDOM_WARMUP, ASKS, 5).await;
            println!(
                "    a fresh network: {:.2} hub requests per resource, {:.2} of them checks",
                warm.per_resource, warm.checks_per_resource
            );
            cold = Some(warm);
        }
        random.insert(
            fill,
            random_entry(&network, 0, RANDOM_BADGES, ASKS, 17).await,
        );
    }

    let limited = |fill: &str| one[fill].rate_limited_share();
    let spread = |fill: &str| random[fill].per_resource;
    println!();
    println!(
        "{:<44} {:>9} {:>9} {:>8}  {:<9} result",
        "", "fill off", "fill on", "on/off", "goal"
    );
    println!(
        "{:<44} {:>8.1}% {:>8.1}% {:>8}  {:<9} {}",
        "one entry: badges saying rate limited",
        100.0 * limited("off"),
        100.0 * limited("on"),
        ratio(limited("on"), limited("off")),
        format!("<= {:.0}%", 100.0 * GOAL_RATE_LIMITED),
        met(limited("on") <= GOAL_RATE_LIMITED)
    );
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>8}  {:<9} {}",
        "random entry: hub requests per resource",
        spread("off"),
        spread("on"),
        ratio(spread("on"), spread("off")),
        format!("<= {GOAL_PER_RESOURCE:.1}"),
        met(spread("on") <= GOAL_PER_RESOURCE)
    );
    let checks = |fill: &str| random[fill].checks_per_resource;
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>8}  {:<9} (not a goal: fills checked against the hub)",
        "  of which checks of a fill",
        checks("off"),
        checks("on"),
        "",
        ""
    );
    println!(
        "{:<44} {:>9.2} {:>9.2} {:>8}  {:<9} (not a goal: the fetches alone)",
        "  without them",
        spread("off") - checks("off"),
        spread("on") - checks("on"),
        ratio(spread("on") - checks("on"), spread("off") - checks("off")),
        ""
    );
    if let Some(cold) = &cold {
        println!(
            "{:<44} {:>9} {:>9.2} {:>8}  {:<9} (not a goal: a fresh network, first checks included)",
            "  a fresh network (the warm-up)", "", cold.per_resource, "", ""
        );
    }
    for fill in FILLS {
        let wrong = one[fill].other.len() + random[fill].tally.other.len();
        if wrong > 0 {
            println!("warning: --fill {fill}: {wrong} badges said something else (see above)");
        }
    }
}

/// Without `--bench`: two nodes, fill off, a limit of [`SMOKE_LIMIT`]; the counting that
/// the benchmark's figures rest on must come out exactly as fill off predicts.
async fn smoke() {
    const SMOKE_LIMIT: usize = 4;
    let network = start_network("smoke", 2, "off", SMOKE_LIMIT).await;
    // Random entry first, while both addresses have their whole limit: each node asks the
    // hub once per badge it was asked for, never more.
    let spread = random_entry(&network, 0, 3, 2, 1).await;
    assert_eq!(spread.tally.right, 6, "{}", spread.tally.describe());
    assert!(
        (spread.per_resource - spread.entries_per_badge).abs() < 1e-9,
        "fill off: one hub request per entry node and badge"
    );
    let by_source = network.hub.requests_by_source();
    for (i, node) in network.nodes.iter().enumerate() {
        let entered = spread.entries.iter().filter(|(_, at)| *at == i).count();
        assert_eq!(
            by_source.get(&node.ip).copied().unwrap_or(0),
            entered,
            "{} asks the hub from its own address, once per badge it was asked",
            node.ip
        );
    }
    let used = by_source.get(&network.nodes[0].ip).copied().unwrap_or(0);
    assert!(used < SMOKE_LIMIT, "{used}");
    // Then one entry: what is left of the first node's limit, then "rate limited".
    let badges = 6;
    let tally = one_entry(&network, 10, badges, Duration::from_millis(900)).await;
    assert_eq!(tally.right, SMOKE_LIMIT - used, "{}", tally.describe());
    assert_eq!(
        tally.rate_limited,
        badges - tally.right,
        "{}",
        tally.describe()
    );
    assert!(network.hub.limited_count() >= 1);
    let sources: HashSet<IpAddr> = network.hub.requests_by_source().into_keys().collect();
    let expected: HashSet<IpAddr> = network.nodes.iter().map(|n| n.ip).collect();
    assert_eq!(sources, expected, "each node asks from its own address");
    println!("network_cache: smoke run only; `cargo bench --bench network_cache` measures");
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // However this ends, a panic included, dropping each NodeProcess ends its node.
    if std::env::args().any(|arg| arg == "--bench") {
        runtime.block_on(bench());
    } else {
        runtime.block_on(smoke());
    }
}
