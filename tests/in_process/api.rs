//! The HTTP API against a fake Docker Hub on a loopback port: every route, every error path,
//! the fallback to the tag endpoint, the page cap, off-origin `next` links, hostile names
//! and markup in `text`.

use std::io::Read;
use std::time::Duration;

use crate::common::{client, get, get_json, said, start_node};
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo, Fault};
use serde_json::json;

async fn hub_with_samples() -> FakeHub {
    let hub = FakeHub::start().await.unwrap();
    hub.set_repo(
        "acme/app",
        FakeRepo::with_builds(&[("latest", 10), ("dev", 3), ("broken", -1), ("queued", 0)]),
    );
    hub.set_repo("library/nginx", FakeRepo::with_tags(&["latest", "alpine"]));
    hub
}

#[tokio::test]
async fn build_reports_docker_hub_status_numbers() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    for (tag, status) in [("latest", 10), ("dev", 3), ("broken", -1), ("queued", 0)] {
        let (code, body) = get_json(&format!("{}/build/acme/app?tag={tag}", node.url)).await;
        assert_eq!(code, 200, "{tag}: {body}");
        assert_eq!(body["request"], "ok");
        assert_eq!(body["status"], status);
        assert_eq!(body["source"], "buildhistory");
        assert_eq!(body["stale"], false);
    }
}

#[tokio::test]
async fn the_old_api_shapes_are_kept_word_for_word() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let (_, _, body) = get(&format!("{}/build/acme/app", node.url)).await;
    assert!(body.starts_with(r#"{"request":"ok","status":10"#), "{body}");
    let (code, _, body) = get(&format!("{}/build/acme/app?tag=nope", node.url)).await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        r#"{"request":"error","description":"tag nope not found"}"#
    );
}

/// A repository that does not exist is said to be missing; a missing tag of an existing one
/// keeps the old words. The repository is asked about only once the tag is missing, so a
/// found image costs no more of the hub budget than before, and always with `GET` (Docker
/// Hub answered `HEAD` with 405 for a day). Until the current repository path has answered
/// once, its 404 is confirmed on the deprecated path.
#[tokio::test]
async fn a_missing_repository_is_told_from_a_missing_tag() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let (code, body) = get_json(&format!("{}/build/nobody/nothing", node.url)).await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({"request": "error", "description": "repository not found"})
    );
    let (code, body) = get_json(&format!("{}/build/library/nginx?tag=missing", node.url)).await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({"request": "error", "description": "tag missing not found"})
    );
    let (code, _) = get_json(&format!("{}/build/library/nginx?tag=alpine", node.url)).await;
    assert_eq!(code, 200);
    let paths: Vec<String> = hub.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v2/repositories/nobody/nothing/buildhistory/",
            "/v2/namespaces/nobody/repositories/nothing/tags/latest",
            "/v2/namespaces/nobody/repositories/nothing",
            "/v2/repositories/nobody/nothing",
            "/v2/repositories/library/nginx/buildhistory/",
            "/v2/namespaces/library/repositories/nginx/tags/missing",
            "/v2/namespaces/library/repositories/nginx",
            // No build history again: the hub said so for this repository a moment ago.
            "/v2/namespaces/library/repositories/nginx/tags/alpine",
        ]
    );
    assert!(hub.received().iter().all(|r| r.method == "GET"));
    // The repository answered is the one the pulls badge reads: no request of its own.
    let (_, _, svg) = get(&format!("{}/docker/pulls/library/nginx", node.url)).await;
    assert!(svg.contains("docker pulls"), "{svg}");
    assert_eq!(hub.request_count(), paths.len());
    // Now the current path has answered, its 404 is believed: one request.
    let (_, body) = get_json(&format!("{}/build/nobody/else", node.url)).await;
    assert_eq!(body["description"], "repository not found");
    let last: Vec<String> = hub
        .received()
        .into_iter()
        .skip(paths.len())
        .map(|r| r.path)
        .collect();
    assert_eq!(
        last,
        [
            "/v2/repositories/nobody/else/buildhistory/",
            "/v2/namespaces/nobody/repositories/else/tags/latest",
            "/v2/namespaces/nobody/repositories/else",
        ]
    );
    let paths: Vec<String> = hub.received().into_iter().map(|r| r.path).collect();
    // Cached like any not-found: asking again costs nothing upstream, and says the same.
    let (_, body) = get_json(&format!("{}/build/nobody/nothing", node.url)).await;
    assert_eq!(body["description"], "repository not found");
    assert_eq!(hub.request_count(), paths.len());
    // The badge says `not found` for both.
    let (_, _, svg) = get(&format!(
        "{}/status.svg?organization=nobody&repository=nothing",
        node.url
    ))
    .await;
    assert!(svg.contains("not found"), "{svg}");
}

#[tokio::test]
async fn without_build_history_the_tag_endpoint_answers() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let (code, body) = get_json(&format!("{}/build/library/nginx?tag=alpine", node.url)).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], 10);
    assert_eq!(body["source"], "tag");
    let paths: Vec<String> = hub.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v2/repositories/library/nginx/buildhistory/",
            "/v2/namespaces/library/repositories/nginx/tags/alpine"
        ]
    );
    let (code, body) = get_json(&format!("{}/build/library/nginx?tag=missing", node.url)).await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({"request": "error", "description": "tag missing not found"})
    );
    let (code, _) = get_json(&format!("{}/build/library/no-such-repo", node.url)).await;
    assert_eq!(code, 404);
}

fn pages(count: usize, tag_on_page: Option<usize>) -> FakeRepo {
    let history = (1..=count)
        .map(|page| {
            let mut builds: Vec<(String, i64)> =
                (0..3).map(|i| (format!("old-{page}-{i}"), 10)).collect();
            if Some(page) == tag_on_page {
                builds.push(("wanted".into(), -1));
            }
            builds
        })
        .collect();
    FakeRepo {
        history: Some(history),
        tags: vec![("wanted".into(), "active".into())],
        ..FakeRepo::default()
    }
}

#[tokio::test]
async fn next_links_are_followed_for_at_most_five_pages() {
    let hub = FakeHub::start().await.unwrap();
    hub.set_repo("acme/page-three", pages(8, Some(3)));
    hub.set_repo("acme/page-six", pages(8, Some(6)));
    let node = start_node(&hub.url(), |_| {}).await;

    let (code, body) = get_json(&format!("{}/build/acme/page-three?tag=wanted", node.url)).await;
    assert_eq!(
        (code, body["status"].clone(), body["source"].clone()),
        (200, json!(-1), json!("buildhistory"))
    );
    assert_eq!(hub.request_count(), 3);

    // On page 6 the build is out of reach: five pages, then the tag endpoint.
    let (code, body) = get_json(&format!("{}/build/acme/page-six?tag=wanted", node.url)).await;
    assert_eq!(
        (code, body["status"].clone(), body["source"].clone()),
        (200, json!(10), json!("tag"))
    );
    let paths: Vec<String> = hub.received().into_iter().skip(3).map(|r| r.path).collect();
    assert_eq!(paths.len(), 6, "{paths:?}");
    assert!(paths[..5].iter().all(|p| p.ends_with("/buildhistory/")));
    assert!(paths[5].ends_with("/tags/wanted"));
}

#[tokio::test]
async fn next_links_off_the_hubs_origin_are_not_followed() {
    let hub = FakeHub::start().await.unwrap();
    let elsewhere = FakeHub::start().await.unwrap();
    elsewhere.set_repo("acme/app", pages(2, Some(2)));
    hub.set_repo("acme/app", pages(2, Some(2)));
    hub.set_next_origin(Some(elsewhere.url()));
    let node = start_node(&hub.url(), |_| {}).await;
    let (code, body) = get_json(&format!("{}/build/acme/app?tag=wanted", node.url)).await;
    assert_eq!(code, 200);
    assert_eq!(
        body["source"], "tag",
        "fell back instead of following the link"
    );
    assert_eq!(
        elsewhere.request_count(),
        0,
        "nothing went to the other origin"
    );
}

#[tokio::test]
async fn upstream_failures_become_distinct_clear_errors() {
    let hub = hub_with_samples().await;
    let cases = [
        (
            Fault::RateLimit {
                retry_after_secs: 30,
            },
            503,
            "rate limit",
        ),
        (Fault::ServerError, 502, "HTTP 500"),
        (Fault::Garbage, 502, "not JSON"),
        (
            Fault::Slow(Duration::from_secs(2)),
            502,
            "did not answer in time",
        ),
    ];
    for (fault, code, words) in cases {
        hub.set_fault(Some(fault.clone()));
        // A node of its own per case: a 429 mutes a node's hub client, and nothing cached
        // may hide the error.
        let node = start_node(&hub.url(), |c| c.hub_timeout = Duration::from_millis(300)).await;
        let (status, headers, body) = get(&format!("{}/build/acme/app", node.url)).await;
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status, code, "{fault:?}: {body}");
        assert_eq!(body["request"], "error");
        let description = body["description"].as_str().unwrap();
        assert!(description.contains(words), "{fault:?}: {description}");
        assert!(
            !description.contains("127.0.0.1"),
            "no internals leak: {description}"
        );
        if code == 503 {
            assert_eq!(headers["retry-after"], "30");
        }
    }
}

#[tokio::test]
async fn hostile_names_are_refused_before_anything_goes_upstream() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let long = "a".repeat(300);
    for path in [
        "/build/../etc".to_owned(),
        "/build/%2e%2e/passwd".to_owned(),
        "/build/library/a%2Fb".to_owned(),
        "/build/Library/nginx".to_owned(),
        "/build/library/NGINX".to_owned(),
        format!("/build/library/{long}"),
        "/build/library/ngi%00nx".to_owned(),
        "/build/library/ngi%0anx".to_owned(),
        "/build/library/nginx?tag=..%2F..".to_owned(),
        "/build/library/nginx?tag=-rm".to_owned(),
        format!("/build/library/nginx?tag={}", "t".repeat(129)),
    ] {
        let (code, body) = get_json(&format!("{}{path}", node.url)).await;
        if code == 404
            && body["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("no such route"))
        {
            continue; // a path the client normalised away is simply not a route
        }
        assert_eq!(code, 400, "{path}: {body}");
        assert_eq!(body["request"], "error");
        assert!(!body["description"].as_str().unwrap().is_empty());
    }
    assert_eq!(hub.request_count(), 0, "nothing reached the hub");
}

#[tokio::test]
async fn the_badge_renders_every_outcome_with_200() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let cases = [
        ("organization=acme&repository=app", "ok"),
        ("organization=acme&repository=app&tag=dev", "building"),
        ("organization=acme&repository=app&tag=broken", "error"),
        ("organization=acme&repository=app&tag=missing", "not found"),
        ("repository=nginx", "ok"),
        ("organization=acme", "invalid"),
        ("organization=acme&repository=App", "invalid"),
    ];
    for (query, message) in cases {
        let (code, headers, svg) = get(&format!("{}/status.svg?{query}", node.url)).await;
        assert_eq!(code, 200, "{query}");
        assert_eq!(headers["content-type"], "image/svg+xml; charset=utf-8");
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert!(
            svg.contains(&format!(">{message}<")),
            "{query}: expected {message} in {svg}"
        );
        assert!(svg.contains(">Docker<"), "default label");
    }
    hub.set_fault(Some(Fault::RateLimit {
        retry_after_secs: 60,
    }));
    let (code, _, svg) = get(&format!(
        "{}/status.svg?organization=acme&repository=other",
        node.url
    ))
    .await;
    assert_eq!(code, 200);
    assert!(svg.contains(">rate limited<"), "{svg}");
}

#[tokio::test]
async fn every_style_is_drawn_as_asked_in_the_one_palette() {
    use dockerhub_build_status::badge::{self, Badge, Color, Logo, Style};
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    for style in Style::ALL {
        for (tag, message, color) in [
            ("latest", "ok", Color::BrightGreen),
            ("broken", "error", Color::Red),
        ] {
            let query = format!(
                "organization=acme&repository=app&tag={tag}&style={}&logo=docker",
                style.as_str()
            );
            let (code, _, svg) = get(&format!("{}/status.svg?{query}", node.url)).await;
            assert_eq!(code, 200, "{query}");
            // `social` used to fall back to `flat`; each style is now its own.
            let expected = badge::render(&Badge {
                style,
                logo: Some(Logo::Docker),
                ..Badge::new(badge::DEFAULT_LABEL, message, color)
            });
            assert_eq!(svg, expected, "{query}");
        }
    }
    // The endpoint JSON names the colour the SVG fills, from one palette.
    let (code, body) = get_json(&format!("{}/shields/acme/app", node.url)).await;
    assert_eq!(code, 200);
    assert_eq!(body["color"], Color::BrightGreen.name());
    let (_, _, svg) = get(&format!(
        "{}/status.svg?organization=acme&repository=app",
        node.url
    ))
    .await;
    assert!(svg.contains("fill=\"#4b0\""), "{svg}");
}

#[tokio::test]
async fn markup_in_text_is_shown_as_text() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let text = "<script>alert(1)</script>&\"'";
    let url = format!(
        "{}/status.svg?repository=nginx&text={}",
        node.url,
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
    );
    let (_, headers, svg) = get(&url).await;
    assert!(!svg.contains("<script"), "{svg}");
    assert!(svg.contains("&lt;script&gt;"), "{svg}");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
}

/// One cleaning of client text, whatever shows it: the endpoint JSON's label is the label
/// the SVG badge draws (controls and bidi overrides removed, capped with an ellipsis).
#[tokio::test]
async fn the_endpoint_json_and_the_svg_clean_a_label_alike() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let text = format!("build\u{202e}sta\u{7}tus {}", "x".repeat(80));
    let encoded = percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC);
    let (code, body) = get_json(&format!("{}/shields/acme/app?text={encoded}", node.url)).await;
    assert_eq!(code, 200);
    let (code, _, svg) = get(&format!(
        "{}/status.svg?organization=acme&repository=app&text={encoded}",
        node.url
    ))
    .await;
    assert_eq!(code, 200);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let title = doc
        .descendants()
        .find(|n| n.has_tag_name("title"))
        .and_then(|n| n.text())
        .unwrap();
    let expected = format!("buildstatus {}…", "x".repeat(51));
    assert_eq!(body["label"], expected.as_str());
    assert_eq!(title, format!("{expected}: ok"));
}

#[tokio::test]
async fn shields_endpoint_json_has_exactly_the_schema_fields() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let (code, body) = get_json(&format!("{}/shields/acme/app?tag=broken", node.url)).await;
    assert_eq!(code, 200);
    let object = body.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["cacheSeconds", "color", "label", "message", "schemaVersion"]
    );
    assert_eq!(body["schemaVersion"], 1);
    assert_eq!(body["label"], "Docker");
    assert_eq!(body["message"], "error");
    assert_eq!(body["color"], "red");
    assert!(body["cacheSeconds"].as_u64().unwrap() >= 300);
    let (code, body) = get_json(&format!("{}/shields/acme/NOPE", node.url)).await;
    assert_eq!((code, body["message"].as_str()), (200, Some("invalid")));
}

#[tokio::test]
async fn cors_head_options_and_unknown_routes() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let http = client();
    let (_, headers, _) = get(&format!("{}/build/acme/app", node.url)).await;
    assert_eq!(headers["access-control-allow-origin"], "*");

    let head = http
        .head(format!("{}/status.svg?repository=nginx", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        head.headers()["content-type"],
        "image/svg+xml; charset=utf-8"
    );
    assert!(
        head.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 100
    );
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD has no body");

    let preflight = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/build/acme/app", node.url),
        )
        .header("origin", "https://example.org")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("GET")
    );

    let post = http
        .post(format!("{}/build/acme/app", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert!(post.headers()["allow"].to_str().unwrap().contains("GET"));

    let (code, body) = get_json(&format!("{}/nope", node.url)).await;
    assert_eq!(code, 404);
    assert_eq!(body["request"], "error");
}

#[tokio::test]
async fn etags_answer_304_and_cache_control_follows_freshness() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |c| c.cache_ttl = Duration::from_secs(120)).await;
    let url = format!("{}/status.svg?organization=acme&repository=app", node.url);
    let (_, headers, _) = get(&url).await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let max_age: u64 = headers["cache-control"]
        .to_str()
        .unwrap()
        .trim_start_matches("public, max-age=")
        .parse()
        .unwrap();
    assert!((110..=120).contains(&max_age), "{max_age}");
    let again = client()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let other = client()
        .get(&url)
        .header("if-none-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);

    let json_url = format!("{}/build/acme/app", node.url);
    let (_, headers, _) = get(&json_url).await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let again = client()
        .get(&json_url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn health_index_script_and_source() {
    let hub = hub_with_samples().await;
    let node = start_node(&hub.url(), |_| {}).await;
    let (code, body) = get_json(&format!("{}/health", node.url)).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(
        body["url"], node.url,
        "the canonical URL, without a trailing slash"
    );
    assert_eq!(
        body["key"].as_str().map(str::len),
        Some(44),
        "a base64 ed25519 key"
    );
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    let (code, headers, page) = get(&format!("{}/", node.url)).await;
    assert_eq!(code, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.contains("status.svg?") && page.contains("repository"));

    for path in ["/status.js", "/static/status.js"] {
        let (code, headers, script) = get(&format!("{}{path}", node.url)).await;
        assert_eq!(code, 200);
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/javascript")
        );
        assert_eq!(script, include_str!("../../status.js"));
    }
    // The shipped file, its root element naming this node as status.js's bootstrap.
    let (code, _, svg) = get(&format!("{}/static/status.svg", node.url)).await;
    let named = include_str!("../../status.svg").replacen(
        "<svg ",
        &format!(
            "<svg data-bootstrap=\"{}\" ",
            node.url.trim_end_matches('/')
        ),
        1,
    );
    assert_eq!((code, svg.as_str()), (200, named.as_str()));

    let response = client()
        .get(format!("{}/source", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/gzip");
    let archive = response.bytes().await.unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&archive[..]));
    let mut names = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name.ends_with("/src/lib.rs") {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            assert_eq!(
                text,
                include_str!("../../src/lib.rs"),
                "the archive holds this very source"
            );
        }
        names.push(name);
    }
    for wanted in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src/main.rs",
        "src/lib.rs",
        "status.js",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(&format!("/{wanted}"))),
            "{wanted} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.contains("/target/")),
        "no build output"
    );
}

#[tokio::test]
async fn credentials_fetch_a_token_and_use_it() {
    let hub = hub_with_samples().await;
    hub.require_credentials("volunteer", "dckr_pat_secret");
    let node = start_node(&hub.url(), |c| {
        c.hub_username = Some("volunteer".into());
        c.hub_token = Some("dckr_pat_secret".into());
    })
    .await;
    let (code, body) = get_json(&format!("{}/build/acme/app", node.url)).await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = get_json(&format!("{}/build/acme/app?tag=dev", node.url)).await;
    assert_eq!(code, 200);
    let token_requests = hub
        .received()
        .iter()
        .filter(|r| r.path == "/v2/auth/token")
        .count();
    assert_eq!(
        token_requests, 1,
        "the token is reused until it nears expiry"
    );

    // Docker Hub revokes the token before its time: the node logs in once more and goes on.
    hub.revoke_tokens();
    let (code, body) = get_json(&format!("{}/build/acme/app?tag=broken", node.url)).await;
    assert_eq!(code, 200, "{body}");
    let paths: Vec<String> = hub.received().into_iter().map(|r| r.path).collect();
    let logins = paths.iter().filter(|p| *p == "/v2/auth/token").count();
    assert_eq!(logins, 2, "one login more, no more: {paths:?}");

    let wrong = start_node(&hub.url(), |c| {
        c.hub_username = Some("volunteer".into());
        c.hub_token = Some("wrong".into());
    })
    .await;
    let (code, body) = get_json(&format!("{}/build/acme/app", wrong.url)).await;
    assert_eq!(code, 502, "{body}");
    assert!(!body.to_string().contains("wrong"), "the token never shows");
}

/// A hub that does not serve the current repository path (yet): the deprecated path
/// answers, and is asked first from then on, for pulls and for "repository not found".
#[tokio::test]
async fn the_deprecated_repository_path_answers_where_the_current_one_does_not() {
    let hub = hub_with_samples().await;
    hub.set_legacy_repository_only(true);
    let node = start_node(&hub.url(), |_| {}).await;
    let (_, _, svg) = get(&format!("{}/docker/pulls/library/nginx", node.url)).await;
    assert_eq!(said(&svg), "docker pulls: 0");
    let (_, body) = get_json(&format!("{}/build/nobody/nothing", node.url)).await;
    assert_eq!(body["description"], "repository not found");
    let paths: Vec<String> = hub.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v2/namespaces/library/repositories/nginx",
            "/v2/repositories/library/nginx",
            "/v2/repositories/nobody/nothing/buildhistory/",
            "/v2/namespaces/nobody/repositories/nothing/tags/latest",
            // The deprecated path first now; its 404 is confirmed on the current one.
            "/v2/repositories/nobody/nothing",
            "/v2/namespaces/nobody/repositories/nothing",
        ]
    );
}

/// Docker Hub's `next` links may name its other host: followed on the configured hub.
#[tokio::test]
async fn tag_pages_named_on_another_docker_hub_host_are_read_from_the_configured_hub() {
    let hub = hub_with_samples().await;
    let tags: Vec<String> = (0..150).map(|i| format!("1.{i}")).collect();
    let names: Vec<&str> = tags.iter().map(String::as_str).collect();
    hub.set_repo("acme/many", FakeRepo::with_tags(&names));
    hub.set_next_origin(Some("https://registry.hub.docker.com".into()));
    let node = start_node(&hub.url(), |_| {}).await;
    let (_, _, svg) = get(&format!("{}/docker/v/acme/many?sort=semver", node.url)).await;
    assert_eq!(said(&svg), "version: v1.149");
    let pages = hub
        .received()
        .iter()
        .filter(|r| r.path == "/v2/repositories/acme/many/tags")
        .count();
    assert_eq!(pages, 2);
}

/// Tags deleted while the list is read: the page the last one named answers 404, and the
/// list ends with the pages read.
#[tokio::test]
async fn a_tag_page_that_vanished_while_read_ends_the_list() {
    let hub = hub_with_samples().await;
    let tags: Vec<String> = (0..150).map(|i| format!("2.{i}")).collect();
    let names: Vec<&str> = tags.iter().map(String::as_str).collect();
    hub.set_repo(
        "acme/shrinking",
        FakeRepo {
            vanished_page: Some(2),
            ..FakeRepo::with_tags(&names)
        },
    );
    let node = start_node(&hub.url(), |_| {}).await;
    let (_, _, svg) = get(&format!("{}/docker/v/acme/shrinking?sort=semver", node.url)).await;
    assert_eq!(said(&svg), "version: v2.99");
}

/// One odd entry never costs the page: the badge is read from the rest, and the metrics
/// count what was left out.
#[tokio::test]
async fn odd_entries_are_left_out_and_counted() {
    let hub = hub_with_samples().await;
    hub.set_repo(
        "acme/odd",
        FakeRepo {
            odd_entries: true,
            ..FakeRepo::with_tags(&["1.0", "0.9"])
        },
    );
    let node = start_node(&hub.url(), |_| {}).await;
    let (_, _, svg) = get(&format!("{}/docker/v/acme/odd?sort=semver", node.url)).await;
    assert_eq!(said(&svg), "version: v1.0");
    let (_, _, metrics) = get(&format!("{}/metrics", node.url)).await;
    assert!(
        metrics.contains("dbs_upstream_entries_skipped_total{endpoint=\"tag_list\"} 2"),
        "{metrics}"
    );
}
