//! The federation with real node processes on loopback: five nodes that each know only the
//! first find each other; a crashed node leaves every list after failed probes and comes
//! back with the same key; a node stopped with SIGTERM leaves every list at once through its
//! signed leave; a node killed seconds after it started rejoins from the state it saved;
//! a node without `--allow-private-peers` never probes a loopback address.

use crate::common;

use std::time::{Duration, Instant};

use common::process::NodeProcess;
use common::{get_json, wait_until};
use dockerhub_build_status::demo::sample_hub::FakeHub;
use dockerhub_build_status::federation::digest::{BUCKET_HASH_LEN, BUCKETS, SetDigest};
use dockerhub_build_status::federation::message::PROTOCOL_VERSION;
use dockerhub_build_status::federation::{GossipRequest, GossipResponse};

const GOSSIP: Duration = Duration::from_millis(300);
const PROBE: Duration = Duration::from_millis(400);

/// Waits until the node answers `/health`.
async fn wait_ready(node: &NodeProcess) {
    let url = format!("{}/health", node.url());
    wait_until(
        Duration::from_secs(15),
        "the node to answer /health",
        || {
            let url = url.clone();
            async move { matches!(reqwest_get(&url).await, Some((200, _))) }
        },
    )
    .await;
}

fn node(label: &str, peers: &str, hub: &str, allow_private: bool) -> NodeProcess {
    NodeProcess::new(label, peers, hub, allow_private, GOSSIP, PROBE)
}

async fn reqwest_get(url: &str) -> Option<(u16, serde_json::Value)> {
    let response = common::client()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

async fn all_list(nodes: &[&NodeProcess], expected: &[String]) -> bool {
    for node in nodes {
        if common::listed_servers(&node.url()).await.as_deref() != Some(expected) {
            return false;
        }
    }
    true
}

fn sorted_urls(nodes: &[&NodeProcess]) -> Vec<String> {
    let mut urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    urls.sort();
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_processes_form_a_network_and_survive_crash_restart_and_leave() {
    let hub = FakeHub::start().await.unwrap();
    hub.add_samples();
    let first = node("fed-1", "", &hub.url(), true);
    wait_ready(&first).await;
    let seed = format!("[[peer]]\nurl = \"{}\"\n", first.url());
    let mut others: Vec<NodeProcess> = (2..=5)
        .map(|i| node(&format!("fed-{i}"), &seed, &hub.url(), true))
        .collect();
    for node in &others {
        wait_ready(node).await;
    }

    // Everyone lists everyone, itself included.
    let mut everyone: Vec<&NodeProcess> = vec![&first];
    everyone.extend(others.iter());
    let all_urls = sorted_urls(&everyone);
    let started = Instant::now();
    wait_until(
        Duration::from_secs(40),
        "all five nodes to list all five",
        || all_list(&everyone, &all_urls),
    )
    .await;
    eprintln!("five nodes converged in {:?}", started.elapsed());
    let (_, health) = get_json(&format!("{}/health", others[1].url())).await;
    let key_before = health["key"].as_str().unwrap().to_owned();

    // kill -9 node 3: it leaves every other list after failed probes.
    others[1].kill();
    let killed_at = Instant::now();
    let survivors: Vec<&NodeProcess> = std::iter::once(&first)
        .chain([&others[0], &others[2], &others[3]])
        .collect();
    let survivor_urls = sorted_urls(&survivors);
    wait_until(
        Duration::from_secs(10),
        "the killed node to leave every list",
        || all_list(&survivors, &survivor_urls),
    )
    .await;
    let gone_after = killed_at.elapsed();
    eprintln!("crashed node dropped from every list after {gone_after:?}");
    assert!(
        gone_after <= PROBE * 3 + PROBE / 2,
        "within 3 probe intervals (and a poll): {gone_after:?}"
    );

    // Restarted with its state: the same key, listed everywhere again.
    others[1].start();
    wait_ready(&others[1]).await;
    let (_, health) = get_json(&format!("{}/health", others[1].url())).await;
    assert_eq!(
        health["key"],
        key_before.as_str(),
        "the same identity after a restart"
    );
    let mut everyone: Vec<&NodeProcess> = vec![&first];
    everyone.extend(others.iter());
    wait_until(
        Duration::from_secs(40),
        "the restarted node to be listed everywhere",
        || all_list(&everyone, &all_urls),
    )
    .await;

    // SIGTERM node 5: its signed leave removes it from every list at once.
    let leaving = others[3].child.as_ref().unwrap();
    leaving.signal("TERM");
    let left_at = Instant::now();
    let stayers: Vec<&NodeProcess> = std::iter::once(&first)
        .chain([&others[0], &others[1], &others[2]])
        .collect();
    let stayer_urls = sorted_urls(&stayers);
    wait_until(
        Duration::from_secs(5),
        "the leaving node to leave every list",
        || all_list(&stayers, &stayer_urls),
    )
    .await;
    let left_after = left_at.elapsed();
    eprintln!("leaving node dropped from every list after {left_after:?}");
    assert!(
        left_after <= GOSSIP,
        "within one gossip interval: {left_after:?}"
    );
    let status = others[3]
        .child
        .as_mut()
        .unwrap()
        .wait_exit(Duration::from_secs(15))
        .await;
    assert!(status.success(), "a clean exit after SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_in_its_first_seconds_rejoins_from_what_it_had_saved() {
    let hub = FakeHub::start().await.unwrap();
    let first = node("fed-early-1", "", &hub.url(), true);
    wait_ready(&first).await;
    let seed = format!("[[peer]]\nurl = \"{}\"\n", first.url());
    let mut second = node("fed-early-2", &seed, &hub.url(), true);
    wait_ready(&second).await;
    let both = sorted_urls(&[&first, &second]);
    let pair = [&first, &second];
    wait_until(
        Duration::from_secs(30),
        "the two nodes to list each other",
        || all_list(&pair, &both),
    )
    .await;
    // Saved within seconds of a change, not only every 30 s.
    let saved = dockerhub_build_status::driver::state::state_path(&second.dir.path().join("state"));
    let first_url = first.url();
    wait_until(
        Duration::from_secs(5),
        "the second node to save what it knows",
        || {
            let found =
                std::fs::read_to_string(&saved).is_ok_and(|text| text.contains(first_url.as_str()));
            async move { found }
        },
    )
    .await;

    // kill -9, and back with an empty peers.toml: only the saved state names the first
    // node, with the score it had, so one good probe lists it again.
    second.kill();
    second.set_peers("");
    second.start();
    let restarted = Instant::now();
    wait_ready(&second).await;
    let restarted_node = [&second];
    wait_until(
        Duration::from_secs(3),
        "the restarted node to list the first again",
        || all_list(&restarted_node, &both),
    )
    .await;
    eprintln!(
        "restarted node lists the first again after {:?}",
        restarted.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_node_never_probes_loopback_addresses_it_hears_of() {
    let hub = FakeHub::start().await.unwrap();
    let loopback = node("fed-lo", "", &hub.url(), true);
    wait_ready(&loopback).await;
    let strict = node("fed-strict", "", &hub.url(), false);
    wait_ready(&strict).await;

    // Fetch the loopback node's signed descriptor the way a peer would, then hand it to the
    // strict node in a push, as a hostile or confused peer might.
    let http = common::client();
    let post = |url: String, request: GossipRequest| {
        let http = http.clone();
        async move {
            let response = http.post(url).json(&request).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<GossipResponse>().await.unwrap()
        }
    };
    let empty = GossipRequest::Digest {
        v: PROTOCOL_VERSION,
        buckets: SetDigest::from_buckets([[0; BUCKET_HASH_LEN]; BUCKETS]),
    };
    let GossipResponse::Diff { entries, .. } =
        post(format!("{}/gossip", loopback.url()), empty).await
    else {
        panic!("a non-empty node answers a diff to an empty digest");
    };
    let want = entries.iter().map(|entry| entry.0).collect();
    let GossipResponse::Descriptors(descriptors) = post(
        format!("{}/gossip", loopback.url()),
        GossipRequest::Sync {
            push: Vec::new(),
            want,
        },
    )
    .await
    else {
        panic!("a sync is answered with descriptors");
    };
    assert!(!descriptors.is_empty());
    post(
        format!("{}/gossip", strict.url()),
        GossipRequest::push(descriptors),
    )
    .await;

    // Several probe intervals later: no probe went out, and only the node itself is listed.
    tokio::time::sleep(PROBE * 5).await;
    let (_, servers) = get_json(&format!("{}/servers?all=true", strict.url())).await;
    let listed: Vec<&str> = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["url"].as_str())
        .collect();
    assert_eq!(listed, [strict.url().as_str()], "{servers}");
    let metrics = common::get(&format!("{}/metrics", strict.url())).await.2;
    let count = |text: &str, prefix: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let loopback_member = servers["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["url"] == loopback.url().as_str())
        .unwrap_or_else(|| panic!("it heard of the loopback node: {servers}"));
    assert_eq!(
        loopback_member["last_probe"], "forbidden",
        "and held back: {loopback_member}"
    );
    assert_eq!(
        count(&metrics, "dbs_probes_total{outcome=\"answered\"}"),
        0,
        "no probe was answered:\n{metrics}"
    );
    // The loopback node saw one /health request: the test's own readiness check.
    let seen = common::get(&format!("{}/metrics", loopback.url())).await.2;
    assert_eq!(
        count(
            &seen,
            "dbs_http_requests_total{code=\"200\",route=\"health\"}"
        ),
        1,
        "{seen}"
    );
}
