//! Cache and upstream discipline through real HTTP: one upstream call per key under a cold
//! stampede, stale-while-revalidate, stale-if-error up to `--max-stale`, silence after a 429,
//! and a bounded cache.

use std::time::Duration;

use tokio::time::Instant;

use crate::common::{client, get_json, start_node, wait_until};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo, Fault};

async fn hub() -> FakeHub {
    let hub = FakeHub::start().await.unwrap();
    hub.set_repo("acme/app", FakeRepo::with_builds(&[("latest", 10)]));
    hub.set_repo("library/nginx", FakeRepo::with_tags(&["latest"]));
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_cold_requests_cause_one_upstream_request() {
    let hub = hub().await;
    // The first hub answer takes a while, so all 500 requests arrive while it is in flight.
    hub.set_fault(Some(Fault::Slow(Duration::from_millis(300))));
    // 500 connections from one address: more than the cap per client allows by default.
    let node = start_node(&hub.url(), |c| c.max_connections_per_client = 1000).await;
    let http = client();
    let url = format!("{}/build/library/nginx", node.url);
    let requests: Vec<_> = (0..500)
        .map(|_| {
            let http = http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let response = http.get(&url).send().await.unwrap();
                (
                    response.status().as_u16(),
                    response.json::<serde_json::Value>().await.unwrap(),
                )
            })
        })
        .collect();
    for request in requests {
        let (code, body) = request.await.unwrap();
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], 10);
    }
    // Build history (404) and then the tag endpoint: one lookup, two hub requests.
    let paths: Vec<String> = hub.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v2/repositories/library/nginx/buildhistory/",
            "/v2/namespaces/library/repositories/nginx/tags/latest"
        ]
    );
}

#[tokio::test]
async fn after_the_ttl_stale_is_served_at_once_and_one_refresh_goes_out() {
    let hub = hub().await;
    let node = start_node(&hub.url(), |c| c.cache_ttl = Duration::from_millis(300)).await;
    let url = format!("{}/build/acme/app", node.url);
    let (_, body) = get_json(&url).await;
    assert_eq!(body["stale"], false);
    assert_eq!(hub.request_count(), 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // The refresh will be slow; the stale answers must not wait for it.
    hub.set_repo("acme/app", FakeRepo::with_builds(&[("latest", -1)]));
    hub.set_fault(Some(Fault::Slow(Duration::from_millis(500))));
    let started = Instant::now();
    for _ in 0..20 {
        let (code, body) = get_json(&url).await;
        assert_eq!(code, 200);
        assert_eq!(body["stale"], true, "{body}");
        assert_eq!(body["status"], 10, "the old status while refreshing");
        assert!(body["age_seconds"].is_u64());
    }
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "stale answers are immediate: {:?}",
        started.elapsed()
    );
    wait_until(Duration::from_secs(5), "the refresh to land", || async {
        get_json(&url).await.1["status"] == -1
    })
    .await;
    assert_eq!(hub.request_count(), 2, "exactly one refresh went out");
}

#[tokio::test]
async fn with_the_hub_failing_stale_lasts_until_max_stale_then_errors() {
    let hub = hub().await;
    let node = start_node(&hub.url(), |c| {
        c.cache_ttl = Duration::from_millis(200);
        c.max_stale = Duration::from_millis(1500);
    })
    .await;
    let url = format!("{}/build/acme/app", node.url);
    let filled = Instant::now();
    assert_eq!(get_json(&url).await.0, 200);
    hub.set_fault(Some(Fault::ServerError));
    let mut stale_answers = 0;
    loop {
        let (code, body) = get_json(&url).await;
        let age = filled.elapsed();
        if code != 200 {
            assert_eq!(code, 502, "{body}");
            assert!(
                age >= Duration::from_millis(1700),
                "stale was served until max-stale: {age:?}"
            );
            break;
        }
        if body["stale"] == true {
            stale_answers += 1;
        }
        assert!(
            age < Duration::from_millis(2500),
            "the error shows once max-stale has passed: {age:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stale_answers >= 10, "{stale_answers} stale answers");
    let badge = client()
        .get(format!(
            "{}/status.svg?organization=acme&repository=app",
            node.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(badge.status(), 200, "badges never fail");
}

#[tokio::test]
async fn after_a_429_nothing_goes_upstream_before_retry_after() {
    let hub = hub().await;
    let node = start_node(&hub.url(), |_| {}).await;
    hub.set_fault(Some(Fault::RateLimit {
        retry_after_secs: 2,
    }));
    let limited_at = Instant::now();
    let (code, _) = get_json(&format!("{}/build/acme/app", node.url)).await;
    assert_eq!(code, 503);
    hub.set_fault(None);
    let before = hub.request_count();
    // Ask for fresh keys for most of the silence: each answer is an immediate 503.
    let mut i = 0;
    while limited_at.elapsed() < Duration::from_millis(1700) {
        let (code, body) = get_json(&format!("{}/build/acme/app?tag=t{i}", node.url)).await;
        assert_eq!(code, 503, "{body}");
        assert!(body["description"].as_str().unwrap().contains("rate limit"));
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        hub.request_count(),
        before,
        "no upstream request during Retry-After"
    );
    wait_until(Duration::from_secs(3), "requests to flow again", || async {
        get_json(&format!("{}/build/acme/app", node.url)).await.0 == 200
    })
    .await;
    let first_after = hub.received()[before].at;
    assert!(
        first_after.duration_since(limited_at) >= Duration::from_secs(2),
        "waited out Retry-After"
    );
}

#[tokio::test]
async fn twice_the_capacity_in_distinct_keys_leaves_at_most_capacity_entries() {
    let hub = hub().await;
    let node = start_node(&hub.url(), |c| {
        c.cache_capacity = 50;
        c.hub_rate = 10_000;
    })
    .await;
    for i in 0..100 {
        let (code, _) = get_json(&format!("{}/build/acme/app?tag=t{i}", node.url)).await;
        assert_eq!(code, 404);
        assert!(node.node.cache().len() <= 51);
    }
    wait_until(Duration::from_secs(2), "the cache to settle", || async {
        node.node.cache().len() <= 50
    })
    .await;
    assert!(
        node.node.cache().len() >= 40,
        "eviction keeps what it can: {}",
        node.node.cache().len()
    );
}

/// The seconds of `max-age` in a `Cache-Control` header.
fn max_age(headers: &reqwest::header::HeaderMap) -> u64 {
    let value = headers["cache-control"].to_str().unwrap();
    value
        .rsplit("max-age=")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {value}"))
}

#[tokio::test]
async fn remembered_answers_follow_the_clock_and_never_outlive_freshness() {
    let hub = hub().await;
    let ttl = Duration::from_secs(3);
    let node = start_node(&hub.url(), |c| {
        c.cache_ttl = ttl;
        c.max_stale = Duration::from_secs(60);
    })
    .await;
    let url = format!("{}/build/acme/app", node.url);
    let sent = Instant::now();
    let (_, body) = get_json(&url).await;
    let fetched = Instant::now();
    assert_eq!(body["age_seconds"], 0);
    // Ask without a pause until past the TTL: most answers come from the memo, and each
    // must still say what the cache would say at that moment.
    let mut answers = 0;
    let mut saw_stale = false;
    while sent.elapsed() < ttl + Duration::from_millis(600) {
        let before = Instant::now();
        let (code, headers, text) = crate::common::get(&url).await;
        let after = Instant::now();
        assert_eq!(code, 200, "{text}");
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        let age = body["age_seconds"].as_u64().unwrap();
        answers += 1;
        if body["stale"] == true {
            saw_stale = true;
            assert_eq!(max_age(&headers), 0, "{body}");
            continue;
        }
        if saw_stale {
            // Fresh again: the refresh has landed.
            assert!(age <= 1, "{body}");
            continue;
        }
        // The whole seconds since the fetch, as seen between sending and receiving.
        let low = before.saturating_duration_since(fetched).as_secs();
        let high = after.duration_since(sent).as_secs();
        assert!(
            (low..=high).contains(&age),
            "age {age} outside {low}..={high} at {:?}",
            after - sent
        );
        // What is left of the freshness, never more (the node's clock counts whole
        // milliseconds).
        let left = (ttl + Duration::from_millis(2))
            .saturating_sub(before.saturating_duration_since(fetched));
        assert!(
            max_age(&headers) <= left.as_secs(),
            "max-age {} with {left:?} left",
            max_age(&headers)
        );
        assert!(age < ttl.as_secs(), "fresh past the TTL: {body}");
    }
    assert!(saw_stale, "the TTL passed during the loop");
    assert!(answers > 50, "only {answers} answers");
    assert!(!node.app.memo().is_empty(), "the answers were remembered");
    // One fetch, one refresh when the TTL passed.
    wait_until(Duration::from_secs(2), "the one refresh", || async {
        hub.request_count() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hub.request_count(), 2);
}

#[tokio::test]
async fn remembered_badges_are_the_same_bytes_and_answer_304() {
    let hub = hub().await;
    let node = start_node(&hub.url(), |c| c.cache_ttl = Duration::from_secs(60)).await;
    let url = format!(
        "{}/status.svg?organization=acme&repository=app&text=Docker",
        node.url
    );
    // The first answer waits for the fetch; the second is built from the cache and kept.
    // (Not in the fetch's own millisecond: a freshness of exactly 60 s is "60" only then.)
    let (_, first_headers, first) = crate::common::get(&url).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (_, second_headers, second) = crate::common::get(&url).await;
    assert_eq!(node.app.memo().len(), 1);
    let (code, third_headers, third) = crate::common::get(&url).await;
    assert_eq!(code, 200);
    assert_eq!(first, second);
    assert_eq!(second, third);
    for name in [
        "content-type",
        "etag",
        "content-security-policy",
        "access-control-allow-origin",
        "x-content-type-options",
    ] {
        assert_eq!(first_headers[name], third_headers[name], "{name}");
        assert_eq!(second_headers[name], third_headers[name], "{name}");
    }
    let response = client()
        .get(&url)
        .header("if-none-match", third_headers["etag"].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(response.headers()["etag"], third_headers["etag"]);
    assert!(response.headers().contains_key("cache-control"));
    // Another query is another answer.
    let (_, _, other) = crate::common::get(&format!("{url}&style=flat-square")).await;
    assert_ne!(other, third);
    assert_eq!(hub.request_count(), 1);
}
