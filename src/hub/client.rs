//! The Docker Hub client: build status from build history, with the tag endpoint as
//! fallback; the repository, tag list and tag resources; every request through the budget,
//! a 401 answered by logging in once more.

use std::time::{Duration, SystemTime};

use reqwest::{StatusCode, redirect};
use serde::Deserialize;
use url::Url;

use std::sync::Arc;

use super::budget::{Budget, ClientKey, LONG_RETRY_AFTER, retry_after};
use super::build_history::{BuildHistoryPage, PageVerdict, page_verdict};
use super::fair::{FairShares, Refusal};
use super::health::HubHealth;
use super::names::ImageRef;
use super::repository::{RepoName, RepositoryInfo};
use super::tag::{TagInfo, TagObject, decode_tag_info, tag_verdict};
use super::tag_list::{Step, TagList, TagPage, add_page};
use super::{HubError, HubStatus, decode_json};
use crate::logging::{WarnThrottle, cause_chain};
use crate::metrics::Metrics;
use crate::tools::bounded::BoundedMap;
use crate::tools::clock::{self, Instant};

/// Pages of build history read at most before falling back to the tag endpoint.
pub const MAX_PAGES: usize = 5;
/// The largest answer body read from the hub; a real page of 100 builds is about 60 KB.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// Access tokens live about 10 minutes; renew them well before.
const TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 60);

/// Settings of the client, from the command line.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub base: Url,
    pub timeout: Duration,
    pub concurrency: u32,
    pub rate_per_minute: u32,
    pub credentials: Option<(String, String)>,
    /// The address requests go out from; `None` lets the system choose.
    pub source_address: Option<std::net::IpAddr>,
    /// Whether part of the budget is kept for checking other nodes' fills (`--fill on`).
    pub check_reserve: bool,
}

/// The Docker Hub client. Cheap to share behind the node's `Arc`.
#[derive(Debug)]
pub struct HubClient {
    http: reqwest::Client,
    base: Url,
    budget: Budget,
    /// Each client's share of `budget` for the hub requests its cold misses cause.
    shares: FairShares,
    /// Each client's share of the fills its cold misses cause (they cost other nodes'
    /// budgets, so they cost like hub requests: as many a minute as `--hub-rate`).
    fill_shares: FairShares,
    /// Repositories whose build history the hub answered 404 for.
    no_history: NoHistory,
    /// Which of the repository's two paths answers.
    repository_paths: RepositoryPaths,
    credentials: Option<(String, String)>,
    // A tokio mutex: renewing the token awaits a request, and concurrent requests should wait
    // for that one renewal rather than each fetch a token of their own.
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    metrics: Metrics,
    /// Failures reach the log once a minute per kind, not once per request.
    warned: WarnThrottle,
    /// Whether Docker Hub answers, for the operator.
    health: Arc<HubHealth>,
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
            // Docker Hub counts its limit per source address: a host with several can give
            // each node its own.
            .local_address(settings.source_address)
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
            budget: Budget::new(
                settings.concurrency,
                settings.rate_per_minute,
                settings.check_reserve,
            ),
            shares: FairShares::of_budget(settings.rate_per_minute),
            fill_shares: FairShares::with_window(settings.rate_per_minute),
            no_history: NoHistory::default(),
            repository_paths: RepositoryPaths::default(),
            credentials: settings.credentials,
            token: tokio::sync::Mutex::new(None),
            metrics,
            warned: WarnThrottle::default(),
            health: Arc::new(HubHealth::new(Instant::now())),
        })
    }

    /// Whether Docker Hub answers this node, from the outcomes of its requests.
    pub fn health(&self) -> &Arc<HubHealth> {
        &self.health
    }

    /// The status of one image tag: build history first (at most [`MAX_PAGES`] pages, `next`
    /// followed on Docker Hub only, skipped for a repository the hub said has none), then
    /// the tag endpoint. A missing tag is [`HubError::NotFound`] whether or not its
    /// repository exists: the status cache tells the two apart by the repository resource,
    /// which it keeps anyway for pulls and stars.
    pub async fn status(&self, image: &ImageRef) -> Result<HubStatus, HubError> {
        self.status_for(image, None).await
    }

    /// [`HubClient::status`] on behalf of `client`, whose share of the budget pays for each
    /// request (a cold miss); `None` for the node's own refreshes.
    pub async fn status_for(
        &self,
        image: &ImageRef,
        client: Option<ClientKey>,
    ) -> Result<HubStatus, HubError> {
        let repository = format!("{}/{}", image.organization, image.repository);
        let first = self.endpoint(&format!(
            "v2/repositories/{repository}/buildhistory/?page_size=100"
        ))?;
        let mut next = (!self.no_history.contains(&repository, clock::now())).then_some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == MAX_PAGES {
                break;
            }
            pages += 1;
            let read = |body: &[u8]| {
                let page: BuildHistoryPage = decode_json(body)?;
                page_verdict(page, &self.base, image.tag.as_str())
            };
            match self.get("buildhistory", url, client, read).await {
                Ok(PageVerdict::Found(status)) => return Ok(status),
                Ok(PageVerdict::Next(url)) => next = url,
                // Build history is gone for most repositories: ask the tag itself, and for
                // this repository's other tags ask it first.
                Err(HubError::NotFound) => {
                    self.no_history.insert(repository.clone(), clock::now());
                    break;
                }
                Err(err) => return Err(err),
            }
        }
        let tag_url = self.endpoint(&format!(
            "v2/namespaces/{}/repositories/{}/tags/{}",
            image.organization, image.repository, image.tag
        ))?;
        let read = |body: &[u8]| {
            let tag: TagObject = decode_json(body)?;
            Ok((tag, 0))
        };
        let tag = self.get("tag", tag_url, client, read).await?;
        tracing::debug!(
            image = %image,
            tag_status = tag.tag_status.as_deref().unwrap_or("(none: active)"),
            "status from the tag endpoint"
        );
        tag_verdict(tag, image.tag.as_str())
    }

    /// Whether the budget has room for checking another node's fill now
    /// (`Budget::has_room`); the requests of a check go out inside
    /// [`super::budget::as_check`].
    pub fn has_room(&self) -> bool {
        self.budget.has_room(clock::now())
    }

    /// Charges `client`'s share for one cold miss that goes elsewhere than Docker Hub (a fill
    /// from another node), as a request to the hub would be charged: from a budget of fills
    /// as large as the hub's, shared as fairly.
    pub fn spend_share(&self, client: ClientKey) -> Result<(), HubError> {
        self.fill_shares
            .admit(client, 0, Duration::ZERO, clock::now())
            .map_err(refused)
    }

    /// The repository resource: pulls, stars, automated builds, last push; and whether the
    /// repository exists at all.
    ///
    /// From `/v2/namespaces/{org}/repositories/{repo}`; Docker Hub deprecated
    /// `/v2/repositories/{org}/{repo}` on 2025-09-19 in its favour. The deprecated path is
    /// asked only when the current one answers 404, 405, 410, 501 or a body without a
    /// repository's counts, and then the deprecated path's answer stands (a 404 from both
    /// is "not found"). While the current path has answered within the hour, a 404 from it is
    /// believed without a second request; while only the deprecated one answers, it is asked
    /// first for an hour. Fill owner keys keep the old path's spelling.
    pub async fn repository(
        &self,
        repo: &RepoName,
        client: Option<ClientKey>,
    ) -> Result<RepositoryInfo, HubError> {
        let current = self.endpoint(&format!(
            "v2/namespaces/{}/repositories/{}",
            repo.organization, repo.repository
        ))?;
        let legacy = self.endpoint(&format!(
            "v2/repositories/{}/{}",
            repo.organization, repo.repository
        ))?;
        let read = |body: &[u8]| Ok((decode_json::<RepositoryInfo>(body)?, 0));
        let (legacy_first, current_trusted) = self.repository_paths.order(clock::now());
        let (first, second) = if legacy_first {
            ((LEGACY, legacy), (CURRENT, current))
        } else {
            ((CURRENT, current), (LEGACY, legacy))
        };
        let err = match self.get(first.0, first.1, client, read).await {
            Ok(info) => {
                self.repository_paths.answered(first.0, clock::now());
                return Ok(info);
            }
            Err(err) => err,
        };
        let believed = first.0 == CURRENT && current_trusted && err == HubError::NotFound;
        if believed || !path_not_served(&err) {
            return Err(err);
        }
        match self.get(second.0, second.1, client, read).await {
            Ok(info) => {
                self.repository_paths.answered(second.0, clock::now());
                Ok(info)
            }
            Err(second_err) if err == HubError::NotFound => {
                // The first path's "not found" stands unless the other found it.
                if second_err != HubError::NotFound {
                    tracing::debug!(error = %second_err, "the other repository path failed");
                }
                Err(HubError::NotFound)
            }
            Err(second_err) => Err(second_err),
        }
    }

    /// The newest tags of a repository, at most [`super::tag_list::MAX_TAG_PAGES`] pages,
    /// `next` followed on Docker Hub only and never to a page already read. A later page
    /// answering 404 ends the list (tags deleted while it was read).
    pub async fn tag_list(
        &self,
        repo: &RepoName,
        client: Option<ClientKey>,
    ) -> Result<Arc<TagList>, HubError> {
        let first = self.endpoint(&format!(
            "v2/repositories/{}/{}/tags?page_size=100&ordering=last_updated",
            repo.organization, repo.repository
        ))?;
        let mut list = TagList {
            count: 0,
            tags: Vec::new(),
            truncated: false,
        };
        let mut read = vec![first.clone()];
        let mut next = first;
        loop {
            let read_page = |body: &[u8]| Ok((decode_json::<TagPage>(body)?, 0));
            let page = match self.get("tag_list", next, client, read_page).await {
                Ok(page) => page,
                Err(HubError::NotFound) if read.len() > 1 => return Ok(Arc::new(list)),
                Err(err) => return Err(err),
            };
            let (step, skipped) = add_page(&mut list, page, &self.base, &read)?;
            if skipped > 0 {
                self.metrics.entries_skipped("tag_list", skipped);
            }
            match step {
                Step::Done => return Ok(Arc::new(list)),
                Step::Next(url) => {
                    read.push(url.clone());
                    next = url;
                }
            }
        }
    }

    /// One tag with its images (`/v2/repositories/{org}/{repo}/tags/{tag}`).
    pub async fn tag_info(
        &self,
        image: &ImageRef,
        client: Option<ClientKey>,
    ) -> Result<Arc<TagInfo>, HubError> {
        let url = self.endpoint(&format!(
            "v2/repositories/{}/{}/tags/{}",
            image.organization, image.repository, image.tag
        ))?;
        let read = |body: &[u8]| decode_tag_info(body, image.tag.as_str());
        self.get("tag_info", url, client, read).await.map(Arc::new)
    }

    fn endpoint(&self, path: &str) -> Result<Url, HubError> {
        self.base.join(path).map_err(|_| HubError::BadAnswer {
            reason: "cannot form a hub URL".into(),
        })
    }

    /// One GET through the budget, its body read by `decode` (the value, and how many of
    /// its entries were left out, counted in `dbs_upstream_entries_skipped_total`). With
    /// credentials, a 401 drops the token and the request goes once more with a new one
    /// (a token the hub revoked before its time, or one of another process's login).
    async fn get<T>(
        &self,
        endpoint: &'static str,
        url: Url,
        client: Option<ClientKey>,
        decode: impl Fn(&[u8]) -> Result<(T, usize), HubError>,
    ) -> Result<T, HubError> {
        let mut renewed = false;
        loop {
            let bearer = self.bearer().await?;
            let request = || {
                let request = self.http.get(url.clone());
                match &bearer {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                }
            };
            match self.send(endpoint, request, &decode, client).await {
                Ok((value, skipped)) => {
                    if skipped > 0 {
                        self.metrics.entries_skipped(endpoint, skipped);
                    }
                    return Ok(value);
                }
                Err(HubError::Status { status: 401 }) if !renewed => {
                    let Some(refused) = bearer else {
                        return Err(HubError::Status { status: 401 });
                    };
                    self.drop_token(&refused).await;
                    renewed = true;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The one place a request goes to the hub: budget, permit, send, classify, decode, then
    /// record the outcome in the budget and the metrics.
    async fn send<T>(
        &self,
        endpoint: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
        decode: impl FnOnce(&[u8]) -> Result<T, HubError>,
        client: Option<ClientKey>,
    ) -> Result<T, HubError> {
        // A slot first, then the rate budget: the budget counts a request when it goes out,
        // not when it started waiting for a slot. The semaphore is never closed, so
        // acquiring only waits.
        let Ok(_permit) = self.budget.in_flight.acquire().await else {
            return Err(HubError::Unreachable);
        };
        let started = clock::now();
        // What reqwest said when no answer came (refused, DNS, TLS): for the log only.
        let mut reason = None;
        let admitted = if super::budget::checking() {
            self.budget.admit_check(started)
        } else {
            self.budget.admit(started)
        };
        if let Err(err) = admitted {
            // Held back by our own budget: nothing went out, so nothing to learn from. A
            // client that found the window spent waits: the others are no longer alone.
            if let (Some(client), HubError::Budget { .. }) = (client, &err) {
                self.shares.refused(client, started);
            }
            self.metrics
                .upstream_request(endpoint, "held_back", Duration::ZERO);
            return Err(err);
        }
        // Then the asking client's share, charged only for a request that goes out (a
        // muted or spent budget says so first, and costs the client nothing). It binds past
        // the client's pace, or while the budget is down to its reserve (`super::fair`).
        if let Some(client) = client {
            let (room, free_in) = self.budget.room(started);
            if let Err(refusal) = self.shares.admit(client, room, free_in, started) {
                self.budget.refund();
                self.metrics
                    .upstream_request(endpoint, "held_back", Duration::ZERO);
                return Err(refused(refusal));
            }
        }
        let result = async {
            let response = request().send().await.map_err(|err| {
                reason = Some(cause_chain(&err));
                classify_reqwest(err)
            })?;
            let status = response.status();
            self.budget
                .learn_hub_limit(response.headers(), clock::now(), SystemTime::now());
            if status == StatusCode::TOO_MANY_REQUESTS {
                let asked = retry_after(response.headers(), SystemTime::now());
                if asked.wait > LONG_RETRY_AFTER && self.warned.allow("long_retry_after") {
                    let header = |name: &str| {
                        response
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    tracing::warn!(
                        upstream = %self.base,
                        endpoint,
                        wait_seconds = asked.wait.as_secs(),
                        said_by = asked.said_by,
                        retry_after = header("retry-after"),
                        x_retry_after = header("x-retry-after"),
                        x_ratelimit_reset = header("x-ratelimit-reset"),
                        date = header("date"),
                        "Docker Hub asked for a long silence; nothing goes to it until then"
                    );
                }
                return Err(HubError::RateLimited {
                    retry_in: asked.wait,
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
        let now = clock::now();
        self.budget.record(&result, started, now);
        self.health.record(&result, now);
        if let Err(err) = &result
            && !matches!(err, HubError::NotFound | HubError::RepositoryNotFound)
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
                decode_json::<TokenAnswer>,
                None,
            )
            .await
            .map_err(|err| match err {
                // A 404 here means the credentials were refused, not that an image is missing.
                HubError::NotFound => HubError::Status { status: 404 },
                other => other,
            })?;
        *slot = Some((token.access_token.clone(), clock::now()));
        Ok(Some(token.access_token))
    }

    /// Forgets `refused`, the token a request was just refused with, unless another request
    /// has already put a new one in its place.
    async fn drop_token(&self, refused: &str) {
        let mut slot = self.token.lock().await;
        if slot.as_ref().is_some_and(|(token, _)| token == refused) {
            *slot = None;
        }
    }
}

/// The `endpoint` labels of the repository's two paths.
const CURRENT: &str = "repository";
const LEGACY: &str = "repository_legacy";
/// How long what one path answered decides which path is asked first.
const PATH_MEMORY: Duration = Duration::from_secs(3600);

/// Whether an answer says this path does not serve repositories (so the other one may):
/// 404 (also a missing repository: the other path confirms), 405 (Docker Hub answered
/// `HEAD` so for a day), 410, 501, or a body without a repository's counts.
fn path_not_served(err: &HubError) -> bool {
    matches!(
        err,
        HubError::NotFound
            | HubError::Status {
                status: 405 | 410 | 501
            }
            | HubError::BadAnswer { .. }
    )
}

/// Which of the repository's two paths answered lately.
#[derive(Debug, Default)]
struct RepositoryPaths {
    state: parking_lot::Mutex<PathState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct PathState {
    /// When the current path last answered with a repository.
    current_answered: Option<Instant>,
    /// The deprecated path is asked first until then (it answered, the current one did not).
    legacy_first_until: Option<Instant>,
}

impl RepositoryPaths {
    /// Whether to ask the deprecated path first, and whether a 404 of the current path is
    /// believed on its own.
    fn order(&self, now: Instant) -> (bool, bool) {
        let state = *self.state.lock();
        let legacy_first = state.legacy_first_until.is_some_and(|until| now < until);
        let trusted = state
            .current_answered
            .is_some_and(|at| now.saturating_duration_since(at) < PATH_MEMORY);
        (legacy_first, trusted)
    }

    fn answered(&self, path: &'static str, now: Instant) {
        let mut state = self.state.lock();
        if path == CURRENT {
            state.current_answered = Some(now);
            state.legacy_first_until = None;
        } else {
            state.legacy_first_until = Some(now + PATH_MEMORY);
        }
    }
}

/// Repositories remembered as having no build history: 16,384 names of at most 512 bytes,
/// typically 30, so about a megabyte, for an hour (a repository that gains an automated
/// build is seen with it within the hour).
const NO_HISTORY_CAPACITY: usize = 16_384;
const NO_HISTORY_TTL: Duration = Duration::from_secs(3600);

/// Repositories the hub said have no build history, oldest first, bounded in count and age.
#[derive(Debug)]
struct NoHistory {
    since: parking_lot::Mutex<BoundedMap<String, Instant>>,
}

impl Default for NoHistory {
    fn default() -> Self {
        NoHistory {
            since: parking_lot::Mutex::new(BoundedMap::new(NO_HISTORY_CAPACITY)),
        }
    }
}

impl NoHistory {
    fn contains(&self, repository: &str, now: Instant) -> bool {
        self.since
            .lock()
            .get(repository)
            .is_some_and(|&at| now.saturating_duration_since(at) < NO_HISTORY_TTL)
    }

    fn insert(&self, repository: String, now: Instant) {
        let mut since = self.since.lock();
        since.forget_oldest_while(|&at| now.saturating_duration_since(at) >= NO_HISTORY_TTL);
        since.insert(repository, now);
    }
}

/// The error a share's refusal is: this node's budget, or the client's part of it.
fn refused(refusal: Refusal) -> HubError {
    match refusal {
        Refusal::Spent(retry_in) => HubError::Budget { retry_in },
        Refusal::Share(retry_in) => HubError::ClientShare { retry_in },
    }
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
