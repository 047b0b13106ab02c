//! Helpers for tests that drive real processes (the node binary, Prometheus): a child that
//! is killed when the test ends however it ends, its output collected line by line, and
//! temporary folders that clean up after themselves.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The node binary cargo built for these tests.
pub const NODE_BIN: &str = env!("CARGO_BIN_EXE_dockerhub-build-status");

/// A folder under the system's temp dir, removed on drop (also when a test panics).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        // Tests in one binary run in parallel and binaries may run side by side: the pid and a
        // counter keep the names apart without a random source.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "dbs-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the folder and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).expect("write a temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The flags every test node needs so it touches nothing outside its temp dir: its own
/// state folder and an empty peers file (the federation reads both).
pub fn isolated_node(dir: &TempDir) -> Command {
    let peers = dir.write("peers.toml", "");
    let mut command = Command::new(NODE_BIN);
    command
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--peers")
        .arg(peers);
    // The developer's own settings must not leak into what a test observes.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("DBS_") || name == "RUST_LOG" || name == "NO_COLOR" {
            command.env_remove(name);
        }
    }
    command
}

/// A running child process, killed and reaped on drop, so a failing test never leaves a
/// server behind. Its stdout and stderr are collected line by line as they arrive.
#[derive(Debug)]
pub struct ChildGuard {
    child: std::process::Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

fn collect_lines(
    stream: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        // Lines are read as bytes so a stray non-UTF-8 byte shows up instead of ending the
        // reader.
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line)
                        .trim_end_matches(['\n', '\r'])
                        .to_owned();
                    into.lock().unwrap_or_else(|p| p.into_inner()).push(text);
                }
            }
        }
    })
}

impl ChildGuard {
    /// Starts `command` with stdin closed and stdout and stderr captured.
    pub fn spawn(command: &mut Command) -> ChildGuard {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect_lines(
                child.stdout.take().expect("piped stdout"),
                Arc::clone(&stdout),
            ),
            collect_lines(
                child.stderr.take().expect("piped stderr"),
                Arc::clone(&stderr),
            ),
        ];
        ChildGuard {
            child,
            stdout,
            stderr,
            readers,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stderr lines read so far (all of them once [`ChildGuard::wait_exit`] returned).
    pub fn stderr(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The stdout lines read so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1): no unsafe code, no extra crate.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Whether the process has ended (without waiting).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("poll the child");
            if self.status.is_some() {
                // The pipes close with the process: read them to the end so every line is in.
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
            }
        }
        self.status
    }

    /// Waits for the process to end, for at most `deadline`; panics with its stderr if it
    /// is still running then.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "process still running after {deadline:?}; stderr:\n{}",
                self.stderr().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a stderr line satisfies `check` and returns it; fails early if the
    /// process ends first.
    pub async fn wait_for_stderr(
        &mut self,
        deadline: Duration,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.stderr().into_iter().find(|l| check(l)) {
                return line;
            }
            if let Some(status) = self.try_exit() {
                panic!(
                    "process ended ({status}) before {what}; stderr:\n{}",
                    self.stderr().join("\n")
                );
            }
            assert!(
                start.elapsed() < deadline,
                "timed out after {deadline:?} waiting for {what}; stderr:\n{}",
                self.stderr().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port that was free a moment ago, for programs that cannot be told to pick
/// their own and report it (Prometheus). Another process could take it in between; the
/// caller's deadline and the program's log then say so.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A port free for TCP on every one of the loopback addresses `127.0.0.<host>` (and for
/// UDP too with `udp`): nodes on distinct loopback addresses share one port, as pool nodes
/// share port 80 of their addresses.
pub fn common_free_port(hosts: &[u8], udp: bool) -> u16 {
    let ip = |last: u8| std::net::Ipv4Addr::new(127, 0, 0, last);
    for _ in 0..100 {
        let Ok(first) = std::net::TcpListener::bind((ip(hosts[0]), 0)) else {
            continue;
        };
        let Ok(port) = first.local_addr().map(|a| a.port()) else {
            continue;
        };
        let free = hosts.iter().all(|h| {
            (*h == hosts[0] || std::net::TcpListener::bind((ip(*h), port)).is_ok())
                && (!udp || std::net::UdpSocket::bind((ip(*h), port)).is_ok())
        });
        if free {
            return port;
        }
    }
    panic!("no port free on all of {hosts:?}");
}

/// One node process of a test network: its own folder and a fixed loopback port, so it can
/// be killed and restarted with the same key and state, at the same URL.
#[derive(Debug)]
pub struct NodeProcess {
    pub port: u16,
    pub dir: TempDir,
    peers: String,
    hub: String,
    allow_private: bool,
    gossip: Duration,
    probe: Duration,
    /// The URL other nodes reach it at, when not its own address (behind a proxy).
    public_url: Option<String>,
    pub child: Option<ChildGuard>,
}

impl NodeProcess {
    /// Starts a node with `peers` as its peers.toml, asking the hub at `hub`, gossiping and
    /// probing at the given intervals.
    pub fn new(
        label: &str,
        peers: &str,
        hub: &str,
        allow_private: bool,
        gossip: Duration,
        probe: Duration,
    ) -> NodeProcess {
        let mut node = NodeProcess {
            port: free_port(),
            dir: TempDir::new(label),
            peers: peers.to_owned(),
            hub: hub.to_owned(),
            allow_private,
            gossip,
            probe,
            public_url: None,
            child: None,
        };
        node.start();
        node
    }

    /// Like [`NodeProcess::new`], listening on `port` but announcing `public_url` (a proxy
    /// in front of it), with private peers allowed.
    pub fn behind(
        label: &str,
        port: u16,
        public_url: &str,
        peers: &str,
        hub: &str,
        gossip: Duration,
        probe: Duration,
    ) -> NodeProcess {
        let mut node = NodeProcess {
            port,
            dir: TempDir::new(label),
            peers: peers.to_owned(),
            hub: hub.to_owned(),
            allow_private: true,
            gossip,
            probe,
            public_url: Some(public_url.to_owned()),
            child: None,
        };
        node.start();
        node
    }

    /// The URL it announces (its own address unless it is behind a proxy).
    pub fn url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| self.direct_url())
    }

    /// Its own address, bypassing any proxy.
    pub fn direct_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process with the node's folder and port.
    pub fn start(&mut self) {
        let peers = self.dir.write("peers.toml", &self.peers);
        let mut command = Command::new(NODE_BIN);
        command
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--public-url")
            .arg(self.url())
            .arg("--peers")
            .arg(peers)
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .arg("--hub-url")
            .arg(&self.hub)
            .arg("--gossip-interval")
            .arg(format!("{}ms", self.gossip.as_millis()))
            .arg("--probe-interval")
            .arg(format!("{}ms", self.probe.as_millis()))
            .env("RUST_LOG", "warn");
        if self.allow_private {
            command.arg("--allow-private-peers");
        }
        self.child = Some(ChildGuard::spawn(&mut command));
    }

    /// Replaces the `peers.toml` the node gets at its next [`NodeProcess::start`].
    pub fn set_peers(&mut self, peers: &str) {
        peers.clone_into(&mut self.peers);
    }

    /// SIGKILL through ChildGuard's drop: a crash, no signed leave.
    pub fn kill(&mut self) {
        self.child = None;
    }
}
