//! The node as operators run it: the real binary in a child process. Bad flags stop it with
//! one line and exit code 2; a taken port is one line too; `--log-format json` is one JSON
//! object per line, with a line per request under `--access-log all` and, by default, for
//! errors and slow answers only; the Docker Hub token never reaches a log; and SIGTERM drains
//! a request in flight, refuses new connections and exits 0.

use crate::common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{ChildGuard, NODE_BIN, TempDir, isolated_node};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo, Fault};
use dockerhub_build_status::http::server::DRAIN_TIMEOUT;
use serde_json::Value;

/// Long enough for a debug build to start on a busy 2-core machine; a hang fails well within
/// a minute.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// The address a started node reports in its "node started" line, in either log format.
fn listen_address(line: &str) -> Option<SocketAddr> {
    if let Ok(json) = serde_json::from_str::<Value>(line) {
        return json["listen"].as_str()?.parse().ok();
    }
    // Colour codes are tested for on their own; here they must not hide the address.
    let mut plain = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
        .split_whitespace()
        .find_map(|word| word.strip_prefix("listen="))?
        .trim_matches('"')
        .parse()
        .ok()
}

/// Starts the node binary with `args` and waits for it to listen; returns it and its URL.
/// The node picks its own port (`127.0.0.1:0`) and says which in its log, so two tests can
/// never race for one.
async fn start(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> (ChildGuard, String) {
    let mut command = isolated_node(dir);
    command.args(["--listen", "127.0.0.1:0"]).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = ChildGuard::spawn(&mut command);
    let line = child
        .wait_for_stderr(START_DEADLINE, "the node to listen", |l| {
            l.contains("node started") && listen_address(l).is_some()
        })
        .await;
    let addr = listen_address(&line).expect("checked above");
    (child, format!("http://{addr}"))
}

/// Runs the binary with `args` (and `env`) until it exits on its own.
async fn run_to_exit(
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, ChildGuard) {
    let dir = TempDir::new("flags");
    let mut command = isolated_node(&dir);
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = ChildGuard::spawn(&mut command);
    let status = child.wait_exit(START_DEADLINE).await;
    (status, child)
}

/// Command-line arguments and environment variables of one run.
type Args<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);

async fn hub_with_app() -> FakeHub {
    let hub = FakeHub::start().await.expect("start the fake hub");
    hub.set_repo("acme/app", FakeRepo::with_builds(&[("latest", 10)]));
    hub
}

#[tokio::test]
async fn bad_flags_stop_the_node_with_one_line_and_exit_code_2() {
    // (arguments, environment), and the words the one line must contain
    let cases: &[(Args, &[&str])] = &[
        ((&["--listen", "nope"], &[]), &["--listen", "nope"]),
        ((&["--cache-ttl", "soon"], &[]), &["--cache-ttl", "soon"]),
        ((&["--hub-url", "ftp://x"], &[]), &["--hub-url", "ftp"]),
        ((&["--hub-token", "x"], &[]), &["--hub-username"]),
        ((&["--log-format", "xml"], &[]), &["--log-format", "xml"]),
        ((&["--cache-ttl", "0s"], &[]), &["--cache-ttl"]),
        ((&["--no-such-flag"], &[]), &["--no-such-flag"]),
        (
            (&["--hub-source-address", "nope"], &[]),
            &["--hub-source-address", "nope"],
        ),
        // An address this host does not have (TEST-NET-1) is found at start, not at the
        // first hub request.
        (
            (&["--hub-source-address", "192.0.2.1"], &[]),
            &[
                "--hub-source-address",
                "192.0.2.1",
                "not an address of this host",
            ],
        ),
        ((&["--fill", "maybe"], &[]), &["--fill", "maybe"]),
        // A public URL the network would refuse is a bad flag, not a failed start (exit 1).
        (
            (&["--public-url", "https://example.org/?x=1"], &[]),
            &["--public-url", "must not contain a query"],
        ),
        (
            (&["--public-url", "example.org"], &[]),
            &["--public-url", "has no scheme: write `https://example.org`"],
        ),
        (
            (&[], &[("DBS_PUBLIC_URL", "https://example.org/#top")]),
            &["--public-url", "must not contain a fragment"],
        ),
        // The environment is read like the flags, and as strictly.
        (
            (&[], &[("DBS_CACHE_TTL", "soon")]),
            &["--cache-ttl", "soon"],
        ),
        (
            (&[], &[("DBS_HUB_SOURCE_ADDRESS", "192.0.2.1")]),
            &["--hub-source-address", "192.0.2.1"],
        ),
    ];
    for ((args, env), words) in cases {
        let (status, child) = run_to_exit(args, env).await;
        let stderr = child.stderr();
        let shown = format!("{args:?} {env:?}: exit {status}, stderr {stderr:#?}");
        assert_eq!(status.code(), Some(2), "{shown}");
        assert_eq!(stderr.len(), 1, "exactly one line: {shown}");
        assert!(!stderr[0].contains("panicked"), "{shown}");
        for word in *words {
            assert!(stderr[0].contains(word), "line names {word}: {shown}");
        }
        assert!(child.stdout().is_empty(), "nothing on stdout: {shown}");
    }
}

/// A number flag out of range, negative ones included, says what a valid value is.
#[tokio::test]
async fn a_bad_count_says_what_is_valid() {
    for (flag, value, range) in [
        ("--max-connections", "-1", "from 1 to 1000000"),
        ("--max-connections", "0", "from 1 to 1000000"),
        ("--hub-concurrency", "-8", "from 1 to 1000"),
        ("--cache-capacity", "lots", "from 1 to 100000000"),
    ] {
        let (status, child) = run_to_exit(&[flag, value], &[]).await;
        let stderr = child.stderr();
        let shown = format!("{flag} {value}: exit {status}, stderr {stderr:#?}");
        assert_eq!(status.code(), Some(2), "{shown}");
        assert_eq!(stderr.len(), 1, "{shown}");
        assert!(stderr[0].contains(flag), "{shown}");
        assert!(stderr[0].contains(range), "{shown}");
    }
}

/// Each start-up failure is one line that names its cause once: the error's own message
/// already holds its cause, and printing the chain as well said it two or three times.
#[tokio::test]
async fn a_start_up_error_names_its_cause_once() {
    let dir = TempDir::new("causes");
    let peers = |name: &str, text: &str| dir.write(name, text).display().to_string();
    let empty = peers("empty.toml", "");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = taken
        .local_addr()
        .expect("local address")
        .port()
        .to_string();
    // (arguments after the state dir, the cause that must be said exactly once)
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--peers".into(), "/nonexistent.toml".into()],
            "file not found",
        ),
        (
            vec![
                "--peers".into(),
                peers("broken.toml", "[[peer]\nurl = \"x\"\n"),
            ],
            "unclosed array table",
        ),
        (
            vec![
                "--peers".into(),
                peers("url.toml", "[[peer]]\nurl = \"ftp://x\"\n"),
            ],
            "scheme `ftp` is not allowed",
        ),
        (
            vec![
                "--peers".into(),
                peers("table.toml", "[peer]\nurl = \"https://a.example\"\n"),
            ],
            "line 1: `[peer]` is one table; write `[[peer]]`",
        ),
        (
            vec![
                "--peers".into(),
                peers("scheme.toml", "[[peer]]\nurl = \"a.example\"\n"),
            ],
            "line 2: url: `a.example` has no scheme",
        ),
        (
            vec![
                "--peers".into(),
                peers(
                    "key.toml",
                    "[[peer]]\nurl = \"https://a.example\"\nkey = \"nope\"\n",
                ),
            ],
            "not standard base64",
        ),
        (
            vec![
                "--peers".into(),
                peers(
                    "weight.toml",
                    "[[peer]]\nurl = \"https://a.example\"\nweight = -3\n",
                ),
            ],
            "weight: -3 is not",
        ),
        (
            vec![
                "--peers".into(),
                empty.clone(),
                "--state-dir".into(),
                "/proc/nope".into(),
            ],
            "No such file or directory",
        ),
        (
            vec!["demo".into(), "--port".into(), port.clone()],
            "Address already in use",
        ),
    ];
    for (args, cause) in &cases {
        for format in ["text", "json"] {
            let mut command = Command::new(NODE_BIN);
            command.args(["--log-format", format]);
            if args[0] != "demo" {
                command.args(["--listen", "127.0.0.1:0"]);
                if !args.contains(&"--state-dir".to_owned()) {
                    command.arg("--state-dir").arg(dir.path().join("state"));
                }
            }
            command.args(args).env_remove("RUST_LOG");
            let mut child = ChildGuard::spawn(&mut command);
            let status = child.wait_exit(START_DEADLINE).await;
            let stderr = child.stderr();
            let shown = format!("{args:?} ({format}): exit {status}, stderr {stderr:#?}");
            assert!(!status.success(), "{shown}");
            let said: Vec<&String> = stderr.iter().filter(|l| l.contains(cause)).collect();
            assert_eq!(said.len(), 1, "one line names the cause: {shown}");
            assert_eq!(said[0].matches(cause).count(), 1, "said once: {shown}");
        }
    }
    drop(taken);
}

/// Start-up names the peers file and its peer count, the state directory and the hub; a hub
/// or a peer that cannot be reached is a WARN naming it and the reason, once a minute per
/// cause however often it fails meanwhile (it used to be silent, even at debug for gossip).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_start_up_are_logged() {
    let dir = TempDir::new("silence");
    let dead_hub = format!("http://127.0.0.1:{}", common::process::free_port());
    let dead_peer = format!("http://127.0.0.1:{}", common::process::free_port());
    let mut command = isolated_node(&dir);
    let peers = dir.write("peers.toml", &format!("[[peer]]\nurl = \"{dead_peer}\"\n"));
    command
        .args(["--listen", "127.0.0.1:0", "--allow-private-peers"])
        .args(["--gossip-interval", "100ms", "--hub-url", &dead_hub]);
    let mut node = ChildGuard::spawn(&mut command);
    let started = node
        .wait_for_stderr(START_DEADLINE, "the node to listen", |l| {
            l.contains("node started") && listen_address(l).is_some()
        })
        .await;
    let url = format!(
        "http://{}",
        listen_address(&started).expect("checked above")
    );
    let state_dir = dir.path().join("state").display().to_string();
    assert!(
        started.contains(&format!("state_dir={state_dir}")),
        "{started}"
    );
    assert!(started.contains(&format!("hub={dead_hub}")), "{started}");
    let lines = node.stderr();
    let peers_line = lines
        .iter()
        .find(|l| l.contains("INFO") && l.contains(&peers.display().to_string()))
        .unwrap_or_else(|| panic!("no line names the peers file: {lines:#?}"));
    assert!(peers_line.contains("peers=1"), "{peers_line}");

    for repository in ["app", "other", "third"] {
        let (code, _, body) = common::get(&format!("{url}/build/acme/{repository}")).await;
        assert_eq!(code, 502, "{body}");
    }
    let gossip_failures = || async {
        let (_, _, metrics) = common::get(&format!("{url}/metrics")).await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("dbs_gossip_exchanges_total{outcome=\"failed\"} "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    common::wait_until(
        Duration::from_secs(15),
        "three failed gossip exchanges",
        || async { gossip_failures().await >= 3.0 },
    )
    .await;

    let lines = node.stderr();
    let warnings = |about: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains("WARN") && l.contains(about))
            .cloned()
            .collect()
    };
    let hub = warnings("Docker Hub request failed");
    assert_eq!(
        hub.len(),
        1,
        "one hub warning for three failures: {lines:#?}"
    );
    assert!(hub[0].contains(&dead_hub), "names the upstream: {}", hub[0]);
    assert!(hub[0].contains("refused"), "says why: {}", hub[0]);
    // The peer is a seed (from peers.toml): warned about once per cause.
    let gossip = warnings("unreachable");
    assert_eq!(
        gossip.len(),
        1,
        "one gossip warning for three failures: {lines:#?}"
    );
    assert!(
        gossip[0].contains(&dead_peer),
        "names the peer: {}",
        gossip[0]
    );
    assert!(gossip[0].contains("refused"), "says why: {}", gossip[0]);
}

#[tokio::test]
async fn help_and_version_go_to_stdout_with_exit_code_0() {
    for flag in ["--help", "--version"] {
        let (status, child) = run_to_exit(&[flag], &[]).await;
        assert!(status.success(), "{flag}: {status}");
        assert!(child.stderr().is_empty(), "{flag}: {:?}", child.stderr());
        assert!(
            child.stdout().join("\n").contains("dockerhub-build-status"),
            "{flag}: {:?}",
            child.stdout()
        );
    }
}

#[tokio::test]
async fn a_taken_port_stops_the_node_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = taken.local_addr().expect("local address").to_string();
    for format in ["text", "json"] {
        let (status, child) = run_to_exit(&["--listen", &addr, "--log-format", format], &[]).await;
        let stderr = child.stderr();
        let shown = format!("{format}: exit {status}, stderr {stderr:#?}");
        assert!(!status.success(), "{shown}");
        assert!(status.code().is_some(), "an exit, not a signal: {shown}");
        assert!(!stderr.iter().any(|l| l.contains("panicked")), "{shown}");
        // Start-up may log what it did before binding; the failure itself is one line.
        let problems: Vec<&String> = stderr
            .iter()
            .filter(|l| l.contains(addr.as_str()) || l.contains("ERROR"))
            .collect();
        assert_eq!(problems.len(), 1, "one line names the problem: {shown}");
        assert!(problems[0].contains(addr.as_str()), "{shown}");
        assert!(problems[0].contains("cannot listen"), "{shown}");
        if format == "json" {
            for line in &stderr {
                let json: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n{shown}"));
                assert!(json.is_object(), "{shown}");
            }
        }
    }
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_with_a_line_per_request() {
    let hub = hub_with_app().await;
    let dir = TempDir::new("json-logs");
    let (mut node, url) = start(
        &dir,
        &["--log-format", "json", "--hub-url", &hub.url()],
        &[("DBS_ACCESS_LOG", "all")],
    )
    .await;
    let expected = [
        ("/health", "health", 200),
        ("/build/acme/app", "build", 200),
        ("/build/acme/app?tag=nope", "build", 404),
        (
            "/status.svg?organization=acme&repository=app",
            "status_svg",
            200,
        ),
        ("/no/such/route", "not_found", 404),
    ];
    for (path, _, status) in expected {
        let (code, _, _) = common::get(&format!("{url}{path}")).await;
        assert_eq!(code, status, "{path}");
    }
    node.signal("TERM");
    let status = node.wait_exit(DRAIN_TIMEOUT + Duration::from_secs(5)).await;
    assert!(status.success(), "exit {status}");

    let lines = node.stderr();
    let mut requests = Vec::new();
    for line in &lines {
        let json: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(json.is_object(), "{line}");
        for field in ["timestamp", "level", "message"] {
            assert!(json.get(field).is_some(), "no {field}: {line}");
        }
        if json["message"] == "request" {
            let latency = json
                .as_object()
                .into_iter()
                .flatten()
                .find(|(key, _)| key.starts_with("latency"))
                .map(|(_, value)| value.clone());
            assert!(
                latency.as_ref().is_some_and(Value::is_number),
                "a numeric latency: {line}"
            );
            requests.push((
                json["route"].as_str().unwrap_or_default().to_owned(),
                json["status"].as_u64().unwrap_or_default(),
            ));
        }
    }
    let mut want: Vec<(String, u64)> = expected
        .iter()
        .map(|(_, route, status)| ((*route).to_owned(), u64::from(*status)))
        .collect();
    want.sort();
    requests.sort();
    assert_eq!(
        requests, want,
        "one line per request; all lines:\n{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("node stopped")),
        "the node says it stopped: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_only_errors_and_slow_answers_get_a_request_line() {
    const HUB_DELAY: Duration = Duration::from_millis(600);
    let hub = hub_with_app().await;
    hub.set_repo("acme/slow", FakeRepo::with_builds(&[("latest", 10)]));
    let dir = TempDir::new("access-log");
    let (mut node, url) = start(&dir, &["--hub-url", &hub.url()], &[]).await;
    for path in [
        "/build/acme/app",
        "/build/acme/app",
        "/status.svg?organization=acme&repository=app",
        "/health",
        "/servers",
    ] {
        let (code, _, _) = common::get(&format!("{url}{path}")).await;
        assert_eq!(code, 200, "{path}");
    }
    let (code, _, _) = common::get(&format!("{url}/no/such/route")).await;
    assert_eq!(code, 404);
    // A cold key while Docker Hub is slow: a 200, but past the slow mark.
    hub.set_fault(Some(Fault::Slow(HUB_DELAY)));
    let (code, _, _) = common::get(&format!("{url}/build/acme/slow")).await;
    assert_eq!(code, 200);
    node.signal("TERM");
    let status = node.wait_exit(DRAIN_TIMEOUT + Duration::from_secs(5)).await;
    assert!(status.success(), "exit {status}");

    let lines = node.stderr();
    let requests: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" request method="))
        .collect();
    let latency = |line: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("latency_us="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no latency in {line}"))
    };
    assert!(
        requests
            .iter()
            .any(|l| l.contains("route=\"not_found\" status=404")),
        "the 404 has a line: {lines:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("route=\"build\" status=200")
                && latency(l) >= HUB_DELAY.as_micros() as u64),
        "the slow answer has a line: {lines:#?}"
    );
    // Every other 200 was fast (a cold fetch from a loopback hub can only be slow on a
    // machine far busier than a test should run on, and then it is rightly logged).
    for line in &requests {
        if line.contains("status=200") {
            assert!(latency(line) >= 400_000, "a fast 200 has a line: {line}");
        }
    }
    assert_eq!(requests.len(), 2, "{lines:#?}");
    // What was logged last before the exit reached stderr: the writer is flushed at the end.
    assert!(
        lines.last().is_some_and(|l| l.contains("node stopped")),
        "the last line says the node stopped: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_token_never_reaches_a_log_line() {
    const USER: &str = "ops-user";
    const SECRET: &str = "dckr_pat_never-log-me-7f3a9c1e";
    let hub = hub_with_app().await;
    hub.require_credentials(USER, SECRET);
    // Flag or environment, every log format, and the chattiest levels, where dependencies
    // (hyper, reqwest, rustls) log too.
    let runs: &[Args] = &[
        (&["--hub-token", SECRET], &[]),
        (
            &["--hub-token", SECRET, "--log-format", "json"],
            &[("RUST_LOG", "debug")],
        ),
        (&[], &[("DBS_HUB_TOKEN", SECRET), ("RUST_LOG", "trace")]),
    ];
    for (args, env) in runs {
        let dir = TempDir::new("secret");
        let hub_url = hub.url();
        let mut all_args = vec![
            "--hub-url",
            &hub_url,
            "--hub-username",
            USER,
            "--access-log",
            "all",
        ];
        all_args.extend_from_slice(args);
        let (mut node, url) = start(&dir, &all_args, env).await;
        // The token is really used: the fake hub answers only with a valid one.
        let (code, body) = common::get_json(&format!("{url}/build/acme/app")).await;
        assert_eq!(code, 200, "{args:?} {env:?}: {body}");
        let (code, _) = common::get_json(&format!("{url}/build/acme/app?tag=nope")).await;
        assert_eq!(code, 404);
        node.signal("TERM");
        let status = node.wait_exit(DRAIN_TIMEOUT + Duration::from_secs(5)).await;
        assert!(status.success(), "exit {status}");
        let lines: Vec<String> = node.stderr().into_iter().chain(node.stdout()).collect();
        assert!(
            lines.iter().any(|l| l.contains("request")),
            "the run logged requests: {lines:#?}"
        );
        for line in &lines {
            assert!(
                !line.contains(SECRET),
                "{args:?} {env:?}: the token is in a log line: {line}"
            );
        }
        if !args.contains(&"json") {
            // Text lines carry route, status and latency too, without colour codes that
            // would litter journald and `docker logs`.
            assert!(
                lines.iter().any(|l| l.contains("request")
                    && l.contains("route=\"build\"")
                    && l.contains("status=200")
                    && l.contains("latency")),
                "a text request line: {lines:#?}"
            );
            assert!(
                !lines.iter().any(|l| l.contains('\u{1b}')),
                "no ANSI escapes when stderr is not a terminal: {lines:#?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_request_in_flight_refuses_new_ones_and_exits_0() {
    const HUB_DELAY: Duration = Duration::from_secs(2);
    let hub = hub_with_app().await;
    let dir = TempDir::new("drain");
    let (mut node, url) = start(&dir, &["--hub-url", &hub.url()], &[]).await;
    let addr: SocketAddr = url.trim_start_matches("http://").parse().expect("address");
    hub.set_fault(Some(Fault::Slow(HUB_DELAY)));

    let in_flight = tokio::spawn({
        let url = format!("{url}/build/acme/app");
        async move {
            let response = common::client().get(&url).send().await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, body, Instant::now()))
        }
    });
    // In flight for sure: the node has asked the hub, which holds its answer back.
    common::wait_until(START_DEADLINE, "the request to reach the hub", || async {
        hub.request_count() > 0
    })
    .await;
    let signalled = Instant::now();
    node.signal("TERM");

    // The listener closes at once; the slow request is still running.
    common::wait_until(HUB_DELAY / 2, "new connections to be refused", || async {
        matches!(
            tokio::net::TcpStream::connect(addr).await,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
    })
    .await;
    assert!(
        !in_flight.is_finished(),
        "refused while the request is in flight"
    );
    assert!(
        node.try_exit().is_none(),
        "the process waits for the request in flight"
    );

    let (status, body, answered) = in_flight
        .await
        .expect("request task")
        .expect("the request in flight gets an answer");
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).expect("the whole JSON body");
    assert_eq!(json["request"], "ok");
    assert_eq!(json["status"], 10);

    let exit = node.wait_exit(DRAIN_TIMEOUT + Duration::from_secs(3)).await;
    assert!(exit.success(), "exit {exit}; stderr {:#?}", node.stderr());
    assert!(
        signalled.elapsed() < DRAIN_TIMEOUT,
        "stopped within the drain timeout, took {:?}",
        signalled.elapsed()
    );
    assert!(
        answered.duration_since(signalled) < DRAIN_TIMEOUT,
        "answered while draining"
    );
}

#[tokio::test]
async fn sigint_stops_the_node_like_sigterm() {
    let dir = TempDir::new("sigint");
    let (mut node, url) = start(&dir, &[], &[]).await;
    let (code, _) = common::get_json(&format!("{url}/health")).await;
    assert_eq!(code, 200);
    node.signal("INT");
    let exit = node.wait_exit(DRAIN_TIMEOUT).await;
    assert!(exit.success(), "exit {exit}; stderr {:#?}", node.stderr());
}
