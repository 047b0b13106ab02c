// peers.test.js: status.js's built-in bootstrap list must equal the URLs in peers.toml, so
// the script and the node shipped beside it start from the same nodes.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { status, readRepoFile } = require("./helpers.js");

// Just enough TOML for peers.toml: `url = "…"` lines inside [[peer]] tables; comments and
// other tables are skipped.
function peerUrls(toml) {
  const urls = [];
  let inPeer = false;
  for (const raw of toml.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("[")) {
      inPeer = line === "[[peer]]";
      continue;
    }
    const m = /^url\s*=\s*"([^"]*)"\s*(#.*)?$/.exec(line);
    if (inPeer && m) urls.push(m[1]);
  }
  return urls;
}

test("the minimal peers.toml reader reads what it should and nothing else", () => {
  const sample = [
    "# [[peer]]",
    '# url = "https://commented.example"',
    "[[peer]]",
    'url = "https://a.example"   # the first',
    "weight = 2.0",
    "",
    "[other]",
    'url = "https://not-a-peer.example"',
    "[[peer]]",
    '  url="https://b.example"',
  ].join("\n");
  assert.deepEqual(peerUrls(sample), ["https://a.example", "https://b.example"]);
});

test("status.js's built-in list equals the URLs in peers.toml", () => {
  const fromToml = peerUrls(readRepoFile("peers.toml"));
  assert.ok(fromToml.length > 0, "peers.toml names no peer");
  assert.deepEqual(status.BOOTSTRAP_SERVERS, fromToml);
});

test("every bootstrap URL is already in canonical form", () => {
  for (const url of status.BOOTSTRAP_SERVERS) {
    assert.equal(status.canonicalServerUrl(url), url);
  }
});
