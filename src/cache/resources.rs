//! The Docker Hub resources the badges derive from, each a [`Resource`] of its own cache:
//! the repository, the newest tags, and one tag with its images. A badge never has a cache
//! entry of its own: every badge of a resource shares its one upstream call per TTL.
//!
//! The owner of each is chosen by its API path as Docker Hub first spelled it
//! (`v2/repositories/{org}/{repo}`, `…/tags`, `…/tags/{tag}`, kept although the repository
//! is now read from `v2/namespaces/{org}/repositories/{repo}`, so nodes of every version
//! agree on owners), and the resources of one repository spread over the network's nodes.
//!
//! The build status asks the repository resource too ([`StatusUpstream`]): a tag Docker Hub
//! does not have is "repository not found" when the repository is missing as well.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{CacheSettings, Resource, ResourceCache, parse_image_key};
use super::{ClientKey, Upstream};
use crate::fill::verify::{self, Verdict};
use crate::fill::wire::{ANSWER_ENVELOPE_BYTES, MAX_FILL_ANSWER_BYTES};
use crate::fill::{Filler, SupplierId};
use crate::hub::names::ImageRef;
use crate::hub::repository::{RepoName, RepositoryInfo};
use crate::hub::tag::TagInfo;
use crate::hub::tag_list::{MAX_TAG_PAGES, TagList};
use crate::hub::{HubClient, HubError, HubStatus, parse_time};
use crate::metrics::Metrics;

/// How long a repository (pulls, stars, automated) stays fresh: these change slowly, and
/// shields.io keeps them as long.
pub const REPOSITORY_TTL: Duration = Duration::from_secs(3600);
/// How long the tag list stays fresh (shields.io: 600 s for sizes, 900 s for dates).
pub const TAG_LIST_TTL: Duration = Duration::from_secs(600);
/// How long one tag's images stay fresh.
pub const TAG_TTL: Duration = Duration::from_secs(600);

/// `GET /v2/namespaces/{org}/repositories/{repo}` ([`HubClient::repository`]).
#[derive(Debug, Clone)]
pub struct RepositoryResource(pub Arc<HubClient>);

/// The newest tags, page by page.
#[derive(Debug, Clone)]
pub struct TagListResource(pub Arc<HubClient>);

/// `GET /v2/repositories/{org}/{repo}/tags/{tag}`.
#[derive(Debug, Clone)]
pub struct TagResource(pub Arc<HubClient>);

/// `organization/repository` back into a checked name.
fn parse_repo_key(text: &str) -> Option<RepoName> {
    let (organization, repository) = text.split_once('/')?;
    RepoName::parse(organization, repository).ok()
}

fn read<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
    // serde's message may quote a whole field of the answer: only its start is kept.
    serde_json::from_str(json).map_err(|e| e.to_string().chars().take(160).collect())
}

/// A tag's images as another node supplied them: as many as a real tag has at most. A
/// multi-platform official image has about ten platforms and as many attestation entries
/// (`unknown/unknown`); a few dozen is the most Docker Hub shows. The answers recorded in
/// `tests/fixtures/hub/` have at most 12 images, platform names of at most 7 characters and
/// sha256 digests (71): each bound below leaves at least twice the room, the image count
/// five times.
const MAX_IMAGES: usize = 64;
/// Longest architecture, OS and variant names (`riscv64`, `windows`, `v8` are the real ones).
const MAX_PLATFORM_NAME: usize = 32;
/// Longest digest: `sha256:` and 64 hex digits, with room for a longer hash.
const MAX_DIGEST: usize = 160;
/// Longest tag name Docker Hub allows, and longest time it writes.
const MAX_TAG_NAME: usize = 128;
const MAX_TIME: usize = 40;
/// One image as the caches write it, at the longest the checks above allow.
const MAX_IMAGE_BYTES: usize = 3 * MAX_PLATFORM_NAME + MAX_DIGEST + MAX_TIME + 160;
/// One tag as the caches write it, at the longest the checks above allow: about 29 KB,
/// where a real tag of a dozen platforms is 2–4 KB.
const MAX_TAG_BYTES: usize = MAX_TAG_NAME + 2 * MAX_TIME + 160 + MAX_IMAGES * MAX_IMAGE_BYTES;

fn check_tag(info: &TagInfo, tag: Option<&str>) -> Result<(), String> {
    if tag.is_some_and(|tag| info.name != tag) {
        return Err("the tag object names another tag".into());
    }
    let long = |text: &Option<String>, max: usize| text.as_ref().is_some_and(|t| t.len() > max);
    if info.name.len() > MAX_TAG_NAME
        || long(&info.last_updated, MAX_TIME)
        || long(&info.tag_last_pushed, MAX_TIME)
    {
        return Err("a tag name or time longer than Docker Hub writes".into());
    }
    if info.images.len() > MAX_IMAGES {
        return Err("more images than a tag has".into());
    }
    if info.images.iter().any(|image| {
        image.architecture.len() > MAX_PLATFORM_NAME
            || long(&image.os, MAX_PLATFORM_NAME)
            || long(&image.variant, MAX_PLATFORM_NAME)
            || long(&image.digest, MAX_DIGEST)
            || long(&image.last_pushed, MAX_TIME)
    }) {
        return Err("an image with a platform or digest longer than Docker Hub writes".into());
    }
    Ok(())
}

/// When a tag was pushed, as it says.
fn pushed_at(info: &TagInfo) -> Option<SystemTime> {
    info.pushed_at().and_then(parse_time)
}

impl Resource for RepositoryResource {
    type Key = RepoName;
    type Value = RepositoryInfo;
    const KIND: &'static str = "repository";
    /// Four numbers and a time.
    const MAX_FILL_BYTES: usize = ANSWER_ENVELOPE_BYTES + 512;
    fn key_of(key: &RepoName) -> Box<str> {
        key.key()
    }
    fn owner_key(key: &RepoName) -> String {
        format!("v2/repositories/{key}")
    }
    fn parse_key(text: &str) -> Option<RepoName> {
        parse_repo_key(text)
    }
    fn get(
        &self,
        key: &RepoName,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<RepositoryInfo, HubError>> + Send {
        self.0.repository(key, client)
    }
    fn has_room(&self) -> bool {
        self.0.has_room()
    }
    fn charge(&self, client: ClientKey) -> Result<(), HubError> {
        self.0.spend_share(client)
    }
    fn write_value(value: &RepositoryInfo) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }
    fn read_value(_key: &RepoName, json: &str) -> Result<RepositoryInfo, String> {
        let info: RepositoryInfo = read(json)?;
        if info
            .last_updated
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TIME)
        {
            return Err("a time longer than Docker Hub writes".into());
        }
        Ok(info)
    }
    fn pushed(value: &RepositoryInfo) -> Option<SystemTime> {
        value.last_updated.as_deref().and_then(parse_time)
    }
    fn explains(
        filled: &Result<RepositoryInfo, HubError>,
        hub: &Result<RepositoryInfo, HubError>,
        filled_at: SystemTime,
        now: SystemTime,
    ) -> Verdict {
        verify::repository(filled, hub, filled_at, now)
    }
}

impl Resource for TagListResource {
    type Key = RepoName;
    type Value = Arc<TagList>;
    const KIND: &'static str = "tag_list";
    /// Up to 1,000 tags: real lists of that length with their images reach a megabyte
    /// (larger ones are read from Docker Hub, ten pages at most).
    const MAX_FILL_BYTES: usize = MAX_FILL_ANSWER_BYTES;
    fn key_of(key: &RepoName) -> Box<str> {
        key.key()
    }
    fn owner_key(key: &RepoName) -> String {
        format!("v2/repositories/{key}/tags")
    }
    fn parse_key(text: &str) -> Option<RepoName> {
        parse_repo_key(text)
    }
    fn get(
        &self,
        key: &RepoName,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<Arc<TagList>, HubError>> + Send {
        self.0.tag_list(key, client)
    }
    fn has_room(&self) -> bool {
        self.0.has_room()
    }
    fn charge(&self, client: ClientKey) -> Result<(), HubError> {
        self.0.spend_share(client)
    }
    fn write_value(value: &Arc<TagList>) -> String {
        serde_json::to_string(value.as_ref()).unwrap_or_default()
    }
    fn read_value(_key: &RepoName, json: &str) -> Result<Arc<TagList>, String> {
        let list: TagList = read(json)?;
        if list.tags.len() > MAX_TAG_PAGES * 100 {
            return Err("more tags than the list holds".into());
        }
        for tag in &list.tags {
            check_tag(tag, None)?;
        }
        Ok(Arc::new(list))
    }
    fn pushed(value: &Arc<TagList>) -> Option<SystemTime> {
        value.tags.iter().filter_map(pushed_at).max()
    }
    fn explains(
        filled: &Result<Arc<TagList>, HubError>,
        hub: &Result<Arc<TagList>, HubError>,
        filled_at: SystemTime,
        _now: SystemTime,
    ) -> Verdict {
        verify::tag_list(filled, hub, filled_at)
    }
}

impl Resource for TagResource {
    type Key = ImageRef;
    type Value = Arc<TagInfo>;
    const KIND: &'static str = "tag";
    /// A tag with a few dozen images is kilobytes.
    const MAX_FILL_BYTES: usize = ANSWER_ENVELOPE_BYTES + MAX_TAG_BYTES;
    fn key_of(key: &ImageRef) -> Box<str> {
        super::key_of(key)
    }
    fn owner_key(key: &ImageRef) -> String {
        format!(
            "v2/repositories/{}/{}/tags/{}",
            key.organization, key.repository, key.tag
        )
    }
    fn parse_key(text: &str) -> Option<ImageRef> {
        parse_image_key(text)
    }
    fn get(
        &self,
        key: &ImageRef,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<Arc<TagInfo>, HubError>> + Send {
        self.0.tag_info(key, client)
    }
    fn has_room(&self) -> bool {
        self.0.has_room()
    }
    fn charge(&self, client: ClientKey) -> Result<(), HubError> {
        self.0.spend_share(client)
    }
    fn write_value(value: &Arc<TagInfo>) -> String {
        serde_json::to_string(value.as_ref()).unwrap_or_default()
    }
    fn read_value(key: &ImageRef, json: &str) -> Result<Arc<TagInfo>, String> {
        let info: TagInfo = read(json)?;
        check_tag(&info, Some(key.tag.as_str()))?;
        Ok(Arc::new(info))
    }
    fn pushed(value: &Arc<TagInfo>) -> Option<SystemTime> {
        pushed_at(value)
    }
    fn explains(
        filled: &Result<Arc<TagInfo>, HubError>,
        hub: &Result<Arc<TagInfo>, HubError>,
        filled_at: SystemTime,
        _now: SystemTime,
    ) -> Verdict {
        verify::tag(filled, hub, filled_at)
    }
}

/// The build status as the status cache asks it: the hub client's, where a missing tag is
/// told "repository not found" when the repository resource says the repository is missing.
/// The repository is asked only once the tag is missing, so a found image costs no more of
/// the budget, and through its cache, which pulls and stars keep anyway (a `GET`: Docker Hub
/// answered `HEAD` with 405 for a day, and the answer is worth keeping).
#[derive(Debug, Clone)]
pub struct StatusUpstream {
    hub: Arc<HubClient>,
    repository: ResourceCache<RepositoryResource>,
}

impl StatusUpstream {
    /// The status of `hub`'s images, asking `repository` when a tag is missing.
    pub fn new(hub: Arc<HubClient>, repository: ResourceCache<RepositoryResource>) -> Self {
        StatusUpstream { hub, repository }
    }

    /// Why a tag is missing: the whole repository, or only the tag. When the repository
    /// cannot be asked now (a 429, Docker Hub failing), the tag is still missing.
    async fn missing(&self, image: &ImageRef, client: Option<ClientKey>) -> HubError {
        let repo = RepoName {
            organization: image.organization.clone(),
            repository: image.repository.clone(),
        };
        match self.repository.get_for(&repo, client).await.result {
            Err(HubError::NotFound | HubError::RepositoryNotFound) => HubError::RepositoryNotFound,
            _ => HubError::NotFound,
        }
    }
}

impl Upstream for StatusUpstream {
    async fn fetch(
        &self,
        image: &ImageRef,
        client: Option<ClientKey>,
    ) -> Result<HubStatus, HubError> {
        match self.hub.status_for(image, client).await {
            Err(HubError::NotFound) => Err(self.missing(image, client).await),
            other => other,
        }
    }
    fn has_room(&self) -> bool {
        self.hub.has_room()
    }
    fn charge(&self, client: ClientKey) -> Result<(), HubError> {
        self.hub.spend_share(client)
    }
}

/// The caches of the Docker badges' resources, one per resource, sharing the node's hub
/// client (and so its budget) and the status cache's capacity and stale limit.
#[derive(Debug, Clone)]
pub struct DockerCaches {
    pub repository: ResourceCache<RepositoryResource>,
    pub tag_list: ResourceCache<TagListResource>,
    pub tag: ResourceCache<TagResource>,
}

impl DockerCaches {
    /// The three caches in front of `hub`; `status` gives capacity and `max_stale`.
    pub fn new(hub: &Arc<HubClient>, status: CacheSettings, metrics: &Metrics) -> DockerCaches {
        let with_ttl = |ttl| CacheSettings { ttl, ..status };
        DockerCaches {
            repository: ResourceCache::for_resource(
                RepositoryResource(Arc::clone(hub)),
                with_ttl(REPOSITORY_TTL),
                metrics.clone(),
            ),
            tag_list: ResourceCache::for_resource(
                TagListResource(Arc::clone(hub)),
                // A list is up to ten pages of 100 tags (a megabyte or so): far fewer of
                // them are kept than statuses.
                CacheSettings {
                    capacity: status.capacity.clamp(1, 1000),
                    ..with_ttl(TAG_LIST_TTL)
                },
                metrics.clone(),
            ),
            tag: ResourceCache::for_resource(
                TagResource(Arc::clone(hub)),
                with_ttl(TAG_TTL),
                metrics.clone(),
            ),
        }
    }

    /// The three caches asking `filler` on a miss before Docker Hub.
    pub fn filled_by(self, filler: &Arc<dyn Filler>) -> DockerCaches {
        DockerCaches {
            repository: self.repository.filled_by(Arc::clone(filler)),
            tag_list: self.tag_list.filled_by(Arc::clone(filler)),
            tag: self.tag.filled_by(Arc::clone(filler)),
        }
    }

    /// Their purgers ([`ResourceCache::purger`]).
    pub fn purgers(&self) -> [Box<dyn Fn(SupplierId) + Send + Sync>; 3] {
        [
            Box::new(self.repository.purger()),
            Box::new(self.tag_list.purger()),
            Box::new(self.tag.purger()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fill::wire::ANSWER_ENVELOPE_BYTES;

    #[derive(serde::Deserialize)]
    struct Page {
        results: Vec<TagInfo>,
    }

    /// Every tag of Docker Hub's recorded tag lists travels in a fill, well within its bound.
    #[test]
    fn recorded_answers_fit_the_fill_bounds() {
        for (name, page) in [
            (
                "tags-crazymax-diun-2023.json",
                include_str!("../../tests/fixtures/hub/tags-crazymax-diun-2023.json"),
            ),
            (
                "tags-library-debian-page1-2019.json",
                include_str!("../../tests/fixtures/hub/tags-library-debian-page1-2019.json"),
            ),
        ] {
            let page: Page = serde_json::from_str(page).expect(name);
            let mut largest = 0;
            for tag in &page.results {
                let image = ImageRef::parse("library", "x", &tag.name).expect("a tag name");
                let json = TagResource::write_value(&Arc::new(tag.clone()));
                largest = largest.max(json.len());
                assert_eq!(
                    TagResource::read_value(&image, &json).as_deref(),
                    Ok(tag),
                    "{name}: {}",
                    tag.name
                );
            }
            assert!(largest * 8 < TagResource::MAX_FILL_BYTES - ANSWER_ENVELOPE_BYTES);
            let list = Arc::new(TagList {
                count: page.results.len() as u64,
                tags: page.results,
                truncated: false,
            });
            let repo = RepoName::parse("library", "x").expect("a name");
            let json = TagListResource::write_value(&list);
            assert!(json.len() < TagListResource::MAX_FILL_BYTES, "{name}");
            assert!(TagListResource::read_value(&repo, &json).is_ok(), "{name}");
        }
    }
}
