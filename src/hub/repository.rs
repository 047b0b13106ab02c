//! The repository resource, `GET /v2/namespaces/{org}/repositories/{repo}` (the deprecated
//! `GET /v2/repositories/{org}/{repo}` only as a fallback, see [`HubClient::repository`]):
//! pulls, stars, whether builds are automated, and when it was last pushed. Pulls, stars,
//! the automated badge and "repository not found" all derive from one cached answer.
//!
//! [`HubClient::repository`]: super::HubClient::repository

use std::fmt;

use serde::{Deserialize, Serialize};

use super::names::{NameError, Organization, Repository as RepositoryName};
use super::{HubError, decode_json};

/// A repository, `organization/repository`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoName {
    pub organization: Organization,
    pub repository: RepositoryName,
}

impl RepoName {
    /// Checks both names.
    pub fn parse(organization: &str, repository: &str) -> Result<RepoName, NameError> {
        Ok(RepoName {
            organization: Organization::parse(organization)?,
            repository: RepositoryName::parse(repository)?,
        })
    }

    /// `organization/repository`, in one allocation of the exact size (a cache key).
    pub fn key(&self) -> Box<str> {
        [self.organization.as_str(), "/", self.repository.as_str()]
            .concat()
            .into_boxed_str()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.organization, self.repository)
    }
}

/// What the badges read of a repository (and what a fill carries of it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RepositoryInfo {
    pub pull_count: u64,
    pub star_count: u64,
    #[serde(default)]
    pub is_automated: bool,
    /// RFC 3339; absent or null for a repository never pushed.
    #[serde(default)]
    pub last_updated: Option<String>,
}

/// Reads one repository answer body as the client does.
pub fn read_repository(body: &[u8]) -> Result<RepositoryInfo, HubError> {
    decode_json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Repository objects as Docker Hub sent them in 2017 and 2023.
    #[test]
    fn recorded_repository_objects_are_read() {
        let read = |body: &[u8]| {
            let info = read_repository(body).unwrap();
            (info.pull_count, info.star_count, info.is_automated)
        };
        assert_eq!(
            read(include_bytes!(
                "../../tests/fixtures/hub/repository-grimoirelab-perceval-2017.json"
            )),
            (398, 1, true)
        );
        assert_eq!(
            read(include_bytes!(
                "../../tests/fixtures/hub/repository-foo-bar-2023.json"
            )),
            (178_255_909, 68, false)
        );
        assert_eq!(
            read(include_bytes!(
                "../../tests/fixtures/hub/repository-datasetteproject-datasette-2023.json"
            )),
            (72_673, 7, false)
        );
    }
}
