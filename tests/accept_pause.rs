//! When the process runs out of descriptors, the accept loops of HTTP and of DNS over TCP
//! pause instead of retrying at once (which spins a core, and still fails), and accept the
//! waiting connections once descriptors are free again.
//!
//! The test lowers this test process's own descriptor limit and fills it, so it is the only
//! test in its binary.

mod common;

use std::fs::File;
use std::io::{Read as _, Seek as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::start_node;
use dockerhub_build_status::demo::sample_hub::FakeHub;
use dockerhub_build_status::dns::zone::Zone;
use dockerhub_build_status::dns::{DnsServer, Limits, Sockets, StaticPool};
use dockerhub_build_status::metrics::Metrics;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use rustix::process::{Resource, getrlimit, setrlimit};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpSocket;

const ZONE: &str = "pool.badges.test";
const WATCH: Duration = Duration::from_secs(3);

/// User plus system CPU time of this process, read from a `/proc/self/stat` opened
/// before the descriptors ran out (procfs gives fresh figures on each read from 0).
fn cpu_time(stat: &mut File) -> Duration {
    let mut text = String::new();
    stat.rewind().expect("rewind");
    stat.read_to_string(&mut text).expect("read stat");
    let rest = &text[text.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on every Linux architecture.
    Duration::from_millis(ticks * 10)
}

fn dns_query() -> Vec<u8> {
    let mut message = Message::new(9, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(ZONE).expect("name"),
        RecordType::SOA,
    ));
    let query = message.to_vec().expect("encode");
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    framed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_loops_pause_while_descriptors_run_out_and_serve_afterwards() {
    let hub = FakeHub::start().await.expect("hub");
    let node = start_node(&hub.url(), |_| {}).await;
    let http: SocketAddr = node
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let sockets = Sockets::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let zone = Zone::new(ZONE, 60, &["ns1.badges.test".into()], 1, false).expect("zone");
    let dns = DnsServer::start(
        sockets,
        zone,
        Arc::new(StaticPool(Vec::new())),
        Limits::new(50),
        Metrics::new().expect("metrics"),
    )
    .expect("dns");
    let dns_addr = dns.local_addr();
    let mut stat = File::open("/proc/self/stat").expect("stat");

    // The clients' sockets first, then every descriptor left is taken: the servers'
    // accepts of the clients' connections fail with "too many open files".
    let dns_socket = TcpSocket::new_v4().expect("socket");
    let http_socket = TcpSocket::new_v4().expect("socket");
    let limit = getrlimit(Resource::Nofile);
    let mut lowered = limit;
    let open_now = std::fs::read_dir("/proc/self/fd").expect("fds").count() as u64;
    lowered.current = Some(open_now + 64);
    setrlimit(Resource::Nofile, lowered).expect("lower the limit");
    let mut filler = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        filler.push(file);
    }
    assert!(filler.len() > 10, "the limit was reached");
    let mut dns_client = dns_socket.connect(dns_addr).await.expect("connect to DNS");
    let mut http_client = http_socket.connect(http).await.expect("connect to HTTP");

    let cpu_before = cpu_time(&mut stat);
    let started = Instant::now();
    tokio::time::sleep(WATCH).await;
    let cpu = cpu_time(&mut stat).saturating_sub(cpu_before);
    let share = cpu.as_secs_f64() / started.elapsed().as_secs_f64();

    drop(filler);
    setrlimit(Resource::Nofile, limit).expect("restore the limit");
    println!(
        "out of descriptors for {:?}: {:.2} s of CPU ({:.0} % of a core)",
        started.elapsed(),
        cpu.as_secs_f64(),
        share * 100.0
    );
    assert!(
        share < 0.2,
        "an accept loop spins: {:.0} % of a core",
        share * 100.0
    );

    // The connections that waited are served once descriptors are free.
    dns_client.write_all(&dns_query()).await.expect("write");
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), dns_client.read_exact(&mut len))
        .await
        .expect("DNS answers in time")
        .expect("DNS answer");
    http_client
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), http_client.read_exact(&mut head))
        .await
        .expect("HTTP answers in time")
        .expect("HTTP answer");
    assert_eq!(&head, b"HTTP/1.1 200");
    dns.shutdown().await;
    node.stop().await;
}
