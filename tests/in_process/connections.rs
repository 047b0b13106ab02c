//! Connections as slow clients hold them: a reader with a small receive buffer gets the whole
//! of a large answer however long it reads after the handler is done, whatever
//! `--header-timeout` says (that counts only while the node waits for a request head).

use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::common::{client, read_answer, start_node};
use dockerhub_build_status::demo::sample_hub::FakeHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_of_source_gets_the_whole_archive() {
    let hub = FakeHub::start().await.expect("hub");
    let header_timeout = Duration::from_millis(200);
    let node = start_node(&hub.url(), |c| c.header_timeout = header_timeout).await;
    let archive = client()
        .get(format!("{}/source", node.url))
        .send()
        .await
        .expect("/source")
        .bytes()
        .await
        .expect("the archive");
    assert!(archive.len() > 100_000, "{} bytes", archive.len());

    // A 4 KiB receive buffer, read 4 KiB at a time every 10 ms: the archive takes several
    // header timeouts to arrive, most of it after the handler has returned.
    // Segments of an Ethernet path's size: on loopback's 64 KiB segments the kernel gives
    // the node's socket a send buffer of megabytes, which would hold the whole archive
    // however the node wrote it.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.set_tcp_mss(1460).expect("TCP_MAXSEG");
    socket.set_nonblocking(true).expect("non-blocking");
    let socket = TcpSocket::from_std_stream(socket.into());
    let addr = node
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let mut stream = socket.connect(addr).await.expect("connect");
    let started = Instant::now();
    stream
        .write_all(b"GET /source HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        read_answer(&mut stream, 4096, Duration::from_millis(10)),
    )
    .await
    .expect("the answer within a minute");
    let took = started.elapsed();
    let (status, body) = match read {
        Ok(answer) => answer,
        Err(partial) => panic!(
            "cut after {} bytes of {} at {took:?}",
            partial.len(),
            archive.len()
        ),
    };
    assert_eq!(status, 200);
    assert!(body == archive, "the whole archive, byte for byte");
    assert!(
        took > 2 * header_timeout,
        "read in {took:?}: too fast to show anything"
    );
    eprintln!(
        "slow reader: {} bytes in {took:?} (header timeout {header_timeout:?})",
        body.len()
    );

    node.stop().await;
}
