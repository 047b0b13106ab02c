//! The tag resource, `GET /v2/namespaces/{org}/repositories/{repo}/tags/{tag}`: an existing
//! tag means the image was built and pushed.

use serde::{Deserialize, Serialize};

use super::{HubError, HubStatus, StatusSource, decode_json};

#[derive(Deserialize)]
pub(crate) struct TagObject {
    name: Option<String>,
    // Docker Hub marks tags `inactive` when not pushed or pulled for a month; the image still
    // exists and was built, so both states report success. The field must be there, though:
    // it is what tells a tag object from any other JSON.
    pub(crate) tag_status: String,
}

/// Reads one tag-endpoint answer body as [`HubClient::status`] does.
pub fn read_tag_object(body: &[u8], tag: &str) -> Result<HubStatus, HubError> {
    tag_verdict(decode_json(body)?, tag)
}

pub(crate) fn tag_verdict(tag: TagObject, wanted: &str) -> Result<HubStatus, HubError> {
    if tag.name.as_deref().is_some_and(|name| name != wanted) {
        return Err(HubError::BadAnswer {
            reason: "the tag object names another tag".into(),
        });
    }
    Ok(HubStatus {
        status: 10,
        source: StatusSource::Tag,
    })
}

/// One tag as `GET /v2/repositories/{org}/{repo}/tags/{tag}` and the tag list describe it:
/// its images, one per platform of a multi-arch tag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TagInfo {
    pub name: String,
    /// The compressed size of the tag's first image, as Docker Hub computes it.
    #[serde(default)]
    pub full_size: Option<u64>,
    /// RFC 3339.
    #[serde(default)]
    pub last_updated: Option<String>,
    /// Null for tags pushed before multi-arch images existed.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub images: Vec<ImageInfo>,
}

/// One image (platform) of a tag.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ImageInfo {
    pub architecture: String,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
}

impl ImageInfo {
    /// Attestation manifests are listed as images of platform `unknown/unknown`.
    pub fn is_platform(&self) -> bool {
        self.architecture != "unknown" && self.os.as_deref() != Some("unknown")
    }
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads one tag answer body as the client does.
pub fn read_tag_info(body: &[u8], tag: &str) -> Result<TagInfo, HubError> {
    let info: TagInfo = decode_json(body)?;
    if info.name != tag {
        return Err(HubError::BadAnswer {
            reason: "the tag object names another tag".into(),
        });
    }
    Ok(info)
}
