//! The network as one cache, end to end over real sockets: nodes in this process that list
//! each other fill their caches from the owner of each resource; a node that lies in its
//! fills is caught by the sampled checks against the (fake) hub and loses its trust; and
//! hostile fill requests and answers change nothing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dockerhub_build_status::config::{Config, Fill};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo};
use dockerhub_build_status::federation::fill::{FillAnswer, FillRequest};
use dockerhub_build_status::federation::{Identity, Timestamp};
use dockerhub_build_status::http::{App, routes, server};
use dockerhub_build_status::node::Node;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use serde_json::value::RawValue;
use tokio::net::TcpListener;

use crate::common::{client, get, get_json, listed_servers, wait_until};

/// How a node in these tests answers `POST /fill`.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Honest,
    /// Answers with a pull count a million higher than its cache's, signed with its key.
    Lying,
    /// Answers with bytes that are no fill answer.
    Garbage,
}

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
    network_with(count, behaviours, repos, |_| {}).await
}

async fn network_with(
    count: usize,
    behaviours: &[Behaviour],
    repos: usize,
    tweak: impl Fn(&mut Config),
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
        tweak(&mut config);
        let peers: String = urls
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, url)| format!("[[peer]]\nurl = \"{url}\"\n"))
            .collect();
        let peers_file = config.peers.clone().expect("a peers file");
        std::fs::write(&peers_file, peers).expect("write peers.toml");
        let node = Node::new(config).expect("node starts");
        let behaviour = behaviours.get(i).copied().unwrap_or(Behaviour::Honest);
        let app = App::new(node.clone());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        if behaviour == Behaviour::Honest {
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

/// A plain hyper server that answers like the node, except `POST /fill`.
async fn serve_dishonestly(listener: TcpListener, app: App, behaviour: Behaviour) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    Ok::<_, Infallible>(answer_dishonestly(&app, request, peer, behaviour).await)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn answer_dishonestly(
    app: &App,
    request: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    behaviour: Behaviour,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let honest = routes::handle(
        app,
        Request::from_parts(parts.clone(), Full::new(body.clone())),
        peer.ip(),
    )
    .await;
    let (honest_parts, honest_body) = honest.into_parts();
    let honest_body = honest_body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if parts.uri.path() != "/fill" || !honest_parts.status.is_success() {
        return Response::from_parts(honest_parts, Full::new(honest_body));
    }
    let lie = match behaviour {
        Behaviour::Garbage => Bytes::from_static(b"{\"owner\":\"nope\"}"),
        _ => {
            let request: FillRequest = serde_json::from_slice(&body).expect("the asker's request");
            let answer: FillAnswer = serde_json::from_slice(&honest_body).expect("an answer");
            let mut value: serde_json::Value = answer
                .value
                .as_ref()
                .map(|v| serde_json::from_str(v.get()).expect("JSON"))
                .unwrap_or_default();
            if let Some(pulls) = value.get("pull_count").and_then(|p| p.as_u64()) {
                value["pull_count"] = (pulls + 1_000_000).into();
            }
            let raw = RawValue::from_string(value.to_string()).expect("JSON");
            let identity: &Identity = app.node().driver().identity();
            let lie = FillAnswer::sign(identity, &request, answer.age(), answer.outcome, Some(raw));
            Bytes::from(serde_json::to_vec(&lie).expect("serializes"))
        }
    };
    Response::from_parts(honest_parts, Full::new(lie))
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

fn repository_requests(hub: &FakeHub, n: usize) -> usize {
    let path = format!("/v2/repositories/fill/repo-{n}");
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
    // One fetch each, plus the checks: the first fill from each of the other two nodes on
    // each node (six), and one in 100 of the others.
    assert!(
        total <= REPOS + 6 + 8,
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
        filled += counter(url, "dbs_fills_total{outcome=\"filled\",role=\"asked\"}").await;
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

/// The owner of a tag's build status among the nodes `url` lists.
async fn status_owner(url: &str, repo: &str) -> String {
    let (_, servers) = get_json(&format!("{url}/servers")).await;
    let listed: Vec<(String, f64)> = servers["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| {
            (
                s["url"].as_str().expect("url").to_owned(),
                s["weight"].as_f64().expect("weight"),
            )
        })
        .collect();
    let key = dockerhub_build_status::federation::rendezvous::item_key("fill", repo, "latest");
    let ranked = dockerhub_build_status::federation::rendezvous::rank(
        &listed,
        &key,
        |s| s.0.as_str(),
        |s| s.1,
    );
    ranked[0].0.clone()
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
    let net = network_with(2, &[], 0, |c| c.cache_ttl = Duration::from_secs(1)).await;
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
    // Nothing cached anywhere: the owner says so, the asker goes on to the hub, which
    // rate-limits it too, and the answer says that.
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
    assert!(
        counter(
            &owner,
            "dbs_fills_total{outcome=\"unavailable\",role=\"served\"}"
        )
        .await
            >= 1
    );
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
        let asked = counter(url, "dbs_fills_total{outcome=\"filled\",role=\"asked\"}").await;
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
    let net = network_with(5, &behaviours, REPOS, |c| c.hub_rate = 1200).await;
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
    let served_before = counter(liar, "dbs_fills_total{outcome=\"ok\",role=\"served\"}").await;
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
    let served_after = counter(liar, "dbs_fills_total{outcome=\"ok\",role=\"served\"}").await;
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
    let request = FillRequest::new(&stranger, "repository", "fill/repo-0", now, [1; 16]);
    assert_eq!(post(serde_json::to_vec(&request).expect("json")).await, 403);
    // The listed node's key with a signature that is not its own.
    let listed_key = net.nodes[1].driver().identity().public_key();
    let mut forged = request.clone();
    forged.from = listed_key;
    assert_eq!(post(serde_json::to_vec(&forged).expect("json")).await, 403);
    // A request of the listed node, served once, refused when replayed; an invalid name is
    // refused before anything is asked of the hub.
    let asker = net.nodes[1].driver().identity();
    let good = FillRequest::new(asker, "repository", "fill/repo-0", now, [2; 16]);
    let body = serde_json::to_vec(&good).expect("json");
    assert_eq!(post(body.clone()).await, 200);
    assert_eq!(post(body).await, 403);
    let invalid = FillRequest::new(asker, "repository", "Fill/../x", now, [3; 16]);
    assert_eq!(post(serde_json::to_vec(&invalid).expect("json")).await, 400);
    let unknown = FillRequest::new(asker, "everything", "fill/repo-0", now, [4; 16]);
    assert_eq!(post(serde_json::to_vec(&unknown).expect("json")).await, 400);
    // Only the one good request reached the hub.
    assert_eq!(net.hub.request_count(), before + 1);
    assert!(
        counter(
            owner,
            "dbs_fills_total{outcome=\"unlisted\",role=\"served\"}"
        )
        .await
            >= 1
    );
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
