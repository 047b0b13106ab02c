//! Real node processes on a lossy network: three nodes whose probes and gossip all pass a
//! fault-injecting TCP proxy (refused and reset connections, delays) stay listed by each
//! other; a node whose only seed is down warns once, counts no bytes for refused
//! connections, keeps trying with backoff and joins when the seed comes up.

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::process::{NodeProcess, free_port};
use common::proxy::{Faults, FaultyProxy};
use common::{listed_servers, wait_until};
use dockerhub_build_status::demo::sample_hub::FakeHub;

// The intervals of a measured 30-node loopback network (probe timeout 1.5 s).
const GOSSIP: Duration = Duration::from_millis(1000);
const PROBE: Duration = Duration::from_millis(2000);

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn metrics(node: &NodeProcess) -> String {
    common::get(&format!("{}/metrics", node.direct_url()))
        .await
        .2
}

/// The node's metrics, or nothing while it is not answering yet.
async fn try_metrics(node: &NodeProcess) -> String {
    let response = common::client()
        .get(format!("{}/metrics", node.direct_url()))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    match response {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_a_lossy_proxy_stay_listed() {
    let hub = FakeHub::start().await.unwrap();
    hub.add_samples();
    // Each node listens on 127.0.0.1 and is known to the others only by its proxy on
    // 127.0.0.1x, which refuses 5 % of connections, resets 5 % of requests and delays 10 %
    // by 100 ms: about 5 % of the requests to a node fail (more when a reset connection's
    // successor is refused).
    let faults = Faults {
        refuse: 0.05,
        reset: 0.05,
        delay: 0.10,
        delay_by: Duration::from_millis(100),
    };
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut proxies = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11 + i as u8)), 0);
        let target = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), *port);
        proxies.push(FaultyProxy::start(listen, target, faults, 40 + i as u64).await);
    }
    let public: Vec<String> = proxies
        .iter()
        .map(|p| format!("http://{}", p.addr))
        .collect();
    let nodes: Vec<NodeProcess> = (0..3)
        .map(|i| {
            let peers: String = (0..3)
                .filter(|&j| j != i)
                .map(|j| format!("[[peer]]\nurl = \"{}\"\n", public[j]))
                .collect();
            NodeProcess::behind(
                &format!("lossy-{i}"),
                ports[i],
                &public[i],
                &peers,
                &hub.url(),
                GOSSIP,
                PROBE,
            )
        })
        .collect();
    let mut everyone = public.clone();
    everyone.sort();
    let all_list = || async {
        for node in &nodes {
            if listed_servers(&node.direct_url()).await.as_deref() != Some(&everyone[..]) {
                return false;
            }
        }
        true
    };
    let setup = Instant::now();
    wait_until(
        Duration::from_secs(40),
        "three nodes to list each other",
        all_list,
    )
    .await;

    eprintln!("all three listed each other after {:?}", setup.elapsed());
    // Measured from then on, seeds' scores still climbing from 10: one failed probe would
    // unlist a node for the first 17 probes or so, which only the retries prevent.
    // 120 rounds of polls, each of the three nodes' /servers (directly, not through the
    // proxies), 250 ms apart: 360 polls in 30 s.
    let (mut polls, mut full) = (0u32, 0u32);
    let started = Instant::now();
    for _ in 0..120 {
        for node in &nodes {
            polls += 1;
            if listed_servers(&node.direct_url()).await.as_deref() == Some(&everyone[..]) {
                full += 1;
            } else {
                // What the node thought, for the test's output.
                let url = format!("{}/servers?all=true", node.direct_url());
                let (_, all) = common::get_json(&url).await;
                let members: Vec<String> = all["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        format!(
                            "{} {} {} {}",
                            m["url"], m["state"], m["score"], m["last_probe"]
                        )
                    })
                    .collect();
                eprintln!("not all listed at {:?}: {members:?}", started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let share = f64::from(full) / f64::from(polls);
    let loss: Vec<f64> = proxies.iter().map(|p| p.stats.loss()).collect();
    let mean_loss = loss.iter().sum::<f64>() / loss.len() as f64;
    for proxy in &proxies {
        eprintln!("proxy {}: {}", proxy.addr, proxy.stats.summary());
    }
    let mut recovered = 0;
    let mut confirmed = 0;
    for node in &nodes {
        let text = metrics(node).await;
        recovered += metric(&text, "dbs_probe_retries_total{outcome=\"recovered\"} ");
        confirmed += metric(&text, "dbs_probe_retries_total{outcome=\"confirmed\"} ");
    }
    eprintln!(
        "all three listed in {full} of {polls} polls ({share:.4}) over {:?}; request loss {loss:.3?}; \
         retries: {recovered} recovered, {confirmed} confirmed",
        started.elapsed()
    );
    assert!(mean_loss >= 0.045, "the proxies were lossy: {loss:?}");
    assert!(recovered > 0, "lost probes were retried");
    assert!(share >= 0.99, "{full} of {polls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_seed_is_down_warns_once_and_joins_when_it_comes_up() {
    let hub = FakeHub::start().await.unwrap();
    hub.add_samples();
    let seed_port = free_port();
    let seed_url = format!("http://127.0.0.1:{seed_port}");
    let peers = format!("[[peer]]\nurl = \"{seed_url}\"\n");
    let gossip = Duration::from_millis(200);
    let probe = Duration::from_millis(400);
    let mut lone = NodeProcess::new("lone", &peers, &hub.url(), true, gossip, probe);
    wait_until(
        Duration::from_secs(30),
        "six failed exchanges with the dead seed",
        || async {
            let text = try_metrics(&lone).await;
            metric(&text, "dbs_gossip_exchanges_total{outcome=\"failed\"} ") >= 6
        },
    )
    .await;
    let text = metrics(&lone).await;
    let failed = metric(&text, "dbs_gossip_exchanges_total{outcome=\"failed\"} ");
    assert_eq!(
        metric(&text, "dbs_gossip_bytes_total{direction=\"sent\"} "),
        0,
        "refused connections carried no bytes:\n{text}"
    );
    let child = lone.child.as_mut().expect("running");
    let warnings: Vec<String> = child
        .stderr()
        .into_iter()
        .filter(|l| l.contains("seed from peers.toml unreachable"))
        .collect();
    eprintln!("{failed} failed exchanges, warnings: {warnings:?}");
    assert_eq!(warnings.len(), 1, "one warning per cause: {warnings:?}");

    // The seed comes up: the lone node, still trying, finds it and lists it.
    let seed = NodeProcess::behind("seed", seed_port, &seed_url, "", &hub.url(), gossip, probe);
    let mut expected = [lone.url(), seed.url()];
    expected.sort();
    wait_until(
        Duration::from_secs(30),
        "the lone node to list its seed",
        || async { listed_servers(&lone.direct_url()).await.as_deref() == Some(&expected[..]) },
    )
    .await;
    let text = metrics(&lone).await;
    assert!(metric(&text, "dbs_gossip_bytes_total{direction=\"sent\"} ") > 0);
}
