//! Docker Hub: what the node asks of it and how politely.
//!
//! One shared `reqwest::Client` (rustls, timeouts, a User-Agent naming the project) and one
//! budget ([`budget`]) guard every request to the hub, so the network as a whole never becomes
//! the reason Docker Hub rate-limits us: a cap on requests in flight, a rate per minute,
//! silence until a 429's `Retry-After` has passed, and backing off after repeated failures.
//!
//! # Layout
//!
//! - [`names`]: validated Docker Hub names and tags; nothing else goes upstream.
//! - [`client`]: the client: build status from build history, with the tag as fallback.
//! - [`budget`]: the upstream budget and how long a 429 silences us.
//! - [`fair`]: each client's share of it, binding only while the budget is down to its
//!   reserve.
//! - [`health`]: whether Docker Hub answers this node, for `/health`, the front page and
//!   the metrics.
//! - One module per upstream resource, each reading its answer body:
//!   [`build_history`] (`/v2/repositories/{org}/{repo}/buildhistory/`), [`tag`]
//!   (`/v2/namespaces/{org}/repositories/{repo}/tags/{tag}` for the build status, and
//!   `/v2/repositories/{org}/{repo}/tags/{tag}` for a tag's images), [`repository`]
//!   (`/v2/namespaces/{org}/repositories/{repo}`) and [`tag_list`] (the newest tags, page
//!   by page).
//! - [`entries`]: the lists inside those answers, read entry by entry (an odd entry is
//!   skipped and counted, never the page); [`follow_next`]: where a page's `next` leads.

use std::time::Duration;

use thiserror::Error;
use url::Url;

pub mod budget;
pub mod build_history;
pub mod client;
pub mod entries;
pub mod fair;
pub mod health;
pub mod names;
pub mod repository;
pub mod tag;
pub mod tag_list;

pub use self::budget::{ClientKey, RetryAfter, retry_after};
pub use self::build_history::{PageVerdict, read_build_history_page};
pub use self::client::{HubClient, HubSettings};
pub use self::tag::read_tag_object;

/// Docker Hub's status of one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubStatus {
    /// Docker Hub's build status number: 10 success, 0–9 queued or building, negative failed.
    pub status: i64,
    /// Which endpoint answered.
    pub source: StatusSource,
}

/// Which Docker Hub endpoint a status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// The asking client's share of the budget for cold misses is spent (others' is not).
    #[error("this client's share of the node's Docker Hub budget is spent, retrying in {}s", retry_in.as_secs().max(1))]
    ClientShare { retry_in: Duration },
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
    /// Nothing cached, and the fetch did not end within the answer's deadline; it goes on,
    /// and its outcome is cached for the next request. Never returned by the hub client.
    #[error("Docker Hub has not answered yet; still asking")]
    Pending,
}

impl HubError {
    /// Whether this error says Docker Hub is failing, and so counts towards backing off: a
    /// 5xx, no answer in time, no connection. A 4xx is an answer about the request (a
    /// missing image, a method Docker Hub stopped serving for a day), an unreadable body is
    /// an answer about one repository's data, and a 429 or our own restraint are limits:
    /// none of them is a reason to stop asking about every other image.
    pub fn is_hub_failure(&self) -> bool {
        match self {
            HubError::Status { status } => *status >= 500,
            HubError::Timeout | HubError::Unreachable => true,
            _ => false,
        }
    }

    /// How long until asking again makes sense, for the errors that say so: a limit (Docker
    /// Hub's, this node's budget, the client's share) or a backoff.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            HubError::RateLimited { retry_in }
            | HubError::Budget { retry_in }
            | HubError::ClientShare { retry_in }
            | HubError::Backoff { retry_in } => Some(*retry_in),
            _ => None,
        }
    }

    /// The label of this outcome in `dbs_upstream_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            HubError::NotFound | HubError::RepositoryNotFound => "not_found",
            HubError::RateLimited { .. } => "rate_limited",
            // Only `admit` returns these, and `send` labels them before anything goes out.
            HubError::Budget { .. } | HubError::Backoff { .. } | HubError::ClientShare { .. } => {
                "held_back"
            }
            HubError::Status { .. } => "http_error",
            HubError::BadAnswer { .. } => "bad_answer",
            HubError::Timeout => "timeout",
            HubError::Unreachable => "unreachable",
            HubError::Pending => "pending",
        }
    }
}

/// A time as Docker Hub writes it (`2026-11-27T10:00:00.123456Z`), `None` when it is none.
pub fn parse_time(text: &str) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339_weak(text))
        .ok()
}

/// Decodes a hub answer, telling "not JSON" from "JSON of another shape".
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, HubError> {
    serde_json::from_slice(body).map_err(|e| {
        let reason = if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
            format!("JSON of another shape ({e})")
        } else {
            "an answer that is not JSON".to_owned()
        };
        HubError::BadAnswer { reason }
    })
}

/// The hosts that serve Docker Hub's API: `hub.docker.com`, and `registry.hub.docker.com`,
/// the older name that answers the same `/v2/` API (shields.io asks there, and lists both
/// as Docker Hub's origins). A `next` link names the host it was asked at, or the other
/// one. The registry's own hosts (`registry-1.docker.io`, `index.docker.io`) serve another
/// API and are not among them.
pub const DOCKER_HUB_HOSTS: [&str; 2] = ["hub.docker.com", "registry.hub.docker.com"];

/// Where a page's `next` link leads: a link on the configured hub's origin as it is, one on
/// any of [`DOCKER_HUB_HOSTS`] rewritten onto the configured hub (its path and query kept),
/// so a node asking a mirror or a loopback hub stays there; `None` for anywhere else (never
/// followed). An unreadable link is a bad answer.
pub fn follow_next(next: &str, hub: &Url) -> Result<Option<Url>, HubError> {
    let link = Url::parse(next).map_err(|_| HubError::BadAnswer {
        reason: "an unreadable next link".into(),
    })?;
    if link.origin() == hub.origin() {
        return Ok(Some(link));
    }
    let on_docker_hub = matches!(link.scheme(), "http" | "https")
        && link.port().is_none()
        && link
            .host_str()
            .is_some_and(|host| DOCKER_HUB_HOSTS.contains(&host));
    if !on_docker_hub {
        tracing::warn!(next = %link, "a next link off Docker Hub; not followed");
        return Ok(None);
    }
    // Relative to the hub's base, so a base with a path keeps it; the leading slashes go,
    // so the link's path can never name another host.
    let mut rewritten =
        hub.join(link.path().trim_start_matches('/'))
            .map_err(|_| HubError::BadAnswer {
                reason: "an unreadable next link".into(),
            })?;
    rewritten.set_query(link.query());
    Ok((rewritten.origin() == hub.origin()).then_some(rewritten))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_on_docker_hubs_hosts_are_followed_on_the_configured_hub() {
        let loopback = Url::parse("http://127.0.0.1:5000/").unwrap();
        let follow = |next: &str, hub: &Url| follow_next(next, hub).unwrap().map(String::from);
        assert_eq!(
            follow(
                "https://registry.hub.docker.com/v2/repositories/library/rust/tags?page=2&page_size=100",
                &loopback
            )
            .as_deref(),
            Some("http://127.0.0.1:5000/v2/repositories/library/rust/tags?page=2&page_size=100")
        );
        let hub = Url::parse("https://hub.docker.com/").unwrap();
        assert_eq!(
            follow("http://registry.hub.docker.com/v2/x?page=2", &hub).as_deref(),
            Some("https://hub.docker.com/v2/x?page=2")
        );
        assert_eq!(
            follow("https://hub.docker.com/v2/x?page=3", &hub).as_deref(),
            Some("https://hub.docker.com/v2/x?page=3")
        );
        let mirror = Url::parse("https://mirror.example/hub/").unwrap();
        assert_eq!(
            follow("https://hub.docker.com/v2/x?page=2", &mirror).as_deref(),
            Some("https://mirror.example/hub/v2/x?page=2")
        );
        // Never off Docker Hub, whatever the path says.
        for elsewhere in [
            "https://evil.example/v2/x?page=2",
            "https://hub.docker.com.evil.example/v2/x",
            "https://hub.docker.com:8443/v2/x",
            "ftp://hub.docker.com/v2/x",
            "https://index.docker.io/v2/x",
        ] {
            assert_eq!(follow(elsewhere, &hub), None, "{elsewhere}");
        }
        let odd = follow(
            "https://hub.docker.com//evil.example/../x?page=2",
            &loopback,
        );
        assert!(odd.is_some_and(|u| u.starts_with("http://127.0.0.1:5000/")));
        assert!(follow_next("not a link", &hub).is_err());
    }

    #[test]
    fn only_5xx_timeouts_and_unreachable_count_as_docker_hub_failing() {
        assert!(HubError::Status { status: 503 }.is_hub_failure());
        assert!(HubError::Timeout.is_hub_failure());
        assert!(HubError::Unreachable.is_hub_failure());
        for answer in [
            HubError::Status { status: 405 },
            HubError::Status { status: 401 },
            HubError::Status { status: 410 },
            HubError::NotFound,
            HubError::BadAnswer {
                reason: "JSON of another shape".into(),
            },
            HubError::RateLimited {
                retry_in: Duration::from_secs(1),
            },
        ] {
            assert!(!answer.is_hub_failure(), "{answer:?}");
        }
    }
}
