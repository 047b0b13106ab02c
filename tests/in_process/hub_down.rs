//! A node whose Docker Hub keeps failing says so where its operator looks (`/health`, the
//! front page, the metrics), while the other nodes, which probe its `/health`, keep listing
//! it: it still serves what it has cached.

use std::time::Duration;

use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo, Fault};

use crate::common::{client, get, get_json, listed_servers, start_node, wait_until};

/// The value of one series in a text exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_docker_hub_fails_says_so_and_stays_listed() {
    let down = FakeHub::start().await.expect("start a fake hub");
    down.set_repo("acme/app", FakeRepo::with_tags(&["latest"]));
    let up = FakeHub::start().await.expect("start a fake hub");
    let fast = |config: &mut dockerhub_build_status::config::Config| {
        config.gossip_interval = Duration::from_millis(300);
        config.probe_interval = Duration::from_millis(300);
    };
    let a = start_node(&down.url(), fast).await;
    let a_url = a.url.clone();
    // B names A in its peers file and probes it.
    let b = start_node(&up.url(), |config| {
        fast(config);
        let peers = config.peers.clone().expect("a peers file");
        std::fs::write(peers, format!("[[peer]]\nurl = \"{a_url}\"\n")).expect("write peers");
    })
    .await;

    let (code, health) = get_json(&format!("{}/health", a.url)).await;
    assert_eq!(code, 200);
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(
        health["hub"]["state"], "unknown",
        "nothing asked yet: {health}"
    );

    wait_until(Duration::from_secs(10), "B lists A", || {
        let (a_url, b_url) = (a.url.clone(), b.url.clone());
        async move {
            listed_servers(&b_url)
                .await
                .is_some_and(|listed| listed.contains(&a_url))
        }
    })
    .await;

    // A badge of an image A has not cached asks Docker Hub, which answers 500.
    down.set_fault(Some(Fault::ServerError));
    let mut n = 0;
    wait_until(
        Duration::from_secs(10),
        "Docker Hub counted as failing",
        || {
            n += 1;
            let url = a.url.clone();
            async move {
                get(&format!("{url}/build/acme/app-{n}")).await;
                let (_, health) = get_json(&format!("{url}/health")).await;
                health["hub"]["state"] == "failing"
            }
        },
    )
    .await;

    let response = client()
        .get(format!("{}/health", a.url))
        .send()
        .await
        .expect("GET /health");
    assert_eq!(response.status(), 200, "peers' probes need a 200");
    assert_eq!(
        response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*"),
        "and CORS"
    );
    let health: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["key"], a.node.driver().key(), "{health}");
    assert_eq!(
        health["hub"]["error"], "Docker Hub answered HTTP 500",
        "{health}"
    );
    assert!(health["hub"]["for_seconds"].is_u64(), "{health}");

    let (_, _, page) = get(&format!("{}/", a.url)).await;
    for words in [
        "data-hub=\"failing\"",
        "Docker Hub has not answered this node for ",
        "(Docker Hub answered HTTP 500)",
        "Other nodes keep listing this node",
    ] {
        assert!(page.contains(words), "the front page says {words}");
    }
    let (_, _, metrics) = get(&format!("{}/metrics", a.url)).await;
    assert_eq!(
        series(&metrics, "dbs_upstream_state{state=\"failing\"}"),
        Some(1.0)
    );
    assert_eq!(
        series(&metrics, "dbs_upstream_state{state=\"ok\"}"),
        Some(0.0)
    );
    assert!(series(&metrics, "dbs_upstream_state_seconds").is_some());

    // B lists A all along: at every look over the next ten of its probes of A.
    let probes = |text: &str| series(text, "dbs_probes_total{outcome=\"answered\"}");
    let (_, _, before) = get(&format!("{}/metrics", b.url)).await;
    let start = probes(&before).unwrap_or_default();
    wait_until(Duration::from_secs(15), "ten probes of A by B", || {
        let (a_url, b_url) = (a.url.clone(), b.url.clone());
        async move {
            let listed = listed_servers(&b_url).await.unwrap_or_default();
            assert!(
                listed.contains(&a_url),
                "B stopped listing A, whose hub fails: {listed:?}"
            );
            let (_, _, text) = get(&format!("{b_url}/metrics")).await;
            probes(&text).unwrap_or_default() >= start + 10.0
        }
    })
    .await;

    // Docker Hub back: the next request it answers ends it (after the backoff's pause).
    down.set_fault(None);
    wait_until(
        Duration::from_secs(15),
        "Docker Hub answering again",
        || {
            let url = a.url.clone();
            async move {
                get(&format!("{url}/build/acme/app")).await;
                let (_, health) = get_json(&format!("{url}/health")).await;
                health["status"] == "ok" && health["hub"]["state"] == "ok"
            }
        },
    )
    .await;
    let (_, _, page) = get(&format!("{}/", a.url)).await;
    assert!(page.contains("Docker Hub answers this node"), "{page}");
    b.stop().await;
    a.stop().await;
}
