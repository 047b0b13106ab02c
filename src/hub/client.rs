//! The Docker Hub client: build status from build history, with the tag endpoint as
//! fallback, every request through the budget.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use reqwest::{StatusCode, redirect};
use serde::Deserialize;
use url::Url;

use super::budget::{Budget, ClientKey, retry_after};
use super::build_history::{BuildHistoryPage, PageVerdict, page_verdict};
use super::fair::{FairShares, Refusal};
use std::sync::Arc;

use super::names::ImageRef;
use super::repository::{RepoName, RepositoryInfo};
use super::tag::{TagInfo, TagObject, tag_verdict};
use super::tag_list::{Step, TagList, TagPage, add_page};
use super::{HubError, HubStatus, decode_json};
use crate::logging::{WarnThrottle, cause_chain};
use crate::metrics::Metrics;

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
    credentials: Option<(String, String)>,
    // A tokio mutex: renewing the token awaits a request, and concurrent requests should wait
    // for that one renewal rather than each fetch a token of their own.
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    metrics: Metrics,
    /// Failures reach the log once a minute per kind, not once per request.
    warned: WarnThrottle,
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
            budget: Budget::new(settings.concurrency, settings.rate_per_minute),
            shares: FairShares::of_budget(settings.rate_per_minute),
            fill_shares: FairShares::with_window(settings.rate_per_minute),
            no_history: NoHistory::default(),
            credentials: settings.credentials,
            token: tokio::sync::Mutex::new(None),
            metrics,
            warned: WarnThrottle::default(),
        })
    }

    /// The status of one image tag: build history first (at most [`MAX_PAGES`] pages, `next`
    /// followed on the hub's own origin only, skipped for a repository the hub said has
    /// none), then the tag endpoint.
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
        let mut next = (!self.no_history.contains(&repository, Instant::now())).then_some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == MAX_PAGES {
                break;
            }
            pages += 1;
            let page: BuildHistoryPage = match self.get_json("buildhistory", url, client).await {
                Ok(page) => page,
                // Build history is gone for most repositories: ask the tag itself, and for
                // this repository's other tags ask it first.
                Err(HubError::NotFound) => {
                    self.no_history.insert(repository.clone(), Instant::now());
                    break;
                }
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
        let tag: TagObject = match self.get_json("tag", tag_url, client).await {
            Ok(tag) => tag,
            Err(HubError::NotFound) => return Err(self.missing_tag(image, client).await),
            Err(err) => return Err(err),
        };
        tracing::debug!(image = %image, tag_status = %tag.tag_status, "status from the tag endpoint");
        tag_verdict(tag, image.tag.as_str())
    }

    /// Whether the budget has room for a request the node makes for itself
    /// ([`Budget::has_room`]).
    pub fn has_room(&self) -> bool {
        self.budget.has_room(Instant::now())
    }

    /// Charges `client`'s share for one cold miss that goes elsewhere than Docker Hub (a fill
    /// from another node), as a request to the hub would be charged: from a budget of fills
    /// as large as the hub's, shared as fairly.
    pub fn spend_share(&self, client: ClientKey) -> Result<(), HubError> {
        self.fill_shares
            .admit(client, 0, Duration::ZERO, Instant::now())
            .map_err(refused)
    }

    /// The repository resource: pulls, stars, automated builds, last push.
    pub async fn repository(
        &self,
        repo: &RepoName,
        client: Option<ClientKey>,
    ) -> Result<RepositoryInfo, HubError> {
        let url = self.endpoint(&format!(
            "v2/repositories/{}/{}",
            repo.organization, repo.repository
        ))?;
        self.get_json("repository", url, client).await
    }

    /// The newest tags of a repository, at most [`super::tag_list::MAX_TAG_PAGES`] pages,
    /// `next` followed on the hub's own origin only and never to a page already read.
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
            let page: TagPage = self.get_json("tag_list", next, client).await?;
            match add_page(&mut list, page, &self.base, &read)? {
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
        let info: TagInfo = self.get_json("tag_info", url, client).await?;
        if info.name != image.tag.as_str() {
            return Err(HubError::BadAnswer {
                reason: "the tag object names another tag".into(),
            });
        }
        Ok(Arc::new(info))
    }

    /// Why a tag the tag endpoint does not know is missing: the whole repository, or only
    /// the tag. One `HEAD` of the repository tells, asked only here so that found images
    /// cost no more of the budget; when it cannot tell, the tag is still missing.
    async fn missing_tag(&self, image: &ImageRef, client: Option<ClientKey>) -> HubError {
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
        match self.send("repository", request, |_| Ok(()), client).await {
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
        client: Option<ClientKey>,
    ) -> Result<T, HubError> {
        let bearer = self.bearer().await?;
        let request = || {
            let request = self.http.get(url.clone());
            match &bearer {
                Some(token) => request.bearer_auth(token),
                None => request,
            }
        };
        self.send(endpoint, request, decode_json, client).await
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
        let started = Instant::now();
        // What reqwest said when no answer came (refused, DNS, TLS): for the log only.
        let mut reason = None;
        if let Err(err) = self.budget.admit(started) {
            // Held back by our own budget: nothing went out, so nothing to learn from.
            self.metrics
                .upstream_request(endpoint, "held_back", Duration::ZERO);
            return Err(err);
        }
        // Then the asking client's share, charged only for a request that goes out (a
        // muted or spent budget says so first, and costs the client nothing). It binds only
        // while the budget is down to its reserve.
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
                .learn_hub_limit(response.headers(), Instant::now(), SystemTime::now());
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
                None,
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

/// Repositories remembered as having no build history: 16,384 names of at most 512 bytes,
/// typically 30, so about a megabyte, for an hour (a repository that gains an automated
/// build is seen with it within the hour).
const NO_HISTORY_CAPACITY: usize = 16_384;
const NO_HISTORY_TTL: Duration = Duration::from_secs(3600);

/// Repositories the hub said have no build history, oldest first, bounded in count and age.
#[derive(Debug, Default)]
struct NoHistory {
    state: parking_lot::Mutex<NoHistoryState>,
}

#[derive(Debug, Default)]
struct NoHistoryState {
    since: HashMap<String, Instant>,
    order: VecDeque<(String, Instant)>,
}

impl NoHistory {
    fn contains(&self, repository: &str, now: Instant) -> bool {
        self.state
            .lock()
            .since
            .get(repository)
            .is_some_and(|&at| now.saturating_duration_since(at) < NO_HISTORY_TTL)
    }

    fn insert(&self, repository: String, now: Instant) {
        let mut state = self.state.lock();
        state.since.insert(repository.clone(), now);
        state.order.push_back((repository, now));
        while state.order.len() > NO_HISTORY_CAPACITY
            || state
                .order
                .front()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) >= NO_HISTORY_TTL)
        {
            let Some((old, at)) = state.order.pop_front() else {
                break;
            };
            if state.since.get(&old) == Some(&at) {
                state.since.remove(&old);
            }
        }
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
