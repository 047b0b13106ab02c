//! Chaos runs for docs/RELIABILITY.md section 3, ignored in normal `cargo test`:
//!
//! - `node_chaos`: five real node processes; for 60 s a random node (seeded) is killed with
//!   SIGKILL every 5 s and restarted with the same state and port, while a driver asks for
//!   badges the way status.js does (`/servers` from a bootstrap node, rendezvous ranking,
//!   failover with a hedge). Figures: failed badge answers, failovers, time until a
//!   restarted node is listed by every live node again.
//! - `upstream_chaos`: one node in front of the fake hub whose fault changes every 5 s (500,
//!   429, slow, garbage, healthy) under load. Figures: badge and `/build` answers by status,
//!   stale answers, hub requests against `--hub-rate`, requests inside a `Retry-After`.
//!
//! Run: `cargo test --release --test chaos -- --ignored --nocapture --test-threads 1`.
//! Loopback only; each run is bounded (60 s of chaos plus setup) and stops by itself.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use common::process::NodeProcess;
use common::{start_node, wait_until};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo, Fault};
use dockerhub_build_status::federation::rendezvous;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

const SEED: u64 = 8;
const CHAOS: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(5);

const GOSSIP: Duration = Duration::from_millis(300);
const PROBE: Duration = Duration::from_millis(400);
/// A killed node stays down this long before its restart: longer than the three failed
/// probes (about 1.2 s) that drop it from lists, so every restart measures a real rejoin
/// rather than a node nobody noticed was gone.
const DOWN: Duration = Duration::from_secs(2);

/// status.js's defaults: the next candidate is asked after `hedgeMs` without an answer (or
/// at once on a failure), and the whole badge gives up after `budgetMs`.
const HEDGE: Duration = Duration::from_millis(400);
const BUDGET: Duration = Duration::from_millis(4000);

/// Badges the driver asks for: (organization, repository, tag), all in `add_samples`.
const BADGES: [(&str, &str, &str); 6] = [
    ("library", "nginx", "latest"),
    ("library", "nginx", "alpine"),
    ("library", "redis", "7"),
    ("niccokunzmann", "dockerhub-build-status-image", "latest"),
    ("demo", "passing", "latest"),
    ("demo", "failing", "latest"),
];

#[derive(Debug, Clone)]
struct Server {
    url: String,
    weight: f64,
}

/// The servers a node lists, or `None` if it does not answer within `timeout`.
async fn servers(http: &reqwest::Client, node: &str, timeout: Duration) -> Option<Vec<Server>> {
    let response = http
        .get(format!("{node}/servers"))
        .timeout(timeout)
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    body["servers"]
        .as_array()?
        .iter()
        .map(|s| {
            Some(Server {
                url: s["url"].as_str()?.to_owned(),
                weight: s["weight"].as_f64().unwrap_or(1.0),
            })
        })
        .collect()
}

#[derive(Debug, Default)]
struct DriverFigures {
    requests: u64,
    failed: u64,
    /// Badges answered by a server other than the first in the ranking.
    answered_by_later: u64,
    /// Extra requests launched after the first (hedges and failures together).
    extra_attempts: u64,
    /// Badges for which no bootstrap node answered `/servers`.
    no_servers: u64,
    /// Which rank answered, by position.
    by_rank: BTreeMap<usize, u64>,
}

/// One badge the way status.js gets it: `/servers` from the first bootstrap node that
/// answers, the listed servers ranked for the item key and the unlisted bootstrap nodes
/// after them, then the candidates asked in order, the next one launched on a failure or
/// after `HEDGE`; the first 200 wins. Returns the rank that answered and the attempts made.
async fn ask_badge(
    http: &reqwest::Client,
    bootstrap: &[String],
    badge: (&str, &str, &str),
) -> (Option<usize>, usize, bool) {
    let started = Instant::now();
    let mut listed = None;
    for node in bootstrap {
        if let Some(found) = servers(http, node, Duration::from_millis(1000)).await {
            listed = Some(found);
            break;
        }
    }
    let Some(listed) = listed else {
        return (None, 0, false);
    };
    let (org, repo, tag) = badge;
    let key = rendezvous::item_key(org, repo, tag);
    let rest: Vec<Server> = bootstrap
        .iter()
        .filter(|url| !listed.iter().any(|s| &s.url == *url))
        .map(|url| Server {
            url: url.clone(),
            weight: 1.0,
        })
        .collect();
    let candidates: Vec<String> = rendezvous::rank(&listed, &key, |s| &s.url, |s| s.weight)
        .into_iter()
        .chain(rendezvous::rank(&rest, &key, |s| &s.url, |s| s.weight))
        .map(|s| s.url.clone())
        .collect();

    let mut running = tokio::task::JoinSet::new();
    let mut next = 0;
    let launch = |running: &mut tokio::task::JoinSet<(usize, bool)>, index: usize| {
        let url = format!(
            "{}/status.svg?organization={org}&repository={repo}&tag={tag}",
            candidates[index]
        );
        let http = http.clone();
        let left = BUDGET.saturating_sub(started.elapsed());
        running.spawn(async move {
            let ok = match http.get(url).timeout(left).send().await {
                Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            (index, ok)
        });
    };
    launch(&mut running, next);
    next += 1;
    loop {
        let hedge = tokio::time::sleep(HEDGE);
        tokio::select! {
            done = running.join_next() => match done {
                Some(Ok((index, true))) => return (Some(index), next, true),
                Some(_) => {
                    // A failure moves on at once, without waiting for the hedge.
                    if next < candidates.len() {
                        launch(&mut running, next);
                        next += 1;
                    } else if running.is_empty() {
                        return (None, next, true);
                    }
                }
                None => return (None, next, true),
            },
            _ = hedge, if next < candidates.len() => {
                launch(&mut running, next);
                next += 1;
            }
        }
        if started.elapsed() >= BUDGET {
            return (None, next, true);
        }
    }
}

async fn lists(http: &reqwest::Client, node: &str, target: &str) -> Option<bool> {
    let found = servers(http, node, Duration::from_millis(1000)).await?;
    Some(found.iter().any(|s| s.url == target))
}

/// What happened to one restarted node: how many live nodes had dropped it by its restart,
/// and how long after the restart every live node listed it (`None`: killed again first,
/// or not within 30 s).
#[derive(Debug)]
struct Rejoin {
    node: usize,
    dropped_by: usize,
    relisted_after: Option<Duration>,
}

/// Polls every live node's `/servers` until each lists `target` again.
async fn watch_rejoin(
    http: reqwest::Client,
    urls: Vec<String>,
    alive: Arc<Mutex<Vec<bool>>>,
    target: usize,
    restarted: Instant,
) -> Rejoin {
    let mut dropped_by = None;
    loop {
        let live: Vec<usize> = {
            let alive = alive.lock().unwrap();
            if !alive[target] {
                return Rejoin {
                    node: target,
                    dropped_by: dropped_by.unwrap_or(0),
                    relisted_after: None,
                };
            }
            (0..urls.len())
                .filter(|&i| i != target && alive[i])
                .collect()
        };
        let mut missing = 0;
        for &i in &live {
            if lists(&http, &urls[i], &urls[target]).await != Some(true) {
                missing += 1;
            }
        }
        let dropped = *dropped_by.get_or_insert(missing);
        // The restarted node must answer too: listed by others but not serving is no rejoin.
        let own = lists(&http, &urls[target], &urls[target]).await == Some(true);
        if missing == 0 && own {
            return Rejoin {
                node: target,
                dropped_by: dropped,
                relisted_after: Some(restarted.elapsed()),
            };
        }
        if restarted.elapsed() > Duration::from_secs(30) {
            return Rejoin {
                node: target,
                dropped_by: dropped,
                relisted_after: None,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn median_max(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    if times.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    (times[times.len() / 2], times[times.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos run of about 90 s; see docs/RELIABILITY.md section 3"]
async fn node_chaos() {
    let hub = FakeHub::start().await.unwrap();
    hub.add_samples();
    let http = common::client();

    let mut nodes = vec![NodeProcess::new(
        "chaos-1",
        "",
        &hub.url(),
        true,
        GOSSIP,
        PROBE,
    )];
    let seed = format!("[[peer]]\nurl = \"{}\"\n", nodes[0].url());
    for i in 2..=5 {
        nodes.push(NodeProcess::new(
            &format!("chaos-{i}"),
            &seed,
            &hub.url(),
            true,
            GOSSIP,
            PROBE,
        ));
    }
    let urls: Vec<String> = nodes.iter().map(NodeProcess::url).collect();
    let mut sorted = urls.clone();
    sorted.sort();
    let converging = Instant::now();
    wait_until(Duration::from_secs(60), "all five to list all five", || {
        let (http, urls, sorted) = (http.clone(), urls.clone(), sorted.clone());
        async move {
            for url in &urls {
                let Some(found) = servers(&http, url, Duration::from_secs(1)).await else {
                    return false;
                };
                let mut found: Vec<String> = found.into_iter().map(|s| s.url).collect();
                found.sort();
                if found != sorted {
                    return false;
                }
            }
            true
        }
    })
    .await;
    eprintln!("five nodes converged in {:?}", converging.elapsed());

    let alive = Arc::new(Mutex::new(vec![true; nodes.len()]));
    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(Mutex::new(DriverFigures::default()));

    // Two drivers, each a badge every 250 ms (about 8 per second), each with its own seeded
    // choice of badges and its own order of bootstrap nodes, as different pages would have.
    let mut drivers = Vec::new();
    for d in 0..2u64 {
        let (http, urls, stop, figures) = (
            http.clone(),
            urls.clone(),
            Arc::clone(&stop),
            Arc::clone(&figures),
        );
        drivers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(SEED + 100 + d);
            while !stop.load(Ordering::Relaxed) {
                let badge = BADGES[rng.random_range(0..BADGES.len())];
                let mut bootstrap = urls.clone();
                bootstrap.rotate_left(rng.random_range(0..urls.len()));
                let (rank, attempts, found) = ask_badge(&http, &bootstrap, badge).await;
                {
                    let mut f = figures.lock().unwrap();
                    f.requests += 1;
                    f.extra_attempts += attempts.saturating_sub(1) as u64;
                    if !found {
                        f.no_servers += 1;
                    }
                    match rank {
                        Some(rank) => {
                            *f.by_rank.entry(rank).or_default() += 1;
                            if rank > 0 {
                                f.answered_by_later += 1;
                            }
                        }
                        None => {
                            f.failed += 1;
                            eprintln!("failed badge {badge:?} (servers found: {found})");
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
    }

    let mut rng = StdRng::seed_from_u64(SEED);
    let mut watchers = Vec::new();
    let chaos_start = Instant::now();
    let mut round = 0u32;
    while chaos_start.elapsed() + EVERY <= CHAOS + Duration::from_millis(100) {
        let target = rng.random_range(0..nodes.len());
        alive.lock().unwrap()[target] = false;
        nodes[target].kill();
        tokio::time::sleep(DOWN).await;
        nodes[target].start();
        let restarted = Instant::now();
        alive.lock().unwrap()[target] = true;
        eprintln!(
            "t={:>5.1}s killed node {} and restarted it after {DOWN:?}",
            chaos_start.elapsed().as_secs_f64(),
            target + 1
        );
        watchers.push(tokio::spawn(watch_rejoin(
            http.clone(),
            urls.clone(),
            Arc::clone(&alive),
            target,
            restarted,
        )));
        round += 1;
        let next_kill = chaos_start + EVERY * round;
        tokio::time::sleep_until(next_kill).await;
    }
    let chaos_took = chaos_start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for driver in drivers {
        driver.await.unwrap();
    }
    let mut rejoins = Vec::new();
    for watcher in watchers {
        rejoins.push(watcher.await.unwrap());
    }

    let f = figures.lock().unwrap();
    eprintln!("--- node_chaos (seed {SEED}) ---");
    eprintln!(
        "chaos: {chaos_took:.1?}, {} kill -9 + restart rounds (down {DOWN:?} each), gossip {GOSSIP:?}, probe {PROBE:?}",
        rejoins.len()
    );
    eprintln!(
        "badge requests: {}, failed badge answers: {}, /servers unreachable: {}",
        f.requests, f.failed, f.no_servers
    );
    eprintln!(
        "failovers: {} badges answered by a later-ranked server; {} extra requests launched (hedge or failure); answered by rank: {:?}",
        f.answered_by_later, f.extra_attempts, f.by_rank
    );
    for r in &rejoins {
        eprintln!(
            "node {}: dropped by {} of the live nodes at restart, listed everywhere again after {}",
            r.node + 1,
            r.dropped_by,
            r.relisted_after.map_or(
                "(not before its next kill or 30 s)".to_owned(),
                |d| format!("{d:.2?}")
            )
        );
    }
    let times: Vec<Duration> = rejoins.iter().filter_map(|r| r.relisted_after).collect();
    let (median, max) = median_max(times.clone());
    eprintln!(
        "relisted everywhere: {} of {} restarts; median {median:.2?}, max {max:.2?}",
        times.len(),
        rejoins.len()
    );
    assert_eq!(f.failed, 0, "failed badge answers");
}

/// The fault cycle of `upstream_chaos`, one per 5 s phase.
fn fault_of(phase: usize) -> (Option<Fault>, &'static str) {
    match phase % 5 {
        0 => (Some(Fault::ServerError), "500"),
        1 => (
            Some(Fault::RateLimit {
                retry_after_secs: RETRY_AFTER_SECS,
            }),
            "429",
        ),
        2 => (Some(Fault::Slow(Duration::from_secs(2))), "slow 2s"),
        3 => (Some(Fault::Garbage), "garbage"),
        _ => (None, "healthy"),
    }
}

const RETRY_AFTER_SECS: u64 = 3;
const HUB_RATE: u32 = 120;

/// Warm keys: in the cache before the chaos, stale 2 s later (`--cache-ttl 2s`).
const WARM: [(&str, &str, &str); 6] = BADGES;

#[derive(Debug, Default, Clone)]
struct PhaseFigures {
    svg: BTreeMap<String, u64>,
    build: BTreeMap<String, u64>,
    stale: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos run of about 65 s; see docs/RELIABILITY.md section 3"]
async fn upstream_chaos() {
    let hub = FakeHub::start().await.unwrap();
    hub.add_samples();
    // Cold keys: each asked once, so each is a cache miss that must go upstream.
    for n in 0..5000 {
        hub.set_repo(
            &format!("cold/r{n}"),
            FakeRepo::with_builds(&[("latest", 10)]),
        );
    }
    let node = start_node(&hub.url(), |c| {
        c.hub_rate = HUB_RATE;
        c.cache_ttl = Duration::from_secs(2);
        c.hub_timeout = Duration::from_millis(500);
    })
    .await;
    let http = common::client();
    for (org, repo, tag) in WARM {
        let response = http
            .get(format!("{}/build/{org}/{repo}?tag={tag}", node.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "warming {org}/{repo}:{tag}");
    }
    let warm_requests = hub.request_count();

    let phases = (CHAOS.as_secs() / EVERY.as_secs()) as usize;
    let figures = Arc::new(Mutex::new(vec![PhaseFigures::default(); phases]));
    let phase_now = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cold = Arc::new(AtomicU64::new(0));

    // Phase switches, recorded so each hub request can be matched to the fault it got.
    let mut switches: Vec<(Instant, Option<Fault>)> = Vec::new();
    let chaos_start = Instant::now();
    hub.set_fault(fault_of(0).0);
    switches.push((chaos_start, fault_of(0).0));

    // Four clients, each a request every 25 ms: 80% warm keys, 20% never-seen keys, half
    // badges and half /build.
    let mut clients = Vec::new();
    for c in 0..4u64 {
        let (http, base, figures, phase_now, stop, cold) = (
            http.clone(),
            node.url.clone(),
            Arc::clone(&figures),
            Arc::clone(&phase_now),
            Arc::clone(&stop),
            Arc::clone(&cold),
        );
        clients.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(SEED + 200 + c);
            while !stop.load(Ordering::Relaxed) {
                let (org, repo, tag) = if rng.random_bool(0.8) {
                    let (o, r, t) = WARM[rng.random_range(0..WARM.len())];
                    (o.to_owned(), r.to_owned(), t.to_owned())
                } else {
                    let n = cold.fetch_add(1, Ordering::Relaxed);
                    ("cold".to_owned(), format!("r{n}"), "latest".to_owned())
                };
                let badge = rng.random_bool(0.5);
                let url = if badge {
                    format!("{base}/status.svg?organization={org}&repository={repo}&tag={tag}")
                } else {
                    format!("{base}/build/{org}/{repo}?tag={tag}")
                };
                let phase = phase_now.load(Ordering::Relaxed) as usize;
                let (status, stale) =
                    match http.get(url).timeout(Duration::from_secs(5)).send().await {
                        Ok(response) => {
                            let status = response.status().as_u16().to_string();
                            let body = response.text().await.unwrap_or_default();
                            (status, !badge && body.contains("\"stale\":true"))
                        }
                        Err(e) if e.is_timeout() => ("timeout".to_owned(), false),
                        Err(_) => ("no answer".to_owned(), false),
                    };
                {
                    let mut f = figures.lock().unwrap();
                    let p = &mut f[phase.min(phases - 1)];
                    let by = if badge { &mut p.svg } else { &mut p.build };
                    *by.entry(status).or_default() += 1;
                    p.stale += u64::from(stale);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }));
    }

    for phase in 1..phases {
        tokio::time::sleep_until(chaos_start + EVERY * phase as u32).await;
        let (fault, _) = fault_of(phase);
        hub.set_fault(fault.clone());
        switches.push((Instant::now(), fault));
        phase_now.store(phase as u64, Ordering::Relaxed);
    }
    tokio::time::sleep_until(chaos_start + CHAOS).await;
    stop.store(true, Ordering::Relaxed);
    let chaos_end = Instant::now();
    for client in clients {
        client.await.unwrap();
    }
    hub.set_fault(None);

    let received = hub.received();
    let fault_at = |at: Instant| {
        switches
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .and_then(|(_, fault)| fault.clone())
    };
    // Hub requests per phase, and requests the node sent while a 429's Retry-After held.
    // Requests within 50 ms of a 429 were already on their way when it was answered (the
    // client runs up to --hub-concurrency requests at once), so they are counted apart.
    let mut per_phase = vec![0u64; phases];
    let mut in_chaos = 0u64;
    let mut in_flight = 0u64;
    let mut violations = Vec::new();
    let mut last_429: Option<Instant> = None;
    for r in &received[warm_requests..] {
        if r.at < chaos_start || r.at > chaos_end {
            continue;
        }
        in_chaos += 1;
        let phase = ((r.at - chaos_start).as_secs() / EVERY.as_secs()) as usize;
        per_phase[phase.min(phases - 1)] += 1;
        if let Some(muted_from) = last_429 {
            let since = r.at - muted_from;
            if since < Duration::from_secs(RETRY_AFTER_SECS) {
                if since <= Duration::from_millis(50) {
                    in_flight += 1;
                } else {
                    violations.push((r.path.clone(), since));
                }
            }
        }
        if matches!(fault_at(r.at), Some(Fault::RateLimit { .. }))
            && last_429.is_none_or(|t| r.at - t >= Duration::from_secs(RETRY_AFTER_SECS))
        {
            last_429 = Some(r.at);
        }
    }

    let metrics = common::get(&format!("{}/metrics", node.url)).await.2;
    // A copy, so no lock is held across the awaits below.
    let f = figures.lock().unwrap().clone();
    eprintln!("--- upstream_chaos (seed {SEED}) ---");
    eprintln!(
        "node: --hub-rate {HUB_RATE} --cache-ttl 2s --hub-timeout 500ms; {} warm keys ({warm_requests} hub requests to warm), {} cold keys asked",
        WARM.len(),
        cold.load(Ordering::Relaxed)
    );
    let mut svg_total: BTreeMap<String, u64> = BTreeMap::new();
    let mut build_total: BTreeMap<String, u64> = BTreeMap::new();
    let mut stale_total = 0;
    for (i, p) in f.iter().enumerate() {
        eprintln!(
            "phase {i:>2} {:<8} svg {:?} build {:?} stale {} hub requests {}",
            fault_of(i).1,
            p.svg,
            p.build,
            p.stale,
            per_phase[i]
        );
        for (k, v) in &p.svg {
            *svg_total.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &p.build {
            *build_total.entry(k.clone()).or_default() += v;
        }
        stale_total += p.stale;
    }
    let minutes = (chaos_end - chaos_start).as_secs_f64() / 60.0;
    eprintln!("/status.svg answers: {svg_total:?}");
    eprintln!("/build answers: {build_total:?}; stale /build answers: {stale_total}");
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("dbs_cache_lookups_total") || l.starts_with("dbs_hub_"))
    {
        eprintln!("metric {line}");
    }
    eprintln!(
        "hub requests during {:.1} s of chaos: {in_chaos}, budget {HUB_RATE}/min x {minutes:.2} min = {:.0}",
        (chaos_end - chaos_start).as_secs_f64(),
        f64::from(HUB_RATE) * minutes
    );
    eprintln!(
        "inside a Retry-After window: {} (plus {in_flight} within 50 ms of the 429, already in flight)",
        violations.len()
    );
    for (path, since) in violations.iter().take(10) {
        eprintln!("  {path} {since:.2?} after the 429");
    }
    let svg_5xx: u64 = svg_total
        .iter()
        .filter(|(k, _)| k.starts_with('5') || !k.starts_with(|c: char| c.is_ascii_digit()))
        .map(|(_, v)| v)
        .sum();
    node.stop().await;
    assert_eq!(svg_5xx, 0, "badges answered 5xx or not at all");
}
