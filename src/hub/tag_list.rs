//! The tag list resource, `GET /v2/repositories/{org}/{repo}/tags?page_size=100&ordering=last_updated`:
//! the newest tags first, read page by page following `next` (on the hub's own origin only),
//! at most [`MAX_TAG_PAGES`] pages. The version, size, last-updated and platform badges of a
//! repository without a tag in the URL all derive from one cached list.

use serde::{Deserialize, Serialize};
use url::Url;

use super::tag::TagInfo;
use super::{HubError, decode_json};

/// Pages of 100 tags read at most: the newest 1,000 tags. shields.io reads every page
/// (`ceil(count / 100)` requests at once), so one repository with 20,000 tags costs 200
/// requests; here one list costs at most ten, a bounded share of the per-minute budget, and
/// the newest thousand tags hold the latest version of every repository we know of.
pub const MAX_TAG_PAGES: usize = 10;

/// One page as the hub sends it.
#[derive(Deserialize)]
pub(crate) struct TagPage {
    pub(crate) count: u64,
    pub(crate) next: Option<String>,
    pub(crate) results: Vec<TagInfo>,
}

/// The newest tags of a repository, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagList {
    /// How many tags the hub says the repository has.
    pub count: u64,
    pub tags: Vec<TagInfo>,
    /// Whether the hub had more tags than [`MAX_TAG_PAGES`] pages hold.
    pub truncated: bool,
}

/// What one page means for reading the list.
#[derive(Debug)]
pub(crate) enum Step {
    /// Read this page next.
    Next(Url),
    /// The list is complete (or the bound is reached).
    Done,
}

/// Adds `page` (the `index`th, from 0) to `list` and says what to read next. A `next` link
/// off the hub's origin, one already read, or pages beyond the tag count the hub declared
/// are garbage, not more tags.
pub(crate) fn add_page(
    list: &mut TagList,
    page: TagPage,
    hub: &Url,
    read: &[Url],
) -> Result<Step, HubError> {
    list.count = page.count;
    list.tags.extend(page.results);
    let Some(next) = page.next else {
        return Ok(Step::Done);
    };
    let next = Url::parse(&next).map_err(|_| HubError::BadAnswer {
        reason: "an unreadable next link".into(),
    })?;
    if next.origin() != hub.origin() {
        tracing::warn!(next = %next, "tag list points off the hub's origin; not followed");
        return Ok(Step::Done);
    }
    if read.contains(&next) {
        return Err(HubError::BadAnswer {
            reason: "a tag list whose next link repeats a page".into(),
        });
    }
    if list.tags.len() as u64 >= list.count {
        return Err(HubError::BadAnswer {
            reason: "a tag list that pages past its own count".into(),
        });
    }
    if read.len() >= MAX_TAG_PAGES {
        list.truncated = true;
        return Ok(Step::Done);
    }
    Ok(Step::Next(next))
}

/// Reads one tag-list page body as the client does (the fuzzers' way in).
pub fn read_tag_page(body: &[u8]) -> Result<(u64, Vec<TagInfo>), HubError> {
    let page: TagPage = decode_json(body)?;
    Ok((page.count, page.results))
}
