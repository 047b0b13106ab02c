/* status.js: fills in status.svg with the build status of a Docker Hub image, asking the
 * healthy badge nodes of the federation (docs/STATUS_JS.md explains every step).
 *
 * Plain browser JavaScript, no build step, no dependencies. Under node (the unit tests in
 * tests/js/) it only exports its functions and never touches a document.
 */
(function () {
  "use strict";

  // The bootstrap nodes. Must equal the URLs in peers.toml: tests/js/peers.test.js fails
  // otherwise, so that a node and the script shipped beside it start from the same list.
  var BOOTSTRAP_SERVERS = [
    "https://dockerbuildbadges.quelltext.eu",
  ];

  var DEFAULTS = {
    organization: "library",
    tag: "latest",
    text: "Docker",
    // Ask the next node when the current one has not answered within this delay. Small
    // enough that a dead node costs little, large enough that a healthy node answering from
    // its cache (tens of ms) rarely triggers a second request.
    hedgeMs: 400,
    // After this the badge shows "unknown" instead of waiting on.
    budgetMs: 4000,
    // Longest wait for /servers answers; the rest of the budget goes to /build.
    serversTimeoutMs: 1500,
    // How many bootstrap nodes are asked for /servers at once: three is the smallest number
    // where a strict majority outvotes one lying node.
    serversFanout: 3,
  };

  // Bounds for the hedge_ms and budget_ms URL parameters. The page author controls the URL
  // anyway; the bounds only keep a typo from hammering nodes or hanging a badge for minutes.
  var HEDGE_MS_RANGE = [50, 5000];
  var BUDGET_MS_RANGE = [500, 30000];

  var MAX_URL_LENGTH = 512;
  var MAX_SERVERS_PER_ANSWER = 1000;
  var MAX_ANSWER_CHARS = 512 * 1024;
  var MAX_LABEL_CHARS = 48;

  // Same cap as the node applies to weights (src/rendezvous.rs, MAX_WEIGHT): a node claiming
  // a huge capacity must not draw every badge of the network.
  var MAX_WEIGHT = 1000;

  var COLORS = {
    green: "#4b0",
    blue: "#007ec6",
    red: "#dd4343",
    grey: "#939393",
  };

  var MESSAGES = {
    ok: { message: "ok", color: COLORS.green },
    building: { message: "building", color: COLORS.blue },
    error: { message: "error", color: COLORS.red },
    notFound: { message: "not found", color: COLORS.grey },
    invalid: { message: "invalid", color: COLORS.grey },
    unknown: { message: "unknown", color: COLORS.grey },
    noRepository: { message: "no repository", color: COLORS.grey },
  };

  // ---------------------------------------------------------------------------------------
  // Parameters

  function clampInt(raw, range, fallback) {
    if (raw === null || !/^\d{1,6}$/.test(raw)) return fallback;
    var n = parseInt(raw, 10);
    return Math.min(range[1], Math.max(range[0], n));
  }

  // Control characters would render as boxes and mean nothing in a label.
  function cleanLabel(text) {
    var chars = Array.from(text.replace(/[\u0000-\u001f\u007f]/g, " "));
    if (chars.length <= MAX_LABEL_CHARS) return chars.join("");
    return chars.slice(0, MAX_LABEL_CHARS - 1).join("") + "\u2026";
  }

  // `search` is location.search ("?a=b&…"); URLSearchParams decodes %xx and "+" as space,
  // exactly as query strings always did.
  function parseParams(search) {
    var q = new URLSearchParams(search || "");
    function get(name, fallback) {
      var v = q.get(name);
      return v === null || v === "" ? fallback : v;
    }
    var servers = null;
    if (q.get("servers") !== null) {
      servers = filterServerUrls(q.get("servers").split(","));
      // Only junk given: use the built-in list rather than nothing.
      if (servers.length === 0) servers = null;
    }
    return {
      organization: get("organization", DEFAULTS.organization),
      repository: get("repository", null),
      tag: get("tag", DEFAULTS.tag),
      text: cleanLabel(get("text", DEFAULTS.text)),
      servers: servers,
      hedgeMs: clampInt(q.get("hedge_ms"), HEDGE_MS_RANGE, DEFAULTS.hedgeMs),
      budgetMs: clampInt(q.get("budget_ms"), BUDGET_MS_RANGE, DEFAULTS.budgetMs),
    };
  }

  // ---------------------------------------------------------------------------------------
  // Server URLs

  // The canonical form is also the rendezvous hash input, so two spellings of one node
  // ("https://A.example/", "https://a.example") must become one string: scheme, lowercased
  // host, port only when not the default, path without trailing slash. Anything that is not
  // a plain absolute http(s) URL is refused: javascript:, data:, relative, ftp:, credentials,
  // queries and fragments have no business in a node's address.
  function canonicalServerUrl(raw) {
    if (typeof raw !== "string") return null;
    var s = raw.trim();
    if (s.length === 0 || s.length > MAX_URL_LENGTH) return null;
    // Checked before parsing because the URL parser silently drops tabs and newlines, and
    // would turn "java\nscript:" into "javascript:".
    if (!/^https?:\/\/[^\s]+$/i.test(s)) return null;
    var u;
    try {
      u = new URL(s);
    } catch (e) {
      return null;
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    if (!u.hostname || u.username || u.password || u.search || u.hash) return null;
    return u.origin + u.pathname.replace(/\/+$/, "");
  }

  function filterServerUrls(list) {
    var out = [];
    for (var i = 0; i < list.length; i++) {
      var url = canonicalServerUrl(list[i]);
      if (url !== null && out.indexOf(url) < 0) out.push(url);
    }
    return out;
  }

  // The node that served this status.svg, if one did: a node writes its own URL into the
  // root element (data-bootstrap), and is then the one asked for /servers, so a badge from
  // a node's /static/status.svg works wherever that node's network is (the demo, a private
  // cluster). A copy on any other host has no such attribute and asks the built-in list.
  function servingNode(doc) {
    var root = doc && doc.documentElement;
    if (!root || typeof root.getAttribute !== "function") return null;
    var url = root.getAttribute("data-bootstrap");
    if (typeof url !== "string") return null;
    var urls = filterServerUrls([url]);
    return urls.length > 0 ? urls : null;
  }

  // One /servers answer → [{url, weight}], or null when it is not a /servers answer at all
  // (an old-style node answers 404 or HTML). Bad entries are dropped, not the whole answer.
  function parseServersAnswer(json) {
    if (!json || typeof json !== "object" || !Array.isArray(json.servers)) return null;
    var out = [];
    var seen = {};
    var entries = json.servers.slice(0, MAX_SERVERS_PER_ANSWER);
    for (var i = 0; i < entries.length; i++) {
      var e = entries[i];
      if (!e || typeof e !== "object") continue;
      var url = canonicalServerUrl(e.url);
      if (url === null || Object.prototype.hasOwnProperty.call(seen, url)) continue;
      seen[url] = true;
      var w = typeof e.weight === "number" && isFinite(e.weight) ? e.weight : 1;
      out.push({ url: url, weight: w });
    }
    return out;
  }

  function countListings(answers) {
    var counts = {};
    answers.forEach(function (answer) {
      answer.forEach(function (s) {
        if (!Object.prototype.hasOwnProperty.call(counts, s.url)) {
          counts[s.url] = { url: s.url, weights: [] };
        }
        counts[s.url].weights.push(s.weight);
      });
    });
    return counts;
  }

  // Keeps a server only when a strict majority of the answers list it, so one lying node out
  // of three can neither add a server nor hide one. The weight is the lower median of the
  // weights reported, for the same reason: one liar cannot move it outside the honest range.
  function mergeMajority(answers) {
    var counts = countListings(answers);
    var out = [];
    Object.keys(counts).sort().forEach(function (url) {
      var weights = counts[url].weights;
      if (2 * weights.length <= answers.length) return;
      weights.sort(function (a, b) {
        return a - b;
      });
      out.push({ url: url, weight: weights[Math.floor((weights.length - 1) / 2)] });
    });
    return out;
  }

  // True when the answers still pending can no longer change which servers mergeMajority
  // keeps, whether they answer or fail: then nobody waits for a slow bootstrap node. With
  // r answers in and p pending, a server listed c times is kept for sure when 2c > r + p, and
  // dropped for sure when 2c + p <= r; an unlisted one (c = 0) is dropped for sure when p <= r.
  function majorityDecided(answers, pending) {
    var r = answers.length;
    if (r === 0) return pending === 0;
    if (pending > r) return false;
    var counts = countListings(answers);
    return Object.keys(counts).every(function (url) {
      var c = counts[url].weights.length;
      return 2 * c > r + pending || 2 * c + pending <= r;
    });
  }

  // ---------------------------------------------------------------------------------------
  // Weighted rendezvous hashing: the same function as src/rendezvous.rs; both are checked
  // against tests/vectors/rendezvous.json.

  // UTF-8 bytes of a string, written out so the hash needs nothing from the platform. A lone
  // surrogate becomes U+FFFD, as TextEncoder does (Rust strings cannot hold one at all).
  function utf8Bytes(str) {
    var out = [];
    for (var i = 0; i < str.length; i++) {
      var c = str.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
        var d = str.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return out;
  }

  function fnv1a32(str) {
    var bytes = utf8Bytes(str);
    var h = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i++) {
      h ^= bytes[i];
      h = Math.imul(h, 0x01000193);
    }
    return h >>> 0;
  }

  // MurmurHash3's finalizer. FNV-1a alone runs only one multiplication after the last byte,
  // so keys that differ at their end (repo-1, repo-2, …) land unevenly across nodes (we
  // measured 2.6% vs 24.6% of 10,000 keys on five nodes); fmix32 spreads them evenly.
  function fmix32(h) {
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  function itemKey(organization, repository, tag) {
    return organization + "/" + repository + ":" + tag;
  }

  function serverHash(url, key) {
    return fmix32(fnv1a32(url + "\n" + key));
  }

  // (hash + 0.5) / 2^32 lies strictly inside (0, 1), so ln() below is finite and negative.
  function unitInterval(hash) {
    return (hash + 0.5) / 4294967296;
  }

  function effectiveWeight(w) {
    if (!(w > 0)) return 0; // also NaN
    return Math.min(w, MAX_WEIGHT);
  }

  function score(url, key, weight) {
    return -effectiveWeight(weight) / Math.log(unitInterval(serverHash(url, key)));
  }

  // Highest score first, ties (only weight-0 servers, in practice) by URL: the order is the
  // preference and the failover order alike.
  function rank(servers, key) {
    return servers
      .map(function (s) {
        return { server: s, score: score(s.url, key, s.weight) };
      })
      .sort(function (a, b) {
        if (a.score !== b.score) return b.score - a.score;
        return a.server.url < b.server.url ? -1 : a.server.url > b.server.url ? 1 : 0;
      })
      .map(function (x) {
        return x.server;
      });
  }

  // ---------------------------------------------------------------------------------------
  // Answers

  function statusMessage(status) {
    // 10 is success; above 10 is not used by Docker Hub, and the old script showed "ok" for
    // everything that was not negative, so we keep that.
    if (status >= 10) return MESSAGES.ok;
    if (status >= 0) return MESSAGES.building;
    return MESSAGES.error;
  }

  // What a /build answer means for the badge, or null when it is no answer (network error,
  // 5xx, rate limited, HTML, junk): then the next node is asked. A "not found" from one node
  // is believed: nodes ask the same Docker Hub, and a second opinion would cost every
  // misspelt badge the whole budget. HTTP 200 with {"request":"error"} is how the old Python
  // server says "tag not found".
  function classifyBuildAnswer(httpStatus, json) {
    if (!json || typeof json !== "object") return null;
    if (json.request === "ok" && httpStatus === 200 && Number.isInteger(json.status)) {
      return statusMessage(json.status);
    }
    if (json.request === "error") {
      if (httpStatus === 404 || httpStatus === 200) return MESSAGES.notFound;
      if (httpStatus === 400) return MESSAGES.invalid;
    }
    return null;
  }

  function buildUrl(server, params) {
    return (
      server +
      "/build/" +
      encodeURIComponent(params.organization) +
      "/" +
      encodeURIComponent(params.repository) +
      "?tag=" +
      encodeURIComponent(params.tag)
    );
  }

  // ---------------------------------------------------------------------------------------
  // Network

  function newController() {
    return typeof AbortController !== "undefined"
      ? new AbortController()
      : { signal: undefined, abort: function () {} };
  }

  // Resolves to {status, json} (json null when the body is not JSON) or null on any network
  // failure; never rejects, so callers only ever deal with "answer" or "no answer".
  function getJson(fetchFn, url, signal) {
    return Promise.resolve()
      .then(function () {
        // No cookies, no referrer: a node learns which image is asked for, not who looks.
        return fetchFn(url, { signal: signal, credentials: "omit", referrerPolicy: "no-referrer" });
      })
      .then(function (res) {
        return res.text().then(function (text) {
          var json = null;
          if (text.length <= MAX_ANSWER_CHARS) {
            try {
              json = JSON.parse(text);
            } catch (e) {
              json = null;
            }
          }
          return { status: res.status, json: json };
        });
      })
      .catch(function () {
        return null;
      });
  }

  function shuffled(list, random) {
    var a = list.slice();
    for (var i = a.length - 1; i > 0; i--) {
      var j = Math.floor(random() * (i + 1));
      var t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  // A tiny cancellation token for the time budget; AbortSignal is not used for this so the
  // logic does not depend on the browser having AbortController.
  function Budget() {
    this.over = false;
    this.hooks = [];
  }
  Budget.prototype.onOver = function (fn) {
    if (this.over) fn();
    else this.hooks.push(fn);
  };
  Budget.prototype.end = function () {
    if (this.over) return;
    this.over = true;
    this.hooks.splice(0).forEach(function (fn) {
      fn();
    });
  };

  // Asks up to `fanout` random bootstrap nodes for /servers and merges their answers by
  // majority. Resolves to {servers: [{url, weight}], source: "servers" | "bootstrap"}.
  function discoverServers(bootstrap, env, opts, budget) {
    var fallback = {
      servers: bootstrap.map(function (url) {
        return { url: url, weight: 1 };
      }),
      source: "bootstrap",
    };
    var asked = shuffled(bootstrap, env.random).slice(0, opts.serversFanout);
    if (asked.length === 0) return Promise.resolve(fallback);

    return new Promise(function (resolve) {
      var answers = [];
      var pending = asked.length;
      var done = false;
      var controller = newController();
      var timer = env.setTimeout(finish, opts.serversTimeoutMs);
      budget.onOver(finish);

      function finish() {
        if (done) return;
        done = true;
        env.clearTimeout(timer);
        controller.abort();
        var merged = answers.length > 0 ? mergeMajority(answers) : [];
        // No node speaks /servers (old-style nodes), or they agree on nothing: the
        // bootstrap list is still better than no list.
        resolve(merged.length > 0 ? { servers: merged, source: "servers" } : fallback);
      }

      asked.forEach(function (url) {
        getJson(env.fetch, url + "/servers", controller.signal).then(function (r) {
          if (done) return;
          var list = r && r.status === 200 ? parseServersAnswer(r.json) : null;
          if (list !== null) answers.push(list);
          pending--;
          if (pending === 0 || majorityDecided(answers, pending)) finish();
        });
      });
    });
  }

  // Asks the candidates in order with hedging: the next one starts when the current one
  // failed, or has not answered within hedgeMs. The first answer that means something wins.
  // Resolves to {message, color, server} or null when every candidate failed.
  function askBuild(candidates, params, env, opts, budget) {
    return new Promise(function (resolve) {
      var next = 0;
      var inFlight = 0;
      var done = false;
      var hedgeTimer = null;
      var controller = newController();
      budget.onOver(function () {
        finish(null);
      });

      function finish(result) {
        if (done) return;
        done = true;
        env.clearTimeout(hedgeTimer);
        controller.abort(); // the losers of the race need not finish
        resolve(result);
      }

      function launchNext() {
        if (done) return;
        env.clearTimeout(hedgeTimer);
        hedgeTimer = null;
        if (next >= candidates.length) {
          if (inFlight === 0) finish(null);
          return;
        }
        var server = candidates[next++].url;
        inFlight++;
        getJson(env.fetch, buildUrl(server, params), controller.signal).then(function (r) {
          inFlight--;
          if (done) return;
          var result = r ? classifyBuildAnswer(r.status, r.json) : null;
          if (result) finish({ message: result.message, color: result.color, server: server });
          else launchNext(); // a failure moves on at once, without waiting for the hedge
        });
        if (next < candidates.length) hedgeTimer = env.setTimeout(launchNext, opts.hedgeMs);
      }

      launchNext();
    });
  }

  // ---------------------------------------------------------------------------------------
  // The badge

  // Widths like a shields.io flat badge: 5px of padding on each side of each text.
  function badgeLayout(nameTextWidth, statusTextWidth) {
    var nameWidth = Math.round(nameTextWidth) + 10;
    var statusWidth = Math.round(statusTextWidth) + 10;
    return {
      width: nameWidth + statusWidth,
      nameWidth: nameWidth,
      statusWidth: statusWidth,
      nameX: nameWidth / 2,
      statusX: nameWidth + statusWidth / 2,
    };
  }

  function textWidth(el, text) {
    var w = 0;
    try {
      w = el.getComputedTextLength();
    } catch (e) {
      w = 0;
    }
    // Not rendered (display:none, no layout yet): estimate from Verdana 11px.
    return w > 0 && isFinite(w) ? w : Array.from(text).length * 7;
  }

  // Writes label and message with textContent only (never innerHTML: the label comes from
  // the URL), then fits the shapes to the measured text.
  function renderBadge(doc, label, state) {
    function el(id) {
      return doc.getElementById(id);
    }
    var parts = ["name", "name-shadow", "status", "status-shadow"].map(el);
    if (parts.some(function (p) {
      return !p;
    })) return;
    parts[0].textContent = label;
    parts[1].textContent = label;
    parts[2].textContent = state.message;
    parts[3].textContent = state.message;
    var title = el("title");
    if (title) title.textContent = label + ": " + state.message;
    var color = el("status-color");
    if (color) color.setAttribute("fill", state.color);

    var l = badgeLayout(textWidth(parts[0], label), textWidth(parts[2], state.message));
    var root = doc.documentElement;
    root.setAttribute("width", String(l.width));
    ["clip", "gloss"].forEach(function (id) {
      var e = el(id);
      if (e) e.setAttribute("width", String(l.width));
    });
    var nameBg = el("name-bg");
    if (nameBg) nameBg.setAttribute("width", String(l.nameWidth));
    if (color) {
      color.setAttribute("x", String(l.nameWidth));
      color.setAttribute("width", String(l.statusWidth));
    }
    parts[0].setAttribute("x", String(l.nameX));
    parts[1].setAttribute("x", String(l.nameX));
    parts[2].setAttribute("x", String(l.statusX));
    parts[3].setAttribute("x", String(l.statusX));
  }

  // For tests (and headless browsers): data-state is "loading" until the badge is final,
  // then "done", with the message and the node that answered beside it.
  function markDone(doc, state) {
    var root = doc.documentElement;
    root.setAttribute("data-message", state.message);
    if (state.server) root.setAttribute("data-server", state.server);
    root.setAttribute("data-state", "done");
  }

  // ---------------------------------------------------------------------------------------
  // Putting it together

  // env: {search, document (optional), fetch, setTimeout, clearTimeout, random, bootstrap
  // (optional), options (optional overrides of DEFAULTS, for tests)}. Resolves to the state
  // shown: {message, color, server, source, candidates}. Never rejects, never leaves "???".
  function run(env) {
    try {
      return start(env);
    } catch (e) {
      // A bug must still end in a message, not in "???" forever.
      var state = Object.assign({ server: null, source: null, candidates: [] }, MESSAGES.unknown);
      if (env && env.document) {
        try {
          renderBadge(env.document, DEFAULTS.text, state);
        } catch (e2) {
          // Nothing more to try; the state attributes below still tell.
        }
        markDone(env.document, state);
      }
      return Promise.resolve(state);
    }
  }

  function start(env) {
    var params = parseParams(env.search);
    var opts = Object.assign({}, DEFAULTS, { hedgeMs: params.hedgeMs, budgetMs: params.budgetMs });
    opts.serversTimeoutMs = Math.min(opts.serversTimeoutMs, Math.floor(opts.budgetMs * 0.4));
    Object.assign(opts, env.options || {});
    var doc = env.document || null;
    var bootstrap =
      params.servers || filterServerUrls(env.bootstrap || servingNode(doc) || BOOTSTRAP_SERVERS);

    function show(state) {
      if (doc) {
        try {
          renderBadge(doc, params.text, state);
        } catch (e) {
          // A badge that cannot be drawn still reports its state below.
        }
        markDone(doc, state);
      }
      return state;
    }

    if (params.repository === null) {
      return Promise.resolve(show(Object.assign({ server: null, source: null, candidates: [] }, MESSAGES.noRepository)));
    }

    var budget = new Budget();
    var budgetTimer = env.setTimeout(function () {
      budget.end();
    }, opts.budgetMs);
    var trace = { source: null, candidates: [] };

    var work = discoverServers(bootstrap, env, opts, budget).then(function (found) {
      var key = itemKey(params.organization, params.repository, params.tag);
      var listed = found.servers.map(function (s) {
        return s.url;
      });
      // Bootstrap nodes the majority did not list go last: trusted by configuration, so
      // trying them when everything else failed lets no liar in, and costs nothing before.
      var rest = bootstrap
        .filter(function (url) {
          return listed.indexOf(url) < 0;
        })
        .map(function (url) {
          return { url: url, weight: 1 };
        });
      var candidates = rank(found.servers, key).concat(rank(rest, key));
      trace.source = found.source;
      trace.candidates = candidates.map(function (s) {
        return s.url;
      });
      return askBuild(candidates, params, env, opts, budget);
    });

    return work
      .catch(function () {
        return null;
      })
      .then(function (result) {
        env.clearTimeout(budgetTimer);
        budget.end();
        var state = result || Object.assign({ server: null }, MESSAGES.unknown);
        return show({
          message: state.message,
          color: state.color,
          server: state.server,
          source: trace.source,
          candidates: trace.candidates,
        });
      });
  }

  var api = {
    BOOTSTRAP_SERVERS: BOOTSTRAP_SERVERS,
    DEFAULTS: DEFAULTS,
    COLORS: COLORS,
    MESSAGES: MESSAGES,
    MAX_WEIGHT: MAX_WEIGHT,
    MAX_LABEL_CHARS: MAX_LABEL_CHARS,
    parseParams: parseParams,
    canonicalServerUrl: canonicalServerUrl,
    filterServerUrls: filterServerUrls,
    servingNode: servingNode,
    parseServersAnswer: parseServersAnswer,
    mergeMajority: mergeMajority,
    majorityDecided: majorityDecided,
    utf8Bytes: utf8Bytes,
    fnv1a32: fnv1a32,
    fmix32: fmix32,
    itemKey: itemKey,
    serverHash: serverHash,
    unitInterval: unitInterval,
    effectiveWeight: effectiveWeight,
    score: score,
    rank: rank,
    statusMessage: statusMessage,
    classifyBuildAnswer: classifyBuildAnswer,
    buildUrl: buildUrl,
    badgeLayout: badgeLayout,
    renderBadge: renderBadge,
    run: run,
  };

  if (typeof module !== "undefined" && module.exports) {
    module.exports = api;
  } else if (typeof window !== "undefined" && typeof document !== "undefined") {
    run({
      search: window.location.search,
      document: document,
      fetch: window.fetch ? window.fetch.bind(window) : undefined,
      setTimeout: window.setTimeout.bind(window),
      clearTimeout: window.clearTimeout.bind(window),
      random: Math.random,
    });
  }
})();
