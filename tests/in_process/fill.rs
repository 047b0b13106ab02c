//! The network as one cache, end to end over real sockets: nodes in this process that list
//! each other fill their caches from the owner of each resource; a node that lies in its
//! fills (a modified node: it answers as the node would, then changes the answer and signs
//! it with its own key) is caught by the checks against the (fake) hub and loses its trust,
//! whatever keeps the budget busy, however it lies and whenever it begins; and hostile fill
//! requests and answers change nothing and cost only their sender.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dockerhub_build_status::config::{Config, Fill};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo};
use dockerhub_build_status::federation::{Identity, Timestamp};
use dockerhub_build_status::fill::FillRefusal;
use dockerhub_build_status::fill::wire::FillRequest;
use dockerhub_build_status::http::{App, server};
use dockerhub_build_status::node::Node;
use tokio::net::TcpListener;

use crate::common::liar::{Behaviour, serve_dishonestly};
use crate::common::{client, get, get_json, listed_servers, said, wait_until};

struct Network {
    urls: Vec<String>,
    nodes: Vec<Node>,
    hub: FakeHub,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
    _stops: Vec<tokio::sync::watch::Sender<bool>>,
}

/// `count` nodes listing each other through their peers files, the `behaviours` given (the
/// rest honest), all in front of one fake hub with `repos` repositories `fill/repo-N`, each
/// with `N * 1000 + 7` pulls.
async fn network(count: usize, behaviours: &[Behaviour], repos: usize) -> Network {
    network_with(count, behaviours, repos, |_, _| {}).await
}

/// An honest entry and a node behaving as `liar`, with the budget to answer every fill.
async fn entry_and_liar(liar: Behaviour, repos: usize) -> Network {
    network_with(2, &[Behaviour::Honest, liar], repos, |i, c| {
        if i == 1 {
            c.hub_rate = 100_000;
        }
    })
    .await
}

/// [`network`] with `tweak` applied to each node's flags, with the node's index.
async fn network_with(
    count: usize,
    behaviours: &[Behaviour],
    repos: usize,
    tweak: impl Fn(usize, &mut Config),
) -> Network {
    let hub = FakeHub::start().await.expect("fake hub");
    for n in 0..repos {
        hub.set_repo(
            &format!("fill/repo-{n}"),
            FakeRepo::with_tags(&["latest"]).counting(n as u64 * 1000 + 7, 3),
        );
    }
    let mut listeners = Vec::new();
    for _ in 0..count {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.local_addr().expect("address"))
        .collect();
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();
    let mut nodes = Vec::new();
    let mut tasks = Vec::new();
    let mut stops = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut config = Config::for_tests(hub.url().parse().expect("hub URL"));
        config.listen = addrs[i];
        config.public_url = Some(urls[i].parse().expect("URL"));
        config.gossip_interval = Duration::from_millis(300);
        config.probe_interval = Duration::from_millis(400);
        tweak(i, &mut config);
        let peers: String = urls
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, url)| format!("[[peer]]\nurl = \"{url}\"\n"))
            .collect();
        let peers_file = config.peers.clone().expect("a peers file");
        std::fs::write(&peers_file, peers).expect("write peers.toml");
        let node = Node::new(config).expect("node starts");
        let behaviour = behaviours.get(i).cloned().unwrap_or(Behaviour::Honest);
        let app = App::new(node.clone());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        if matches!(behaviour, Behaviour::Honest) {
            tasks.push(tokio::spawn(async move {
                let mut stopped = stopped;
                server::run(listener, app, async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            }));
        } else {
            tasks.push(tokio::spawn(Arc::clone(node.driver()).run(stopped)));
            tasks.push(tokio::spawn(serve_dishonestly(listener, app, behaviour)));
        }
        stops.push(stop);
        nodes.push(node);
    }
    let everyone = {
        let mut sorted = urls.clone();
        sorted.sort();
        sorted
    };
    for url in &urls {
        let everyone = everyone.clone();
        wait_until(
            Duration::from_secs(30),
            "every node lists every node",
            || {
                let everyone = everyone.clone();
                async move { listed_servers(url).await == Some(everyone) }
            },
        )
        .await;
    }
    Network {
        urls,
        nodes,
        hub,
        _tasks: tasks,
        _stops: stops,
    }
}

/// The pulls badge's message as shields.io formats `N * 1000 + 7`.
fn pulls_text(n: usize) -> String {
    let pulls = n as u64 * 1000 + 7;
    if pulls < 1000 {
        pulls.to_string()
    } else {
        format!("{}k", pulls / 1000)
    }
}

/// One counter of `/metrics`, by its whole label set as the exposition writes it.
async fn counter(url: &str, series: &str) -> u64 {
    let (_, _, text) = get(&format!("{url}/metrics")).await;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// `dbs_fills_total` of `node` for `role` and `outcome`.
async fn fill_count(node: &str, role: &str, outcome: &str) -> u64 {
    counter(
        node,
        &format!("dbs_fills_total{{outcome=\"{outcome}\",role=\"{role}\"}}"),
    )
    .await
}

fn repository_requests(hub: &FakeHub, n: usize) -> usize {
    let path = format!("/v2/namespaces/fill/repositories/repo-{n}");
    hub.received()
        .iter()
        .filter(|r| r.path.trim_end_matches('/') == path)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_resource_is_fetched_once_by_the_network() {
    const REPOS: usize = 30;
    let net = network(3, &[], REPOS).await;
    // Every badge through every node: without fills, three hub requests per repository.
    for url in &net.urls {
        for n in 0..REPOS {
            let (status, _, svg) = get(&format!("{url}/docker/pulls/fill/repo-{n}")).await;
            assert_eq!(status, 200);
            assert!(svg.contains(&pulls_text(n)), "repo-{n} via {url}: {svg}");
        }
    }
    let total: usize = (0..REPOS).map(|n| repository_requests(&net.hub, n)).sum();
    // One fetch each, plus the checks: on each node, the first fill from each of the other
    // two nodes, one of the next four (twelve), and one in each 64 of the others.
    assert!(
        total <= REPOS + 12 + 6,
        "{total} hub requests for {REPOS} repositories asked through 3 nodes"
    );
    let mut filled = 0;
    for url in &net.urls {
        // Honest fills agree with the hub: a check that finds fault with them would drop
        // every honest node.
        assert_eq!(
            counter(url, "dbs_fill_verifications_total{result=\"disagreed\"}").await,
            0
        );
        filled += fill_count(url, "asked", "filled").await;
    }
    assert!(filled >= REPOS as u64, "only {filled} fills");
    // The front page's view names the nodes that filled for this one.
    let (_, servers) = get_json(&format!("{}/servers?all=true", net.urls[0])).await;
    let fills = servers["fills"].as_array().expect("a fills list");
    assert!(
        fills
            .iter()
            .any(|f| f["supplied"].as_u64().unwrap_or(0) > 0 && f["trusted"] == true),
        "{servers}"
    );
}

/// The nodes `url` lists, with their weights.
async fn listed_weights(url: &str) -> Vec<(String, f64)> {
    let (_, servers) = get_json(&format!("{url}/servers")).await;
    servers["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| {
            (
                s["url"].as_str().expect("url").to_owned(),
                s["weight"].as_f64().expect("weight"),
            )
        })
        .collect()
}

/// The owner of the resource with `owner_key` among `listed`.
fn owner_in(listed: &[(String, f64)], owner_key: &str) -> String {
    let ranked = dockerhub_build_status::federation::rendezvous::rank(
        listed,
        owner_key,
        |s| s.0.as_str(),
        |s| s.1,
    );
    ranked[0].0.clone()
}

/// The owner of the resource with `owner_key` among the nodes `url` lists.
async fn owner_of(url: &str, owner_key: &str) -> String {
    owner_in(&listed_weights(url).await, owner_key)
}

/// The owner of a tag's build status among the nodes `url` lists.
async fn status_owner(url: &str, repo: &str) -> String {
    let key = dockerhub_build_status::federation::rendezvous::item_key("fill", repo, "latest");
    owner_of(url, &key).await
}

/// The numbers N from `from` on, below `to`, of the repositories `fill/repo-N` whose
/// repository resource (the pulls badge) `owner` owns among the nodes `url` lists.
async fn repositories_owned_by(url: &str, owner: &str, from: usize, to: usize) -> Vec<usize> {
    let listed = listed_weights(url).await;
    (from..to)
        .filter(|n| owner_in(&listed, &format!("v2/repositories/fill/repo-{n}")) == owner)
        .collect()
}

/// Whether `node` no longer trusts the fills of `supplier`.
async fn distrusts(node: &str, supplier: &str) -> bool {
    let (_, servers) = get_json(&format!("{node}/servers?all=true")).await;
    servers["fills"].as_array().is_some_and(|fills| {
        fills
            .iter()
            .any(|f| f["url"].as_str() == Some(supplier) && f["trusted"] == false)
    })
}

/// How many of `supplier`'s fills `node` used.
async fn supplied(node: &str, supplier: &str) -> u64 {
    let (_, servers) = get_json(&format!("{node}/servers?all=true")).await;
    servers["fills"]
        .as_array()
        .and_then(|fills| fills.iter().find(|f| f["url"].as_str() == Some(supplier)))
        .and_then(|f| f["supplied"].as_u64())
        .unwrap_or(0)
}

/// A repository `fill/<prefix>-N` whose status `owner` owns, from N = `from` on.
async fn owned_by(url: &str, owner: &str, prefix: &str, from: usize) -> (usize, String) {
    for n in from.. {
        let repo = format!("{prefix}-{n}");
        if status_owner(url, &repo).await == owner {
            return (n, repo);
        }
    }
    unreachable!("some repository has every owner")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_the_hub_rate_limits_answers_stale_or_sends_the_asker_on() {
    let net = network_with(2, &[], 0, |_, c| c.cache_ttl = Duration::from_secs(1)).await;
    let (asker, owner) = (net.urls[0].clone(), net.urls[1].clone());
    // A repository the second node owns, cached there.
    let (n, repo) = owned_by(&asker, &owner, "stale", 0).await;
    net.hub
        .set_repo(&format!("fill/{repo}"), FakeRepo::with_tags(&["latest"]));
    let (status, _) = get_json(&format!("{owner}/build/fill/{repo}")).await;
    assert_eq!(status, 200);
    net.hub.set_fault(Some(
        dockerhub_build_status::demo::sample_hub::Fault::RateLimit {
            retry_after_secs: 30,
        },
    ));
    // Time must pass for the owner's copy to go stale.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = get_json(&format!("{asker}/build/fill/{repo}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stale"], true, "the owner's stale copy: {body}");
    assert!(body["age_seconds"].as_u64().unwrap_or(0) >= 1, "{body}");
    // Nothing cached anywhere: the asker's own hub rate-limits it too (its check of the
    // stale copy waits for room, and the owner with it), and the answer says that.
    let (_, fresh) = owned_by(&asker, &owner, "stale", n + 1).await;
    let (status, body) = get_json(&format!("{asker}/build/fill/{fresh}")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["description"]
            .as_str()
            .unwrap_or("")
            .contains("rate limit"),
        "{body}"
    );
    // Asked for it, the owner says it has nothing, and the asker goes on.
    let request = FillRequest::new(
        net.nodes[0].driver().identity(),
        net.nodes[1].driver().identity().public_key(),
        "status",
        &format!("fill/{fresh}:latest"),
        dockerhub_build_status::tools::clock::wall(),
        [9; 16],
    );
    let response = client()
        .post(format!("{owner}/fill"))
        .body(serde_json::to_vec(&request).expect("json"))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status().as_u16(), 503);
    assert!(fill_count(&owner, "served", "unavailable").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_request_at_its_owner_costs_no_fill() {
    let net = network(3, &[], 1).await;
    for n in 0..12 {
        let repo = format!("build-{n}");
        net.hub
            .set_repo(&format!("fill/{repo}"), FakeRepo::with_tags(&["latest"]));
        let owner = status_owner(&net.urls[0], &repo).await;
        let (status, _) = get_json(&format!("{owner}/build/fill/{repo}")).await;
        assert_eq!(status, 200);
    }
    for url in &net.urls {
        let asked = fill_count(url, "asked", "filled").await;
        assert_eq!(asked, 0, "{url} asked another node for a status it owns");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_node_is_caught_within_twenty_fills() {
    const REPOS: usize = 60;
    // Node 4 lies; node 0 is the honest entry.
    let behaviours = [
        Behaviour::Honest,
        Behaviour::Honest,
        Behaviour::Honest,
        Behaviour::Honest,
        Behaviour::Lying,
    ];
    // One test client asks 140 cold badges within seconds, past its pace in the default
    // budget (30 in 15 s): a budget that lets it.
    let net = network_with(5, &behaviours, REPOS, |_, c| c.hub_rate = 1200).await;
    let entry = &net.urls[0];
    let liar = &net.urls[4];
    for n in 0..REPOS {
        let (status, _, _) = get(&format!("{entry}/docker/pulls/fill/repo-{n}")).await;
        assert_eq!(status, 200);
    }
    wait_until(
        Duration::from_secs(10),
        "the entry to distrust the liar",
        || async {
            let (_, servers) = get_json(&format!("{entry}/servers?all=true")).await;
            servers["fills"].as_array().is_some_and(|fills| {
                fills
                    .iter()
                    .any(|f| f["url"].as_str() == Some(liar.as_str()) && f["trusted"] == false)
            })
        },
    )
    .await;
    let (_, servers) = get_json(&format!("{entry}/servers?all=true")).await;
    let supplied = servers["fills"]
        .as_array()
        .and_then(|fills| {
            fills
                .iter()
                .find(|f| f["url"].as_str() == Some(liar.as_str()))
        })
        .and_then(|f| f["supplied"].as_u64())
        .expect("the liar's fills");
    assert!(
        (1..=20).contains(&supplied),
        "the liar supplied {supplied} fills before it was caught"
    );
    assert!(counter(entry, "dbs_fill_verifications_total{result=\"disagreed\"}").await >= 1);
    // Only the liar: every honest node that filled for the entry keeps its trust.
    for fill in servers["fills"].as_array().expect("fills") {
        if fill["url"].as_str() != Some(liar.as_str()) {
            assert_eq!(
                fill["trusted"], true,
                "an honest node lost its trust: {fill}"
            );
        }
    }
    // From now on, every badge is true: the liar's entries were dropped, and it is not asked.
    let served_before = fill_count(liar, "served", "ok").await;
    for n in 0..REPOS {
        let (_, _, svg) = get(&format!("{entry}/docker/pulls/fill/repo-{n}")).await;
        assert!(
            svg.contains(&pulls_text(n)),
            "repo-{n} after the liar was caught: {svg}"
        );
        assert!(!svg.contains("M<"), "repo-{n}: a false count {svg}");
    }
    for n in REPOS..REPOS + 20 {
        net.hub.set_repo(
            &format!("fill/repo-{n}"),
            FakeRepo::with_tags(&["latest"]).counting(n as u64 * 1000 + 7, 3),
        );
        let (_, _, svg) = get(&format!("{entry}/docker/pulls/fill/repo-{n}")).await;
        assert!(svg.contains(&pulls_text(n)), "repo-{n}: {svg}");
    }
    let served_after = fill_count(liar, "served", "ok").await;
    // Only the entry asked anything in this test, so any fill the liar served since came
    // from it.
    assert_eq!(served_after, served_before, "the liar kept being asked");
    drop(net.nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_change_nothing_and_pass_the_sender_over() {
    const REPOS: usize = 20;
    let net = network(3, &[Behaviour::Honest, Behaviour::Garbage], REPOS).await;
    let entry = &net.urls[0];
    for n in 0..REPOS {
        let (status, _, svg) = get(&format!("{entry}/docker/pulls/fill/repo-{n}")).await;
        assert_eq!(status, 200);
        assert!(svg.contains(&pulls_text(n)), "repo-{n}: {svg}");
    }
    let bad = counter(
        entry,
        "dbs_fills_total{outcome=\"bad_answer\",role=\"asked\"}",
    )
    .await;
    assert!(bad >= 1, "no bad answer was counted");
    // Passed over after its first bad answer: at most a couple of asks in this minute.
    assert!(
        bad <= 2,
        "{bad} bad answers: the sender was not passed over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_fill_requests_are_refused_and_cost_nothing() {
    let net = network(2, &[], 1).await;
    let owner = &net.urls[0];
    let post = |body: Vec<u8>| {
        let url = format!("{owner}/fill");
        async move {
            let response = client()
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("an answer");
            response.status().as_u16()
        }
    };
    let before = net.hub.request_count();
    assert_eq!(post(b"not json".to_vec()).await, 400);
    assert_eq!(post(vec![b' '; 100_000]).await, 413);
    // A well-formed request from a node the owner does not list.
    let stranger = Identity::from_seed([77; 32]);
    let now = Timestamp::from_unix_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_millis() as u64,
    );
    let me = net.nodes[0].driver().identity().public_key();
    let request = FillRequest::new(&stranger, me, "repository", "fill/repo-0", now, [1; 16]);
    assert_eq!(post(serde_json::to_vec(&request).expect("json")).await, 403);
    // The listed node's key with a signature that is not its own.
    let listed_key = net.nodes[1].driver().identity().public_key();
    let mut forged = request.clone();
    forged.from = listed_key;
    assert_eq!(post(serde_json::to_vec(&forged).expect("json")).await, 403);
    // A request of the listed node, served once, refused when replayed; an invalid name is
    // refused before anything is asked of the hub.
    let asker = net.nodes[1].driver().identity();
    let good = FillRequest::new(asker, me, "repository", "fill/repo-0", now, [2; 16]);
    let body = serde_json::to_vec(&good).expect("json");
    assert_eq!(post(body.clone()).await, 200);
    assert_eq!(post(body).await, 403);
    let invalid = FillRequest::new(asker, me, "repository", "Fill/../x", now, [3; 16]);
    assert_eq!(post(serde_json::to_vec(&invalid).expect("json")).await, 400);
    let unknown = FillRequest::new(asker, me, "everything", "fill/repo-0", now, [4; 16]);
    assert_eq!(post(serde_json::to_vec(&unknown).expect("json")).await, 400);
    // Only the one good request reached the hub.
    assert_eq!(net.hub.request_count(), before + 1);
    assert!(fill_count(owner, "served", "unlisted").await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_off_asks_the_hub_directly() {
    let hub = FakeHub::start().await.expect("fake hub");
    hub.set_repo("fill/solo", FakeRepo::with_tags(&["latest"]).counting(5, 1));
    let node = crate::common::start_node(&hub.url(), |c| c.fill = Fill::Off).await;
    let (status, _, svg) = get(&format!("{}/docker/pulls/fill/solo", node.url)).await;
    assert_eq!(status, 200);
    assert!(svg.contains(">5<"), "{svg}");
    let refused = client()
        .post(format!("{}/fill", node.url))
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status().as_u16(), 503);
    node.stop().await;
}

/// The text a pulls badge of `fill/repo-N` shows through `node`.
async fn pulls_badge(node: &str, n: usize) -> String {
    let (status, _, svg) = get(&format!("{node}/docker/pulls/fill/repo-{n}")).await;
    assert_eq!(status, 200);
    said(&svg)
}

/// A badge is false when it shows a count, and not the hub's: an error word ("rate
/// limited") is not a lie.
fn is_false_pulls(text: &str, n: usize) -> bool {
    let message = text.trim_start_matches("docker pulls: ");
    message.chars().next().is_some_and(|c| c.is_ascii_digit()) && message != pulls_text(n)
}

/// The finding: checks ran only while less than half of the asker's budget was spent, so a
/// liar that kept it busy lied unchecked (300 of 300 badges false, no check). Now checks
/// have a reserve: with three quarters of the budget spent by others, the liar's first fill
/// is checked and it is caught. (That a check waiting for room gets the first room that
/// comes back, even when others spent the whole window, is
/// `hub::budget::tests::a_waiting_check_gets_the_first_room_that_comes_back`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_is_checked_while_others_keep_the_budget_spent() {
    const REPOS: usize = 300;
    let net = network_with(2, &[Behaviour::Honest, Behaviour::Lying], REPOS, |i, c| {
        // The entry: 40 hub requests a minute. The liar answers every fill asked of it.
        c.hub_rate = if i == 0 { 40 } else { 100_000 };
    })
    .await;
    let (entry, liar) = (&net.urls[0], &net.urls[1]);
    let own = repositories_owned_by(entry, entry, 0, REPOS).await;
    let lied = repositories_owned_by(entry, liar, 0, REPOS).await;
    // Cold badges of repositories the entry owns spend three quarters of its budget.
    let spent = 30;
    for &n in &own[..spent] {
        assert_eq!(
            pulls_badge(entry, n).await,
            format!("docker pulls: {}", pulls_text(n))
        );
    }
    let checks_before = verifications(entry).await;
    // Now the liar's badges: each is a fill, and its first is checked from the reserve.
    let mut false_badges = 0;
    let mut asked = 0;
    for &n in &lied {
        asked += 1;
        if is_false_pulls(&pulls_badge(entry, n).await, n) {
            false_badges += 1;
        }
        if distrusts(entry, liar).await {
            break;
        }
    }
    wait_until(
        Duration::from_secs(10),
        "the entry to distrust the liar",
        || distrusts(entry, liar),
    )
    .await;
    let checks = verifications(entry).await - checks_before;
    eprintln!(
        "budget spent by others ({spent} of 40): {checks} checks made, the liar caught after \
         {asked} badges, {false_badges} of them false"
    );
    assert!(checks >= 1);
    assert!(false_badges <= 1, "{false_badges} false badges");
}

/// Every check of a fill this node made, whatever it found.
async fn verifications(node: &str) -> u64 {
    let mut sum = 0;
    for result in ["agreed", "disagreed", "failed"] {
        sum += counter(
            node,
            &format!("dbs_fill_verifications_total{{result=\"{result}\"}}"),
        )
        .await;
    }
    sum
}

/// The finding: any status 0–9 passed the check (600 of 600 badges said "building" for
/// "ok"), and the source was not compared. Now a building status from the tag endpoint is
/// refused unasked (that endpoint only ever says 10), and one claimed from build history is
/// caught by the first check (the hub answers from the tag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_building_status_is_no_excuse() {
    let net = network_with(
        3,
        &[
            Behaviour::Honest,
            Behaviour::Building("tag"),
            Behaviour::Building("buildhistory"),
        ],
        0,
        |i, c| {
            if i > 0 {
                c.hub_rate = 100_000;
            }
        },
    )
    .await;
    let entry = &net.urls[0];
    let mut said_building = Vec::new();
    let mut asked = [0; 3];
    for n in 0..60 {
        let repo = format!("status-{n}");
        net.hub
            .set_repo(&format!("fill/{repo}"), FakeRepo::with_tags(&["latest"]));
        let owner = status_owner(entry, &repo).await;
        let Some(i) = net.urls.iter().position(|u| *u == owner) else {
            continue;
        };
        if i == 0 || asked[i] == 8 {
            continue;
        }
        asked[i] += 1;
        let (_, _, svg) = get(&format!(
            "{entry}/status.svg?organization=fill&repository={repo}"
        ))
        .await;
        if said(&svg) != "Docker: ok" {
            said_building.push((i, said(&svg)));
        }
    }
    assert_eq!(asked, [0, 8, 8], "each liar owns enough of the 60");
    // The tag endpoint's impossible "building" is never used (and its sender passed over,
    // so some of its repositories went to the other liar); build history's is served once
    // at most, then caught by its check.
    assert_eq!(supplied(entry, &net.urls[1]).await, 0);
    assert!(said_building.len() <= 1, "{said_building:?}");
    wait_until(
        Duration::from_secs(10),
        "the entry to distrust the liar claiming build history",
        || distrusts(entry, &net.urls[2]),
    )
    .await;
    assert!(
        fill_count(entry, "asked", "unusable").await >= 1,
        "the tag endpoint's building was refused as unusable"
    );
}

/// The finding: lowered pull counts passed the check (7,000 shown as 0: within "a tenth
/// plus 10,000"). Now the first check catches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_pull_count_is_caught() {
    const REPOS: usize = 40;
    let net = entry_and_liar(Behaviour::NoPulls, REPOS).await;
    let (entry, liar) = (&net.urls[0], &net.urls[1]);
    // Repositories of 7,007 pulls and more.
    let lied = repositories_owned_by(entry, liar, 7, REPOS).await;
    let mut false_badges = 0;
    for &n in &lied {
        if is_false_pulls(&pulls_badge(entry, n).await, n) {
            false_badges += 1;
        }
    }
    wait_until(
        Duration::from_secs(10),
        "the entry to distrust the liar",
        || distrusts(entry, liar),
    )
    .await;
    assert!(false_badges <= 1, "{false_badges} of {} false", lied.len());
}

/// The finding: a claimed age of a day excused any change to a tag pushed that day (100 of
/// 100 image sizes false). Now a copy older than a tag lives is used only when this node's
/// own hub refuses, and within that, a change under the same push is caught whatever age is
/// claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_age_excuses_no_change_to_a_tag() {
    const REPOS: usize = 40;
    let net = network_with(
        3,
        &[
            Behaviour::Honest,
            Behaviour::Resized(Duration::from_secs(86_400)),
            Behaviour::Resized(Duration::from_secs(300)),
        ],
        REPOS,
        |i, c| {
            if i > 0 {
                c.hub_rate = 100_000;
            }
        },
    )
    .await;
    let entry = &net.urls[0];
    // What the hub says: one image of 1,234,567 bytes; the liars double it.
    let truth = "image size: 1.18 MiB";
    let mut wrong = Vec::new();
    let mut asked = [0; 3];
    for n in 0..REPOS {
        let key = format!("v2/repositories/fill/repo-{n}/tags/latest");
        let owner = owner_of(entry, &key).await;
        let i = net.urls.iter().position(|u| *u == owner).expect("listed");
        asked[i] += 1;
        let (_, _, svg) = get(&format!("{entry}/docker/image-size/fill/repo-{n}/latest")).await;
        if said(&svg) != truth {
            wrong.push((i, said(&svg)));
        }
    }
    assert!(asked[1] >= 5 && asked[2] >= 5, "{asked:?}");
    // A day old: the hub is asked instead, and no badge is false.
    assert!(wrong.iter().all(|(i, _)| *i == 2), "{wrong:?}");
    // Five minutes old, with other images under the same push: caught by the first check.
    assert!(wrong.len() <= 1, "{wrong:?}");
    wait_until(
        Duration::from_secs(10),
        "the entry to distrust the liar of five minutes",
        || distrusts(entry, &net.urls[2]),
    )
    .await;
}

/// A liar honest in its first fills to a node, then lying in every fill: false badges the
/// node serves before its checks catch it, over ten runs with different seeds of the node's
/// check schedule. The bound is `trust::MAX_UNCHECKED` fills (each badge here is asked once,
/// so a false fill is one false badge); the figures are in docs/RELIABILITY.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liar_honest_at_first_is_caught_within_the_bound() {
    use dockerhub_build_status::fill::trust::MAX_UNCHECKED;
    const REPOS: usize = 1200;
    const RUNS: u64 = 10;
    let mut figures = Vec::new();
    for seed in 0..RUNS {
        let fills = Arc::new(AtomicUsize::new(0));
        // Honest long enough to earn blocks of 64, then at a point of the schedule that
        // differs from run to run.
        let honest = 20 + (seed as usize * 37) % 64;
        let net = network_with(
            2,
            &[
                Behaviour::Honest,
                Behaviour::TurnsAfter(honest, Arc::clone(&fills)),
            ],
            REPOS,
            // The test client asks some hundred cold badges at once: fills for them are
            // charged to its share of the entry's fills, which must not be what stops it.
            |_, c| c.hub_rate = 100_000,
        )
        .await;
        net.nodes[0].fills().seed_checks(seed);
        let (entry, liar) = (&net.urls[0], &net.urls[1]);
        let lied = repositories_owned_by(entry, liar, 0, REPOS).await;
        let mut false_badges = 0;
        let mut caught = false;
        for &n in &lied {
            if is_false_pulls(&pulls_badge(entry, n).await, n) {
                false_badges += 1;
            }
            if fills.load(Ordering::SeqCst) > honest && distrusts(entry, liar).await {
                caught = true;
                break;
            }
        }
        assert!(caught, "seed {seed}: not caught in {} badges", lied.len());
        assert!(
            false_badges <= MAX_UNCHECKED as usize,
            "seed {seed}: {false_badges} false badges"
        );
        figures.push(false_badges);
    }
    let mean = figures.iter().sum::<usize>() as f64 / figures.len() as f64;
    let mut sorted = figures.clone();
    sorted.sort_unstable();
    eprintln!(
        "false badges before detection, {RUNS} runs: {figures:?}; sorted {sorted:?}; mean \
         {mean:.1}; bound {MAX_UNCHECKED}"
    );
}

/// Distrust is never hearsay: each node that a liar lies to catches it with its own check,
/// and a node it has not lied to keeps asking it until its own check says otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_distrusts_a_liar_through_its_own_checks() {
    const REPOS: usize = 120;
    let net = network_with(
        4,
        &[
            Behaviour::Honest,
            Behaviour::Honest,
            Behaviour::Honest,
            Behaviour::Lying,
        ],
        REPOS,
        |i, c| {
            if i == 3 {
                c.hub_rate = 100_000;
            }
        },
    )
    .await;
    let liar = &net.urls[3];
    for entry in &net.urls[..2] {
        for n in repositories_owned_by(entry, liar, 0, REPOS).await {
            pulls_badge(entry, n).await;
        }
        wait_until(
            Duration::from_secs(10),
            "the node to distrust the liar",
            || distrusts(entry, liar),
        )
        .await;
        assert!(counter(entry, "dbs_fill_verifications_total{result=\"disagreed\"}").await >= 1);
    }
    // The third heard nothing from the other two: it still asks the liar, and its own first
    // check catches it.
    let third = &net.urls[2];
    assert!(!distrusts(third, liar).await);
    let lied = repositories_owned_by(third, liar, 0, REPOS).await;
    pulls_badge(third, lied[0]).await;
    assert_eq!(supplied(third, liar).await, 1, "it asked the liar");
    wait_until(
        Duration::from_secs(10),
        "the third to distrust the liar",
        || distrusts(third, liar),
    )
    .await;
    assert_eq!(
        counter(third, "dbs_fill_verifications_total{result=\"disagreed\"}").await,
        1
    );
}

/// A client whose connections come from `ip` (any of 127.0.0.0/8 reaches loopback).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A signed fill request of node `from` to node `to` in `net`, sent from `client`: the
/// status code and the `Retry-After` header.
async fn post_fill(
    net: &Network,
    client: &reqwest::Client,
    from: usize,
    to: usize,
    key: &str,
    nonce: u32,
) -> (u16, Option<String>) {
    let mut nonce_bytes = [7u8; 16];
    nonce_bytes[..4].copy_from_slice(&nonce.to_le_bytes());
    nonce_bytes[4] = from as u8;
    let request = FillRequest::new(
        net.nodes[from].driver().identity(),
        net.nodes[to].driver().identity().public_key(),
        "repository",
        key,
        dockerhub_build_status::tools::clock::wall(),
        nonce_bytes,
    );
    let response = client
        .post(format!("{}/fill", net.urls[to]))
        .body(serde_json::to_vec(&request).expect("json"))
        .send()
        .await
        .expect("an answer");
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), retry)
}

/// The finding: four listed nodes on two addresses each had a share of their own, and
/// spent an owner's whole hub budget in 30 s (a bystander's cold badges then read "rate
/// limited" 14 of 15 times), and the owner answered 503. Now every fill from one network is
/// that network's, as its clients' requests are: beside a bystander it keeps that network's
/// pace, past which the owner answers 429 with `Retry-After`, and the bystander finds room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_from_one_network_share_one_allowance_and_hear_429() {
    const REPOS: usize = 160;
    let net = network_with(5, &[], REPOS, |i, c| {
        if i == 0 {
            // The owner: 40 a minute, 36 for everything but checks; beside another client
            // a network spends at most 10 in 15 s.
            c.hub_rate = 40;
        }
    })
    .await;
    let owner = &net.urls[0];
    let bystander = client_from(Ipv4Addr::new(127, 0, 9, 1));
    let cold_status = |n: usize| {
        let bystander = bystander.clone();
        let url = format!("{owner}/status.svg?organization=fill&repository=repo-{n}");
        async move {
            let svg = bystander
                .get(url)
                .send()
                .await
                .expect("answer")
                .text()
                .await
                .expect("body");
            said(&svg)
        }
    };
    // Repositories whose status the owner fetches itself, for the bystander.
    let mut own = Vec::new();
    for n in 100..REPOS {
        if status_owner(owner, &format!("repo-{n}")).await == *owner {
            own.push(n);
        }
    }
    assert!(own.len() >= 4, "{own:?}");
    // The bystander is there first: one cold badge.
    assert_eq!(cold_status(own[0]).await, "Docker: ok");
    // All four other nodes ask, from one network, for repositories nobody has cached.
    let attackers = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let mut answers = std::collections::HashMap::<u16, usize>::new();
    let mut retry_after = None;
    for n in 0..80 {
        let from = 1 + n % 4;
        let (status, retry) = post_fill(
            &net,
            &attackers,
            from,
            0,
            &format!("fill/repo-{n}"),
            n as u32,
        )
        .await;
        *answers.entry(status).or_default() += 1;
        if status == 429 {
            retry_after = retry_after.or(retry);
        }
    }
    let served = answers.get(&200).copied().unwrap_or(0);
    eprintln!("80 fills from four nodes of one network beside a bystander: {answers:?}");
    assert!((1..=10).contains(&served), "{answers:?}");
    assert!(answers.get(&429).copied().unwrap_or(0) >= 70, "{answers:?}");
    assert!(!answers.contains_key(&503), "{answers:?}");
    let retry_after: u64 = retry_after
        .expect("a Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // The bystander still gets its cold badges (two hub requests each, the first one: three
    // more keep it within its own pace).
    let mut limited = Vec::new();
    for &n in &own[1..4] {
        let said = cold_status(n).await;
        if said != "Docker: ok" {
            limited.push(said);
        }
    }
    assert!(limited.is_empty(), "{limited:?}");
}

/// The finding: a captured request could be replayed to another node (the signed bytes did
/// not name the owner). Now another node refuses it, and renaming it breaks its signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_one_node_is_refused_by_another() {
    let net = network(3, &[], 2).await;
    let request = FillRequest::new(
        net.nodes[1].driver().identity(),
        net.nodes[0].driver().identity().public_key(),
        "repository",
        "fill/repo-0",
        dockerhub_build_status::tools::clock::wall(),
        [5; 16],
    );
    let body = serde_json::to_vec(&request).expect("json");
    let post = |url: String, body: Vec<u8>| async move {
        client()
            .post(format!("{url}/fill"))
            .body(body)
            .send()
            .await
            .expect("an answer")
            .status()
            .as_u16()
    };
    assert_eq!(post(net.urls[0].clone(), body.clone()).await, 200);
    assert_eq!(post(net.urls[2].clone(), body).await, 403);
    let mut renamed = request.clone();
    renamed.to = Some(net.nodes[2].driver().identity().public_key());
    let body = serde_json::to_vec(&renamed).expect("json");
    assert_eq!(post(net.urls[2].clone(), body).await, 403);
    assert!(fill_count(&net.urls[2], "served", "replayed").await >= 1);
    assert!(fill_count(&net.urls[2], "served", "bad_signature").await >= 1);
}

/// The finding: a listed node's valid fills got 429 after others in its /24 were refused
/// (a refusal cost the whole network). Now it costs only its own source address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_nodes_fills_are_not_refused_for_its_neighbours_junk() {
    let net = network(2, &[], 4).await;
    // A neighbour in the listed node's /24 sends junk until it is refused for it.
    let neighbour = client_from(Ipv4Addr::new(127, 0, 0, 77));
    let mut throttled = false;
    for _ in 0..400 {
        let status = neighbour
            .post(format!("{}/fill", net.urls[0]))
            .body("not a fill request")
            .send()
            .await
            .expect("an answer")
            .status()
            .as_u16();
        if status == 429 {
            throttled = true;
            break;
        }
        assert_eq!(status, 400);
    }
    assert!(throttled, "the junk was never throttled");
    // The listed node, from its own address in that /24: served.
    let listed = client_from(Ipv4Addr::new(127, 0, 0, 1));
    for n in 0..4u32 {
        let (status, _) = post_fill(&net, &listed, 1, 0, &format!("fill/repo-{n}"), n).await;
        assert_eq!(status, 200, "fill {n} of the listed node");
    }
}

/// The finding: fill answers just under the 1 MiB cap cost the asker about 1 MB of memory per
/// cold tag badge. Now a tag's answer is read up to what a tag with a few dozen images needs
/// (kilobytes): a larger one is refused unread, and the badge comes from the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_answer_of_a_megabyte_is_refused_unread() {
    const REPOS: usize = 30;
    let net = entry_and_liar(Behaviour::Padded(1_000_000), REPOS).await;
    let (entry, liar) = (&net.urls[0], &net.urls[1]);
    let listed = listed_weights(entry).await;
    let owned: Vec<usize> = (0..REPOS)
        .filter(|n| {
            owner_in(
                &listed,
                &format!("v2/repositories/fill/repo-{n}/tags/latest"),
            ) == *liar
        })
        .collect();
    assert!(owned.len() >= 3, "{owned:?}");
    for &n in &owned {
        let (_, _, svg) = get(&format!("{entry}/docker/image-size/fill/repo-{n}/latest")).await;
        assert_eq!(said(&svg), "image size: 1.18 MiB");
    }
    assert_eq!(supplied(entry, liar).await, 0, "a padded answer was used");
    assert!(fill_count(entry, "asked", "bad_answer").await >= 1);
}

/// Junk from one source address is refused until that address's requests are spent: each
/// costs one and drains twenty more, down to none. They come back by the node's clock
/// (paused here, and moved by hand), and another address keeps its own.
#[tokio::test(start_paused = true)]
async fn junk_spends_its_sources_requests_which_come_back_with_time() {
    let mut config = Config::for_tests("http://127.0.0.1:9".parse().expect("a URL"));
    config.fill = Fill::On;
    let node = Node::new(config).expect("a node");
    let owner = node.fills().owner();
    let from = IpAddr::from(Ipv4Addr::new(192, 0, 2, 1));
    let mut refused = 0;
    let retry = loop {
        match owner.admit(b"junk", from) {
            Err(FillRefusal::Malformed(_)) => refused += 1,
            Err(FillRefusal::RateLimited(retry)) => break retry,
            other => panic!("junk answered with {other:?}"),
        }
    };
    // 2,400 a minute: 114 junk requests cost 21 each; the 115th takes one of the six left
    // and drains the other five.
    assert_eq!(refused, 115);
    assert_eq!(retry, Duration::from_millis(25));
    let junk = |ip: Ipv4Addr| owner.admit(b"junk", ip.into()).map(drop);
    assert!(matches!(
        junk(Ipv4Addr::new(192, 0, 2, 1)),
        Err(FillRefusal::RateLimited(_))
    ));
    assert!(matches!(
        junk(Ipv4Addr::new(192, 0, 2, 2)),
        Err(FillRefusal::Malformed(_))
    ));
    tokio::time::advance(retry).await;
    assert!(matches!(
        junk(Ipv4Addr::new(192, 0, 2, 1)),
        Err(FillRefusal::Malformed(_))
    ));
}
