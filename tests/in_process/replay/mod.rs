//! Docker Hub as it really answers: answers recorded by other projects and pasted into
//! public issues (`tests/fixtures/hub/`, each with its provenance in that folder's
//! README) are served by a hub on loopback at the paths the node's client asks, and every
//! badge route of a real node runs against them unchanged.
//!
//! Each case expects the badge shields.io's own code computes from the same bytes. The
//! shields.io code read: `services/docker/docker-helpers.js`, `docker-version.service.js`,
//! `docker-size.service.js` and `docker-pulls`/`docker-stars` as of their versions that
//! fetch through `docker-hub-common-fetch.js` (`archSchema` in the helpers),
//! `docker-last-updated.service.js` at c6fc7fad7d336b7c1f1df9aa6fa9dc5b8939b628,
//! `services/version.js` at 02ea3c4a2b937124680033039113ef36af14e6ac, `services/size.js`
//! (byte-size, IEC, one decimal) at 7e09d5dd3b66b78d519337b0c8ad40337df35e86,
//! `services/date.js` at 501b965646b5c258e497ded6e7dbad3c1a4e85c1,
//! `services/text-formatters.js` at 08dce400ebbb5f933acb472ef6f7f004aa87e848 and
//! `core/base-service/check-error-response.js` (404 → the service's word, 429 →
//! `rate limited by upstream service`, other 4xx → `invalid`, the default of
//! `core/base-service/errors.js` at 06fcfe0db7f647d83a8d62fbcd5e8945427279e0, 5xx →
//! `inaccessible`). Where the node answers otherwise on purpose, a case names the node's
//! answer and the entry of docs/BADGES.md ("Where the node differs from shields.io on
//! Docker Hub's recorded answers") that says why.
//!
//! The replay hub and the way it reads each recording are in `hub.rs`.

mod hub;

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use self::hub::{
    Answer, Asked, ReplayHub, Route, answer_in_log_line, answer_pasted_raw, body, everything,
    first_listed_tag, head, headers_pasted_as_json, repository, status_only, tag, tag_list,
};
use crate::common::{TestNode, get, said, skip, start_node};

// ---------------------------------------------------------------------------------------
// The cases.

/// What a badge route should say, as `label: message`: shields.io's badge from the same
/// bytes, or the node's own where it differs on purpose (with the docs/BADGES.md entry).
#[derive(Debug, Clone, Copy)]
struct Case {
    path: &'static str,
    shields: Option<&'static str>,
    node: Option<(&'static str, Differs)>,
}

/// The entries of docs/BADGES.md's list of differences from shields.io on recorded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Differs {
    /// `full_size` 0: the size of the `arch` image (amd64 by default), not `0 B`.
    FullSizeZero,
    /// Sizes with three significant digits (pretty-bytes) where shields.io's byte-size
    /// writes one decimal.
    SizeDigits,
    /// `arch=arm/v7`: a variant can be asked for; shields.io rejects the parameter.
    ArchVariant,
    /// A 4xx other than 404 and 429 (a 401 that a fresh login does not cure): the node's
    /// `inaccessible`, where shields.io's InvalidResponse says `invalid`.
    RefusedByDockerHub,
    /// Badges shields.io does not have.
    NodeOnly,
}

const fn same(path: &'static str, shields: &'static str) -> Case {
    Case {
        path,
        shields: Some(shields),
        node: None,
    }
}

const fn differs(
    path: &'static str,
    shields: Option<&'static str>,
    node: &'static str,
    why: Differs,
) -> Case {
    Case {
        path,
        shields,
        node: Some((node, why)),
    }
}

/// A replay hub answering with `routes`, and a node asking it.
async fn serve(routes: Vec<Route>) -> (ReplayHub, TestNode) {
    let hub = ReplayHub::start(routes).await;
    let node = start_node(&hub.url, |_| {}).await;
    (hub, node)
}

async fn badge_says(node: &str, path: &str) -> String {
    let (code, headers, body) = get(&format!("{node}{path}")).await;
    assert_eq!(code, 200, "{path}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("image/svg+xml; charset=utf-8"),
        "{path}"
    );
    said(&body)
}

async fn check(node: &TestNode, cases: &[Case]) {
    let mut wrong = Vec::new();
    for case in cases {
        let expected = case
            .node
            .map(|(node, _)| node)
            .or(case.shields)
            .expect("a case expects something");
        let got = badge_says(&node.url, case.path).await;
        if got != expected {
            wrong.push(format!(
                "{}: expected `{expected}` (shields.io: {:?}{}), got `{got}`",
                case.path,
                case.shields,
                case.node
                    .map(|(_, why)| format!("; node differs: {why:?}"))
                    .unwrap_or_default(),
            ));
        }
    }
    assert!(wrong.is_empty(), "badges wrong:\n{}", wrong.join("\n"));
}

async fn build_answer(node: &TestNode, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    get(&format!("{}{path}", node.url)).await
}

/// The value of one counter of `/metrics`, 0 when absent.
async fn upstream_outcomes(node: &TestNode, outcome: &str) -> u64 {
    let (_, _, text) = get(&format!("{}/metrics", node.url)).await;
    text.lines()
        .filter(|line| {
            line.starts_with("dbs_upstream_requests_total{")
                && line.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

// ---------------------------------------------------------------------------------------
// Repository objects: 2017 (perceval's fixture), 2023 (actions-toolkit's, which its
// source anonymised as foo/bar) and 2023 again (a paste of datasette's).

#[tokio::test]
async fn repository_objects_of_three_eras() {
    let routes = [
        (
            "grimoirelab",
            "perceval",
            "repository-grimoirelab-perceval-2017.json",
        ),
        ("foo", "bar", "repository-foo-bar-2023.json"),
        (
            "datasetteproject",
            "datasette",
            "repository-datasetteproject-datasette-2023.json",
        ),
    ]
    .into_iter()
    .flat_map(|(org, repo, file)| repository(org, repo, &body(200, file)))
    .collect();
    let (hub, node) = serve(routes).await;
    check(
        &node,
        &[
            // metric(): below 1000 a count is written whole.
            same("/docker/pulls/grimoirelab/perceval", "docker pulls: 398"),
            same("/docker/stars/grimoirelab/perceval", "docker stars: 1"),
            // is_automated true; shields.io's retired automated badge said `automated`.
            same(
                "/docker/automated/grimoirelab/perceval",
                "docker build: automated",
            ),
            same(
                "/docker/cloud/automated/grimoirelab/perceval",
                "docker build: automated",
            ),
            // 178255909 / 1e6 = 178.3, at least 10 so rounded whole: 178M.
            same("/docker/pulls/foo/bar", "docker pulls: 178M"),
            same("/docker/stars/foo/bar", "docker stars: 68"),
            same("/docker/automated/foo/bar", "docker build: manual"),
            // 72673 / 1e3 = 72.7, rounded whole: 73k.
            same(
                "/docker/pulls/datasetteproject/datasette",
                "docker pulls: 73k",
            ),
            same(
                "/docker/stars/datasetteproject/datasette",
                "docker stars: 7",
            ),
        ],
    )
    .await;
    // The repository comes from the namespaces path; the deprecated one is not needed
    // while the namespaces path answers.
    assert!(
        !hub.asked(
            Method::GET,
            "/v2/namespaces/grimoirelab/repositories/perceval"
        )
        .is_empty(),
        "asked: {:?}",
        hub.received()
    );
    assert!(
        hub.asked(Method::GET, "/v2/repositories/grimoirelab/perceval")
            .is_empty(),
        "the deprecated path was asked: {:?}",
        hub.received()
    );
}

// ---------------------------------------------------------------------------------------
// A whole tag list: crazymax/diun, 79 tags in one page (2023), multi-arch with `arm` v6
// and v7, attestations (`unknown/unknown`) on `edge`, pre-releases, single numbers.

#[tokio::test]
async fn a_whole_tag_list_with_variants_attestations_and_pre_releases() {
    let routes = tag_list(
        "crazymax",
        "diun",
        &body(200, "tags-crazymax-diun-2023.json"),
    );
    let (_hub, node) = serve(routes).await;
    check(
        &node,
        &[
            // sort=date: results[0] is `latest`; its amd64 digest (sha256:ee8db2c3…) is
            // also 4, 4.24 and 4.24.0's; getDigestSemVerMatches keeps the name with the
            // most dots that is not `latest`.
            same("/docker/v/crazymax/diun", "version: v4.24.0"),
            // arch=arm: the first `arm` image of `latest` (v6), on the same four tags.
            same("/docker/v/crazymax/diun?arch=arm", "version: v4.24.0"),
            // latest(): the dotted names, less pre-releases (/\d+-\w+/); semver throws on
            // `4.24`, so latestDottedVersion: 4.24.0 beats 4.24 (longer on a tie).
            same("/docker/v/crazymax/diun?sort=semver", "version: v4.24.0"),
            // 4.23's amd64 digest is 4.23.1's too: the more exact name.
            same("/docker/v/crazymax/diun/4.23", "version: v4.23.1"),
            // edge's digest is its own; addv leaves a name that starts with a letter.
            same("/docker/v/crazymax/diun/edge", "version: edge"),
            same(
                "/docker/v/crazymax/diun/4.0.0-beta.4",
                "version: v4.0.0-beta.4",
            ),
            // A 2019 tag with one image.
            same("/docker/v/crazymax/diun/1.3.0", "version: v1.3.0"),
            same("/docker/v/crazymax/diun/nosuch", "version: tag not found"),
            // results[0].full_size 16721569 B = 15.95 MiB; byte-size: one decimal.
            same("/docker/image-size/crazymax/diun", "image size: 15.9 MiB"),
            // arch=arm: the first `arm` image (v6), 16351672 B = 15.59 MiB.
            same(
                "/docker/image-size/crazymax/diun?arch=arm",
                "image size: 15.6 MiB",
            ),
            // arm64: 15846393 B = 15.11 MiB.
            same(
                "/docker/image-size/crazymax/diun?arch=arm64",
                "image size: 15.1 MiB",
            ),
            same(
                "/docker/image-size/crazymax/diun?arch=s390x",
                "image size: architecture not found",
            ),
            // sort=semver: 4.24.0's full_size, 16721569 B.
            same(
                "/docker/image-size/crazymax/diun?sort=semver",
                "image size: 15.9 MiB",
            ),
            // arm/v7: 16071476 B = 15.33 MiB; shields.io's archSchema refuses `arm/v7`.
            differs(
                "/docker/image-size/crazymax/diun?arch=arm/v7",
                Some("image size: invalid query parameter: arch"),
                "image size: 15.3 MiB",
                Differs::ArchVariant,
            ),
            // results[0].last_updated 2022-12-29T11:25:44.861939Z: formatDate's month
            // and year in lower case.
            same(
                "/docker/last-updated/crazymax/diun",
                "last updated: december 2022",
            ),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// First pages whose `next` names another Docker Hub host: library/debian in 2019 (no
// `tag_status`, no `tag_last_pushed`, `next` on registry.hub.docker.com) and crazymax/diun
// in 2023 (`next` on hub.docker.com). Only the first pages were recorded; the later ones
// answer 404, which ends a list.

#[tokio::test]
async fn next_links_on_other_docker_hub_hosts_are_followed_on_the_configured_hub() {
    let routes = [
        ("library", "debian", "tags-library-debian-page1-2019.json"),
        ("crazymax", "diun", "tags-crazymax-diun-page1-2023.json"),
    ]
    .into_iter()
    .flat_map(|(org, repo, file)| tag_list(org, repo, &body(200, file)))
    .collect();
    let (hub, node) = serve(routes).await;
    check(
        &node,
        &[
            // sort=date: results[0] is `unstable-slim`, not `latest`: its name.
            same("/docker/v/_/debian", "version: unstable-slim"),
            // 27770486 B = 26.48 MiB.
            same("/docker/image-size/_/debian", "image size: 26.5 MiB"),
            // The first `arm` image of unstable-slim is v5: 25710653 B = 24.52 MiB.
            same(
                "/docker/image-size/_/debian?arch=arm",
                "image size: 24.5 MiB",
            ),
            same(
                "/docker/last-updated/_/debian",
                "last updated: november 2019",
            ),
            // shields.io's size and date badges with sort=date read the first page only.
            same("/docker/image-size/crazymax/diun", "image size: 15.9 MiB"),
            same(
                "/docker/last-updated/crazymax/diun",
                "last updated: december 2022",
            ),
        ],
    )
    .await;
    for (path, next) in [
        ("/v2/repositories/library/debian/tags/", "page=2"),
        ("/v2/repositories/crazymax/diun/tags", "page=2"),
    ] {
        assert!(
            hub.asked(Method::GET, path)
                .iter()
                .any(|a| a.query.contains(next)),
            "the next link to {path}?{next} was not followed on the hub: {:?}",
            hub.received()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Single tags of library/rust recorded in 2026 with `full_size: 0`, and tags Docker Hub
// did not have yet (404 with a JSON body).

fn rust_routes() -> Vec<Route> {
    let mut routes = Vec::new();
    for (name, file) in [
        ("1.44.0-slim", "tag-library-rust-1.44.0-slim-2026.json"),
        ("1.44.1-slim", "tag-library-rust-1.44.1-slim-2026.json"),
    ] {
        routes.extend(tag("library", "rust", name, &body(200, file)));
    }
    for (name, file) in [
        ("1.89.0-slim", "tag-404-library-rust-1.89.0-slim-2025.json"),
        ("1.92.0-slim", "tag-404-library-rust-1.92.0-slim-2026.json"),
    ] {
        routes.extend(tag("library", "rust", name, &body(404, file)));
    }
    routes
}

#[tokio::test]
async fn multi_arch_tags_with_full_size_zero_and_missing_tags() {
    let (_hub, node) = serve(rust_routes()).await;
    check(
        &node,
        &[
            // full_size 0: shields.io writes byte-size(0); the node the amd64 image,
            // 207268936 B = 197.67 MiB.
            differs(
                "/docker/image-size/_/rust/1.44.0-slim",
                Some("image size: 0 B"),
                "image size: 198 MiB",
                Differs::FullSizeZero,
            ),
            // On 1.44.1-slim amd64 is the second image (207775593 B), not the first
            // (arm64, 210995124 B): the default is amd64's, not whichever comes first.
            differs(
                "/docker/image-size/_/rust/1.44.1-slim",
                Some("image size: 0 B"),
                "image size: 198 MiB",
                Differs::FullSizeZero,
            ),
            // arm64: 210411823 B = 200.66 MiB.
            differs(
                "/docker/image-size/_/rust/1.44.0-slim?arch=arm64",
                Some("image size: 200.7 MiB"),
                "image size: 201 MiB",
                Differs::SizeDigits,
            ),
            // arm (v7 only): 203309061 B = 193.89 MiB.
            differs(
                "/docker/image-size/_/rust/1.44.0-slim?arch=arm",
                Some("image size: 193.9 MiB"),
                "image size: 194 MiB",
                Differs::SizeDigits,
            ),
            // 386: 228338913 B = 217.76 MiB.
            differs(
                "/docker/image-size/_/rust/1.44.0-slim?arch=386",
                Some("image size: 217.8 MiB"),
                "image size: 218 MiB",
                Differs::SizeDigits,
            ),
            differs(
                "/docker/image-size/_/rust/1.44.0-slim?arch=arm64/v8",
                Some("image size: invalid query parameter: arch"),
                "image size: 201 MiB",
                Differs::ArchVariant,
            ),
            // last_updated 2020-06-09T20:45:50.400981Z.
            same(
                "/docker/last-updated/_/rust/1.44.0-slim",
                "last updated: june 2020",
            ),
            differs(
                "/docker/platforms/_/rust/1.44.0-slim",
                None,
                "platforms: amd64 | arm64/v8 | arm/v7 | 386",
                Differs::NodeOnly,
            ),
            // The tag exists: shields.io's retired build badge said `passing`.
            same("/docker/build/_/rust/1.44.0-slim", "docker build: passing"),
            // 404: the service's word for it.
            same(
                "/docker/image-size/_/rust/1.89.0-slim",
                "image size: repository or tag not found",
            ),
            same(
                "/docker/last-updated/_/rust/1.92.0-slim",
                "last updated: repository or tag not found",
            ),
            differs(
                "/status.svg?organization=library&repository=rust&tag=1.44.0-slim",
                None,
                "Docker: ok",
                Differs::NodeOnly,
            ),
        ],
    )
    .await;
    let (code, _, text) = build_answer(&node, "/build/library/rust?tag=1.44.1-slim").await;
    assert_eq!(code, 200, "{text}");
    assert!(
        text.starts_with(r#"{"request":"ok","status":10,"source":"tag""#),
        "{text}"
    );
    let (code, _, text) = build_answer(&node, "/shields/library/rust?tag=1.44.1-slim").await;
    assert_eq!(code, 200, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).expect("endpoint JSON");
    assert_eq!(json["message"], "ok", "{text}");
    assert_eq!(json["color"], "brightgreen", "{text}");
}

// ---------------------------------------------------------------------------------------
// A tag whose `images` is empty (docker/hub-feedback#2484, August 2025).

#[tokio::test]
async fn a_tag_with_no_images() {
    let answer = first_listed_tag("tags-library-node-images-empty-2025.partial.json");
    let (_hub, node) = serve(tag("library", "node", "22.18.0-slim", &answer)).await;
    check(
        &node,
        &[
            // full_size 78914007 B = 75.26 MiB; the images are not needed.
            same(
                "/docker/image-size/library/node/22.18.0-slim",
                "image size: 75.3 MiB",
            ),
            // getImageSizeForArch finds no amd64 image: NotFound.
            same(
                "/docker/image-size/library/node/22.18.0-slim?arch=amd64",
                "image size: architecture not found",
            ),
            same(
                "/docker/last-updated/library/node/22.18.0-slim",
                "last updated: august 2025",
            ),
            differs(
                "/docker/platforms/library/node/22.18.0-slim",
                None,
                "platforms: no platforms",
                Differs::NodeOnly,
            ),
            differs(
                "/status.svg?organization=library&repository=node&tag=22.18.0-slim",
                None,
                "Docker: ok",
                Differs::NodeOnly,
            ),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Missing tags in a repository that exists, while Docker Hub answers `HEAD` with 405 (as it
// did for a day, docker/hub-feedback#2257). The repository is perceval's recording; the
// 404s are library/rust's (the node reads nothing from a 404's body).

#[tokio::test]
async fn missing_tags_never_count_as_docker_hub_failing() {
    let perceval = body(200, "repository-grimoirelab-perceval-2017.json");
    let mut routes = repository("grimoirelab", "perceval", &perceval);
    for path in [
        "/v2/namespaces/grimoirelab/repositories/perceval",
        "/v2/repositories/grimoirelab/perceval",
    ] {
        routes.push(head(path, &status_only(405)));
    }
    let missing = [
        ("1.89.0-slim", "tag-404-library-rust-1.89.0-slim-2025.json"),
        ("1.92.0-slim", "tag-404-library-rust-1.92.0-slim-2026.json"),
    ];
    for (name, file) in missing {
        routes.extend(tag("grimoirelab", "perceval", name, &body(404, file)));
    }
    // The HTML 404 of docker/hub-feedback#2250, as much of it as these tools reach.
    routes.extend(tag(
        "grimoirelab",
        "perceval",
        "html",
        &body(404, "404-html-2022.partial.html"),
    ));
    let (hub, node) = serve(routes).await;
    for name in ["1.89.0-slim", "1.92.0-slim", "html", "1.89.0-slim"] {
        let (code, _, text) =
            build_answer(&node, &format!("/build/grimoirelab/perceval?tag={name}")).await;
        assert_eq!(code, 404, "{name}: {text}");
        assert!(text.contains(&format!("tag {name} not found")), "{text}");
    }
    check(
        &node,
        &[
            same(
                "/docker/image-size/grimoirelab/perceval/html",
                "image size: repository or tag not found",
            ),
            differs(
                "/status.svg?organization=grimoirelab&repository=perceval&tag=1.92.0-slim",
                None,
                "Docker: not found",
                Differs::NodeOnly,
            ),
        ],
    )
    .await;
    let heads: Vec<Asked> = hub
        .received()
        .into_iter()
        .filter(|a| a.method == Method::HEAD)
        .collect();
    assert!(heads.is_empty(), "HEAD was asked: {heads:?}");
    assert_eq!(upstream_outcomes(&node, "http_error").await, 0);
}

// ---------------------------------------------------------------------------------------
// A repository Docker Hub does not have: `{"message":"object not found","errinfo":{}}`
// (recorded for its tag list in 2026), on every path of it.

#[tokio::test]
async fn a_repository_docker_hub_does_not_have() {
    let answer = body(404, "tags-404-object-not-found-2026.json");
    let routes = everything("ronaldraygun", "acb-enrichment", &["latest"], &answer);
    let (_hub, node) = serve(routes).await;
    check(
        &node,
        &[
            same(
                "/docker/pulls/ronaldraygun/acb-enrichment",
                "docker pulls: repo not found",
            ),
            same(
                "/docker/automated/ronaldraygun/acb-enrichment",
                "docker build: repo not found",
            ),
            same(
                "/docker/v/ronaldraygun/acb-enrichment",
                "version: repository or tag not found",
            ),
            same(
                "/docker/image-size/ronaldraygun/acb-enrichment/latest",
                "image size: repository or tag not found",
            ),
            differs(
                "/status.svg?organization=ronaldraygun&repository=acb-enrichment",
                None,
                "Docker: not found",
                Differs::NodeOnly,
            ),
        ],
    )
    .await;
    let (code, _, text) = build_answer(&node, "/build/ronaldraygun/acb-enrichment").await;
    assert_eq!(code, 404, "{text}");
    assert!(text.contains("repository not found"), "{text}");
}

// ---------------------------------------------------------------------------------------
// 429s in the three forms recorded: a Unix time in `Retry-After` with `X-RateLimit-*`
// (May 2025), HAProxy's plain-text `HAP429` with `Retry-After: 60` (2020), and a JSON body
// without headers (2024).

/// The wait a node's `/build` announces after the hub answered `answer` everywhere.
async fn rate_limited(answer: Answer, org: &str) -> (u64, String) {
    let routes = everything(org, "app", &["latest"], &answer);
    let (_hub, node) = serve(routes).await;
    let (code, headers, text) = build_answer(&node, &format!("/build/{org}/app")).await;
    assert_eq!(code, 503, "{text}");
    let wait = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a Retry-After in seconds");
    let badge = badge_says(&node.url, &format!("/docker/pulls/{org}/app")).await;
    (wait, badge)
}

#[tokio::test]
async fn each_recorded_429_mutes_the_hub_for_what_it_says() {
    let unix = Answer {
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: headers_pasted_as_json("429-unix-time-2025.headers.txt"),
        body: Bytes::new(),
    };
    let hap = answer_pasted_raw("429-hap429-2020.http.txt");
    assert_eq!(hap.status, StatusCode::TOO_MANY_REQUESTS);
    let logged = answer_in_log_line("429-rate-limit-exceeded-2024.log.txt");
    assert_eq!(logged.status, StatusCode::TOO_MANY_REQUESTS);
    // The recorded reset is a minute after the answer's own Date (22:01:18 → 22:02:18):
    // the node waits that minute, not the hour a Unix time read as seconds would give.
    // HAP429 says 60 seconds; the JSON 429 names no time, and a minute is the default.
    for (answer, org) in [(unix, "unix"), (hap, "hap"), (logged, "logged")] {
        let (wait, badge) = rate_limited(answer, org).await;
        assert!((1..=60).contains(&wait), "{org}: Retry-After {wait}");
        // check-error-response: 429 → rate limited by upstream service.
        assert_eq!(
            badge, "docker pulls: rate limited by upstream service",
            "{org}"
        );
    }
}

/// A 429 whose `Retry-After` is a Unix time a minute ahead (of the answer's `Date`) makes
/// the node ask again within two minutes, and not before the minute. The minute passes on
/// the node's clock, a second at a time ([`skip`]), not on the wall's.
#[tokio::test]
async fn after_a_429_naming_a_unix_time_the_node_asks_again_within_two_minutes() {
    let unix = Answer {
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: headers_pasted_as_json("429-unix-time-2025.headers.txt"),
        body: Bytes::new(),
    };
    let (hub, node) = serve(everything("again", "app", &["latest"], &unix)).await;
    let gets = || -> Vec<Asked> {
        hub.received()
            .into_iter()
            .filter(|a| a.method == Method::GET)
            .collect()
    };
    let (code, _, _) = build_answer(&node, "/build/again/app").await;
    assert_eq!(code, 503);
    let first = gets();
    assert!(!first.is_empty(), "the hub was not asked");
    let started = first[0].at;
    let deadline = started + Duration::from_secs(120);
    while gets().len() == first.len() {
        assert!(
            Instant::now() < deadline,
            "the node did not ask Docker Hub again within two minutes of a 429 whose reset \
             was one minute ahead"
        );
        skip(Duration::from_secs(1)).await;
        let _ = build_answer(&node, "/build/again/app").await;
    }
    let again = gets()[first.len()].at.duration_since(started);
    assert!(
        again >= Duration::from_secs(50),
        "asked again after {again:?}, before the recorded reset"
    );
}

// ---------------------------------------------------------------------------------------
// A 401 with Docker Hub's JSON body (2026): the token is dropped and the node logs in once
// more before it gives up.

#[tokio::test]
async fn a_401_drops_the_token_and_logs_in_once_more() {
    let refused = body(401, "401-unauthorized-2026.json");
    let hub = ReplayHub::start(everything("private", "app", &["latest"], &refused)).await;
    let node = start_node(&hub.url, |c| {
        c.hub_username = Some("someone".into());
        c.hub_token = Some("dckr_pat_replay".into());
    })
    .await;
    check(
        &node,
        // check-error-response: a 4xx other than 404 and 429 is an InvalidResponse with
        // no word of its own, so errors.js's default: `invalid`.
        &[differs(
            "/docker/pulls/private/app",
            Some("docker pulls: invalid"),
            "docker pulls: inaccessible",
            Differs::RefusedByDockerHub,
        )],
    )
    .await;
    let logins = hub.asked(Method::POST, "/v2/auth/token").len();
    assert_eq!(logins, 2, "logins: {:?}", hub.received());
    let tokens: Vec<Option<String>> = hub
        .received()
        .into_iter()
        .filter(|a| a.method == Method::GET)
        .map(|a| a.authorization)
        .collect();
    assert_eq!(
        tokens.first().cloned().flatten().as_deref(),
        Some("Bearer replay-token-1"),
        "{tokens:?}"
    );
    assert_eq!(
        tokens.last().cloned().flatten().as_deref(),
        Some("Bearer replay-token-2"),
        "the request after the 401 must carry the new token: {tokens:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 5xx: HAProxy's 503 page in front of Docker Hub (2018) and a 500 on a tag list recorded as
// a status only (2022). Docker Hub failing is `inaccessible`, also once the node backs off.

#[tokio::test]
async fn docker_hub_failing_reads_inaccessible() {
    let haproxy = body(503, "503-haproxy-2018.html");
    let mut routes = everything("failing", "haproxy", &["latest"], &haproxy);
    routes.extend(everything(
        "failing",
        "five-hundred",
        &["latest"],
        &status_only(500),
    ));
    let (_hub, node) = serve(routes).await;
    check(
        &node,
        &[
            same(
                "/docker/pulls/failing/haproxy",
                "docker pulls: inaccessible",
            ),
            same("/docker/v/failing/five-hundred", "version: inaccessible"),
            same(
                "/docker/last-updated/failing/haproxy/latest",
                "last updated: inaccessible",
            ),
            // A fourth failure in a row: the node holds back, and still says why.
            same(
                "/docker/image-size/failing/five-hundred",
                "image size: inaccessible",
            ),
            same(
                "/docker/stars/failing/five-hundred",
                "docker stars: inaccessible",
            ),
        ],
    )
    .await;
    // `/build` says the same in its own words: Docker Hub failed (and the node waits),
    // nothing about a rate.
    let (code, _, text) = build_answer(&node, "/build/failing/haproxy").await;
    assert!(matches!(code, 502 | 503), "{code} {text}");
    assert!(
        text.contains("Docker Hub") && !text.contains("rate limit"),
        "{text}"
    );
}
