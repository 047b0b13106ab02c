//! The HTTP transport: the client a node talks to other nodes with (health probes and
//! gossip exchanges) and the federation's [`Transport`] over it.
//!
//! Every connection goes through `GuardedResolver`, which drops loopback, private,
//! link-local and metadata addresses after DNS resolution (unless `--allow-private-peers`),
//! so a hostile descriptor cannot make this node send requests into its own network, not
//! even by a name that resolves to such an address. URLs with a literal IP are checked the
//! same way before any request, since no resolver sees them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::ACCESS_CONTROL_ALLOW_ORIGIN;
use serde::Deserialize;

use super::{Transport, TransportError};
use crate::federation::address::is_forbidden_probe_target;
use crate::federation::message::{GossipRequest, GossipResponse, MAX_GOSSIP_BODY_BYTES};
use crate::federation::{PeerUrl, ProbeOutcome, PublicKey, SignatureChecks, Timestamp};
use crate::metrics::Metrics;
use crate::tools::clock;

/// Largest `/health` answer read.
const MAX_HEALTH_BYTES: usize = 8 * 1024;

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
    pub error: Option<TransportError>,
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

    fn check_literal(&self, url: &PeerUrl) -> Result<(), TransportError> {
        match url.literal_ip() {
            Some(ip) if !self.allow_private && is_forbidden_probe_target(ip) => {
                Err(TransportError::Forbidden)
            }
            _ => Ok(()),
        }
    }

    /// Probes `GET {url}/health`.
    pub async fn probe(&self, url: &PeerUrl) -> ProbeReport {
        let started = clock::now();
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
                .map_err(|e| TransportError::Decode(e.to_string()))?;
            let response = self.http.get(endpoint).send().await.map_err(classify)?;
            report.ip = response.remote_addr().map(|a| a.ip());
            report.cors = response
                .headers()
                .get(ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_some_and(|v| v.as_bytes() == b"*");
            if !response.status().is_success() {
                return Err(TransportError::Refused(format!(
                    "HTTP {}",
                    response.status().as_u16()
                )));
            }
            let body = read_limited(response, MAX_HEALTH_BYTES).await?;
            let health: HealthAnswer = serde_json::from_slice(&body)
                .map_err(|_| TransportError::Decode("not a health object".into()))?;
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
    ) -> Result<Vec<u8>, GossipFailure> {
        self.post(url, "gossip", body, max_bytes, None).await
    }

    /// Sends one fill request (`POST {url}/fill`) and returns the answer's bytes, waiting at
    /// most `timeout` in all.
    pub async fn fill(
        &self,
        url: &PeerUrl,
        body: Vec<u8>,
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, GossipFailure> {
        self.post(url, "fill", body, max_bytes, Some(timeout)).await
    }

    /// One JSON `POST` to another node's `path`.
    async fn post(
        &self,
        url: &PeerUrl,
        path: &str,
        body: Vec<u8>,
        max_bytes: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, GossipFailure> {
        let unsent = |error| GossipFailure { error, sent: false };
        self.check_literal(url).map_err(unsent)?;
        let endpoint = url
            .endpoint(path)
            .map_err(|e| unsent(TransportError::Decode(e.to_string())))?;
        let mut request = self
            .http
            .post(endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|err| GossipFailure {
            // A connection that was never made (refused, unreachable, DNS, a connect
            // timeout) carried no bytes.
            sent: !err.is_connect() && !is_forbidden_error(&err),
            error: classify(err),
        })?;
        let sent = |error| GossipFailure { error, sent: true };
        if !response.status().is_success() {
            return Err(sent(TransportError::Refused(format!(
                "HTTP {}",
                response.status().as_u16()
            ))));
        }
        read_limited(response, max_bytes).await.map_err(sent)
    }
}

/// Why a gossip (or fill) request got no answer, and whether its body went out at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipFailure {
    pub error: TransportError,
    /// A connection took the request (the bytes count as sent).
    pub sent: bool,
}

fn classify(err: reqwest::Error) -> TransportError {
    if err.is_timeout() {
        TransportError::Timeout
    } else if is_forbidden_error(&err) {
        TransportError::Forbidden
    } else {
        TransportError::Unreachable(root_cause(&err))
    }
}

/// The innermost error's text ("Connection refused (os error 111)"), which says more to an
/// operator than reqwest's "error sending request".
fn root_cause(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
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

async fn read_limited(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, TransportError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(TransportError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > max {
            return Err(TransportError::TooLarge);
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

/// The HTTP implementation of the federation's transport.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    pub client: PeerClient,
    pub metrics: Metrics,
}

impl Transport for HttpTransport {
    async fn gossip(
        &self,
        to: &PeerUrl,
        request: GossipRequest,
    ) -> Result<GossipResponse, TransportError> {
        let body =
            serde_json::to_vec(&request).map_err(|e| TransportError::Decode(e.to_string()))?;
        let sent = body.len();
        let result = self.client.gossip(to, body, MAX_GOSSIP_BODY_BYTES).await;
        let answer = match result {
            Ok(bytes) => bytes,
            Err(failure) => {
                let sent = if failure.sent { sent } else { 0 };
                self.metrics.gossip_exchange("failed", sent, 0);
                return Err(failure.error);
            }
        };
        self.metrics.gossip_exchange("ok", sent, answer.len());
        serde_json::from_slice(&answer).map_err(|e| TransportError::Decode(e.to_string()))
    }

    async fn check_signatures(&self, checks: SignatureChecks, now: Timestamp) {
        // Off the async workers, like the server side of gossip: up to 128 checks.
        if let Err(err) = tokio::task::spawn_blocking(move || checks.run(now)).await {
            tracing::warn!(error = %err, "signature checks failed to run");
        }
    }

    async fn probe(&self, url: &PeerUrl) -> ProbeOutcome {
        let report = self.client.probe(url).await;
        match report.error {
            None => ProbeOutcome {
                answered: true,
                latency: report.latency,
                key_seen: report
                    .key
                    .as_deref()
                    .and_then(|k| PublicKey::from_base64(k).ok()),
                cors: report.cors,
                resolved_ip: report.ip,
                forbidden: false,
            },
            Some(TransportError::Forbidden) => ProbeOutcome::forbidden(report.ip),
            Some(_) => ProbeOutcome::unreachable(report.ip),
        }
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

    fn sent_bytes(metrics: &Metrics) -> u64 {
        let text = String::from_utf8(metrics.encode()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("dbs_gossip_bytes_total{direction=\"sent\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    fn transport() -> (HttpTransport, Metrics) {
        let metrics = Metrics::new().unwrap();
        let transport = HttpTransport {
            client: PeerClient::new(Duration::from_secs(2), true).unwrap(),
            metrics: metrics.clone(),
        };
        (transport, metrics)
    }

    fn digest() -> GossipRequest {
        GossipRequest::Digest {
            v: crate::federation::message::PROTOCOL_VERSION,
            buckets: crate::federation::digest::SetDigest::default(),
        }
    }

    #[tokio::test]
    async fn bytes_count_as_sent_only_when_a_connection_took_them() {
        // A port nobody listens on: refused, nothing sent.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = PeerUrl::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap();
        drop(closed);
        let (transport, metrics) = transport();
        for _ in 0..3 {
            let err = transport.gossip(&url, digest()).await.unwrap_err();
            assert!(matches!(err, TransportError::Unreachable(_)), "{err:?}");
        }
        assert_eq!(sent_bytes(&metrics), 0);
        // A node that takes the request and refuses it: the bytes did go out.
        let (url, _) = counting_health().await;
        let err = transport.gossip(&url, digest()).await.unwrap_err();
        assert!(matches!(err, TransportError::Decode(_)), "{err:?}");
        assert!(sent_bytes(&metrics) > 100);
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
