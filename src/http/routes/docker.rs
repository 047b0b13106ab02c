//! `/docker/…`: the Docker badges at shields.io's own paths, each derived from one cached
//! Docker Hub resource (repository, tag list, tag, build status) and rendered through the
//! badge memo. A badge route always answers `200` with an SVG: bad input and upstream
//! trouble become a badge with a clear word and a short lifetime, never a 5xx.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::Response;
use hyper::header::HeaderMap;

use super::formats::{addv, date_badge, dots, iec_bytes, metric, version_color};
use super::status::name_the_error;
use super::version::latest;
use super::{BADGE_DEADLINE, PENDING_MAX_AGE};
use crate::badge::{Badge, Color, Logo, Style};
use crate::cache::Lookup;
use crate::cache::resources::{REPOSITORY_TTL, TAG_LIST_TTL, TAG_TTL};
use crate::http::App;
use crate::http::badge_memo::rendered;
use crate::http::response::{Body, Cacheable, ERROR_MAX_AGE};
use crate::http::router::{DockerKind, DockerTarget, Parsed, Query, Route, docker_target};
use crate::hub::names::{ImageRef, Tag};
use crate::hub::repository::RepoName;
use crate::hub::tag::{ImageInfo, TagInfo};
use crate::hub::tag_list::TagList;
use crate::hub::{ClientKey, HubError, HubStatus};
use crate::tools::clock::{self, Instant};

/// shields.io's Docker blue, for pulls, stars and automated builds.
const DOCKER_BLUE: &str = "066da5";

/// The architectures `arch=` takes: Go's `GOARCH` values, as shields.io lists them.
pub const ARCHES: [&str; 14] = [
    "amd64", "arm", "arm64", "s390x", "386", "ppc64", "ppc64le", "wasm", "mips", "mipsle",
    "mips64", "mips64le", "riscv64", "loong64",
];

/// The architecture the version and size badges read when `arch=` names none, as
/// shields.io's default.
const DEFAULT_ARCH: Arch<'static> = Arch {
    architecture: "amd64",
    variant: None,
};

/// What `arch=` asks for: one of [`ARCHES`], and optionally a variant (`arm/v7`,
/// `arm64/v8`: `v` and one or two digits), which shields.io cannot ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Arch<'a> {
    architecture: &'a str,
    variant: Option<&'a str>,
}

impl<'a> Arch<'a> {
    fn parse(text: &'a str) -> Option<Arch<'a>> {
        let (architecture, variant) = match text.split_once('/') {
            Some((architecture, variant)) => (architecture, Some(variant)),
            None => (text, None),
        };
        let variant_ok = variant.is_none_or(|v| {
            v.strip_prefix('v').is_some_and(|n| {
                (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit())
            })
        });
        (ARCHES.contains(&architecture) && variant_ok).then_some(Arch {
            architecture,
            variant,
        })
    }

    /// The tag's image of this platform ([`TagInfo::image_for`]).
    fn image_in(self, tag: &TagInfo) -> Option<&ImageInfo> {
        tag.image_for(self.architecture, self.variant)
    }
}

impl DockerKind {
    /// The label shields.io gives this kind.
    pub fn label(self) -> &'static str {
        match self {
            DockerKind::Pulls => "docker pulls",
            DockerKind::Stars => "docker stars",
            DockerKind::ImageSize => "image size",
            DockerKind::Version => "version",
            DockerKind::LastUpdated => "last updated",
            DockerKind::Platforms => "platforms",
            DockerKind::Automated | DockerKind::Build => "docker build",
        }
    }

    /// The shortest lifetime a badge of this kind announces: its resource's TTL, below
    /// which `cacheSeconds=` is ignored, as shields.io ignores it below a service's own.
    fn floor(self, status_ttl: Duration) -> Duration {
        match self {
            DockerKind::Pulls | DockerKind::Stars | DockerKind::Automated => REPOSITORY_TTL,
            DockerKind::ImageSize | DockerKind::Version | DockerKind::LastUpdated => {
                TAG_LIST_TTL.min(TAG_TTL)
            }
            DockerKind::Platforms => TAG_TTL,
            DockerKind::Build => status_ttl,
        }
    }

    /// shields.io's word for a 404 from Docker Hub.
    fn not_found(self) -> &'static str {
        match self {
            DockerKind::Pulls | DockerKind::Stars | DockerKind::Automated | DockerKind::Build => {
                "repo not found"
            }
            _ => "repository or tag not found",
        }
    }
}

/// What a badge says: a message and colour (a hex colour where shields.io uses one), or
/// an error word, which `color=` and `labelColor=` do not change, with the upstream error
/// behind it, if one is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shown {
    Value {
        message: String,
        color: Color,
        hex: Option<&'static str>,
    },
    Error {
        word: String,
        color: Color,
        cause: Option<HubError>,
    },
}

fn value(message: String, color: Color) -> Result<Shown, Shown> {
    Ok(Shown::Value {
        message,
        color,
        hex: None,
    })
}

fn docker_blue(message: &str) -> Result<Shown, Shown> {
    Ok(Shown::Value {
        message: message.to_owned(),
        color: Color::Blue,
        hex: Some(DOCKER_BLUE),
    })
}

/// An error badge: red for "not found" answers, grey for the rest, as shields.io colours them.
fn error(word: &str, color: Color) -> Shown {
    Shown::Error {
        word: word.to_owned(),
        color,
        cause: None,
    }
}

fn not_found(word: &str) -> Shown {
    error(word, Color::Red)
}

/// The word for an upstream failure: shields.io's where it has one (a 429 is "rate limited
/// by upstream service", a 5xx, a timeout or no connection "inaccessible", a body it cannot
/// read "invalid response data", a vendor that has not answered in time "unresponsive"),
/// and words in its manner for the limits shields.io does not have: this node's budget
/// and the client's share. A node backing off from a failing Docker Hub says what the hub
/// did, "inaccessible": nothing limited anyone's rate.
fn hub_error(err: &HubError, kind: DockerKind) -> Shown {
    let word = match err {
        HubError::NotFound | HubError::RepositoryNotFound => return not_found(kind.not_found()),
        HubError::RateLimited { .. } => "rate limited by upstream service",
        HubError::Budget { .. } => "rate limited by badge server",
        HubError::ClientShare { .. } => "rate limited per client",
        HubError::BadAnswer { .. } => "invalid response data",
        HubError::Backoff { .. }
        | HubError::Status { .. }
        | HubError::Timeout
        | HubError::Unreachable => "inaccessible",
        HubError::Pending => "unresponsive",
    };
    Shown::Error {
        word: word.to_owned(),
        color: Color::LightGrey,
        cause: Some(err.clone()),
    }
}

fn invalid(parameter: &str) -> Shown {
    error(
        &format!("invalid query parameter: {parameter}"),
        Color::LightGrey,
    )
}

/// How a badge's lookup went, for its lifetime and for the response memo.
struct Freshness {
    fresh_for: Duration,
    unchanged_until: Option<Instant>,
}

impl<V> From<&Lookup<V>> for Freshness {
    fn from(lookup: &Lookup<V>) -> Freshness {
        Freshness {
            fresh_for: lookup.fresh_for,
            unchanged_until: lookup.unchanged_until,
        }
    }
}

/// Checked sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Date,
    Semver,
}

/// `GET /docker/<kind>/<user>/<repo>[/<tag>]`.
pub(super) async fn docker(
    app: &App,
    parsed: &Parsed<'_>,
    request: &HeaderMap,
    target: Option<&str>,
    client: IpAddr,
) -> Response<Body> {
    let Route::Docker(rest) = parsed.route else {
        return unknown_badge(request);
    };
    let query = &parsed.query;
    let (kind, repo, tag) = match docker_target(rest) {
        DockerTarget::Badge { kind, repo, tag } => (kind, repo, tag),
        DockerTarget::BadName(kind, _) => {
            let shown = error("invalid repository name", Color::LightGrey);
            return respond(app, query, kind, shown, None, request, None);
        }
        DockerTarget::Unknown => return unknown_badge(request),
    };
    // Parameters first: a badge with a bad one asks nothing of Docker Hub.
    let checked = (|| {
        if query
            .style
            .as_deref()
            .is_some_and(|s| Style::parse(s).is_none())
        {
            return Err(invalid("style"));
        }
        let sort = match query.sort.as_deref() {
            None | Some("date") => Sort::Date,
            Some("semver") => Sort::Semver,
            Some(_) => return Err(invalid("sort")),
        };
        let arch = match query.arch.as_deref() {
            None => None,
            Some(arch) => Some(Arch::parse(arch).ok_or_else(|| invalid("arch"))?),
        };
        if query
            .cache_seconds
            .as_deref()
            .is_some_and(|s| s.parse::<u64>().is_err())
        {
            return Err(invalid("cacheSeconds"));
        }
        Ok((sort, arch))
    })();
    let (sort, arch) = match checked {
        Ok(checked) => checked,
        Err(shown) => return respond(app, query, kind, shown, None, request, None),
    };
    let client = ClientKey::of(client);
    let (shown, freshness) = derive(app, kind, &repo, tag.as_ref(), sort, arch, client).await;
    respond(app, query, kind, shown, Some(freshness), request, target)
}

/// Asks the kind's resource, within the badges' deadline and on `client`'s share, and
/// derives the badge from it.
async fn derive(
    app: &App,
    kind: DockerKind,
    repo: &RepoName,
    tag: Option<&Tag>,
    sort: Sort,
    arch: Option<Arch<'_>>,
    client: ClientKey,
) -> (Shown, Freshness) {
    let node = app.node();
    // Both names are checked already; the tag defaults as Docker's does.
    let Ok(image) = ImageRef::parse(
        repo.organization.as_str(),
        repo.repository.as_str(),
        tag.map_or("latest", Tag::as_str),
    ) else {
        let nothing = Freshness {
            fresh_for: Duration::ZERO,
            unchanged_until: None,
        };
        return (error("invalid repository name", Color::LightGrey), nothing);
    };
    let image = |_: Option<&Tag>| &image;
    let (client, patience) = (Some(client), BADGE_DEADLINE);
    let derived = match kind {
        DockerKind::Pulls | DockerKind::Stars | DockerKind::Automated => {
            let lookup = node
                .docker()
                .repository
                .get_within(repo, client, patience)
                .await;
            let shown = lookup
                .result
                .as_ref()
                .map_err(|e| hub_error(e, kind))
                .and_then(|r| match kind {
                    DockerKind::Pulls => docker_blue(&metric(r.pull_count)),
                    DockerKind::Stars => docker_blue(&metric(r.star_count)),
                    _ if r.is_automated => docker_blue("automated"),
                    _ => value("manual".into(), Color::Yellow),
                });
            (shown, Freshness::from(&lookup))
        }
        DockerKind::Build => {
            let lookup = node.cache().get_within(image(tag), client, patience).await;
            let shown = lookup
                .result
                .as_ref()
                .map_err(|e| hub_error(e, kind))
                .and_then(|&HubStatus { status, .. }| match status {
                    10 => value("passing".into(), Color::BrightGreen),
                    s if s < 0 => value("failing".into(), Color::Red),
                    _ => docker_blue("building"),
                });
            (shown, Freshness::from(&lookup))
        }
        DockerKind::Platforms => {
            let lookup = node
                .docker()
                .tag
                .get_within(image(tag), client, patience)
                .await;
            let shown = lookup
                .result
                .as_ref()
                .map_err(|e| hub_error(e, kind))
                .and_then(|t| platforms(t));
            (shown, Freshness::from(&lookup))
        }
        DockerKind::ImageSize | DockerKind::LastUpdated if tag.is_some() => {
            let lookup = node
                .docker()
                .tag
                .get_within(image(tag), client, patience)
                .await;
            let shown = lookup
                .result
                .as_ref()
                .map_err(|e| hub_error(e, kind))
                .and_then(|t| match kind {
                    DockerKind::ImageSize => size_of(t, arch),
                    _ => last_updated(t),
                });
            (shown, Freshness::from(&lookup))
        }
        DockerKind::ImageSize | DockerKind::LastUpdated | DockerKind::Version => {
            let lookup = node
                .docker()
                .tag_list
                .get_within(repo, client, patience)
                .await;
            let shown = lookup
                .result
                .as_ref()
                .map_err(|e| hub_error(e, kind))
                .and_then(|list| from_list(list, kind, tag, sort, arch));
            (shown, Freshness::from(&lookup))
        }
    };
    let shown = derived.0.unwrap_or_else(|shown| shown);
    (shown, derived.1)
}

/// The size of a tag: the `arch` image's when one is asked for (shields.io's
/// `architecture not found` when the tag has none); else the tag's `full_size`, and when
/// Docker Hub gives 0 or null there (multi-arch tags, whose images carry their sizes) the
/// `amd64` image's, or the first platform's when there is no `amd64` image. Attestations
/// are never a size. No size anywhere reads `unknown`.
fn size_of(tag: &TagInfo, arch: Option<Arch<'_>>) -> Result<Shown, Shown> {
    let size = match arch {
        Some(arch) => {
            arch.image_in(tag)
                .ok_or_else(|| not_found("architecture not found"))?
                .size
        }
        None => tag.full_size.filter(|&size| size > 0).or_else(|| {
            DEFAULT_ARCH
                .image_in(tag)
                .or_else(|| tag.platforms().next())
                .and_then(|image| image.size)
        }),
    };
    match size {
        Some(size) => value(iec_bytes(size), Color::Blue),
        None => Err(error("unknown", Color::LightGrey)),
    }
}

/// When the tag was last pushed ([`TagInfo::pushed_at`]: `last_updated`, else
/// `tag_last_pushed`, else its images' newest push); `unknown` when Docker Hub names no time,
/// shields.io's `invalid date` when it names one that is no date.
fn last_updated(tag: &TagInfo) -> Result<Shown, Shown> {
    let Some(text) = tag.pushed_at() else {
        let word = if tag.last_updated.is_some() {
            "invalid date"
        } else {
            "unknown"
        };
        return Err(error(word, Color::LightGrey));
    };
    match date_badge(text, SystemTime::now()) {
        Some((message, color)) => value(message, color),
        None => Err(error("invalid date", Color::LightGrey)),
    }
}

/// `linux/amd64 | linux/arm/v7` written shorter: the OS only when it is not Linux, the
/// variant when there is one, each platform once, in the hub's order.
fn platforms(tag: &TagInfo) -> Result<Shown, Shown> {
    let mut seen: Vec<String> = Vec::new();
    for image in tag.platforms() {
        let mut name = String::new();
        if let Some(os) = image
            .os
            .as_deref()
            .filter(|os| *os != "linux" && !os.is_empty())
        {
            name.push_str(os);
            name.push('/');
        }
        name.push_str(&image.architecture);
        if let Some(variant) = image.variant.as_deref().filter(|v| !v.is_empty()) {
            name.push('/');
            name.push_str(variant);
        }
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    if seen.is_empty() {
        return Err(not_found("no platforms"));
    }
    value(seen.join(" | "), Color::Blue)
}

/// The most exact name of the tags holding `digest` (`3.20.1` over `3.20` over `latest`).
fn digest_match<'a>(list: &'a TagList, digest: &str, fallback: &'a str) -> &'a str {
    let mut version = fallback;
    let mut first = true;
    for tag in list
        .tags
        .iter()
        .filter(|t| t.platforms().any(|i| i.digest.as_deref() == Some(digest)))
    {
        if first {
            version = &tag.name;
            first = false;
        }
        if dots(&tag.name) >= dots(version) && tag.name != "latest" {
            version = &tag.name;
        }
    }
    version
}

fn from_list(
    list: &TagList,
    kind: DockerKind,
    tag: Option<&Tag>,
    sort: Sort,
    arch: Option<Arch<'_>>,
) -> Result<Shown, Shown> {
    let newest = list
        .tags
        .first()
        .ok_or_else(|| not_found("no tags found"))?;
    let chosen = match (tag, sort) {
        (Some(tag), _) => list
            .tags
            .iter()
            .find(|t| t.name == tag.as_str())
            .ok_or_else(|| not_found("tag not found"))?,
        (None, Sort::Date) => newest,
        (None, Sort::Semver) => {
            let names: Vec<&str> = list.tags.iter().map(|t| t.name.as_str()).collect();
            let name = latest(&names).ok_or_else(|| not_found("no tags found"))?;
            list.tags
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| not_found("no tags found"))?
        }
    };
    match kind {
        DockerKind::ImageSize => size_of(chosen, arch),
        DockerKind::LastUpdated => last_updated(chosen),
        _ => {
            let version = match (tag, sort) {
                (None, Sort::Semver) => chosen.name.as_str(),
                (None, Sort::Date) if chosen.name != "latest" => chosen.name.as_str(),
                (Some(_), _) if chosen.platforms().next().is_none() => chosen.name.as_str(),
                _ => {
                    let arch = arch.unwrap_or(DEFAULT_ARCH);
                    let word = if tag.is_some() {
                        "digest not found for given tag"
                    } else {
                        "digest not found for latest tag"
                    };
                    let digest = arch
                        .image_in(chosen)
                        .and_then(|i| i.digest.as_deref())
                        .ok_or_else(|| error(word, Color::LightGrey))?;
                    digest_match(list, digest, &chosen.name)
                }
            };
            value(addv(version), version_color(version))
        }
    }
}

/// shields.io's answer to a path no badge has, with 200 as every badge route answers.
fn unknown_badge(request: &HeaderMap) -> Response<Body> {
    let badge = rendered(&Badge::new("404", "badge not found", Color::Red));
    let answer = Cacheable::new(
        "docker",
        badge.svg,
        badge.etag,
        "image/svg+xml; charset=utf-8",
        ERROR_MAX_AGE,
    );
    answer.respond(request)
}

/// Renders the badge with the request's parameters, keeps it in the response memo while
/// its resource stays the same, and answers.
fn respond(
    app: &App,
    query: &Query,
    kind: DockerKind,
    shown: Shown,
    freshness: Option<Freshness>,
    request: &HeaderMap,
    target: Option<&str>,
) -> Response<Body> {
    let label = query.label.as_deref().unwrap_or(kind.label());
    let style = query
        .style
        .as_deref()
        .and_then(Style::parse)
        .unwrap_or_default();
    let logo = query.logo.as_deref().and_then(Logo::parse);
    let (badge, max_age) = match &shown {
        Shown::Value {
            message,
            color,
            hex,
        } => {
            let fresh_for = freshness.as_ref().map_or(Duration::ZERO, |f| f.fresh_for);
            let floor = kind.floor(app.node().config().cache_ttl);
            let asked = query
                .cache_seconds
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .map(Duration::from_secs)
                .filter(|asked| *asked > floor && *asked > fresh_for);
            let badge = Badge {
                style,
                logo,
                color_override: query.color.as_deref().or(*hex),
                label_color: query.label_color.as_deref(),
                logo_color: query.logo_color.as_deref(),
                ..Badge::new(label, message, *color)
            };
            (rendered(&badge), asked.unwrap_or(fresh_for))
        }
        Shown::Error { word, color, cause } => {
            let badge = Badge {
                style,
                logo,
                logo_color: query.logo_color.as_deref(),
                ..Badge::new(label, word, *color)
            };
            let max_age = match cause {
                Some(HubError::Pending) => PENDING_MAX_AGE,
                _ => ERROR_MAX_AGE,
            };
            (rendered(&badge), max_age)
        }
    };
    let answer = Arc::new(Cacheable::new(
        "docker",
        badge.svg,
        badge.etag,
        "image/svg+xml; charset=utf-8",
        max_age,
    ));
    if let (Some(target), Some(until)) =
        (target, freshness.as_ref().and_then(|f| f.unchanged_until))
    {
        app.memo()
            .insert(target, Arc::clone(&answer), until, clock::now());
    }
    let mut response = answer.respond(request);
    if let Shown::Error {
        cause: Some(cause), ..
    } = &shown
    {
        name_the_error(&mut response, cause);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(architecture: &str, variant: Option<&str>, size: u64) -> ImageInfo {
        ImageInfo {
            architecture: architecture.into(),
            os: Some(
                if architecture == "unknown" {
                    "unknown"
                } else {
                    "linux"
                }
                .into(),
            ),
            variant: variant.map(Into::into),
            digest: Some(format!("sha256:{architecture}{}", variant.unwrap_or(""))),
            size: Some(size),
            last_pushed: None,
        }
    }

    fn tag(name: &str, full_size: Option<u64>, images: Vec<ImageInfo>) -> TagInfo {
        TagInfo {
            name: name.into(),
            full_size,
            last_updated: Some("2026-11-01T00:00:00Z".into()),
            tag_last_pushed: None,
            images,
        }
    }

    fn message(shown: Result<Shown, Shown>) -> String {
        match shown {
            Ok(Shown::Value { message, .. }) | Err(Shown::Error { word: message, .. }) => message,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_zero_or_missing_full_size_is_the_amd64_images_size() {
        let images = || {
            vec![
                image("unknown", None, 1_000),
                image("arm64", Some("v8"), 2 << 20),
                image("amd64", None, 3 << 20),
            ]
        };
        assert_eq!(
            message(size_of(&tag("1", Some(0), images()), None)),
            "3 MiB"
        );
        assert_eq!(message(size_of(&tag("1", None, images()), None)), "3 MiB");
        assert_eq!(
            message(size_of(&tag("1", Some(5 << 20), images()), None)),
            "5 MiB"
        );
        // No amd64 image: the first platform's, never an attestation's.
        let arm_only = tag(
            "1",
            Some(0),
            vec![image("unknown", None, 9), image("arm64", None, 2 << 20)],
        );
        assert_eq!(message(size_of(&arm_only, None)), "2 MiB");
        assert_eq!(
            message(size_of(&tag("1", Some(0), vec![]), None)),
            "unknown"
        );
    }

    fn recorded_list(body: &[u8]) -> TagList {
        let (count, tags, _) = crate::hub::tag_list::read_tag_page(body).unwrap();
        TagList {
            count,
            tags,
            truncated: false,
        }
    }

    /// library/rust's `1.44.0-slim` as Docker Hub answered it in 2026 (`full_size: 0`):
    /// the amd64 image's size, not shields.io's `0 B`.
    #[test]
    fn the_recorded_full_size_0_reads_the_amd64_images_size() {
        let tag = crate::hub::tag::read_tag_info(
            include_bytes!("../../../tests/fixtures/hub/tag-library-rust-1.44.0-slim-2026.json"),
            "1.44.0-slim",
        )
        .unwrap();
        assert_eq!(message(size_of(&tag, None)), "198 MiB");
        assert_eq!(message(size_of(&tag, Arch::parse("arm/v7"))), "194 MiB");
    }

    /// crazymax/diun's tags of 2023: `arm` v6 before v7, attestations on `edge`.
    #[test]
    fn recorded_arm_variants_and_attestations() {
        let list = recorded_list(include_bytes!(
            "../../../tests/fixtures/hub/tags-crazymax-diun-2023.json"
        ));
        let edge = &list.tags[1];
        assert_eq!(edge.name, "edge");
        assert_eq!(
            message(platforms(edge)),
            "386 | amd64 | arm/v6 | arm/v7 | arm64 | ppc64le"
        );
        let variant = |arch| {
            Arch::parse(arch)
                .and_then(|a| a.image_in(edge))
                .and_then(|i| i.variant.clone())
        };
        assert_eq!(variant("arm").as_deref(), Some("v6"));
        assert_eq!(variant("arm/v7").as_deref(), Some("v7"));
        let semver = from_list(&list, DockerKind::Version, None, Sort::Semver, None);
        assert_eq!(message(semver), "v4.24.0");
        // library/debian's of 2019: `arm` is v5 where the hub lists it first.
        let debian = recorded_list(include_bytes!(
            "../../../tests/fixtures/hub/tags-library-debian-page1-2019.json"
        ));
        let first_arm = |tag: &TagInfo| {
            Arch::parse("arm")
                .and_then(|a| a.image_in(tag))
                .and_then(|i| i.variant.clone())
        };
        assert_eq!(first_arm(&debian.tags[0]).as_deref(), Some("v5"));
        assert_eq!(first_arm(&debian.tags[2]).as_deref(), Some("v7"));
        let semver = from_list(&debian, DockerKind::Version, None, Sort::Semver, None);
        assert_eq!(message(semver), "unstable-20191118");
    }

    #[test]
    fn arch_takes_a_variant_and_arm_alone_is_the_first_arm_image() {
        assert_eq!(
            Arch::parse("arm/v7"),
            Some(Arch {
                architecture: "arm",
                variant: Some("v7")
            })
        );
        assert!(Arch::parse("arm64/v8").is_some());
        for bad in ["arm/7", "arm/v", "arm/v123", "z80", "arm/v7/x", "unknown"] {
            assert_eq!(Arch::parse(bad), None, "{bad}");
        }
        let armed = tag(
            "1",
            Some(0),
            vec![
                image("amd64", None, 1 << 20),
                image("arm", Some("v6"), 6 << 20),
                image("arm", Some("v7"), 7 << 20),
            ],
        );
        let size = |arch| message(size_of(&armed, Arch::parse(arch)));
        assert_eq!(size("arm"), "6 MiB");
        assert_eq!(size("arm/v7"), "7 MiB");
        assert_eq!(size("arm/v5"), "architecture not found");
    }

    #[test]
    fn a_date_like_tag_does_not_win_sort_semver() {
        let list = TagList {
            count: 3,
            tags: vec![
                tag("latest", Some(1), vec![]),
                tag("20201122", Some(1), vec![]),
                tag("2.10.1", Some(1), vec![]),
            ],
            truncated: false,
        };
        let version = from_list(&list, DockerKind::Version, None, Sort::Semver, None);
        assert_eq!(message(version), "v2.10.1");
    }

    #[test]
    fn a_null_last_update_falls_back_and_only_then_reads_unknown() {
        let mut pushed = tag("1", None, vec![]);
        pushed.last_updated = None;
        pushed.tag_last_pushed = Some("2024-02-29T00:00:00Z".into());
        assert_eq!(message(last_updated(&pushed)), "february 2024");
        pushed.tag_last_pushed = None;
        assert_eq!(message(last_updated(&pushed)), "unknown");
        pushed.last_updated = Some("yesterday".into());
        assert_eq!(message(last_updated(&pushed)), "invalid date");
    }

    #[test]
    fn attestations_are_no_platform_and_no_version() {
        let only = tag("sbom", None, vec![image("unknown", None, 1)]);
        assert_eq!(message(platforms(&only)), "no platforms");
        let list = TagList {
            count: 1,
            tags: vec![only],
            truncated: false,
        };
        let tag = Tag::parse("sbom").unwrap();
        let version = from_list(&list, DockerKind::Version, Some(&tag), Sort::Date, None);
        assert_eq!(message(version), "sbom");
    }
}
