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
}

/// `GET /health`: the node's identity, what other nodes probe.
pub(super) fn health(node: &Node) -> Response<Body> {
    let body = HealthAnswer {
        status: "ok",
        url: node.canonical_url(),
        key: node.driver().key(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: node.started().elapsed().as_secs(),
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
