//! The build history resource, `GET /v2/repositories/{org}/{repo}/buildhistory/`: one page
//! read, the tag's newest build found or the next page named (on the hub's origin only).

use serde::Deserialize;
use url::Url;

use super::{HubError, HubStatus, StatusSource, decode_json};

#[derive(Deserialize)]
pub(crate) struct BuildHistoryPage {
    next: Option<String>,
    results: Vec<BuildEntry>,
}

#[derive(Deserialize)]
struct BuildEntry {
    dockertag_name: Option<String>,
    status: Option<i64>,
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

pub(crate) fn page_verdict(
    page: BuildHistoryPage,
    hub: &Url,
    tag: &str,
) -> Result<PageVerdict, HubError> {
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
