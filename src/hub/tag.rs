//! The tag resource in its two forms: `GET /v2/namespaces/{org}/repositories/{repo}/tags/{tag}`
//! for the build status (an existing tag means the image was built and pushed), and
//! `GET /v2/repositories/{org}/{repo}/tags/{tag}` (one entry of the tag list) with the tag's
//! images, one per platform of a multi-arch tag.

use serde::{Deserialize, Serialize};

use super::entries::Entries;
use super::{HubError, HubStatus, StatusSource, decode_json, parse_time};

/// The tag object as the build status reads it.
#[derive(Deserialize)]
pub(crate) struct TagObject {
    /// What tells a tag object from any other JSON: it names the tag asked for.
    name: String,
    // Docker Hub marks tags `inactive` when not pushed or pulled for a month; the image still
    // exists and was built, so every state reports success. Tags of the pre-2020 shape have
    // no `tag_status`, and Docker's schema marks it optional: missing means active.
    #[serde(default)]
    pub(crate) tag_status: Option<String>,
}

/// Reads one tag-endpoint answer body as [`HubClient::status`] does.
///
/// [`HubClient::status`]: super::HubClient::status
pub fn read_tag_object(body: &[u8], tag: &str) -> Result<HubStatus, HubError> {
    tag_verdict(decode_json(body)?, tag)
}

pub(crate) fn tag_verdict(tag: TagObject, wanted: &str) -> Result<HubStatus, HubError> {
    if tag.name != wanted {
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
/// its images, one per platform of a multi-arch tag. This is also what a fill carries, so
/// fields older nodes do not know are optional and written only when present.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TagInfo {
    pub name: String,
    /// The compressed size Docker Hub computes for the tag; 0 or null on some multi-arch
    /// tags, whose images carry their sizes.
    #[serde(default)]
    pub full_size: Option<u64>,
    /// RFC 3339.
    #[serde(default)]
    pub last_updated: Option<String>,
    /// When the tag was last pushed (RFC 3339); read when `last_updated` is null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_last_pushed: Option<String>,
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
    /// When this image was last pushed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pushed: Option<String>,
}

impl ImageInfo {
    /// Attestation manifests are listed as images of platform `unknown/unknown`; they are
    /// no platform, and count nowhere (platforms, size, version).
    pub fn is_platform(&self) -> bool {
        self.architecture != "unknown" && self.os.as_deref() != Some("unknown")
    }

    /// The variant, or the one an image of this architecture has when it names none: `v7`
    /// for `arm` and `v8` for `arm64`, as the OCI image index and containerd's platform
    /// matching read a missing variant.
    pub fn variant_or_default(&self) -> Option<&str> {
        match self.variant.as_deref().filter(|v| !v.is_empty()) {
            Some(variant) => Some(variant),
            None => match self.architecture.as_str() {
                "arm" => Some("v7"),
                "arm64" => Some("v8"),
                _ => None,
            },
        }
    }
}

impl TagInfo {
    /// The tag's platform images in Docker Hub's order, attestations left out.
    pub fn platforms(&self) -> impl Iterator<Item = &ImageInfo> {
        self.images.iter().filter(|i| i.is_platform())
    }

    /// The image of `architecture` (and `variant`, when asked): the first in Docker Hub's
    /// order, as shields.io's `images.find(i => i.architecture === arch)` takes it, so
    /// `arm` is whichever `arm` image the hub lists first (v6 before v7 on most tags).
    pub fn image_for(&self, architecture: &str, variant: Option<&str>) -> Option<&ImageInfo> {
        self.platforms().find(|i| {
            i.architecture == architecture
                && variant.is_none_or(|wanted| i.variant_or_default() == Some(wanted))
        })
    }

    /// When the tag was last pushed: `last_updated`, else `tag_last_pushed`, else the
    /// newest push of its images; `None` when none of them is a date.
    pub fn pushed_at(&self) -> Option<&str> {
        fn readable(time: &Option<String>) -> Option<&str> {
            time.as_deref().filter(|t| parse_time(t).is_some())
        }
        readable(&self.last_updated)
            .or_else(|| readable(&self.tag_last_pushed))
            .or_else(|| {
                self.platforms()
                    .filter_map(|i| {
                        let text = i.last_pushed.as_deref()?;
                        Some((parse_time(text)?, text))
                    })
                    .max_by_key(|(at, _)| *at)
                    .map(|(_, text)| text)
            })
    }
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A tag as Docker Hub sends it: images read one by one ([`Entries`]).
#[derive(Deserialize)]
pub(crate) struct HubTag {
    name: String,
    #[serde(default)]
    full_size: Option<u64>,
    #[serde(default)]
    last_updated: Option<String>,
    #[serde(default)]
    tag_last_pushed: Option<String>,
    #[serde(default)]
    images: Entries<ImageInfo>,
}

impl HubTag {
    /// The tag, and how many of its images could not be read.
    pub(crate) fn into_info(self) -> (TagInfo, usize) {
        let skipped = self.images.skipped;
        let info = TagInfo {
            name: self.name,
            full_size: self.full_size,
            last_updated: self.last_updated,
            tag_last_pushed: self.tag_last_pushed,
            images: self.images.items,
        };
        (info, skipped)
    }
}

/// Reads one tag answer body as the client does: the tag, and how many of its images were
/// left out.
pub(crate) fn decode_tag_info(body: &[u8], tag: &str) -> Result<(TagInfo, usize), HubError> {
    let (info, skipped) = decode_json::<HubTag>(body)?.into_info();
    if info.name != tag {
        return Err(HubError::BadAnswer {
            reason: "the tag object names another tag".into(),
        });
    }
    Ok((info, skipped))
}

/// Reads one tag answer body as the client does.
pub fn read_tag_info(body: &[u8], tag: &str) -> Result<TagInfo, HubError> {
    decode_tag_info(body, tag).map(|(info, _)| info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(platform: &str, variant: Option<&str>) -> ImageInfo {
        let (os, architecture) = platform.split_once('/').unwrap_or(("linux", platform));
        ImageInfo {
            architecture: architecture.into(),
            os: Some(os.into()),
            variant: variant.map(Into::into),
            digest: Some(format!("sha256:{platform}{variant:?}")),
            size: Some(1),
            last_pushed: None,
        }
    }

    #[test]
    fn a_tag_object_without_tag_status_is_an_active_tag() {
        let status = read_tag_object(br#"{"name":"latest","full_size":5}"#, "latest").unwrap();
        assert_eq!(status.status, 10);
        let status = read_tag_object(br#"{"name":"1.0","tag_status":"inactive"}"#, "1.0").unwrap();
        assert_eq!(status.status, 10);
        // Other JSON is still no tag.
        assert!(read_tag_object(br#"{"tag_status":"active"}"#, "latest").is_err());
        assert!(read_tag_object(br#"{"name":"other"}"#, "latest").is_err());
    }

    /// A tag object of 2019 (library/debian's tag list, recorded by goodwithtech/dockertags),
    /// which has no `tag_status`, as the tag endpoint would answer it.
    #[test]
    fn the_recorded_2019_tag_without_tag_status_is_built() {
        let page: serde_json::Value = serde_json::from_slice(include_bytes!(
            "../../tests/fixtures/hub/tags-library-debian-page1-2019.json"
        ))
        .unwrap();
        let tag = &page["results"][0];
        assert!(tag.get("tag_status").is_none());
        let body = serde_json::to_vec(tag).unwrap();
        let status = read_tag_object(&body, "unstable-slim").unwrap();
        assert_eq!(status.status, 10);
    }

    /// library/rust's `1.44.0-slim`, recorded in 2026: `full_size: 0`, four images with
    /// their sizes, no top-level digest.
    #[test]
    fn the_recorded_multi_arch_tag_with_full_size_0_is_read() {
        let (tag, skipped) = decode_tag_info(
            include_bytes!("../../tests/fixtures/hub/tag-library-rust-1.44.0-slim-2026.json"),
            "1.44.0-slim",
        )
        .unwrap();
        assert_eq!((tag.full_size, skipped), (Some(0), 0));
        assert_eq!(
            tag.image_for("amd64", None).and_then(|i| i.size),
            Some(207_268_936)
        );
        assert_eq!(
            tag.image_for("arm", Some("v7")).and_then(|i| i.size),
            Some(203_309_061)
        );
    }

    #[test]
    fn arm_is_the_first_arm_image_and_a_variant_can_be_asked_for() {
        let tag = TagInfo {
            name: "latest".into(),
            full_size: None,
            last_updated: None,
            tag_last_pushed: None,
            images: vec![
                image("unknown/unknown", None),
                image("amd64", None),
                image("arm", Some("v6")),
                image("arm", Some("v7")),
                image("arm64", None),
            ],
        };
        let variant = |a, v| tag.image_for(a, v).and_then(|i| i.variant.clone());
        assert_eq!(variant("arm", None).as_deref(), Some("v6"));
        assert_eq!(variant("arm", Some("v7")).as_deref(), Some("v7"));
        assert!(tag.image_for("arm", Some("v5")).is_none());
        // arm64 without a variant is v8.
        assert!(tag.image_for("arm64", Some("v8")).is_some());
        assert!(tag.image_for("unknown", None).is_none(), "attestations");
        assert_eq!(tag.platforms().count(), 4);
    }

    #[test]
    fn null_dates_fall_back_to_the_tag_then_to_its_images() {
        let mut tag: TagInfo = serde_json::from_str(
            r#"{"name":"x","last_updated":null,"tag_last_pushed":null,"images":[
                {"architecture":"amd64","last_pushed":"2024-01-01T00:00:00Z"},
                {"architecture":"arm64","last_pushed":"2025-02-01T00:00:00.5Z"},
                {"architecture":"unknown","os":"unknown","last_pushed":"2026-01-01T00:00:00Z"}]}"#,
        )
        .unwrap();
        assert_eq!(tag.pushed_at(), Some("2025-02-01T00:00:00.5Z"));
        tag.tag_last_pushed = Some("2025-03-01T00:00:00Z".into());
        assert_eq!(tag.pushed_at(), Some("2025-03-01T00:00:00Z"));
        tag.last_updated = Some("2025-04-01T00:00:00Z".into());
        assert_eq!(tag.pushed_at(), Some("2025-04-01T00:00:00Z"));
        tag.images.clear();
        tag.last_updated = None;
        tag.tag_last_pushed = None;
        assert_eq!(tag.pushed_at(), None);
    }

    #[test]
    fn an_image_with_a_null_architecture_is_left_out_of_its_tag() {
        let (info, skipped) = decode_tag_info(
            br#"{"name":"1","images":[{"architecture":null,"size":3},{"architecture":"amd64","size":4}]}"#,
            "1",
        )
        .unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(info.images.len(), 1);
        assert_eq!(info.images[0].size, Some(4));
    }

    #[test]
    fn new_fields_are_written_only_when_present() {
        // What an older node writes and reads stays byte for byte the same.
        let old = r#"{"name":"1","full_size":3,"last_updated":null,"images":[{"architecture":"amd64","os":null,"variant":null,"digest":null,"size":null}]}"#;
        let info: TagInfo = serde_json::from_str(old).unwrap();
        assert_eq!(serde_json::to_string(&info).unwrap(), old);
    }
}
