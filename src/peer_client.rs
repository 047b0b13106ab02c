//! The HTTP client a node talks to other nodes with: health probes and gossip exchanges.
//!
//! Every connection goes through [`GuardedResolver`], which drops loopback, private,
//! link-local and metadata addresses after DNS resolution (unless `--allow-private-peers`),
//! so a hostile descriptor cannot make this node send requests into its own network, not
//! even by a name that resolves to such an address. URLs with a literal IP are checked the
//! same way before any request, since no resolver sees them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::ACCESS_CONTROL_ALLOW_ORIGIN;
use serde::Deserialize;
use thiserror::Error;

use crate::federation::net::is_forbidden_probe_target;
use crate::federation::peer_url::PeerUrl;

/// Largest `/health` answer read.
const MAX_HEALTH_BYTES: usize = 8 * 1024;

/// Why a request to another node failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeerError {
    #[error("the address is private or reserved and --allow-private-peers is off")]
    Forbidden,
    #[error("no answer in time")]
    Timeout,
    /// With the innermost reason reqwest gave ("Connection refused (os error 111)").
    #[error("cannot connect: {0}")]
    Unreachable(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("answer too large")]
    TooLarge,
    #[error("answer is not what a node sends: {0}")]
    BadAnswer(String),
}

/// What one probe of `GET {url}/health` saw. The federation core decides what it means.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// How long the answer took.
    pub latency: Duration,
    /// The address that answered.
    pub ip: Option<IpAddr>,
    /// The key the node says it has (base64), if the answer was a health object.
    pub key: Option<String>,
    /// Whether the answer carried `Access-Control-Allow-Origin: *`, which browsers need.
    pub cors: bool,
    /// What went wrong, if anything.
    pub error: Option<PeerError>,
}

#[derive(Deserialize)]
struct HealthAnswer {
    key: Option<String>,
}

/// How long an idle connection to another node is kept for reuse. Nodes close idle
/// keep-alive connections after their `--header-timeout` (10 s by default), and a probe sent
/// on a connection in the moment the other side closes it is lost and counted as a failed
/// probe (2 of 60 in a test at the 10 s mark; gossip every 10 s meets that moment often).
/// Letting our side go first, well before, avoids the race for any timeout above 4 s.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(4);

/// The client for other nodes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    allow_private: bool,
}

impl PeerClient {
    /// A client with `timeout` per request.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<PeerClient, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "dockerhub-build-status/",
                env!("CARGO_PKG_VERSION"),
                " (peer)"
            ))
            .connect_timeout(timeout)
            .timeout(timeout)
            .pool_idle_timeout(IDLE_CONNECTION_TIMEOUT)
            // A node answers where it is; a redirect could point anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .no_proxy()
            .build()?;
        Ok(PeerClient {
            http,
            allow_private,
        })
    }

    fn check_literal(&self, url: &PeerUrl) -> Result<(), PeerError> {
        match url.literal_ip() {
            Some(ip) if !self.allow_private && is_forbidden_probe_target(ip) => {
                Err(PeerError::Forbidden)
            }
            _ => Ok(()),
        }
    }

    /// Probes `GET {url}/health`.
    pub async fn probe(&self, url: &PeerUrl) -> ProbeReport {
        let started = Instant::now();
        let mut report = ProbeReport {
            latency: Duration::ZERO,
            ip: None,
            key: None,
            cors: false,
            error: None,
        };
        let result = async {
            self.check_literal(url)?;
            let endpoint = url
                .endpoint("health")
                .map_err(|e| PeerError::BadAnswer(e.to_string()))?;
            let response = self.http.get(endpoint).send().await.map_err(classify)?;
            report.ip = response.remote_addr().map(|a| a.ip());
            report.cors = response
                .headers()
                .get(ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_some_and(|v| v.as_bytes() == b"*");
            if !response.status().is_success() {
                return Err(PeerError::Status(response.status().as_u16()));
            }
            let body = read_limited(response, MAX_HEALTH_BYTES).await?;
            let health: HealthAnswer = serde_json::from_slice(&body)
                .map_err(|_| PeerError::BadAnswer("not a health object".into()))?;
            report.key = health.key;
            Ok(())
        }
        .await;
        report.latency = started.elapsed();
        report.error = result.err();
        report
    }

    /// Sends one gossip message and returns the answer's bytes (at most `max_bytes`).
    pub async fn gossip(
        &self,
        url: &PeerUrl,
        body: Vec<u8>,
        max_bytes: usize,
    ) -> Result<Vec<u8>, PeerError> {
        self.check_literal(url)?;
        let endpoint = url
            .endpoint("gossip")
            .map_err(|e| PeerError::BadAnswer(e.to_string()))?;
        let response = self
            .http
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        if !response.status().is_success() {
            return Err(PeerError::Status(response.status().as_u16()));
        }
        read_limited(response, max_bytes).await
    }
}

fn classify(err: reqwest::Error) -> PeerError {
    if err.is_timeout() {
        PeerError::Timeout
    } else if is_forbidden_error(&err) {
        PeerError::Forbidden
    } else {
        let mut reason: &dyn std::error::Error = &err;
        while let Some(source) = reason.source() {
            reason = source;
        }
        PeerError::Unreachable(reason.to_string())
    }
}

/// Whether the resolver refused every address (the error is buried in the source chain).
fn is_forbidden_error(err: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        if e.to_string().contains(FORBIDDEN_MESSAGE) {
            return true;
        }
        source = e.source();
    }
    false
}

async fn read_limited(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, PeerError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(PeerError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > max {
            return Err(PeerError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

const FORBIDDEN_MESSAGE: &str = "resolves only to private or reserved addresses";

/// Resolves names with the system resolver and keeps only addresses a node may contact.
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| allow_private || !is_forbidden_probe_target(addr.ip()))
                .collect();
            if allowed.is_empty() {
                let err =
                    std::io::Error::new(std::io::ErrorKind::PermissionDenied, FORBIDDEN_MESSAGE);
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::*;

    /// A node's `/health` that counts the connections it accepts.
    async fn counting_health() -> (PeerUrl, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = PeerUrl::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let service = service_fn(|_request| async {
                    let body = http_body_util::Full::new(bytes::Bytes::from_static(
                        br#"{"status":"ok","key":"k"}"#,
                    ));
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn idle_connections_are_let_go_before_a_node_would_close_them() {
        let (url, accepted) = counting_health().await;
        let client = PeerClient::new(Duration::from_secs(2), true).unwrap();
        assert!(client.probe(&url).await.error.is_none());
        assert!(client.probe(&url).await.error.is_none());
        // Reused while fresh…
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // …but not after idling for most of a node's default 10 s header timeout.
        tokio::time::sleep(IDLE_CONNECTION_TIMEOUT + Duration::from_millis(500)).await;
        assert!(client.probe(&url).await.error.is_none());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }
}
