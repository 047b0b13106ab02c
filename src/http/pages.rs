//! The HTML front page at `/`: what this is, a form that builds a badge URL (with a live
//! preview and Markdown and HTML snippets to copy), and this node's view of the network.
//!
//! One self-contained page: no external fonts, scripts or images, so it works offline and
//! leaks no visitor to a third party. The little server-side templating there is goes
//! through [`escape_html`]; everything the script writes (form values, other nodes' URLs
//! and states from `/servers`) goes through `textContent` or `setAttribute`, never through
//! markup. Without JavaScript the page still shows a working example badge and its snippets.

use crate::badge::Style;
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
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Docker Hub build badges · dockerhub-build-status</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style>
</head>
<body>
<header>
<div class="wrap">
<p class="project">dockerhub-build-status</p>
<h1>Build badges for Docker&nbsp;Hub images</h1>
<p class="lead">Show whether your image builds, right in your README. The badges come from a
federated network of small volunteer-run servers; this page is one of them.</p>
<p class="this-node">This node: <code id="node-url">{base_html}</code> · version {version}</p>
</div>
</header>
<main class="wrap">
<section id="make" aria-labelledby="make-title">
<h2 id="make-title">Make a badge</h2>
<form id="builder" data-base="{base_html}" autocomplete="off">
<div class="fields">
<label>Organization<input name="organization" value="{EXAMPLE_ORGANIZATION}" placeholder="library" pattern="[a-z0-9]+(?:[._\-][a-z0-9]+)*" spellcheck="false" autocapitalize="none"></label>
<label>Repository<input name="repository" value="{EXAMPLE_REPOSITORY}" required pattern="[a-z0-9]+(?:[._\-][a-z0-9]+)*" spellcheck="false" autocapitalize="none"></label>
<label>Tag<input name="tag" value="" placeholder="latest" pattern="[A-Za-z0-9_][A-Za-z0-9_.\-]{{0,127}}" spellcheck="false" autocapitalize="none"></label>
<label>Label<input name="text" value="" placeholder="Docker" maxlength="48"></label>
<label>Style<select name="style">{styles}</select></label>
<label class="check"><input type="checkbox" name="logo" value="docker"> Docker logo</label>
</div>
</form>
<div class="preview" aria-live="polite">
<img id="preview" src="{preview_html}" alt="badge preview">
<p id="hint" class="hint" hidden></p>
</div>
<div class="snippet">
<div class="snippet-head"><h3>Markdown</h3><button type="button" data-copy="snippet-markdown">Copy</button></div>
<pre><code id="snippet-markdown">{markdown_html}</code></pre>
</div>
<div class="snippet">
<div class="snippet-head"><h3>HTML</h3><button type="button" data-copy="snippet-html">Copy</button></div>
<pre><code id="snippet-html">{snippet_html}</code></pre>
</div>
<div class="snippet">
<div class="snippet-head"><h3>Image URL</h3><button type="button" data-copy="snippet-url">Copy</button></div>
<pre><code id="snippet-url">{badge_html}</code></pre>
</div>
<p class="note">The server draws the badge from its cache of Docker Hub, so it works in any
README, including GitHub's. To let the reader's browser pick a healthy node of the network
itself, host <a href="/static/status.svg">status.svg</a> and <a href="/static/status.js">status.js</a>
side by side and link <code>status.svg?organization=…&amp;repository=…</code>.</p>
</section>

<section id="network" aria-labelledby="network-title" data-state="loading">
<h2 id="network-title">The network, as this node sees it</h2>
<p>Every node checks the health of the others itself and lists the healthy ones at
<a href="/servers">/servers</a>; the badge script spreads its requests over them.</p>
<p id="network-summary" class="summary">Loading…</p>
<ul id="nodes" class="nodes"></ul>
</section>

<section id="api" aria-labelledby="api-title">
<h2 id="api-title">API</h2>
<dl>
<dt><code>GET /status.svg?organization=&amp;repository=&amp;tag=&amp;text=&amp;style=</code></dt><dd>the badge as an SVG image</dd>
<dt><code>GET /build/&lt;organization&gt;/&lt;repository&gt;?tag=</code></dt><dd>the build status as JSON</dd>
<dt><code>GET /shields/&lt;organization&gt;/&lt;repository&gt;</code></dt><dd>a shields.io endpoint, for <code>img.shields.io/endpoint?url=…</code></dd>
<dt><code>GET /servers</code></dt><dd>the healthy nodes of the network</dd>
<dt><code>GET /health</code>, <code>GET /metrics</code></dt><dd>this node's identity; Prometheus metrics</dd>
</dl>
</section>
</main>
<footer class="wrap">
<p>Free software under the AGPL-3.0-or-later: <a href="/source">download the exact source of
this node</a>. Anyone can run a node: one binary, one command.</p>
</footer>
<script>{SCRIPT}</script>
</body>
</html>
"#
    )
}

const STYLE: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --bg: #fff; --panel: #f6f8fa; --line: #d1d9e0;
  --accent: #0969da; --head: #0b3d5c; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --panel: #161b22; --line: #3d444d;
    --accent: #4493f8; --head: #0b2a3f; --ok: #3fb950; --warn: #d29922; --bad: #f85149; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
.wrap { max-width: 46rem; margin: 0 auto; padding: 0 1rem; }
header { background: var(--head); color: #fff; padding: 1.25rem 0 1rem; }
header .project { margin: 0; font: 600 .8rem/1.4 ui-monospace, SFMono-Regular, Menlo, monospace;
  letter-spacing: .04em; opacity: .8; }
h1 { margin: .2rem 0 .5rem; font-size: 1.6rem; line-height: 1.2; }
.lead { margin: 0 0 .6rem; }
.this-node { margin: 0; font-size: .85rem; opacity: .85; overflow-wrap: anywhere; }
header code { background: rgba(255,255,255,.14); color: #fff; }
h2 { font-size: 1.25rem; margin: 1.6rem 0 .6rem; }
h3 { font-size: .95rem; margin: 0; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
code { background: var(--panel); border-radius: 4px; padding: .05rem .3rem; overflow-wrap: anywhere; }
.fields { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: .6rem .8rem; }
label { display: flex; flex-direction: column; font-size: .85rem; font-weight: 600; color: var(--muted); }
input, select { font: inherit; font-size: 1rem; font-weight: 400; color: var(--fg); background: var(--bg);
  margin-top: .2rem; min-height: 2.6rem; padding: .35rem .55rem; border: 1px solid var(--line);
  border-radius: 6px; width: 100%; }
input:focus, select:focus, button:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
input:invalid { border-color: var(--bad); }
label.check { flex-direction: row; align-items: center; gap: .5rem; align-self: end;
  min-height: 2.6rem; color: var(--fg); font-weight: 400; font-size: 1rem; }
label.check input { width: 1.25rem; height: 1.25rem; min-height: 0; margin: 0; }
.preview { margin: 1rem 0; padding: 1.1rem; background: var(--panel); border: 1px solid var(--line);
  border-radius: 8px; text-align: center; }
/* Shown half as large again: it is the point of the page, and an SVG scales crisply. */
.preview img { display: inline-block; max-width: 66%; height: auto; min-height: 20px; vertical-align: middle; zoom: 1.5; }
.hint { margin: .5rem 0 0; color: var(--bad); font-size: .9rem; }
.snippet { margin: .8rem 0; }
.snippet-head { display: flex; align-items: center; justify-content: space-between; margin-bottom: .25rem; }
button { font: inherit; font-size: .85rem; padding: .3rem .9rem; min-height: 2.2rem; border-radius: 6px;
  border: 1px solid var(--line); background: var(--panel); color: var(--fg); cursor: pointer; }
button.copied { border-color: var(--ok); color: var(--ok); }
pre { margin: 0; padding: .6rem .75rem; background: var(--panel); border: 1px solid var(--line);
  border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
pre code { background: none; padding: 0; font-size: .8rem; }
.note { font-size: .9rem; color: var(--muted); }
.summary { color: var(--muted); font-size: .9rem; }
.nodes { list-style: none; margin: 0; padding: 0; display: grid; gap: .5rem; }
.nodes li { border: 1px solid var(--line); border-radius: 8px; padding: .6rem .75rem; }
.node-url { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85rem;
  overflow-wrap: anywhere; display: block; }
.node-facts { display: flex; flex-wrap: wrap; gap: .3rem .9rem; margin-top: .3rem; font-size: .85rem; color: var(--muted); }
.state { font-weight: 600; }
.state::before { content: "●"; margin-right: .3rem; }
.state-listed { color: var(--ok); }
.state-probation { color: var(--warn); }
.state-failing { color: var(--bad); }
.state-left, .state-other { color: var(--muted); }
.tag { font-size: .75rem; border: 1px solid var(--line); border-radius: 999px; padding: 0 .45rem; }
dl { margin: 0; }
dt { margin-top: .6rem; }
dd { margin: .1rem 0 0 1rem; color: var(--muted); font-size: .9rem; }
footer { margin: 2rem auto 1.5rem; font-size: .85rem; color: var(--muted); border-top: 1px solid var(--line); padding-top: .6rem; }
@media (max-width: 30rem) {
  header { padding: 1rem 0 .8rem; }
  h1 { font-size: 1.4rem; }
  .lead { font-size: .95rem; }
  h2 { margin-top: 1.3rem; }
}
@media (max-width: 20rem) {
  .fields { grid-template-columns: minmax(0, 1fr); }
}
"#;

const SCRIPT: &str = r#"
(function () {
  "use strict";

  // ---- the badge builder ----
  var form = document.getElementById("builder");
  var base = form.getAttribute("data-base");
  var preview = document.getElementById("preview");
  var hint = document.getElementById("hint");
  var DEFAULTS = { organization: "library", tag: "latest", text: "Docker", style: "flat" };

  function value(name) {
    return form.elements[name].value.trim();
  }

  // The shortest query that means the wanted badge: defaults are left out, so the snippet
  // stays short and keeps working if a default ever changes for the better.
  function badgeQuery() {
    var q = new URLSearchParams();
    q.set("organization", value("organization") || DEFAULTS.organization);
    q.set("repository", value("repository"));
    ["tag", "text", "style"].forEach(function (name) {
      var v = value(name);
      if (v && v !== DEFAULTS[name]) q.set(name, v);
    });
    if (form.elements.logo.checked) q.set("logo", "docker");
    return q.toString();
  }

  function hubPage() {
    var org = value("organization") || DEFAULTS.organization;
    var repo = encodeURIComponent(value("repository"));
    return org === "library"
      ? "https://hub.docker.com/_/" + repo
      : "https://hub.docker.com/r/" + encodeURIComponent(org) + "/" + repo;
  }

  function escapeHtml(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  var previewTimer = null;
  function update() {
    var query = badgeQuery();
    var url = base + "/status.svg?" + query;
    var alt = "Docker build status";
    document.getElementById("snippet-url").textContent = url;
    document.getElementById("snippet-markdown").textContent =
      "[![" + alt + "](" + url + ")](" + hubPage() + ")";
    document.getElementById("snippet-html").textContent =
      '<a href="' + escapeHtml(hubPage()) + '"><img src="' + escapeHtml(url) + '" alt="' + alt + '"></a>';
    var problems = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.validity && !el.validity.valid) {
        problems.push(el.name === "repository" && !el.value.trim()
          ? "Enter a repository."
          : "Check the " + el.parentNode.firstChild.textContent.trim().toLowerCase() + ".");
      }
    });
    hint.textContent = problems.join(" ");
    hint.hidden = problems.length === 0;
    // One preview request per pause in typing, not one per key.
    clearTimeout(previewTimer);
    previewTimer = setTimeout(function () {
      preview.setAttribute("src", "/status.svg?" + query);
    }, 250);
  }
  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  update();

  // ---- copy buttons ----
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    button.addEventListener("click", function () {
      var code = document.getElementById(button.getAttribute("data-copy"));
      var text = code.textContent;
      function done() {
        button.textContent = "Copied";
        button.classList.add("copied");
        setTimeout(function () {
          button.textContent = "Copy";
          button.classList.remove("copied");
        }, 1500);
      }
      // The clipboard API needs a secure context; elsewhere select the text so one more
      // tap (or Ctrl+C) copies it.
      function select() {
        var range = document.createRange();
        range.selectNodeContents(code);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        try {
          if (document.execCommand("copy")) done();
        } catch (e) { /* selected is good enough */ }
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, select);
      } else {
        select();
      }
    });
  });

  // ---- this node's view of the network ----
  var section = document.getElementById("network");
  var list = document.getElementById("nodes");
  var summary = document.getElementById("network-summary");
  var STATES = { listed: "listed", probation: "probation", failing: "failing", left: "left" };
  var ORDER = { listed: 0, probation: 1, failing: 2, left: 3 };

  function canon(url) {
    return typeof url === "string" ? url.replace(/\/+$/, "") : "";
  }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function isNumber(x) {
    return typeof x === "number" && isFinite(x);
  }

  // /servers lists the healthy nodes; with ?all=true it adds `members`, every known node
  // with its state. Either may lack fields (older nodes): show what is there.
  function rows(data) {
    var servers = Array.isArray(data.servers) ? data.servers : [];
    var healthy = {};
    servers.forEach(function (s) {
      if (s && typeof s === "object") healthy[canon(s.url)] = s;
    });
    var members = Array.isArray(data.members) ? data.members : servers;
    return members
      .filter(function (m) { return m && typeof m === "object" && typeof m.url === "string"; })
      .map(function (m) {
        var s = healthy[canon(m.url)] || {};
        var state = typeof m.state === "string" ? m.state : (healthy[canon(m.url)] ? "listed" : "");
        return {
          url: canon(m.url),
          isSelf: m.self === true,
          seed: m.seed === true,
          lastProbe: typeof m.last_probe === "string" ? m.last_probe : null,
          state: state,
          score: isNumber(m.score) ? m.score : s.score,
          latency: isNumber(m.latency_ms) ? m.latency_ms : s.latency_ms,
          version: typeof m.version === "string" ? m.version : s.version,
        };
      })
      .sort(function (a, b) {
        var oa = a.state in ORDER ? ORDER[a.state] : 9;
        var ob = b.state in ORDER ? ORDER[b.state] : 9;
        if (oa !== ob) return oa - ob;
        var sa = isNumber(a.score) ? a.score : -Infinity;
        var sb = isNumber(b.score) ? b.score : -Infinity;
        if (sa !== sb) return sb - sa;
        return a.url < b.url ? -1 : a.url > b.url ? 1 : 0;
      });
  }

  function render(data) {
    var self = canon(data.node);
    var all = rows(data);
    while (list.firstChild) list.removeChild(list.firstChild);
    all.forEach(function (r) {
      var li = el("li");
      li.setAttribute("data-url", r.url);
      var head = el("span", "node-url", r.url + " ");
      if (r.isSelf || r.url === self) head.appendChild(el("span", "tag", "this node"));
      else if (r.seed) head.appendChild(el("span", "tag", "from peers.toml"));
      li.appendChild(head);
      var facts = el("span", "node-facts");
      var known = STATES[r.state];
      facts.appendChild(el("span", "state state-" + (known || "other"), r.state || "unknown"));
      if (isNumber(r.score)) facts.appendChild(el("span", "score", "score " + r.score.toFixed(1)));
      if (isNumber(r.latency)) facts.appendChild(el("span", "latency", Math.round(r.latency) + " ms"));
      if (typeof r.version === "string" && r.version) facts.appendChild(el("span", "version", "v" + r.version));
      if (r.lastProbe && r.lastProbe !== "good") {
        facts.appendChild(el("span", "probe", "last probe: " + r.lastProbe.replace(/_/g, " ")));
      }
      li.appendChild(facts);
      list.appendChild(li);
    });
    var listed = all.filter(function (r) { return r.state === "listed"; }).length;
    var when = typeof data.generated_at === "string" ? new Date(data.generated_at) : new Date();
    summary.textContent =
      listed + " healthy of " + all.length + " known" +
      (isNaN(when.getTime()) ? "" : " · as of " + when.toLocaleTimeString());
    section.setAttribute("data-state", "done");
  }

  function load() {
    fetch("/servers?all=true", { cache: "no-store", credentials: "omit" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(render)
      .catch(function (e) {
        summary.textContent = "Could not load the network view (" + (e && e.message ? e.message : "error") + ").";
        section.setAttribute("data-state", "error");
      });
  }
  load();
  setInterval(function () {
    if (!document.hidden) load();
  }, 30000);
})();
"#;

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
