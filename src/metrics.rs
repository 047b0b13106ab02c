//! Prometheus metrics (design section 8): one registry owned by the node, never global, so
//! several nodes in one test process keep their own counts.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteCode {
    route: &'static str,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupResult {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointOutcome {
    endpoint: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

/// The node's metrics. Cloning shares them.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    http_requests: Family<RouteCode, Counter>,
    http_duration: Family<Route, Histogram>,
    cache_lookups: Family<LookupResult, Counter>,
    cache_entries: Gauge,
    upstream_requests: Family<EndpointOutcome, Counter>,
    upstream_duration: Histogram,
    upstream_rate_limited: Counter,
    peers: Family<State, Gauge>,
    gossip_exchanges: Family<Outcome, Counter>,
    gossip_bytes: Family<Direction, Counter>,
    probes: Family<Outcome, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms … ~3.3 s: a cached badge answers in well under a millisecond, a cold one waits
    // for Docker Hub.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric of the design registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let http_requests = Family::<RouteCode, Counter>::default();
        registry.register(
            "dbs_http_requests",
            "HTTP requests answered, by route and status code",
            http_requests.clone(),
        );
        let http_duration = Family::<Route, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let http_duration_family = http_duration.clone();
        registry.register_with_unit(
            "dbs_http_request_duration",
            "Time from request to response, by route",
            prometheus_client::registry::Unit::Seconds,
            http_duration_family,
        );
        let cache_lookups = Family::<LookupResult, Counter>::default();
        registry.register(
            "dbs_cache_lookups",
            "Cache lookups by result (hit, stale, miss, coalesced)",
            cache_lookups.clone(),
        );
        let cache_entries = Gauge::default();
        registry.register(
            "dbs_cache_entries",
            "Statuses held in the cache",
            cache_entries.clone(),
        );
        let upstream_requests = Family::<EndpointOutcome, Counter>::default();
        registry.register(
            "dbs_upstream_requests",
            "Requests to Docker Hub by endpoint and outcome",
            upstream_requests.clone(),
        );
        let upstream_duration = latency_histogram();
        registry.register_with_unit(
            "dbs_upstream_request_duration",
            "Time a request to Docker Hub took",
            prometheus_client::registry::Unit::Seconds,
            upstream_duration.clone(),
        );
        let upstream_rate_limited = Counter::default();
        registry.register(
            "dbs_upstream_rate_limited",
            "Answers 429 from Docker Hub",
            upstream_rate_limited.clone(),
        );
        let peers = Family::<State, Gauge>::default();
        registry.register("dbs_peers", "Known nodes by state", peers.clone());
        let gossip_exchanges = Family::<Outcome, Counter>::default();
        registry.register(
            "dbs_gossip_exchanges",
            "Gossip exchanges by outcome",
            gossip_exchanges.clone(),
        );
        let gossip_bytes = Family::<Direction, Counter>::default();
        registry.register(
            "dbs_gossip_bytes",
            "Gossip bytes sent and received",
            gossip_bytes.clone(),
        );
        let probes = Family::<Outcome, Counter>::default();
        registry.register(
            "dbs_probes",
            "Health probes of other nodes by outcome",
            probes.clone(),
        );
        let build_info = Family::<Version, Gauge>::default();
        build_info
            .get_or_create(&Version {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "dbs_build_info",
            "Always 1; the version label says which build runs",
            build_info,
        );
        registry.register_collector(Box::new(ProcessCollector));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                http_requests,
                http_duration,
                cache_lookups,
                cache_entries,
                upstream_requests,
                upstream_duration,
                upstream_rate_limited,
                peers,
                gossip_exchanges,
                gossip_bytes,
                probes,
            }),
        }
    }

    /// Counts one answered HTTP request.
    pub fn http_request(&self, route: &'static str, code: u16, took: Duration) {
        self.inner
            .http_requests
            .get_or_create(&RouteCode { route, code })
            .inc();
        self.inner
            .http_duration
            .get_or_create(&Route { route })
            .observe(took.as_secs_f64());
    }

    /// Counts one cache lookup (`hit`, `stale`, `miss` or `coalesced`).
    pub fn cache_lookup(&self, result: &'static str) {
        self.inner
            .cache_lookups
            .get_or_create(&LookupResult { result })
            .inc();
    }

    /// Sets the number of cached statuses.
    pub fn set_cache_entries(&self, entries: usize) {
        self.inner
            .cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Counts one request to Docker Hub.
    pub fn upstream_request(&self, endpoint: &'static str, outcome: &'static str, took: Duration) {
        self.inner
            .upstream_requests
            .get_or_create(&EndpointOutcome { endpoint, outcome })
            .inc();
        if outcome != "held_back" {
            self.inner.upstream_duration.observe(took.as_secs_f64());
        }
        if outcome == "rate_limited" {
            self.inner.upstream_rate_limited.inc();
        }
    }

    /// Sets how many known nodes are in each state.
    pub fn set_peers(&self, counts: &[(&'static str, usize)]) {
        for (state, count) in counts {
            self.inner
                .peers
                .get_or_create(&State { state })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
    }

    /// Counts one gossip exchange and its bytes.
    pub fn gossip_exchange(&self, outcome: &'static str, sent: usize, received: usize) {
        self.inner
            .gossip_exchanges
            .get_or_create(&Outcome { outcome })
            .inc();
        self.inner
            .gossip_bytes
            .get_or_create(&Direction { direction: "sent" })
            .inc_by(sent as u64);
        self.inner
            .gossip_bytes
            .get_or_create(&Direction {
                direction: "received",
            })
            .inc_by(received as u64);
    }

    /// Counts one health probe of another node.
    pub fn probe(&self, outcome: &'static str) {
        self.inner.probes.get_or_create(&Outcome { outcome }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            // Writing to a String cannot fail; keep the scrape parseable regardless.
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

/// The standard `process_*` metrics, read from `/proc/self` at each scrape (Linux only;
/// elsewhere they are left out).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = process_stats() else {
            return Ok(());
        };
        let counter = ConstCounter::new(stats.cpu_seconds);
        counter.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            counter.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stats.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stats.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                stats.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                stats.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                stats.start_time,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    open_fds: f64,
    max_fds: f64,
    start_time: f64,
}

fn process_stats() -> Option<ProcessStats> {
    // Linux reports CPU times in clock ticks of USER_HZ, which is 100 on every architecture
    // Rust supports there.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let field =
        |index_from_state: usize| -> Option<f64> { fields.get(index_from_state)?.parse().ok() };
    let utime = field(11)?;
    let stime = field(12)?;
    let start_ticks = field(19)?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? * 1024.0)
    };
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        resident_bytes: kib("VmRSS:").unwrap_or(0.0),
        virtual_bytes: kib("VmSize:").unwrap_or(0.0),
        open_fds,
        max_fds,
        start_time: boot_time + start_ticks / TICKS_PER_SECOND,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_design_metric_is_exposed() {
        let metrics = Metrics::new();
        metrics.http_request("build", 200, Duration::from_millis(3));
        metrics.cache_lookup("hit");
        metrics.upstream_request("tag", "ok", Duration::from_millis(30));
        metrics.set_peers(&[("listed", 2)]);
        metrics.gossip_exchange("ok", 100, 200);
        metrics.probe("ok");
        let text = metrics.encode();
        for name in [
            "dbs_http_requests_total{route=\"build\",code=\"200\"} 1",
            "dbs_http_request_duration_seconds_bucket",
            "dbs_cache_lookups_total{result=\"hit\"} 1",
            "dbs_cache_entries",
            "dbs_upstream_requests_total{endpoint=\"tag\",outcome=\"ok\"} 1",
            "dbs_upstream_request_duration_seconds_count 1",
            "dbs_upstream_rate_limited_total 0",
            "dbs_peers{state=\"listed\"} 2",
            "dbs_gossip_exchanges_total{outcome=\"ok\"} 1",
            "dbs_gossip_bytes_total{direction=\"sent\"} 100",
            "dbs_probes_total{outcome=\"ok\"} 1",
            "dbs_build_info{version=",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
