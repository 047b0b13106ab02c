//! The tag list resource, `GET /v2/repositories/{org}/{repo}/tags?page_size=100&ordering=last_updated`:
//! the newest tags first, read page by page following `next` (on Docker Hub only, see
//! [`follow_next`]), at most [`MAX_TAG_PAGES`] pages. The version, size, last-updated and
//! platform badges of a repository without a tag in the URL all derive from one cached list.
//!
//! Pages are read one after another while tags are pushed and deleted, so the list moves
//! under the reader: the `count` may change from page to page, a tag pushed meanwhile pushes
//! the last tag of one page onto the next (read twice: kept once), and a page past the new
//! end answers 404 (the list ends there). None of that is an error.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use url::Url;

use super::entries::Entries;
use super::tag::{HubTag, TagInfo};
use super::{HubError, decode_json, follow_next};

/// Pages of 100 tags read at most: the newest 1,000 tags. shields.io reads every page
/// (`ceil(count / 100)` requests at once), so one repository with 20,000 tags costs 200
/// requests; here one list costs at most ten, a bounded share of the per-minute budget, and
/// the newest thousand tags hold the latest version of every repository we know of.
pub const MAX_TAG_PAGES: usize = 10;

/// One page as the hub sends it.
#[derive(Deserialize)]
pub(crate) struct TagPage {
    #[serde(default)]
    pub(crate) count: Option<u64>,
    #[serde(default)]
    pub(crate) next: Option<String>,
    pub(crate) results: Entries<HubTag>,
}

/// The newest tags of a repository, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagList {
    /// How many tags the hub says the repository has (on the last page read).
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

/// Adds `page` to `list` and says what to read next, with how many of the page's entries
/// (tags, and images within them) could not be read. `read` holds the pages read so far,
/// this one included. A `next` link off Docker Hub is not followed; one already read, or
/// a page that adds no tag yet names another, is garbage, not more tags.
pub(crate) fn add_page(
    list: &mut TagList,
    page: TagPage,
    hub: &Url,
    read: &[Url],
) -> Result<(Step, usize), HubError> {
    let mut skipped = page.results.skipped;
    let known: HashSet<String> = list.tags.iter().map(|t| t.name.clone()).collect();
    let before = list.tags.len();
    for tag in page.results.items {
        let (info, images_skipped) = tag.into_info();
        skipped += images_skipped;
        // A tag pushed while the pages were read is on two of them: the newer place wins.
        if !known.contains(&info.name) && !list.tags[before..].iter().any(|t| t.name == info.name) {
            list.tags.push(info);
        }
    }
    let added = list.tags.len() - before;
    list.count = page
        .count
        .unwrap_or(list.tags.len() as u64)
        .max(list.tags.len() as u64);
    let Some(next) = page.next else {
        return Ok((Step::Done, skipped));
    };
    let Some(next) = follow_next(&next, hub)? else {
        return Ok((Step::Done, skipped));
    };
    if read.contains(&next) {
        return Err(HubError::BadAnswer {
            reason: "a tag list whose next link repeats a page".into(),
        });
    }
    if added == 0 {
        return Err(HubError::BadAnswer {
            reason: "a tag list page without new tags that names another page".into(),
        });
    }
    if read.len() >= MAX_TAG_PAGES {
        list.truncated = true;
        return Ok((Step::Done, skipped));
    }
    Ok((Step::Next(next), skipped))
}

/// Reads one tag-list page body as the client does (the fuzzers' way in): the count, the
/// tags that could be read, and how many entries could not.
pub fn read_tag_page(body: &[u8]) -> Result<(u64, Vec<TagInfo>, usize), HubError> {
    let page: TagPage = decode_json(body)?;
    let mut skipped = page.results.skipped;
    let tags: Vec<TagInfo> = page
        .results
        .items
        .into_iter()
        .map(|tag| {
            let (info, images_skipped) = tag.into_info();
            skipped += images_skipped;
            info
        })
        .collect();
    let count = page.count.unwrap_or(tags.len() as u64);
    Ok((count, tags, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(count: u64, next: Option<&str>, names: &[&str]) -> TagPage {
        let results: Vec<String> = names
            .iter()
            .map(|n| format!(r#"{{"name":"{n}","images":[]}}"#))
            .collect();
        let body = serde_json::json!({"count": count, "next": next}).to_string();
        let body = format!(
            "{},\"results\":[{}]}}",
            &body[..body.len() - 1],
            results.join(",")
        );
        decode_json(body.as_bytes()).unwrap()
    }

    fn empty() -> TagList {
        TagList {
            count: 0,
            tags: Vec::new(),
            truncated: false,
        }
    }

    #[test]
    fn a_count_that_changes_between_pages_is_no_error_and_a_tag_read_twice_is_kept_once() {
        let hub = Url::parse("http://127.0.0.1:9/").unwrap();
        let first = hub.join("v2/t?page=1").unwrap();
        let mut list = empty();
        let (step, _) = add_page(
            &mut list,
            page(3, Some("https://hub.docker.com/v2/t?page=2"), &["c", "b"]),
            &hub,
            std::slice::from_ref(&first),
        )
        .unwrap();
        let Step::Next(second) = step else {
            panic!("{step:?}")
        };
        assert_eq!(second.as_str(), "http://127.0.0.1:9/v2/t?page=2");
        // A tag was pushed meanwhile: `b` moved to page 2, and the count grew.
        let (step, _) = add_page(
            &mut list,
            page(4, None, &["b", "a"]),
            &hub,
            &[first, second],
        )
        .unwrap();
        assert!(matches!(step, Step::Done));
        let names: Vec<&str> = list.tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["c", "b", "a"]);
        assert_eq!(list.count, 4);
    }

    #[test]
    fn a_count_that_shrinks_below_the_tags_read_is_no_error() {
        let hub = Url::parse("http://127.0.0.1:9/").unwrap();
        let mut read = vec![hub.join("v2/t?page=1").unwrap()];
        let mut list = empty();
        let next = Some("http://127.0.0.1:9/v2/t?page=2");
        add_page(&mut list, page(4, next, &["d", "c"]), &hub, &read).unwrap();
        read.push(hub.join("v2/t?page=2").unwrap());
        // Two tags were deleted meanwhile: the hub counts 2, and still names a third page.
        let next = Some("http://127.0.0.1:9/v2/t?page=3");
        let (step, _) = add_page(&mut list, page(2, next, &["b"]), &hub, &read).unwrap();
        assert!(matches!(step, Step::Next(_)), "{step:?}");
        assert_eq!(list.count, 3, "never fewer than the tags read");
    }

    #[test]
    fn a_page_without_new_tags_that_names_another_is_garbage() {
        let hub = Url::parse("http://127.0.0.1:9/").unwrap();
        let read = [hub.join("v2/t?page=1").unwrap()];
        let mut list = empty();
        let endless = page(2, Some("http://127.0.0.1:9/v2/t?page=2"), &[]);
        assert!(add_page(&mut list, endless, &hub, &read).is_err());
        let repeating = page(2, Some("http://127.0.0.1:9/v2/t?page=1"), &["a"]);
        assert!(add_page(&mut empty(), repeating, &hub, &read).is_err());
    }

    /// Recorded pages: library/debian's of 2019 (no `tag_status`, `next` on
    /// registry.hub.docker.com with a slash before the query) and crazymax/diun's of 2023
    /// (`next` on hub.docker.com): every tag read, the next page asked of the configured hub.
    #[test]
    fn recorded_pages_are_read_whole_and_their_next_pages_asked_here() {
        let hub = Url::parse("http://127.0.0.1:9/").unwrap();
        for (body, tags, next) in [
            (
                &include_bytes!("../../tests/fixtures/hub/tags-library-debian-page1-2019.json")[..],
                10,
                "http://127.0.0.1:9/v2/repositories/library/debian/tags/?page=2",
            ),
            (
                &include_bytes!("../../tests/fixtures/hub/tags-crazymax-diun-page1-2023.json")[..],
                10,
                "http://127.0.0.1:9/v2/repositories/crazymax/diun/tags?page=2",
            ),
        ] {
            let mut list = empty();
            let read = [hub.join("v2/first").unwrap()];
            let (step, skipped) =
                add_page(&mut list, decode_json(body).unwrap(), &hub, &read).unwrap();
            assert_eq!((list.tags.len(), skipped), (tags, 0));
            let Step::Next(url) = step else {
                panic!("{step:?}")
            };
            assert_eq!(url.as_str(), next);
        }
        let whole = include_bytes!("../../tests/fixtures/hub/tags-crazymax-diun-2023.json");
        let (count, tags, skipped) = read_tag_page(whole).unwrap();
        assert_eq!((count, tags.len(), skipped), (79, 79, 0));
    }

    #[test]
    fn one_unreadable_tag_is_skipped_and_the_page_kept() {
        let (count, tags, skipped) = read_tag_page(
            br#"{"count":3,"next":null,"results":[
                {"name":"1.0","images":[{"architecture":null},{"architecture":"amd64"}]},
                {"name":null},
                {"name":"0.9","full_size":-1},
                {"name":"0.8","images":null}]}"#,
        )
        .unwrap();
        assert_eq!(count, 3);
        let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["1.0", "0.8"]);
        assert_eq!(tags[0].images.len(), 1);
        assert_eq!(skipped, 3);
    }
}
