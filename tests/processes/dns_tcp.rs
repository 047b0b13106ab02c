//! DNS cannot starve HTTP, with a real node process:
//!
//! - started with a descriptor limit of 256, it gets twice that many DNS-over-TCP
//!   connections from eight /24s, each sending a query every 2 s and reconnecting when
//!   closed, for 12 s: `/health` answers every time, the node uses little CPU (no accept
//!   loop spinning on "too many open files"), DNS over TCP is refused beyond its caps, and
//!   UDP DNS goes on answering with the node itself;
//! - a DNS node whose HTTP at its pool address dies drops its own address from its
//!   answers, and takes it back when it answers again.

use crate::common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::process::{ChildGuard, TempDir, common_free_port, isolated_node};
use common::wait_until;
use dockerhub_build_status::demo::sample_hub::FakeHub;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const ZONE: &str = "pool.badges.test";
/// The node's descriptor limit.
const LIMIT: usize = 256;
const FLOOD: Duration = Duration::from_secs(12);
const QUERY_EVERY: Duration = Duration::from_secs(2);
const NETWORKS: u8 = 8;

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// Starts a DNS node on `127.0.0.<host>` under a descriptor limit of `limit`, serving the
/// pool at its own address on `pool_port`.
fn start(
    host: u8,
    http_port: u16,
    dns_port: u16,
    pool_port: u16,
    hub: &str,
    limit: usize,
    dir: &TempDir,
) -> ChildGuard {
    let node = isolated_node(dir);
    // The limit is set by the shell the node then replaces (so its pid is the node's).
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(node.get_program())
        .args(node.get_args())
        .args(["--listen", &format!("{}:{http_port}", ip(host))])
        .args(["--public-url", &format!("http://{}:{http_port}", ip(host))])
        .args(["--hub-url", hub])
        .args(["--probe-interval", "1s", "--gossip-interval", "1s"])
        .arg("--allow-private-peers")
        .args(["--dns-zone", ZONE, "--dns-ttl", "1s"])
        .args(["--dns-listen", &format!("{}:{dns_port}", ip(host))])
        .args(["--pool-port", &pool_port.to_string()])
        .env("RUST_LOG", "warn");
    for (name, value) in node.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    ChildGuard::spawn(&mut command)
}

fn a_query(id: u16) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(ZONE).expect("name"),
        RecordType::A,
    ));
    message.to_vec().expect("encode")
}

/// The A records the node answers over UDP, or `None` without an answer within 1 s.
async fn resolve_udp(server: SocketAddr) -> Option<Vec<Ipv4Addr>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    socket.send_to(&a_query(7), server).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    let answer = Message::from_vec(&buf[..n]).ok()?;
    Some(
        answer
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect(),
    )
}

/// One query over an open TCP connection; true if it was answered within 3 s.
async fn ask_tcp(stream: &mut TcpStream, id: u16) -> bool {
    let query = a_query(id);
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    if stream.write_all(&framed).await.is_err() {
        return false;
    }
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut body).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), read).await,
        Ok(Some(_))
    )
}

/// User plus system CPU time of process `pid` so far (from `/proc/<pid>/stat`, in clock
/// ticks of 1/100 s, the kernel's `USER_HZ` on every Linux architecture).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// How many descriptors process `pid` holds.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[derive(Default)]
struct FloodCounts {
    connected: AtomicUsize,
    answered: AtomicUsize,
    cut: AtomicUsize,
    /// Connections answered at least once and not closed yet, now and most at once.
    live: AtomicUsize,
    most_live: AtomicUsize,
}

/// One attacker connection slot from `source`: connect, send a query every
/// [`QUERY_EVERY`], reconnect after a pause when the node closes it, until `until`.
async fn flood_slot(
    source: Ipv4Addr,
    server: SocketAddr,
    until: Instant,
    counts: Arc<FloodCounts>,
) {
    let mut id = 0u16;
    while Instant::now() < until {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("bind the source address");
        let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(2), socket.connect(server)).await
        else {
            tokio::time::sleep(QUERY_EVERY).await;
            continue;
        };
        counts.connected.fetch_add(1, Ordering::Relaxed);
        let mut live = false;
        loop {
            id = id.wrapping_add(1);
            if !ask_tcp(&mut stream, id).await {
                counts.cut.fetch_add(1, Ordering::Relaxed);
                if live {
                    counts.live.fetch_sub(1, Ordering::Relaxed);
                }
                break;
            }
            counts.answered.fetch_add(1, Ordering::Relaxed);
            if !live {
                live = true;
                let now = counts.live.fetch_add(1, Ordering::Relaxed) + 1;
                counts.most_live.fetch_max(now, Ordering::Relaxed);
            }
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep(QUERY_EVERY).await;
        }
        tokio::time::sleep(QUERY_EVERY).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_while_twice_the_descriptor_limit_of_dns_tcp_connections_are_opened() {
    let hub = FakeHub::start().await.expect("hub");
    let host = 71;
    let http_port = common_free_port(&[host], false);
    let dns_port = common_free_port(&[host], true);
    let dir = TempDir::new("dns-tcp");
    let node = start(
        host,
        http_port,
        dns_port,
        http_port,
        &hub.url(),
        LIMIT,
        &dir,
    );
    let pid = node.pid();
    let dns = SocketAddr::from((ip(host), dns_port));
    let health = format!("http://{}:{http_port}/health", ip(host));
    // A new connection for every request: accepting is what is under test.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    wait_until(
        Duration::from_secs(20),
        "the node answers DNS with itself",
        || async { resolve_udp(dns).await == Some(vec![ip(host)]) },
    )
    .await;
    let limit: usize = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .expect("limits")
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        .and_then(|n| n.parse().ok())
        .expect("the node's descriptor limit");
    assert_eq!(limit, LIMIT, "the node runs under the limit under test");

    let counts = Arc::new(FloodCounts::default());
    let started = Instant::now();
    let cpu_before = cpu_time(pid);
    let until = started + FLOOD;
    let mut slots = tokio::task::JoinSet::new();
    for slot in 0..2 * LIMIT {
        // Eight /24s, so the caps in all and per network are both reached.
        let network = 1 + (slot % usize::from(NETWORKS)) as u8;
        let source = Ipv4Addr::new(127, 0, network, 9);
        slots.spawn(flood_slot(source, dns, until, Arc::clone(&counts)));
    }
    let (mut health_ok, mut health_asked, mut udp_self, mut most_fds) = (0, 0, 0, 0);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        health_asked += 1;
        if let Ok(response) = client.get(&health).send().await
            && response.status() == 200
        {
            health_ok += 1;
        }
        if resolve_udp(dns)
            .await
            .is_some_and(|a| a.contains(&ip(host)))
        {
            udp_self += 1;
        }
        most_fds = most_fds.max(open_descriptors(pid));
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    while slots.join_next().await.is_some() {}
    let share = cpu.as_secs_f64() / elapsed.as_secs_f64();
    println!(
        "{} DNS TCP slots against a limit of {LIMIT}: /health {health_ok} of {health_asked}, \
         UDP answered with the node itself {udp_self} of {health_asked}, CPU {:.2} s in {:.1} s \
         ({:.0} % of a core), at most {most_fds} descriptors open, {} connections made, \
         {} cut, {} TCP answers, at most {} open at once",
        2 * LIMIT,
        cpu.as_secs_f64(),
        elapsed.as_secs_f64(),
        share * 100.0,
        counts.connected.load(Ordering::Relaxed),
        counts.cut.load(Ordering::Relaxed),
        counts.answered.load(Ordering::Relaxed),
        counts.most_live.load(Ordering::Relaxed),
    );
    assert_eq!(health_ok, health_asked, "/health answers throughout");
    assert_eq!(
        udp_self, health_asked,
        "UDP DNS answers with the node throughout"
    );
    assert!(
        share < 0.3,
        "the node spins: {:.0} % of a core",
        share * 100.0
    );
    assert!(
        most_fds < LIMIT - 32,
        "descriptors kept in reserve: {most_fds} open"
    );
    let budget = dockerhub_build_status::descriptors::Budget::for_limit(LIMIT as u64);
    assert!(
        counts.most_live.load(Ordering::Relaxed) <= budget.dns_tcp,
        "DNS TCP beyond its cap"
    );
    assert!(
        counts.cut.load(Ordering::Relaxed) >= 2 * LIMIT - budget.dns_tcp,
        "connections past the caps are closed"
    );
    assert!(
        counts.answered.load(Ordering::Relaxed) >= budget.dns_tcp,
        "DNS TCP still answers within its caps"
    );
    let metrics = client
        .get(format!("http://{}:{http_port}/metrics", ip(host)))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    assert!(
        metrics.lines().any(|l| l
            .starts_with("dbs_dns_rate_limited_total{action=\"tcp_refused\"}")
            && !l.ends_with(" 0")),
        "refusals counted"
    );
}

/// Forwards TCP connections from `listener` to `to` until aborted: the node's HTTP as
/// the pool's clients reach it (a reverse proxy on port 80, say).
async fn forward(listener: tokio::net::TcpListener, to: SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_node_whose_http_is_dead_drops_its_own_address() {
    let hub = FakeHub::start().await.expect("hub");
    let host = 72;
    let http_port = common_free_port(&[host], false);
    let dns_port = common_free_port(&[host], true);
    let pool_port = common_free_port(&[host], false);
    let dir = TempDir::new("dns-self");
    let _node = start(host, http_port, dns_port, pool_port, &hub.url(), 1024, &dir);
    let dns = SocketAddr::from((ip(host), dns_port));
    let node_http = SocketAddr::from((ip(host), http_port));
    let pool_addr = SocketAddr::from((ip(host), pool_port));
    let bind = || async move {
        tokio::net::TcpListener::bind(pool_addr)
            .await
            .expect("bind the pool address")
    };
    let answers = |what: &'static str, want: Vec<Ipv4Addr>| async move {
        wait_until(Duration::from_secs(20), what, || {
            let want = want.clone();
            async move { resolve_udp(dns).await == Some(want) }
        })
        .await;
    };
    let proxy = tokio::spawn(forward(bind().await, node_http));
    answers("the node answers with itself", vec![ip(host)]).await;
    // Its HTTP at the pool address dies (the node itself runs on: its DNS answers).
    proxy.abort();
    let _ = proxy.await;
    let dead = Instant::now();
    answers("the node drops its own address", vec![]).await;
    println!(
        "own address dropped {:?} after its HTTP died",
        dead.elapsed()
    );
    let proxy = tokio::spawn(forward(bind().await, node_http));
    answers("the node answers with itself again", vec![ip(host)]).await;
    proxy.abort();
}
