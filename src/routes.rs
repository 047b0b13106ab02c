//! The HTTP API of design section 2: one handler per route, and the one function that turns
//! an error into a status code and a body.
//!
//! The old API (`/build`, `/status.svg`, `/source`) keeps its shapes word for word; badges
//! always answer 200 with an image, also for errors, so a README never shows a broken one.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Serialize;

use crate::badge::{self, Badge, Color, Logo, Style};
use crate::cache::Lookup;
use crate::hub::{HubError, HubStatus};
use crate::names::{ImageRef, NameError};
use crate::node::Node;
use crate::{pages, source};

/// Every response body is a complete buffer: answers are small and built in one go.
pub type Body = Full<Bytes>;

/// Defaults of the old API.
const DEFAULT_ORGANIZATION: &str = "library";
const DEFAULT_TAG: &str = "latest";

/// Cache lifetime of error answers: short, so a fixed problem shows soon.
const ERROR_MAX_AGE: Duration = Duration::from_secs(30);
/// The longest a peer may take to send a gossip body.
const GOSSIP_BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// shields.io ignores `cacheSeconds` below its own default of 300.
const SHIELDS_MIN_CACHE_SECONDS: u64 = 300;

/// The shipped browser pair, served by every node.
const STATUS_JS: &str = include_str!("../status.js");
const STATUS_SVG: &str = include_str!("../status.svg");

/// Answers one request. Never fails: every problem becomes a response.
pub async fn handle<B>(node: &Node, request: Request<B>, peer: IpAddr) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = tokio::time::Instant::now();
    match handle_remembered(node, &request, started) {
        Some(response) => response,
        None => handle_routed(node, request, peer, started).await,
    }
}

/// Answers `request` from the response memo, if it holds a valid answer for its target,
/// without awaiting anything: the server calls this before it lets the request go, so a
/// remembered answer costs no task state at all. `started` is when the request came in, on
/// the cache's clock (tokio's, which tests may pause), as the memo's deadlines are.
pub fn handle_remembered<B>(
    node: &Node,
    request: &Request<B>,
    started: tokio::time::Instant,
) -> Option<Response<Body>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    let target = request.uri().path_and_query()?.as_str();
    let (route, response) = node.memo().with(target, started, |answer| {
        (answer.route, answer.respond(request.headers()))
    })?;
    // The cache was not asked, but it would have answered from a fresh entry.
    node.metrics().cache_lookup("hit");
    finish(node, request.method(), route, &response, started);
    Some(response)
}

/// Answers `request` through its route's handler: everything the memo does not hold. The
/// future is large (every handler's state); a caller that keeps it in a task boxes it.
pub async fn handle_routed<B>(
    node: &Node,
    request: Request<B>,
    peer: IpAddr,
    started: tokio::time::Instant,
) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = request.method().clone();
    // Not boxed here: the server boxes this whole future, the one allocation it needs.
    let (route, mut response) = dispatch(node, request, peer).await;
    add_common_headers(response.headers_mut());
    finish(node, &method, route, &response, started);
    response
}

/// Counts an answered request and writes its log line.
fn finish(
    node: &Node,
    method: &Method,
    route: &'static str,
    response: &Response<Body>,
    started: tokio::time::Instant,
) {
    let took = started.elapsed();
    node.metrics().http_request(route, response.status(), took);
    // The message and the method as plain strings: recorded as they are, where a message
    // literal or `%method` would go through `core::fmt` on every request.
    tracing::info!(
        message = "request",
        method = method.as_str(),
        route,
        status = response.status().as_u16(),
        latency_us = took.as_micros() as u64,
    );
}

/// The headers of every answer: any page may read it (the API is public), and browsers take
/// its content type as given.
fn add_common_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Keeps `answer` for `target` while `lookup`, the cache's answer it was built from, stays
/// the same to the second.
fn remember(node: &Node, target: Option<&str>, answer: &Arc<Cacheable>, lookup: &Lookup) {
    if let (Some(target), Some(until)) = (target, lookup.unchanged_until) {
        node.memo().insert(
            target,
            Arc::clone(answer),
            until,
            tokio::time::Instant::now(),
        );
    }
}

/// Finds the route of a request and runs its handler; the route name labels the metrics.
async fn dispatch<B>(
    node: &Node,
    request: Request<B>,
    peer: IpAddr,
) -> (&'static str, Response<Body>)
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let request = &parts;
    let path = request.uri.path();
    let query = Query::parse(request.uri.query().unwrap_or(""));
    let method = &request.method;
    let route = Route::of(path);
    let name = route.name();
    if method == Method::OPTIONS {
        return (name, preflight());
    }
    let allowed = match route {
        Route::Gossip => &[Method::POST][..],
        _ => &[Method::GET, Method::HEAD][..],
    };
    if !allowed.contains(method) {
        return (name, method_not_allowed(allowed));
    }
    let conditional = &request.headers;
    // Only `GET` and `HEAD` get this far on the memoized routes, and both answer alike.
    let target = request.uri.path_and_query().map(|t| t.as_str());
    let response = match route {
        Route::Build(org, repo) => build(node, org, repo, &query, conditional, target).await,
        Route::StatusSvg => status_svg(node, &query, conditional, target).await,
        Route::Shields(org, repo) => shields(node, org, repo, &query).await,
        Route::Health => health(node),
        Route::Servers => servers(node, request.uri.query().unwrap_or("")),
        Route::Metrics => metrics(node),
        Route::StatusJs => static_file(STATUS_JS, "application/javascript; charset=utf-8"),
        Route::StaticSvg => node_status_svg(node),
        Route::Source => source_archive(),
        Route::Index => html(pages::index(node)),
        Route::Gossip => gossip(node, body, peer).await,
        Route::NotFound => api_error(
            StatusCode::NOT_FOUND,
            &format!("no such route: {}", shorten(path, 100)),
        ),
    };
    (name, response)
}

/// The routes of the API, with the raw path segments they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Build(&'a str, &'a str),
    StatusSvg,
    Shields(&'a str, &'a str),
    Health,
    Servers,
    Gossip,
    Metrics,
    StatusJs,
    StaticSvg,
    Source,
    Index,
    NotFound,
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Route<'a> {
        let two_segments = |rest: &'a str| -> Option<(&'a str, &'a str)> {
            let (org, repo) = rest.split_once('/')?;
            (!repo.contains('/')).then_some((org, repo))
        };
        match path {
            "/" => Route::Index,
            "/status.svg" => Route::StatusSvg,
            "/health" => Route::Health,
            "/servers" => Route::Servers,
            "/gossip" => Route::Gossip,
            "/metrics" => Route::Metrics,
            "/status.js" | "/static/status.js" => Route::StatusJs,
            "/static/status.svg" => Route::StaticSvg,
            "/source" => Route::Source,
            _ => {
                if let Some((org, repo)) = path.strip_prefix("/build/").and_then(two_segments) {
                    Route::Build(org, repo)
                } else if let Some((org, repo)) =
                    path.strip_prefix("/shields/").and_then(two_segments)
                {
                    Route::Shields(org, repo)
                } else {
                    Route::NotFound
                }
            }
        }
    }

    /// The `route` label of the metrics: a fixed set, whatever paths clients send.
    fn name(self) -> &'static str {
        match self {
            Route::Build(..) => "build",
            Route::StatusSvg => "status_svg",
            Route::Shields(..) => "shields",
            Route::Health => "health",
            Route::Servers => "servers",
            Route::Gossip => "gossip",
            Route::Metrics => "metrics",
            Route::StatusJs | Route::StaticSvg => "static",
            Route::Source => "source",
            Route::Index => "index",
            Route::NotFound => "not_found",
        }
    }
}

/// The query parameters the API reads. A repeated parameter takes its last value, as the
/// old server did.
#[derive(Debug, Default)]
struct Query {
    organization: Option<String>,
    repository: Option<String>,
    tag: Option<String>,
    text: Option<String>,
    style: Option<String>,
    logo: Option<String>,
}

impl Query {
    fn parse(query: &str) -> Query {
        let mut parsed = Query::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*key {
                "organization" => &mut parsed.organization,
                "repository" => &mut parsed.repository,
                "tag" => &mut parsed.tag,
                "text" => &mut parsed.text,
                "style" => &mut parsed.style,
                "logo" => &mut parsed.logo,
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        parsed
    }

    fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }
}

/// Decodes one percent-encoded path segment; an encoded slash decodes to a `/`, which no
/// name accepts, so `a%2Fb` is refused like `a/b`.
fn path_segment(raw: &str) -> Result<String, NameError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| NameError::BadName {
            kind: "name",
            shown: "(not UTF-8)".into(),
        })
}

fn image_from_path(org: &str, repo: &str, tag: &str) -> Result<ImageRef, NameError> {
    ImageRef::parse(&path_segment(org)?, &path_segment(repo)?, tag)
}

/// `GET /build/<organization>/<repository>[?tag=]`: the old JSON API.
async fn build(
    node: &Node,
    org: &str,
    repo: &str,
    query: &Query,
    request: &HeaderMap,
    target: Option<&str>,
) -> Response<Body> {
    let image = match image_from_path(org, repo, query.tag()) {
        Ok(image) => image,
        Err(err) => return api_error(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let lookup = node.cache().get(&image).await;
    match &lookup.result {
        Ok(status) => {
            let body = BuildAnswer {
                request: "ok",
                status: status.status,
                source: status.source.as_str(),
                stale: lookup.stale,
                age_seconds: lookup.age.as_secs(),
            };
            let json = serde_json::to_vec(&body).unwrap_or_default();
            let etag = etag_of(&json);
            let answer = Arc::new(Cacheable::new(
                "build",
                Bytes::from(json),
                etag,
                "application/json",
                lookup.fresh_for,
            ));
            remember(node, target, &answer, &lookup);
            answer.respond(request)
        }
        Err(err) => {
            let (code, description) = hub_error(err, &image);
            let mut response = api_error(code, &description);
            retry_after(&mut response, err);
            response
        }
    }
}

#[derive(Serialize)]
struct BuildAnswer {
    request: &'static str,
    status: i64,
    source: &'static str,
    stale: bool,
    age_seconds: u64,
}

#[derive(Serialize)]
struct ErrorAnswer<'a> {
    request: &'static str,
    description: &'a str,
}

/// The one mapping from an upstream error to an HTTP status and a description for clients.
/// The description says what happened without internals (addresses, bodies).
fn hub_error(err: &HubError, image: &ImageRef) -> (StatusCode, String) {
    match err {
        // The old server's words, kept for its clients.
        HubError::NotFound => (
            StatusCode::NOT_FOUND,
            format!("tag {} not found", image.tag),
        ),
        HubError::RepositoryNotFound => (StatusCode::NOT_FOUND, "repository not found".into()),
        HubError::RateLimited { .. } | HubError::Budget { .. } | HubError::Backoff { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{err}; nothing cached for {image}"),
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            format!("{err}; nothing cached for {image}"),
        ),
    }
}

fn retry_after(response: &mut Response<Body>, err: &HubError) {
    if let HubError::RateLimited { retry_in }
    | HubError::Budget { retry_in }
    | HubError::Backoff { retry_in } = err
        // Rounded up: a client that waits the whole seconds it is told must find the budget
        // open again.
        && let Ok(value) = HeaderValue::from_str(
            &(retry_in.as_secs() + u64::from(retry_in.subsec_nanos() > 0))
                .max(1)
                .to_string(),
        )
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
}

/// What a badge says about a lookup: message and colour.
fn badge_message(result: &Result<HubStatus, HubError>) -> (&'static str, Color) {
    match result {
        Ok(HubStatus { status, .. }) if *status < 0 => ("error", Color::Red),
        Ok(HubStatus { status, .. }) if *status < 10 => ("building", Color::Blue),
        Ok(_) => ("ok", Color::BrightGreen),
        Err(HubError::NotFound | HubError::RepositoryNotFound) => ("not found", Color::LightGrey),
        Err(HubError::RateLimited { .. } | HubError::Budget { .. }) => {
            ("rate limited", Color::LightGrey)
        }
        Err(_) => ("unknown", Color::LightGrey),
    }
}

/// The badge's freshness: what the cache says for statuses, a short time for errors.
fn badge_max_age(lookup: &Lookup) -> Duration {
    match &lookup.result {
        Ok(_) | Err(HubError::NotFound | HubError::RepositoryNotFound) => lookup.fresh_for,
        Err(_) => ERROR_MAX_AGE,
    }
}

/// The image a `/status.svg` query names, with the old API's defaults.
fn svg_image(query: &Query) -> Result<ImageRef, NameError> {
    match &query.repository {
        None => Err(NameError::Missing { kind: "repository" }),
        Some(repository) => ImageRef::parse(
            query
                .organization
                .as_deref()
                .unwrap_or(DEFAULT_ORGANIZATION),
            repository,
            query.tag(),
        ),
    }
}

/// What a request's path and query select, read exactly as the handlers read them: the
/// way in for the fuzzers (`fuzz/`), which check that no input panics and that only valid
/// names come out.
#[derive(Debug)]
pub struct RequestTarget {
    /// The route's metrics label (`not_found` for unknown paths).
    pub route: &'static str,
    /// For `/build`, `/shields` and `/status.svg`: the image asked for, or why it is refused.
    pub image: Option<Result<ImageRef, NameError>>,
    /// For the badges: the label text as given (`text=`), before rendering.
    pub label: Option<String>,
    /// For `/status.svg`: the style asked for, if it is a known one.
    pub style: Option<Style>,
    /// For `/status.svg`: the logo asked for, if it is a known one.
    pub logo: Option<Logo>,
}

/// Parses a request target (`path` without the query, `query` without the `?`).
pub fn parse_request_target(path: &str, query: &str) -> RequestTarget {
    let route = Route::of(path);
    let parsed = Query::parse(query);
    let image = match route {
        Route::Build(org, repo) | Route::Shields(org, repo) => {
            Some(image_from_path(org, repo, parsed.tag()))
        }
        Route::StatusSvg => Some(svg_image(&parsed)),
        _ => None,
    };
    let badge = matches!(route, Route::StatusSvg | Route::Shields(..));
    RequestTarget {
        route: route.name(),
        image,
        label: if badge { parsed.text.clone() } else { None },
        style: parsed.style.as_deref().and_then(Style::parse),
        logo: parsed.logo.as_deref().and_then(Logo::parse),
    }
}

/// `GET /status.svg?organization=&repository=&tag=&text=[&style=][&logo=]`: the badge.
async fn status_svg(
    node: &Node,
    query: &Query,
    request: &HeaderMap,
    target: Option<&str>,
) -> Response<Body> {
    let label = query.text.as_deref().unwrap_or(badge::DEFAULT_LABEL);
    let style = query
        .style
        .as_deref()
        .and_then(Style::parse)
        .unwrap_or_default();
    let logo = query.logo.as_deref().and_then(Logo::parse);
    let image = svg_image(query);
    let (message, color, max_age, lookup) = match &image {
        Err(_) => ("invalid", Color::LightGrey, ERROR_MAX_AGE, None),
        Ok(image) => {
            let lookup = node.cache().get(image).await;
            let (message, color) = badge_message(&lookup.result);
            (message, color, badge_max_age(&lookup), Some(lookup))
        }
    };
    let badge = rendered_badge(label, message, color, style, logo);
    let answer = Arc::new(Cacheable::new(
        "status_svg",
        badge.svg,
        badge.etag,
        "image/svg+xml; charset=utf-8",
        max_age,
    ));
    if let Some(lookup) = &lookup {
        remember(node, target, &answer, lookup);
    }
    let mut response = answer.respond(request);
    if let Err(err) = &image {
        // The reason, for whoever looks at the response rather than the picture.
        if let Ok(value) = HeaderValue::from_str(&err.to_string()) {
            response.headers_mut().insert("x-badge-error", value);
        }
    }
    response
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShieldsEndpoint<'a> {
    schema_version: u8,
    label: &'a str,
    message: &'a str,
    color: &'a str,
    cache_seconds: u64,
}

/// `GET /shields/<organization>/<repository>[?tag=]`: shields.io endpoint-badge JSON.
async fn shields(node: &Node, org: &str, repo: &str, query: &Query) -> Response<Body> {
    let label = query.text.as_deref().unwrap_or(badge::DEFAULT_LABEL);
    let label: String = label
        .chars()
        .filter(|c| !c.is_control())
        .take(badge::MAX_TEXT_CHARS)
        .collect();
    let (message, color, max_age) = match image_from_path(org, repo, query.tag()) {
        Err(_) => ("invalid", Color::LightGrey, ERROR_MAX_AGE),
        Ok(image) => {
            let lookup = node.cache().get(&image).await;
            let (message, color) = badge_message(&lookup.result);
            (message, color, badge_max_age(&lookup))
        }
    };
    let body = ShieldsEndpoint {
        schema_version: 1,
        label: &label,
        message,
        color: color.name(),
        cache_seconds: max_age.as_secs().max(SHIELDS_MIN_CACHE_SECONDS),
    };
    let mut response = json(StatusCode::OK, &body);
    set_cache_control(&mut response, max_age);
    response
}

#[derive(Serialize)]
struct HealthAnswer<'a> {
    status: &'static str,
    url: &'a str,
    key: &'a str,
    version: &'static str,
    uptime_seconds: u64,
}

/// `GET /health`: the node's identity, what other nodes probe.
fn health(node: &Node) -> Response<Body> {
    let body = HealthAnswer {
        status: "ok",
        url: node.canonical_url(),
        key: node.network().key(),
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
fn servers(node: &Node, query: &str) -> Response<Body> {
    let all = form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "all" && (v == "true" || v == "1"));
    let body = node.network().servers_json(node.canonical_url(), all);
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Short: the list is live, but a browser may reuse it for a few seconds.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=5"),
    );
    response
}

/// `POST /gossip`: the server side of an exchange. The body is capped in size and time
/// before the core sees it.
async fn gossip<B>(node: &Node, body: B, peer: IpAddr) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // A declared length over the cap is refused before reading: `Limited` only counts the
    // bytes that arrive, so it would wait for the sender (up to the body timeout) and then
    // answer 408 instead of saying what is wrong.
    if hyper::body::Body::size_hint(&body).lower() > crate::federation::MAX_GOSSIP_BODY_BYTES as u64
    {
        return api_error(StatusCode::PAYLOAD_TOO_LARGE, "gossip body too large");
    }
    let limited = http_body_util::Limited::new(body, crate::federation::MAX_GOSSIP_BODY_BYTES);
    let bytes = match tokio::time::timeout(GOSSIP_BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => {
            return api_error(StatusCode::PAYLOAD_TOO_LARGE, "gossip body too large");
        }
        Ok(Err(_)) => return api_error(StatusCode::BAD_REQUEST, "could not read the gossip body"),
        Err(_) => return api_error(StatusCode::REQUEST_TIMEOUT, "gossip body took too long"),
    };
    let Some(slot) = node.network().try_gossip_slot() else {
        let mut response = api_error(StatusCode::SERVICE_UNAVAILABLE, "busy; gossip again later");
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    // Off the async workers: checking a message's signatures takes milliseconds of CPU, and
    // a flood of them must not hold up the badges served on the same threads.
    let network = std::sync::Arc::clone(node.network());
    let handled = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        network.handle_gossip(&bytes, peer)
    })
    .await;
    let Ok((status, body)) = handled else {
        return api_error(StatusCode::INTERNAL_SERVER_ERROR, "gossip handling failed");
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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

fn static_file(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    response
}

/// status.svg as a node serves it: the root element names this node (`data-bootstrap`), so
/// status.js asks it for `/servers` rather than the built-in list. The file in the
/// repository, copied to any other host, has no such attribute and keeps the list.
fn node_status_svg(node: &Node) -> Response<Body> {
    let root = format!(
        "<svg data-bootstrap=\"{}\" ",
        crate::pages::escape_html(node.canonical_url())
    );
    let mut response = Response::new(Body::from(STATUS_SVG.replacen("<svg ", &root, 1)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    response
}

fn html(body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A JSON answer.
fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    // Serialising these plain structs cannot fail; an empty body would still be an answer.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The old API's error shape: `{"request":"error","description":…}`.
pub fn api_error(status: StatusCode, description: &str) -> Response<Body> {
    let mut response = json(
        status,
        &ErrorAnswer {
            request: "error",
            description,
        },
    );
    set_cache_control(&mut response, ERROR_MAX_AGE);
    response
}

fn set_cache_control(response: &mut Response<Body>, max_age: Duration) {
    if let Some(value) = cache_control(max_age) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
}

fn cache_control(max_age: Duration) -> Option<HeaderValue> {
    let seconds = max_age.as_secs();
    match CACHE_CONTROL.get(usize::try_from(seconds).unwrap_or(usize::MAX)) {
        Some(value) => Some(
            value
                .get_or_init(|| {
                    let text = format!("public, max-age={seconds}");
                    HeaderValue::from_static(Box::leak(text.into_boxed_str()))
                })
                .clone(),
        ),
        None => HeaderValue::from_str(&format!("public, max-age={seconds}")).ok(),
    }
}

/// `Cache-Control` values for every max-age up to an hour, each made once and kept for the
/// life of the process (at most 3,601 strings of about 24 bytes). A static value is copied
/// without touching a reference count; the memo's answers are copied by every worker for
/// every request, and a shared count would be a write all of them contend for.
static CACHE_CONTROL: [OnceLock<HeaderValue>; 3601] = [const { OnceLock::new() }; 3601];

/// A cacheable `200` answer before the request's own conditions apply: `Cache-Control` from
/// the remaining freshness and an `ETag` of the body. What [`Node::memo`] keeps, with both
/// header sets it may answer with made up front, since copying a ready map costs less than
/// filling one.
#[derive(Debug, Clone)]
pub struct Cacheable {
    /// The route's metrics label.
    route: &'static str,
    body: Bytes,
    etag: Option<HeaderValue>,
    /// The headers of the `200` answer, and those of a `304 Not Modified`.
    headers: HeaderMap,
    not_modified: HeaderMap,
}

/// The `Content-Security-Policy` of badges.
const BADGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

impl Cacheable {
    fn new(
        route: &'static str,
        body: Bytes,
        etag: Option<HeaderValue>,
        content_type: &'static str,
        max_age: Duration,
    ) -> Cacheable {
        let mut not_modified = HeaderMap::with_capacity(8);
        add_common_headers(&mut not_modified);
        if let Some(value) = cache_control(max_age) {
            not_modified.insert(header::CACHE_CONTROL, value);
        }
        if let Some(etag) = &etag {
            not_modified.insert(header::ETAG, etag.clone());
        }
        // An SVG opened on its own is a document: it may draw, never run anything.
        if content_type.starts_with("image/svg+xml") {
            not_modified.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(BADGE_CSP),
            );
        }
        let mut headers = not_modified.clone();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Cacheable {
            route,
            body,
            etag,
            headers,
            not_modified,
        }
    }

    /// The response to a request with these headers: `304 Not Modified` when the client
    /// already holds this body (`If-None-Match`), the answer otherwise.
    fn respond(&self, request: &HeaderMap) -> Response<Body> {
        let not_modified = self
            .etag
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|etag| {
                request
                    .get_all(header::IF_NONE_MATCH)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(|tag| tag.trim().trim_start_matches("W/"))
                    .any(|tag| tag == etag || tag == "*")
            });
        if not_modified {
            let mut response = Response::new(Body::default());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            *response.headers_mut() = self.not_modified.clone();
            response
        } else {
            let mut response = Response::new(Body::new(self.body.clone()));
            *response.headers_mut() = self.headers.clone();
            response
        }
    }
}

/// The `ETag` of `body`: its hash, quoted.
fn etag_of(body: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{:016x}\"", etag_hash(body))).ok()
}

/// Rendered badges and their ETags, by everything that decides them. Almost every request
/// asks for one of a few badges (the default label, a handful of messages), and rendering
/// and hashing one was about half of a cached badge's handler time (docs/PERFORMANCE.md).
/// Labels are client text, so the memo stops taking new badges at [`BADGE_MEMO_CAPACITY`];
/// past that a badge is rendered per request, as before. One memo serves every node in the
/// process: it only remembers what a pure function returned.
static BADGE_MEMO: LazyLock<DashMap<BadgeKey, RenderedBadge>> = LazyLock::new(DashMap::new);
/// About 1.3 KB each: at most a megabyte or two.
const BADGE_MEMO_CAPACITY: usize = 1024;

#[derive(Debug, PartialEq, Eq, Hash)]
struct BadgeKey {
    label: Box<str>,
    message: &'static str,
    color: Color,
    style: Style,
    logo: Option<Logo>,
}

#[derive(Debug, Clone)]
struct RenderedBadge {
    svg: Bytes,
    etag: Option<HeaderValue>,
}

/// The badge's SVG and `ETag`, from the memo or rendered now.
fn rendered_badge(
    label: &str,
    message: &'static str,
    color: Color,
    style: Style,
    logo: Option<Logo>,
) -> RenderedBadge {
    let key = BadgeKey {
        label: label.into(),
        message,
        color,
        style,
        logo,
    };
    if let Some(rendered) = BADGE_MEMO.get(&key) {
        return rendered.clone();
    }
    let svg = Bytes::from(badge::render(&Badge {
        label,
        message,
        color,
        style,
        logo,
    }));
    let rendered = RenderedBadge {
        etag: etag_of(&svg),
        svg,
    };
    if BADGE_MEMO.len() < BADGE_MEMO_CAPACITY {
        BADGE_MEMO.insert(key, rendered.clone());
    }
    rendered
}

/// A fast, stable 64-bit hash for ETags (not for security: an ETag only has to change when
/// the body does, and be the same on every node and version, so clients keep their 304s when
/// status.js sends them to another node).
///
/// It reads eight bytes per step in four independent lanes: byte-at-a-time FNV-1a took about
/// 1.8 µs for a 1.2 KB badge, more than rendering it; this takes about 0.1 µs
/// (docs/PERFORMANCE.md). Each step is a bijection of the lane for a fixed word and of the
/// word for a fixed lane, so bodies of one length that differ in a single word never collide.
/// The rotation between two multiplications keeps a flipped top bit from passing through as a
/// fixed pattern that a second flip could cancel. The length goes in first, so the
/// zero-padded tail cannot make "a" and "a\0" alike; murmur3's finaliser mixes the result.
fn etag_hash(bytes: &[u8]) -> u64 {
    fn step(lane: u64, word: &[u8]) -> u64 {
        let mut padded = [0u8; 8];
        padded[..word.len()].copy_from_slice(word);
        (lane ^ u64::from_le_bytes(padded))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(32)
            .wrapping_mul(0xd6e8_feb8_6659_fd93)
    }
    let mut lanes = [
        0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64,
        0x6a09_e667_f3bc_c908,
        0xbb67_ae85_84ca_a73b,
        0x3c6e_f372_fe94_f82b,
    ];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            *lane = step(*lane, word);
        }
    }
    let mut hash = lanes[0];
    for lane in &lanes[1..] {
        hash = step(hash, &lane.to_le_bytes());
    }
    for word in blocks.remainder().chunks(8) {
        hash = step(hash, word);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// Answers a CORS preflight.
fn preflight() -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, If-None-Match"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

fn method_not_allowed(allowed: &[Method]) -> Response<Body> {
    let list = allowed
        .iter()
        .map(Method::as_str)
        .chain(["OPTIONS"])
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = api_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method not allowed here; use {list}"),
    );
    if let Ok(value) = HeaderValue::from_str(&list) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// Cuts client-supplied text for error messages.
fn shorten(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_exactly() {
        assert_eq!(
            Route::of("/build/library/nginx"),
            Route::Build("library", "nginx")
        );
        assert_eq!(Route::of("/build/library/nginx/"), Route::NotFound);
        assert_eq!(Route::of("/build/library"), Route::NotFound);
        assert_eq!(Route::of("/build/a/b/c"), Route::NotFound);
        assert_eq!(Route::of("/shields/a/b"), Route::Shields("a", "b"));
        assert_eq!(Route::of("/status.svg"), Route::StatusSvg);
        assert_eq!(Route::of("/status.svg/"), Route::NotFound);
    }

    #[test]
    fn every_route_label_has_its_metrics_series() {
        for path in [
            "/",
            "/status.svg",
            "/health",
            "/servers",
            "/gossip",
            "/metrics",
            "/status.js",
            "/static/status.svg",
            "/source",
            "/build/a/b",
            "/shields/a/b",
            "/nope",
        ] {
            let name = Route::of(path).name();
            assert!(crate::metrics::ROUTES.contains(&name), "{path}: {name}");
        }
    }

    #[test]
    fn query_takes_the_last_value_and_decodes_plus() {
        let q = Query::parse("repository=a&repository=b&text=Hello+World%21&junk");
        assert_eq!(q.repository.as_deref(), Some("b"));
        assert_eq!(q.text.as_deref(), Some("Hello World!"));
        assert_eq!(q.tag(), "latest");
    }

    #[test]
    fn encoded_slashes_and_dots_are_refused() {
        assert!(image_from_path("library", "a%2Fb", "latest").is_err());
        assert!(image_from_path("%2e%2e", "passwd", "latest").is_err());
        assert!(image_from_path("library", "%ff", "latest").is_err());
        assert!(image_from_path("library", "ng%69nx", "latest").is_ok());
    }

    #[test]
    fn messages_follow_docker_hub_status_numbers() {
        let status = |status| {
            Ok(HubStatus {
                status,
                source: crate::hub::StatusSource::BuildHistory,
            })
        };
        assert_eq!(badge_message(&status(10)).0, "ok");
        assert_eq!(badge_message(&status(3)).0, "building");
        assert_eq!(badge_message(&status(0)).0, "building");
        assert_eq!(badge_message(&status(-1)).0, "error");
        assert_eq!(badge_message(&Err(HubError::NotFound)).0, "not found");
        assert_eq!(badge_message(&Err(HubError::Timeout)).0, "unknown");
    }

    const PINNED_EMPTY: u64 = 0x5f89_ac61_c4fa_f572;
    const PINNED_BUILD: u64 = 0xb29b_6a11_3f9e_f741;

    #[test]
    fn cache_control_says_the_max_age_inside_and_past_the_static_table() {
        for seconds in [0, 1, 299, 300, 3600, 3601, 86_400, u64::MAX] {
            let value = cache_control(Duration::from_secs(seconds)).expect("a header value");
            assert_eq!(value, format!("public, max-age={seconds}").as_str());
            // Asked again, the table gives the same value.
            assert_eq!(cache_control(Duration::from_secs(seconds)), Some(value));
        }
    }

    #[test]
    fn etag_hash_is_pinned_and_sees_every_byte() {
        // Pinned: nodes of different versions must give one body one ETag.
        assert_eq!(etag_hash(b""), PINNED_EMPTY);
        assert_eq!(
            etag_hash(b"{\"request\":\"ok\",\"status\":10}"),
            PINNED_BUILD
        );
        let body: Vec<u8> = (0..1262u32).map(|i| (i % 251) as u8).collect();
        let hash = etag_hash(&body);
        for at in [0, 7, 8, 631, 1255, 1256, 1261] {
            let mut changed = body.clone();
            changed[at] ^= 1;
            assert_ne!(etag_hash(&changed), hash, "byte {at}");
        }
        // A weaker step (one multiplication) let these two flips cancel out.
        let mut twice = body.clone();
        twice[7] ^= 0x80;
        twice[35] ^= 0x10;
        assert_ne!(etag_hash(&twice), hash);
        assert_ne!(etag_hash(b"a"), etag_hash(b"a\0"));
        assert_ne!(etag_hash(&body[..1261]), hash);
    }

    #[test]
    fn memoized_badges_match_fresh_renders_and_stay_bounded() {
        for i in 0..BADGE_MEMO_CAPACITY + 100 {
            let label = format!("memo test {i}");
            let first = rendered_badge(&label, "ok", Color::BrightGreen, Style::Flat, None);
            let again = rendered_badge(&label, "ok", Color::BrightGreen, Style::Flat, None);
            let fresh = badge::render(&Badge::new(&label, "ok", Color::BrightGreen));
            assert_eq!(first.svg, fresh.as_bytes());
            assert_eq!(again.svg, first.svg);
            assert_eq!(again.etag, etag_of(fresh.as_bytes()));
        }
        let other = rendered_badge("memo test 0", "error", Color::Red, Style::Flat, None);
        assert!(std::str::from_utf8(&other.svg).unwrap().contains("error"));
        // Other tests render badges at the same time; the check before inserting may let a
        // few more in, never many.
        assert!(BADGE_MEMO.len() <= BADGE_MEMO_CAPACITY + 16);
    }

    #[test]
    fn etags_match_in_lists_and_weak_form() {
        let body = b"{}".to_vec();
        let etag = format!("\"{:016x}\"", etag_hash(&body));
        let answer = Cacheable::new(
            "build",
            Bytes::from(body.clone()),
            etag_of(&body),
            "application/json",
            Duration::ZERO,
        );
        for header in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".into(),
        ] {
            let mut request = HeaderMap::new();
            request.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(&header).unwrap(),
            );
            let response = answer.respond(&request);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{header}");
        }
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        let response = answer.respond(&request);
        assert_eq!(response.status(), StatusCode::OK);
    }
}
