//! Where errors become answers: each error a route answers with says its HTTP status, its
//! text for the client and when asking again makes sense ([`ErrorAnswer`]), and
//! [`error_response`] turns it into the answer every route family gives,
//! `{"request":"error","description":…}`. What went wrong inside the node goes to the log,
//! never to the client.

use std::fmt;
use std::time::Duration;

use hyper::{Response, StatusCode};

use super::response::{Body, api_error, set_retry_after, shorten};
use crate::driver::loops::GossipRefusal;
use crate::federation::GossipError;
use crate::fill::FillRefusal;
use crate::hub::HubError;
use crate::hub::names::{ImageRef, NameError};

/// An error a route answers with. Its `Display` is the description the client reads: what
/// happened, in the client's terms, without addresses, bodies or other internals.
pub trait ErrorAnswer: fmt::Display {
    /// The answer's status.
    fn status(&self) -> StatusCode;

    /// How long until asking again makes sense, for `Retry-After`.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// What went wrong inside the node, for the log only.
    fn inside(&self) -> Option<String> {
        None
    }
}

/// The answer to `err`: its status and description, `Retry-After` when it says when, and a
/// short `Cache-Control`; what went wrong inside is logged.
pub fn error_response(err: &dyn ErrorAnswer) -> Response<Body> {
    let status = err.status();
    if let Some(inside) = err.inside() {
        tracing::error!(
            status = status.as_u16(),
            description = %err,
            error = %inside,
            "a request failed inside the node"
        );
    }
    let mut response = api_error(status, &err.to_string());
    if let Some(wait) = err.retry_after() {
        set_retry_after(&mut response, wait);
    }
    response
}

/// A failure of the node's own (a task that ended without its answer): the client reads
/// which work failed; the log gets why.
#[derive(Debug)]
pub struct Internal {
    /// The work that failed, as the client reads it.
    pub what: &'static str,
    pub error: String,
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

impl ErrorAnswer for Internal {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn inside(&self) -> Option<String> {
        Some(self.error.clone())
    }
}

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0} body too large")]
    TooLarge(&'static str),
    #[error("could not read the {0} body")]
    Unreadable(&'static str),
    #[error("{0} body took too long")]
    TooSlow(&'static str),
}

impl ErrorAnswer for BodyError {
    fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Unreadable(_) => StatusCode::BAD_REQUEST,
            BodyError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// A path no route serves.
#[derive(Debug)]
pub struct NoSuchRoute<'a>(pub &'a str);

impl fmt::Display for NoSuchRoute<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no such route: {}", shorten(self.0, 100))
    }
}

impl ErrorAnswer for NoSuchRoute<'_> {
    fn status(&self) -> StatusCode {
        StatusCode::NOT_FOUND
    }
}

/// No room to handle a request now; the client asks again in a second.
#[derive(Debug)]
pub struct Busy(pub &'static str);

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl ErrorAnswer for Busy {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

impl ErrorAnswer for GossipRefusal {
    fn status(&self) -> StatusCode {
        match self {
            GossipRefusal::Malformed(_) => StatusCode::BAD_REQUEST,
            GossipRefusal::Refused(err) => match err {
                GossipError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                GossipError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                GossipError::UnsupportedVersion(_)
                | GossipError::BadBucket(_)
                | GossipError::Forged { .. }
                | GossipError::Invalid { .. } => StatusCode::BAD_REQUEST,
            },
        }
    }
}

impl ErrorAnswer for FillRefusal {
    fn status(&self) -> StatusCode {
        match self {
            FillRefusal::Off | FillRefusal::Busy | FillRefusal::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            FillRefusal::RateLimited(_) | FillRefusal::ShareSpent(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            FillRefusal::Malformed(_) | FillRefusal::NoSuchResource | FillRefusal::NotAName => {
                StatusCode::BAD_REQUEST
            }
            FillRefusal::Unlisted | FillRefusal::Refused(_) => StatusCode::FORBIDDEN,
            FillRefusal::Unwritable => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FillRefusal::RateLimited(wait) => Some(*wait),
            FillRefusal::ShareSpent(err) | FillRefusal::Unavailable(err) => err.retry_in(),
            _ => None,
        }
    }
}

impl ErrorAnswer for NameError {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

/// A lookup of `image` that found no answer, as the old JSON API (`/build`) says it: in the
/// old server's words for what does not exist, and for everything else what happened and
/// that nothing is cached.
#[derive(Debug)]
pub struct LookupError<'a> {
    pub err: &'a HubError,
    pub image: &'a ImageRef,
}

impl fmt::Display for LookupError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.err {
            HubError::NotFound => write!(f, "tag {} not found", self.image.tag),
            HubError::RepositoryNotFound => f.write_str("repository not found"),
            err => write!(f, "{err}; nothing cached for {}", self.image),
        }
    }
}

impl ErrorAnswer for LookupError<'_> {
    fn status(&self) -> StatusCode {
        match self.err {
            HubError::NotFound | HubError::RepositoryNotFound => StatusCode::NOT_FOUND,
            err if err.retry_in().is_some() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        self.err.retry_in()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(err: &dyn ErrorAnswer) -> (StatusCode, Option<String>, String) {
        let response = error_response(err);
        let status = response.status();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = response.into_body();
        let bytes = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(body))
            .and_then(Result::ok)
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (
            status,
            retry,
            json["description"].as_str().unwrap_or_default().to_owned(),
        )
    }

    #[test]
    fn lookups_answer_404_503_with_retry_after_or_502() {
        let image = ImageRef::parse("acme", "app", "v1").expect("valid");
        let case = |err: HubError| {
            answer(&LookupError {
                err: &err,
                image: &image,
            })
        };
        assert_eq!(
            case(HubError::NotFound),
            (StatusCode::NOT_FOUND, None, "tag v1 not found".into())
        );
        let (status, retry, text) = case(HubError::Budget {
            retry_in: Duration::from_millis(1500),
        });
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("2"))
        );
        assert!(text.ends_with("nothing cached for acme/app:v1"), "{text}");
        let (status, retry, _) = case(HubError::Timeout);
        assert_eq!((status, retry), (StatusCode::BAD_GATEWAY, None));
    }

    #[test]
    fn fill_refusals_answer_with_their_status_and_when_to_come_back() {
        let share = HubError::ClientShare {
            retry_in: Duration::from_millis(2500),
        };
        let cases = [
            (FillRefusal::Busy, StatusCode::SERVICE_UNAVAILABLE, None),
            (
                FillRefusal::RateLimited(Duration::from_secs(3)),
                StatusCode::TOO_MANY_REQUESTS,
                Some("3"),
            ),
            (
                FillRefusal::Malformed("x".into()),
                StatusCode::BAD_REQUEST,
                None,
            ),
            (FillRefusal::NotAName, StatusCode::BAD_REQUEST, None),
            (FillRefusal::Unlisted, StatusCode::FORBIDDEN, None),
            (
                FillRefusal::Refused(crate::fill::wire::FillError::Replayed),
                StatusCode::FORBIDDEN,
                None,
            ),
            (
                FillRefusal::of_lookup(&share),
                StatusCode::TOO_MANY_REQUESTS,
                Some("3"),
            ),
            (
                FillRefusal::of_lookup(&HubError::Budget {
                    retry_in: Duration::from_secs(7),
                }),
                StatusCode::SERVICE_UNAVAILABLE,
                Some("7"),
            ),
            (
                FillRefusal::of_lookup(&HubError::Timeout),
                StatusCode::SERVICE_UNAVAILABLE,
                None,
            ),
            (
                FillRefusal::Unwritable,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
            ),
        ];
        for (refusal, status, retry) in cases {
            let text = refusal.to_string();
            let (got, got_retry, description) = answer(&refusal);
            assert_eq!((got, got_retry.as_deref()), (status, retry), "{text}");
            assert_eq!(description, text);
        }
    }

    #[test]
    fn an_inside_failure_tells_the_client_only_what_failed() {
        let err = Internal {
            what: "gossip handling failed",
            error: "task 7 panicked at src/secret.rs:12".into(),
        };
        let (status, _, text) = answer(&err);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(text, "gossip handling failed");
    }
}
