//! Prometheus metrics (the names of docs/DESIGN.md): one registry owned by the node, never global, so
//! several nodes in one test process keep their own counts. Exposed in Prometheus' text
//! format, which `promtool check metrics` accepts without complaint.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;

use prometheus::core::{Collector, Desc};
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every value of the `route` label (`http::router`'s tests check that its routes use only these).
pub const ROUTES: [&str; 13] = [
    "build",
    "status_svg",
    "shields",
    "docker",
    "health",
    "servers",
    "gossip",
    "fill",
    "metrics",
    "static",
    "source",
    "index",
    "not_found",
];
/// Every value of the cache lookups' `result` label.
const CACHE_RESULTS: [&str; 4] = ["hit", "stale", "miss", "coalesced"];

/// Nodes with their own series of `dbs_dns_answers_total`; the answers for any further
/// node are counted under `node="other"`, so a network of thousands, or a flood of made-up
/// descriptors, cannot grow the exposition without bound.
pub const MAX_DNS_ANSWER_SERIES: usize = 64;

/// The node's metrics. Cloning shares them (every metric is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// The series every request touches, looked up once: finding a labelled series hashes
    /// the labels and takes a read lock all workers share, which cost more per request
    /// than the counting itself (docs/PERFORMANCE.md).
    per_route: Arc<[RouteSeries]>,
    cache_lookups: IntCounterVec,
    per_cache_result: Arc<[(&'static str, IntCounter)]>,
    cache_entries: IntGauge,
    upstream_requests: IntCounterVec,
    upstream_entries_skipped: IntCounterVec,
    upstream_duration: Histogram,
    upstream_rate_limited: IntCounter,
    peers: IntGaugeVec,
    gossip_exchanges: IntCounterVec,
    gossip_bytes: IntCounterVec,
    probes: IntCounterVec,
    probe_retries: IntCounterVec,
    dns_queries: IntCounterVec,
    dns_rate_limited: IntCounterVec,
    dns_answers: IntCounterVec,
    fills: IntCounterVec,
    fill_verifications: IntCounterVec,
    /// Node URLs that have a series of `dbs_dns_answers_total`.
    dns_answer_nodes: Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
}

/// One route's request-duration histogram and its count of `200` answers.
#[derive(Debug)]
struct RouteSeries {
    route: &'static str,
    duration: Histogram,
    ok: IntCounter,
}

fn latency_buckets() -> Vec<f64> {
    // 0.1 ms … ~3.3 s: a cached badge answers in well under a millisecond, a cold one waits
    // for Docker Hub.
    prometheus::exponential_buckets(0.0001, 2.0, 16)
        .unwrap_or_else(|_| prometheus::DEFAULT_BUCKETS.to_vec())
}

impl Metrics {
    /// A fresh registry with every metric of the design and the process collector. Fails
    /// only on a programming error (an invalid or duplicate name).
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counters =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(metric.clone()))?;
                Ok(metric)
            };
        let http_requests = counters(
            "dbs_http_requests_total",
            "HTTP requests answered, by route and status code.",
            &["route", "code"],
        )?;
        let cache_lookups = counters(
            "dbs_cache_lookups_total",
            "Cache lookups by result (hit, stale, miss, coalesced).",
            &["result"],
        )?;
        let upstream_requests = counters(
            "dbs_upstream_requests_total",
            "Requests to Docker Hub by endpoint and outcome (held_back: stopped by our own budget).",
            &["endpoint", "outcome"],
        )?;
        let upstream_entries_skipped = counters(
            "dbs_upstream_entries_skipped_total",
            "Entries of Docker Hub answers left out because they could not be read (a tag, an image, a build), by endpoint; the rest of the answer is used.",
            &["endpoint"],
        )?;
        for endpoint in ["buildhistory", "tag_list", "tag_info"] {
            upstream_entries_skipped.with_label_values(&[endpoint]);
        }
        let gossip_exchanges = counters(
            "dbs_gossip_exchanges_total",
            "Gossip exchanges by outcome.",
            &["outcome"],
        )?;
        let gossip_bytes = counters(
            "dbs_gossip_bytes_total",
            "Gossip bytes by direction.",
            &["direction"],
        )?;
        let probes = counters(
            "dbs_probes_total",
            "Health probes of other nodes by outcome.",
            &["outcome"],
        )?;
        let probe_retries = counters(
            "dbs_probe_retries_total",
            "Retries of failed probes of listed nodes, by what each retry found.",
            &["outcome"],
        )?;

        let dns_queries = counters(
            "dbs_dns_queries_total",
            "DNS queries answered, by question type (A, AAAA, SOA, NS, ANY, other) and response code.",
            &["qtype", "rcode"],
        )?;
        let dns_rate_limited = counters(
            "dbs_dns_rate_limited_total",
            "DNS queries over their source network's rate limit: dropped, or slipped (a truncated empty answer).",
            &["action"],
        )?;
        let dns_answers = counters(
            "dbs_dns_answers_total",
            "Addresses given in DNS answers, by node URL (the first 64 nodes; the rest as other).",
            &["node"],
        )?;

        let fills = counters(
            "dbs_fills_total",
            "Fills of one node's cache from another's: asked of other nodes and served to them, by outcome.",
            &["role", "outcome"],
        )?;
        let fill_verifications = counters(
            "dbs_fill_verifications_total",
            "Fills checked against Docker Hub, by result (agreed, disagreed, failed: the hub gave no answer).",
            &["result"],
        )?;

        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "dbs_http_request_duration_seconds",
                "Time from request to response, by route.",
            )
            .buckets(latency_buckets()),
            &["route"],
        )?;
        registry.register(Box::new(http_duration.clone()))?;
        let upstream_duration = Histogram::with_opts(
            HistogramOpts::new(
                "dbs_upstream_request_duration_seconds",
                "Time a request to Docker Hub took.",
            )
            .buckets(latency_buckets()),
        )?;
        registry.register(Box::new(upstream_duration.clone()))?;
        let upstream_rate_limited = IntCounter::new(
            "dbs_upstream_rate_limited_total",
            "Answers 429 (rate limited) from Docker Hub.",
        )?;
        registry.register(Box::new(upstream_rate_limited.clone()))?;
        let cache_entries = IntGauge::new("dbs_cache_entries", "Statuses held in the cache.")?;
        registry.register(Box::new(cache_entries.clone()))?;
        let peers = IntGaugeVec::new(Opts::new("dbs_peers", "Known nodes by state."), &["state"])?;
        registry.register(Box::new(peers.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "dbs_build_info",
                "Always 1; the version label says which build runs.",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(ProcessCollector::for_self()))?;
        registry.register(Box::new(LogLinesDropped(IntCounter::new(
            "dbs_log_lines_dropped_total",
            "Log lines dropped because the log output fell behind (the process's, like process_*).",
        )?)))?;
        // Every series exists from the start at 0, so a node that has not gossiped or probed
        // yet still shows each metric of the design, and rate() sees the first increase.
        let per_cache_result = CACHE_RESULTS
            .iter()
            .map(|&result| (result, cache_lookups.with_label_values(&[result])))
            .collect();
        let per_route = ROUTES
            .iter()
            .map(|&route| RouteSeries {
                route,
                duration: http_duration.with_label_values(&[route]),
                ok: http_requests.with_label_values(&[route, StatusCode::OK.as_str()]),
            })
            .collect();
        for state in ["listed", "probation", "failing", "left"] {
            peers.with_label_values(&[state]);
        }
        for outcome in ["ok", "failed", "served"] {
            gossip_exchanges.with_label_values(&[outcome]);
        }
        for direction in ["sent", "received"] {
            gossip_bytes.with_label_values(&[direction]);
        }
        for outcome in ["answered", "failed", "forbidden", "skipped"] {
            probes.with_label_values(&[outcome]);
        }
        for outcome in ["recovered", "confirmed"] {
            probe_retries.with_label_values(&[outcome]);
        }
        for action in ["dropped", "slipped", "tcp_refused", "tcp_closed"] {
            dns_rate_limited.with_label_values(&[action]);
        }
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            per_route,
            cache_lookups,
            per_cache_result,
            cache_entries,
            upstream_requests,
            upstream_entries_skipped,
            upstream_duration,
            upstream_rate_limited,
            peers,
            gossip_exchanges,
            gossip_bytes,
            probes,
            probe_retries,
            dns_queries,
            dns_rate_limited,
            dns_answers,
            fills,
            fill_verifications,
            dns_answer_nodes: Arc::default(),
        })
    }

    /// Counts one answered HTTP request.
    pub fn http_request(&self, route: &'static str, code: StatusCode, took: Duration) {
        let Some(series) = self.per_route.iter().find(|s| s.route == route) else {
            // Not a route of ROUTES: counted all the same, the slow way.
            self.http_requests
                .with_label_values(&[route, code.as_str()])
                .inc();
            self.http_duration
                .with_label_values(&[route])
                .observe(took.as_secs_f64());
            return;
        };
        if code == StatusCode::OK {
            series.ok.inc();
        } else {
            self.http_requests
                .with_label_values(&[route, code.as_str()])
                .inc();
        }
        series.duration.observe(took.as_secs_f64());
    }

    /// Counts one cache lookup (`hit`, `stale`, `miss` or `coalesced`).
    pub fn cache_lookup(&self, result: &'static str) {
        match self.per_cache_result.iter().find(|(r, _)| *r == result) {
            Some((_, counter)) => counter.inc(),
            None => self.cache_lookups.with_label_values(&[result]).inc(),
        }
    }

    /// Sets the number of cached statuses.
    pub fn set_cache_entries(&self, entries: usize) {
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Counts one request to Docker Hub (or one held back by our own budget).
    pub fn upstream_request(&self, endpoint: &'static str, outcome: &'static str, took: Duration) {
        self.upstream_requests
            .with_label_values(&[endpoint, outcome])
            .inc();
        if outcome != "held_back" {
            self.upstream_duration.observe(took.as_secs_f64());
        }
        if outcome == "rate_limited" {
            self.upstream_rate_limited.inc();
        }
    }

    /// Counts entries of one Docker Hub answer that were left out as unreadable.
    pub fn entries_skipped(&self, endpoint: &'static str, count: usize) {
        self.upstream_entries_skipped
            .with_label_values(&[endpoint])
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    /// Sets how many known nodes are in each state.
    pub fn set_peers(&self, counts: &[(&'static str, usize)]) {
        for (state, count) in counts {
            self.peers
                .with_label_values(&[state])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
    }

    /// Counts one gossip exchange and its bytes.
    pub fn gossip_exchange(&self, outcome: &'static str, sent: usize, received: usize) {
        self.gossip_exchanges.with_label_values(&[outcome]).inc();
        self.gossip_bytes
            .with_label_values(&["sent"])
            .inc_by(sent as u64);
        self.gossip_bytes
            .with_label_values(&["received"])
            .inc_by(received as u64);
    }

    /// Counts one fill, `asked` of another node or `served` to one, by outcome.
    pub fn fill(&self, role: &'static str, outcome: &'static str) {
        self.fills.with_label_values(&[role, outcome]).inc();
    }

    /// Counts one check of a fill against Docker Hub.
    pub fn fill_verification(&self, result: &'static str) {
        self.fill_verifications.with_label_values(&[result]).inc();
    }

    /// Counts one health probe of another node.
    pub fn probe(&self, outcome: &'static str) {
        self.probes.with_label_values(&[outcome]).inc();
    }

    /// Counts one retry of a failed probe: `recovered` (answered) or `confirmed`.
    pub fn probe_retry(&self, outcome: &'static str) {
        self.probe_retries.with_label_values(&[outcome]).inc();
    }

    /// Counts one DNS query answered (labels from a fixed set: `dns::handler`).
    pub fn dns_query(&self, qtype: &'static str, rcode: &'static str) {
        self.dns_queries.with_label_values(&[qtype, rcode]).inc();
    }

    /// Counts one DNS query over its network's rate limit (`dropped` or `slipped`).
    pub fn dns_rate_limited(&self, action: &'static str) {
        self.dns_rate_limited.with_label_values(&[action]).inc();
    }

    /// The series counting the DNS answers that give the node at `url`: its own for the
    /// first [`MAX_DNS_ANSWER_SERIES`] nodes, `other` beyond.
    pub fn dns_answer_counter(&self, url: &str) -> IntCounter {
        let mut nodes = self.dns_answer_nodes.lock();
        if nodes.contains(url) || nodes.len() < MAX_DNS_ANSWER_SERIES {
            nodes.insert(url.to_owned());
            self.dns_answers.with_label_values(&[url])
        } else {
            self.dns_answers.with_label_values(&["other"])
        }
    }

    /// Adds metrics worked out when scraped by a part of the node that owns their source
    /// (Docker Hub's state, `hub::health`).
    pub fn register(&self, collector: Box<dyn Collector>) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %err, "cannot encode metrics");
        }
        out
    }
}

/// The log writer's count of dropped lines, read when scraped. The log belongs to the process,
/// not to a node, so every node in a process shows the same count, as with `process_*`.
#[derive(Debug, Clone)]
struct LogLinesDropped(IntCounter);

impl Collector for LogLinesDropped {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // A counter only rises; the count it mirrors only rises too.
        let dropped = crate::logging::dropped_lines();
        let shown = self.0.get();
        if dropped > shown {
            self.0.inc_by(dropped - shown);
        }
        self.0.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_design_metric_is_exposed() {
        let metrics = Metrics::new().unwrap();
        metrics.http_request("build", StatusCode::OK, Duration::from_millis(3));
        metrics.http_request("build", StatusCode::NOT_FOUND, Duration::from_millis(1));
        metrics.http_request("unlisted", StatusCode::OK, Duration::from_millis(1));
        metrics.cache_lookup("hit");
        metrics.upstream_request("tag", "ok", Duration::from_millis(30));
        metrics.set_peers(&[("listed", 2)]);
        metrics.gossip_exchange("ok", 100, 200);
        metrics.probe("ok");
        metrics.dns_query("A", "NOERROR");
        metrics.dns_answer_counter("http://a.example").inc();
        let text = String::from_utf8(metrics.encode()).unwrap();
        for name in [
            "dbs_http_requests_total{code=\"200\",route=\"build\"} 1",
            "dbs_http_requests_total{code=\"404\",route=\"build\"} 1",
            "dbs_http_requests_total{code=\"200\",route=\"unlisted\"} 1",
            "dbs_http_requests_total{code=\"200\",route=\"status_svg\"} 0",
            "dbs_http_request_duration_seconds_count{route=\"build\"} 2",
            "dbs_http_request_duration_seconds_bucket",
            "dbs_cache_lookups_total{result=\"hit\"} 1",
            "dbs_cache_entries 0",
            "dbs_upstream_requests_total{endpoint=\"tag\",outcome=\"ok\"} 1",
            "dbs_upstream_request_duration_seconds_count 1",
            "dbs_upstream_rate_limited_total 0",
            "dbs_upstream_entries_skipped_total{endpoint=\"tag_list\"} 0",
            "dbs_peers{state=\"listed\"} 2",
            "dbs_gossip_exchanges_total{outcome=\"ok\"} 1",
            "dbs_gossip_bytes_total{direction=\"sent\"} 100",
            "dbs_probes_total{outcome=\"ok\"} 1",
            "dbs_dns_queries_total{qtype=\"A\",rcode=\"NOERROR\"} 1",
            "dbs_dns_rate_limited_total{action=\"dropped\"} 0",
            "dbs_dns_answers_total{node=\"http://a.example\"} 1",
            "dbs_build_info{version=",
            "dbs_log_lines_dropped_total ",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }

    #[test]
    fn registries_are_per_node() {
        let a = Metrics::new().unwrap();
        let b = Metrics::new().unwrap();
        a.cache_lookup("miss");
        let text = String::from_utf8(b.encode()).unwrap();
        assert!(!text.contains("dbs_cache_lookups_total{result=\"miss\"} 1"));
    }

    #[test]
    fn dns_answer_series_are_bounded() {
        let metrics = Metrics::new().unwrap();
        for i in 0..1000 {
            metrics
                .dns_answer_counter(&format!("http://n{i}.example"))
                .inc();
        }
        // A node that has a series keeps it.
        metrics.dns_answer_counter("http://n0.example").inc();
        let text = String::from_utf8(metrics.encode()).unwrap();
        let series = text
            .lines()
            .filter(|l| l.starts_with("dbs_dns_answers_total{"))
            .count();
        assert_eq!(series, MAX_DNS_ANSWER_SERIES + 1);
        assert!(text.contains("dbs_dns_answers_total{node=\"other\"} 936"));
        assert!(text.contains("dbs_dns_answers_total{node=\"http://n0.example\"} 2"));
    }
}
