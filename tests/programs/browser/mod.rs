//! status.js + status.svg in a real browser: headless Chromium against three real node
//! processes (the built binary) in front of a fake Docker Hub, with the badge served both by
//! a static file server and by a node, and with fake nodes that lie or list junk URLs.
//!
//! The cases share one cluster and one browser (starting them is most of the cost) and run in
//! order, the destructive ones last. Each case is recorded on its own and the test fails at
//! the end listing every case that failed, so one broken case does not hide the others.
//! Every browser run has a real-time deadline; see `tests/chromium/mod.rs` for why Chromium
//! is driven over `--remote-debugging-pipe` rather than with `--dump-dom`.

use crate::chromium;
use crate::common;

mod badge_run;
mod cases;
mod cluster;
mod stubs;

use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chromium::Browser;
use common::harness;
use common::process::{ChildGuard, NODE_BIN, TempDir, free_port};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo};
use dockerhub_build_status::federation::rendezvous;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use badge_run::*;
use cases::*;
use cluster::*;
use stubs::*;

/// The browser tests take turns: two Chromiums at once on a two-core machine would make
/// the timing cases measure the machine instead of the script.
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ORGANIZATION: &str = "demo";
/// Gossip-learned nodes start on probation and need about 14 good probes (200 ms apart) to
/// be listed, so a healthy federation of three settles in 3–4 s.
const FEDERATION_DEADLINE: Duration = Duration::from_secs(15);
/// How long a case waits for a settled network before it starts.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);
/// status.js's default time budget.
const BUDGET: Duration = Duration::from_secs(4);
/// Loading the SVG and the script from loopback, on top of the script's own budget.
const LOAD_MARGIN: Duration = Duration::from_secs(1);
/// The status.js contract: with the top-ranked node dead the badge is right within this.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------------
// Node processes

/// The cases' outcomes, in order; the test fails at the end if any failed.
#[derive(Default)]
struct Report {
    outcomes: Vec<(&'static str, Outcome)>,
}

impl Report {
    fn record(&mut self, case: &'static str, outcome: Outcome) {
        eprintln!("{} {case}", if outcome.is_ok() { "pass" } else { "FAIL" });
        self.outcomes.push((case, outcome));
    }

    fn finish(self) {
        let failed: Vec<String> = self
            .outcomes
            .iter()
            .filter_map(|(case, outcome)| {
                outcome
                    .as_ref()
                    .err()
                    .map(|err| format!("- {case}:\n{err}"))
            })
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {} browser cases failed:\n{}",
            failed.len(),
            self.outcomes.len(),
            failed.join("\n\n")
        );
    }
}

async fn status_js_in_chromium_against_three_nodes() {
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let host = static_host().await;
    let mut cluster = Cluster::start(3).await;
    let mut browser = Browser::launch(&[]).await;
    let mut report = Report::default();

    let federation = wait_federated(&cluster, FEDERATION_DEADLINE).await;
    let federated = federation.is_ok();
    report.record(
        "federation: every node's /servers lists all 3 nodes",
        federation,
    );
    let node1 = cluster.urls()[0].clone();
    for (case, served) in [
        (
            "ok, status.svg served statically",
            Served::Statically(&host.url),
        ),
        ("ok, status.svg served by node 1", Served::ByNode(&node1)),
    ] {
        let outcome = match settled(&cluster, federated).await {
            Ok(()) => case_ok(&mut browser, &mut cluster, served).await,
            Err(err) => Err(err),
        };
        report.record(case, explain(&cluster, outcome).await);
    }
    for (case, served) in [
        (
            "no servers=, served by node 1: node 1 is the bootstrap",
            Served::ByNode(&node1),
        ),
        (
            "no servers=, served statically: the built-in list is the bootstrap",
            Served::Statically(&host.url),
        ),
    ] {
        let outcome = match settled(&cluster, federated).await {
            Ok(()) => case_bootstrap(&mut browser, &mut cluster, served).await,
            Err(err) => Err(err),
        };
        report.record(case, explain(&cluster, outcome).await);
    }
    report.record(
        "markup in text shows as text, served statically",
        case_markup(&mut browser, &mut cluster, Served::Statically(&host.url)).await,
    );
    report.record(
        "markup in text shows as text, served by node 1",
        case_markup(&mut browser, &mut cluster, Served::ByNode(&node1)).await,
    );
    report.record(
        "javascript: and other junk URLs in /servers change nothing",
        case_junk_urls(&mut browser, &mut cluster, &host.url).await,
    );
    let before = settled(&cluster, federated).await;
    let (liar_real, liar_ranked) = case_liar(&mut browser, &mut cluster, &host.url).await;
    let liar_ranked = explain(&cluster, before.and(liar_ranked)).await;
    report.record(
        "lying minority node: badge from a real node, made-up servers never asked",
        liar_real,
    );
    report.record(
        "lying minority node: badge from node 3, top of the honest majority's list",
        liar_ranked,
    );
    report.record(
        "top-ranked node hangs: status.js hedges to the second within 2 s",
        case_hung_top(&mut browser, &mut cluster, &host.url).await,
    );
    let before = settled(&cluster, federated).await;
    let (outcome, dead) = case_top_killed(&mut browser, &mut cluster, &host.url).await;
    report.record(
        "top-ranked node killed: ok from the second within 2 s",
        explain(&cluster, before.and(outcome)).await,
    );
    report.record(
        "top-ranked node dead but still listed: status.js fails over within 2 s",
        case_dead_top_still_listed(&mut browser, &mut cluster, &host.url, &dead).await,
    );
    report.record(
        "every node down: unknown within the budget",
        case_all_down(&mut browser, &mut cluster, &host.url).await,
    );

    browser.close().await;
    eprintln!("browser cases took {:?}", started.elapsed());
    report.finish();
}

/// Nodes that accept connections and never answer: the badge gives up at its time budget
/// with `unknown`, and not before (a slow node is not a failed one).
async fn status_js_shows_unknown_at_the_budget_when_nodes_hang() {
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let host = static_host().await;
    let silent = [
        Silent::start().await,
        Silent::start().await,
        Silent::start().await,
    ];
    let servers: Vec<&str> = silent.iter().map(|s| s.url.as_str()).collect();
    let budget = Duration::from_millis(1500);
    let url = page_url(
        &format!("{}/status.svg", host.url),
        &[
            ("repository", "sample"),
            ("servers", &servers.join(",")),
            ("budget_ms", &budget.as_millis().to_string()),
        ],
    );
    let mut browser = Browser::launch(&[]).await;
    let run = show_badge(&mut browser, &url, budget + Duration::from_secs(2)).await;
    browser.close().await;
    run.expect_done("unknown", budget + Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        run.elapsed >= budget,
        "gave up before the budget: {}",
        run.summary()
    );
    assert_eq!(run.server, None, "{}", run.summary());
}

/// The helpers above must be able to fail: a page that never finishes is reported as not
/// done, with what it showed.
async fn a_badge_that_never_finishes_is_reported() {
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    // status.svg without its script: it stays at `???` forever.
    let svg =
        include_str!("../../../status.svg").replace(r#"<script xlink:href="status.js"/>"#, "");
    let host = Stub::start(move |_| Reply {
        status: 200,
        content_type: "image/svg+xml",
        body: svg.clone(),
    })
    .await;
    let mut browser = Browser::launch(&[]).await;
    let run = show_badge(
        &mut browser,
        &format!("{}/status.svg?repository=x", host.url),
        Duration::from_millis(300),
    )
    .await;
    browser.close().await;
    assert_eq!(run.state.as_deref(), Some("loading"), "{}", run.summary());
    assert_eq!(run.status.as_deref(), Some("???"), "{}", run.summary());
    assert!(run.expect_done("ok", Duration::from_secs(1)).is_err());
}

/// This module's tests, for the harness in `main.rs`.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    vec![
        harness::needs(
            "status_js_in_chromium_against_three_nodes",
            &["chromium"],
            || harness::block_on(status_js_in_chromium_against_three_nodes()),
        ),
        harness::needs(
            "status_js_shows_unknown_at_the_budget_when_nodes_hang",
            &["chromium"],
            || harness::block_on(status_js_shows_unknown_at_the_budget_when_nodes_hang()),
        ),
        harness::needs(
            "a_badge_that_never_finishes_is_reported",
            &["chromium"],
            || harness::block_on(a_badge_that_never_finishes_is_reported()),
        ),
    ]
}
