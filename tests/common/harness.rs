//! The test harness of the tests that drive outside programs (Chromium, promtool,
//! Prometheus, Node.js): libtest-mimic, so a test whose program is missing shows as
//! `ignored, <reason>` in `cargo test`'s own summary instead of as a pass. Under `CI=true` a
//! missing program is a failure instead, since CI installs them all.
//!
//! Targets using it set `harness = false` in Cargo.toml and call [`main`] with their trials.

use std::future::Future;
use std::path::PathBuf;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Where `program` is on PATH, if it is.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Whether this run is CI's, where every outside program must be there.
pub fn under_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// What a run without `programs` does: `None` when all are on PATH, else the outcome to
/// report instead of running the test.
fn missing(programs: &[&str]) -> Option<Result<Completion, Failed>> {
    let absent: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|program| find_program(program).is_none())
        .collect();
    if absent.is_empty() {
        return None;
    }
    let names = absent.join(", ");
    Some(if under_ci() {
        Err(format!("{names} is not on PATH, and CI=true needs it: .ci/run installs it").into())
    } else {
        Ok(Completion::ignored_with(format!(
            "{names} is not on PATH; install it to run this test"
        )))
    })
}

/// A test that needs `programs` on PATH: ignored with the reason when one is missing (a
/// failure under CI), otherwise run; a panic in `test` fails it.
pub fn needs(
    name: &str,
    programs: &'static [&'static str],
    test: impl FnOnce() + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || {
        if let Some(outcome) = missing(programs) {
            return outcome;
        }
        test();
        Ok(Completion::Completed)
    })
}

/// A test that needs `programs` on PATH and something of the machine itself that CI cannot
/// install (systemd as PID 1, say): `unavailable` names what is missing, and the test is then
/// ignored with that reason, under CI too, instead of pretending.
pub fn needs_machine(
    name: &str,
    programs: &'static [&'static str],
    unavailable: impl FnOnce() -> Option<String> + Send + 'static,
    test: impl FnOnce() + Send + 'static,
) -> Trial {
    Trial::ignorable_test(name, move || {
        // The machine first: where it cannot run the test, its programs do not matter.
        if let Some(reason) = unavailable() {
            return Ok(Completion::ignored_with(reason));
        }
        if let Some(outcome) = missing(programs) {
            return outcome;
        }
        test();
        Ok(Completion::Completed)
    })
}

/// A test that needs nothing from outside.
pub fn plain(name: &str, test: impl FnOnce() + Send + 'static) -> Trial {
    Trial::test(name, move || {
        test();
        Ok(())
    })
}

/// Runs an async test on a runtime of its own, as `#[tokio::test(flavor = "multi_thread",
/// worker_threads = 2)]` would.
pub fn block_on<F: Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start a tokio runtime for the test")
        .block_on(test);
}

/// Runs `trials` as `cargo test` would (filters, `--list`, `--ignored`, `--test-threads`)
/// and exits with the result.
pub fn main(trials: Vec<Trial>) -> ! {
    libtest_mimic::run(&Arguments::from_args(), trials).exit()
}
