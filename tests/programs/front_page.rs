//! The front page (`GET /`) in headless Chromium at a phone's size: the badge-URL builder is
//! there and works (form, live preview, Markdown and HTML snippets), the network view fills
//! in, nothing is loaded from elsewhere and nothing overflows sideways. The test also writes
//! screenshots for people to look at: `<target>/screenshots/front-page.png` (the first
//! screen) and `front-page-full.png` (the whole page).

use crate::chromium;
use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chromium::Browser;
use common::harness;
use dockerhub_build_status::demo::sample_hub::{FakeHub, FakeRepo};
use serde_json::Value;

/// A phone's viewport in CSS pixels, and its device pixel ratio.
const PHONE: (u32, u32) = (390, 844);
const PHONE_SCALE: f64 = 2.0;

/// Ready: the network view has an answer and the preview badge has been drawn.
const READY: &str = "(() => {
    const network = document.getElementById('network');
    const preview = document.getElementById('preview');
    return !!network && network.getAttribute('data-state') !== 'loading'
        && !!preview && preview.complete && preview.naturalWidth > 0;
})()";

/// What the test checks, read in one go.
const FACTS: &str = "(() => {
    const form = document.getElementById('builder');
    const preview = document.getElementById('preview');
    const text = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
    return {
        fields: form ? Array.from(form.elements).map((e) => e.name).filter(Boolean) : [],
        preview_src: preview && preview.getAttribute('src'),
        preview_width: preview ? preview.naturalWidth : 0,
        images: document.querySelectorAll('img').length,
        markdown: text('snippet-markdown'),
        html: text('snippet-html'),
        url: text('snippet-url'),
        network: document.getElementById('network').getAttribute('data-state'),
        nodes: Array.from(document.querySelectorAll('#nodes li')).map((li) => li.textContent),
        resources: performance.getEntriesByType('resource').map((r) => r.name),
        origin: location.origin,
        scroll_width: document.documentElement.scrollWidth,
        inner_width: window.innerWidth,
    };
})()";

/// `<target>/screenshots`: beside Cargo's build output, never committed.
fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().map(PathBuf::from).unwrap_or(tmp);
    target.join("screenshots")
}

/// Checks that `png` is a PNG of `width`×`height` (when given) with more in it than a blank
/// page, and returns its size.
fn check_png(png: &[u8], width: Option<u32>, height: Option<u32>) -> (u32, u32) {
    assert!(
        png.len() > 10_000,
        "a {}-byte screenshot is too small to show the page",
        png.len()
    );
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR", "PNG without its header chunk");
    let w = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let h = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    if let Some(width) = width {
        assert_eq!(w, width, "screenshot width");
    }
    if let Some(height) = height {
        assert_eq!(h, height, "screenshot height");
    }
    (w, h)
}

fn field<'a>(facts: &'a Value, name: &str) -> &'a str {
    facts[name].as_str().unwrap_or_default()
}

async fn front_page_on_a_phone() {
    let hub = FakeHub::start().await.expect("start the fake hub");
    hub.add_samples();
    let node = common::start_node(&hub.url(), |_| {}).await;
    let base = node.url.trim_end_matches('/').to_owned();

    let size = format!("--window-size={},{}", PHONE.0, PHONE.1);
    let mut browser = Browser::launch(&[&size]).await;
    let tab = browser.new_tab().await.expect("open a tab");
    browser
        .emulate_phone(&tab, PHONE.0, PHONE.1, PHONE_SCALE)
        .await
        .expect("a phone-sized viewport");
    browser
        .navigate(&tab, &format!("{base}/"))
        .await
        .expect("open the front page");
    let ready = browser
        .wait_for(&tab, READY, Instant::now() + Duration::from_secs(10))
        .await;
    let facts = browser.evaluate(&tab, FACTS).await.expect("read the page");
    assert!(ready, "the page did not get ready within 10 s: {facts:#}");

    // Screenshots first, of the page as it first shows.
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    let first_screen = browser.screenshot(&tab, false).await.expect("screenshot");
    check_png(
        &first_screen,
        Some((f64::from(PHONE.0) * PHONE_SCALE) as u32),
        Some((f64::from(PHONE.1) * PHONE_SCALE) as u32),
    );
    let path = dir.join("front-page.png");
    std::fs::write(&path, &first_screen).expect("write the screenshot");
    let whole = browser.screenshot(&tab, true).await.expect("screenshot");
    let (_, full_height) = check_png(&whole, None, None);
    assert!(
        full_height > (f64::from(PHONE.1) * PHONE_SCALE) as u32,
        "the full-page screenshot is no taller than the screen"
    );
    std::fs::write(dir.join("front-page-full.png"), &whole).expect("write the screenshot");
    eprintln!("screenshots in {}", dir.display());

    // The DOM as served and scripted: the builder and its snippets are there.
    let dom = browser
        .evaluate(&tab, "document.documentElement.outerHTML")
        .await
        .expect("dump the DOM");
    let dom = dom.as_str().unwrap_or_default();
    for part in [
        r#"<form id="builder""#,
        r#"id="preview""#,
        r#"id="snippet-markdown""#,
        r#"id="snippet-html""#,
        r#"id="nodes""#,
    ] {
        assert!(dom.contains(part), "the page lacks {part}:\n{dom}");
    }

    let fields: Vec<&str> = facts["fields"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in ["kind", "organization", "repository", "tag", "text", "style"] {
        assert!(fields.contains(&name), "no {name} field in {fields:?}");
    }
    let badge = format!("{base}/status.svg?organization=library&repository=nginx");
    assert_eq!(
        field(&facts, "preview_src"),
        "/status.svg?organization=library&repository=nginx"
    );
    assert!(
        facts["preview_width"].as_u64().unwrap_or(0) > 0,
        "{facts:#}"
    );
    assert_eq!(field(&facts, "url"), badge);
    assert_eq!(
        field(&facts, "markdown"),
        format!("[![Docker build status]({badge})](https://hub.docker.com/_/nginx)")
    );
    assert_eq!(
        field(&facts, "html"),
        format!(
            r#"<a href="https://hub.docker.com/_/nginx"><img src="{}" alt="Docker build status"></a>"#,
            badge.replace('&', "&amp;")
        )
    );

    // The network view: at least this node, listed.
    assert_eq!(field(&facts, "network"), "done", "{facts:#}");
    let nodes: Vec<&str> = facts["nodes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        nodes
            .iter()
            .any(|n| n.contains(&base) && n.contains("listed")),
        "this node is not shown as listed: {nodes:?}"
    );

    // Self-contained and readable on a phone.
    let origin = field(&facts, "origin").to_owned();
    let resources = facts["resources"].as_array().cloned().unwrap_or_default();
    for resource in resources.iter().filter_map(Value::as_str) {
        assert!(
            resource.starts_with(&format!("{origin}/")),
            "loaded from elsewhere: {resource}"
        );
    }
    assert!(
        facts["scroll_width"].as_u64().unwrap_or(u64::MAX)
            <= facts["inner_width"].as_u64().unwrap_or(0),
        "the page scrolls sideways on a phone: {facts:#}"
    );

    // The builder follows the form, markup in a field stays text, and the preview follows.
    let typed = browser
        .evaluate(
            &tab,
            "(() => {
                const form = document.getElementById('builder');
                const set = (name, value) => {
                    form.elements[name].value = value;
                    form.elements[name].dispatchEvent(new Event('input', { bubbles: true }));
                };
                set('repository', 'redis');
                set('tag', '7');
                set('text', '<img src=x onerror=alert(1)>');
                form.elements.style.value = 'for-the-badge';
                form.elements.style.dispatchEvent(new Event('change', { bubbles: true }));
                return true;
            })()",
        )
        .await;
    assert_eq!(typed, Ok(Value::Bool(true)));
    let query = "organization=library&repository=redis&tag=7\
                 &text=%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E&style=for-the-badge";
    let followed = browser
        .wait_for(
            &tab,
            &format!(
                "(() => {{
                    const p = document.getElementById('preview');
                    return p.getAttribute('src') === '/status.svg?{query}'
                        && p.complete && p.naturalWidth > 0;
                }})()"
            ),
            Instant::now() + Duration::from_secs(5),
        )
        .await;
    let after = browser.evaluate(&tab, FACTS).await.expect("read the page");
    assert!(followed, "the preview did not follow the form: {after:#}");
    assert_eq!(
        field(&after, "markdown"),
        format!(
            "[![Docker build status]({base}/status.svg?{query})](https://hub.docker.com/_/redis)"
        )
    );
    assert_eq!(after["images"], 1, "markup in a field became an element");

    // Every Docker badge kind: the preview draws it at shields.io's path, and the Markdown
    // names the same URL.
    for (kind, path) in [
        ("pulls", "/docker/pulls/_/nginx?style=for-the-badge"),
        ("stars", "/docker/stars/_/nginx?style=for-the-badge"),
        ("v", "/docker/v/_/nginx/1.27?style=for-the-badge"),
        (
            "image-size",
            "/docker/image-size/_/nginx/1.27?style=for-the-badge",
        ),
        (
            "last-updated",
            "/docker/last-updated/_/nginx/1.27?style=for-the-badge",
        ),
        (
            "platforms",
            "/docker/platforms/_/nginx/1.27?style=for-the-badge",
        ),
        ("automated", "/docker/automated/_/nginx?style=for-the-badge"),
        ("build", "/docker/build/_/nginx/1.27?style=for-the-badge"),
    ] {
        let set = format!(
            "(() => {{
                const form = document.getElementById('builder');
                const set = (name, value) => {{
                    form.elements[name].value = value;
                    form.elements[name].dispatchEvent(new Event('input', {{ bubbles: true }}));
                }};
                set('repository', 'nginx');
                set('tag', '1.27');
                set('text', '');
                set('kind', '{kind}');
                return true;
            }})()"
        );
        assert_eq!(browser.evaluate(&tab, &set).await, Ok(Value::Bool(true)));
        let drawn = browser
            .wait_for(
                &tab,
                &format!(
                    "(() => {{
                        const p = document.getElementById('preview');
                        return p.getAttribute('src') === '{path}' && p.complete && p.naturalWidth > 0;
                    }})()"
                ),
                Instant::now() + Duration::from_secs(5),
            )
            .await;
        let now = browser.evaluate(&tab, FACTS).await.expect("read the page");
        assert!(drawn, "{kind}: the preview did not follow: {now:#}");
        assert!(
            field(&now, "markdown").contains(&format!("({base}{path})")),
            "{kind}: {now:#}"
        );
    }

    browser.close_tab(tab).await;
    browser.close().await;
}

/// Two nodes that list each other: after badges through the first, its network view says
/// which node filled its cache, as the page draws it from `/servers?all=true`.
async fn the_network_view_shows_who_fills_this_node() {
    let hub = FakeHub::start().await.expect("start the fake hub");
    for n in 0..16 {
        hub.set_repo(
            &format!("view/repo-{n}"),
            FakeRepo::with_tags(&["latest"]).counting(7, 1),
        );
    }
    let fast = |c: &mut dockerhub_build_status::config::Config| {
        c.gossip_interval = Duration::from_millis(200);
        c.probe_interval = Duration::from_millis(200);
    };
    let first = common::start_node(&hub.url(), fast).await;
    let first_url = first.url.clone();
    let second = common::start_node(&hub.url(), |c| {
        fast(c);
        let peers = c.peers.clone().expect("a peers file");
        std::fs::write(peers, format!("[[peer]]\nurl = \"{first_url}\"\n")).expect("peers");
    })
    .await;
    let both = {
        let mut urls = vec![first.url.clone(), second.url.clone()];
        urls.sort();
        urls
    };
    for url in [&first.url, &second.url] {
        common::wait_until(Duration::from_secs(30), "both nodes list both", || {
            let both = both.clone();
            async move { common::listed_servers(url).await == Some(both) }
        })
        .await;
    }
    for n in 0..16 {
        let (status, _, _) =
            common::get(&format!("{}/docker/pulls/view/repo-{n}", first.url)).await;
        assert_eq!(status, 200);
    }
    let mut browser = Browser::launch(&[]).await;
    let tab = browser.new_tab().await.expect("open a tab");
    browser
        .navigate(&tab, &format!("{}/", first.url))
        .await
        .expect("open the front page");
    let ready = browser
        .wait_for(&tab, READY, Instant::now() + Duration::from_secs(10))
        .await;
    let facts = browser.evaluate(&tab, FACTS).await.expect("read the page");
    assert!(ready, "the page did not get ready within 10 s: {facts:#}");
    let nodes: Vec<&str> = facts["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let row = nodes
        .iter()
        .find(|row| row.contains(second.url.as_str()))
        .unwrap_or_else(|| panic!("no row for the second node: {nodes:?}"));
    assert!(row.contains("for this node"), "{row}");
    assert!(!row.contains("not trusted"), "{row}");
    browser.close_tab(tab).await;
    browser.close().await;
    first.stop().await;
    second.stop().await;
}

/// This module's tests, for the harness in `main.rs`.
pub fn trials() -> Vec<libtest_mimic::Trial> {
    vec![
        harness::needs("front_page_on_a_phone", &["chromium"], || {
            harness::block_on(front_page_on_a_phone())
        }),
        harness::needs(
            "the_network_view_shows_who_fills_this_node",
            &["chromium"],
            || harness::block_on(the_network_view_shows_who_fills_this_node()),
        ),
    ]
}
