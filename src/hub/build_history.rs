//! The build history resource, `GET /v2/repositories/{org}/{repo}/buildhistory/`: one page
//! read, the tag's newest build found or the next page named (on Docker Hub only, see
//! [`follow_next`]). An entry that cannot be read is skipped and counted, never the page.

use serde::Deserialize;
use url::Url;

use super::entries::Entries;
use super::{HubError, HubStatus, StatusSource, decode_json, follow_next};

#[derive(Deserialize)]
pub(crate) struct BuildHistoryPage {
    #[serde(default)]
    next: Option<String>,
    results: Entries<BuildEntry>,
}

#[derive(Deserialize)]
struct BuildEntry {
    #[serde(default)]
    dockertag_name: Option<String>,
    #[serde(default)]
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
/// the hub's JSON, with the same decoding and the same rule for `next`.
///
/// [`HubClient::status`]: super::HubClient::status
pub fn read_build_history_page(body: &[u8], hub: &Url, tag: &str) -> Result<PageVerdict, HubError> {
    page_verdict(decode_json(body)?, hub, tag).map(|(verdict, _)| verdict)
}

/// The page's verdict, and how many of its entries could not be read (a build of the tag
/// without a status among them: the next readable one of the tag answers).
pub(crate) fn page_verdict(
    page: BuildHistoryPage,
    hub: &Url,
    tag: &str,
) -> Result<(PageVerdict, usize), HubError> {
    let mut skipped = page.results.skipped;
    for entry in &page.results.items {
        if entry.dockertag_name.as_deref() != Some(tag) {
            continue;
        }
        match entry.status {
            Some(status) => {
                let found = HubStatus {
                    status,
                    source: StatusSource::BuildHistory,
                };
                return Ok((PageVerdict::Found(found), skipped));
            }
            None => skipped += 1,
        }
    }
    let next = match page.next.as_deref() {
        Some(next) => follow_next(next, hub)?,
        None => None,
    };
    Ok((PageVerdict::Next(next), skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(body: &str) -> (PageVerdict, usize) {
        let hub = Url::parse("http://127.0.0.1:9/").unwrap();
        page_verdict(decode_json(body.as_bytes()).unwrap(), &hub, "latest").unwrap()
    }

    #[test]
    fn an_unreadable_build_is_skipped_and_counted() {
        let (found, skipped) = verdict(
            r#"{"next":null,"results":[
                {"dockertag_name":"latest","status":"10"},
                {"dockertag_name":"latest","status":null},
                {"dockertag_name":"dev","status":3},
                {"dockertag_name":"latest","status":-1}]}"#,
        );
        assert_eq!(
            found,
            PageVerdict::Found(HubStatus {
                status: -1,
                source: StatusSource::BuildHistory
            })
        );
        assert_eq!(skipped, 2);
    }

    #[test]
    fn the_next_page_on_another_docker_hub_host_is_read_on_the_configured_hub() {
        let (next, _) = verdict(
            r#"{"next":"https://hub.docker.com/v2/repositories/a/b/buildhistory/?page=2","results":[]}"#,
        );
        assert_eq!(
            next,
            PageVerdict::Next(Some(
                Url::parse("http://127.0.0.1:9/v2/repositories/a/b/buildhistory/?page=2").unwrap()
            ))
        );
    }
}
