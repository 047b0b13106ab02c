//! The status routes: `/build` (the old JSON API), `/status.svg` (the badge) and
//! `/shields/…` (shields.io endpoint JSON), all from the status cache.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::{BADGE_DEADLINE, PENDING_MAX_AGE, remember};
use crate::badge::{self, Color};
use crate::cache::Lookup;
use crate::http::App;
use crate::http::badge_memo::rendered_badge;
use crate::http::error::{LookupError, error_response};
use crate::http::response::{Body, Cacheable, ERROR_MAX_AGE, etag_of, json, set_cache_control};
use crate::http::router::Parsed;
use crate::hub::names::{ImageRef, NameError};
use crate::hub::{ClientKey, HubError, HubStatus};
use crate::node::Node;

/// shields.io ignores `cacheSeconds` below its own default of 300.
const SHIELDS_MIN_CACHE_SECONDS: u64 = 300;

/// The image a status route names (every status route names one).
fn image_of(parsed: &Parsed<'_>) -> Result<ImageRef, NameError> {
    parsed
        .image()
        .unwrap_or(Err(NameError::Missing { kind: "repository" }))
}

/// `GET /build/<organization>/<repository>[?tag=]`: the old JSON API. Without the badges'
/// deadline: it answers what Docker Hub said (a 502 after `--hub-timeout` when it says
/// nothing), since its programs want an answer rather than a picture, and status.js, its
/// browser client, asks the next node after 400 ms by itself.
pub(super) async fn build(
    app: &App,
    parsed: &Parsed<'_>,
    request: &HeaderMap,
    target: Option<&str>,
    client: IpAddr,
) -> Response<Body> {
    let image = match image_of(parsed) {
        Ok(image) => image,
        Err(err) => return error_response(&err),
    };
    let lookup = app
        .node()
        .cache()
        .get_for(&image, Some(ClientKey::of(client)))
        .await;
    match &lookup.result {
        Ok(status) => {
            let body = BuildAnswer {
                request: "ok",
                status: status.status,
                source: status.source.as_str(),
                stale: lookup.stale,
                age_seconds: lookup.age.as_secs(),
            };
            let json = serde_json::to_vec(&body).unwrap_or_default();
            let etag = etag_of(&json);
            let answer = Arc::new(Cacheable::new(
                "build",
                Bytes::from(json),
                etag,
                "application/json",
                lookup.fresh_for,
            ));
            remember(app.memo(), target, &answer, &lookup);
            answer.respond(request)
        }
        Err(err) => error_response(&LookupError { err, image: &image }),
    }
}

#[derive(Serialize)]
struct BuildAnswer {
    request: &'static str,
    status: i64,
    source: &'static str,
    stale: bool,
    age_seconds: u64,
}

/// What a badge says about a lookup: message and colour, in the old server's words.
/// "rate limited" only when something did limit the rate (Docker Hub, this node's budget or
/// the client's share); a failing, slow or unreachable Docker Hub, and a node backing off
/// from one, is "unknown" (which of them it was, the `x-badge-error` header says).
fn badge_message(result: &Result<HubStatus, HubError>) -> (&'static str, Color) {
    match result {
        Ok(HubStatus { status, .. }) if *status < 0 => ("error", Color::Red),
        Ok(HubStatus { status, .. }) if *status < 10 => ("building", Color::Blue),
        Ok(_) => ("ok", Color::BrightGreen),
        Err(HubError::NotFound | HubError::RepositoryNotFound) => ("not found", Color::LightGrey),
        Err(
            HubError::RateLimited { .. } | HubError::Budget { .. } | HubError::ClientShare { .. },
        ) => ("rate limited", Color::LightGrey),
        Err(
            HubError::Backoff { .. }
            | HubError::Status { .. }
            | HubError::BadAnswer { .. }
            | HubError::Timeout
            | HubError::Unreachable
            | HubError::Pending,
        ) => ("unknown", Color::LightGrey),
    }
}

/// The badge's freshness: what the cache says for statuses, a short time for errors, and
/// shorter for an answer that came before its fetch ended.
fn badge_max_age(lookup: &Lookup) -> Duration {
    match &lookup.result {
        Ok(_) | Err(HubError::NotFound | HubError::RepositoryNotFound) => lookup.fresh_for,
        Err(HubError::Pending) => PENDING_MAX_AGE,
        Err(_) => ERROR_MAX_AGE,
    }
}

/// Names the cause of an error badge in `x-badge-error`, for whoever looks at the response
/// rather than the picture: the badge's words are few, the causes are not.
pub(super) fn name_the_error(response: &mut Response<Body>, err: &HubError) {
    if matches!(err, HubError::NotFound | HubError::RepositoryNotFound) {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&err.to_string()) {
        response.headers_mut().insert("x-badge-error", value);
    }
}

/// `GET /status.svg?organization=&repository=&tag=&text=[&style=][&logo=]`: the badge.
pub(super) async fn status_svg(
    app: &App,
    parsed: &Parsed<'_>,
    request: &HeaderMap,
    target: Option<&str>,
    client: IpAddr,
) -> Response<Body> {
    let label = parsed.label().unwrap_or(badge::DEFAULT_LABEL);
    let style = parsed.style().unwrap_or_default();
    let logo = parsed.logo();
    let image = image_of(parsed);
    let (message, color, max_age, lookup) = match &image {
        Err(_) => ("invalid", Color::LightGrey, ERROR_MAX_AGE, None),
        Ok(image) => {
            let lookup = app
                .node()
                .cache()
                .get_within(image, Some(ClientKey::of(client)), BADGE_DEADLINE)
                .await;
            let (message, color) = badge_message(&lookup.result);
            (message, color, badge_max_age(&lookup), Some(lookup))
        }
    };
    let badge = rendered_badge(label, message, color, style, logo);
    let answer = Arc::new(Cacheable::new(
        "status_svg",
        badge.svg,
        badge.etag,
        "image/svg+xml; charset=utf-8",
        max_age,
    ));
    if let Some(lookup) = &lookup {
        remember(app.memo(), target, &answer, lookup);
    }
    let mut response = answer.respond(request);
    if let Err(err) = &image {
        // The reason, for whoever looks at the response rather than the picture.
        if let Ok(value) = HeaderValue::from_str(&err.to_string()) {
            response.headers_mut().insert("x-badge-error", value);
        }
    }
    if let Some(Err(err)) = lookup.as_ref().map(|l| &l.result) {
        name_the_error(&mut response, err);
    }
    response
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShieldsEndpoint<'a> {
    schema_version: u8,
    label: &'a str,
    message: &'a str,
    color: &'a str,
    cache_seconds: u64,
}

/// `GET /shields/<organization>/<repository>[?tag=]`: shields.io endpoint-badge JSON.
pub(super) async fn shields(node: &Node, parsed: &Parsed<'_>, client: IpAddr) -> Response<Body> {
    // Cleaned and capped as the SVG badge draws it (shields.io applies the style itself).
    let label = badge::drawn_text(
        parsed.label().unwrap_or(badge::DEFAULT_LABEL),
        badge::Style::Flat,
    );
    let (message, color, max_age) = match image_of(parsed) {
        Err(_) => ("invalid", Color::LightGrey, ERROR_MAX_AGE),
        Ok(image) => {
            let lookup = node
                .cache()
                .get_within(&image, Some(ClientKey::of(client)), BADGE_DEADLINE)
                .await;
            let (message, color) = badge_message(&lookup.result);
            (message, color, badge_max_age(&lookup))
        }
    };
    let body = ShieldsEndpoint {
        schema_version: 1,
        label: &label,
        message,
        color: color.name(),
        cache_seconds: max_age.as_secs().max(SHIELDS_MIN_CACHE_SECONDS),
    };
    let mut response = json(StatusCode::OK, &body);
    set_cache_control(&mut response, max_age);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_docker_hub_status_numbers() {
        let status = |status| {
            Ok(HubStatus {
                status,
                source: crate::hub::StatusSource::BuildHistory,
            })
        };
        assert_eq!(badge_message(&status(10)).0, "ok");
        assert_eq!(badge_message(&status(3)).0, "building");
        assert_eq!(badge_message(&status(0)).0, "building");
        assert_eq!(badge_message(&status(-1)).0, "error");
        assert_eq!(badge_message(&Err(HubError::NotFound)).0, "not found");
        assert_eq!(badge_message(&Err(HubError::Timeout)).0, "unknown");
        let backoff = HubError::Backoff {
            retry_in: Duration::from_secs(2),
        };
        assert_eq!(badge_message(&Err(backoff)).0, "unknown");
        assert_eq!(badge_message(&Err(HubError::Pending)).0, "unknown");
    }
}
