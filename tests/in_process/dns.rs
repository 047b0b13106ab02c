//! The pool name's DNS server over real sockets, fed raw UDP packets: good questions get
//! the zone's answers; malformed packets, truncated ones, odd EDNS sizes, many questions,
//! other zones and a flood from one source get an answer or a drop by the rate limit,
//! never a crash, never a stall of HTTP serving, never more bytes back than the limit
//! allows. And the badge routes answer whatever the Host header, the pool name included.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dockerhub_build_status::demo::sample_hub::FakeHub;
use dockerhub_build_status::dns::zone::Zone;
use dockerhub_build_status::dns::{DnsServer, Limits, Sockets, StaticPool};
use dockerhub_build_status::federation::{PoolNode, PublicKey};
use dockerhub_build_status::metrics::Metrics;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

const ZONE: &str = "pool.badges.test";
/// The most an answer is larger than its query: four address records, the first with the
/// name spelled out (at most 32 + 3 x 28 bytes for AAAA), and an OPT record (11 bytes).
const ANSWER_GROWTH: usize = 32 + 3 * 28 + 11;

fn nodes(n: u8) -> Vec<PoolNode> {
    (1..=n)
        .map(|i| PoolNode {
            key: PublicKey::from_bytes([i; 32]),
            url: format!("http://198.51.{i}.1"),
            weight: 1.0,
            addresses: vec![IpAddr::from([198, 51, i, 1])],
        })
        .collect()
}

async fn start(rate: u32, metrics: &Metrics) -> DnsServer {
    let sockets = Sockets::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let zone = Zone::new(ZONE, 60, &["ns1.badges.test".into()], 1, false).expect("zone");
    DnsServer::start(
        sockets,
        zone,
        Arc::new(StaticPool(nodes(8))),
        Limits::new(rate),
        metrics.clone(),
    )
    .expect("start")
}

fn query(name: &str, qtype: RecordType, id: u16) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    message.metadata.recursion_desired = true;
    message
}

fn bytes(message: &Message) -> Vec<u8> {
    message.to_vec().expect("encode")
}

/// Sends `packet` from `socket` and waits up to `wait` for one answer.
async fn ask(
    socket: &UdpSocket,
    server: SocketAddr,
    packet: &[u8],
    wait: Duration,
) -> Option<Vec<u8>> {
    socket.send_to(packet, server).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(wait, socket.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

async fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.expect("client socket")
}

fn parse(answer: &[u8]) -> Message {
    Message::from_vec(answer).expect("a parseable answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_questions_get_the_zone_s_answers() {
    let metrics = Metrics::new().expect("metrics");
    let server = start(10_000, &metrics).await;
    let addr = server.local_addr();
    let socket = client().await;
    let wait = Duration::from_secs(5);

    let a = parse(
        &ask(
            &socket,
            addr,
            &bytes(&query("pool.badges.test.", RecordType::A, 1)),
            wait,
        )
        .await
        .expect("answer"),
    );
    assert_eq!(a.metadata.id, 1);
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(a.metadata.authoritative);
    assert!(!a.metadata.recursion_available, "no recursion");
    assert_eq!(a.answers.len(), 4);
    assert!(
        a.answers
            .iter()
            .all(|r| r.ttl == 60 && matches!(r.data, RData::A(_)))
    );

    let nx = parse(
        &ask(
            &socket,
            addr,
            &bytes(&query("x.pool.badges.test.", RecordType::A, 2)),
            wait,
        )
        .await
        .expect("answer"),
    );
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities.len(), 1, "SOA for negative caching");

    let out = parse(
        &ask(
            &socket,
            addr,
            &bytes(&query("example.com.", RecordType::A, 3)),
            wait,
        )
        .await
        .expect("answer"),
    );
    assert_eq!(out.metadata.response_code, ResponseCode::Refused);
    assert!(out.answers.is_empty());

    let any = parse(
        &ask(
            &socket,
            addr,
            &bytes(&query("pool.badges.test.", RecordType::ANY, 4)),
            wait,
        )
        .await
        .expect("answer"),
    );
    assert_eq!(any.metadata.response_code, ResponseCode::NotImp);
    assert!(any.answers.is_empty());

    let ns = parse(
        &ask(
            &socket,
            addr,
            &bytes(&query("pool.badges.test.", RecordType::NS, 5)),
            wait,
        )
        .await
        .expect("answer"),
    );
    assert_eq!(ns.answers.len(), 1);

    // TCP answers the same.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let packet = bytes(&query("pool.badges.test.", RecordType::SOA, 6));
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&packet);
    tcp.write_all(&framed).await.expect("write");
    let mut len = [0u8; 2];
    tokio::time::timeout(wait, tcp.read_exact(&mut len))
        .await
        .expect("in time")
        .expect("length");
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tcp.read_exact(&mut body).await.expect("body");
    let soa = parse(&body);
    assert_eq!(soa.metadata.id, 6);
    assert_eq!(soa.answers[0].record_type(), RecordType::SOA);

    let text = String::from_utf8(metrics.encode()).expect("utf-8");
    for line in [
        "dbs_dns_queries_total{qtype=\"A\",rcode=\"NOERROR\"} 2",
        "dbs_dns_queries_total{qtype=\"A\",rcode=\"NXDOMAIN\"} 1",
        "dbs_dns_queries_total{qtype=\"A\",rcode=\"REFUSED\"} 1",
        "dbs_dns_queries_total{qtype=\"ANY\",rcode=\"NOTIMP\"} 1",
        "dbs_dns_queries_total{qtype=\"SOA\",rcode=\"NOERROR\"} 1",
    ] {
        let (series, _) = line.rsplit_once(' ').expect("value");
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    let given: u64 = text
        .lines()
        .filter(|l| l.starts_with("dbs_dns_answers_total{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<u64>().ok()))
        .sum();
    assert_eq!(given, 4, "one answer of four addresses\n{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_packets_get_an_answer_no_larger_than_themselves_or_none_and_the_server_lives() {
    let metrics = Metrics::new().expect("metrics");
    let server = start(10_000, &metrics).await;
    let addr = server.local_addr();
    let socket = client().await;
    let short = Duration::from_millis(300);

    let good = bytes(&query("pool.badges.test.", RecordType::A, 77));
    let mut many = query("pool.badges.test.", RecordType::A, 9);
    for i in 0..40 {
        many.add_query(Query::query(
            Name::from_ascii(format!("q{i}.pool.badges.test.")).expect("name"),
            RecordType::A,
        ));
    }
    let mut huge_edns = query("pool.badges.test.", RecordType::A, 10);
    let mut edns = Edns::new();
    edns.set_max_payload(65_535);
    huge_edns.set_edns(edns.clone());
    let mut tiny_edns = query("pool.badges.test.", RecordType::A, 11);
    edns.set_max_payload(1);
    tiny_edns.set_edns(edns.clone());
    let mut edns_v1 = query("pool.badges.test.", RecordType::A, 12);
    edns.set_max_payload(1232);
    edns.set_version(1);
    edns_v1.set_edns(edns);
    let mut truncated_flag = query("pool.badges.test.", RecordType::A, 13);
    truncated_flag.metadata.truncation = true;
    let mut as_response = query("pool.badges.test.", RecordType::A, 14);
    as_response.metadata.message_type = MessageType::Response;
    let mut update = query("pool.badges.test.", RecordType::SOA, 15);
    update.metadata.op_code = OpCode::Update;
    let mut no_question = Message::new(16, MessageType::Query, OpCode::Query);
    no_question.metadata.recursion_desired = true;
    let mut lying_count = good.clone();
    lying_count[4..6].copy_from_slice(&[0xff, 0xff]);
    let mut lying_answers = good.clone();
    lying_answers[6..8].copy_from_slice(&[0xff, 0xff]);
    let mut label_loop = good[..12].to_vec();
    label_loop[4..6].copy_from_slice(&[0, 1]);
    label_loop.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("one byte", vec![0]),
        ("header only, cut", good[..11].to_vec()),
        ("cut in the question", good[..good.len() - 3].to_vec()),
        (
            "random bytes",
            (0..200u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("question count 65535", lying_count),
        ("answer count 65535", lying_answers),
        ("compression loop", label_loop),
        ("41 questions", bytes(&many)),
        ("EDNS 65535", bytes(&huge_edns)),
        ("EDNS 1", bytes(&tiny_edns)),
        ("EDNS version 1", bytes(&edns_v1)),
        ("TC set in the query", bytes(&truncated_flag)),
        ("a response", bytes(&as_response)),
        ("an update", bytes(&update)),
        ("no question", bytes(&no_question)),
        ("64 KB of zeros", vec![0u8; 65_000]),
    ];
    for (what, packet) in &cases {
        let answer = ask(&socket, addr, packet, short).await;
        if let Some(answer) = &answer {
            // Whatever was sent, what comes back is never larger, except a real answer to
            // a real question (at most four address records more).
            let parsed = Message::from_vec(answer);
            // (The first record spells the name out: the question is echoed as received,
            // so nothing points into it.)
            let allowed = packet.len() + ANSWER_GROWTH;
            assert!(
                answer.len() <= allowed.max(12),
                "{what}: {} bytes for {}",
                answer.len(),
                packet.len()
            );
            if let Ok(parsed) = parsed {
                assert_eq!(
                    parsed.metadata.message_type,
                    MessageType::Response,
                    "{what}"
                );
                assert!(answer.len() <= 1232, "{what}");
            }
        }
        match *what {
            "41 questions" | "no question" => {
                let parsed = parse(&answer.unwrap_or_else(|| panic!("{what}: no answer")));
                assert_eq!(
                    parsed.metadata.response_code,
                    ResponseCode::FormErr,
                    "{what}"
                );
            }
            "EDNS version 1" => {
                let parsed = parse(&answer.unwrap_or_else(|| panic!("{what}: no answer")));
                // 16 is BADVERS in an answer with EDNS (hickory reads it as BADSIG, the
                // same number in TSIG).
                assert_eq!(u16::from(parsed.metadata.response_code), 16, "{what}");
            }
            "an update" => {
                let parsed = parse(&answer.unwrap_or_else(|| panic!("{what}: no answer")));
                assert_eq!(
                    parsed.metadata.response_code,
                    ResponseCode::NotImp,
                    "{what}"
                );
            }
            "EDNS 65535" | "EDNS 1" | "TC set in the query" => {
                let parsed = parse(&answer.unwrap_or_else(|| panic!("{what}: no answer")));
                assert_eq!(
                    parsed.metadata.response_code,
                    ResponseCode::NoError,
                    "{what}"
                );
                assert_eq!(parsed.answers.len(), 4, "{what}");
                assert!(
                    !parsed.metadata.truncation,
                    "{what}: four records fit anywhere"
                );
                if let Some(edns) = &parsed.edns {
                    assert!(
                        edns.max_payload() <= 1232 && edns.max_payload() >= 512,
                        "{what}"
                    );
                }
            }
            "a response" => assert!(answer.is_none(), "responses are never answered"),
            _ => {}
        }
    }
    // Still answering.
    let after = parse(
        &ask(&socket, addr, &good, Duration::from_secs(5))
            .await
            .expect("alive"),
    );
    assert_eq!(after.metadata.id, 77);
    assert_eq!(after.answers.len(), 4);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_source_is_limited_and_http_keeps_serving() {
    let hub = FakeHub::start().await.expect("hub");
    hub.add_samples();
    let node = common::start_node(&hub.url(), |_| {}).await;
    let metrics = Metrics::new().expect("metrics");
    const RATE: u32 = 20;
    let server = start(RATE, &metrics).await;
    let addr = server.local_addr();
    let socket = Arc::new(client().await);
    let packet = bytes(&query("pool.badges.test.", RecordType::A, 5));

    // The receiver counts what comes back while the sender floods for two seconds.
    let received = {
        let socket = Arc::clone(&socket);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let (mut answers, mut slips, mut bytes) = (0u64, 0u64, 0u64);
            while let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
            {
                bytes += n as u64;
                match Message::from_vec(&buf[..n]) {
                    Ok(m) if m.metadata.truncation && m.answers.is_empty() => slips += 1,
                    Ok(_) => answers += 1,
                    Err(e) => panic!("unparseable answer: {e}"),
                }
            }
            (answers, slips, bytes)
        })
    };
    let started = Instant::now();
    let mut sent = 0u64;
    let mut health_checks = 0;
    let client = common::client();
    while started.elapsed() < Duration::from_secs(2) {
        for _ in 0..200 {
            socket.send_to(&packet, addr).await.expect("send");
            sent += 1;
        }
        if sent.is_multiple_of(2000) {
            // HTTP serving goes on during the flood.
            let response = client
                .get(format!("{}/health", node.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .expect("/health during the flood");
            assert_eq!(response.status(), 200);
            health_checks += 1;
        }
        tokio::task::yield_now().await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (answers, slips, bytes) = received.await.expect("receiver");
    assert!(health_checks > 0);
    assert!(sent > 2000, "a flood: {sent}");
    // Full answers: the burst (twice the rate) plus the rate over the time, and a little
    // for the receiver's last half second.
    let most = f64::from(RATE) * 2.0 + f64::from(RATE) * (elapsed + 0.6);
    assert!(
        (answers as f64) <= most,
        "{answers} answers to {sent} queries in {elapsed:.1} s"
    );
    assert!(
        answers >= u64::from(RATE),
        "the burst is answered: {answers}"
    );
    // Every second query over the limit gets a truncated answer no larger than the query.
    assert!(slips > 0);
    let full = (ANSWER_GROWTH + packet.len()) as u64;
    assert!(
        bytes <= answers * full + slips * packet.len() as u64,
        "{bytes} bytes back for {sent} x {} sent: {answers} answers, {slips} slips",
        packet.len()
    );
    assert!(bytes <= sent * packet.len() as u64 + most as u64 * full);
    let text = String::from_utf8(metrics.encode()).expect("utf-8");
    assert!(text.contains("dbs_dns_rate_limited_total{action=\"dropped\"}"));
    assert!(
        !text.contains("dbs_dns_rate_limited_total{action=\"dropped\"} 0\n"),
        "{text}"
    );

    // Another network is not held back by this one's flood.
    let other = UdpSocket::bind("127.0.1.1:0")
        .await
        .expect("bind 127.0.1.1");
    let answer = ask(&other, addr, &packet, Duration::from_secs(5))
        .await
        .expect("answer");
    assert_eq!(parse(&answer).answers.len(), 4);
    server.shutdown().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_answer_whatever_the_host_header_the_pool_name_included() {
    let hub = FakeHub::start().await.expect("hub");
    hub.add_samples();
    let node = common::start_node(&hub.url(), |_| {}).await;
    let client = common::client();
    for host in [
        ZONE,
        "POOL.badges.test:80",
        "somewhere.else.example",
        "198.51.100.7",
    ] {
        for path in [
            "/status.svg?organization=demo&repository=passing",
            "/build/demo/passing",
            "/shields/demo/passing",
        ] {
            let response = client
                .get(format!("{}{path}", node.url))
                .header("host", host)
                .send()
                .await
                .expect("badge");
            assert_eq!(response.status(), 200, "{host} {path}");
            let body = response.text().await.expect("body");
            assert!(!body.is_empty());
        }
    }
    node.stop().await;
}
