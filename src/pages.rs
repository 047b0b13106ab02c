//! The HTML front page at `/`: what this is, how to use a badge, and a badge-URL builder.

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

/// The front page of this node.
pub fn index(node: &Node) -> String {
    let base = node.public_url().as_str().trim_end_matches('/');
    let base = escape_html(base);
    let version = env!("CARGO_PKG_VERSION");
    format!(
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dockerhub-build-status</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 0 auto; padding: 1rem; line-height: 1.5; color: #222; }}
code, pre {{ background: #f2f2f2; border-radius: 4px; padding: .1rem .3rem; overflow-wrap: anywhere; }}
pre {{ padding: .6rem; white-space: pre-wrap; }}
label {{ display: block; margin-top: .5rem; }}
input, select {{ font: inherit; width: 100%; box-sizing: border-box; padding: .3rem; }}
</style>
</head>
<body>
<h1>dockerhub-build-status</h1>
<p>Badges with the build status of Docker Hub images, for your README. This is one node of a
federated network of volunteer-run badge servers (version {version}).</p>
<h2>Use a badge</h2>
<pre>![Docker build](<span id="md-url">{base}/status.svg?organization=library&amp;repository=nginx</span>)</pre>
<p>Parameters: <code>repository</code> (required), <code>organization</code> (default
<code>library</code>), <code>tag</code> (default <code>latest</code>), <code>text</code>
(the label, default <code>Docker</code>), <code>style</code> (<code>flat</code>,
<code>flat-square</code>, <code>plastic</code>, <code>for-the-badge</code>),
<code>logo=docker</code>.</p>
<form id="builder">
<label>Organization <input name="organization" value="library" autocomplete="off"></label>
<label>Repository <input name="repository" value="nginx" autocomplete="off"></label>
<label>Tag <input name="tag" value="latest" autocomplete="off"></label>
<label>Label <input name="text" value="Docker" autocomplete="off"></label>
</form>
<p><img id="preview" alt="badge preview" src="{base}/status.svg?organization=library&amp;repository=nginx"></p>
<h2>API</h2>
<ul>
<li><code>GET /build/&lt;organization&gt;/&lt;repository&gt;?tag=</code>: JSON status</li>
<li><code>GET /status.svg?…</code>: the badge</li>
<li><code>GET /shields/&lt;organization&gt;/&lt;repository&gt;</code>: shields.io endpoint JSON</li>
<li><code>GET /servers</code>: the healthy nodes of the network</li>
<li><code>GET /source</code>: the source code of this node</li>
</ul>
<script>
(function () {{
  var form = document.getElementById("builder");
  function update() {{
    var params = new URLSearchParams();
    ["organization", "repository", "tag", "text"].forEach(function (name) {{
      var value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }});
    var url = location.origin + "/status.svg?" + params.toString();
    document.getElementById("md-url").textContent = url;
    document.getElementById("preview").src = url;
  }}
  form.addEventListener("input", update);
}})();
</script>
</body>
</html>
"##
    )
}
