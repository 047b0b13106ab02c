//! The systemd unit as systemd runs it: a real `systemd-run` of the node under every
//! `[Service]` setting of `packaging/dockerhub-build-status.service`, binding port 80 for
//! HTTP and port 53 for DNS as a pool node does, holding `CAP_NET_BIND_SERVICE` and no other
//! capability, and ending with exit code 0 on `systemctl stop`. `tests/packaging.rs` checks
//! the unit offline (`systemd-analyze verify` and `security`).
//!
//! It needs systemd as PID 1 and root; elsewhere (containers, CI machines whose PID 1 is
//! something else) it is ignored with that reason, under CI too.

use crate::common;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::harness;
use common::process::NODE_BIN;

/// A loopback address of its own, so that ports 53 and 80 are free whatever else the machine
/// runs on 127.0.0.1 (systemd-resolved's 127.0.0.53, a web server).
const IP: &str = "127.83.0.1";

/// Why this machine cannot run the test, if it cannot.
fn unavailable() -> Option<String> {
    if !Path::new("/run/systemd/system").is_dir() {
        return Some(
            "PID 1 is not systemd (no /run/systemd/system): systemd-run cannot start a unit here"
                .into(),
        );
    }
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root: systemd-run cannot start a system unit".into());
    }
    None
}

/// The `[Service]` settings of the unit, in order.
fn service_settings() -> Vec<(String, String)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/dockerhub-build-status.service");
    let text = std::fs::read_to_string(&path).expect("read the unit");
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[Service]" && !line.is_empty() && !line.starts_with('#') {
            let (key, value) = line.split_once('=').expect("Key=value");
            settings.push((key.to_owned(), value.to_owned()));
        }
    }
    settings
}

fn systemctl(args: &[&str]) -> std::process::Output {
    Command::new("systemctl")
        .args(args)
        .output()
        .expect("run systemctl")
}

/// The unit and its files, stopped and removed however the test ends.
struct TransientUnit {
    name: String,
    binary_dir: PathBuf,
}

impl Drop for TransientUnit {
    fn drop(&mut self) {
        let unit = format!("{}.service", self.name);
        let _ = systemctl(&["stop", &unit]);
        let _ = systemctl(&["reset-failed", &unit]);
        let _ = std::fs::remove_dir_all(&self.binary_dir);
        // DynamicUser keeps its state under /var/lib/private.
        let _ = std::fs::remove_dir_all(Path::new("/var/lib/private").join(&self.name));
        let _ = std::fs::remove_file(Path::new("/var/lib").join(&self.name));
    }
}

fn the_unit_binds_ports_53_and_80_with_one_capability() {
    let name = format!("dbs-unit-test-{}", std::process::id());
    let unit = format!("{name}.service");
    // The binary where the sandbox can run it: not under /home (ProtectHome) nor /tmp
    // (PrivateTmp), where cargo's target folder may be.
    let guard = TransientUnit {
        name: name.clone(),
        binary_dir: PathBuf::from(format!("/run/{name}")),
    };
    std::fs::create_dir_all(&guard.binary_dir).expect("create the binary's folder");
    let binary = guard.binary_dir.join("dockerhub-build-status");
    std::fs::copy(NODE_BIN, &binary).expect("copy the binary");
    let mut command = Command::new("systemd-run");
    command.arg(format!("--unit={unit}")).arg("--quiet");
    for (key, value) in service_settings() {
        let value = match key.as_str() {
            // The command line is the test's; the operator's settings file is not read.
            "ExecStart" | "EnvironmentFile" => continue,
            // A state folder of its own, beside any real node's.
            "StateDirectory" => name.clone(),
            // Specifiers (%S) are a unit file's; a transient unit gets the path itself.
            "Environment" if value.starts_with("DBS_STATE_DIR=") => {
                format!("DBS_STATE_DIR=/var/lib/{name}")
            }
            "Environment" if value.starts_with("DBS_PEERS=") => "DBS_PEERS=/dev/null".into(),
            _ => value,
        };
        command.arg("-p").arg(format!("{key}={value}"));
    }
    command.arg(&binary).args([
        &format!("--listen={IP}:80"),
        &format!("--public-url=http://{IP}"),
        "--allow-private-peers",
        "--dns-zone=pool.localhost",
        &format!("--pool-address={IP}"),
        "--pool-port=80",
        &format!("--dns-listen={IP}:53"),
    ]);
    let journal = || {
        Command::new("journalctl")
            .args(["--no-pager", "-o", "cat", "-u", &unit])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let started = command.output().expect("run systemd-run");
    assert!(
        started.status.success(),
        "systemd-run: {}
the journal:
{}",
        String::from_utf8_lossy(&started.stderr),
        journal()
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let http: SocketAddr = format!("{IP}:80").parse().expect("address");
    let dns: SocketAddr = format!("{IP}:53").parse().expect("address");
    let health = loop {
        if let Some(answer) = get_health(http) {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "no /health on port 80 within 30 s; the journal:\n{}",
            journal()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(health.contains("\"key\""), "{health}");
    TcpStream::connect_timeout(&dns, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("DNS over TCP on port 53: {e}; the journal:\n{}", journal()));

    // CAP_NET_BIND_SERVICE (bit 10) and nothing else, in the host's user namespace.
    let pid =
        String::from_utf8_lossy(&systemctl(&["show", "-p", "MainPID", "--value", &unit]).stdout)
            .trim()
            .to_owned();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(field("CapEff:"), "0000000000000400", "{status}");
    assert_ne!(
        field("Uid:").split_whitespace().next(),
        Some("0"),
        "{status}"
    );

    let stopping = Instant::now();
    let stopped = systemctl(&["stop", &unit]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "stopped within TimeoutStopSec"
    );
    let show = |property: &str| {
        String::from_utf8_lossy(&systemctl(&["show", "-p", property, "--value", &unit]).stdout)
            .trim()
            .to_owned()
    };
    assert_eq!(show("ExecMainStatus"), "0", "the journal:\n{}", journal());
    assert_eq!(show("Result"), "success", "the journal:\n{}", journal());
    drop(guard);
}

/// `GET /health` over a plain TCP connection, its body if it answered 200.
fn get_health(addr: SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: {IP}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.starts_with("HTTP/1.1 200").then(|| {
        answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    })
}

/// This module's tests, for the harness in `main.rs`.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    vec![harness::needs_machine(
        "the_unit_binds_ports_53_and_80_with_one_capability",
        &["systemd-run", "systemctl"],
        unavailable,
        the_unit_binds_ports_53_and_80_with_one_capability,
    )]
}
