//! The handlers, one module per route family, and the path every request takes through
//! them: the response memo first, then the route's handler, then the metrics and the log.
//!
//! - `status`: `/build`, `/status.svg`, `/shields/…`.
//! - `docker`: `/docker/…`, shields.io's Docker badges, with `formats` for their text.
//! - `network`: `/health`, `/servers`, `POST /gossip`.
//! - `fill`: `POST /fill`, other nodes filling their caches from this one's.
//! - here: the static files, `/metrics`, `/source` and the front page.

mod docker;
mod fill;
mod formats;
mod network;
mod status;
mod version;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response};

use super::error::{NoSuchRoute, error_response};
use super::memo::ResponseMemo;
use super::response::{
    Body, Cacheable, add_common_headers, html, method_not_allowed, preflight, static_file, typed,
};
use super::router::{self, Route};
use super::{App, pages, source};
use crate::cache::Lookup;
use crate::node::Node;
use crate::tools::clock::{self, Instant};

/// How long a badge waits for a fetch when nothing servable is cached, before it answers
/// with a short-lived badge that says so (the fetch goes on, for the next request).
/// GitHub's image proxy gives up on an image after about 4 s and then keeps showing it
/// broken; the proxy's own connection, TLS handshake and transfer to a node across an ocean
/// take up to a second of that. 2.5 s leaves that second and some slack, and is still past
/// a fill's hedge (1.5 s) plus a cold answer from the second node asked, so a slow owner
/// does not cost the badge. `/build` has no deadline (docs/DESIGN.md §2).
pub const BADGE_DEADLINE: Duration = Duration::from_millis(2500);

/// The lifetime of a badge that answered before its fetch ended: long enough not to be
/// asked again at once, short enough that a reload finds the answer (a fill gives up after
/// 4 s, a hub request after `--hub-timeout`, 10 s by default).
pub const PENDING_MAX_AGE: Duration = Duration::from_secs(5);

/// The shipped browser pair, served by every node.
const STATUS_JS: &str = include_str!("../../../status.js");

const STATUS_SVG: &str = include_str!("../../../status.svg");

/// Answers one request. Never fails: every problem becomes a response.
pub async fn handle<B>(app: &App, request: Request<B>, peer: IpAddr) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = clock::now();
    match handle_remembered(app, &request, started) {
        Some(response) => response,
        None => handle_routed(app, request, peer, started).await,
    }
}

/// Answers `request` from the response memo, if it holds a valid answer for its target,
/// without awaiting anything: the server calls this before it lets the request go, so a
/// remembered answer costs no task state at all. `started` is when the request came in, on
/// the cache's clock (tokio's, which tests may pause), as the memo's deadlines are.
pub fn handle_remembered<B>(
    app: &App,
    request: &Request<B>,
    started: Instant,
) -> Option<Response<Body>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    let target = request.uri().path_and_query()?.as_str();
    let (route, response) = app.memo().with(target, started, |answer| {
        (answer.route, answer.respond(request.headers()))
    })?;
    // The cache was not asked, but it would have answered from a fresh entry.
    app.node().metrics().cache_lookup("hit");
    finish(app.node(), request.method(), route, &response, started);
    Some(response)
}

/// Answers `request` through its route's handler: everything the memo does not hold. The
/// future is large (every handler's state); a caller that keeps it in a task boxes it.
pub async fn handle_routed<B>(
    app: &App,
    request: Request<B>,
    peer: IpAddr,
    started: Instant,
) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = request.method().clone();
    // Not boxed here: the server boxes this whole future, the one allocation it needs.
    let (route, mut response) = dispatch(app, request, peer).await;
    add_common_headers(response.headers_mut());
    finish(app.node(), &method, route, &response, started);
    response
}

/// Counts an answered request and writes its log line, if `--access-log` wants one.
fn finish(
    node: &Node,
    method: &Method,
    route: &'static str,
    response: &Response<Body>,
    started: Instant,
) {
    let took = started.elapsed();
    let status = response.status();
    node.metrics().http_request(route, status, took);
    if !node.config().access_log.wants(status.as_u16(), took) {
        return;
    }
    // The message and the method as plain strings: recorded as they are, where a message
    // literal or `%method` would go through `core::fmt` on every line.
    tracing::info!(
        message = "request",
        method = method.as_str(),
        route,
        status = status.as_u16(),
        latency_us = took.as_micros() as u64,
    );
}

/// The memo of an [`App`].
type Memo = ResponseMemo<Arc<Cacheable>>;

/// Keeps `answer` for `target` while `lookup`, the cache's answer it was built from, stays
/// the same to the second.
fn remember(memo: &Memo, target: Option<&str>, answer: &Arc<Cacheable>, lookup: &Lookup) {
    if let (Some(target), Some(until)) = (target, lookup.unchanged_until) {
        memo.insert(target, Arc::clone(answer), until, clock::now());
    }
}

/// Finds the route of a request and runs its handler; the route name labels the metrics.
async fn dispatch<B>(app: &App, request: Request<B>, peer: IpAddr) -> (&'static str, Response<Body>)
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let node = app.node();
    let (parts, body) = request.into_parts();
    let request = &parts;
    // Every per-client limit keys on this address, never on the TCP peer alone.
    let client = app.trusted_proxies().client_ip(peer, &request.headers);
    let path = request.uri.path();
    let parsed = router::parse(path, request.uri.query().unwrap_or(""));
    let method = &request.method;
    let route = parsed.route;
    let name = route.name();
    if method == Method::OPTIONS {
        return (name, preflight());
    }
    let allowed = match route {
        Route::Gossip | Route::Fill => &[Method::POST][..],
        _ => &[Method::GET, Method::HEAD][..],
    };
    if !allowed.contains(method) {
        return (name, method_not_allowed(allowed));
    }
    let conditional = &request.headers;
    // Only `GET` and `HEAD` get this far on the memoized routes, and both answer alike.
    let target = request.uri.path_and_query().map(|t| t.as_str());
    let response = match route {
        Route::Build(..) => status::build(app, &parsed, conditional, target, client).await,
        Route::StatusSvg => status::status_svg(app, &parsed, conditional, target, client).await,
        Route::Shields(..) => status::shields(node, &parsed, client).await,
        Route::Docker(..) => docker::docker(app, &parsed, conditional, target, client).await,
        Route::Health => network::health(node),
        Route::Servers => network::servers(node, parsed.all()),
        Route::Metrics => metrics(node),
        Route::StatusJs => static_file(STATUS_JS, "application/javascript; charset=utf-8"),
        Route::StaticSvg => node_status_svg(node),
        Route::Source => source_archive(),
        Route::Index => html(pages::index(node)),
        Route::Gossip => network::gossip(node, body, client).await,
        Route::Fill => fill::fill(node, body, client).await,
        Route::NotFound => error_response(&NoSuchRoute(path)),
    };
    (name, response)
}

/// `GET /metrics`: Prometheus text format.
fn metrics(node: &Node) -> Response<Body> {
    let mut response = Response::new(Body::from(node.metrics().encode()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// status.svg as a node serves it: the root element names this node (`data-bootstrap`), so
/// status.js asks it for `/servers` rather than the built-in list. The file in the
/// repository, copied to any other host, has no such attribute and keeps the list.
fn node_status_svg(node: &Node) -> Response<Body> {
    let root = format!(
        "<svg data-bootstrap=\"{}\" ",
        pages::escape_html(node.canonical_url())
    );
    typed(
        STATUS_SVG.replacen("<svg ", &root, 1),
        "image/svg+xml; charset=utf-8",
        "max-age=3600",
    )
}

/// `GET /source`: the source this binary was built from, packed at build time.
fn source_archive() -> Response<Body> {
    let mut response = Response::new(Body::from(Bytes::from_static(source::ARCHIVE)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(concat!(
            "attachment; filename=\"dockerhub-build-status-",
            env!("CARGO_PKG_VERSION"),
            ".tar.gz\""
        )),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400"),
    );
    response
}
