//! A `peers.toml` entry that names a pool: the node resolves the name (here through the
//! entry's `nameserver`: a node's own pool DNS, or one this test runs) on every round it
//! looks for seeds, asks every address as a seed, and takes what they teach only as
//! ordinary, verified gossip. A new node that names nothing but the pool joins a network of
//! real node processes; a name that resolves to nothing and a dead nameserver are each
//! warned about once, retried quietly, and the node keeps running.

use crate::common;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::process::{ChildGuard, NODE_BIN, TempDir, common_free_port};
use common::{get_json, listed_servers, wait_until};
use dockerhub_build_status::demo::sample_hub::FakeHub;
use dockerhub_build_status::dns::zone::Zone;
use dockerhub_build_status::dns::{DnsServer, Limits, Sockets, StaticPool};
use dockerhub_build_status::federation::{GossipResponse, PoolNode, PublicKey};
use dockerhub_build_status::metrics::Metrics;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

const ZONE: &str = "pool.test";
const GOSSIP: Duration = Duration::from_millis(200);
const PROBE: Duration = Duration::from_millis(500);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// A DNS server in this process answering `zone` with `addresses` (none: NODATA).
async fn dns_with(zone: &str, addresses: &[Ipv4Addr]) -> DnsServer {
    let nodes = addresses
        .iter()
        .zip(1u8..)
        .map(|(address, i)| PoolNode {
            key: PublicKey::from_bytes([i; 32]),
            url: format!("http://{address}"),
            weight: 1.0,
            addresses: vec![IpAddr::V4(*address)],
        })
        .collect();
    let sockets = Sockets::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind DNS");
    // Loopback addresses are exempt from the one-per-/24 rule only with private peers on.
    let zone = Zone::new(zone, 1, &[], 1, true).expect("zone");
    DnsServer::start(
        sockets,
        zone,
        Arc::new(StaticPool(nodes)),
        Limits::new(10_000),
        Metrics::new().expect("metrics"),
    )
    .expect("start DNS")
}

/// Something at `addr` that answers every request with "in sync" and counts the gossip
/// requests it gets: a pool address that teaches nothing.
async fn gossip_counter(addr: SocketAddr) -> Arc<AtomicUsize> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let counted = Arc::clone(&counted);
                    async move {
                        if request.method() == Method::POST && request.uri().path() == "/gossip" {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        let body = serde_json::to_vec(&GossipResponse::InSync).expect("json");
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    count
}

fn pool_entry(name: &str, port: u16, nameserver: SocketAddr) -> String {
    format!("[[peer]]\npool = \"{name}\"\nport = {port}\nnameserver = \"{nameserver}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_address_the_name_resolves_to_is_asked_each_round_and_none_becomes_a_member() {
    let hosts = [41u8, 42, 43];
    let port = common_free_port(&hosts, false);
    let addresses: Vec<Ipv4Addr> = hosts.iter().map(|h| ip(*h)).collect();
    let mut counters = Vec::new();
    for address in &addresses {
        counters.push(gossip_counter(SocketAddr::new(IpAddr::V4(*address), port)).await);
    }
    let dns = dns_with(ZONE, &addresses).await;
    let hub = FakeHub::start().await.expect("hub");
    let dir = TempDir::new("pool-seed-asked");
    let peers = dir.write("peers.toml", &pool_entry(ZONE, port, dns.local_addr()));
    let node = common::start_node(&hub.url(), |config| {
        config.peers = Some(peers);
        config.gossip_interval = GOSSIP;
        config.probe_interval = PROBE;
    })
    .await;

    // The pool's addresses teach nothing, so the node stays alone and asks again every
    // round, each time resolving afresh and asking every address.
    wait_until(
        Duration::from_secs(15),
        "three rounds of gossip at every pool address",
        || {
            let counts: Vec<usize> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
            async move { counts.iter().all(|&n| n >= 3) }
        },
    )
    .await;
    let (_, servers) = get_json(&format!("{}/servers?all=true", node.url)).await;
    let members = servers["members"].as_array().expect("members");
    assert!(
        members.iter().all(|m| m["self"] == true),
        "a pool address is asked, never made a member: {servers}"
    );
    node.stop().await;
    dns.shutdown().await;
}

/// Starts a node on `127.0.0.<host>:<port>` that serves the pool name; with `dns_port`,
/// it also answers the pool's DNS on that address. `log` is its `RUST_LOG`.
fn start(
    host: u8,
    port: u16,
    peers: &str,
    hub: &str,
    dns_port: Option<u16>,
    log: &str,
) -> (ChildGuard, TempDir) {
    let dir = TempDir::new(&format!("pool-seed-{host}"));
    let peers = dir.write("peers.toml", peers);
    let mut command = Command::new(NODE_BIN);
    command
        .arg("--listen")
        .arg(format!("{}:{port}", ip(host)))
        .arg("--public-url")
        .arg(format!("http://{}:{port}", ip(host)))
        .arg("--peers")
        .arg(peers)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--hub-url")
        .arg(hub)
        .arg("--gossip-interval")
        .arg(format!("{}ms", GOSSIP.as_millis()))
        .arg("--probe-interval")
        .arg(format!("{}ms", PROBE.as_millis()))
        .arg("--allow-private-peers")
        .arg("--dns-zone")
        .arg(ZONE)
        .arg("--dns-ttl")
        .arg("1s")
        .arg("--pool-port")
        .arg(port.to_string())
        .env("RUST_LOG", log);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("DBS_") || name == "NO_COLOR" {
            command.env_remove(name);
        }
    }
    if let Some(dns_port) = dns_port {
        command
            .arg("--dns-listen")
            .arg(format!("{}:{dns_port}", ip(host)))
            .arg("--dns-nameservers")
            .arg("ns1.example.test");
    }
    (ChildGuard::spawn(&mut command), dir)
}

fn url(host: u8, port: u16) -> String {
    format!("http://{}:{port}", ip(host))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_names_only_the_pool_joins_the_network_behind_it() {
    let hub = FakeHub::start().await.expect("hub");
    let hosts = [51u8, 52, 53, 54];
    let port = common_free_port(&hosts, false);
    let dns_port = common_free_port(&[51], true);
    // Three pool nodes; the first answers the pool's DNS, the others name it by URL.
    let first = format!("[[peer]]\nurl = \"{}\"\n", url(51, port));
    let network = [
        start(51, port, "", &hub.url(), Some(dns_port), "warn"),
        start(52, port, &first, &hub.url(), None, "warn"),
        start(53, port, &first, &hub.url(), None, "warn"),
    ];
    let mut pool_urls: Vec<String> = [51, 52, 53].iter().map(|h| url(*h, port)).collect();
    pool_urls.sort();
    wait_until(
        Duration::from_secs(30),
        "the pool's nodes to list each other",
        || {
            let first = url(51, port);
            let want = pool_urls.clone();
            async move { listed_servers(&first).await == Some(want) }
        },
    )
    .await;

    // The newcomer knows no node, only the pool and where its DNS answers.
    let nameserver = SocketAddr::new(IpAddr::V4(ip(51)), dns_port);
    let joining = std::time::Instant::now();
    let (mut newcomer, _dir) = start(
        54,
        port,
        &pool_entry(ZONE, port, nameserver),
        &hub.url(),
        None,
        "warn",
    );
    let mut everyone = pool_urls.clone();
    everyone.push(url(54, port));
    everyone.sort();
    wait_until(
        Duration::from_secs(30),
        "the newcomer to list the pool's nodes",
        || {
            let newcomer = url(54, port);
            let want = everyone.clone();
            async move { listed_servers(&newcomer).await == Some(want) }
        },
    )
    .await;
    eprintln!("the newcomer lists all four after {:?}", joining.elapsed());
    assert!(newcomer.try_exit().is_none());
    let (_, servers) = get_json(&format!("{}/servers?all=true", url(54, port))).await;
    for member in servers["members"].as_array().expect("members") {
        assert_eq!(
            member["seed"], false,
            "nodes found through a pool are not peers.toml nodes: {member}"
        );
    }
    drop(network);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_resolves_to_nothing_or_a_dead_nameserver_warns_once_and_the_node_runs_on() {
    let hub = FakeHub::start().await.expect("hub");
    let empty = dns_with("empty.test", &[]).await;
    // A nameserver that is not there: a port that was free a moment ago.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port");
    let port = common_free_port(&[61], false);
    let peers = format!(
        "{}{}",
        pool_entry("empty.test", port, empty.local_addr()),
        pool_entry(ZONE, port, dead)
    );
    let (mut node, _dir) = start(
        61,
        port,
        &peers,
        &hub.url(),
        None,
        "warn,dockerhub_build_status::driver=debug",
    );
    let warned = |lines: &[String], pool: &str| {
        lines
            .iter()
            .filter(|l| {
                l.contains("WARN") && l.contains("pool from peers.toml") && l.contains(pool)
            })
            .count()
    };
    let retried = |lines: &[String], pool: &str| {
        lines
            .iter()
            .filter(|l| l.contains("pool still gives no seed") && l.contains(pool))
            .count()
    };
    let empty_pool = format!("empty.test:{port} via {}", empty.local_addr());
    let dead_pool = format!("{ZONE}:{port} via {dead}");
    wait_until(
        Duration::from_secs(20),
        "both pools asked again, quietly",
        || {
            let lines = node.stderr();
            let done = retried(&lines, &empty_pool) >= 3 && retried(&lines, &dead_pool) >= 3;
            async move { done }
        },
    )
    .await;
    let lines = node.stderr();
    assert_eq!(warned(&lines, &empty_pool), 1, "{}", lines.join("\n"));
    assert_eq!(warned(&lines, &dead_pool), 1, "{}", lines.join("\n"));
    let warning = lines
        .iter()
        .find(|l| l.contains("WARN") && l.contains(&empty_pool))
        .expect("the warning");
    assert!(warning.contains("resolves to no address"), "{warning}");
    for line in lines.iter().filter(|l| l.contains("WARN")) {
        eprintln!("{line}");
    }
    assert!(node.try_exit().is_none(), "the node keeps running");
    let (status, _) = get_json(&format!("{}/health", url(61, port))).await;
    assert_eq!(status, 200);
    empty.shutdown().await;
}
