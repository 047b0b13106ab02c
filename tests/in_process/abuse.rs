//! What one client can make a node spend for everyone: its share of the Docker Hub budget
//! (all of it when nobody else needs it, never so much that others find none), the gossip
//! rate limit behind a reverse proxy, and the size of an error answer.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{client, client_from, said, start_node, wait_until};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo};
use dockerhub_build_status::federation::GossipRequest;
use dockerhub_build_status::hub::fair::FairShares;

/// One client at 100 requests a second for unique names, for `ABUSE_SECONDS` (10 by
/// default; the documented figure is from 60): other clients' cold badges are still
/// answered and a popular badge stays fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_spend_the_hub_budget_of_everyone() {
    let seconds: u64 = std::env::var("ABUSE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let hub = FakeHub::start().await.expect("hub");
    let tags: Vec<String> = (0..200).map(|i| format!("b{i}")).collect();
    let builds: Vec<(&str, i64)> = tags.iter().map(|t| (t.as_str(), 10)).collect();
    hub.set_repo("acme/app", FakeRepo::with_builds(&builds));
    hub.set_repo("library/nginx", FakeRepo::with_tags(&["latest"]));
    let ttl = Duration::from_secs(4);
    let node = start_node(&hub.url(), |c| {
        c.hub_rate = 120;
        c.cache_ttl = ttl;
    })
    .await;
    let bystander = client_from(Ipv4Addr::new(127, 0, 1, 1));
    let popular = format!("{}/build/library/nginx", node.url);
    let warm = bystander.get(&popular).send().await.expect("warm");
    assert_eq!(warm.status(), 200);

    // The attacker, on 127.0.0.1: a request every 10 ms, each for a name never asked.
    let attacker = client_from(Ipv4Addr::LOCALHOST);
    let base = node.url.clone();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let flood = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut answers = tokio::task::JoinSet::new();
        while Instant::now() < deadline {
            tick.tick().await;
            let url = format!("{base}/status.svg?organization=junk&repository=r{sent}");
            let request = attacker.get(url).send();
            answers.spawn(async move { request.await.map(|r| r.status().as_u16()).ok() });
            sent += 1;
        }
        while answers.join_next().await.is_some() {}
        sent
    });

    // Meanwhile, every 2 s, another reader (each on a network of its own) asks for a cold
    // badge, and one asks for the popular one: with its refreshes every 4 s, 45 hub
    // requests a minute, which the attacker, held to its pace (30 in any 15 s) and kept out
    // of the reserve (24), leaves room for in the budget of 120.
    let mut cold = 0;
    let mut refused = Vec::new();
    let mut oldest_popular = 0;
    while Instant::now() < deadline {
        let url = format!(
            "{}/status.svg?organization=acme&repository=app&tag=b{cold}",
            node.url
        );
        let reader = client_from(Ipv4Addr::new(127, 0, 2 + (cold % 250) as u8, 1));
        let badge = reader.get(&url).send().await.expect("cold badge");
        let svg = badge.text().await.expect("svg");
        if !svg.contains(">ok<") {
            refused.push(cold);
        }
        cold += 1;
        let answer: serde_json::Value = bystander
            .get(&popular)
            .send()
            .await
            .expect("popular")
            .json()
            .await
            .expect("json");
        oldest_popular = oldest_popular.max(answer["age_seconds"].as_u64().unwrap_or(u64::MAX));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let sent = flood.await.expect("flood");
    let hub_requests = hub.received();
    let junk = hub_requests
        .iter()
        .filter(|r| r.path.contains("/junk/"))
        .count();
    eprintln!(
        "hub share: attacker {sent} requests in {seconds} s caused {junk} hub requests of {} in all; \
         bystander {cold} cold badges, {} not answered ok; popular badge at most {oldest_popular} s old",
        hub_requests.len(),
        refused.len()
    );
    assert!(refused.is_empty(), "cold badges refused: {refused:?}");
    assert!(
        oldest_popular <= ttl.as_secs() + 2,
        "the popular badge went {oldest_popular} s without a refresh"
    );
    // Its pace: a quarter of 120 in any 15 s, and never the reserve.
    let shares = FairShares::of_budget(120);
    let allowed = (shares.pace() * (seconds.div_ceil(15) as usize)).min(120 - shares.reserve());
    assert!(junk <= allowed, "{junk} hub requests for the attacker");
    node.stop().await;
}

/// What a badge at `url` says, asked from `client`.
async fn badge_from(client: &reqwest::Client, url: String) -> String {
    let response = client.get(url).send().await.expect("badge");
    said(&response.text().await.expect("svg"))
}

/// An image proxy is one client to a node: GitHub's fetches every README image from a few
/// addresses. Alone it gets every cold badge it asks for, far past the quarter of the
/// budget a fixed share gave it: 200 cold status badges (two hub requests each, the build
/// history's 404 and the tag) within a minute, in pages at its pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alone_a_client_gets_every_cold_badge_it_asks_for() {
    let hub = FakeHub::start().await.expect("hub");
    hub.generate_repos("bench");
    let rate = 600;
    let node = start_node(&hub.url(), |c| c.hub_rate = rate).await;
    let shares = FairShares::of_budget(rate);
    let proxy = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let started = Instant::now();
    let mut not_ok = Vec::new();
    let mut n = 0;
    // Three pages, each within the pace (150 hub requests in any 15 s), so each asked once
    // the one before has left the pace's quarter-minute.
    let mut due = started;
    for size in [67, 67, 66] {
        tokio::time::sleep_until(due.into()).await;
        let mut asked = tokio::task::JoinSet::new();
        // As a proxy does, over a few dozen connections (a node holds at most 64 of one
        // client's).
        let connections = Arc::new(tokio::sync::Semaphore::new(32));
        for _ in 0..size {
            let url = format!(
                "{}/status.svg?organization=bench&repository=repo-{n}",
                node.url
            );
            n += 1;
            let proxy = proxy.clone();
            let connections = Arc::clone(&connections);
            asked.spawn(async move {
                let _connection = connections.acquire_owned().await.expect("open");
                (url.clone(), badge_from(&proxy, url).await)
            });
        }
        while let Some(answer) = asked.join_next().await {
            let (url, words) = answer.expect("task");
            if words != "Docker: ok" {
                not_ok.push(format!("{url}: {words}"));
            }
        }
        due = Instant::now() + Duration::from_millis(15_200);
    }
    let took = started.elapsed();
    eprintln!(
        "alone: {n} cold status badges in {took:?}, {} not ok, {} hub requests",
        not_ok.len(),
        hub.request_count()
    );
    assert_eq!(n, 200);
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert!(
        not_ok.is_empty(),
        "{} not ok, among them {:?}",
        not_ok.len(),
        &not_ok[..not_ok.len().min(3)]
    );
    // 400 hub requests: a fixed quarter share of 600 gave 150 at once and 150 a minute.
    assert_eq!(hub.request_count(), 400);
    assert!(400 <= rate as usize - shares.reserve());
    node.stop().await;
}

/// A flood from one network, then from a second, spends the budget down to its reserve;
/// a reader arriving then still gets its cold badges, and the floods get no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_cannot_starve_a_client_that_comes_after_it() {
    let hub = FakeHub::start().await.expect("hub");
    hub.generate_repos("bench");
    let tags: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    let builds: Vec<(&str, i64)> = tags.iter().map(|t| (t.as_str(), 10)).collect();
    hub.set_repo("acme/app", FakeRepo::with_builds(&builds));
    let rate = 120;
    let node = start_node(&hub.url(), |c| c.hub_rate = rate).await;
    let shares = FairShares::of_budget(rate);
    // Two flooding networks, each asking unique names 50 times a second until told to
    // stop: together past their paces (30 each in 15 s) at once.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut floods = tokio::task::JoinSet::new();
    for network in [1u8, 2] {
        let flooder = client_from(Ipv4Addr::new(127, 0, network, 1));
        let base = node.url.clone();
        let mut stopped = stopped.clone();
        floods.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut answers = tokio::task::JoinSet::new();
            let mut sent = 0u32;
            while !*stopped.borrow() {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let url = format!(
                    "{base}/status.svg?organization=bench&repository=repo-{network}{sent:05}"
                );
                let request = flooder.get(url).send();
                answers.spawn(async move { request.await.is_ok() });
                sent += 1;
            }
            while answers.join_next().await.is_some() {}
        });
    }
    // Both paces spent (60 hub requests): then wait past the quarter-minute for their next.
    wait_until(
        Duration::from_secs(20),
        "the floods' first paces",
        || async { hub.request_count() >= 2 * shares.pace() },
    )
    .await;
    let paced = Instant::now();
    wait_until(
        Duration::from_secs(40),
        "the floods to reach the reserve",
        || async { hub.request_count() >= rate as usize - shares.reserve() },
    )
    .await;
    let reached = paced.elapsed();
    assert!(reached >= Duration::from_secs(10), "the pace held");
    // A reader from a network of its own: every cold badge, from the reserve.
    let reader = client_from(Ipv4Addr::new(127, 0, 9, 1));
    for tag in 0..10 {
        let url = format!(
            "{}/status.svg?organization=acme&repository=app&tag=b{tag}",
            node.url
        );
        assert_eq!(badge_from(&reader, url).await, "Docker: ok", "tag b{tag}");
    }
    let _ = stop.send(true);
    while floods.join_next().await.is_some() {}
    let flooded = hub
        .received()
        .iter()
        .filter(|r| r.path.contains("/bench/"))
        .count();
    eprintln!(
        "floods: {flooded} hub requests, the reserve reached {reached:?} after their first \
         paces; the reader's 10 cold badges ok"
    );
    assert!(
        flooded <= rate as usize - shares.reserve(),
        "{flooded} hub requests for the floods"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_miss_costs_one_call_where_the_hub_said_there_is_no_build_history() {
    let hub = FakeHub::start().await.expect("hub");
    hub.set_repo("library/nginx", FakeRepo::with_tags(&["a", "b", "c"]));
    let node = start_node(&hub.url(), |_| {}).await;
    for tag in ["a", "b", "c", "missing"] {
        let url = format!("{}/build/library/nginx?tag={tag}", node.url);
        let _ = client().get(url).send().await.expect("answer");
    }
    let paths: Vec<String> = hub.received().into_iter().map(|r| r.path).collect();
    let history = paths.iter().filter(|p| p.contains("buildhistory")).count();
    assert_eq!(
        history, 1,
        "build history asked once for the repository: {paths:?}"
    );
    // One build history, four tags, and for the missing tag one look at the repository
    // (which tells "repository not found" from a missing tag).
    assert_eq!(paths.len(), 6, "{paths:?}");
    node.stop().await;
}

/// Empty pushes: each passes the rate limit and changes nothing.
async fn push(client: &reqwest::Client, url: &str, forwarded_for: Option<&str>) -> u16 {
    let body = serde_json::to_vec(&GossipRequest::push(Vec::new())).expect("json");
    let mut request = client
        .post(format!("{url}/gossip"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_gossip_budget() {
    let hub = FakeHub::start().await.expect("hub");
    let proxied = start_node(&hub.url(), |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("cidr")];
    })
    .await;
    let direct = start_node(&hub.url(), |_| {}).await;
    let proxy = client_from(Ipv4Addr::LOCALHOST);
    for node in [&proxied, &direct] {
        // One sender spends its burst (60) and more.
        let mut refused = 0;
        for _ in 0..80 {
            if push(&proxy, &node.url, Some("203.0.113.1")).await == 429 {
                refused += 1;
            }
        }
        assert!(refused >= 19, "{refused} of 80 refused");
    }
    // Behind the proxy an honest sender is still heard; without --trusted-proxies the
    // header counts for nothing and everyone behind the proxy is one sender.
    assert_eq!(push(&proxy, &proxied.url, Some("198.51.100.1")).await, 200);
    assert_eq!(push(&proxy, &direct.url, Some("198.51.100.1")).await, 429);
    // From an address that is not a trusted proxy, the header is ignored: a client that
    // names a fresh address each time gets no fresh budget.
    let other = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let spoofed = (0..80).map(|i| format!("192.0.2.{i}"));
    let mut refused = 0;
    for address in spoofed {
        if push(&other, &proxied.url, Some(&address)).await == 429 {
            refused += 1;
        }
    }
    assert!(
        refused >= 19,
        "spoofed headers were believed: {refused} of 80 refused"
    );
    proxied.stop().await;
    direct.stop().await;
}

#[tokio::test]
async fn a_trusted_proxy_is_not_held_to_the_connection_cap_per_client() {
    let hub = FakeHub::start().await.expect("hub");
    let node = start_node(&hub.url(), |c| {
        c.trusted_proxies = vec!["127.0.0.0/30".parse().expect("cidr")];
        c.max_connections_per_client = 2;
    })
    .await;
    let addr = node.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    let status = client()
        .get(format!("{}/health", node.url))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(status.ok(), Some(200));
    drop(held);
    node.stop().await;
}

#[tokio::test]
async fn an_error_answer_quotes_only_an_excerpt_of_the_body() {
    let hub = FakeHub::start().await.expect("hub");
    let node = start_node(&hub.url(), |_| {}).await;
    let variant = "x".repeat(500 * 1024);
    let body = format!("{{\"{variant}\":{{}}}}");
    let response = client()
        .post(format!("{}/gossip", node.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 400);
    let text = response.text().await.expect("body");
    eprintln!(
        "a 500 KiB unknown variant: a {}-byte error answer",
        text.len()
    );
    assert!(text.len() < 1024, "{} bytes", text.len());
    assert!(text.contains("unknown variant"), "{text}");
    node.stop().await;
}
