//! The network routes: `/health` (what other nodes probe), `/servers` (the healthy nodes)
//! and `POST /gossip` (the server side of an exchange).

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::http::error::{BodyError, Busy, Internal, error_response};
use crate::http::response::{Body, json, typed};
use crate::node::Node;

/// The longest a peer may take to send a gossip body.
const GOSSIP_BODY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct HealthAnswer<'a> {
    status: &'static str,
    url: &'a str,
    key: &'a str,
    version: &'static str,
    uptime_seconds: u64,
    hub: HubAnswer,
}

/// Docker Hub as this node finds it.
#[derive(Serialize)]
struct HubAnswer {
    state: &'static str,
    for_seconds: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_in_seconds: Option<u64>,
}

/// `GET /health`: the node's identity, what other nodes probe, and whether Docker Hub
/// answers it. Always 200 with the key: a node whose Docker Hub is down still serves its
/// cache and other nodes' fills, so the probes that decide listing must keep passing
/// (docs/DESIGN.md section 2); `status` says `degraded` to the operator and their monitor.
pub(super) fn health(node: &Node) -> Response<Body> {
    let hub = node.hub_health().view(crate::tools::clock::now());
    let body = HealthAnswer {
        status: if hub.degraded() { "degraded" } else { "ok" },
        url: node.canonical_url(),
        key: node.driver().key(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: node.started().elapsed().as_secs(),
        hub: HubAnswer {
            state: hub.state.as_str(),
            for_seconds: hub.lasted.as_secs(),
            error: hub.error,
            retry_in_seconds: hub.retry_in.map(|wait| wait.as_secs()),
        },
    };
    let mut response = json(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /servers[?all=true]`: the healthy nodes, from this node's own probes.
pub(super) fn servers(node: &Node, all: bool) -> Response<Body> {
    let body =
        node.driver()
            .servers_json(node.canonical_url(), all, all.then(|| node.fills().view()));
    // Short: the list is live, but a browser may reuse it for a few seconds.
    typed(body, "application/json", "public, max-age=5")
}

/// `POST /gossip`: the server side of an exchange. The body is capped in size and time
/// before the core sees it.
pub(super) async fn gossip<B>(node: &Node, body: B, peer: IpAddr) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = match read_body(body, crate::federation::MAX_GOSSIP_BODY_BYTES, "gossip").await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let Some(slot) = node.driver().try_gossip_slot() else {
        return error_response(&Busy("busy; gossip again later"));
    };
    // Off the async workers: checking a message's signatures takes milliseconds of CPU, and
    // a flood of them must not hold up the badges served on the same threads.
    let driver = std::sync::Arc::clone(node.driver());
    let handled = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        driver.handle_gossip(&bytes, peer)
    })
    .await;
    let mut response = match handled {
        Ok(Ok(body)) => return typed(body, "application/json", "no-store"),
        Ok(Err(refusal)) => error_response(&refusal),
        Err(err) => {
            return error_response(&Internal {
                what: "gossip handling failed",
                error: err.to_string(),
            });
        }
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Reads a request body of at most `max` bytes within [`GOSSIP_BODY_TIMEOUT`], or says
/// what is wrong with it (`what` names the body in the error).
pub(super) async fn read_body<B>(
    body: B,
    max: usize,
    what: &'static str,
) -> Result<bytes::Bytes, Response<Body>>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A declared length over the cap is refused before reading: `Limited` only counts the
    // bytes that arrive, so it would wait for the sender (up to the body timeout) and then
    // answer 408 instead of saying what is wrong.
    if hyper::body::Body::size_hint(&body).lower() > max as u64 {
        return Err(error_response(&BodyError::TooLarge(what)));
    }
    let limited = http_body_util::Limited::new(body, max);
    let refused = match tokio::time::timeout(GOSSIP_BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => return Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => BodyError::TooLarge(what),
        Ok(Err(_)) => BodyError::Unreadable(what),
        Err(_) => BodyError::TooSlow(what),
    };
    Err(error_response(&refused))
}
