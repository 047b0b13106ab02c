//! status.js + status.svg in a real browser: headless Chromium against three real node
//! processes (the built binary) in front of a fake Docker Hub, with the badge served both by
//! a static file server and by a node, and with fake nodes that lie or list junk URLs.
//!
//! The cases share one cluster and one browser (starting them is most of the cost) and run in
//! order, the destructive ones last. Each case is recorded on its own and the test fails at
//! the end listing every case that failed, so one broken case does not hide the others.
//! Every browser run has a real-time deadline; see `tests/chromium/mod.rs` for why Chromium
//! is driven over `--remote-debugging-pipe` rather than with `--dump-dom`.

mod chromium;
mod common;

use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chromium::Browser;
use common::process::{ChildGuard, NODE_BIN, TempDir, free_port};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo};
use dockerhub_build_status::federation::rendezvous;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The browser tests take turns: two Chromiums at once on a two-core machine would make
/// the timing cases measure the machine instead of the script.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ORGANIZATION: &str = "demo";
/// Gossip-learned nodes start on probation and need about 14 good probes (200 ms apart) to
/// be listed, so a healthy federation of three settles in 3–4 s.
const FEDERATION_DEADLINE: Duration = Duration::from_secs(15);
/// How long a case waits for a settled network before it starts.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);
/// status.js's default time budget.
const BUDGET: Duration = Duration::from_secs(4);
/// Loading the SVG and the script from loopback, on top of the script's own budget.
const LOAD_MARGIN: Duration = Duration::from_secs(1);
/// The status.js contract: with the top-ranked node dead the badge is right within this.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Node processes

/// One node process, killed and reaped on drop (see `ChildGuard`).
#[derive(Debug)]
struct NodeProcess {
    url: String,
    child: Option<ChildGuard>,
}

impl NodeProcess {
    fn spawn(port: u16, peers: &Path, state_dir: &Path, hub_url: &str) -> Self {
        let url = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(NODE_BIN);
        command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-url", &url])
            .arg("--allow-private-peers")
            .args(["--gossip-interval", "200ms", "--probe-interval", "200ms"])
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--peers")
            .arg(peers)
            .args(["--hub-url", hub_url]);
        // Neither the developer's settings nor a proxy may change what the test observes.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("DBS_")
                || name == "RUST_LOG"
                || name.to_ascii_lowercase().ends_with("_proxy")
            {
                command.env_remove(name);
            }
        }
        command.env("NO_PROXY", "*");
        NodeProcess {
            url,
            child: Some(ChildGuard::spawn(&mut command)),
        }
    }

    /// Kills the process (SIGKILL: a crash, no signed leave) and reaps it.
    fn kill(&mut self) {
        self.child = None;
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(ChildGuard::try_exit)
    }

    /// The last lines the node logged.
    fn log_tail(&self, lines: usize) -> String {
        let all = self
            .child
            .as_ref()
            .map(ChildGuard::stderr)
            .unwrap_or_default();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A short-timeout client for polling nodes.
fn poll_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

/// Three (or more) node processes sharing a peers file that names node 1, and the fake hub
/// they all ask. Field order: the nodes die before the hub and their folder.
struct Cluster {
    nodes: Vec<NodeProcess>,
    hub: FakeHub,
    _dir: TempDir,
    next_repo: usize,
}

impl Cluster {
    async fn start(count: usize) -> Cluster {
        let hub = FakeHub::start().await.expect("start the fake hub");
        hub.set_repo(
            &format!("{ORGANIZATION}/sample"),
            FakeRepo::with_builds(&[("latest", 10)]),
        );
        let dir = TempDir::new("browser-cluster");
        let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let peers = dir.write(
            "peers.toml",
            &format!("[[peer]]\nurl = \"http://127.0.0.1:{}\"\n", ports[0]),
        );
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, &port)| {
                let state = dir.path().join(format!("state-{}", i + 1));
                NodeProcess::spawn(port, &peers, &state, &hub.url())
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            hub,
            _dir: dir,
            next_repo: 0,
        };
        cluster.wait_healthy().await;
        cluster
    }

    async fn wait_healthy(&mut self) {
        let client = poll_client();
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &mut self.nodes {
            loop {
                if let Some(status) = node.exited() {
                    panic!(
                        "node {} exited at start ({status}):\n{}",
                        node.url,
                        node.log_tail(20)
                    );
                }
                let health = client.get(format!("{}/health", node.url)).send().await;
                if matches!(&health, Ok(r) if r.status() == 200) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} did not answer /health within 20 s:\n{}",
                    node.url,
                    node.log_tail(20)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    /// A fresh repository (so no cache anywhere has seen it) that the hub knows as built
    /// successfully, and whose rendezvous ranking over `urls` puts `first` first when given.
    fn new_repo(&mut self, urls: &[String], first: Option<&str>) -> (String, Vec<String>) {
        loop {
            let name = format!("app-{}", self.next_repo);
            self.next_repo += 1;
            let order = ranking(urls, &name);
            if first.is_none_or(|want| order[0] == want) {
                self.hub.set_repo(
                    &format!("{ORGANIZATION}/{name}"),
                    FakeRepo::with_builds(&[("latest", 10)]),
                );
                return (name, order);
            }
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.url, n.log_tail(8)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The order status.js asks `urls` in for `repository`, by the node's own rendezvous
/// function. Every node here has the default weight 1.
fn ranking(urls: &[String], repository: &str) -> Vec<String> {
    let key = rendezvous::item_key(ORGANIZATION, repository, "latest");
    rendezvous::rank(urls, &key, |u| u.as_str(), |_| 1.0)
        .into_iter()
        .cloned()
        .collect()
}

/// The URLs a node's `/servers` lists, in the canonical form status.js uses (no trailing
/// slash), or `None` when it does not answer with a `servers` array.
async fn listed_servers(client: &reqwest::Client, node: &str) -> Option<Vec<String>> {
    let response = client.get(format!("{node}/servers")).send().await.ok()?;
    let body: Value = response.json().await.ok()?;
    let mut urls: Vec<String> = body["servers"]
        .as_array()?
        .iter()
        .filter_map(|s| s["url"].as_str())
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    urls.sort();
    Some(urls)
}

/// Waits until every node's `/servers` lists exactly the cluster's nodes.
async fn wait_federated(cluster: &Cluster, within: Duration) -> Outcome {
    let client = poll_client();
    let mut want = cluster.urls();
    want.sort();
    let deadline = Instant::now() + within;
    loop {
        let mut seen = Vec::new();
        for url in &want {
            seen.push((url.clone(), listed_servers(&client, url).await));
        }
        if seen
            .iter()
            .all(|(_, listed)| listed.as_ref() == Some(&want))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "after {within:?} the nodes' /servers lists were {seen:?}, \
                 not all of {want:?}\n{}",
                cluster.logs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cases whose expected node follows from the full network first wait for it to be settled:
/// with 200 ms probes a node's probe timeout is 100 ms, which a loaded machine can miss, and
/// a node that missed two drops out of a peer's list for a few seconds. When the network
/// never settled at all (`federated` false; the federation case says so) there is nothing
/// to wait for: the case runs at once and shows what works without the federation.
async fn settled(cluster: &Cluster, federated: bool) -> Outcome {
    if !federated {
        return Ok(());
    }
    wait_federated(cluster, SETTLE_DEADLINE)
        .await
        .map_err(|e| format!("the network was not settled before the case: {e}"))
}

/// Adds what every node's `/servers` lists now to a failure, so a wrong choice by status.js
/// can be told apart from a network view that changed during the run.
async fn explain(cluster: &Cluster, outcome: Outcome) -> Outcome {
    let Err(err) = outcome else {
        return Ok(());
    };
    let client = poll_client();
    let mut views = Vec::new();
    for url in cluster.urls() {
        let listed = listed_servers(&client, &url).await;
        views.push(format!("  {url} lists {listed:?}"));
    }
    Err(format!(
        "{err}
/servers after the run:\n{}",
        views.join("\n")
    ))
}

// ---------------------------------------------------------------------------------------------
// Servers in the test process: the static host and fake nodes

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }
}

/// A tiny HTTP server on `127.0.0.1:0` answering every request with `handler(path?query)`,
/// with the CORS header nodes send, and remembering what it was asked.
struct Stub {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Stub {
    async fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a stub");
        let url = format!("http://{}", listener.local_addr().expect("stub address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let log = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let target = request
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_owned();
                        log.lock().expect("stub log").push(target.clone());
                        let reply = handler(&target);
                        let response = Response::builder()
                            .status(reply.status)
                            .header("content-type", reply.content_type)
                            .header("access-control-allow-origin", "*")
                            .header("cache-control", "no-store")
                            .body(Full::new(Bytes::from(reply.body)))
                            .expect("a stub response");
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Stub {
            url,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("stub log").clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The static host: the repository's own status.svg and status.js, nothing else.
async fn static_host() -> Stub {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let svg = std::fs::read_to_string(root.join("status.svg")).expect("read status.svg");
    let js = std::fs::read_to_string(root.join("status.js")).expect("read status.js");
    Stub::start(move |target| {
        let path = target.split('?').next().unwrap_or("");
        match path {
            "/status.svg" => Reply {
                status: 200,
                content_type: "image/svg+xml",
                body: svg.clone(),
            },
            "/status.js" => Reply {
                status: 200,
                content_type: "application/javascript",
                body: js.clone(),
            },
            _ => Reply {
                status: 404,
                content_type: "text/plain",
                body: "not found".into(),
            },
        }
    })
    .await
}

/// A fake node whose `/servers` answers `servers` and whose `/build` always fails (503), so
/// it never serves a badge itself.
async fn fake_node(servers: Value) -> Stub {
    Stub::start(move |target| {
        if target.starts_with("/servers") {
            Reply::json(200, json!({"node": "fake", "servers": servers.clone()}))
        } else {
            Reply::json(503, json!({"request": "error", "description": "fake node"}))
        }
    })
    .await
}

/// A server that must never be asked: it would answer every `/build` with a failed build.
async fn evil_node() -> Stub {
    Stub::start(|_| Reply::json(200, json!({"request": "ok", "status": -1}))).await
}

/// Accepts connections and never answers: a hung node.
struct Silent {
    url: String,
    task: JoinHandle<()>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Silent { url, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// Running the badge in the browser

/// What the badge looked like when it was done, or when the deadline passed.
#[derive(Debug, Default)]
struct BadgeRun {
    url: String,
    elapsed: Duration,
    state: Option<String>,
    message: Option<String>,
    server: Option<String>,
    label: Option<String>,
    status: Option<String>,
    title: Option<String>,
    dom: String,
}

impl BadgeRun {
    fn summary(&self) -> String {
        format!(
            "{}\n  after {:?}: data-state={:?} data-message={:?} data-server={:?} \
             label={:?} status={:?}",
            self.url, self.elapsed, self.state, self.message, self.server, self.label, self.status
        )
    }

    /// Done, showing `message`, within `deadline`.
    fn expect_done(&self, message: &str, deadline: Duration) -> Result<(), String> {
        let shown_done = self.state.as_deref() == Some("done")
            && self.message.as_deref() == Some(message)
            && self.status.as_deref() == Some(message);
        if shown_done && self.elapsed <= deadline {
            Ok(())
        } else {
            Err(format!(
                "expected `{message}` within {deadline:?}, got {}",
                self.summary()
            ))
        }
    }

    fn expect_server(&self, want: &str, why: &str) -> Result<(), String> {
        if self.server.as_deref() == Some(want) {
            Ok(())
        } else {
            Err(format!(
                "expected data-server {want} ({why}), got {}",
                self.summary()
            ))
        }
    }
}

const IS_DONE: &str = "document.documentElement !== null \
    && document.documentElement.getAttribute('data-state') === 'done'";

const SNAPSHOT: &str = "(() => {
    const root = document.documentElement;
    const text = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
    return {
        state: root && root.getAttribute('data-state'),
        message: root && root.getAttribute('data-message'),
        server: root && root.getAttribute('data-server'),
        label: text('name'), status: text('status'), title: text('title'),
        dom: new XMLSerializer().serializeToString(document),
    };
})()";

/// Opens `url` in a fresh browser context and waits until the badge is done or `deadline`
/// (real time, counted from the navigation) has passed.
async fn show_badge(browser: &mut Browser, url: &str, deadline: Duration) -> BadgeRun {
    let mut run = BadgeRun {
        url: url.to_owned(),
        ..BadgeRun::default()
    };
    let tab = match browser.new_tab().await {
        Ok(tab) => tab,
        Err(err) => {
            run.dom = format!("(no tab: {err})");
            return run;
        }
    };
    let started = Instant::now();
    if let Err(err) = browser.navigate(&tab, url).await {
        run.dom = format!("(navigation failed: {err})");
        browser.close_tab(tab).await;
        return run;
    }
    browser.wait_for(&tab, IS_DONE, started + deadline).await;
    run.elapsed = started.elapsed();
    match browser.evaluate(&tab, SNAPSHOT).await {
        Ok(snapshot) => {
            let field = |name: &str| snapshot[name].as_str().map(str::to_owned);
            run.state = field("state");
            run.message = field("message");
            run.server = field("server");
            run.label = field("label");
            run.status = field("status");
            run.title = field("title");
            run.dom = field("dom").unwrap_or_default();
        }
        Err(err) => run.dom = format!("(no snapshot: {err})"),
    }
    browser.close_tab(tab).await;
    eprintln!(
        "  {:?}: {:?} from {:?}",
        run.elapsed,
        run.message.as_deref().unwrap_or("(not done)"),
        run.server.as_deref().unwrap_or("-")
    );
    run
}

/// `base?query` with every value form-encoded, as a page author would link it.
fn page_url(base: &str, params: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{base}?{query}")
}

/// Where the badge pair is served from.
#[derive(Debug, Clone, Copy)]
enum Served<'a> {
    /// `status.svg` on the static host.
    Statically(&'a str),
    /// `/static/status.svg` on a node.
    ByNode(&'a str),
}

impl Served<'_> {
    fn svg(self) -> String {
        match self {
            Served::Statically(host) => format!("{host}/status.svg"),
            Served::ByNode(node) => format!("{node}/static/status.svg"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cases

/// The badge shows `ok`, answered by the node the rendezvous ranking puts first.
async fn case_ok(browser: &mut Browser, cluster: &mut Cluster, served: Served<'_>) -> Outcome {
    let urls = cluster.urls();
    let (repo, order) = cluster.new_repo(&urls, None);
    let url = page_url(
        &served.svg(),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &urls.join(",")),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
    run.expect_server(&order[0], "the top of the rendezvous ranking")
}

/// A label full of markup is shown as text: the DOM holds it as escaped text, and no element
/// or event handler was added.
async fn case_markup(browser: &mut Browser, cluster: &mut Cluster, served: Served<'_>) -> Outcome {
    // 42 characters: under status.js's 48-character cap, so it must be shown whole.
    let text = r#"<img src=x onerror=alert(1)><b>&amp;"'</b>"#;
    let urls = cluster.urls();
    let (repo, _) = cluster.new_repo(&urls, None);
    let url = page_url(
        &served.svg(),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("text", text),
            ("servers", &urls.join(",")),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
    if run.label.as_deref() != Some(text) || run.title.as_deref() != Some(&format!("{text}: ok")) {
        return Err(format!(
            "label {:?} / title {:?} are not the text as given\n{}",
            run.label,
            run.title,
            run.summary()
        ));
    }
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    if !run.dom.contains(&escaped) {
        return Err(format!(
            "the dumped DOM lacks the escaped text {escaped}:\n{}",
            run.dom
        ));
    }
    let elements = |xml: &str| -> Result<Vec<String>, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| format!("{e}: {xml}"))?;
        let mut names: Vec<String> = doc
            .descendants()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name().to_owned())
            .collect();
        names.sort();
        Ok(names)
    };
    let before = elements(include_str!("../status.svg"))?;
    let after = elements(&run.dom)?;
    if before != after {
        return Err(format!(
            "elements changed from {before:?} to {after:?}:\n{}",
            run.dom
        ));
    }
    let doc = roxmltree::Document::parse(&run.dom).map_err(|e| e.to_string())?;
    if let Some(handler) = doc
        .descendants()
        .flat_map(|n| n.attributes())
        .find(|a| a.name().to_ascii_lowercase().starts_with("on"))
    {
        return Err(format!("an event handler appeared: {handler:?}"));
    }
    Ok(())
}

/// A `/servers` answer that lists the real nodes plus `javascript:`, `data:` and other
/// non-plain URLs (with the highest weight, so they would be asked first) changes nothing:
/// the junk is never asked, and the badge comes from the top-ranked real node. The fake node
/// is the only bootstrap node, so its answer is believed and URL filtering is the only guard.
async fn case_junk_urls(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
) -> Outcome {
    let evil = evil_node().await;
    let evil_port = evil.url.rsplit(':').next().unwrap_or_default().to_owned();
    let urls = cluster.urls();
    let mut servers: Vec<Value> = urls
        .iter()
        .map(|u| json!({"url": u, "key": "k", "weight": 1.0}))
        .collect();
    for junk in [
        "javascript:alert(document.domain)//".to_owned(),
        " JavaScript:fetch('//evil')".to_owned(),
        "java\nscript:alert(1)".to_owned(),
        "data:application/json,{\"request\":\"ok\",\"status\":-1}".to_owned(),
        format!("{}/?via=query", evil.url),
        format!("{}#fragment", evil.url),
        format!("http://user:secret@127.0.0.1:{evil_port}"),
        format!("//127.0.0.1:{evil_port}"),
        format!("ftp://127.0.0.1:{evil_port}"),
    ] {
        servers.push(json!({"url": junk, "key": "k", "weight": 1000.0}));
    }
    let lister = fake_node(Value::Array(servers)).await;
    let (repo, order) = cluster.new_repo(&urls, None);
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &lister.url),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
    run.expect_server(&order[0], "the top real node; junk entries are dropped")?;
    let asked = evil.requests();
    if !asked.is_empty() {
        return Err(format!("a junk URL was asked: {asked:?}"));
    }
    if !lister.requests().iter().any(|r| r.starts_with("/servers")) {
        return Err("the fake node was never asked for /servers".into());
    }
    Ok(())
}

/// One lying bootstrap node of three answers `/servers` with made-up servers (weight 1000)
/// and omits the real ones. Checked twice: the badge still comes from a real node and the
/// made-up servers are never asked (the majority outvotes the liar, or, before federation,
/// nobody agrees and the bootstrap list is used); and it comes from node 3, which is not a
/// bootstrap node and is known only from the honest nodes' `/servers`, as the top of the
/// honest ranking (this needs the federation: the honest nodes must list node 3).
async fn case_liar(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
) -> (Outcome, Outcome) {
    let evil = [evil_node().await, evil_node().await];
    let liar = fake_node(json!([
        {"url": evil[0].url, "key": "k", "weight": 1000.0},
        {"url": evil[1].url, "key": "k", "weight": 1000.0},
    ]))
    .await;
    let urls = cluster.urls();
    let (repo, order) = cluster.new_repo(&urls, Some(&urls[2]));
    let bootstrap = [urls[0].as_str(), urls[1].as_str(), liar.url.as_str()].join(",");
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &bootstrap),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    let real = (|| {
        run.expect_done("ok", BUDGET + LOAD_MARGIN)?;
        if !run.server.as_ref().is_some_and(|s| urls.contains(s)) {
            return Err(format!("not served by a real node: {}", run.summary()));
        }
        let asked: Vec<String> = evil.iter().flat_map(Stub::requests).collect();
        if !asked.is_empty() {
            return Err(format!("the liar's made-up servers were asked: {asked:?}"));
        }
        Ok(())
    })();
    let federated = run.expect_server(
        &order[0],
        "node 3, top of the ranking the honest majority lists",
    );
    (real, federated)
}

/// With the top-ranked node killed, the badge still shows `ok` within 2 s, from the second.
/// End to end: the live nodes may already have delisted the dead one (a failed probe or two),
/// or status.js may fail over; either way the reader sees `ok`. Returns the dead node's URL.
async fn case_top_killed(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
) -> (Outcome, String) {
    let urls = cluster.urls();
    let (repo, order) = cluster.new_repo(&urls, None);
    let top = cluster
        .nodes
        .iter_mut()
        .find(|n| n.url == order[0])
        .expect("the top node is one of ours");
    top.kill();
    let dead = order[0].clone();
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &urls.join(",")),
        ],
    );
    let run = show_badge(browser, &url, FAILOVER_DEADLINE).await;
    let outcome = run
        .expect_done("ok", FAILOVER_DEADLINE)
        .and_then(|()| run.expect_server(&order[1], "second in the ranking; the first is dead"));
    (outcome, dead)
}

/// Three bootstrap nodes whose `/servers` all list `urls`: the network's view of a moment
/// ago (a crash is noticed only after failed probes, and browsers cache `/servers` answers
/// for a few seconds). With such a view only status.js itself can route around a bad node.
async fn stale_view(urls: &[&str]) -> ([Stub; 3], String) {
    let list: Vec<Value> = urls
        .iter()
        .map(|u| json!({"url": u, "key": "k", "weight": 1.0}))
        .collect();
    let view = [
        fake_node(Value::Array(list.clone())).await,
        fake_node(Value::Array(list.clone())).await,
        fake_node(Value::Array(list)).await,
    ];
    let bootstrap = view
        .iter()
        .map(|s| s.url.as_str())
        .collect::<Vec<_>>()
        .join(",");
    (view, bootstrap)
}

/// The top-ranked node is dead (connection refused) but every `/servers` answer still lists
/// it: status.js moves on to the second at once, `ok` within 2 s.
async fn case_dead_top_still_listed(
    browser: &mut Browser,
    cluster: &mut Cluster,
    static_host: &str,
    dead: &str,
) -> Outcome {
    let urls = cluster.urls();
    let listed: Vec<&str> = urls.iter().map(String::as_str).collect();
    let (_view, bootstrap) = stale_view(&listed).await;
    let (repo, order) = cluster.new_repo(&urls, Some(dead));
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &bootstrap),
        ],
    );
    let run = show_badge(browser, &url, FAILOVER_DEADLINE).await;
    run.expect_done("ok", FAILOVER_DEADLINE)?;
    run.expect_server(
        &order[1],
        "second in the ranking; the first refuses connections",
    )
}

/// The top-ranked node accepts connections and never answers, and every `/servers` answer
/// lists it: status.js hedges to the second after its delay (400 ms), `ok` within 2 s.
async fn case_hung_top(browser: &mut Browser, cluster: &mut Cluster, static_host: &str) -> Outcome {
    let hung = Silent::start().await;
    let mut urls = cluster.urls();
    urls.truncate(2);
    urls.push(hung.url.clone());
    let listed: Vec<&str> = urls.iter().map(String::as_str).collect();
    let (_view, bootstrap) = stale_view(&listed).await;
    let (repo, order) = cluster.new_repo(&urls, Some(&hung.url));
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", &repo),
            ("servers", &bootstrap),
        ],
    );
    let run = show_badge(browser, &url, FAILOVER_DEADLINE).await;
    run.expect_done("ok", FAILOVER_DEADLINE)?;
    run.expect_server(&order[1], "second in the ranking; the first never answers")
}

/// With every node down the badge shows `unknown` (never `???`) within the budget.
async fn case_all_down(browser: &mut Browser, cluster: &mut Cluster, static_host: &str) -> Outcome {
    let urls = cluster.urls();
    for node in &mut cluster.nodes {
        node.kill();
    }
    let url = page_url(
        &format!("{static_host}/status.svg"),
        &[
            ("organization", ORGANIZATION),
            ("repository", "sample"),
            ("servers", &urls.join(",")),
        ],
    );
    let run = show_badge(browser, &url, BUDGET + LOAD_MARGIN).await;
    run.expect_done("unknown", BUDGET + LOAD_MARGIN)?;
    match &run.server {
        None => Ok(()),
        Some(server) => Err(format!("data-server {server} although every node is down")),
    }
}

type Outcome = Result<(), String>;

/// The cases' outcomes, in order; the test fails at the end if any failed.
#[derive(Default)]
struct Report {
    outcomes: Vec<(&'static str, Outcome)>,
}

impl Report {
    fn record(&mut self, case: &'static str, outcome: Outcome) {
        eprintln!("{} {case}", if outcome.is_ok() { "pass" } else { "FAIL" });
        self.outcomes.push((case, outcome));
    }

    fn finish(self) {
        let failed: Vec<String> = self
            .outcomes
            .iter()
            .filter_map(|(case, outcome)| {
                outcome
                    .as_ref()
                    .err()
                    .map(|err| format!("- {case}:\n{err}"))
            })
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {} browser cases failed:\n{}",
            failed.len(),
            self.outcomes.len(),
            failed.join("\n\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_js_in_chromium_against_three_nodes() {
    if !common::require_program("chromium") {
        return;
    }
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let host = static_host().await;
    let mut cluster = Cluster::start(3).await;
    let mut browser = Browser::launch(&[]).await;
    let mut report = Report::default();

    let federation = wait_federated(&cluster, FEDERATION_DEADLINE).await;
    let federated = federation.is_ok();
    report.record(
        "federation: every node's /servers lists all 3 nodes",
        federation,
    );
    let node1 = cluster.urls()[0].clone();
    for (case, served) in [
        (
            "ok, status.svg served statically",
            Served::Statically(&host.url),
        ),
        ("ok, status.svg served by node 1", Served::ByNode(&node1)),
    ] {
        let outcome = match settled(&cluster, federated).await {
            Ok(()) => case_ok(&mut browser, &mut cluster, served).await,
            Err(err) => Err(err),
        };
        report.record(case, explain(&cluster, outcome).await);
    }
    report.record(
        "markup in text shows as text, served statically",
        case_markup(&mut browser, &mut cluster, Served::Statically(&host.url)).await,
    );
    report.record(
        "markup in text shows as text, served by node 1",
        case_markup(&mut browser, &mut cluster, Served::ByNode(&node1)).await,
    );
    report.record(
        "javascript: and other junk URLs in /servers change nothing",
        case_junk_urls(&mut browser, &mut cluster, &host.url).await,
    );
    let before = settled(&cluster, federated).await;
    let (liar_real, liar_ranked) = case_liar(&mut browser, &mut cluster, &host.url).await;
    let liar_ranked = explain(&cluster, before.and(liar_ranked)).await;
    report.record(
        "lying minority node: badge from a real node, made-up servers never asked",
        liar_real,
    );
    report.record(
        "lying minority node: badge from node 3, top of the honest majority's list",
        liar_ranked,
    );
    report.record(
        "top-ranked node hangs: status.js hedges to the second within 2 s",
        case_hung_top(&mut browser, &mut cluster, &host.url).await,
    );
    let before = settled(&cluster, federated).await;
    let (outcome, dead) = case_top_killed(&mut browser, &mut cluster, &host.url).await;
    report.record(
        "top-ranked node killed: ok from the second within 2 s",
        explain(&cluster, before.and(outcome)).await,
    );
    report.record(
        "top-ranked node dead but still listed: status.js fails over within 2 s",
        case_dead_top_still_listed(&mut browser, &mut cluster, &host.url, &dead).await,
    );
    report.record(
        "every node down: unknown within the budget",
        case_all_down(&mut browser, &mut cluster, &host.url).await,
    );

    browser.close().await;
    eprintln!("browser cases took {:?}", started.elapsed());
    report.finish();
}

/// Nodes that accept connections and never answer: the badge gives up at its time budget
/// with `unknown`, and not before (a slow node is not a failed one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_js_shows_unknown_at_the_budget_when_nodes_hang() {
    if !common::require_program("chromium") {
        return;
    }
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let host = static_host().await;
    let silent = [
        Silent::start().await,
        Silent::start().await,
        Silent::start().await,
    ];
    let servers: Vec<&str> = silent.iter().map(|s| s.url.as_str()).collect();
    let budget = Duration::from_millis(1500);
    let url = page_url(
        &format!("{}/status.svg", host.url),
        &[
            ("repository", "sample"),
            ("servers", &servers.join(",")),
            ("budget_ms", &budget.as_millis().to_string()),
        ],
    );
    let mut browser = Browser::launch(&[]).await;
    let run = show_badge(&mut browser, &url, budget + Duration::from_secs(2)).await;
    browser.close().await;
    run.expect_done("unknown", budget + Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        run.elapsed >= budget,
        "gave up before the budget: {}",
        run.summary()
    );
    assert_eq!(run.server, None, "{}", run.summary());
}

/// The helpers above must be able to fail: a page that never finishes is reported as not
/// done, with what it showed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_badge_that_never_finishes_is_reported() {
    if !common::require_program("chromium") {
        return;
    }
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    // status.svg without its script: it stays at `???` forever.
    let svg = include_str!("../status.svg").replace(r#"<script xlink:href="status.js"/>"#, "");
    let host = Stub::start(move |_| Reply {
        status: 200,
        content_type: "image/svg+xml",
        body: svg.clone(),
    })
    .await;
    let mut browser = Browser::launch(&[]).await;
    let run = show_badge(
        &mut browser,
        &format!("{}/status.svg?repository=x", host.url),
        Duration::from_millis(300),
    )
    .await;
    browser.close().await;
    assert_eq!(run.state.as_deref(), Some("loading"), "{}", run.summary());
    assert_eq!(run.status.as_deref(), Some("???"), "{}", run.summary());
    assert!(run.expect_done("ok", Duration::from_secs(1)).is_err());
}
