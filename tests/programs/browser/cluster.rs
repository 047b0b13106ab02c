//! The three real node processes the browser cases run against, and waiting for them to
//! federate.

use super::*;

/// One node process, killed and reaped on drop (see `ChildGuard`).
#[derive(Debug)]
pub(super) struct NodeProcess {
    pub(super) url: String,
    pub(super) child: Option<ChildGuard>,
}

impl NodeProcess {
    pub(super) fn spawn(port: u16, peers: &Path, state_dir: &Path, hub_url: &str) -> Self {
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
    pub(super) fn kill(&mut self) {
        self.child = None;
    }

    pub(super) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(ChildGuard::try_exit)
    }

    /// The last lines the node logged.
    pub(super) fn log_tail(&self, lines: usize) -> String {
        let all = self
            .child
            .as_ref()
            .map(ChildGuard::stderr)
            .unwrap_or_default();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// A short-timeout client for polling nodes.
pub(super) fn poll_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

/// Three (or more) node processes sharing a peers file that names node 1, and the fake hub
/// they all ask. Field order: the nodes die before the hub and their folder.
pub(super) struct Cluster {
    pub(super) nodes: Vec<NodeProcess>,
    pub(super) hub: FakeHub,
    pub(super) _dir: TempDir,
    pub(super) next_repo: usize,
}

impl Cluster {
    pub(super) async fn start(count: usize) -> Cluster {
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

    pub(super) async fn wait_healthy(&mut self) {
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

    pub(super) fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }

    /// A fresh repository (so no cache anywhere has seen it) that the hub knows as built
    /// successfully, and whose rendezvous ranking over `urls` puts `first` first when given.
    pub(super) fn new_repo(
        &mut self,
        urls: &[String],
        first: Option<&str>,
    ) -> (String, Vec<String>) {
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

    pub(super) fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.url, n.log_tail(8)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The order status.js asks `urls` in for `repository`, by the node's own rendezvous
/// function. Every node here has the default weight 1.
pub(super) fn ranking(urls: &[String], repository: &str) -> Vec<String> {
    let key = rendezvous::item_key(ORGANIZATION, repository, "latest");
    rendezvous::rank(urls, &key, |u| u.as_str(), |_| 1.0)
        .into_iter()
        .cloned()
        .collect()
}

/// The URLs a node's `/servers` lists, in the canonical form status.js uses (no trailing
/// slash), or `None` when it does not answer with a `servers` array.
pub(super) async fn listed_servers(client: &reqwest::Client, node: &str) -> Option<Vec<String>> {
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
pub(super) async fn wait_federated(cluster: &Cluster, within: Duration) -> Outcome {
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
pub(super) async fn settled(cluster: &Cluster, federated: bool) -> Outcome {
    if !federated {
        return Ok(());
    }
    wait_federated(cluster, SETTLE_DEADLINE)
        .await
        .map_err(|e| format!("the network was not settled before the case: {e}"))
}

/// Adds what every node's `/servers` lists now to a failure, so a wrong choice by status.js
/// can be told apart from a network view that changed during the run.
pub(super) async fn explain(cluster: &Cluster, outcome: Outcome) -> Outcome {
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
