//! Runs the JavaScript unit tests of status.js (`tests/js/*.test.js`) with node's built-in
//! test runner, so `cargo test` covers the browser script too.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::harness;

/// The test files, named one by one: a directory argument means "search it" to node 20 but
/// a glob pattern to node 22, and naming files works for both.
fn test_files(root: &Path) -> Vec<String> {
    let dir = root.join("tests/js");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.js"))
        .map(|name| format!("tests/js/{name}"))
        .collect();
    files.sort();
    files
}

/// The count from the runner's `# tests N` (TAP) or `ℹ tests N` (spec) summary line.
fn tests_run(stdout: &str) -> Option<u64> {
    stdout.lines().find_map(|line| {
        let rest = line
            .strip_prefix("# tests ")
            .or_else(|| line.strip_prefix("ℹ tests "))?;
        rest.trim().parse().ok()
    })
}

fn status_js_unit_tests_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let version = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        // On PATH but unusable: broken, not missing.
        Ok(out) => panic!("`node --version` exited with {}", out.status),
        Err(err) => panic!("`node` could not be started: {err}"),
    };

    let files = test_files(root);
    assert!(!files.is_empty(), "no tests/js/*.test.js files found");
    let out = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=tap")
        .args(&files)
        .current_dir(root)
        .output()
        .expect("start node --test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {version} --test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let count = tests_run(&stdout);
    assert!(
        count.is_some_and(|n| n > 0),
        "node --test ran no test:\n{stdout}\n{stderr}"
    );
    // Shown with --nocapture only.
    println!(
        "node {version}: {} status.js tests passed",
        count.unwrap_or(0)
    );
}

/// This module's tests, for the harness in `main.rs`.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    vec![harness::needs(
        "status_js_unit_tests_pass",
        &["node"],
        status_js_unit_tests_pass,
    )]
}
