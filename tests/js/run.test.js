// run.test.js: the whole of status.js against fake nodes: node choice, majority, hedging,
// failover, the time budget, and the badge state it leaves behind.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { status, fakeNetwork, serversAnswer, OK, fakeSvgDocument, runBadge } = require("./helpers.js");

const NODES = ["https://n1.example", "https://n2.example", "https://n3.example", "https://n4.example"];
const SEARCH = "?organization=acme&repository=app&tag=v1";
const KEY = "acme/app:v1";

// The candidates in the order status.js must try them.
function ranked(urls, key = KEY) {
  return status.rank(urls.map((url) => ({ url, weight: 1 })), key).map((s) => s.url);
}

// Every node lists all of `listed` and answers /build with `build` (or per-URL overrides).
function cluster(listed, build, overrides = {}) {
  const nodes = {};
  for (const url of NODES) {
    nodes[url] = Object.assign({ servers: serversAnswer(url, listed), build }, overrides[url] || {});
  }
  return nodes;
}

test("without a repository the badge says so and asks nobody", async () => {
  const network = fakeNetwork(cluster(NODES, OK));
  const doc = fakeSvgDocument();
  const result = await runBadge({ search: "?organization=acme", network, bootstrap: NODES, document: doc });
  assert.equal(result.message, "no repository");
  assert.equal(network.calls.length, 0);
  assert.equal(doc.byId.status.textContent, "no repository");
  assert.equal(doc.documentElement.getAttribute("data-state"), "done");
});

test("the top-ranked healthy node is asked, and only it when it answers in time", async () => {
  const network = fakeNetwork(cluster(NODES.slice(0, 3), OK));
  const doc = fakeSvgDocument();
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, document: doc, options: { hedgeMs: 1000 } });
  const order = ranked(NODES.slice(0, 3));
  assert.equal(result.message, "ok");
  assert.equal(result.source, "servers");
  assert.deepEqual(result.candidates.slice(0, 3), order);
  assert.equal(result.server, order[0]);
  assert.deepEqual(network.buildCalls().map((c) => c.url), [order[0] + "/build/acme/app?tag=v1"]);
  assert.equal(network.serversCalls().length, 3, "asks three bootstrap nodes for /servers");
  assert.equal(doc.byId.status.textContent, "ok");
  assert.equal(doc.byId["status-color"].getAttribute("fill"), "#4b0");
  assert.equal(doc.documentElement.getAttribute("data-state"), "done");
  assert.equal(doc.documentElement.getAttribute("data-message"), "ok");
  assert.equal(doc.documentElement.getAttribute("data-server"), order[0]);
});

// A node serving /static/status.svg writes its URL into the root element.
function servedBy(url) {
  const doc = fakeSvgDocument();
  if (url !== undefined) doc.documentElement.setAttribute("data-bootstrap", url);
  return doc;
}

test("a badge served by a node asks that node for /servers, not the built-in list", async () => {
  const network = fakeNetwork(cluster(NODES.slice(0, 3), OK));
  const result = await runBadge({ search: SEARCH, network, document: servedBy(NODES[1]) });
  assert.equal(result.message, "ok");
  assert.equal(result.source, "servers");
  assert.deepEqual(network.serversCalls().map((c) => c.url), [NODES[1] + "/servers"]);
  assert.equal(result.server, ranked(NODES.slice(0, 3))[0]);
});

test("a copy on any other host keeps the built-in list", async () => {
  for (const doc of [servedBy(undefined), servedBy("javascript:alert(1)"), servedBy("")]) {
    const network = fakeNetwork({});
    await runBadge({ search: SEARCH, network, document: doc, options: { budgetMs: 600 } });
    assert.deepEqual(
      network.serversCalls().map((c) => c.url),
      status.BOOTSTRAP_SERVERS.map((url) => url + "/servers"),
    );
  }
});

test("servers= in the page's URL wins over the node that served it", async () => {
  const network = fakeNetwork(cluster(NODES, OK));
  await runBadge({ search: SEARCH + "&servers=" + NODES[2], network, document: servedBy(NODES[1]) });
  assert.deepEqual(network.serversCalls().map((c) => c.url), [NODES[2] + "/servers"]);
});

test("requests carry no cookies and no referrer", async () => {
  const network = fakeNetwork(cluster(NODES, OK));
  await runBadge({ search: SEARCH, network, bootstrap: NODES });
  for (const call of network.calls) {
    assert.equal(call.init.credentials, "omit");
    assert.equal(call.init.referrerPolicy, "no-referrer");
  }
});

test("a silent top node is hedged: the next one is asked after the delay and wins", async () => {
  const order = ranked(NODES);
  const network = fakeNetwork(cluster(NODES, OK, { [order[0]]: { build: "hang" } }));
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, options: { hedgeMs: 80 } });
  assert.equal(result.message, "ok");
  assert.equal(result.server, order[1]);
  const calls = network.buildCalls();
  assert.equal(calls.length, 2);
  assert.ok(calls[1].at - calls[0].at >= 70, `hedged after ${calls[1].at - calls[0].at} ms`);
});

test("a slow top node that answers first still wins over the hedge", async () => {
  const order = ranked(NODES);
  const slow = Object.assign({ delay: 1000 }, OK);
  const network = fakeNetwork(cluster(NODES, slow, { [order[0]]: { build: Object.assign({ delay: 120 }, OK) } }));
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, options: { hedgeMs: 50 } });
  assert.equal(result.server, order[0]);
  assert.ok(network.buildCalls().length >= 2, "the hedge did start");
});

test("a failing node hands over at once, without waiting for the hedge delay", async () => {
  const order = ranked(NODES);
  const network = fakeNetwork(
    cluster(NODES, OK, {
      [order[0]]: { build: "refuse" },
      [order[1]]: { build: { status: 503, json: { request: "error", description: "rate limited" } } },
      [order[2]]: { build: { status: 200, body: "<html>proxy error</html>" } },
    })
  );
  const started = Date.now();
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, options: { hedgeMs: 5000, budgetMs: 8000 } });
  assert.equal(result.message, "ok");
  assert.equal(result.server, order[3]);
  assert.ok(Date.now() - started < 2000, "failures did not wait for the hedge delay");
  assert.deepEqual(
    network.buildCalls().map((c) => c.url.split("/build/")[0]),
    order
  );
});

test("a node's 404 is believed: not found, and nobody else is asked", async () => {
  const order = ranked(NODES);
  const notFound = { status: 404, json: { request: "error", description: "repository not found" } };
  const network = fakeNetwork(cluster(NODES, notFound));
  const doc = fakeSvgDocument();
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, document: doc, options: { hedgeMs: 1000 } });
  assert.equal(result.message, "not found");
  assert.equal(result.server, order[0]);
  assert.equal(network.buildCalls().length, 1);
  assert.equal(doc.byId["status-color"].getAttribute("fill"), "#939393");
});

test("building and failed builds are shown in their colours", async () => {
  for (const [n, message, color] of [[2, "building", "#007ec6"], [-1, "error", "#dd4343"]]) {
    const network = fakeNetwork(cluster(NODES, { status: 200, json: { request: "ok", status: n } }));
    const doc = fakeSvgDocument();
    const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, document: doc });
    assert.equal(result.message, message);
    assert.equal(doc.byId.status.textContent, message);
    assert.equal(doc.byId["status-color"].getAttribute("fill"), color);
  }
});

test("every node down: unknown at once, not after the budget, never ???", async () => {
  const network = fakeNetwork({}); // every address refuses
  const doc = fakeSvgDocument();
  const started = Date.now();
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, document: doc, options: { budgetMs: 5000 } });
  assert.equal(result.message, "unknown");
  assert.equal(result.source, "bootstrap");
  assert.ok(Date.now() - started < 2000);
  assert.equal(doc.byId.status.textContent, "unknown");
  assert.equal(doc.documentElement.getAttribute("data-state"), "done");
});

test("every node silent: unknown when the budget is spent", async () => {
  const nodes = {};
  for (const url of NODES) nodes[url] = { servers: "hang", build: "hang" };
  const network = fakeNetwork(nodes);
  const doc = fakeSvgDocument();
  const started = Date.now();
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, document: doc, options: { budgetMs: 600, hedgeMs: 50 } });
  const elapsed = Date.now() - started;
  assert.equal(result.message, "unknown");
  assert.ok(elapsed >= 550 && elapsed < 1500, `took ${elapsed} ms`);
  assert.equal(doc.byId.status.textContent, "unknown");
  assert.notEqual(doc.byId["status-shadow"].textContent, "???");
});

test("the budget set in the URL is honoured", async () => {
  const nodes = {};
  for (const url of NODES) nodes[url] = { servers: "hang", build: "hang" };
  const network = fakeNetwork(nodes);
  const started = Date.now();
  const result = status.run({
    search: SEARCH + "&budget_ms=700&hedge_ms=50",
    fetch: network.fetch,
    setTimeout,
    clearTimeout,
    random: Math.random,
    bootstrap: NODES,
  });
  assert.equal((await result).message, "unknown");
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 650 && elapsed < 1500, `took ${elapsed} ms`);
});

test("old-style bootstrap nodes without /servers are asked directly", async () => {
  const old = "https://dockerbuildbadges.quelltext.eu";
  const network = fakeNetwork({
    [old]: {
      servers: { status: 404, body: "<h1>Not Found</h1>" },
      build: { status: 200, json: { request: "ok", status: 10 } },
    },
  });
  const result = await runBadge({ search: SEARCH, network, bootstrap: [old] });
  assert.equal(result.message, "ok");
  assert.equal(result.source, "bootstrap");
  assert.equal(result.server, old);
});

test("the old server's 'tag not found' (HTTP 200) shows not found", async () => {
  const old = "https://dockerbuildbadges.quelltext.eu";
  const network = fakeNetwork({
    [old]: { build: { status: 200, json: { request: "error", description: "tag v1 not found" } } },
  });
  const result = await runBadge({ search: SEARCH, network, bootstrap: [old] });
  assert.equal(result.message, "not found");
});

test("a lying minority node can neither add a server nor hide one", async () => {
  const [n1, n2, n3] = NODES;
  const evil = "https://evil.example";
  const honest = serversAnswer("h", [n1, n2, n3]);
  // The liar hides n2, adds itself and a javascript: URL, and claims a huge weight.
  const lie = {
    status: 200,
    json: {
      servers: [
        { url: n1, weight: 1 },
        { url: n3, weight: 1 },
        { url: evil, weight: 1000 },
        { url: "javascript:alert(1)", weight: 1000 },
      ],
    },
  };
  // Whatever the item, the evil node must never be asked; try several items so n2 ranks
  // first in some of them.
  let n2First = 0;
  for (let i = 0; i < 8; i++) {
    const network = fakeNetwork({
      [n1]: { servers: honest, build: OK },
      [n2]: { servers: honest, build: OK },
      [n3]: { servers: lie, build: OK },
      [evil]: { servers: lie, build: OK },
    });
    const search = `?organization=acme&repository=app${i}`;
    const result = await runBadge({ search, network, bootstrap: [n1, n2, n3] });
    const order = ranked([n1, n2, n3], `acme/app${i}:latest`);
    assert.deepEqual(result.candidates, order);
    assert.equal(result.server, order[0]);
    if (order[0] === n2) n2First++;
    assert.ok(!network.calls.some((c) => c.url.startsWith(evil)), "the evil node was asked");
    assert.ok(!network.calls.some((c) => c.url.startsWith("javascript:")));
  }
  assert.ok(n2First > 0, "no item ranked the hidden node first; pick other items");
});

test("javascript: and other junk in every /servers answer is dropped", async () => {
  const junk = {
    status: 200,
    json: { servers: [{ url: "javascript:alert(1)" }, { url: "data:text/html,x" }, { url: "/relative" }, { url: NODES[0] }] },
  };
  const nodes = {};
  for (const url of NODES.slice(0, 3)) nodes[url] = { servers: junk, build: OK };
  const network = fakeNetwork(nodes);
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES.slice(0, 3) });
  assert.equal(result.server, NODES[0]);
  assert.deepEqual(result.candidates, [NODES[0], ...ranked(NODES.slice(1, 3))]);
  assert.ok(network.calls.every((c) => /^https:\/\/n\d\.example\//.test(c.url)));
});

test("bootstrap nodes the majority did not list are tried last", async () => {
  const [n1, n2, n3] = NODES;
  const network = fakeNetwork({
    [n1]: { servers: serversAnswer(n1, [n1, n2]), build: "refuse" },
    [n2]: { servers: serversAnswer(n2, [n1, n2]), build: "refuse" },
    [n3]: { servers: "refuse", build: OK },
  });
  const result = await runBadge({ search: SEARCH, network, bootstrap: [n1, n2, n3] });
  assert.deepEqual(result.candidates, [...ranked([n1, n2]), n3]);
  assert.equal(result.server, n3);
});

test("two agreeing answers of three are enough: a silent third is not waited for", async () => {
  const [n1, n2, n3] = NODES;
  const network = fakeNetwork({
    [n1]: { servers: serversAnswer(n1, [n1, n2]), build: OK },
    [n2]: { servers: serversAnswer(n2, [n2, n1]), build: OK },
    [n3]: { servers: "hang", build: OK },
  });
  const result = await runBadge({
    search: SEARCH,
    network,
    bootstrap: [n1, n2, n3],
    options: { serversTimeoutMs: 1000, budgetMs: 3000 },
  });
  assert.equal(result.source, "servers");
  assert.ok(network.buildCalls()[0].at < 500, `waited ${network.buildCalls()[0].at} ms for /servers`);
});

test("a silent /servers node is given up after the timeout, the others' answers are used", async () => {
  const [n1, n2, n3] = NODES;
  const network = fakeNetwork({
    [n1]: { servers: serversAnswer(n1, [n1, n2, n4()]), build: OK },
    [n2]: { servers: serversAnswer(n2, [n1, n2]), build: OK },
    [n3]: { servers: "hang", build: OK },
  });
  const result = await runBadge({
    search: SEARCH,
    network,
    bootstrap: [n1, n2, n3],
    options: { serversTimeoutMs: 150, budgetMs: 3000 },
  });
  // Two answers received: only what both list counts.
  assert.deepEqual(result.candidates, [...ranked([n1, n2]), n3]);
  const firstBuild = network.buildCalls()[0].at;
  assert.ok(firstBuild >= 140 && firstBuild < 1000, `first /build at ${firstBuild} ms`);
  function n4() {
    return NODES[3];
  }
});

test("at most three bootstrap nodes are asked for /servers", async () => {
  const many = [];
  for (let i = 0; i < 10; i++) many.push(`https://b${i}.example`);
  const nodes = {};
  for (const url of many) nodes[url] = { servers: serversAnswer(url, many), build: OK };
  const network = fakeNetwork(nodes);
  await runBadge({ search: SEARCH, network, bootstrap: many });
  assert.equal(network.serversCalls().length, 3);
});

test("servers= in the URL replaces the built-in bootstrap list", async () => {
  const mine = "http://127.0.0.1:40001";
  const network = fakeNetwork({ [mine]: { servers: serversAnswer(mine, [mine]), build: OK } });
  const result = status.run({
    search: SEARCH + "&servers=" + encodeURIComponent(mine + "/,javascript:alert(1)"),
    fetch: network.fetch,
    setTimeout,
    clearTimeout,
    random: Math.random,
  });
  assert.equal((await result).server, mine);
  assert.ok(network.calls.every((c) => c.url.startsWith(mine + "/")));
});

test("the built-in bootstrap list is used when no servers= is given", async () => {
  const network = fakeNetwork({});
  const result = await status.run({
    search: SEARCH,
    fetch: network.fetch,
    setTimeout,
    clearTimeout,
    random: Math.random,
    options: { budgetMs: 500 },
  });
  assert.equal(result.message, "unknown");
  assert.deepEqual(
    network.serversCalls().map((c) => c.url.replace(/\/servers$/, "")).sort(),
    status.BOOTSTRAP_SERVERS.slice(0, 3).sort()
  );
});

test("a badge that cannot be drawn still finishes and reports its state", async () => {
  const network = fakeNetwork(cluster(NODES, OK));
  const doc = fakeSvgDocument();
  doc.byId.name.getComputedTextLength = () => {
    throw new Error("no layout");
  };
  doc.byId["status-color"].setAttribute = () => {
    throw new Error("read-only");
  };
  const result = await runBadge({ search: SEARCH, network, bootstrap: NODES, document: doc });
  assert.equal(result.message, "ok");
  assert.equal(doc.documentElement.getAttribute("data-state"), "done");
});

test("a fetch that throws synchronously is a failed request, not a crash", async () => {
  const result = await status.run({
    search: SEARCH,
    fetch: () => {
      throw new TypeError("fetch is not a function");
    },
    setTimeout,
    clearTimeout,
    random: Math.random,
    bootstrap: NODES,
  });
  assert.equal(result.message, "unknown");
});

test("the markup label is shown as text after a full run", async () => {
  const network = fakeNetwork(cluster(NODES, OK));
  const doc = fakeSvgDocument();
  const label = "<img src=x onerror=alert(1)>";
  await runBadge({ search: SEARCH + "&text=" + encodeURIComponent(label), network, bootstrap: NODES, document: doc });
  assert.equal(doc.byId.name.textContent, label);
});

test("an error before anything is fetched still ends in unknown", async () => {
  const doc = fakeSvgDocument();
  // URLSearchParams reads the iterator of an object: make reading it throw.
  const search = {
    get [Symbol.iterator]() {
      throw new Error("boom");
    },
  };
  const result = await status.run({ search, document: doc, fetch: () => null, setTimeout, clearTimeout, random: Math.random });
  assert.equal(result.message, "unknown");
  assert.equal(doc.byId.status.textContent, "unknown");
  assert.equal(doc.documentElement.getAttribute("data-state"), "done");
});
