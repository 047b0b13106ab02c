//! The HTML front page at `/`: what this is, a form that builds a badge URL (with a live
//! preview and Markdown and HTML snippets to copy), and this node's view of the network.
//!
//! One self-contained page: no external fonts, scripts or images, so it works offline and
//! leaks no visitor to a third party. The little server-side templating there is goes
//! through [`escape_html`]; everything the script writes (form values, other nodes' URLs
//! and states from `/servers`) goes through `textContent` or `setAttribute`, never through
//! markup. Without JavaScript the page still shows a working example badge and its snippets.

use std::time::Duration;

use crate::badge::Style;
use crate::hub::health::{HubState, HubView};
use crate::node::Node;

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's markup, with `{{name}}` where [`index`] puts a value.
const INDEX_HTML: &str = include_str!("index.html");

/// `template` with each `{{name}}` replaced by its value. The values are escaped by the
/// caller; a name without a value stays as it is, which a test would see.
fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + len + 4]),
        }
        rest = &rest[start + len + 4..];
    }
    out.push_str(rest);
    out
}

/// The example the form starts with; a real image on Docker Hub (and in the demo's hub).
const EXAMPLE_ORGANIZATION: &str = "library";
const EXAMPLE_REPOSITORY: &str = "nginx";
const ALT_TEXT: &str = "Docker build status";

/// The front page of this node.
pub fn index(node: &Node) -> String {
    let base = node.public_url().as_str().trim_end_matches('/').to_owned();
    let version = env!("CARGO_PKG_VERSION");
    // The snippets as the script would write them for the example, so the page is useful
    // before (or without) the script.
    let badge = format!(
        "{base}/status.svg?organization={EXAMPLE_ORGANIZATION}&repository={EXAMPLE_REPOSITORY}"
    );
    let hub_page = format!("https://hub.docker.com/_/{EXAMPLE_REPOSITORY}");
    let markdown = format!("[![{ALT_TEXT}]({badge})]({hub_page})");
    let html_snippet = format!(
        "<a href=\"{hub_page}\"><img src=\"{}\" alt=\"{ALT_TEXT}\"></a>",
        escape_html(&badge)
    );
    let preview =
        format!("/status.svg?organization={EXAMPLE_ORGANIZATION}&repository={EXAMPLE_REPOSITORY}");
    let styles: String = Style::ALL
        .iter()
        .map(|style| {
            let name = style.as_str();
            let selected = if *style == Style::default() {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{name}\"{selected}>{name}</option>")
        })
        .collect();
    let base_html = escape_html(&base);
    let badge_html = escape_html(&badge);
    let markdown_html = escape_html(&markdown);
    let snippet_html = escape_html(&html_snippet);
    let preview_html = escape_html(&preview);
    let hub = node.hub_health().view(crate::tools::clock::now());
    let hub_html = escape_html(&hub_words(&hub));
    render(
        INDEX_HTML,
        &[
            ("example_organization", EXAMPLE_ORGANIZATION),
            ("example_repository", EXAMPLE_REPOSITORY),
            ("script", SCRIPT),
            ("style", STYLE),
            ("badge_html", &badge_html),
            ("base_html", &base_html),
            ("markdown_html", &markdown_html),
            ("preview_html", &preview_html),
            ("snippet_html", &snippet_html),
            ("styles", &styles),
            ("hub_state", hub.state.as_str()),
            ("hub_html", &hub_html),
            ("version", version),
        ],
    )
}

/// What the operator should know of Docker Hub as this node finds it, in words.
fn hub_words(hub: &HubView) -> String {
    const MEANWHILE: &str = "Meanwhile badges come from this node's cache and other nodes' \
        caches, and images cached nowhere show \"unknown\". Other nodes keep listing this node: \
        it still serves what it has.";
    let error = hub.error.as_deref().unwrap_or("no answer");
    match hub.state {
        HubState::Unknown => {
            "Docker Hub: not asked yet; the first badge of an image asks it.".into()
        }
        HubState::Ok => format!("Docker Hub answers this node (for {}).", span(hub.lasted)),
        HubState::Failing => format!(
            "Docker Hub has not answered this node for {} ({error}). {MEANWHILE}",
            span(hub.lasted)
        ),
        HubState::RateLimited => format!(
            "Docker Hub has rate-limited this node for {}; it is asked again in {}. {MEANWHILE}",
            span(hub.lasted),
            span(hub.retry_in.unwrap_or_default())
        ),
    }
}

/// A duration in the largest whole unit: `40 seconds`, `5 minutes`, `3 hours`, `2 days`.
fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let (count, unit) = match seconds {
        0..120 => (seconds, "second"),
        120..7200 => (seconds / 60, "minute"),
        7200..172_800 => (seconds / 3600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

const STYLE: &str = include_str!("style.css");

const SCRIPT: &str = include_str!("script.js");

#[cfg(test)]
mod tests {
    use super::{INDEX_HTML, escape_html, render};

    #[test]
    fn render_replaces_every_name_and_keeps_other_braces() {
        assert_eq!(
            render("a{{x}}b{{y}}c{0,127}{{z}}", &[("x", "1"), ("y", "<2>")]),
            "a1b<2>c{0,127}{{z}}"
        );
        // Every name the page uses is given a value by `index`.
        for name in [
            "base_html",
            "version",
            "styles",
            "preview_html",
            "markdown_html",
        ] {
            assert!(INDEX_HTML.contains(&format!("{{{{{name}}}}}")), "{name}");
        }
    }

    #[test]
    fn spans_in_the_largest_whole_unit() {
        use super::span;
        use std::time::Duration;
        for (seconds, words) in [
            (0, "0 seconds"),
            (1, "1 second"),
            (119, "119 seconds"),
            (300, "5 minutes"),
            (7199, "119 minutes"),
            (7200, "2 hours"),
            (200_000, "2 days"),
        ] {
            assert_eq!(span(Duration::from_secs(seconds)), words);
        }
    }

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
