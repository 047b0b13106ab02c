//! The tag resource, `GET /v2/namespaces/{org}/repositories/{repo}/tags/{tag}`: an existing
//! tag means the image was built and pushed.

use serde::Deserialize;

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
