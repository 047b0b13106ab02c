//! A badge within an image proxy's patience: with Docker Hub hanging or slow, every badge
//! answers within the badges' deadline with what the node has, in words that say what
//! happened, while the fetch goes on for the next request; `/build` keeps its contract.

use std::time::{Duration, Instant};

use crate::common::{client, client_from, get, said, start_node, wait_until};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo, Fault};
use dockerhub_build_status::http::routes::{BADGE_DEADLINE, PENDING_MAX_AGE};

/// What a deadline may be overrun by on a loaded 2-core machine: the request's own trip
/// over loopback and the rendering, never another hub timeout.
const SLACK: Duration = Duration::from_millis(700);

/// GETs `url`, returning how long the answer took, the `max-age` it carries, what the badge
/// says and the `x-badge-error` header.
async fn badge(url: &str) -> (Duration, u64, String, String) {
    let started = Instant::now();
    let (status, headers, svg) = get(url).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{url}");
    let (max_age, cause) = max_age_and_cause(&headers);
    (took, max_age, said(&svg), cause)
}

fn max_age_and_cause(headers: &reqwest::header::HeaderMap) -> (u64, String) {
    let max_age = headers["cache-control"]
        .to_str()
        .expect("ascii")
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|n| n.parse().ok())
        .expect("a max-age");
    let cause = headers
        .get("x-badge-error")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    (max_age, cause)
}

async fn hub_with(repos: &[(&str, FakeRepo)]) -> FakeHub {
    let hub = FakeHub::start().await.expect("hub");
    for (name, repo) in repos {
        hub.set_repo(name, repo.clone());
    }
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_docker_hub_hanging_no_badge_waits_past_the_deadline_nor_says_rate_limited() {
    let hub = hub_with(&[("acme/app", FakeRepo::with_tags(&["latest", "1.2.3"]))]).await;
    hub.set_fault(Some(Fault::Hang));
    // A hub timeout above the deadline, as the default 10 s is, but short enough that the
    // backoff after it comes within the test.
    let hub_timeout = BADGE_DEADLINE + Duration::from_secs(2);
    let node = start_node(&hub.url(), |c| c.hub_timeout = hub_timeout).await;
    let base = &node.url;
    let kinds = [
        format!("{base}/status.svg?organization=acme&repository=app"),
        format!("{base}/docker/pulls/acme/app"),
        format!("{base}/docker/v/acme/app"),
    ];
    // /build has no deadline: it answers what Docker Hub did, a 502 once the hub timeout
    // has passed, with the description the contract names.
    let build = tokio::spawn({
        let url = format!("{base}/build/acme/app?tag=1.2.3");
        async move {
            let started = Instant::now();
            let response = client().get(url).send().await.expect("build");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.expect("json");
            (started.elapsed(), status, body)
        }
    });
    // The first cold request of each kind: the deadline's answer, short-lived.
    let mut first = Vec::new();
    for url in &kinds {
        let (took, max_age, words, cause) = badge(url).await;
        assert!(
            took <= BADGE_DEADLINE + SLACK,
            "{url} took {took:?}: {words}"
        );
        assert_eq!(max_age, PENDING_MAX_AGE.as_secs(), "{url}: {words}");
        assert!(cause.contains("not answered yet"), "{url}: {cause}");
        first.push(words);
    }
    assert_eq!(
        first,
        [
            "Docker: unknown",
            "docker pulls: unresponsive",
            "version: unresponsive"
        ]
    );
    // Then, as a new user reloading would, again and again while the fetches time out and
    // the node backs off from the failing hub: never past the deadline, never "rate
    // limited", until the badges say that Docker Hub is inaccessible.
    let mut backed_off = false;
    let started = Instant::now();
    while !backed_off {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the node never backed off"
        );
        for url in &kinds {
            let (took, _, words, cause) = badge(url).await;
            assert!(
                took <= BADGE_DEADLINE + SLACK,
                "{url} took {took:?}: {words}"
            );
            assert!(!words.contains("rate limited"), "{url}: {words} ({cause})");
            if cause.contains("failed repeatedly") && url.contains("pulls") {
                assert_eq!(words, "docker pulls: inaccessible");
                backed_off = true;
            }
        }
    }
    let (took, status, body) = build.await.expect("build task");
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["request"], "error");
    assert!(
        body["description"]
            .as_str()
            .is_some_and(|d| d.contains("did not answer in time")),
        "{body}"
    );
    assert!(took >= hub_timeout, "/build waited for the hub: {took:?}");

    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_past_the_deadline_goes_on_and_answers_the_next_request() {
    let hub = hub_with(&[(
        "acme/app",
        FakeRepo::with_tags(&["latest"]).counting(1234, 5),
    )])
    .await;
    // Slower than the deadline, quicker than the hub timeout (10 s).
    hub.set_fault(Some(Fault::Slow(BADGE_DEADLINE + Duration::from_secs(1))));
    let node = start_node(&hub.url(), |_| {}).await;
    let pulls = format!("{}/docker/pulls/acme/app", node.url);
    let status = format!("{}/status.svg?organization=acme&repository=app", node.url);
    let (took, _, words, _) = badge(&pulls).await;
    assert!(took <= BADGE_DEADLINE + SLACK, "{took:?}");
    assert_eq!(words, "docker pulls: unresponsive");
    let (took, _, words, _) = badge(&status).await;
    assert!(took <= BADGE_DEADLINE + SLACK, "{took:?}");
    assert_eq!(words, "Docker: unknown");
    // Nobody asks again meanwhile: the fetches finish on their own and fill the cache.
    wait_until(Duration::from_secs(15), "the hub to be asked", || async {
        hub.request_count() >= 3
    })
    .await;
    hub.set_fault(None);
    let before = hub.request_count();
    wait_until(
        Duration::from_secs(15),
        "the pulls to be cached",
        || async { badge(&pulls).await.2 == "docker pulls: 1.2k" },
    )
    .await;
    wait_until(
        Duration::from_secs(15),
        "the status to be cached",
        || async { badge(&status).await.2 == "Docker: ok" },
    )
    .await;
    assert_eq!(
        hub.request_count(),
        before,
        "the answers came from the fetches the first requests started"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_spent_budget_says_so_in_its_own_words() {
    let hub = FakeHub::start().await.expect("hub");
    hub.generate_repos("bench");
    // Two requests a minute, so no reserve: the third reader, from a network of its own,
    // finds the node's budget spent.
    let node = start_node(&hub.url(), |c| c.hub_rate = 2).await;
    let mut words = Vec::new();
    for n in 1..=3u8 {
        let reader = client_from(std::net::Ipv4Addr::new(127, 0, n, 1));
        let url = format!("{}/docker/stars/bench/repo-{n}", node.url);
        let response = reader.get(url).send().await.expect("badge");
        let (_, cause) = max_age_and_cause(response.headers());
        words.push(said(&response.text().await.expect("svg")));
        if n == 3 {
            assert!(cause.contains("this node's request budget"), "{cause}");
        }
    }
    assert_eq!(
        words,
        [
            "docker stars: 1",
            "docker stars: 2",
            "docker stars: rate limited by badge server"
        ]
    );
    node.stop().await;
    // Eight a minute: one client past its pace (two in 15 s) while the node has room and
    // another client has asked too (alone, nothing binds a client).
    let node = start_node(&hub.url(), |c| c.hub_rate = 8).await;
    let bystander = client_from(std::net::Ipv4Addr::new(127, 0, 9, 1));
    let url = format!("{}/docker/stars/bench/repo-9", node.url);
    let response = bystander.get(url).send().await.expect("badge");
    assert_eq!(
        said(&response.text().await.expect("svg")),
        "docker stars: 9"
    );
    let reader = client_from(std::net::Ipv4Addr::new(127, 0, 1, 1));
    let mut words = Vec::new();
    for n in 4..=6 {
        let url = format!("{}/docker/stars/bench/repo-{n}", node.url);
        let response = reader.get(url).send().await.expect("badge");
        words.push(said(&response.text().await.expect("svg")));
    }
    assert_eq!(
        words,
        [
            "docker stars: 4",
            "docker stars: 5",
            "docker stars: rate limited per client"
        ]
    );
    node.stop().await;
}
