//! The Docker badges at shields.io's paths against the fake hub: every kind's label and
//! message, the resources they share, the bounded tag list under a cold crowd, and bad
//! input that must give a badge with a clear word, 200 and a short lifetime.

use crate::common::{get, said, start_node};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeImage, FakeRepo, Fault};

async fn badge(url: &str) -> (u16, String, String) {
    let (code, headers, body) = get(url).await;
    let cache = headers
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("image/svg+xml; charset=utf-8"),
        "{url}"
    );
    (code, said(&body), cache)
}

fn tag_list_requests(hub: &FakeHub) -> usize {
    hub.received()
        .iter()
        .filter(|r| r.path.ends_with("/tags"))
        .count()
}

#[tokio::test]
async fn every_kind_says_what_shields_says() {
    let hub = FakeHub::start().await.unwrap();
    hub.add_samples();
    hub.set_repo(
        "acme/built",
        FakeRepo::with_builds(&[("latest", 10), ("dev", 3), ("broken", -1)]),
    );
    let node = start_node(&hub.url(), |_| {}).await;
    let u = &node.url;
    for (path, expected) in [
        ("/docker/pulls/_/nginx", "docker pulls: 1.2G"),
        ("/docker/pulls/library/nginx.svg", "docker pulls: 1.2G"),
        ("/docker/stars/_/nginx", "docker stars: 21k"),
        ("/docker/v/_/nginx", "version: v1.27.3"),
        ("/docker/v/_/nginx?sort=semver", "version: v1.27.3"),
        ("/docker/v/_/nginx/1.27", "version: v1.27.3"),
        ("/docker/v/_/nginx/alpine", "version: alpine"),
        ("/docker/image-size/_/nginx", "image size: 68.8 MiB"),
        (
            "/docker/image-size/_/nginx?arch=arm64",
            "image size: 65 MiB",
        ),
        ("/docker/image-size/_/nginx/alpine", "image size: 1.18 MiB"),
        (
            "/docker/platforms/_/nginx",
            "platforms: amd64 | arm64/v8 | arm/v7",
        ),
        ("/docker/platforms/_/nginx/alpine", "platforms: amd64"),
        ("/docker/automated/_/nginx", "docker build: manual"),
        ("/docker/cloud/automated/_/nginx", "docker build: manual"),
        ("/docker/build/acme/built", "docker build: passing"),
        (
            "/docker/cloud/build/acme/built/dev",
            "docker build: building",
        ),
        ("/docker/build/acme/built/broken", "docker build: failing"),
        ("/docker/pulls/_/nginx?label=pulls", "pulls: 1.2G"),
        ("/docker/pulls/_/nginx?label=", "1.2G"),
        ("/docker/pulls/_/nosuch", "docker pulls: repo not found"),
        ("/docker/v/_/nosuch", "version: repository or tag not found"),
        ("/docker/v/_/nginx/nosuch", "version: tag not found"),
        (
            "/docker/platforms/_/nginx/nosuch",
            "platforms: repository or tag not found",
        ),
    ] {
        let (code, text, _) = badge(&format!("{u}{path}")).await;
        assert_eq!(code, 200, "{path}");
        assert_eq!(text, expected, "{path}");
    }
    let (_, text, _) = badge(&format!("{u}/docker/last-updated/_/nginx")).await;
    assert!(text.starts_with("last updated: "), "{text}");
    assert!(
        text.split(' ').next_back().unwrap().parse::<u32>().is_ok(),
        "{text}"
    );
    // The repository is asked once for pulls, stars and automated: one resource.
    let repository_calls = hub
        .received()
        .iter()
        .filter(|r| r.path == "/v2/namespaces/library/repositories/nginx")
        .count();
    assert_eq!(repository_calls, 1);
    // The old routes keep their words.
    let (code, _, body) = get(&format!("{u}/build/acme/built")).await;
    assert_eq!(code, 200);
    assert!(body.starts_with(r#"{"request":"ok","status":10"#), "{body}");
}

#[tokio::test]
async fn parameters_colour_style_and_cache_like_shields() {
    let hub = FakeHub::start().await.unwrap();
    hub.add_samples();
    let node = start_node(&hub.url(), |_| {}).await;
    let u = &node.url;
    let (_, _, svg) = get(&format!("{u}/docker/pulls/_/nginx")).await;
    assert!(svg.contains("fill=\"#066da5\""), "Docker blue: {svg}");
    let (_, _, svg) = get(&format!(
        "{u}/docker/pulls/_/nginx?color=red&labelColor=abcdef"
    ))
    .await;
    assert!(
        svg.contains("fill=\"#dd4343\"") && svg.contains("fill=\"#abcdef\""),
        "{svg}"
    );
    let (_, _, svg) = get(&format!(
        "{u}/docker/pulls/_/nginx?style=for-the-badge&logo=docker"
    ))
    .await;
    assert!(svg.contains("DOCKER PULLS") && svg.contains("data:image/svg+xml;base64,"));
    // cacheSeconds below the kind's floor is ignored; above it, it is the lifetime.
    let (_, _, cache) = badge(&format!("{u}/docker/pulls/_/nginx?cacheSeconds=5")).await;
    let max_age: u64 = cache
        .trim_start_matches("public, max-age=")
        .parse()
        .unwrap();
    assert!(max_age > 3000, "{cache}");
    let (_, _, cache) = badge(&format!("{u}/docker/pulls/_/nginx?cacheSeconds=86400")).await;
    assert_eq!(cache, "public, max-age=86400");
    // Error badges keep their colour whatever color= says.
    let (_, _, svg) = get(&format!("{u}/docker/pulls/_/nosuch?color=blue")).await;
    assert!(svg.contains("fill=\"#dd4343\""), "{svg}");
}

#[tokio::test]
async fn a_cold_crowd_for_a_thousand_tags_costs_the_bounded_pages_once() {
    let hub = FakeHub::start().await.unwrap();
    let names: Vec<String> = (0..1000).map(|i| format!("1.{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    hub.set_repo("acme/many", FakeRepo::with_tags(&names));
    let node = start_node(&hub.url(), |_| {}).await;
    let url = format!("{}/docker/v/acme/many?sort=semver", node.url);
    let crowd: Vec<_> = (0..64)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { badge(&url).await })
        })
        .collect();
    for answer in crowd {
        let (code, text, _) = answer.await.unwrap();
        assert_eq!(code, 200);
        assert_eq!(text, "version: v1.999");
    }
    assert_eq!(
        tag_list_requests(&hub),
        dockerhub_build_status::hub::tag_list::MAX_TAG_PAGES
    );
    // Every other badge of the list is derived from the same cached pages.
    for path in [
        "/docker/v/acme/many",
        "/docker/image-size/acme/many",
        "/docker/last-updated/acme/many",
    ] {
        let (code, _, _) = badge(&format!("{}{path}", node.url)).await;
        assert_eq!(code, 200);
    }
    assert_eq!(tag_list_requests(&hub), 10);
}

#[tokio::test]
async fn bad_input_gets_a_clear_word_200_and_a_short_lifetime() {
    let hub = FakeHub::start().await.unwrap();
    hub.add_samples();
    hub.set_repo("acme/empty", FakeRepo::with_tags(&[]));
    hub.set_repo(
        "acme/endless",
        FakeRepo {
            endless_tags: true,
            ..FakeRepo::with_tags(&["1.0", "0.9"])
        },
    );
    hub.set_repo(
        "acme/garbage",
        FakeRepo {
            garbage_tags: true,
            ..FakeRepo::with_tags(&["1.0"])
        },
    );
    let node = start_node(&hub.url(), |_| {}).await;
    let u = &node.url;
    for (path, expected) in [
        ("/docker/nope/_/nginx", "404: badge not found"),
        ("/docker/pulls/_/nginx/extra", "404: badge not found"),
        (
            "/docker/pulls/_/nginx?style=fancy",
            "docker pulls: invalid query parameter: style",
        ),
        (
            "/docker/v/_/nginx?sort=newest",
            "version: invalid query parameter: sort",
        ),
        (
            "/docker/v/_/nginx?arch=z80",
            "version: invalid query parameter: arch",
        ),
        (
            "/docker/pulls/_/nginx?cacheSeconds=soon",
            "docker pulls: invalid query parameter: cacheSeconds",
        ),
        (
            "/docker/pulls/Bad/Name",
            "docker pulls: invalid repository name",
        ),
        (
            "/docker/image-size/_/nginx/alpine?arch=s390x",
            "image size: architecture not found",
        ),
        (
            "/docker/v/_/nginx?arch=s390x",
            "version: digest not found for latest tag",
        ),
        ("/docker/v/acme/empty", "version: no tags found"),
        (
            "/docker/last-updated/acme/empty",
            "last updated: no tags found",
        ),
        ("/docker/image-size/acme/empty", "image size: no tags found"),
        ("/docker/v/acme/endless", "version: invalid response data"),
        ("/docker/v/acme/garbage", "version: invalid response data"),
    ] {
        let (code, text, cache) = badge(&format!("{u}{path}")).await;
        assert_eq!(code, 200, "{path}");
        assert_eq!(text, expected, "{path}");
        assert_eq!(cache, "public, max-age=30", "{path}");
    }
    // Nothing wrong was kept: bad answers are not cached, so the fixed hub is asked again
    // and its answer shows.
    let before = tag_list_requests(&hub);
    hub.set_repo("acme/garbage", FakeRepo::with_tags(&["2.0"]));
    let (_, text, _) = badge(&format!("{u}/docker/v/acme/garbage")).await;
    assert_eq!(text, "version: v2.0");
    assert!(tag_list_requests(&hub) > before);
    // A hub that fails answers a grey word, still 200, and a repository asked during the
    // fault is asked again once it is over.
    hub.set_fault(Some(Fault::ServerError));
    let (code, text, cache) = badge(&format!("{u}/docker/stars/_/redis")).await;
    assert_eq!(
        (code, text.as_str(), cache.as_str()),
        (200, "docker stars: inaccessible", "public, max-age=30")
    );
    hub.set_fault(Some(Fault::Garbage));
    let (code, text, _) = badge(&format!("{u}/docker/platforms/_/redis")).await;
    assert_eq!(
        (code, text.as_str()),
        (200, "platforms: invalid response data")
    );
    hub.set_fault(None);
    let (_, text, _) = badge(&format!("{u}/docker/stars/_/redis")).await;
    assert_eq!(text, "docker stars: 12k");
}

#[tokio::test]
async fn platforms_list_each_platform_once_without_attestations() {
    let hub = FakeHub::start().await.unwrap();
    hub.set_repo(
        "acme/multi",
        FakeRepo::with_tags(&["latest"]).with_images(
            "latest",
            vec![
                FakeImage::new("amd64", "sha256:a", 10),
                FakeImage::new("windows/amd64", "sha256:w", 10),
                FakeImage::new("linux/arm/v7", "sha256:b", 10),
                FakeImage::new("linux/arm/v7", "sha256:c", 10),
                FakeImage::new("unknown/unknown", "sha256:d", 10),
            ],
        ),
    );
    let node = start_node(&hub.url(), |_| {}).await;
    let (_, text, _) = badge(&format!("{}/docker/platforms/acme/multi", node.url)).await;
    assert_eq!(text, "platforms: amd64 | windows/amd64 | arm/v7");
}
