//! Docker Hub's limit per source address, as the fake hub plays it, and the node's
//! `--hub-source-address`: the hub counts per address and per path, answers 429 with
//! `Retry-After` and the `X-RateLimit-*` headers past its limit, lets the address in again
//! when the window has moved on, makes up `bench/repo-N` repositories on request; and a
//! node sends every hub request from the address it was given.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{get, said, start_node, wait_until};
use dockerhub_build_status::demo::sample_hub::FakeHub;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

/// A client whose requests leave from `source`.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip(source))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// GETs `url` and returns its status and the named headers (empty when absent).
async fn ask(
    client: &reqwest::Client,
    url: &str,
    headers: &[&str],
) -> (u16, Vec<String>, serde_json::Value) {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let values = headers
        .iter()
        .map(|name| {
            response
                .headers()
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    let body = response.json().await.unwrap_or_default();
    (status, values, body)
}

const LIMIT_HEADERS: [&str; 4] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
];

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test]
async fn each_source_address_gets_its_own_limit_and_a_429_says_when_to_come_back() {
    let hub = FakeHub::start()
        .await
        .expect("hub")
        .with_source_limit(3, Duration::from_secs(60));
    hub.generate_repos("bench");
    let url = format!("{}/v2/repositories/bench/repo-1", hub.url());
    let first = client_from("127.0.0.2");
    for remaining in ["2", "1", "0"] {
        let (status, headers, body) = ask(&first, &url, &LIMIT_HEADERS).await;
        assert_eq!(status, 200, "{headers:?}");
        assert_eq!(body["pull_count"], 1);
        assert_eq!(headers[0], "3");
        assert_eq!(headers[1], remaining);
        assert_eq!(headers[3], "", "no Retry-After while within the limit");
    }
    let (status, headers, _) = ask(&first, &url, &LIMIT_HEADERS).await;
    assert_eq!(status, 429, "{headers:?}");
    assert_eq!(headers[0], "3");
    assert_eq!(headers[1], "0");
    let retry_after: u64 = headers[3].parse().expect("Retry-After in seconds");
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    let reset: u64 = headers[2].parse().expect("a Unix time");
    let now = unix_now();
    assert!(
        reset.abs_diff(now + retry_after) <= 2,
        "reset {reset}, now {now}, retry after {retry_after}"
    );

    // Another address is another client.
    let second = client_from("127.0.0.3");
    let (status, headers, _) = ask(&second, &url, &LIMIT_HEADERS).await;
    assert_eq!(status, 200);
    assert_eq!(headers[1], "2");

    assert_eq!(hub.limited_count(), 1);
    let by_source = hub.requests_by_source();
    assert_eq!(by_source.get(&ip("127.0.0.2")), Some(&4));
    assert_eq!(by_source.get(&ip("127.0.0.3")), Some(&1));
    assert_eq!(by_source.len(), 2);
    let by_path = hub.requests_by_path();
    assert_eq!(by_path.get("/v2/repositories/bench/repo-1"), Some(&5));
    assert_eq!(by_path.len(), 1);
}

#[tokio::test]
async fn an_address_may_ask_again_once_its_oldest_request_leaves_the_window() {
    let window = Duration::from_millis(700);
    let hub = FakeHub::start()
        .await
        .expect("hub")
        .with_source_limit(1, window);
    hub.generate_repos("bench");
    let url = format!("{}/v2/repositories/bench/repo-2", hub.url());
    let client = client_from("127.0.0.4");
    let started = Instant::now();
    assert_eq!(ask(&client, &url, &[]).await.0, 200);
    let (status, headers, _) = ask(&client, &url, &LIMIT_HEADERS).await;
    assert_eq!(status, 429);
    // Rounded up to a whole second, never 0.
    assert_eq!(headers[3], "1");
    wait_until(Duration::from_secs(5), "the limit to open again", || {
        let client = client.clone();
        let url = url.clone();
        async move { ask(&client, &url, &[]).await.0 == 200 }
    })
    .await;
    assert!(started.elapsed() >= window, "{:?}", started.elapsed());
}

#[tokio::test]
async fn without_a_limit_there_are_no_limit_headers() {
    let hub = FakeHub::start().await.expect("hub");
    hub.generate_repos("bench");
    let client = client_from("127.0.0.1");
    let url = format!("{}/v2/repositories/bench/repo-3", hub.url());
    for _ in 0..5 {
        let (status, headers, _) = ask(&client, &url, &LIMIT_HEADERS).await;
        assert_eq!(status, 200);
        assert!(headers.iter().all(String::is_empty), "{headers:?}");
    }
    assert_eq!(hub.limited_count(), 0);
}

#[tokio::test]
async fn generated_repositories_exist_with_one_tag_and_nothing_else_does() {
    let hub = FakeHub::start().await.expect("hub");
    let client = client_from("127.0.0.1");
    let repo_url = |name: &str| format!("{}/v2/repositories/{name}", hub.url());
    // Not before they are asked for.
    assert_eq!(ask(&client, &repo_url("bench/repo-7"), &[]).await.0, 404);
    hub.generate_repos("bench");
    let (status, _, body) = ask(&client, &repo_url("bench/repo-7"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["pull_count"], 7);
    assert_eq!(body["star_count"], 7);
    let (status, _, body) = ask(&client, &repo_url("bench/repo-1234"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["pull_count"], 1234);
    assert_eq!(body["star_count"], 34);
    let (status, _, tags) = ask(
        &client,
        &format!("{}/tags?page_size=100", repo_url("bench/repo-7")),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(tags["count"], 1);
    assert_eq!(tags["next"], serde_json::Value::Null);
    assert_eq!(tags["results"][0]["name"], "latest");
    let (status, _, tag) = ask(
        &client,
        &format!("{}/tags/latest", repo_url("bench/repo-7")),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(tag["name"], "latest");
    for missing in [
        "bench/repo-",
        "bench/repo-x",
        "bench/repo-+1",
        "bench/repo-1a",
        "other/repo-7",
        "bench/repo-99999999999999999999",
    ] {
        assert_eq!(
            ask(&client, &repo_url(missing), &[]).await.0,
            404,
            "{missing}"
        );
    }
}

#[tokio::test]
async fn the_node_asks_the_hub_from_its_source_address_and_says_rate_limited_past_it() {
    let hub = FakeHub::start()
        .await
        .expect("hub")
        .with_source_limit(2, Duration::from_secs(60));
    hub.generate_repos("bench");
    let node = start_node(&hub.url(), |config| {
        config.hub_source_address = Some(ip("127.0.0.5"));
    })
    .await;
    let mut words = Vec::new();
    for n in 1..=4 {
        let (status, _, svg) = get(&format!("{}/docker/pulls/bench/repo-{n}", node.url)).await;
        assert_eq!(status, 200);
        words.push(said(&svg));
    }
    assert_eq!(
        words,
        [
            "docker pulls: 1",
            "docker pulls: 2",
            "docker pulls: rate limited by upstream service",
            "docker pulls: rate limited by upstream service",
        ]
    );
    // Every request came from the address given; after the 429 the node waited.
    let by_source = hub.requests_by_source();
    assert_eq!(by_source.keys().collect::<Vec<_>>(), [&ip("127.0.0.5")]);
    assert_eq!(by_source[&ip("127.0.0.5")], 3);
    assert_eq!(hub.limited_count(), 1);

    // Without the flag the system chooses, which for a loopback hub is 127.0.0.1.
    let other = start_node(&hub.url(), |_| {}).await;
    let (_, _, svg) = get(&format!("{}/docker/pulls/bench/repo-9", other.url)).await;
    assert_eq!(said(&svg), "docker pulls: 9");
    assert_eq!(hub.requests_by_source().get(&ip("127.0.0.1")), Some(&1));
}
