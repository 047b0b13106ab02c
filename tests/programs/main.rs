//! The tests that drive outside programs (Chromium, Node.js, promtool and Prometheus, dig,
//! podman, systemd), in one test binary under libtest-mimic (`common::harness`): a test
//! whose program is missing shows as ignored with the reason, and fails under `CI=true`.
//! One binary instead of seven saves a link of the whole crate per build for each.

#[path = "../chromium/mod.rs"]
mod chromium;
#[path = "../common/mod.rs"]
mod common;

mod browser;
mod container;
mod dns_pool;
mod front_page;
mod js_unit;
mod metrics;
mod systemd;

fn main() {
    let trials: Vec<libtest_mimic::Trial> = [
        browser::trials(),
        container::trials(),
        dns_pool::trials(),
        front_page::trials(),
        js_unit::trials(),
        metrics::trials(),
        systemd::trials(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let conclusion = libtest_mimic::run(&libtest_mimic::Arguments::from_args(), trials);
    container::clean_up();
    conclusion.exit()
}
