//! DNS throughput: queries per second the node's pool DNS answers, against a bare hickory
//! authoritative server (hickory's `Catalog` with an in-memory zone) serving the same static
//! zone, in the same run, on the same loopback. Both run on hickory's UDP server; the
//! difference is what the node adds: the rate limiter (on, set above what the load
//! reaches, so its cost is in the figure but it never drops), the weighted draw of four
//! nodes per answer, and the metrics.
//!
//! Rounds alternate between the two so that a noisy neighbour on the shared machine hits
//! both alike; the median of the per-pair ratios decides. Goal: at least 0.8x.
//!
//! `cargo bench --bench dns` (ROUNDS and SECONDS in the environment change the run).
//! Without `--bench` (`cargo test --benches`) it runs one short round as a smoke test.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dockerhub_build_status::dns::zone::Zone;
use dockerhub_build_status::dns::{DnsServer, Limits, Sockets, StaticPool};
use dockerhub_build_status::federation::{PoolNode, PublicKey};
use dockerhub_build_status::metrics::Metrics;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::UdpSocket;

const ZONE: &str = "pool.badges.test.";
/// Client sockets, each with this many queries in flight.
const CLIENTS: usize = 4;
const IN_FLIGHT: usize = 16;

fn addresses() -> Vec<Ipv4Addr> {
    (1..=4).map(|i| Ipv4Addr::new(198, 51, i, 1)).collect()
}

async fn start_node() -> DnsServer {
    let nodes = addresses()
        .into_iter()
        .enumerate()
        .map(|(i, ip)| PoolNode {
            key: PublicKey::from_bytes([i as u8 + 1; 32]),
            url: format!("http://{ip}"),
            weight: 1.0,
            addresses: vec![IpAddr::V4(ip)],
        })
        .collect();
    let zone = Zone::new(ZONE, 60, &["ns1.badges.test".into()], 1, false).expect("zone");
    let sockets = Sockets::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    DnsServer::start(
        sockets,
        zone,
        Arc::new(StaticPool(nodes)),
        Limits::new(10_000_000),
        Metrics::new().expect("metrics"),
    )
    .expect("start")
}

/// hickory's own authoritative server for the same zone: SOA, NS, the four A records.
async fn start_baseline() -> (hickory_server::Server<Catalog>, SocketAddr) {
    let origin = Name::from_ascii(ZONE).expect("name");
    let mut records = BTreeMap::new();
    let mut put = |record: Record| {
        let key = RrKey::new(LowerName::new(&record.name), record.record_type());
        records
            .entry(key)
            .or_insert_with(|| RecordSet::new(record.name.clone(), record.record_type(), 1))
            .insert(record, 1);
    };
    put(Record::from_rdata(
        origin.clone(),
        60,
        RData::SOA(SOA::new(
            Name::from_ascii("ns1.badges.test.").expect("name"),
            Name::from_ascii("hostmaster.pool.badges.test.").expect("name"),
            1,
            3600,
            600,
            86_400,
            60,
        )),
    ));
    put(Record::from_rdata(
        origin.clone(),
        3600,
        RData::NS(NS(Name::from_ascii("ns1.badges.test.").expect("name"))),
    ));
    for ip in addresses() {
        put(Record::from_rdata(origin.clone(), 60, RData::A(A(ip))));
    }
    let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
        origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .expect("zone");
    let mut catalog = Catalog::new();
    let handlers: Vec<Arc<dyn ZoneHandler>> = vec![Arc::new(handler)];
    catalog.upsert(LowerName::new(&origin), handlers);
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    let mut server = hickory_server::Server::new(catalog);
    server.register_socket(socket);
    (server, addr)
}

fn query(id: u16) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(ZONE).expect("name"),
        RecordType::A,
    ));
    message.to_vec().expect("encode")
}

/// Answers per second from `server` over `seconds`: each client keeps [`IN_FLIGHT`]
/// queries outstanding and sends one more per answer with four addresses (a lost packet
/// is replaced after 50 ms without an answer).
async fn measure(server: SocketAddr, seconds: f64) -> f64 {
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let answered = Arc::clone(&answered);
        let stop = Arc::clone(&stop);
        clients.push(tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("client");
            socket.connect(server).await.expect("connect");
            let packet = query(c as u16);
            for _ in 0..IN_FLIGHT {
                let _ = socket.send(&packet).await;
            }
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::Relaxed) {
                let got =
                    tokio::time::timeout(Duration::from_millis(50), socket.recv(&mut buf)).await;
                // Header's answer count: four A records expected.
                if let Ok(Ok(n)) = got
                    && n >= 12
                    && buf[6..8] == [0, 4]
                {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                let _ = socket.send(&packet).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = answered.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let count = answered.load(Ordering::Relaxed) - before;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    count as f64 / elapsed
}

fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (rounds, seconds) = if benching {
        (
            env_number("ROUNDS", 5.0) as usize,
            env_number("SECONDS", 2.0),
        )
    } else {
        (1, 0.3)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let node = start_node().await;
        let (mut baseline, baseline_addr) = start_baseline().await;
        // Both answer the same question with four A records.
        for addr in [node.local_addr(), baseline_addr] {
            let socket = UdpSocket::bind("127.0.0.1:0").await.expect("probe");
            socket.send_to(&query(1), addr).await.expect("send");
            let mut buf = [0u8; 1500];
            let (n, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
                .await
                .expect("an answer")
                .expect("recv");
            let answer = Message::from_vec(&buf[..n]).expect("parse");
            assert_eq!(answer.answers.len(), 4, "{addr}: {answer:?}");
        }
        println!(
            "dns: {rounds} paired rounds of {seconds} s, {CLIENTS} clients x {IN_FLIGHT} in flight"
        );
        let mut ratios = Vec::new();
        for round in 1..=rounds {
            // Alternate which goes first.
            let (b, n) = if round % 2 == 1 {
                let b = measure(baseline_addr, seconds).await;
                (b, measure(node.local_addr(), seconds).await)
            } else {
                let n = measure(node.local_addr(), seconds).await;
                (measure(baseline_addr, seconds).await, n)
            };
            let ratio = n / b;
            println!("round {round}: baseline {b:>9.0} q/s  node {n:>9.0} q/s  ratio {ratio:.2}x");
            ratios.push(ratio);
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        println!("median ratio node / bare hickory: {median:.2}x (goal >= 0.80x)");
        node.shutdown().await;
        let _ = baseline.shutdown_gracefully().await;
    });
}
