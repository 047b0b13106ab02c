// badge.test.js: what a /build answer shows, and how the badge is written (textContent only)
// and fitted to its text.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const { status, readRepoFile, fakeSvgDocument } = require("./helpers.js");

const { COLORS } = status;

test("Docker Hub status numbers map to ok, building and error", () => {
  const cases = [
    [10, "ok", COLORS.green],
    [11, "ok", COLORS.green],
    [0, "building", COLORS.blue],
    [3, "building", COLORS.blue],
    [9, "building", COLORS.blue],
    [-1, "error", COLORS.red],
    [-4, "error", COLORS.red],
  ];
  for (const [n, message, color] of cases) {
    assert.deepEqual(status.statusMessage(n), { message, color }, String(n));
  }
  assert.equal(COLORS.green, "#4b0");
  assert.equal(COLORS.red, "#dd4343");
  assert.equal(COLORS.blue, "#007ec6");
  assert.equal(COLORS.grey, "#939393");
});

test("which /build answers count, and which send the script on to the next node", () => {
  const ok = (s) => ({ request: "ok", status: s });
  const err = { request: "error", description: "x" };
  const msg = (r) => (r === null ? null : r.message);
  const cases = [
    [200, ok(10), "ok"],
    [200, ok(-1), "error"],
    [200, ok(2), "building"],
    [200, { request: "ok", status: 10, source: "tags" }, "ok"],
    [404, err, "not found"],
    [200, err, "not found"], // the old Python server's "tag not found"
    [400, err, "invalid"],
    [200, ok("10"), null],
    [200, ok(10.5), null],
    [200, ok(null), null],
    [200, { request: "ok" }, null],
    [500, ok(10), null],
    [500, err, null],
    [502, err, null],
    [503, err, null],
    [429, err, null],
    [404, { detail: "Not Found" }, null], // a 404 that is not a node's answer
    [200, null, null], // HTML or junk
    [200, [], null],
    [200, "ok", null],
  ];
  for (const [code, json, want] of cases) {
    assert.equal(msg(status.classifyBuildAnswer(code, json)), want, `${code} ${JSON.stringify(json)}`);
  }
});

test("the /build URL encodes every part", () => {
  const url = status.buildUrl("https://a.example", {
    organization: "a/../b",
    repository: "x?y#z",
    tag: "1.0&evil=1 +",
  });
  assert.equal(url, "https://a.example/build/a%2F..%2Fb/x%3Fy%23z?tag=1.0%26evil%3D1%20%2B");
});

test("the layout pads each text by 5px on both sides", () => {
  assert.deepEqual(status.badgeLayout(35.4, 16.6), {
    width: 45 + 27,
    nameWidth: 45,
    statusWidth: 27,
    nameX: 22.5,
    statusX: 58.5,
  });
});

test("markup in the label is written as text, never as markup", () => {
  const doc = fakeSvgDocument();
  const label = '<script>alert(1)</script><a xlink:href="javascript:x">&amp;</a>';
  status.renderBadge(doc, label, status.MESSAGES.ok);
  assert.equal(doc.byId.name.textContent, label);
  assert.equal(doc.byId["name-shadow"].textContent, label);
  assert.equal(doc.byId.status.textContent, "ok");
  assert.equal(doc.byId["status-shadow"].textContent, "ok");
  assert.equal(doc.byId.title.textContent, label + ": ok");
  // The fake elements throw on innerHTML/outerHTML/insertAdjacentHTML: reaching here means
  // none was used.
});

test("the badge is resized to its measured text", () => {
  const doc = fakeSvgDocument();
  status.renderBadge(doc, "Docker build", { message: "not found", color: COLORS.grey });
  // The fake measures 6 px per character: 12 and 9 characters.
  const nameWidth = 12 * 6 + 10;
  const statusWidth = 9 * 6 + 10;
  const attr = (id, name) => doc.byId[id].getAttribute(name);
  assert.equal(doc.documentElement.getAttribute("width"), String(nameWidth + statusWidth));
  assert.equal(attr("clip", "width"), String(nameWidth + statusWidth));
  assert.equal(attr("gloss", "width"), String(nameWidth + statusWidth));
  assert.equal(attr("name-bg", "width"), String(nameWidth));
  assert.equal(attr("status-color", "x"), String(nameWidth));
  assert.equal(attr("status-color", "width"), String(statusWidth));
  assert.equal(attr("status-color", "fill"), COLORS.grey);
  assert.equal(attr("name", "x"), String(nameWidth / 2));
  assert.equal(attr("name-shadow", "x"), String(nameWidth / 2));
  assert.equal(attr("status", "x"), String(nameWidth + statusWidth / 2));
  assert.equal(attr("status-shadow", "x"), String(nameWidth + statusWidth / 2));
});

test("text that cannot be measured (not laid out) is estimated, not zero", () => {
  const doc = fakeSvgDocument();
  for (const id of ["name", "status"]) doc.byId[id].getComputedTextLength = () => 0;
  status.renderBadge(doc, "Docker", status.MESSAGES.ok);
  assert.equal(doc.byId["name-bg"].getAttribute("width"), String(6 * 7 + 10));
});

// The source check below strips comments so that explaining why innerHTML is not used stays
// allowed.
test("status.js has no way to write markup into the document", () => {
  const code = readRepoFile("status.js")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "");
  for (const banned of ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function("]) {
    assert.ok(!code.includes(banned), `status.js uses ${banned}`);
  }
});

test("status.svg has every element status.js writes to, ??? to start with, and a relative script", () => {
  const svg = readRepoFile("status.svg");
  for (const id of ["name", "name-shadow", "status", "status-shadow", "status-color", "name-bg", "clip", "gloss", "title"]) {
    assert.ok(svg.includes(`id="${id}"`), `status.svg lacks #${id}`);
  }
  assert.match(svg, /<text id="status"[^>]*>\?\?\?<\/text>/);
  assert.match(svg, /<script xlink:href="status\.js"\s*\/>/);
  assert.match(svg, /data-state="loading"/);
  assert.ok(!/https?:\/\//.test(svg.replace(/xmlns(:xlink)?="[^"]*"/g, "")), "status.svg must not load from a fixed host");
});
