//! The Docker Hub resources the badges derive from, each a [`Resource`] of its own cache:
//! the repository, the newest tags, and one tag with its images. A badge never has a cache
//! entry of its own: every badge of a resource shares its one upstream call per TTL.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::ClientKey;
use super::{CacheSettings, Resource, ResourceCache};
use crate::hub::names::ImageRef;
use crate::hub::repository::{RepoName, RepositoryInfo};
use crate::hub::tag::TagInfo;
use crate::hub::tag_list::TagList;
use crate::hub::{HubClient, HubError};
use crate::metrics::Metrics;

/// How long a repository (pulls, stars, automated) stays fresh: these change slowly, and
/// shields.io keeps them as long.
pub const REPOSITORY_TTL: Duration = Duration::from_secs(3600);
/// How long the tag list stays fresh (shields.io: 600 s for sizes, 900 s for dates).
pub const TAG_LIST_TTL: Duration = Duration::from_secs(600);
/// How long one tag's images stay fresh.
pub const TAG_TTL: Duration = Duration::from_secs(600);

/// `GET /v2/repositories/{org}/{repo}`.
#[derive(Debug, Clone)]
pub struct RepositoryResource(pub Arc<HubClient>);

/// The newest tags, page by page.
#[derive(Debug, Clone)]
pub struct TagListResource(pub Arc<HubClient>);

/// `GET /v2/repositories/{org}/{repo}/tags/{tag}`.
#[derive(Debug, Clone)]
pub struct TagResource(pub Arc<HubClient>);

impl Resource for RepositoryResource {
    type Key = RepoName;
    type Value = RepositoryInfo;
    fn key_of(key: &RepoName) -> Box<str> {
        key.key()
    }
    fn get(
        &self,
        key: &RepoName,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<RepositoryInfo, HubError>> + Send {
        self.0.repository(key, client)
    }
}

impl Resource for TagListResource {
    type Key = RepoName;
    type Value = Arc<TagList>;
    fn key_of(key: &RepoName) -> Box<str> {
        key.key()
    }
    fn get(
        &self,
        key: &RepoName,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<Arc<TagList>, HubError>> + Send {
        self.0.tag_list(key, client)
    }
}

impl Resource for TagResource {
    type Key = ImageRef;
    type Value = Arc<TagInfo>;
    fn key_of(key: &ImageRef) -> Box<str> {
        super::key_of(key)
    }
    fn get(
        &self,
        key: &ImageRef,
        client: Option<ClientKey>,
    ) -> impl Future<Output = Result<Arc<TagInfo>, HubError>> + Send {
        self.0.tag_info(key, client)
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
}
