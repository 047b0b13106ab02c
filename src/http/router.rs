//! The one request parser: a request's path and query to a typed [`Route`] and the values
//! its handler reads ([`Parsed`]). The handlers read requests only through it, and the
//! fuzz target `request_target` fuzzes exactly this.

use percent_encoding::percent_decode_str;

use crate::badge::{Logo, Style};
use crate::hub::names::{ImageRef, NameError, Tag};
use crate::hub::repository::RepoName;

/// Defaults of the old API.
const DEFAULT_ORGANIZATION: &str = "library";

const DEFAULT_TAG: &str = "latest";

/// The routes of the API, with the raw path segments they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Build(&'a str, &'a str),
    StatusSvg,
    Shields(&'a str, &'a str),
    /// `/docker/…`, shields.io's Docker badges: the path after `/docker/`.
    Docker(&'a str),
    Health,
    Servers,
    Gossip,
    Fill,
    Metrics,
    StatusJs,
    StaticSvg,
    Source,
    Index,
    NotFound,
}

impl<'a> Route<'a> {
    pub fn of(path: &'a str) -> Route<'a> {
        let two_segments = |rest: &'a str| -> Option<(&'a str, &'a str)> {
            let (org, repo) = rest.split_once('/')?;
            (!repo.contains('/')).then_some((org, repo))
        };
        match path {
            "/" => Route::Index,
            "/status.svg" => Route::StatusSvg,
            "/health" => Route::Health,
            "/servers" => Route::Servers,
            "/gossip" => Route::Gossip,
            "/fill" => Route::Fill,
            "/metrics" => Route::Metrics,
            "/status.js" | "/static/status.js" => Route::StatusJs,
            "/static/status.svg" => Route::StaticSvg,
            "/source" => Route::Source,
            _ => {
                if let Some((org, repo)) = path.strip_prefix("/build/").and_then(two_segments) {
                    Route::Build(org, repo)
                } else if let Some((org, repo)) =
                    path.strip_prefix("/shields/").and_then(two_segments)
                {
                    Route::Shields(org, repo)
                } else if let Some(rest) = path.strip_prefix("/docker/") {
                    Route::Docker(rest)
                } else {
                    Route::NotFound
                }
            }
        }
    }

    /// The `route` label of the metrics: a fixed set, whatever paths clients send.
    pub fn name(self) -> &'static str {
        match self {
            Route::Build(..) => "build",
            Route::StatusSvg => "status_svg",
            Route::Shields(..) => "shields",
            Route::Docker(..) => "docker",
            Route::Health => "health",
            Route::Servers => "servers",
            Route::Gossip => "gossip",
            Route::Fill => "fill",
            Route::Metrics => "metrics",
            Route::StatusJs | Route::StaticSvg => "static",
            Route::Source => "source",
            Route::Index => "index",
            Route::NotFound => "not_found",
        }
    }
}

/// The query parameters the API reads. A repeated parameter takes its last value, as the
/// old server did.
#[derive(Debug, Default)]
pub struct Query {
    pub organization: Option<String>,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub text: Option<String>,
    pub style: Option<String>,
    pub logo: Option<String>,
    /// The Docker badges' parameters, as shields.io names them.
    pub label: Option<String>,
    pub color: Option<String>,
    pub label_color: Option<String>,
    pub logo_color: Option<String>,
    pub cache_seconds: Option<String>,
    pub sort: Option<String>,
    pub arch: Option<String>,
    /// `all=true` or `all=1` (`/servers`).
    pub all: bool,
}

impl Query {
    pub fn parse(query: &str) -> Query {
        let mut parsed = Query::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*key {
                "organization" => &mut parsed.organization,
                "repository" => &mut parsed.repository,
                "tag" => &mut parsed.tag,
                "text" => &mut parsed.text,
                "style" => &mut parsed.style,
                "logo" => &mut parsed.logo,
                "label" => &mut parsed.label,
                "color" | "colorB" => &mut parsed.color,
                "labelColor" | "colorA" => &mut parsed.label_color,
                "logoColor" => &mut parsed.logo_color,
                "cacheSeconds" | "maxAge" => &mut parsed.cache_seconds,
                "sort" => &mut parsed.sort,
                "arch" => &mut parsed.arch,
                "all" => {
                    // Any `all=true` asks for everything, wherever it stands.
                    parsed.all |= value == "true" || value == "1";
                    continue;
                }
                _ => continue,
            };
            *slot = Some(value.into_owned());
        }
        parsed
    }

    pub fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }
}

/// A request's route with its query, read once; what each handler needs comes from here.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub route: Route<'a>,
    pub query: Query,
}

/// Parses a request target (`path` without the query, `query` without the `?`).
pub fn parse<'a>(path: &'a str, query: &str) -> Parsed<'a> {
    Parsed {
        route: Route::of(path),
        query: Query::parse(query),
    }
}

impl Parsed<'_> {
    /// For `/build`, `/shields` and `/status.svg`: the image asked for, or why it is refused.
    pub fn image(&self) -> Option<Result<ImageRef, NameError>> {
        match self.route {
            Route::Build(org, repo) | Route::Shields(org, repo) => {
                Some(image_from_path(org, repo, self.query.tag()))
            }
            Route::StatusSvg => Some(svg_image(&self.query)),
            _ => None,
        }
    }

    /// For the badges: the label text as given (`text=`), before rendering.
    pub fn label(&self) -> Option<&str> {
        match self.route {
            Route::StatusSvg | Route::Shields(..) => self.query.text.as_deref(),
            _ => None,
        }
    }

    /// The badge style asked for, if it is a known one.
    pub fn style(&self) -> Option<Style> {
        self.query.style.as_deref().and_then(Style::parse)
    }

    /// The logo asked for, if it is a known one.
    pub fn logo(&self) -> Option<Logo> {
        self.query.logo.as_deref().and_then(Logo::parse)
    }

    /// For `/servers`: whether `all=true` (or `1`) asks for every member too.
    pub fn all(&self) -> bool {
        self.query.all
    }
}

/// The Docker badges, by their shields.io path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DockerKind {
    Pulls,
    Stars,
    ImageSize,
    Version,
    LastUpdated,
    Platforms,
    /// `/docker/automated`, `/docker/cloud/automated`: retired on shields.io.
    Automated,
    /// `/docker/build`, `/docker/cloud/build`: retired on shields.io, served from the
    /// build status.
    Build,
}

impl DockerKind {
    /// Every kind, with the path prefixes (after `/docker/`) that name it and whether a tag
    /// may follow the repository.
    pub const PATHS: [(&'static str, DockerKind, bool); 10] = [
        ("pulls", DockerKind::Pulls, false),
        ("stars", DockerKind::Stars, false),
        ("image-size", DockerKind::ImageSize, true),
        ("v", DockerKind::Version, true),
        ("last-updated", DockerKind::LastUpdated, true),
        ("platforms", DockerKind::Platforms, true),
        ("automated", DockerKind::Automated, false),
        ("cloud/automated", DockerKind::Automated, false),
        ("build", DockerKind::Build, true),
        ("cloud/build", DockerKind::Build, true),
    ];
}

/// What a `/docker/…` path asks for, or why it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerTarget {
    /// A known kind of a valid repository (and tag, if one was given).
    Badge {
        kind: DockerKind,
        repo: RepoName,
        tag: Option<Tag>,
    },
    /// A known kind with a name Docker Hub cannot have.
    BadName(DockerKind, NameError),
    /// No Docker badge has this path.
    Unknown,
}

/// Reads the path after `/docker/` (an optional `.svg` ending; `_` is `library`).
pub fn docker_target(rest: &str) -> DockerTarget {
    let rest = rest.strip_suffix(".svg").unwrap_or(rest);
    // Longest prefix first, so `cloud/build` is not read as a kind `cloud`.
    let found = DockerKind::PATHS
        .iter()
        .filter_map(|(prefix, kind, tagged)| {
            let names = rest.strip_prefix(prefix)?.strip_prefix('/')?;
            Some((prefix.len(), *kind, *tagged, names))
        })
        .max_by_key(|(len, ..)| *len);
    let Some((_, kind, tagged, names)) = found else {
        return DockerTarget::Unknown;
    };
    let segments: Vec<&str> = names.split('/').collect();
    let (org, repo, tag) = match segments.as_slice() {
        [org, repo] => (*org, *repo, None),
        [org, repo, tag] if tagged => (*org, *repo, Some(*tag)),
        _ => return DockerTarget::Unknown,
    };
    let parsed = (|| {
        let org = path_segment(org)?;
        let org = if org == "_" {
            DEFAULT_ORGANIZATION.to_owned()
        } else {
            org
        };
        let repo = RepoName::parse(&org, &path_segment(repo)?)?;
        let tag = match tag {
            Some(tag) => Some(Tag::parse(&path_segment(tag)?)?),
            None => None,
        };
        Ok::<_, NameError>((repo, tag))
    })();
    match parsed {
        Ok((repo, tag)) => DockerTarget::Badge { kind, repo, tag },
        Err(err) => DockerTarget::BadName(kind, err),
    }
}

/// Decodes one percent-encoded path segment; an encoded slash decodes to a `/`, which no
/// name accepts, so `a%2Fb` is refused like `a/b`.
fn path_segment(raw: &str) -> Result<String, NameError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| NameError::BadName {
            kind: "name",
            shown: "(not UTF-8)".into(),
        })
}

fn image_from_path(org: &str, repo: &str, tag: &str) -> Result<ImageRef, NameError> {
    ImageRef::parse(&path_segment(org)?, &path_segment(repo)?, tag)
}

/// The image a `/status.svg` query names, with the old API's defaults.
fn svg_image(query: &Query) -> Result<ImageRef, NameError> {
    match &query.repository {
        None => Err(NameError::Missing { kind: "repository" }),
        Some(repository) => ImageRef::parse(
            query
                .organization
                .as_deref()
                .unwrap_or(DEFAULT_ORGANIZATION),
            repository,
            query.tag(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_exactly() {
        assert_eq!(
            Route::of("/build/library/nginx"),
            Route::Build("library", "nginx")
        );
        assert_eq!(Route::of("/build/library/nginx/"), Route::NotFound);
        assert_eq!(Route::of("/build/library"), Route::NotFound);
        assert_eq!(Route::of("/build/a/b/c"), Route::NotFound);
        assert_eq!(Route::of("/shields/a/b"), Route::Shields("a", "b"));
        assert_eq!(Route::of("/status.svg"), Route::StatusSvg);
        assert_eq!(Route::of("/status.svg/"), Route::NotFound);
    }

    #[test]
    fn every_route_label_has_its_metrics_series() {
        for path in [
            "/",
            "/status.svg",
            "/health",
            "/servers",
            "/gossip",
            "/fill",
            "/metrics",
            "/status.js",
            "/static/status.svg",
            "/source",
            "/build/a/b",
            "/shields/a/b",
            "/docker/pulls/a/b",
            "/nope",
        ] {
            let name = Route::of(path).name();
            assert!(crate::metrics::ROUTES.contains(&name), "{path}: {name}");
        }
    }

    #[test]
    fn docker_paths_name_their_kind_repository_and_tag() {
        let badge = |rest| match docker_target(rest) {
            DockerTarget::Badge { kind, repo, tag } => {
                Some((kind, repo.to_string(), tag.map(|t| t.to_string())))
            }
            _ => None,
        };
        assert_eq!(
            badge("pulls/_/nginx.svg"),
            Some((DockerKind::Pulls, "library/nginx".into(), None))
        );
        assert_eq!(
            badge("v/acme/app/1.2"),
            Some((DockerKind::Version, "acme/app".into(), Some("1.2".into())))
        );
        assert_eq!(
            badge("cloud/build/acme/app"),
            Some((DockerKind::Build, "acme/app".into(), None))
        );
        assert_eq!(
            badge("cloud/automated/acme/app"),
            Some((DockerKind::Automated, "acme/app".into(), None))
        );
        assert_eq!(
            docker_target("pulls/acme/app/latest"),
            DockerTarget::Unknown
        );
        assert_eq!(docker_target("nope/acme/app"), DockerTarget::Unknown);
        assert_eq!(docker_target("v/acme"), DockerTarget::Unknown);
        assert!(matches!(
            docker_target("v/Acme/app"),
            DockerTarget::BadName(DockerKind::Version, _)
        ));
        assert!(matches!(
            docker_target("v/acme/a%2Fb"),
            DockerTarget::BadName(..)
        ));
    }

    #[test]
    fn query_takes_the_last_value_and_decodes_plus() {
        let q = Query::parse("repository=a&repository=b&text=Hello+World%21&junk");
        assert_eq!(q.repository.as_deref(), Some("b"));
        assert_eq!(q.text.as_deref(), Some("Hello World!"));
        assert_eq!(q.tag(), "latest");
    }

    #[test]
    fn encoded_slashes_and_dots_are_refused() {
        assert!(image_from_path("library", "a%2Fb", "latest").is_err());
        assert!(image_from_path("%2e%2e", "passwd", "latest").is_err());
        assert!(image_from_path("library", "%ff", "latest").is_err());
        assert!(image_from_path("library", "ng%69nx", "latest").is_ok());
    }
}
