//! The packaging files cannot drift from the binary: every flag and DBS_* variable that the
//! Dockerfile, docker-compose.yml, the systemd unit and its environment file name is one the
//! binary accepts (checked against `--help` and parsed with the node's own flag parser), the
//! operations guide documents every flag, and `systemd-analyze` accepts the unit. `.ci/run`
//! installs with services refused for the install only and ends no process by name.
//!
//! No Docker engine runs where these tests run, so the container files are checked as text.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use common::compose;
use common::process::{ChildGuard, NODE_BIN, TempDir};
use dockerhub_build_status::config::Config;
use dockerhub_build_status::http::server::DRAIN_TIMEOUT;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// What `--help` says the binary accepts: long flags, and the variable each one reads.
struct Help {
    flags: BTreeSet<String>,
    env_to_flag: BTreeMap<String, String>,
}

fn help() -> Help {
    let output = Command::new(NODE_BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success(), "--help: {}", output.status);
    let text = String::from_utf8(output.stdout).expect("UTF-8 help");
    let mut flags = BTreeSet::new();
    let mut env_to_flag = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        // Option lines (`--listen <LISTEN>`, `-h, --help`); a possible value's line
        // (`- text: …`) has no long flag and belongs to the option above it.
        let long = trimmed
            .split([' ', ','])
            .find(|word| word.starts_with("--"));
        if let Some(flag) = long.filter(|_| trimmed.starts_with('-')) {
            current = Some(flag.to_owned());
            flags.insert(flag.to_owned());
        } else if let Some(rest) = trimmed.strip_prefix("[env: ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let flag = current.clone().expect("an env line belongs to a flag");
            env_to_flag.insert(name, flag);
        }
    }
    assert!(
        flags.contains("--listen") && flags.contains("--help"),
        "{text}"
    );
    assert!(env_to_flag.contains_key("DBS_LISTEN"), "{text}");
    Help { flags, env_to_flag }
}

/// The flag name of a command-line word (`--peers=/x` → `--peers`), if it is a flag.
fn flag_name(word: &str) -> Option<&str> {
    word.starts_with("--")
        .then(|| word.split('=').next().unwrap_or(word))
}

/// Checks that `args` and `env` (`DBS_*` settings) name only what the binary accepts, and
/// that the node's own parser takes them together, values included.
fn assert_accepted(what: &str, help: &Help, args: &[String], env: &[(String, String)]) {
    let mut argv = vec!["dockerhub-build-status".to_owned()];
    for (name, value) in env {
        if !name.starts_with("DBS_") {
            continue;
        }
        let flag = help
            .env_to_flag
            .get(name)
            .unwrap_or_else(|| panic!("{what}: the binary reads no variable {name}"));
        if args.iter().any(|a| flag_name(a) == Some(flag)) {
            // A flag beats its variable, as in the binary.
            continue;
        }
        // A boolean flag's variable is on when set to true; others carry a value.
        if value == "true" {
            argv.push(flag.clone());
        } else {
            argv.push(format!("{flag}={value}"));
        }
    }
    for word in args {
        if let Some(flag) = flag_name(word) {
            assert!(
                help.flags.contains(flag),
                "{what}: the binary has no flag {flag}"
            );
        }
    }
    argv.extend(args.iter().cloned());
    let config = Config::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{what}: the node refuses {argv:?}:\n{e}"));
    config
        .validate()
        .unwrap_or_else(|e| panic!("{what}: the node refuses {argv:?}: {e}"));
}

/// `KEY=VALUE` lines of an environment file (comments and blank lines skipped).
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
            (key.to_owned(), value.trim_matches('"').to_owned())
        })
        .collect()
}

/// The Dockerfile's instructions, with continuation lines joined.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            pending.push_str(part);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, rest) = pending.split_once(' ').unwrap_or((&pending, ""));
        out.push((keyword.to_uppercase(), rest.trim().to_owned()));
        pending.clear();
    }
    out
}

fn major_minor(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn the_dockerfile_names_only_what_the_binary_accepts() {
    let help = help();
    let text = read("Dockerfile");
    let instructions = dockerfile_instructions(&text);
    let all = |keyword: &str| -> Vec<&String> {
        instructions
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, rest)| rest)
            .collect()
    };

    let mut env = Vec::new();
    for rest in all("ENV") {
        for pair in rest.split_whitespace() {
            let (key, value) = pair.split_once('=').expect("ENV in KEY=VALUE form");
            env.push((key.to_owned(), value.trim_matches('"').to_owned()));
        }
    }
    // Exec form only: a shell form would need a shell, and the runtime image has none.
    let exec_form = |keyword: &str| -> Vec<String> {
        all(keyword)
            .last()
            .map(|rest| {
                serde_json::from_str(rest)
                    .unwrap_or_else(|e| panic!("{keyword} is not a JSON array ({e}): {rest}"))
            })
            .unwrap_or_default()
    };
    let entrypoint = exec_form("ENTRYPOINT");
    let cmd = exec_form("CMD");
    let binary = entrypoint.first().expect("an ENTRYPOINT");
    assert!(
        all("COPY").iter().any(|c| c.ends_with(binary.as_str())),
        "the ENTRYPOINT {binary} is copied into the image"
    );
    let args: Vec<String> = entrypoint[1..].iter().chain(&cmd).cloned().collect();
    assert_accepted("Dockerfile", &help, &args, &env);

    let setting = |name: &str| -> String {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the Dockerfile sets {name}"))
    };
    let state_dir = setting("DBS_STATE_DIR");
    assert_eq!(
        all("VOLUME"),
        [&state_dir],
        "the state folder is the volume"
    );
    let port = setting("DBS_LISTEN")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(all("EXPOSE"), [&port], "the listening port is exposed");
    let user = all("USER")
        .last()
        .map(|u| u.to_string())
        .unwrap_or_default();
    assert!(
        !user.is_empty() && !user.starts_with("root") && !user.starts_with('0'),
        "the node runs as a non-root user, not {user:?}"
    );

    // The build image is at least the Rust the crate says it needs.
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    let needed = manifest["package"]["rust-version"]
        .as_str()
        .expect("rust-version");
    let used = all("ARG")
        .iter()
        .find_map(|a| a.strip_prefix("RUST_VERSION="))
        .expect("ARG RUST_VERSION=");
    assert!(
        major_minor(used) >= major_minor(needed),
        "the image builds with Rust {used}, the crate needs {needed}"
    );
    assert!(
        all("RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked")),
        "a locked release build"
    );
}

#[test]
fn the_dockerignore_keeps_what_the_build_reads() {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect();
    for excluded in [".git", "target"] {
        assert!(
            patterns.iter().any(|p| p == excluded),
            "{excluded} is left out"
        );
    }
    // build.rs packs these into /source; cargo needs the manifest and lock file.
    let build_rs = read("build.rs");
    let list = build_rs
        .split_once("const PACKED: &[&str] = &[")
        .and_then(|(_, rest)| rest.split_once("];"))
        .expect("build.rs's PACKED list")
        .0;
    let packed: Vec<&str> = list
        .split(',')
        .map(|item| item.trim().trim_matches('"'))
        .filter(|item| !item.is_empty())
        .collect();
    assert!(packed.contains(&"src") && packed.contains(&"Cargo.lock"));
    for item in packed {
        for pattern in &patterns {
            let covers = pattern == "*"
                || pattern == item
                || item.starts_with(&format!("{pattern}/"))
                || pattern.starts_with(&format!("{item}/"));
            assert!(
                !covers || pattern.starts_with('!'),
                ".dockerignore's {pattern} leaves out {item}, which the build reads"
            );
        }
    }
}

#[test]
fn merged_settings_nested_items_and_own_keys_first() {
    let text = "x-node: &node\n  image: a\n  read_only: true\n  env_file:\n    - path: dbs.env\n      required: false\n\
                services:\n  one:\n    <<: *node\n    image: b\n    command:\n      - --x=1\n    ports: [\"1:2\", '3:4']\n";
    let services = compose::services(text);
    assert_eq!(services.len(), 1);
    let one = &services[0];
    assert_eq!(one.scalar("image").as_deref(), Some("b"));
    assert_eq!(one.scalar("read_only").as_deref(), Some("true"));
    assert_eq!(one.list("env_file"), ["path=dbs.env", "required=false"]);
    assert_eq!(one.list("command"), ["--x=1"]);
    assert_eq!(one.list("ports"), ["1:2", "3:4"]);
}

#[test]
fn the_compose_network_names_only_what_the_binary_accepts() {
    let help = help();
    let dockerfile = dockerfile_instructions(&read("Dockerfile"));
    let image_env: Vec<(String, String)> = dockerfile
        .iter()
        .filter(|(k, _)| k == "ENV")
        .flat_map(|(_, rest)| rest.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let state_dir = &image_env
        .iter()
        .find(|(k, _)| k == "DBS_STATE_DIR")
        .expect("the image's state folder")
        .1;

    let services = compose::services(&read("docker-compose.yml"));
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["node1", "node2", "node3"], "three nodes");
    let mut state_volumes = BTreeSet::new();
    let mut peers_files = BTreeSet::new();
    for service in &services {
        let what = format!("docker-compose.yml {}", service.name);
        let list = |key: &str| service.list(key);
        let command = list("command");
        let env: Vec<(String, String)> = image_env
            .iter()
            .cloned()
            .chain(
                list("environment")
                    .iter()
                    .filter_map(|e| e.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()))),
            )
            .collect();
        assert_accepted(&what, &help, &command, &env);

        let flag = |name: &str| -> Option<String> {
            command.iter().find_map(|w| {
                (flag_name(w) == Some(name)).then(|| {
                    w.split_once('=')
                        .map(|(_, v)| v.to_owned())
                        .unwrap_or_default()
                })
            })
        };
        assert_eq!(
            flag("--public-url").as_deref(),
            Some(format!("http://{}:8080", service.name).as_str()),
            "{what}: public URL of its service name"
        );
        assert!(flag("--allow-private-peers").is_some(), "{what}");

        let volumes = list("volumes");
        let state = volumes
            .iter()
            .find(|v| v.split(':').nth(1) == Some(state_dir.as_str()))
            .unwrap_or_else(|| panic!("{what}: a volume at {state_dir}"));
        state_volumes.insert(state.split(':').next().unwrap_or_default().to_owned());
        let peers = flag("--peers").unwrap_or_else(|| panic!("{what}: --peers"));
        let mount = volumes
            .iter()
            .find(|v| v.split(':').nth(1) == Some(peers.as_str()))
            .unwrap_or_else(|| panic!("{what}: the peers file {peers} is mounted"));
        assert!(mount.ends_with(":ro"), "{what}: read-only: {mount}");
        peers_files.insert(mount.split(':').next().unwrap_or_default().to_owned());
    }
    assert_eq!(
        state_volumes.len(),
        3,
        "a state volume each: {state_volumes:?}"
    );
    assert_eq!(peers_files.len(), 1, "one peers file: {peers_files:?}");

    // The shared peers file names node1 by the URL node1 announces.
    let file = peers_files.first().expect("one").trim_start_matches("./");
    let peers: toml::Table = toml::from_str(&read(file)).expect("peers file is TOML");
    let urls: Vec<&str> = peers["peer"]
        .as_array()
        .expect("[[peer]] tables")
        .iter()
        .filter_map(|p| p["url"].as_str())
        .collect();
    assert_eq!(urls, ["http://node1:8080"]);
}

/// The systemd unit's `Key=value` lines, in order (a key may repeat).
fn unit_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_systemd_unit_is_sandboxed_and_names_only_what_the_binary_accepts() {
    let help = help();
    let settings = unit_settings(&read("packaging/dockerhub-build-status.service"));
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let exec = get("ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart");
    let mut words = exec[0].split_whitespace().map(str::to_owned);
    let binary = words.next().unwrap_or_default();
    assert!(binary.ends_with("/dockerhub-build-status"), "{binary}");
    let args: Vec<String> = words.collect();
    // `%S` is systemd's state root; the environment file adds the operator's settings.
    let mut env: Vec<(String, String)> = get("Environment")
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%S", "/var/lib")))
        .collect();
    env.extend(env_file(&read("packaging/dockerhub-build-status.env")));
    assert_accepted("the systemd unit", &help, &args, &env);

    for (key, want) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "dockerhub-build-status"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("SystemCallFilter", "@system-service"),
        ("MemoryDenyWriteExecute", "yes"),
        ("KillSignal", "SIGTERM"),
        ("Restart", "on-failure"),
    ] {
        assert!(get(key).contains(&want), "{key}={want} in the unit");
    }
    // The capability has to hold in the host's user namespace, which owns the network the
    // node binds port 53 and 80 in: a private user namespace (PrivateUsers=yes, or self or
    // identity) would leave the service none there.
    for value in get("PrivateUsers") {
        assert!(
            ["no", "false", "off", "0"].contains(&value),
            "PrivateUsers={value} takes CAP_NET_BIND_SERVICE away from the host's ports"
        );
    }
    assert_eq!(
        get("Environment")
            .iter()
            .find_map(|e| e.strip_prefix("DBS_STATE_DIR=")),
        Some("%S/dockerhub-build-status"),
        "the node keeps its state in the StateDirectory"
    );
    assert!(
        get("EnvironmentFile").iter().any(|f| f.starts_with('-')),
        "an optional environment file"
    );
    let stop = get("TimeoutStopSec");
    let stop = stop.first().expect("TimeoutStopSec");
    let seconds: u64 = stop
        .trim_end_matches('s')
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        seconds > DRAIN_TIMEOUT.as_secs(),
        "TimeoutStopSec={stop} must outlast the {DRAIN_TIMEOUT:?} drain"
    );
}

#[test]
fn systemd_analyze_accepts_the_unit() {
    // Not every machine has systemd's tools (containers often do not), so this skips
    // instead of failing, also under CI.
    let found = Command::new("systemd-analyze").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: systemd-analyze is not available");
        return;
    }
    // verify insists that ExecStart names an existing executable: point it at the one
    // cargo built.
    let unit = read("packaging/dockerhub-build-status.service");
    let unit: String = unit
        .lines()
        .map(|line| match line.strip_prefix("ExecStart=") {
            Some(_) => format!("ExecStart={NODE_BIN}\n"),
            None => format!("{line}\n"),
        })
        .collect();
    let dir = TempDir::new("systemd");
    let path = dir.write("dockerhub-build-status.service", &unit);

    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Unknown or misspelt keys are warnings with exit code 0: nothing may be said at all.
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {}\n{said}",
        output.status
    );

    // The sandbox as systemd scores it (0 is locked down, 10 is wide open).
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze security");
    let text = String::from_utf8_lossy(&output.stdout);
    let Some(level) = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for ").map(|(_, r)| r))
        .and_then(|r| r.split(": ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
    else {
        eprintln!(
            "skipping the exposure check: this systemd-analyze cannot score offline: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    };
    assert!(level <= 2.0, "exposure {level} > 2.0:\n{text}");
}

#[test]
fn the_operations_guide_documents_every_flag_and_no_other() {
    let help = help();
    let guide = read("docs/OPERATIONS.md");
    // Flags are documented in the guide's table rows: | `--flag ARG` | `DBS_…` | default | …
    let mut documented = BTreeSet::new();
    for row in guide.lines().filter(|l| l.starts_with("| `--")) {
        let cell = row.trim_start_matches("| `");
        let flag: String = cell
            .chars()
            .take_while(|c| *c == '-' || c.is_ascii_alphanumeric())
            .collect();
        documented.insert(flag);
        // A row naming two flags (`--hub-username NAME`, `--hub-token TOKEN`).
        for extra in cell.split("`, `--").skip(1) {
            let flag: String = extra
                .chars()
                .take_while(|c| *c == '-' || c.is_ascii_alphanumeric())
                .collect();
            documented.insert(format!("--{flag}"));
        }
    }
    let wanted: BTreeSet<String> = help
        .flags
        .iter()
        .filter(|f| *f != "--help" && *f != "--version")
        .cloned()
        .collect();
    assert_eq!(documented, wanted, "the flag table of docs/OPERATIONS.md");
    for variable in help.env_to_flag.keys() {
        assert!(
            guide.contains(variable.as_str()),
            "the guide names {variable}"
        );
    }
    assert!(
        read("README.md").contains("(docs/OPERATIONS.md)"),
        "the README links the guide"
    );
}

/// The install step of `.ci/run`, cut out of the script: from `packages=` to the `fi` that
/// ends the root-only install.
fn ci_install_step() -> String {
    let script = read(".ci/run");
    let start = script.find("\npackages=").expect(".ci/run sets packages=");
    let end = start
        + script[start..]
            .find("\nfi\n")
            .expect("the install step ends with fi")
        + 4;
    script[start..end].to_owned()
}

/// `.ci/run` ends no process by name: on a developer's machine that would be their own
/// Prometheus (it used to run `pkill -x prometheus` after the install).
#[test]
fn ci_ends_no_process_by_name() {
    for (number, line) in read(".ci/run").lines().enumerate() {
        let code = line.split('#').next().unwrap_or_default();
        for word in ["pkill", "killall", "pgrep", "pidof"] {
            assert!(
                !code.split_whitespace().any(|w| w == word),
                ".ci/run line {}: {line}",
                number + 1
            );
        }
    }
}

/// The install runs under a policy-rc.d that refuses every service start, and the file is
/// gone again afterwards, or back as it was when there was one. Run for real in bash, with
/// `id` and `apt-get` stood in for by shell functions and the policy in a temp folder.
#[test]
fn ci_installs_with_services_refused_for_the_install_only() {
    let dir = TempDir::new("policy-rc");
    let policy = dir.path().join("policy-rc.d");
    let step = ci_install_step().replace("/usr/sbin/policy-rc.d", &policy.display().to_string());
    assert_ne!(
        step,
        ci_install_step(),
        "the step writes /usr/sbin/policy-rc.d"
    );
    let during = dir.path().join("during");
    let stubs = format!(
        r#"id() {{ echo 0; }}
apt-get() {{
  if [ "$1" = install ]; then
    if [ -x "{policy}" ]; then code=0; "{policy}" start prometheus || code=$?; echo "exit $code" >"{during}"; else echo absent >"{during}"; fi
  fi
}}
"#,
        policy = policy.display(),
        during = during.display()
    );
    for before in [None, Some("#!/bin/sh\nexit 0\n")] {
        if let Some(text) = before {
            dir.write("policy-rc.d", text);
        }
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{stubs}{step}"))
            .output()
            .expect("run bash");
        assert!(
            output.status.success(),
            "{before:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seen = std::fs::read_to_string(&during).unwrap_or_default();
        assert_eq!(
            seen.trim(),
            "exit 101",
            "{before:?}: services refused during the install"
        );
        match before {
            None => assert!(!policy.exists(), "the policy is removed after the install"),
            Some(text) => assert_eq!(read_file(&policy), text, "the earlier policy is back"),
        }
    }
}

fn read_file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The README serves both of its readers from a fresh clone: it opens with the badge user,
/// then the node runner; says the first build takes minutes, what a node started in the
/// checkout reads and writes, and how to start alone; points only at files a clone has;
/// and its two set-up commands are the ones the binary and cargo take.
#[test]
fn the_readme_opens_with_both_readers_and_points_only_inside_the_clone() {
    let readme = read("README.md");
    let headings: Vec<&str> = readme.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(
        headings.get(..2),
        Some(&["## You want a badge", "## You run a node"][..]),
        "{headings:?}"
    );
    for needed in [
        "/status.svg?organization=",
        "few minutes",
        "`./peers.toml`",
        "`./state/`",
        "--peers /dev/null",
        "docs/DESIGN.md",
    ] {
        assert!(readme.contains(needed), "the README says {needed}");
    }
    // Nothing outside the checkout: no parent folder, no design section numbers, and not
    // this machine's own paths (the checkout's, the temporary folder's).
    let temp = std::env::temp_dir();
    let temp = temp.to_string_lossy();
    for banned in [
        "../",
        "design.md section",
        env!("CARGO_MANIFEST_DIR"),
        temp.trim_end_matches('/'),
    ] {
        assert!(!readme.contains(banned), "the README names {banned}");
    }
    let lower = readme.to_lowercase();
    assert!(
        !lower.contains("issue ") && !lower.contains("issues/"),
        "no issue numbers"
    );
    // Every relative link resolves inside the checkout.
    for target in readme
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
    {
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(target);
        assert!(path.exists(), "README links {target}, which a clone lacks");
    }
    // The set-up block, as written.
    let setup = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("a sh block");
    let commands: Vec<&str> = setup
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .collect();
    assert_eq!(commands, ["cargo run --release -- demo", "cargo test"]);
    // `demo` is the binary's, and starting alone as the README says is accepted.
    let demo = Command::new(NODE_BIN)
        .args(["demo", "--help"])
        .output()
        .expect("run the binary");
    assert!(demo.status.success(), "{demo:?}");
}

/// Starting alone as the README says: `--peers /dev/null` is an empty peers file.
#[tokio::test]
async fn a_node_started_alone_as_the_readme_says_has_no_peers() {
    let dir = TempDir::new("alone");
    let mut command = Command::new(NODE_BIN);
    command
        .args(["--peers", "/dev/null", "--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(dir.path())
        .env_remove("RUST_LOG");
    let mut node = ChildGuard::spawn(&mut command);
    let line = node
        .wait_for_stderr(Duration::from_secs(15), "the peers file line", |l| {
            l.contains("peers file read")
        })
        .await;
    assert!(line.contains("peers_file=/dev/null peers=0"), "{line}");
    node.wait_for_stderr(Duration::from_secs(15), "the node to start", |l| {
        l.contains("node started")
    })
    .await;
}
