//! Memory benchmark: resident memory of the status cache holding 1,000,000 keys.
//! The cache is filled through its public API in front of an upstream that answers at once,
//! and VmRSS (from /proc/self/status) is read before and after: the process before filling
//! is the baseline, and the difference over the entries is the cost of one cached status,
//! key text, map slot, allocator overhead and the map's spare room included.
//!
//! `cargo bench --bench memory`. Without `--bench` (as `cargo test --benches` runs it) it
//! fills 10,000 keys and only checks that they were all cached.

use std::time::{Duration, Instant};

use dockerhub_build_status::cache::{CacheSettings, StatusCache, Upstream};
use dockerhub_build_status::hub::names::ImageRef;
use dockerhub_build_status::hub::{ClientKey, HubError, HubStatus, StatusSource};
use dockerhub_build_status::metrics::Metrics;

/// The goal.
const GOAL_BYTES_PER_ENTRY: f64 = 400.0;

/// An upstream that knows every image and answers at once.
struct AtOnce;

impl Upstream for AtOnce {
    async fn fetch(
        &self,
        _image: &ImageRef,
        _client: Option<ClientKey>,
    ) -> Result<HubStatus, HubError> {
        Ok(HubStatus {
            status: 10,
            source: StatusSource::Tag,
        })
    }
}

/// The `i`th image: names of a realistic length (the key `org-123/service-name-456789:latest`
/// is 34 bytes; real ones like `niccokunzmann/dockerhub-build-status-image:latest` run from
/// 15 to 50), with a few tags per repository as badges for branches have.
fn image(i: usize) -> ImageRef {
    const TAGS: [&str; 4] = ["latest", "main", "1.2.3", "alpine"];
    let organization = format!("org-{}", i % 997);
    let repository = format!("service-name-{:06}", i / TAGS.len());
    ImageRef::parse(&organization, &repository, TAGS[i % TAGS.len()]).expect("a valid name")
}

/// A field of /proc/self/status in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let entries: usize = if full { 1_000_000 } else { 10_000 };

    // One thread: no worker stacks or per-thread allocator arenas join in while filling.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let cache = StatusCache::new(
        AtOnce,
        CacheSettings {
            ttl: Duration::from_secs(3600),
            max_stale: Duration::from_secs(86_400),
            capacity: entries,
        },
        Metrics::new().expect("metrics"),
    );
    let key_bytes: usize = (0..entries).map(|i| image(i).to_string().len()).sum();
    let before = proc_status_bytes("VmRSS");

    let started = Instant::now();
    runtime.block_on(async {
        for i in 0..entries {
            let lookup = cache.get(&image(i)).await;
            assert!(lookup.result.is_ok(), "entry {i}: {:?}", lookup.result);
        }
    });
    let fill_time = started.elapsed();
    let after = proc_status_bytes("VmRSS");
    let peak = proc_status_bytes("VmHWM");

    assert_eq!(cache.len(), entries, "every key is cached");
    // Still cached, and answered from the cache: a hit costs no upstream call.
    runtime.block_on(async {
        for i in (0..entries).step_by(entries / 10) {
            let lookup = cache.get(&image(i)).await;
            assert!(lookup.result.is_ok() && !lookup.stale, "entry {i} is fresh");
        }
    });

    let per_entry = after.saturating_sub(before) as f64 / entries as f64;
    if !full {
        println!(
            "memory: smoke run only ({entries} keys cached); `cargo bench --bench memory` measures"
        );
        return;
    }
    println!(
        "memory: {entries} statuses cached through StatusCache::get, upstream answering at once"
    );
    println!("VmRSS before (baseline) {:>12}", mib(before));
    println!(
        "VmRSS after             {:>12}   (peak VmHWM {})",
        mib(after),
        mib(peak)
    );
    println!(
        "per entry               {per_entry:>10.0} B   {:.2}x the {GOAL_BYTES_PER_ENTRY:.0} B goal: {}",
        per_entry / GOAL_BYTES_PER_ENTRY,
        if per_entry < GOAL_BYTES_PER_ENTRY {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "key text                {:>10.1} B   mean length of `organization/repository:tag`",
        key_bytes as f64 / entries as f64
    );
    println!(
        "fill time               {:>10.2} s   {:.2} µs per cold key",
        fill_time.as_secs_f64(),
        fill_time.as_secs_f64() * 1e6 / entries as f64
    );
}
