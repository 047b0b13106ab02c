//! The container image, built from the Dockerfile and run with podman: the node runs as a
//! non-root user with no capabilities on a read-only root file system, answers `/health`
//! and a badge (its Docker Hub the sample hub, on the host), keeps its key pair in the
//! volume across a new container, drains a request in flight on SIGTERM and exits 0 well
//! within the stop timeout; and the three nodes of docker-compose.yml find each other.
//!
//! Base images cannot be pulled where CI runs, so the image is built the way the Dockerfile
//! offers for that: `BINARY=prebuilt` with the binary cargo built for this test (stripped of
//! its debug information), on a Debian 12 runtime made here with `mmdebstrap` from
//! deb.debian.org (glibc, libgcc, netbase, tzdata: what distroless `cc` holds that the node
//! uses; kept as an image for the next run). The compiling stage, which needs the Rust
//! image, is not built here.
//!
//! docker-compose.yml is run as the podman commands it stands for, read from the file (every
//! key it uses is translated or the test fails): podman-compose 1.0.3, Debian 12's, stops
//! with a TypeError at `env_file`'s long form (`path:`, `required: false`), which the file
//! needs to keep `dbs.env` optional. Two things are the test's own: the host ports (free
//! ones, so that runs side by side do not collide) and `dbs.env`, which the file reads when
//! present and the test writes with one-second gossip and probe intervals (with the default
//! 30 s, a node learned by gossip is listed after seven minutes).
//!
//! Containers, volumes and networks are named after this process and removed at the end
//! however the test ends; the test's images too, but not the runtime base.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::compose;
use common::harness;
use common::process::{NODE_BIN, TempDir, free_port};
use common::{client, get, get_json, listed_servers, said, wait_until};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo, Fault};

/// What the runtime base holds, and the Debian release it comes from.
const BASE_SUITE: &str = "bookworm";
const BASE_PACKAGES: &str = "libc6,libgcc-s1,netbase,tzdata";
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// The image's state folder and port (the Dockerfile's).
const STATE_DIR: &str = "/var/lib/dockerhub-build-status";
const PORT: u16 = 8080;
/// The stop timeout the Dockerfile and docker-compose.yml ask for.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A name unique to this test process.
fn name(what: &str) -> String {
    format!("dbs-ctest-{}-{what}", std::process::id())
}

/// Runs podman with `args`; its stdout, trimmed, or a failure naming the command.
fn podman(args: &[&str]) -> String {
    let output = Command::new("podman")
        .args(args)
        .output()
        .expect("run podman");
    assert!(
        output.status.success(),
        "podman {}: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// What a container wrote, stdout and stderr (the node logs to stderr).
fn logs(container: &str) -> String {
    let output = Command::new("podman")
        .args(["logs", container])
        .output()
        .expect("run podman logs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs podman and ignores the outcome: for clean-up, where the thing may be gone already.
fn podman_quietly(args: &[&str]) {
    let _ = Command::new("podman").args(args).output();
}

/// What the test made, removed on drop: containers first, then what they used.
#[derive(Default)]
struct Made {
    containers: Vec<String>,
    volumes: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Made {
    fn drop(&mut self) {
        for container in &self.containers {
            podman_quietly(&["rm", "--force", "--time", "0", container]);
        }
        for volume in &self.volumes {
            podman_quietly(&["volume", "rm", "--force", volume]);
        }
        for network in &self.networks {
            podman_quietly(&["network", "rm", "--force", network]);
        }
    }
}

/// Images made by this process, removed after the last test.
static IMAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The `podman run` flags every container here needs. podman asks for resource limits
/// above the test's own hard limits (a million open files) unless told, and a process may
/// not raise its hard limits without CAP_SYS_RESOURCE: so the test's own, at most 65536.
fn run_flags() -> Vec<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = |row: &str, most: u64| -> u64 {
        limits
            .lines()
            .find(|l| l.starts_with(row))
            .and_then(|l| l[row.len()..].split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(most)
            .min(most)
    };
    let nofile = hard("Max open files", 65_536);
    let nproc = hard("Max processes", 4_096);
    vec![
        "--runtime".into(),
        "runc".into(),
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
    ]
}

/// The Debian 12 runtime base: built with mmdebstrap the first time, then reused. Its tag
/// names the recipe, so a changed recipe builds a new one.
fn runtime_base() -> String {
    let recipe = format!("{BASE_SUITE} {BASE_PACKAGES} {DEBIAN_MIRROR}");
    let hash = recipe.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let tag = format!("localhost/dockerhub-build-status-test-base:{BASE_SUITE}-{hash:016x}");
    let exists = Command::new("podman")
        .args(["image", "exists", &tag])
        .status()
        .is_ok_and(|s| s.success());
    if exists {
        return tag;
    }
    // `extract` unpacks the packages (with what they depend on) and runs no maintainer
    // script, so the root has no shell, as distroless has none.
    let dir = TempDir::new("base");
    let tarball = dir.path().join("base.tar");
    let started = Instant::now();
    let output = Command::new("mmdebstrap")
        .args([
            "--variant=extract",
            &format!("--include={BASE_PACKAGES}"),
            "--quiet",
            BASE_SUITE,
        ])
        .arg(&tarball)
        .arg(DEBIAN_MIRROR)
        .output()
        .expect("run mmdebstrap");
    assert!(
        output.status.success(),
        "mmdebstrap: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    podman(&["import", &tarball.display().to_string(), &tag]);
    eprintln!(
        "built the runtime base {tag} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tag
}

/// The node's image, built once for both tests: the Dockerfile with BINARY=prebuilt, the
/// binary cargo built for the tests, the runtime base above.
fn image() -> &'static str {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let built = IMAGE.get_or_init(|| {
        std::panic::catch_unwind(build_image).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        })
    });
    match built {
        Ok(tag) => tag,
        Err(why) => panic!("the image was not built: {why}"),
    }
}

fn build_image() -> String {
    let base = runtime_base();
    let started = Instant::now();
    let context = TempDir::new("context");
    let prebuilt = context.path().join("prebuilt");
    std::fs::create_dir_all(prebuilt.join("state")).expect("create prebuilt/state");
    set_mode(&prebuilt.join("state"), 0o700);
    let binary = prebuilt.join("dockerhub-build-status");
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&binary)
        .arg(NODE_BIN)
        .status()
        .expect("run strip");
    assert!(stripped.success(), "strip {NODE_BIN}");
    std::fs::copy(repo_path("peers.toml"), context.path().join("peers.toml")).expect("peers.toml");
    let tag = format!("localhost/{}:test", name("node"));
    IMAGES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(tag.clone());
    let said = podman(&[
        "build",
        "--pull=never",
        "--file",
        &repo_path("Dockerfile").display().to_string(),
        "--build-arg",
        "BINARY=prebuilt",
        "--build-arg",
        &format!("RUNTIME_IMAGE={base}"),
        "--tag",
        &tag,
        &context.path().display().to_string(),
    ]);
    // Each step's image (`--> 4beabcddf50`): removing the tagged one removes its own chain,
    // not the stage the binary came from.
    IMAGES.lock().unwrap_or_else(|p| p.into_inner()).extend(
        said.lines()
            .filter_map(|l| l.strip_prefix("--> "))
            .filter(|id| id.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_owned),
    );
    eprintln!("built {tag} in {:.1} s", started.elapsed().as_secs_f64());
    tag
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A field of a container's `podman inspect`, by Go template.
fn inspect(container: &str, template: &str) -> String {
    podman(&["inspect", "--format", template, container])
}

/// `Name:\tvalue` of `/proc/<pid>/status`.
fn proc_status(pid: &str, field: &str) -> String {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process's status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {field} in\n{status}"))
}

/// The options of the mount at `point` as the process `pid` sees its mounts.
fn mount_options(pid: &str, point: &str) -> Vec<String> {
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("its mountinfo");
    // The last mount at a point is the one in effect.
    mounts
        .lines()
        .rfind(|l| l.split_whitespace().nth(4) == Some(point))
        .and_then(|l| l.split_whitespace().nth(5))
        .map(|o| o.split(',').map(str::to_owned).collect())
        .unwrap_or_else(|| panic!("no mount at {point} in\n{mounts}"))
}

/// Waits for `/health` at `url` to answer 200; its JSON.
async fn wait_for_health(url: &str, container: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client()
            .get(format!("{url}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && response.status() == 200
            && let Ok(body) = response.json().await
        {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{container}: no /health within 30 s; its log:\n{}",
            logs(container)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn one_node_in_the_image() {
    let image = image();
    let mut made = Made::default();
    let network = name("net");
    podman(&["network", "create", &network]);
    made.networks.push(network.clone());
    let gateway: IpAddr = podman(&[
        "network",
        "inspect",
        "--format",
        "{{range .Subnets}}{{.Gateway}}{{end}}",
        &network,
    ])
    .parse()
    .expect("the network's gateway");
    let volume = name("state");
    made.volumes.push(volume.clone());
    let host_port = free_port();
    let url = format!("http://127.0.0.1:{host_port}");
    // The sample hub listens on the host's side of the container network, on a port picked
    // now: the bridge is there once a container has joined it.
    let hub_port = free_port();
    let run = |container: &str| {
        let mut args: Vec<String> = vec!["run".into(), "--detach".into()];
        args.extend(run_flags());
        for flag in [
            format!("--name={container}"),
            format!("--network={network}"),
            format!("--publish=127.0.0.1:{host_port}:{PORT}"),
            "--read-only".into(),
            "--cap-drop=ALL".into(),
            "--security-opt=no-new-privileges".into(),
            format!("--volume={volume}:{STATE_DIR}"),
            image.to_owned(),
            format!("--public-url={url}"),
            "--peers=/dev/null".into(),
            format!("--hub-url=http://host.containers.internal:{hub_port}"),
        ] {
            args.push(flag);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        podman(&args);
    };

    let first = name("node");
    made.containers.push(first.clone());
    run(&first);
    let hub = FakeHub::start_on(SocketAddr::new(gateway, hub_port))
        .await
        .expect("the sample hub on the container network's gateway");
    hub.set_repo("acme/app", FakeRepo::with_builds(&[("latest", 10)]));
    hub.set_repo("acme/slow", FakeRepo::with_builds(&[("latest", 10)]));
    let health = wait_for_health(&url, &first).await;
    let key = health["key"].as_str().expect("a key").to_owned();
    assert_eq!(health["status"], "ok", "{health}");

    // Non-root, no capabilities, a read-only root: as the kernel has the process, not as
    // the image says.
    let pid = inspect(&first, "{{.State.Pid}}");
    let uids = proc_status(&pid, "Uid");
    assert!(
        uids.split_whitespace().all(|uid| uid == "65532"),
        "the node runs as 65532, not {uids}"
    );
    assert_eq!(proc_status(&pid, "CapEff"), "0000000000000000");
    assert!(
        mount_options(&pid, "/").contains(&"ro".to_owned()),
        "a read-only root: {:?}",
        mount_options(&pid, "/")
    );
    assert!(
        mount_options(&pid, STATE_DIR).contains(&"rw".to_owned()),
        "a writable state volume"
    );
    let key_file = Path::new(&podman(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}}",
        &volume,
    ]))
    .join("node.key");
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(&key_file).expect("the key pair is in the volume"),
    );
    assert_eq!(owner, 65532, "written by the node's user");

    // A badge, from the sample hub on the host.
    let (code, _, svg) = get(&format!(
        "{url}/status.svg?organization=acme&repository=app"
    ))
    .await;
    assert_eq!(code, 200);
    assert_eq!(said(&svg), "Docker: ok");
    let (_, health) = get_json(&format!("{url}/health")).await;
    assert_eq!(health["hub"]["state"], "ok", "{health}");

    // SIGTERM with a request in flight: it is answered, and the node exits 0 long before
    // the stop timeout would end it with SIGKILL.
    hub.set_fault(Some(Fault::Slow(Duration::from_secs(3))));
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move { get(&format!("{url}/build/acme/slow")).await }
    });
    wait_until(
        Duration::from_secs(10),
        "the request to reach the hub",
        || {
            let asked = hub.received().iter().any(|r| r.path.contains("acme/slow"));
            async move { asked }
        },
    )
    .await;
    let stopping = Instant::now();
    let timeout = STOP_TIMEOUT.as_secs().to_string();
    let stop = tokio::task::spawn_blocking({
        let first = first.clone();
        move || podman(&["stop", "--time", &timeout, &first])
    });
    let (code, _, body) = in_flight.await.expect("the request in flight");
    assert_eq!(code, 200, "answered while draining: {body}");
    stop.await.expect("podman stop");
    let took = stopping.elapsed();
    assert_eq!(
        inspect(&first, "{{.State.ExitCode}}"),
        "0",
        "exit 0, not SIGKILL's 137"
    );
    assert!(took < STOP_TIMEOUT, "stopped in {took:?}");
    let log = logs(&first);
    assert!(log.contains("node stopped"), "{log}");
    eprintln!("SIGTERM to exit with a request in flight: {took:?}");

    // A new container on the same volume is the same node.
    hub.set_fault(None);
    podman(&["rm", &first]);
    let second = name("node-again");
    made.containers.push(second.clone());
    run(&second);
    let health = wait_for_health(&url, &second).await;
    assert_eq!(
        health["key"],
        key.as_str(),
        "the key pair kept in the volume"
    );
    drop(made);
}

/// A host port of the compose file, replaced by a free one: `127.0.0.1:8081:8080` →
/// `127.0.0.1:<free>:8080`, the protocol kept.
fn with_free_host_port(mapping: &str, free: &mut impl FnMut(&str) -> u16) -> (String, u16) {
    let parts: Vec<&str> = mapping.split(':').collect();
    let [host_ip, host_port, container] = parts[..] else {
        panic!("docker-compose.yml: a port mapping not written as IP:HOST:CONTAINER: {mapping}");
    };
    let port = free(host_port);
    (format!("{host_ip}:{port}:{container}"), port)
}

async fn the_compose_files_three_nodes_find_each_other() {
    let image = image();
    let services = compose::services(
        &std::fs::read_to_string(repo_path("docker-compose.yml")).expect("docker-compose.yml"),
    );
    let project = name("compose");
    let mut made = Made::default();
    let network = format!("{project}_default");
    podman(&["network", "create", &network]);
    made.networks.push(network.clone());
    let env = TempDir::new("compose-env");
    let env_file = env.write("dbs.env", "DBS_GOSSIP_INTERVAL=1s\nDBS_PROBE_INTERVAL=1s\n");
    // The same host port for a port's UDP and TCP mappings, as the file has them.
    let mut host_ports: std::collections::BTreeMap<String, u16> = Default::default();
    let mut free = |written: &str| -> u16 {
        *host_ports
            .entry(written.to_owned())
            .or_insert_with(|| common::process::common_free_port(&[1], true))
    };

    let mut http = Vec::new();
    for service in &services {
        let container = format!("{project}_{}", service.name);
        made.containers.push(container.clone());
        let mut args: Vec<String> = vec!["run".into(), "--detach".into()];
        args.extend(run_flags());
        args.push(format!("--name={container}"));
        args.push(format!("--network={network}"));
        args.push(format!("--network-alias={}", service.name));
        let mut command = Vec::new();
        for (key, values) in &service.lists {
            let one = || service.scalar(key).expect("one value");
            match key.as_str() {
                // Built above from the same Dockerfile.
                "build" | "image" => {}
                "restart" => args.push(format!("--restart={}", one())),
                "read_only" => {
                    if one() == "true" {
                        args.push("--read-only".into());
                    }
                }
                "cap_drop" => args.extend(values.iter().map(|c| format!("--cap-drop={c}"))),
                "security_opt" => args.extend(values.iter().map(|o| format!("--security-opt={o}"))),
                "stop_signal" => args.push(format!("--stop-signal={}", one())),
                "stop_grace_period" => {
                    let seconds = one();
                    let seconds = seconds.strip_suffix('s').expect("seconds");
                    assert!(
                        seconds.parse::<u64>().expect("seconds") >= STOP_TIMEOUT.as_secs(),
                        "{}: stop_grace_period outlasts the drain",
                        service.name
                    );
                    args.push(format!("--stop-timeout={seconds}"));
                }
                "env_file" => {
                    assert_eq!(
                        values,
                        &["path=dbs.env", "required=false"],
                        "{}: the optional dbs.env",
                        service.name
                    );
                    args.push(format!("--env-file={}", env_file.display()));
                }
                "ports" => {
                    for mapping in values {
                        let (mapping, port) = with_free_host_port(mapping, &mut free);
                        if mapping.ends_with(&format!(":{PORT}")) {
                            http.push((service.name.clone(), port));
                        }
                        args.push(format!("--publish={mapping}"));
                    }
                }
                "volumes" => {
                    for volume in values {
                        let (source, rest) = volume.split_once(':').expect("SOURCE:TARGET");
                        let source = if let Some(relative) = source.strip_prefix("./") {
                            repo_path(relative).display().to_string()
                        } else {
                            let named = format!("{project}_{source}");
                            made.volumes.push(named.clone());
                            named
                        };
                        args.push(format!("--volume={source}:{rest}"));
                    }
                }
                "command" => command = values.clone(),
                other => panic!(
                    "{}: docker-compose.yml has `{other}`, which this test does not run",
                    service.name
                ),
            }
        }
        args.push(image.to_owned());
        args.extend(command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        podman(&args);
    }
    assert_eq!(http.len(), 3, "three nodes with an HTTP port: {http:?}");

    let mut everyone: Vec<String> = services
        .iter()
        .map(|s| format!("http://{}:{PORT}", s.name))
        .collect();
    everyone.sort();
    let started = Instant::now();
    for (service, port) in &http {
        let url = format!("http://127.0.0.1:{port}");
        let container = format!("{project}_{service}");
        wait_for_health(&url, &container).await;
        let everyone = everyone.clone();
        let mut last = None;
        let found = tokio::time::timeout(Duration::from_secs(90), async {
            loop {
                last = listed_servers(&url).await;
                if last.as_ref() == Some(&everyone) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        assert!(
            found.is_ok(),
            "{service} lists {last:?}, not {everyone:?}; its log:\n{}",
            logs(&container)
        );
    }
    eprintln!(
        "the compose file's three nodes list each other {:.1} s after start",
        started.elapsed().as_secs_f64()
    );
    drop(made);
}

/// This module's tests, for the harness in `main.rs`.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    let programs: &'static [&'static str] = &["podman", "mmdebstrap", "strip"];
    vec![
        harness::needs("one_node_in_the_image", programs, || {
            harness::block_on(one_node_in_the_image())
        }),
        harness::needs(
            "the_compose_files_three_nodes_find_each_other",
            programs,
            || harness::block_on(the_compose_files_three_nodes_find_each_other()),
        ),
    ]
}

/// Removes the images the tests built, once every test has run: the tag first, then what
/// is left of its steps; never one in use by another image.
pub fn clean_up() {
    for image in IMAGES.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        podman_quietly(&["rmi", image]);
    }
}
