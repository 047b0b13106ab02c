//! A stand-in for Docker Hub that answers with the real API's JSON shapes, from a table of
//! repositories held in memory. The demo network uses it (these machines cannot reach
//! Docker Hub), and so do the tests, which also switch on its faults: 429 with
//! `Retry-After`, 500, non-JSON bodies, slow answers, no answer at all, and `next` links off
//! its origin.
//!
//! Endpoints: build history, the tag object of the namespaces API (build status), the
//! repository (`/v2/namespaces/{org}/repositories/{repo}`, and the deprecated
//! `/v2/repositories/{org}/{repo}`), its tag list (pages of `page_size` with `count`,
//! `next` and `previous`, newest first), and one tag with its `images` (one per platform,
//! as multi-arch tags are); unknown names answer 404 with Docker Hub's body. Access tokens
//! from `POST /v2/auth/token` can be revoked ([`FakeHub::revoke_tokens`]), and the current
//! repository path can be taken away ([`FakeHub::set_legacy_repository_only`]).
//!
//! Like Docker Hub it can limit each source address to so many requests a minute
//! ([`FakeHub::with_source_limit`]), answering 429 with `Retry-After` past it; it counts
//! requests per path and per source address; and it can make up any number of repositories
//! on the fly ([`FakeHub::generate_repos`]), for the network benchmark.
//!
//! The real hub client runs unchanged against it: only `--hub-url` differs.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::tools::clock::{self, Instant};

/// What the hub knows about one repository.
#[derive(Debug, Clone, Default)]
pub struct FakeRepo {
    /// Build history pages (tag, status), newest first; `None` answers 404 like the real
    /// hub does for repositories without automated builds.
    pub history: Option<Vec<Vec<(String, i64)>>>,
    /// Tags that exist, with their `tag_status` (`active` or `inactive`), newest first.
    pub tags: Vec<(String, String)>,
    pub pulls: u64,
    pub stars: u64,
    pub automated: bool,
    /// The images of a tag, by name; a tag not listed here has one `linux/amd64` image
    /// whose digest is its own name's.
    pub images: HashMap<String, Vec<FakeImage>>,
    /// A broken tag list: every page names a next page, however many there are.
    pub endless_tags: bool,
    /// A broken tag list: pages that are not Docker Hub's JSON.
    pub garbage_tags: bool,
    /// A tag list that loses this page while it is read (tags deleted meanwhile): the page
    /// answers 404 although the one before named it.
    pub vanished_page: Option<usize>,
    /// Odd entries on the first tag page: a tag without a name, and a tag `odd` whose one
    /// image has a null `architecture` (no recorded answer has either whole).
    pub odd_entries: bool,
}

/// One image (platform) of a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeImage {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub digest: String,
    pub size: u64,
}

impl FakeImage {
    /// An image of `platform` (`arch`, `os/arch` or `os/arch/variant`; the OS defaults to
    /// linux) with this digest and size.
    pub fn new(platform: &str, digest: &str, size: u64) -> FakeImage {
        let parts: Vec<&str> = platform.split('/').collect();
        let (os, architecture, variant) = match parts.as_slice() {
            [arch] => ("linux", *arch, None),
            [os, arch] => (*os, *arch, None),
            [os, arch, variant, ..] => (*os, *arch, Some((*variant).to_owned())),
            [] => ("linux", "amd64", None),
        };
        FakeImage {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
            variant,
            digest: digest.to_owned(),
            size,
        }
    }
}

impl FakeRepo {
    /// A repository whose build history has one page with these builds.
    pub fn with_builds(builds: &[(&str, i64)]) -> FakeRepo {
        let page = builds.iter().map(|(t, s)| ((*t).to_owned(), *s)).collect();
        FakeRepo {
            history: Some(vec![page]),
            ..FakeRepo::default()
        }
    }

    /// A repository without build history whose tags exist and are active.
    pub fn with_tags(tags: &[&str]) -> FakeRepo {
        FakeRepo {
            history: None,
            tags: tags
                .iter()
                .map(|t| ((*t).to_owned(), "active".to_owned()))
                .collect(),
            ..FakeRepo::default()
        }
    }

    /// Sets pulls and stars.
    pub fn counting(mut self, pulls: u64, stars: u64) -> FakeRepo {
        self.pulls = pulls;
        self.stars = stars;
        self
    }

    /// Gives `tag` these images.
    pub fn with_images(mut self, tag: &str, images: Vec<FakeImage>) -> FakeRepo {
        self.images.insert(tag.to_owned(), images);
        self
    }

    /// The images of `tag`.
    fn images_of(&self, tag: &str) -> Vec<FakeImage> {
        self.images
            .get(tag)
            .cloned()
            .unwrap_or_else(|| vec![FakeImage::new("amd64", &format!("sha256:{tag}"), 1_234_567)])
    }

    /// The tag object Docker Hub answers for the `index`th newest tag.
    fn tag_json(&self, index: usize, name: &str, tag_status: &str) -> serde_json::Value {
        let images = self.images_of(name);
        let images_json: Vec<_> = images
            .iter()
            .map(|i| {
                json!({
                    "architecture": i.architecture,
                    "features": "",
                    "variant": i.variant,
                    "digest": i.digest,
                    "os": i.os,
                    "os_features": "",
                    "os_version": null,
                    "size": i.size,
                    "status": tag_status,
                    "last_pulled": "2026-11-26T08:00:00.000000Z",
                    "last_pushed": last_updated(index),
                })
            })
            .collect();
        json!({
            "creator": 1,
            "id": 1000 + index,
            "images": images_json,
            "last_updated": last_updated(index),
            "last_updater": 1,
            "last_updater_username": "demo",
            "name": name,
            "repository": 7,
            "full_size": images.first().map_or(0, |i| i.size),
            "v2": true,
            "tag_status": tag_status,
            "tag_last_pulled": "2026-11-26T08:00:00.000000Z",
            "tag_last_pushed": last_updated(index),
            "media_type": "application/vnd.oci.image.index.v1+json",
            "content_type": "image",
            "digest": images.first().map(|i| i.digest.clone()),
        })
    }
}

/// When the `index`th newest tag was pushed: an hour apart, the newest a day before the
/// process first asked. Fixed from then on, as the real hub's times are: an answer that
/// changed on every request would read as a lie when nodes check each other's fills.
fn last_updated(index: usize) -> String {
    static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();
    let started = *STARTED.get_or_init(std::time::SystemTime::now);
    let at = started
        - Duration::from_secs(86_400 + 3600 * u64::try_from(index).unwrap_or(u64::MAX / 7200));
    humantime::format_rfc3339_micros(at).to_string()
}

/// A fault the hub shows on every API request while it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: seconds`.
    RateLimit { retry_after_secs: u64 },
    /// 500 with a JSON body.
    ServerError,
    /// 200 with an HTML page instead of JSON.
    Garbage,
    /// Answers correctly, after this delay.
    Slow(Duration),
    /// Takes the request and never answers, as a hub that hangs does: the client's own
    /// timeout is all that ends it.
    Hang,
}

/// One request the hub received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `GET`, `HEAD`, `POST`.
    pub method: String,
    pub path: String,
    pub at: Instant,
    /// The address the request came from.
    pub source: IpAddr,
    /// Whether it was answered 429 by the per-address limit.
    pub limited: bool,
}

/// Docker Hub's limit per source address: at most `limit` requests in any `window`.
#[derive(Debug)]
struct SourceLimit {
    limit: usize,
    window: Duration,
    /// When each address's answered requests of the last window came, oldest first.
    admitted: HashMap<IpAddr, VecDeque<Instant>>,
}

/// What the limit says about one request.
#[derive(Debug, Clone, Copy)]
struct LimitVerdict {
    allowed: bool,
    limit: usize,
    remaining: usize,
    /// How long until the address may ask again (zero while it has requests left).
    retry_in: Duration,
    /// How long until its oldest request of the window leaves it.
    reset_in: Duration,
}

impl SourceLimit {
    fn check(&mut self, source: IpAddr, now: Instant) -> LimitVerdict {
        let window = self.window;
        let sent = self.admitted.entry(source).or_default();
        while sent
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= window)
        {
            sent.pop_front();
        }
        let allowed = sent.len() < self.limit;
        if allowed {
            sent.push_back(now);
        }
        let reset_in = sent.front().map_or(window, |oldest| {
            (*oldest + window).saturating_duration_since(now)
        });
        LimitVerdict {
            allowed,
            limit: self.limit,
            remaining: self.limit - sent.len(),
            retry_in: if allowed { Duration::ZERO } else { reset_in },
            reset_in,
        }
    }
}

/// Whole seconds, rounded up: a client that waits that long finds the limit open again.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[derive(Debug, Default)]
struct State {
    repos: HashMap<String, FakeRepo>,
    fault: Option<Fault>,
    /// When set, `next` links point here instead of at this hub.
    next_origin: Option<String>,
    credentials: Option<(String, String)>,
    received: Vec<Received>,
    source_limit: Option<SourceLimit>,
    /// The organization whose `repo-N` repositories exist without being set.
    generated: Option<String>,
    /// Access tokens handed out before this many revocations no longer work.
    token_generation: u32,
    /// `/v2/namespaces/{org}/repositories/{repo}` answers 404 for every repository, as a
    /// hub that does not serve it yet would.
    legacy_repository_only: bool,
}

impl State {
    /// The repository `organization/repository`, set or made up.
    fn repo(&self, organization: &str, repository: &str) -> Option<Cow<'_, FakeRepo>> {
        if let Some(repo) = self.repos.get(&format!("{organization}/{repository}")) {
            return Some(Cow::Borrowed(repo));
        }
        let n = generated_number(self.generated.as_deref()?, organization, repository)?;
        Some(Cow::Owned(
            FakeRepo::with_tags(&["latest"]).counting(n, n % 100),
        ))
    }
}

/// `N` when `organization/repository` is `generated/repo-N` (N in plain digits).
fn generated_number(generated: &str, organization: &str, repository: &str) -> Option<u64> {
    let digits = repository.strip_prefix("repo-")?;
    if organization != generated
        || digits.is_empty()
        || digits.len() > 18
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// A running fake hub. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeHub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _stop: watch::Sender<()>,
}

impl FakeHub {
    /// Starts a hub on `127.0.0.1:0` with no repositories.
    pub async fn start() -> std::io::Result<FakeHub> {
        FakeHub::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a hub on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeHub> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = watch::channel(());
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => continue,
                    },
                    _ = stopped.changed() => break,
                };
                let source = peer.ip();
                let state = Arc::clone(&served);
                let base = format!("http://{addr}");
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        let base = base.clone();
                        async move { Ok::<_, Infallible>(answer(&state, &base, source, request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FakeHub {
            addr,
            state,
            _stop: stop,
        })
    }

    /// The hub's origin, to pass as `--hub-url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Adds or replaces a repository, `organization/repository`.
    pub fn set_repo(&self, name: &str, repo: FakeRepo) {
        self.state().repos.insert(name.to_owned(), repo);
    }

    /// Sets or clears the fault shown on every request.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state().fault = fault;
    }

    /// Makes build history and tag list `next` links point at another origin (a hostile
    /// hub's trick, or Docker Hub naming its other host).
    pub fn set_next_origin(&self, origin: Option<String>) {
        self.state().next_origin = origin;
    }

    /// Requires `POST /v2/auth/token` with these credentials and a bearer token on every
    /// API request.
    pub fn require_credentials(&self, username: &str, secret: &str) {
        self.state().credentials = Some((username.to_owned(), secret.to_owned()));
    }

    /// Makes every access token handed out so far invalid (a 401 on its next use), as a
    /// token Docker Hub revoked before its time.
    pub fn revoke_tokens(&self) {
        self.state().token_generation += 1;
    }

    /// Whether the current repository path answers 404 for every repository (only the
    /// deprecated `/v2/repositories/{org}/{repo}` answering).
    pub fn set_legacy_repository_only(&self, legacy_only: bool) {
        self.state().legacy_repository_only = legacy_only;
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.state().received.len()
    }

    /// Limits every source address to `limit` requests in any `window` (Docker Hub's is
    /// per minute), as Docker Hub does: past it, 429 with `Retry-After` (whole seconds until
    /// the address may ask again); every answer carries `X-RateLimit-Limit`,
    /// `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix time when the oldest request of
    /// the window leaves it). Requests answered 429 do not count against the limit.
    pub fn with_source_limit(self, limit: usize, window: Duration) -> FakeHub {
        self.state().source_limit = Some(SourceLimit {
            limit,
            window,
            admitted: HashMap::new(),
        });
        self
    }

    /// Makes every `organization/repo-N` (N in digits) exist without being set: no build
    /// history, one active tag `latest`, N pulls and N % 100 stars. Thousands of distinct
    /// repositories cost nothing to set up.
    pub fn generate_repos(&self, organization: &str) {
        self.state().generated = Some(organization.to_owned());
    }

    /// How many requests came for each path (the query left out): one path is one
    /// upstream resource.
    pub fn requests_by_path(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for received in &self.state().received {
            *counts.entry(received.path.clone()).or_default() += 1;
        }
        counts
    }

    /// How many requests came from each source address.
    pub fn requests_by_source(&self) -> HashMap<IpAddr, usize> {
        let mut counts = HashMap::new();
        for received in &self.state().received {
            *counts.entry(received.source).or_default() += 1;
        }
        counts
    }

    /// How many requests the per-address limit answered 429.
    pub fn limited_count(&self) -> usize {
        self.state().received.iter().filter(|r| r.limited).count()
    }

    /// A small catalogue of sample repositories, for the demo.
    pub fn add_samples(&self) {
        let multi = |digest: &str| {
            vec![
                FakeImage::new("amd64", digest, 72_104_448),
                FakeImage::new("linux/arm64/v8", &format!("{digest}-arm64"), 68_157_440),
                FakeImage::new("linux/arm/v7", &format!("{digest}-arm"), 61_865_984),
                FakeImage::new("unknown/unknown", "sha256:attestation", 1_024),
            ]
        };
        self.set_repo(
            "library/nginx",
            FakeRepo::with_tags(&["latest", "1.27.3", "1.27", "alpine"])
                .counting(1_234_567_890, 20_512)
                .with_images("latest", multi("sha256:nginx-1.27.3"))
                .with_images("1.27.3", multi("sha256:nginx-1.27.3"))
                .with_images("1.27", multi("sha256:nginx-1.27.3")),
        );
        self.set_repo(
            "library/redis",
            FakeRepo::with_tags(&["latest", "7"]).counting(987_654, 12_000),
        );
        self.set_repo(
            "niccokunzmann/dockerhub-build-status-image",
            FakeRepo::with_builds(&[("latest", 10), ("dev", 3), ("broken", -1)]),
        );
        self.set_repo("demo/passing", FakeRepo::with_builds(&[("latest", 10)]));
        self.set_repo("demo/building", FakeRepo::with_builds(&[("latest", 3)]));
        self.set_repo("demo/failing", FakeRepo::with_builds(&[("latest", -1)]));
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock()
}

/// The access token of this generation of tokens ([`FakeHub::revoke_tokens`]).
fn token(generation: u32) -> String {
    format!("fake-access-token-{generation}")
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The repository object, as both repository paths answer it.
fn repository_json(org: &str, repo: &str, r: &FakeRepo) -> serde_json::Value {
    json!({
        "user": org,
        "name": repo,
        "namespace": org,
        "repository_type": "image",
        "status": 1,
        "status_description": "active",
        "description": "",
        "is_private": false,
        "is_automated": r.automated,
        "star_count": r.stars,
        "pull_count": r.pulls,
        "last_updated": (!r.tags.is_empty()).then(|| last_updated(0)),
        "date_registered": "2020-01-01T00:00:00.000000Z",
        "collaborator_count": 0,
        "affiliation": null,
        "hub_user": org,
        "has_starred": false,
        "full_description": "",
        "permissions": {"read": true, "write": false, "admin": false},
        "media_types": ["application/vnd.oci.image.index.v1+json"],
        "content_types": ["image"],
        "categories": [],
    })
}

/// The 404 of the repositories API.
fn hub_404() -> Response<Full<Bytes>> {
    json_response(
        StatusCode::NOT_FOUND,
        json!({"message": "httperror 404: object not found", "errinfo": {}}),
    )
}

fn not_found() -> Response<Full<Bytes>> {
    json_response(StatusCode::NOT_FOUND, json!({"detail": "Object not found"}))
}

async fn answer(
    state: &Mutex<State>,
    base: &str,
    source: IpAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (verdict, mut response) = answer_limited(state, base, source, request).await;
    if let Some(verdict) = verdict {
        let reset = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(verdict.reset_in);
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", verdict.limit.into());
        headers.insert("x-ratelimit-remaining", verdict.remaining.into());
        headers.insert("x-ratelimit-reset", ceil_secs(reset).into());
    }
    response
}

/// What of a request the hub looks at.
struct Asked {
    method: Method,
    path: String,
    query: String,
    authorization: Option<String>,
    body: Bytes,
}

/// The answer, and what the per-address limit said if it is on.
async fn answer_limited(
    state: &Mutex<State>,
    base: &str,
    source: IpAddr,
    request: Request<Incoming>,
) -> (Option<LimitVerdict>, Response<Full<Bytes>>) {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let method = request.method().clone();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let asked = Asked {
        method,
        path,
        query,
        authorization,
        body,
    };
    let (fault, verdict) = {
        let mut state = lock(state);
        let now = clock::now();
        let verdict = state
            .source_limit
            .as_mut()
            .map(|limit| limit.check(source, now));
        state.received.push(Received {
            method: asked.method.to_string(),
            path: asked.path.clone(),
            at: now,
            source,
            limited: verdict.is_some_and(|v| !v.allowed),
        });
        (state.fault.clone(), verdict)
    };
    if let Some(v) = verdict.filter(|v| !v.allowed) {
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"message": "You have reached your pull rate limit."}),
        );
        response
            .headers_mut()
            .insert("retry-after", ceil_secs(v.retry_in).max(1).into());
        return (verdict, response);
    }
    (verdict, answer_api(state, base, fault, asked).await)
}

/// The answer within the per-address limit: the fault if one is set, else the API's.
async fn answer_api(
    state: &Mutex<State>,
    base: &str,
    fault: Option<Fault>,
    asked: Asked,
) -> Response<Full<Bytes>> {
    let Asked {
        method,
        path,
        query,
        authorization,
        body,
    } = asked;
    match fault {
        Some(Fault::RateLimit { retry_after_secs }) => {
            let mut response = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"message": "You have reached your pull rate limit."}),
            );
            response
                .headers_mut()
                .insert("retry-after", retry_after_secs.into());
            return response;
        }
        Some(Fault::ServerError) => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"detail": "Internal server error"}),
            );
        }
        Some(Fault::Garbage) => {
            let mut response =
                Response::new(Full::from("<html><body>Service Unavailable</body></html>"));
            response.headers_mut().insert(
                "content-type",
                hyper::header::HeaderValue::from_static("text/html"),
            );
            return response;
        }
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Hang) => std::future::pending::<()>().await,
        None => {}
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let state = lock(state);
    if method == Method::POST && path == "/v2/auth/token" {
        let given: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        return match &state.credentials {
            Some((user, secret)) if given["identifier"] == *user && given["secret"] == *secret => {
                json_response(
                    StatusCode::OK,
                    json!({"access_token": token(state.token_generation)}),
                )
            }
            _ => json_response(
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Incorrect authentication credentials"}),
            ),
        };
    }
    let bearer = format!("Bearer {}", token(state.token_generation));
    if state.credentials.is_some() && authorization.as_deref() != Some(bearer.as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Authentication credentials were not provided"}),
        );
    }
    match segments.as_slice() {
        ["v2", "repositories", org, repo, "buildhistory"] if method == Method::GET => {
            let Some(pages) = state.repo(org, repo).and_then(|r| r.history.clone()) else {
                return not_found();
            };
            let page: usize = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "page")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(1);
            let Some(builds) = pages.get(page.wrapping_sub(1)) else {
                return not_found();
            };
            let origin = state.next_origin.clone().unwrap_or_else(|| base.to_owned());
            let link = |n: usize| {
                format!(
                    "{origin}/v2/repositories/{org}/{repo}/buildhistory/?page={n}&page_size=100"
                )
            };
            let results: Vec<_> = builds
                .iter()
                .enumerate()
                .map(|(i, (tag, status))| {
                    json!({
                        "id": page * 1000 + i,
                        "status": status,
                        "tag": 1,
                        "dockertag_name": tag,
                        "build_code": format!("b{page}x{i}"),
                        "created_date": "2026-11-01T10:00:00.000000Z",
                        "last_updated": "2026-11-01T10:05:00.000000Z",
                    })
                })
                .collect();
            json_response(
                StatusCode::OK,
                json!({
                    "count": pages.iter().map(Vec::len).sum::<usize>(),
                    "next": (page < pages.len()).then(|| link(page + 1)),
                    "previous": (page > 1).then(|| link(page - 1)),
                    "results": results,
                }),
            )
        }
        ["v2", "repositories", org, repo] if method == Method::GET => match state.repo(org, repo) {
            Some(r) => json_response(StatusCode::OK, repository_json(org, repo, &r)),
            None => hub_404(),
        },
        ["v2", "repositories", org, repo, "tags"] if method == Method::GET => {
            let Some(r) = state.repo(org, repo) else {
                return hub_404();
            };
            if r.garbage_tags {
                return json_response(StatusCode::OK, json!({"count": "many", "results": 7}));
            }
            let param = |name: &str| {
                form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.parse::<usize>().ok())
            };
            let page = param("page").unwrap_or(1).max(1);
            if r.vanished_page == Some(page) {
                return hub_404();
            }
            let size = param("page_size").unwrap_or(10).clamp(1, 100);
            let start = (page - 1).saturating_mul(size);
            let mut results: Vec<_> = r
                .tags
                .iter()
                .enumerate()
                .skip(start)
                .take(size)
                .map(|(i, (name, status))| r.tag_json(i, name, status))
                .collect();
            if r.odd_entries && page == 1 {
                results.push(json!({"name": null, "images": []}));
                results.push(json!({"name": "odd", "images": [{"architecture": null, "os": "linux", "size": 1}]}));
            }
            if results.is_empty() && page > 1 && !r.endless_tags {
                return hub_404();
            }
            let origin = state.next_origin.clone().unwrap_or_else(|| base.to_owned());
            let link = |n: usize| {
                format!(
                    "{origin}/v2/repositories/{org}/{repo}/tags?page={n}&page_size={size}&ordering=last_updated"
                )
            };
            let more = r.endless_tags || start + size < r.tags.len();
            json_response(
                StatusCode::OK,
                json!({
                    "count": r.tags.len(),
                    "next": more.then(|| link(page + 1)),
                    "previous": (page > 1).then(|| link(page - 1)),
                    "results": results,
                }),
            )
        }
        ["v2", "repositories", org, repo, "tags", tag] if method == Method::GET => {
            let Some(r) = state.repo(org, repo) else {
                return hub_404();
            };
            match r.tags.iter().position(|(name, _)| name == tag) {
                Some(i) => json_response(StatusCode::OK, r.tag_json(i, tag, &r.tags[i].1)),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"message": format!("httperror 404: tag '{tag}' not found"), "errinfo": {"namespace": org, "repository": repo, "tag": tag}}),
                ),
            }
        }
        // The repository (`GET`), and Docker Hub's "check repository" (`HEAD`: the same
        // status, no body).
        ["v2", "namespaces", org, "repositories", repo]
            if method == Method::HEAD || method == Method::GET =>
        {
            match state.repo(org, repo) {
                Some(r) if !state.legacy_repository_only => {
                    json_response(StatusCode::OK, repository_json(org, repo, &r))
                }
                _ => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"errinfo": null, "message": "not found"}),
                ),
            }
        }
        ["v2", "namespaces", org, "repositories", repo, "tags", tag] if method == Method::GET => {
            let found = state
                .repo(org, repo)
                .and_then(|r| r.tags.iter().find(|(name, _)| name == tag).cloned());
            match found {
                Some((name, tag_status)) => json_response(
                    StatusCode::OK,
                    json!({
                        "creator": 1,
                        "id": 42,
                        "images": [{"architecture": "amd64", "os": "linux", "status": tag_status}],
                        "last_updated": "2026-11-20T08:00:00.000000Z",
                        "name": name,
                        "repository": 7,
                        "full_size": 1234567,
                        "v2": true,
                        "tag_status": tag_status,
                        "tag_last_pulled": "2026-11-26T08:00:00.000000Z",
                        "tag_last_pushed": "2026-11-20T08:00:00.000000Z",
                        "media_type": "application/vnd.oci.image.index.v1+json",
                        "content_type": "image",
                        "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                    }),
                ),
                None => not_found(),
            }
        }
        _ => not_found(),
    }
}
