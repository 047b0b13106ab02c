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

  // The Docker badges live at shields.io's paths: `/docker/<kind>/<user>/<repo>[/<tag>]`,
  // `_` for library, shields.io's `label=` for the label.
  var UNTAGGED = { pulls: true, stars: true, automated: true };
  function badgePath() {
    var kind = value("kind") || "status";
    if (kind === "status") return "/status.svg?" + badgeQuery();
    var org = value("organization") || DEFAULTS.organization;
    var path = "/docker/" + kind + "/" + (org === "library" ? "_" : encodeURIComponent(org)) +
      "/" + encodeURIComponent(value("repository"));
    var tag = value("tag");
    if (tag && !UNTAGGED[kind]) path += "/" + encodeURIComponent(tag);
    var q = new URLSearchParams();
    if (value("text")) q.set("label", value("text"));
    if (value("style") && value("style") !== DEFAULTS.style) q.set("style", value("style"));
    if (form.elements.logo.checked) q.set("logo", "docker");
    var query = q.toString();
    return query ? path + "?" + query : path;
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
    var path = badgePath();
    var url = base + path;
    var alt = value("kind") === "status" || !value("kind") ? "Docker build status"
      : "Docker " + form.elements.kind.options[form.elements.kind.selectedIndex].text;
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
      preview.setAttribute("src", path);
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
  // Docker Hub as this node finds it, written by the server into the page.
  var hubLine = document.getElementById("hub");
  var hubState = hubLine ? hubLine.getAttribute("data-hub") : "";
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

  // ?all=true also says which nodes fill this one's cache (and it theirs): `fills`, one
  // entry per node with counts and whether this node trusts its fills.
  function fillsByUrl(data) {
    var out = {};
    (Array.isArray(data.fills) ? data.fills : []).forEach(function (f) {
      if (f && typeof f === "object" && typeof f.url === "string") out[canon(f.url)] = f;
    });
    return out;
  }

  function render(data) {
    var self = canon(data.node);
    var all = rows(data);
    var fills = fillsByUrl(data);
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
      var f = fills[r.url];
      if (f) {
        var parts = [];
        if (isNumber(f.supplied) && f.supplied > 0) parts.push("filled " + f.supplied + " for this node");
        if (isNumber(f.served) && f.served > 0) parts.push("asked this node for " + f.served);
        if (parts.length) facts.appendChild(el("span", "fills", parts.join(" · ")));
        if (f.trusted === false) facts.appendChild(el("span", "fills-distrusted", "fills not trusted"));
      }
      if ((r.isSelf || r.url === self) && (hubState === "failing" || hubState === "rate_limited")) {
        facts.appendChild(el("span", "probe", "Docker Hub " + hubState.replace(/_/g, " ") + " (above)"));
      }
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
