//! The Docker Hub client: build status from build history, with the tag endpoint as fallback.
//!
//! One shared `reqwest::Client` (rustls, timeouts, a User-Agent naming the project) and one
//! [`Budget`] guard every request to the hub, so the network as a whole never becomes the
//! reason Docker Hub rate-limits us: a cap on requests in flight, a rate per minute, silence
//! until a 429's `Retry-After` has passed, and backing off after repeated failures.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, redirect};
use serde::Deserialize;
use thiserror::Error;
use tokio::sync::Semaphore;
use url::Url;

use crate::logging::{WarnThrottle, cause_chain};
use crate::metrics::Metrics;
use crate::names::ImageRef;

/// Pages of build history read at most before falling back to the tag endpoint.
pub const MAX_PAGES: usize = 5;
/// The largest answer body read from the hub; a real page of 100 builds is about 60 KB.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// Longest silence a hub may ask of us; a hostile or broken `Retry-After` cannot mute a node
/// for longer than this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Silence after a 429 that names no time.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Failures in a row after which the client stops asking for a while.
const FAILURES_BEFORE_BACKOFF: u32 = 3;
/// Access tokens live about 10 minutes; renew them well before.
const TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 60);

/// Docker Hub's status of one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStatus {
    /// Docker Hub's build status number: 10 success, 0–9 queued or building, negative failed.
    pub status: i64,
    /// Which endpoint answered.
    pub source: StatusSource,
}

/// Which Docker Hub endpoint a status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSource {
    /// An automated build's entry in the build history.
    BuildHistory,
    /// The tag exists and is pushed (build history is gone for most repositories).
    Tag,
}

impl StatusSource {
    /// The name used in JSON answers.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusSource::BuildHistory => "buildhistory",
            StatusSource::Tag => "tag",
        }
    }
}

/// Everything that can go wrong asking Docker Hub, each with its own meaning for the client.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HubError {
    /// The repository or the tag does not exist.
    #[error("not found")]
    NotFound,
    /// The repository itself does not exist (so neither does any tag of it).
    #[error("repository not found")]
    RepositoryNotFound,
    /// Docker Hub answered 429; nothing is sent to it before `retry_in` has passed.
    #[error("Docker Hub rate limit reached, retrying in {}s", retry_in.as_secs().max(1))]
    RateLimited { retry_in: Duration },
    /// Our own budget of requests per minute is spent.
    #[error("this node's request budget for Docker Hub is spent, retrying in {}s", retry_in.as_secs().max(1))]
    Budget { retry_in: Duration },
    /// Docker Hub failed several times in a row; the client waits before asking again.
    #[error("Docker Hub failed repeatedly, retrying in {}s", retry_in.as_secs().max(1))]
    Backoff { retry_in: Duration },
    /// Docker Hub answered with an HTTP error status.
    #[error("Docker Hub answered HTTP {status}")]
    Status { status: u16 },
    /// Docker Hub answered, but not with what its API returns.
    #[error("Docker Hub answered something unexpected: {reason}")]
    BadAnswer { reason: String },
    /// No answer in time.
    #[error("Docker Hub did not answer in time")]
    Timeout,
    /// No connection.
    #[error("could not reach Docker Hub")]
    Unreachable,
}

impl HubError {
    /// Whether this error says something about the hub's health (and so counts towards
    /// backing off), as opposed to an answer about the image or our own restraint.
    fn is_hub_failure(&self) -> bool {
        matches!(
            self,
            HubError::Status { .. }
                | HubError::BadAnswer { .. }
                | HubError::Timeout
                | HubError::Unreachable
        )
    }

    /// The label of this outcome in `dbs_upstream_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            HubError::NotFound | HubError::RepositoryNotFound => "not_found",
            HubError::RateLimited { .. } => "rate_limited",
            // Only `admit` returns these, and `send` labels them before anything goes out.
            HubError::Budget { .. } | HubError::Backoff { .. } => "held_back",
            HubError::Status { .. } => "http_error",
            HubError::BadAnswer { .. } => "bad_answer",
            HubError::Timeout => "timeout",
            HubError::Unreachable => "unreachable",
        }
    }
}

/// Settings of the client, from the command line.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub base: Url,
    pub timeout: Duration,
    pub concurrency: u32,
    pub rate_per_minute: u32,
    pub credentials: Option<(String, String)>,
}

/// The Docker Hub client. Cheap to share behind the node's `Arc`.
#[derive(Debug)]
pub struct HubClient {
    http: reqwest::Client,
    base: Url,
    budget: Budget,
    credentials: Option<(String, String)>,
    // A tokio mutex: renewing the token awaits a request, and concurrent requests should wait
    // for that one renewal rather than each fetch a token of their own.
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    metrics: Metrics,
    /// Failures reach the log once a minute per kind, not once per request.
    warned: WarnThrottle,
}

#[derive(Deserialize)]
struct BuildHistoryPage {
    next: Option<String>,
    results: Vec<BuildEntry>,
}

#[derive(Deserialize)]
struct BuildEntry {
    dockertag_name: Option<String>,
    status: Option<i64>,
}

#[derive(Deserialize)]
struct TagObject {
    name: Option<String>,
    // Docker Hub marks tags `inactive` when not pushed or pulled for a month; the image still
    // exists and was built, so both states report success. The field must be there, though:
    // it is what tells a tag object from any other JSON.
    tag_status: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

impl HubClient {
    /// Builds the client. Fails only if the TLS backend cannot be set up.
    pub fn new(settings: HubSettings, metrics: Metrics) -> Result<HubClient, reqwest::Error> {
        let origin = settings.base.origin();
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "dockerhub-build-status/",
                env!("CARGO_PKG_VERSION"),
                " (federated badge server)"
            ))
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .timeout(settings.timeout)
            // Redirects only within the hub's own origin: an answer must never send us to an
            // address of its choosing.
            .redirect(redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() < 3 && attempt.url().origin() == origin {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .build()?;
        let mut base = settings.base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(HubClient {
            http,
            base,
            budget: Budget::new(settings.concurrency, settings.rate_per_minute),
            credentials: settings.credentials,
            token: tokio::sync::Mutex::new(None),
            metrics,
            warned: WarnThrottle::default(),
        })
    }

    /// The status of one image tag: build history first (at most [`MAX_PAGES`] pages, `next`
    /// followed on the hub's own origin only), then the tag endpoint.
    pub async fn status(&self, image: &ImageRef) -> Result<HubStatus, HubError> {
        let first = self.endpoint(&format!(
            "v2/repositories/{}/{}/buildhistory/?page_size=100",
            image.organization, image.repository
        ))?;
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == MAX_PAGES {
                break;
            }
            pages += 1;
            let page: BuildHistoryPage = match self.get_json("buildhistory", url).await {
                Ok(page) => page,
                // Build history is gone for most repositories: ask the tag itself.
                Err(HubError::NotFound) => break,
                Err(err) => return Err(err),
            };
            match page_verdict(page, &self.base, image.tag.as_str())? {
                PageVerdict::Found(status) => return Ok(status),
                PageVerdict::Next(url) => next = url,
            }
        }
        let tag_url = self.endpoint(&format!(
            "v2/namespaces/{}/repositories/{}/tags/{}",
            image.organization, image.repository, image.tag
        ))?;
        let tag: TagObject = match self.get_json("tag", tag_url).await {
            Ok(tag) => tag,
            Err(HubError::NotFound) => return Err(self.missing_tag(image).await),
            Err(err) => return Err(err),
        };
        tracing::debug!(image = %image, tag_status = %tag.tag_status, "status from the tag endpoint");
        tag_verdict(tag, image.tag.as_str())
    }

    /// Why a tag the tag endpoint does not know is missing: the whole repository, or only
    /// the tag. One `HEAD` of the repository tells, asked only here so that found images
    /// cost no more of the budget; when it cannot tell, the tag is still missing.
    async fn missing_tag(&self, image: &ImageRef) -> HubError {
        let Ok(url) = self.endpoint(&format!(
            "v2/namespaces/{}/repositories/{}",
            image.organization, image.repository
        )) else {
            return HubError::NotFound;
        };
        let bearer = match self.bearer().await {
            Ok(bearer) => bearer,
            Err(_) => return HubError::NotFound,
        };
        let request = || {
            let request = self.http.head(url.clone());
            match &bearer {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };
        match self.send("repository", request, |_| Ok(())).await {
            Err(HubError::NotFound) => HubError::RepositoryNotFound,
            _ => HubError::NotFound,
        }
    }

    fn endpoint(&self, path: &str) -> Result<Url, HubError> {
        self.base.join(path).map_err(|_| HubError::BadAnswer {
            reason: "cannot form a hub URL".into(),
        })
    }

    /// One GET through the budget, decoded as JSON of type `T`.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &'static str,
        url: Url,
    ) -> Result<T, HubError> {
        let bearer = self.bearer().await?;
        let request = || {
            let request = self.http.get(url.clone());
            match &bearer {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };
        self.send(endpoint, request, decode_json).await
    }

    /// The one place a request goes to the hub: budget, permit, send, classify, decode, then
    /// record the outcome in the budget and the metrics.
    async fn send<T>(
        &self,
        endpoint: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
        decode: impl FnOnce(&[u8]) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        // A slot first, then the rate budget: the budget counts a request when it goes out,
        // not when it started waiting for a slot. The semaphore is never closed, so
        // acquiring only waits.
        let Ok(_permit) = self.budget.in_flight.acquire().await else {
            return Err(HubError::Unreachable);
        };
        let started = Instant::now();
        // What reqwest said when no answer came (refused, DNS, TLS): for the log only.
        let mut reason = None;
        if let Err(err) = self.budget.admit(started) {
            // Held back by our own budget: nothing went out, so nothing to learn from.
            self.metrics
                .upstream_request(endpoint, "held_back", Duration::ZERO);
            return Err(err);
        }
        let result = async {
            let response = request().send().await.map_err(|err| {
                reason = Some(cause_chain(&err));
                classify_reqwest(err)
            })?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Err(HubError::RateLimited {
                    retry_in: retry_after(response.headers(), SystemTime::now()),
                });
            }
            if status == StatusCode::NOT_FOUND {
                return Err(HubError::NotFound);
            }
            if !status.is_success() {
                return Err(HubError::Status {
                    status: status.as_u16(),
                });
            }
            decode(&read_limited(response).await?)
        }
        .await;
        self.budget.record(&result, started, Instant::now());
        if let Err(err) = &result
            && (err.is_hub_failure() || matches!(err, HubError::RateLimited { .. }))
            && self.warned.allow(err.outcome())
        {
            tracing::warn!(
                upstream = %self.base,
                endpoint,
                error = %err,
                reason = reason.as_deref().unwrap_or(""),
                "Docker Hub request failed (said at most once a minute per kind of failure)"
            );
        }
        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) => err.outcome(),
        };
        self.metrics
            .upstream_request(endpoint, outcome, started.elapsed());
        result
    }

    /// A valid access token when credentials are configured, renewed before it expires.
    async fn bearer(&self) -> Result<Option<String>, HubError> {
        let Some((username, secret)) = &self.credentials else {
            return Ok(None);
        };
        let mut slot = self.token.lock().await;
        if let Some((token, fetched)) = slot.as_ref()
            && fetched.elapsed() < TOKEN_LIFETIME
        {
            return Ok(Some(token.clone()));
        }
        let url = self.endpoint("v2/auth/token")?;
        let body = serde_json::json!({ "identifier": username, "secret": secret });
        let token: TokenAnswer = self
            .send(
                "auth",
                || self.http.post(url.clone()).json(&body),
                decode_json,
            )
            .await
            .map_err(|err| match err {
                // A 404 here means the credentials were refused, not that an image is missing.
                HubError::NotFound => HubError::Status { status: 404 },
                other => other,
            })?;
        *slot = Some((token.access_token.clone(), Instant::now()));
        Ok(Some(token.access_token))
    }
}

/// What one page of build history says about a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageVerdict {
    /// The tag's newest build is on this page.
    Found(HubStatus),
    /// Not on this page; the next page to read, always on the hub's own origin, if any.
    Next(Option<Url>),
}

/// Reads one build-history answer body as [`HubClient::status`] does: the fuzzers' way in to
/// the hub's JSON, with the same decoding and the same off-origin rule for `next`.
pub fn read_build_history_page(body: &[u8], hub: &Url, tag: &str) -> Result<PageVerdict, HubError> {
    page_verdict(decode_json(body)?, hub, tag)
}

/// Reads one tag-endpoint answer body as [`HubClient::status`] does.
pub fn read_tag_object(body: &[u8], tag: &str) -> Result<HubStatus, HubError> {
    tag_verdict(decode_json(body)?, tag)
}

fn page_verdict(page: BuildHistoryPage, hub: &Url, tag: &str) -> Result<PageVerdict, HubError> {
    if let Some(entry) = page
        .results
        .iter()
        .find(|e| e.dockertag_name.as_deref() == Some(tag))
    {
        return match entry.status {
            Some(status) => Ok(PageVerdict::Found(HubStatus {
                status,
                source: StatusSource::BuildHistory,
            })),
            None => Err(HubError::BadAnswer {
                reason: "a build without a status".into(),
            }),
        };
    }
    match page.next.as_deref().map(Url::parse) {
        None => Ok(PageVerdict::Next(None)),
        Some(Ok(url)) if url.origin() == hub.origin() => Ok(PageVerdict::Next(Some(url))),
        Some(Ok(url)) => {
            tracing::warn!(next = %url, "build history points off the hub's origin; not followed");
            Ok(PageVerdict::Next(None))
        }
        Some(Err(_)) => Err(HubError::BadAnswer {
            reason: "an unreadable next link".into(),
        }),
    }
}

fn tag_verdict(tag: TagObject, wanted: &str) -> Result<HubStatus, HubError> {
    if tag.name.as_deref().is_some_and(|name| name != wanted) {
        return Err(HubError::BadAnswer {
            reason: "the tag object names another tag".into(),
        });
    }
    Ok(HubStatus {
        status: 10,
        source: StatusSource::Tag,
    })
}

/// Decodes a hub answer, telling "not JSON" from "JSON of another shape".
fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, HubError> {
    serde_json::from_slice(body).map_err(|e| {
        let reason = if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
            format!("JSON of another shape ({e})")
        } else {
            "an answer that is not JSON".to_owned()
        };
        HubError::BadAnswer { reason }
    })
}

fn classify_reqwest(err: reqwest::Error) -> HubError {
    if err.is_timeout() {
        HubError::Timeout
    } else if err.is_redirect() {
        HubError::BadAnswer {
            reason: "a redirect away from the hub".into(),
        }
    } else {
        HubError::Unreachable
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, HubError> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY as u64)
    {
        return Err(HubError::BadAnswer {
            reason: "an answer too large to be an API page".into(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify_reqwest)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HubError::BadAnswer {
                reason: "an answer too large to be an API page".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How long a 429 asks us to wait: the later of `Retry-After` (seconds) and
/// `X-RateLimit-Reset` (a Unix time), capped, with a default when neither is readable.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Duration {
    let seconds = |name: &str| -> Option<u64> {
        headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok()
    };
    let from_retry_after = seconds(RETRY_AFTER.as_str()).map(Duration::from_secs);
    let now_unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let from_reset = seconds("x-ratelimit-reset")
        .map(|reset| Duration::from_secs(reset.saturating_sub(now_unix)));
    match (from_retry_after, from_reset) {
        (None, None) => DEFAULT_RETRY_AFTER,
        (a, b) => a.max(b).unwrap_or(DEFAULT_RETRY_AFTER).min(MAX_RETRY_AFTER),
    }
}

/// The window of `--hub-rate`.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// The upstream budget: what keeps a node (and so the network) polite to Docker Hub.
#[derive(Debug)]
struct Budget {
    in_flight: Semaphore,
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    rate_per_minute: usize,
    /// When the requests of the last minute went out, oldest first: at most
    /// `rate_per_minute` of them, so no 60 s window ever holds more (a token bucket that
    /// starts full lets up to twice the rate through in the first minute).
    sent: VecDeque<Instant>,
    /// Nothing goes out before this instant; `muted_by` says why.
    muted_until: Option<Instant>,
    muted_by_rate_limit: bool,
    failures_in_a_row: u32,
    /// When the current backoff began: failures of requests sent before it say nothing new
    /// and must not lengthen it.
    paused_at: Option<Instant>,
    /// After a backoff, one trial request tests whether the hub is back; the rest wait.
    trial_in_flight: bool,
}

impl Budget {
    fn new(concurrency: u32, rate_per_minute: u32) -> Budget {
        let rate = rate_per_minute.max(1) as usize;
        Budget {
            in_flight: Semaphore::new(concurrency.max(1) as usize),
            state: Mutex::new(BudgetState {
                rate_per_minute: rate,
                sent: VecDeque::with_capacity(rate.min(4096)),
                muted_until: None,
                muted_by_rate_limit: false,
                failures_in_a_row: 0,
                paused_at: None,
                trial_in_flight: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        // The state stays consistent even if a holder panicked: every write is a whole field.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes one request's worth of budget, or says why not and for how long.
    fn admit(&self, now: Instant) -> Result<(), HubError> {
        let mut state = self.lock();
        if let Some(until) = state.muted_until {
            if now < until {
                let retry_in = until - now;
                return Err(if state.muted_by_rate_limit {
                    HubError::RateLimited { retry_in }
                } else {
                    HubError::Backoff { retry_in }
                });
            }
            state.muted_until = None;
        }
        // Backing off and the pause is over: one trial request finds out whether the hub is
        // back, instead of a burst that would all fail (and all count) if it is not.
        let backing_off = state.failures_in_a_row >= FAILURES_BEFORE_BACKOFF;
        if backing_off && state.trial_in_flight {
            return Err(HubError::Backoff {
                retry_in: Duration::from_secs(1),
            });
        }
        while state
            .sent
            .front()
            .is_some_and(|&sent| now.saturating_duration_since(sent) >= RATE_WINDOW)
        {
            state.sent.pop_front();
        }
        if state.sent.len() >= state.rate_per_minute {
            // The oldest request of the window leaves it first.
            let oldest = state.sent.front().copied().unwrap_or(now);
            let retry_in = RATE_WINDOW.saturating_sub(now.saturating_duration_since(oldest));
            return Err(HubError::Budget { retry_in });
        }
        state.sent.push_back(now);
        state.trial_in_flight = backing_off;
        Ok(())
    }

    /// Learns from the outcome of one request sent at `started`.
    fn record<T>(&self, result: &Result<T, HubError>, started: Instant, now: Instant) {
        let mut state = self.lock();
        state.trial_in_flight = false;
        match result {
            Ok(_) | Err(HubError::NotFound) => {
                state.failures_in_a_row = 0;
                state.paused_at = None;
            }
            Err(HubError::RateLimited { retry_in }) => {
                let until = now + *retry_in;
                if state.muted_until.is_none_or(|current| current < until) {
                    state.muted_until = Some(until);
                    state.muted_by_rate_limit = true;
                }
            }
            Err(err) if err.is_hub_failure() => {
                if state.paused_at.is_some_and(|paused| started < paused) {
                    // Already on its way when the pause began: the pause accounts for it.
                    return;
                }
                state.failures_in_a_row += 1;
                if state.failures_in_a_row >= FAILURES_BEFORE_BACKOFF {
                    // 2s, 4s, 8s … up to 5 minutes, one step per failed trial: long enough
                    // to spare a struggling hub, short enough to notice it is back.
                    let exponent = (state.failures_in_a_row - FAILURES_BEFORE_BACKOFF).min(8);
                    let pause = Duration::from_secs(2u64 << exponent).min(Duration::from_secs(300));
                    state.muted_until = Some(now + pause);
                    state.muted_by_rate_limit = false;
                    state.paused_at = Some(now);
                }
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_reads_both_headers_and_caps() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), DEFAULT_RETRY_AFTER);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, now), Duration::from_secs(7));
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("1000020"));
        assert_eq!(retry_after(&headers, now), Duration::from_secs(20));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("999999999"));
        assert_eq!(retry_after(&headers, now), MAX_RETRY_AFTER);
    }

    #[test]
    fn budget_spends_and_comes_back_a_minute_later() {
        let budget = Budget::new(1, 60);
        let start = Instant::now();
        for i in 0..60 {
            assert!(budget.admit(start + Duration::from_millis(i * 10)).is_ok());
        }
        match budget.admit(start + Duration::from_secs(1)) {
            Err(HubError::Budget { retry_in }) => assert_eq!(retry_in, Duration::from_secs(59)),
            other => panic!("{other:?}"),
        }
        assert!(budget.admit(start + Duration::from_millis(59_999)).is_err());
        // The first request leaves the window, and with it one request's worth comes back.
        assert!(budget.admit(start + RATE_WINDOW).is_ok());
        assert!(budget.admit(start + RATE_WINDOW).is_err());
        assert!(
            budget
                .admit(start + RATE_WINDOW + Duration::from_millis(10))
                .is_ok()
        );
    }

    #[test]
    fn no_minute_ever_holds_more_than_the_rate() {
        let rate = 120;
        let budget = Budget::new(1, rate);
        let start = Instant::now();
        // Asks in uneven bursts for five minutes, as a busy node would.
        let mut sent = Vec::new();
        let mut at = Duration::ZERO;
        let mut step = 7u64;
        while at < Duration::from_secs(300) {
            step = (step * 48_271) % 2_147_483_647;
            at += Duration::from_millis(step % 900);
            for _ in 0..step % 7 {
                if budget.admit(start + at).is_ok() {
                    sent.push(at);
                }
            }
        }
        assert!(sent.len() > 4 * rate as usize, "only {} sent", sent.len());
        for (i, &first) in sent.iter().enumerate() {
            let in_window = sent[i..]
                .iter()
                .take_while(|&&t| t - first < RATE_WINDOW)
                .count();
            assert!(
                in_window <= rate as usize,
                "{in_window} in the minute from {first:?}"
            );
        }
    }

    #[test]
    fn a_429_mutes_until_it_elapses() {
        let budget = Budget::new(1, 600);
        let now = Instant::now();
        budget.record::<()>(
            &Err(HubError::RateLimited {
                retry_in: Duration::from_secs(5),
            }),
            now,
            now,
        );
        assert!(matches!(
            budget.admit(now + Duration::from_secs(4)),
            Err(HubError::RateLimited { .. })
        ));
        assert!(budget.admit(now + Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn repeated_failures_back_off_and_success_resets() {
        let budget = Budget::new(1, 600);
        let now = Instant::now();
        for _ in 0..FAILURES_BEFORE_BACKOFF - 1 {
            budget.record::<()>(&Err(HubError::Timeout), now, now);
        }
        assert!(
            budget.admit(now).is_ok(),
            "two failures are not yet a pattern"
        );
        budget.record::<()>(&Err(HubError::Status { status: 500 }), now, now);
        assert!(matches!(
            budget.admit(now + Duration::from_secs(1)),
            Err(HubError::Backoff { .. })
        ));
        assert!(budget.admit(now + Duration::from_secs(3)).is_ok());
        budget.record(&Ok(()), now, now);
        budget.record::<()>(&Err(HubError::Timeout), now, now);
        assert!(budget.admit(now + Duration::from_secs(3)).is_ok());
    }

    #[test]
    fn requests_in_flight_do_not_lengthen_a_pause_and_one_trial_tests_recovery() {
        let budget = Budget::new(8, 600);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Eight requests were on their way when the hub began to fail.
        for _ in 0..8 {
            budget.record::<()>(&Err(HubError::Timeout), t0, at(100));
        }
        assert!(matches!(
            budget.admit(at(1_000)),
            Err(HubError::Backoff { .. })
        ));
        // The first pause (2 s), not 2^5 times that.
        assert!(budget.admit(at(2_200)).is_ok(), "the trial goes out");
        assert!(
            matches!(budget.admit(at(2_200)), Err(HubError::Backoff { .. })),
            "one trial at a time"
        );
        // The trial fails: the next pause is one step longer (4 s).
        budget.record::<()>(&Err(HubError::Status { status: 500 }), at(2_200), at(2_300));
        assert!(budget.admit(at(6_000)).is_err());
        assert!(budget.admit(at(6_400)).is_ok(), "the next trial");
        // It succeeds: everything flows again.
        budget.record(&Ok(()), at(6_400), at(6_500));
        for _ in 0..5 {
            assert!(budget.admit(at(6_500)).is_ok());
        }
    }
}
