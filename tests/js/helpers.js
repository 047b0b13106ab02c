// helpers.js: fakes shared by the status.js unit tests: a network of fake nodes behind a
// fetch() stand-in, and a document stand-in made from the element ids of the real status.svg.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.join(__dirname, "..", "..");
const status = require(path.join(ROOT, "status.js"));

function readRepoFile(name) {
  return fs.readFileSync(path.join(ROOT, name), "utf8");
}

// One answer of a fake node: {status, json} or {status, body}, optionally after `delay` ms;
// or the strings "refuse" (network error at once) and "hang" (no answer until aborted).
function respond(behaviour, signal) {
  return new Promise((resolve, reject) => {
    const abort = () => reject(new Error("aborted"));
    if (signal) {
      if (signal.aborted) return abort();
      signal.addEventListener("abort", abort, { once: true });
    }
    if (behaviour === "hang") return;
    const b = behaviour === "refuse" ? { refuse: true } : behaviour;
    setTimeout(() => {
      if (b.refuse) return reject(new TypeError("Failed to fetch"));
      const body = b.body !== undefined ? b.body : JSON.stringify(b.json);
      resolve({ status: b.status || 200, text: () => Promise.resolve(body) });
    }, b.delay || 0);
  });
}

// nodes: {"https://a.example": {servers: behaviour, build: behaviour | (url) => behaviour}}.
// Unknown hosts refuse, like a dead address. Every call is recorded with its time.
function fakeNetwork(nodes) {
  const calls = [];
  const started = Date.now();
  function fetch(url, init) {
    calls.push({ url, at: Date.now() - started, init });
    const base = Object.keys(nodes)
      .filter((b) => url === b || url.startsWith(b + "/"))
      .sort((a, b) => b.length - a.length)[0];
    if (base === undefined) return respond("refuse", init && init.signal);
    const rest = url.slice(base.length);
    const node = nodes[base];
    let behaviour;
    if (rest === "/servers") behaviour = node.servers;
    else if (rest.startsWith("/build/")) behaviour = node.build;
    if (typeof behaviour === "function") behaviour = behaviour(url);
    if (behaviour === undefined) behaviour = { status: 404, json: { request: "error", description: "no such path" } };
    return respond(behaviour, init && init.signal);
  }
  return {
    fetch,
    calls,
    buildCalls: () => calls.filter((c) => c.url.includes("/build/")),
    serversCalls: () => calls.filter((c) => c.url.endsWith("/servers")),
  };
}

function serversAnswer(node, urls, weight) {
  return {
    status: 200,
    json: {
      node,
      generated_at: "2026-11-27T10:00:00Z",
      servers: urls.map((url) => ({ url, key: "k", weight: weight === undefined ? 1.0 : weight, score: 20 })),
    },
  };
}

const OK = { status: 200, json: { request: "ok", status: 10 } };

// An element stand-in: textContent and attributes only. innerHTML and friends throw, so a
// test fails if the script ever reaches for them.
function fakeElement(id) {
  const el = {
    id,
    textContent: "",
    attributes: {},
    setAttribute(name, value) {
      el.attributes[name] = String(value);
    },
    getAttribute(name) {
      return Object.prototype.hasOwnProperty.call(el.attributes, name) ? el.attributes[name] : null;
    },
    // Like a browser: the width of the text as laid out (6 px per character here).
    getComputedTextLength() {
      return Array.from(el.textContent).length * 6;
    },
  };
  for (const name of ["innerHTML", "outerHTML"]) {
    Object.defineProperty(el, name, {
      get() {
        throw new Error(name + " read");
      },
      set() {
        throw new Error(name + " written");
      },
    });
  }
  el.insertAdjacentHTML = () => {
    throw new Error("insertAdjacentHTML used");
  };
  return el;
}

// A document with one fake element per id in the real status.svg, texts as the file has them.
function fakeSvgDocument() {
  const svg = readRepoFile("status.svg");
  const byId = {};
  for (const m of svg.matchAll(/<(\w+)[^>]*\sid="([^"]+)"[^>]*>([^<]*)/g)) {
    byId[m[2]] = fakeElement(m[2]);
    byId[m[2]].textContent = m[3];
  }
  const root = fakeElement("svg-root");
  root.setAttribute("data-state", "loading");
  return {
    byId,
    documentElement: root,
    getElementById: (id) => byId[id] || null,
    write() {
      throw new Error("document.write used");
    },
  };
}

// run() with real timers and small delays; `options` overrides the script's defaults.
function runBadge({ search, network, bootstrap, options, document }) {
  return status.run({
    search,
    document,
    fetch: network.fetch,
    setTimeout,
    clearTimeout,
    random: () => 0.5,
    bootstrap,
    options: Object.assign({ hedgeMs: 100, budgetMs: 1500, serversTimeoutMs: 300 }, options || {}),
  });
}

module.exports = {
  ROOT,
  status,
  readRepoFile,
  fakeNetwork,
  serversAnswer,
  OK,
  fakeElement,
  fakeSvgDocument,
  runBadge,
};
