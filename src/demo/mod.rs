//! The one-command demo: a sample Docker Hub and a network of three nodes on loopback that
//! find each other by gossip, so a newcomer without Docker Hub access sees badges,
//! `/servers` and the front page working. `dockerhub-build-status demo` runs it.

pub mod sample_hub;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use self::sample_hub::FakeHub;
use crate::config::Config;
use crate::http::server;
use crate::node::{Node, StartError};

/// Nodes in the demo network.
pub const NODES: usize = 3;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start the sample hub: {0}")]
    Hub(io::Error),
    #[error("cannot listen on {addr}: {source} (try `demo --port 0` for any free ports)")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Node(#[from] StartError),
}

/// Starts the sample hub and [`NODES`] nodes (the first on `port`, the others on the next
/// ports; with `port` 0 on any free ports), prints where to look, and runs until `shutdown`.
pub async fn run(port: u16, shutdown: impl Future<Output = ()>) -> Result<(), DemoError> {
    let hub = FakeHub::start().await.map_err(DemoError::Hub)?;
    hub.add_samples();
    let mut listeners = Vec::new();
    for i in 0..NODES {
        let port = if port == 0 {
            0
        } else {
            port.saturating_add(i as u16)
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DemoError::Listen { addr, source })?;
        listeners.push(listener);
    }
    let urls: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| format!("http://{a}")))
        .collect::<Result<_, _>>()
        .map_err(|source| DemoError::Listen {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            source,
        })?;
    let hub_url: url::Url = hub
        .url()
        .parse()
        .map_err(|_| DemoError::Hub(io::Error::other("bad hub URL")))?;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut config = Config::for_tests(hub_url.clone());
        config.listen = listener.local_addr().map_err(|source| DemoError::Listen {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            source,
        })?;
        config.public_url = urls[i].parse().ok();
        // Short intervals, so the network forms while the newcomer watches.
        config.gossip_interval = Duration::from_millis(500);
        config.probe_interval = Duration::from_millis(500);
        config.cache_ttl = Duration::from_secs(60);
        if i > 0
            && let Some(peers) = &config.peers
        {
            let _ = std::fs::write(peers, format!("[[peer]]\nurl = \"{}\"\n", urls[0]));
        }
        let node = Node::new(config)?;
        let mut stopped = stopped.clone();
        servers.spawn(server::run(listener, node, async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
    }

    let first = &urls[0];
    println!("Demo network: a sample Docker Hub and {NODES} badge nodes on loopback.");
    println!();
    println!("  sample Docker Hub: {}", hub.url());
    for (i, url) in urls.iter().enumerate() {
        println!("  node {}: {url}/", i + 1);
    }
    println!();
    println!("Open in a browser:");
    println!("  the front page:     {first}/");
    println!("  a badge:            {first}/status.svg?organization=demo&repository=passing");
    println!(
        "                      (also repository=building, failing; organization=library&repository=nginx)"
    );
    println!("  the JSON API:       {first}/build/library/nginx");
    println!("  the network:        {first}/servers?all=true");
    // Served by a node, the pair starts from that node: no servers= needed.
    println!("  status.svg + .js:   {first}/static/status.svg?repository=nginx");
    println!();
    println!("The nodes list each other after about ten seconds of probes. Ctrl-C stops the demo.");

    shutdown.await;
    let _ = stop.send(true);
    while servers.join_next().await.is_some() {}
    drop(hub);
    Ok(())
}
