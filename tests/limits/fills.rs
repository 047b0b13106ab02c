//! Fills at their bound: cold tag badges through a node process whose owner (a node in this
//! process) answers every fill at the largest a tag's answer may be, with the longest names
//! and the most images the asker accepts, padded with blanks to the byte; the asker's
//! resident memory after 1,000 such fills is printed and bounded.

use super::*;
use common::liar::{Behaviour, serve_dishonestly};
use dockerhub_build_status::cache::Resource;
use dockerhub_build_status::cache::resources::TagResource;
use dockerhub_build_status::config::Config;
use dockerhub_build_status::demo::sample_hub::{FakeImage, FakeRepo};
use dockerhub_build_status::http::App;
use dockerhub_build_status::node::Node;

/// Fills the asker is to take from the hostile owner.
const FILLS: u64 = 1000;
/// Tags offered: about half are owned by the hostile node, and a few of those are fetched
/// from the hub while a check of the owner's fills is made.
const TAGS: usize = 3000;

/// The images of a tag at the asker's bounds: 64 of them, each platform name 32 characters,
/// each digest 160.
fn largest_images(tag: usize) -> Vec<FakeImage> {
    (0..64)
        .map(|i| {
            let name = |part: &str| {
                format!("{part}{tag:0>8}{i:0>4}")
                    .chars()
                    .cycle()
                    .take(32)
                    .collect::<String>()
            };
            let platform = format!("{}/{}/{}", name("os"), name("arch"), name("v"));
            let digest = format!("sha256:{}", "d".repeat(153));
            FakeImage::new(&platform, &digest, 1_000_000 + i as u64)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_fills_at_their_bound_keep_the_askers_memory_bounded() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let hub = FakeHub::start().await.expect("fake hub");
    let names: Vec<String> = (0..TAGS).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut repo = FakeRepo::with_tags(&refs);
    for (i, name) in names.iter().enumerate() {
        repo = repo.with_images(name, largest_images(i));
    }
    hub.set_repo("fill/big", repo);

    // The owner, in this process, answering every fill padded to the tag's bound.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let owner_addr = listener.local_addr().expect("address");
    let owner_url = format!("http://{owner_addr}");
    let asker_port = free_port();
    let asker_url = format!("http://127.0.0.1:{asker_port}");
    let mut config = Config::for_tests(hub.url().parse().expect("hub URL"));
    config.listen = owner_addr;
    config.public_url = Some(owner_url.parse().expect("URL"));
    config.gossip_interval = Duration::from_millis(300);
    config.probe_interval = Duration::from_millis(400);
    config.hub_rate = 100_000;
    std::fs::write(
        config.peers.clone().expect("a peers file"),
        format!("[[peer]]\nurl = \"{asker_url}\"\n"),
    )
    .expect("write peers.toml");
    let owner = Node::new(config).expect("the owner starts");
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let driver = tokio::spawn(Arc::clone(owner.driver()).run(stopped));
    let padded_to = TagResource::MAX_FILL_BYTES - 1024;
    let server = tokio::spawn(serve_dishonestly(
        listener,
        App::new(owner.clone()),
        Behaviour::Padded(padded_to),
    ));

    // The asker, a node process.
    let mut asker = NodeProcess::start_on(
        asker_port,
        "limits-fills",
        &format!("[[peer]]\nurl = \"{owner_url}\"\n"),
        &hub.url(),
        // Fills for the test client's cold badges are charged to its share of the asker's
        // fills, as large as its hub budget: that is not what is measured here.
        &[
            "--gossip-interval",
            "300ms",
            "--probe-interval",
            "400ms",
            "--hub-rate",
            "100000",
        ],
    );
    asker.wait_ready().await;
    let mut both = vec![asker_url.clone(), owner_url.clone()];
    both.sort();
    for url in [&asker_url, &owner_url] {
        let both = both.clone();
        wait_until(Duration::from_secs(30), "both nodes list both", || {
            let both = both.clone();
            async move { common::listed_servers(url).await == Some(both) }
        })
        .await;
    }

    // The tags whose owner the hostile node is, as the asker ranks them.
    let weights = [(asker_url.clone(), 1.0), (owner_url.clone(), 1.0)];
    let owned: Vec<usize> = (0..TAGS)
        .filter(|i| {
            let key = format!("v2/repositories/fill/big/tags/t{i}");
            let ranked = dockerhub_build_status::federation::rendezvous::rank(
                &weights,
                &key,
                |s| s.0.as_str(),
                |s| s.1,
            );
            ranked[0].0 == owner_url
        })
        .collect();
    let before = asker.rss_kib();
    let client = common::client();
    let mut used = 0;
    for (asked, i) in owned.iter().enumerate() {
        let url = format!("{asker_url}/docker/image-size/fill/big/t{i}");
        let response = client.get(&url).send().await.expect("a badge");
        assert_eq!(response.status(), 200);
        if asked % 50 == 49 {
            used = fills_used(&asker_url, &owner_url).await;
            if used >= FILLS {
                break;
            }
        }
    }
    let used = used.max(fills_used(&asker_url, &owner_url).await);
    let after = asker.rss_kib();
    eprintln!(
        "the asker's RSS: {before} KiB before, {after} KiB after {used} fills of {padded_to} \
         bytes (+{} KiB, {:.1} KiB a fill)",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / used.max(1) as f64
    );
    assert!(used >= FILLS, "only {used} fills were used");
    // A tag at the bound is kept as about 30 KiB (64 images of five strings); a megabyte a
    // fill, as before the bound, would be a gigabyte here.
    assert!(
        after.saturating_sub(before) < 96 * 1024,
        "{before} KiB -> {after} KiB"
    );
    server.abort();
    driver.abort();
}

/// How many of `owner`'s fills the node at `url` used.
async fn fills_used(url: &str, owner: &str) -> u64 {
    let response = common::client()
        .get(format!("{url}/servers?all=true"))
        .send()
        .await
        .expect("servers");
    let servers: serde_json::Value = response.json().await.expect("JSON");
    servers["fills"]
        .as_array()
        .and_then(|fills| fills.iter().find(|f| f["url"].as_str() == Some(owner)))
        .and_then(|f| f["supplied"].as_u64())
        .unwrap_or(0)
}
