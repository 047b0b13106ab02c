//! Helpers shared by the socket tests: an in-process node on a loopback port, a client, and
//! waiting on conditions with a deadline instead of fixed sleeps.

#![allow(dead_code)]

pub mod compose;
pub mod harness;
pub mod liar;
pub mod process;
pub mod proxy;

use std::future::Future;
use std::time::{Duration, Instant};

use dockerhub_build_status::config::Config;
use dockerhub_build_status::http::{App, server};
use dockerhub_build_status::node::Node;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A node serving on `127.0.0.1:<port>` inside the test process.
pub struct TestNode {
    pub url: String,
    pub node: Node,
    /// What the server serves from (the node and its response memo).
    pub app: App,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestNode {
    /// Stops accepting, drains, and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a node in front of the hub at `hub_url`, with `tweak` applied to its flags.
pub async fn start_node(hub_url: &str, tweak: impl FnOnce(&mut Config)) -> TestNode {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let mut config = Config::for_tests(hub_url.parse().expect("hub URL"));
    config.listen = addr;
    config.public_url = Some(format!("http://{addr}").parse().expect("public URL"));
    tweak(&mut config);
    let node = Node::new(config).expect("node starts");
    let (stop, stopped) = oneshot::channel::<()>();
    let app = App::new(node.clone());
    let served = app.clone();
    let task = tokio::spawn(async move {
        server::run(listener, served, async {
            let _ = stopped.await;
        })
        .await;
    });
    TestNode {
        url: format!("http://{addr}"),
        node,
        app,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A client for talking to nodes: no proxies, no redirects, short timeouts.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A client whose connections come from `ip` (any of 127.0.0.0/8 reaches loopback), so
/// that a node sees it as a client of that address's network.
pub fn client_from(ip: std::net::Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::V4(ip))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// GETs `url` and returns status, headers and body text.
pub async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    (status, headers, body)
}

/// GETs `url` and parses the body as JSON.
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let (status, _, body) = get(url).await;
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{url} answered non-JSON ({e}): {body}"));
    (status, json)
}

/// The URLs a node lists in `/servers`, sorted, or `None` if it does not answer in 3 s.
pub async fn listed_servers(node_url: &str) -> Option<Vec<String>> {
    let response = client()
        .get(format!("{node_url}/servers"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    let mut urls: Vec<String> = body["servers"]
        .as_array()?
        .iter()
        .filter_map(|s| s["url"].as_str().map(str::to_owned))
        .collect();
    urls.sort();
    Some(urls)
}

/// Waits until `check` returns true, polling every 20 ms, for at most `deadline`.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Moves the clock that in-process nodes run on (tokio's) forward by `by` at once, then
/// lets it run on in real time: what waits, expires or refills by it sees `by` pass without
/// the test waiting for it. Call it with nothing in flight (no request awaited by another
/// task), since timers that `by` passes fire at once. Needs the current-thread runtime of
/// `#[tokio::test]`.
pub async fn skip(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// The `aria-label` of a badge, `label: message`, with `&amp;` read back as `&`.
pub fn said(svg: &str) -> String {
    let start = svg
        .find("aria-label=\"")
        .map(|i| i + 12)
        .expect("an aria-label");
    let end = svg[start..].find('"').expect("its end") + start;
    svg[start..end].replace("&amp;", "&")
}

/// Reads one answer with a `Content-Length` body from `stream`, at most `chunk` bytes a read
/// with `pause` after each (a slow reader's pace); returns its status and body, or what was
/// read when the connection ended first.
pub async fn read_answer(
    stream: &mut tokio::net::TcpStream,
    chunk: usize,
    pause: Duration,
) -> Result<(u16, Vec<u8>), Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length");
            if answer.len() >= end + 4 + length {
                let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                let body = answer[end + 4..end + 4 + length].to_vec();
                return Ok((status.expect("a status"), body));
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return Err(answer),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}
