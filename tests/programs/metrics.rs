//! `/metrics` as Prometheus sees it: `promtool check metrics` finds nothing to complain about
//! and every metric named in docs/DESIGN.md is there; and a real Prometheus server scrapes three
//! nodes, reports every target up (its own parser accepted the text format 0.0.4), and reads
//! back through its HTTP API that a request counter grew.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::harness;
use common::process::{ChildGuard, TempDir, free_port};
use common::{TestNode, client, get, start_node};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo};
use serde_json::Value;

/// Every metric name of docs/DESIGN.md, and two of the process collector's.
const DESIGN_METRICS: &[&str] = &[
    "dbs_http_requests_total",
    "dbs_http_request_duration_seconds",
    "dbs_cache_lookups_total",
    "dbs_cache_entries",
    "dbs_upstream_requests_total",
    "dbs_upstream_request_duration_seconds",
    "dbs_upstream_rate_limited_total",
    "dbs_upstream_state",
    "dbs_upstream_state_seconds",
    "dbs_peers",
    "dbs_gossip_exchanges_total",
    "dbs_gossip_bytes_total",
    "dbs_probes_total",
    "dbs_probe_retries_total",
    "dbs_build_info",
    "dbs_log_lines_dropped_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
];

async fn hub_with_samples() -> FakeHub {
    let hub = FakeHub::start().await.expect("start the fake hub");
    hub.set_repo("acme/app", FakeRepo::with_builds(&[("latest", 10)]));
    hub.set_repo("library/nginx", FakeRepo::with_tags(&["latest"]));
    hub
}

/// The names of the metric families in a text exposition (from `# TYPE` lines).
fn families(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect()
}

async fn promtool_finds_nothing_to_complain_about() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    // Traffic on several routes, answers of several codes, and every cache path, so the
    // labelled series exist and are checked too.
    for path in [
        "/build/acme/app",
        "/build/acme/app",
        "/build/acme/app?tag=nope",
        "/build/Not..Valid/x",
        "/build/library/nginx",
        "/status.svg?organization=acme&repository=app",
        "/shields/acme/app",
        "/health",
        "/servers",
        "/status.js",
        "/no/such/route",
    ] {
        get(&format!("{}{path}", node.url)).await;
    }
    let (code, headers, text) = get(&format!("{}/metrics", node.url)).await;
    assert_eq!(code, 200);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "the classic text format: {content_type}"
    );

    let present = families(&text);
    let missing: Vec<&&str> = DESIGN_METRICS
        .iter()
        .filter(|name| !present.contains(name))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in\n{text}");
    assert!(
        text.contains("dbs_http_requests_total{code=\"404\",route=\"not_found\"} 1"),
        "requests are counted by route and code:\n{text}"
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    promtool
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = promtool.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {}\n{said}\non:\n{text}",
        output.status
    );
}

/// A Prometheus server in a child process, killed when the test ends however it ends.
struct Prometheus {
    url: String,
    process: ChildGuard,
    // Dropped after `process` (fields drop in order): the server is gone before its folder.
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`host:port`) every second.
    fn start(targets: &[String]) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = dir.write(
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: dbs\n    static_configs:\n      - targets: [{list}]\n"
            ),
        );
        let port = free_port();
        let process = ChildGuard::spawn(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn"),
        );
        Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            process,
            _dir: dir,
        }
    }

    /// GETs an API path and returns its `data`, or `None` while Prometheus is not ready.
    /// Fails at once if Prometheus has exited.
    async fn api(&mut self, path_and_query: &str) -> Option<Value> {
        if let Some(status) = self.process.try_exit() {
            panic!(
                "prometheus exited ({status}); its log:\n{}",
                self.process.stderr().join("\n")
            );
        }
        let response = client()
            .get(format!("{}{path_and_query}", self.url))
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }

    /// The value of an instant query, per scraped instance.
    async fn query_by_instance(&mut self, promql: &str) -> BTreeMap<String, f64> {
        let query: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let Some(data) = self.api(&format!("/api/v1/query?query={query}")).await else {
            return BTreeMap::new();
        };
        data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|series| {
                let instance = series["metric"]["instance"].as_str()?.to_owned();
                let value = series["value"][1].as_str()?.parse().ok()?;
                Some((instance, value))
            })
            .collect()
    }
}

/// Waits until Prometheus has `want` for every instance of `promql`.
async fn wait_for_values(prometheus: &mut Prometheus, promql: &str, want: &BTreeMap<String, f64>) {
    let deadline = Duration::from_secs(20);
    let start = std::time::Instant::now();
    loop {
        let last = prometheus.query_by_instance(promql).await;
        if &last == want {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "Prometheus has {promql} = {last:?}, not {want:?}, after {deadline:?}; its log:\n{}",
            prometheus.process.stderr().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send_builds(nodes: &[TestNode], count: usize) {
    for node in nodes {
        for _ in 0..count {
            let (code, _, body) = get(&format!("{}/build/acme/app", node.url)).await;
            assert_eq!(code, 200, "{body}");
        }
    }
}

async fn prometheus_scrapes_three_nodes_and_sees_a_counter_grow() {
    let hub = hub_with_samples().await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(start_node(&hub.url(), |_| {}).await);
    }
    let targets: Vec<String> = nodes
        .iter()
        .map(|n| n.url.trim_start_matches("http://").to_owned())
        .collect();
    // A first count before Prometheus starts, so it sees the counter at 1 and then grow.
    send_builds(&nodes, 1).await;

    let mut prometheus = Prometheus::start(&targets);
    let mut last = Value::Null;
    let ready = std::time::Instant::now();
    loop {
        if let Some(data) = prometheus.api("/api/v1/targets?state=active").await {
            let active = data["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let up = active
                .iter()
                .filter(|t| t["health"] == "up" && t["lastError"] == "")
                .count();
            if active.len() == targets.len() && up == targets.len() {
                break;
            }
            last = data;
        }
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "targets not all up after 30 s: {last:#}\nPrometheus log:\n{}",
            prometheus.process.stderr().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let promql = r#"dbs_http_requests_total{job="dbs",route="build",code="200"}"#;
    let at = |value: f64| -> BTreeMap<String, f64> {
        targets.iter().map(|t| (t.clone(), value)).collect()
    };
    wait_for_values(&mut prometheus, promql, &at(1.0)).await;
    send_builds(&nodes, 4).await;
    wait_for_values(&mut prometheus, promql, &at(5.0)).await;
    let up = prometheus.query_by_instance("up").await;
    assert_eq!(up, at(1.0), "every target up");
}

/// The example alert rules: `promtool check rules` accepts them, every metric they read is
/// one a node exports, and `promtool test rules` fires each on the series a node in that
/// trouble shows, and not before nor for a node without it.
async fn the_example_alert_rules_check_and_fire_when_they_should() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/prometheus-alerts.yml");
    promtool_passes("check", &rules);

    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let (_, _, exposition) = get(&format!("{}/metrics", node.url)).await;
    let exported = families(&exposition);
    let text = std::fs::read_to_string(&rules).expect("read the rules");
    let read: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .flat_map(|expr| expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| word.starts_with("dbs_"))
        .collect();
    assert!(read.contains(&"dbs_upstream_state"), "{read:?}");
    for name in &read {
        assert!(
            exported.contains(name),
            "the rules read {name}, which a node does not export"
        );
    }

    // Minute by minute: node a's Docker Hub fails from minute 2 (its state's duration starts
    // over then); b's answers all along; c is rate limited from minute 0; d lists nobody.
    let job = "job=\"dockerhub-build-status\"";
    let dir = TempDir::new("alert-rules");
    let tests = dir.write(
        "alerts.test.yml",
        &format!(
            r#"rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'dbs_upstream_state{{{job},instance="a",state="failing"}}'
        values: '0 0 1x20'
      - series: 'dbs_upstream_state_seconds{{{job},instance="a"}}'
        values: '120 180 0+60x20'
      - series: 'dbs_upstream_state{{{job},instance="b",state="failing"}}'
        values: '0x22'
      - series: 'dbs_upstream_state_seconds{{{job},instance="b"}}'
        values: '0+60x22'
      - series: 'dbs_upstream_state{{{job},instance="c",state="rate_limited"}}'
        values: '1x22'
      - series: 'dbs_upstream_state_seconds{{{job},instance="c"}}'
        values: '0+60x22'
      - series: 'dbs_peers{{{job},instance="d",state="listed"}}'
        values: '0x40'
      - series: 'up{{{job},instance="e"}}'
        values: '1 1 0x10'
    alert_rule_test:
      - eval_time: 6m
        alertname: DockerHubUnreachable
        exp_alerts: []
      - eval_time: 8m
        alertname: DockerHubUnreachable
        exp_alerts:
          - exp_labels: {{severity: warning, job: dockerhub-build-status, instance: a}}
            exp_annotations:
              summary: "Docker Hub has not answered a for 6m 0s"
              description: "/health says the error. If only this node sees it, check its DNS and outbound HTTPS to hub.docker.com."
      - eval_time: 10m
        alertname: DockerHubRateLimited
        exp_alerts: []
      - eval_time: 11m
        alertname: DockerHubRateLimited
        exp_alerts:
          - exp_labels: {{severity: warning, job: dockerhub-build-status, instance: c}}
            exp_annotations:
              summary: "Docker Hub has rate-limited c for 11m 0s"
              description: "Set DBS_HUB_USERNAME and DBS_HUB_TOKEN for a higher limit, or lower --hub-rate."
      - eval_time: 29m
        alertname: BadgeNodeAlone
        exp_alerts: []
      - eval_time: 31m
        alertname: BadgeNodeAlone
        exp_alerts:
          - exp_labels: {{severity: warning, job: dockerhub-build-status, instance: d, state: listed}}
            exp_annotations:
              summary: "d lists no other node"
              description: "See /servers?all=true on the node for each known node's state and last probe."
      - eval_time: 6m
        alertname: BadgeNodeDown
        exp_alerts: []
      - eval_time: 7m
        alertname: BadgeNodeDown
        exp_alerts:
          - exp_labels: {{severity: page, job: dockerhub-build-status, instance: e}}
            exp_annotations:
              summary: "e does not answer Prometheus"
              description: "Check the process (systemctl status, docker ps) and its log. Other nodes stop listing it after two failed probes."
"#,
            rules = rules.display(),
        ),
    );
    promtool_passes("test", &tests);
}

/// Runs `promtool <verb> rules <file>` and fails with what it said unless it passed.
fn promtool_passes(verb: &str, file: &Path) {
    let output = Command::new("promtool")
        .args([verb, "rules"])
        .arg(file)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool {verb} rules: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn families_are_read_from_type_lines() {
    let text = "# HELP a_total x\n# TYPE a_total counter\na_total 1\n# TYPE b gauge\nb 2\n";
    assert_eq!(families(text), ["a_total", "b"]);
}

/// This module's tests, for the harness in `main.rs`.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    vec![
        harness::needs(
            "promtool_finds_nothing_to_complain_about",
            &["promtool"],
            || harness::block_on(promtool_finds_nothing_to_complain_about()),
        ),
        harness::needs(
            "prometheus_scrapes_three_nodes_and_sees_a_counter_grow",
            &["prometheus"],
            || harness::block_on(prometheus_scrapes_three_nodes_and_sees_a_counter_grow()),
        ),
        harness::needs(
            "the_example_alert_rules_check_and_fire_when_they_should",
            &["promtool"],
            || harness::block_on(the_example_alert_rules_check_and_fire_when_they_should()),
        ),
        harness::plain(
            "families_are_read_from_type_lines",
            families_are_read_from_type_lines,
        ),
    ]
}
