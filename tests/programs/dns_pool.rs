//! The pool name with real node processes: four nodes on 127.0.0.2–127.0.0.5 with one HTTP
//! port, two of them answering DNS for the pool; a client resolves the name with `dig`
//! through them and fetches a badge by trying each address in turn, for 60 s, while one
//! node is killed with SIGKILL. No badge fails; the killed node leaves the answers within
//! two probe intervals plus one TTL; a node whose probes fail never enters an answer.

use crate::common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{ChildGuard, NODE_BIN, TempDir, common_free_port};
use common::{harness, wait_until};
use dockerhub_build_status::demo::sample_hub::FakeHub;

const ZONE: &str = "pool.badges.test";
const PROBE: Duration = Duration::from_secs(1);
const TTL: Duration = Duration::from_secs(1);
const RUN: Duration = Duration::from_secs(60);
const KILL_AT: Duration = Duration::from_secs(15);
const BADGE: &str = "/status.svg?organization=demo&repository=passing";

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

struct PoolNode {
    host: u8,
    child: ChildGuard,
    _dir: TempDir,
}

/// Starts a node listening on `listen_host:listen_port` that announces
/// `http://127.0.0.<host>:<http_port>`, serving the pool; with `dns_port`, answering DNS.
fn start(
    host: u8,
    listen: (u8, u16),
    http_port: u16,
    peers: &str,
    hub: &str,
    dns_port: Option<u16>,
) -> PoolNode {
    let dir = TempDir::new(&format!("pool-{host}"));
    let peers = dir.write("peers.toml", peers);
    let mut command = Command::new(NODE_BIN);
    command
        .arg("--listen")
        .arg(format!("{}:{}", ip(listen.0), listen.1))
        .arg("--public-url")
        .arg(format!("http://{}:{http_port}", ip(host)))
        .arg("--peers")
        .arg(peers)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--hub-url")
        .arg(hub)
        .arg("--gossip-interval")
        .arg("200ms")
        .arg("--probe-interval")
        .arg(format!("{}ms", PROBE.as_millis()))
        .arg("--allow-private-peers")
        .arg("--dns-zone")
        .arg(ZONE)
        .arg("--dns-ttl")
        .arg(format!("{}s", TTL.as_secs()))
        .arg("--pool-port")
        .arg(http_port.to_string())
        .env("RUST_LOG", "warn");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("DBS_") {
            command.env_remove(name);
        }
    }
    if let Some(port) = dns_port {
        command
            .arg("--dns-listen")
            .arg(format!("{}:{port}", ip(host)))
            .arg("--dns-nameservers")
            .arg("ns1.badges.test,ns2.badges.test");
    }
    PoolNode {
        host,
        child: ChildGuard::spawn(&mut command),
        _dir: dir,
    }
}

/// The addresses `dig` gets for the pool name from the server at `server:port`, or `None`
/// if it got no answer within a second.
async fn resolve(server: u8, port: u16) -> Option<Vec<Ipv4Addr>> {
    let output = tokio::process::Command::new("dig")
        .arg(format!("@{}", ip(server)))
        .arg("-p")
        .arg(port.to_string())
        .arg(ZONE)
        .arg("A")
        .arg("+short")
        .arg("+time=1")
        .arg("+tries=1")
        .arg("+norecurse")
        .output()
        .await
        .expect("run dig");
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let addresses: Option<Vec<Ipv4Addr>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().ok())
        .collect();
    addresses
}

/// Fetches the badge from each address in turn, as browsers and Go's dialer do; true if
/// one answered 200 with an SVG.
async fn fetch_badge(client: &reqwest::Client, addresses: &[Ipv4Addr], port: u16) -> bool {
    for address in addresses {
        let response = client
            .get(format!("http://{address}:{port}{BADGE}"))
            .header("host", ZONE)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(response) = response
            && response.status() == 200
            && let Ok(body) = response.text().await
            && body.contains("<svg")
        {
            return true;
        }
    }
    false
}

async fn badges_through_the_pool_name_survive_a_killed_node() {
    let hub = FakeHub::start().await.expect("hub");
    hub.add_samples();
    let hosts = [2u8, 3, 4, 5];
    let http_port = common_free_port(&[2, 3, 4, 5, 6], false);
    let dns_port = common_free_port(&[2, 3], true);
    let peers: String = hosts
        .iter()
        .map(|h| format!("[[peer]]\nurl = \"http://{}:{http_port}\"\n", ip(*h)))
        .collect();
    let nodes: Vec<PoolNode> = hosts
        .iter()
        .map(|&h| {
            let dns = (h == 2 || h == 3).then_some(dns_port);
            start(h, (h, http_port), http_port, &peers, &hub.url(), dns)
        })
        .collect();
    // A node whose probes fail: it gossips its descriptor (serving the pool at 127.0.0.6)
    // but nothing answers at the URL it announces.
    let elsewhere = common_free_port(&[6], false);
    let failing = start(6, (6, elsewhere), http_port, &peers, &hub.url(), None);

    let all: BTreeSet<Ipv4Addr> = hosts.iter().map(|h| ip(*h)).collect();
    for server in [2u8, 3] {
        wait_until(
            Duration::from_secs(30),
            "every pool node in the DNS answers",
            || {
                let all = all.clone();
                async move {
                    resolve(server, dns_port)
                        .await
                        .is_some_and(|a| a.into_iter().collect::<BTreeSet<_>>() == all)
                }
            },
        )
        .await;
    }
    // The failing node is known to the DNS nodes, and failing.
    wait_until(
        Duration::from_secs(20),
        "the failing node to be known",
        || async move {
            let Some((_, members)) = members_of(2, http_port).await else {
                return false;
            };
            members.iter().any(|m| {
                m["url"].as_str() == Some(&format!("http://{}:{http_port}", ip(6)))
                    && m["state"] == "failing"
            })
        },
    )
    .await;

    let client = common::client();
    let started = Instant::now();
    let mut killed_at = None;
    let victim = 4u8;
    let (mut badges, mut failed, mut unresolved) = (0u32, 0u32, 0u32);
    let mut last_with_victim: Option<Instant> = None;
    let mut answers_with_victim_before_kill = 0u32;
    let mut server_turn = 0usize;
    while started.elapsed() < RUN {
        if killed_at.is_none() && started.elapsed() >= KILL_AT {
            let node = nodes.iter().find(|n| n.host == victim).expect("the victim");
            node.child.signal("KILL");
            killed_at = Some(Instant::now());
        }
        server_turn += 1;
        let first = [2u8, 3][server_turn % 2];
        let second = [2u8, 3][(server_turn + 1) % 2];
        let addresses = match resolve(first, dns_port).await {
            Some(a) => Some(a),
            None => resolve(second, dns_port).await,
        };
        let Some(addresses) = addresses else {
            unresolved += 1;
            continue;
        };
        let now = Instant::now();
        assert!(
            !addresses.is_empty() && addresses.len() <= 4,
            "{addresses:?}"
        );
        assert!(
            !addresses.contains(&ip(6)),
            "a failing node was answered: {addresses:?}"
        );
        if addresses.contains(&ip(victim)) {
            last_with_victim = Some(now);
            if killed_at.is_none() {
                answers_with_victim_before_kill += 1;
            }
        }
        badges += 1;
        if !fetch_badge(&client, &addresses, http_port).await {
            failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed_at = killed_at.expect("the node was killed");
    let gone_after =
        last_with_victim.map_or(Duration::ZERO, |t| t.saturating_duration_since(killed_at));
    eprintln!(
        "{badges} badges, {failed} failed, {unresolved} unresolved; killed node last answered {gone_after:?} after the kill"
    );
    assert!(badges > 200, "the loop ran: {badges}");
    assert_eq!(failed, 0, "badges that failed");
    assert_eq!(unresolved, 0, "names that did not resolve");
    assert!(answers_with_victim_before_kill > 0);
    assert!(
        gone_after <= 2 * PROBE + TTL,
        "the killed node was answered {gone_after:?} after the kill"
    );
    // The other DNS node agrees, and the killed node's /servers entry is gone too.
    for server in [2u8, 3] {
        let answer = resolve(server, dns_port).await.expect("answer");
        let expected: BTreeSet<Ipv4Addr> =
            all.iter().copied().filter(|a| *a != ip(victim)).collect();
        assert_eq!(answer.into_iter().collect::<BTreeSet<_>>(), expected);
    }
    drop(failing);
}

async fn members_of(host: u8, port: u16) -> Option<(u16, Vec<serde_json::Value>)> {
    let response = common::client()
        .get(format!("http://{}:{port}/servers?all=true", ip(host)))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.ok()?;
    Some((status, body["members"].as_array()?.clone()))
}

/// This module's tests, for the harness in `main.rs`.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    vec![harness::needs(
        "badges_through_the_pool_name_survive_a_killed_node",
        &["dig"],
        || harness::block_on(badges_through_the_pool_name_survive_a_killed_node()),
    )]
}
